/*
 * Unit tests for src/vmm/loader.c, part 1: loading good ELF32/ELF64 PVH
 * kernels, and refusing malformed headers and misplaced segments.
 * (Notes: test_loader_notes.c; initrd and boot info: test_loader_boot.c.)
 */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf_image.h"

/* --- good images ---------------------------------------------------------------- */

static void check_loaded(struct guest_mem *m)
{
	size_t i;

	for (i = 0; i < SEG0_FILESZ; i++)
		ck_assert_msg(m->host[SEG0_GPA + i] == seg0_byte(i), "segment 0 byte %zu", i);
	for (i = SEG0_FILESZ; i < SEG0_MEMSZ; i++)
		ck_assert_msg(m->host[SEG0_GPA + i] == 0, "bss byte %zu not zeroed", i);
	for (i = 0; i < SEG1_SZ; i++)
		ck_assert_msg(m->host[SEG1_GPA + i] == seg1_byte(i), "segment 1 byte %zu", i);
	/* Nothing outside the segments was touched. */
	ck_assert_uint_eq(m->host[SEG0_GPA - 1], 0xcc);
	ck_assert_uint_eq(m->host[SEG0_GPA + SEG0_MEMSZ], 0xcc);
	ck_assert_uint_eq(m->host[SEG1_GPA - 1], 0xcc);
	ck_assert_uint_eq(m->host[SEG1_GPA + SEG1_SZ], 0xcc);
}

/* Fills the area the kernel goes to with 0xcc, as a reset leaves old RAM. */
static void dirty_ram(struct guest_mem *m)
{
	memset(m->host + SEG0_GPA - 0x1000, 0xcc, SEG1_GPA + 0x2000 - (SEG0_GPA - 0x1000));
}

START_TEST(load_elf64)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	dirty_ram(m);
	image_init(&im, true, true);
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.entry, ENTRY);
	ck_assert_uint_eq(ki.lowest, SEG0_GPA);
	ck_assert_uint_eq(ki.highest, SEG1_GPA + SEG1_SZ);
	ck_assert(ki.skiff_guest);
	ck_assert_uint_eq(ki.skiff_flags, SKIFF_NOTE_F_ALL_CPUS_AT_ENTRY);
	check_loaded(m);
	mem_destroy(m);
}
END_TEST

START_TEST(load_elf32)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	dirty_ram(m);
	image_init(&im, false, false);
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.entry, ENTRY);
	ck_assert_uint_eq(ki.lowest, SEG0_GPA);
	ck_assert_uint_eq(ki.highest, SEG1_GPA + SEG1_SZ);
	ck_assert(!ki.skiff_guest);
	ck_assert_uint_eq(ki.skiff_flags, 0);
	check_loaded(m);
	mem_destroy(m);
}
END_TEST

START_TEST(load_elf32_with_skiff_note)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	image_init(&im, false, true);
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert(ki.skiff_guest);
	ck_assert_uint_eq(ki.skiff_flags, 1);
	mem_destroy(m);
}
END_TEST

START_TEST(load_highest_includes_bss)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];
	size_t i;

	dirty_ram(m);
	image_init(&im, true, false);
	im.ph[2].memsz = 0x1800;                /* the top segment ends in bss */
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.highest, SEG1_GPA + 0x1800);
	for (i = SEG1_SZ; i < 0x1800; i++)
		ck_assert_msg(m->host[SEG1_GPA + i] == 0, "bss byte 0x%zx not zeroed", i);
	ck_assert_uint_eq(m->host[SEG1_GPA + 0x1800], 0xcc);
	mem_destroy(m);
}
END_TEST

START_TEST(load_entry_note_8_bytes)
{
	/* Linux's 64-bit vmlinux carries the entry as an 8-byte _ASM_PTR. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	uint64_t entry = 0x100020;
	char err[256];

	image_init(&im, true, false);
	im.notes_len = put_note(im.notes, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 8);
	im.ph[1].filesz = im.notes_len;
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.entry, 0x100020);
	mem_destroy(m);
}
END_TEST

START_TEST(load_entry_outside_segments)
{
	/* An entry in RAM but in no loaded segment would start the vCPU in
	 * zeroed memory: refused. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	uint64_t entry = 0x800000; /* RAM, far above both segments */
	char err[256] = "";

	image_init(&im, true, false);
	im.notes_len = put_note(im.notes, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	im.ph[1].filesz = im.notes_len;
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), -ERANGE);
	ck_assert_ptr_nonnull(strstr(err, "entry 0x800000"));
	mem_destroy(m);
}
END_TEST

START_TEST(load_ignores_empty_segments)
{
	/* PT_LOAD with memsz 0 (and nonsense addresses) and other header types
	 * are skipped. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	image_init(&im, true, false);
	im.phnum = 5;
	im.ph[3] = (struct seg){ PT_LOAD, 0xffffffff, 0x10, 0, 0 };
	im.ph[4] = (struct seg){ PT_GNU_STACK, 0, 0, 0, 0x1000 };
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.lowest, SEG0_GPA);
	ck_assert_uint_eq(ki.highest, SEG1_GPA + SEG1_SZ);
	mem_destroy(m);
}
END_TEST

START_TEST(load_high_in_ram)
{
	/* A segment ending exactly at the end of RAM fits. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	image_init(&im, true, false);
	im.ph[2].paddr = RAM_SIZE - SEG1_SZ;
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.highest, RAM_SIZE);
	ck_assert_uint_eq(m->host[RAM_SIZE - 1], seg1_byte(SEG1_SZ - 1));
	mem_destroy(m);
}
END_TEST

START_TEST(load_reload_clears_bss)
{
	/* Loading twice (a reset) gives the same RAM, bss included. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	image_init(&im, true, true);
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	memset(m->host + SEG0_GPA, 0x77, SEG0_MEMSZ);
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(m->host[SEG0_GPA], seg0_byte(0));
	ck_assert_uint_eq(m->host[SEG0_GPA + SEG0_FILESZ], 0);
	ck_assert_uint_eq(m->host[SEG0_GPA + SEG0_MEMSZ - 1], 0);
	mem_destroy(m);
}
END_TEST

/* --- malformed headers ----------------------------------------------------------- */

START_TEST(err_truncated)
{
	struct image im;

	image_init(&im, true, false);
	expect_load_err_in(RAM_SIZE, &im, 0, -ENOEXEC, "empty file");
	expect_load_err_in(RAM_SIZE, &im, 3, -ENOEXEC, "3 bytes");
	expect_load_err_in(RAM_SIZE, &im, EI_NIDENT - 1, -ENOEXEC, "inside e_ident");
	expect_load_err_in(RAM_SIZE, &im, EI_NIDENT, -EINVAL, "ELF64 e_ident only");
	expect_load_err_in(RAM_SIZE, &im, sizeof(Elf64_Ehdr) - 1, -EINVAL, "ELF64 header cut");
	expect_load_err_in(RAM_SIZE, &im, sizeof(Elf64_Ehdr) + 10, -EINVAL, "in the phdrs");
	expect_load_err_in(RAM_SIZE, &im, NOTES_OFF + 8, -EINVAL, "in the notes");
	expect_load_err_in(RAM_SIZE, &im, SEG0_OFF + 1, -EINVAL, "in segment 0");
	expect_load_err_in(RAM_SIZE, &im, SEG1_OFF + SEG1_SZ - 1, -EINVAL, "last byte missing");

	image_init(&im, false, false);
	expect_load_err_in(RAM_SIZE, &im, sizeof(Elf32_Ehdr) - 1, -EINVAL, "ELF32 header cut");
	expect_load_err_in(RAM_SIZE, &im, sizeof(Elf32_Ehdr) + 40, -EINVAL, "ELF32 phdrs cut");
}
END_TEST

START_TEST(err_bad_magic)
{
	struct image im;

	image_init(&im, true, false);
	im.magic[3] = 'G';
	expect_load_err(&im, -ENOEXEC, "magic ELG");
	image_init(&im, true, false);
	im.magic[0] = 'M';
	im.magic[1] = 'Z';
	expect_load_err(&im, -ENOEXEC, "PE/bzImage-like magic");
}
END_TEST

START_TEST(err_class)
{
	struct image im;

	image_init(&im, true, false);
	im.cls = ELFCLASSNONE;
	expect_load_err(&im, -ENOEXEC, "ELFCLASSNONE");
	image_init(&im, true, false);
	im.cls = 3;
	expect_load_err(&im, -ENOEXEC, "class 3");
	/* An ELF64 body labelled ELF32: machine is EM_X86_64 -> refused. */
	image_init(&im, true, false);
	im.cls = ELFCLASS32;
	expect_load_err(&im, -ENOEXEC, "ELF64 labelled ELF32");
}
END_TEST

START_TEST(err_big_endian)
{
	struct image im;

	image_init(&im, true, false);
	im.data = ELFDATA2MSB;
	expect_load_err(&im, -ENOEXEC, "big-endian ELF64");
	image_init(&im, false, false);
	im.data = ELFDATA2MSB;
	expect_load_err(&im, -ENOEXEC, "big-endian ELF32");
	image_init(&im, true, false);
	im.data = ELFDATANONE;
	expect_load_err(&im, -ENOEXEC, "ELFDATANONE");
}
END_TEST

START_TEST(err_machine)
{
	struct image im;

	image_init(&im, true, false);
	im.machine = EM_386;
	expect_load_err(&im, -ENOEXEC, "ELF64 for i386");
	image_init(&im, false, false);
	im.machine = EM_X86_64;
	expect_load_err(&im, -ENOEXEC, "ELF32 for x86-64");
	image_init(&im, true, false);
	im.machine = EM_AARCH64;
	expect_load_err(&im, -ENOEXEC, "aarch64");
}
END_TEST

START_TEST(err_type)
{
	struct image im;

	image_init(&im, true, false);
	im.type = ET_DYN;
	expect_load_err(&im, -ENOEXEC, "ET_DYN");
	image_init(&im, true, false);
	im.type = ET_REL;
	expect_load_err(&im, -ENOEXEC, "ET_REL");
	image_init(&im, false, false);
	im.type = ET_CORE;
	expect_load_err(&im, -ENOEXEC, "ET_CORE");
}
END_TEST

START_TEST(err_phdr_table)
{
	struct image im;

	image_init(&im, true, false);
	im.phoff = im.len;                      /* starts at the end of the file */
	expect_load_err(&im, -EINVAL, "phoff at end");
	image_init(&im, true, false);
	im.phoff = 0x100000;
	expect_load_err(&im, -EINVAL, "phoff past end");
	image_init(&im, true, false);
	im.phoff = UINT64_MAX - 8;              /* phoff + size wraps */
	expect_load_err(&im, -EINVAL, "phoff wraps");
	image_init(&im, true, false);
	im.phoff = im.len - 2 * sizeof(Elf64_Phdr); /* the third header is cut */
	expect_load_err(&im, -EINVAL, "table over the end");
	image_init(&im, true, false);
	im.phnum = 0;
	expect_load_err(&im, -EINVAL, "no program headers");
	image_init(&im, true, false);
	im.phnum = 0xffff;
	im.phentsize = 0xffff;                  /* 4 GiB of headers */
	expect_load_err(&im, -EINVAL, "phnum * phentsize huge");
	/* 129 headers, all inside the file: refused for their number alone
	 * (128 accepted, as a control). */
	image_init(&im, true, false);
	im.phoff = im.len;
	im.phnum = 128;
	im.len += 128 * sizeof(Elf64_Phdr);
	{
		struct guest_mem *m = make_mem(RAM_SIZE);
		struct kernel_info ki;
		char err[256];

		ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
		mem_destroy(m);
	}
	im.phnum = 129;
	im.len += sizeof(Elf64_Phdr);
	expect_load_err(&im, -EINVAL, "too many program headers");
	image_init(&im, true, false);
	im.phentsize = sizeof(Elf64_Phdr) - 1;
	expect_load_err(&im, -EINVAL, "phentsize too small");
	image_init(&im, false, false);
	im.phentsize = sizeof(Elf32_Phdr) - 4;
	expect_load_err(&im, -EINVAL, "ELF32 phentsize too small");
	image_init(&im, false, false);
	im.phoff = 0xfffffff0;
	expect_load_err(&im, -EINVAL, "ELF32 phoff past end");
}
END_TEST

START_TEST(err_segment_file_range)
{
	struct image im;

	image_init(&im, true, false);
	im.ph[2].filesz = SEG1_SZ + 1;          /* one byte past the end of file */
	im.ph[2].memsz = SEG1_SZ + 1;
	expect_load_err(&im, -EINVAL, "offset + filesz past end");
	image_init(&im, true, false);
	im.ph[2].offset = im.len + 0x1000;
	expect_load_err(&im, -EINVAL, "offset past end");
	image_init(&im, true, false);
	im.ph[0].offset = UINT64_MAX - 0x10;    /* offset + filesz wraps */
	expect_load_err(&im, -EINVAL, "offset + filesz wraps");
	image_init(&im, true, false);
	im.ph[2].memsz = SEG1_SZ - 0x80;        /* the file part is inside the file */
	expect_load_err(&im, -EINVAL, "filesz > memsz");
	image_init(&im, false, false);
	im.ph[2].memsz = 1;
	expect_load_err(&im, -EINVAL, "ELF32 filesz > memsz");
	image_init(&im, false, false);
	im.ph[2].offset = 0xffffff00;
	expect_load_err(&im, -EINVAL, "ELF32 offset past end");
}
END_TEST

START_TEST(err_segment_placement)
{
	struct image im;

	image_init(&im, true, false);
	im.ph[0].paddr = 0xf0000;               /* below 1 MiB */
	expect_load_err(&im, -ERANGE, "below 1 MiB");
	image_init(&im, true, false);
	im.ph[0].paddr = 0;
	expect_load_err(&im, -ERANGE, "at 0");
	image_init(&im, true, false);
	im.ph[0].paddr = BOOT_KERNEL_MIN_GPA - 1;
	expect_load_err(&im, -ERANGE, "one byte below 1 MiB");
	image_init(&im, true, false);
	im.ph[2].paddr = RAM_SIZE - SEG1_SZ + 1; /* one byte past the end of RAM */
	expect_load_err(&im, -ERANGE, "past end of RAM");
	image_init(&im, true, false);
	im.ph[2].paddr = RAM_SIZE;
	expect_load_err(&im, -ERANGE, "at end of RAM");
	image_init(&im, true, false);
	im.ph[2].paddr = 2 * GiB;
	expect_load_err(&im, -ERANGE, "far past RAM");
	image_init(&im, true, false);
	im.ph[0].memsz = 0xffffffffffff0000ULL; /* huge bss */
	expect_load_err(&im, -ERANGE, "huge memsz");
	image_init(&im, true, false);
	im.ph[0].paddr = 0xfffffffffffff000ULL; /* paddr + memsz wraps */
	expect_load_err(&im, -ERANGE, "paddr + memsz wraps");
	image_init(&im, true, false);
	im.ph[0].paddr = 0x200000;
	im.ph[0].memsz = UINT64_MAX - 0x100000; /* paddr + memsz wraps to below paddr */
	expect_load_err(&im, -ERANGE, "memsz wraps to low RAM");
	image_init(&im, false, false);
	im.ph[0].memsz = 0xffffffff;
	expect_load_err(&im, -ERANGE, "ELF32 memsz 4 GiB");
}
END_TEST

START_TEST(err_segment_in_hole)
{
	/* A 4 GiB guest: a segment across the 3 GiB MMIO hole start, one inside it. */
	struct image im;

	image_init(&im, true, false);
	im.ph[2].paddr = 3 * GiB - SEG1_SZ / 2;
	expect_load_err_in(4 * GiB, &im, im.len, -ERANGE, "straddles the hole");
	image_init(&im, true, false);
	im.ph[2].paddr = 0xfec00000ULL;
	expect_load_err_in(4 * GiB, &im, im.len, -ERANGE, "inside the hole");
}
END_TEST

START_TEST(err_no_loadable_segment)
{
	struct image im;

	image_init(&im, true, false);
	im.ph[0].type = PT_NULL;
	im.ph[2].memsz = 0;
	im.ph[2].filesz = 0;
	expect_load_err(&im, -EINVAL, "no PT_LOAD with memory");
}
END_TEST

START_TEST(err_bad_segment_after_good)
{
	/* The first segment is fine, the last is not: the loader must refuse
	 * before copying anything (expect_load_err checks RAM is untouched). */
	struct image im;

	image_init(&im, true, false);
	im.ph[2].paddr = RAM_SIZE;
	expect_load_err(&im, -ERANGE, "bad last segment");
}
END_TEST

static Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *good = tcase_create("good");
	TCase *bad = tcase_create("malformed");

	tcase_add_test(good, load_elf64);
	tcase_add_test(good, load_elf32);
	tcase_add_test(good, load_elf32_with_skiff_note);
	tcase_add_test(good, load_highest_includes_bss);
	tcase_add_test(good, load_entry_note_8_bytes);
	tcase_add_test(good, load_entry_outside_segments);
	tcase_add_test(good, load_ignores_empty_segments);
	tcase_add_test(good, load_high_in_ram);
	tcase_add_test(good, load_reload_clears_bss);
	suite_add_tcase(s, good);

	tcase_add_test(bad, err_truncated);
	tcase_add_test(bad, err_bad_magic);
	tcase_add_test(bad, err_class);
	tcase_add_test(bad, err_big_endian);
	tcase_add_test(bad, err_machine);
	tcase_add_test(bad, err_type);
	tcase_add_test(bad, err_phdr_table);
	tcase_add_test(bad, err_segment_file_range);
	tcase_add_test(bad, err_segment_placement);
	tcase_add_test(bad, err_segment_in_hole);
	tcase_add_test(bad, err_no_loadable_segment);
	tcase_add_test(bad, err_bad_segment_after_good);
	suite_add_tcase(s, bad);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(loader_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

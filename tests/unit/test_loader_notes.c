/*
 * Unit tests for src/vmm/loader.c, part 2: ELF notes (the Xen PVH entry and
 * the Skiff test-guest note) from hostile images, and a header fuzzer.
 */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "elf_image.h"

/* --- notes -------------------------------------------------------------------------- */

START_TEST(err_no_pvh_note)
{
	struct image im;

	image_init(&im, true, true);
	set_notes(&im, false, true);
	expect_load_err(&im, -ENOEXEC, "no Xen note");
	image_init(&im, true, false);
	im.ph[1].type = PT_NULL;                /* no note segment at all */
	expect_load_err(&im, -ENOEXEC, "no PT_NOTE");
	image_init(&im, false, false);
	set_notes(&im, false, false);
	expect_load_err(&im, -ENOEXEC, "ELF32 without a Xen note");
}
END_TEST

START_TEST(err_pvh_note_wrong_identity)
{
	uint32_t entry = ENTRY;
	struct image im;

	/* Xen note of another type. */
	image_init(&im, true, false);
	im.notes_len = put_note(im.notes, "Xen", 4, 17, &entry, 4);
	im.ph[1].filesz = im.notes_len;
	expect_load_err(&im, -ENOEXEC, "Xen note type 17");
	/* Entry type under another name. */
	image_init(&im, true, false);
	im.notes_len = put_note(im.notes, "Xem", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	im.ph[1].filesz = im.notes_len;
	expect_load_err(&im, -ENOEXEC, "name Xem");
	/* "Xen" without its NUL (namesz 3). */
	image_init(&im, true, false);
	im.notes_len = put_note(im.notes, "Xen", 3, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	im.ph[1].filesz = im.notes_len;
	expect_load_err(&im, -ENOEXEC, "namesz 3");
}
END_TEST

START_TEST(err_pvh_note_descsz)
{
	uint8_t desc[16];
	uint32_t bad[] = { 0, 2, 3, 5, 12, 16 };
	unsigned int i;

	memset(desc, 0, sizeof(desc));
	memcpy(desc, &(uint32_t){ ENTRY }, 4);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct image im;

		image_init(&im, true, false);
		im.notes_len = put_note(im.notes, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, desc, bad[i]);
		im.ph[1].filesz = im.notes_len;
		expect_load_err(&im, -EINVAL, "entry descsz");
	}
}
END_TEST

START_TEST(err_note_sizes)
{
	struct image im;
	uint32_t v;

	/* namesz far past the segment. */
	image_init(&im, true, false);
	v = 0xffffffff;
	memcpy(im.notes, &v, 4);
	expect_load_err(&im, -EINVAL, "namesz 0xffffffff");
	/* descsz far past the segment. */
	image_init(&im, true, false);
	v = 0xfffffff0;
	memcpy(im.notes + 4, &v, 4);
	expect_load_err(&im, -EINVAL, "descsz 0xfffffff0");
	/* descsz one aligned word past the segment's end. */
	image_init(&im, true, false);
	v = 24;
	memcpy(im.notes + 4, &v, 4);
	im.ph[1].filesz = 12 + 4 + 20;
	expect_load_err(&im, -EINVAL, "descsz past segment");
	/* The note segment points outside the file. */
	image_init(&im, true, false);
	im.ph[1].offset = im.len - 8;
	expect_load_err(&im, -EINVAL, "notes past end of file");
	image_init(&im, true, false);
	im.ph[1].offset = UINT64_MAX - 4;
	expect_load_err(&im, -EINVAL, "note offset wraps");
	image_init(&im, true, false);
	im.ph[1].filesz = UINT64_MAX;
	expect_load_err(&im, -EINVAL, "note filesz huge");
}
END_TEST

/* The note segment is the end of the file and its last note's descriptor
 * claims more bytes than are left: no byte past the file may be read. */
START_TEST(err_note_at_end_of_file)
{
	struct image im;
	uint64_t entry = ENTRY;
	unsigned int cut;

	for (cut = 1; cut <= 8; cut++) {
		image_init(&im, cut % 2, false);
		im.notes_len = put_note(im.notes, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 8);
		im.notes_off = im.len;
		im.ph[1].offset = im.len;
		im.ph[1].filesz = im.notes_len - cut;
		im.len += im.notes_len - cut;
		expect_load_err(&im, -EINVAL, "note descriptor past the end of the file");
	}
}
END_TEST

START_TEST(note_trailing_bytes_ignored)
{
	/* Fewer than 12 bytes left after the last note: not a note, ignored. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct image im;
	struct kernel_info ki;
	char err[256];

	image_init(&im, true, true);
	im.ph[1].filesz = im.notes_len + 8;
	ck_assert_int_eq(load(m, &im, &ki, err, sizeof(err)), 0);
	ck_assert_uint_eq(ki.entry, ENTRY);
	ck_assert(ki.skiff_guest);
	mem_destroy(m);
}
END_TEST

START_TEST(err_entry_outside_ram)
{
	static const uint32_t bad[] = { 0, 0x1000, 0x9ffff, 0xfffff, RAM_SIZE, 0x80000000, 0xffffffff };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct image im;

		image_init(&im, true, false);
		im.notes_len = put_note(im.notes, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &bad[i], 4);
		im.ph[1].filesz = im.notes_len;
		expect_load_err(&im, -ERANGE, "entry outside RAM");
	}
}
END_TEST

/* Flips random header, note and table bytes of good images: the loader must
 * neither crash nor read outside the image, and must explain every refusal. */
START_TEST(fuzz_headers)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	uint64_t seed = 0x243f6a8885a308d3ULL;
	unsigned int iter, accepted = 0;

	for (iter = 0; iter < 4000; iter++) {
		struct image im;
		struct kernel_info ki;
		char err[512];
		unsigned int flips, k;
		size_t len;
		int ret;

		image_init(&im, iter % 2 == 0, iter % 3 == 0);
		image_build(&im);
		seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
		flips = 1 + (unsigned int)(seed % 4);
		for (k = 0; k < flips; k++) {
			seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
			/* Mostly the ELF header and program headers, sometimes notes. */
			if (seed & 0x100)
				im.buf[(seed >> 16) % 0x120] ^= (uint8_t)(1u << ((seed >> 8) % 8));
			else
				im.buf[NOTES_OFF + (seed >> 16) % 0x60] = (uint8_t)(seed >> 40);
		}
		len = im.len;
		if (iter % 7 == 0)
			len = (size_t)((seed >> 24) % (im.len + 1));
		ret = load_bytes(m, im.buf, len, &ki, err, sizeof(err));
		if (ret == 0) {
			accepted++;
			ck_assert_uint_ge(ki.lowest, BOOT_KERNEL_MIN_GPA);
			ck_assert_uint_le(ki.highest, RAM_SIZE);
			ck_assert_uint_lt(ki.lowest, ki.highest);
			ck_assert(mem_is_ram(m, ki.entry, 1) && ki.entry >= BOOT_KERNEL_MIN_GPA);
			continue;
		}
		ck_assert_msg(ret == -ENOEXEC || ret == -EINVAL || ret == -ERANGE,
			      "iteration %u: unexpected %d", iter, ret);
		ck_assert_msg(err[0] != '\0', "iteration %u: %d without a reason", iter, ret);
	}
	/* Some mutations hit fields the loader ignores: not everything fails. */
	ck_assert_uint_gt(accepted, 0);
	mem_destroy(m);
}
END_TEST

static Suite *loader_notes_suite(void)
{
	Suite *s = suite_create("loader_notes");
	TCase *notes = tcase_create("notes");
	TCase *fuzz = tcase_create("fuzz");

	tcase_add_test(notes, err_no_pvh_note);
	tcase_add_test(notes, err_pvh_note_wrong_identity);
	tcase_add_test(notes, err_pvh_note_descsz);
	tcase_add_test(notes, err_note_sizes);
	tcase_add_test(notes, err_note_at_end_of_file);
	tcase_add_test(notes, note_trailing_bytes_ignored);
	tcase_add_test(notes, err_entry_outside_ram);
	suite_add_tcase(s, notes);

	tcase_add_test(fuzz, fuzz_headers);
	tcase_set_timeout(fuzz, 60);
	suite_add_tcase(s, fuzz);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(loader_notes_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

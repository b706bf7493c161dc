/*
 * Unit tests for src/vmm/loader.c, part 3: initrd placement and the PVH boot
 * information (hvm_start_info, memory map, command line, module list).
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "mem.h"

#define RAM_SIZE (64 * MiB)
#define ENTRY 0x100010u
#define SEG0_GPA 0x100000ULL

static struct guest_mem *make_mem(uint64_t size)
{
	struct guest_mem *m = NULL;

	ck_assert_int_eq(mem_create(size, &m), 0);
	return m;
}

/* --- initrd placement ------------------------------------------------------------- */

START_TEST(initrd_fits)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct kernel_info ki = { .entry = ENTRY, .lowest = SEG0_GPA, .highest = 0x200100 };
	static uint8_t rd[10000];
	uint64_t gpa = 0;
	char err[256] = "";
	size_t i;

	for (i = 0; i < sizeof(rd); i++)
		rd[i] = (uint8_t)(i * 13);
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, sizeof(rd), &gpa, err, sizeof(err)), 0);
	ck_assert_uint_eq(gpa % MEM_PAGE_SIZE, 0);
	ck_assert_uint_le(gpa + sizeof(rd), RAM_SIZE);
	ck_assert_uint_ge(gpa, ALIGN_UP(ki.highest, MEM_PAGE_SIZE));
	ck_assert_uint_eq(gpa, ALIGN_DOWN(RAM_SIZE - sizeof(rd), MEM_PAGE_SIZE)); /* at the top */
	ck_assert_int_eq(memcmp(m->host + gpa, rd, sizeof(rd)), 0);
	mem_destroy(m);
}
END_TEST

START_TEST(initrd_exact_fit_and_one_over)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct kernel_info ki = { .entry = ENTRY, .lowest = SEG0_GPA, .highest = 0x200100 };
	const size_t room = RAM_SIZE - 0x201000;
	uint8_t *rd = calloc(1, room + 1);
	uint64_t gpa = 0x1234;
	char err[256] = "";

	ck_assert_ptr_nonnull(rd);
	rd[0] = 0x11;
	rd[room - 1] = 0x22;
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, room, &gpa, err, sizeof(err)), 0);
	ck_assert_uint_eq(gpa, 0x201000);
	ck_assert_uint_eq(m->host[0x201000], 0x11);
	ck_assert_uint_eq(m->host[RAM_SIZE - 1], 0x22);

	gpa = 0x1234;
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, room + 1, &gpa, err, sizeof(err)), -ENOSPC);
	ck_assert_uint_eq(gpa, 0x1234);
	ck_assert_str_ne(err, "");
	free(rd);
	mem_destroy(m);
}
END_TEST

START_TEST(initrd_4g_below_hole)
{
	struct guest_mem *m = make_mem(4 * GiB);
	struct kernel_info ki = { .entry = ENTRY, .lowest = SEG0_GPA, .highest = 0x400000 };
	static uint8_t rd[3 * 4096 + 5];
	uint64_t gpa = 0;
	char err[256] = "";

	memset(rd, 0x3c, sizeof(rd));
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, sizeof(rd), &gpa, err, sizeof(err)), 0);
	ck_assert_uint_eq(gpa, 3 * GiB - 4 * 4096);
	ck_assert_uint_eq(m->host[gpa + sizeof(rd) - 1], 0x3c);
	mem_destroy(m);
}
END_TEST

START_TEST(initrd_too_large)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct kernel_info ki = { .entry = ENTRY, .lowest = SEG0_GPA, .highest = 0x200100 };
	static uint8_t rd[16];
	uint64_t gpa = 0x1234;
	char err[256];

	/* The lengths are checked before a byte is read from rd. */
	err[0] = '\0';
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, RAM_SIZE + 1, &gpa, err, sizeof(err)), -ENOSPC);
	ck_assert_str_ne(err, "");
	err[0] = '\0';
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, SIZE_MAX, &gpa, err, sizeof(err)), -ENOSPC);
	ck_assert_str_ne(err, "");
	err[0] = '\0';
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, RAM_SIZE - 0x100000, &gpa, err, sizeof(err)),
			 -ENOSPC);
	ck_assert_str_ne(err, "");
	/* A kernel that reaches the top of RAM leaves no room at all. */
	ki.highest = RAM_SIZE;
	err[0] = '\0';
	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, 1, &gpa, err, sizeof(err)), -ENOSPC);
	ck_assert_str_ne(err, "");
	ck_assert_uint_eq(gpa, 0x1234);
	mem_destroy(m);
}
END_TEST

START_TEST(initrd_empty)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct kernel_info ki = { .entry = ENTRY, .lowest = SEG0_GPA, .highest = 0x200100 };
	uint8_t rd[1] = { 0 };
	uint64_t gpa = 0x1234;
	char err[256] = "";

	ck_assert_int_eq(loader_place_initrd(m, &ki, rd, 0, &gpa, err, sizeof(err)), -EINVAL);
	ck_assert_str_ne(err, "");
	ck_assert_uint_eq(gpa, 0x1234);
	mem_destroy(m);
}
END_TEST

/* --- PVH boot information ----------------------------------------------------------- */

static void read_start_info(struct guest_mem *m, struct hvm_start_info *si)
{
	ck_assert_int_eq(mem_read(m, BOOT_START_INFO_GPA, si, sizeof(*si)), 0);
	ck_assert_uint_eq(si->magic, HVM_START_MAGIC);
	ck_assert_uint_eq(si->version, 1);
	ck_assert_uint_eq(si->memmap_paddr, BOOT_MEMMAP_GPA);
	ck_assert_uint_eq(si->rsdp_paddr, 0);
}

static void expect_map_entry(struct guest_mem *m, unsigned int i, uint64_t addr, uint64_t size)
{
	struct hvm_memmap_table_entry e;

	ck_assert_int_eq(mem_read(m, BOOT_MEMMAP_GPA + i * sizeof(e), &e, sizeof(e)), 0);
	ck_assert_msg(e.addr == addr && e.size == size && e.type == HVM_MEMMAP_RAM,
		      "memmap[%u] = {0x%llx, 0x%llx, %u}, want {0x%llx, 0x%llx, RAM}", i,
		      (unsigned long long)e.addr, (unsigned long long)e.size, e.type,
		      (unsigned long long)addr, (unsigned long long)size);
}

START_TEST(abi_layout)
{
	/* The structs are the guest ABI (Xen start_info.h): fixed sizes. */
	ck_assert_uint_eq(sizeof(struct hvm_start_info), 56);
	ck_assert_uint_eq(sizeof(struct hvm_modlist_entry), 32);
	ck_assert_uint_eq(sizeof(struct hvm_memmap_table_entry), 24);
	ck_assert_uint_eq(offsetof(struct hvm_start_info, memmap_paddr), 40);
	ck_assert_uint_eq(offsetof(struct hvm_start_info, memmap_entries), 48);
	/* The boot structures do not overlap each other. */
	ck_assert_uint_le(BOOT_START_INFO_GPA + sizeof(struct hvm_start_info), BOOT_MODLIST_GPA);
	ck_assert_uint_le(BOOT_MODLIST_GPA + sizeof(struct hvm_modlist_entry), BOOT_MEMMAP_GPA);
	ck_assert_uint_le(BOOT_MEMMAP_GPA + BOOT_MEMMAP_MAX * sizeof(struct hvm_memmap_table_entry),
			  BOOT_CMDLINE_GPA);
	ck_assert_uint_le(BOOT_CMDLINE_GPA + BOOT_CMDLINE_MAX, BOOT_LOW_RAM_END);
}
END_TEST

START_TEST(pvh_64m)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct hvm_start_info si;
	char err[256] = "", cmd[64];

	ck_assert_int_eq(loader_pvh_setup(m, "console=ttyS0 panic=-1", 0, 0, err, sizeof(err)), 0);
	read_start_info(m, &si);
	ck_assert_uint_eq(si.flags, 0);
	ck_assert_uint_eq(si.nr_modules, 0);
	ck_assert_uint_eq(si.modlist_paddr, 0);
	ck_assert_uint_eq(si.cmdline_paddr, BOOT_CMDLINE_GPA);
	ck_assert_uint_eq(si.memmap_entries, 2);
	expect_map_entry(m, 0, 0, 0xA0000);
	expect_map_entry(m, 1, 1 * MiB, RAM_SIZE - 1 * MiB);
	ck_assert_int_eq(mem_read(m, BOOT_CMDLINE_GPA, cmd, sizeof(cmd)), 0);
	ck_assert_str_eq(cmd, "console=ttyS0 panic=-1");
	mem_destroy(m);
}
END_TEST

START_TEST(pvh_marks_dirty)
{
	/* Boot data is written on the guest's behalf: migration must see it. */
	struct guest_mem *m = make_mem(RAM_SIZE);
	char err[256] = "";

	ck_assert_int_eq(loader_pvh_setup(m, "x", 0x3000000, 4096, err, sizeof(err)), 0);
	ck_assert((m->dirty[0] >> (BOOT_START_INFO_GPA / MEM_PAGE_SIZE)) & 1);
	ck_assert((m->dirty[0] >> (BOOT_CMDLINE_GPA / MEM_PAGE_SIZE)) & 1);
	mem_destroy(m);
}
END_TEST

START_TEST(pvh_null_cmdline)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct hvm_start_info si;
	char err[256] = "";

	memset(m->host + BOOT_CMDLINE_GPA, 'z', 16);
	ck_assert_int_eq(loader_pvh_setup(m, NULL, 0, 0, err, sizeof(err)), 0);
	read_start_info(m, &si);
	ck_assert_uint_eq(si.cmdline_paddr, BOOT_CMDLINE_GPA);
	ck_assert_uint_eq(m->host[BOOT_CMDLINE_GPA], 0);
	mem_destroy(m);
}
END_TEST

START_TEST(pvh_4g)
{
	struct guest_mem *m = make_mem(4 * GiB);
	struct hvm_start_info si;
	char err[256] = "";

	ck_assert_int_eq(loader_pvh_setup(m, "", 0, 0, err, sizeof(err)), 0);
	read_start_info(m, &si);
	ck_assert_uint_eq(si.memmap_entries, 3);
	expect_map_entry(m, 0, 0, 0xA0000);
	expect_map_entry(m, 1, 1 * MiB, 3 * GiB - 1 * MiB);
	expect_map_entry(m, 2, 4 * GiB, 1 * GiB);
	mem_destroy(m);
}
END_TEST

START_TEST(pvh_minimum_ram)
{
	struct guest_mem *m = make_mem(MEM_MIN_SIZE);
	struct hvm_start_info si;
	char err[256] = "";

	ck_assert_int_eq(loader_pvh_setup(m, "quiet", 0, 0, err, sizeof(err)), 0);
	read_start_info(m, &si);
	ck_assert_uint_eq(si.memmap_entries, 2);
	expect_map_entry(m, 0, 0, 0xA0000);
	expect_map_entry(m, 1, 1 * MiB, 1 * MiB);
	mem_destroy(m);
}
END_TEST

START_TEST(pvh_initrd_module)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	struct hvm_start_info si;
	struct hvm_modlist_entry mod;
	char err[256] = "";

	ck_assert_int_eq(loader_pvh_setup(m, "root=/dev/ram0", 0x3f00000, 0xfedc, err, sizeof(err)), 0);
	read_start_info(m, &si);
	ck_assert_uint_eq(si.nr_modules, 1);
	ck_assert_uint_eq(si.modlist_paddr, BOOT_MODLIST_GPA);
	ck_assert_int_eq(mem_read(m, BOOT_MODLIST_GPA, &mod, sizeof(mod)), 0);
	ck_assert_uint_eq(mod.paddr, 0x3f00000);
	ck_assert_uint_eq(mod.size, 0xfedc);
	ck_assert_uint_eq(mod.cmdline_paddr, 0);
	ck_assert_uint_eq(mod.reserved, 0);
	mem_destroy(m);
}
END_TEST

START_TEST(pvh_cmdline_limits)
{
	struct guest_mem *m = make_mem(RAM_SIZE);
	static char line[5001];
	struct hvm_start_info si;
	char err[256];

	/* 4095 bytes + NUL: the largest accepted. */
	memset(line, 'c', BOOT_CMDLINE_MAX - 1);
	line[BOOT_CMDLINE_MAX - 1] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(loader_pvh_setup(m, line, 0, 0, err, sizeof(err)), 0);
	ck_assert_uint_eq(m->host[BOOT_CMDLINE_GPA + BOOT_CMDLINE_MAX - 2], 'c');
	ck_assert_uint_eq(m->host[BOOT_CMDLINE_GPA + BOOT_CMDLINE_MAX - 1], 0);
	mem_destroy(m);

	m = make_mem(RAM_SIZE);
	memset(line, 'c', BOOT_CMDLINE_MAX);
	line[BOOT_CMDLINE_MAX] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(loader_pvh_setup(m, line, 0, 0, err, sizeof(err)), -E2BIG);
	ck_assert_str_ne(err, "");

	memset(line, 'c', 5000);
	line[5000] = '\0';
	err[0] = '\0';
	ck_assert_int_eq(loader_pvh_setup(m, line, 0, 0, err, sizeof(err)), -E2BIG);
	ck_assert_str_ne(err, "");
	/* Nothing was written: no start info for the guest to trust. */
	ck_assert_int_eq(mem_read(m, BOOT_START_INFO_GPA, &si, sizeof(si)), 0);
	ck_assert_uint_eq(si.magic, 0);
	ck_assert_uint_eq(m->host[BOOT_CMDLINE_GPA], 0);
	mem_destroy(m);
}
END_TEST

static Suite *loader_boot_suite(void)
{
	Suite *s = suite_create("loader_boot");
	TCase *initrd = tcase_create("initrd");
	TCase *pvh = tcase_create("pvh");

	tcase_add_test(initrd, initrd_fits);
	tcase_add_test(initrd, initrd_exact_fit_and_one_over);
	tcase_add_test(initrd, initrd_4g_below_hole);
	tcase_add_test(initrd, initrd_too_large);
	tcase_add_test(initrd, initrd_empty);
	suite_add_tcase(s, initrd);

	tcase_add_test(pvh, abi_layout);
	tcase_add_test(pvh, pvh_64m);
	tcase_add_test(pvh, pvh_marks_dirty);
	tcase_add_test(pvh, pvh_null_cmdline);
	tcase_add_test(pvh, pvh_4g);
	tcase_add_test(pvh, pvh_minimum_ram);
	tcase_add_test(pvh, pvh_initrd_module);
	tcase_add_test(pvh, pvh_cmdline_limits);
	suite_add_tcase(s, pvh);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(loader_boot_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

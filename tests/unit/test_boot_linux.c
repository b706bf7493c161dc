/*
 * Unit tests for src/vmm/boot_linux.c (bzImage setup header, protocol
 * dispatch, zero page) and src/vmm/acpi.c (table layout and checksums).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "boot.h"
#include "platform.h"

#define RAM (256 * MiB)
#define PM_LEN 0x3000      /* protected-mode part of the fake bzImage */
#define SETUP_SECTS 3
#define PM_OFF ((SETUP_SECTS + 1) * 512)
#define PREF 0x1000000ULL

static uint8_t img[PM_OFF + PM_LEN];

static void w16(size_t off, uint16_t v) { memcpy(img + off, &v, 2); }
static void w32(size_t off, uint32_t v) { memcpy(img + off, &v, 4); }
static void w64(size_t off, uint64_t v) { memcpy(img + off, &v, 8); }
static uint32_t r32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t r64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A minimal bzImage that passes every check: protocol 2.15, 64-bit entry. */
static void make_bzimage(void)
{
	size_t i;

	memset(img, 0, sizeof(img));
	img[BP_SETUP_SECTS] = SETUP_SECTS;
	w32(BP_SYSSIZE, PM_LEN / 16);
	w16(BP_BOOT_FLAG, 0xAA55);
	img[BP_JUMP] = 0xeb;
	img[BP_JUMP + 1] = 0x6a;           /* header ends at 0x26c */
	w32(BP_HEADER, BOOT_HDRS_MAGIC);
	w16(BP_VERSION, 0x020f);
	img[BP_LOADFLAGS] = BOOT_LOADED_HIGH;
	w32(BP_INITRD_ADDR_MAX, 0x7fffffff);
	w32(BP_KERNEL_ALIGNMENT, 0x200000);
	img[BP_RELOCATABLE] = 1;
	w16(BP_XLOADFLAGS, BOOT_XLF_KERNEL_64 | BOOT_XLF_CAN_BE_LOADED_ABOVE_4G);
	w32(BP_CMDLINE_SIZE, 2047);
	w64(BP_PREF_ADDRESS, PREF);
	w32(BP_INIT_SIZE, 0x800000);
	for (i = 0; i < PM_LEN; i++)
		img[PM_OFF + i] = (uint8_t)(i * 7 + 1);
}

static struct guest_mem *ram(void)
{
	struct guest_mem *m;

	ck_assert_int_eq(mem_create(RAM, &m), 0);
	return m;
}

static int load(struct guest_mem *m, size_t len, struct kernel_info *ki, struct boot_image *bi,
		char *err)
{
	return boot_load_kernel(m, img, len, ki, bi, err, 256);
}

START_TEST(bzimage_good)
{
	struct guest_mem *m = ram();
	struct kernel_info ki;
	struct boot_image bi;
	char err[256];
	uint8_t *zp;

	make_bzimage();
	ck_assert_int_eq(load(m, sizeof(img), &ki, &bi, err), 0);
	ck_assert_int_eq(bi.proto, BOOT_PROTO_LINUX64);
	ck_assert(bi.is_linux);
	ck_assert_uint_eq(ki.entry, PREF + 0x200);
	ck_assert_mem_eq(m->host + PREF, img + PM_OFF, PM_LEN);
	ck_assert_int_eq(boot_setup(m, &bi, "console=ttyS0", 0x8000000, 4096, 0xE0000, err, 256), 0);
	zp = m->host + BOOT_ZERO_PAGE_GPA;
	ck_assert_uint_eq(r32(zp + BP_HEADER), BOOT_HDRS_MAGIC);
	ck_assert_uint_eq(zp[BP_TYPE_OF_LOADER], 0xff);
	ck_assert_uint_eq(r32(zp + BP_CMD_LINE_PTR), BOOT_CMDLINE_GPA);
	ck_assert_str_eq((char *)m->host + BOOT_CMDLINE_GPA, "console=ttyS0");
	ck_assert_uint_eq(r32(zp + BP_RAMDISK_IMAGE), 0x8000000);
	ck_assert_uint_eq(r32(zp + BP_RAMDISK_SIZE), 4096);
	ck_assert_uint_eq(r64(zp + BP_ACPI_RSDP_ADDR), 0xE0000);
	/* e820: low RAM, ACPI area, RAM from 1 MiB, ECAM. */
	ck_assert_uint_eq(zp[BP_E820_ENTRIES], 4);
	ck_assert_uint_eq(r64(zp + BP_E820_TABLE + 2 * 20), 0x100000);
	ck_assert_uint_eq(r64(zp + BP_E820_TABLE + 2 * 20 + 8), RAM - 0x100000);
	/* The reset vector stub: mov $0xfe,%al; out %al,$0x64. */
	ck_assert_uint_eq(m->host[BOOT_RESET_VECTOR_GPA], 0xb0);
	ck_assert_uint_eq(m->host[BOOT_RESET_VECTOR_GPA + 3], 0x64);
	/* Page tables: PML4[0] → PDPT, 2 MiB identity pages. */
	ck_assert_uint_eq(r64(m->host + BOOT_PML4_GPA) & ~0xfffULL, BOOT_PDPT_GPA);
	ck_assert_uint_eq(r64(m->host + BOOT_PD_GPA + 8 * 8), (8 * 2 * MiB) | 0x83);
	mem_destroy(m);
}
END_TEST

/* The longest setup header accepted (ends at 0x280) is carried whole into
 * the zero page, and nothing next to it in struct boot_image is touched
 * (the copy once overran a 0x80-byte array; found by fuzz_loader). */
START_TEST(bzimage_longest_header)
{
	struct guest_mem *m = ram();
	struct kernel_info ki;
	struct boot_image bi;
	char err[256];

	make_bzimage();
	img[BP_JUMP + 1] = 0x7e;           /* header ends at 0x280 */
	img[0x27f] = 0x5a;
	ck_assert_int_eq(load(m, sizeof(img), &ki, &bi, err), 0);
	ck_assert_uint_eq(bi.setup_hdr_len, 0x280 - BP_HDR);
	ck_assert_uint_eq(bi.cmdline_size, 2047);
	ck_assert_int_eq(boot_setup(m, &bi, "console=ttyS0", 0, 0, 0, err, 256), 0);
	ck_assert_uint_eq(m->host[BOOT_ZERO_PAGE_GPA + 0x27f], 0x5a);
	mem_destroy(m);
}
END_TEST

static void expect_err(size_t len, int want, const char *needle)
{
	struct guest_mem *m = ram();
	struct kernel_info ki;
	struct boot_image bi;
	char err[256] = "";

	ck_assert_int_eq(load(m, len, &ki, &bi, err), want);
	ck_assert_msg(strstr(err, needle), "error '%s' lacks '%s'", err, needle);
	mem_destroy(m);
}

START_TEST(bzimage_truncated)
{
	struct guest_mem *m;
	struct kernel_info ki;
	struct boot_image bi;
	char err[256];
	uint8_t *p;

	make_bzimage();
	expect_err(sizeof(img) - 64, -EINVAL, "truncated");
	expect_err(0x240, -EINVAL, "truncated");
	/* An image that ends right after the "HdrS" magic, in a buffer of
	 * exactly that size: nothing past it may be read (the sanitizer build
	 * sees it; fuzz_loader found the version read first). */
	m = ram();
	p = malloc(0x206);
	ck_assert_ptr_nonnull(p);
	memcpy(p, img, 0x206);
	ck_assert_int_eq(boot_load_kernel(m, p, 0x206, &ki, &bi, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "truncated"), "error '%s'", err);
	free(p);
	mem_destroy(m);
}
END_TEST

START_TEST(bzimage_old_protocol)
{
	make_bzimage();
	w16(BP_VERSION, 0x020b);
	expect_err(sizeof(img), -ENOEXEC, "older than 2.12");
}
END_TEST

START_TEST(bzimage_not_64bit)
{
	make_bzimage();
	w16(BP_XLOADFLAGS, 0);
	expect_err(sizeof(img), -ENOEXEC, "64-bit");
}
END_TEST

START_TEST(bzimage_too_big_for_ram)
{
	make_bzimage();
	w32(BP_INIT_SIZE, 0x40000000);
	expect_err(sizeof(img), -ERANGE, "raise --memory");
}
END_TEST

START_TEST(not_a_kernel)
{
	memset(img, 'x', sizeof(img));
	expect_err(sizeof(img), -ENOEXEC, "not a kernel");
}
END_TEST

START_TEST(cmdline_too_long)
{
	struct guest_mem *m = ram();
	struct kernel_info ki;
	struct boot_image bi;
	char err[256], *cl = malloc(3000);

	make_bzimage();
	memset(cl, 'a', 2999);
	cl[2999] = 0;
	ck_assert_int_eq(load(m, sizeof(img), &ki, &bi, err), 0);
	ck_assert_int_eq(boot_setup(m, &bi, cl, 0, 0, 0, err, 256), -E2BIG);
	free(cl);
	mem_destroy(m);
}
END_TEST

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

START_TEST(acpi_tables)
{
	struct guest_mem *m = ram();
	uint64_t rsdp, xsdt;
	const uint8_t *p, *madt = NULL;
	unsigned int i, n, lapics = 0;

	ck_assert_int_eq(acpi_build(m, 4, &rsdp), 0);
	ck_assert_uint_eq(rsdp, BOOT_ACPI_GPA);
	p = m->host + rsdp;
	ck_assert_mem_eq(p, "RSD PTR ", 8);
	ck_assert_uint_eq(sum(p, 20), 0);
	ck_assert_uint_eq(sum(p, 36), 0);
	xsdt = r64(p + 24);
	p = m->host + xsdt;
	ck_assert_mem_eq(p, "XSDT", 4);
	ck_assert_uint_eq(sum(p, r32(p + 4)), 0);
	n = (r32(p + 4) - 36) / 8;
	ck_assert_uint_eq(n, 3);
	for (i = 0; i < n; i++) {
		const uint8_t *t = m->host + r64(p + 36 + i * 8);

		ck_assert_uint_eq(sum(t, r32(t + 4)), 0);
		if (!memcmp(t, "APIC", 4))
			madt = t;
		if (!memcmp(t, "FACP", 4)) {
			const uint8_t *d = m->host + r64(t + 140);

			ck_assert_mem_eq(d, "DSDT", 4);
			ck_assert_uint_eq(sum(d, r32(d + 4)), 0);
			ck_assert(r32(t + 112) & (1u << 20)); /* HW_REDUCED_ACPI */
		}
		if (!memcmp(t, "MCFG", 4))
			ck_assert_uint_eq(r64(t + 44), PCI_ECAM_BASE);
	}
	ck_assert_ptr_nonnull(madt);
	for (p = madt + 44; p < madt + r32(madt + 4); p += p[1])
		lapics += p[0] == 0 && (r32(p + 4) & 1);
	ck_assert_uint_eq(lapics, 4);
	mem_destroy(m);
}
END_TEST

static Suite *boot_suite(void)
{
	Suite *s = suite_create("boot_linux");
	TCase *tc = tcase_create("bzimage");

	tcase_add_test(tc, bzimage_good);
	tcase_add_test(tc, bzimage_longest_header);
	tcase_add_test(tc, bzimage_truncated);
	tcase_add_test(tc, bzimage_old_protocol);
	tcase_add_test(tc, bzimage_not_64bit);
	tcase_add_test(tc, bzimage_too_big_for_ram);
	tcase_add_test(tc, not_a_kernel);
	tcase_add_test(tc, cmdline_too_long);
	tcase_add_test(tc, acpi_tables);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(boot_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Unit tests for src/vmm/util.c: parse_size, parse_uint, whole-file reads. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* A value parse_* never produces, to show that failures leave *out alone. */
#define POISON 0xdeadbeefcafef00dULL

static void expect_size(const char *s, uint64_t want)
{
	uint64_t v = POISON;
	int ret = parse_size(s, &v);

	ck_assert_msg(ret == 0, "parse_size(\"%s\") = %d, want 0", s, ret);
	ck_assert_msg(v == want, "parse_size(\"%s\") = %llu, want %llu", s,
		      (unsigned long long)v, (unsigned long long)want);
}

static void expect_size_err(const char *s, int want)
{
	uint64_t v = POISON;
	int ret = parse_size(s, &v);

	ck_assert_msg(ret == want, "parse_size(\"%s\") = %d, want %d", s, ret, want);
	ck_assert_msg(v == POISON, "parse_size(\"%s\") wrote %llu on failure", s,
		      (unsigned long long)v);
}

static void expect_uint(const char *s, uint64_t max, uint64_t want)
{
	uint64_t v = POISON;
	int ret = parse_uint(s, max, &v);

	ck_assert_msg(ret == 0, "parse_uint(\"%s\") = %d, want 0", s, ret);
	ck_assert_msg(v == want, "parse_uint(\"%s\") = %llu, want %llu", s,
		      (unsigned long long)v, (unsigned long long)want);
}

static void expect_uint_err(const char *s, uint64_t max, int want)
{
	uint64_t v = POISON;
	int ret = parse_uint(s, max, &v);

	ck_assert_msg(ret == want, "parse_uint(\"%s\", %llu) = %d, want %d", s,
		      (unsigned long long)max, ret, want);
	ck_assert_msg(v == POISON, "parse_uint(\"%s\") wrote %llu on failure", s,
		      (unsigned long long)v);
}

/* --- parse_size ------------------------------------------------------------ */

START_TEST(size_suffixes)
{
	expect_size("512M", 512ULL << 20);
	expect_size("4G", 4ULL << 30);
	expect_size("1T", 1ULL << 40);
	expect_size("16T", 16ULL << 40);
	expect_size("8K", 8192);
	expect_size("3k", 3072);
	expect_size("2m", 2ULL << 20);
}
END_TEST

START_TEST(size_bare_bytes)
{
	expect_size("65536", 65536);
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("1B", 1);
	expect_size("4096b", 4096);
}
END_TEST

START_TEST(size_long_suffixes)
{
	expect_size("2MiB", 2ULL << 20);
	expect_size("1KB", 1024);
	expect_size("1GB", 1ULL << 30);
	expect_size("3gib", 3ULL << 30);
	expect_size("5Kb", 5 * 1024);
}
END_TEST

START_TEST(size_largest)
{
	/* 2^64 - 1 bytes, and the largest whole number of TiB (2^24 - 1). */
	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("16777215T", 16777215ULL << 40);
}
END_TEST

START_TEST(size_malformed)
{
	static const char *const bad[] = {
		"", "M", "12Q", "-1", "1.5G", "+1", " 1", "1 ", "1M ", "1MM", "1MiBB",
		"1iB", "1BB", "0x10", "1KiX", "G1", "1e3",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		expect_size_err(bad[i], -EINVAL);
}
END_TEST

START_TEST(size_null)
{
	uint64_t v = POISON;

	ck_assert_int_eq(parse_size(NULL, &v), -EINVAL);
	ck_assert_uint_eq(v, POISON);
}
END_TEST

START_TEST(size_out_of_range)
{
	expect_size_err("99999999999999999999", -ERANGE);    /* > 2^64 - 1 */
	expect_size_err("18446744073709551616", -ERANGE);    /* exactly 2^64 */
	expect_size_err("20000000T", -ERANGE);               /* fits, times 2^40 does not */
	expect_size_err("16777216T", -ERANGE);               /* 2^24 TiB = 2^64 */
	expect_size_err("17179869184G", -ERANGE);            /* 2^34 GiB = 2^64 */
	/* More digits than the parser buffers. */
	expect_size_err("123456789012345678901234567890123456789", -ERANGE);
}
END_TEST

/* --- parse_uint ------------------------------------------------------------ */

START_TEST(uint_decimal)
{
	expect_uint("0", 100, 0);
	expect_uint("42", 100, 42);
	expect_uint("007", 100, 7);
	expect_uint("18446744073709551615", UINT64_MAX, UINT64_MAX);
}
END_TEST

START_TEST(uint_hex)
{
	expect_uint("0x10", UINT64_MAX, 16);
	expect_uint("0XfF", UINT64_MAX, 255);
	expect_uint("0xABCdef", UINT64_MAX, 0xabcdef);
	expect_uint("0x0", UINT64_MAX, 0);
	expect_uint("0xffffffffffffffff", UINT64_MAX, UINT64_MAX);
}
END_TEST

START_TEST(uint_max_bound)
{
	expect_uint("255", 255, 255);
	expect_uint("0xff", 255, 255);
	expect_uint_err("256", 255, -ERANGE);
	expect_uint_err("0x100", 255, -ERANGE);
	expect_uint_err("1", 0, -ERANGE);
	expect_uint("0", 0, 0);
}
END_TEST

START_TEST(uint_overflow)
{
	expect_uint_err("18446744073709551616", UINT64_MAX, -ERANGE);
	expect_uint_err("99999999999999999999", UINT64_MAX, -ERANGE);
	expect_uint_err("0x10000000000000000", UINT64_MAX, -ERANGE);
	expect_uint_err("0x1ffffffffffffffff", UINT64_MAX, -ERANGE);
}
END_TEST

START_TEST(uint_malformed)
{
	static const char *const bad[] = {
		"", "0x", "0X", "x10", "-1", "+1", " 1", "1 ", "12a", "0xg", "0x1g", "1.0", "abc",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		expect_uint_err(bad[i], UINT64_MAX, -EINVAL);
	{
		uint64_t v = POISON;

		ck_assert_int_eq(parse_uint(NULL, UINT64_MAX, &v), -EINVAL);
		ck_assert_uint_eq(v, POISON);
	}
}
END_TEST

/* --- read_file / map_file ----------------------------------------------------- */

/* A temporary file holding `len` bytes of a known pattern; its path in path. */
static void make_file(char *path, size_t pathlen, size_t len)
{
	const char *dir = getenv("TMPDIR");
	size_t i;
	int fd;

	snprintf(path, pathlen, "%s/skiff-test-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	for (i = 0; i < len; i++) {
		uint8_t b = (uint8_t)(i * 31 + 7);

		ck_assert_int_eq(write(fd, &b, 1), 1);
	}
	close(fd);
}

START_TEST(read_file_contents)
{
	char path[256];
	uint8_t *buf = NULL;
	size_t len = 0, i;

	make_file(path, sizeof(path), 5000);
	ck_assert_int_eq(read_file(path, 5000, &buf, &len), 0);
	ck_assert_uint_eq(len, 5000);
	for (i = 0; i < len; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)(i * 31 + 7));
	free(buf);
	/* One byte over the limit. */
	buf = (uint8_t *)(uintptr_t)0x1;
	ck_assert_int_eq(read_file(path, 4999, &buf, &len), -EFBIG);
	ck_assert_ptr_eq(buf, (uint8_t *)(uintptr_t)0x1);
	unlink(path);
}
END_TEST

START_TEST(read_file_empty)
{
	char path[256];
	uint8_t *buf = NULL;
	size_t len = 99;

	make_file(path, sizeof(path), 0);
	ck_assert_int_eq(read_file(path, 100, &buf, &len), 0);
	ck_assert_uint_eq(len, 0);
	ck_assert_ptr_nonnull(buf);
	free(buf);
	unlink(path);
}
END_TEST

START_TEST(read_file_errors)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	ck_assert_int_eq(read_file("/nonexistent/skiff/kernel", 100, &buf, &len), -ENOENT);
	ck_assert_int_eq(read_file("/", 100, &buf, &len), -EISDIR);
	ck_assert_int_eq(read_file("/dev/null", 100, &buf, &len), -EINVAL);
	ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(map_file_contents)
{
	char path[256];
	const uint8_t *buf = NULL;
	size_t len = 0, i;

	make_file(path, sizeof(path), 10000);
	ck_assert_int_eq(map_file(path, 10000, &buf, &len), 0);
	ck_assert_uint_eq(len, 10000);
	for (i = 0; i < len; i++)
		ck_assert_uint_eq(buf[i], (uint8_t)(i * 31 + 7));
	unmap_file(buf, len);
	ck_assert_int_eq(map_file(path, 9999, &buf, &len), -EFBIG);
	unlink(path);
}
END_TEST

START_TEST(map_file_empty_and_errors)
{
	char path[256];
	const uint8_t *buf = (const uint8_t *)(uintptr_t)0x1;
	size_t len = 99;

	make_file(path, sizeof(path), 0);
	ck_assert_int_eq(map_file(path, 100, &buf, &len), 0);
	ck_assert_ptr_null(buf);
	ck_assert_uint_eq(len, 0);
	unmap_file(buf, len);
	unlink(path);
	ck_assert_int_eq(map_file(path, 100, &buf, &len), -ENOENT);
	ck_assert_int_eq(map_file("/", 100, &buf, &len), -EISDIR);
	ck_assert_int_eq(map_file("/dev/zero", 100, &buf, &len), -EINVAL);
}
END_TEST

START_TEST(clock_monotonic)
{
	uint64_t a = now_ns(), b;

	usleep(2000);
	b = now_ns();
	ck_assert_uint_gt(b, a);
	ck_assert_uint_ge(b - a, 2000000);
	ck_assert_uint_lt(b - a, 5000000000ULL);
}
END_TEST

static Suite *util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *size = tcase_create("parse_size");
	TCase *uint = tcase_create("parse_uint");
	TCase *files = tcase_create("files");

	tcase_add_test(size, size_suffixes);
	tcase_add_test(size, size_bare_bytes);
	tcase_add_test(size, size_long_suffixes);
	tcase_add_test(size, size_largest);
	tcase_add_test(size, size_malformed);
	tcase_add_test(size, size_null);
	tcase_add_test(size, size_out_of_range);
	suite_add_tcase(s, size);

	tcase_add_test(uint, uint_decimal);
	tcase_add_test(uint, uint_hex);
	tcase_add_test(uint, uint_max_bound);
	tcase_add_test(uint, uint_overflow);
	tcase_add_test(uint, uint_malformed);
	suite_add_tcase(s, uint);

	tcase_add_test(files, read_file_contents);
	tcase_add_test(files, read_file_empty);
	tcase_add_test(files, read_file_errors);
	tcase_add_test(files, map_file_contents);
	tcase_add_test(files, map_file_empty_and_errors);
	tcase_add_test(files, clock_monotonic);
	suite_add_tcase(s, files);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(util_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

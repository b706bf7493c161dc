/* Unit tests for src/vmm/log.c: line format, levels, truncation, rate limit. */
#include <check.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int cap[2] = { -1, -1 }; /* stderr is redirected into cap[1] */
static int saved_stderr = -1;

static void setup(void)
{
	ck_assert_int_eq(pipe2(cap, O_CLOEXEC | O_NONBLOCK), 0);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_ge(dup2(cap[1], STDERR_FILENO), 0);
	log_set_level(LOG_INFO);
}

static void teardown(void)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(cap[0]);
	close(cap[1]);
	log_set_level(LOG_INFO);
}

/* What was logged since the last call, NUL-terminated. */
static size_t captured(char *buf, size_t cap_len)
{
	ssize_t r = read(cap[0], buf, cap_len - 1);

	buf[r > 0 ? r : 0] = '\0';
	return r > 0 ? (size_t)r : 0;
}

static unsigned int count_lines(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(line_format)
{
	char buf[4096];

	log_err("disk %d failed", 3);
	captured(buf, sizeof(buf));
	ck_assert_str_eq(buf, "skiff: error: disk 3 failed\n");
	log_warn("w");
	captured(buf, sizeof(buf));
	ck_assert_str_eq(buf, "skiff: warning: w\n");
	log_info("plain");
	captured(buf, sizeof(buf));
	ck_assert_str_eq(buf, "skiff: plain\n");
}
END_TEST

START_TEST(levels)
{
	char buf[4096];

	log_debug("hidden by default");
	ck_assert_uint_eq(captured(buf, sizeof(buf)), 0);
	log_set_level(LOG_DEBUG);
	log_debug("now shown");
	captured(buf, sizeof(buf));
	ck_assert_str_eq(buf, "skiff: debug: now shown\n");
	log_set_level(LOG_ERROR);
	log_warn("hidden");
	log_info("hidden");
	ck_assert_uint_eq(captured(buf, sizeof(buf)), 0);
	log_err("shown");
	ck_assert_uint_gt(captured(buf, sizeof(buf)), 0);
}
END_TEST

START_TEST(long_line_truncated)
{
	static char msg[3000], buf[8192];
	size_t n;

	memset(msg, 'm', sizeof(msg) - 1);
	log_info("%s", msg);
	n = captured(buf, sizeof(buf));
	/* One line, cut to the 1 KiB line buffer, still newline-terminated. */
	ck_assert_uint_le(n, 1024);
	ck_assert_uint_gt(n, 1000);
	ck_assert_uint_eq(buf[n - 1], '\n');
	ck_assert_uint_eq(count_lines(buf), 1);
	ck_assert_int_eq(strncmp(buf, "skiff: mmm", 10), 0);
}
END_TEST

START_TEST(ratelimit_burst)
{
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(3);
	char buf[8192];
	int i;

	for (i = 0; i < 10; i++)
		log_limited(&rl, LOG_WARN, "guest did %d", i);
	captured(buf, sizeof(buf));
	ck_assert_uint_eq(count_lines(buf), 3);
	ck_assert_ptr_nonnull(strstr(buf, "guest did 0"));
	ck_assert_ptr_nonnull(strstr(buf, "guest did 2"));
	ck_assert_ptr_null(strstr(buf, "guest did 3"));
	ck_assert_uint_eq(rl.suppressed, 7);

	/* A second later (simulated), the count of dropped messages is
	 * reported once, then the message itself. */
	rl.window_start_ns = now_ns() - 2000000000ULL;
	log_limited(&rl, LOG_WARN, "guest did %d", 10);
	captured(buf, sizeof(buf));
	ck_assert_uint_eq(count_lines(buf), 2);
	ck_assert_ptr_nonnull(strstr(buf, "7 similar messages suppressed"));
	ck_assert_ptr_nonnull(strstr(buf, "guest did 10"));
	ck_assert_uint_eq(rl.suppressed, 0);
}
END_TEST

START_TEST(ratelimit_independent)
{
	struct log_ratelimit a = LOG_RATELIMIT_INIT(1), b = LOG_RATELIMIT_INIT(1);
	char buf[4096];

	log_limited(&a, LOG_WARN, "a1");
	log_limited(&a, LOG_WARN, "a2");
	log_limited(&b, LOG_WARN, "b1");
	captured(buf, sizeof(buf));
	ck_assert_uint_eq(count_lines(buf), 2);
	ck_assert_ptr_nonnull(strstr(buf, "a1"));
	ck_assert_ptr_nonnull(strstr(buf, "b1"));
	ck_assert_ptr_null(strstr(buf, "a2"));
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, line_format);
	tcase_add_test(tc, levels);
	tcase_add_test(tc, long_line_truncated);
	tcase_add_test(tc, ratelimit_burst);
	tcase_add_test(tc, ratelimit_independent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

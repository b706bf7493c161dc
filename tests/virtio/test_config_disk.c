/* Unit tests for --disk / --rng parsing (src/vmm/config_disk.c, config.c). */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static enum config_result parse(struct config *cfg, char *err, int n, ...)
{
	char *argv[16] = { "run" };
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	return config_parse_run(n + 1, argv, cfg, err, 256);
}

START_TEST(disks)
{
	static struct config cfg;
	char err[256];

	ck_assert_int_eq(parse(&cfg, err, 5, "--disk", "path=/a.img",
			       "--disk", "path=/dev/sdb,readonly=on,serial=S1,direct=on,queues=4,poll=50",
			       "--rng"), CONFIG_OK);
	ck_assert_uint_eq(cfg.nr_disks, 2);
	ck_assert_str_eq(cfg.disks[0].path, "/a.img");
	ck_assert(!cfg.disks[0].readonly && !cfg.disks[0].direct);
	ck_assert_uint_eq(cfg.disks[0].queues, 1);
	ck_assert_str_eq(cfg.disks[0].serial, "");
	ck_assert_str_eq(cfg.disks[1].path, "/dev/sdb");
	ck_assert(cfg.disks[1].readonly && cfg.disks[1].direct);
	ck_assert_str_eq(cfg.disks[1].serial, "S1");
	ck_assert_uint_eq(cfg.disks[1].queues, 4);
	ck_assert_uint_eq(cfg.disks[1].poll_us, 50);
	ck_assert_uint_eq(cfg.disks[0].poll_us, CONFIG_DISK_DEFAULT_POLL_US);
	ck_assert(cfg.rng);
	/* order of keys is free; off is accepted */
	ck_assert_int_eq(parse(&cfg, err, 2, "--disk", "readonly=off,path=/b"), CONFIG_OK);
	ck_assert_str_eq(cfg.disks[0].path, "/b");
	ck_assert(!cfg.rng);
}
END_TEST

START_TEST(bad_disks)
{
	static struct config cfg;
	static const char *bad[] = {
		"", "readonly=on", "path=", "path=/x,readonly=yes", "path=/x,queues=0",
		"path=/x,queues=9", "path=/x,queues=two", "path=/x,serial=123456789012345678901",
		"path=/x,size=1", "path=/x,readonly", "/x", "path=/x,poll=1001", "path=/x,poll=",
	};
	char err[256];
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(parse(&cfg, err, 2, "--disk", bad[i]) == CONFIG_ERROR, "%s accepted", bad[i]);
		ck_assert_msg(strstr(err, "--disk") != NULL, "%s: error '%s'", bad[i], err);
	}
	/* serial of exactly 20 bytes is fine */
	ck_assert_int_eq(parse(&cfg, err, 2, "--disk", "path=/x,serial=12345678901234567890"),
			 CONFIG_OK);
}
END_TEST

START_TEST(too_many_disks)
{
	static struct config cfg;
	char err[256];
	char *argv[2 + 2 * (CONFIG_MAX_DISKS + 1)];
	int n = 0, i;

	argv[n++] = "run";
	for (i = 0; i <= CONFIG_MAX_DISKS; i++) {
		argv[n++] = "--disk";
		argv[n++] = "path=/x";
	}
	ck_assert_int_eq(config_parse_run(n - 2, argv, &cfg, err, sizeof(err)), CONFIG_OK);
	ck_assert_uint_eq(cfg.nr_disks, CONFIG_MAX_DISKS);
	ck_assert_int_eq(config_parse_run(n, argv, &cfg, err, sizeof(err)), CONFIG_ERROR);
	ck_assert(strstr(err, "at most") != NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config_disk");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, disks);
	tcase_add_test(tc, bad_disks);
	tcase_add_test(tc, too_many_disks);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

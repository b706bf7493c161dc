/* Unit tests for src/vmm/config.c: `skiff run` options -> struct config. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mem.h"

/* An argv whose strings live inside the struct, so that the config's
 * pointers (which point into argv) stay valid for the whole test and
 * nothing leaks (the suites also run under LeakSanitizer). */
struct args {
	int argc;
	char *argv[32];
	char buf[16384];
	size_t used;
};

static void args_add(struct args *a, const char *s)
{
	size_t n = strlen(s) + 1;

	ck_assert_msg(a->argc < (int)ARRAY_SIZE(a->argv) - 1, "too many test arguments");
	ck_assert_msg(n <= sizeof(a->buf) - a->used, "test arguments too long");
	memcpy(a->buf + a->used, s, n);
	a->argv[a->argc++] = a->buf + a->used;
	a->argv[a->argc] = NULL;
	a->used += n;
}

/* argv[0] is always "run"; the list ends with NULL. */
static void args_build(struct args *a, ...)
{
	const char *s;
	va_list ap;

	a->argc = 0;
	a->used = 0;
	args_add(a, "run");
	va_start(ap, a);
	while ((s = va_arg(ap, const char *)) != NULL)
		args_add(a, s);
	va_end(ap);
}

static enum config_result parse(struct args *a, struct config *cfg, char *err, size_t errlen)
{
	memset(cfg, 0xa5, sizeof(*cfg));
	err[0] = '\0';
	return config_parse_run(a->argc, a->argv, cfg, err, errlen);
}

/* Parses a and expects CONFIG_ERROR with an error line containing `needle`. */
static void expect_error(struct args *a, const char *needle)
{
	struct config cfg;
	char err[256];
	enum config_result r = parse(a, &cfg, err, sizeof(err));

	ck_assert_msg(r == CONFIG_ERROR, "argument '%s': result %d, want CONFIG_ERROR",
		      a->argc > 1 ? a->argv[1] : "", r);
	ck_assert_msg(err[0] != '\0', "error text is empty");
	ck_assert_msg(strchr(err, '\n') == NULL, "error text is not one line: '%s'", err);
	ck_assert_msg(strstr(err, needle) != NULL, "error text '%s' does not mention '%s'", err, needle);
}

static void expect_ok(struct args *a, struct config *cfg)
{
	char err[256];
	enum config_result r = parse(a, cfg, err, sizeof(err));

	ck_assert_msg(r == CONFIG_OK, "result %d, want CONFIG_OK (error: '%s')", r, err);
}

/* --- defaults and each option ---------------------------------------------- */

START_TEST(defaults)
{
	struct args a;
	struct config cfg;

	args_build(&a, NULL);
	expect_ok(&a, &cfg);
	ck_assert_uint_eq(cfg.memory, 256 * MiB);
	ck_assert_uint_eq(cfg.cpus, 1);
	ck_assert_int_eq(cfg.serial, SERIAL_STDIO);
	ck_assert_int_eq(cfg.debug_exit_port, -1);
	ck_assert_ptr_null(cfg.kernel);
	ck_assert_ptr_null(cfg.initrd);
	ck_assert_ptr_null(cfg.cmdline);
	ck_assert_ptr_nonnull(cfg.kvm_path);
	ck_assert_str_eq(cfg.kvm_path, "/dev/kvm");
	ck_assert_ptr_null(cfg.api_socket);
}
END_TEST

START_TEST(every_option)
{
	struct args a;
	struct config cfg;

	args_build(&a, "--kernel", "/boot/vmlinux", "--initrd", "/boot/initrd.img",
		   "--cmdline", "console=ttyS0 quiet", "--memory", "1G", "--cpus", "4",
		   "--serial", "none", "--debug-exit", "0xf4,size=2",
		   "--kvm-device", "/dev/kvm-test", "--api-socket", "/run/skiff.sock", NULL);
	expect_ok(&a, &cfg);
	ck_assert_str_eq(cfg.kernel, "/boot/vmlinux");
	ck_assert_str_eq(cfg.initrd, "/boot/initrd.img");
	ck_assert_str_eq(cfg.cmdline, "console=ttyS0 quiet");
	ck_assert_uint_eq(cfg.memory, 1 * GiB);
	ck_assert_uint_eq(cfg.cpus, 4);
	ck_assert_int_eq(cfg.serial, SERIAL_NONE);
	ck_assert_int_eq(cfg.debug_exit_port, 0xf4);
	ck_assert_uint_eq(cfg.debug_exit_size, 2);
	ck_assert_str_eq(cfg.kvm_path, "/dev/kvm-test");
	ck_assert_str_eq(cfg.api_socket, "/run/skiff.sock");
}
END_TEST

START_TEST(equals_form)
{
	struct args a;
	struct config cfg;

	args_build(&a, "--memory=512M", "--cpus=2", "--serial=file=/tmp/console.log",
		   "--kernel=k.elf", NULL);
	expect_ok(&a, &cfg);
	ck_assert_uint_eq(cfg.memory, 512 * MiB);
	ck_assert_uint_eq(cfg.cpus, 2);
	ck_assert_int_eq(cfg.serial, SERIAL_FILE);
	ck_assert_str_eq(cfg.serial_path, "/tmp/console.log");
	ck_assert_str_eq(cfg.kernel, "k.elf");
}
END_TEST

START_TEST(last_option_wins)
{
	struct args a;
	struct config cfg;

	args_build(&a, "--serial", "none", "--serial", "stdio", "--cpus", "3", "--cpus", "5", NULL);
	expect_ok(&a, &cfg);
	ck_assert_int_eq(cfg.serial, SERIAL_STDIO);
	ck_assert_uint_eq(cfg.cpus, 5);
}
END_TEST

/* --- --memory --------------------------------------------------------------- */

START_TEST(memory_values)
{
	static const struct { const char *arg; uint64_t want; } ok[] = {
		{ "2M", 2 * MiB },              /* the minimum */
		{ "16T", 16 * TiB },            /* the maximum */
		{ "4G", 4 * GiB },
		{ "3000000", 733 * 4096 },      /* rounded up to a whole page */
		{ "2097153", 2 * MiB + 4096 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		struct args a;
		struct config cfg;

		args_build(&a, "--memory", ok[i].arg, NULL);
		expect_ok(&a, &cfg);
		ck_assert_msg(cfg.memory == ok[i].want, "--memory %s: %llu, want %llu", ok[i].arg,
			      (unsigned long long)cfg.memory, (unsigned long long)ok[i].want);
		ck_assert_uint_eq(cfg.memory % MEM_PAGE_SIZE, 0);
	}
}
END_TEST

START_TEST(memory_errors)
{
	static const char *const bad[] = {
		"0", "1M", "2097151", "99999T", "16385G", "17T", "99999999999999999999",
		"abc", "", "1.5G", "-1G",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct args a;

		args_build(&a, "--memory", bad[i], NULL);
		expect_error(&a, "--memory");
	}
}
END_TEST

/* --- --cpus ------------------------------------------------------------------ */

START_TEST(cpus_values)
{
	static const struct { const char *arg; unsigned int want; } ok[] = {
		{ "1", 1 }, { "255", 255 }, { "0x10", 16 }, { "64", 64 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		struct args a;
		struct config cfg;

		args_build(&a, "--cpus", ok[i].arg, NULL);
		expect_ok(&a, &cfg);
		ck_assert_uint_eq(cfg.cpus, ok[i].want);
	}
}
END_TEST

START_TEST(cpus_errors)
{
	static const char *const bad[] = { "0", "256", "abc", "-1", "", "1.5", "4294967297" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct args a;

		args_build(&a, "--cpus", bad[i], NULL);
		expect_error(&a, "--cpus");
	}
}
END_TEST

/* --- --serial ----------------------------------------------------------------- */

START_TEST(serial_values)
{
	struct args a;
	struct config cfg;

	args_build(&a, "--serial", "stdio", NULL);
	expect_ok(&a, &cfg);
	ck_assert_int_eq(cfg.serial, SERIAL_STDIO);

	args_build(&a, "--serial", "none", NULL);
	expect_ok(&a, &cfg);
	ck_assert_int_eq(cfg.serial, SERIAL_NONE);

	args_build(&a, "--serial", "file=out.txt", NULL);
	expect_ok(&a, &cfg);
	ck_assert_int_eq(cfg.serial, SERIAL_FILE);
	ck_assert_str_eq(cfg.serial_path, "out.txt");
	/* The path points into argv, not into a copy. */
	ck_assert_ptr_eq(cfg.serial_path, a.argv[2] + 5);
}
END_TEST

START_TEST(serial_errors)
{
	static const char *const bad[] = { "bogus", "file=", "file", "", "STDIO", "stdio2", "pty" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct args a;

		args_build(&a, "--serial", bad[i], NULL);
		expect_error(&a, "--serial");
	}
}
END_TEST

/* --- --debug-exit ------------------------------------------------------------- */

START_TEST(debug_exit_values)
{
	static const struct { const char *arg; int port; unsigned int size; } ok[] = {
		{ "0xf4", 0xf4, 4 },
		{ "244", 244, 4 },
		{ "0xf4,size=1", 0xf4, 1 },
		{ "0x501,size=2", 0x501, 2 },
		{ "0x0,size=4", 0, 4 },
		{ "0xfffc", 0xfffc, 4 },          /* last 4-port window: 0xfffc-0xffff */
		{ "0xffff,size=1", 0xffff, 1 },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		struct args a;
		struct config cfg;

		args_build(&a, "--debug-exit", ok[i].arg, NULL);
		expect_ok(&a, &cfg);
		ck_assert_msg(cfg.debug_exit_port == ok[i].port, "--debug-exit %s: port 0x%x",
			      ok[i].arg, cfg.debug_exit_port);
		ck_assert_msg(cfg.debug_exit_size == ok[i].size, "--debug-exit %s: size %u",
			      ok[i].arg, cfg.debug_exit_size);
	}
}
END_TEST

START_TEST(debug_exit_errors)
{
	static const char *const bad[] = {
		"0x10000", "0xf4,size=3", "0xf4,size=0", "0xf4,size=8", "0xf4,size=",
		"0xf4,", "0xf4,sz=2", ",size=2", "", "port", "0xfffe", "0xffff,size=2",
		"-1", "0xf4,size=2,size=4",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct args a;

		args_build(&a, "--debug-exit", bad[i], NULL);
		expect_error(&a, "--debug-exit");
	}
}
END_TEST

/* --- command-line structure -------------------------------------------------- */

START_TEST(unknown_long_option)
{
	struct args a;

	args_build(&a, "--bogus", NULL);
	expect_error(&a, "--bogus");
	args_build(&a, "--cpus", "2", "--frobnicate=3", NULL);
	expect_error(&a, "--frobnicate");
	/* --help takes no value. */
	args_build(&a, "--help=yes", NULL);
	expect_error(&a, "--help");
}
END_TEST

START_TEST(unknown_short_option)
{
	struct args a;

	args_build(&a, "-x", NULL);
	expect_error(&a, "-x");
	args_build(&a, "--cpus", "2", "-q", NULL);
	expect_error(&a, "-q");
}
END_TEST

/*
 * An unknown option inside a group of short options ("-xq"): getopt has not
 * advanced optind past the group yet, so argv[optind - 1] is the argument
 * *before* it. The message must still name the offending option.
 */
START_TEST(unknown_short_option_grouped)
{
	struct args a;

	args_build(&a, "--kernel", "k.elf", "-xq", NULL);
	expect_error(&a, "-x");
}
END_TEST

START_TEST(missing_value)
{
	static const char *const opts[] = {
		"--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--serial",
		"--debug-exit", "--kvm-device", "--api-socket",
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(opts); i++) {
		struct args a;

		args_build(&a, opts[i], NULL);
		expect_error(&a, opts[i]);
		args_build(&a, "--cpus", "2", opts[i], NULL);
		expect_error(&a, opts[i]);
	}
}
END_TEST

START_TEST(positional_argument)
{
	struct args a;

	args_build(&a, "vmlinux", NULL);
	expect_error(&a, "vmlinux");
	/* getopt permutes argv; the stray argument is still reported. */
	args_build(&a, "--cpus", "2", "extra", "--memory", "1G", NULL);
	expect_error(&a, "extra");
	/* "--" ends the options; what follows is still not accepted. */
	args_build(&a, "--", "--cpus", NULL);
	expect_error(&a, "--cpus");
}
END_TEST

START_TEST(initrd_needs_kernel)
{
	struct args a;
	struct config cfg;

	args_build(&a, "--initrd", "initrd.img", NULL);
	expect_error(&a, "--initrd");
	args_build(&a, "--initrd", "initrd.img", "--kernel", "k.elf", NULL);
	expect_ok(&a, &cfg);
	ck_assert_str_eq(cfg.initrd, "initrd.img");
}
END_TEST

START_TEST(empty_kernel)
{
	struct args a;

	args_build(&a, "--kernel", "", NULL);
	expect_error(&a, "--kernel");
}
END_TEST

START_TEST(cmdline_length)
{
	static char longest[BOOT_CMDLINE_MAX_LEN + 2];
	struct args a;
	struct config cfg;

	memset(longest, 'a', BOOT_CMDLINE_MAX_LEN);
	longest[BOOT_CMDLINE_MAX_LEN] = '\0';
	args_build(&a, "--cmdline", longest, NULL);
	expect_ok(&a, &cfg);
	ck_assert_uint_eq(strlen(cfg.cmdline), BOOT_CMDLINE_MAX_LEN);

	longest[BOOT_CMDLINE_MAX_LEN] = 'b';
	longest[BOOT_CMDLINE_MAX_LEN + 1] = '\0';
	args_build(&a, "--cmdline", longest, NULL);
	expect_error(&a, "--cmdline");
}
END_TEST

START_TEST(help)
{
	struct args a;
	struct config cfg;
	char err[256];

	args_build(&a, "--help", NULL);
	ck_assert_int_eq(parse(&a, &cfg, err, sizeof(err)), CONFIG_HELP);
	args_build(&a, "-h", NULL);
	ck_assert_int_eq(parse(&a, &cfg, err, sizeof(err)), CONFIG_HELP);
	args_build(&a, "--cpus", "2", "--help", "--memory", "1G", NULL);
	ck_assert_int_eq(parse(&a, &cfg, err, sizeof(err)), CONFIG_HELP);
}
END_TEST

START_TEST(help_text)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	config_print_run_help(f);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "--memory"));
	ck_assert_ptr_nonnull(strstr(text, "--debug-exit"));
	ck_assert_ptr_nonnull(strstr(text, "4095"));   /* BOOT_CMDLINE_MAX_LEN */
	ck_assert_ptr_nonnull(strstr(text, "1 to 255")); /* CONFIG_MAX_CPUS */
	free(text);
}
END_TEST

START_TEST(small_error_buffer)
{
	struct args a;
	struct config cfg;
	char err[8];

	memset(err, 'z', sizeof(err));
	args_build(&a, "--memory", "99999T", NULL);
	ck_assert_int_eq(config_parse_run(a.argc, a.argv, &cfg, err, sizeof(err)), CONFIG_ERROR);
	ck_assert_msg(memchr(err, '\0', sizeof(err)) != NULL, "error text not terminated");
	ck_assert_str_eq(err, "--memor");
}
END_TEST

/* --- getopt state ---------------------------------------------------------------- */

START_TEST(parse_twice)
{
	struct args a, b;
	struct config cfg;

	args_build(&a, "--cpus", "8", "--memory", "1G", NULL);
	expect_ok(&a, &cfg);
	ck_assert_uint_eq(cfg.cpus, 8);

	/* The second parse starts from defaults and from argv[1] again. */
	args_build(&b, "--memory", "2G", NULL);
	expect_ok(&b, &cfg);
	ck_assert_uint_eq(cfg.memory, 2 * GiB);
	ck_assert_uint_eq(cfg.cpus, 1);

	/* After an error in the middle of argv. */
	args_build(&a, "--cpus", "2", "--bogus", "--cpus", "3", NULL);
	expect_error(&a, "--bogus");
	args_build(&b, "--cpus", "6", NULL);
	expect_ok(&b, &cfg);
	ck_assert_uint_eq(cfg.cpus, 6);

	/* After a stop in the middle of a group of short options: getopt's
	 * position inside "-hx" must not leak into the next parse. */
	args_build(&a, "-hx", NULL);
	ck_assert_int_eq(parse(&a, &cfg, (char[64]){ 0 }, 64), CONFIG_HELP);
	args_build(&b, "--cpus", "7", NULL);
	expect_ok(&b, &cfg);
	ck_assert_uint_eq(cfg.cpus, 7);

	/* After a permuting parse (a positional argument was moved). */
	args_build(&a, "stray", "--cpus", "2", NULL);
	expect_error(&a, "stray");
	args_build(&b, "--cpus", "9", NULL);
	expect_ok(&b, &cfg);
	ck_assert_uint_eq(cfg.cpus, 9);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *opts = tcase_create("options");
	TCase *vals = tcase_create("values");
	TCase *shape = tcase_create("structure");

	tcase_add_test(opts, defaults);
	tcase_add_test(opts, every_option);
	tcase_add_test(opts, equals_form);
	tcase_add_test(opts, last_option_wins);
	suite_add_tcase(s, opts);

	tcase_add_test(vals, memory_values);
	tcase_add_test(vals, memory_errors);
	tcase_add_test(vals, cpus_values);
	tcase_add_test(vals, cpus_errors);
	tcase_add_test(vals, serial_values);
	tcase_add_test(vals, serial_errors);
	tcase_add_test(vals, debug_exit_values);
	tcase_add_test(vals, debug_exit_errors);
	tcase_add_test(vals, cmdline_length);
	tcase_add_test(vals, empty_kernel);
	suite_add_tcase(s, vals);

	tcase_add_test(shape, unknown_long_option);
	tcase_add_test(shape, unknown_short_option);
	tcase_add_test(shape, unknown_short_option_grouped);
	tcase_add_test(shape, missing_value);
	tcase_add_test(shape, positional_argument);
	tcase_add_test(shape, initrd_needs_kernel);
	tcase_add_test(shape, help);
	tcase_add_test(shape, help_text);
	tcase_add_test(shape, small_error_buffer);
	tcase_add_test(shape, parse_twice);
	suite_add_tcase(s, shape);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Unit tests for src/devices/i8042.c, src/devices/debug_exit.c and the exit
 * request they share (src/vmm/runstate.c).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus.h"
#include "devices.h"
#include "runstate.h"

#define KBD_DATA 0x60
#define KBD_CMD 0x64

static struct bus *pio;
static struct runstate rs;
static struct i8042 *kbd;

static void setup(void)
{
	ck_assert_int_eq(runstate_init(&rs), 0);
	ck_assert_int_eq(bus_create("pio", &pio), 0);
	ck_assert_int_eq(i8042_create(pio, &rs, &kbd), 0);
}

static void teardown(void)
{
	i8042_destroy(kbd);
	kbd = NULL;
	bus_destroy(pio);
	pio = NULL;
	runstate_fini(&rs);
}

static void out_n(uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t d[4];

	memcpy(d, &v, sizeof(d)); /* little-endian host, as the guest sees it */
	ck_assert_msg(bus_dispatch(pio, port, d, len, true), "write to 0x%x unclaimed", port);
}

static void outb(uint16_t port, uint8_t v)
{
	out_n(port, v, 1);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0x5a;

	ck_assert_msg(bus_dispatch(pio, port, &v, 1, false), "read of 0x%x unclaimed", port);
	return v;
}

/* The eventfd counter: how many times the main thread was woken. */
static uint64_t wake_count(void)
{
	struct pollfd p = { .fd = rs.wake_fd, .events = POLLIN };
	uint64_t v = 0;

	if (poll(&p, 1, 0) != 1)
		return 0;
	ck_assert_int_eq(read(rs.wake_fd, &v, sizeof(v)), sizeof(v));
	return v;
}

/* --- i8042 ---------------------------------------------------------------------- */

START_TEST(kbd_reset_command)
{
	ck_assert(!runstate_exiting(&rs));
	outb(KBD_CMD, 0xfe);
	ck_assert(runstate_exiting(&rs));
	ck_assert_int_eq(rs.exit_status, SKIFF_EXIT_RESET);
	ck_assert_ptr_nonnull(strstr(rs.reason, "i8042"));
	ck_assert_uint_eq(wake_count(), 1);
}
END_TEST

START_TEST(kbd_self_test)
{
	ck_assert_uint_eq(inb(KBD_CMD) & 0x01, 0);      /* nothing to read yet */
	outb(KBD_CMD, 0xaa);
	ck_assert_uint_eq(inb(KBD_CMD), 0x04 | 0x01);   /* system flag, output full */
	ck_assert_uint_eq(inb(KBD_DATA), 0x55);
	ck_assert_uint_eq(inb(KBD_CMD) & 0x01, 0);      /* consumed */
	ck_assert(!runstate_exiting(&rs));
}
END_TEST

START_TEST(kbd_interface_tests)
{
	outb(KBD_CMD, 0xab);
	ck_assert_uint_eq(inb(KBD_CMD) & 0x01, 0x01);
	ck_assert_uint_eq(inb(KBD_DATA), 0x00);
	outb(KBD_CMD, 0xa9);
	ck_assert_uint_eq(inb(KBD_DATA), 0xff);
	ck_assert(!runstate_exiting(&rs));
}
END_TEST

START_TEST(kbd_command_byte)
{
	outb(KBD_CMD, 0x20);
	ck_assert_uint_eq(inb(KBD_DATA), 0x45);
	outb(KBD_CMD, 0x60);
	outb(KBD_DATA, 0x47);
	ck_assert_uint_eq(inb(KBD_CMD) & 0x01, 0);
	outb(KBD_CMD, 0x20);
	ck_assert_uint_eq(inb(KBD_DATA), 0x47);
	/* A data byte with no command pending goes to the (absent) keyboard. */
	outb(KBD_DATA, 0x12);
	outb(KBD_CMD, 0x20);
	ck_assert_uint_eq(inb(KBD_DATA), 0x47);
}
END_TEST

START_TEST(kbd_output_port_reset)
{
	/* Command 0xd1 with bit 0 set keeps the CPU running... */
	outb(KBD_CMD, 0xd1);
	outb(KBD_DATA, 0xdf);
	ck_assert(!runstate_exiting(&rs));
	/* ...the argument is consumed: a later 0x00 data byte is not one. */
	outb(KBD_DATA, 0x00);
	ck_assert(!runstate_exiting(&rs));
	/* ...and with bit 0 clear resets it. */
	outb(KBD_CMD, 0xd1);
	outb(KBD_DATA, 0xde);
	ck_assert(runstate_exiting(&rs));
	ck_assert_int_eq(rs.exit_status, SKIFF_EXIT_RESET);
}
END_TEST

START_TEST(kbd_other_commands_harmless)
{
	static const uint8_t cmds[] = { 0xad, 0xae, 0xa7, 0xa8, 0x00, 0xff, 0xfd, 0xf0 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cmds); i++)
		outb(KBD_CMD, cmds[i]);
	ck_assert(!runstate_exiting(&rs));
	ck_assert_uint_eq(wake_count(), 0);
}
END_TEST

START_TEST(kbd_ports)
{
	uint8_t d[2] = { 0, 0 };

	/* Port 0x61 (PIT/speaker) and 0x62-0x63 are not the i8042's. */
	ck_assert(!bus_dispatch(pio, 0x61, d, 1, false));
	ck_assert(!bus_dispatch(pio, 0x63, d, 1, false));
	/* A 2-byte access at 0x60 runs into 0x61: unclaimed. */
	ck_assert(!bus_dispatch(pio, KBD_DATA, d, 2, false));
	/* The command port can also be read. */
	ck_assert_uint_eq(inb(KBD_CMD) & 0x04, 0x04);
}
END_TEST

START_TEST(kbd_destroy_and_recreate)
{
	uint8_t v = 0;

	i8042_destroy(kbd);
	kbd = NULL;
	ck_assert(!bus_dispatch(pio, KBD_CMD, &v, 1, false));
	ck_assert(!bus_dispatch(pio, KBD_DATA, &v, 1, false));
	ck_assert_int_eq(i8042_create(pio, &rs, &kbd), 0);
	outb(KBD_CMD, 0xaa);
	ck_assert_uint_eq(inb(KBD_DATA), 0x55);
	i8042_destroy(NULL);
}
END_TEST

START_TEST(kbd_create_conflict)
{
	struct i8042 *second = NULL;

	/* A second controller on the same bus is refused and leaves the first
	 * one's windows in place. */
	ck_assert_int_eq(i8042_create(pio, &rs, &second), -EEXIST);
	ck_assert_ptr_null(second);
	outb(KBD_CMD, 0xaa);
	ck_assert_uint_eq(inb(KBD_DATA), 0x55);
}
END_TEST

/* --- debug-exit ------------------------------------------------------------------- */

START_TEST(debug_exit_status)
{
	struct debug_exit *d = NULL;

	ck_assert_int_eq(debug_exit_create(pio, 0xf4, 4, &rs, &d), 0);
	out_n(0xf4, 0x21, 4);
	ck_assert(runstate_exiting(&rs));
	ck_assert_int_eq(rs.exit_status, 0x43);
	ck_assert_ptr_nonnull(strstr(rs.reason, "0x21"));
	ck_assert_uint_eq(wake_count(), 1);
	debug_exit_destroy(d);
}
END_TEST

START_TEST(debug_exit_widths)
{
	struct debug_exit *d = NULL;
	struct runstate r2;

	/* One byte into a 1-port window. */
	ck_assert_int_eq(debug_exit_create(pio, 0x501, 1, &rs, &d), 0);
	out_n(0x501, 0x01, 1);
	ck_assert_int_eq(rs.exit_status, 3);
	debug_exit_destroy(d);

	/* A word into a 2-port window (fresh run state). */
	ck_assert_int_eq(runstate_init(&r2), 0);
	ck_assert_int_eq(debug_exit_create(pio, 0x501, 2, &r2, &d), 0);
	out_n(0x501, 0x1234, 2);
	ck_assert(runstate_exiting(&r2));
	ck_assert_int_eq(r2.exit_status, 0x2469);
	debug_exit_destroy(d);
	runstate_fini(&r2);
}
END_TEST

START_TEST(debug_exit_byte_in_wide_window)
{
	/* Guests often write one byte to a 4-port window (outb). */
	struct debug_exit *d = NULL;

	ck_assert_int_eq(debug_exit_create(pio, 0xf4, 4, &rs, &d), 0);
	out_n(0xf4, 0x10, 1);
	ck_assert(runstate_exiting(&rs));
	ck_assert_int_eq(rs.exit_status, 0x21);
	debug_exit_destroy(d);
}
END_TEST

START_TEST(debug_exit_read_is_harmless)
{
	struct debug_exit *d = NULL;
	uint8_t v[4] = { 0x5a, 0x5a, 0x5a, 0x5a };

	ck_assert_int_eq(debug_exit_create(pio, 0xf4, 4, &rs, &d), 0);
	ck_assert(bus_dispatch(pio, 0xf4, v, 4, false));
	ck_assert_int_eq(memcmp(v, "\0\0\0\0", 4), 0);
	ck_assert(!runstate_exiting(&rs));
	ck_assert_uint_eq(wake_count(), 0);
	debug_exit_destroy(d);
}
END_TEST

START_TEST(debug_exit_window)
{
	struct debug_exit *d = NULL;
	uint8_t v[4] = { 1, 0, 0, 0 };

	ck_assert_int_eq(debug_exit_create(pio, 0xf4, 1, &rs, &d), 0);
	/* Outside the 1-port window, or running past it: unclaimed, no exit. */
	ck_assert(!bus_dispatch(pio, 0xf5, v, 1, true));
	ck_assert(!bus_dispatch(pio, 0xf4, v, 4, true));
	ck_assert(!runstate_exiting(&rs));
	debug_exit_destroy(d);
	/* After destroy the port is free. */
	ck_assert(!bus_dispatch(pio, 0xf4, v, 1, true));
	ck_assert(!runstate_exiting(&rs));
	debug_exit_destroy(NULL);
}
END_TEST

START_TEST(debug_exit_bad_args)
{
	struct debug_exit *d = NULL;
	static const uint32_t bad[] = { 0, 3, 8, 16 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(debug_exit_create(pio, 0xf4, bad[i], &rs, &d), -EINVAL);
		ck_assert_ptr_null(d);
	}
	/* Overlapping the i8042's command port. */
	ck_assert_int_eq(debug_exit_create(pio, 0x62, 4, &rs, &d), -EEXIST);
	ck_assert_ptr_null(d);
	ck_assert_uint_eq(inb(KBD_CMD) & 0x04, 0x04);
}
END_TEST

/* --- first exit request wins ---------------------------------------------------------- */

START_TEST(first_exit_wins)
{
	struct debug_exit *d = NULL;

	ck_assert_int_eq(debug_exit_create(pio, 0xf4, 4, &rs, &d), 0);
	out_n(0xf4, 0x21, 4);
	out_n(0xf4, 0x05, 4);               /* a second debug-exit write */
	outb(KBD_CMD, 0xfe);                /* and a reset */
	ck_assert_int_eq(rs.exit_status, 0x43);
	ck_assert_ptr_nonnull(strstr(rs.reason, "0x21"));
	ck_assert_uint_eq(wake_count(), 1); /* the main thread is woken once */
	debug_exit_destroy(d);
}
END_TEST

START_TEST(first_exit_wins_reset_first)
{
	struct debug_exit *d = NULL;

	ck_assert_int_eq(debug_exit_create(pio, 0xf4, 4, &rs, &d), 0);
	outb(KBD_CMD, 0xfe);
	out_n(0xf4, 0x21, 4);
	ck_assert_int_eq(rs.exit_status, SKIFF_EXIT_RESET);
	ck_assert_ptr_nonnull(strstr(rs.reason, "i8042"));
	debug_exit_destroy(d);
}
END_TEST

START_TEST(runstate_request)
{
	ck_assert(!runstate_exiting(&rs));
	ck_assert(runstate_request_exit(&rs, SKIFF_EXIT_GUEST_FAULT, "triple fault"));
	ck_assert(!runstate_request_exit(&rs, SKIFF_EXIT_OK, "late"));
	ck_assert(!runstate_request_exit(&rs, 7, NULL));
	ck_assert(runstate_exiting(&rs));
	ck_assert_int_eq(rs.exit_status, SKIFF_EXIT_GUEST_FAULT);
	ck_assert_str_eq(rs.reason, "triple fault");
	ck_assert_uint_eq(wake_count(), 1);
}
END_TEST

START_TEST(runstate_long_reason)
{
	char why[300];

	memset(why, 'r', sizeof(why) - 1);
	why[sizeof(why) - 1] = '\0';
	ck_assert(runstate_request_exit(&rs, 1, why));
	ck_assert_uint_eq(strlen(rs.reason), sizeof(rs.reason) - 1);
}
END_TEST

START_TEST(runstate_null_reason)
{
	ck_assert(runstate_request_exit(&rs, 5, NULL));
	ck_assert_str_eq(rs.reason, "");
	ck_assert_int_eq(rs.exit_status, 5);
}
END_TEST

static Suite *i8042_debug_exit_suite(void)
{
	Suite *s = suite_create("i8042_debug_exit");
	TCase *kbdc = tcase_create("i8042");
	TCase *dbg = tcase_create("debug_exit");
	TCase *run = tcase_create("runstate");

	tcase_add_checked_fixture(kbdc, setup, teardown);
	tcase_add_test(kbdc, kbd_reset_command);
	tcase_add_test(kbdc, kbd_self_test);
	tcase_add_test(kbdc, kbd_interface_tests);
	tcase_add_test(kbdc, kbd_command_byte);
	tcase_add_test(kbdc, kbd_output_port_reset);
	tcase_add_test(kbdc, kbd_other_commands_harmless);
	tcase_add_test(kbdc, kbd_ports);
	tcase_add_test(kbdc, kbd_destroy_and_recreate);
	tcase_add_test(kbdc, kbd_create_conflict);
	suite_add_tcase(s, kbdc);

	tcase_add_checked_fixture(dbg, setup, teardown);
	tcase_add_test(dbg, debug_exit_status);
	tcase_add_test(dbg, debug_exit_widths);
	tcase_add_test(dbg, debug_exit_byte_in_wide_window);
	tcase_add_test(dbg, debug_exit_read_is_harmless);
	tcase_add_test(dbg, debug_exit_window);
	tcase_add_test(dbg, debug_exit_bad_args);
	suite_add_tcase(s, dbg);

	tcase_add_checked_fixture(run, setup, teardown);
	tcase_add_test(run, first_exit_wins);
	tcase_add_test(run, first_exit_wins_reset_first);
	tcase_add_test(run, runstate_request);
	tcase_add_test(run, runstate_long_reason);
	tcase_add_test(run, runstate_null_reason);
	suite_add_tcase(s, run);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(i8042_debug_exit_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

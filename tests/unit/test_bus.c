/* Unit tests for src/vmm/bus.c: windows, overlap refusal, dispatch. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

/* What a handler saw on its last call. */
struct rec {
	int id;
	unsigned int calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t data[8];
};

/* Reads return id in byte 0 and the offset's low bytes after it, so a test
 * sees both which window answered and at which offset. */
static void rec_handler(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;
	uint32_t i;

	r->calls++;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	if (is_write) {
		memcpy(r->data, data, len < 8 ? len : 8);
		return;
	}
	for (i = 0; i < len; i++)
		data[i] = i == 0 ? (uint8_t)r->id : (uint8_t)(offset >> (8 * (i - 1)));
}

static struct bus *make_bus(const char *name)
{
	struct bus *b = NULL;

	ck_assert_int_eq(bus_create(name, &b), 0);
	ck_assert_ptr_nonnull(b);
	return b;
}

static void reg(struct bus *b, uint64_t base, uint64_t len, struct rec *r)
{
	int ret = bus_register(b, base, len, rec_handler, r, "test");

	ck_assert_msg(ret == 0, "bus_register(0x%llx, 0x%llx) = %d", (unsigned long long)base,
		      (unsigned long long)len, ret);
}

/* Reads one byte at addr and returns the id of the window that answered
 * (-1 if none did, after checking the 0xff fill). */
static int who(struct bus *b, uint64_t addr)
{
	uint8_t d = 0;

	if (!bus_dispatch(b, addr, &d, 1, false)) {
		ck_assert_uint_eq(d, 0xff);
		return -1;
	}
	return d;
}

/* --- registration and dispatch ---------------------------------------------- */

START_TEST(dispatch_offsets)
{
	struct bus *b = make_bus("pio");
	struct rec r = { .id = 7 };
	uint8_t d[8];

	reg(b, 0x3f8, 8, &r);
	d[0] = 0x41;
	ck_assert(bus_dispatch(b, 0x3fa, d, 1, true));
	ck_assert_uint_eq(r.calls, 1);
	ck_assert_uint_eq(r.offset, 2);
	ck_assert_uint_eq(r.len, 1);
	ck_assert(r.is_write);
	ck_assert_uint_eq(r.data[0], 0x41);

	memset(d, 0, sizeof(d));
	ck_assert(bus_dispatch(b, 0x3ff, d, 1, false));   /* last byte */
	ck_assert_uint_eq(r.calls, 2);
	ck_assert_uint_eq(r.offset, 7);
	ck_assert(!r.is_write);
	ck_assert_uint_eq(d[0], 7);

	ck_assert(bus_dispatch(b, 0x3f8, d, 8, false));   /* the whole window */
	ck_assert_uint_eq(r.offset, 0);
	ck_assert_uint_eq(r.len, 8);
	bus_destroy(b);
}
END_TEST

START_TEST(dispatch_mmio_high)
{
	struct bus *b = make_bus("mmio");
	struct rec r = { .id = 3 };
	uint8_t d[4] = { 0 };
	uint32_t v = 0xcafebabe;

	reg(b, 0xfeb00000ULL, 0x1000, &r);
	ck_assert(bus_dispatch(b, 0xfeb00010ULL, d, 4, false));
	ck_assert_uint_eq(r.offset, 0x10);
	ck_assert_uint_eq(r.len, 4);
	ck_assert_uint_eq(d[0], 3);
	ck_assert_uint_eq(d[1], 0x10);
	ck_assert(bus_dispatch(b, 0xfeb00ffcULL, (uint8_t *)&v, 4, true));
	ck_assert_uint_eq(r.offset, 0xffc);
	ck_assert_int_eq(memcmp(r.data, &v, 4), 0);
	bus_destroy(b);
}
END_TEST

START_TEST(top_of_address_space)
{
	struct bus *b = make_bus("mmio");
	struct rec r = { .id = 9 };
	uint8_t d[2];

	reg(b, UINT64_MAX - 15, 16, &r);          /* ends exactly at 2^64 - 1 */
	ck_assert_int_eq(who(b, UINT64_MAX), 9);
	ck_assert_uint_eq(r.offset, 15);
	ck_assert_int_eq(who(b, UINT64_MAX - 15), 9);
	ck_assert_uint_eq(r.offset, 0);
	ck_assert_int_eq(who(b, UINT64_MAX - 16), -1);
	/* An access that wraps past 2^64 is never claimed. */
	r.calls = 0;
	ck_assert(!bus_dispatch(b, UINT64_MAX, d, 2, false));
	ck_assert_uint_eq(d[0], 0xff);
	ck_assert_uint_eq(d[1], 0xff);
	ck_assert_uint_eq(r.calls, 0);
	bus_destroy(b);
}
END_TEST

START_TEST(register_invalid)
{
	struct bus *b = make_bus("pio");
	struct rec r = { .id = 1 };

	ck_assert_int_eq(bus_register(b, 0x100, 0, rec_handler, &r, "zero"), -EINVAL);
	ck_assert_int_eq(bus_register(b, UINT64_MAX, 2, rec_handler, &r, "wrap"), -EINVAL);
	ck_assert_int_eq(bus_register(b, UINT64_MAX - 0xf, 0x20, rec_handler, &r, "wrap"), -EINVAL);
	ck_assert_int_eq(bus_register(b, 2, UINT64_MAX, rec_handler, &r, "wrap"), -EINVAL);
	ck_assert_int_eq(bus_register(b, 0x100, 8, NULL, &r, "nofn"), -EINVAL);
	ck_assert_uint_eq(b->nr, 0);
	ck_assert_int_eq(who(b, 0x100), -1);
	/* The whole address space in one window is representable and allowed. */
	ck_assert_int_eq(bus_register(b, 0, UINT64_MAX, rec_handler, &r, "all-but-one"), 0);
	ck_assert_int_eq(who(b, UINT64_MAX - 1), 1);
	ck_assert_int_eq(who(b, UINT64_MAX), -1);
	bus_destroy(b);
}
END_TEST

START_TEST(overlap_refused)
{
	static const struct { uint64_t base, len; const char *shape; } bad[] = {
		{ 0x100, 0x10, "same window" },
		{ 0x100, 0x01, "same base, shorter" },
		{ 0x100, 0x40, "same base, longer" },
		{ 0x104, 0x04, "inside" },
		{ 0x10f, 0x01, "last byte" },
		{ 0x0f8, 0x10, "straddling the start" },
		{ 0x0f0, 0x11, "ending on the first byte" },
		{ 0x10c, 0x08, "straddling the end" },
		{ 0x0f0, 0x40, "enclosing" },
		{ 0x000, UINT64_MAX, "enclosing everything" },
	};
	struct bus *b = make_bus("pio");
	struct rec a = { .id = 1 }, x = { .id = 2 };
	unsigned int i;

	reg(b, 0x100, 0x10, &a);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		int ret = bus_register(b, bad[i].base, bad[i].len, rec_handler, &x, "x");

		ck_assert_msg(ret == -EEXIST, "%s (0x%llx+0x%llx): %d, want -EEXIST", bad[i].shape,
			      (unsigned long long)bad[i].base, (unsigned long long)bad[i].len, ret);
	}
	ck_assert_uint_eq(b->nr, 1);
	ck_assert_int_eq(who(b, 0x100), 1);
	ck_assert_int_eq(who(b, 0x10f), 1);
	ck_assert_int_eq(who(b, 0x0ff), -1);
	ck_assert_int_eq(who(b, 0x110), -1);
	ck_assert_uint_eq(x.calls, 0);
	bus_destroy(b);
}
END_TEST

START_TEST(overlap_between_two)
{
	/* A window that would bridge the gap between two others. */
	struct bus *b = make_bus("pio");
	struct rec a = { .id = 1 }, c = { .id = 3 }, x = { .id = 2 };

	reg(b, 0x100, 0x10, &a);
	reg(b, 0x200, 0x10, &c);
	ck_assert_int_eq(bus_register(b, 0x108, 0x100, rec_handler, &x, "x"), -EEXIST);
	ck_assert_int_eq(bus_register(b, 0x110, 0xf1, rec_handler, &x, "x"), -EEXIST);
	ck_assert_int_eq(bus_register(b, 0x1ff, 2, rec_handler, &x, "x"), -EEXIST);
	ck_assert_int_eq(bus_register(b, 0x110, 0xf0, rec_handler, &x, "x"), 0); /* exactly the gap */
	ck_assert_int_eq(who(b, 0x10f), 1);
	ck_assert_int_eq(who(b, 0x110), 2);
	ck_assert_int_eq(who(b, 0x1ff), 2);
	ck_assert_int_eq(who(b, 0x200), 3);
	bus_destroy(b);
}
END_TEST

START_TEST(adjacent_allowed)
{
	struct bus *b = make_bus("pio");
	struct rec lo = { .id = 1 }, mid = { .id = 2 }, hi = { .id = 3 };

	reg(b, 0x100, 0x10, &mid);
	reg(b, 0x0f0, 0x10, &lo);   /* ends right before mid */
	reg(b, 0x110, 0x10, &hi);   /* starts right after mid */
	ck_assert_uint_eq(b->nr, 3);
	ck_assert_int_eq(who(b, 0x0ef), -1);
	ck_assert_int_eq(who(b, 0x0f0), 1);
	ck_assert_int_eq(who(b, 0x0ff), 1);
	ck_assert_uint_eq(lo.offset, 0xf);
	ck_assert_int_eq(who(b, 0x100), 2);
	ck_assert_uint_eq(mid.offset, 0);
	ck_assert_int_eq(who(b, 0x10f), 2);
	ck_assert_int_eq(who(b, 0x110), 3);
	ck_assert_uint_eq(hi.offset, 0);
	ck_assert_int_eq(who(b, 0x11f), 3);
	ck_assert_int_eq(who(b, 0x120), -1);
	/* The table stays sorted by base. */
	ck_assert_uint_eq(b->win[0].base, 0x0f0);
	ck_assert_uint_eq(b->win[1].base, 0x100);
	ck_assert_uint_eq(b->win[2].base, 0x110);
	bus_destroy(b);
}
END_TEST

/* --- unclaimed accesses ------------------------------------------------------- */

START_TEST(straddling_unclaimed)
{
	struct bus *b = make_bus("pio");
	struct rec a = { .id = 1 }, c = { .id = 2 };
	uint8_t d[4];

	reg(b, 0x100, 8, &a);
	/* Over the end of a window into nothing. */
	memset(d, 0, sizeof(d));
	ck_assert(!bus_dispatch(b, 0x106, d, 4, false));
	ck_assert_int_eq(memcmp(d, "\xff\xff\xff\xff", 4), 0);
	/* From nothing into the start of a window. */
	memset(d, 0, sizeof(d));
	ck_assert(!bus_dispatch(b, 0x0fe, d, 4, false));
	ck_assert_int_eq(memcmp(d, "\xff\xff\xff\xff", 4), 0);
	/* A straddling write is dropped. */
	memcpy(d, "\x11\x22\x33\x44", 4);
	ck_assert(!bus_dispatch(b, 0x107, d, 2, true));
	ck_assert_int_eq(memcmp(d, "\x11\x22\x33\x44", 4), 0);
	ck_assert_uint_eq(a.calls, 0);
	/* Across two adjacent windows: neither may see it. */
	reg(b, 0x108, 8, &c);
	memset(d, 0, sizeof(d));
	ck_assert(!bus_dispatch(b, 0x106, d, 4, false));
	ck_assert_int_eq(memcmp(d, "\xff\xff\xff\xff", 4), 0);
	ck_assert_uint_eq(a.calls, 0);
	ck_assert_uint_eq(c.calls, 0);
	/* The last four bytes are fine. */
	ck_assert(bus_dispatch(b, 0x104, d, 4, false));
	ck_assert_uint_eq(a.calls, 1);
	ck_assert_uint_eq(a.offset, 4);
	bus_destroy(b);
}
END_TEST

START_TEST(unclaimed_fill)
{
	struct bus *b = make_bus("mmio");
	struct rec a = { .id = 1 };
	uint8_t d[8];
	uint32_t lens[] = { 1, 2, 4, 8 };
	unsigned int i;

	reg(b, 0x1000, 0x100, &a);
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		memset(d, 0, sizeof(d));
		ck_assert(!bus_dispatch(b, 0x2000, d, lens[i], false));
		ck_assert_uint_eq(d[0], 0xff);
		ck_assert_uint_eq(d[lens[i] - 1], 0xff);
		/* Only `len` bytes are written. */
		if (lens[i] < 8)
			ck_assert_uint_eq(d[lens[i]], 0);
	}
	/* Empty bus. */
	ck_assert_int_eq(bus_unregister(b, 0x1000), 0);
	memset(d, 0, sizeof(d));
	ck_assert(!bus_dispatch(b, 0x1000, d, 8, false));
	ck_assert_int_eq(memcmp(d, "\xff\xff\xff\xff\xff\xff\xff\xff", 8), 0);
	/* An unclaimed write leaves the data alone. */
	memset(d, 0x5a, sizeof(d));
	ck_assert(!bus_dispatch(b, 0x1000, d, 4, true));
	ck_assert_uint_eq(d[0], 0x5a);
	ck_assert_uint_eq(a.calls, 0);
	bus_destroy(b);
}
END_TEST

START_TEST(zero_length_access)
{
	struct bus *b = make_bus("pio");
	struct rec a = { .id = 1 };
	uint8_t d = 0x5a;

	reg(b, 0x100, 8, &a);
	ck_assert(!bus_dispatch(b, 0x100, &d, 0, false));
	ck_assert(!bus_dispatch(b, 0x100, &d, 0, true));
	ck_assert_uint_eq(d, 0x5a);
	ck_assert_uint_eq(a.calls, 0);
	bus_destroy(b);
}
END_TEST

/* --- unregister ---------------------------------------------------------------- */

START_TEST(unregister_reregister)
{
	struct bus *b = make_bus("pio");
	struct rec a = { .id = 1 }, c = { .id = 2 }, n = { .id = 5 };

	reg(b, 0x0f0, 0x10, &n);
	reg(b, 0x100, 0x10, &a);
	ck_assert_int_eq(bus_unregister(b, 0x104), -ENOENT);  /* not a window's base */
	ck_assert_int_eq(bus_unregister(b, 0x300), -ENOENT);
	ck_assert_int_eq(who(b, 0x104), 1);
	ck_assert_int_eq(bus_unregister(b, 0x100), 0);
	ck_assert_uint_eq(b->nr, 1);
	ck_assert_int_eq(who(b, 0x104), -1);
	ck_assert_int_eq(who(b, 0x0f4), 5);                    /* the neighbour stays */
	ck_assert_int_eq(bus_unregister(b, 0x100), -ENOENT);
	/* The space is free again, for a different shape and handler. */
	ck_assert_int_eq(bus_register(b, 0x0ff + 1, 0x20, rec_handler, &c, "c"), 0);
	ck_assert_int_eq(who(b, 0x11f), 2);
	ck_assert_uint_eq(c.offset, 0x1f);
	ck_assert_uint_eq(a.calls, 1);
	bus_destroy(b);
}
END_TEST

/* --- many windows ---------------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

#define NWIN 200

START_TEST(many_windows)
{
	struct bus *b = make_bus("mmio");
	static struct rec recs[NWIN];
	uint64_t base[NWIN], len[NWIN], seed = 0x9e3779b97f4a7c15ULL, at = 0x10000;
	unsigned int order[NWIN], i;

	/* Windows in address order with random sizes and gaps (some zero). */
	for (i = 0; i < NWIN; i++) {
		at += xorshift(&seed) % 4 == 0 ? 0 : 1 + xorshift(&seed) % 0x300;
		base[i] = at;
		len[i] = 1 + xorshift(&seed) % 0x1000;
		at += len[i];
		recs[i] = (struct rec){ .id = (int)i };
		order[i] = i;
	}
	/* Register in a shuffled order. */
	for (i = NWIN - 1; i > 0; i--) {
		unsigned int j = (unsigned int)(xorshift(&seed) % (i + 1)), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < NWIN; i++)
		reg(b, base[order[i]], len[order[i]], &recs[order[i]]);
	ck_assert_uint_eq(b->nr, NWIN);

	for (i = 0; i < NWIN; i++) {
		uint64_t off = xorshift(&seed) % len[i];
		uint8_t d[2];

		/* ids are < 256, so byte 0 identifies the window. */
		ck_assert_int_eq(who(b, base[i]), (int)i);
		ck_assert_uint_eq(recs[i].offset, 0);
		ck_assert_int_eq(who(b, base[i] + len[i] - 1), (int)i);
		ck_assert_uint_eq(recs[i].offset, len[i] - 1);
		ck_assert_int_eq(who(b, base[i] + off), (int)i);
		ck_assert_uint_eq(recs[i].offset, off);
		/* Every 2-byte access over the window's end is unclaimed. */
		ck_assert(!bus_dispatch(b, base[i] + len[i] - 1, d, 2, false));
		if (i + 1 < NWIN && base[i + 1] > base[i] + len[i])
			ck_assert_int_eq(who(b, base[i] + len[i]), -1);   /* a gap */
		/* Overlapping registrations are refused (a sample: each one logs). */
		if (i % 25 == 0)
			ck_assert_int_eq(bus_register(b, base[i] + off, 1, rec_handler, &recs[0], "x"),
					 -EEXIST);
	}
	ck_assert_int_eq(who(b, 0x10000 - 1), -1);
	ck_assert_int_eq(who(b, at), -1);

	/* Remove the even windows; the odd ones are unaffected. */
	for (i = 0; i < NWIN; i += 2)
		ck_assert_int_eq(bus_unregister(b, base[i]), 0);
	ck_assert_uint_eq(b->nr, NWIN / 2);
	for (i = 0; i < NWIN; i++)
		ck_assert_int_eq(who(b, base[i]), i % 2 ? (int)i : -1);
	bus_destroy(b);
}
END_TEST

START_TEST(two_buses_independent)
{
	struct bus *pio = make_bus("pio"), *mmio = make_bus("mmio");
	struct rec a = { .id = 1 }, c = { .id = 2 };

	reg(pio, 0x100, 0x10, &a);
	reg(mmio, 0x100, 0x10, &c);     /* same range, other bus: fine */
	ck_assert_int_eq(who(pio, 0x104), 1);
	ck_assert_int_eq(who(mmio, 0x104), 2);
	bus_destroy(pio);
	ck_assert_int_eq(who(mmio, 0x104), 2);
	bus_destroy(mmio);
	bus_destroy(NULL);
}
END_TEST

static Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *regs = tcase_create("register");
	TCase *unc = tcase_create("unclaimed");
	TCase *many = tcase_create("many");

	tcase_add_test(regs, dispatch_offsets);
	tcase_add_test(regs, dispatch_mmio_high);
	tcase_add_test(regs, top_of_address_space);
	tcase_add_test(regs, register_invalid);
	tcase_add_test(regs, overlap_refused);
	tcase_add_test(regs, overlap_between_two);
	tcase_add_test(regs, adjacent_allowed);
	tcase_add_test(regs, unregister_reregister);
	suite_add_tcase(s, regs);

	tcase_add_test(unc, straddling_unclaimed);
	tcase_add_test(unc, unclaimed_fill);
	tcase_add_test(unc, zero_length_access);
	suite_add_tcase(s, unc);

	tcase_add_test(many, many_windows);
	tcase_add_test(many, two_buses_independent);
	suite_add_tcase(s, many);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bus_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

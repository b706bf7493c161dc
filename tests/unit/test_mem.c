/* Unit tests for src/vmm/mem.c: layout, checked translation, dirty bitmap. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mem.h"

#define PAGE MEM_PAGE_SIZE

static struct guest_mem *make_mem(uint64_t size)
{
	struct guest_mem *m = NULL;
	int ret = mem_create(size, &m);

	ck_assert_msg(ret == 0, "mem_create(0x%llx) = %d", (unsigned long long)size, ret);
	ck_assert_ptr_nonnull(m);
	return m;
}

static bool dirty_bit(const struct guest_mem *m, uint64_t page)
{
	return (m->dirty[page / 64] >> (page % 64)) & 1;
}

static uint64_t dirty_count(const struct guest_mem *m)
{
	uint64_t i, n = 0;

	for (i = 0; i < m->dirty_words; i++)
		n += (uint64_t)__builtin_popcountll(m->dirty[i]);
	return n;
}

/* Asserts that exactly the pages [first, last] are dirty. */
static void expect_dirty_range(const struct guest_mem *m, uint64_t first, uint64_t last)
{
	uint64_t pg;

	for (pg = first; pg <= last; pg++)
		ck_assert_msg(dirty_bit(m, pg), "page %llu (0x%llx) not dirty",
			      (unsigned long long)pg, (unsigned long long)pg);
	ck_assert_msg(dirty_count(m) == last - first + 1, "%llu dirty pages, want %llu",
		      (unsigned long long)dirty_count(m), (unsigned long long)(last - first + 1));
}

static void clear_dirty(struct guest_mem *m)
{
	memset(m->dirty, 0, m->dirty_words * sizeof(uint64_t));
}

/* --- creation and layout ---------------------------------------------------- */

START_TEST(create_bad_sizes)
{
	static const uint64_t bad[] = {
		0, 1, PAGE, MEM_MIN_SIZE - PAGE,              /* too small */
		MEM_MIN_SIZE + 1, 64 * MiB + 100, 64 * MiB - 1, /* not a page multiple */
		MEM_MAX_SIZE + PAGE, UINT64_MAX, UINT64_MAX - PAGE + 1,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct guest_mem *m = (struct guest_mem *)(uintptr_t)0x1234;
		int ret = mem_create(bad[i], &m);

		ck_assert_msg(ret == -EINVAL, "mem_create(0x%llx) = %d, want -EINVAL",
			      (unsigned long long)bad[i], ret);
		ck_assert_ptr_eq(m, (struct guest_mem *)(uintptr_t)0x1234);
	}
}
END_TEST

START_TEST(layout_minimum)
{
	struct guest_mem *m = make_mem(MEM_MIN_SIZE);

	ck_assert_uint_eq(m->size, 2 * MiB);
	ck_assert_uint_eq(m->low_size, 2 * MiB);
	ck_assert_uint_eq(m->nr_regions, 1);
	ck_assert_uint_eq(m->dirty_words, 512 / 64);
	ck_assert_int_ge(m->memfd, 0);
	mem_destroy(m);
}
END_TEST

START_TEST(layout_64m)
{
	struct guest_mem *m = make_mem(64 * MiB);

	ck_assert_uint_eq(m->size, 64 * MiB);
	ck_assert_uint_eq(m->low_size, 64 * MiB);
	ck_assert_uint_eq(m->nr_regions, 1);
	ck_assert_uint_eq(m->regions[0].gpa, 0);
	ck_assert_uint_eq(m->regions[0].size, 64 * MiB);
	ck_assert_uint_eq(m->regions[0].offset, 0);
	ck_assert_uint_eq(m->dirty_words, (64 * MiB / PAGE) / 64);
	ck_assert_ptr_nonnull(m->host);
	ck_assert_uint_eq(dirty_count(m), 0);
	/* Fresh RAM reads as zero. */
	ck_assert_uint_eq(m->host[0], 0);
	ck_assert_uint_eq(m->host[64 * MiB - 1], 0);
	mem_destroy(m);
}
END_TEST

START_TEST(layout_odd_page_count)
{
	/* 2 MiB + 1 page: the bitmap needs a partial last word. */
	struct guest_mem *m = make_mem(MEM_MIN_SIZE + PAGE);

	ck_assert_uint_eq(m->dirty_words, 9);
	ck_assert_int_eq(mem_write(m, MEM_MIN_SIZE, "x", 1), 0);
	expect_dirty_range(m, 512, 512);
	mem_destroy(m);
}
END_TEST

START_TEST(layout_exactly_3g)
{
	struct guest_mem *m = make_mem(3 * GiB);

	ck_assert_uint_eq(m->nr_regions, 1);
	ck_assert_uint_eq(m->low_size, MEM_HOLE_START);
	ck_assert_ptr_null(mem_ptr(m, MEM_4G, 1));
	mem_destroy(m);
}
END_TEST

START_TEST(layout_one_page_above_hole)
{
	struct guest_mem *m = make_mem(3 * GiB + PAGE);

	ck_assert_uint_eq(m->nr_regions, 2);
	ck_assert_uint_eq(m->regions[1].gpa, MEM_4G);
	ck_assert_uint_eq(m->regions[1].size, PAGE);
	ck_assert_uint_eq(m->regions[1].offset, 3 * GiB);
	ck_assert_ptr_eq(mem_ptr(m, MEM_4G + PAGE - 1, 1), m->host + 3 * GiB + PAGE - 1);
	ck_assert_ptr_null(mem_ptr(m, MEM_4G + PAGE, 1));
	mem_destroy(m);
}
END_TEST

START_TEST(layout_4g)
{
	struct guest_mem *m = make_mem(4 * GiB);

	ck_assert_uint_eq(m->size, 4 * GiB);
	ck_assert_uint_eq(m->low_size, 3 * GiB);
	ck_assert_uint_eq(m->nr_regions, 2);
	ck_assert_uint_eq(m->regions[0].gpa, 0);
	ck_assert_uint_eq(m->regions[0].size, 3 * GiB);
	ck_assert_uint_eq(m->regions[0].offset, 0);
	ck_assert_uint_eq(m->regions[1].gpa, 4 * GiB);
	ck_assert_uint_eq(m->regions[1].size, 1 * GiB);
	ck_assert_uint_eq(m->regions[1].offset, 3 * GiB);
	ck_assert_uint_eq(m->dirty_words, (4 * GiB / PAGE) / 64);
	mem_destroy(m);
}
END_TEST

START_TEST(destroy_null)
{
	mem_destroy(NULL);
}
END_TEST

START_TEST(two_guests_independent)
{
	struct guest_mem *a = make_mem(64 * MiB), *b = make_mem(64 * MiB);

	ck_assert_ptr_ne(a->host, b->host);
	ck_assert_int_eq(mem_write(a, 0x1000, "A", 1), 0);
	ck_assert_uint_eq(b->host[0x1000], 0);
	ck_assert_uint_eq(dirty_count(b), 0);
	ck_assert_uint_eq(dirty_count(a), 1);
	mem_destroy(a);
	mem_destroy(b);
}
END_TEST

/* --- mem_ptr ------------------------------------------------------------------ */

START_TEST(ptr_boundaries_64m)
{
	struct guest_mem *m = make_mem(64 * MiB);
	const uint64_t end = 64 * MiB;

	ck_assert_ptr_eq(mem_ptr(m, 0, 1), m->host);
	ck_assert_ptr_eq(mem_ptr(m, 0, end), m->host);
	ck_assert_ptr_eq(mem_ptr(m, 0x12345, 10), m->host + 0x12345);
	ck_assert_ptr_eq(mem_ptr(m, end - 1, 1), m->host + end - 1);   /* last byte */
	ck_assert_ptr_eq(mem_ptr(m, end - 8, 8), m->host + end - 8);
	ck_assert_ptr_null(mem_ptr(m, end, 1));                         /* one past */
	ck_assert_ptr_null(mem_ptr(m, end - 4, 8));                     /* straddles the end */
	ck_assert_ptr_null(mem_ptr(m, 0, end + 1));
	ck_assert_ptr_null(mem_ptr(m, 1, end));
	ck_assert_ptr_null(mem_ptr(m, MEM_4G, 1));                      /* no high RAM */
	mem_destroy(m);
}
END_TEST

START_TEST(ptr_zero_length)
{
	struct guest_mem *m = make_mem(64 * MiB);

	ck_assert_ptr_null(mem_ptr(m, 0, 0));
	ck_assert_ptr_null(mem_ptr(m, 0x1000, 0));
	ck_assert(!mem_is_ram(m, 0x1000, 0));
	mem_destroy(m);
}
END_TEST

START_TEST(ptr_overflow)
{
	struct guest_mem *m = make_mem(4 * GiB);

	ck_assert_ptr_null(mem_ptr(m, UINT64_MAX, 1));
	ck_assert_ptr_null(mem_ptr(m, UINT64_MAX, 2));
	ck_assert_ptr_null(mem_ptr(m, UINT64_MAX, UINT64_MAX));
	ck_assert_ptr_null(mem_ptr(m, 1, UINT64_MAX));
	ck_assert_ptr_null(mem_ptr(m, 0, UINT64_MAX));
	/* gpa + len wraps around to inside low RAM. */
	ck_assert_ptr_null(mem_ptr(m, 0x1000, UINT64_MAX - 0x800));
	ck_assert_ptr_null(mem_ptr(m, MEM_4G + 0x1000, UINT64_MAX - MEM_4G));
	ck_assert_ptr_null(mem_ptr(m, UINT64_MAX - 0xfff, 0x2000));
	ck_assert(!mem_is_ram(m, UINT64_MAX, 1));
	mem_destroy(m);
}
END_TEST

START_TEST(ptr_hole_4g)
{
	struct guest_mem *m = make_mem(4 * GiB);
	const uint64_t low_end = 3 * GiB, high_end = 5 * GiB;

	ck_assert_ptr_eq(mem_ptr(m, low_end - 1, 1), m->host + low_end - 1);
	ck_assert_ptr_null(mem_ptr(m, low_end - 1, 2));          /* straddles the hole start */
	ck_assert_ptr_null(mem_ptr(m, low_end, 1));              /* inside the hole */
	ck_assert_ptr_null(mem_ptr(m, 0xFEE00000ULL, 4));        /* LAPIC */
	ck_assert_ptr_null(mem_ptr(m, MEM_4G - 1, 2));           /* straddles the hole end */
	ck_assert_ptr_null(mem_ptr(m, low_end - PAGE, 1 * GiB + 2 * PAGE)); /* across it */
	ck_assert_ptr_null(mem_ptr(m, 0, 5 * GiB));
	ck_assert_ptr_eq(mem_ptr(m, MEM_4G, 1), m->host + 3 * GiB);
	ck_assert_ptr_eq(mem_ptr(m, MEM_4G + 0x123456, 16), m->host + 3 * GiB + 0x123456);
	ck_assert_ptr_eq(mem_ptr(m, MEM_4G, 1 * GiB), m->host + 3 * GiB);
	ck_assert_ptr_eq(mem_ptr(m, high_end - 1, 1), m->host + 4 * GiB - 1);
	ck_assert_ptr_null(mem_ptr(m, high_end - 1, 2));
	ck_assert_ptr_null(mem_ptr(m, high_end, 1));
	ck_assert(mem_is_ram(m, MEM_4G, 4096));
	ck_assert(!mem_is_ram(m, low_end, 4096));
	mem_destroy(m);
}
END_TEST

START_TEST(high_region_backing)
{
	/* A byte written through the high region's pointer lands in the memfd at
	 * low_size + (gpa - 4G): check through the file, not the mapping. */
	struct guest_mem *m = make_mem(4 * GiB);
	const uint64_t gpa = MEM_4G + 0x2345678;
	uint8_t *p = mem_ptr(m, gpa, 4);
	uint8_t back[4] = { 0 };

	ck_assert_ptr_nonnull(p);
	memcpy(p, "\xde\xad\xbe\xef", 4);
	ck_assert_int_eq(pread(m->memfd, back, 4, (off_t)(3 * GiB + 0x2345678)), 4);
	ck_assert_int_eq(memcmp(back, "\xde\xad\xbe\xef", 4), 0);
	/* And nothing landed at the same offset of low RAM. */
	ck_assert_uint_eq(m->host[0x2345678], 0);
	mem_destroy(m);
}
END_TEST

/* --- mem_read / mem_write and the dirty bitmap -------------------------------- */

START_TEST(read_write_roundtrip)
{
	struct guest_mem *m = make_mem(64 * MiB);
	const char msg[] = "hello, guest";
	char back[sizeof(msg)] = { 0 };

	ck_assert_int_eq(mem_write(m, 0x7ff8, msg, sizeof(msg)), 0); /* crosses a page */
	ck_assert_int_eq(memcmp(m->host + 0x7ff8, msg, sizeof(msg)), 0);
	ck_assert_int_eq(mem_read(m, 0x7ff8, back, sizeof(back)), 0);
	ck_assert_str_eq(back, msg);
	mem_destroy(m);
}
END_TEST

START_TEST(read_write_fault)
{
	struct guest_mem *m = make_mem(64 * MiB);
	uint8_t buf[16];

	memset(buf, 0x5a, sizeof(buf));
	ck_assert_int_eq(mem_write(m, 64 * MiB, buf, 1), -EFAULT);
	ck_assert_int_eq(mem_write(m, 64 * MiB - 8, buf, 16), -EFAULT);
	ck_assert_int_eq(mem_write(m, UINT64_MAX - 3, buf, 8), -EFAULT);
	ck_assert_int_eq(mem_write(m, 0, buf, 0), -EFAULT);
	/* A refused write changes nothing, not even the part that was in RAM. */
	ck_assert_uint_eq(m->host[64 * MiB - 8], 0);
	ck_assert_uint_eq(dirty_count(m), 0);

	ck_assert_int_eq(mem_read(m, 64 * MiB, buf, 1), -EFAULT);
	ck_assert_int_eq(mem_read(m, 64 * MiB - 2, buf, 4), -EFAULT);
	ck_assert_int_eq(mem_read(m, MEM_4G, buf, 4), -EFAULT);
	/* A refused read leaves the destination alone. */
	ck_assert_uint_eq(buf[0], 0x5a);
	ck_assert_uint_eq(buf[15], 0x5a);
	mem_destroy(m);
}
END_TEST

START_TEST(read_write_fault_hole)
{
	struct guest_mem *m = make_mem(4 * GiB);
	uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	ck_assert_int_eq(mem_write(m, 3 * GiB, buf, 1), -EFAULT);
	ck_assert_int_eq(mem_write(m, 3 * GiB - 4, buf, 8), -EFAULT);
	ck_assert_int_eq(mem_write(m, MEM_4G - 4, buf, 8), -EFAULT);
	ck_assert_int_eq(mem_write(m, 5 * GiB - 4, buf, 8), -EFAULT);
	ck_assert_int_eq(mem_read(m, 0xFEC00000ULL, buf, 4), -EFAULT);
	ck_assert_uint_eq(dirty_count(m), 0);
	ck_assert_int_eq(mem_write(m, 5 * GiB - 8, buf, 8), 0);
	ck_assert_int_eq(memcmp(m->host + 4 * GiB - 8, buf, 8), 0);
	mem_destroy(m);
}
END_TEST

START_TEST(dirty_single_page)
{
	struct guest_mem *m = make_mem(64 * MiB);

	ck_assert_int_eq(mem_write(m, 0x5000, "x", 1), 0);
	expect_dirty_range(m, 5, 5);
	clear_dirty(m);
	ck_assert_int_eq(mem_write(m, 0x5fff, "x", 1), 0);   /* last byte of page 5 */
	expect_dirty_range(m, 5, 5);
	clear_dirty(m);
	ck_assert_int_eq(mem_write(m, 0, "x", 1), 0);
	expect_dirty_range(m, 0, 0);
	clear_dirty(m);
	ck_assert_int_eq(mem_write(m, 64 * MiB - 1, "x", 1), 0); /* the very last page */
	expect_dirty_range(m, 16383, 16383);
	ck_assert_uint_eq(m->dirty[255], 1ULL << 63);
	mem_destroy(m);
}
END_TEST

START_TEST(dirty_multi_page)
{
	struct guest_mem *m = make_mem(64 * MiB);
	static uint8_t buf[5 * 4096];

	/* Two bytes across a page boundary. */
	ck_assert_int_eq(mem_write(m, 0x1fff, "ab", 2), 0);
	expect_dirty_range(m, 1, 2);
	clear_dirty(m);
	/* 0x10ff0 .. 0x1400f: pages 0x10-0x14. */
	ck_assert_int_eq(mem_write(m, 0x10ff0, buf, 0x3020), 0);
	expect_dirty_range(m, 0x10, 0x14);
	clear_dirty(m);
	/* Exactly one page, aligned: one bit. */
	ck_assert_int_eq(mem_write(m, 0x20000, buf, 4096), 0);
	expect_dirty_range(m, 0x20, 0x20);
	clear_dirty(m);
	/* Across a bitmap word: pages 63 and 64. */
	ck_assert_int_eq(mem_write(m, 63 * 4096 + 4000, buf, 200), 0);
	expect_dirty_range(m, 63, 64);
	ck_assert_uint_eq(m->dirty[0], 1ULL << 63);
	ck_assert_uint_eq(m->dirty[1], 1ULL);
	mem_destroy(m);
}
END_TEST

START_TEST(dirty_high_region)
{
	struct guest_mem *m = make_mem(4 * GiB);
	const uint64_t low_pages = 3 * GiB / PAGE;

	/* The bit index is the memfd offset's page: (low_size + gpa - 4G) / 4096. */
	ck_assert_int_eq(mem_write(m, MEM_4G + 5 * PAGE + 10, "x", 1), 0);
	expect_dirty_range(m, low_pages + 5, low_pages + 5);
	clear_dirty(m);
	ck_assert_int_eq(mem_write(m, MEM_4G, "x", 1), 0);
	expect_dirty_range(m, low_pages, low_pages);
	clear_dirty(m);
	ck_assert_int_eq(mem_write(m, 5 * GiB - 1, "x", 1), 0);
	expect_dirty_range(m, 4 * GiB / PAGE - 1, 4 * GiB / PAGE - 1);
	clear_dirty(m);
	/* Last page of low RAM. */
	ck_assert_int_eq(mem_write(m, 3 * GiB - 2, "xy", 2), 0);
	expect_dirty_range(m, low_pages - 1, low_pages - 1);
	mem_destroy(m);
}
END_TEST

START_TEST(mark_dirty_checks_range)
{
	struct guest_mem *m = make_mem(4 * GiB);

	mem_mark_dirty(m, 3 * GiB, 4096);       /* hole */
	mem_mark_dirty(m, 5 * GiB, 1);          /* past the end */
	mem_mark_dirty(m, UINT64_MAX, 2);       /* wraps */
	mem_mark_dirty(m, 0x1000, 0);           /* empty */
	ck_assert_uint_eq(dirty_count(m), 0);
	mem_mark_dirty(m, 0x3000, 0x2001);
	expect_dirty_range(m, 3, 5);
	mem_destroy(m);
}
END_TEST

START_TEST(read_does_not_dirty)
{
	struct guest_mem *m = make_mem(64 * MiB);
	uint8_t buf[64];

	ck_assert_int_eq(mem_read(m, 0x4000, buf, sizeof(buf)), 0);
	ck_assert_ptr_nonnull(mem_ptr(m, 0x8000, 4096));
	ck_assert_uint_eq(dirty_count(m), 0);
	mem_destroy(m);
}
END_TEST

/* A guest reset: all of RAM (both regions) reads as zero again, the memfd
 * keeps its size and becomes sparse (SEEK_DATA finds nothing), and every
 * page is marked dirty for a migration in flight. */
START_TEST(reset_zeroes_ram)
{
	struct guest_mem *m = make_mem(MEM_HOLE_START + 8 * MiB);
	uint8_t buf[16];
	uint64_t i;

	ck_assert_int_eq(mem_write(m, 0x7ff8, "old kernel", 10), 0);
	ck_assert_int_eq(mem_write(m, MEM_4G + 0x1234, "high", 4), 0);
	clear_dirty(m);
	ck_assert_int_eq(mem_reset(m), 0);
	ck_assert_int_eq(lseek(m->memfd, m->size, SEEK_SET), (off_t)m->size);
	ck_assert_int_eq(lseek(m->memfd, 0, SEEK_DATA), -1);
	ck_assert_int_eq(errno, ENXIO);
	ck_assert_int_eq(mem_read(m, 0x7ff8, buf, 10), 0);
	for (i = 0; i < 10; i++)
		ck_assert_uint_eq(buf[i], 0);
	ck_assert_int_eq(mem_read(m, MEM_4G + 0x1234, buf, 4), 0);
	for (i = 0; i < 4; i++)
		ck_assert_uint_eq(buf[i], 0);
	for (i = 0; i < m->dirty_words; i++)
		ck_assert_uint_eq(m->dirty[i], ~0ULL);
	/* RAM still works after the reset. */
	ck_assert_int_eq(mem_write(m, 0x7ff8, "new", 3), 0);
	ck_assert_int_eq(memcmp(m->host + 0x7ff8, "new", 3), 0);
	mem_destroy(m);
}
END_TEST

/* mem_next_data on either backing: untouched RAM is one hole; written
 * pages are found (alone on the memfd; within their 2 MiB page with THP,
 * where the kernel may have populated the whole huge page); after a reset
 * everything is a hole again. */
static void check_next_data(unsigned int flags)
{
	uint64_t size = MEM_HOLE_START + 8 * MiB, start, end;
	uint64_t a = 5 * MEM_PAGE_SIZE + 12, b = 1000 * MEM_PAGE_SIZE;
	uint64_t hi = MEM_HOLE_START + 4 * MiB;        /* offset of a high page */
	uint64_t gran = flags & MEM_F_THP ? 2 * MiB : MEM_PAGE_SIZE;
	struct guest_mem *m;

	ck_assert_int_eq(mem_create_flags(size, flags, &m), 0);
	ck_assert_int_eq(mem_next_data(m, 0, &start, &end), -ENXIO);
	ck_assert_int_eq(mem_write(m, a, "x", 1), 0);
	ck_assert_int_eq(mem_write(m, b, "y", 1), 0);
	ck_assert_int_eq(mem_write(m, MEM_4G + 4 * MiB, "z", 1), 0);
	/* first extent holds a, starts at or before it, within its huge page */
	ck_assert_int_eq(mem_next_data(m, 0, &start, &end), 0);
	ck_assert_uint_le(start, a);
	ck_assert_uint_gt(end, a);
	ck_assert_uint_ge(start, a / gran * gran);
	ck_assert_uint_le(end, ALIGN_UP(b + 1, gran));
	if (!(flags & MEM_F_THP)) {
		ck_assert_uint_eq(start, 5 * MEM_PAGE_SIZE);
		ck_assert_uint_eq(end, 6 * MEM_PAGE_SIZE);
		ck_assert_int_eq(mem_next_data(m, end, &start, &end), 0);
		ck_assert_uint_eq(start, b);
		ck_assert_uint_eq(end, b + MEM_PAGE_SIZE);
	}
	/* from past the low pages: the high page, at its RAM offset */
	ck_assert_int_eq(mem_next_data(m, 8 * MiB, &start, &end), 0);
	ck_assert_uint_le(start, hi);
	ck_assert_uint_gt(end, hi);
	ck_assert_uint_ge(start, hi / gran * gran);
	ck_assert_int_eq(mem_next_data(m, ALIGN_UP(hi + 1, gran), &start, &end), -ENXIO);
	ck_assert_int_eq(mem_next_data(m, size, &start, &end), -ENXIO);
	ck_assert_int_eq(mem_reset(m), 0);
	ck_assert_int_eq(mem_next_data(m, 0, &start, &end), -ENXIO);
	ck_assert_uint_eq(m->host[a], 0);
	mem_destroy(m);
}

START_TEST(next_data_memfd)
{
	check_next_data(0);
}
END_TEST

/* THP backing: 2 MiB aligned, private, not inherited by fork(), zeroed by
 * a reset, holes found through /proc/self/pagemap. */
START_TEST(next_data_thp)
{
	struct guest_mem *m;
	pid_t pid;
	int st;

	check_next_data(MEM_F_THP);
	ck_assert_int_eq(mem_create_flags(64 * MiB, MEM_F_THP, &m), 0);
	ck_assert_int_eq(m->memfd, -1);
	ck_assert_uint_eq((uintptr_t)m->host % (2 * MiB), 0);
	m->host[0] = 1;
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* MADV_DONTFORK: the child has no mapping there */
		_exit(msync(m->host, MEM_PAGE_SIZE, MS_ASYNC) == 0 ? 1 : 0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mem_destroy(m);
}
END_TEST

static Suite *mem_suite(void)
{
	Suite *s = suite_create("mem");
	TCase *layout = tcase_create("layout");
	TCase *ptr = tcase_create("mem_ptr");
	TCase *rw = tcase_create("read_write");

	tcase_add_test(layout, create_bad_sizes);
	tcase_add_test(layout, layout_minimum);
	tcase_add_test(layout, layout_64m);
	tcase_add_test(layout, layout_odd_page_count);
	tcase_add_test(layout, layout_exactly_3g);
	tcase_add_test(layout, layout_one_page_above_hole);
	tcase_add_test(layout, layout_4g);
	tcase_add_test(layout, destroy_null);
	tcase_add_test(layout, two_guests_independent);
	suite_add_tcase(s, layout);

	tcase_add_test(ptr, ptr_boundaries_64m);
	tcase_add_test(ptr, ptr_zero_length);
	tcase_add_test(ptr, ptr_overflow);
	tcase_add_test(ptr, ptr_hole_4g);
	tcase_add_test(ptr, high_region_backing);
	suite_add_tcase(s, ptr);

	tcase_add_test(rw, read_write_roundtrip);
	tcase_add_test(rw, read_write_fault);
	tcase_add_test(rw, read_write_fault_hole);
	tcase_add_test(rw, dirty_single_page);
	tcase_add_test(rw, dirty_multi_page);
	tcase_add_test(rw, dirty_high_region);
	tcase_add_test(rw, mark_dirty_checks_range);
	tcase_add_test(rw, read_does_not_dirty);
	tcase_add_test(rw, reset_zeroes_ram);
	tcase_add_test(rw, next_data_memfd);
	tcase_add_test(rw, next_data_thp);
	suite_add_tcase(s, rw);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(mem_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

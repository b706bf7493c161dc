/*
 * Unit tests for src/virtio/virtq.c: split rings in fake guest memory
 * (mem_create, no KVM), good chains and hostile ones.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "virtio.h"

#define RAM (16 * MiB)
#define DESC_GPA 0x10000ULL
#define AVAIL_GPA 0x20000ULL
#define USED_GPA 0x30000ULL
#define DATA_GPA 0x100000ULL
#define TABLE_GPA 0x80000ULL

struct ring {
	struct guest_mem *m;
	struct virtq vq;
	struct log_ratelimit rl;
	uint16_t size;
	uint16_t avail_idx;
	struct virtq_elem *elem;
};

static void *gp(struct ring *r, uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(r->m, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void ring_init(struct ring *r, uint16_t size, bool event_idx)
{
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(mem_create(RAM, &r->m), 0);
	r->size = size;
	r->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(1000);
	r->vq.rl = &r->rl;
	r->vq.name = "test";
	r->elem = calloc(1, sizeof(*r->elem));
	ck_assert_ptr_nonnull(r->elem);
	ck_assert_int_eq(virtq_setup(&r->vq, r->m, size, DESC_GPA, AVAIL_GPA, USED_GPA, event_idx), 0);
}

static void ring_fini(struct ring *r)
{
	free(r->elem);
	mem_destroy(r->m);
}

static void set_desc_at(struct ring *r, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	struct virtq_desc d = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(gp(r, table + 16ULL * i, 16), &d, 16);
}

static void set_desc(struct ring *r, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	set_desc_at(r, DESC_GPA, i, addr, len, flags, next);
}

static void publish(struct ring *r, uint16_t head)
{
	uint16_t *avail = gp(r, AVAIL_GPA, 6 + 2ULL * r->size);

	avail[2 + (r->avail_idx % r->size)] = head;
	r->avail_idx++;
	avail[1] = r->avail_idx;
}

static uint16_t used_idx(struct ring *r)
{
	return *(uint16_t *)gp(r, USED_GPA + 2, 2);
}

static bool page_dirty(struct ring *r, uint64_t gpa)
{
	uint64_t pg = gpa / MEM_PAGE_SIZE;

	return r->m->dirty[pg / 64] & (1ULL << (pg % 64));
}

START_TEST(good_chain)
{
	struct ring r;
	uint32_t id, len;

	ring_init(&r, 16, false);
	set_desc(&r, 3, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 7);
	set_desc(&r, 7, DATA_GPA + 0x1000, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 9);
	set_desc(&r, 9, DATA_GPA + 0x3000, 1, VIRTQ_DESC_F_WRITE, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), -EAGAIN);
	publish(&r, 3);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	ck_assert_uint_eq(r.elem->head, 3);
	ck_assert_uint_eq(r.elem->nr_out, 1);
	ck_assert_uint_eq(r.elem->nr_in, 2);
	ck_assert_uint_eq(r.elem->out_len, 16);
	ck_assert_uint_eq(r.elem->in_len, 513);
	ck_assert_ptr_eq(r.elem->iov[1].iov_base, mem_ptr(r.m, DATA_GPA + 0x1000, 512));
	ck_assert_uint_eq(r.elem->iov[2].iov_len, 1);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), -EAGAIN);

	ck_assert(!page_dirty(&r, DATA_GPA + 0x1000));
	virtq_push(&r.vq, r.elem, 513);
	ck_assert_uint_eq(used_idx(&r), 1);
	memcpy(&id, gp(&r, USED_GPA + 4, 4), 4);
	memcpy(&len, gp(&r, USED_GPA + 8, 4), 4);
	ck_assert_uint_eq(id, 3);
	ck_assert_uint_eq(len, 513);
	/* Written data and the used ring are marked for migration. */
	ck_assert(page_dirty(&r, DATA_GPA + 0x1000));
	ck_assert(page_dirty(&r, DATA_GPA + 0x3000));
	ck_assert(page_dirty(&r, USED_GPA));
	ck_assert(!page_dirty(&r, DATA_GPA));   /* readable only */
	ring_fini(&r);
}
END_TEST

START_TEST(push_clamps_written)
{
	struct ring r;
	uint32_t len;

	ring_init(&r, 4, false);
	set_desc(&r, 0, DATA_GPA, 100, VIRTQ_DESC_F_WRITE, 0);
	publish(&r, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	virtq_push(&r.vq, r.elem, 1000000);  /* more than the buffers hold */
	memcpy(&len, gp(&r, USED_GPA + 8, 4), 4);
	ck_assert_uint_eq(len, 100);
	ring_fini(&r);
}
END_TEST

START_TEST(indirect_chain)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc_at(&r, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc_at(&r, TABLE_GPA, 2, DATA_GPA + 0x2000, 4096, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	set_desc_at(&r, TABLE_GPA, 1, DATA_GPA + 0x4000, 1, VIRTQ_DESC_F_WRITE, 0);
	set_desc(&r, 5, TABLE_GPA, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&r, 5);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	ck_assert_uint_eq(r.elem->head, 5);
	ck_assert_uint_eq(r.elem->nr_out, 1);
	ck_assert_uint_eq(r.elem->nr_in, 2);
	ck_assert_uint_eq(r.elem->in_len, 4097);
	ck_assert_ptr_eq(r.elem->iov[2].iov_base, mem_ptr(r.m, DATA_GPA + 0x4000, 1));
	ring_fini(&r);
}
END_TEST

/* An indirect table may be longer than the queue (Linux does that). */
START_TEST(indirect_longer_than_queue)
{
	struct ring r;
	uint16_t i;

	ring_init(&r, 4, false);
	for (i = 0; i < 32; i++)
		set_desc_at(&r, TABLE_GPA, i, DATA_GPA + 512ULL * i, 512,
			    i < 31 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(&r, 0, TABLE_GPA, 32 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	publish(&r, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	ck_assert_uint_eq(r.elem->nr_out, 32);
	ck_assert_uint_eq(r.elem->out_len, 32 * 512);
	ring_fini(&r);
}
END_TEST

static void expect_eio(struct ring *r, uint16_t head)
{
	publish(r, head);
	ck_assert_int_eq(virtq_pop(&r->vq, r->elem), -EIO);
}

START_TEST(loop)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc(&r, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&r, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(self_loop)
{
	struct ring r;

	ring_init(&r, 256, false);
	set_desc(&r, 9, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 9);
	expect_eio(&r, 9);
	ring_fini(&r);
}
END_TEST

START_TEST(indirect_loop)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc_at(&r, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	set_desc_at(&r, TABLE_GPA, 1, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	set_desc(&r, 0, TABLE_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

/* A chain that visits every descriptor once is as long as the queue; one
 * more link (back to the start) is too long. */
START_TEST(chain_longer_than_queue)
{
	struct ring r;
	uint16_t i;

	ring_init(&r, 4, false);
	for (i = 0; i < 4; i++)
		set_desc(&r, i, DATA_GPA, 16, 0, 0);
	for (i = 0; i < 3; i++)
		set_desc(&r, i, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	publish(&r, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	ck_assert_uint_eq(r.elem->nr_out, 4);
	set_desc(&r, 3, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(out_of_range)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc(&r, 0, RAM, 16, 0, 0);                 /* just past RAM */
	expect_eio(&r, 0);
	ring_fini(&r);
	ring_init(&r, 8, false);
	set_desc(&r, 0, RAM - 8, 16, 0, 0);             /* straddles the end */
	expect_eio(&r, 0);
	ring_fini(&r);
	ring_init(&r, 8, false);
	set_desc(&r, 0, 0xC0000000ULL, 4, VIRTQ_DESC_F_WRITE, 0); /* MMIO hole */
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(length_overflow)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc(&r, 0, 0xfffffffffffff000ULL, 0x2000, VIRTQ_DESC_F_WRITE, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
	ring_init(&r, 8, false);
	set_desc(&r, 0, DATA_GPA, 0xffffffffu, 0, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(avail_idx_jump)
{
	struct ring r;
	uint16_t *avail;

	ring_init(&r, 8, false);
	set_desc(&r, 0, DATA_GPA, 16, 0, 0);
	avail = gp(&r, AVAIL_GPA, 6 + 2 * 8);
	avail[1] = 9;                                   /* 9 > 8 entries ahead */
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), -EIO);
	avail[1] = 8;                                   /* exactly a full ring is fine */
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	avail[1] = 0xffff;                              /* backwards: 0xfffe ahead */
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), -EIO);
	ring_fini(&r);
}
END_TEST

START_TEST(bad_head)
{
	struct ring r;

	ring_init(&r, 8, false);
	expect_eio(&r, 8);
	ring_fini(&r);
}
END_TEST

START_TEST(bad_next)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc(&r, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 8);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(bad_indirect)
{
	struct ring r;

	/* nested */
	ring_init(&r, 8, false);
	set_desc_at(&r, TABLE_GPA, 0, TABLE_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	set_desc(&r, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
	/* INDIRECT with NEXT */
	ring_init(&r, 8, false);
	set_desc_at(&r, TABLE_GPA, 0, DATA_GPA, 16, 0, 0);
	set_desc(&r, 0, TABLE_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	expect_eio(&r, 0);
	ring_fini(&r);
	/* length not a multiple of 16, zero, too large */
	ring_init(&r, 8, false);
	set_desc(&r, 0, TABLE_GPA, 24, VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 0);
	set_desc(&r, 1, TABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);
	ring_fini(&r);
	ring_init(&r, 8, false);
	set_desc(&r, 1, TABLE_GPA, 0, VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 1);
	ring_fini(&r);
	ring_init(&r, 8, false);
	set_desc(&r, 0, TABLE_GPA, 16 * (VIRTQ_MAX_SEGS + 1), VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
	/* table outside RAM */
	ring_init(&r, 8, false);
	set_desc(&r, 0, RAM - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
	/* next inside the table beyond its end */
	ring_init(&r, 8, false);
	set_desc_at(&r, TABLE_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	set_desc_at(&r, TABLE_GPA, 1, DATA_GPA, 16, 0, 0);
	set_desc(&r, 0, TABLE_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(readable_after_writable)
{
	struct ring r;

	ring_init(&r, 8, false);
	set_desc(&r, 0, DATA_GPA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	set_desc(&r, 1, DATA_GPA, 16, 0, 0);
	expect_eio(&r, 0);
	ring_fini(&r);
}
END_TEST

START_TEST(setup_checks)
{
	struct guest_mem *m;
	struct virtq vq = { 0 };

	ck_assert_int_eq(mem_create(RAM, &m), 0);
	ck_assert_int_eq(virtq_setup(&vq, m, 8, DESC_GPA, AVAIL_GPA, USED_GPA, false), 0);
	ck_assert_int_eq(virtq_setup(&vq, m, 6, DESC_GPA, AVAIL_GPA, USED_GPA, false), -EINVAL);
	ck_assert_int_eq(virtq_setup(&vq, m, 0, DESC_GPA, AVAIL_GPA, USED_GPA, false), -EINVAL);
	ck_assert_int_eq(virtq_setup(&vq, m, 512, DESC_GPA, AVAIL_GPA, USED_GPA, false), -EINVAL);
	ck_assert_int_eq(virtq_setup(&vq, m, 8, DESC_GPA + 8, AVAIL_GPA, USED_GPA, false), -EINVAL);
	ck_assert_int_eq(virtq_setup(&vq, m, 8, DESC_GPA, AVAIL_GPA + 1, USED_GPA, false), -EINVAL);
	ck_assert_int_eq(virtq_setup(&vq, m, 8, DESC_GPA, AVAIL_GPA, USED_GPA + 2, false), -EINVAL);
	/* used ring ends past RAM */
	ck_assert_int_eq(virtq_setup(&vq, m, 8, DESC_GPA, AVAIL_GPA, RAM - 8, false), -EINVAL);
	ck_assert_int_eq(virtq_setup(&vq, m, 8, RAM, AVAIL_GPA, USED_GPA, false), -EINVAL);
	ck_assert(!vq.ready);
	/* A queue that is not ready pops nothing. */
	ck_assert_int_eq(virtq_pop(&vq, NULL), -EAGAIN);
	mem_destroy(m);
}
END_TEST

START_TEST(no_interrupt_flag)
{
	struct ring r;
	uint16_t *avail;

	ring_init(&r, 8, false);
	avail = gp(&r, AVAIL_GPA, 6 + 2 * 8);
	set_desc(&r, 0, DATA_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	publish(&r, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	virtq_push(&r.vq, r.elem, 0);
	ck_assert(virtq_should_notify(&r.vq));
	ck_assert(!virtq_should_notify(&r.vq));    /* nothing new */
	avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
	publish(&r, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	virtq_push(&r.vq, r.elem, 0);
	ck_assert(!virtq_should_notify(&r.vq));
	ring_fini(&r);
}
END_TEST

START_TEST(event_idx)
{
	struct ring r;
	uint16_t *avail, i, ev;

	ring_init(&r, 8, true);
	avail = gp(&r, AVAIL_GPA, 6 + 2 * 8);
	set_desc(&r, 0, DATA_GPA, 16, VIRTQ_DESC_F_WRITE, 0);
	avail[2 + 8] = 2;   /* used_event: interrupt once used idx passes 2 */
	for (i = 0; i < 4; i++) {
		publish(&r, 0);
		ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
		virtq_push(&r.vq, r.elem, 0);
		/* The first one always signals (no previous signal); then only
		 * when crossing used_event (idx 3 means entry 2 was used). */
		ck_assert_int_eq(virtq_should_notify(&r.vq), i == 0 || i == 2);
	}
	/* enable_kick publishes avail_event = last_avail and sees new work. */
	ck_assert(!virtq_enable_kick(&r.vq));
	memcpy(&ev, gp(&r, USED_GPA + 4 + 8 * 8, 2), 2);
	ck_assert_uint_eq(ev, 4);
	publish(&r, 0);
	ck_assert(virtq_enable_kick(&r.vq));
	ring_fini(&r);
}
END_TEST

START_TEST(elem_copy)
{
	struct ring r;
	uint8_t buf[40], out[40];
	unsigned int i;

	ring_init(&r, 8, false);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	memcpy(gp(&r, DATA_GPA, 10), buf, 10);
	memcpy(gp(&r, DATA_GPA + 0x100, 10), buf + 10, 10);
	set_desc(&r, 0, DATA_GPA, 10, VIRTQ_DESC_F_NEXT, 1);
	set_desc(&r, 1, DATA_GPA + 0x100, 10, VIRTQ_DESC_F_NEXT, 2);
	set_desc(&r, 2, DATA_GPA + 0x2000, 7, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	set_desc(&r, 3, DATA_GPA + 0x3000, 7, VIRTQ_DESC_F_WRITE, 0);
	publish(&r, 0);
	ck_assert_int_eq(virtq_pop(&r.vq, r.elem), 0);
	ck_assert_uint_eq(virtq_elem_read(r.elem, 5, out, 40), 15);
	ck_assert_int_eq(memcmp(out, buf + 5, 15), 0);
	ck_assert_uint_eq(virtq_elem_write(&r.vq, r.elem, 3, buf, 40), 11);
	ck_assert_int_eq(memcmp(gp(&r, DATA_GPA + 0x2003, 4), buf, 4), 0);
	ck_assert_int_eq(memcmp(gp(&r, DATA_GPA + 0x3000, 7), buf + 4, 7), 0);
	ck_assert(page_dirty(&r, DATA_GPA + 0x3000));
	ring_fini(&r);
}
END_TEST

/* Random rings: never a crash, and every buffer handed out lies in RAM. */
START_TEST(fuzz)
{
	struct ring r;
	unsigned int iter, i;
	uint64_t lo, hi;

	srand(1234);
	ring_init(&r, 16, true);
	lo = (uint64_t)(uintptr_t)r.m->host;
	hi = lo + RAM;
	for (iter = 0; iter < 20000; iter++) {
		for (i = 0; i < 16; i++) {
			uint64_t addr = rand() % 3 == 0 ? ((uint64_t)rand() << 33 | (uint64_t)rand()) :
				(uint64_t)(rand() % (RAM + 0x1000));
			set_desc(&r, (uint16_t)i, addr, (uint32_t)(rand() % 3 ? rand() % 8192 : rand()),
				 (uint16_t)(rand() & 7), (uint16_t)(rand() % 20));
		}
		for (i = 0; i < 4; i++)
			set_desc_at(&r, TABLE_GPA, (uint16_t)i, (uint64_t)(rand() % RAM),
				    (uint32_t)(rand() % 4096), (uint16_t)(rand() & 7), (uint16_t)(rand() % 6));
		if (rand() % 4 == 0)
			set_desc(&r, (uint16_t)(rand() % 16), TABLE_GPA, 64, VIRTQ_DESC_F_INDIRECT, 0);
		publish(&r, (uint16_t)(rand() % 18));
		int ret = virtq_pop(&r.vq, r.elem);

		if (ret == 0) {
			for (i = 0; i < (unsigned int)(r.elem->nr_out + r.elem->nr_in); i++) {
				uint64_t b = (uint64_t)(uintptr_t)r.elem->iov[i].iov_base;

				ck_assert(b >= lo && b + r.elem->iov[i].iov_len <= hi);
			}
			virtq_push(&r.vq, r.elem, (uint32_t)rand());
		} else {
			ck_assert_int_eq(ret, -EIO);
			/* a broken ring stays broken for this test: start over */
			ring_fini(&r);
			ring_init(&r, 16, true);
			lo = (uint64_t)(uintptr_t)r.m->host;
			hi = lo + RAM;
		}
	}
	ring_fini(&r);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtq");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, good_chain);
	tcase_add_test(tc, push_clamps_written);
	tcase_add_test(tc, indirect_chain);
	tcase_add_test(tc, indirect_longer_than_queue);
	tcase_add_test(tc, loop);
	tcase_add_test(tc, self_loop);
	tcase_add_test(tc, indirect_loop);
	tcase_add_test(tc, chain_longer_than_queue);
	tcase_add_test(tc, out_of_range);
	tcase_add_test(tc, length_overflow);
	tcase_add_test(tc, avail_idx_jump);
	tcase_add_test(tc, bad_head);
	tcase_add_test(tc, bad_next);
	tcase_add_test(tc, bad_indirect);
	tcase_add_test(tc, readable_after_writable);
	tcase_add_test(tc, setup_checks);
	tcase_add_test(tc, no_interrupt_flag);
	tcase_add_test(tc, event_idx);
	tcase_add_test(tc, elem_copy);
	tcase_add_test(tc, fuzz);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

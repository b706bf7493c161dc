/*
 * Split virtqueues (virtio 1.2 section 2.7), device side.
 *
 * The guest owns the descriptor table and the available ring and may change
 * them at any moment: every field is loaded once into a local and checked
 * there. Ring addresses are checked once in virtq_setup(); every buffer is
 * checked with mem_ptr() (start, length, overflow, one RAM region) as its
 * descriptor is read. A malformed ring makes virtq_pop() return -EIO and the
 * device goes to NEEDS_RESET; nothing here aborts.
 *
 * Thread context: a queue is used by one thread at a time: set up by a vCPU
 * thread before the device runs (published with a release store by the
 * transport), then popped and pushed only by the device's I/O thread.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "virtio.h"

/* Ring layouts (2.7.2): avail = flags, idx, ring[size], used_event;
 * used = flags, idx, {le32 id, le32 len}[size], avail_event. */
#define AVAIL_FLAGS 0
#define AVAIL_IDX 1
#define AVAIL_RING 2
#define USED_IDX_OFF 2
#define USED_RING_OFF 4

static uint64_t desc_bytes(uint16_t size) { return 16ULL * size; }
static uint64_t avail_bytes(uint16_t size) { return 6ULL + 2ULL * size; }
static uint64_t used_bytes(uint16_t size) { return 6ULL + 8ULL * size; }

static int bad(struct virtq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct virtq *vq, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (vq->rl)
		log_limited(vq->rl, LOG_WARN, "%s: malformed ring: %s", vq->name ? vq->name : "virtq", msg);
	return -EIO;
}

int virtq_setup(struct virtq *vq, struct guest_mem *mem, uint16_t size,
		uint64_t desc, uint64_t avail, uint64_t used, bool event_idx)
{
	void *d, *a, *u;

	vq->ready = false;
	if (size == 0 || size > VIRTQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	/* Alignment from 2.7: descriptors 16, avail 2, used 4. */
	if ((desc & 15) || (avail & 1) || (used & 3))
		return -EINVAL;
	d = mem_ptr(mem, desc, desc_bytes(size));
	a = mem_ptr(mem, avail, avail_bytes(size));
	u = mem_ptr(mem, used, used_bytes(size));
	if (!d || !a || !u)
		return -EINVAL;
	vq->mem = mem;
	vq->size = size;
	vq->event_idx = event_idx;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	vq->last_avail = 0;
	vq->used_idx = 0;
	vq->signalled_used = 0;
	vq->signalled_valid = false;
	vq->ready = true;
	return 0;
}

void virtq_reset(struct virtq *vq)
{
	vq->ready = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->last_avail = vq->used_idx = vq->signalled_used = 0;
	vq->signalled_valid = false;
}

/* One descriptor, copied once (the guest may be rewriting it). A byte copy:
 * an indirect table need not be aligned (2.7.5.3). */
static struct virtq_desc load_desc(const volatile struct virtq_desc *t, uint32_t i)
{
	const volatile uint8_t *src = (const volatile uint8_t *)t + 16ULL * i;
	uint8_t b[sizeof(struct virtq_desc)];
	struct virtq_desc d;
	unsigned int k;

	/* volatile: exactly one read of each byte, never re-read later. */
	for (k = 0; k < sizeof(b); k++)
		b[k] = src[k];
	memcpy(&d, b, sizeof(d));
	return d;
}

static int add_segment(struct virtq *vq, struct virtq_elem *elem, const struct virtq_desc *d)
{
	unsigned int n = elem->nr_out + elem->nr_in;
	void *p;

	if (d->flags & VIRTQ_DESC_F_WRITE) {
		elem->in_len += d->len;
	} else {
		/* 2.7.4.2: device-readable buffers come first. */
		if (elem->nr_in)
			return bad(vq, "readable descriptor after a writable one (head %u)", elem->head);
		elem->out_len += d->len;
	}
	if (d->len == 0)
		return 0;
	if (n >= VIRTQ_MAX_SEGS)
		return bad(vq, "chain of more than %u buffers (head %u)", VIRTQ_MAX_SEGS, elem->head);
	p = mem_ptr(vq->mem, d->addr, d->len);
	if (!p)
		return bad(vq, "buffer 0x%llx+0x%x is not guest RAM (head %u)",
			   (unsigned long long)d->addr, d->len, elem->head);
	elem->iov[n].iov_base = p;
	elem->iov[n].iov_len = d->len;
	elem->gpa[n] = d->addr;
	if (d->flags & VIRTQ_DESC_F_WRITE)
		elem->nr_in++;
	else
		elem->nr_out++;
	return 0;
}

/*
 * Follows the chain at `head`. Loops and over-long chains are caught by
 * counting: at most `size` descriptors in the ring and at most the indirect
 * table's own length inside it (an indirect table is itself bounded by
 * VIRTQ_MAX_SEGS and may not nest, 2.7.5.3.1).
 */
static int walk_chain(struct virtq *vq, uint16_t head, struct virtq_elem *elem)
{
	const volatile struct virtq_desc *table = vq->desc;
	uint32_t tsize = vq->size, budget = vq->size, used = 0, i = head;
	bool indirect = false;
	struct virtq_desc d;
	int ret;

	elem->head = head;
	elem->nr_out = elem->nr_in = 0;
	elem->out_len = elem->in_len = 0;
	for (;;) {
		if (used++ >= budget)
			return bad(vq, "descriptor chain longer than %u (loop?) at head %u", budget, head);
		d = load_desc(table, i);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (indirect)
				return bad(vq, "nested indirect table (head %u)", head);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return bad(vq, "indirect descriptor with NEXT (head %u)", head);
			if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SEGS)
				return bad(vq, "indirect table of %u bytes (head %u)", d.len, head);
			/* The table is checked whole; load_desc copies bytes. */
			table = mem_ptr(vq->mem, d.addr, d.len);
			if (!table)
				return bad(vq, "indirect table 0x%llx+0x%x is not guest RAM (head %u)",
					   (unsigned long long)d.addr, d.len, head);
			indirect = true;
			tsize = budget = d.len / 16;
			used = 0;
			i = 0;
			continue;
		}
		ret = add_segment(vq, elem, &d);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= tsize)
			return bad(vq, "next index %u outside a table of %u (head %u)", d.next, tsize, head);
		i = d.next;
	}
}

int virtq_pop(struct virtq *vq, struct virtq_elem *elem)
{
	uint16_t avail_idx, pending, head;
	int ret;

	if (!vq->ready)
		return -EAGAIN;
	/* Acquire pairs with the driver's write barrier before it bumps idx:
	 * the ring entry and descriptors are visible once idx is. */
	avail_idx = __atomic_load_n(&vq->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
	pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return -EAGAIN;
	if (pending > vq->size)
		return bad(vq, "avail idx %u is %u entries past %u (queue of %u)", avail_idx,
			   pending, vq->last_avail, vq->size);
	head = vq->avail[AVAIL_RING + (vq->last_avail & (vq->size - 1))];
	if (head >= vq->size)
		return bad(vq, "head %u outside a queue of %u", head, vq->size);
	ret = walk_chain(vq, head, elem);
	if (ret)
		return ret;
	vq->last_avail++;
	return 0;
}

/* Marks the first `written` bytes of the writable segments dirty. */
static void mark_written(struct virtq *vq, const struct virtq_elem *elem, uint64_t written)
{
	unsigned int i;

	for (i = elem->nr_out; i < elem->nr_out + elem->nr_in && written; i++) {
		uint64_t n = MIN(written, elem->iov[i].iov_len);

		mem_mark_dirty(vq->mem, elem->gpa[i], n);
		written -= n;
	}
}

void virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t written)
{
	uint32_t slot = vq->used_idx & (vq->size - 1);
	uint64_t off = USED_RING_OFF + 8ULL * slot;
	uint32_t id = elem->head;

	if (!vq->ready)
		return;
	if (written > elem->in_len)
		written = (uint32_t)elem->in_len;
	mark_written(vq, elem, written);
	memcpy((uint8_t *)vq->used + off, &id, 4);
	memcpy((uint8_t *)vq->used + off + 4, &written, 4);
	mem_mark_dirty(vq->mem, vq->used_gpa + off, 8);
	vq->used_idx++;
	/* Release: the entry (and the data written into the buffers) is
	 * visible before the driver sees the new idx (2.7.8.2). */
	__atomic_store_n((uint16_t *)(vq->used + USED_IDX_OFF), vq->used_idx, __ATOMIC_RELEASE);
	mem_mark_dirty(vq->mem, vq->used_gpa + USED_IDX_OFF, 2);
}

void virtq_unpop(struct virtq *vq)
{
	vq->last_avail--;
}

void virtq_fill(struct virtq *vq, uint16_t n, uint16_t head, uint32_t written)
{
	uint32_t slot = (uint16_t)(vq->used_idx + n) & (vq->size - 1);
	uint64_t off = USED_RING_OFF + 8ULL * slot;
	uint32_t id = head;

	if (!vq->ready)
		return;
	memcpy((uint8_t *)vq->used + off, &id, 4);
	memcpy((uint8_t *)vq->used + off + 4, &written, 4);
	mem_mark_dirty(vq->mem, vq->used_gpa + off, 8);
}

void virtq_flush(struct virtq *vq, uint16_t count)
{
	if (!vq->ready)
		return;
	vq->used_idx = (uint16_t)(vq->used_idx + count);
	/* Release: as in virtq_push, every filled entry before the idx. */
	__atomic_store_n((uint16_t *)(vq->used + USED_IDX_OFF), vq->used_idx, __ATOMIC_RELEASE);
	mem_mark_dirty(vq->mem, vq->used_gpa + USED_IDX_OFF, 2);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, new = vq->used_idx, event;
	bool notify;

	if (!vq->ready)
		return false;
	/* Full barrier: the used idx store must be visible before we read the
	 * driver's used_event/flags, or both sides could miss each other. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		event = vq->avail[AVAIL_RING + vq->size];
		/* vring_need_event (2.7.7.2): new passed event since old. */
		notify = !vq->signalled_valid ||
			 (uint16_t)(new - event - 1) < (uint16_t)(new - old);
	} else {
		notify = !(vq->avail[AVAIL_FLAGS] & VIRTQ_AVAIL_F_NO_INTERRUPT) && new != old;
	}
	vq->signalled_used = new;
	vq->signalled_valid = true;
	return notify;
}

bool virtq_enable_kick(struct virtq *vq)
{
	uint64_t off = USED_RING_OFF + 8ULL * vq->size;
	uint16_t avail_idx;

	if (!vq->ready)
		return false;
	if (vq->event_idx) {
		/* Kick me when the entry at last_avail is published. */
		__atomic_store_n((uint16_t *)(vq->used + off), vq->last_avail, __ATOMIC_RELAXED);
		mem_mark_dirty(vq->mem, vq->used_gpa + off, 2);
	} else {
		__atomic_store_n((uint16_t *)vq->used, 0, __ATOMIC_RELAXED);
		mem_mark_dirty(vq->mem, vq->used_gpa, 2);
	}
	/* Full barrier: the store above against the driver's idx update, so a
	 * buffer published meanwhile is seen here or kicks us. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail_idx = __atomic_load_n(&vq->avail[AVAIL_IDX], __ATOMIC_ACQUIRE);
	return avail_idx != vq->last_avail;
}

bool virtq_has_avail(struct virtq *vq)
{
	return vq->ready &&
	       __atomic_load_n(&vq->avail[AVAIL_IDX], __ATOMIC_ACQUIRE) != vq->last_avail;
}

size_t virtq_elem_read(const struct virtq_elem *elem, uint64_t skip, void *dst, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = 0; i < elem->nr_out && done < len; i++) {
		size_t seg = elem->iov[i].iov_len, n;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		n = MIN(seg - skip, len - done);
		memcpy((uint8_t *)dst + done, (uint8_t *)elem->iov[i].iov_base + skip, n);
		done += n;
		skip = 0;
	}
	return done;
}

size_t virtq_elem_write(struct virtq *vq, const struct virtq_elem *elem, uint64_t skip,
			const void *src, size_t len)
{
	size_t done = 0;
	unsigned int i;

	for (i = elem->nr_out; i < elem->nr_out + elem->nr_in && done < len; i++) {
		size_t seg = elem->iov[i].iov_len, n;

		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		n = MIN(seg - skip, len - done);
		memcpy((uint8_t *)elem->iov[i].iov_base + skip, (const uint8_t *)src + done, n);
		mem_mark_dirty(vq->mem, elem->gpa[i] + skip, n);
		done += n;
		skip = 0;
	}
	return done;
}

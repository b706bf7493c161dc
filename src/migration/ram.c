/*
 * RAM for migration: dirty logging, the passes that send pages, and the
 * loader that applies page batches on the destination.
 *
 * Source. Dirty logging uses KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with
 * INITIALLY_SET when KVM has it: enabling the log costs nothing up front
 * (every page starts dirty), and pages are write-protected again with
 * KVM_CLEAR_DIRTY_LOG chunk by chunk just before they are copied, so large
 * guests never stall in one long ioctl. Pages that skiff's devices wrote
 * (guest_mem.dirty) are merged into the same bitmap. A page is always
 * cleared before it is copied: a guest write after the clear marks it dirty
 * again and it goes out in a later pass.
 *
 * The first pass skips holes of the RAM memfd (never-touched memory) with
 * lseek(SEEK_DATA): they are zero by definition and reading them would
 * allocate them. Pages that read as all zeros are described, not sent.
 *
 * Batch record (MIG_REC_RAM): u32 count, u32 reserved, count entries
 * { u64 gpa, u32 pages, u32 kind (1 zero, 2 data) }, then the data pages of
 * the data entries in order.
 *
 * Thread context: the migration thread, except mig_ram_init/fini.
 */
#include <errno.h>
#include <linux/falloc.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "migration.h"
#include "migration_priv.h"

#define PAGE MEM_PAGE_SIZE
#define BATCH_DATA_PAGES 256        /* 1 MiB of data per record */
#define BATCH_ENTRIES 256
#define CLEAR_CHUNK_PAGES 4096ull   /* 16 MiB per KVM_CLEAR_DIRTY_LOG */
#define ENTRY_BYTES 16u

enum { KIND_ZERO = 1, KIND_DATA = 2 };

int mig_ram_init(struct mig_ram *r, struct guest_mem *mem, int vm_fd)
{
	*r = (struct mig_ram){ .mem = mem, .vm_fd = vm_fd };
	r->nr_pages = mem->size / PAGE;
	r->words = (r->nr_pages + 63) / 64;
	r->bitmap = calloc(r->words, sizeof(uint64_t));
	r->scratch = calloc(r->words, sizeof(uint64_t));
	if (!r->bitmap || !r->scratch) {
		mig_ram_fini(r);
		return -ENOMEM;
	}
	return 0;
}

void mig_ram_fini(struct mig_ram *r)
{
	free(r->bitmap);
	free(r->scratch);
	r->bitmap = r->scratch = NULL;
}

int mig_sender_init(struct mig_sender *x, struct mig_ram *r, struct mig_stream *s,
		    unsigned int part, unsigned int nparts)
{
	*x = (struct mig_sender){ .r = r, .s = s, .part = part, .nparts = nparts };
	mig_buf_init(&x->out);
	x->batch_data = malloc(BATCH_DATA_PAGES * PAGE);
	x->entries = calloc(BATCH_ENTRIES, ENTRY_BYTES);
	if (!x->batch_data || !x->entries) {
		mig_sender_fini(x);
		return -ENOMEM;
	}
	return 0;
}

void mig_sender_fini(struct mig_sender *x)
{
	free(x->batch_data);
	free(x->entries);
	mig_buf_free(&x->out);
	x->batch_data = NULL;
	x->entries = NULL;
}

static int set_slot_logging(struct mig_ram *r, bool on)
{
	for (unsigned int i = 0; i < r->mem->nr_regions; i++) {
		const struct mem_region *reg = &r->mem->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0,
			.guest_phys_addr = reg->gpa,
			.memory_size = reg->size,
			.userspace_addr = (uint64_t)(uintptr_t)(r->mem->host + reg->offset),
		};

		if (ioctl(r->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
			return -errno;
	}
	return 0;
}

int mig_ram_log_start(struct mig_ram *r)
{
	int caps, ret;

	if (!r->manual_checked) {
		/* The capability can only be enabled once per VM; it then
		 * stays on (harmless when logging is off). */
		caps = ioctl(r->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
		if (caps > 0 && (caps & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)) {
			struct kvm_enable_cap cap = {
				.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
				.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
					   (caps & KVM_DIRTY_LOG_INITIALLY_SET),
			};

			if (ioctl(r->vm_fd, KVM_ENABLE_CAP, &cap) == 0)
				r->manual = true;
		}
		r->manual_checked = true;
	}
	ret = set_slot_logging(r, true);
	if (ret)
		return ret;
	r->logging = true;
	/* Pass 1 sends everything (holes are skipped while sending). */
	memset(r->bitmap, 0xff, r->words * sizeof(uint64_t));
	if (r->nr_pages % 64)
		r->bitmap[r->words - 1] = (1ull << (r->nr_pages % 64)) - 1;
	r->dirty_pages = r->nr_pages;
	r->first_pass = true;
	/* What devices wrote before now is covered by pass 1. */
	for (uint64_t w = 0; w < r->mem->dirty_words; w++)
		__atomic_store_n(&r->mem->dirty[w], 0, __ATOMIC_RELAXED);
	return 0;
}

void mig_ram_log_stop(struct mig_ram *r)
{
	if (!r->logging)
		return;
	if (set_slot_logging(r, false))
		log_warn("migration: cannot turn dirty logging off: %s", strerror(errno));
	r->logging = false;
}

static uint64_t popcount_words(const uint64_t *w, uint64_t n)
{
	uint64_t c = 0;

	/* Most words are zero; without POPCNT in the baseline ISA each
	 * count is a dozen instructions (8 us over a 1 GiB guest's bitmap). */
	for (uint64_t i = 0; i < n; i++) {
		if (w[i])
			c += (uint64_t)__builtin_popcountll(w[i]);
	}
	return c;
}

int mig_ram_sync(struct mig_ram *r)
{
	for (unsigned int i = 0; i < r->mem->nr_regions; i++) {
		const struct mem_region *reg = &r->mem->regions[i];
		uint64_t first = reg->offset / PAGE, pages = reg->size / PAGE;
		struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = r->scratch };

		/* Region offsets are multiples of 64 pages (MEM_HOLE_START and
		 * sizes are), so the slot's bitmap lines up with ours. */
		if (first % 64)
			return -EINVAL;
		if (ioctl(r->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0)
			return -errno;
		for (uint64_t w = 0; w < (pages + 63) / 64; w++)
			r->bitmap[first / 64 + w] |= r->scratch[w];
	}
	/* Pages skiff's devices wrote (atomic OR from I/O threads). Most
	 * words are zero: a plain load skips them (a bit set just after it
	 * stays for the next sync): a locked exchange on every word of a
	 * 1 GiB guest added ~12 us to the downtime. */
	for (uint64_t w = 0; w < r->mem->dirty_words && w < r->words; w++) {
		uint64_t v;

		if (!__atomic_load_n(&r->mem->dirty[w], __ATOMIC_RELAXED))
			continue;
		v = __atomic_exchange_n(&r->mem->dirty[w], 0, __ATOMIC_ACQ_REL);
		r->bitmap[w] |= v;
	}
	r->dirty_pages = popcount_words(r->bitmap, r->words);
	return 0;
}

/* The KVM slot and slot-relative page of memfd page `pg`. */
static unsigned int slot_of(const struct mig_ram *r, uint64_t pg, uint64_t *rel)
{
	for (unsigned int i = 0; i < r->mem->nr_regions; i++) {
		const struct mem_region *reg = &r->mem->regions[i];
		uint64_t first = reg->offset / PAGE;

		if (pg >= first && pg < first + reg->size / PAGE) {
			*rel = pg - first;
			return i;
		}
	}
	*rel = 0;
	return 0;
}

static uint64_t page_gpa(const struct mig_ram *r, uint64_t pg)
{
	uint64_t rel;
	unsigned int i = slot_of(r, pg, &rel);

	return r->mem->regions[i].gpa + rel * PAGE;
}

/* Write-protects (re-arms logging for) the pages in bitmap words
 * [w0, w1) that are set in our bitmap, before they are copied. The range
 * never crosses a slot (chunks are slot-aligned by the caller). */
static int clear_chunk(struct mig_ram *r, uint64_t w0, uint64_t w1)
{
	uint64_t rel;
	unsigned int slot;
	struct kvm_clear_dirty_log c;
	uint64_t slot_pages;

	/* The final pass runs with the vCPUs parked: nothing can dirty a page
	 * behind our back, and write-protecting is pure downtime. */
	if (!r->manual || r->final_pass)
		return 0;
	slot = slot_of(r, w0 * 64, &rel);
	slot_pages = r->mem->regions[slot].size / PAGE;
	c = (struct kvm_clear_dirty_log){
		.slot = slot,
		.first_page = rel,
		.num_pages = (uint32_t)MIN((w1 - w0) * 64, slot_pages - rel),
		.dirty_bitmap = &r->bitmap[w0],
	};
	if (ioctl(r->vm_fd, KVM_CLEAR_DIRTY_LOG, &c) < 0)
		return -errno;
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (unsigned int i = 0; i < PAGE / 8; i += 8) {
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] | q[i + 5] | q[i + 6] | q[i + 7])
			return false;
	}
	return true;
}

static int flush_batch(struct mig_sender *x)
{
	struct mig_buf *b = &x->out;
	int ret;

	if (!x->nr_entries)
		return 0;
	mig_buf_reset(b);
	mig_put_u32(b, x->nr_entries);
	mig_put_u32(b, 0);
	mig_put_bytes(b, x->entries, (size_t)x->nr_entries * ENTRY_BYTES);
	mig_put_bytes(b, x->batch_data, x->nr_data * PAGE);
	if (b->err)
		return b->err;
	ret = mig_stream_put(x->s, MIG_REC_RAM, b->data, b->len);
	x->nr_entries = 0;
	x->nr_data = 0;
	x->last_kind = 0;
	return ret;
}

/* Adds page `pg` (zero or data) to the batch, extending the last entry when
 * it is the next page of the same kind. */
static int add_page(struct mig_sender *x, uint64_t pg, bool zero)
{
	struct mig_ram *r = x->r;
	uint64_t gpa = page_gpa(r, pg);
	unsigned int kind = zero ? KIND_ZERO : KIND_DATA;
	uint8_t *e;
	int ret;

	if (!zero && x->nr_data == BATCH_DATA_PAGES) {
		ret = flush_batch(x);
		if (ret)
			return ret;
	}
	if (!zero)
		memcpy(x->batch_data + x->nr_data * PAGE, r->mem->host + pg * PAGE, PAGE);
	if (x->nr_entries && x->last_kind == kind && x->last_gpa_end == gpa &&
	    x->last_pages < UINT32_MAX) {
		e = x->entries + (x->nr_entries - 1) * ENTRY_BYTES;
		x->last_pages++;
		e[8] = (uint8_t)x->last_pages;
		e[9] = (uint8_t)(x->last_pages >> 8);
		e[10] = (uint8_t)(x->last_pages >> 16);
		e[11] = (uint8_t)(x->last_pages >> 24);
	} else {
		if (x->nr_entries == BATCH_ENTRIES) {
			/* The copied page (at index nr_data) is dropped by
			 * the flush and copied again by the retry. */
			ret = flush_batch(x);
			if (ret)
				return ret;
			return add_page(x, pg, zero);
		}
		e = x->entries + x->nr_entries * ENTRY_BYTES;
		for (int k = 0; k < 8; k++)
			e[k] = (uint8_t)(gpa >> (8 * k));
		e[8] = 1;
		e[9] = e[10] = e[11] = 0;
		e[12] = (uint8_t)kind;
		e[13] = e[14] = e[15] = 0;
		x->nr_entries++;
		x->last_kind = kind;
		x->last_pages = 1;
	}
	x->last_gpa_end = gpa + PAGE;
	if (zero) {
		x->zero_pages++;
	} else {
		x->nr_data++;
		x->data_pages++;
	}
	return 0;
}

/* Is RAM page `pg` inside a hole (never written)? The sender caches the
 * extent around the last page looked up. Only used in the first pass. */
static bool in_hole(struct mig_sender *x, uint64_t pg)
{
	struct mig_ram *r = x->r;
	uint64_t off = pg * PAGE, start, end;
	int ret;

	if (off >= (uint64_t)x->extent_start && off < (uint64_t)x->extent_end)
		return x->extent_hole;
	x->extent_start = (off_t)off;
	ret = mem_next_data(r->mem, off, &start, &end);
	if (ret) {
		/* ENXIO: no data from here to the end; another error: send
		 * this page as if it held data (never skip what may). */
		x->extent_hole = ret == -ENXIO;
		x->extent_end = x->extent_hole ? (off_t)r->mem->size : (off_t)(off + PAGE);
		return x->extent_hole;
	}
	if (start > off) {
		x->extent_hole = true;
		x->extent_end = (off_t)start;
		return true;
	}
	x->extent_hole = false;
	x->extent_end = (off_t)(end > off ? end : off + PAGE);
	return false;
}

int mig_ram_send_part(struct mig_sender *x, const atomic_bool *cancel)
{
	struct mig_ram *r = x->r;
	uint64_t w0, w1, w, slot_end_w, chunk = 0;
	int ret;

	x->extent_start = x->extent_end = 0;
	for (w0 = 0; w0 < r->words; w0 = w1, chunk++) {
		uint64_t rel;
		unsigned int slot = slot_of(r, w0 * 64, &rel);
		const struct mem_region *reg = &r->mem->regions[slot];

		slot_end_w = (reg->offset / PAGE + reg->size / PAGE + 63) / 64;
		w1 = MIN(w0 + CLEAR_CHUNK_PAGES / 64, slot_end_w);
		/* A chunk always goes through the same channel, so a page's
		 * copies arrive in order on the destination. */
		if (chunk % x->nparts != x->part)
			continue;
		if (cancel && atomic_load(cancel))
			return -ECANCELED;
		for (w = w0; w < w1 && !r->bitmap[w]; w++)
			;
		if (w == w1)
			continue;
		ret = clear_chunk(r, w0, w1);
		if (ret)
			return ret;
		for (w = w0; w < w1; w++) {
			uint64_t bits = r->bitmap[w];

			r->bitmap[w] = 0;
			while (bits) {
				uint64_t pg = w * 64 + (uint64_t)__builtin_ctzll(bits);
				bool zero;

				bits &= bits - 1;
				if (r->first_pass && in_hole(x, pg))
					zero = true;
				else
					zero = page_is_zero(r->mem->host + pg * PAGE);
				ret = add_page(x, pg, zero);
				if (ret)
					return ret;
			}
		}
	}
	return flush_batch(x);
}

void mig_ram_pass_done(struct mig_ram *r, struct mig_sender *x, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		r->data_pages += x[i].data_pages;
		r->zero_pages += x[i].zero_pages;
		x[i].data_pages = x[i].zero_pages = 0;
	}
	r->first_pass = false;
	r->dirty_pages = 0;
}

int mig_ram_send(struct mig_ram *r, struct mig_stream *s, const atomic_bool *cancel)
{
	struct mig_sender x;
	int ret = mig_sender_init(&x, r, s, 0, 1);

	if (ret)
		return ret;
	ret = mig_ram_send_part(&x, cancel);
	mig_ram_pass_done(r, &x, 1);
	mig_sender_fini(&x);
	return ret;
}

/* --- verify hash -------------------------------------------------------------- */

uint64_t mig_ram_hash(struct guest_mem *mem)
{
	uint64_t h = 0, off = 0, start, end, pg;
	int ret;

	/* Sum over non-zero pages of CRC32C(page) seeded with the page's
	 * index in RAM: zero pages and holes add nothing, so both sides can
	 * skip holes without reading (and allocating) them. If the holes
	 * cannot be listed, every page is read. */
	while (off < mem->size) {
		ret = mem_next_data(mem, off, &start, &end);
		if (ret == -ENXIO)
			break;
		if (ret) {
			start = off;
			end = mem->size;
		}
		for (pg = start; pg < end; pg += PAGE) {
			const uint8_t *p = mem->host + pg;

			if (!page_is_zero(p))
				h += mig_crc32c((uint32_t)(pg / PAGE), p, PAGE);
		}
		off = end;
	}
	return h;
}

/* --- destination ---------------------------------------------------------------- */

int mig_ram_load(struct guest_mem *mem, uint64_t *written, const void *p, size_t len,
		 uint64_t *pages, char *err, size_t errlen)
{
	struct mig_rd rd, data;
	uint32_t count;
	uint64_t data_pages = 0;

	mig_rd_init(&rd, p, len);
	count = mig_get_u32(&rd);
	(void)mig_get_u32(&rd);
	if (!mig_rd_done(&rd, false) || count == 0 || count > (len - 8) / ENTRY_BYTES) {
		snprintf(err, errlen, "RAM batch with a bad entry count (%u)", count);
		return -EBADMSG;
	}
	/* First pass: check every entry and that the data adds up exactly. */
	for (uint32_t i = 0; i < count; i++) {
		uint64_t gpa = mig_get_u64(&rd);
		uint32_t n = mig_get_u32(&rd), kind = mig_get_u32(&rd);

		if (n == 0 || gpa % PAGE || (kind != KIND_ZERO && kind != KIND_DATA) ||
		    !mem_ptr(mem, gpa, (uint64_t)n * PAGE)) {
			snprintf(err, errlen, "RAM batch entry %u (gpa 0x%llx, %u pages, kind %u) is "
				 "not inside this VM's RAM or is malformed", i,
				 (unsigned long long)gpa, n, kind);
			return -EBADMSG;
		}
		if (kind == KIND_DATA)
			data_pages += n;
	}
	if (mig_rd_left(&rd) != data_pages * PAGE) {
		snprintf(err, errlen, "RAM batch carries %zu data bytes for %llu pages",
			 mig_rd_left(&rd), (unsigned long long)data_pages);
		return -EBADMSG;
	}
	/* Second pass: apply. */
	mig_rd_init(&data, (const uint8_t *)p + 8 + (size_t)count * ENTRY_BYTES,
		    data_pages * PAGE);
	mig_rd_init(&rd, (const uint8_t *)p + 8, (size_t)count * ENTRY_BYTES);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t gpa = mig_get_u64(&rd);
		uint32_t n = mig_get_u32(&rd), kind = mig_get_u32(&rd);
		uint8_t *host = mem_ptr(mem, gpa, (uint64_t)n * PAGE);
		uint64_t pg0 = (uint64_t)(host - mem->host) / PAGE;

		/* Fresh RAM: one call allocates the run instead of a page fault
		 * per page (best effort; the copy faults them in otherwise). */
		if (kind == KIND_DATA && n >= 8)
			(void)madvise(host, (size_t)n * PAGE, MADV_POPULATE_WRITE);

		for (uint32_t k = 0; k < n; k++) {
			uint64_t pg = pg0 + k;
			uint64_t bit = 1ull << (pg % 64);

			if (kind == KIND_DATA) {
				mig_get_bytes(&data, host + (uint64_t)k * PAGE, PAGE);
				/* Channels load in parallel: their chunks never share
				 * a word, but a hostile stream might make them. */
				__atomic_fetch_or(&written[pg / 64], bit, __ATOMIC_RELAXED);
			} else if (__atomic_load_n(&written[pg / 64], __ATOMIC_RELAXED) & bit) {
				/* Only pages this load wrote can be non-zero:
				 * the destination's RAM starts empty. */
				memset(host + (uint64_t)k * PAGE, 0, PAGE);
			}
		}
		__atomic_fetch_add(pages, n, __ATOMIC_RELAXED);
	}
	return 0;
}

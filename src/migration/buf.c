/*
 * Little-endian record buffers and CRC32C for the migration stream.
 *
 * Thread context: any; a buffer or reader belongs to one thread at a time.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migration.h"

void mig_buf_init(struct mig_buf *b)
{
	*b = (struct mig_buf){ 0 };
}

void mig_buf_free(struct mig_buf *b)
{
	free(b->data);
	*b = (struct mig_buf){ 0 };
}

void mig_buf_reset(struct mig_buf *b)
{
	b->len = 0;
	b->err = 0;
}

void *mig_put_space(struct mig_buf *b, size_t n)
{
	void *p;

	if (b->err)
		return NULL;
	/* Also for n == 0 on an empty buffer: NULL + 0 is undefined in C
	 * (found by fuzz_migration: an empty record read first). */
	if (n > b->cap - b->len || !b->data) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->err = -ENOMEM;
				return NULL;
			}
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (!d) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->data = d;
		b->cap = cap;
	}
	p = b->data + b->len;
	b->len += n;
	return p;
}

int mig_buf_reserve(struct mig_buf *b, size_t n)
{
	size_t len = b->len;
	uint8_t *p = mig_put_space(b, n);

	if (!p)
		return b->err ? b->err : -ENOMEM;
	/* Touch it now: a page fault costs microseconds, and the buffers
	 * reserved this way are filled inside the downtime. */
	memset(p, 0, n);
	b->len = len;
	return 0;
}

void mig_put_bytes(struct mig_buf *b, const void *p, size_t n)
{
	void *dst = mig_put_space(b, n);

	if (dst && n)
		memcpy(dst, p, n);
}

void mig_put_u8(struct mig_buf *b, uint8_t v)
{
	mig_put_bytes(b, &v, 1);
}

void mig_put_u16(struct mig_buf *b, uint16_t v)
{
	v = htole16(v);
	mig_put_bytes(b, &v, sizeof(v));
}

void mig_put_u32(struct mig_buf *b, uint32_t v)
{
	v = htole32(v);
	mig_put_bytes(b, &v, sizeof(v));
}

void mig_put_u64(struct mig_buf *b, uint64_t v)
{
	v = htole64(v);
	mig_put_bytes(b, &v, sizeof(v));
}

void mig_rd_init(struct mig_rd *r, const void *p, size_t len)
{
	*r = (struct mig_rd){ .p = p, .len = len };
}

const void *mig_get_ptr(struct mig_rd *r, size_t n)
{
	const void *p;

	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

void mig_get_bytes(struct mig_rd *r, void *dst, size_t n)
{
	const void *p = mig_get_ptr(r, n);

	if (p)
		memcpy(dst, p, n);
	else if (n)
		memset(dst, 0, n);
}

uint8_t mig_get_u8(struct mig_rd *r)
{
	uint8_t v;

	mig_get_bytes(r, &v, sizeof(v));
	return v;
}

uint16_t mig_get_u16(struct mig_rd *r)
{
	uint16_t v;

	mig_get_bytes(r, &v, sizeof(v));
	return le16toh(v);
}

uint32_t mig_get_u32(struct mig_rd *r)
{
	uint32_t v;

	mig_get_bytes(r, &v, sizeof(v));
	return le32toh(v);
}

uint64_t mig_get_u64(struct mig_rd *r)
{
	uint64_t v;

	mig_get_bytes(r, &v, sizeof(v));
	return le64toh(v);
}

bool mig_rd_done(const struct mig_rd *r, bool exact)
{
	if (r->bad)
		return false;
	return !exact || r->off == r->len;
}

/* --- CRC32C ---------------------------------------------------------------- */

/* Reflected Castagnoli polynomial. The bitwise fallback is slow (~200 MB/s)
 * but only runs on CPUs without SSE4.2, which KVM hosts do not have. */
#define CRC32C_POLY 0x82f63b78u

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (CRC32C_POLY & (0u - (crc & 1)));
	}
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p, size_t len)
{
	uint64_t c = crc;

	while (len && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		len--;
	}
	/* Three independent lanes would hide the instruction's 3-cycle
	 * latency; one lane already runs at ~8 GB/s, well above the link. */
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

uint32_t mig_crc32c(uint32_t crc, const void *p, size_t len)
{
	crc = ~crc;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return ~crc32c_hw(crc, p, len);
#endif
	return ~crc32c_sw(crc, p, len);
}

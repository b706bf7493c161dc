/*
 * libFuzzer target: the split-virtqueue walker (virtq_pop and the element
 * copy helpers) on hostile rings in fake guest memory: heads, chains, loops,
 * indirect tables, lengths that overflow, addresses outside RAM, avail
 * indices that jump. Every popped chain is read, written and pushed back.
 *
 * Input: byte 0 = queue size exponent (size 1 << (n % 9)) and EVENT_IDX
 * (bit 7); then 2 bytes avail idx; then size descriptors (16 bytes each,
 * addresses folded into a 64 KiB data area unless their top byte is 0xff);
 * then size avail entries; the rest fills the data area (indirect tables).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "virtio.h"

#define RAM (2ULL << 20)
#define DESC 0x10000ULL
#define AVAIL 0x20000ULL
#define USED 0x30000ULL
#define DATA 0x100000ULL
#define DATA_SIZE 0x10000ULL

static struct guest_mem *mem;
static struct virtq_elem *elem;

static void take(const uint8_t **in, size_t *len, void *dst, size_t n)
{
	size_t k = n < *len ? n : *len;

	memset(dst, 0, n);
	memcpy(dst, *in, k);
	*in += k;
	*len -= k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log_ratelimit rl = LOG_RATELIMIT_INIT(0);
	struct virtq vq = { .rl = &rl, .name = "fuzz" };
	uint8_t scratch[512];
	uint16_t qsize, idx, *avail;
	uint8_t *desc;
	unsigned int i, pops;
	bool event_idx;

	if (!mem && (mem_create(RAM, &mem) || !(elem = calloc(1, sizeof(*elem)))))
		abort();
	if (size < 1)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9));
	event_idx = data[0] & 0x80;
	data++;
	size--;
	memset(mem_ptr(mem, DESC, 0x30000), 0, 0x30000);
	take(&data, &size, &idx, 2);
	desc = mem_ptr(mem, DESC, 16ULL * qsize);
	for (i = 0; i < qsize; i++) {
		uint64_t addr;

		take(&data, &size, desc + 16ULL * i, 16);
		memcpy(&addr, desc + 16ULL * i, 8);
		if (addr >> 56 != 0xff)
			addr = DATA + addr % DATA_SIZE;
		memcpy(desc + 16ULL * i, &addr, 8);
	}
	avail = mem_ptr(mem, AVAIL, 6 + 2ULL * qsize);
	for (i = 0; i < qsize; i++)
		take(&data, &size, &avail[2 + i], 2);
	avail[1] = idx;
	take(&data, &size, mem_ptr(mem, DATA, DATA_SIZE), size < DATA_SIZE ? size : DATA_SIZE);
	if (virtq_setup(&vq, mem, qsize, DESC, AVAIL, USED, event_idx))
		abort(); /* the ring addresses themselves are valid */
	for (pops = 0; pops < 2u * qsize + 2; pops++) {
		size_t got;

		if (virtq_pop(&vq, elem))
			break;
		got = virtq_elem_read(elem, 0, scratch, sizeof(scratch));
		if (got > elem->out_len)
			abort();
		got = virtq_elem_write(&vq, elem, 1, scratch, sizeof(scratch));
		if (got > elem->in_len)
			abort();
		virtq_push(&vq, elem, (uint32_t)got);
		(void)virtq_should_notify(&vq);
	}
	(void)virtq_enable_kick(&vq);
	return 0;
}

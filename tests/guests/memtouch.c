/*
 * Writes an address-derived pattern into every 8-byte word of guest RAM
 * from 16 MiB (the image and its stacks lie below) to the end of RAM in
 * the memory map, capped at 3 GiB (only 4 GiB are identity-mapped, and
 * the top of that holds device windows), then reads it all back.
 */
#include "rt.h"

#define TOUCH_START (16ULL << 20)
#define TOUCH_CAP (3ULL << 30)

static uint64_t pattern(uint64_t addr)
{
	return addr ^ ~(addr << 29) ^ 0x5a5aa5a5c3c33c3cULL;
}

/* Writes (or checks) the pattern over each RAM range of the memory map,
 * clipped to [TOUCH_START, TOUCH_CAP); returns the bytes covered. */
static uint64_t for_each_range(bool write)
{
	const struct hvm_memmap_table_entry *e;
	unsigned n = rt_memmap(&e);
	uint64_t bytes = 0;
	for (unsigned i = 0; i < n; i++) {
		if (e[i].type != HVM_MEMMAP_TYPE_RAM)
			continue;
		uint64_t lo = e[i].addr, hi = e[i].addr + e[i].size;
		if (lo < TOUCH_START)
			lo = TOUCH_START;
		if (hi > TOUCH_CAP)
			hi = TOUCH_CAP;
		lo = (lo + 7) & ~7ULL;
		hi &= ~7ULL;
		if (lo >= hi)
			continue;
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)lo;
		uint64_t words = (hi - lo) / 8;
		if (write) {
			for (uint64_t w = 0; w < words; w++)
				p[w] = pattern(lo + w * 8);
		} else {
			for (uint64_t w = 0; w < words; w++) {
				uint64_t v = p[w];
				if (v != pattern(lo + w * 8))
					rt_fail("mismatch at 0x%lx: 0x%lx, expected 0x%lx",
						lo + w * 8, v, pattern(lo + w * 8));
			}
		}
		bytes += hi - lo;
	}
	return bytes;
}

void guest_main(void)
{
	uint64_t end = rt_ram_end();
	rt_printf("memtouch: RAM ends at 0x%lx (%lu MiB in map)\n", end,
		  rt_ram_total() >> 20);
	if (end <= TOUCH_START)
		rt_fail("no RAM above 16 MiB (memory map end 0x%lx)", end);
	uint64_t t0 = rt_rdtsc();
	uint64_t written = for_each_range(true);
	uint64_t t1 = rt_rdtsc();
	uint64_t checked = for_each_range(false);
	uint64_t t2 = rt_rdtsc();
	RT_ASSERT(written == checked);
	uint64_t hz = rt_tsc_hz();
	rt_printf("memtouch: %lu MiB touched (write %lu ms, verify %lu ms)\n",
		  written >> 20, (t1 - t0) * 1000 / hz, (t2 - t1) * 1000 / hz);
	rt_pass();
}

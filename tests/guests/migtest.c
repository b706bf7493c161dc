/*
 * Live-migration workload and checker. Owns `mib` MiB (default 64) of RAM
 * at 128 MiB; every 4 KiB page holds words derived from (page, generation),
 * and the page's generation is kept in a table at 64 MiB. Pages are
 * rewritten round robin at `rate` MB/s (0: idle, nothing is written after
 * the first fill); before a page is rewritten its content is checked
 * against the table. A counter of rewrites, like everything else, lives in
 * guest RAM, so after a migration it simply continues.
 *
 * Every `report_ms` (default 200) it prints
 *   MIG pass=<full passes> counter=<rewrites> verified=<pages> bad=<pages>
 * A `q` on COM1 checks every page once more and prints
 *   MIG FINAL verified=<pages> bad=<pages> counter=<rewrites>
 * then TEST PASS (no bad page ever) or TEST FAIL. The TSC rate comes from
 * tsc_khz= (see runtime/rt.h). Also runs under QEMU (bench/migrate).
 */
#include "rt.h"

#define LSR (RT_COM1 + 5)
#define LSR_DR 0x01
#define TABLE_BASE (64ull << 20)
#define REGION_BASE (128ull << 20)
#define PAGE 4096ull
#define WORDS (PAGE / 8)
#define BATCH 16            /* pages between clock checks */
#define MAX_BAD_LINES 8

static uint64_t pattern(uint64_t pg, uint32_t gen, uint64_t i)
{
	return (pg * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)gen * 0xc2b2ae3d27d4eb4full) ^ (i << 1) ^
	       0x5a5a5a5a00000000ull;
}

static void fill(uint64_t pg, uint32_t gen)
{
	volatile uint64_t *p = (volatile uint64_t *)(REGION_BASE + pg * PAGE);

	for (uint64_t i = 0; i < WORDS; i++)
		p[i] = pattern(pg, gen, i);
}

static bool check(uint64_t pg, uint32_t gen)
{
	const volatile uint64_t *p = (const volatile uint64_t *)(REGION_BASE + pg * PAGE);

	for (uint64_t i = 0; i < WORDS; i++) {
		if (p[i] != pattern(pg, gen, i))
			return false;
	}
	return true;
}

/* Everything the checker keeps is in guest RAM (static), so it migrates. */
static uint64_t pages, counter, verified, bad, passes, bad_lines;

static void report_bad(uint64_t pg, uint32_t gen)
{
	bad++;
	if (bad_lines++ < MAX_BAD_LINES)
		rt_printf("MIG BAD page=%lu gen=%u\n", (unsigned long)pg, gen);
}

static void final_check(volatile uint32_t *gen)
{
	uint64_t ok = 0, b = 0;

	for (uint64_t pg = 0; pg < pages; pg++) {
		if (check(pg, gen[pg]))
			ok++;
		else {
			b++;
			report_bad(pg, gen[pg]);
		}
	}
	rt_printf("MIG FINAL verified=%lu bad=%lu counter=%lu\n", (unsigned long)ok,
		  (unsigned long)b, (unsigned long)counter);
	if (b || bad)
		rt_fail("%lu bad pages (%lu seen while running)", (unsigned long)b,
			(unsigned long)bad);
	rt_pass();
}

void guest_main(void)
{
	uint64_t mib = rt_cmdline_uint("mib", 64), rate = rt_cmdline_uint("rate", 0);
	uint64_t report_ms = rt_cmdline_uint("report_ms", 200);
	volatile uint32_t *gen = (volatile uint32_t *)TABLE_BASE;
	uint64_t hz = rt_tsc_hz(), start, next_report, pg = 0, written = 0;

	if (REGION_BASE + mib * (1ull << 20) > rt_ram_end() || mib * 256 * 4 > REGION_BASE - TABLE_BASE)
		rt_fail("mib=%lu does not fit in RAM (end 0x%lx)", (unsigned long)mib,
			(unsigned long)rt_ram_end());
	pages = mib * 256;
	for (uint64_t i = 0; i < pages; i++) {
		gen[i] = 1;
		fill(i, 1);
	}
	rt_printf("MIG READY pages=%lu rate=%lu tsc_hz=%lu\n", (unsigned long)pages,
		  (unsigned long)rate, (unsigned long)hz);
	start = rt_rdtsc();
	next_report = start + hz / 1000 * report_ms;
	for (;;) {
		uint64_t now = rt_rdtsc();

		if (rt_inb(LSR) & LSR_DR) {
			char c = (char)rt_inb(RT_COM1);

			if (c == 'q' || c == 'v')
				final_check(gen);
		}
		if ((int64_t)(now - next_report) >= 0) {
			rt_printf("MIG pass=%lu counter=%lu verified=%lu bad=%lu\n",
				  (unsigned long)passes, (unsigned long)counter,
				  (unsigned long)verified, (unsigned long)bad);
			next_report = now + hz / 1000 * report_ms;
		}
		if (!rate) {
			rt_delay_us(1000);
			continue;
		}
		/* Behind schedule (bytes due at rate since start)? Then a batch. */
		if ((now - start) / (hz / 1000000 + 1) * rate < written) {
			rt_pause();
			continue;
		}
		for (int k = 0; k < BATCH; k++) {
			uint32_t g = gen[pg];

			if (check(pg, g))
				verified++;
			else
				report_bad(pg, g);
			gen[pg] = g + 1;
			fill(pg, g + 1);
			counter++;
			written += PAGE;
			if (++pg == pages) {
				pg = 0;
				passes++;
			}
		}
	}
}

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
 *
 * With spew=1 it does nothing but print the lines S0, S1, S2, ... on COM1
 * (two port accesses per character, each a vCPU exit) until the `q`: a
 * migration that pauses the vCPU just after one of those exits must not
 * make the destination repeat or drop the access, so the source's output
 * followed by the destination's is that sequence exactly.
 *
 * With disk=1 it also keeps QD writes in flight on virtio-blk disk 0
 * (polled, no interrupts): write number n goes to sector n mod 2048 and
 * carries n; when a write completes, n is recorded as that sector's
 * acknowledged write. The final check then reads back every sector that
 * has one: it must hold exactly that write (an older one means a lost
 * write or a replay after a newer one), and prints
 *   MIG DISK acked=<writes> sectors=<checked> bad=<sectors>
 */
#include "virtio_drv.h"

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

/* --- disk=1: writes in flight across the migration --------------------- */

#define RING_MEM (16ull << 20)
#define HDR_MEM (17ull << 20)
#define ST_MEM (18ull << 20)
#define DATA_MEM (20ull << 20)       /* one 4 KiB slot per request */
#define ACK_MEM (24ull << 20)        /* u64 per sector: last acknowledged write */
#define QD 8
#define NSECT 2048ull
#define T_IN 0
#define T_OUT 1

struct blk_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static struct vdev disk;
static struct vq dq;
static uint64_t slot_seq[QD], next_seq = 1, disk_acked, disk_errors;
static bool slot_busy[QD], disk_on;

static volatile uint64_t *slot_data(unsigned s)
{
	return (volatile uint64_t *)(uintptr_t)(DATA_MEM + 4096ull * s);
}

static void build(unsigned s, uint32_t type, uint64_t sector)
{
	struct blk_hdr *h = (struct blk_hdr *)(uintptr_t)(HDR_MEM + 16ull * s);

	h->type = type;
	h->reserved = 0;
	h->sector = sector;
	*(volatile uint8_t *)(uintptr_t)(ST_MEM + s) = 0xee;
	dq.desc[3 * s] = (struct vdesc){ HDR_MEM + 16ull * s, 16, VD_F_NEXT, (uint16_t)(3 * s + 1) };
	dq.desc[3 * s + 1] = (struct vdesc){ DATA_MEM + 4096ull * s, 512,
					     (uint16_t)(VD_F_NEXT | (type == T_IN ? VD_F_WRITE : 0)),
					     (uint16_t)(3 * s + 2) };
	dq.desc[3 * s + 2] = (struct vdesc){ ST_MEM + s, 1, VD_F_WRITE, 0 };
}

static uint64_t sector_word(uint64_t seq, uint64_t i)
{
	return seq * 0x100000001b3ull + i;
}

static void disk_open(void)
{
	uint8_t st;

	if (!vdev_find(VIRTIO_ID_BLOCK, 0, &disk))
		rt_fail("disk=1 but no virtio-blk disk");
	st = vdev_init(&disk, VF_VERSION_1);
	if (!(st & VS_FEATURES_OK) || !vq_setup(&disk, &dq, 0, 32, RING_MEM))
		rt_fail("virtio-blk set-up refused (status 0x%x)", st);
	vdev_driver_ok(&disk);
	disk_on = true;
}

/* Reaps completions, refills the free slots with new writes. */
static void disk_poll(void)
{
	uint32_t id, len;
	bool kick = false;

	while (vq_poll(&dq, &id, &len)) {
		unsigned s = id / 3;

		if (id % 3 || s >= QD || !slot_busy[s]) {
			disk_errors++;
			continue;
		}
		if (*(volatile uint8_t *)(uintptr_t)(ST_MEM + s) != 0)
			disk_errors++;
		else
			((volatile uint64_t *)ACK_MEM)[slot_seq[s] % NSECT] = slot_seq[s];
		disk_acked++;
		slot_busy[s] = false;
	}
	for (unsigned s = 0; s < QD; s++) {
		volatile uint64_t *d = slot_data(s);

		if (slot_busy[s])
			continue;
		for (uint64_t i = 0; i < 64; i++)
			d[i] = sector_word(next_seq, i);
		build(s, T_OUT, next_seq % NSECT);
		slot_seq[s] = next_seq++;
		slot_busy[s] = true;
		vq_publish_nokick(&dq, (uint16_t)(3 * s));
		kick = true;
	}
	if (kick)
		vq_kick(&dq);
}

static uint64_t disk_check(void)
{
	uint64_t deadline = rt_deadline_ms(5000), sectors = 0, badsec = 0;
	uint32_t id, len;

	for (;;) {             /* drain what is in flight */
		bool busy = false;

		while (vq_poll(&dq, &id, &len)) {
			unsigned s = id / 3;

			if (s < QD && slot_busy[s]) {
				if (*(volatile uint8_t *)(uintptr_t)(ST_MEM + s) == 0)
					((volatile uint64_t *)ACK_MEM)[slot_seq[s] % NSECT] = slot_seq[s];
				else
					disk_errors++;
				disk_acked++;
				slot_busy[s] = false;
			}
		}
		for (unsigned s = 0; s < QD; s++)
			busy = busy || slot_busy[s];
		if (!busy)
			break;
		if (rt_expired(deadline))
			rt_fail("disk writes still in flight after 5 s");
	}
	for (uint64_t sec = 0; sec < NSECT; sec++) {
		uint64_t want = ((volatile uint64_t *)ACK_MEM)[sec];
		volatile uint64_t *d = slot_data(0);

		if (!want)
			continue;
		build(0, T_IN, sec);
		vq_publish(&dq, 0);
		if (!vq_wait(&dq, &id, &len, 5000))
			rt_fail("reading back sector %lu: no completion", (unsigned long)sec);
		sectors++;
		for (uint64_t i = 0; i < 64; i++) {
			if (d[i] != sector_word(want, i)) {
				if (badsec++ < MAX_BAD_LINES)
					rt_printf("MIG DISK BAD sector=%lu holds write %lu, acked %lu\n",
						  (unsigned long)sec, (unsigned long)(d[0] / 0x100000001b3ull),
						  (unsigned long)want);
				break;
			}
		}
	}
	rt_printf("MIG DISK acked=%lu sectors=%lu bad=%lu errors=%lu\n", (unsigned long)disk_acked,
		  (unsigned long)sectors, (unsigned long)badsec, (unsigned long)disk_errors);
	return badsec + disk_errors;
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
	if (disk_on && disk_check())
		rt_fail("disk check failed");
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
	if (rt_cmdline_uint("disk", 0))
		disk_open();
	for (uint64_t i = 0; i < pages; i++) {
		gen[i] = 1;
		fill(i, 1);
	}
	rt_printf("MIG READY pages=%lu rate=%lu tsc_hz=%lu\n", (unsigned long)pages,
		  (unsigned long)rate, (unsigned long)hz);
	if (rt_cmdline_uint("spew", 0)) {
		for (counter = 0; !(rt_inb(LSR) & LSR_DR) || rt_inb(RT_COM1) != 'q'; counter++)
			rt_printf("S%lu\n", (unsigned long)counter);
		final_check(gen);
	}
	start = rt_rdtsc();
	next_report = start + hz / 1000 * report_ms;
	for (;;) {
		uint64_t now = rt_rdtsc();

		if (rt_inb(LSR) & LSR_DR) {
			char c = (char)rt_inb(RT_COM1);

			if (c == 'q' || c == 'v')
				final_check(gen);
		}
		if (disk_on)
			disk_poll();
		if ((int64_t)(now - next_report) >= 0) {
			rt_printf("MIG pass=%lu counter=%lu verified=%lu bad=%lu\n",
				  (unsigned long)passes, (unsigned long)counter,
				  (unsigned long)verified, (unsigned long)bad);
			next_report = now + hz / 1000 * report_ms;
		}
		if (!rate) {
			rt_delay_us(disk_on ? 50 : 1000);
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

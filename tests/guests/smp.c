/*
 * SMP smoke test (needs a VMM that starts every vCPU at the PVH entry, as
 * skiff does for guests with the skiff note). ncpus=N (default 4): each
 * CPU fills its own 1 MiB region at 64 MiB + cpu MiB with a pattern of its
 * own from ring 3 and raises its done flag; the BSP waits (10 s) for all N
 * flags and checks every region.
 */
#include "rt.h"

#define REGION_BASE (64ULL << 20)
#define REGION_SIZE (1ULL << 20)

static unsigned done[RT_MAX_CPUS];

static uint64_t *region(unsigned cpu)
{
	return (uint64_t *)(uintptr_t)(REGION_BASE + cpu * REGION_SIZE);
}

static uint64_t pattern(unsigned cpu, uint64_t i)
{
	return ((uint64_t)(cpu + 1) << 56) ^ (i * 0x9e3779b97f4a7c15ULL);
}

static void fill(unsigned cpu)
{
	uint64_t *p = region(cpu);
	for (uint64_t i = 0; i < REGION_SIZE / 8; i++)
		p[i] = pattern(cpu, i);
	__atomic_store_n(&done[cpu], 1, __ATOMIC_RELEASE);
}

void guest_ap_main(unsigned cpu)
{
	if (REGION_BASE + (cpu + 1) * REGION_SIZE <= rt_ram_end())
		fill(cpu);
}

void guest_main(void)
{
	unsigned n = (unsigned)rt_cmdline_uint("ncpus", 4);
	if (n < 1 || n > RT_MAX_CPUS)
		rt_fail("ncpus=%u out of range 1..%u", n, RT_MAX_CPUS);
	uint64_t ram_end = rt_ram_end();
	if (REGION_BASE + n * REGION_SIZE > ram_end)
		rt_fail("RAM ends at 0x%lx, need 0x%llx", ram_end,
			REGION_BASE + n * REGION_SIZE);
	rt_printf("smp: waiting for %u CPUs\n", n);

	uint64_t t0 = rt_rdtsc();
	fill(0);
	uint64_t deadline = rt_deadline_ms(10000);
	for (unsigned cpu = 1; cpu < n; cpu++) {
		while (!__atomic_load_n(&done[cpu], __ATOMIC_ACQUIRE)) {
			if (rt_expired(deadline)) {
				unsigned got = 0;
				for (unsigned c = 0; c < n; c++)
					got += __atomic_load_n(&done[c], __ATOMIC_ACQUIRE);
				rt_fail("timeout: %u of %u CPUs done (%u online), cpu %u missing",
					got, n, rt_cpus_online(), cpu);
			}
			rt_pause();
		}
	}
	uint64_t t1 = rt_rdtsc();

	for (unsigned cpu = 0; cpu < n; cpu++) {
		const uint64_t *p = region(cpu);
		for (uint64_t i = 0; i < REGION_SIZE / 8; i++)
			if (p[i] != pattern(cpu, i))
				rt_fail("cpu %u region: word %lu is 0x%lx, expected 0x%lx",
					cpu, i, p[i], pattern(cpu, i));
	}
	rt_printf("smp: %u CPUs done (%u online), %u MiB verified, %lu us\n", n,
		  rt_cpus_online(), n, (t1 - t0) * 1000000 / rt_tsc_hz());
	rt_pass();
}

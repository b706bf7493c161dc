/*
 * Runs until the VMM stops it, printing "HEARTBEAT <n>" on COM1 about every
 * heartbeat_ms milliseconds (default 50), so a host-side test sees from the
 * console alone whether the guest runs (used by the control socket tests:
 * stop freezes the counter, cont moves it again).
 */
#include "rt.h"

void guest_main(void)
{
	uint64_t period_us = rt_cmdline_uint("heartbeat_ms", 50) * 1000;
	uint64_t n = 0;

	rt_printf("HEARTBEAT START\n");
	for (;;) {
		rt_printf("HEARTBEAT %lu\n", (unsigned long)n++);
		rt_delay_us(period_us);
	}
}

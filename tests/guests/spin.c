/*
 * Runs until the VMM stops it: prints "SPINNING" once, then keeps a
 * heartbeat counter moving in ring 3 (at a fixed address, 0x200000, so a
 * host-side test can watch it in guest RAM). Used by the signal and console
 * tests, which end the VM from outside.
 */
#include "rt.h"

#define HEARTBEAT_ADDR 0x200000UL

void guest_main(void)
{
	volatile uint64_t *beat = (volatile uint64_t *)HEARTBEAT_ADDR;

	rt_printf("SPINNING\n");
	for (;;) {
		(*beat)++;
		rt_pause();
	}
}

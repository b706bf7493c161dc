/*
 * The guest skiff runs when it is given no kernel: a greeting, a short
 * self-report of what the VM looks like from inside, then power-off.
 */
#include "rt.h"

#define COM1_SCR (RT_COM1 + 7)
#define COM1_LSR (RT_COM1 + 5)
#define I8042_STATUS 0x64
#define I8042_CMD 0x64

/* APs come up on their own (skiff starts every vCPU at the entry point):
 * wait until the count is stable for 20 ms (at most 250 ms), or until
 * ncpus=N CPUs are there if the command line says how many to expect. */
static unsigned count_cpus(void)
{
	unsigned want = (unsigned)rt_cmdline_uint("ncpus", 0);
	uint64_t hard = rt_deadline_ms(want ? 1000 : 250);
	unsigned n = rt_cpus_online();
	uint64_t quiet = rt_deadline_ms(20);
	while (!rt_expired(hard)) {
		unsigned now = rt_cpus_online();
		if (want && now >= want)
			break;
		if (now != n) {
			n = now;
			quiet = rt_deadline_ms(20);
		} else if (!want && rt_expired(quiet)) {
			break;
		}
		rt_pause();
	}
	return rt_cpus_online();
}

void guest_main(void)
{
	rt_printf("skiff demo guest: hello!\n");

	uint64_t ram_end = rt_ram_end(), ram_total = rt_ram_total();
	const struct hvm_memmap_table_entry *map;
	unsigned entries = rt_memmap(&map);
	rt_printf("  memory:  %lu MiB of RAM in %u map entries, highest address 0x%lx\n",
		  ram_total >> 20, entries, ram_end ? ram_end - 1 : 0);
	rt_printf("  cmdline: \"%s\"\n", rt_cmdline());

	/* A 16450/16550 has a scratch register; an 8250 or nothing does not. */
	rt_outb(COM1_SCR, 0xa5);
	uint8_t scr1 = rt_inb(COM1_SCR);
	rt_outb(COM1_SCR, 0x5a);
	uint8_t scr2 = rt_inb(COM1_SCR);
	uint8_t lsr = rt_inb(COM1_LSR);
	rt_printf("  uart:    16550A at 0x%x: scratch register %s, LSR=0x%x%s\n", RT_COM1,
		  scr1 == 0xa5 && scr2 == 0x5a ? "ok" : "NOT WORKING", lsr,
		  (lsr & 0x60) == 0x60 ? " (transmitter idle)" : "");

	uint8_t kbd = rt_inb(I8042_STATUS);
	if (kbd != 0xff)
		rt_printf("  i8042:   present (status 0x%x)\n", kbd);
	else
		rt_printf("  i8042:   absent\n");

	rt_printf("  cpus:    %u online\n", count_cpus());

	/* Pulse the reset line through the i8042 (command 0xfe): skiff ends the
	 * VM with status 0 on it. Without an i8042, use the debug-exit port. */
	rt_printf("skiff demo guest: powering off\n");
	rt_outb(I8042_CMD, 0xfe);
	rt_exit(RT_EXIT_PASS);
}

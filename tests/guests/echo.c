/*
 * Console input: reads one line from COM1 (polling LSR.DR, ring 3) and
 * prints "ECHO: <line>", then passes. Fails if no complete line arrives
 * within echo_timeout_ms (default 20000).
 */
#include "rt.h"

#define LSR (RT_COM1 + 5)
#define LSR_DR 0x01

void guest_main(void)
{
	uint64_t deadline = rt_deadline_ms(rt_cmdline_uint("echo_timeout_ms", 20000));
	char line[128];
	size_t n = 0;

	rt_printf("READY\n");
	while (n < sizeof(line) - 1) {
		char c;

		if (!(rt_inb(LSR) & LSR_DR)) {
			if (rt_expired(deadline))
				rt_fail("no complete input line (got %u bytes)", (unsigned)n);
			rt_pause();
			continue;
		}
		c = (char)rt_inb(RT_COM1);
		if (c == '\n' || c == '\r')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	rt_printf("ECHO: %s\n", line);
	rt_pass();
}

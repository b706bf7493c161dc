/*
 * isa-debug-exit: a test device with QEMU's semantics. A write of value v
 * ends the VMM with exit status (v << 1) | 1. Reads return 0.
 * Thread context: vCPU threads; the only state is immutable wiring.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"

struct debug_exit {
	struct bus *pio;
	uint16_t port;
	struct runstate *rs;
};

static void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debug_exit *d = opaque;
	uint32_t v = 0;
	char why[64];

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	memcpy(&v, data, MIN(len, sizeof(v)));
	snprintf(why, sizeof(why), "guest wrote 0x%x to debug-exit", v);
	runstate_request_exit(d->rs, (int)((v << 1) | 1), why);
}

int debug_exit_create(struct bus *pio, uint16_t port, uint32_t size, struct runstate *rs,
		      struct debug_exit **out)
{
	struct debug_exit *d;
	int ret;

	if (size != 1 && size != 2 && size != 4)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->pio = pio;
	d->port = port;
	d->rs = rs;
	ret = bus_register(pio, port, size, debug_exit_io, d, "debug-exit");
	if (ret) {
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

void debug_exit_destroy(struct debug_exit *d)
{
	if (!d)
		return;
	bus_unregister(d->pio, d->port);
	free(d);
}

/*
 * PIO and MMIO buses. Each VM owns one of each. A device registers a window
 * [base, base+len) and its handler sees only the offset inside that window.
 * Overlapping windows are refused. An access that is not entirely inside one
 * window is unclaimed: reads return all ones, writes are dropped.
 *
 * Thread context: bus_dispatch() runs on vCPU threads; registration normally
 * happens in the builder before vCPUs start, but may happen later (PCI BAR
 * moves) from a vCPU thread. The window table is protected by a rwlock; a
 * handler runs with the read lock held, so a handler must never (un)register.
 */
#ifndef SKIFF_BUS_H
#define SKIFF_BUS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* data holds `len` bytes (1, 2, 4 or 8; MMIO may use others up to 8),
 * little-endian as the guest sees them. For reads the handler fills it. */
typedef void (*bus_handler)(void *opaque, uint64_t offset, uint8_t *data,
			    uint32_t len, bool is_write);

struct bus_window {
	uint64_t base;
	uint64_t len;
	bus_handler fn;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for messages */
	pthread_rwlock_t lock;
	struct bus_window *win; /* sorted by base, never overlapping */
	unsigned int nr, cap;
};

int MUST_CHECK bus_create(const char *name, struct bus **out);
void bus_destroy(struct bus *bus);

/* Returns 0, -EINVAL (len 0 or wraps), -EEXIST (overlaps `name`'s window), -ENOMEM. */
int MUST_CHECK bus_register(struct bus *bus, uint64_t base, uint64_t len,
			    bus_handler fn, void *opaque, const char *name);
/* Returns 0 or -ENOENT (no window starts at base: a caller bug). */
int bus_unregister(struct bus *bus, uint64_t base);

/* Dispatches one access; returns true if a window claimed it. For an
 * unclaimed read, data is filled with 0xff. */
bool bus_dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif

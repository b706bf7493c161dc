/* PIO/MMIO buses: sorted, non-overlapping windows; handlers see offsets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"

int bus_create(const char *name, struct bus **out)
{
	struct bus *bus = calloc(1, sizeof(*bus));

	if (!bus)
		return -ENOMEM;
	bus->name = name;
	if (pthread_rwlock_init(&bus->lock, NULL)) {
		free(bus);
		return -ENOMEM;
	}
	*out = bus;
	return 0;
}

void bus_destroy(struct bus *bus)
{
	if (!bus)
		return;
	pthread_rwlock_destroy(&bus->lock);
	free(bus->win);
	free(bus);
}

/* Index of the first window whose end is above addr (caller holds the lock). */
static unsigned int lower_bound(const struct bus *bus, uint64_t addr)
{
	unsigned int lo = 0, hi = bus->nr;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct bus_window *w = &bus->win[mid];

		if (w->base + (w->len - 1) < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len,
		 bus_handler fn, void *opaque, const char *name)
{
	unsigned int i;
	int ret = 0;

	if (len == 0 || base + (len - 1) < base || !fn)
		return -EINVAL;
	pthread_rwlock_wrlock(&bus->lock);
	i = lower_bound(bus, base);
	/* win[i] is the first window ending at or after base: it overlaps iff it
	 * starts at or before our last byte. */
	if (i < bus->nr && bus->win[i].base <= base + (len - 1)) {
		log_err("%s bus: %s window 0x%llx+0x%llx overlaps %s at 0x%llx+0x%llx",
			bus->name, name, (unsigned long long)base, (unsigned long long)len,
			bus->win[i].name, (unsigned long long)bus->win[i].base,
			(unsigned long long)bus->win[i].len);
		ret = -EEXIST;
		goto out;
	}
	if (bus->nr == bus->cap) {
		unsigned int cap = bus->cap ? bus->cap * 2 : 8;
		struct bus_window *w = realloc(bus->win, cap * sizeof(*w));

		if (!w) {
			ret = -ENOMEM;
			goto out;
		}
		bus->win = w;
		bus->cap = cap;
	}
	memmove(&bus->win[i + 1], &bus->win[i], (bus->nr - i) * sizeof(*bus->win));
	bus->win[i] = (struct bus_window){ base, len, fn, opaque, name };
	bus->nr++;
out:
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
	unsigned int i;
	int ret = -ENOENT;

	pthread_rwlock_wrlock(&bus->lock);
	i = lower_bound(bus, base);
	if (i < bus->nr && bus->win[i].base == base) {
		memmove(&bus->win[i], &bus->win[i + 1], (bus->nr - i - 1) * sizeof(*bus->win));
		bus->nr--;
		ret = 0;
	}
	pthread_rwlock_unlock(&bus->lock);
	return ret;
}

bool bus_dispatch(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_window *w;
	bool claimed = false;
	unsigned int i;

	if (len == 0 || addr + (len - 1) < addr)
		goto unclaimed;
	pthread_rwlock_rdlock(&bus->lock);
	i = lower_bound(bus, addr);
	if (i < bus->nr) {
		w = &bus->win[i];
		/* The whole access must sit inside the window. */
		if (addr >= w->base && addr + (len - 1) <= w->base + (w->len - 1)) {
			w->fn(w->opaque, addr - w->base, data, len, is_write);
			claimed = true;
		}
	}
	pthread_rwlock_unlock(&bus->lock);
	if (claimed)
		return true;
unclaimed:
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}

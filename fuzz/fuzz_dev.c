/* See fuzz_dev.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_dev.h"
#include "platform.h"

static void die(const char *what)
{
	fprintf(stderr, "fuzz set-up failed: %s\n", what);
	abort();
}

void fz_env_init(struct fz_dev *d)
{
	memset(d, 0, sizeof(*d));
	if (mem_create(FZ_RAM, &d->mem) || bus_create("pio", &d->pio) ||
	    bus_create("mmio", &d->mmio) || pci_host_create(-1, d->pio, d->mmio, d->mem, &d->h))
		die("memory, buses or PCI host");
}

void fz_memfd_disk(char *path, size_t len)
{
	int fd = memfd_create("fuzz-disk", 0);

	if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
		die("memfd disk");
	snprintf(path, len, "/proc/self/fd/%d", fd);
}

void fz_env_attach(struct fz_dev *d, struct virtio_dev *vd)
{
	d->vd = vd;
	d->bar = PCI_MMIO32_BASE; /* the first BAR skiff places */
}

void fz_wr(struct fz_dev *d, uint64_t off, uint64_t v, uint32_t len)
{
	if (!bus_dispatch(d->mmio, d->bar + off, (uint8_t *)&v, len, true))
		die("BAR write not dispatched");
}

uint64_t fz_rd(struct fz_dev *d, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	if (!bus_dispatch(d->mmio, d->bar + off, (uint8_t *)&v, len, false))
		die("BAR read not dispatched");
	return v;
}

uint8_t fz_status(struct fz_dev *d)
{
	return (uint8_t)fz_rd(d, 0x14, 1);
}

static void run(struct fz_dev *d)
{
	if (virtio_dev_run_sync(d->vd))
		die("virtio_dev_run_sync");
}

uint8_t fz_driver_init(struct fz_dev *d, uint64_t features, unsigned int nq, uint16_t size)
{
	uint64_t host;
	unsigned int q;
	int i;

	fz_wr(d, 0x14, 0, 1);
	for (i = 0; i < 100 && fz_status(d) != 0; i++)
		run(d); /* the reset completes on the "I/O thread" */
	if (fz_status(d) != 0)
		die("device reset did not complete");
	memset(mem_ptr(d->mem, FZ_RINGS, 0x4000ULL * nq), 0, 0x4000ULL * nq);
	fz_wr(d, 0x14, 1 | 2, 1);
	fz_wr(d, 0x00, 0, 4);
	host = fz_rd(d, 0x04, 4);
	fz_wr(d, 0x00, 1, 4);
	host |= fz_rd(d, 0x04, 4) << 32;
	features &= host;
	fz_wr(d, 0x08, 0, 4);
	fz_wr(d, 0x0c, (uint32_t)features, 4);
	fz_wr(d, 0x08, 1, 4);
	fz_wr(d, 0x0c, features >> 32, 4);
	fz_wr(d, 0x14, 1 | 2 | 8, 1);
	if (!(fz_status(d) & 8))
		return fz_status(d);
	for (q = 0; q < nq; q++) {
		uint64_t base = FZ_RINGS + 0x4000ULL * q;

		fz_wr(d, 0x16, q, 2);
		fz_wr(d, 0x18, size, 2);
		fz_wr(d, 0x20, base, 8);
		fz_wr(d, 0x28, base + 0x1000, 8);
		fz_wr(d, 0x30, base + 0x2000, 8);
		fz_wr(d, 0x1c, 1, 2);
	}
	fz_wr(d, 0x14, 1 | 2 | 8 | 4, 1);
	return fz_status(d);
}

static size_t take(const uint8_t **in, size_t *len, void *dst, size_t n)
{
	size_t k = n < *len ? n : *len;

	memset(dst, 0, n);
	memcpy(dst, *in, k);
	*in += k;
	*len -= k;
	return k;
}

void fz_load_ring(struct fz_dev *d, unsigned int q, uint16_t size, const uint8_t **in,
		  size_t *len)
{
	uint64_t base = FZ_RINGS + 0x4000ULL * q;
	uint8_t *desc = mem_ptr(d->mem, base, 16ULL * size);
	uint16_t *avail = mem_ptr(d->mem, base + 0x1000, 6 + 2ULL * size);
	uint16_t n = 0;
	unsigned int i;

	take(in, len, &n, sizeof(n));
	for (i = 0; i < size; i++) {
		uint64_t addr;

		take(in, len, desc + 16ULL * i, 16);
		memcpy(&addr, desc + 16ULL * i, 8);
		if (addr >> 56 != 0xff)
			addr = FZ_DATA + addr % FZ_DATA_SIZE;
		memcpy(desc + 16ULL * i, &addr, 8);
	}
	for (i = 0; i < size; i++)
		take(in, len, &avail[2 + i], 2);
	/* avail idx moves on from where the device is by n (any value: past
	 * the queue size is a driver bug the device must catch) */
	avail[1] = (uint16_t)(avail[1] + n);
	take(in, len, mem_ptr(d->mem, FZ_DATA, FZ_DATA_SIZE), *len < FZ_DATA_SIZE ? *len : FZ_DATA_SIZE);
}

void fz_kick(struct fz_dev *d, unsigned int q)
{
	fz_wr(d, 0x3000 + 4ULL * q, q, 2); /* notify (forwarded to the queue's eventfd) */
	run(d);
}

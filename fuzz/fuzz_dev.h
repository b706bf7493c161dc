/* A virtio-pci device driven like a guest driver would, for the fuzz
 * targets: fake guest RAM, the MMIO bus as a vCPU sees it, and the device's
 * I/O work done synchronously on the fuzzing thread (virtio_dev_run_sync). */
#ifndef SKIFF_FUZZ_DEV_H
#define SKIFF_FUZZ_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "mem.h"
#include "pci.h"
#include "virtio.h"

#define FZ_RAM (4ULL << 20)
#define FZ_RINGS 0x10000ULL     /* queue q's rings at FZ_RINGS + q * 0x4000 */
#define FZ_DATA 0x100000ULL     /* buffers the fuzzed descriptors point into */
#define FZ_DATA_SIZE 0x10000ULL

struct fz_dev {
	struct guest_mem *mem;
	struct bus *pio, *mmio;
	struct pci_host *h;
	struct virtio_dev *vd;
	uint64_t bar;
};

/* Memory, buses and the PCI host (no KVM: vm_fd -1). Aborts on failure:
 * the fuzz target cannot run without them. */
void fz_env_init(struct fz_dev *d);
/* A 1 MiB disk image in a memfd, named by a path that open() takes
 * ("/proc/self/fd/N", written to `path`). Aborts on failure. */
void fz_memfd_disk(char *path, size_t len);
/* After the device is created: its BAR. */
void fz_env_attach(struct fz_dev *d, struct virtio_dev *vd);
/* 3.1.1 driver initialisation with `features` (masked by the device's) and
 * `nq` queues of `size` entries; returns the device status. Resets first. */
uint8_t fz_driver_init(struct fz_dev *d, uint64_t features, unsigned int nq, uint16_t size);
/* Loads a fuzzed ring into queue q: `size` descriptors and `n` avail
 * entries taken from `in` (consumed), buffer addresses folded into the data
 * area unless their top byte is 0xff (then used as given: out of RAM,
 * overflowing), the rest of `in` copied to the data area. */
void fz_load_ring(struct fz_dev *d, unsigned int q, uint16_t size, const uint8_t **in,
		  size_t *len);
/* Notify queue q through the notify area, then run the device's work. */
void fz_kick(struct fz_dev *d, unsigned int q);
uint8_t fz_status(struct fz_dev *d);
void fz_wr(struct fz_dev *d, uint64_t off, uint64_t v, uint32_t len);
uint64_t fz_rd(struct fz_dev *d, uint64_t off, uint32_t len);

#endif

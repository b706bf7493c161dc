/*
 * libFuzzer target: PCI configuration space and MSI-X tables as a guest
 * reaches them — CONFIG_ADDRESS/CONFIG_DATA ports, the ECAM window, and the
 * BARs (virtio common configuration, ISR, device configuration, notify
 * area, MSI-X table and PBA), with BARs moved, decoding switched off and on,
 * vectors masked and pointed anywhere. Two functions: virtio-blk (on a
 * memfd) and virtio-rng. No KVM: MSI-X routing goes to vm_fd -1 and fails
 * the way a refused route does.
 *
 * Input: a list of 9-byte operations {kind, size/rw, slot, offset u16,
 * value u32}; each input starts from power-on state (pci_host_reset, both
 * devices reset through their status register).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_dev.h"
#include "platform.h"
#include "virtio_priv.h"

static struct fz_dev dev;
static struct virtio_dev *devs[2];

static void setup(void)
{
	struct virtio_blk_config bc = { .serial = "fuzz", .queues = 2 };
	char path[64], err[256];

	fz_env_init(&dev);
	fz_memfd_disk(path, sizeof(path));
	bc.path = path;
	if (virtio_blk_create(dev.h, dev.mem, &bc, &devs[0], err, sizeof(err)) ||
	    virtio_rng_create(dev.h, dev.mem, &devs[1], err, sizeof(err))) {
		fprintf(stderr, "device: %s\n", err);
		abort();
	}
	fz_env_attach(&dev, devs[0]);
}

static void power_on(void)
{
	unsigned int i;
	uint8_t zero = 0;

	pci_host_reset(dev.h);
	for (i = 0; i < 2; i++) {
		uint64_t bar = pci_dev_bar_addr(devs[i]->pci, 0);

		(void)bus_dispatch(dev.mmio, bar + 0x14, &zero, 1, true);
		if (virtio_dev_run_sync(devs[i]))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[4] = { 1, 2, 4, 8 };

	if (!dev.vd)
		setup();
	power_on();
	for (; size >= 9; data += 9, size -= 9) {
		uint8_t kind = data[0], sz = data[1], slot = data[2] % 4;
		uint16_t off;
		uint32_t val32, len = sizes[sz & 3];
		uint64_t val = 0;
		bool wr = sz & 4;

		memcpy(&off, data + 3, 2);
		memcpy(&val32, data + 5, 4);
		val = val32 | ((uint64_t)val32 << 32);
		switch (kind % 4) {
		case 0: /* CONFIG_ADDRESS: enable bit, bus 0, the slot, register */
			val32 = 0x80000000u | (uint32_t)slot << 11 | (off & 0x7fc) | (val32 & 0x7f000003);
			(void)bus_dispatch(dev.pio, PORT_PCI_CONFIG_ADDR, (uint8_t *)&val32, 4, true);
			break;
		case 1: /* CONFIG_DATA, any byte lane */
			len = len > 4 ? 4 : len;
			(void)bus_dispatch(dev.pio, PORT_PCI_CONFIG_ADDR + 4 + (off & 3),
					   (uint8_t *)&val, len, wr);
			break;
		case 2: /* ECAM: bus 0 (rarely another), the slot, any register */
			(void)bus_dispatch(dev.mmio, PCI_ECAM_BASE + ((uint64_t)(sz >> 7) << 20) +
					   ((uint64_t)slot << 15) + (off & 0xfff), (uint8_t *)&val,
					   len, wr);
			break;
		default: /* the BARs, wherever they are now */
			(void)bus_dispatch(dev.mmio, pci_dev_bar_addr(devs[slot & 1]->pci,
								      (sz >> 4) & 1) + off,
					   (uint8_t *)&val, len, wr);
			break;
		}
		if (kind & 0x80 && (virtio_dev_run_sync(devs[0]) || virtio_dev_run_sync(devs[1])))
			abort();
	}
	return 0;
}

/*
 * A small ring-3 virtio 1.x PCI driver for the test guests: PCI enumeration
 * on bus 0 through ports 0xCF8/0xCFC, the virtio capabilities, feature
 * negotiation, split queues in guest RAM, polling for completions (no
 * interrupts: the runtime keeps IF clear). Uses the BAR addresses the VMM
 * (or firmware) placed.
 */
#ifndef SKIFF_GUEST_VIRTIO_DRV_H
#define SKIFF_GUEST_VIRTIO_DRV_H

#include "rt.h"

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

#define VF_INDIRECT_DESC (1ULL << 28)
#define VF_EVENT_IDX (1ULL << 29)
#define VF_VERSION_1 (1ULL << 32)

#define VS_ACK 1
#define VS_DRIVER 2
#define VS_DRIVER_OK 4
#define VS_FEATURES_OK 8
#define VS_NEEDS_RESET 0x40

#define VD_F_NEXT 1
#define VD_F_WRITE 2
#define VD_F_INDIRECT 4

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vdev {
	unsigned slot;
	uint16_t device_id;
	volatile uint8_t *common;   /* common configuration */
	volatile uint8_t *isr;
	volatile uint8_t *cfg;      /* device configuration */
	volatile uint8_t *notify;
	uint32_t notify_mult;
	uint64_t features;          /* negotiated */
	uint64_t host_features;
};

struct vq {
	struct vdev *dev;
	uint16_t index, size;
	struct vdesc *desc;
	volatile uint16_t *avail;   /* flags, idx, ring[], used_event */
	volatile uint8_t *used;
	volatile uint16_t *notify;
	uint16_t avail_idx, last_used;
	uint16_t kicked_idx;        /* avail_idx at the last kick */
};

/* PCI configuration space (bus 0, function 0) through 0xCF8/0xCFC. */
uint32_t pci_cfg_read(unsigned slot, unsigned off, unsigned len);
void pci_cfg_write(unsigned slot, unsigned off, unsigned len, uint32_t v);

/* Finds the n-th (0-based) virtio device of type `id`. false if absent. */
bool vdev_find(uint16_t id, unsigned n, struct vdev *d);
/* Where the VMM placed one of the device's BARs. */
uint64_t vdev_bar_addr(const struct vdev *d, unsigned bar);
/* Reset (waits for status 0), ACK, DRIVER, features & host's, FEATURES_OK.
 * Returns the device status (FEATURES_OK clear: refused). */
uint8_t vdev_init(struct vdev *d, uint64_t features);
uint8_t vdev_status(struct vdev *d);
void vdev_set_status(struct vdev *d, uint8_t s);
/* Sets queue `index` up with `size` entries in RAM at `mem` (16 KiB per
 * 256 entries, 4 KiB aligned, zeroed here). Returns false if refused. */
bool vq_setup(struct vdev *d, struct vq *q, uint16_t index, uint16_t size, uint64_t mem);
void vdev_driver_ok(struct vdev *d);
/* Publishes chain `head` and kicks. */
void vq_publish(struct vq *q, uint16_t head);
/* Publishes without kicking (batch), and kicks (respecting EVENT_IDX). */
void vq_publish_nokick(struct vq *q, uint16_t head);
void vq_kick(struct vq *q);
/* Enables MSI-X and points table entry `entry` at the BSP's LAPIC with
 * `apic_vector`, unmasked. false without an MSI-X capability. */
bool vdev_msix_setup(struct vdev *d, unsigned entry, uint8_t apic_vector);
/* Next used entry: true with id/len, false when none yet. */
bool vq_poll(struct vq *q, uint32_t *id, uint32_t *len);
/* Waits up to ms for the next used entry; false on timeout. */
bool vq_wait(struct vq *q, uint32_t *id, uint32_t *len, uint64_t ms);

static inline uint32_t mmio_read32(volatile void *p)
{
	return *(volatile uint32_t *)p;
}
static inline void mmio_write32(volatile void *p, uint32_t v)
{
	*(volatile uint32_t *)p = v;
}

#endif

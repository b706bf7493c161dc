/* State shared by pci.c (host, configuration space, BARs) and msix.c. */
#ifndef SKIFF_PCI_PRIV_H
#define SKIFF_PCI_PRIV_H

#include <linux/kvm.h>

#include "pci.h"
#include "platform.h"

/* MSI-X table entry (PCI 3.0, 6.8.2.6) and what skiff keeps per vector. */
struct pci_msix_vec {
	uint32_t addr_lo, addr_hi, data, ctrl;  /* ctrl bit 0: masked */
	bool pending;                           /* PBA bit */
	uint32_t gsi;
	int irqfd;
	bool routed;                            /* a route with these values is committed */
	uint32_t r_addr_lo, r_addr_hi, r_data;
};

struct pci_dev {
	struct pci_host *host;
	unsigned int slot;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];           /* writable bits of plain registers */
	uint64_t bar_size[PCI_NUM_BARS];       /* 0: none; a 64-bit BAR's upper half has 0 */
	uint64_t bar_placed[PCI_NUM_BARS];     /* where skiff put it (for a reset) */
	uint8_t next_cap;                      /* where the next capability goes */
	uint8_t last_cap;                      /* 0: no capability yet */
	uint8_t cfg_hook;                      /* 0: none */
	const struct pci_dev_ops *ops;
	void *opaque;

	/* MSI-X: layout immutable after init; the rest under msix_lock. */
	pthread_mutex_t msix_lock;
	unsigned int msix_n;
	uint8_t msix_cap;
	unsigned int msix_bar;
	uint32_t msix_table, msix_pba;
	struct pci_msix_vec *vec;
	bool msix_enabled, msix_fmask;         /* copies of message control */
	uint64_t msix_sent;
};

struct pci_host {
	int vm_fd;
	struct bus *pio, *mmio;
	struct guest_mem *mem;
	pthread_rwlock_t lock;
	uint32_t cf8;                          /* CONFIG_ADDRESS latch */
	struct pci_dev *slots[PCI_MAX_SLOTS];  /* slot 0: the host bridge */
	uint64_t next32, next64;               /* BAR bump allocators */
	uint64_t mmio64_base;
	bool pio_cf8, pio_cfc, mmio_ecam, mmio_w32, mmio_w64; /* registered windows */
	/* Byte writes to 0xCF9 (the PC reset control register, inside the
	 * CONFIG_ADDRESS window) go here; called with `lock` held. */
	void (*cf9_write)(void *opaque, uint8_t v);
	void *cf9_opaque;

	/* The VM's GSI routing table (KVM_SET_GSI_ROUTING replaces it whole). */
	pthread_mutex_t route_lock;
	uint32_t next_gsi;
	struct kvm_irq_routing_entry *msi_routes; /* index gsi - GSI_FIRST_MSI */
	bool *msi_valid;
	unsigned int msi_cap;
};

#define PCI_MAX_MSI_GSIS 1024

/* msix.c */
void msix_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len);
void msix_bar_rw(struct pci_dev *d, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
void msix_fini(struct pci_dev *d);
void msix_reset(struct pci_dev *d);
/* Migration: vector i's table entry and pending bit (msix_lock taken). */
void msix_vec_get(struct pci_dev *d, unsigned int i, uint32_t w[4], bool *pending);
void msix_vec_set(struct pci_dev *d, unsigned int i, const uint32_t w[4], bool pending);
int msix_load_commit(struct pci_dev *d);
int msix_routes_init(struct pci_host *h);
void msix_routes_fini(struct pci_host *h);

static inline uint32_t cfg_get(const struct pci_dev *d, uint32_t off, uint32_t len)
{
	uint32_t v = 0;

	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)d->cfg[off + i] << (8 * i);
	return v;
}

static inline void cfg_put(struct pci_dev *d, uint32_t off, uint32_t len, uint32_t v)
{
	for (uint32_t i = 0; i < len; i++)
		d->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

#endif

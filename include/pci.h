/*
 * PCI: one host bridge, bus 0, conventional configuration space (256 bytes
 * per function) through ports 0xCF8/0xCFC and through ECAM at PCI_ECAM_BASE
 * (platform.h); BARs placed by skiff in the 32-bit window (then the 64-bit
 * one); MSI-X tables and PBAs emulated here, each vector routed with KVM
 * GSI routing and delivered through an irqfd.
 *
 * Locks, in order:
 *   pci_host.lock (rwlock)  read-held while a BAR access is dispatched to a
 *                           device, write-held for configuration space
 *                           accesses (they may move BARs) and (un)plugging
 *   pci_dev.msix_lock       the device's MSI-X state; taken by vCPU threads
 *                           (table, message control) and by I/O threads
 *                           (pci_msix_notify)
 *   pci_host.route_lock     the VM's GSI routing table
 *   then the device's own lock (taken inside BAR handlers)
 * The MMIO/PIO bus locks come before all of them (bus handlers).
 */
#ifndef SKIFF_PCI_H
#define SKIFF_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus.h"
#include "mem.h"
#include "util.h"

#define PCI_MAX_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_NUM_BARS 6
#define PCI_MSIX_MAX_VECTORS 64
#define PCI_MSIX_NO_VECTOR 0xffff

/* Configuration header offsets (PCI Local Bus 3.0, 6.1). */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INT_LINE 0x3c
#define PCI_INT_PIN 0x3d
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11

struct pci_host;
struct pci_dev;

struct pci_dev_info {
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys;
	uint8_t revision;
	uint32_t class_code;          /* class << 16 | subclass << 8 | prog-if */
};

struct pci_dev_ops {
	/* vCPU thread, host lock read-held: an access at `off` inside `bar`
	 * (MSI-X table and PBA excluded: pci.c serves those). */
	void (*bar_rw)(void *opaque, unsigned int bar, uint64_t off, uint8_t *data,
		       uint32_t len, bool is_write);
	/* vCPU or main thread, host lock write-held: a BAR address or memory
	 * decoding changed (re-register ioeventfds). May be NULL. */
	void (*bars_changed)(void *opaque);
	/* vCPU thread, host lock write-held: a configuration access at or past
	 * the device's hook offset (pci_dev_set_cfg_hook); return true if it
	 * was handled. May be NULL. */
	bool (*cfg_rw)(void *opaque, uint32_t off, uint8_t *data, uint32_t len, bool is_write);
};

/* Main thread. vm_fd -1 (unit tests): no KVM calls, interrupts counted only. */
int MUST_CHECK pci_host_create(int vm_fd, struct bus *pio, struct bus *mmio,
			       struct guest_mem *mem, struct pci_host **out);
void pci_host_destroy(struct pci_host *h);
/* Main thread, vCPUs stopped (guest reboot): every function back to its
 * power-on configuration (BARs where skiff placed them, MSI-X off). */
void pci_host_reset(struct pci_host *h);
/* Byte writes to port 0xCF9 (reset control, which shares the
 * CONFIG_ADDRESS dword) are handed to fn (vCPU thread, host lock held). */
void pci_host_set_cf9(struct pci_host *h, void (*fn)(void *opaque, uint8_t v), void *opaque);

/* Main thread: adds a function at the next free slot of bus 0. */
int MUST_CHECK pci_dev_add(struct pci_host *h, const struct pci_dev_info *info,
			   const struct pci_dev_ops *ops, void *opaque, struct pci_dev **out);
/* Main thread, before the VM runs: a memory BAR of `size` bytes (power of
 * two, >= 4 KiB), 64-bit (uses bar and bar+1), placed in the 32-bit window
 * if it fits, else the 64-bit one. Memory decoding starts enabled, as
 * firmware would leave it. */
int MUST_CHECK pci_dev_add_bar(struct pci_dev *d, unsigned int bar, uint64_t size);
/* Appends a capability (cap[0] = ID; cap[1], the next pointer, is filled
 * in). *off receives its offset in configuration space. */
int MUST_CHECK pci_dev_add_cap(struct pci_dev *d, const uint8_t *cap, uint8_t len, uint8_t *off);
/* MSI-X with `vectors` entries: table at table_off and PBA at pba_off in
 * `bar`. Allocates one GSI and one irqfd per vector. */
int MUST_CHECK pci_dev_init_msix(struct pci_dev *d, unsigned int vectors, unsigned int bar,
				 uint32_t table_off, uint32_t pba_off);
/* Configuration accesses at offsets >= off go to ops->cfg_rw first. */
void pci_dev_set_cfg_hook(struct pci_dev *d, uint8_t off);
/* Main thread, vCPUs stopped: unplugs and frees the function. */
void pci_dev_remove(struct pci_dev *d);

/* The VM fd the host was created with (-1 in unit tests). */
int pci_host_vm_fd(const struct pci_host *h);
/* Main thread: takes (lock true) or drops the host lock for writing around
 * changes a device makes outside a callback (binding ioeventfds). */
void pci_host_lock(struct pci_dev *d, bool lock);

/* The device number on bus 0. */
unsigned int pci_dev_slot(const struct pci_dev *d);
/* Current BAR address and whether memory decoding is on. Host lock held
 * (inside ops callbacks) or vCPUs stopped. */
uint64_t pci_dev_bar_addr(const struct pci_dev *d, unsigned int bar);
bool pci_dev_mem_enabled(const struct pci_dev *d);
/* Inside ops->cfg_rw (host lock write-held): an access to the device's own
 * BAR as if through memory (serves the MSI-X table too). */
void pci_dev_bar_access(struct pci_dev *d, unsigned int bar, uint64_t off, uint8_t *data,
			uint32_t len, bool is_write);

/* Migration (vCPUs parked, the device's I/O thread paused): a function's
 * guest-visible state — configuration space, MSI-X table and pending bits —
 * as bytes (layout in pci.c). Load replays it through the same paths as
 * guest writes (BAR moves re-bind ioeventfds, MSI-X routes are re-made) and
 * refuses a function whose identity or MSI-X size differs. */
size_t pci_dev_state_size(const struct pci_dev *d);
void pci_dev_state_save(struct pci_dev *d, uint8_t *buf);
int MUST_CHECK pci_dev_state_load(struct pci_dev *d, const uint8_t *buf, size_t len,
				  char *err, size_t errlen);

/* Any thread: sends MSI-X `vector`, or sets its PBA bit while it (or the
 * function) is masked. Returns 0, -ENOENT (no such vector), -EAGAIN (MSI-X
 * disabled: nothing sent) or -errno from the irqfd write. */
int pci_msix_notify(struct pci_dev *d, uint16_t vector);
/* Messages sent so far (unit tests, counters). */
uint64_t pci_msix_sent(struct pci_dev *d);

#endif

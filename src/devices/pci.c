/*
 * PCI host bridge on bus 0: configuration space through 0xCF8/0xCFC (PIO)
 * and ECAM (MMIO), BAR placement and dispatch. MSI-X lives in msix.c.
 *
 * Thread context: configuration and BAR accesses arrive on vCPU threads
 * (bus handlers); create/add/remove run on the main thread before the vCPUs
 * start or after they stopped. Lock order: see pci.h.
 *
 * BARs are placed by skiff and the whole 32-bit and 64-bit windows are
 * registered on the MMIO bus once, so a guest that moves a BAR never makes
 * a bus handler (un)register a window: the windows' handler looks the BAR
 * up itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pci_priv.h"

#define BAR_FLAG_MEM64 0x4  /* memory, 64-bit, not prefetchable */

/* --- configuration space -------------------------------------------------- */

/* A little-endian dword from a saved configuration space (migration). */
static uint32_t cfg_get_raw(const uint8_t *cfg, uint32_t off)
{
	uint32_t v;

	memcpy(&v, cfg + off, 4);
	return v;
}

uint64_t pci_dev_bar_addr(const struct pci_dev *d, unsigned int bar)
{
	uint64_t lo = cfg_get(d, PCI_BAR0 + 4 * bar, 4) & ~0xfULL;
	uint64_t hi = cfg_get(d, PCI_BAR0 + 4 * (bar + 1), 4);

	return lo | hi << 32;
}

bool pci_dev_mem_enabled(const struct pci_dev *d)
{
	return cfg_get(d, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY;
}

/* A write to one BAR dword: address bits below the size read back as 0,
 * which is how drivers size BARs (write ones, read back). */
static void bar_write(struct pci_dev *d, uint32_t dw, uint32_t off, uint32_t len, uint32_t val)
{
	unsigned int b = (dw - PCI_BAR0) / 4;
	uint32_t v = cfg_get(d, dw, 4), shift = 8 * (off - dw);
	uint32_t mask = (len == 4 ? 0xffffffffu : ((1u << (8 * len)) - 1)) << shift;
	uint64_t size;

	v = (v & ~mask) | ((val << shift) & mask);
	if (d->bar_size[b]) {
		size = d->bar_size[b];
		v = (v & ~0xfu & (uint32_t)~(size - 1)) | BAR_FLAG_MEM64;
	} else if (b > 0 && d->bar_size[b - 1]) {
		size = d->bar_size[b - 1];
		v &= (uint32_t)(~(size - 1) >> 32);
	} else {
		return; /* no BAR here: reads as 0 */
	}
	cfg_put(d, dw, 4, v);
}

static void cfg_write(struct pci_dev *d, uint32_t off, uint32_t len, uint32_t val)
{
	bool mem_before = pci_dev_mem_enabled(d), bars = false;
	uint32_t i;

	if (off >= PCI_BAR0 && off < PCI_BAR0 + 4 * PCI_NUM_BARS) {
		bar_write(d, off & ~3u, off, len, val);
		bars = true;
	} else {
		for (i = 0; i < len; i++) {
			uint8_t m = d->wmask[off + i], b = (uint8_t)(val >> (8 * i));

			d->cfg[off + i] = (uint8_t)((d->cfg[off + i] & ~m) | (b & m));
		}
	}
	if (d->msix_cap && off < d->msix_cap + 4u && off + len > d->msix_cap + 2u)
		msix_cfg_write(d, off, len);
	if (d->ops && d->ops->bars_changed &&
	    ((bars && pci_dev_mem_enabled(d)) || mem_before != pci_dev_mem_enabled(d)))
		d->ops->bars_changed(d->opaque);
}

/* One configuration access to bus 0, `slot`, function 0. Host lock write-held.
 * Accesses must stay inside one dword. */
static void cfg_access(struct pci_host *h, unsigned int slot, unsigned int fn, uint32_t off,
		       uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_dev *d = slot < PCI_MAX_SLOTS && fn == 0 ? h->slots[slot] : NULL;
	uint32_t v = 0;

	if (!d || off + len > PCI_CFG_SIZE || (off & 3) + len > 4 ||
	    (len != 1 && len != 2 && len != 4)) {
		/* No function, extended space (skiff's functions have none:
		 * all ones tells Linux so), or a torn access. */
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	if (d->cfg_hook && off >= d->cfg_hook && d->ops->cfg_rw &&
	    d->ops->cfg_rw(d->opaque, off, data, len, is_write))
		return;
	if (is_write) {
		memcpy(&v, data, len);
		cfg_write(d, off, len, v);
	} else {
		memcpy(data, d->cfg + off, len);
	}
}

/* 0xCF8: CONFIG_ADDRESS (PCI 3.0, 3.2.2.3.2); only dword accesses latch. */
static void pio_cf8(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;

	pthread_rwlock_wrlock(&h->lock);
	if (len == 4 && offset == 0) {
		if (is_write)
			memcpy(&h->cf8, data, 4);
		else
			memcpy(data, &h->cf8, 4);
	} else if (is_write && len == 1 && offset == 1 && h->cf9_write) {
		h->cf9_write(h->cf9_opaque, data[0]);
	} else if (!is_write) {
		memset(data, 0xff, len);
	}
	pthread_rwlock_unlock(&h->lock);
}

/* 0xCFC-0xCFF: CONFIG_DATA for the latched bus/device/function/register. */
static void pio_cfc(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;
	uint32_t a;

	pthread_rwlock_wrlock(&h->lock);
	a = h->cf8;
	if (!(a & 0x80000000u) || ((a >> 16) & 0xff) != 0) {
		if (!is_write)
			memset(data, 0xff, len);
	} else {
		cfg_access(h, (a >> 11) & 0x1f, (a >> 8) & 7, (a & 0xfc) + (uint32_t)offset,
			   data, len, is_write);
	}
	pthread_rwlock_unlock(&h->lock);
}

/* ECAM (PCIe 4.0, 7.2.2): bus << 20 | device << 15 | function << 12 | register. */
static void mmio_ecam(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;

	pthread_rwlock_wrlock(&h->lock);
	if ((offset >> 20) != 0) {
		if (!is_write)
			memset(data, 0xff, len);
	} else {
		cfg_access(h, (offset >> 15) & 0x1f, (offset >> 12) & 7, offset & 0xfff,
			   data, len, is_write);
	}
	pthread_rwlock_unlock(&h->lock);
}

/* --- BARs ------------------------------------------------------------------ */

void pci_dev_bar_access(struct pci_dev *d, unsigned int bar, uint64_t off, uint8_t *data,
			uint32_t len, bool is_write)
{
	if (d->msix_n && bar == d->msix_bar &&
	    ((off >= d->msix_table && off < d->msix_table + 16ULL * d->msix_n) ||
	     (off >= d->msix_pba && off < d->msix_pba + 8ULL * ((d->msix_n + 63) / 64)))) {
		msix_bar_rw(d, off, data, len, is_write);
		return;
	}
	if (d->ops && d->ops->bar_rw)
		d->ops->bar_rw(d->opaque, bar, off, data, len, is_write);
	else if (!is_write)
		memset(data, 0xff, len);
}

static void mmio_window(struct pci_host *h, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	unsigned int s, b;

	pthread_rwlock_rdlock(&h->lock);
	for (s = 0; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slots[s];

		if (!d || !pci_dev_mem_enabled(d))
			continue;
		for (b = 0; b < PCI_NUM_BARS; b++) {
			uint64_t base, size = d->bar_size[b];

			if (!size)
				continue;
			base = pci_dev_bar_addr(d, b);
			if (addr >= base && addr - base < size && len <= size - (addr - base)) {
				pci_dev_bar_access(d, b, addr - base, data, len, is_write);
				pthread_rwlock_unlock(&h->lock);
				return;
			}
		}
	}
	pthread_rwlock_unlock(&h->lock);
	if (!is_write)
		memset(data, 0xff, len);
}

static void mmio_w32(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	mmio_window(opaque, PCI_MMIO32_BASE + offset, data, len, is_write);
}

static void mmio_w64(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;

	mmio_window(h, h->mmio64_base + offset, data, len, is_write);
}

int pci_dev_add_bar(struct pci_dev *d, unsigned int bar, uint64_t size)
{
	struct pci_host *h = d->host;
	uint64_t addr;

	if (bar + 1 >= PCI_NUM_BARS || size < 4096 || (size & (size - 1)) ||
	    d->bar_size[bar] || d->bar_size[bar + 1] || (bar && d->bar_size[bar - 1]))
		return -EINVAL;
	addr = ALIGN_UP(h->next32, size);
	if (addr + size <= PCI_MMIO32_BASE + PCI_MMIO32_SIZE) {
		h->next32 = addr + size;
	} else {
		addr = ALIGN_UP(h->next64, size);
		if (addr + size > h->mmio64_base + PCI_MMIO64_SIZE)
			return -ENOSPC;
		h->next64 = addr + size;
	}
	pthread_rwlock_wrlock(&h->lock);
	d->bar_size[bar] = size;
	d->bar_placed[bar] = addr;
	cfg_put(d, PCI_BAR0 + 4 * bar, 4, (uint32_t)addr | BAR_FLAG_MEM64);
	cfg_put(d, PCI_BAR0 + 4 * (bar + 1), 4, (uint32_t)(addr >> 32));
	cfg_put(d, PCI_COMMAND, 2, cfg_get(d, PCI_COMMAND, 2) | PCI_COMMAND_MEMORY);
	pthread_rwlock_unlock(&h->lock);
	return 0;
}

/* --- capabilities ------------------------------------------------------------ */

int pci_dev_add_cap(struct pci_dev *d, const uint8_t *cap, uint8_t len, uint8_t *off)
{
	uint8_t at = d->next_cap;

	if (len < 2 || at + len > PCI_CFG_SIZE)
		return -ENOSPC;
	pthread_rwlock_wrlock(&d->host->lock);
	memcpy(d->cfg + at, cap, len);
	d->cfg[at + 1] = 0;
	if (d->last_cap)
		d->cfg[d->last_cap + 1] = at;
	else
		d->cfg[PCI_CAP_PTR] = at;
	cfg_put(d, PCI_STATUS, 2, cfg_get(d, PCI_STATUS, 2) | PCI_STATUS_CAP_LIST);
	d->last_cap = at;
	d->next_cap = (uint8_t)ALIGN_UP(at + len, 4u);
	pthread_rwlock_unlock(&d->host->lock);
	if (off)
		*off = at;
	return 0;
}

void pci_dev_set_cfg_hook(struct pci_dev *d, uint8_t off)
{
	d->cfg_hook = off;
}

/* --- functions --------------------------------------------------------------- */

int pci_host_vm_fd(const struct pci_host *h)
{
	return h->vm_fd;
}

void pci_host_lock(struct pci_dev *d, bool lock)
{
	if (lock)
		pthread_rwlock_wrlock(&d->host->lock);
	else
		pthread_rwlock_unlock(&d->host->lock);
}

unsigned int pci_dev_slot(const struct pci_dev *d)
{
	return d->slot;
}

static struct pci_dev *dev_new(struct pci_host *h, unsigned int slot, const struct pci_dev_info *info)
{
	struct pci_dev *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->host = h;
	d->slot = slot;
	d->next_cap = 0x40;
	pthread_mutex_init(&d->msix_lock, NULL);
	cfg_put(d, PCI_VENDOR_ID, 2, info->vendor);
	cfg_put(d, PCI_DEVICE_ID, 2, info->device);
	d->cfg[PCI_REVISION] = info->revision;
	cfg_put(d, PCI_CLASS_PROG, 3, info->class_code);
	cfg_put(d, PCI_SUBSYS_VENDOR, 2, info->subsys_vendor);
	cfg_put(d, PCI_SUBSYS_ID, 2, info->subsys);
	/* Writable: command (I/O, memory, bus master, parity, SERR, INTx
	 * disable), cache line size, latency timer, interrupt line. */
	d->wmask[PCI_COMMAND] = 0x47;
	d->wmask[PCI_COMMAND + 1] = 0x05;
	d->wmask[0x0c] = 0xff;
	d->wmask[0x0d] = 0xff;
	d->wmask[PCI_INT_LINE] = 0xff;
	return d;
}

int pci_dev_add(struct pci_host *h, const struct pci_dev_info *info,
		const struct pci_dev_ops *ops, void *opaque, struct pci_dev **out)
{
	struct pci_dev *d;
	unsigned int s;

	for (s = 1; s < PCI_MAX_SLOTS && h->slots[s]; s++)
		;
	if (s == PCI_MAX_SLOTS)
		return -ENOSPC;
	d = dev_new(h, s, info);
	if (!d)
		return -ENOMEM;
	d->ops = ops;
	d->opaque = opaque;
	pthread_rwlock_wrlock(&h->lock);
	h->slots[s] = d;
	pthread_rwlock_unlock(&h->lock);
	*out = d;
	return 0;
}

void pci_dev_remove(struct pci_dev *d)
{
	if (!d)
		return;
	pthread_rwlock_wrlock(&d->host->lock);
	d->host->slots[d->slot] = NULL;
	pthread_rwlock_unlock(&d->host->lock);
	msix_fini(d);
	pthread_mutex_destroy(&d->msix_lock);
	free(d);
}

/* --- host ---------------------------------------------------------------------- */

int pci_host_create(int vm_fd, struct bus *pio, struct bus *mmio, struct guest_mem *mem,
		    struct pci_host **out)
{
	/* A generic host bridge: Red Hat's ID for virtual PCIe host bridges. */
	static const struct pci_dev_info bridge = {
		.vendor = 0x1b36, .device = 0x0008, .class_code = 0x060000,
		.subsys_vendor = 0x1b36, .subsys = 0x0008,
	};
	struct pci_host *h;
	int ret;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->vm_fd = vm_fd;
	h->pio = pio;
	h->mmio = mmio;
	h->mem = mem;
	h->next32 = PCI_MMIO32_BASE;
	h->mmio64_base = pci_mmio64_base(mem);
	h->next64 = h->mmio64_base;
	pthread_rwlock_init(&h->lock, NULL);
	ret = msix_routes_init(h);
	if (ret)
		goto fail;
	h->slots[0] = dev_new(h, 0, &bridge);
	if (!h->slots[0]) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = bus_register(pio, PORT_PCI_CONFIG_ADDR, 4, pio_cf8, h, "pci-cf8");
	if (ret)
		goto fail;
	h->pio_cf8 = true;
	ret = bus_register(pio, PORT_PCI_CONFIG_ADDR + 4, 4, pio_cfc, h, "pci-cfc");
	if (ret)
		goto fail;
	h->pio_cfc = true;
	ret = bus_register(mmio, PCI_ECAM_BASE, PCI_ECAM_SIZE, mmio_ecam, h, "pci-ecam");
	if (ret)
		goto fail;
	h->mmio_ecam = true;
	ret = bus_register(mmio, PCI_MMIO32_BASE, PCI_MMIO32_SIZE, mmio_w32, h, "pci-mmio32");
	if (ret)
		goto fail;
	h->mmio_w32 = true;
	ret = bus_register(mmio, h->mmio64_base, PCI_MMIO64_SIZE, mmio_w64, h, "pci-mmio64");
	if (ret)
		goto fail;
	h->mmio_w64 = true;
	*out = h;
	return 0;
fail:
	pci_host_destroy(h);
	return ret;
}

void pci_host_destroy(struct pci_host *h)
{
	unsigned int s;

	if (!h)
		return;
	if (h->mmio_w64)
		bus_unregister(h->mmio, h->mmio64_base);
	if (h->mmio_w32)
		bus_unregister(h->mmio, PCI_MMIO32_BASE);
	if (h->mmio_ecam)
		bus_unregister(h->mmio, PCI_ECAM_BASE);
	if (h->pio_cfc)
		bus_unregister(h->pio, PORT_PCI_CONFIG_ADDR + 4);
	if (h->pio_cf8)
		bus_unregister(h->pio, PORT_PCI_CONFIG_ADDR);
	for (s = 1; s < PCI_MAX_SLOTS; s++) {
		if (h->slots[s])
			log_warn("pci: function %u still plugged at host teardown", s);
	}
	free(h->slots[0]);
	msix_routes_fini(h);
	pthread_rwlock_destroy(&h->lock);
	free(h);
}

void pci_host_reset(struct pci_host *h)
{
	unsigned int s, b;

	pthread_rwlock_wrlock(&h->lock);
	h->cf8 = 0;
	for (s = 1; s < PCI_MAX_SLOTS; s++) {
		struct pci_dev *d = h->slots[s];

		if (!d)
			continue;
		for (b = 0; b < PCI_NUM_BARS; b++) {
			if (!d->bar_size[b])
				continue;
			cfg_put(d, PCI_BAR0 + 4 * b, 4, (uint32_t)d->bar_placed[b] | BAR_FLAG_MEM64);
			cfg_put(d, PCI_BAR0 + 4 * (b + 1), 4, (uint32_t)(d->bar_placed[b] >> 32));
		}
		cfg_put(d, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
		d->cfg[0x0c] = d->cfg[0x0d] = d->cfg[PCI_INT_LINE] = 0;
		if (d->msix_cap)
			msix_reset(d);
		if (d->ops && d->ops->bars_changed)
			d->ops->bars_changed(d->opaque);
	}
	pthread_rwlock_unlock(&h->lock);
}

void pci_host_set_cf9(struct pci_host *h, void (*fn)(void *opaque, uint8_t v), void *opaque)
{
	pthread_rwlock_wrlock(&h->lock);
	h->cf9_write = fn;
	h->cf9_opaque = opaque;
	pthread_rwlock_unlock(&h->lock);
}

/* --- migration ---------------------------------------------------------------
 *
 * Layout (v1): u8 version, u8 MSI-X vectors (n), 2 reserved bytes, the 256
 * bytes of configuration space, then n x {u32 addr_lo, addr_hi, data, ctrl,
 * u8 pending} (little-endian, x86's order).
 */
#define PCI_STATE_VERSION 1
#define PCI_STATE_VEC 17

size_t pci_dev_state_size(const struct pci_dev *d)
{
	return 4 + PCI_CFG_SIZE + (size_t)d->msix_n * PCI_STATE_VEC;
}

void pci_dev_state_save(struct pci_dev *d, uint8_t *buf)
{
	buf[0] = PCI_STATE_VERSION;
	buf[1] = (uint8_t)d->msix_n;
	buf[2] = buf[3] = 0;
	memcpy(buf + 4, d->cfg, PCI_CFG_SIZE);
	buf += 4 + PCI_CFG_SIZE;
	for (unsigned int i = 0; i < d->msix_n; i++, buf += PCI_STATE_VEC) {
		uint32_t w[4];
		bool pending;

		msix_vec_get(d, i, w, &pending);
		memcpy(buf, w, 16);
		buf[16] = pending;
	}
}

int pci_dev_state_load(struct pci_dev *d, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	static const uint8_t ident[] = { 0x00, 0x01, 0x02, 0x03, 0x08, 0x09, 0x0a, 0x0b, 0x0e,
					 0x2c, 0x2d, 0x2e, 0x2f };
	const uint8_t *cfg = buf + 4;

	if (len < 4 || buf[0] != PCI_STATE_VERSION || buf[1] != d->msix_n ||
	    len != pci_dev_state_size(d)) {
		snprintf(err, errlen, "PCI function %02x: state version %u with %u MSI-X vectors "
			 "(%zu bytes); this function has %u", d->slot, len ? buf[0] : 0,
			 len > 1 ? buf[1] : 0, len, d->msix_n);
		return -EINVAL;
	}
	for (unsigned int i = 0; i < sizeof(ident); i++) {
		if (cfg[ident[i]] != d->cfg[ident[i]]) {
			snprintf(err, errlen, "PCI function %02x is a different device on the source "
				 "(configuration byte 0x%02x)", d->slot, ident[i]);
			return -EINVAL;
		}
	}
	pthread_rwlock_wrlock(&d->host->lock);
	/* Where the guest left the BARs and decoding. Usually that is where
	 * this VM placed them too (same command line): then nothing moves and
	 * no ioeventfd is re-bound (each costs the kernel a grace period). */
	if (memcmp(cfg + PCI_COMMAND, d->cfg + PCI_COMMAND, 2) ||
	    memcmp(cfg + PCI_BAR0, d->cfg + PCI_BAR0, 4 * PCI_NUM_BARS)) {
		/* As the guest would: BARs with decoding off, then the command
		 * register (bars_changed re-binds at the final addresses). */
		cfg_write(d, PCI_COMMAND, 2, 0);
		for (uint32_t off = PCI_BAR0; off < PCI_BAR0 + 4 * PCI_NUM_BARS; off += 4)
			cfg_write(d, off, 4, cfg_get_raw(cfg, off));
		cfg_write(d, PCI_COMMAND, 2, cfg_get_raw(cfg, PCI_COMMAND) & 0xffff);
	}
	cfg_write(d, PCI_INT_LINE, 1, cfg[PCI_INT_LINE]);
	if (d->msix_cap) {
		const uint8_t *v = buf + 4 + PCI_CFG_SIZE;
		uint8_t ctrl_hi = cfg[d->msix_cap + 3u];
		int ret;

		for (unsigned int i = 0; i < d->msix_n; i++, v += PCI_STATE_VEC) {
			uint32_t w[4];

			memcpy(w, v, 16);
			msix_vec_set(d, i, w, v[16] & 1);
		}
		/* Message control's writable bits, then all routes at once. */
		d->cfg[d->msix_cap + 3u] = (uint8_t)((d->cfg[d->msix_cap + 3u] &
						      ~d->wmask[d->msix_cap + 3u]) |
						     (ctrl_hi & d->wmask[d->msix_cap + 3u]));
		ret = msix_load_commit(d);
		if (ret) {
			pthread_rwlock_unlock(&d->host->lock);
			snprintf(err, errlen, "PCI function %02x: KVM refused the MSI-X routes: %s",
				 d->slot, strerror(-ret));
			return ret;
		}
	}
	pthread_rwlock_unlock(&d->host->lock);
	return 0;
}

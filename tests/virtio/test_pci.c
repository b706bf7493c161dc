/*
 * Unit tests for src/devices/pci.c and msix.c without KVM (vm_fd -1):
 * configuration space through 0xCF8/0xCFC and ECAM, BAR sizing, placement
 * and moves, capabilities, MSI-X masking and the PBA.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "mem.h"
#include "pci.h"
#include "platform.h"

struct fake {
	unsigned int calls, bars_changed;
	uint64_t off;
	uint32_t len;
	bool is_write;
	uint32_t wval;
};

static void fake_bar_rw(void *opaque, unsigned int bar, uint64_t off, uint8_t *data,
			uint32_t len, bool is_write)
{
	struct fake *f = opaque;

	f->calls++;
	f->off = off;
	f->len = len;
	f->is_write = is_write;
	if (is_write)
		memcpy(&f->wval, data, MIN(len, 4u));
	else
		memset(data, 0xab, len);
}

static void fake_bars_changed(void *opaque)
{
	((struct fake *)opaque)->bars_changed++;
}

static const struct pci_dev_ops fake_ops = {
	.bar_rw = fake_bar_rw,
	.bars_changed = fake_bars_changed,
};

struct env {
	struct guest_mem *mem;
	struct bus *pio, *mmio;
	struct pci_host *h;
	struct pci_dev *d;
	struct fake f;
};

static void env_init(struct env *e, bool with_dev)
{
	static const struct pci_dev_info info = {
		.vendor = 0x1af4, .device = 0x1042, .revision = 1, .class_code = 0x010000,
		.subsys_vendor = 0x1af4, .subsys = 0x1100,
	};

	memset(e, 0, sizeof(*e));
	ck_assert_int_eq(mem_create(64 * MiB, &e->mem), 0);
	ck_assert_int_eq(bus_create("pio", &e->pio), 0);
	ck_assert_int_eq(bus_create("mmio", &e->mmio), 0);
	ck_assert_int_eq(pci_host_create(-1, e->pio, e->mmio, e->mem, &e->h), 0);
	if (!with_dev)
		return;
	ck_assert_int_eq(pci_dev_add(e->h, &info, &fake_ops, &e->f, &e->d), 0);
	ck_assert_int_eq(pci_dev_add_bar(e->d, 0, 0x8000), 0);
	ck_assert_int_eq(pci_dev_init_msix(e->d, 3, 0, 0x4000, 0x5000), 0);
}

static void env_fini(struct env *e)
{
	pci_dev_remove(e->d);
	pci_host_destroy(e->h);
	bus_destroy(e->mmio);
	bus_destroy(e->pio);
	mem_destroy(e->mem);
}

static uint32_t cf8_read(struct env *e, unsigned int bus, unsigned int dev, unsigned int reg,
			 uint32_t len)
{
	uint32_t a = 0x80000000u | bus << 16 | dev << 11 | (reg & 0xfc), v = 0;

	ck_assert(bus_dispatch(e->pio, 0xcf8, (uint8_t *)&a, 4, true));
	ck_assert(bus_dispatch(e->pio, 0xcfc + (reg & 3), (uint8_t *)&v, len, false));
	return v;
}

static void cf8_write(struct env *e, unsigned int dev, unsigned int reg, uint32_t len, uint32_t v)
{
	uint32_t a = 0x80000000u | dev << 11 | (reg & 0xfc);

	ck_assert(bus_dispatch(e->pio, 0xcf8, (uint8_t *)&a, 4, true));
	ck_assert(bus_dispatch(e->pio, 0xcfc + (reg & 3), (uint8_t *)&v, len, true));
}

static uint32_t ecam_read(struct env *e, unsigned int bus, unsigned int dev, unsigned int reg,
			  uint32_t len)
{
	uint32_t v = 0;

	ck_assert(bus_dispatch(e->mmio, PCI_ECAM_BASE + ((uint64_t)bus << 20) + (dev << 15) + reg,
			       (uint8_t *)&v, len, false));
	return v;
}

static uint32_t mmio_read32(struct env *e, uint64_t addr)
{
	uint32_t v = 0;

	bus_dispatch(e->mmio, addr, (uint8_t *)&v, 4, false);
	return v;
}

static void mmio_write32(struct env *e, uint64_t addr, uint32_t v)
{
	bus_dispatch(e->mmio, addr, (uint8_t *)&v, 4, true);
}

START_TEST(host_bridge_and_empty_slots)
{
	struct env e;

	env_init(&e, false);
	ck_assert_uint_eq(cf8_read(&e, 0, 0, 0, 4), 0x00081b36);
	ck_assert_uint_eq(ecam_read(&e, 0, 0, 0, 4), 0x00081b36);
	ck_assert_uint_eq(cf8_read(&e, 0, 0, 0x0a, 2), 0x0600);  /* class: host bridge */
	ck_assert_uint_eq(cf8_read(&e, 0, 5, 0, 4), 0xffffffff);
	ck_assert_uint_eq(cf8_read(&e, 1, 0, 0, 4), 0xffffffff);
	ck_assert_uint_eq(ecam_read(&e, 1, 0, 0, 4), 0xffffffff);
	ck_assert_uint_eq(ecam_read(&e, 0, 0, 0x100, 4), 0xffffffff); /* no extended space */
	env_fini(&e);
}
END_TEST

START_TEST(cf8_latch_needs_enable_and_dword)
{
	struct env e;
	uint32_t a = 0, v = 0;
	uint8_t b = 0x12;

	env_init(&e, false);
	ck_assert(bus_dispatch(e.pio, 0xcf8, (uint8_t *)&a, 4, true));   /* enable bit clear */
	ck_assert(bus_dispatch(e.pio, 0xcfc, (uint8_t *)&v, 4, false));
	ck_assert_uint_eq(v, 0xffffffff);
	a = 0x80000000u;
	ck_assert(bus_dispatch(e.pio, 0xcf8, (uint8_t *)&a, 4, true));
	ck_assert(bus_dispatch(e.pio, 0xcf8, &b, 1, true));               /* byte: ignored */
	a = 0;
	ck_assert(bus_dispatch(e.pio, 0xcf8, (uint8_t *)&a, 4, false));
	ck_assert_uint_eq(a, 0x80000000u);
	env_fini(&e);
}
END_TEST

START_TEST(device_header_and_caps)
{
	struct env e;
	unsigned int slot, cap, n = 0;
	bool msix = false;

	env_init(&e, true);
	slot = pci_dev_slot(e.d);
	ck_assert_uint_eq(slot, 1);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, 0, 4), 0x10421af4);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, 0x08, 1), 1);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, 0x2c, 4), 0x11001af4);
	ck_assert(cf8_read(&e, 0, slot, 0x06, 2) & 0x10);                /* capability list */
	for (cap = cf8_read(&e, 0, slot, 0x34, 1); cap && n < 48; n++) {
		if (cf8_read(&e, 0, slot, cap, 1) == 0x11) {
			msix = true;
			/* table size 3 (N-1 = 2), table and PBA in BAR 0 */
			ck_assert_uint_eq(cf8_read(&e, 0, slot, cap + 2, 2) & 0x7ff, 2);
			ck_assert_uint_eq(cf8_read(&e, 0, slot, cap + 4, 4), 0x4000);
			ck_assert_uint_eq(cf8_read(&e, 0, slot, cap + 8, 4), 0x5000);
		}
		cap = cf8_read(&e, 0, slot, cap + 1, 1);
	}
	ck_assert(msix);
	/* Read-only IDs stay put. */
	cf8_write(&e, slot, 0, 4, 0x12345678);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, 0, 4), 0x10421af4);
	env_fini(&e);
}
END_TEST

START_TEST(bar_sizing_and_dispatch)
{
	struct env e;
	unsigned int slot;
	uint32_t lo, hi;

	env_init(&e, true);
	slot = pci_dev_slot(e.d);
	lo = cf8_read(&e, 0, slot, 0x10, 4);
	hi = cf8_read(&e, 0, slot, 0x14, 4);
	ck_assert_uint_eq(lo & 0xf, 0x4);                          /* 64-bit memory */
	ck_assert_uint_eq(lo & ~0xfu, PCI_MMIO32_BASE);            /* first BAR placed */
	ck_assert_uint_eq(hi, 0);
	ck_assert(cf8_read(&e, 0, slot, 0x04, 2) & PCI_COMMAND_MEMORY);
	/* The device sees offsets inside its BAR. */
	ck_assert_uint_eq(mmio_read32(&e, PCI_MMIO32_BASE + 0x10), 0xabababab);
	ck_assert_uint_eq(e.f.off, 0x10);
	mmio_write32(&e, PCI_MMIO32_BASE + 0x2000, 0x5a);
	ck_assert(e.f.is_write);
	ck_assert_uint_eq(e.f.wval, 0x5a);
	/* Sizing: all ones read back as the size mask. */
	cf8_write(&e, slot, 0x04, 2, 0);                           /* decode off */
	ck_assert_uint_eq(mmio_read32(&e, PCI_MMIO32_BASE + 0x10), 0xffffffff);
	cf8_write(&e, slot, 0x10, 4, 0xffffffff);
	cf8_write(&e, slot, 0x14, 4, 0xffffffff);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, 0x10, 4), 0xffff8004);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, 0x14, 4), 0xffffffff);
	/* Move it and turn decoding on: the device follows, bars_changed runs. */
	cf8_write(&e, slot, 0x10, 4, 0xc0100000);
	cf8_write(&e, slot, 0x14, 4, 0);
	e.f.bars_changed = 0;
	cf8_write(&e, slot, 0x04, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	ck_assert_uint_eq(e.f.bars_changed, 1);
	ck_assert_uint_eq(pci_dev_bar_addr(e.d, 0), 0xc0100000);
	e.f.calls = 0;
	ck_assert_uint_eq(mmio_read32(&e, PCI_MMIO32_BASE + 0x10), 0xffffffff);
	ck_assert_uint_eq(e.f.calls, 0);
	ck_assert_uint_eq(mmio_read32(&e, 0xc0100000 + 0x20), 0xabababab);
	ck_assert_uint_eq(e.f.off, 0x20);
	/* An access that runs off the end of the BAR is not the device's. */
	e.f.calls = 0;
	mmio_read32(&e, 0xc0100000 + 0x8000 - 2);
	ck_assert_uint_eq(e.f.calls, 0);
	env_fini(&e);
}
END_TEST

START_TEST(msix_mask_and_pba)
{
	struct env e;
	unsigned int slot, cap;
	uint64_t bar = PCI_MMIO32_BASE;

	env_init(&e, true);
	slot = pci_dev_slot(e.d);
	for (cap = cf8_read(&e, 0, slot, 0x34, 1); cf8_read(&e, 0, slot, cap, 1) != 0x11;)
		cap = cf8_read(&e, 0, slot, cap + 1, 1);
	ck_assert_int_eq(pci_msix_notify(e.d, 0), -EAGAIN);        /* MSI-X off */
	ck_assert_int_eq(pci_msix_notify(e.d, 3), -ENOENT);
	cf8_write(&e, slot, cap + 2, 2, 0x8000);                   /* enable */
	ck_assert_uint_eq(cf8_read(&e, 0, slot, cap + 2, 2), 0x8002);
	/* Vector 1: all entries start masked, so a message is held in the PBA. */
	ck_assert_uint_eq(mmio_read32(&e, bar + 0x4000 + 16 + 12), 1);
	ck_assert_int_eq(pci_msix_notify(e.d, 1), 0);
	ck_assert_uint_eq(pci_msix_sent(e.d), 0);
	ck_assert_uint_eq(mmio_read32(&e, bar + 0x5000), 2);
	/* Program and unmask: the pending message goes out, the bit clears. */
	mmio_write32(&e, bar + 0x4000 + 16, 0xfee00000);
	mmio_write32(&e, bar + 0x4000 + 16 + 4, 0);
	mmio_write32(&e, bar + 0x4000 + 16 + 8, 0x4041);
	ck_assert_uint_eq(mmio_read32(&e, bar + 0x4000 + 16 + 8), 0x4041);
	mmio_write32(&e, bar + 0x4000 + 16 + 12, 0);
	ck_assert_uint_eq(pci_msix_sent(e.d), 1);
	ck_assert_uint_eq(mmio_read32(&e, bar + 0x5000), 0);
	ck_assert_int_eq(pci_msix_notify(e.d, 1), 0);
	ck_assert_uint_eq(pci_msix_sent(e.d), 2);
	/* Function mask holds messages too; clearing it releases them. */
	cf8_write(&e, slot, cap + 2, 2, 0xc000);
	ck_assert_int_eq(pci_msix_notify(e.d, 1), 0);
	ck_assert_uint_eq(pci_msix_sent(e.d), 2);
	ck_assert_uint_eq(mmio_read32(&e, bar + 0x5000), 2);
	cf8_write(&e, slot, cap + 2, 2, 0x8000);
	ck_assert_uint_eq(pci_msix_sent(e.d), 3);
	/* The table is not the device's: its handler never saw these. */
	ck_assert_uint_eq(e.f.calls, 0);
	env_fini(&e);
}
END_TEST

START_TEST(host_reset)
{
	struct env e;
	unsigned int slot, cap;

	env_init(&e, true);
	slot = pci_dev_slot(e.d);
	for (cap = cf8_read(&e, 0, slot, 0x34, 1); cf8_read(&e, 0, slot, cap, 1) != 0x11;)
		cap = cf8_read(&e, 0, slot, cap + 1, 1);
	cf8_write(&e, slot, 0x10, 4, 0xc0100000);
	cf8_write(&e, slot, cap + 2, 2, 0x8000);
	mmio_write32(&e, 0xc0100000 + 0x4000 + 12, 0);        /* unmask entry 0 */
	e.f.bars_changed = 0;
	pci_host_reset(e.h);
	ck_assert_uint_eq(e.f.bars_changed, 1);
	ck_assert_uint_eq(pci_dev_bar_addr(e.d, 0), PCI_MMIO32_BASE);
	ck_assert_uint_eq(cf8_read(&e, 0, slot, cap + 2, 2), 2);  /* MSI-X off */
	ck_assert_uint_eq(mmio_read32(&e, PCI_MMIO32_BASE + 0x4000 + 12), 1); /* masked */
	ck_assert_int_eq(pci_msix_notify(e.d, 0), -EAGAIN);
	env_fini(&e);
}
END_TEST

START_TEST(slots_run_out)
{
	static const struct pci_dev_info info = { .vendor = 0x1af4, .device = 0x1044 };
	struct env e;
	struct pci_dev *d[PCI_MAX_SLOTS];
	unsigned int i, n = 0;

	env_init(&e, false);
	for (i = 0; i < PCI_MAX_SLOTS; i++) {
		if (pci_dev_add(e.h, &info, &fake_ops, &e.f, &d[n]) == 0)
			n++;
	}
	ck_assert_uint_eq(n, PCI_MAX_SLOTS - 1);                   /* slot 0 is the bridge */
	for (i = 0; i < n; i++)
		pci_dev_remove(d[i]);
	env_fini(&e);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("pci");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, host_bridge_and_empty_slots);
	tcase_add_test(tc, cf8_latch_needs_enable_and_dword);
	tcase_add_test(tc, device_header_and_caps);
	tcase_add_test(tc, bar_sizing_and_dispatch);
	tcase_add_test(tc, msix_mask_and_pba);
	tcase_add_test(tc, host_reset);
	tcase_add_test(tc, slots_run_out);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

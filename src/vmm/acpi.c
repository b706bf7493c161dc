/*
 * ACPI tables (ACPI 6.x) for a hardware-reduced PC: no PM1/GPE blocks, no
 * SCI; power-off through the FADT sleep control register, reset through the
 * FADT reset register, the power button through a Generic Event Device in the
 * DSDT. The DSDT's AML comes from iasl (src/vmm/acpi/dsdt.asl); the tables
 * that depend on the VM (vCPU count, RAM size) are written here.
 *
 * Everything is built in a host buffer and copied into the reserved BIOS
 * area with one checked mem_write().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "boot.h"
#include "platform.h"

extern const uint8_t skiff_dsdt_aml[];
extern const size_t skiff_dsdt_aml_len;

#define OEM_ID       "SKIFF "
#define OEM_TABLE_ID "SKIFFVM "
#define CREATOR_ID   "SKFF"
#define HDR_LEN      36
#define FADT_LEN     276
#define TABLE_ALIGN  16
#define MMIO64_PLACEHOLDER 0x5A5A5A5A00000000ULL

#define FADT_F_PWR_BUTTON    (1u << 4)
#define FADT_F_SLP_BUTTON    (1u << 5)
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED    (1u << 20)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_NO_CMOS_RTC     (1u << 5)
#define GAS_SYSTEM_MEMORY    0
#define GAS_SYSTEM_IO        1
#define GAS_ACCESS_BYTE      1

#define MADT_LAPIC           0
#define MADT_IOAPIC          1
#define MADT_ISO             2
#define MADT_LAPIC_NMI       4
#define MADT_PCAT_COMPAT     1u
#define MPS_ACTIVE_HIGH      0x1
#define MPS_LEVEL            0xc

struct tables {
	uint8_t *buf;
	size_t len, cap;
};

static void put8(uint8_t *p, uint8_t v) { p[0] = v; }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum = (uint8_t)(sum + *p++);
	return (uint8_t)-sum;
}

/* Reserves n bytes (16-aligned start); returns the offset, or -1 when full. */
static long alloc(struct tables *t, size_t n)
{
	size_t at = ALIGN_UP(t->len, (size_t)TABLE_ALIGN);

	if (at + n > t->cap)
		return -1;
	t->len = at + n;
	return (long)at;
}

static void header(uint8_t *p, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(p, sig, 4);
	put32(p + 4, len);
	put8(p + 8, rev);
	memcpy(p + 10, OEM_ID, 6);
	memcpy(p + 16, OEM_TABLE_ID, 8);
	put32(p + 24, 1);
	memcpy(p + 28, CREATOR_ID, 4);
	put32(p + 32, 1);
}

static void finish(uint8_t *p, uint32_t len)
{
	p[9] = 0;
	p[9] = checksum(p, len);
}

static void gas_mmio8(uint8_t *p, uint64_t addr)
{
	put8(p, GAS_SYSTEM_MEMORY);
	put8(p + 1, 8);
	put8(p + 2, 0);
	put8(p + 3, GAS_ACCESS_BYTE);
	put64(p + 4, addr);
}

static void gas_io8(uint8_t *p, uint16_t port)
{
	put8(p, GAS_SYSTEM_IO);
	put8(p + 1, 8);
	put8(p + 2, 0);
	put8(p + 3, GAS_ACCESS_BYTE);
	put64(p + 4, port);
}

/* The DSDT, with its 64-bit PCI window set for this RAM size. */
static long build_dsdt(struct tables *t, const struct guest_mem *m)
{
	long at = alloc(t, skiff_dsdt_aml_len);
	uint8_t *p, ph[8];
	size_t i;

	if (at < 0)
		return -1;
	p = t->buf + at;
	memcpy(p, skiff_dsdt_aml, skiff_dsdt_aml_len);
	put64(ph, MMIO64_PLACEHOLDER);
	for (i = 14; i + 8 * 4 <= skiff_dsdt_aml_len; i++) {
		/* QWord address space descriptor (ACPI 6.4.3.5.1): tag 0x8a,
		 * then min at +14, max at +22, translation +30, length +38. */
		if (memcmp(p + i, ph, 8) || p[i - 14] != 0x8a)
			continue;
		put64(p + i, pci_mmio64_base(m));
		put64(p + i + 8, pci_mmio64_base(m) + PCI_MMIO64_SIZE - 1);
		put64(p + i + 24, PCI_MMIO64_SIZE);
		break;
	}
	finish(p, (uint32_t)skiff_dsdt_aml_len);
	return at;
}

static long build_fadt(struct tables *t, uint64_t dsdt)
{
	long at = alloc(t, FADT_LEN);
	uint8_t *p;

	if (at < 0)
		return -1;
	p = t->buf + at;
	header(p, "FACP", FADT_LEN, 6);
	put32(p + 40, (uint32_t)dsdt);
	put16(p + 46, GSI_ACPI_GED);
	/* No 8042 flag: Linux then skips probing for a keyboard and mouse
	 * (seconds of timeouts); the i8042 stays there for its reset line. */
	put16(p + 109, IAPC_VGA_NOT_PRESENT | IAPC_NO_CMOS_RTC);
	put32(p + 112, FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP |
		       FADT_F_HW_REDUCED);
	gas_io8(p + 116, ACPI_RESET_PORT);
	put8(p + 128, ACPI_RESET_VALUE);
	put8(p + 131, 5); /* FADT minor version: ACPI 6.5 */
	put64(p + 140, dsdt);
	gas_mmio8(p + 244, PLATFORM_MMIO_BASE + ACPI_GED_SLEEP_CTL);
	gas_mmio8(p + 256, PLATFORM_MMIO_BASE + ACPI_GED_SLEEP_STS);
	memcpy(p + 268, "SKIFFVMM", 8);
	finish(p, FADT_LEN);
	return at;
}

static void madt_iso(uint8_t *e, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	put8(e, MADT_ISO);
	put8(e + 1, 10);
	put8(e + 2, 0);   /* ISA bus */
	put8(e + 3, irq);
	put32(e + 4, gsi);
	put16(e + 8, flags);
}

/* One local APIC per vCPU (APIC ID = vCPU index), the in-kernel IOAPIC
 * (GSI 0-23), ISA IRQ0 on GSI 2 as on every PC, the event device's level,
 * active-high GSI, and LINT1 as NMI on every CPU. */
static long build_madt(struct tables *t, unsigned int nr_cpus)
{
	uint32_t len = 44 + nr_cpus * 8 + 12 + 2 * 10 + 6;
	long at = alloc(t, len);
	uint8_t *p, *e;
	unsigned int i;

	if (at < 0)
		return -1;
	p = t->buf + at;
	header(p, "APIC", len, 4);
	put32(p + 36, (uint32_t)LAPIC_BASE);
	put32(p + 40, MADT_PCAT_COMPAT);
	e = p + 44;
	for (i = 0; i < nr_cpus; i++, e += 8) {
		put8(e, MADT_LAPIC);
		put8(e + 1, 8);
		put8(e + 2, (uint8_t)i);  /* ACPI processor UID */
		put8(e + 3, (uint8_t)i);  /* APIC ID */
		put32(e + 4, 1);          /* enabled */
	}
	put8(e, MADT_IOAPIC);
	put8(e + 1, 12);
	put8(e + 2, 0);
	put32(e + 4, (uint32_t)IOAPIC_BASE);
	put32(e + 8, 0);
	e += 12;
	madt_iso(e, 0, 2, 0);
	e += 10;
	madt_iso(e, GSI_ACPI_GED, GSI_ACPI_GED, MPS_ACTIVE_HIGH | MPS_LEVEL);
	e += 10;
	put8(e, MADT_LAPIC_NMI);
	put8(e + 1, 6);
	put8(e + 2, 0xff);                /* all processors */
	put16(e + 3, 0);
	put8(e + 5, 1);                   /* LINT1 */
	finish(p, len);
	return at;
}

static long build_mcfg(struct tables *t)
{
	uint32_t len = 44 + 16;
	long at = alloc(t, len);
	uint8_t *p;

	if (at < 0)
		return -1;
	p = t->buf + at;
	header(p, "MCFG", len, 1);
	put64(p + 44, PCI_ECAM_BASE);
	put16(p + 52, 0);                 /* segment */
	put8(p + 54, 0);                  /* first bus */
	put8(p + 55, PCI_ECAM_BUSES - 1); /* last bus */
	finish(p, len);
	return at;
}

static long build_xsdt(struct tables *t, const uint64_t *entries, unsigned int n)
{
	uint32_t len = HDR_LEN + n * 8;
	long at = alloc(t, len);
	unsigned int i;
	uint8_t *p;

	if (at < 0)
		return -1;
	p = t->buf + at;
	header(p, "XSDT", len, 1);
	for (i = 0; i < n; i++)
		put64(p + HDR_LEN + i * 8, entries[i]);
	finish(p, len);
	return at;
}

int acpi_build(struct guest_mem *m, unsigned int nr_cpus, uint64_t *rsdp)
{
	/* Up to the reset vector stub in the last 16 bytes of the area. */
	static const size_t cap = BOOT_RESET_VECTOR_GPA - BOOT_ACPI_GPA;
	struct tables t = { .cap = cap };
	long rsdp_at, dsdt, fadt, madt, mcfg, xsdt;
	uint64_t entries[3];
	uint8_t *p;
	int ret = -ENOSPC;

	t.buf = calloc(1, cap);
	if (!t.buf)
		return -ENOMEM;
	/* The RSDP first: 16-byte aligned in 0xE0000-0xFFFFF, where Linux's
	 * legacy scan also finds it. */
	rsdp_at = alloc(&t, 36);
	dsdt = build_dsdt(&t, m);
	fadt = dsdt < 0 ? -1 : build_fadt(&t, BOOT_ACPI_GPA + (uint64_t)dsdt);
	madt = build_madt(&t, nr_cpus);
	mcfg = build_mcfg(&t);
	if (rsdp_at < 0 || fadt < 0 || madt < 0 || mcfg < 0)
		goto out;
	entries[0] = BOOT_ACPI_GPA + (uint64_t)fadt;
	entries[1] = BOOT_ACPI_GPA + (uint64_t)madt;
	entries[2] = BOOT_ACPI_GPA + (uint64_t)mcfg;
	xsdt = build_xsdt(&t, entries, 3);
	if (xsdt < 0)
		goto out;

	p = t.buf + rsdp_at;
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, OEM_ID, 6);
	put8(p + 15, 2);                  /* ACPI 2.0+: XSDT */
	put32(p + 20, 36);
	put64(p + 24, BOOT_ACPI_GPA + (uint64_t)xsdt);
	p[8] = checksum(p, 20);
	p[32] = checksum(p, 36);
	if (mem_write(m, BOOT_ACPI_GPA, t.buf, t.len))
		goto out;
	*rsdp = BOOT_ACPI_GPA + (uint64_t)rsdp_at;
	ret = 0;
out:
	free(t.buf);
	return ret;
}

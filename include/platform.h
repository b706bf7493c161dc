/*
 * skiff's x86 platform: where things sit in the guest-physical and I/O
 * address spaces. One place, so the builder, the ACPI tables, the PCI host
 * and the boot loaders agree.
 *
 * Guest-physical map (see also mem.h for RAM):
 *   [0, min(RAM, 3 GiB))          RAM
 *   0xC0000000 - 0xDFFFFFFF       PCI 32-bit MMIO window (512 MiB): BARs
 *   0xE0000000 - 0xEFFFFFFF       PCI ECAM (MCFG): 256 buses x 1 MiB; skiff uses bus 0
 *   0xFEC00000                    IOAPIC (in-kernel)
 *   0xFED00000 - 0xFED00FFF       platform MMIO: ACPI GED / power button etc.
 *   0xFEE00000                    LAPIC (in-kernel)
 *   0xFEFFC000 - 0xFEFFDFFF       KVM identity map and TSS pages (see vm.c)
 *   [4 GiB, 4 GiB + RAM - 3 GiB)  RAM above the hole
 *   PCI_MMIO64_BASE(...)          PCI 64-bit MMIO window: 64 GiB from the first
 *                                 1 GiB boundary after the end of RAM (min 64 GiB)
 */
#ifndef SKIFF_PLATFORM_H
#define SKIFF_PLATFORM_H

#include "mem.h"
#include "util.h"

#define PCI_MMIO32_BASE 0xC0000000ULL
#define PCI_MMIO32_SIZE 0x20000000ULL
#define PCI_ECAM_BASE 0xE0000000ULL
#define PCI_ECAM_SIZE 0x10000000ULL
#define PCI_ECAM_BUSES 256
#define IOAPIC_BASE 0xFEC00000ULL
#define PLATFORM_MMIO_BASE 0xFED00000ULL
#define PLATFORM_MMIO_SIZE 0x1000ULL
#define LAPIC_BASE 0xFEE00000ULL

#define PCI_MMIO64_SIZE (64 * GiB)
static inline uint64_t pci_mmio64_base(const struct guest_mem *m)
{
	uint64_t ram_end = m->nr_regions > 1 ?
		m->regions[1].gpa + m->regions[1].size : MEM_4G;

	return MAX(ALIGN_UP(ram_end, GiB), 64 * GiB);
}

/* Legacy I/O ports. */
#define PORT_PCI_CONFIG_ADDR 0xCF8  /* 0xCF8-0xCFB, data at 0xCFC-0xCFF */
#define PORT_COM1 0x3F8

/* Legacy IRQs (GSIs on the IOAPIC). */
#define GSI_COM1 4
#define GSI_ACPI_GED 9     /* ACPI event device (power button) */
#define GSI_FIRST_MSI 24   /* first GSI used for MSI routes */

#endif

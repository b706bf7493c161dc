/*
 * ACPI tables for a hardware-reduced x86 PC: RSDP, XSDT, FADT (reset and
 * sleep control/status registers in the platform MMIO page), MADT, MCFG and
 * the DSDT compiled by iasl from src/vmm/acpi/dsdt.asl.
 */
#ifndef SKIFF_ACPI_H
#define SKIFF_ACPI_H

#include <stdint.h>

#include "acpi_ged.h"
#include "mem.h"
#include "util.h"

/* Writes the tables at BOOT_ACPI_GPA for nr_cpus vCPUs; *rsdp is where the
 * RSDP went. Returns 0 or -ENOSPC (RAM too small). */
int MUST_CHECK acpi_build(struct guest_mem *m, unsigned int nr_cpus, uint64_t *rsdp);

#endif

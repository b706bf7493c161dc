/*
 * The ACPI event device: hardware-reduced ACPI's sleep control/status and
 * reset registers (pointed at by the FADT), and the event bits behind the
 * DSDT's Generic Event Device (GED0, power button) with its interrupt line.
 * One MMIO window at PLATFORM_MMIO_BASE; register layout in acpi.h.
 */
#ifndef SKIFF_ACPI_GED_H
#define SKIFF_ACPI_GED_H

#include "bus.h"
#include "irq.h"
#include "runstate.h"
#include "util.h"

/* The event device's registers at PLATFORM_MMIO_BASE + offset;
 * the FADT (src/vmm/acpi.c) and DSDT (src/vmm/acpi/dsdt.asl) point at them. */
#define ACPI_GED_EVENT      0x0  /* 32-bit: pending events, cleared on read */
#define ACPI_GED_SLEEP_CTL  0x4  /* 8-bit: FADT SLEEP_CONTROL_REG */
#define ACPI_GED_SLEEP_STS  0x5  /* 8-bit: FADT SLEEP_STATUS_REG */
/* The FADT reset register is an I/O port: Linux writes it from its reboot
 * path with interrupts off, where mapping an MMIO register can hang. */
#define ACPI_RESET_PORT     0x600 /* 8-bit: FADT RESET_REG (outside the PCI I/O window) */
#define ACPI_GED_SIZE       0x8
#define ACPI_GED_EV_POWER_BUTTON 0x1
#define ACPI_RESET_VALUE    0x42
#define ACPI_SLP_EN         0x20
#define ACPI_SLP_TYP_SHIFT  2
#define ACPI_SLP_TYP_S5     5    /* \_S5 in the DSDT */

struct acpi_ged;

/* S5 through the sleep control register ends the VM with status 0; the
 * reset register requests SKIFF_EXIT_RESET. */
int MUST_CHECK acpi_ged_create(struct bus *mmio, struct bus *pio, struct irq_line irq,
			       struct runstate *rs, struct acpi_ged **out);
void acpi_ged_destroy(struct acpi_ged *g);
/* The PC reset control register (port 0xCF9): Linux's reboot on
 * hardware-reduced ACPI without EFI writes it (reboot type EFI → CF9)
 * before it falls back to a triple fault. Bit 2 (RST_CPU) resets. When no
 * PCI host owns 0xCF8-0xCFB, acpi_ged_claim_cf9() registers the port;
 * otherwise the PCI host forwards its byte writes to acpi_ged_cf9_write(). */
#define ACPI_PORT_CF9 0xCF9
int MUST_CHECK acpi_ged_claim_cf9(struct acpi_ged *g);
void acpi_ged_cf9_write(void *opaque, uint8_t v);
/* Any thread: presses the power button (raises the GED interrupt). */
int MUST_CHECK acpi_ged_power_button(struct acpi_ged *g);

/* Migration (vCPUs parked): the pending event bits (a power-button press
 * not yet read by the guest) as ACPI_GED_STATE_SIZE bytes: u8 version,
 * 3 reserved, u32 events (little-endian). Load refuses unknown bits and
 * raises the interrupt line when a loaded bit is set; like the serial
 * port's, it is for a VM that has not run, whose line is low already. */
#define ACPI_GED_STATE_SIZE 8
void acpi_ged_state_save(struct acpi_ged *g, uint8_t *buf);
int MUST_CHECK acpi_ged_state_load(struct acpi_ged *g, const uint8_t *buf, size_t len);

#endif

/*
 * Interrupt lines into the in-kernel irqchip (PIC + IOAPIC). A device holds a
 * struct irq_line handed to it by the builder and never sees the VM fd's owner.
 * KVM_IRQ_LINE is safe from any thread.
 */
#ifndef SKIFF_IRQ_H
#define SKIFF_IRQ_H

#include <stdint.h>

#include "util.h"

struct irq_line {
	int vm_fd;    /* -1: not wired (unit tests); set_level is then a no-op */
	uint32_t gsi;
};

/* Drives the line to `level` (0 or 1). Returns 0 or -errno. */
int irq_line_set(const struct irq_line *line, int level);

#endif

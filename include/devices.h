/*
 * Legacy platform devices on the PIO bus. Each device is created by the
 * builder with what it needs (bus, irq line, run state) and attaches itself
 * to the bus; _destroy detaches and frees.
 */
#ifndef SKIFF_DEVICES_H
#define SKIFF_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "irq.h"
#include "runstate.h"
#include "util.h"

/* --- 16550A UART ------------------------------------------------------- */
#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ 4

struct serial;

/* out_fd: where guest output goes (-1: discarded). Not owned. */
int MUST_CHECK serial_create(struct bus *pio, uint16_t base, struct irq_line irq,
			     int out_fd, struct serial **out);
void serial_destroy(struct serial *s);
/* Host input (main thread): queues bytes for the guest; returns how many fit. */
size_t serial_input(struct serial *s, const uint8_t *buf, size_t len);
/* How many more input bytes the receive FIFO can take now. */
size_t serial_input_room(struct serial *s);
/* Guest reset (main thread, vCPUs stopped): registers back to their
 * power-on values, receive FIFO emptied, interrupt line lowered. Output
 * still pending for the console is kept. */
void serial_reset(struct serial *s);
/* Counters (any thread): bytes written to the console, guest output
 * dropped because the console stalled (64 KiB are buffered first) or went
 * away, bytes queued for the guest (host input and loopback), bytes
 * dropped on a full receive queue. */
struct serial_stats {
	uint64_t tx_bytes, tx_dropped, rx_bytes, rx_dropped;
};
void serial_get_stats(struct serial *s, struct serial_stats *out);
/* Migration (vCPUs parked): registers, the armed THR-empty interrupt and the
 * receive FIFO as bytes (layout in serial.c; at most SERIAL_STATE_MAX).
 * Output still waiting for the console stays with this process. Load
 * checks every field and raises the IRQ line when the loaded state has an
 * interrupt pending; it is for a VM that has not run (a migration's
 * destination), whose line is low already, so a low line costs no ioctl. */
#define SERIAL_STATE_MAX (16 + 4096)
size_t serial_state_save(struct serial *s, uint8_t *buf);
int MUST_CHECK serial_state_load(struct serial *s, const uint8_t *buf, size_t len);

/* --- isa-debug-exit ---------------------------------------------------- */
/* A write of value v ends the VMM with exit status (v << 1) | 1, as QEMU's
 * isa-debug-exit does. `size` is the window width (1, 2 or 4). */
struct debug_exit;
int MUST_CHECK debug_exit_create(struct bus *pio, uint16_t port, uint32_t size,
				 struct runstate *rs, struct debug_exit **out);
void debug_exit_destroy(struct debug_exit *d);

/* --- i8042 (keyboard controller) ---------------------------------------- */
/* Only what guests use to find it and to reset the machine: the reset
 * command (0xfe on port 0x64, or pulsing output-port bit 0) requests
 * SKIFF_EXIT_RESET (vm_run reboots the guest, or ends). */
struct i8042;
int MUST_CHECK i8042_create(struct bus *pio, struct runstate *rs, struct i8042 **out);
void i8042_destroy(struct i8042 *k);

#endif

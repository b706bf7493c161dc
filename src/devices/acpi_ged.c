/*
 * ACPI event device (hardware-reduced ACPI, ACPI 6.5 4.8.3.7 sleep
 * control/status registers, 4.8.3.6 reset register, 5.6.9 GED).
 *
 * Thread context: register handlers run on vCPU threads; the power button is
 * pressed from the main thread. `lock` (a leaf lock) guards `events` and the
 * interrupt level, so a press and the _EVT read that clears it never lose an
 * edge: the line is raised while an event is pending and lowered by the read
 * that returns it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_ged.h"
#include "log.h"
#include "platform.h"

struct acpi_ged {
	pthread_mutex_t lock;
	uint32_t events;
	struct bus *mmio;
	struct bus *pio;
	bool cf9_claimed;
	struct irq_line irq;
	struct runstate *rs;
};

static void ged_mmio(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_ged *g = opaque;
	uint8_t v = data[0];

	pthread_mutex_lock(&g->lock);
	if (!is_write) {
		memset(data, 0, len);
		if (off == ACPI_GED_EVENT && len == 4) {
			memcpy(data, &g->events, 4); /* little-endian host */
			g->events = 0;
			(void)irq_line_set(&g->irq, 0);
		}
		/* Sleep status: WAK_STS never set (nothing wakes from S5). */
		goto out;
	}
	if (off == ACPI_GED_SLEEP_CTL && len == 1 && (v & ACPI_SLP_EN)) {
		unsigned int typ = (v >> ACPI_SLP_TYP_SHIFT) & 7;

		if (typ == ACPI_SLP_TYP_S5)
			runstate_request_exit(g->rs, SKIFF_EXIT_OK, "guest powered off (ACPI S5)");
		else
			log_warn("guest asked for ACPI sleep type %u: not supported, ignored", typ);
	}
out:
	pthread_mutex_unlock(&g->lock);
}

static void reset_pio(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_ged *g = opaque;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (len == 1 && data[0] == ACPI_RESET_VALUE)
		runstate_request_exit(g->rs, SKIFF_EXIT_RESET, "guest reset (ACPI reset register)");
}

void acpi_ged_cf9_write(void *opaque, uint8_t v)
{
	struct acpi_ged *g = opaque;

	if (v & 0x04) /* RST_CPU; bit 1 (hard/soft) makes no difference here */
		runstate_request_exit(g->rs, SKIFF_EXIT_RESET, "guest reset (port 0xCF9)");
}

static void cf9_pio(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		memset(data, 0, len);
	else if (len == 1)
		acpi_ged_cf9_write(opaque, data[0]);
}

int acpi_ged_claim_cf9(struct acpi_ged *g)
{
	int ret = bus_register(g->pio, ACPI_PORT_CF9, 1, cf9_pio, g, "reset-cf9");

	g->cf9_claimed = ret == 0;
	return ret;
}

int acpi_ged_power_button(struct acpi_ged *g)
{
	int ret;

	pthread_mutex_lock(&g->lock);
	g->events |= ACPI_GED_EV_POWER_BUTTON;
	ret = irq_line_set(&g->irq, 1);
	pthread_mutex_unlock(&g->lock);
	return ret;
}

#define GED_STATE_VERSION 1

void acpi_ged_state_save(struct acpi_ged *g, uint8_t *buf)
{
	memset(buf, 0, ACPI_GED_STATE_SIZE);
	buf[0] = GED_STATE_VERSION;
	pthread_mutex_lock(&g->lock);
	memcpy(buf + 4, &g->events, 4); /* little-endian host */
	pthread_mutex_unlock(&g->lock);
}

int acpi_ged_state_load(struct acpi_ged *g, const uint8_t *buf, size_t len)
{
	uint32_t ev;

	if (len != ACPI_GED_STATE_SIZE || buf[0] != GED_STATE_VERSION)
		return -EINVAL;
	memcpy(&ev, buf + 4, 4);
	if (ev & ~(uint32_t)ACPI_GED_EV_POWER_BUTTON)
		return -EINVAL;
	pthread_mutex_lock(&g->lock);
	g->events = ev;
	/* The line's level is not in the interrupt controllers' state; the
	 * destination's is low (its guest never ran): raise it if needed. */
	if (ev && irq_line_set(&g->irq, 1))
		log_warn("acpi-ged: cannot drive its interrupt line");
	pthread_mutex_unlock(&g->lock);
	return 0;
}

int acpi_ged_create(struct bus *mmio, struct bus *pio, struct irq_line irq,
		    struct runstate *rs, struct acpi_ged **out)
{
	struct acpi_ged *g = calloc(1, sizeof(*g));
	int ret;

	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	g->mmio = mmio;
	g->pio = pio;
	g->irq = irq;
	g->rs = rs;
	ret = bus_register(mmio, PLATFORM_MMIO_BASE, ACPI_GED_SIZE, ged_mmio, g, "acpi-ged");
	if (!ret) {
		ret = bus_register(pio, ACPI_RESET_PORT, 1, reset_pio, g, "acpi-reset");
		if (ret)
			bus_unregister(mmio, PLATFORM_MMIO_BASE);
	}
	if (ret) {
		pthread_mutex_destroy(&g->lock);
		free(g);
		return ret;
	}
	*out = g;
	return 0;
}

void acpi_ged_destroy(struct acpi_ged *g)
{
	if (!g)
		return;
	if (g->cf9_claimed)
		bus_unregister(g->pio, ACPI_PORT_CF9);
	bus_unregister(g->pio, ACPI_RESET_PORT);
	bus_unregister(g->mmio, PLATFORM_MMIO_BASE);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

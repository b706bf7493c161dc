/*
 * A minimal i8042 keyboard controller: enough for a guest to find it and to
 * reset the machine through it (command 0xfe, or clearing output-port bit 0
 * with command 0xd1). There is no keyboard or mouse behind it.
 * Thread context: vCPU threads, state under `lock` (a leaf lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "devices.h"

#define PORT_DATA 0x60
#define PORT_CMD 0x64
#define STATUS_OBF 0x01  /* output buffer full: data waiting at 0x60 */
#define STATUS_SYS 0x04  /* system flag: self-test passed */
#define STATUS_CMD 0x08  /* last write was a command */

struct i8042 {
	pthread_mutex_t lock;
	uint8_t status, cmd_byte, out, pending_cmd;
	bool has_out;
	struct bus *pio;
	struct runstate *rs;
};

static void set_out(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->has_out = true;
}

static void command(struct i8042 *k, uint8_t c)
{
	switch (c) {
	case 0x20: set_out(k, k->cmd_byte); break;  /* read command byte */
	case 0x60: case 0xd1: k->pending_cmd = c; break; /* next data byte is an argument */
	case 0xaa: set_out(k, 0x55); break;         /* controller self-test: passed */
	case 0xab: set_out(k, 0x00); break;         /* keyboard interface test: ok */
	case 0xa9: set_out(k, 0xff); break;         /* aux interface test: no aux port */
	case 0xfe:                                  /* pulse reset line */
		runstate_request_exit(k->rs, SKIFF_EXIT_RESET, "guest reset via i8042");
		break;
	default: break; /* enable/disable ports and the rest: accepted, ignored */
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	switch (k->pending_cmd) {
	case 0x60:
		k->cmd_byte = v;
		break;
	case 0xd1:
		if (!(v & 0x01)) /* output port bit 0 low = CPU reset */
			runstate_request_exit(k->rs, SKIFF_EXIT_RESET, "guest reset via i8042");
		break;
	default:
		break; /* a byte for the (absent) keyboard */
	}
	k->pending_cmd = 0;
}

static void i8042_io(struct i8042 *k, uint16_t port, uint8_t *data, uint32_t len, bool is_write)
{
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		if (port == PORT_CMD)
			command(k, data[0]);
		else
			data_write(k, data[0]);
	} else {
		memset(data, 0, len);
		if (port == PORT_CMD) {
			data[0] = k->status | (k->has_out ? STATUS_OBF : 0);
		} else {
			data[0] = k->out;
			k->has_out = false;
		}
	}
	pthread_mutex_unlock(&k->lock);
}

static void data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	i8042_io(opaque, PORT_DATA, data, len, is_write);
}

static void cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	i8042_io(opaque, PORT_CMD, data, len, is_write);
}

int i8042_create(struct bus *pio, struct runstate *rs, struct i8042 **out)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	int ret;

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	k->pio = pio;
	k->rs = rs;
	k->status = STATUS_SYS;
	k->cmd_byte = 0x45; /* translate, system flag, keyboard interrupt */
	/* Two one-byte windows: 0x60 and 0x64 (0x61 belongs to the PIT speaker). */
	ret = bus_register(pio, PORT_DATA, 1, data_io, k, "i8042-data");
	if (ret)
		goto err_free;
	ret = bus_register(pio, PORT_CMD, 1, cmd_io, k, "i8042-cmd");
	if (ret)
		goto err_data;
	*out = k;
	return 0;

err_data:
	bus_unregister(pio, PORT_DATA);
err_free:
	pthread_mutex_destroy(&k->lock);
	free(k);
	return ret;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	bus_unregister(k->pio, PORT_CMD);
	bus_unregister(k->pio, PORT_DATA);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/*
 * Device state for migration: one flattened device tree (libfdt), a node
 * per device with its state as a byte property, so the section describes
 * itself and can grow devices without a new stream version.
 *
 *   / { version = <1>;
 *       serial0 { state = [...]; };           serial_state_save
 *       ged0 { state = [...]; };              acpi_ged_state_save
 *       virtio-blk0 { state = [...]; };       virtio_dev_state_save
 *       virtio-rng0 { state = [...]; };
 *       virtio-net0 { state = [...]; }; }    one per --net, in order
 *
 * The destination requires exactly its own set of devices: a missing node
 * or an unknown one is refused by name. Each device checks its own bytes.
 * Not carried: the i8042 (stateless here apart from its output port).
 *
 * Thread context: migration thread; vCPUs parked, virtio devices paused.
 */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate_priv.h"

#define DEV_STATE_VERSION 1
#define MAX_DEVICES (3 + CONFIG_MAX_DISKS + CONFIG_MAX_NETS)

struct dev_entry {
	char name[32];
	enum { DEV_SERIAL, DEV_GED, DEV_VIRTIO } kind;
	struct virtio_dev *vd;     /* DEV_VIRTIO */
};

static unsigned int devices(struct vm *vm, struct dev_entry *e)
{
	unsigned int n = 0;

	snprintf(e[n].name, sizeof(e[n].name), "serial0");
	e[n].kind = DEV_SERIAL;
	e[n++].vd = NULL;
	if (vm->ged) {
		snprintf(e[n].name, sizeof(e[n].name), "ged0");
		e[n].kind = DEV_GED;
		e[n++].vd = NULL;
	}
	for (unsigned int i = 0; i < vm->nr_disks; i++) {
		snprintf(e[n].name, sizeof(e[n].name), "virtio-blk%u", i);
		e[n].kind = DEV_VIRTIO;
		e[n++].vd = vm->disks[i];
	}
	if (vm->rng) {
		snprintf(e[n].name, sizeof(e[n].name), "virtio-rng0");
		e[n].kind = DEV_VIRTIO;
		e[n++].vd = vm->rng;
	}
	for (unsigned int i = 0; i < vm->nr_nets; i++) {
		snprintf(e[n].name, sizeof(e[n].name), "virtio-net%u", i);
		e[n].kind = DEV_VIRTIO;
		e[n++].vd = vm->nets[i];
	}
	return n;
}

static int build(struct vm *vm, void *fdt, size_t size, uint8_t *tmp)
{
	struct dev_entry e[MAX_DEVICES];
	unsigned int n = devices(vm, e);
	int ret;

	ret = fdt_create(fdt, (int)size);
	ret = ret ?: fdt_finish_reservemap(fdt);
	ret = ret ?: fdt_begin_node(fdt, "");
	ret = ret ?: fdt_property_u32(fdt, "version", DEV_STATE_VERSION);
	for (unsigned int i = 0; !ret && i < n; i++) {
		size_t len;

		if (e[i].kind == DEV_VIRTIO) {
			virtio_dev_state_save(e[i].vd, tmp);
			len = virtio_dev_state_size(e[i].vd);
		} else if (e[i].kind == DEV_GED) {
			acpi_ged_state_save(vm->ged, tmp);
			len = ACPI_GED_STATE_SIZE;
		} else {
			len = serial_state_save(vm->serial, tmp);
		}
		ret = fdt_begin_node(fdt, e[i].name);
		ret = ret ?: fdt_property(fdt, "state", tmp, (int)len);
		ret = ret ?: fdt_end_node(fdt);
	}
	ret = ret ?: fdt_end_node(fdt);
	ret = ret ?: fdt_finish(fdt);
	return ret;
}

/* The most bytes a device's state can take. */
static size_t state_max(const struct dev_entry *e)
{
	return e->kind == DEV_VIRTIO ? virtio_dev_state_size(e->vd) :
	       e->kind == DEV_GED ? ACPI_GED_STATE_SIZE : SERIAL_STATE_MAX;
}

/* *largest: the largest state (the scratch buffer); returns room for the
 * tree: header, strings and node names, then each state with its property
 * header. Too small only costs a retry (doubled). */
static size_t tree_size(struct vm *vm, size_t *largest)
{
	struct dev_entry e[MAX_DEVICES];
	unsigned int n = devices(vm, e);
	size_t size = 512;

	*largest = 0;
	for (unsigned int i = 0; i < n; i++) {
		size += 64 + state_max(&e[i]);
		*largest = MAX(*largest, state_max(&e[i]));
	}
	return size;
}

int mig_devices_save(struct vm *vm, struct mig_buf *out)
{
	/* Sized to fit: libfdt zeroes the whole buffer, and this runs in the
	 * downtime (a 64 KiB guess cost ~40 us of zeroing and faults). The
	 * scratch for one device's state follows the tree in out's own space
	 * (reserved before the downtime): a malloc here cost up to 20 us when
	 * it had to grow the thread's heap. */
	size_t largest, size = tree_size(vm, &largest);
	int ret = -ENOMEM;

	for (int tries = 0; tries < 6; tries++, size *= 2) {
		size_t at = out->len;
		uint8_t *fdt = mig_put_space(out, size + largest);

		if (!fdt)
			break;
		ret = build(vm, fdt, size, fdt + size);
		if (ret == 0) {
			out->len = at + fdt_totalsize(fdt);
			break;
		}
		out->len = at;
		if (ret != -FDT_ERR_NOSPACE) {
			ret = -EINVAL;
			break;
		}
		ret = -ENOSPC;
	}
	return ret;
}

int mig_devices_load(struct vm *vm, const void *p, size_t len, char *err, size_t errlen)
{
	struct dev_entry e[MAX_DEVICES];
	unsigned int n = devices(vm, e);
	const fdt32_t *ver;
	int node, plen, ret;

	/* Only the format mig_devices_save writes (version 17, compatible
	 * down to 16) reaches fdt_check_full: libfdt 1.6's checker itself
	 * crashes on some version-14 trees (found by fuzz_migration). */
	if (len < sizeof(struct fdt_header) || fdt_magic(p) != FDT_MAGIC ||
	    fdt_totalsize(p) != len || fdt_version(p) != 17 ||
	    fdt_last_comp_version(p) != 16 || (ret = fdt_check_full(p, len)) != 0) {
		snprintf(err, errlen, "the device state is not a valid flattened tree");
		return -EBADMSG;
	}
	ver = fdt_getprop(p, 0, "version", &plen);
	if (!ver || plen != 4 || fdt32_to_cpu(*ver) != DEV_STATE_VERSION) {
		snprintf(err, errlen, "device state version %u, expected %u",
			 ver && plen == 4 ? fdt32_to_cpu(*ver) : 0, DEV_STATE_VERSION);
		return -EPROTO;
	}
	fdt_for_each_subnode(node, p, 0) {
		const char *name = fdt_get_name(p, node, NULL);
		bool known = false;

		for (unsigned int i = 0; name && i < n; i++)
			known = known || !strcmp(name, e[i].name);
		if (!known) {
			snprintf(err, errlen, "the source has a device '%s' this VM lacks",
				 name ? name : "?");
			return -EINVAL;
		}
	}
	for (unsigned int i = 0; i < n; i++) {
		const uint8_t *state;

		node = fdt_subnode_offset(p, 0, e[i].name);
		state = node >= 0 ? fdt_getprop(p, node, "state", &plen) : NULL;
		if (!state || plen < 0) {
			snprintf(err, errlen, "the source has no state for this VM's %s", e[i].name);
			return -EINVAL;
		}
		if (e[i].kind == DEV_VIRTIO) {
			ret = virtio_dev_state_load(e[i].vd, state, (size_t)plen, err, errlen);
		} else if (e[i].kind == DEV_GED) {
			ret = acpi_ged_state_load(vm->ged, state, (size_t)plen);
			if (ret)
				snprintf(err, errlen, "malformed ACPI event device state");
		} else {
			ret = serial_state_load(vm->serial, state, (size_t)plen);
			if (ret)
				snprintf(err, errlen, "malformed serial port state");
		}
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The builder's device steps (vm.c calls them in its order): the platform
 * devices on the buses, the PCI host with the virtio devices, their I/O
 * threads' start, and the walks over them for reset, pause and teardown.
 *
 * Thread context: main thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi.h"
#include "log.h"
#include "platform.h"
#include "vm.h"
#include "vm_priv.h"

int vm_platform_create(struct vm *vm, char *err, size_t errlen)
{
	const struct config *cfg = vm->cfg;
	struct irq_line com1 = { .vm_fd = vm->vm_fd, .gsi = SERIAL_COM1_IRQ };
	struct irq_line ged = { .vm_fd = vm->vm_fd, .gsi = GSI_ACPI_GED };
	int ret;

	vm->serial_out_fd = -1;
	if (cfg->serial == SERIAL_STDIO) {
		vm->serial_out_fd = STDOUT_FILENO;
	} else if (cfg->serial == SERIAL_FILE) {
		vm->serial_out_fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm->serial_out_fd < 0) {
			snprintf(err, errlen, "--serial file=%s: %s", cfg->serial_path, strerror(errno));
			return -errno;
		}
		vm->serial_out_owned = true;
	}
	ret = serial_create(vm->pio, SERIAL_COM1_BASE, com1, vm->serial_out_fd, &vm->serial);
	if (ret)
		goto fail;
	ret = i8042_create(vm->pio, &vm->rs, &vm->i8042);
	if (ret)
		goto fail;
	ret = acpi_ged_create(vm->mmio, vm->pio, ged, &vm->rs, &vm->ged);
	if (ret)
		goto fail;
	if (cfg->debug_exit_port >= 0) {
		ret = debug_exit_create(vm->pio, (uint16_t)cfg->debug_exit_port, cfg->debug_exit_size,
					&vm->rs, &vm->debug_exit);
		if (ret) {
			snprintf(err, errlen, "--debug-exit 0x%x: the port range is taken by another device",
				 cfg->debug_exit_port);
			return ret;
		}
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot create platform devices: %s", strerror(-ret));
	return ret;
}

static void virtio_stats_provider(void *opaque, struct control_stats *st)
{
	struct virtio_stats v;

	virtio_dev_stats(opaque, &v);
	control_stats_u64(st, "requests", v.requests);
	control_stats_u64(st, "read-bytes", v.read_bytes);
	control_stats_u64(st, "write-bytes", v.write_bytes);
	control_stats_u64(st, "errors", v.errors);
	control_stats_u64(st, "kicks", v.kicks);
	control_stats_u64(st, "interrupts", v.interrupts);
	control_stats_u64(st, "ring-errors", v.ring_errors);
	control_stats_u64(st, "merged", v.merged);
}

static void net_stats_provider(void *opaque, struct control_stats *st)
{
	struct virtio_net_stats n;

	virtio_stats_provider(opaque, st);
	virtio_net_stats(opaque, &n);
	control_stats_u64(st, "rx-packets", n.rx_packets);
	control_stats_u64(st, "rx-bytes", n.rx_bytes);
	control_stats_u64(st, "rx-drops", n.rx_drops);
	control_stats_u64(st, "rx-errors", n.rx_errors);
	control_stats_u64(st, "rx-stalls", n.rx_stalls);
	control_stats_u64(st, "tx-packets", n.tx_packets);
	control_stats_u64(st, "tx-bytes", n.tx_bytes);
	control_stats_u64(st, "tx-drops", n.tx_drops);
	control_stats_u64(st, "tx-errors", n.tx_errors);
	control_stats_u64(st, "tx-stalls", n.tx_stalls);
	control_stats_u64(st, "ctrl-commands", n.ctrl_cmds);
	control_stats_u64(st, "ctrl-errors", n.ctrl_errors);
}

/* query-block: the disk as the command line gave it (the config outlives
 * the device, so this provider needs no unregistering). */
static void disk_block_info(void *opaque, struct control_stats *st)
{
	const struct config_disk *d = opaque;

	control_stats_str(st, "file", d->path);
	control_stats_str(st, "drv", "raw");
	control_stats_bool(st, "ro", d->readonly);
	control_stats_bool(st, "direct", d->direct);
	if (d->serial[0])
		control_stats_str(st, "serial", d->serial);
}

static void virtio_needs_reset(void *opaque, const char *device, const char *reason)
{
	control_device_needs_reset(opaque, device, reason);
}

/* virtio-net devices, after the disks and the rng (their PCI slots follow). */
static int create_nets(struct vm *vm, char *err, size_t errlen)
{
	const struct config *cfg = vm->cfg;
	char name[32];
	unsigned int i;
	int ret;

	for (i = 0; i < cfg->nr_nets; i++) {
		const struct config_net *c = &cfg->nets[i];
		struct virtio_net_config nc = {
			.tap = c->tap[0] ? c->tap : NULL, .tap_fd = c->tap_fd,
			.queues = c->queues, .poll_ns = c->poll_us * 1000ULL,
		};

		memcpy(nc.mac, c->mac, 6);
		ret = virtio_net_create(vm->pci, vm->mem, &nc, &vm->nets[i], err, errlen);
		if (ret)
			return ret;
		vm->nr_nets++;
		snprintf(name, sizeof(name), "virtio-net%u", i);
		virtio_dev_set_event(vm->nets[i], name, virtio_needs_reset, vm->control);
		if (control_stats_register(vm->control, name, net_stats_provider, vm->nets[i]))
			log_warn("%s: no room for its counters in query-stats", name);
	}
	return 0;
}

/* The PCI host and the virtio devices, after the platform devices. Each
 * device starts its I/O thread here; the vCPUs start later. */
int vm_pci_create(struct vm *vm, char *err, size_t errlen)
{
	const struct config *cfg = vm->cfg;
	char name[32];
	unsigned int i;
	int ret;

	if (!cfg->nr_disks && !cfg->rng && !cfg->nr_nets)
		return 0;
	ret = pci_host_create(vm->vm_fd, vm->pio, vm->mmio, vm->mem, &vm->pci);
	if (ret) {
		snprintf(err, errlen, "cannot create the PCI host: %s", strerror(-ret));
		return ret;
	}
	for (i = 0; i < cfg->nr_disks; i++) {
		const struct config_disk *d = &cfg->disks[i];
		struct virtio_blk_config bc = {
			.path = d->path, .readonly = d->readonly, .direct = d->direct,
			.serial = d->serial[0] ? d->serial : NULL, .queues = d->queues,
			.poll_ns = d->poll_us * 1000ULL,
		};

		ret = virtio_blk_create(vm->pci, vm->mem, &bc, &vm->disks[i], err, errlen);
		if (ret)
			return ret;
		vm->nr_disks++;
		snprintf(name, sizeof(name), "virtio-blk%u", i);
		virtio_dev_set_event(vm->disks[i], name, virtio_needs_reset, vm->control);
		if (control_stats_register(vm->control, name, virtio_stats_provider, vm->disks[i]))
			log_warn("%s: no room for its counters in query-stats", name);
		if (control_block_register(vm->control, name, disk_block_info, (void *)d))
			log_warn("%s: no room for it in query-block", name);
	}
	if (cfg->rng) {
		ret = virtio_rng_create(vm->pci, vm->mem, &vm->rng, err, errlen);
		if (ret)
			return ret;
		virtio_dev_set_event(vm->rng, "virtio-rng0", virtio_needs_reset, vm->control);
		if (control_stats_register(vm->control, "virtio-rng0", virtio_stats_provider, vm->rng))
			log_warn("virtio-rng0: no room for its counters in query-stats");
	}
	return create_nets(vm, err, errlen);
}

#define MAX_VIRTIO (CONFIG_MAX_DISKS + CONFIG_MAX_NETS + 1)

/* Every virtio device in PCI order (disks, rng, nets). Main thread. */
static unsigned int all_virtio(struct vm *vm, struct virtio_dev *all[MAX_VIRTIO])
{
	unsigned int i, n = 0;

	for (i = 0; i < vm->nr_disks; i++)
		all[n++] = vm->disks[i];
	if (vm->rng)
		all[n++] = vm->rng;
	for (i = 0; i < vm->nr_nets; i++)
		all[n++] = vm->nets[i];
	return n;
}

void vm_each_virtio(struct vm *vm, void (*fn)(struct virtio_dev *d))
{
	struct virtio_dev *all[MAX_VIRTIO];
	unsigned int i, n = all_virtio(vm, all);

	for (i = 0; i < n; i++)
		fn(all[i]);
}

/* The I/O threads, each under the I/O filter. */
int vm_virtio_start(struct vm *vm, char *err, size_t errlen)
{
	struct virtio_dev *all[MAX_VIRTIO];
	unsigned int i, n = all_virtio(vm, all);
	int ret;

	for (i = 0; i < n; i++) {
		ret = virtio_dev_start(all[i], vm->sandbox);
		if (ret) {
			snprintf(err, errlen, "cannot start the I/O thread of %s: %s",
				 virtio_dev_kind(all[i]), strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void reset_one(struct virtio_dev *d)
{
	(void)virtio_dev_reset(d); /* a timeout was logged; the reboot goes on */
}

/* Guest reboot (vCPU threads joined): virtio devices reset as if their
 * drivers had written status 0, then PCI configuration to power-on. */
void vm_pci_reset(struct vm *vm)
{
	if (!vm->pci)
		return;
	vm_each_virtio(vm, reset_one);
	pci_host_reset(vm->pci);
}

/* Reverse of create_pci; the vCPU threads are gone (each device's I/O
 * thread is stopped after its in-flight requests complete). */
void vm_pci_destroy(struct vm *vm)
{
	unsigned int i;

	for (i = vm->nr_nets; i-- > 0;) {
		control_stats_unregister(vm->control, vm->nets[i]);
		virtio_dev_destroy(vm->nets[i]);
	}
	if (vm->rng) {
		control_stats_unregister(vm->control, vm->rng);
		virtio_dev_destroy(vm->rng);
	}
	for (i = vm->nr_disks; i-- > 0;) {
		control_stats_unregister(vm->control, vm->disks[i]);
		virtio_dev_destroy(vm->disks[i]);
	}
	pci_host_destroy(vm->pci);
}

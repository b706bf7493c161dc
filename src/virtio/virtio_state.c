/*
 * Migration of a virtio-pci device: the transport's registers and every
 * queue's addresses and indices, plus the PCI function (configuration
 * space, MSI-X). The source pauses the device first (virtio_dev_pause: no
 * request in flight, every popped chain is on the used ring), so the
 * indices are consistent; the destination validates the rings as it would
 * for a driver (virtq_setup) and, when resumed, looks at every queue once
 * (ioworker_resume calls on_wake), which serves buffers the guest queued
 * after the source's last look.
 *
 * Layout (v1, little-endian): u32 version, u32 device id, u64 host
 * features, u64 driver features, u32 dfselect, u32 gfselect, u16 config
 * vector, u8 status, u8 config generation, u16 queue select, u16 queues (n),
 * u32 ISR, then n x { u16 size, u16 vector, u8 enabled, u8 signalled_valid,
 * u8 notify_pending, u8 reserved, u64 desc, u64 driver, u64 device,
 * u16 last_avail, u16 used_idx, u16 signalled_used, u16 reserved }, then the
 * PCI function's state (pci_dev_state_save), then, for a device with state
 * hooks (ops->state_save), u32 length and the device's own bytes.
 *
 * Thread context: the migration thread; vCPUs parked, the I/O thread paused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio_priv.h"

#define VIRTIO_STATE_VERSION 1
#define HDR_BYTES 44
#define Q_BYTES 40

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

size_t virtio_dev_state_size(const struct virtio_dev *vd)
{
	return HDR_BYTES + (size_t)vd->nr_queues * Q_BYTES + pci_dev_state_size(vd->pci) +
	       (vd->ops->state_save ? 4 + vd->ops->state_size(vd) : 0);
}

void virtio_dev_state_save(struct virtio_dev *vd, uint8_t *buf)
{
	uint8_t *p = buf;

	pthread_mutex_lock(&vd->lock);
	put32(p, VIRTIO_STATE_VERSION);
	put32(p + 4, vd->ops->device_id);
	put64(p + 8, vd->host_features);
	put64(p + 16, vd->driver_features);
	put32(p + 24, vd->dfselect);
	put32(p + 28, vd->gfselect);
	put16(p + 32, vd->config_vector);
	p[34] = vd->status;
	p[35] = vd->config_gen;
	put16(p + 36, vd->queue_select);
	put16(p + 38, (uint16_t)vd->nr_queues);
	put32(p + 40, atomic_load(&vd->isr));
	p += HDR_BYTES;
	for (unsigned int i = 0; i < vd->nr_queues; i++, p += Q_BYTES) {
		const struct virtio_queue *q = &vd->q[i];

		put16(p, q->size);
		put16(p + 2, q->vector);
		p[4] = q->enabled;
		p[5] = q->vq.signalled_valid;
		p[6] = q->notify_pending;
		p[7] = 0;
		put64(p + 8, q->desc);
		put64(p + 16, q->driver);
		put64(p + 24, q->device);
		put16(p + 32, q->vq.last_avail);
		put16(p + 34, q->vq.used_idx);
		put16(p + 36, q->vq.signalled_used);
		put16(p + 38, 0);
	}
	pthread_mutex_unlock(&vd->lock);
	pci_dev_state_save(vd->pci, p);
	p += pci_dev_state_size(vd->pci);
	if (vd->ops->state_save) {
		put32(p, (uint32_t)vd->ops->state_size(vd));
		vd->ops->state_save(vd, p + 4);
	}
}

int virtio_dev_state_load(struct virtio_dev *vd, const uint8_t *buf, size_t len, char *err,
			  size_t errlen)
{
	size_t qbytes = (size_t)vd->nr_queues * Q_BYTES;
	const uint8_t *p = buf, *own;
	size_t pci_len, tail;
	uint8_t status;
	int ret;

	if (len < HDR_BYTES || get32(p) != VIRTIO_STATE_VERSION ||
	    get32(p + 4) != vd->ops->device_id || get16(p + 38) != vd->nr_queues ||
	    len < HDR_BYTES + qbytes) {
		snprintf(err, errlen, "%s: saved as version %u of device type %u with %u queues; "
			 "this device is type %u with %u", vd->name, len >= 4 ? get32(p) : 0,
			 len >= 8 ? get32(p + 4) : 0, len >= 40 ? get16(p + 38) : 0,
			 vd->ops->device_id, vd->nr_queues);
		return -EINVAL;
	}
	if (get64(p + 8) != vd->host_features) {
		snprintf(err, errlen, "%s: the source offered features 0x%llx, this device 0x%llx",
			 vd->name, (unsigned long long)get64(p + 8),
			 (unsigned long long)vd->host_features);
		return -EINVAL;
	}
	if (get64(p + 16) & ~vd->host_features) {
		snprintf(err, errlen, "%s: negotiated features not offered", vd->name);
		return -EINVAL;
	}
	/* Vectors as a driver's writes leave them (checked_vector): one per
	 * queue plus the configuration's, or NO_VECTOR. */
	for (unsigned int i = 0; i <= vd->nr_queues; i++) {
		uint16_t v = i ? get16(p + HDR_BYTES + (i - 1) * Q_BYTES + 2) : get16(p + 32);

		if (v != PCI_MSIX_NO_VECTOR && v >= vd->nr_queues + 1) {
			snprintf(err, errlen, "%s: MSI-X vector %u out of range", vd->name, v);
			return -EINVAL;
		}
	}
	/* The device's own bytes: a u32 length and exactly that many, only
	 * for a device with state hooks. */
	pci_len = pci_dev_state_size(vd->pci);
	if (len - HDR_BYTES - qbytes < pci_len) {
		snprintf(err, errlen, "%s: PCI function state truncated", vd->name);
		return -EINVAL;
	}
	tail = len - HDR_BYTES - qbytes - pci_len;
	own = buf + HDR_BYTES + qbytes + pci_len;
	if (vd->ops->state_load ? tail < 4 || tail - 4 != get32(own) : tail != 0) {
		snprintf(err, errlen, "%s: %zu bytes of device state, expected %s", vd->name, tail,
			 vd->ops->state_load ? "a length and that many" : "none");
		return -EINVAL;
	}
	/* The PCI function first: BARs, then the ioeventfds bound to them. */
	ret = pci_dev_state_load(vd->pci, buf + HDR_BYTES + qbytes, pci_len, err, errlen);
	if (ret)
		return ret;
	pthread_mutex_lock(&vd->lock);
	vd->driver_features = get64(p + 16);
	vd->dfselect = get32(p + 24);
	vd->gfselect = get32(p + 28);
	vd->config_vector = get16(p + 32);
	status = p[34];
	vd->config_gen = p[35];
	vd->queue_select = get16(p + 36);
	atomic_store(&vd->isr, get32(p + 40) & 3u);
	p += HDR_BYTES;
	for (unsigned int i = 0; i < vd->nr_queues; i++, p += Q_BYTES) {
		struct virtio_queue *q = &vd->q[i];

		q->size = get16(p);
		q->vector = get16(p + 2);
		q->enabled = false;
		q->notify_pending = p[6] & 1;
		q->desc = get64(p + 8);
		q->driver = get64(p + 16);
		q->device = get64(p + 24);
		virtq_reset(&q->vq);
		if (p[4]) {
			/* As when the driver enabled it: sizes and ring addresses
			 * checked against this VM's RAM. */
			ret = virtq_setup(&q->vq, vd->mem, q->size, q->desc, q->driver, q->device,
					  virtio_has_feature(vd, VIRTIO_F_EVENT_IDX));
			if (ret) {
				pthread_mutex_unlock(&vd->lock);
				snprintf(err, errlen, "%s: queue %u: size %u or ring addresses are not "
					 "valid in this VM", vd->name, i, q->size);
				return -EINVAL;
			}
			q->enabled = true;
			q->vq.last_avail = get16(p + 32);
			q->vq.used_idx = get16(p + 34);
			q->vq.signalled_used = get16(p + 36);
			q->vq.signalled_valid = p[5] & 1;
		}
	}
	vd->status = status;
	vd->resetting = false;
	atomic_store_explicit(&vd->reset_pending, false, memory_order_release);
	/* Release: queues and features are visible to the I/O thread. */
	atomic_store_explicit(&vd->live, (status & VIRTIO_STATUS_DRIVER_OK) &&
			      (status & VIRTIO_STATUS_FEATURES_OK) &&
			      !(status & VIRTIO_STATUS_NEEDS_RESET), memory_order_release);
	pthread_mutex_unlock(&vd->lock);
	if (vd->ops->state_load)
		return vd->ops->state_load(vd, own + 4, tail - 4, err, errlen);
	return 0;
}

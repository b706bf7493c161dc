/* The test guests' virtio-pci driver; see virtio_drv.h. */
#include "virtio_drv.h"

uint32_t pci_cfg_read(unsigned slot, unsigned off, unsigned len)
{
	rt_outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	switch (len) {
	case 1: return rt_inb((uint16_t)(0xcfc + (off & 3)));
	case 2: return rt_inw((uint16_t)(0xcfc + (off & 2)));
	default: return rt_inl(0xcfc);
	}
}

void pci_cfg_write(unsigned slot, unsigned off, unsigned len, uint32_t v)
{
	rt_outl(0xcf8, 0x80000000u | slot << 11 | (off & 0xfc));
	switch (len) {
	case 1: rt_outb((uint16_t)(0xcfc + (off & 3)), (uint8_t)v); break;
	case 2: rt_outw((uint16_t)(0xcfc + (off & 2)), (uint16_t)v); break;
	default: rt_outl(0xcfc, v); break;
	}
}

static uint64_t bar_addr(unsigned slot, unsigned bar)
{
	uint32_t lo = pci_cfg_read(slot, 0x10 + 4 * bar, 4);
	uint64_t a = lo & ~0xfu;

	if ((lo & 6) == 4)
		a |= (uint64_t)pci_cfg_read(slot, 0x14 + 4 * bar, 4) << 32;
	return a;
}

bool vdev_find(uint16_t id, unsigned n, struct vdev *d)
{
	for (unsigned slot = 0; slot < 32; slot++) {
		uint32_t idr = pci_cfg_read(slot, 0, 4);

		if ((idr & 0xffff) != 0x1af4 || (idr >> 16) != 0x1040u + id)
			continue;
		if (n--)
			continue;
		memset(d, 0, sizeof(*d));
		d->slot = slot;
		d->device_id = id;
		/* memory decoding and bus mastering on */
		pci_cfg_write(slot, 4, 2, pci_cfg_read(slot, 4, 2) | 6);
		for (unsigned cap = pci_cfg_read(slot, 0x34, 1), i = 0; cap && i < 48; i++) {
			if (pci_cfg_read(slot, cap, 1) == 0x09) {
				unsigned type = pci_cfg_read(slot, cap + 3, 1);
				unsigned bar = pci_cfg_read(slot, cap + 4, 1);
				uint32_t off = pci_cfg_read(slot, cap + 8, 4);
				volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)(bar_addr(slot, bar) + off);

				if (type == 1)
					d->common = p;
				else if (type == 2) {
					d->notify = p;
					d->notify_mult = pci_cfg_read(slot, cap + 16, 4);
				} else if (type == 3)
					d->isr = p;
				else if (type == 4)
					d->cfg = p;
			}
			cap = pci_cfg_read(slot, cap + 1, 1);
		}
		return d->common && d->notify && d->isr;
	}
	return false;
}

uint8_t vdev_status(struct vdev *d)
{
	return d->common[0x14];
}

void vdev_set_status(struct vdev *d, uint8_t s)
{
	d->common[0x14] = s;
}

uint8_t vdev_init(struct vdev *d, uint64_t features)
{
	uint64_t deadline = rt_deadline_ms(5000);

	vdev_set_status(d, 0);
	while (vdev_status(d) != 0) {
		if (rt_expired(deadline))
			rt_fail("virtio device %u: reset did not complete", d->slot);
		rt_pause();
	}
	vdev_set_status(d, VS_ACK);
	vdev_set_status(d, VS_ACK | VS_DRIVER);
	mmio_write32(d->common + 0x00, 0);
	d->host_features = mmio_read32(d->common + 0x04);
	mmio_write32(d->common + 0x00, 1);
	d->host_features |= (uint64_t)mmio_read32(d->common + 0x04) << 32;
	d->features = features & d->host_features;
	mmio_write32(d->common + 0x08, 0);
	mmio_write32(d->common + 0x0c, (uint32_t)d->features);
	mmio_write32(d->common + 0x08, 1);
	mmio_write32(d->common + 0x0c, (uint32_t)(d->features >> 32));
	vdev_set_status(d, VS_ACK | VS_DRIVER | VS_FEATURES_OK);
	return vdev_status(d);
}

bool vq_setup(struct vdev *d, struct vq *q, uint16_t index, uint16_t size, uint64_t mem)
{
	volatile uint16_t *c16;
	uint64_t desc = mem, avail = mem + 16ULL * size, used = (avail + 6 + 2ULL * size + 4095) & ~4095ULL;

	memset((void *)(uintptr_t)mem, 0, (size_t)(used + 6 + 8ULL * size - mem));
	*(volatile uint16_t *)(d->common + 0x16) = index;
	c16 = (volatile uint16_t *)(d->common + 0x18);
	if (*c16 < size)
		return false;
	*c16 = size;
	*(volatile uint64_t *)(d->common + 0x20) = desc;
	*(volatile uint64_t *)(d->common + 0x28) = avail;
	*(volatile uint64_t *)(d->common + 0x30) = used;
	*(volatile uint16_t *)(d->common + 0x1c) = 1;
	if (*(volatile uint16_t *)(d->common + 0x1c) != 1)
		return false;
	q->dev = d;
	q->index = index;
	q->size = size;
	q->desc = (struct vdesc *)(uintptr_t)desc;
	q->avail = (volatile uint16_t *)(uintptr_t)avail;
	q->used = (volatile uint8_t *)(uintptr_t)used;
	q->notify = (volatile uint16_t *)(d->notify + d->notify_mult *
					  *(volatile uint16_t *)(d->common + 0x1e));
	q->avail_idx = q->last_used = q->kicked_idx = 0;
	return true;
}

void vdev_driver_ok(struct vdev *d)
{
	vdev_set_status(d, VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK);
}

void vq_publish_nokick(struct vq *q, uint16_t head)
{
	q->avail[2 + (q->avail_idx & (q->size - 1))] = head;
	/* The ring entry before the index (2.7.13). */
	__atomic_store_n(&q->avail[1], (uint16_t)(q->avail_idx + 1), __ATOMIC_RELEASE);
	q->avail_idx++;
}

void vq_kick(struct vq *q)
{
	uint16_t old = q->kicked_idx, new_idx = q->avail_idx;

	/* The new idx before reading the device's suppression (2.7.13.4). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->kicked_idx = new_idx;
	if (q->dev->features & VF_EVENT_IDX) {
		/* avail_event sits after the used ring's entries. */
		uint16_t ev = *(volatile uint16_t *)(q->used + 4 + 8ULL * q->size);

		if ((uint16_t)(new_idx - ev - 1) >= (uint16_t)(new_idx - old))
			return;
	} else if (*(volatile uint16_t *)q->used & 1) {
		return;
	}
	*q->notify = q->index;
}

void vq_publish(struct vq *q, uint16_t head)
{
	vq_publish_nokick(q, head);
	q->kicked_idx = q->avail_idx;
	*q->notify = q->index;   /* always kick: simple and never lost */
}

bool vq_poll(struct vq *q, uint32_t *id, uint32_t *len)
{
	uint16_t idx = __atomic_load_n((volatile uint16_t *)(q->used + 2), __ATOMIC_ACQUIRE);
	volatile uint32_t *e;

	if (idx == q->last_used)
		return false;
	e = (volatile uint32_t *)(q->used + 4 + 8ULL * (q->last_used & (q->size - 1)));
	*id = e[0];
	*len = e[1];
	q->last_used++;
	if (q->dev->features & VF_EVENT_IDX)
		q->avail[2 + q->size] = q->last_used;   /* used_event */
	return true;
}

bool vq_wait(struct vq *q, uint32_t *id, uint32_t *len, uint64_t ms)
{
	uint64_t deadline = rt_deadline_ms(ms);

	while (!vq_poll(q, id, len)) {
		if (rt_expired(deadline))
			return false;
		rt_pause();
	}
	return true;
}

uint64_t vdev_bar_addr(const struct vdev *d, unsigned bar)
{
	return bar_addr(d->slot, bar);
}

bool vdev_msix_setup(struct vdev *d, unsigned entry, uint8_t apic_vector)
{
	for (unsigned cap = pci_cfg_read(d->slot, 0x34, 1), i = 0; cap && i < 48; i++) {
		if (pci_cfg_read(d->slot, cap, 1) == 0x11) {
			uint32_t t = pci_cfg_read(d->slot, cap + 4, 4);
			volatile uint32_t *e = (volatile uint32_t *)(uintptr_t)
				(bar_addr(d->slot, t & 7) + (t & ~7u) + 16ULL * entry);

			e[0] = 0xfee00000u;     /* destination: APIC ID 0 */
			e[1] = 0;
			e[2] = apic_vector;     /* fixed delivery, edge */
			pci_cfg_write(d->slot, cap + 2, 2, 0x8000);
			e[3] = 0;               /* unmask */
			return true;
		}
		cap = pci_cfg_read(d->slot, cap + 1, 1);
	}
	return false;
}

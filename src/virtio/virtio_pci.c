/*
 * The modern virtio-pci transport (virtio 1.2, 4.1): one 64-bit memory BAR
 * holding the common configuration, ISR, device configuration, the
 * notification area and the MSI-X table and PBA.
 *
 *   BAR 0 + 0x0000  common configuration (4.1.4.3)
 *         + 0x1000  ISR status (4.1.4.5)
 *         + 0x2000  device configuration
 *         + 0x3000  notifications: queue q at 0x3000 + 4 q, one ioeventfd each
 *         + 0x4000  MSI-X table, + 0x5000 PBA
 *
 * Thread context: register accesses on vCPU threads under vd->lock; the
 * queues are processed on the device's I/O thread, which takes over a
 * queue's `vq` once the driver sets DRIVER_OK (published through `live`).
 * Reset is asynchronous (4.1.4.3.2): the vCPU thread asks the I/O thread,
 * which waits for in-flight requests, resets, and only then lets
 * device_status read 0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "virtio_priv.h"

#define BAR_SIZE 0x8000
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define OFF_MSIX_TABLE 0x4000
#define OFF_MSIX_PBA 0x5000
#define NOTIFY_MULT 4
#define COMMON_SIZE 0x40

/* virtio_pci_cap cfg_type values (4.1.4). */
enum { CAP_COMMON = 1, CAP_NOTIFY = 2, CAP_ISR = 3, CAP_DEVICE = 4, CAP_PCI = 5 };

/* Common configuration layout (4.1.4.3). */
enum {
	CC_DFSELECT = 0x00, CC_DF = 0x04, CC_GFSELECT = 0x08, CC_GF = 0x0c,
	CC_MSIX = 0x10, CC_NUMQ = 0x12, CC_STATUS = 0x14, CC_CFGGEN = 0x15,
	CC_Q_SELECT = 0x16, CC_Q_SIZE = 0x18, CC_Q_MSIX = 0x1a, CC_Q_ENABLE = 0x1c,
	CC_Q_NOFF = 0x1e, CC_Q_DESC = 0x20, CC_Q_DRIVER = 0x28, CC_Q_DEVICE = 0x30,
	CC_Q_NDATA = 0x38, CC_Q_RESET = 0x3a,
};

/* --- interrupts and errors (I/O thread unless noted) --------------------- */

static void send_vector(struct virtio_dev *vd, uint16_t vector)
{
	if (vector == PCI_MSIX_NO_VECTOR)
		return;
	if (pci_msix_notify(vd->pci, vector) == 0)
		virtio_stat_add(&vd->stats.interrupts, 1);
}

void virtio_ring_error(struct virtio_dev *vd)
{
	uint16_t vector;

	atomic_store_explicit(&vd->live, false, memory_order_release);
	virtio_stat_add(&vd->stats.ring_errors, 1);
	pthread_mutex_lock(&vd->lock);
	vd->status |= VIRTIO_STATUS_NEEDS_RESET;
	vector = vd->config_vector;
	pthread_mutex_unlock(&vd->lock);
	atomic_fetch_or(&vd->isr, 2u);
	send_vector(vd, vector);
	if (vd->event_fn)
		vd->event_fn(vd->event_opaque, vd->event_name, "malformed virtqueue");
}

void virtio_complete(struct virtio_dev *vd, unsigned int q, const struct virtq_elem *elem,
		     uint32_t written)
{
	virtq_push(&vd->q[q].vq, elem, written);
	vd->q[q].notify_pending = true;
	virtio_stat_add(&vd->stats.requests, 1);
}

/* --- reset (I/O thread) ------------------------------------------------------ */

/* vd->lock held, the I/O thread not using the queues: registers to their
 * reset values (except status). */
static void reset_registers(struct virtio_dev *vd)
{
	unsigned int i;

	for (i = 0; i < vd->nr_queues; i++) {
		struct virtio_queue *q = &vd->q[i];

		virtq_reset(&q->vq);
		q->enabled = false;
		q->size = VIRTQ_MAX_SIZE;
		q->vector = PCI_MSIX_NO_VECTOR;
		q->desc = q->driver = q->device = 0;
		q->notify_pending = false;
	}
	vd->driver_features = 0;
	vd->dfselect = vd->gfselect = 0;
	vd->config_vector = PCI_MSIX_NO_VECTOR;
	vd->queue_select = 0;
	atomic_store(&vd->isr, 0u);
}

static void finish_reset(struct virtio_dev *vd)
{
	if (vd->ops->reset)
		vd->ops->reset(vd);
	pthread_mutex_lock(&vd->lock);
	reset_registers(vd);
	vd->resetting = false;
	atomic_store_explicit(&vd->reset_pending, false, memory_order_release);
	/* Last: a driver polling device_status sees 0 only now. */
	vd->status = 0;
	pthread_mutex_unlock(&vd->lock);
}

/* --- I/O thread callbacks ---------------------------------------------------- */

static void kick_queue(struct virtio_dev *vd, unsigned int q)
{
	if (q < vd->nr_queues && virtio_live(vd) && vd->q[q].enabled)
		vd->ops->kick(vd, q);
}

static void worker_on_fd(void *opaque, unsigned int id)
{
	struct virtio_dev *vd = opaque;

	if (id >= vd->nr_queues) {
		if (vd->ops->on_fd)
			vd->ops->on_fd(vd, id);
		return;
	}
	virtio_stat_add(&vd->stats.kicks, 1);
	kick_queue(vd, id);
}

static void worker_on_wake(void *opaque)
{
	struct virtio_dev *vd = opaque;
	unsigned int i;

	if (atomic_load_explicit(&vd->reset_pending, memory_order_acquire))
		vd->resetting = true;
	if (vd->resetting)
		return; /* after_batch finishes it once nothing is in flight */
	for (i = 0; i < vd->nr_queues; i++)
		kick_queue(vd, i);
}

static void worker_after_batch(void *opaque)
{
	struct virtio_dev *vd = opaque;
	unsigned int i;

	for (i = 0; i < vd->nr_queues; i++) {
		struct virtio_queue *q = &vd->q[i];

		if (!q->notify_pending)
			continue;
		q->notify_pending = false;
		if (virtq_should_notify(&q->vq)) {
			atomic_fetch_or(&vd->isr, 1u);
			send_vector(vd, q->vector);
		}
	}
	if (vd->resetting && ioworker_inflight(vd->w) == 0)
		finish_reset(vd);
}

static bool worker_poll(void *opaque)
{
	struct virtio_dev *vd = opaque;
	unsigned int i;

	if (!virtio_live(vd))
		return false;
	for (i = 0; i < vd->nr_queues; i++) {
		if (vd->q[i].enabled && virtq_has_avail(&vd->q[i].vq) &&
		    (!vd->ops->queue_busy || vd->ops->queue_busy(vd, i)))
			return true;
	}
	return false;
}

static void worker_run(void *opaque)
{
	struct virtio_dev *vd = opaque;
	unsigned int i;

	for (i = 0; i < vd->nr_queues; i++)
		kick_queue(vd, i);
}

/* Devices pop until a queue is empty without asking for kicks; kicks are
 * re-enabled only here, so a polling I/O thread is not kicked needlessly. */
static bool worker_before_sleep(void *opaque)
{
	struct virtio_dev *vd = opaque;
	bool work = false;
	unsigned int i;

	if (!virtio_live(vd))
		return false;
	for (i = 0; i < vd->nr_queues; i++) {
		if (vd->q[i].enabled && virtq_enable_kick(&vd->q[i].vq) &&
		    (!vd->ops->queue_busy || vd->ops->queue_busy(vd, i)))
			work = true;
	}
	return work;
}

static const struct ioworker_ops worker_ops = {
	.on_fd = worker_on_fd,
	.on_wake = worker_on_wake,
	.after_batch = worker_after_batch,
	.poll = worker_poll,
	.run = worker_run,
	.before_sleep = worker_before_sleep,
};

/* --- common configuration (vCPU thread, vd->lock held) ---------------------- */

static void common_read(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t img[COMMON_SIZE] = { 0 };
	struct virtio_queue *q = vd->queue_select < vd->nr_queues ? &vd->q[vd->queue_select] : NULL;
	uint32_t df = vd->dfselect < 2 ? (uint32_t)(vd->host_features >> (32 * vd->dfselect)) : 0;
	uint32_t gf = vd->gfselect < 2 ? (uint32_t)(vd->driver_features >> (32 * vd->gfselect)) : 0;
	uint16_t nq = (uint16_t)vd->nr_queues, zero16 = 0;

	memcpy(img + CC_DFSELECT, &vd->dfselect, 4);
	memcpy(img + CC_DF, &df, 4);
	memcpy(img + CC_GFSELECT, &vd->gfselect, 4);
	memcpy(img + CC_GF, &gf, 4);
	memcpy(img + CC_MSIX, &vd->config_vector, 2);
	memcpy(img + CC_NUMQ, &nq, 2);
	img[CC_STATUS] = vd->status;
	img[CC_CFGGEN] = vd->config_gen;
	memcpy(img + CC_Q_SELECT, &vd->queue_select, 2);
	if (q) {
		uint16_t en = q->enabled, noff = vd->queue_select;

		memcpy(img + CC_Q_SIZE, &q->size, 2);
		memcpy(img + CC_Q_MSIX, &q->vector, 2);
		memcpy(img + CC_Q_ENABLE, &en, 2);
		memcpy(img + CC_Q_NOFF, &noff, 2);
		memcpy(img + CC_Q_DESC, &q->desc, 8);
		memcpy(img + CC_Q_DRIVER, &q->driver, 8);
		memcpy(img + CC_Q_DEVICE, &q->device, 8);
	} else {
		memcpy(img + CC_Q_SIZE, &zero16, 2);
	}
	if (off < COMMON_SIZE && len <= COMMON_SIZE - off)
		memcpy(data, img + off, len);
	else
		memset(data, 0, len);
}

/* Writes to a 64-bit queue address as one qword or two dwords. */
static void addr_write(uint64_t *field, uint32_t rel, uint32_t len, uint64_t v)
{
	if (len == 8 && rel == 0)
		*field = v;
	else if (len == 4 && rel == 0)
		*field = (*field & ~0xffffffffULL) | (uint32_t)v;
	else if (len == 4 && rel == 4)
		*field = (*field & 0xffffffffULL) | (v << 32);
}

static uint16_t checked_vector(struct virtio_dev *vd, uint16_t v)
{
	/* 4.1.5.1.2: a vector the device cannot use reads back NO_VECTOR. */
	return v < vd->nr_queues + 1 ? v : PCI_MSIX_NO_VECTOR;
}

/* Returns true if the device must raise a config interrupt (after unlock). */
static bool enable_queue(struct virtio_dev *vd, struct virtio_queue *q)
{
	int ret;

	if (q->enabled || (vd->status & VIRTIO_STATUS_DRIVER_OK))
		return false;
	ret = virtq_setup(&q->vq, vd->mem, q->size, q->desc, q->driver, q->device,
			  virtio_has_feature(vd, VIRTIO_F_EVENT_IDX));
	if (ret) {
		log_limited(&vd->rl, LOG_WARN, "%s: queue %u refused: size %u, rings 0x%llx/0x%llx/0x%llx "
			    "not aligned guest RAM", vd->name, vd->queue_select, q->size,
			    (unsigned long long)q->desc, (unsigned long long)q->driver,
			    (unsigned long long)q->device);
		vd->status |= VIRTIO_STATUS_NEEDS_RESET;
		virtio_stat_add(&vd->stats.ring_errors, 1);
		return true;
	}
	q->enabled = true;
	return false;
}

/* Returns true when the I/O thread must be woken (reset, DRIVER_OK). */
static bool status_write(struct virtio_dev *vd, uint8_t v)
{
	uint8_t old = vd->status;

	if (v == 0) {
		if (old == 0 && !atomic_load_explicit(&vd->reset_pending, memory_order_acquire)) {
			/* Never live since the last reset: nothing is in flight
			 * and the I/O thread leaves the queues alone. */
			reset_registers(vd);
			return false;
		}
		atomic_store_explicit(&vd->live, false, memory_order_release);
		atomic_store_explicit(&vd->reset_pending, true, memory_order_release);
		return true;
	}
	if (atomic_load_explicit(&vd->reset_pending, memory_order_acquire))
		return false;
	if ((v & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK) &&
	    ((vd->driver_features & ~vd->host_features) ||
	     !virtio_has_feature(vd, VIRTIO_F_VERSION_1)))
		v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* 3.1.1: driver re-reads */
	v |= old & VIRTIO_STATUS_NEEDS_RESET;
	vd->status = v;
	if ((v & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK) &&
	    (v & VIRTIO_STATUS_FEATURES_OK) && !(v & VIRTIO_STATUS_NEEDS_RESET)) {
		/* Release: queue set-up and features are visible to the I/O thread. */
		atomic_store_explicit(&vd->live, true, memory_order_release);
		return true;
	}
	return false;
}

/* Returns a bitmask: 1 wake the I/O thread, 2 raise a config interrupt. */
static int common_write(struct virtio_dev *vd, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_queue *q = vd->queue_select < vd->nr_queues ? &vd->q[vd->queue_select] : NULL;
	bool qlocked = !q || q->enabled || (vd->status & VIRTIO_STATUS_DRIVER_OK);
	uint64_t v = 0;
	int word;

	memcpy(&v, data, MIN(len, 8u));
	switch (off) {
	case CC_DFSELECT:
		if (len == 4)
			vd->dfselect = (uint32_t)v;
		return 0;
	case CC_GFSELECT:
		if (len == 4)
			vd->gfselect = (uint32_t)v;
		return 0;
	case CC_GF:
		/* Compared unsigned: a select of 2^31 or more is no word
		 * (found by fuzz_pci: as an int it was negative). */
		if (len == 4 && vd->gfselect < 2 && !(vd->status & VIRTIO_STATUS_FEATURES_OK)) {
			word = (int)vd->gfselect;
			vd->driver_features &= ~(0xffffffffULL << (32 * word));
			vd->driver_features |= (v & 0xffffffffULL) << (32 * word);
		}
		return 0;
	case CC_MSIX:
		if (len == 2)
			vd->config_vector = checked_vector(vd, (uint16_t)v);
		return 0;
	case CC_STATUS:
		return len == 1 && status_write(vd, (uint8_t)v) ? 1 : 0;
	case CC_Q_SELECT:
		if (len == 2)
			vd->queue_select = (uint16_t)v;
		return 0;
	case CC_Q_SIZE:
		if (len == 2 && !qlocked)
			q->size = (uint16_t)v;
		return 0;
	case CC_Q_MSIX:
		if (len == 2 && q)
			q->vector = checked_vector(vd, (uint16_t)v);
		return 0;
	case CC_Q_ENABLE:
		if (len == 2 && v == 1 && q)
			return enable_queue(vd, q) ? 2 : 0;
		return 0;
	}
	if (qlocked)
		return 0;
	if (off >= CC_Q_DESC && off < CC_Q_DESC + 8)
		addr_write(&q->desc, off - CC_Q_DESC, len, v);
	else if (off >= CC_Q_DRIVER && off < CC_Q_DRIVER + 8)
		addr_write(&q->driver, off - CC_Q_DRIVER, len, v);
	else if (off >= CC_Q_DEVICE && off < CC_Q_DEVICE + 8)
		addr_write(&q->device, off - CC_Q_DEVICE, len, v);
	return 0;
}

/* --- the BAR (vCPU thread, PCI host lock held) ------------------------------- */

static void bar_rw(void *opaque, unsigned int bar, uint64_t off, uint8_t *data, uint32_t len,
		   bool is_write)
{
	struct virtio_dev *vd = opaque;
	int todo = 0;
	uint16_t vector = PCI_MSIX_NO_VECTOR;

	if (!is_write)
		memset(data, 0, len);
	if (bar != 0)
		return;
	if (off < OFF_ISR) {
		pthread_mutex_lock(&vd->lock);
		if (is_write)
			todo = common_write(vd, (uint32_t)off, data, len);
		else
			common_read(vd, (uint32_t)off, data, len);
		vector = vd->config_vector;
		pthread_mutex_unlock(&vd->lock);
	} else if (off < OFF_DEVICE) {
		/* 4.1.4.5: reading ISR clears it. */
		if (!is_write && off == OFF_ISR)
			data[0] = (uint8_t)atomic_exchange(&vd->isr, 0u);
	} else if (off < OFF_NOTIFY) {
		uint64_t rel = off - OFF_DEVICE;

		if (!is_write && rel < vd->ops->config_size && len <= vd->ops->config_size - rel) {
			pthread_mutex_lock(&vd->lock);
			vd->ops->config_read(vd, (uint32_t)rel, data, len);
			pthread_mutex_unlock(&vd->lock);
		}
	} else if (off < OFF_MSIX_TABLE && is_write) {
		/* A notification the ioeventfd did not catch (another access
		 * size, or no ioeventfd): forward it to the same eventfd. */
		uint64_t q = (off - OFF_NOTIFY) / NOTIFY_MULT, one = 1;

		if (q < vd->nr_queues && write(vd->q[q].kick_fd, &one, sizeof(one)) < 0)
			log_limited(&vd->rl, LOG_WARN, "%s: kick eventfd write failed", vd->name);
	}
	if (todo & 1)
		ioworker_wake(vd->w);
	if (todo & 2) {
		atomic_fetch_or(&vd->isr, 2u);
		send_vector(vd, vector);
		if (vd->event_fn)
			vd->event_fn(vd->event_opaque, vd->event_name, "queue rings outside guest RAM");
	}
}

/* Host lock write-held: (re)binds each queue's ioeventfd to its notify
 * address, or unbinds them while memory decoding is off. */
static void bars_changed(void *opaque)
{
	struct virtio_dev *vd = opaque;
	bool on = pci_dev_mem_enabled(vd->pci);
	uint64_t base = pci_dev_bar_addr(vd->pci, 0);
	unsigned int i;

	for (i = 0; i < vd->nr_queues; i++) {
		struct virtio_queue *q = &vd->q[i];
		uint64_t addr = base + OFF_NOTIFY + NOTIFY_MULT * i;
		struct kvm_ioeventfd io = { .len = 2, .fd = q->kick_fd };

		if (q->kick_bound && (!on || q->kick_addr != addr)) {
			io.addr = q->kick_addr;
			io.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
			if (vd->vm_fd >= 0 && ioctl(vd->vm_fd, KVM_IOEVENTFD, &io) < 0)
				log_warn("%s: KVM_IOEVENTFD deassign: %s", vd->name, strerror(errno));
			q->kick_bound = false;
		}
		if (on && !q->kick_bound && vd->vm_fd >= 0) {
			io.addr = addr;
			io.flags = 0;
			if (ioctl(vd->vm_fd, KVM_IOEVENTFD, &io) < 0) {
				log_limited(&vd->rl, LOG_WARN, "%s: KVM_IOEVENTFD at 0x%llx: %s "
					    "(kicks will exit to skiff)", vd->name,
					    (unsigned long long)addr, strerror(errno));
				continue;
			}
			q->kick_bound = true;
			q->kick_addr = addr;
		}
	}
}

/* The VIRTIO_PCI_CAP_PCI_CFG window (4.1.4.9): bar/offset/length fields
 * and a 4-byte data window into the BAR, through configuration space. */
static bool cfg_rw(void *opaque, uint32_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_dev *vd = opaque;
	uint32_t rel = off - vd->pcicfg_cap, v = 0;
	uint8_t img[20] = { PCI_CAP_ID_VNDR, 0, 20, CAP_PCI };

	if (off < vd->pcicfg_cap || rel >= sizeof(img) || len > sizeof(img) - rel)
		return false;
	if (rel >= 16) {
		uint32_t n = vd->pcicfg.length;

		if (!is_write)
			memset(data, 0, len);
		if (rel != 16 || vd->pcicfg.bar != 0 || (n != 1 && n != 2 && n != 4) ||
		    vd->pcicfg.offset > BAR_SIZE - n || len < n)
			return true;
		pci_dev_bar_access(vd->pci, 0, vd->pcicfg.offset, data, n, is_write);
		return true;
	}
	img[4] = vd->pcicfg.bar;
	memcpy(img + 8, &vd->pcicfg.offset, 4);
	memcpy(img + 12, &vd->pcicfg.length, 4);
	if (!is_write) {
		memcpy(data, img + rel, len);
		return true;
	}
	memcpy(&v, data, len);
	if (rel == 4 && len == 1)
		vd->pcicfg.bar = (uint8_t)v;
	else if (rel == 8 && len == 4)
		vd->pcicfg.offset = v;
	else if (rel == 12 && len == 4)
		vd->pcicfg.length = v;
	return true;
}

static const struct pci_dev_ops pci_ops = {
	.bar_rw = bar_rw,
	.bars_changed = bars_changed,
	.cfg_rw = cfg_rw,
};

/* --- create / destroy (main thread) ------------------------------------------ */

static int add_vcap(struct pci_dev *pci, uint8_t type, uint32_t off, uint32_t len, bool notify)
{
	uint8_t cap[20] = { PCI_CAP_ID_VNDR, 0, notify ? 20 : 16, type, 0 };
	uint32_t mult = NOTIFY_MULT;

	memcpy(cap + 8, &off, 4);
	memcpy(cap + 12, &len, 4);
	if (notify)
		memcpy(cap + 16, &mult, 4);
	return pci_dev_add_cap(pci, cap, cap[2], NULL);
}

static int setup_pci(struct virtio_dev *vd, struct pci_host *host)
{
	const struct pci_dev_info info = {
		.vendor = 0x1af4, .device = (uint16_t)(0x1040 + vd->ops->device_id),
		.revision = 1, .subsys_vendor = 0x1af4, .subsys = 0x1100,
		.class_code = vd->ops->device_id == 2 ? 0x010000 :
			      vd->ops->device_id == 1 ? 0x020000 : 0x00ff00,
	};
	uint8_t pcicap[20] = { PCI_CAP_ID_VNDR, 0, 20, CAP_PCI };
	int ret;

	ret = pci_dev_add(host, &info, &pci_ops, vd, &vd->pci);
	if (ret)
		return ret;
	ret = pci_dev_add_bar(vd->pci, 0, BAR_SIZE);
	if (!ret)
		ret = add_vcap(vd->pci, CAP_COMMON, OFF_COMMON, COMMON_SIZE, false);
	if (!ret)
		ret = add_vcap(vd->pci, CAP_NOTIFY, OFF_NOTIFY, NOTIFY_MULT * vd->nr_queues, true);
	if (!ret)
		ret = add_vcap(vd->pci, CAP_ISR, OFF_ISR, 1, false);
	if (!ret && vd->ops->config_size)
		ret = add_vcap(vd->pci, CAP_DEVICE, OFF_DEVICE, vd->ops->config_size, false);
	if (!ret)
		ret = pci_dev_init_msix(vd->pci, vd->nr_queues + 1, 0, OFF_MSIX_TABLE, OFF_MSIX_PBA);
	/* Last capability: the hook serves it and nothing after it. */
	if (!ret)
		ret = pci_dev_add_cap(vd->pci, pcicap, sizeof(pcicap), &vd->pcicfg_cap);
	if (ret)
		return ret;
	pci_dev_set_cfg_hook(vd->pci, vd->pcicfg_cap);
	return 0;
}

int virtio_pci_create(struct pci_host *host, struct guest_mem *mem,
		      const struct virtio_dev_ops *ops, void *priv, uint64_t features,
		      unsigned int nr_queues, unsigned int uring_entries, struct virtio_dev **out)
{
	struct virtio_dev *vd;
	unsigned int i;
	int ret;

	if (!nr_queues || nr_queues > IOWORKER_MAX_FDS)
		return -EINVAL;
	vd = calloc(1, sizeof(*vd));
	if (!vd)
		return -ENOMEM;
	vd->ops = ops;
	vd->priv = priv;
	vd->mem = mem;
	vd->vm_fd = pci_host_vm_fd(host);
	vd->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5);
	vd->host_features = features | (1ULL << VIRTIO_F_VERSION_1) |
			    (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);
	vd->config_vector = PCI_MSIX_NO_VECTOR;
	pthread_mutex_init(&vd->lock, NULL);
	vd->nr_queues = nr_queues;
	vd->q = calloc(nr_queues, sizeof(*vd->q));
	if (!vd->q) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < nr_queues; i++) {
		vd->q[i].kick_fd = -1;
		vd->q[i].size = VIRTQ_MAX_SIZE;
		vd->q[i].vector = PCI_MSIX_NO_VECTOR;
		vd->q[i].vq.rl = &vd->rl;
		vd->q[i].vq.name = vd->name;
	}
	for (i = 0; i < nr_queues; i++) {
		vd->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vd->q[i].kick_fd < 0) {
			ret = -errno;
			goto fail;
		}
	}
	ret = setup_pci(vd, host);
	if (ret)
		goto fail;
	snprintf(vd->name, sizeof(vd->name), "%s@%02x", ops->kind, pci_dev_slot(vd->pci));
	ret = ioworker_create(vd->name, uring_entries, &worker_ops, vd, &vd->w);
	if (ret)
		goto fail;
	for (i = 0; i < nr_queues; i++) {
		ret = ioworker_add_fd(vd->w, vd->q[i].kick_fd, i);
		if (ret)
			goto fail;
	}
	*out = vd;
	return 0;
fail:
	vd->ops = NULL; /* the caller frees its own state */
	virtio_dev_destroy(vd);
	return ret;
}

void virtio_pci_set_poll(struct virtio_dev *vd, uint64_t ns)
{
	ioworker_set_poll(vd->w, ns);
}

void virtio_pci_poll_when_idle(struct virtio_dev *vd, bool idle_only)
{
	ioworker_poll_when_idle(vd->w, idle_only);
}

int virtio_dev_run_sync(struct virtio_dev *vd)
{
	return ioworker_run_sync(vd->w);
}

int virtio_dev_start(struct virtio_dev *vd, const struct sandbox *sb)
{
	int ret = ioworker_start(vd->w, sb);

	if (ret)
		return ret;
	/* Bind the ioeventfds at the placed BAR (memory decoding is on). */
	pci_host_lock(vd->pci, true);
	bars_changed(vd);
	pci_host_lock(vd->pci, false);
	return 0;
}

void virtio_dev_destroy(struct virtio_dev *vd)
{
	unsigned int i;

	if (!vd)
		return;
	ioworker_destroy(vd->w);
	if (vd->pci) {
		pci_host_lock(vd->pci, true);
		for (i = 0; i < vd->nr_queues; i++) {
			struct virtio_queue *q = &vd->q[i];
			struct kvm_ioeventfd io = { .addr = q->kick_addr, .len = 2, .fd = q->kick_fd,
						    .flags = KVM_IOEVENTFD_FLAG_DEASSIGN };

			if (q->kick_bound && ioctl(vd->vm_fd, KVM_IOEVENTFD, &io) < 0)
				log_warn("%s: KVM_IOEVENTFD deassign: %s", vd->name, strerror(errno));
			q->kick_bound = false;
		}
		pci_host_lock(vd->pci, false);
		pci_dev_remove(vd->pci);
	}
	for (i = 0; vd->q && i < vd->nr_queues; i++) {
		if (vd->q[i].kick_fd >= 0)
			close(vd->q[i].kick_fd);
	}
	if (vd->ops && vd->ops->destroy)
		vd->ops->destroy(vd);
	free(vd->q);
	pthread_mutex_destroy(&vd->lock);
	free(vd);
}

void virtio_dev_set_event(struct virtio_dev *vd, const char *name, virtio_event_fn fn,
			  void *opaque)
{
	snprintf(vd->event_name, sizeof(vd->event_name), "%s", name);
	vd->event_opaque = opaque;
	vd->event_fn = fn;
}

int virtio_dev_reset(struct virtio_dev *vd)
{
	bool wake;
	int i;

	pthread_mutex_lock(&vd->lock);
	wake = status_write(vd, 0);
	pthread_mutex_unlock(&vd->lock);
	if (wake)
		ioworker_wake(vd->w);
	for (i = 0; i < 50000; i++) {   /* 5 s */
		if (!atomic_load_explicit(&vd->reset_pending, memory_order_acquire))
			return 0;
		usleep(100);
	}
	log_warn("%s: reset did not complete", vd->name);
	return -ETIMEDOUT;
}

void virtio_dev_pause(struct virtio_dev *vd)
{
	ioworker_pause(vd->w);
}

void virtio_dev_resume(struct virtio_dev *vd)
{
	ioworker_resume(vd->w);
}

void virtio_dev_stats(const struct virtio_dev *vd, struct virtio_stats *out)
{
	const uint64_t *src = (const uint64_t *)&vd->stats;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

const char *virtio_dev_kind(const struct virtio_dev *vd)
{
	return vd->ops ? vd->ops->kind : "virtio";
}

unsigned int virtio_dev_slot(const struct virtio_dev *vd)
{
	return pci_dev_slot(vd->pci);
}

/*
 * Inside src/virtio: the io_uring I/O worker and the virtio-pci transport's
 * interface to the device files (blk.c, rng.c).
 */
#ifndef SKIFF_VIRTIO_PRIV_H
#define SKIFF_VIRTIO_PRIV_H

#include <liburing.h>

#include "pci.h"
#include "virtio.h"

/* --- ioworker.c: one thread, one io_uring ------------------------------- */

/* An asynchronous operation: its SQE's user_data points at it; `done` runs
 * on the I/O thread with the CQE's result. */
struct ioworker_op {
	void (*done)(struct ioworker_op *op, int res);
};

struct ioworker_ops {
	/* I/O thread: eventfd number `id` (ioworker_add_fd) fired. */
	void (*on_fd)(void *opaque, unsigned int id);
	/* I/O thread: ioworker_wake() was called (control requests), and after
	 * a resume (to look at the queues again). */
	void (*on_wake)(void *opaque);
	/* I/O thread: after each batch of completions and wake-ups (send the
	 * interrupts the batch earned). */
	void (*after_batch)(void *opaque);
	/* I/O thread, while polling: is work waiting on the queues? Cheap,
	 * no side effects. May be NULL (then no polling). */
	bool (*poll)(void *opaque);
	/* I/O thread: process the queues (polling found work). */
	void (*run)(void *opaque);
	/* I/O thread, before sleeping: re-enable guest notifications; true if
	 * work arrived meanwhile (then run instead of sleeping). */
	bool (*before_sleep)(void *opaque);
};

struct ioworker;

#define IOWORKER_MAX_FDS 32

/* Main thread. entries: io_uring size (SQ); the CQ is twice that. */
int MUST_CHECK ioworker_create(const char *name, unsigned int entries,
			       const struct ioworker_ops *ops, void *opaque,
			       struct ioworker **out);
/* Main thread, before ioworker_start: watch an eventfd (a queue's ioeventfd). */
int MUST_CHECK ioworker_add_fd(struct ioworker *w, int fd, unsigned int id);
/* Main thread, before ioworker_start: watch any descriptor for `events`
 * (POLLIN, POLLOUT: a tap) with one-shot POLL_ADDs; on_fd(id) runs when it
 * is ready. `held`: not armed until ioworker_hold(w, id, false). */
int MUST_CHECK ioworker_add_poll(struct ioworker *w, int fd, unsigned int events,
				 unsigned int id, bool held);
/* I/O thread: stop (hold) or restart watching source `id`. A POLL_ADD
 * already in flight still completes once. This is how a device stops
 * reading a tap while the guest has no receive buffers, without spinning. */
void ioworker_hold(struct ioworker *w, unsigned int id, bool hold);
/* Main thread, before ioworker_start: after activity, busy-poll the ring
 * and the queues for `ns` before sleeping (0: never poll). */
void ioworker_set_poll(struct ioworker *w, uint64_t ns);
/* Busy-poll only with no request in flight (before the thread starts). */
void ioworker_poll_when_idle(struct ioworker *w, bool idle_only);
/* Unit tests and fuzz targets only, never once the thread is started: one
 * round of the thread's work on the caller's thread — a pending wake-up,
 * every queue looked at, then submit and reap until nothing is in flight.
 * Returns 0, -EBUSY (thread started) or an io_uring error. */
int MUST_CHECK ioworker_run_sync(struct ioworker *w);
/* Main thread: starts the I/O thread, which installs the I/O role's seccomp
 * filter (sb NULL: none) before anything else; returns its result. */
int MUST_CHECK ioworker_start(struct ioworker *w, const struct sandbox *sb);
/* Main thread: waits for in-flight operations, stops and joins the thread. */
void ioworker_destroy(struct ioworker *w);
/* I/O thread: an SQE for `op` (submitted at the end of the batch, or now if
 * the SQ is full); NULL only if the ring is broken. Counts `op` in flight. */
struct io_uring_sqe *ioworker_sqe(struct ioworker *w, struct ioworker_op *op);
/* Any thread: run on_wake soon on the I/O thread. */
void ioworker_wake(struct ioworker *w);
/* Main thread: stop reacting to eventfds and wait until nothing is in
 * flight; resume starts again and calls on_wake. */
void ioworker_pause(struct ioworker *w);
void ioworker_resume(struct ioworker *w);
/* I/O thread: operations submitted and not completed yet. */
unsigned int ioworker_inflight(const struct ioworker *w);

/* --- virtio_pci.c: the transport ------------------------------------------- */

/* Feature bits (virtio 1.2, 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Device status (2.1). */
#define VIRTIO_STATUS_ACK 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

struct virtio_dev;

struct virtio_dev_ops {
	const char *kind;            /* "virtio-blk" */
	uint16_t device_id;          /* virtio device type: 2 block, 4 rng */
	uint32_t config_size;
	/* vCPU thread, device lock held. */
	void (*config_read)(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len);
	/* I/O thread: buffers may be waiting on queue q (device is live). */
	void (*kick)(struct virtio_dev *vd, unsigned int q);
	/* I/O thread: the driver reset the device; nothing is in flight. */
	void (*reset)(struct virtio_dev *vd);
	/* I/O thread: a descriptor the device added with ioworker_add_poll
	 * (id >= nr_queues) is ready. Called whether or not the device is live.
	 * May be NULL. */
	void (*on_fd)(struct virtio_dev *vd, unsigned int id);
	/* I/O thread: do buffers waiting on queue q mean work? NULL: yes.
	 * A receive queue holds its buffers until frames arrive: it is work
	 * only while a frame waits for buffers (else the thread would spin). */
	bool (*queue_busy)(struct virtio_dev *vd, unsigned int q);
	/* Main thread, I/O thread stopped: free the device's own state. */
	void (*destroy)(struct virtio_dev *vd);
	/* Migration (virtio_state.c; migration thread, I/O thread paused,
	 * device lock not held): the device's own state, carried after the
	 * transport's. All three or none (NULL). state_load gets exactly the
	 * bytes state_save wrote on the source and checks them as hostile
	 * input (one line in err); it runs after the transport and queues
	 * are loaded. state_size is fixed for a device's lifetime (buffers
	 * are sized before the save). */
	size_t (*state_size)(const struct virtio_dev *vd);
	void (*state_save)(struct virtio_dev *vd, uint8_t *buf);
	int (*state_load)(struct virtio_dev *vd, const uint8_t *buf, size_t len, char *err,
			  size_t errlen);
};

struct virtio_queue {
	struct virtq vq;             /* I/O thread once `enabled` is published */
	uint16_t size;               /* registers: vCPU thread, device lock */
	uint16_t vector;
	bool enabled;
	uint64_t desc, driver, device;
	int kick_fd;                 /* ioeventfd */
	uint64_t kick_addr;
	bool kick_bound;
	bool notify_pending;         /* I/O thread: pushed since the last interrupt */
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;                  /* the device's own state */
	struct pci_dev *pci;
	struct guest_mem *mem;
	int vm_fd;
	char name[32];               /* "virtio-blk@03" */
	struct ioworker *w;
	struct log_ratelimit rl;

	/* Registers. vCPU threads (inside the PCI host lock), under `lock`, a
	 * leaf: interrupts are sent after it is dropped. The I/O thread takes
	 * it only to set NEEDS_RESET and to finish a reset. */
	pthread_mutex_t lock;
	uint64_t host_features;
	uint64_t driver_features;
	uint32_t dfselect, gfselect;
	uint16_t config_vector;
	uint8_t status;
	uint8_t config_gen;
	uint16_t queue_select;
	struct { uint8_t bar; uint32_t offset, length; } pcicfg;
	uint8_t pcicfg_cap;

	atomic_uint isr;             /* bit 0 queue, bit 1 config */
	/* Published by vCPU threads (release), read by the I/O thread (acquire). */
	atomic_bool live;            /* DRIVER_OK set and not broken */
	atomic_bool reset_pending;
	bool resetting;              /* I/O thread */

	unsigned int nr_queues;
	struct virtio_queue *q;

	/* NEEDS_RESET notification (immutable once the VM runs). */
	virtio_event_fn event_fn;
	void *event_opaque;
	char event_name[32];

	/* Counters: written by the I/O thread (relaxed atomics), read by any. */
	struct virtio_stats stats;
};

/* Main thread: allocates the transport, the PCI function, its BAR,
 * capabilities and MSI-X, the queues' ioeventfds and the I/O thread (not
 * started). */
int MUST_CHECK virtio_pci_create(struct pci_host *host, struct guest_mem *mem,
				 const struct virtio_dev_ops *ops, void *priv,
				 uint64_t features, unsigned int nr_queues,
				 unsigned int uring_entries, struct virtio_dev **out);
/* Before virtio_dev_start: busy-poll window of the I/O thread. */
void virtio_pci_set_poll(struct virtio_dev *vd, uint64_t ns);
void virtio_pci_poll_when_idle(struct virtio_dev *vd, bool idle_only);

/* I/O thread helpers for the devices. */
/* Completes a chain: used ring, counters, interrupt at the end of the batch. */
void virtio_complete(struct virtio_dev *vd, unsigned int q, const struct virtq_elem *elem,
		     uint32_t written);
/* The ring is malformed: NEEDS_RESET, config interrupt, stop processing. */
void virtio_ring_error(struct virtio_dev *vd);
/* Counts bytes and errors (relaxed; the stats are advisory). */
static inline void virtio_stat_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}
static inline bool virtio_live(struct virtio_dev *vd)
{
	return atomic_load_explicit(&vd->live, memory_order_acquire);
}
static inline bool virtio_has_feature(const struct virtio_dev *vd, unsigned int bit)
{
	return vd->driver_features & (1ULL << bit);
}

#endif

/*
 * virtio 1.x: split virtqueues (virtq.c), the modern virtio-pci transport
 * (virtio_pci.c), the io_uring I/O worker (ioworker.c), and the devices
 * (blk.c, rng.c). See docs/virtio.md.
 *
 * Thread contexts:
 *  - vCPU threads: PCI configuration space, the transport's register BAR
 *    (common cfg, ISR, device cfg, MSI-X table). Short, never any I/O.
 *  - one I/O thread per device (struct ioworker): waits on the queues'
 *    ioeventfds through its io_uring, pops requests, submits I/O, fills the
 *    used ring on completion and signals the irqfd.
 *  - main thread: create/destroy, pause/resume, counters.
 */
#ifndef SKIFF_VIRTIO_H
#define SKIFF_VIRTIO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "log.h"
#include "mem.h"
#include "util.h"

/* --- split virtqueue (virtio 1.2 section 2.7) -------------------------- */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* Largest queue a device offers, and the most buffers one chain may have
 * (direct and indirect descriptors together): a chain is never longer than
 * the queue (spec 2.7.5.3.1), so one bound serves both. */
#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_SEGS VIRTQ_MAX_SIZE

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* One popped chain: device-readable segments first (out), then
 * device-writable ones (in). iov points into guest RAM. */
struct virtq_elem {
	uint16_t head;
	uint16_t nr_out, nr_in;
	uint64_t out_len, in_len;        /* bytes */
	struct iovec iov[VIRTQ_MAX_SEGS];
	uint64_t gpa[VIRTQ_MAX_SEGS];    /* guest address of each segment */
};

struct virtq {
	struct guest_mem *mem;
	uint16_t size;             /* entries, power of two */
	bool event_idx;            /* VIRTIO_F_EVENT_IDX negotiated */
	bool ready;                /* virtq_setup succeeded */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	/* Host views of the three rings, checked once by virtq_setup. The
	 * guest writes desc/avail concurrently: every field is loaded once. */
	volatile struct virtq_desc *desc;
	volatile uint16_t *avail;   /* flags, idx, ring[size], used_event */
	volatile uint8_t *used;     /* flags, idx, {id, len}[size], avail_event */
	uint16_t last_avail;        /* next avail entry to pop */
	uint16_t used_idx;          /* next used entry to fill */
	uint16_t signalled_used;    /* used_idx at the last interrupt */
	bool signalled_valid;
	const char *name;           /* for log lines */
	struct log_ratelimit *rl;   /* the device's limiter; may be NULL */
};

/* Validates the ring addresses for `size` entries (power of two, at most
 * VIRTQ_MAX_SIZE, each ring aligned and entirely in RAM) and resets the
 * indices. Returns 0 or -EINVAL. */
int MUST_CHECK virtq_setup(struct virtq *vq, struct guest_mem *mem, uint16_t size,
			   uint64_t desc, uint64_t avail, uint64_t used, bool event_idx);
void virtq_reset(struct virtq *vq);

/* Pops the next available chain into *elem. Returns 0, -EAGAIN (nothing
 * available) or -EIO: the ring is malformed (bad head, loop, chain too long,
 * buffer outside RAM, length overflow, nested or oversized indirect table,
 * avail idx more than `size` ahead). After -EIO the caller puts the device
 * in NEEDS_RESET; one rate-limited line has been logged. */
int MUST_CHECK virtq_pop(struct virtq *vq, struct virtq_elem *elem);
/* Puts a chain back on the used ring with `written` bytes written into its
 * device-writable buffers; marks those bytes and the used entry dirty. */
void virtq_push(struct virtq *vq, const struct virtq_elem *elem, uint32_t written);
/* Gives back the chain popped last (not pushed, nothing popped since): the
 * next virtq_pop returns it again. virtio-net holds no chain while idle. */
void virtq_unpop(struct virtq *vq);
/* Several chains published together (virtio-net MRG_RXBUF: a frame's
 * buffers appear at once): virtq_fill writes used entry used_idx + n
 * without publishing it, virtq_flush publishes `count` filled entries. The
 * caller marks the written bytes dirty (virtq_elem_write does). */
void virtq_fill(struct virtq *vq, uint16_t n, uint16_t head, uint32_t written);
void virtq_flush(struct virtq *vq, uint16_t count);
/* After one or more pushes: must the driver be interrupted? (EVENT_IDX or
 * the NO_INTERRUPT flag.) Updates the signalled position when true. */
bool MUST_CHECK virtq_should_notify(struct virtq *vq);
/* Before the I/O thread goes back to sleep: asks the driver for a kick at
 * the next buffer (avail_event with EVENT_IDX, else clears NO_NOTIFY) and
 * returns true if buffers arrived meanwhile (then pop again). */
bool MUST_CHECK virtq_enable_kick(struct virtq *vq);
/* I/O thread, polling: are buffers waiting? (One acquire load.) */
bool virtq_has_avail(struct virtq *vq);
/* Copies between an element's segments and a flat buffer, starting `skip`
 * bytes into the readable (out) or writable (in) part. Return bytes copied. */
size_t virtq_elem_read(const struct virtq_elem *elem, uint64_t skip, void *dst, size_t len);
size_t virtq_elem_write(struct virtq *vq, const struct virtq_elem *elem, uint64_t skip,
			const void *src, size_t len);

/* --- device counters (query-style; read with virtio_dev_stats) -------- */

struct virtio_stats {
	uint64_t requests;        /* chains completed */
	uint64_t read_bytes;      /* bytes the device wrote into guest buffers */
	uint64_t write_bytes;     /* bytes the device consumed from guest buffers */
	uint64_t errors;          /* requests completed with an error status */
	uint64_t kicks;           /* ioeventfd wake-ups */
	uint64_t interrupts;      /* MSI-X messages sent */
	uint64_t ring_errors;     /* malformed rings (device set NEEDS_RESET) */
	uint64_t merged;          /* virtio-blk: requests sent to the kernel
				   * as part of a larger, merged one */
};

/* --- devices on the virtio-pci transport ------------------------------ */

struct pci_host;
struct sandbox;
struct virtio_dev;

struct virtio_blk_config {
	const char *path;
	bool readonly;
	bool direct;               /* O_DIRECT */
	const char *serial;        /* GET_ID, up to 20 bytes; NULL: none */
	unsigned int queues;       /* 1..VIRTIO_BLK_MAX_QUEUES */
	uint64_t poll_ns;          /* I/O thread busy-poll window, 0: none */
};

#define VIRTIO_BLK_MAX_QUEUES 8

/* virtio-net on a tap (net.c, net_tap.c). */
#define VIRTIO_NET_MAX_PAIRS 4
struct virtio_net_config {
	const char *tap;           /* interface to create or attach; NULL: tap_fd */
	int tap_fd;                /* an open tap (IFF_VNET_HDR), or -1 */
	uint8_t mac[6];
	unsigned int queues;       /* queue pairs, 1..VIRTIO_NET_MAX_PAIRS */
	uint64_t poll_ns;          /* I/O thread busy-poll window, 0: none */
};

/* Written by the I/O thread (relaxed), read by any thread. */
struct virtio_net_stats {
	uint64_t rx_packets, rx_bytes;   /* tap -> guest (bytes without header) */
	uint64_t rx_drops;               /* frames that did not fit (no MRG_RXBUF) */
	uint64_t rx_errors;              /* bad receive chains, tap read errors */
	uint64_t rx_stalls;              /* waits for receive buffers (back-pressure) */
	uint64_t tx_packets, tx_bytes;   /* guest -> tap */
	uint64_t tx_drops;               /* malformed or oversize frames dropped */
	uint64_t tx_errors;              /* tap write errors */
	uint64_t tx_stalls;              /* tap full: waits for POLLOUT */
	uint64_t ctrl_cmds, ctrl_errors; /* control queue commands, refused ones */
};

/* Main thread. Adds a virtio-blk PCI function to `host`; the image is
 * opened here. err gets one line on failure. */
int MUST_CHECK virtio_blk_create(struct pci_host *host, struct guest_mem *mem,
				 const struct virtio_blk_config *cfg,
				 struct virtio_dev **out, char *err, size_t errlen);
/* Main thread: opens or creates the tap(s); err gets one line on failure. */
int MUST_CHECK virtio_net_create(struct pci_host *host, struct guest_mem *mem,
				 const struct virtio_net_config *cfg,
				 struct virtio_dev **out, char *err, size_t errlen);
/* Any thread: virtio-net's own counters (zeroes for another device). */
void virtio_net_stats(const struct virtio_dev *d, struct virtio_net_stats *out);
int MUST_CHECK virtio_rng_create(struct pci_host *host, struct guest_mem *mem,
				 struct virtio_dev **out, char *err, size_t errlen);
/* Main thread, once, after a _create and before the guest runs: starts the
 * device's I/O thread, which installs the I/O role's seccomp filter (sb
 * NULL: none) before it serves anything. The builder starts devices only
 * after every file is open and privileges are dropped (--user). */
int MUST_CHECK virtio_dev_start(struct virtio_dev *d, const struct sandbox *sb);
/* Fuzz targets and unit tests, instead of virtio_dev_start: does on the
 * caller's thread what the I/O thread would do for pending kicks and
 * resets, and waits for the I/O it started. */
int MUST_CHECK virtio_dev_run_sync(struct virtio_dev *d);
/* Stops the I/O thread (after its in-flight requests complete), removes the
 * function and frees it. Main thread; vCPU threads must be stopped first. */
void virtio_dev_destroy(struct virtio_dev *d);

/* Main thread: quiesce the I/O thread (no new requests are popped; returns
 * when every in-flight request has completed), and let it run again. For
 * migration and stop/cont. */
void virtio_dev_pause(struct virtio_dev *d);
void virtio_dev_resume(struct virtio_dev *d);

/* Main thread, vCPUs stopped (guest reboot): resets the device as a driver
 * writing status 0 would, and waits until the I/O thread has done it
 * (in-flight requests complete first). Returns 0 or -ETIMEDOUT. */
int virtio_dev_reset(struct virtio_dev *d);

/* Main thread, before the VM runs: `fn` is called (from the I/O or a vCPU
 * thread, with no lock held) when the device enters NEEDS_RESET, with
 * `name` (copied) and a short reason. For the control socket's events. */
typedef void (*virtio_event_fn)(void *opaque, const char *device, const char *reason);
void virtio_dev_set_event(struct virtio_dev *d, const char *name, virtio_event_fn fn,
			  void *opaque);

/* Migration (virtio_state.c; vCPUs parked, the device paused): the
 * transport, queues and PCI function as bytes; load validates them as a
 * driver's writes and refuses a mismatched device. */
size_t virtio_dev_state_size(const struct virtio_dev *d);
void virtio_dev_state_save(struct virtio_dev *d, uint8_t *buf);
int MUST_CHECK virtio_dev_state_load(struct virtio_dev *d, const uint8_t *buf, size_t len,
				     char *err, size_t errlen);

/* Any thread: a consistent-enough snapshot of the counters. */
void virtio_dev_stats(const struct virtio_dev *d, struct virtio_stats *out);
/* "virtio-blk", "virtio-rng" */
const char *virtio_dev_kind(const struct virtio_dev *d);
/* PCI address (bus 0): device number. */
unsigned int virtio_dev_slot(const struct virtio_dev *d);

#endif

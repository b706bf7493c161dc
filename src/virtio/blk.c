/*
 * virtio-blk (virtio 1.2, 5.2) on a raw image file or block device, served
 * by the device's io_uring I/O thread: reads and writes go straight between
 * the image and guest RAM (READV/WRITEV on iovecs that point into guest
 * memory), FLUSH is fdatasync, DISCARD and WRITE_ZEROES are fallocate.
 *
 * Every request is checked before it reaches the kernel: the header and
 * status byte must be where the spec puts them, the data length must be
 * whole sectors and the range must lie inside the disk. A bad request
 * completes with VIRTIO_BLK_S_IOERR (or UNSUPP); it never touches memory
 * outside its own buffers, which virtq_pop() has checked.
 *
 * Thread context: create/destroy on the main thread; config reads on vCPU
 * threads (immutable config image); everything else on the I/O thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio_priv.h"

/* Feature bits (5.2.3). */
#define BLK_F_SIZE_MAX 1
#define BLK_F_SEG_MAX 2
#define BLK_F_RO 5
#define BLK_F_BLK_SIZE 6
#define BLK_F_FLUSH 9
#define BLK_F_MQ 12
#define BLK_F_DISCARD 13
#define BLK_F_WRITE_ZEROES 14

/* Request types and statuses (5.2.6). */
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_T_FLUSH 4
#define BLK_T_GET_ID 8
#define BLK_T_DISCARD 11
#define BLK_T_WRITE_ZEROES 13
#define BLK_S_OK 0
#define BLK_S_IOERR 1
#define BLK_S_UNSUPP 2

#define SECTOR 512ULL
#define ID_BYTES 20
#define SIZE_MAX_BYTES (4U << 20)
#define MAX_ZERO_SECTORS (1U << 22)   /* per DISCARD / WRITE_ZEROES: 2 GiB */
#define CONFIG_SIZE 60

/* Adjacent reads (or writes) popped in one kick go to the kernel as one
 * operation, as a block layer's request merging would: fewer operations
 * for a sequential stream, larger ones for O_DIRECT. */
#define MERGE_MAX_BYTES (1U << 20)
#define MERGE_MAX_SEGS 512
#define MERGE_SLOTS 16             /* merged operations in flight per device */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {   /* DISCARD / WRITE_ZEROES segment */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;   /* bit 0: unmap (WRITE_ZEROES) */
};

struct blk;

struct blk_req {
	struct ioworker_op op;     /* first: user_data points here */
	struct blk *blk;
	struct blk_req *next_free;
	uint16_t q;
	uint32_t type;
	uint64_t status_gpa;
	uint64_t len;              /* data bytes */
	uint64_t off;              /* byte offset in the image */
	struct iovec *seg;
	unsigned int nseg;
	bool retried;              /* O_DIRECT refused it: retried buffered */
	struct blk_req *merge_next; /* next member of the same merged operation */
	struct virtq_elem elem;
};

/* One kernel read/write standing for several adjacent requests. */
struct blk_merge {
	struct ioworker_op op;     /* first: user_data points here */
	struct blk *blk;
	struct blk_merge *next_free;
	struct blk_req *first;     /* members in disk order, through merge_next */
	uint32_t type;
	uint64_t off, len;
	unsigned int nseg;
	struct iovec iov[MERGE_MAX_SEGS];
};

struct blk {
	struct virtio_dev *vd;
	int fd;                    /* O_DIRECT when direct=on */
	int fd_buffered;           /* fallback for unaligned O_DIRECT requests */
	bool readonly;
	uint64_t sectors;
	uint8_t id[ID_BYTES];
	uint8_t config[CONFIG_SIZE];
	struct blk_req *reqs;      /* nr_queues * VIRTQ_MAX_SIZE */
	struct blk_req *free;
	unsigned int inflight[VIRTIO_BLK_MAX_QUEUES];
	/* I/O thread only. Reads and writes popped by the current kick,
	 * submitted (merged where adjacent) when it ends: at most one
	 * queue's worth. */
	struct blk_req *batch[VIRTQ_MAX_SIZE];
	unsigned int nbatch;
	struct blk_merge *merges;  /* MERGE_SLOTS */
	struct blk_merge *merge_free;
};

/* --- completion ------------------------------------------------------------- */

static void req_free(struct blk *b, struct blk_req *r)
{
	r->next_free = b->free;
	b->free = r;
}

static void finish(struct blk_req *r, uint8_t status, uint32_t data_written)
{
	struct blk *b = r->blk;
	struct virtio_dev *vd = b->vd;

	if (status != BLK_S_OK)
		virtio_stat_add(&vd->stats.errors, 1);
	else if (r->type == BLK_T_IN)
		virtio_stat_add(&vd->stats.read_bytes, r->len);
	else if (r->type == BLK_T_OUT)
		virtio_stat_add(&vd->stats.write_bytes, r->len);
	b->inflight[r->q]--;
	/* A reset is waiting for in-flight requests: they end unreported. */
	if (!atomic_load_explicit(&vd->reset_pending, memory_order_acquire)) {
		if (r->status_gpa != UINT64_MAX && mem_write(vd->mem, r->status_gpa, &status, 1) == 0)
			data_written++;
		virtio_complete(vd, r->q, &r->elem, data_written);
	}
	req_free(b, r);
}

static void submit(struct blk_req *r);

static void req_done(struct ioworker_op *op, int res)
{
	struct blk_req *r = (struct blk_req *)op;
	struct blk *b = r->blk;

	if (res == -EINVAL && !r->retried && b->fd_buffered >= 0 &&
	    (r->type == BLK_T_IN || r->type == BLK_T_OUT)) {
		r->retried = true;   /* O_DIRECT alignment: go through the page cache */
		submit(r);
		return;
	}
	if (r->type == BLK_T_IN || r->type == BLK_T_OUT) {
		if (res < 0 || (uint64_t)res != r->len) {
			finish(r, BLK_S_IOERR, 0);
			return;
		}
		finish(r, BLK_S_OK, r->type == BLK_T_IN ? (uint32_t)r->len : 0);
		return;
	}
	finish(r, res < 0 ? BLK_S_IOERR : BLK_S_OK, 0);
}

/* --- requests ---------------------------------------------------------------- */

static void submit(struct blk_req *r)
{
	struct blk *b = r->blk;
	int fd = r->retried ? b->fd_buffered : b->fd;
	struct io_uring_sqe *sqe = ioworker_sqe(b->vd->w, &r->op);

	if (!sqe) {
		finish(r, BLK_S_IOERR, 0);
		return;
	}
	switch (r->type) {
	case BLK_T_IN:
		io_uring_prep_readv(sqe, fd, r->seg, r->nseg, r->off);
		break;
	case BLK_T_OUT:
		io_uring_prep_writev(sqe, fd, r->seg, r->nseg, r->off);
		break;
	case BLK_T_FLUSH:
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		break;
	case BLK_T_DISCARD:
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					r->off, r->len);
		break;
	default: /* BLK_T_WRITE_ZEROES: zeroes whether or not unmap is hinted */
		io_uring_prep_fallocate(sqe, fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
					r->off, r->len);
		break;
	}
}

static bool in_disk(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	return sector <= b->sectors && bytes / SECTOR <= b->sectors - sector;
}

/* Readable data after the 16-byte header: trims the out segments in place. */
static void data_after_header(struct blk_req *r)
{
	struct virtq_elem *e = &r->elem;
	uint64_t skip = sizeof(struct blk_hdr);
	unsigned int i = 0;

	while (i < e->nr_out && skip >= e->iov[i].iov_len)
		skip -= e->iov[i++].iov_len;
	if (i < e->nr_out) {
		e->iov[i].iov_base = (uint8_t *)e->iov[i].iov_base + skip;
		e->iov[i].iov_len -= skip;
	}
	r->seg = &e->iov[i];
	r->nseg = e->nr_out - i;
	r->len = e->out_len - sizeof(struct blk_hdr);
}

static void handle_rw(struct blk_req *r, const struct blk_hdr *h)
{
	struct blk *b = r->blk;
	struct virtq_elem *e = &r->elem;

	if (r->type == BLK_T_IN) {
		/* Writable data, then the status byte: trim it off the last segment. */
		r->seg = &e->iov[e->nr_out];
		r->nseg = e->nr_in;
		e->iov[e->nr_out + e->nr_in - 1].iov_len--;
		r->len = e->in_len - 1;
		if (e->out_len != sizeof(*h)) {
			finish(r, BLK_S_IOERR, 0);
			return;
		}
	} else {
		if (b->readonly || e->in_len != 1) {
			finish(r, BLK_S_IOERR, 0);
			return;
		}
		data_after_header(r);
	}
	if (r->len % SECTOR || !in_disk(b, h->sector, r->len)) {
		finish(r, BLK_S_IOERR, 0);
		return;
	}
	r->off = h->sector * SECTOR;
	if (r->len == 0) {
		finish(r, BLK_S_OK, 0);
		return;
	}
	r->blk->batch[r->blk->nbatch++] = r;   /* submitted when the kick ends */
}

static void handle_zero(struct blk_req *r)
{
	struct blk *b = r->blk;
	struct blk_range rg;

	if (b->readonly || r->elem.in_len != 1 ||
	    r->elem.out_len != sizeof(struct blk_hdr) + sizeof(rg) ||
	    virtq_elem_read(&r->elem, sizeof(struct blk_hdr), &rg, sizeof(rg)) != sizeof(rg) ||
	    rg.num_sectors == 0 || rg.num_sectors > MAX_ZERO_SECTORS ||
	    !in_disk(b, rg.sector, (uint64_t)rg.num_sectors * SECTOR) ||
	    (r->type == BLK_T_DISCARD && rg.flags) || (rg.flags & ~1u)) {
		finish(r, BLK_S_IOERR, 0);
		return;
	}
	r->off = rg.sector * SECTOR;
	r->len = (uint64_t)rg.num_sectors * SECTOR;
	submit(r);
}

static void handle(struct blk_req *r)
{
	struct blk *b = r->blk;
	struct virtq_elem *e = &r->elem;
	const struct iovec *last;
	struct blk_hdr h;
	size_t n;

	r->status_gpa = UINT64_MAX;
	r->retried = false;
	r->merge_next = NULL;
	r->len = 0;
	/* 5.2.6: the status is the last byte the device may write. A chain
	 * of empty buffers has no segment at all (found by fuzz_blk). */
	if (e->nr_in == 0 || virtq_elem_read(e, 0, &h, sizeof(h)) != sizeof(h)) {
		finish(r, BLK_S_IOERR, 0);
		return;
	}
	last = &e->iov[e->nr_out + e->nr_in - 1];
	r->status_gpa = e->gpa[e->nr_out + e->nr_in - 1] + last->iov_len - 1;
	r->type = h.type;
	switch (h.type) {
	case BLK_T_IN:
	case BLK_T_OUT:
		handle_rw(r, &h);
		return;
	case BLK_T_FLUSH:
		submit(r);
		return;
	case BLK_T_GET_ID:
		n = virtq_elem_write(&b->vd->q[r->q].vq, e, 0, b->id, MIN(e->in_len - 1, ID_BYTES));
		finish(r, BLK_S_OK, (uint32_t)n);
		return;
	case BLK_T_DISCARD:
	case BLK_T_WRITE_ZEROES:
		handle_zero(r);
		return;
	default:
		finish(r, BLK_S_UNSUPP, 0);
		return;
	}
}

/* --- merging (I/O thread) -------------------------------------------------------- */

static void merge_free(struct blk *b, struct blk_merge *m)
{
	m->next_free = b->merge_free;
	b->merge_free = m;
}

static void merge_done(struct ioworker_op *op, int res)
{
	struct blk_merge *m = (struct blk_merge *)op;
	struct blk_req *r = m->first, *next;
	bool whole = res >= 0 && (uint64_t)res == m->len;

	merge_free(m->blk, m);
	for (; r; r = next) {
		next = r->merge_next;
		r->merge_next = NULL;
		if (whole)
			finish(r, BLK_S_OK, r->type == BLK_T_IN ? (uint32_t)r->len : 0);
		else
			submit(r);   /* short or failed: each alone, for its own status */
	}
}

static bool before(const struct blk_req *x, const struct blk_req *y)
{
	return x->type != y->type ? x->type < y->type : x->off < y->off;
}

/* Insertion sort: linear on the sequential streams merging is for, at
 * most a queue's worth (256) otherwise. Not qsort(): glibc's asks the
 * kernel for the machine's memory size (sysinfo) on larger arrays, which
 * the I/O thread's seccomp filter refuses. */
static void sort_batch(struct blk_req **v, unsigned int n)
{
	for (unsigned int i = 1; i < n; i++) {
		struct blk_req *r = v[i];
		unsigned int j = i;

		for (; j > 0 && before(r, v[j - 1]); j--)
			v[j] = v[j - 1];
		v[j] = r;
	}
}

/* Submits batch[i..j) (adjacent, same type) as one operation. */
static void submit_merged(struct blk *b, unsigned int i, unsigned int j)
{
	struct blk_merge *m = b->merge_free;
	struct io_uring_sqe *sqe;
	int fd = b->fd;

	if (j - i == 1 || !m) {
		for (; i < j; i++)
			submit(b->batch[i]);
		return;
	}
	b->merge_free = m->next_free;
	virtio_stat_add(&b->vd->stats.merged, j - i);
	m->first = b->batch[i];
	m->type = b->batch[i]->type;
	m->off = b->batch[i]->off;
	m->len = 0;
	m->nseg = 0;
	for (unsigned int k = i; k < j; k++) {
		struct blk_req *r = b->batch[k];

		memcpy(&m->iov[m->nseg], r->seg, r->nseg * sizeof(*r->seg));
		m->nseg += r->nseg;
		m->len += r->len;
		r->merge_next = k + 1 < j ? b->batch[k + 1] : NULL;
	}
	sqe = ioworker_sqe(b->vd->w, &m->op);
	if (!sqe) {
		m->len = UINT64_MAX;   /* never a whole result: each goes alone */
		merge_done(&m->op, -EBUSY);
		return;
	}
	if (m->type == BLK_T_IN)
		io_uring_prep_readv(sqe, fd, m->iov, m->nseg, m->off);
	else
		io_uring_prep_writev(sqe, fd, m->iov, m->nseg, m->off);
}

/* End of a kick: the batch in disk order, runs of adjacent requests
 * merged. Requests in flight have no order a driver may rely on (it waits
 * for a completion, or flushes, when it needs one), so sorting them
 * changes nothing it can see. */
static void flush_batch(struct blk *b)
{
	unsigned int n = b->nbatch, i = 0, j;

	b->nbatch = 0;
	sort_batch(b->batch, n);
	while (i < n) {
		uint64_t bytes = b->batch[i]->len;
		unsigned int segs = b->batch[i]->nseg;

		for (j = i + 1; j < n; j++) {
			const struct blk_req *p = b->batch[j - 1], *r = b->batch[j];

			if (r->type != p->type || p->off + p->len != r->off ||
			    segs + r->nseg > MERGE_MAX_SEGS || bytes + r->len > MERGE_MAX_BYTES)
				break;
			segs += r->nseg;
			bytes += r->len;
		}
		submit_merged(b, i, j);
		i = j;
	}
}

/* I/O thread: pops every available request on queue q and starts it. */
static void kick_queue(struct virtio_dev *vd, unsigned int q)
{
	struct blk *b = vd->priv;
	struct virtq *vq = &vd->q[q].vq;
	struct blk_req *r;
	int ret;

	while (virtio_live(vd)) {
		if (b->inflight[q] >= vq->size || !b->free) {
			if (!virtq_has_avail(vq))
				return;
			/* More chains than the queue holds: the driver reused
			 * heads it had not got back. */
			log_limited(&vd->rl, LOG_WARN, "%s: more requests in flight than queue entries",
				    vd->name);
			virtio_ring_error(vd);
			return;
		}
		r = b->free;
		ret = virtq_pop(vq, &r->elem);
		if (ret == -EAGAIN)
			return; /* the transport re-enables kicks before sleeping */
		if (ret) {
			virtio_ring_error(vd);
			return;
		}
		b->free = r->next_free;
		b->inflight[q]++;
		r->q = (uint16_t)q;
		handle(r);
	}
}

static void blk_kick(struct virtio_dev *vd, unsigned int q)
{
	kick_queue(vd, q);
	flush_batch(vd->priv);
}

static void blk_reset(struct virtio_dev *vd)
{
	(void)vd; /* nothing in flight (the transport waited); no state to clear */
}

static void blk_config_read(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len)
{
	struct blk *b = vd->priv;

	memcpy(data, b->config + off, len);
}

static void blk_destroy(struct virtio_dev *vd)
{
	struct blk *b = vd->priv;

	if (b->fd >= 0)
		close(b->fd);
	if (b->fd_buffered >= 0)
		close(b->fd_buffered);
	free(b->merges);
	free(b->reqs);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.kind = "virtio-blk",
	.device_id = 2,
	.config_size = CONFIG_SIZE,
	.config_read = blk_config_read,
	.kick = blk_kick,
	.reset = blk_reset,
	.destroy = blk_destroy,
};

/* --- create (main thread) ------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Configuration layout (5.2.4). */
static void build_config(struct blk *b, unsigned int queues)
{
	uint8_t *c = b->config;
	uint16_t nq = (uint16_t)queues;

	memcpy(c + 0, &b->sectors, 8);                  /* capacity */
	put32(c + 8, SIZE_MAX_BYTES);                   /* size_max */
	put32(c + 12, VIRTQ_MAX_SEGS - 2);              /* seg_max: header, status */
	put32(c + 20, SECTOR);                          /* blk_size */
	memcpy(c + 34, &nq, 2);                         /* num_queues */
	put32(c + 36, MAX_ZERO_SECTORS);                /* max_discard_sectors */
	put32(c + 40, 1);                               /* max_discard_seg */
	put32(c + 44, 1);                               /* discard_sector_alignment */
	put32(c + 48, MAX_ZERO_SECTORS);                /* max_write_zeroes_sectors */
	put32(c + 52, 1);                               /* max_write_zeroes_seg */
	c[56] = 0;                                      /* write_zeroes_may_unmap */
}

static int open_image(struct blk *b, const struct virtio_blk_config *cfg, char *err, size_t errlen)
{
	int flags = (cfg->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	uint64_t bytes;

	b->fd = open(cfg->path, flags | (cfg->direct ? O_DIRECT : 0));
	if (b->fd < 0) {
		snprintf(err, errlen, "--disk %s: %s", cfg->path, strerror(errno));
		return -errno;
	}
	if (cfg->direct) {
		b->fd_buffered = open(cfg->path, flags);
		if (b->fd_buffered < 0) {
			snprintf(err, errlen, "--disk %s: %s", cfg->path, strerror(errno));
			return -errno;
		}
	}
	if (fstat(b->fd, &st) < 0)
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(b->fd, BLKGETSIZE64, &bytes) < 0) {
			snprintf(err, errlen, "--disk %s: BLKGETSIZE64: %s", cfg->path, strerror(errno));
			return -errno;
		}
	} else if (S_ISREG(st.st_mode)) {
		bytes = (uint64_t)st.st_size;
	} else {
		snprintf(err, errlen, "--disk %s: not a regular file or block device", cfg->path);
		return -EINVAL;
	}
	b->sectors = bytes / SECTOR;
	return 0;
}

int virtio_blk_create(struct pci_host *host, struct guest_mem *mem,
		      const struct virtio_blk_config *cfg, struct virtio_dev **out,
		      char *err, size_t errlen)
{
	unsigned int queues = cfg->queues ? cfg->queues : 1, i;
	uint64_t features = (1ULL << BLK_F_SIZE_MAX) | (1ULL << BLK_F_SEG_MAX) |
			    (1ULL << BLK_F_BLK_SIZE) | (1ULL << BLK_F_FLUSH);
	struct blk *b;
	int ret;

	err[0] = '\0';
	if (queues > VIRTIO_BLK_MAX_QUEUES) {
		snprintf(err, errlen, "--disk %s: at most %d queues", cfg->path, VIRTIO_BLK_MAX_QUEUES);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->fd = b->fd_buffered = -1;
	b->readonly = cfg->readonly;
	ret = open_image(b, cfg, err, errlen);
	if (ret)
		goto fail;
	if (cfg->serial)
		memcpy(b->id, cfg->serial, MIN(strlen(cfg->serial), (size_t)ID_BYTES));
	build_config(b, queues);
	features |= cfg->readonly ? (1ULL << BLK_F_RO) :
		    (1ULL << BLK_F_DISCARD) | (1ULL << BLK_F_WRITE_ZEROES);
	if (queues > 1)
		features |= 1ULL << BLK_F_MQ;
	/* Touched lazily: large, but only requests in flight cost memory. */
	b->reqs = calloc((size_t)queues * VIRTQ_MAX_SIZE, sizeof(*b->reqs));
	if (!b->reqs) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = queues * VIRTQ_MAX_SIZE; i-- > 0;) {
		b->reqs[i].blk = b;
		b->reqs[i].op.done = req_done;
		req_free(b, &b->reqs[i]);
	}
	b->merges = calloc(MERGE_SLOTS, sizeof(*b->merges));
	if (!b->merges) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = MERGE_SLOTS; i-- > 0;) {
		b->merges[i].blk = b;
		b->merges[i].op.done = merge_done;
		merge_free(b, &b->merges[i]);
	}
	ret = virtio_pci_create(host, mem, &blk_ops, b, features, queues,
				2 * queues * VIRTQ_MAX_SIZE, &b->vd);
	if (ret) {
		snprintf(err, errlen, "--disk %s: cannot create the PCI function: %s", cfg->path,
			 strerror(-ret));
		goto fail;
	}
	/* poll=US (default 50): busy-poll after activity instead of sleeping
	 * at once; a sleeping thread's wake-up costs more than a cached 4 KiB
	 * read. On an oversubscribed host it takes CPU from the vCPUs. Without
	 * O_DIRECT, requests that do not complete at once (buffered writes,
	 * reads that miss the page cache) run on io_uring's worker threads:
	 * then the thread sleeps instead (with polling, 128 KiB sequential
	 * buffered writes ran at 44-50 K/s on two CPUs, without 59-73 K/s). */
	virtio_pci_set_poll(b->vd, cfg->poll_ns);
	virtio_pci_poll_when_idle(b->vd, !cfg->direct);
	*out = b->vd;
	return 0;
fail:
	if (b->fd >= 0)
		close(b->fd);
	if (b->fd_buffered >= 0)
		close(b->fd_buffered);
	free(b->merges);
	free(b->reqs);
	free(b);
	if (err[0] == '\0')
		snprintf(err, errlen, "--disk %s: %s", cfg->path, strerror(-ret));
	return ret;
}

/*
 * virtio-net (virtio 1.2, 5.1) on a tap, served by the device's io_uring
 * I/O thread. Queues: receiveq1, transmitq1, ... receiveqN, transmitqN,
 * controlq (index 2N with MQ, else 2).
 *
 * Receive: the tap is watched with a one-shot POLL_ADD only while the guest
 * has receive buffers; a frame is read with readv() straight into the first
 * chain (its overflow into a bounce buffer, spread over more chains with
 * MRG_RXBUF). When the guest has no buffers the tap is left alone (the
 * kernel queues, then drops and counts on the tap), the receive queue's
 * kick brings the thread back: nothing spins and nothing is dropped here.
 * A frame's chains are published together (virtq_fill/virtq_flush) after
 * num_buffers is written.
 *
 * Transmit: each chain is checked (header present and sane, features
 * negotiated, size) and written with writev(); a full tap (EAGAIN) keeps
 * the chain and waits for POLLOUT. A bad frame is counted and dropped; a
 * malformed ring sets NEEDS_RESET (virtq_pop): the VMM keeps running.
 *
 * Thread context: create/destroy/stats on the main thread; config reads on
 * vCPU threads under vd->lock (the MAC and status are immutable after
 * create); everything else on the I/O thread, which alone touches `pairs`
 * and `st` (the state record) after start.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net_priv.h"

#define CONFIG_SIZE 10            /* mac, status, max_virtqueue_pairs */
#define NET_S_LINK_UP 1
#define RX_BOUNCE (2 * NET_FRAME_MAX)

/* Control queue (5.1.6.5). */
#define CTRL_RX 0
#define CTRL_RX_PROMISC 0
#define CTRL_RX_ALLMULTI 1
#define CTRL_MQ 4
#define CTRL_MQ_VQ_PAIRS_SET 0
#define CTRL_OK 0
#define CTRL_ERR 1

struct net;

struct net_pair {
	unsigned int idx;
	int fd;
	bool attached;               /* to the multi-queue tap */
	/* Receive, I/O thread. */
	bool rx_wait;                /* waiting for guest buffers */
	bool have_first;             /* `first` popped, frame not published */
	uint16_t nbufs;              /* chains filled for the frame in flight */
	uint32_t frame_len;          /* header + frame */
	uint32_t pend_off, pend_len; /* bounce bytes still to place */
	uint8_t *bounce;
	struct virtq_elem first, more;
	/* Transmit, I/O thread. */
	bool tx_blocked;             /* `tx` holds a chain the tap refused */
	struct virtq_elem tx;
};

struct net {
	struct virtio_dev *vd;
	struct net_state st;
	bool owns_fds;
	bool applied;                /* offloads set for this driver session */
	uint32_t tun_ok;             /* offloads the tap accepts */
	unsigned int nq;             /* virtqueues */
	struct net_pair pairs[VIRTIO_NET_MAX_PAIRS];
	struct virtio_net_stats stats;
};

static void count(uint64_t *c, uint64_t n)
{
	virtio_stat_add(c, n);
}

/* ioworker ids of a pair's tap polls (the queues use 0..nq-1). */
static unsigned int id_in(const struct net *n, const struct net_pair *p)
{
	return n->nq + 2 * p->idx;
}

static bool mq(const struct net *n)
{
	return virtio_has_feature(n->vd, NET_F_MQ);
}

static unsigned int ctrl_index(const struct net *n)
{
	return mq(n) ? 2u * n->st.max_pairs : 2u;
}

/* --- offloads and queue pairs (I/O thread) -------------------------------- */

static void set_pairs(struct net *n, unsigned int k)
{
	unsigned int i;

	n->st.active_pairs = (uint16_t)k;
	if (n->st.max_pairs < 2)
		return;
	/* A detached queue gets no frames: the tap steers to attached ones. */
	for (i = 1; i < n->st.max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];
		bool want = i < k;

		if (p->attached == want)
			continue;
		if (net_tap_attach(p->fd, want))
			log_warn("virtio-net: TUNSETQUEUE %s queue %u refused", want ? "attach" : "detach", i);
		else
			p->attached = want;
	}
}

/* First activity after DRIVER_OK: the negotiated guest offloads. */
static void apply(struct net *n)
{
	uint32_t t;

	if (n->applied)
		return;
	n->applied = true;
	t = net_tap_offloads_for(n->vd->driver_features) & n->tun_ok;
	if (net_tap_set_offloads(n->pairs[0].fd, t)) {
		log_limited(&n->vd->rl, LOG_WARN, "%s: TUNSETOFFLOAD 0x%x refused", n->vd->name, t);
		t = 0;
	}
	n->st.tun_offloads = t;
}

/* --- receive (I/O thread) -------------------------------------------------- */

static void mark_in(struct guest_mem *mem, const struct virtq_elem *e, uint64_t len)
{
	unsigned int i;

	for (i = e->nr_out; i < e->nr_out + e->nr_in && len; i++) {
		uint64_t k = MIN(len, e->iov[i].iov_len);

		mem_mark_dirty(mem, e->gpa[i], k);
		len -= k;
	}
}

static void rx_publish(struct net *n, struct net_pair *p, unsigned int q)
{
	struct virtq *vq = &n->vd->q[q].vq;
	uint16_t nb = p->nbufs;

	/* 5.1.6.4: num_buffers is in the first buffer's header. */
	if (virtq_elem_write(vq, &p->first, 10, &nb, 2) != 2)
		count(&n->stats.rx_errors, 1);
	virtq_flush(vq, p->nbufs);
	n->vd->q[q].notify_pending = true;
	count(&n->vd->stats.requests, p->nbufs);
	count(&n->vd->stats.read_bytes, p->frame_len);
	count(&n->stats.rx_packets, 1);
	count(&n->stats.rx_bytes, p->frame_len - NET_HDR_LEN);
	p->have_first = false;
	p->nbufs = 0;
}

/* Out of buffers: stop reading the tap until the receive queue is kicked. */
static void rx_wait(struct net *n, struct net_pair *p)
{
	if (!p->rx_wait)
		count(&n->stats.rx_stalls, 1);
	p->rx_wait = true;
	ioworker_hold(n->vd->w, id_in(n, p), true);
}

/* Reads one frame into `first` and the bounce buffer. Returns 1 (a frame),
 * 0 (tap empty: POLLIN armed) or -1 (a frame dropped, go on). */
static int rx_read(struct net *n, struct net_pair *p, unsigned int q)
{
	struct virtq_elem *e = &p->first;
	struct iovec iov[VIRTQ_MAX_SEGS + 1];
	unsigned int k = e->nr_in;
	ssize_t r;

	memcpy(iov, &e->iov[e->nr_out], k * sizeof(iov[0]));
	iov[k].iov_base = p->bounce;
	iov[k].iov_len = RX_BOUNCE;
	r = readv(p->fd, iov, (int)k + 1);
	if (r < 0) {
		if (errno != EAGAIN && errno != EINTR)
			count(&n->stats.rx_errors, 1);
		/* Idle: hand `first` back, so no chain is held while the thread
		 * sleeps (a pause or a save sees a plain ring). It is the last
		 * chain popped: `more` is only popped with a frame in flight. */
		virtq_unpop(&n->vd->q[q].vq);
		p->have_first = false;
		p->rx_wait = false;
		ioworker_hold(n->vd->w, id_in(n, p), false);
		return 0;
	}
	if ((uint64_t)r < NET_HDR_LEN + 14 || (uint64_t)r >= e->in_len + RX_BOUNCE) {
		count(&n->stats.rx_errors, 1);   /* runt, or truncated */
		return -1;
	}
	p->frame_len = (uint32_t)r;
	if ((uint64_t)r > e->in_len && !virtio_has_feature(n->vd, NET_F_MRG_RXBUF)) {
		count(&n->stats.rx_drops, 1);    /* 5.1.6.3.1: buffers too small */
		return -1;
	}
	p->pend_off = 0;
	p->pend_len = (uint64_t)r > e->in_len ? (uint32_t)(r - e->in_len) : 0;
	mark_in(n->vd->mem, e, (uint64_t)r - p->pend_len);
	virtq_fill(&n->vd->q[q].vq, 0, e->head, (uint32_t)(r - p->pend_len));
	p->nbufs = 1;
	return 1;
}

/* Pops the chain a frame starts in. Returns 0, -EAGAIN or -EIO. */
static int rx_first(struct net *n, struct net_pair *p, unsigned int q)
{
	struct virtq *vq = &n->vd->q[q].vq;
	int ret;

	for (;;) {
		ret = virtq_pop(vq, &p->first);
		if (ret)
			return ret;
		if (p->first.nr_out == 0 && p->first.in_len >= NET_HDR_LEN)
			break;
		/* Hostile: no room for the header, or readable buffers. */
		count(&n->stats.rx_errors, 1);
		log_limited(&n->vd->rl, LOG_WARN, "%s: receive chain %u of %llu bytes refused",
			    n->vd->name, p->first.head, (unsigned long long)p->first.in_len);
		virtq_fill(vq, 0, p->first.head, 0);
		virtq_flush(vq, 1);
		n->vd->q[q].notify_pending = true;
	}
	p->have_first = true;
	return 0;
}

static void rx_run(struct net *n, struct net_pair *p)
{
	unsigned int q = 2 * p->idx;
	struct virtq *vq = &n->vd->q[q].vq;
	int ret;

	while (virtio_live(n->vd) && n->vd->q[q].enabled) {
		if (!p->have_first) {
			ret = rx_first(n, p, q);
			if (ret == -EAGAIN) {
				rx_wait(n, p);
				return;
			}
			if (ret) {
				virtio_ring_error(n->vd);
				return;
			}
		}
		if (p->nbufs == 0) {
			ret = rx_read(n, p, q);
			if (ret == 0)
				return;
			if (ret < 0)
				continue;   /* dropped: `first` takes the next frame */
		}
		while (p->pend_len) {
			size_t c;

			ret = virtq_pop(vq, &p->more);
			if (ret == -EAGAIN) {
				rx_wait(n, p);
				return;
			}
			if (ret) {
				virtio_ring_error(n->vd);
				return;
			}
			c = virtq_elem_write(vq, &p->more, 0, p->bounce + p->pend_off, p->pend_len);
			if (c == 0)
				count(&n->stats.rx_errors, 1);
			virtq_fill(vq, p->nbufs++, p->more.head, (uint32_t)c);
			p->pend_off += (uint32_t)c;
			p->pend_len -= (uint32_t)c;
		}
		rx_publish(n, p, q);
	}
	/* Not live or queue off: no reading until the next kick. */
	ioworker_hold(n->vd->w, id_in(n, p), true);
}

/* --- transmit (I/O thread) -------------------------------------------------- */

/* 5.1.6.2: a frame the driver may send with the features it negotiated.
 * The kernel checks the header again (the guest may change it meanwhile). */
static bool tx_ok(struct net *n, const struct virtq_elem *e)
{
	struct virtio_dev *vd = n->vd;
	uint64_t frame = e->out_len - NET_HDR_LEN;
	struct net_hdr h;
	unsigned int gso;

	if (e->out_len < NET_HDR_LEN + 14 || frame > NET_FRAME_MAX ||
	    virtq_elem_read(e, 0, &h, sizeof(h)) != sizeof(h))
		return false;
	if (h.flags & ~NET_HDR_F_NEEDS_CSUM)
		return false;
	if ((h.flags & NET_HDR_F_NEEDS_CSUM) &&
	    (!virtio_has_feature(vd, NET_F_CSUM) ||
	     (uint64_t)h.csum_start + h.csum_offset + 2 > frame))
		return false;
	gso = h.gso_type & ~NET_GSO_ECN;
	if ((h.gso_type & NET_GSO_ECN) && !virtio_has_feature(vd, NET_F_HOST_ECN))
		return false;
	if (gso == NET_GSO_NONE)
		return !(h.gso_type & NET_GSO_ECN);
	if (!(h.flags & NET_HDR_F_NEEDS_CSUM) || h.gso_size == 0 || h.hdr_len > frame)
		return false;
	return (gso == NET_GSO_TCPV4 && virtio_has_feature(vd, NET_F_HOST_TSO4)) ||
	       (gso == NET_GSO_TCPV6 && virtio_has_feature(vd, NET_F_HOST_TSO6)) ||
	       (gso == NET_GSO_UDP && virtio_has_feature(vd, NET_F_HOST_UFO));
}

static void tx_run(struct net *n, struct net_pair *p)
{
	unsigned int q = 2 * p->idx + 1;
	struct virtq *vq = &n->vd->q[q].vq;
	ssize_t r;
	int ret;

	while (virtio_live(n->vd) && n->vd->q[q].enabled) {
		if (!p->tx_blocked) {
			ret = virtq_pop(vq, &p->tx);
			if (ret == -EAGAIN)
				return;
			if (ret) {
				virtio_ring_error(n->vd);
				return;
			}
			if (!tx_ok(n, &p->tx)) {
				count(&n->stats.tx_drops, 1);
				count(&n->vd->stats.errors, 1);
				log_limited(&n->vd->rl, LOG_WARN, "%s: malformed transmit frame (%llu bytes) "
					    "dropped", n->vd->name, (unsigned long long)p->tx.out_len);
				virtio_complete(n->vd, q, &p->tx, 0);
				continue;
			}
		}
		r = writev(p->fd, p->tx.iov, p->tx.nr_out);
		if (r < 0 && errno == EAGAIN) {
			if (!p->tx_blocked)
				count(&n->stats.tx_stalls, 1);
			p->tx_blocked = true;
			ioworker_hold(n->vd->w, id_in(n, p) + 1, false);
			return;
		}
		p->tx_blocked = false;
		if (r < 0) {
			count(&n->stats.tx_errors, 1);
			count(&n->vd->stats.errors, 1);
		} else {
			count(&n->stats.tx_packets, 1);
			count(&n->stats.tx_bytes, p->tx.out_len - NET_HDR_LEN);
			count(&n->vd->stats.write_bytes, p->tx.out_len);
		}
		virtio_complete(n->vd, q, &p->tx, 0);
	}
}

/* --- control queue (I/O thread) ------------------------------------------- */

static uint8_t ctrl_do(struct net *n, uint8_t cls, uint8_t cmd, const uint8_t *d, uint64_t len)
{
	uint16_t k;

	if (cls == CTRL_RX && virtio_has_feature(n->vd, NET_F_CTRL_RX) && len == 1 &&
	    (cmd == CTRL_RX_PROMISC || cmd == CTRL_RX_ALLMULTI)) {
		if (cmd == CTRL_RX_PROMISC)
			n->st.promisc = d[0] != 0;
		else
			n->st.allmulti = d[0] != 0;
		return CTRL_OK;
	}
	if (cls == CTRL_MQ && cmd == CTRL_MQ_VQ_PAIRS_SET && mq(n) && len == 2) {
		memcpy(&k, d, 2);
		if (k < 1 || k > n->st.max_pairs)
			return CTRL_ERR;
		set_pairs(n, k);
		return CTRL_OK;
	}
	return CTRL_ERR;
}

static void ctrl_run(struct net *n, unsigned int q)
{
	struct virtq *vq = &n->vd->q[q].vq;
	struct virtq_elem *e = &n->pairs[0].more;   /* receive never runs meanwhile */
	uint8_t buf[2 + 8], ack;
	int ret;

	while (virtio_live(n->vd) && n->vd->q[q].enabled) {
		ret = virtq_pop(vq, e);
		if (ret == -EAGAIN)
			return;
		if (ret) {
			virtio_ring_error(n->vd);
			return;
		}
		count(&n->stats.ctrl_cmds, 1);
		ack = CTRL_ERR;
		if (e->in_len >= 1 && e->out_len >= 2 && e->out_len <= sizeof(buf) &&
		    virtq_elem_read(e, 0, buf, e->out_len) == e->out_len)
			ack = ctrl_do(n, buf[0], buf[1], buf + 2, e->out_len - 2);
		if (ack != CTRL_OK)
			count(&n->stats.ctrl_errors, 1);
		if (e->in_len >= 1)
			virtq_elem_write(vq, e, 0, &ack, 1);
		virtio_complete(n->vd, q, e, e->in_len >= 1 ? 1 : 0);
	}
}

/* --- transport callbacks ---------------------------------------------------- */

static void net_kick(struct virtio_dev *vd, unsigned int q)
{
	struct net *n = vd->priv;

	apply(n);
	if (q == ctrl_index(n) && virtio_has_feature(vd, NET_F_CTRL_VQ)) {
		ctrl_run(n, q);
		return;
	}
	if (q >= 2u * (mq(n) ? n->st.max_pairs : 1u))
		return;
	if (q % 2)
		tx_run(n, &n->pairs[q / 2]);
	else
		rx_run(n, &n->pairs[q / 2]);
}

static void net_on_fd(struct virtio_dev *vd, unsigned int id)
{
	struct net *n = vd->priv;
	struct net_pair *p = &n->pairs[(id - n->nq) / 2];
	bool out = (id - n->nq) % 2;

	if (out)
		ioworker_hold(vd->w, id, true);   /* one-shot: until the next EAGAIN */
	if (!virtio_live(vd)) {
		/* Not ready: leave the frames in the tap until DRIVER_OK's kick. */
		ioworker_hold(vd->w, id, true);
		return;
	}
	apply(n);
	if (out)
		tx_run(n, p);
	else
		rx_run(n, p);
}

static bool net_queue_busy(struct virtio_dev *vd, unsigned int q)
{
	struct net *n = vd->priv;

	if (q == ctrl_index(n) || q >= 2u * n->st.max_pairs)
		return true;
	return q % 2 ? !n->pairs[q / 2].tx_blocked : n->pairs[q / 2].rx_wait;
}

static void net_reset(struct virtio_dev *vd)
{
	struct net *n = vd->priv;
	unsigned int i;

	for (i = 0; i < n->st.max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		/* Popped chains are forgotten with the rings; frames partly read
		 * are lost (the driver reset its receive queue). */
		p->have_first = p->tx_blocked = p->rx_wait = false;
		p->nbufs = 0;
		p->pend_len = 0;
		ioworker_hold(vd->w, id_in(n, p), true);
		ioworker_hold(vd->w, id_in(n, p) + 1, true);
	}
	set_pairs(n, 1);
	n->st.promisc = n->st.allmulti = 0;
	if (n->applied && net_tap_set_offloads(n->pairs[0].fd, 0) == 0)
		n->st.tun_offloads = 0;
	n->applied = false;
}

static void net_config_read(struct virtio_dev *vd, uint32_t off, uint8_t *data, uint32_t len)
{
	struct net *n = vd->priv;
	uint8_t c[CONFIG_SIZE];

	/* 5.1.4: mac, status, max_virtqueue_pairs (all immutable). */
	memcpy(c, n->st.mac, 6);
	memcpy(c + 6, &n->st.status, 2);
	memcpy(c + 8, &n->st.max_pairs, 2);
	memcpy(data, c + off, len);
}

static void net_destroy(struct virtio_dev *vd)
{
	struct net *n = vd->priv;
	unsigned int i;

	for (i = 0; i < n->st.max_pairs; i++) {
		if (n->owns_fds && n->pairs[i].fd >= 0)
			close(n->pairs[i].fd);
		free(n->pairs[i].bounce);
	}
	free(n);
}

/* --- save/load (migration thread, I/O thread paused) ------------------------ */

/*
 * Record, little-endian, version 1 (24 bytes): u8 version, u8 flags (bit 0
 * promiscuous, bit 1 all-multicast), MAC[6], u16 max_pairs, u16
 * active_pairs, u32 bitmask of pairs whose transmit queue holds a chain the
 * tap refused (the last one popped: the destination pops it again and sends
 * it, so a frame the guest queued during a full tap is not lost), then per
 * pair (4) a u16: receive chains popped for a frame still waiting for more
 * buffers (MRG_RXBUF). The destination gives those chains back to the ring
 * (the last ones popped) and the frame is dropped, as a full ring would
 * have: the guest loses one frame, never a buffer. Offloads
 * are not carried: they follow from the negotiated features, applied again
 * at the destination's first activity. The MAC is carried because the
 * destination may have made up another one.
 */
#define NET_STATE_VERSION 1
#define NET_STATE_BYTES 24

static size_t net_state_size(const struct virtio_dev *vd)
{
	(void)vd;
	return NET_STATE_BYTES;
}

static void net_state_save(struct virtio_dev *vd, uint8_t *buf)
{
	struct net *n = vd->priv;
	uint32_t blocked = 0;
	unsigned int i;

	for (i = 0; i < n->st.max_pairs; i++)
		blocked |= n->pairs[i].tx_blocked ? 1u << i : 0;
	memset(buf, 0, NET_STATE_BYTES);
	buf[0] = NET_STATE_VERSION;
	buf[1] = (uint8_t)((n->st.promisc ? 1 : 0) | (n->st.allmulti ? 2 : 0));
	memcpy(buf + 2, n->st.mac, 6);
	buf[8] = (uint8_t)n->st.max_pairs;
	buf[9] = (uint8_t)(n->st.max_pairs >> 8);
	buf[10] = (uint8_t)n->st.active_pairs;
	buf[11] = (uint8_t)(n->st.active_pairs >> 8);
	buf[12] = (uint8_t)blocked;
	buf[13] = (uint8_t)(blocked >> 8);
	buf[14] = (uint8_t)(blocked >> 16);
	buf[15] = (uint8_t)(blocked >> 24);
	for (i = 0; i < n->st.max_pairs; i++) {
		uint16_t held = n->pairs[i].have_first ? n->pairs[i].nbufs : 0;

		buf[16 + 2 * i] = (uint8_t)held;
		buf[17 + 2 * i] = (uint8_t)(held >> 8);
	}
}

static int net_state_load(struct virtio_dev *vd, const uint8_t *buf, size_t len, char *err,
			  size_t errlen)
{
	struct net *n = vd->priv;
	uint16_t max_pairs, active;
	uint32_t blocked;
	unsigned int i;

	if (len != NET_STATE_BYTES || buf[0] != NET_STATE_VERSION) {
		snprintf(err, errlen, "%s: net state of %zu bytes, version %u (expected %u, %u)",
			 vd->name, len, len ? buf[0] : 0, NET_STATE_BYTES, NET_STATE_VERSION);
		return -EINVAL;
	}
	max_pairs = (uint16_t)(buf[8] | buf[9] << 8);
	active = (uint16_t)(buf[10] | buf[11] << 8);
	blocked = (uint32_t)buf[12] | (uint32_t)buf[13] << 8 | (uint32_t)buf[14] << 16 |
		  (uint32_t)buf[15] << 24;
	if (max_pairs != n->st.max_pairs) {
		snprintf(err, errlen, "%s: the source has %u queue pairs, this one %u (give the "
			 "destination the same queues=)", vd->name, max_pairs, n->st.max_pairs);
		return -EINVAL;
	}
	if (active < 1 || active > max_pairs || (active > 1 && !mq(n)) ||
	    (buf[1] & ~3u) || (blocked >> max_pairs)) {
		snprintf(err, errlen, "%s: inconsistent net state (%u of %u pairs active, flags "
			 "0x%x, blocked 0x%x)", vd->name, active, max_pairs, buf[1], blocked);
		return -EINVAL;
	}
	for (i = 0; i < max_pairs; i++) {
		struct virtio_queue *rq = &vd->q[2 * i], *tq = &vd->q[2 * i + 1];
		uint16_t held = (uint16_t)(buf[16 + 2 * i] | buf[17 + 2 * i] << 8);

		if (((blocked & (1u << i)) && (!tq->enabled || !tq->vq.ready)) ||
		    (held && (!rq->enabled || !rq->vq.ready || held > rq->vq.size))) {
			snprintf(err, errlen, "%s: held chains on a queue that is off or smaller",
				 vd->name);
			return -EINVAL;
		}
	}
	for (i = 0; i < max_pairs; i++) {
		uint16_t held = (uint16_t)(buf[16 + 2 * i] | buf[17 + 2 * i] << 8);

		if (blocked & (1u << i))
			virtq_unpop(&vd->q[2 * i + 1].vq); /* popped again, sent here */
		while (held--)
			virtq_unpop(&vd->q[2 * i].vq);     /* given back, frame dropped */
	}
	memcpy(n->st.mac, buf + 2, 6);
	n->st.promisc = buf[1] & 1;
	n->st.allmulti = (buf[1] >> 1) & 1;
	set_pairs(n, active);
	n->applied = false;
	return 0;
}

static const struct virtio_dev_ops net_ops = {
	.kind = "virtio-net",
	.device_id = 1,
	.config_size = CONFIG_SIZE,
	.config_read = net_config_read,
	.kick = net_kick,
	.reset = net_reset,
	.on_fd = net_on_fd,
	.queue_busy = net_queue_busy,
	.destroy = net_destroy,
	.state_size = net_state_size,
	.state_save = net_state_save,
	.state_load = net_state_load,
};

void virtio_net_stats(const struct virtio_dev *vd, struct virtio_net_stats *out)
{
	const struct net *n = vd->priv;
	const uint64_t *src = (const uint64_t *)&n->stats;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (vd->ops != &net_ops)
		return;
	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

/* --- create (main thread) ---------------------------------------------------- */

static uint64_t features_for(const struct net *n)
{
	uint64_t f = (1ULL << NET_F_CSUM) | (1ULL << NET_F_GUEST_CSUM) | (1ULL << NET_F_MAC) |
		     (1ULL << NET_F_HOST_TSO4) | (1ULL << NET_F_HOST_TSO6) |
		     (1ULL << NET_F_HOST_ECN) | (1ULL << NET_F_MRG_RXBUF) |
		     (1ULL << NET_F_STATUS) | (1ULL << NET_F_CTRL_VQ) | (1ULL << NET_F_CTRL_RX);

	if (n->tun_ok & 0x02 /* TUN_F_TSO4 */)
		f |= 1ULL << NET_F_GUEST_TSO4;
	if (n->tun_ok & 0x04 /* TUN_F_TSO6 */)
		f |= 1ULL << NET_F_GUEST_TSO6;
	if (n->tun_ok & 0x08 /* TUN_F_TSO_ECN */)
		f |= 1ULL << NET_F_GUEST_ECN;
	if (n->tun_ok & 0x10 /* TUN_F_UFO */)
		f |= (1ULL << NET_F_GUEST_UFO) | (1ULL << NET_F_HOST_UFO);
	if (n->st.max_pairs > 1)
		f |= 1ULL << NET_F_MQ;
	return f;
}

static void fill_mac(struct net *n, const uint8_t *mac)
{
	static const uint8_t zero[6];

	if (memcmp(mac, zero, 6)) {
		memcpy(n->st.mac, mac, 6);
		return;
	}
	if (getrandom(n->st.mac, 6, 0) != 6)
		memcpy(n->st.mac, "\x02\x00\x5b\x00\x00\x01", 6);
	/* Locally administered, unicast. */
	n->st.mac[0] = (uint8_t)((n->st.mac[0] & 0xfe) | 0x02);
}

static int add_polls(struct net *n)
{
	unsigned int i;
	int ret;

	for (i = 0; i < n->st.max_pairs; i++) {
		struct net_pair *p = &n->pairs[i];

		ret = ioworker_add_poll(n->vd->w, p->fd, POLLIN, id_in(n, p), true);
		if (!ret)
			ret = ioworker_add_poll(n->vd->w, p->fd, POLLOUT, id_in(n, p) + 1, true);
		if (ret)
			return ret;
	}
	return 0;
}

int virtio_net_create(struct pci_host *host, struct guest_mem *mem,
		      const struct virtio_net_config *cfg, struct virtio_dev **out,
		      char *err, size_t errlen)
{
	unsigned int pairs = cfg->queues ? cfg->queues : 1, i;
	int fds[VIRTIO_NET_MAX_PAIRS];
	struct net *n;
	int ret;

	err[0] = '\0';
	if (pairs > VIRTIO_NET_MAX_PAIRS) {
		snprintf(err, errlen, "--net: at most %d queue pairs", VIRTIO_NET_MAX_PAIRS);
		return -EINVAL;
	}
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (i = 0; i < VIRTIO_NET_MAX_PAIRS; i++)
		fds[i] = -1;
	n->owns_fds = cfg->tap_fd < 0;
	n->st.max_pairs = (uint16_t)pairs;
	n->st.active_pairs = 1;
	n->st.status = NET_S_LINK_UP;
	fill_mac(n, cfg->mac);
	ret = net_tap_open(cfg->tap, cfg->tap_fd, pairs, fds, err, errlen);
	for (i = 0; i < pairs; i++) {
		n->pairs[i].idx = i;
		n->pairs[i].fd = fds[i];
		n->pairs[i].attached = true;
		n->pairs[i].bounce = malloc(RX_BOUNCE);
		if (!n->pairs[i].bounce && !ret)
			ret = -ENOMEM;
	}
	if (ret)
		goto fail;
	n->tun_ok = net_tap_probe_offloads(fds[0]);
	set_pairs(n, 1);
	n->nq = 2 * pairs + 1;
	ret = virtio_pci_create(host, mem, &net_ops, n, features_for(n), n->nq, 64, &n->vd);
	if (ret) {
		snprintf(err, errlen, "--net: cannot create the PCI function: %s", strerror(-ret));
		goto fail;
	}
	virtio_pci_set_poll(n->vd, cfg->poll_ns);
	ret = add_polls(n);
	if (ret) {
		snprintf(err, errlen, "--net: cannot watch the tap: %s", strerror(-ret));
		virtio_dev_destroy(n->vd);   /* frees n and closes the taps */
		return ret;
	}
	*out = n->vd;
	return 0;
fail:
	n->vd = NULL;
	for (i = 0; i < pairs; i++) {
		if (n->owns_fds && n->pairs[i].fd >= 0)
			close(n->pairs[i].fd);
		free(n->pairs[i].bounce);
	}
	free(n);
	if (err[0] == '\0')
		snprintf(err, errlen, "--net: %s", strerror(-ret));
	return ret;
}

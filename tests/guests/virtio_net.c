/*
 * virtio-net through the ring-3 driver. The host side (tests/virtio/
 * net_test.py, bench/net/run.py) owns the tap; frames of ethertype 0x88b5
 * carry a one-byte kind and a sequence number, then pattern bytes.
 *
 * Command line: mac=HEX12 (expected MAC), mode=test|tx|rx, and for the
 * benchmark modes size=BYTES (frame; > 1514 sends TSO frames), secs=N.
 *
 * mode=test, in order:
 *   1. config space (MAC, link up), features, queues; a 4-byte receive
 *      buffer is posted first (hostile: shorter than the header);
 *   2. 8 plain frames, a NEEDS_CSUM UDP frame, a 3000-byte TSO frame, two
 *      malformed frames (chain shorter than the header, unknown gso_type),
 *      then END1: the host checks what reached the tap;
 *   3. receives the host's frames (plain, and one GSO frame that needs
 *      MRG_RXBUF) and checks them byte for byte;
 *   4. control queue: PROMISC acked OK, an MQ command refused;
 *   5. a malformed transmit ring: NEEDS_RESET; reset, re-initialise, send
 *      AFTER; wait for the host's DONE frame; pass.
 */
#include "virtio_drv.h"

#define VIRTIO_ID_NET 1
#define F_CSUM (1ULL << 0)
#define F_GUEST_CSUM (1ULL << 1)
#define F_MAC (1ULL << 5)
#define F_GUEST_TSO4 (1ULL << 7)
#define F_HOST_TSO4 (1ULL << 11)
#define F_MRG_RXBUF (1ULL << 15)
#define F_STATUS (1ULL << 16)
#define F_CTRL_VQ (1ULL << 17)
#define F_CTRL_RX (1ULL << 18)

#define RING_MEM 0x1000000ULL
#define RXBUF_MEM 0x2000000ULL
#define TXBUF_MEM 0x3000000ULL
#define CTRL_MEM 0x4000000ULL
#define QSIZE 256
#define RXBUF 2048
#define NRX 128
#define TXSLOTS 64
#define TXSLOT_SIZE 0x11000
#define ETYPE 0x88b5

enum { K_PLAIN = 1, K_CSUM, K_TSO, K_END1, K_BAD, K_AFTER, K_RX, K_RXGSO, K_DONE, K_BENCH };

struct hdr {
	uint8_t flags, gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
};

struct net {
	struct vdev d;
	struct vq rx, tx, ctrl;
	uint8_t mac[6];
	unsigned tx_next, tx_inflight;
};

static uint8_t pat(unsigned seq, unsigned i)
{
	return (uint8_t)(seq * 31 + i * 7 + (i >> 8));
}

static uint8_t *rxbuf(unsigned i)
{
	return (uint8_t *)(uintptr_t)(RXBUF_MEM + (uint64_t)i * RXBUF);
}

static void post_rx(struct net *n, unsigned i, bool kick)
{
	n->rx.desc[i] = (struct vdesc){ (uint64_t)(uintptr_t)rxbuf(i), RXBUF, VD_F_WRITE, 0 };
	vq_publish_nokick(&n->rx, (uint16_t)i);
	if (kick)
		vq_kick(&n->rx);
}

static uint64_t features_wanted(void)
{
	return VF_VERSION_1 | VF_EVENT_IDX | F_MAC | F_STATUS | F_CSUM | F_GUEST_CSUM |
	       F_GUEST_TSO4 | F_HOST_TSO4 | F_MRG_RXBUF | F_CTRL_VQ | F_CTRL_RX;
}

static void net_init(struct net *n, bool hostile_rx, bool strict)
{
	if (!(vdev_init(&n->d, features_wanted()) & VS_FEATURES_OK))
		rt_fail("virtio-net refused its own features");
	if (strict && (n->d.features & features_wanted()) != features_wanted())
		rt_fail("virtio-net: features 0x%llx lack some of 0x%llx",
			(unsigned long long)n->d.features, (unsigned long long)features_wanted());
	if (!vq_setup(&n->d, &n->rx, 0, QSIZE, RING_MEM) ||
	    !vq_setup(&n->d, &n->tx, 1, QSIZE, RING_MEM + 0x10000) ||
	    !vq_setup(&n->d, &n->ctrl, 2, 16, RING_MEM + 0x20000))
		rt_fail("virtio-net: a queue was refused");
	/* Buffers before DRIVER_OK (as Linux does); no kick needed. */
	for (unsigned i = 0; i < NRX; i++) {
		if (i == 0 && hostile_rx) {
			n->rx.desc[0] = (struct vdesc){ (uint64_t)(uintptr_t)rxbuf(0), 4, VD_F_WRITE, 0 };
			vq_publish_nokick(&n->rx, 0);
			continue;
		}
		post_rx(n, i, false);
	}
	n->tx_next = n->tx_inflight = 0;
	vdev_driver_ok(&n->d);
}

static void reclaim_tx(struct net *n, bool wait)
{
	uint32_t id, len;

	while (n->tx_inflight) {
		if (!vq_poll(&n->tx, &id, &len)) {
			if (!wait)
				return;
			if (!vq_wait(&n->tx, &id, &len, 5000))
				rt_fail("virtio-net: transmit not completed");
		}
		n->tx_inflight--;
		if (!wait)
			continue;
	}
}

/* Frame skeleton: broadcast, our MAC, ETYPE, kind, seq (be32). */
static unsigned frame_init(struct net *n, uint8_t *f, uint8_t kind, uint32_t seq, unsigned len)
{
	memset(f, 0xff, 6);
	memcpy(f + 6, n->mac, 6);
	f[12] = ETYPE >> 8;
	f[13] = ETYPE & 0xff;
	f[14] = kind;
	f[15] = (uint8_t)(seq >> 24);
	f[16] = (uint8_t)(seq >> 16);
	f[17] = (uint8_t)(seq >> 8);
	f[18] = (uint8_t)seq;
	for (unsigned i = 19; i < len; i++)
		f[i] = pat(seq, i);
	return len;
}

/* A transmit slot: header descriptor, then the frame descriptor. */
static uint8_t *tx_slot(unsigned s)
{
	return (uint8_t *)(uintptr_t)(TXBUF_MEM + (uint64_t)s * TXSLOT_SIZE);
}

static void send_raw(struct net *n, const struct hdr *h, unsigned hlen, unsigned flen, bool kick)
{
	unsigned s = n->tx_next++ % TXSLOTS;
	uint8_t *b = tx_slot(s);

	while (n->tx_inflight >= TXSLOTS) {
		reclaim_tx(n, false);
		rt_pause();
	}
	memcpy(b, h, sizeof(*h));
	n->tx.desc[2 * s] = (struct vdesc){ (uint64_t)(uintptr_t)b, hlen, VD_F_NEXT, (uint16_t)(2 * s + 1) };
	n->tx.desc[2 * s + 1] = (struct vdesc){ (uint64_t)(uintptr_t)(b + 64), flen, 0, 0 };
	n->tx_inflight++;
	vq_publish_nokick(&n->tx, (uint16_t)(2 * s));
	if (kick)
		vq_kick(&n->tx);
}

/* The frame area of the next slot (fill it, then send_raw). */
static uint8_t *next_frame(struct net *n)
{
	return tx_slot(n->tx_next % TXSLOTS) + 64;
}

static void send_plain(struct net *n, uint8_t kind, uint32_t seq, unsigned len)
{
	struct hdr h = { 0 };

	frame_init(n, next_frame(n), kind, seq, len);
	send_raw(n, &h, sizeof(h), len, true);
}

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* IPv4 + UDP or TCP in the frame at f (ethertype IPv4); payload pattern. */
static unsigned ip_frame(struct net *n, uint8_t *f, bool tcp, uint32_t seq, unsigned payload)
{
	unsigned l4 = tcp ? 20 : 8, len = 14 + 20 + l4 + payload;

	frame_init(n, f, K_CSUM, seq, len);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(f + 14, 0, 20 + l4);
	f[14] = 0x45;
	put16be(f + 16, (uint16_t)(20 + l4 + payload));
	f[22] = 64;
	f[23] = tcp ? 6 : 17;
	f[26] = 10; f[29] = 1;          /* 10.0.0.1 -> 10.0.0.2 */
	f[30] = 10; f[33] = 2;
	put16be(f + 34, 4000);
	put16be(f + 36, 5000);
	if (tcp)
		f[46] = 0x50;               /* data offset 5 */
	else
		put16be(f + 38, (uint16_t)(8 + payload));
	return len;
}

static void send_offloads(struct net *n)
{
	struct hdr h = { .flags = 1, .csum_start = 34, .csum_offset = 6 };
	unsigned len;

	len = ip_frame(n, next_frame(n), false, 100, 200);
	send_raw(n, &h, sizeof(h), len, true);
	h = (struct hdr){ .flags = 1, .gso_type = 1, .hdr_len = 54, .gso_size = 1000,
			  .csum_start = 34, .csum_offset = 16 };
	len = ip_frame(n, next_frame(n), true, 101, 3000);
	send_raw(n, &h, sizeof(h), len, true);
}

static void send_hostile(struct net *n)
{
	struct hdr h = { 0 };
	unsigned s = n->tx_next++ % TXSLOTS;

	/* One 5-byte descriptor: shorter than the header. Dropped, counted. */
	memset(tx_slot(s), 0, 5);
	n->tx.desc[2 * s] = (struct vdesc){ (uint64_t)(uintptr_t)tx_slot(s), 5, 0, 0 };
	n->tx_inflight++;
	vq_publish(&n->tx, (uint16_t)(2 * s));
	/* Unknown gso_type. */
	h.gso_type = 0x33;
	h.gso_size = 100;
	frame_init(n, next_frame(n), K_BAD, 201, 300);
	send_raw(n, &h, sizeof(h), 300, true);
}

/* Waits for the next ETYPE (or IPv4 GSO) frame; returns its first buffer
 * index and sets *len (without header) and *h. Other frames are skipped;
 * every buffer is re-posted. Frames spanning buffers are gathered into out. */
static unsigned recv_frame(struct net *n, uint8_t *out, unsigned cap, struct hdr *h, uint64_t ms)
{
	uint64_t deadline = rt_deadline_ms(ms);
	uint32_t id, len;

	for (;;) {
		unsigned got = 0, nb;

		while (!vq_poll(&n->rx, &id, &len)) {
			if (rt_expired(deadline))
				rt_fail("virtio-net: no frame received in %llu ms", (unsigned long long)ms);
			rt_pause();
		}
		if (id >= NRX)
			rt_fail("virtio-net: used id %u was never posted", id);
		if (len < sizeof(*h)) {
			/* The hostile 4-byte buffer comes back empty. */
			if (id != 0 || len != 0)
				rt_fail("virtio-net: %u-byte receive (id %u)", len, id);
			rt_puts("virtio-net: short receive buffer returned unused\n");
			post_rx(n, 0, true);
			continue;
		}
		memcpy(h, rxbuf(id), sizeof(*h));
		nb = h->num_buffers;
		if (nb < 1 || nb > 64)
			rt_fail("virtio-net: num_buffers %u", nb);
		for (unsigned b = 0; b < nb; b++) {
			unsigned skip = b ? 0 : sizeof(*h), k = len - skip;

			if (b) {
				if (!vq_wait(&n->rx, &id, &len, 2000))
					rt_fail("virtio-net: buffer %u of %u missing", b, nb);
				k = len;
			}
			if (got + k <= cap)
				memcpy(out + got, rxbuf(id) + skip, k);
			got += k;
			post_rx(n, id, true);
		}
		if (got >= 19 && ((out[12] == (ETYPE >> 8) && out[13] == (ETYPE & 0xff)) ||
				  h->gso_type))
			return got;
	}
}

static void check_pattern(const uint8_t *f, unsigned from, unsigned len, uint32_t seq, const char *what)
{
	for (unsigned i = from; i < len; i++) {
		if (f[i] != pat(seq, i))
			rt_fail("virtio-net: %s: byte %u is 0x%02x, expected 0x%02x", what, i, f[i],
				pat(seq, i));
	}
}

static void receive_host_frames(struct net *n)
{
	static uint8_t f[70000];
	struct hdr h;
	unsigned plain = 0;

	for (unsigned want = 0; want < 9; want++) {
		unsigned len = recv_frame(n, f, sizeof(f), &h, 10000);

		if (f[12] == 0x08) {
			/* The GSO frame: one frame, several buffers, TSO4 header. */
			if (h.gso_type != 1 || h.gso_size != 1000 || h.num_buffers < 2 || len != 14 + 40 + 3000)
				rt_fail("virtio-net: GSO receive: type %u size %u buffers %u len %u",
					h.gso_type, h.gso_size, h.num_buffers, len);
			check_pattern(f, 54, len, 300, "GSO receive");
			rt_printf("virtio-net: GSO frame of %u bytes in %u buffers\n", len, h.num_buffers);
			continue;
		}
		if (f[14] != K_RX || f[18] != plain || len != 60 + 181 * plain)
			rt_fail("virtio-net: receive %u: kind %u seq %u len %u", plain, f[14], f[18], len);
		check_pattern(f, 19, len, plain, "receive");
		plain++;
	}
	rt_printf("virtio-net: 8 frames and a GSO frame received intact\n");
}

static uint8_t ctrl_cmd(struct net *n, uint8_t cls, uint8_t cmd, const uint8_t *data, unsigned len)
{
	volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)(CTRL_MEM + 0x1000);
	uint32_t id, ulen;

	b[0] = cls;
	b[1] = cmd;
	for (unsigned i = 0; i < len; i++)
		b[2 + i] = data[i];
	b[64] = 0xee;
	n->ctrl.desc[0] = (struct vdesc){ CTRL_MEM + 0x1000, 2 + len, VD_F_NEXT, 1 };
	n->ctrl.desc[1] = (struct vdesc){ CTRL_MEM + 0x1000 + 64, 1, VD_F_WRITE, 0 };
	vq_publish(&n->ctrl, 0);
	if (!vq_wait(&n->ctrl, &id, &ulen, 5000) || id != 0 || ulen != 1)
		rt_fail("virtio-net: control command %u/%u not completed", cls, cmd);
	return b[64];
}

static void break_ring(struct net *n)
{
	uint64_t deadline = rt_deadline_ms(5000);

	/* A head outside the queue. */
	n->tx.avail[2 + (n->tx.avail_idx & (QSIZE - 1))] = 999;
	__atomic_store_n(&n->tx.avail[1], (uint16_t)(n->tx.avail_idx + 1), __ATOMIC_RELEASE);
	*n->tx.notify = 1;
	while (!(vdev_status(&n->d) & VS_NEEDS_RESET)) {
		if (rt_expired(deadline))
			rt_fail("virtio-net: a bad head did not set NEEDS_RESET");
		rt_pause();
	}
	rt_puts("virtio-net: malformed ring -> NEEDS_RESET\n");
}

static void run_test(struct net *n)
{
	static uint8_t f[8192];
	uint8_t one = 1, two[2] = { 2, 0 };
	struct hdr h;

	net_init(n, true, true);
	for (unsigned i = 0; i < 8; i++)
		send_plain(n, K_PLAIN, i, 60 + 207 * i);
	send_offloads(n);
	send_hostile(n);
	send_plain(n, K_END1, 0, 64);
	reclaim_tx(n, true);
	rt_puts("virtio-net: transmitted\n");
	receive_host_frames(n);
	if (ctrl_cmd(n, 0, 0, &one, 1) != 0)
		rt_fail("virtio-net: PROMISC was refused");
	if (ctrl_cmd(n, 4, 0, two, 2) != 1)
		rt_fail("virtio-net: VQ_PAIRS_SET without MQ was accepted");
	break_ring(n);
	net_init(n, false, true);
	send_plain(n, K_AFTER, 0, 100);
	reclaim_tx(n, true);
	recv_frame(n, f, sizeof(f), &h, 10000);
	if (f[14] != K_DONE)
		rt_fail("virtio-net: expected the DONE frame, got kind %u", f[14]);
	rt_pass();
}

/* --- benchmark modes ------------------------------------------------------- */

static void bench_tx(struct net *n, unsigned size, uint64_t secs)
{
	uint64_t start, end, frames = 0, hz = rt_tsc_hz();
	struct hdr h = { 0 };
	unsigned len = size;

	if (size > 1514) {
		h = (struct hdr){ .flags = 1, .gso_type = 1, .hdr_len = 54, .gso_size = 1448,
				  .csum_start = 34, .csum_offset = 16 };
		len = size;
	}
	for (unsigned s = 0; s < TXSLOTS; s++) {
		uint8_t *f = tx_slot(s) + 64;

		if (size > 1514)
			ip_frame(n, f, true, K_BENCH, size - 54);
		else
			frame_init(n, f, K_BENCH, s, len);
	}
	start = rt_rdtsc();
	end = start + secs * hz;
	while (rt_rdtsc() < end) {
		for (unsigned k = 0; k < 32 && n->tx_inflight < TXSLOTS; k++) {
			unsigned s = n->tx_next++ % TXSLOTS;
			uint8_t *b = tx_slot(s);

			memcpy(b, &h, sizeof(h));
			n->tx.desc[2 * s] = (struct vdesc){ (uint64_t)(uintptr_t)b, sizeof(h), VD_F_NEXT,
							    (uint16_t)(2 * s + 1) };
			n->tx.desc[2 * s + 1] = (struct vdesc){ (uint64_t)(uintptr_t)(b + 64), len, 0, 0 };
			n->tx_inflight++;
			vq_publish_nokick(&n->tx, (uint16_t)(2 * s));
		}
		vq_kick(&n->tx);
		{
			uint32_t id, l;

			while (vq_poll(&n->tx, &id, &l)) {
				n->tx_inflight--;
				frames++;
			}
		}
		rt_pause();
	}
	end = rt_rdtsc();
	rt_printf("BENCH tx frames=%llu bytes=%llu ns=%llu\n", (unsigned long long)frames,
		  (unsigned long long)(frames * len),
		  (unsigned long long)((end - start) * 1000000000ULL / hz));
}

/* Counts frames (num_buffers tells how many buffers each one took) and
 * payload bytes from the first frame until the sender has been quiet for
 * half a second. */
static void bench_rx(struct net *n, uint64_t secs)
{
	uint64_t start = 0, last = 0, frames = 0, bytes = 0, hz = rt_tsc_hz(), end;
	unsigned left = 0;
	uint32_t id, len;

	rt_puts("BENCH rx ready\n");
	end = rt_rdtsc() + (secs + 30) * hz;
	while (rt_rdtsc() < end) {
		if (!vq_poll(&n->rx, &id, &len)) {
			if (start && rt_rdtsc() - last > hz / 2)
				break;  /* the sender stopped */
			rt_pause();
			continue;
		}
		last = rt_rdtsc();
		if (!start)
			start = last;
		if (left == 0) {
			const struct hdr *h = (const struct hdr *)rxbuf(id);

			left = h->num_buffers ? h->num_buffers : 1;
			frames++;
			bytes += len - sizeof(struct hdr);
		} else {
			bytes += len;
		}
		left--;
		post_rx(n, id, false);
		if ((n->rx.avail_idx & 15) == 0)
			vq_kick(&n->rx);
	}
	rt_printf("BENCH rx frames=%llu bytes=%llu ns=%llu\n", (unsigned long long)frames,
		  (unsigned long long)bytes,
		  (unsigned long long)((last - start) * 1000000000ULL / hz));
}

void guest_main(void)
{
	struct net n;
	char mode[8] = "test";
	char want[16];

	if (!vdev_find(VIRTIO_ID_NET, 0, &n.d))
		rt_fail("virtio-net not found");
	if (!n.d.cfg)
		rt_fail("virtio-net has no device configuration");
	for (unsigned i = 0; i < 6; i++)
		n.mac[i] = n.d.cfg[i];
	if (rt_cmdline_str("mac", want, sizeof(want))) {
		char got[16];

		rt_snprintf(got, sizeof(got), "%02x%02x%02x%02x%02x%02x", n.mac[0], n.mac[1],
			    n.mac[2], n.mac[3], n.mac[4], n.mac[5]);
		if (rt_strcmp(got, want))
			rt_fail("virtio-net: MAC %s in config space, expected %s", got, want);
	}
	if (!(n.d.cfg[6] & 1))
		rt_fail("virtio-net: link is down");
	rt_cmdline_str("mode", mode, sizeof(mode));
	if (!rt_strcmp(mode, "test")) {
		run_test(&n);
		return;
	}
	net_init(&n, false, false);
	if (!rt_strcmp(mode, "tx"))
		bench_tx(&n, (unsigned)rt_cmdline_uint("size", 64), rt_cmdline_uint("secs", 3));
	else
		bench_rx(&n, rt_cmdline_uint("secs", 3));
	rt_pass();
}

/*
 * virtio-net without KVM: --net parsing, and the device end to end on fake
 * guest RAM through the MMIO bus (as a vCPU would drive it) with a real tap
 * in a private network namespace; the test reads and writes the tap's
 * other side through a packet socket. The device tests need CAP_NET_ADMIN
 * and /dev/net/tun: without them they say so and check nothing.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus.h"
#include "config.h"
#include "mem.h"
#include "pci.h"
#include "platform.h"
#include "virtio.h"

#define RAM (64 * MiB)
#define QSIZE 16
#define QMEM(q) (0x100000ULL * ((q) + 1))
#define RXBUF 0x800000ULL
#define TXBUF 0x900000ULL
#define TAP "skt0"

#define F_CSUM (1ULL << 0)
#define F_MAC (1ULL << 5)
#define F_HOST_TSO4 (1ULL << 11)
#define F_MRG (1ULL << 15)
#define F_CTRL_VQ (1ULL << 17)
#define F_MQ (1ULL << 22)
#define F_V1 (1ULL << 32)
#define F_EVENT_IDX (1ULL << 29)

struct drv {
	struct guest_mem *mem;
	struct bus *pio, *mmio;
	struct pci_host *h;
	struct virtio_dev *vd;
	uint64_t bar;
	int pkt;
	uint16_t avail_idx[8], used_seen[8];
};

/* --- --net parsing ---------------------------------------------------------- */

static int parse(const char *arg, struct config *cfg)
{
	char err[256];

	return config_parse_net(arg, cfg, err, sizeof(err));
}

START_TEST(parse_net)
{
	struct config cfg;

	memset(&cfg, 0, sizeof(cfg));
	ck_assert_int_eq(parse("tap=sk0,mac=02:aa:bb:cc:dd:0E,queues=3", &cfg), 0);
	ck_assert_str_eq(cfg.nets[0].tap, "sk0");
	ck_assert_int_eq(cfg.nets[0].tap_fd, -1);
	ck_assert_uint_eq(cfg.nets[0].queues, 3);
	ck_assert_uint_eq(cfg.nets[0].mac[5], 0x0e);
	ck_assert_uint_eq(cfg.nets[0].mac[1], 0xaa);
	ck_assert_int_eq(parse("tap-fd=7", &cfg), 0);
	ck_assert_int_eq(cfg.nets[1].tap_fd, 7);
	ck_assert_uint_eq(cfg.nets[1].queues, 1);
	ck_assert_uint_eq(cfg.nets[1].mac[0] | cfg.nets[1].mac[5], 0);  /* generated later */
	ck_assert_uint_eq(cfg.nr_nets, 2);
	ck_assert_int_ne(parse("tap=x,mac=03:00:00:00:00:01", &cfg), 0);   /* multicast */
	ck_assert_int_ne(parse("tap=x,mac=00:00:00:00:00:00", &cfg), 0);
	ck_assert_int_ne(parse("tap=x,mac=02-00-00-00-00-01", &cfg), 0);
	ck_assert_int_ne(parse("tap=x,queues=0", &cfg), 0);
	ck_assert_int_ne(parse("tap=x,queues=5", &cfg), 0);
	ck_assert_int_ne(parse("tap=x,poll=1001", &cfg), 0);
	ck_assert_int_ne(parse("tap-fd=3,queues=2", &cfg), 0);
	ck_assert_int_ne(parse("tap=x,tap-fd=3", &cfg), 0);
	ck_assert_int_ne(parse("mac=02:00:00:00:00:01", &cfg), 0);
	ck_assert_int_ne(parse("tap=0123456789abcdef", &cfg), 0);    /* IFNAMSIZ */
	ck_assert_int_ne(parse("tap=a/b", &cfg), 0);
	ck_assert_int_ne(parse("tap", &cfg), 0);
	ck_assert_uint_eq(cfg.nr_nets, 2);
	ck_assert_int_eq(parse("tap=c", &cfg), 0);
	ck_assert_int_eq(parse("tap=d", &cfg), 0);
	ck_assert_int_eq(parse("tap=e", &cfg), -E2BIG);
}
END_TEST

/* --- the device ----------------------------------------------------------------- */

static void *gp(struct drv *d, uint64_t gpa, uint64_t len)
{
	void *p = mem_ptr(d->mem, gpa, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

static void wr(struct drv *d, uint64_t off, uint64_t v, uint32_t len)
{
	ck_assert(bus_dispatch(d->mmio, d->bar + off, (uint8_t *)&v, len, true));
}

static uint64_t rd(struct drv *d, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	ck_assert(bus_dispatch(d->mmio, d->bar + off, (uint8_t *)&v, len, false));
	return v;
}

static int if_up(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM, 0), ret = 0;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		ret = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!ret && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		ret = -errno;
	close(s);
	return ret;
}

/* false (and a note) when this host cannot give the test a tap. */
static bool env_init(struct drv *d, unsigned int pairs)
{
	struct virtio_net_config nc = { .tap = TAP, .tap_fd = -1, .queues = pairs,
					.mac = { 2, 0, 0, 0, 0, 9 } };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	char err[256] = "";
	int one = 1;
	FILE *fp;

	memset(d, 0, sizeof(*d));
	if (unshare(CLONE_NEWNET) < 0 || access("/dev/net/tun", R_OK | W_OK) < 0) {
		printf("virtio-net device tests not run: no network namespace or /dev/net/tun\n");
		return false;
	}
	/* No IPv6 chatter (router solicitations) towards the guest. */
	fp = fopen("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w");
	if (fp) {
		fputs("1", fp);
		fclose(fp);
	}
	ck_assert_int_eq(mem_create(RAM, &d->mem), 0);
	ck_assert_int_eq(bus_create("pio", &d->pio), 0);
	ck_assert_int_eq(bus_create("mmio", &d->mmio), 0);
	ck_assert_int_eq(pci_host_create(-1, d->pio, d->mmio, d->mem, &d->h), 0);
	if (virtio_net_create(d->h, d->mem, &nc, &d->vd, err, sizeof(err))) {
		printf("virtio-net device tests not run: %s\n", err);
		return false;
	}
	ck_assert_int_eq(virtio_dev_start(d->vd, NULL), 0);
	ck_assert_int_eq(if_up(TAP), 0);
	d->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
	ck_assert_int_ge(d->pkt, 0);
	ck_assert_int_eq(setsockopt(d->pkt, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)), 0);
	sll.sll_ifindex = (int)if_nametoindex(TAP);
	ck_assert_int_eq(bind(d->pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
	d->bar = PCI_MMIO32_BASE;
	return true;
}

static void env_fini(struct drv *d)
{
	close(d->pkt);
	virtio_dev_destroy(d->vd);
	pci_host_destroy(d->h);
	bus_destroy(d->mmio);
	bus_destroy(d->pio);
	mem_destroy(d->mem);
}

static uint8_t driver_init(struct drv *d, uint64_t features, unsigned int nq)
{
	unsigned int q;

	wr(d, 0x14, 0, 1);
	while (rd(d, 0x14, 1) != 0)
		usleep(100);
	wr(d, 0x14, 1 | 2, 1);
	wr(d, 0x08, 0, 4);
	wr(d, 0x0c, (uint32_t)features, 4);
	wr(d, 0x08, 1, 4);
	wr(d, 0x0c, features >> 32, 4);
	wr(d, 0x14, 1 | 2 | 8, 1);
	if (!(rd(d, 0x14, 1) & 8))
		return (uint8_t)rd(d, 0x14, 1);
	for (q = 0; q < nq; q++) {
		memset(gp(d, QMEM(q), 0x3000), 0, 0x3000);
		d->avail_idx[q] = d->used_seen[q] = 0;
		wr(d, 0x16, q, 2);
		wr(d, 0x18, QSIZE, 2);
		wr(d, 0x20, QMEM(q), 8);
		wr(d, 0x28, QMEM(q) + 0x1000, 8);
		wr(d, 0x30, QMEM(q) + 0x2000, 8);
		wr(d, 0x1c, 1, 2);
	}
	wr(d, 0x14, 1 | 2 | 8 | 4, 1);
	return (uint8_t)rd(d, 0x14, 1);
}

static void set_desc(struct drv *d, unsigned int q, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc v = { .addr = addr, .len = len, .flags = flags, .next = next };

	memcpy(gp(d, QMEM(q) + 16ULL * i, 16), &v, 16);
}

static void publish(struct drv *d, unsigned int q, uint16_t head, bool kick)
{
	uint16_t *avail = gp(d, QMEM(q) + 0x1000, 6 + 2 * QSIZE);

	avail[2 + d->avail_idx[q] % QSIZE] = head;
	__atomic_store_n(&avail[1], ++d->avail_idx[q], __ATOMIC_RELEASE);
	if (kick)
		wr(d, 0x3000 + 4 * q, q, 2);
}

/* Next used entry of queue q: its id and length; false after 2 s. */
static bool wait_used(struct drv *d, unsigned int q, uint32_t *id, uint32_t *len)
{
	volatile uint16_t *idx = gp(d, QMEM(q) + 0x2002, 2);
	uint64_t e = QMEM(q) + 0x2004 + 8ULL * (d->used_seen[q] % QSIZE);
	int i;

	for (i = 0; i < 20000 && *idx == d->used_seen[q]; i++)
		usleep(100);
	if (*idx == d->used_seen[q])
		return false;
	memcpy(id, gp(d, e, 4), 4);
	memcpy(len, gp(d, e + 4, 4), 4);
	d->used_seen[q]++;
	return true;
}

static size_t frame(uint8_t *f, uint8_t seq, size_t len)
{
	size_t i;

	memset(f, 0xff, 6);
	memcpy(f + 6, "\x02\x00\x00\x00\x00\x09", 6);
	f[12] = 0x88;
	f[13] = 0xb5;
	for (i = 14; i < len; i++)
		f[i] = (uint8_t)(seq + i * 3);
	return len;
}

/* Next frame the device wrote to the tap (vnet header stripped). */
static ssize_t tap_recv(struct drv *d, uint8_t *buf, size_t cap)
{
	struct pollfd p = { .fd = d->pkt, .events = POLLIN };
	struct sockaddr_ll from;
	socklen_t fl = sizeof(from);
	uint8_t tmp[70000];
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, 2000) != 1)
			return -1;
		n = recvfrom(d->pkt, tmp, sizeof(tmp), 0, (struct sockaddr *)&from, &fl);
		if (n < 10 + 14 || from.sll_pkttype == PACKET_OUTGOING ||
		    tmp[10 + 12] != 0x88 || tmp[10 + 13] != 0xb5)
			continue;
		memcpy(buf, tmp + 10, MIN((size_t)n - 10, cap));
		return n - 10;
	}
}

static void tap_send(struct drv *d, const uint8_t *f, size_t len)
{
	uint8_t tmp[2048] = { 0 };

	memcpy(tmp + 10, f, len);
	ck_assert_int_eq(send(d->pkt, tmp, len + 10, 0), (ssize_t)(len + 10));
}

static void tx(struct drv *d, uint16_t slot, const void *hdr, uint32_t hlen, const uint8_t *f,
	       uint32_t flen)
{
	uint64_t b = TXBUF + 0x10000ULL * slot;

	memcpy(gp(d, b, hlen), hdr, hlen);
	memcpy(gp(d, b + 64, flen ? flen : 1), f, flen);
	set_desc(d, 1, (uint16_t)(2 * slot), b, hlen, flen ? VIRTQ_DESC_F_NEXT : 0,
		 (uint16_t)(2 * slot + 1));
	set_desc(d, 1, (uint16_t)(2 * slot + 1), b + 64, flen, 0, 0);
	publish(d, 1, (uint16_t)(2 * slot), true);
}

static void post_rx(struct drv *d, uint16_t i, uint32_t len, bool kick)
{
	set_desc(d, 0, i, RXBUF + 0x1000ULL * i, len, VIRTQ_DESC_F_WRITE, 0);
	publish(d, 0, i, kick);
}

START_TEST(tx_rx_frames)
{
	uint8_t f[1600], got[1600], hdr[12] = { 0 };
	struct virtio_net_stats st;
	uint32_t id, len;
	struct drv d;
	ssize_t n;

	if (!env_init(&d, 1))
		return;
	ck_assert_uint_eq(rd(&d, 0x2000 + 5, 1), 9);              /* MAC in config */
	ck_assert_uint_eq(rd(&d, 0x2000 + 6, 2), 1);              /* LINK_UP */
	ck_assert_uint_eq(driver_init(&d, F_V1 | F_EVENT_IDX | F_MAC | F_MRG | F_CSUM, 3), 15);
	/* guest -> tap */
	tx(&d, 0, hdr, 12, f, (uint32_t)frame(f, 1, 1000));
	ck_assert(wait_used(&d, 1, &id, &len));
	ck_assert_uint_eq(id, 0);
	n = tap_recv(&d, got, sizeof(got));
	ck_assert_int_eq(n, 1000);
	ck_assert_mem_eq(got, f, 1000);
	/* tap -> guest, one 2 KiB buffer: num_buffers 1 */
	post_rx(&d, 0, 2048, true);
	tap_send(&d, f, frame(f, 2, 700));
	ck_assert(wait_used(&d, 0, &id, &len));
	ck_assert_uint_eq(id, 0);
	ck_assert_uint_eq(len, 12 + 700);
	ck_assert_uint_eq(*(uint16_t *)gp(&d, RXBUF + 10, 2), 1);
	ck_assert_mem_eq(gp(&d, RXBUF + 12, 700), f, 700);
	/* MRG_RXBUF: a 1400-byte frame over 1000-byte buffers */
	post_rx(&d, 1, 1000, false);
	post_rx(&d, 2, 1000, true);
	tap_send(&d, f, frame(f, 3, 1400));
	ck_assert(wait_used(&d, 0, &id, &len));
	ck_assert_uint_eq(id, 1);
	ck_assert_uint_eq(len, 1000);
	ck_assert(wait_used(&d, 0, &id, &len));
	ck_assert_uint_eq(id, 2);
	ck_assert_uint_eq(len, 12 + 1400 - 1000);
	ck_assert_uint_eq(*(uint16_t *)gp(&d, RXBUF + 0x1000 + 10, 2), 2);
	ck_assert_mem_eq(gp(&d, RXBUF + 0x1000 + 12, 988), f, 988);
	ck_assert_mem_eq(gp(&d, RXBUF + 0x2000, 412), f + 988, 412);
	virtio_net_stats(d.vd, &st);
	ck_assert_uint_eq(st.tx_packets, 1);
	ck_assert_uint_eq(st.tx_bytes, 1000);
	ck_assert_uint_eq(st.rx_packets, 2);
	ck_assert_uint_eq(st.rx_bytes, 2100);
	env_fini(&d);
}
END_TEST

START_TEST(hostile_transmit)
{
	uint8_t f[1600], got[1600], hdr[12] = { 0 };
	struct virtio_net_stats st;
	struct virtio_stats vs;
	uint32_t id, len;
	struct drv d;

	if (!env_init(&d, 1))
		return;
	ck_assert_uint_eq(driver_init(&d, F_V1 | F_MAC, 3), 15);
	frame(f, 1, 100);
	tx(&d, 0, hdr, 5, f, 0);                        /* shorter than the header */
	hdr[0] = 1;                                      /* NEEDS_CSUM without CSUM */
	tx(&d, 1, hdr, 12, f, 100);
	hdr[0] = 0;
	hdr[1] = 1;                                      /* TSO4 without HOST_TSO4 */
	tx(&d, 2, hdr, 12, f, 100);
	hdr[1] = 0;
	tx(&d, 3, hdr, 12, f, 8);                        /* runt: no Ethernet header */
	tx(&d, 4, hdr, 12, f, 100);                      /* fine */
	for (int i = 0; i < 5; i++) {
		ck_assert(wait_used(&d, 1, &id, &len));
		ck_assert_uint_eq(id, 2 * i);
	}
	ck_assert_int_eq(tap_recv(&d, got, sizeof(got)), 100);
	ck_assert_int_eq(tap_recv(&d, got, sizeof(got)), -1);   /* nothing else */
	virtio_net_stats(d.vd, &st);
	ck_assert_uint_eq(st.tx_drops, 4);
	ck_assert_uint_eq(st.tx_packets, 1);
	/* A head outside the queue: NEEDS_RESET, the device survives it. */
	publish(&d, 1, 40, true);
	for (int i = 0; i < 2000 && !(rd(&d, 0x14, 1) & 0x40); i++)
		usleep(1000);
	ck_assert_uint_eq(rd(&d, 0x14, 1) & 0x40, 0x40);
	virtio_dev_stats(d.vd, &vs);
	ck_assert_uint_eq(vs.ring_errors, 1);
	ck_assert_uint_eq(driver_init(&d, F_V1 | F_MAC, 3), 15);
	tx(&d, 0, hdr, 12, f, 100);
	ck_assert(wait_used(&d, 1, &id, &len));
	ck_assert_int_eq(tap_recv(&d, got, sizeof(got)), 100);
	env_fini(&d);
}
END_TEST

/* utime + stime (clock ticks) of the thread whose name starts with `name`. */
static long thread_ticks(const char *name)
{
	char path[300], buf[1024], comm[64];
	struct dirent *e;
	long total = -1;
	DIR *dir = opendir("/proc/self/task");

	while (dir && (e = readdir(dir))) {
		unsigned long ut, st;
		FILE *fp;

		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		fp = fopen(path, "r");
		if (!fp)
			continue;
		if (fgets(buf, sizeof(buf), fp) &&
		    sscanf(buf, "%*d (%63[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			   comm, &ut, &st) == 3 && !strncmp(comm, name, strlen(name)))
			total = (long)(ut + st);
		fclose(fp);
	}
	if (dir)
		closedir(dir);
	return total;
}

START_TEST(backpressure_without_spinning)
{
	uint8_t f[1600];
	struct virtio_net_stats st;
	uint32_t id, len;
	long t0, t1;
	struct drv d;
	int i;

	if (!env_init(&d, 1))
		return;
	ck_assert_uint_eq(driver_init(&d, F_V1 | F_EVENT_IDX | F_MRG, 3), 15);
	/* Frames and no receive buffers: the device waits, the thread sleeps. */
	for (i = 0; i < 5; i++)
		tap_send(&d, f, frame(f, (uint8_t)i, 200));
	usleep(100000);
	t0 = thread_ticks("virtio-net");
	ck_assert_int_ge(t0, 0);
	usleep(500000);
	t1 = thread_ticks("virtio-net");
	ck_assert_int_le(t1 - t0, 5);                   /* < 50 ms of 500 ms */
	virtio_net_stats(d.vd, &st);
	ck_assert_uint_eq(st.rx_packets, 0);
	ck_assert_uint_ge(st.rx_stalls, 1);
	/* Buffers arrive: every frame is delivered, none dropped. */
	for (i = 0; i < 5; i++)
		post_rx(&d, (uint16_t)i, 2048, i == 4);
	for (i = 0; i < 5; i++) {
		ck_assert(wait_used(&d, 0, &id, &len));
		ck_assert_uint_eq(len, 212);
		ck_assert_mem_eq(gp(&d, RXBUF + 0x1000ULL * id + 12, 200), (frame(f, (uint8_t)i, 200), f), 200);
	}
	virtio_net_stats(d.vd, &st);
	ck_assert_uint_eq(st.rx_packets, 5);
	ck_assert_uint_eq(st.rx_drops, 0);
	env_fini(&d);
}
END_TEST

static uint8_t ctrl(struct drv *d, unsigned int q, uint8_t cls, uint8_t cmd, const void *data,
		    uint32_t len)
{
	uint8_t *b = gp(d, 0xa00000, 128);
	uint32_t id, ulen;

	b[0] = cls;
	b[1] = cmd;
	memcpy(b + 2, data, len);
	b[64] = 0xee;
	set_desc(d, q, 0, 0xa00000, 2 + len, VIRTQ_DESC_F_NEXT, 1);
	set_desc(d, q, 1, 0xa00000 + 64, 1, VIRTQ_DESC_F_WRITE, 0);
	publish(d, q, 0, true);
	ck_assert(wait_used(d, q, &id, &ulen));
	ck_assert_uint_eq(ulen, 1);
	return b[64];
}

START_TEST(multiqueue_control)
{
	uint16_t two = 2, three = 3;
	struct drv d;
	uint8_t on = 1;

	if (!env_init(&d, 2))
		return;
	ck_assert_uint_eq(rd(&d, 0x2000 + 8, 2), 2);              /* max_virtqueue_pairs */
	ck_assert_uint_eq(rd(&d, 0x12, 2), 5);                    /* num_queues */
	/* With MQ the control queue is 2N = 4. */
	ck_assert_uint_eq(driver_init(&d, F_V1 | F_MQ | F_CTRL_VQ | (1ULL << 18), 5), 15);
	ck_assert_uint_eq(ctrl(&d, 4, 4, 0, &two, 2), 0);
	ck_assert_uint_eq(ctrl(&d, 4, 4, 0, &three, 2), 1);
	ck_assert_uint_eq(ctrl(&d, 4, 0, 0, &on, 1), 0);          /* PROMISC */
	ck_assert_uint_eq(ctrl(&d, 4, 9, 9, &on, 1), 1);          /* unknown class */
	/* Without MQ the control queue is 2. */
	ck_assert_uint_eq(driver_init(&d, F_V1 | F_CTRL_VQ, 3), 15);
	ck_assert_uint_eq(ctrl(&d, 2, 4, 0, &two, 2), 1);
	env_fini(&d);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("virtio_net");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, parse_net);
	tcase_add_test(tc, tx_rx_frames);
	tcase_add_test(tc, hostile_transmit);
	tcase_add_test(tc, backpressure_without_spinning);
	tcase_add_test(tc, multiqueue_control);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

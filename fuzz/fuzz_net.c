/*
 * libFuzzer target: virtio-net's handling of guest rings and headers —
 * transmit chains (virtio-net header checks: flags, checksum offsets, GSO
 * types against the negotiated offloads, chains shorter than the header,
 * oversize frames), receive buffers filled from frames the host sends
 * (MRG_RXBUF or not), and control-queue commands (RX mode, MQ pairs).
 *
 * The device runs on a real tap with two queue pairs, made in a network
 * namespace of its own (unshare(CLONE_NEWNET), so it needs root): frames
 * the guest sends go nowhere, and frames for the guest are sent into the tap
 * with a packet socket. The device's I/O work runs synchronously.
 *
 * Input: byte 0: bits 0-1 the queue fuzzed (0 receive, 1 transmit, 2
 * control), bit 2 MRG_RXBUF, bit 3 checksum/TSO offloads, bit 4 EVENT_IDX,
 * bits 5-7 the queue size (2 << n); for receive, bytes 1-2 the length of
 * the frame the host sends (the frame is the tail of the input); the rest
 * is fz_load_ring's layout.
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_dev.h"

#define TAP "fz0"

static struct fz_dev dev;
static int pkt = -1;   /* AF_PACKET socket on the tap: frames to the guest */
static struct sockaddr_ll to;

static void setup(void)
{
	struct virtio_net_config nc = { .tap = TAP, .tap_fd = -1, .queues = 2,
					.mac = { 0x02, 0, 0, 0, 0, 1 } };
	struct virtio_dev *vd;
	struct ifreq ifr;
	char err[256];
	int s;

	if (unshare(CLONE_NEWNET) < 0) {
		perror("fuzz_net: unshare(CLONE_NEWNET) (needs root)");
		exit(1);
	}
	fz_env_init(&dev);
	if (virtio_net_create(dev.h, dev.mem, &nc, &vd, err, sizeof(err))) {
		fprintf(stderr, "virtio_net_create: %s\n", err);
		exit(1);
	}
	fz_env_attach(&dev, vd);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), TAP);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		abort();
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		abort();
	close(s);
	pkt = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
	if (pkt < 0)
		abort();
	memset(&to, 0, sizeof(to));
	to.sll_family = AF_PACKET;
	to.sll_ifindex = (int)if_nametoindex(TAP);
	to.sll_halen = 6;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* VERSION_1, MAC, STATUS, CTRL_VQ, CTRL_RX, MQ */
	uint64_t features = (1ULL << 32) | (1ULL << 5) | (1ULL << 16) | (1ULL << 17) |
			    (1ULL << 18) | (1ULL << 22);
	unsigned int which, q;
	uint16_t qsize, flen = 0;
	uint8_t mode;

	if (!dev.vd)
		setup();
	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	which = (mode & 3) % 3;
	if (mode & 4)
		features |= 1ULL << 15;                          /* MRG_RXBUF */
	if (mode & 8)
		features |= (1ULL << 0) | (1ULL << 1) | (1ULL << 11) | (1ULL << 12) |
			    (1ULL << 13) | (1ULL << 14) | (1ULL << 7) | (1ULL << 8);
	if (mode & 16)
		features |= 1ULL << 29;
	qsize = (uint16_t)(2u << ((mode >> 5) % 6));
	if (which == 0 && size >= 2) {
		memcpy(&flen, data, 2);
		data += 2;
		size -= 2;
		flen = (uint16_t)(flen % 2048);
	}
	/* rx0 tx0 rx1 tx1 ctrl */
	if (!(fz_driver_init(&dev, features, 5, qsize) & 4))
		return 0;
	q = which == 0 ? 0 : which == 1 ? 1 : 4;
	if (which == 0 && flen >= 14 && flen <= size) {
		/* The frame is the input's tail; the ring comes before it. */
		const uint8_t *frame = data + size - flen;

		size -= flen;
		fz_load_ring(&dev, q, qsize, &data, &size);
		(void)!sendto(pkt, frame, flen, 0, (struct sockaddr *)&to, sizeof(to));
	} else {
		fz_load_ring(&dev, q, qsize, &data, &size);
	}
	fz_kick(&dev, q);
	fz_kick(&dev, q);
	return 0;
}

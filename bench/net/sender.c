/*
 * bench/net host-side sender: writes frames into a tap's transmit path (so
 * they reach the VMM reading the tap) as fast as it can for SECS seconds,
 * through a packet socket with PACKET_VNET_HDR (GSO frames above 1514
 * bytes: TCP/IPv4, gso_size 1448) and PACKET_QDISC_BYPASS, 64 frames per
 * sendmmsg(). Prints "sent N".
 *
 * Usage: sender IFNAME SIZE SECS      (built by run.py with cc)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define BATCH 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	static uint8_t buf[10 + 65536];
	struct mmsghdr msgs[BATCH];
	struct iovec iov;
	unsigned long long sent = 0;
	int s, one = 1, size;
	double end;

	if (argc != 4)
		return 2;
	size = atoi(argv[2]);
	end = now() + atof(argv[3]);
	s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (s < 0 || setsockopt(s, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) {
		perror("packet socket");
		return 1;
	}
	setsockopt(s, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	sll.sll_ifindex = (int)if_nametoindex(argv[1]);
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("bind");
		return 1;
	}
	bench_frame(buf, 10, size);
	iov.iov_base = buf;
	iov.iov_len = 10 + (size_t)size;
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (now() < end) {
		int n = sendmmsg(s, msgs, BATCH, 0);

		if (n > 0) {
			sent += (unsigned long long)n;
		} else if (sent == 0 && errno != ENOBUFS && errno != EAGAIN) {
			perror("sendmmsg");
			return 1;
		}
	}
	printf("sent %llu\n", sent);
	return 0;
}

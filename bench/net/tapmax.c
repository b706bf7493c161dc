/*
 * bench/net host-side limit: what one thread can push through the tap with
 * no VM at all, one frame per system call, as a VMM's tap backend does.
 * This is the ceiling of a userspace virtio-net backend on this kernel
 * (the "fio" column of bench/net).
 *
 *   tapmax tx IFNAME SIZE SECS   writes frames into the tap (the host
 *                                receives them, as from a guest), one
 *                                write() each, for SECS seconds
 *   tapmax rx IFNAME SIZE SECS   reads frames from the tap (sent by
 *                                sender.c meanwhile) until none came for
 *                                500 ms, or SECS + 5 s in all
 *
 * Frames are those of sender.c (frame.h), with the offloads on.
 * Prints "BENCH tx|rx frames=N bytes=N ns=N" like the test guest, counted
 * from the first frame to the last. Built by run.py with cc.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

#define HDR 12   /* virtio_net_hdr_v1 (num_buffers included), as skiff uses */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_tap(const char *name)
{
	struct ifreq ifr = { 0 };
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), hdr = HDR;

	if (fd < 0) {
		perror("/dev/net/tun");
		exit(1);
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) < 0) {
		perror("tap setup");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	static uint8_t buf[HDR + 65536];
	unsigned long long frames = 0, bytes = 0;
	uint64_t t0 = 0, t1 = 0, end;
	int fd, size;
	size_t len;

	if (argc != 5 || (strcmp(argv[1], "tx") && strcmp(argv[1], "rx")))
		return 2;
	size = atoi(argv[3]);
	if (size < 60 || size > 65000)
		return 2;
	fd = open_tap(argv[2]);
	if (!strcmp(argv[1], "tx")) {
		len = bench_frame(buf, HDR, size);
		t0 = now_ns();
		end = t0 + (uint64_t)(atof(argv[4]) * 1e9);
		do {
			ssize_t r = write(fd, buf, len);

			if (r < 0 && errno != EAGAIN && errno != ENOBUFS) {
				perror("write");
				return 1;
			}
			if (r > 0) {
				frames++;
				bytes += (unsigned long long)size;
			}
		} while ((frames & 63) || now_ns() < end);
		t1 = now_ns();
	} else {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		printf("BENCH rx ready\n");
		fflush(stdout);
		end = now_ns() + (uint64_t)((atof(argv[4]) + 5) * 1e9);
		fcntl(fd, F_SETFL, O_NONBLOCK);
		while (now_ns() < end) {
			ssize_t r = read(fd, buf, sizeof(buf));

			if (r < 0) {
				/* Idle for 500 ms after frames came: the sender is done. */
				if (errno != EAGAIN || (poll(&p, 1, frames ? 500 : 1000) == 0 && frames))
					break;
				continue;
			}
			if (r <= HDR)
				continue;
			if (!frames)
				t0 = now_ns();
			t1 = now_ns();
			frames++;
			bytes += (unsigned long long)(r - HDR);
		}
	}
	printf("BENCH %s frames=%llu bytes=%llu ns=%llu\n", argv[1], frames, bytes,
	       (unsigned long long)(t1 - t0));
	return 0;
}

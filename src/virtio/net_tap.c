/*
 * virtio-net's back end: tap devices through /dev/net/tun (Documentation/
 * networking/tuntap.rst). Every queue is one file descriptor with
 * IFF_VNET_HDR, a 12-byte header (struct virtio_net_hdr_mrg_rxbuf, which is
 * the VERSION_1 header) and O_NONBLOCK: the I/O thread waits for it through
 * io_uring POLL_ADD and reads or writes it without ever blocking.
 *
 * Thread context: open/probe on the main thread; offloads and queue
 * attachment on the device's I/O thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "net_priv.h"

static int set_common(int fd)
{
	int hdr = NET_HDR_LEN, fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return -errno;
	/* Nothing offloaded towards the guest until it negotiates it. */
	if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0)
		return -errno;
	return 0;
}

static int check_fd(int fd, char *err, size_t errlen)
{
	struct ifreq ifr;
	int ret;

	memset(&ifr, 0, sizeof(ifr));
	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		snprintf(err, errlen, "--net tap-fd=%d: not a tap descriptor: %s", fd, strerror(errno));
		return -errno;
	}
	if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR) ||
	    !(ifr.ifr_flags & IFF_NO_PI)) {
		snprintf(err, errlen, "--net tap-fd=%d: %s needs IFF_TAP, IFF_NO_PI and IFF_VNET_HDR",
			 fd, ifr.ifr_name);
		return -EINVAL;
	}
	ret = set_common(fd);
	if (ret)
		snprintf(err, errlen, "--net tap-fd=%d: %s", fd, strerror(-ret));
	return ret;
}

int net_tap_open(const char *name, int fd, unsigned int pairs, int *fds, char *err,
		 size_t errlen)
{
	struct ifreq ifr;
	unsigned int i;
	int ret;

	if (fd >= 0) {
		if (pairs != 1) {
			snprintf(err, errlen, "--net tap-fd=%d: one descriptor gives one queue pair", fd);
			return -EINVAL;
		}
		ret = check_fd(fd, err, errlen);
		if (ret)
			return ret;
		fds[0] = fd;
		return 0;
	}
	for (i = 0; i < pairs; i++) {
		fds[i] = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fds[i] < 0) {
			ret = -errno;
			snprintf(err, errlen, "--net tap=%s: /dev/net/tun: %s", name, strerror(errno));
			return ret;
		}
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
		if (pairs > 1)
			ifr.ifr_flags |= IFF_MULTI_QUEUE;
		if (ioctl(fds[i], TUNSETIFF, &ifr) < 0) {
			ret = -errno;
			snprintf(err, errlen, "--net tap=%s: TUNSETIFF: %s%s", name, strerror(errno),
				 errno == EPERM ? " (needs CAP_NET_ADMIN, or use tap-fd=N)" : "");
			return ret;
		}
		ret = set_common(fds[i]);
		if (ret) {
			snprintf(err, errlen, "--net tap=%s: %s", name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

uint32_t net_tap_probe_offloads(int fd)
{
	uint32_t all = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO;
	uint32_t ok = all;

	/* UFO was removed from and later restored to tun: ask. */
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)all) < 0) {
		ok = all & ~TUN_F_UFO;
		if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)ok) < 0)
			ok = 0;
	}
	if (ioctl(fd, TUNSETOFFLOAD, 0UL) < 0)
		return 0;
	return ok;
}

/* 5.1.6.4: the device may send partially checksummed frames only with
 * GUEST_CSUM, and each GSO kind only with its GUEST_* feature. */
uint32_t net_tap_offloads_for(uint64_t f)
{
	uint32_t t = 0;

	if (!(f & (1ULL << NET_F_GUEST_CSUM)))
		return 0;
	t |= TUN_F_CSUM;
	if (f & (1ULL << NET_F_GUEST_TSO4))
		t |= TUN_F_TSO4;
	if (f & (1ULL << NET_F_GUEST_TSO6))
		t |= TUN_F_TSO6;
	if ((f & (1ULL << NET_F_GUEST_ECN)) && (t & (TUN_F_TSO4 | TUN_F_TSO6)))
		t |= TUN_F_TSO_ECN;
	if (f & (1ULL << NET_F_GUEST_UFO))
		t |= TUN_F_UFO;
	return t;
}

int net_tap_set_offloads(int fd, uint32_t flags)
{
	return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

int net_tap_attach(int fd, bool attach)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
	return ioctl(fd, TUNSETQUEUE, &ifr) < 0 ? -errno : 0;
}

/*
 * Inside virtio-net: the device (net.c) and its tap back end (net_tap.c).
 */
#ifndef SKIFF_VIRTIO_NET_PRIV_H
#define SKIFF_VIRTIO_NET_PRIV_H

#include "virtio_priv.h"

/* Feature bits (virtio 1.2, 5.1.3). */
#define NET_F_CSUM 0
#define NET_F_GUEST_CSUM 1
#define NET_F_MAC 5
#define NET_F_GUEST_TSO4 7
#define NET_F_GUEST_TSO6 8
#define NET_F_GUEST_ECN 9
#define NET_F_GUEST_UFO 10
#define NET_F_HOST_TSO4 11
#define NET_F_HOST_TSO6 12
#define NET_F_HOST_ECN 13
#define NET_F_HOST_UFO 14
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define NET_F_CTRL_VQ 17
#define NET_F_CTRL_RX 18
#define NET_F_MQ 22

/* struct virtio_net_hdr (5.1.6) with VERSION_1: always 12 bytes, and the
 * layout a tap uses with TUNSETVNETHDRSZ 12 on a little-endian host. */
struct net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
#define NET_HDR_LEN 12
#define NET_HDR_F_NEEDS_CSUM 1
#define NET_GSO_NONE 0
#define NET_GSO_TCPV4 1
#define NET_GSO_UDP 3
#define NET_GSO_TCPV6 4
#define NET_GSO_ECN 0x80

/* A frame without header: a 64 KiB GSO packet plus Ethernet and VLAN tags. */
#define NET_FRAME_MAX (65536 + 14 + 4)

/* The device-specific state, kept in one record for save/load (the
 * transport saves queues, features and status itself). */
struct net_state {
	uint8_t mac[6];
	uint16_t status;          /* config space: VIRTIO_NET_S_LINK_UP */
	uint16_t max_pairs;
	uint16_t active_pairs;    /* VQ_PAIRS_SET (1 without MQ) */
	uint32_t tun_offloads;    /* TUN_F_* applied with TUNSETOFFLOAD */
	uint8_t promisc, allmulti; /* CTRL_RX: recorded; a tap sees everything */
};

/* --- net_tap.c (main thread unless noted) --------------------------------- */

/* Opens `pairs` queues of the tap `name` (created if missing; IFF_MULTI_QUEUE
 * when pairs > 1), or checks the descriptor `fd` (pairs must be 1). Every fd
 * ends non-blocking with a 12-byte vnet header. err gets one line. */
int MUST_CHECK net_tap_open(const char *name, int fd, unsigned int pairs, int *fds,
			    char *err, size_t errlen);
/* TUN_F_* flags the kernel accepts on this tap (probed; left at 0). */
uint32_t net_tap_probe_offloads(int fd);
/* I/O thread: TUN_F_* for the negotiated guest features. */
uint32_t net_tap_offloads_for(uint64_t driver_features);
int MUST_CHECK net_tap_set_offloads(int fd, uint32_t flags);
/* Attaches or detaches one queue of a multi-queue tap (TUNSETQUEUE). */
int MUST_CHECK net_tap_attach(int fd, bool attach);

#endif

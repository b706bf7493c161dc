/*
 * bench/net host tools: the frame both send (sender.c into the tap's
 * transmit path, tapmax.c into the tap itself), behind a virtio-net header
 * of `hdr` bytes (10, or 12 with num_buffers): 64-byte frames of ethertype
 * 0x88b5 to the broadcast address, or above 1514 bytes a TCP/IPv4 frame
 * with a TSO4 header (gso_size 1448, checksum offload).
 */
#ifndef BENCH_NET_FRAME_H
#define BENCH_NET_FRAME_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

/* Fills buf (hdr + size bytes); returns their sum. */
static inline size_t bench_frame(uint8_t *buf, size_t hdr, int size)
{
	uint8_t *eth = buf + hdr;

	memset(buf, 0, hdr + (size_t)size);
	memset(eth, 0xff, 6);
	memcpy(eth + 6, "\x02\x00\x00\x00\x00\x01", 6);
	if (size > 1514) {
		uint8_t *ip = eth + 14;
		uint16_t v;

		buf[0] = 1;                             /* NEEDS_CSUM */
		buf[1] = 1;                             /* GSO_TCPV4 */
		v = 54; memcpy(buf + 2, &v, 2);         /* hdr_len */
		v = 1448; memcpy(buf + 4, &v, 2);       /* gso_size */
		v = 34; memcpy(buf + 6, &v, 2);         /* csum_start */
		v = 16; memcpy(buf + 8, &v, 2);         /* csum_offset */
		eth[12] = 0x08;
		ip[0] = 0x45;
		v = htons((uint16_t)(size - 14)); memcpy(ip + 2, &v, 2);
		ip[8] = 64;
		ip[9] = 6;
		ip[12] = 10; ip[15] = 1; ip[16] = 10; ip[19] = 2;
		ip[20 + 12] = 0x50;
	} else {
		eth[12] = 0x88;
		eth[13] = 0xb5;
	}
	return hdr + (size_t)size;
}

#endif

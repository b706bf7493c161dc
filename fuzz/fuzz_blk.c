/*
 * libFuzzer target: virtio-blk request parsing. Each input is a driver's
 * ring for the request queue (descriptors, avail entries, buffer contents:
 * headers, sectors, segment lengths, DISCARD/WRITE_ZEROES ranges) against a
 * 1 MiB image in a memfd; the device serves it through io_uring on the
 * fuzzing thread. Two rounds: a second kick sees what the first left.
 *
 * Input: byte 0 picks features (bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2
 * read-only disk is not switchable at run time and is left off) and bits 4-6
 * the queue size (2 << n, at most 64); the rest is fz_load_ring's layout.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_dev.h"

static struct fz_dev dev;

static void setup(void)
{
	struct virtio_blk_config bc = { .serial = "fuzz", .queues = 1 };
	struct virtio_dev *vd;
	char path[64], err[256];

	fz_env_init(&dev);
	fz_memfd_disk(path, sizeof(path));
	bc.path = path;
	if (virtio_blk_create(dev.h, dev.mem, &bc, &vd, err, sizeof(err))) {
		fprintf(stderr, "virtio_blk_create: %s\n", err);
		abort();
	}
	fz_env_attach(&dev, vd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t features = (1ULL << 32) | (1ULL << 9) /* FLUSH */ | (1ULL << 13) /* DISCARD */ |
			    (1ULL << 14) /* WRITE_ZEROES */ | (1ULL << 2) | (1ULL << 1);
	uint16_t qsize;

	if (!dev.vd)
		setup();
	if (size < 1)
		return 0;
	if (data[0] & 1)
		features |= 1ULL << 29;
	if (data[0] & 2)
		features |= 1ULL << 28;
	qsize = (uint16_t)(2u << ((data[0] >> 4) % 6));
	data++;
	size--;
	if (!(fz_driver_init(&dev, features, 1, qsize) & 4))
		return 0;
	fz_load_ring(&dev, 0, qsize, &data, &size);
	fz_kick(&dev, 0);
	fz_kick(&dev, 0);
	return 0;
}

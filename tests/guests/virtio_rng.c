/* virtio-rng through the ring-3 driver: two reads, both full and different. */
#include "virtio_drv.h"

#define RING_MEM 0x1000000ULL
#define BUF 0x2000000ULL

static void read_random(struct vq *q, uint8_t *buf, uint32_t n)
{
	uint32_t id, len;

	memset(buf, 0, n);
	q->desc[0] = (struct vdesc){ (uint64_t)(uintptr_t)buf, n, VD_F_WRITE, 0 };
	vq_publish(q, 0);
	if (!vq_wait(q, &id, &len, 5000))
		rt_fail("virtio-rng: no completion");
	if (id != 0 || len != n)
		rt_fail("virtio-rng: used id %u len %u, expected 0 and %u", id, len, n);
}

void guest_main(void)
{
	struct vdev d;
	struct vq q;
	uint8_t *a = (uint8_t *)(uintptr_t)BUF, *b = a + 4096;
	unsigned zeros = 0;

	if (!vdev_find(VIRTIO_ID_RNG, 0, &d))
		rt_fail("virtio-rng not found");
	if (!(vdev_init(&d, VF_VERSION_1) & VS_FEATURES_OK))
		rt_fail("virtio-rng refused VERSION_1");
	if (!vq_setup(&d, &q, 0, 64, RING_MEM))
		rt_fail("virtio-rng: queue refused");
	vdev_driver_ok(&d);
	read_random(&q, a, 256);
	read_random(&q, b, 256);
	for (unsigned i = 0; i < 256; i++)
		zeros += a[i] == 0;
	if (zeros > 16 || !memcmp(a, b, 256))
		rt_fail("virtio-rng: data does not look random (%u zero bytes)", zeros);
	rt_printf("virtio-rng: %02x%02x%02x%02x...\n", a[0], a[1], a[2], a[3]);
	rt_pass();
}

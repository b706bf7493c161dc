/*
 * virtio-blk through the ring-3 driver. Expects (from the harness):
 *   disk 0: read-write, `sectors=N` sectors, byte i = blk_pattern(i),
 *           GET_ID = `serial=S`
 *   disk 1 (when ro=1): read-only, same pattern
 * Checks: capacity, reads (direct and indirect descriptors), 32 requests in
 * flight, write + read back + flush (the harness then checks sector 10 in
 * the image: byte j = j ^ 0x5a), GET_ID, out-of-range → IOERR with the
 * buffer's neighbours untouched, read-only enforcement.
 */
#include "virtio_drv.h"

#define RING_MEM 0x1000000ULL     /* 16 MiB: queues */
#define IND_MEM 0x1100000ULL      /* indirect tables */
#define HDR_MEM 0x1200000ULL
#define ST_MEM 0x1300000ULL
#define DATA_MEM 0x2000000ULL     /* 32 MiB: data, 64 KiB per slot */
#define QSIZE 128
#define SLOT_DATA 0x10000ULL

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8

struct hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static uint8_t blk_pattern(uint64_t i)
{
	return (uint8_t)(i * 7 + (i >> 9));
}

static uint8_t *slot_data(unsigned s)
{
	return (uint8_t *)(uintptr_t)(DATA_MEM + SLOT_DATA * s);
}

/* Builds request `s` (descriptors 3s..3s+2, or one indirect descriptor). */
static void build(struct vq *q, unsigned s, uint32_t type, uint64_t sector, uint32_t len,
		  bool indirect)
{
	struct hdr *h = (struct hdr *)(uintptr_t)(HDR_MEM + 16ULL * s);
	volatile uint8_t *st = (volatile uint8_t *)(uintptr_t)(ST_MEM + s);
	bool in = type == T_IN || type == T_GET_ID;
	struct vdesc *t = indirect ? (struct vdesc *)(uintptr_t)(IND_MEM + 64ULL * s) : &q->desc[3 * s];
	uint16_t base = indirect ? 0 : (uint16_t)(3 * s);

	h->type = type;
	h->reserved = 0;
	h->sector = sector;
	*st = 0xee;
	t[0] = (struct vdesc){ HDR_MEM + 16ULL * s, 16, VD_F_NEXT, (uint16_t)(base + (len ? 1 : 2)) };
	t[1] = (struct vdesc){ DATA_MEM + SLOT_DATA * s, len,
			       (uint16_t)(VD_F_NEXT | (in ? VD_F_WRITE : 0)), (uint16_t)(base + 2) };
	t[2] = (struct vdesc){ ST_MEM + s, 1, VD_F_WRITE, 0 };
	if (indirect)
		q->desc[3 * s] = (struct vdesc){ IND_MEM + 64ULL * s, 3 * 16, VD_F_INDIRECT, 0 };
}

static uint8_t status_of(unsigned s)
{
	return *(volatile uint8_t *)(uintptr_t)(ST_MEM + s);
}

/* One request on slot 0, synchronously; returns its status. */
static uint8_t req(struct vq *q, uint32_t type, uint64_t sector, uint32_t len, bool indirect)
{
	uint32_t id, ulen;

	build(q, 0, type, sector, len, indirect);
	vq_publish(q, 0);
	if (!vq_wait(q, &id, &ulen, 5000))
		rt_fail("request type %u sector %lu: no completion", type, sector);
	RT_ASSERT(id == 0);
	return status_of(0);
}

static void check_pattern(unsigned s, uint64_t sector, uint32_t len)
{
	uint8_t *d = slot_data(s);

	for (uint32_t i = 0; i < len; i++) {
		if (d[i] != blk_pattern(sector * 512 + i))
			rt_fail("sector %lu byte %u: 0x%x, expected 0x%x", sector + i / 512, i % 512,
				d[i], blk_pattern(sector * 512 + i));
	}
}

static volatile uint8_t *blk_isr(struct vdev *d)
{
	return d->isr;
}

static void open_disk(unsigned n, struct vdev *d, struct vq *q)
{
	uint8_t st;

	if (!vdev_find(VIRTIO_ID_BLOCK, n, d))
		rt_fail("virtio-blk %u not found", n);
	st = vdev_init(d, VF_VERSION_1 | VF_EVENT_IDX | VF_INDIRECT_DESC | 0xffffffULL);
	if (!(st & VS_FEATURES_OK))
		rt_fail("virtio-blk %u refused features (status 0x%x)", n, st);
	if (!vq_setup(d, q, 0, QSIZE, RING_MEM + 0x10000ULL * n))
		rt_fail("virtio-blk %u: queue set-up refused", n);
	vdev_driver_ok(d);
	RT_ASSERT(vdev_status(d) == (VS_ACK | VS_DRIVER | VS_FEATURES_OK | VS_DRIVER_OK));
}

static void many_in_flight(struct vq *q, uint64_t sectors)
{
	const unsigned n = 32;
	uint32_t id, len;
	unsigned done = 0;

	for (unsigned s = 0; s < n; s++) {
		build(q, s, T_IN, (s * 37) % (sectors - 8), 4096, s & 1);
		vq_publish_nokick(q, (uint16_t)(3 * s));
	}
	vq_kick(q);
	while (done < n) {
		if (!vq_wait(q, &id, &len, 5000))
			rt_fail("qd32: %u of %u completed", done, n);
		RT_ASSERT(id % 3 == 0 && id / 3 < n);
		RT_ASSERT(len == 4097);
		RT_ASSERT(status_of(id / 3) == 0);
		check_pattern(id / 3, ((id / 3) * 37) % (sectors - 8), 4096);
		done++;
	}
}

void guest_main(void)
{
	struct vdev d, ro;
	struct vq q, rq;
	uint64_t sectors = rt_cmdline_uint("sectors", 0), cap;
	char serial[32] = "";
	uint8_t *data = slot_data(0);

	rt_cmdline_str("serial", serial, sizeof(serial));
	open_disk(0, &d, &q);
	cap = *(volatile uint64_t *)d.cfg;
	rt_printf("virtio-blk: slot %u, %lu sectors, features 0x%lx\n", d.slot, cap, d.features);
	if (cap != sectors)
		rt_fail("capacity %lu, expected %lu", cap, sectors);
	RT_ASSERT(d.features & VF_EVENT_IDX);
	RT_ASSERT(d.features & VF_INDIRECT_DESC);

	RT_ASSERT(req(&q, T_IN, 0, 4096, false) == 0);
	check_pattern(0, 0, 4096);
	RT_ASSERT(req(&q, T_IN, 100, 8192, true) == 0);
	check_pattern(0, 100, 8192);
	many_in_flight(&q, sectors);
	rt_printf("virtio-blk: reads ok\n");

	for (unsigned i = 0; i < 512; i++)
		data[i] = (uint8_t)(i ^ 0x5a);
	RT_ASSERT(req(&q, T_OUT, 10, 512, false) == 0);
	memset(data, 0, 512);
	RT_ASSERT(req(&q, T_IN, 10, 512, false) == 0);
	for (unsigned i = 0; i < 512; i++)
		RT_ASSERT(data[i] == (uint8_t)(i ^ 0x5a));
	RT_ASSERT(req(&q, T_FLUSH, 0, 0, false) == 0);
	rt_printf("virtio-blk: write, read back, flush ok\n");

	memset(data, 0, 32);
	RT_ASSERT(req(&q, T_GET_ID, 0, 20, false) == 0);
	if (rt_strcmp((char *)data, serial))
		rt_fail("GET_ID \"%s\", expected \"%s\"", (char *)data, serial);

	/* Out of range: the last sector works, the next one does not, and the
	 * bytes around the buffer stay as they were. */
	memset(data, 0x33, 1024 + 16);
	RT_ASSERT(req(&q, T_IN, sectors - 1, 512, false) == 0);
	memset(data, 0x33, 1024 + 16);
	RT_ASSERT(req(&q, T_IN, sectors, 512, false) == 1);
	RT_ASSERT(req(&q, T_IN, sectors - 1, 1024, false) == 1);
	RT_ASSERT(req(&q, T_OUT, sectors, 512, false) == 1);
	RT_ASSERT(req(&q, T_IN, 0xffffffffffffffULL, 512, false) == 1);
	for (unsigned i = 0; i < 1024 + 16; i++)
		RT_ASSERT(data[i] == 0x33);
	RT_ASSERT(req(&q, 77, 0, 0, false) == 2);   /* unsupported type */
	rt_printf("virtio-blk: GET_ID, range checks ok\n");

	/* MSI-X: queue 0 on table entry 1 -> vector 0x61. IF stays clear in the
	 * runtime, so the message waits in the LAPIC's IRR, where ring 3 can
	 * see it: route, irqfd and in-kernel LAPIC delivery end to end. */
	if (rt_cmdline_uint("msix", 0)) {
		volatile uint32_t *irr = (volatile uint32_t *)(uintptr_t)(0xfee00200u + 0x10 * (0x61 / 32));

		/* A software-disabled LAPIC drops fixed interrupts: enable it
		 * (spurious vector 0xff, SVR bit 8). */
		*(volatile uint32_t *)(uintptr_t)0xfee000f0u = 0x1ff;
		RT_ASSERT(vdev_msix_setup(&d, 1, 0x61));
		*(volatile uint16_t *)(d.common + 0x16) = 0;
		*(volatile uint16_t *)(d.common + 0x1a) = 1;
		RT_ASSERT(*(volatile uint16_t *)(d.common + 0x1a) == 1);
		RT_ASSERT(!(*irr & (1u << (0x61 % 32))));
		/* The used entry is consumed only after the IRR check: a driver
		 * that polls it first moves used_event past it, and then, as
		 * EVENT_IDX says, no interrupt is due. */
		build(&q, 0, T_IN, 0, 512, false);
		vq_publish(&q, 0);
		volatile uint32_t *isr = (volatile uint32_t *)(uintptr_t)(0xfee00100u + 0x10 * (0x61 / 32));

		for (uint64_t dl = rt_deadline_ms(2000); !((*irr | *isr) & (1u << (0x61 % 32)));) {
			if (rt_expired(dl))
				rt_fail("no MSI-X message in the LAPIC IRR/ISR (0x%x/0x%x, isr reg 0x%x)",
					*irr, *isr, *blk_isr(&d));
			rt_pause();
		}
		uint32_t id, ulen;

		RT_ASSERT(vq_wait(&q, &id, &ulen, 5000) && status_of(0) == 0);
		rt_printf("virtio-blk: MSI-X message delivered\n");
	}

	if (rt_cmdline_uint("ro", 0)) {
		open_disk(1, &ro, &rq);
		RT_ASSERT(ro.features & (1u << 5));   /* VIRTIO_BLK_F_RO */
		for (unsigned i = 0; i < 512; i++)
			data[i] = 0xff;
		RT_ASSERT(req(&rq, T_OUT, 3, 512, false) == 1);
		RT_ASSERT(req(&rq, T_IN, 3, 512, false) == 0);
		check_pattern(0, 3, 512);
		rt_printf("virtio-blk: read-only disk refuses writes\n");
	}
	rt_pass();
}

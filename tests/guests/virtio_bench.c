/*
 * virtio-blk benchmark driver (bench/blk/run.py): keeps `qd` requests of
 * `bs` bytes in flight on disk 0 for `secs` seconds and prints
 *   BENCH ops=N bytes=N ticks=N hz=N
 * Command line: mode=randread|seqread|seqwrite bs=4096 qd=32 secs=5
 * sectors=N (disk size). Polls the used ring; kicks once per batch.
 */
#include "virtio_drv.h"

#define RING_MEM 0x1000000ULL
#define IND_MEM 0x1100000ULL
#define HDR_MEM 0x1200000ULL
#define ST_MEM 0x1300000ULL
#define DATA_MEM 0x4000000ULL     /* 64 MiB: qd x bs of data */
#define QSIZE 256
#define MAX_QD 128

struct hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t xorshift(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

void guest_main(void)
{
	struct vdev d;
	struct vq q;
	char mode[16] = "randread";
	uint64_t bs = rt_cmdline_uint("bs", 4096), qd = rt_cmdline_uint("qd", 1);
	uint64_t secs = rt_cmdline_uint("secs", 5), sectors = rt_cmdline_uint("sectors", 0);
	uint64_t ops = 0, next_seq = 0, span, hz, t0, end;
	bool write, seq;
	uint32_t id, len;

	rt_cmdline_str("mode", mode, sizeof(mode));
	write = !rt_strcmp(mode, "seqwrite");
	seq = write || !rt_strcmp(mode, "seqread");
	if (qd == 0 || qd > MAX_QD || bs % 512 || bs == 0 || bs > (1 << 20) || sectors < bs / 512)
		rt_fail("bad parameters");
	span = sectors / (bs / 512);   /* blocks of bs in the disk */
	if (!vdev_find(VIRTIO_ID_BLOCK, 0, &d))
		rt_fail("virtio-blk not found");
	if (!(vdev_init(&d, VF_VERSION_1 | VF_EVENT_IDX | VF_INDIRECT_DESC) & VS_FEATURES_OK))
		rt_fail("features refused");
	if (!vq_setup(&d, &q, 0, QSIZE, RING_MEM))
		rt_fail("queue refused");
	vdev_driver_ok(&d);
	if (write)
		memset((void *)(uintptr_t)DATA_MEM, 0xa5, qd * bs);

	/* Slot s: one indirect descriptor (head s) -> header, data, status. */
	for (unsigned s = 0; s < qd; s++) {
		struct vdesc *t = (struct vdesc *)(uintptr_t)(IND_MEM + 64ULL * s);

		t[0] = (struct vdesc){ HDR_MEM + 16ULL * s, 16, VD_F_NEXT, 1 };
		t[1] = (struct vdesc){ DATA_MEM + bs * s, (uint32_t)bs,
				       (uint16_t)(VD_F_NEXT | (write ? 0 : VD_F_WRITE)), 2 };
		t[2] = (struct vdesc){ ST_MEM + s, 1, VD_F_WRITE, 0 };
		q.desc[s] = (struct vdesc){ IND_MEM + 64ULL * s, 48, VD_F_INDIRECT, 0 };
	}
	hz = rt_tsc_hz();
	rt_printf("BENCH START mode=%s bs=%lu qd=%lu secs=%lu\n", mode, bs, qd, secs);
	t0 = rt_rdtsc();
	end = t0 + secs * hz;
	for (unsigned s = 0; s < qd; s++) {
		struct hdr *h = (struct hdr *)(uintptr_t)(HDR_MEM + 16ULL * s);

		h->type = write ? 1 : 0;
		h->sector = (seq ? next_seq++ % span : xorshift() % span) * (bs / 512);
		vq_publish_nokick(&q, (uint16_t)s);
	}
	vq_kick(&q);
	for (;;) {
		unsigned got = 0;

		while (vq_poll(&q, &id, &len)) {
			struct hdr *h = (struct hdr *)(uintptr_t)(HDR_MEM + 16ULL * id);

			if (id >= qd || *(volatile uint8_t *)(uintptr_t)(ST_MEM + id) != 0)
				rt_fail("request %u failed (status %u)", id,
					*(volatile uint8_t *)(uintptr_t)(ST_MEM + id));
			ops++;
			got++;
			h->sector = (seq ? next_seq++ % span : xorshift() % span) * (bs / 512);
			vq_publish_nokick(&q, (uint16_t)id);
		}
		if (got)
			vq_kick(&q);
		else
			rt_pause();
		if ((ops & 63) == 0 && rt_expired(end))
			break;
		if (got == 0 && rt_expired(end))
			break;
	}
	t0 = rt_rdtsc() - t0;
	rt_printf("BENCH ops=%lu bytes=%lu ticks=%lu hz=%lu\n", ops, ops * bs, t0, hz);
	rt_pass();
}

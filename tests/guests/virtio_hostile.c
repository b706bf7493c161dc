/*
 * A hostile virtio driver: malformed rings on virtio-blk (disk 0) must put
 * that device in NEEDS_RESET while the VM, the other device (virtio-rng)
 * and, after a reset, the same device keep working. Then attacks that must
 * change nothing: writes to read-only registers, MSI-X vectors aimed
 * nowhere, a flood of kicks.
 */
#include "virtio_drv.h"

#define RING_MEM 0x1000000ULL
#define RNG_RING 0x1100000ULL
#define HDR 0x1200000ULL
#define ST 0x1300000ULL
#define DATA 0x2000000ULL

static struct vdev blk, rng;
static struct vq q, rq;

static void blk_up(void)
{
	if (!(vdev_init(&blk, VF_VERSION_1 | VF_INDIRECT_DESC) & VS_FEATURES_OK))
		rt_fail("virtio-blk refused features");
	if (!vq_setup(&blk, &q, 0, 16, RING_MEM))
		rt_fail("virtio-blk: queue refused");
	vdev_driver_ok(&blk);
}

static void expect_needs_reset(const char *what)
{
	uint64_t deadline = rt_deadline_ms(5000);

	while (!(vdev_status(&blk) & VS_NEEDS_RESET)) {
		if (rt_expired(deadline))
			rt_fail("%s: device did not enter NEEDS_RESET (status 0x%x)", what,
				vdev_status(&blk));
		rt_pause();
	}
	/* ISR bit 1: configuration change. */
	RT_ASSERT(*blk.isr & 2);
	rt_printf("hostile: %s -> NEEDS_RESET\n", what);
}

static void good_read(void)
{
	uint32_t id, len;
	uint32_t *h = (uint32_t *)(uintptr_t)HDR;
	volatile uint8_t *st = (volatile uint8_t *)(uintptr_t)ST;

	h[0] = 0; h[1] = 0; h[2] = 1; h[3] = 0;
	*st = 0xee;
	q.desc[0] = (struct vdesc){ HDR, 16, VD_F_NEXT, 1 };
	q.desc[1] = (struct vdesc){ DATA, 512, VD_F_NEXT | VD_F_WRITE, 2 };
	q.desc[2] = (struct vdesc){ ST, 1, VD_F_WRITE, 0 };
	vq_publish(&q, 0);
	if (!vq_wait(&q, &id, &len, 5000) || *st != 0)
		rt_fail("good read after reset failed (status 0x%x)", *st);
}

static void rng_still_works(void)
{
	uint32_t id, len;

	rq.desc[0] = (struct vdesc){ DATA + 0x10000, 64, VD_F_WRITE, 0 };
	vq_publish(&rq, 0);
	if (!vq_wait(&rq, &id, &len, 5000) || len != 64)
		rt_fail("virtio-rng stopped working");
}

void guest_main(void)
{
	/* delay_ms=N: lets a control-socket client connect first. */
	rt_delay_us(rt_cmdline_uint("delay_ms", 0) * 1000);
	if (!vdev_find(VIRTIO_ID_BLOCK, 0, &blk) || !vdev_find(VIRTIO_ID_RNG, 0, &rng))
		rt_fail("needs a virtio-blk and a virtio-rng device");
	if (!(vdev_init(&rng, VF_VERSION_1) & VS_FEATURES_OK) || !vq_setup(&rng, &rq, 0, 16, RNG_RING))
		rt_fail("virtio-rng set-up failed");
	vdev_driver_ok(&rng);

	/* 1. a descriptor loop */
	blk_up();
	q.desc[0] = (struct vdesc){ HDR, 16, VD_F_NEXT, 1 };
	q.desc[1] = (struct vdesc){ DATA, 16, VD_F_NEXT, 0 };
	vq_publish(&q, 0);
	expect_needs_reset("descriptor loop");
	rng_still_works();

	/* 2. after a reset the device works */
	blk_up();
	good_read();

	/* 3. avail idx far past the queue size */
	q.avail[1] = (uint16_t)(q.avail_idx + 1000);
	*q.notify = 0;
	expect_needs_reset("avail idx jump");

	/* 4. a buffer in the MMIO hole, and one past the end of RAM */
	blk_up();
	q.desc[0] = (struct vdesc){ 0xd0000000ULL, 4096, VD_F_WRITE, 0 };
	vq_publish(&q, 0);
	expect_needs_reset("buffer in the MMIO hole");
	blk_up();
	q.desc[0] = (struct vdesc){ rt_ram_end() - 8, 4096, VD_F_WRITE, 0 };
	vq_publish(&q, 0);
	expect_needs_reset("buffer past the end of RAM");

	/* 5. nested indirect tables, and an oversized one */
	blk_up();
	{
		struct vdesc *t = (struct vdesc *)(uintptr_t)(DATA + 0x20000);

		t[0] = (struct vdesc){ DATA + 0x20000, 16, VD_F_INDIRECT, 0 };
		q.desc[0] = (struct vdesc){ DATA + 0x20000, 16, VD_F_INDIRECT, 0 };
		vq_publish(&q, 0);
		expect_needs_reset("nested indirect table");
		blk_up();
		q.desc[0] = (struct vdesc){ DATA + 0x20000, 16 * 4096, VD_F_INDIRECT, 0 };
		vq_publish(&q, 0);
		expect_needs_reset("indirect table of 4096 entries");
	}

	/* 6. rings outside RAM: queue_enable is refused */
	vdev_init(&blk, VF_VERSION_1);
	*(volatile uint16_t *)(blk.common + 0x16) = 0;
	*(volatile uint16_t *)(blk.common + 0x18) = 16;
	*(volatile uint64_t *)(blk.common + 0x20) = 0xc0000000ULL;
	*(volatile uint64_t *)(blk.common + 0x28) = RING_MEM + 0x1000;
	*(volatile uint64_t *)(blk.common + 0x30) = RING_MEM + 0x2000;
	*(volatile uint16_t *)(blk.common + 0x1c) = 1;
	RT_ASSERT(*(volatile uint16_t *)(blk.common + 0x1c) == 0);
	expect_needs_reset("rings in the MMIO hole");

	/* 7. a chain whose next index is past the queue size */
	blk_up();
	q.desc[0] = (struct vdesc){ HDR, 16, VD_F_NEXT, 16 };
	vq_publish(&q, 0);
	expect_needs_reset("next index past the queue");

	/* 8. a buffer whose end wraps around the address space */
	blk_up();
	q.desc[0] = (struct vdesc){ 0xfffffffffffff000ULL, 0x2000, VD_F_WRITE, 0 };
	vq_publish(&q, 0);
	expect_needs_reset("buffer wrapping past 2^64");

	/* 9. writes to read-only registers change nothing: the disk's
	 * capacity (device configuration), the PCI vendor/device IDs, and a
	 * queue's size once it is enabled */
	blk_up();
	{
		uint32_t cap_lo = mmio_read32(blk.cfg), cap_hi = mmio_read32(blk.cfg + 4);
		uint32_t ids = pci_cfg_read(blk.slot, 0, 4);

		mmio_write32(blk.cfg, 0xdeadbeef);
		mmio_write32(blk.cfg + 4, 0xdeadbeef);
		pci_cfg_write(blk.slot, 0, 4, 0x12345678);
		*(volatile uint16_t *)(blk.common + 0x16) = 0;
		*(volatile uint16_t *)(blk.common + 0x18) = 2;
		RT_ASSERT(mmio_read32(blk.cfg) == cap_lo && mmio_read32(blk.cfg + 4) == cap_hi);
		RT_ASSERT(pci_cfg_read(blk.slot, 0, 4) == ids);
		RT_ASSERT(*(volatile uint16_t *)(blk.common + 0x18) == 16);
		good_read();
		rt_printf("hostile: read-only registers unchanged\n");
	}

	/* 10. MSI-X pointing nowhere: a vector aimed outside the APIC window
	 * with garbage data, a queue vector past the table (must read back as
	 * NO_VECTOR), then requests that complete with interrupts on */
	blk_up();
	if (!vdev_msix_setup(&blk, 0, 0x40))
		rt_fail("virtio-blk has no MSI-X capability");
	for (unsigned cap = pci_cfg_read(blk.slot, 0x34, 1), i = 0; cap && i < 48; i++) {
		if (pci_cfg_read(blk.slot, cap, 1) == 0x11) {
			uint32_t t = pci_cfg_read(blk.slot, cap + 4, 4);
			volatile uint32_t *e = (volatile uint32_t *)(uintptr_t)
				(vdev_bar_addr(&blk, t & 7) + (t & ~7u));

			e[0] = 0x12345678u;   /* not the APIC window */
			e[1] = 0xffffffffu;
			e[2] = 0xffffffffu;
			e[3] = 0;
			break;
		}
		cap = pci_cfg_read(blk.slot, cap + 1, 1);
	}
	*(volatile uint16_t *)(blk.common + 0x16) = 0;
	*(volatile uint16_t *)(blk.common + 0x1a) = 0;       /* queue 0 -> entry 0 */
	*(volatile uint16_t *)(blk.common + 0x10) = 999;     /* config -> past the table */
	RT_ASSERT(*(volatile uint16_t *)(blk.common + 0x10) == 0xffff);
	good_read();
	good_read();
	rt_printf("hostile: MSI-X aimed nowhere, requests still complete\n");

	/* 11. a flood of kicks on every queue, with nothing (and then with
	 * garbage-free requests) available */
	uint64_t kicks = rt_cmdline_uint("kicks", 200000);   /* fewer under emulation */

	for (uint64_t i = 0; i < kicks; i++) {
		*q.notify = 0;
		*rq.notify = 0;
	}
	good_read();
	rng_still_works();
	rt_printf("hostile: %lu kicks survived\n", (unsigned long)kicks);

	blk_up();
	good_read();
	rng_still_works();
	rt_pass();
}

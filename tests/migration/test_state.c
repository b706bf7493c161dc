/*
 * State records: each one saved, loaded into a second instance and saved
 * again must give the same bytes (time-driven fields excepted, by name);
 * truncated, corrupted and wrong-version payloads are refused, never
 * crash. vCPU and VM cases need /dev/kvm and skip without it.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "acpi_ged.h"
#include "bus.h"
#include "devices.h"
#include "mem.h"
#include "migration.h"
#include "pci.h"
#include "platform.h"
#include "vcpu.h"
#include "virtio.h"
#include "vm.h"

#define COM1 SERIAL_COM1_BASE

static void outb(struct bus *pio, uint16_t port, uint8_t v)
{
	ck_assert_msg(bus_dispatch(pio, port, &v, 1, true), "write to 0x%x unclaimed", port);
}

static uint8_t inb(struct bus *pio, uint16_t port)
{
	uint8_t v = 0xff;

	ck_assert_msg(bus_dispatch(pio, port, &v, 1, false), "read of 0x%x unclaimed", port);
	return v;
}

/* --- serial port ----------------------------------------------------- */

struct ser_fix {
	struct bus *pio;
	struct serial *s;
};

static void ser_open(struct ser_fix *f)
{
	struct irq_line irq = { .vm_fd = -1, .gsi = SERIAL_COM1_IRQ };

	ck_assert_int_eq(bus_create("pio", &f->pio), 0);
	ck_assert_int_eq(serial_create(f->pio, COM1, irq, -1, &f->s), 0);
}

static void ser_close(struct ser_fix *f)
{
	serial_destroy(f->s);
	bus_destroy(f->pio);
}

/* A source with non-default registers and bytes waiting in the FIFO. */
static size_t ser_source(struct ser_fix *a, uint8_t *buf)
{
	ser_open(a);
	outb(a->pio, COM1 + 3, 0x80);           /* DLAB */
	outb(a->pio, COM1 + 0, 0x0c);           /* 9600 baud */
	outb(a->pio, COM1 + 1, 0x00);
	outb(a->pio, COM1 + 3, 0x1b);           /* 8E1 */
	outb(a->pio, COM1 + 1, 0x05);           /* IER: RX data, line status */
	outb(a->pio, COM1 + 4, 0x0b);           /* MCR: DTR RTS OUT2 */
	outb(a->pio, COM1 + 7, 0x5a);           /* scratch */
	ck_assert_uint_eq(serial_input(a->s, (const uint8_t *)"hello", 5), 5);
	return serial_state_save(a->s, buf);
}

START_TEST(serial_round_trip)
{
	static uint8_t s1[SERIAL_STATE_MAX], s2[SERIAL_STATE_MAX];
	struct ser_fix a, b;
	size_t n1 = ser_source(&a, s1), n2;

	ck_assert_uint_ge(n1, 16 + 5);
	ser_open(&b);
	ck_assert_int_eq(serial_state_load(b.s, s1, n1), 0);
	n2 = serial_state_save(b.s, s2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_mem_eq(s1, s2, n1);
	/* The guest sees the same port: registers and the FIFO's bytes. */
	ck_assert_uint_eq(inb(b.pio, COM1 + 7), 0x5a);
	ck_assert_uint_eq(inb(b.pio, COM1 + 3), 0x1b);
	ck_assert_uint_eq(inb(b.pio, COM1 + 1), 0x05);
	ck_assert_uint_eq(inb(b.pio, COM1 + 5) & 1, 1);   /* data ready */
	for (const char *c = "hello"; *c; c++)
		ck_assert_uint_eq(inb(b.pio, COM1 + 0), (uint8_t)*c);
	ck_assert_uint_eq(inb(b.pio, COM1 + 5) & 1, 0);
	ser_close(&b);
	ser_close(&a);
}
END_TEST

START_TEST(serial_hostile)
{
	static uint8_t s1[SERIAL_STATE_MAX], s2[SERIAL_STATE_MAX];
	struct ser_fix a, b;
	size_t n1 = ser_source(&a, s1);

	ser_open(&b);
	for (size_t cut = 0; cut < n1; cut++)
		ck_assert_msg(serial_state_load(b.s, s1, cut) == -EINVAL, "cut at %zu accepted", cut);
	s1[0]++;
	ck_assert_int_eq(serial_state_load(b.s, s1, n1), -EINVAL);
	s1[0]--;
	for (size_t i = 0; i < n1; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(s2, s1, n1);
			s2[i] ^= (uint8_t)(1u << bit);
			/* Accepted or refused; an accepted one saves within bounds. */
			if (serial_state_load(b.s, s2, n1) == 0)
				ck_assert_uint_le(serial_state_save(b.s, s2), SERIAL_STATE_MAX);
		}
	}
	ser_close(&b);
	ser_close(&a);
}
END_TEST

/* --- device tree (serial and ACPI GED: a VM without virtio devices) ----- */

START_TEST(devices_round_trip_and_hostile)
{
	static uint8_t s1[SERIAL_STATE_MAX];
	struct ser_fix a, b;
	struct vm *va = calloc(1, sizeof(*va)), *vb = calloc(1, sizeof(*vb));
	struct mig_buf o1, o2;
	struct bus *mmio_a, *mmio_b;
	struct irq_line irq = { .vm_fd = -1, .gsi = 9 };
	char err[256];
	uint8_t *bad;

	ck_assert_ptr_nonnull(va);
	ck_assert_ptr_nonnull(vb);
	(void)ser_source(&a, s1);
	ser_open(&b);
	va->serial = a.s;
	vb->serial = b.s;
	ck_assert_int_eq(bus_create("mmio", &mmio_a), 0);
	ck_assert_int_eq(bus_create("mmio", &mmio_b), 0);
	ck_assert_int_eq(acpi_ged_create(mmio_a, a.pio, irq, NULL, &va->ged), 0);
	ck_assert_int_eq(acpi_ged_create(mmio_b, b.pio, irq, NULL, &vb->ged), 0);
	ck_assert_int_eq(acpi_ged_power_button(va->ged), 0);
	mig_buf_init(&o1);
	mig_buf_init(&o2);
	ck_assert_int_eq(mig_devices_save(va, &o1), 0);
	err[0] = 0;
	ck_assert_msg(mig_devices_load(vb, o1.data, o1.len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(mig_devices_save(vb, &o2), 0);
	ck_assert_uint_eq(o1.len, o2.len);
	ck_assert_mem_eq(o1.data, o2.data, o1.len);
	{
		/* The press the source's guest had not read yet is pending here. */
		uint32_t ev = 0;

		ck_assert(bus_dispatch(mmio_b, PLATFORM_MMIO_BASE + ACPI_GED_EVENT, (uint8_t *)&ev, 4,
				       false));
		ck_assert_uint_eq(ev, ACPI_GED_EV_POWER_BUTTON);
	}

	bad = malloc(o1.len);
	ck_assert_ptr_nonnull(bad);
	for (size_t cut = 0; cut < o1.len; cut++)
		ck_assert_msg(mig_devices_load(vb, o1.data, cut, err, sizeof(err)) < 0,
			      "cut at %zu accepted", cut);
	for (size_t i = 0; i < o1.len; i++) {
		memcpy(bad, o1.data, o1.len);
		bad[i] ^= 0x41;
		err[0] = 0;
		if (mig_devices_load(vb, bad, o1.len, err, sizeof(err)) < 0)
			ck_assert_msg(err[0], "refusal at byte %zu without a reason", i);
	}
	free(bad);
	mig_buf_free(&o1);
	mig_buf_free(&o2);
	acpi_ged_destroy(vb->ged);
	acpi_ged_destroy(va->ged);
	bus_destroy(mmio_b);
	bus_destroy(mmio_a);
	ser_close(&b);
	ser_close(&a);
	free(va);
	free(vb);
}
END_TEST

/* --- virtio-rng: transport, queue and PCI function ------------------- */

#define RAM (64 * MiB)
#define QSIZE 16
#define DESC 0x10000ULL
#define AVAIL 0x11000ULL
#define USED 0x12000ULL
#define BUF 0x20000ULL
/* Offsets in the state (virtio_state.c): header, then per queue. */
#define ST_STATUS 34
#define ST_QUEUE0 44
#define ST_Q_VECTOR 2
#define ST_Q_DESC 8

struct rng_fix {
	struct guest_mem *mem;
	struct bus *pio, *mmio;
	struct pci_host *h;
	struct virtio_dev *vd;
};

static void rng_open(struct rng_fix *f)
{
	char err[256] = "";

	ck_assert_int_eq(mem_create(RAM, &f->mem), 0);
	ck_assert_int_eq(bus_create("pio", &f->pio), 0);
	ck_assert_int_eq(bus_create("mmio", &f->mmio), 0);
	ck_assert_int_eq(pci_host_create(-1, f->pio, f->mmio, f->mem, &f->h), 0);
	ck_assert_msg(virtio_rng_create(f->h, f->mem, &f->vd, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(virtio_dev_start(f->vd, NULL), 0);
}

static void rng_close(struct rng_fix *f)
{
	virtio_dev_destroy(f->vd);
	pci_host_destroy(f->h);
	bus_destroy(f->mmio);
	bus_destroy(f->pio);
	mem_destroy(f->mem);
}

static void cwr(struct rng_fix *f, uint64_t off, uint64_t v, uint32_t len)
{
	ck_assert(bus_dispatch(f->mmio, PCI_MMIO32_BASE + off, (uint8_t *)&v, len, true));
}

static uint64_t crd(struct rng_fix *f, uint64_t off, uint32_t len)
{
	uint64_t v = 0;

	ck_assert(bus_dispatch(f->mmio, PCI_MMIO32_BASE + off, (uint8_t *)&v, len, false));
	return v;
}

/* 3.1.1: a driver brings the device up with queue 0 on vector 1, then one
 * 32-byte request is served. */
static void rng_drive(struct rng_fix *f)
{
	uint16_t *avail = mem_ptr(f->mem, AVAIL, 6 + 2 * QSIZE);
	volatile uint16_t *used_idx = mem_ptr(f->mem, USED + 2, 2);
	struct virtq_desc dsc = { .addr = BUF, .len = 32, .flags = VIRTQ_DESC_F_WRITE };

	cwr(f, 0x14, 1 | 2, 1);
	cwr(f, 0x08, 1, 4);
	cwr(f, 0x0c, 1, 4);                     /* VERSION_1 */
	cwr(f, 0x14, 1 | 2 | 8, 1);
	ck_assert_uint_eq(crd(f, 0x14, 1) & 8, 8);
	cwr(f, 0x16, 0, 2);
	cwr(f, 0x18, QSIZE, 2);
	cwr(f, 0x1a, 1, 2);                     /* queue vector */
	cwr(f, 0x20, DESC, 8);
	cwr(f, 0x28, AVAIL, 8);
	cwr(f, 0x30, USED, 8);
	cwr(f, 0x1c, 1, 2);
	cwr(f, 0x14, 1 | 2 | 8 | 4, 1);
	ck_assert_uint_eq(crd(f, 0x14, 1), 1 | 2 | 8 | 4);
	memcpy(mem_ptr(f->mem, DESC, 16), &dsc, 16);
	avail[2] = 0;
	__atomic_store_n(&avail[1], 1, __ATOMIC_RELEASE);
	cwr(f, 0x3000, 0, 2);
	for (int i = 0; i < 20000 && *used_idx == 0; i++)
		usleep(100);
	ck_assert_uint_eq(*used_idx, 1);
}

START_TEST(virtio_round_trip_and_hostile)
{
	struct rng_fix a, b;
	size_t n;
	uint8_t *s1, *s2, *bad;
	char err[256] = "";

	rng_open(&a);
	rng_open(&b);
	rng_drive(&a);
	n = virtio_dev_state_size(a.vd);
	ck_assert_uint_eq(n, virtio_dev_state_size(b.vd));
	s1 = malloc(n);
	s2 = malloc(n);
	bad = malloc(n);
	ck_assert(s1 && s2 && bad);
	virtio_dev_pause(a.vd);
	virtio_dev_state_save(a.vd, s1);
	virtio_dev_resume(a.vd);
	/* RAM first (the rings), as the destination loads it. */
	memcpy(mem_ptr(b.mem, 0, 1 * MiB), mem_ptr(a.mem, 0, 1 * MiB), 1 * MiB);
	virtio_dev_pause(b.vd);
	ck_assert_msg(virtio_dev_state_load(b.vd, s1, n, err, sizeof(err)) == 0, "%s", err);
	virtio_dev_state_save(b.vd, s2);
	ck_assert_mem_eq(s1, s2, n);
	ck_assert_uint_eq(crd(&b, 0x14, 1), 1 | 2 | 8 | 4);
	ck_assert_uint_eq(s1[ST_STATUS], 1 | 2 | 8 | 4);

	/* A buffer the guest queued after the source's last look (its kick
	 * went to the source): served when the destination resumes, with no
	 * new kick. Then one more through a kick. */
	{
		uint16_t *avail = mem_ptr(b.mem, AVAIL, 6 + 2 * QSIZE);
		volatile uint16_t *used_idx = mem_ptr(b.mem, USED + 2, 2);

		avail[3] = 0;
		__atomic_store_n(&avail[1], 2, __ATOMIC_RELEASE);
		virtio_dev_resume(b.vd);
		for (int i = 0; i < 20000 && *used_idx == 1; i++)
			usleep(100);
		ck_assert_uint_eq(*used_idx, 2);
		avail[4] = 0;
		__atomic_store_n(&avail[1], 3, __ATOMIC_RELEASE);
		cwr(&b, 0x3000, 0, 2);
		for (int i = 0; i < 20000 && *used_idx == 2; i++)
			usleep(100);
		ck_assert_uint_eq(*used_idx, 3);
	}

	virtio_dev_pause(b.vd);
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_msg(virtio_dev_state_load(b.vd, s1, cut, err, sizeof(err)) < 0,
			      "cut at %zu accepted", cut);
	/* A ring outside RAM, a vector past the MSI-X table: refused. */
	memcpy(bad, s1, n);
	memcpy(bad + ST_QUEUE0 + ST_Q_DESC, &(uint64_t){ RAM - 64 }, 8);
	ck_assert_int_eq(virtio_dev_state_load(b.vd, bad, n, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "ring"));
	memcpy(bad, s1, n);
	memcpy(bad + ST_QUEUE0 + ST_Q_VECTOR, &(uint16_t){ 7 }, 2);
	ck_assert_int_eq(virtio_dev_state_load(b.vd, bad, n, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "vector"));
	/* Every byte flipped in turn: accepted or refused with a reason. */
	for (size_t i = 0; i < n; i++) {
		memcpy(bad, s1, n);
		bad[i] ^= 0xa5;
		err[0] = 0;
		if (virtio_dev_state_load(b.vd, bad, n, err, sizeof(err)) < 0)
			ck_assert_msg(err[0], "refusal at byte %zu without a reason", i);
	}
	virtio_dev_resume(b.vd);
	free(bad);
	free(s2);
	free(s1);
	rng_close(&b);
	rng_close(&a);
}
END_TEST

/* --- KVM: VM and vCPU records ------------------------------------------- */

struct kvm_fix {
	int kvm, vm;
	struct vcpu_ctx ctx;
	struct vcpu v;
};

static int kvm_open(struct kvm_fix *f)
{
	memset(f, 0, sizeof(*f));
	f->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (f->kvm < 0)
		return -1;
	f->vm = ioctl(f->kvm, KVM_CREATE_VM, 0);
	ck_assert_int_ge(f->vm, 0);
	ck_assert_int_eq(ioctl(f->vm, KVM_CREATE_IRQCHIP, 0), 0);
	{
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

		ck_assert_int_eq(ioctl(f->vm, KVM_CREATE_PIT2, &pit), 0);
	}
	f->ctx.vm_fd = f->vm;
	f->ctx.kvm_fd = f->kvm;
	f->v.ctx = &f->ctx;
	f->v.fd = ioctl(f->vm, KVM_CREATE_VCPU, 0);
	ck_assert_int_ge(f->v.fd, 0);
	return 0;
}

static void kvm_close(struct kvm_fix *f)
{
	free(atomic_load(&f->v.saved_msrs)); /* what vcpu_destroy would free */
	close(f->v.fd);
	close(f->vm);
	close(f->kvm);
}

/* main() checked /dev/kvm already. */
#define SKIP_WITHOUT_KVM(f) ck_assert_int_eq(kvm_open(f), 0)

/* Walks a record's sections: returns their count, or -1 when the framing
 * is broken; `bounds` collects the offsets where each section ends. */
static int sections(const uint8_t *p, size_t len, size_t *bounds, int max)
{
	size_t off = 4;
	int n = 0;

	while (off < len) {
		uint32_t slen;

		if (len - off < 8)
			return -1;
		memcpy(&slen, p + off + 4, 4);
		if (len - off - 8 < slen)
			return -1;
		off += 8 + slen;
		if (n < max)
			bounds[n] = off;
		n++;
	}
	return n;
}

/* Is MSR `index` in the record's MSR section? */
static bool has_msr(const uint8_t *p, size_t len, uint32_t index)
{
	size_t off = 4;

	while (off + 8 <= len) {
		uint32_t tag, slen, n;

		memcpy(&tag, p + off, 4);
		memcpy(&slen, p + off + 4, 4);
		if (tag == 6 && slen >= 4) {
			memcpy(&n, p + off + 8, 4);
			for (uint32_t i = 0; i < n && 4 + 16 * (size_t)(i + 1) <= slen; i++) {
				uint32_t idx;

				memcpy(&idx, p + off + 12 + 16 * (size_t)i, 4);
				if (idx == index)
					return true;
			}
		}
		off += 8 + (size_t)slen;
	}
	return false;
}

/* Masks what time moves between two saves: the TSC MSR's value. */
static void mask_time(uint8_t *p, size_t len)
{
	size_t off = 4;

	while (off + 8 <= len) {
		uint32_t tag, slen;

		memcpy(&tag, p + off, 4);
		memcpy(&slen, p + off + 4, 4);
		if (tag == 6) {         /* MSRs: u32 n, n x {u32 index, u32 0, u64 value} */
			uint32_t n;

			memcpy(&n, p + off + 8, 4);
			for (uint32_t i = 0; i < n && 12 + 16 * (size_t)(i + 1) <= 8 + slen; i++) {
				uint8_t *e = p + off + 12 + 16 * (size_t)i;
				uint32_t idx;

				memcpy(&idx, e, 4);
				if (idx == 0x10)        /* IA32_TSC */
					memset(e + 8, 0, 8);
			}
		}
		off += 8 + (size_t)slen;
	}
}

/* Two vCPU records hold the same state (up to what time moves). */
static void assert_same_vcpu(struct mig_buf *o1, struct mig_buf *o2)
{
	ck_assert_uint_eq(o1->len, o2->len);
	mask_time(o1->data, o1->len);
	mask_time(o2->data, o2->len);
	for (size_t i = 0; i < o1->len; i++)
		ck_assert_msg(o1->data[i] == o2->data[i], "vCPU records differ at byte %zu", i);
}

START_TEST(vcpu_round_trip)
{
	struct kvm_fix a, b;
	struct mig_buf o1, o2;
	char err[256] = "";

	SKIP_WITHOUT_KVM(&a);
	ck_assert_int_eq(kvm_open(&b), 0);
	mig_buf_init(&o1);
	mig_buf_init(&o2);
	{
		struct kvm_regs regs;

		ck_assert_int_eq(ioctl(a.v.fd, KVM_GET_REGS, &regs), 0);
		regs.rax = 0x1122334455667788ull;
		regs.rip = 0xfff0;
		regs.rflags = 0x2;
		ck_assert_int_eq(ioctl(a.v.fd, KVM_SET_REGS, &regs), 0);
	}
	ck_assert_int_eq(mig_vcpu_save(&a.v, &o1), 0);
	/* IA32_TSC and kvmclock's system time are carried (IA32_APIC_BASE is
	 * not in KVM's list: it travels in the segment registers' apic_base,
	 * loaded before the LAPIC). */
	ck_assert(has_msr(o1.data, o1.len, 0x10));
	ck_assert(has_msr(o1.data, o1.len, 0x4b564d01));
	ck_assert(!has_msr(o1.data, o1.len, 0x6e0));   /* TSC deadline: its own section */
	ck_assert_msg(mig_vcpu_load(&b.v, o1.data, o1.len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(mig_vcpu_save(&b.v, &o2), 0);
	assert_same_vcpu(&o1, &o2);
	{
		struct kvm_regs regs;

		ck_assert_int_eq(ioctl(b.v.fd, KVM_GET_REGS, &regs), 0);
		ck_assert_uint_eq(regs.rax, 0x1122334455667788ull);
	}
	mig_buf_free(&o1);
	mig_buf_free(&o2);
	kvm_close(&b);
	kvm_close(&a);
}
END_TEST

/* The destination's snapshot lets a load skip what KVM holds already, and
 * nothing else: sections that differ from it are loaded, and the result is
 * the same vCPU as without the snapshot. */
START_TEST(vcpu_load_skips_only_equal)
{
	struct kvm_fix a, b;
	struct mig_vcpu_cur *cur = NULL;
	struct kvm_debugregs dbg;
	struct mig_buf o1, o2;
	char err[256] = "";

	SKIP_WITHOUT_KVM(&a);
	ck_assert_int_eq(kvm_open(&b), 0);
	mig_buf_init(&o1);
	mig_buf_init(&o2);
	ck_assert_int_eq(ioctl(a.v.fd, KVM_GET_DEBUGREGS, &dbg), 0);
	dbg.db[0] = 0x123456;
	dbg.db[3] = 0xabcdef0;
	ck_assert_int_eq(ioctl(a.v.fd, KVM_SET_DEBUGREGS, &dbg), 0);
	ck_assert_int_eq(mig_vcpu_save(&a.v, &o1), 0);
	/* b is fresh: its debug registers differ from the record's, its MP
	 * state and events do not. */
	ck_assert_int_eq(mig_vcpu_current(&b.v, &cur), 0);
	ck_assert_msg(mig_vcpu_load_cur(&b.v, o1.data, o1.len, cur, err, sizeof(err)) == 0, "%s",
		      err);
	memset(&dbg, 0, sizeof(dbg));
	ck_assert_int_eq(ioctl(b.v.fd, KVM_GET_DEBUGREGS, &dbg), 0);
	ck_assert_uint_eq(dbg.db[0], 0x123456);
	ck_assert_uint_eq(dbg.db[3], 0xabcdef0);
	ck_assert_int_eq(mig_vcpu_save(&b.v, &o2), 0);
	assert_same_vcpu(&o1, &o2);
	mig_vcpu_current_free(cur);
	mig_buf_free(&o1);
	mig_buf_free(&o2);
	kvm_close(&b);
	kvm_close(&a);
}
END_TEST

/* The fixture's vCPU with its kvm_run mapped and KVM_CAP_SYNC_REGS probed,
 * as vm.c sets them up: loads may then defer the registers to KVM_RUN. */
static bool map_run(struct kvm_fix *f)
{
	int size = ioctl(f->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);

	ck_assert_int_gt(size, 0);
	f->v.run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, f->v.fd, 0);
	ck_assert(f->v.run != MAP_FAILED);
	f->ctx.run_size = size;
	f->ctx.sync_regs = ioctl(f->kvm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	return f->ctx.sync_regs > 0 && (f->ctx.sync_regs & KVM_SYNC_X86_REGS);
}

/* What KVM itself holds after the vCPU's next KVM_RUN (run here with
 * immediate_exit: KVM applies kvm_run's registers, then returns EINTR). */
static uint64_t kvm_rax_after_run(struct kvm_fix *f)
{
	struct kvm_regs regs;

	f->v.run->immediate_exit = 1;
	ck_assert_int_eq(ioctl(f->v.fd, KVM_RUN, 0), -1);
	ck_assert_int_eq(errno, EINTR);
	f->v.run->immediate_exit = 0;
	ck_assert_int_eq(ioctl(f->v.fd, KVM_GET_REGS, &regs), 0);
	return regs.rax;
}

static void set_rax(struct kvm_fix *f, uint64_t rax)
{
	struct kvm_regs regs;

	ck_assert_int_eq(ioctl(f->v.fd, KVM_GET_REGS, &regs), 0);
	regs.rax = rax;
	regs.rip = 0xfff0;
	regs.rflags = 0x2;
	ck_assert_int_eq(ioctl(f->v.fd, KVM_SET_REGS, &regs), 0);
}

/* A destination's load leaves the registers of a runnable vCPU for its
 * next KVM_RUN (no KVM_SET_REGS in the downtime): a save before that run
 * still sees them, a later vcpu_set_regs (a reset) wins over them, and
 * KVM holds them once the vCPU ran. A vCPU waiting for INIT/SIPI gets the
 * ioctl (KVM would apply deferred ones only after the SIPI set its own). */
START_TEST(vcpu_regs_deferred_to_run)
{
	struct kvm_fix a, b;
	struct mig_vcpu_cur *cur = NULL;
	struct mig_buf o1, o2;
	struct kvm_regs regs;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };
	char err[256] = "";

	SKIP_WITHOUT_KVM(&a);
	ck_assert_int_eq(kvm_open(&b), 0);
	mig_buf_init(&o1);
	mig_buf_init(&o2);
	set_rax(&a, 0x1122334455667788ull);
	ck_assert_int_eq(mig_vcpu_save(&a.v, &o1), 0);
	ck_assert_int_eq(mig_vcpu_current(&b.v, &cur), 0);
	if (!map_run(&b)) {
		/* No KVM_CAP_SYNC_REGS: the load sets them itself. */
		ck_assert_msg(mig_vcpu_load_cur(&b.v, o1.data, o1.len, cur, err, sizeof(err)) == 0,
			      "%s", err);
		ck_assert_uint_eq(b.v.run->kvm_dirty_regs, 0);
		ck_assert_int_eq(ioctl(b.v.fd, KVM_GET_REGS, &regs), 0);
		ck_assert_uint_eq(regs.rax, 0x1122334455667788ull);
		goto out;
	}
	ck_assert_msg(mig_vcpu_load_cur(&b.v, o1.data, o1.len, cur, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_msg(b.v.run->kvm_dirty_regs & KVM_SYNC_X86_REGS, "registers not deferred");
	ck_assert_int_eq(ioctl(b.v.fd, KVM_GET_REGS, &regs), 0);
	ck_assert_uint_ne(regs.rax, 0x1122334455667788ull);  /* not in KVM yet */
	ck_assert_int_eq(vcpu_get_regs(&b.v, &regs), 0);
	ck_assert_uint_eq(regs.rax, 0x1122334455667788ull);
	ck_assert_int_eq(mig_vcpu_save(&b.v, &o2), 0);
	assert_same_vcpu(&o1, &o2);
	ck_assert_uint_eq(kvm_rax_after_run(&b), 0x1122334455667788ull);
	ck_assert_uint_eq(b.v.run->kvm_dirty_regs & KVM_SYNC_X86_REGS, 0);

	/* A set after the deferral wins. */
	ck_assert_msg(mig_vcpu_load_cur(&b.v, o1.data, o1.len, cur, err, sizeof(err)) == 0, "%s",
		      err);
	regs.rax = 0x99;
	ck_assert_int_eq(vcpu_set_regs(&b.v, &regs), 0);
	ck_assert_uint_eq(kvm_rax_after_run(&b), 0x99);

	/* Waiting for INIT/SIPI: set at once. */
	ck_assert_int_eq(ioctl(a.v.fd, KVM_SET_MP_STATE, &mp), 0);
	mig_buf_reset(&o1);
	ck_assert_int_eq(mig_vcpu_save(&a.v, &o1), 0);
	mig_vcpu_current_free(cur);
	ck_assert_int_eq(mig_vcpu_current(&b.v, &cur), 0);
	ck_assert_msg(mig_vcpu_load_cur(&b.v, o1.data, o1.len, cur, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert_uint_eq(b.v.run->kvm_dirty_regs & KVM_SYNC_X86_REGS, 0);
	ck_assert_int_eq(ioctl(b.v.fd, KVM_GET_REGS, &regs), 0);
	ck_assert_uint_eq(regs.rax, 0x1122334455667788ull);
out:
	mig_vcpu_current_free(cur);
	mig_buf_free(&o1);
	mig_buf_free(&o2);
	munmap(b.v.run, (size_t)b.ctx.run_size);
	kvm_close(&b);
	kvm_close(&a);
}
END_TEST

/* A LAPIC timer in TSC-deadline mode keeps its deadline: the loader sets
 * the MSRs after the LAPIC (a deadline written while the LAPIC is not in
 * that mode is dropped by KVM, and reads back as 0). */
static uint64_t get_deadline(int fd)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = 0x6e0 };

	ck_assert_int_eq(ioctl(fd, KVM_GET_MSRS, &m), 1);
	return m.e.data;
}

/* skiff's CPUID (with the TSC-deadline bit KVM's LAPIC needs for that
 * mode) on the fixture's vCPU. */
static void set_cpuid(struct kvm_fix *f)
{
	struct kvm_cpuid2 *base, *c;

	ck_assert_int_eq(vcpu_cpuid_create(f->kvm, &base), 0);
	c = vcpu_cpuid_for(base, 0, 1);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(ioctl(f->v.fd, KVM_SET_CPUID2, c), 0);
	free(c);
	vcpu_cpuid_destroy(base);
}

START_TEST(vcpu_tsc_deadline_kept)
{
	const uint64_t deadline = 1ull << 50;
	struct kvm_fix a, b;
	struct kvm_lapic_state lapic;
	struct mig_buf o1;
	char err[256] = "";
	uint32_t lvtt = 0x400ec;   /* TSC-deadline mode, vector 0xec, unmasked */
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = 0x6e0, .e.data = deadline };

	SKIP_WITHOUT_KVM(&a);
	ck_assert_int_eq(kvm_open(&b), 0);
	mig_buf_init(&o1);
	set_cpuid(&a);
	set_cpuid(&b);
	ck_assert_int_eq(ioctl(a.v.fd, KVM_GET_LAPIC, &lapic), 0);
	memcpy(lapic.regs + 0x320, &lvtt, 4);
	ck_assert_int_eq(ioctl(a.v.fd, KVM_SET_LAPIC, &lapic), 0);
	ck_assert_int_eq(ioctl(a.v.fd, KVM_SET_MSRS, &m), 1);
	ck_assert_uint_eq(get_deadline(a.v.fd), deadline);
	ck_assert_uint_eq(get_deadline(b.v.fd), 0);
	ck_assert_int_eq(mig_vcpu_save(&a.v, &o1), 0);
	ck_assert_msg(mig_vcpu_load(&b.v, o1.data, o1.len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(get_deadline(b.v.fd), deadline);
	mig_buf_free(&o1);
	kvm_close(&b);
	kvm_close(&a);
}
END_TEST

/* Not migration, but this file has the KVM fixture: a register dump of a
 * vCPU in KVM's power-on state says so (on AMD hosts KVM re-initialises a
 * vCPU when it reports a triple fault), and only then. */
static bool dump_says_power_on(struct vcpu *v)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	bool said;

	ck_assert_ptr_nonnull(f);
	vcpu_dump(v, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "rip="));
	said = strstr(text, "power-on state") != NULL;
	free(text);
	return said;
}

START_TEST(vcpu_dump_names_power_on_state)
{
	struct kvm_fix a;
	struct kvm_regs regs;

	SKIP_WITHOUT_KVM(&a);
	ck_assert(dump_says_power_on(&a.v));
	ck_assert_int_eq(ioctl(a.v.fd, KVM_GET_REGS, &regs), 0);
	regs.rip = 0x1000;
	ck_assert_int_eq(ioctl(a.v.fd, KVM_SET_REGS, &regs), 0);
	ck_assert(!dump_says_power_on(&a.v));
	kvm_close(&a);
}
END_TEST

START_TEST(vcpu_hostile)
{
	struct kvm_fix a, b;
	struct mig_buf o;
	size_t bounds[32];
	int nsec;
	char err[256];
	uint8_t *bad;

	SKIP_WITHOUT_KVM(&a);
	ck_assert_int_eq(kvm_open(&b), 0);
	mig_buf_init(&o);
	ck_assert_int_eq(mig_vcpu_save(&a.v, &o), 0);
	nsec = sections(o.data, o.len, bounds, 32);
	ck_assert_int_gt(nsec, 5);
	ck_assert_int_le(nsec, 32);
	/* A cut inside a section is always refused. */
	for (size_t cut = 0; cut < o.len; cut++) {
		bool boundary = cut == 4;

		for (int i = 0; i < nsec; i++)
			boundary = boundary || bounds[i] == cut;
		if (boundary)
			continue;
		err[0] = 0;
		ck_assert_msg(mig_vcpu_load(&b.v, o.data, cut, err, sizeof(err)) < 0,
			      "cut at %zu accepted", cut);
		ck_assert_msg(err[0], "cut at %zu refused without a reason", cut);
	}
	/* Wrong version. */
	bad = malloc(o.len);
	ck_assert_ptr_nonnull(bad);
	memcpy(bad, o.data, o.len);
	bad[0] ^= 3;
	ck_assert_int_eq(mig_vcpu_load(&b.v, bad, o.len, err, sizeof(err)), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "version"));
	/* Every section header byte flipped: refused (length or tag broken). */
	for (int s = 0; s < nsec; s++) {
		size_t hdr = s ? bounds[s - 1] : 4;

		for (size_t i = hdr; i < hdr + 8; i++) {
			memcpy(bad, o.data, o.len);
			bad[i] ^= 0x80;
			ck_assert_msg(mig_vcpu_load(&b.v, bad, o.len, err, sizeof(err)) < 0,
				      "flip at header byte %zu accepted", i);
		}
	}
	/* Payload bytes flipped (every 13th): KVM takes or refuses the value;
	 * a refusal carries a reason. */
	for (size_t i = 4; i < o.len; i += 13) {
		memcpy(bad, o.data, o.len);
		bad[i] ^= 0xff;
		err[0] = 0;
		if (mig_vcpu_load(&b.v, bad, o.len, err, sizeof(err)) < 0)
			ck_assert_msg(err[0], "refusal at byte %zu without a reason", i);
	}
	/* An MSR this KVM does not know is a clear error, not a silent skip. */
	for (int s = 0; s < nsec; s++) {
		size_t hdr = s ? bounds[s - 1] : 4;
		uint32_t tag, idx = 0x4b564dffu;   /* unused KVM paravirt range */

		memcpy(&tag, o.data + hdr, 4);
		if (tag != 6)
			continue;
		memcpy(bad, o.data, o.len);
		memcpy(bad + hdr + 12, &idx, 4);
		err[0] = 0;
		ck_assert_int_lt(mig_vcpu_load(&b.v, bad, o.len, err, sizeof(err)), 0);
		ck_assert_msg(strstr(err, "MSR"), "%s", err);
	}
	free(bad);
	mig_buf_free(&o);
	kvm_close(&b);
	kvm_close(&a);
}
END_TEST

START_TEST(vm_round_trip_and_hostile)
{
	struct kvm_fix a, b;
	struct mig_buf o1, o2;
	size_t bounds[8];
	char err[256] = "";
	uint8_t *bad;
	int nsec;

	SKIP_WITHOUT_KVM(&a);
	ck_assert_int_eq(kvm_open(&b), 0);
	mig_buf_init(&o1);
	mig_buf_init(&o2);
	{
		struct kvm_irq_level l = { .irq = 5, .level = 1 };

		ck_assert_int_eq(ioctl(a.vm, KVM_IRQ_LINE, &l), 0);
	}
	ck_assert_int_eq(mig_vm_save(a.vm, &o1), 0);
	ck_assert_msg(mig_vm_load(b.vm, o1.data, o1.len, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(mig_vm_save(b.vm, &o2), 0);
	ck_assert_uint_eq(o1.len, o2.len);
	nsec = sections(o1.data, o1.len, bounds, 8);
	ck_assert_int_eq(nsec, 5);
	/* The interrupt controllers (sections 2-4) come back identical; the
	 * clock only moves forward; the PIT holds load times. */
	ck_assert_mem_eq(o1.data + bounds[0], o2.data + bounds[0], bounds[3] - bounds[0]);
	{
		struct kvm_clock_data c1, c2;

		memcpy(&c1, o1.data + 12, sizeof(c1));
		memcpy(&c2, o2.data + 12, sizeof(c2));
		ck_assert_uint_ge(c2.clock, c1.clock);
		ck_assert_uint_lt(c2.clock - c1.clock, 5000000000ull);
	}
	bad = malloc(o1.len);
	ck_assert_ptr_nonnull(bad);
	for (size_t cut = 0; cut < o1.len; cut++)
		ck_assert_msg(mig_vm_load(b.vm, o1.data, cut, err, sizeof(err)) < 0,
			      "cut at %zu accepted", cut);
	memcpy(bad, o1.data, o1.len);
	bad[0] = 9;
	ck_assert_int_eq(mig_vm_load(b.vm, bad, o1.len, err, sizeof(err)), -EPROTO);
	for (int s = 0; s < nsec; s++) {
		size_t hdr = s ? bounds[s - 1] : 4;

		for (size_t i = hdr; i < hdr + 8; i++) {
			memcpy(bad, o1.data, o1.len);
			bad[i] ^= 0x10;
			ck_assert_msg(mig_vm_load(b.vm, bad, o1.len, err, sizeof(err)) < 0,
				      "flip at header byte %zu accepted", i);
		}
	}
	for (size_t i = 4; i < o1.len; i += 3) {
		memcpy(bad, o1.data, o1.len);
		bad[i] ^= 0xff;
		err[0] = 0;
		if (mig_vm_load(b.vm, bad, o1.len, err, sizeof(err)) < 0)
			ck_assert_msg(err[0], "refusal at byte %zu without a reason", i);
	}
	free(bad);
	mig_buf_free(&o1);
	mig_buf_free(&o2);
	kvm_close(&b);
	kvm_close(&a);
}
END_TEST

/* argv[1] "kvm": the vCPU and VM cases (exit 77 without /dev/kvm);
 * otherwise the device cases. */
int main(int argc, char **argv)
{
	bool kvm = argc > 1 && !strcmp(argv[1], "kvm");
	Suite *s = suite_create("migration-state");
	TCase *tc = tcase_create("records");
	SRunner *sr;
	int failed;

	if (kvm) {
		int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

		if (fd < 0) {
			printf("skip: /dev/kvm unavailable\n");
			return 77;
		}
		close(fd);
		tcase_add_test(tc, vcpu_round_trip);
		tcase_add_test(tc, vcpu_load_skips_only_equal);
		tcase_add_test(tc, vcpu_regs_deferred_to_run);
		tcase_add_test(tc, vcpu_tsc_deadline_kept);
		tcase_add_test(tc, vcpu_dump_names_power_on_state);
		tcase_add_test(tc, vcpu_hostile);
		tcase_add_test(tc, vm_round_trip_and_hostile);
	} else {
		tcase_add_test(tc, serial_round_trip);
		tcase_add_test(tc, serial_hostile);
		tcase_add_test(tc, devices_round_trip_and_hostile);
		tcase_add_test(tc, virtio_round_trip_and_hostile);
	}
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

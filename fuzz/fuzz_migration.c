/*
 * libFuzzer target: the destination's side of a migration stream, for every
 * record that does not need /dev/kvm. The input is a stream as a file would
 * carry it (--restore file:PATH); it is read from a memfd through the same
 * calls incoming.c makes, and each record goes to the loader incoming.c
 * calls for it, under the same order and uniqueness rules:
 *
 *  - header and framing: mig_stream_read_header / mig_stream_next (record
 *    length limit, CRC32C, truncation), the channel count of a file;
 *  - CONFIG: mig_config_check against a fixed VM (2 vCPUs with a CPUID
 *    table, one 2-queue virtio-blk on a memfd, virtio-rng, no net);
 *  - RAM: mig_ram_load into guest RAM with both regions (3 GiB below the
 *    MMIO hole, 2 MiB above 4 GiB: sparse, only touched pages cost);
 *  - VERIFY: mig_ram_hash compared with the record;
 *  - DEVICES: mig_devices_load into a real serial port, ACPI event device,
 *    virtio-blk and virtio-rng behind a PCI host without KVM (vm_fd -1);
 *  - VM and VCPU: only incoming.c's own checks (vCPU index, order); their
 *    loaders are KVM ioctls from the first section on.
 *
 * A stream that loads completely is then resumed as the destination does
 * it: every virtio queue is looked at once (virtio_dev_run_sync), so a
 * hostile device state meets the rings a hostile RAM record put there.
 *
 * Every input starts from an empty destination: RAM punched, devices at
 * power-on, disk emptied. Record checksums are recomputed before the
 * stream is read (unless the header's flags have bit 31 set, which the
 * loader ignores), so mutated payloads reach the parsers instead of
 * stopping at the CRC; the seed corpus has a stream with bit 31 set for
 * the checksum check itself.
 *
 * SKIFF_FUZZ_WRITE_SEED=DIR: instead of fuzzing, write valid streams of
 * this VM, made by the source-side save functions, into DIR (used by
 * fuzz/corpus/make_migration_seeds.py). SKIFF_FUZZ_VERBOSE: say where each
 * replayed input stopped.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "acpi_ged.h"
#include "config.h"
#include "devices.h"
#include "fuzz_dev.h"
#include "migrate_priv.h"
#include "platform.h"
#include "virtio_priv.h"
#include "vm.h"

/* Low RAM up to the MMIO hole plus a little above 4 GiB: the loader's
 * range checks see two regions and the hole between them. */
#define RAM_SIZE (MEM_HOLE_START + (2ULL << 20))
#define DISK_SIZE (1 << 20)
#define NR_VCPUS 2
#define PAGE MEM_PAGE_SIZE

static struct config cfg;
static struct vm *vm;
static struct virtio_dev *vds[2];       /* blk, rng: reset and resumed */
static uint8_t ged0[ACPI_GED_STATE_SIZE]; /* the event device at power-on */
static uint64_t *written;
static int in_fd = -1, disk_fd = -1;
static bool verbose, disk_used;

/* A CPUID table as KVM_GET_SUPPORTED_CPUID could give it; its values
 * matter only in that both sides patch it alike (vcpu_cpuid_for). */
static struct kvm_cpuid2 *fake_cpuid(void)
{
	static const struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd, .ebx = 0x756e6547, .ecx = 0x6c65746e,
		  .edx = 0x49656e69 },
		{ .function = 1, .eax = 0x906ea, .ebx = 0x800, .ecx = 0xf7fa3223,
		  .edx = 0x0f8bfbff },
		{ .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .eax = 0x121, .ebx = 0x1c0003f, .ecx = 0x3f },
		{ .function = 7, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .ebx = 0x029c67af },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .eax = 1, .ebx = 1, .ecx = 0x100 },
		{ .function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		  .eax = 4, .ebx = 4, .ecx = 0x201 },
		{ .function = 0x80000000, .eax = 0x80000008 },
	};
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + sizeof(e));

	if (!c)
		abort();
	c->nent = sizeof(e) / sizeof(e[0]);
	memcpy(c->entries, e, sizeof(e));
	return c;
}

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_migration set-up: %s%s%s\n", what, err ? ": " : "", err ? err : "");
	abort();
}

static void setup(void)
{
	struct virtio_blk_config bc = { .serial = "fuzz", .queues = 2 };
	struct irq_line com1 = { .vm_fd = -1, .gsi = GSI_COM1 };
	struct irq_line ged = { .vm_fd = -1, .gsi = GSI_ACPI_GED };
	char err[256] = "";
	int null;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		die("out of memory", NULL);
	if (mem_create(RAM_SIZE, &vm->mem) || bus_create("pio", &vm->pio) ||
	    bus_create("mmio", &vm->mmio) ||
	    pci_host_create(-1, vm->pio, vm->mmio, vm->mem, &vm->pci) || runstate_init(&vm->rs))
		die("memory, buses, PCI host or run state", NULL);
	written = calloc(vm->mem->dirty_words, sizeof(uint64_t));
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	in_fd = memfd_create("fuzz-stream", MFD_CLOEXEC);
	disk_fd = memfd_create("fuzz-disk", 0);
	if (!written || null < 0 || in_fd < 0 || disk_fd < 0 || ftruncate(disk_fd, DISK_SIZE) < 0)
		die("memfds", NULL);
	cfg.memory = RAM_SIZE;
	cfg.cpus = NR_VCPUS;
	cfg.nr_disks = 1;
	snprintf(cfg.disks[0].path, sizeof(cfg.disks[0].path), "/proc/self/fd/%d", disk_fd);
	cfg.disks[0].queues = bc.queues;
	cfg.rng = true;
	bc.path = cfg.disks[0].path;
	vm->cfg = &cfg;
	vm->vm_fd = -1;
	vm->nr_vcpus = NR_VCPUS;
	vm->vcpu_ctx.vm_fd = -1;
	vm->vcpu_ctx.kvm_fd = -1;
	vm->vcpu_ctx.nr_cpus = NR_VCPUS;
	vm->vcpu_ctx.cpuid = fake_cpuid();
	/* The builder's order (vm_devices.c): serial, event device, disks, rng. */
	if (serial_create(vm->pio, SERIAL_COM1_BASE, com1, null, &vm->serial) ||
	    acpi_ged_create(vm->mmio, vm->pio, ged, &vm->rs, &vm->ged))
		die("serial port or ACPI event device", NULL);
	if (virtio_blk_create(vm->pci, vm->mem, &bc, &vm->disks[0], err, sizeof(err)) ||
	    virtio_rng_create(vm->pci, vm->mem, &vm->rng, err, sizeof(err)))
		die("virtio devices", err);
	vm->nr_disks = 1;
	vds[0] = vm->disks[0];
	vds[1] = vm->rng;
	acpi_ged_state_save(vm->ged, ged0);
}

/* The destination before the stream: RAM empty, devices at power-on. */
static void power_on(void)
{
	uint8_t zero = 0;

	if (mem_reset(vm->mem))
		abort();
	memset(written, 0, vm->mem->dirty_words * sizeof(uint64_t));
	/* BARs and decoding first: a loaded state may have moved them, and
	 * the virtio reset below goes through BAR 0. */
	pci_host_reset(vm->pci);
	serial_reset(vm->serial);
	if (acpi_ged_state_load(vm->ged, ged0, sizeof(ged0)))
		abort();
	for (unsigned int i = 0; i < 2; i++) {
		uint64_t bar = pci_dev_bar_addr(vds[i]->pci, 0);

		/* device_status 0; the I/O work (the reset) runs here */
		if (!bus_dispatch(vm->mmio, bar + 0x14, &zero, 1, true) ||
		    virtio_dev_run_sync(vds[i]))
			abort();
	}
	/* Resumed disks wrote to their image: start from an empty one. */
	if (disk_used && (ftruncate(disk_fd, 0) < 0 || ftruncate(disk_fd, DISK_SIZE) < 0))
		abort();
	disk_used = false;
}

/* Rewrites each whole record's CRC32C in `buf` (type, length, payload). */
static void fix_crcs(uint8_t *buf, size_t size)
{
	size_t off = 16;
	uint32_t flags;

	if (size < 16)
		return;
	memcpy(&flags, buf + 12, 4);
	if (flags & (1u << 31))
		return;
	while (size - off >= 12) {
		uint32_t len, crc;

		memcpy(&len, buf + off + 4, 4);
		if (len > size - off - 12)
			return;
		crc = mig_crc32c(0, buf + off, 8 + (size_t)len);
		memcpy(buf + off + 8 + len, &crc, 4);
		off += 12 + (size_t)len;
	}
}

/*
 * incoming.c's load_stream for a file (one channel, no back channel), with
 * the VM and vCPU loaders left out. Returns 0 once an END record closed a
 * complete stream, else -errno with err set.
 */
static int load_stream(struct mig_stream *s, uint32_t *type, char *err, size_t errlen)
{
	bool have_config = false, have_vm = false, have_devices = false, have_verify = false;
	bool state_started = false, have_vcpu[NR_VCPUS] = { false };
	uint64_t pages = 0, passes = 0;
	uint32_t flags;
	int ret;

	ret = mig_stream_read_header(s, &flags, err, errlen);
	if (ret)
		return ret;
	if (((flags >> MIG_HDR_CHANNELS_SHIFT) & 0xff) != 0) {
		snprintf(err, errlen, "a file has one channel");
		return -EBADMSG;
	}
	for (;;) {
		const void *p;
		size_t len;

		ret = mig_stream_next(s, type, err, errlen);
		if (ret)
			return ret;
		p = s->rec.data;
		len = s->rec.len;
		if (!have_config && *type != MIG_REC_CONFIG) {
			snprintf(err, errlen, "the stream does not start with the configuration");
			return -EBADMSG;
		}
		switch (*type) {
		case MIG_REC_CONFIG:
			if (have_config) {
				snprintf(err, errlen, "two configuration records");
				return -EBADMSG;
			}
			ret = mig_config_check(vm, p, len, err, errlen);
			if (ret)
				return ret;
			have_config = true;
			break;
		case MIG_REC_RAM:
			if (state_started) {
				snprintf(err, errlen, "RAM after the device state");
				return -EBADMSG;
			}
			ret = mig_ram_load(vm->mem, written, p, len, &pages, err, errlen);
			if (ret)
				return ret;
			break;
		case MIG_REC_PASS:
			passes++;
			break;
		case MIG_REC_VM:
			state_started = true;
			if (have_vm) {
				snprintf(err, errlen, "two VM state records");
				return -EBADMSG;
			}
			have_vm = true; /* mig_vm_load: KVM ioctls */
			break;
		case MIG_REC_VCPU: {
			struct mig_rd rd;
			uint32_t idx;

			state_started = true;
			mig_rd_init(&rd, p, len);
			idx = mig_get_u32(&rd);
			if (rd.bad || idx >= NR_VCPUS || have_vcpu[idx] || !have_vm) {
				snprintf(err, errlen, "vCPU state record for vCPU %u refused", idx);
				return -EBADMSG;
			}
			have_vcpu[idx] = true; /* mig_vcpu_load: KVM ioctls */
			break;
		}
		case MIG_REC_DEVICES:
			state_started = true;
			if (have_devices) {
				snprintf(err, errlen, "two device state records");
				return -EBADMSG;
			}
			have_devices = true;
			ret = mig_devices_load(vm, p, len, err, errlen);
			if (ret)
				return ret;
			break;
		case MIG_REC_VERIFY: {
			struct mig_rd rd;
			uint64_t want;

			mig_rd_init(&rd, p, len);
			want = mig_get_u64(&rd);
			if (!mig_rd_done(&rd, true) || have_verify) {
				snprintf(err, errlen, "malformed verify record");
				return -EBADMSG;
			}
			if (mig_ram_hash(vm->mem) != want) {
				snprintf(err, errlen, "verify: RAM hash differs");
				return -EBADMSG;
			}
			have_verify = true;
			break;
		}
		case MIG_REC_END: {
			bool all = have_vm && have_devices;

			for (unsigned int i = 0; i < NR_VCPUS; i++)
				all = all && have_vcpu[i];
			if (!all || ((flags & MIG_HDR_VERIFY) && !have_verify)) {
				snprintf(err, errlen, "the stream ended without all of its state");
				return -EBADMSG;
			}
			snprintf(err, errlen, "complete: %llu pages in %llu passes",
				 (unsigned long long)pages, (unsigned long long)passes);
			return 0;
		}
		default:
			snprintf(err, errlen, "unknown record type %u", *type);
			return -EBADMSG;
		}
	}
}

/* --- seeds: a source VM saved by the source's own functions ----------------
 *
 * The seed writer drives the same devices as a guest would, then writes the
 * stream the source would send for them.
 */

/* Guest-physical layout of the seed's guest (all in low RAM but one page). */
#define S_BLK_RINGS 0x10000ULL   /* queue q: desc, avail, used pages at + q * 0x4000 */
#define S_RNG_RINGS 0x20000ULL
#define S_BLK_DATA 0x100000ULL   /* request headers, buffers, indirect table */
#define S_RNG_DATA 0x101000ULL
#define S_SCRATCH 0x300000ULL    /* sent in pass 1, zero by pass 2 */
#define S_HIGH MEM_4G
#define S_QSIZE 16

static void *gpa(uint64_t a, uint64_t len)
{
	void *p = mem_ptr(vm->mem, a, len);

	if (!p)
		abort();
	return p;
}

static void pci_cfg(unsigned int slot, uint32_t off, void *v, uint32_t len, bool wr)
{
	uint32_t addr = 0x80000000u | slot << 11 | (off & 0xfc);

	if (!bus_dispatch(vm->pio, 0xcf8, (uint8_t *)&addr, 4, true) ||
	    !bus_dispatch(vm->pio, 0xcfc + (off & 3), v, len, wr))
		abort();
}

/* A driver's set-up of one virtio device: every offered feature, `nq`
 * queues at rings + q * 0x4000 with MSI-X vectors 1.., configuration
 * vector 0, MSI-X enabled with vector 2 masked. */
static void seed_driver(struct virtio_dev *vd, unsigned int nq, uint64_t rings)
{
	struct fz_dev d = { .mem = vm->mem, .pio = vm->pio, .mmio = vm->mmio, .h = vm->pci,
			    .vd = vd, .bar = pci_dev_bar_addr(vd->pci, 0) };
	unsigned int slot = pci_dev_slot(vd->pci);
	uint16_t ctrl = 0x8000;
	uint8_t cap = 0, id = 0;
	uint64_t f;

	fz_wr(&d, 0x14, 1 | 2, 1);
	fz_wr(&d, 0x00, 0, 4);
	f = fz_rd(&d, 0x04, 4);
	fz_wr(&d, 0x00, 1, 4);
	f |= fz_rd(&d, 0x04, 4) << 32;
	fz_wr(&d, 0x08, 0, 4);
	fz_wr(&d, 0x0c, (uint32_t)f, 4);
	fz_wr(&d, 0x08, 1, 4);
	fz_wr(&d, 0x0c, f >> 32, 4);
	fz_wr(&d, 0x14, 1 | 2 | 8, 1);
	fz_wr(&d, 0x10, 0, 2);
	for (unsigned int q = 0; q < nq; q++) {
		uint64_t base = rings + 0x4000ULL * q;

		memset(gpa(base, 3 * PAGE), 0, 3 * PAGE);
		fz_wr(&d, 0x16, q, 2);
		fz_wr(&d, 0x18, S_QSIZE, 2);
		fz_wr(&d, 0x1a, q + 1, 2);
		fz_wr(&d, 0x20, base, 8);
		fz_wr(&d, 0x28, base + PAGE, 8);
		fz_wr(&d, 0x30, base + 2 * PAGE, 8);
		fz_wr(&d, 0x1c, 1, 2);
	}
	fz_wr(&d, 0x14, 1 | 2 | 8 | 4, 1);
	if (fz_status(&d) != (1 | 2 | 8 | 4))
		die("seed driver set-up", vd->name);
	/* MSI-X: find the capability, program the table, enable. */
	pci_cfg(slot, 0x34, &cap, 1, false);
	while (cap) {
		pci_cfg(slot, cap, &id, 1, false);
		if (id == 0x11)
			break;
		pci_cfg(slot, cap + 1u, &cap, 1, false);
	}
	if (!cap)
		die("no MSI-X capability", vd->name);
	for (unsigned int v = 0; v <= nq; v++) {
		fz_wr(&d, 0x4000 + 16 * v, 0xfee00000, 4);
		fz_wr(&d, 0x4000 + 16 * v + 4, 0, 4);
		fz_wr(&d, 0x4000 + 16 * v + 8, 0x30 + v, 4);
		fz_wr(&d, 0x4000 + 16 * v + 12, v == 2, 4);
	}
	pci_cfg(slot, cap + 2u, &ctrl, 2, true);
}

static void put_desc(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	struct virtq_desc *d = gpa(table + 16ULL * i, 16);

	*d = (struct virtq_desc){ .addr = addr, .len = len, .flags = flags, .next = next };
}

static void put_avail(uint64_t avail, const uint16_t *heads, uint16_t n)
{
	uint16_t *a = gpa(avail, 4 + 2ULL * S_QSIZE + 2);

	for (uint16_t i = 0; i < n; i++)
		a[2 + i] = heads[i];
	a[1] = n;
}

/* Requests the guest queued after the source's last look (no kick): the
 * destination serves them when it resumes. virtio-blk: a read of sector 0,
 * a write of sector 1 through an indirect table, GET_ID; virtio-rng: 64
 * bytes. */
static void seed_requests(void)
{
	const uint64_t q0 = S_BLK_RINGS, hdr = S_BLK_DATA, ind = S_BLK_DATA + 0x900;
	const uint16_t blk_heads[] = { 0, 3, 4 }, rng_heads[] = { 0 };
	struct { uint32_t type, reserved; uint64_t sector; } h[3] = {
		{ .type = 0, .sector = 0 }, { .type = 1, .sector = 1 }, { .type = 8 } };

	memcpy(gpa(hdr, 16), &h[0], 16);
	memcpy(gpa(hdr + 0x410, 16), &h[1], 16);
	memcpy(gpa(hdr + 0x810, 16), &h[2], 16);
	memset(gpa(hdr + 0x600, 512), 0x5a, 512);
	put_desc(q0, 0, hdr, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(q0, 1, hdr + 0x200, 512, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	put_desc(q0, 2, hdr + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(q0, 3, ind, 3 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	put_desc(ind, 0, hdr + 0x410, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(ind, 1, hdr + 0x600, 512, VIRTQ_DESC_F_NEXT, 2);
	put_desc(ind, 2, hdr + 0x800, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(q0, 4, hdr + 0x810, 16, VIRTQ_DESC_F_NEXT, 5);
	put_desc(q0, 5, hdr + 0x820, 20, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 6);
	put_desc(q0, 6, hdr + 0x840, 1, VIRTQ_DESC_F_WRITE, 0);
	put_avail(q0 + PAGE, blk_heads, 3);
	put_desc(S_RNG_RINGS, 0, S_RNG_DATA, 64, VIRTQ_DESC_F_WRITE, 0);
	put_avail(S_RNG_RINGS + PAGE, rng_heads, 1);
}

/* A RAM batch (docs/migration.md) whose data pages are copied from RAM. */
struct batch {
	uint64_t gpa[16];
	uint32_t n[16], kind[16];
	unsigned int count;
};

static void batch_add(struct batch *b, uint64_t a, uint32_t n, uint32_t kind)
{
	b->gpa[b->count] = a;
	b->n[b->count] = n;
	b->kind[b->count++] = kind;
}

static void put_batch(struct mig_stream *s, const struct batch *b)
{
	struct mig_buf out;

	mig_buf_init(&out);
	mig_put_u32(&out, b->count);
	mig_put_u32(&out, 0);
	for (unsigned int i = 0; i < b->count; i++) {
		mig_put_u64(&out, b->gpa[i]);
		mig_put_u32(&out, b->n[i]);
		mig_put_u32(&out, b->kind[i]);
	}
	for (unsigned int i = 0; i < b->count; i++) {
		if (b->kind[i] == 2)
			mig_put_bytes(&out, gpa(b->gpa[i], b->n[i] * PAGE), b->n[i] * PAGE);
	}
	if (out.err || mig_stream_put(s, MIG_REC_RAM, out.data, out.len))
		abort();
	mig_buf_free(&out);
}

/* The state records after the RAM: VM and vCPU records are placeholders
 * (this target does not load them), the device tree is the real one. */
static void put_state(struct mig_stream *s)
{
	uint32_t vm_rec = 1, vcpu_rec[2] = { 0, 1 };
	struct mig_buf b;

	mig_buf_init(&b);
	if (mig_stream_put(s, MIG_REC_VM, &vm_rec, 4))
		abort();
	for (uint32_t i = 0; i < NR_VCPUS; i++) {
		vcpu_rec[0] = i;
		if (mig_stream_put(s, MIG_REC_VCPU, vcpu_rec, sizeof(vcpu_rec)))
			abort();
	}
	if (mig_devices_save(vm, &b) || mig_stream_put(s, MIG_REC_DEVICES, b.data, b.len))
		abort();
	mig_buf_free(&b);
}

static int open_seed(struct mig_stream *s, const char *dir, const char *name, uint32_t flags)
{
	char path[4096];
	struct mig_buf b;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("cannot create", path);
	mig_stream_init(s, fd);
	mig_buf_init(&b);
	if (mig_stream_write_header(s, flags) || mig_config_save(vm, &b) ||
	    mig_stream_put(s, MIG_REC_CONFIG, b.data, b.len))
		abort();
	mig_buf_free(&b);
	return fd;
}

static void close_seed(struct mig_stream *s, int fd)
{
	if (mig_stream_put(s, MIG_REC_END, NULL, 0))
		abort();
	mig_stream_fini(s);
	close(fd);
}

static void write_seeds(const char *dir)
{
	const uint8_t rx[] = "skiff\r\n";
	struct mig_stream s;
	struct batch b = { .count = 0 };
	uint32_t pass = 1;
	uint8_t v;
	int fd;

	/* 1. A VM that never ran its drivers: power-on devices, one page. */
	memset(gpa(0x200000, PAGE), 0xa5, PAGE);
	fd = open_seed(&s, dir, "valid-power-on", 0);
	batch_add(&b, 0x1ff000, 1, 1);
	batch_add(&b, 0x200000, 1, 2);
	put_batch(&s, &b);
	if (mig_stream_put(&s, MIG_REC_PASS, &pass, 4))
		abort();
	put_state(&s);
	close_seed(&s, fd);

	/* 2. A running guest: drivers set up, requests queued, MSI-X on, the
	 * rng's BAR moved, serial programmed with input waiting, a power-button
	 * press pending; two passes and a verify hash. */
	if (mem_reset(vm->mem))
		abort();
	seed_driver(vm->disks[0], 2, S_BLK_RINGS);
	seed_driver(vm->rng, 1, S_RNG_RINGS);
	seed_requests();
	{
		unsigned int slot = pci_dev_slot(vm->rng->pci);
		uint32_t lo = (uint32_t)PCI_MMIO32_BASE + 0x80000, hi = 0;
		uint16_t cmd = 0;

		pci_cfg(slot, 0x04, &cmd, 2, true);
		pci_cfg(slot, 0x10, &lo, 4, true);
		pci_cfg(slot, 0x14, &hi, 4, true);
		cmd = 2; /* memory decoding */
		pci_cfg(slot, 0x04, &cmd, 2, true);
	}
	v = 0x83; /* DLAB: divisor 1, then 8N1 with FIFOs and interrupts */
	(void)bus_dispatch(vm->pio, SERIAL_COM1_BASE + 3, &v, 1, true);
	v = 1;
	(void)bus_dispatch(vm->pio, SERIAL_COM1_BASE, &v, 1, true);
	v = 0x03;
	(void)bus_dispatch(vm->pio, SERIAL_COM1_BASE + 3, &v, 1, true);
	v = 0xc7;
	(void)bus_dispatch(vm->pio, SERIAL_COM1_BASE + 2, &v, 1, true);
	v = 0x0b;
	(void)bus_dispatch(vm->pio, SERIAL_COM1_BASE + 4, &v, 1, true);
	v = 0x03;
	(void)bus_dispatch(vm->pio, SERIAL_COM1_BASE + 1, &v, 1, true);
	if (serial_input(vm->serial, rx, sizeof(rx) - 1) != sizeof(rx) - 1 ||
	    acpi_ged_power_button(vm->ged))
		abort();
	memset(gpa(S_SCRATCH, PAGE), 0x3c, PAGE);
	memset(gpa(S_HIGH, PAGE), 0xc3, PAGE);

	fd = open_seed(&s, dir, "valid-full", MIG_HDR_VERIFY);
	b.count = 0;
	batch_add(&b, S_BLK_RINGS, 2, 2);          /* queue 0: descriptors, avail */
	batch_add(&b, S_BLK_RINGS + 2 * PAGE, 1, 1); /* its used ring: zeros */
	batch_add(&b, S_BLK_RINGS + 0x4000, 3, 1); /* queue 1: empty */
	batch_add(&b, S_RNG_RINGS, 2, 2);
	batch_add(&b, S_RNG_RINGS + 2 * PAGE, 1, 1);
	put_batch(&s, &b);
	b.count = 0;
	batch_add(&b, S_BLK_DATA, 1, 2);
	batch_add(&b, S_RNG_DATA, 1, 1);
	batch_add(&b, S_SCRATCH, 1, 2);
	batch_add(&b, S_HIGH, 1, 2);
	put_batch(&s, &b);
	if (mig_stream_put(&s, MIG_REC_PASS, &pass, 4))
		abort();
	/* pass 2: the guest rewrote a request page and freed the scratch page */
	memset(gpa(S_SCRATCH, PAGE), 0, PAGE);
	b.count = 0;
	batch_add(&b, S_SCRATCH, 1, 1);
	batch_add(&b, S_BLK_DATA, 1, 2);
	put_batch(&s, &b);
	pass = 2;
	if (mig_stream_put(&s, MIG_REC_PASS, &pass, 4))
		abort();
	put_state(&s);
	{
		uint64_t h = mig_ram_hash(vm->mem);

		if (mig_stream_put(&s, MIG_REC_VERIFY, &h, 8))
			abort();
	}
	close_seed(&s, fd);
}

/* --- the target ------------------------------------------------------------ */

/* What the destination does once the stream is loaded: resume the
 * devices, each looking at every queue once. */
static void resume(void)
{
	for (unsigned int i = 0; i < 2; i++) {
		struct virtio_stats st;

		if (virtio_dev_run_sync(vds[i]))
			abort();
		if (verbose) {
			virtio_dev_stats(vds[i], &st);
			fprintf(stderr, "  resumed %s: %llu requests, %llu errors, %llu interrupts, "
				"%llu ring errors (counted since start-up)\n", vds[i]->name,
				(unsigned long long)st.requests, (unsigned long long)st.errors,
				(unsigned long long)st.interrupts, (unsigned long long)st.ring_errors);
		}
	}
	disk_used = true;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seeds = getenv("SKIFF_FUZZ_WRITE_SEED");

	(void)argc;
	(void)argv;
	verbose = getenv("SKIFF_FUZZ_VERBOSE") != NULL;
	setup();
	if (seeds) {
		write_seeds(seeds);
		_exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mig_stream s;
	uint32_t type = 0;
	char err[512] = "";
	uint8_t *copy;
	int ret;

	/* Larger inputs only repeat what 64 KiB records already reach, and
	 * the record limit (8 MiB) is checked before any payload is read. */
	if (size > (1u << 20))
		return -1;
	copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	fix_crcs(copy, size);
	power_on();
	if (ftruncate(in_fd, 0) < 0 || pwrite(in_fd, copy, size, 0) != (ssize_t)size ||
	    lseek(in_fd, 0, SEEK_SET) != 0)
		abort();
	free(copy);
	mig_stream_init(&s, in_fd);
	ret = load_stream(&s, &type, err, sizeof(err));
	if (verbose)
		fprintf(stderr, "stopped at record type %u: %s (%d)\n", type, err, ret);
	mig_stream_fini(&s);
	if (ret == 0)
		resume();
	return 0;
}

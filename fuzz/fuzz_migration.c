/*
 * libFuzzer target: the destination's side of a migration stream, for every
 * record that does not need /dev/kvm — the header, record framing and
 * CRC32C, the configuration record checked against this VM, RAM batches
 * applied to guest RAM, and the device state (a flattened device tree
 * loaded into a serial port, a virtio-blk and a virtio-rng behind a PCI
 * host), dispatched in the order incoming.c requires. VM and vCPU records
 * go to KVM ioctls and are skipped here (KVM checks them itself).
 *
 * The VM is a struct vm filled with just what those loaders read. Each
 * input starts from power-on device state. Record checksums are recomputed
 * before the stream is read (unless the header's flags have bit 31 set), so
 * mutated payloads reach the parsers instead of stopping at the CRC; the
 * checksum check itself has unit tests (tests/migration/test_stream.c).
 *
 * SKIFF_FUZZ_WRITE_SEED=PATH: instead of fuzzing, write a valid stream of
 * this VM (made by the source-side save functions) to PATH; the seed corpus
 * (fuzz/corpus/migration) was made that way.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "devices.h"
#include "fuzz_dev.h"
#include "migrate_priv.h"
#include "platform.h"
#include "virtio_priv.h"
#include "vm.h"

static struct fz_dev dev;
static struct config cfg;
static struct vm *vm;
static uint64_t *written;
static int in_fd = -1;

static void setup(void)
{
	struct virtio_blk_config bc = { .serial = "fuzz", .queues = 1 };
	struct irq_line com1 = { .vm_fd = -1, .gsi = 4 };
	static char path[64];
	char err[256];
	int null;

	fz_env_init(&dev);
	fz_memfd_disk(path, sizeof(path));
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	in_fd = memfd_create("fuzz-stream", 0);
	if (null < 0 || in_fd < 0)
		abort();
	bc.path = path;
	vm = calloc(1, sizeof(*vm));
	written = calloc(dev.mem->dirty_words, sizeof(uint64_t));
	if (!vm || !written)
		abort();
	cfg.nr_disks = 1;
	snprintf(cfg.disks[0].path, sizeof(cfg.disks[0].path), "%s", path);
	cfg.disks[0].queues = 1;
	cfg.rng = true;
	vm->cfg = &cfg;
	vm->mem = dev.mem;
	vm->pio = dev.pio;
	vm->mmio = dev.mmio;
	vm->pci = dev.h;
	vm->vm_fd = -1;
	vm->nr_vcpus = 1;
	if (serial_create(dev.pio, SERIAL_COM1_BASE, com1, null, &vm->serial) ||
	    virtio_blk_create(dev.h, dev.mem, &bc, &vm->disks[0], err, sizeof(err)) ||
	    virtio_rng_create(dev.h, dev.mem, &vm->rng, err, sizeof(err))) {
		fprintf(stderr, "fuzz_migration set-up: %s\n", err);
		abort();
	}
	vm->nr_disks = 1;
	fz_env_attach(&dev, vm->disks[0]);
}

/* Power-on state of the devices between inputs. */
static void power_on(void)
{
	struct virtio_dev *vds[2] = { vm->disks[0], vm->rng };
	uint8_t zero = 0;

	pci_host_reset(dev.h);
	serial_reset(vm->serial);
	for (unsigned int i = 0; i < 2; i++) {
		(void)bus_dispatch(dev.mmio, pci_dev_bar_addr(vds[i]->pci, 0) + 0x14, &zero, 1, true);
		if (virtio_dev_run_sync(vds[i]))
			abort();
	}
	memset(written, 0, dev.mem->dirty_words * sizeof(uint64_t));
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

static void write_seed(const char *path)
{
	struct mig_stream s;
	struct mig_buf b;
	uint8_t ram[8 + 2 * 16 + 4096];
	uint32_t zero_kind = 1, data_kind = 2, count = 2, pages = 1, pass = 1;
	uint64_t gpa0 = 0x100000, gpa1 = 0x200000;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		abort();
	/* driver-initialised devices make a richer device tree */
	fz_driver_init(&dev, (1ULL << 32) | (1ULL << 28) | (1ULL << 29), 1, 16);
	mig_stream_init(&s, fd);
	mig_buf_init(&b);
	if (mig_stream_write_header(&s, 0) || mig_config_save(vm, &b) ||
	    mig_stream_put(&s, MIG_REC_CONFIG, b.data, b.len))
		abort();
	/* a zero run and one data page (docs/migration.md, RAM batch) */
	memset(ram, 0, sizeof(ram));
	memcpy(ram, &count, 4);
	memcpy(ram + 8, &gpa0, 8);
	memcpy(ram + 16, &pages, 4);
	memcpy(ram + 20, &zero_kind, 4);
	memcpy(ram + 24, &gpa1, 8);
	memcpy(ram + 32, &pages, 4);
	memcpy(ram + 36, &data_kind, 4);
	memset(ram + 40, 0xa5, 4096);
	mig_buf_reset(&b);
	if (mig_stream_put(&s, MIG_REC_RAM, ram, sizeof(ram)) ||
	    mig_stream_put(&s, MIG_REC_PASS, &pass, 4) || mig_devices_save(vm, &b) ||
	    mig_stream_put(&s, MIG_REC_DEVICES, b.data, b.len) ||
	    mig_stream_put(&s, MIG_REC_END, NULL, 0))
		abort();
	mig_buf_free(&b);
	mig_stream_fini(&s);
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *seed = getenv("SKIFF_FUZZ_WRITE_SEED");

	(void)argc;
	(void)argv;
	setup();
	if (seed) {
		write_seed(seed);
		_exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool have_config = false, have_devices = false, state = false;
	struct mig_stream s;
	uint64_t pages = 0;
	uint32_t flags, type = 0;
	char err[512] = "";

	uint8_t *copy = malloc(size ? size : 1);

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
	if (mig_stream_read_header(&s, &flags, err, sizeof(err)))
		goto out;
	while (mig_stream_next(&s, &type, err, sizeof(err)) == 0) {
		const void *p = s.rec.data;
		size_t len = s.rec.len;

		if (!have_config && type != MIG_REC_CONFIG)
			break;
		if (type == MIG_REC_CONFIG) {
			if (have_config || mig_config_check(vm, p, len, err, sizeof(err)))
				break;
			have_config = true;
		} else if (type == MIG_REC_RAM) {
			if (state || mig_ram_load(vm->mem, written, p, len, &pages, err, sizeof(err)))
				break;
		} else if (type == MIG_REC_DEVICES) {
			state = true;
			if (have_devices || mig_devices_load(vm, p, len, err, sizeof(err)))
				break;
			have_devices = true;
		} else if (type == MIG_REC_VM || type == MIG_REC_VCPU) {
			state = true; /* KVM's to check */
		} else if (type == MIG_REC_END) {
			break;
		} else if (type != MIG_REC_PASS && type != MIG_REC_VERIFY) {
			break;
		}
	}
out:
	/* SKIFF_FUZZ_VERBOSE: where a replayed input stopped (seed checks). */
	if (getenv("SKIFF_FUZZ_VERBOSE"))
		fprintf(stderr, "stopped at record type %u (config %d, devices %d): %s\n", type,
			have_config, have_devices, err);
	mig_stream_fini(&s);
	return 0;
}

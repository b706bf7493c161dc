/*
 * The configuration record (MIG_REC_CONFIG): what the destination must have
 * built from its own command line for the stream to fit — RAM size, vCPU
 * count, the CPUID table, and the devices with the size and mode of their
 * backing. The destination compares field by field and names the first
 * difference.
 *
 * Layout (v1, little-endian): u32 version, u64 RAM bytes, u32 vCPUs,
 * u32 CPUID entries then per entry u32 function, index, flags, eax, ebx,
 * ecx, edx; u8 rng; u32 disks then per disk u64 bytes, u8 read-only,
 * u32 queues; u32 net devices (0 in v1's writers that have none).
 *
 * Thread context: migration thread (the VM's configuration is immutable
 * while it runs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migrate_priv.h"

#define CONFIG_REC_VERSION 1

static uint64_t backing_size(const char *path)
{
	struct stat st;
	uint64_t size = 0;
	int fd;

	if (stat(path, &st) < 0)
		return 0;
	if (!S_ISBLK(st.st_mode))
		return (uint64_t)st.st_size;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		size = 0;
	close(fd);
	return size;
}

/* The CPUID table as vCPU 0 sees it: KVM_GET_SUPPORTED_CPUID reports some
 * fields of the CPU the ioctl ran on (leaf 1's APIC ID, ...), which differ
 * from run to run; the per-vCPU patch replaces all of them. */
static struct kvm_cpuid2 *cpuid_table(struct vm *vm)
{
	return vm->vcpu_ctx.cpuid ? vcpu_cpuid_for(vm->vcpu_ctx.cpuid, 0, vm->nr_vcpus) : NULL;
}

int mig_config_save(struct vm *vm, struct mig_buf *b)
{
	struct kvm_cpuid2 *c = cpuid_table(vm);

	mig_put_u32(b, CONFIG_REC_VERSION);
	mig_put_u64(b, vm->mem->size);
	mig_put_u32(b, vm->nr_vcpus);
	mig_put_u32(b, c ? c->nent : 0);
	for (uint32_t i = 0; c && i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		mig_put_u32(b, e->function);
		mig_put_u32(b, e->index);
		mig_put_u32(b, e->flags);
		mig_put_u32(b, e->eax);
		mig_put_u32(b, e->ebx);
		mig_put_u32(b, e->ecx);
		mig_put_u32(b, e->edx);
	}
	mig_put_u8(b, vm->rng != NULL);
	mig_put_u32(b, vm->cfg->nr_disks);
	for (unsigned int i = 0; i < vm->cfg->nr_disks; i++) {
		const struct config_disk *d = &vm->cfg->disks[i];

		mig_put_u64(b, backing_size(d->path));
		mig_put_u8(b, d->readonly);
		mig_put_u32(b, d->queues);
	}
	mig_put_u32(b, vm->nr_nets);
	free(c);
	return b->err;
}

static int config_check(struct vm *vm, const struct kvm_cpuid2 *c, const void *p, size_t len,
			char *err, size_t errlen)
{
	struct mig_rd r;
	uint32_t v, n;
	uint64_t mem;

	mig_rd_init(&r, p, len);
	v = mig_get_u32(&r);
	if (v != CONFIG_REC_VERSION) {
		snprintf(err, errlen, "configuration record version %u, expected %u", v,
			 CONFIG_REC_VERSION);
		return -EPROTO;
	}
	mem = mig_get_u64(&r);
	if (!r.bad && mem != vm->mem->size) {
		snprintf(err, errlen, "the source has %llu MiB of RAM, this VM %llu MiB "
			 "(give the destination the same --memory)",
			 (unsigned long long)(mem >> 20), (unsigned long long)(vm->mem->size >> 20));
		return -EINVAL;
	}
	n = mig_get_u32(&r);
	if (!r.bad && n != vm->nr_vcpus) {
		snprintf(err, errlen, "the source has %u vCPUs, this VM %u (give the destination "
			 "the same --cpus)", n, vm->nr_vcpus);
		return -EINVAL;
	}
	n = mig_get_u32(&r);
	if (!r.bad && n != (c ? c->nent : 0)) {
		snprintf(err, errlen, "the source's CPUID table has %u entries, this host's %u: "
			 "the hosts' CPUs or KVM versions differ", n, c ? c->nent : 0);
		return -EINVAL;
	}
	for (uint32_t i = 0; !r.bad && c && i < n; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		uint32_t f = mig_get_u32(&r), idx = mig_get_u32(&r), fl = mig_get_u32(&r);
		uint32_t a = mig_get_u32(&r), bb = mig_get_u32(&r), cc = mig_get_u32(&r);
		uint32_t d = mig_get_u32(&r);

		if (!r.bad && (f != e->function || idx != e->index || fl != e->flags ||
			       a != e->eax || bb != e->ebx || cc != e->ecx || d != e->edx)) {
			snprintf(err, errlen, "CPUID leaf 0x%x index %u differs between the source "
				 "(%08x %08x %08x %08x) and this host (%08x %08x %08x %08x): the hosts' "
				 "CPUs or KVM versions differ", f, idx, a, bb, cc, d, e->eax, e->ebx,
				 e->ecx, e->edx);
			return -EINVAL;
		}
	}
	v = mig_get_u8(&r);
	if (!r.bad && v != (vm->rng != NULL)) {
		snprintf(err, errlen, "the source %s a virtio-rng device, this VM %s (--rng)",
			 v ? "has" : "has no", vm->rng ? "has" : "has none");
		return -EINVAL;
	}
	n = mig_get_u32(&r);
	if (!r.bad && n != vm->cfg->nr_disks) {
		snprintf(err, errlen, "the source has %u disks, this VM %u (give the destination the "
			 "same --disk options)", n, vm->cfg->nr_disks);
		return -EINVAL;
	}
	for (uint32_t i = 0; !r.bad && i < n; i++) {
		const struct config_disk *d = &vm->cfg->disks[i];
		uint64_t size = mig_get_u64(&r), mine = backing_size(d->path);
		uint8_t ro = mig_get_u8(&r);
		uint32_t q = mig_get_u32(&r);

		if (r.bad)
			break;
		if (size != mine) {
			snprintf(err, errlen, "disk %u: the source's image has %llu bytes, %s has %llu",
				 i, (unsigned long long)size, d->path, (unsigned long long)mine);
			return -EINVAL;
		}
		if (ro != d->readonly || q != d->queues) {
			snprintf(err, errlen, "disk %u: readonly/queues differ between the source "
				 "(%s, %u) and this VM (%s, %u)", i, ro ? "on" : "off", q,
				 d->readonly ? "on" : "off", d->queues);
			return -EINVAL;
		}
	}
	n = mig_get_u32(&r);
	if (!r.bad && n != vm->nr_nets) {
		snprintf(err, errlen, "the source has %u network devices, this VM %u", n, vm->nr_nets);
		return -EINVAL;
	}
	if (!mig_rd_done(&r, true)) {
		snprintf(err, errlen, "malformed configuration record");
		return -EBADMSG;
	}
	return 0;
}

int mig_config_check(struct vm *vm, const void *p, size_t len, char *err, size_t errlen)
{
	struct kvm_cpuid2 *c = cpuid_table(vm);
	int ret;

	if (vm->vcpu_ctx.cpuid && !c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = config_check(vm, c, p, len, err, errlen);
	free(c);
	return ret;
}

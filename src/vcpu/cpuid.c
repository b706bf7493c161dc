/*
 * CPUID for the guest: what KVM supports on this host (including KVM's
 * paravirtual leaves 0x40000000/0x40000001: kvmclock, PV EOI, steal time),
 * with the per-vCPU identity (APIC ID), the hypervisor bit and a
 * one-package topology filled in.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vcpu.h"

#define CPUID_INITIAL_ENTRIES 128
#define CPUID_MAX_ENTRIES 4096
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)

int vcpu_cpuid_create(int kvm_fd, struct kvm_cpuid2 **out)
{
	unsigned int n = CPUID_INITIAL_ENTRIES;

	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG || n >= CPUID_MAX_ENTRIES)
			return -errno;
		n *= 2;
	}
}

void vcpu_cpuid_destroy(struct kvm_cpuid2 *c)
{
	free(c);
}

/* Bits needed for `n` IDs: ceil(log2(n)). */
static unsigned int id_bits(unsigned int n)
{
	unsigned int b = 0;

	while ((1u << b) < n)
		b++;
	return b;
}

/*
 * Topology: one package of nr_cpus cores, one thread each; the APIC ID is
 * the vCPU index. Leaves 0xb/0x1f (x2APIC topology, Intel SDM vol. 2 CPUID),
 * 4 (Intel cache sharing), 0x80000008 ECX, 0x8000001d and 0x8000001e (AMD
 * APM vol. 3 E.4) all say the same thing, so Linux builds one package with
 * nr_cpus cores whichever vendor the host is.
 */
static void topology_leaf(struct kvm_cpuid_entry2 *e, unsigned int index, unsigned int nr_cpus)
{
	unsigned int core_bits = id_bits(nr_cpus);
	unsigned int level;

	switch (e->function) {
	case 4:
	case 0x8000001d:
		/* EAX[25:14]: logical CPUs sharing this cache - 1 (L3: all). */
		level = (e->eax >> 5) & 7;
		e->eax &= ~(0xfffu << 14);
		if (level >= 3)
			e->eax |= (nr_cpus - 1) << 14;
		if (e->function == 4) /* EAX[31:26]: cores per package - 1 */
			e->eax = (e->eax & 0x03ffffffu) | ((MIN(nr_cpus, 64u) - 1) << 26);
		break;
	case 0xb:
	case 0x1f:
		if (e->index == 0) {          /* SMT level: 1 thread per core */
			e->eax = 0;
			e->ebx = 1;
			e->ecx = (1u << 8) | 0;
		} else if (e->index == 1) {   /* core level */
			e->eax = core_bits;
			e->ebx = nr_cpus;
			e->ecx = (2u << 8) | 1;
		} else {                      /* no more levels */
			e->eax = e->ebx = 0;
			e->ecx = e->index & 0xff;
		}
		e->edx = index; /* x2APIC ID */
		break;
	case 0x80000008:
		/* ECX[15:12] APIC ID bits for the core, [7:0] cores - 1. */
		e->ecx = (e->ecx & ~0xf0ffu) | (core_bits << 12) | ((nr_cpus - 1) & 0xff);
		break;
	case 0x8000001e:
		e->eax = index;               /* extended APIC ID */
		e->ebx = index & 0xff;        /* core ID; 1 thread per core */
		e->ecx = 0;                   /* node 0, one node */
		e->edx = 0;
		break;
	default:
		break;
	}
}

struct kvm_cpuid2 *vcpu_cpuid_for(const struct kvm_cpuid2 *base, unsigned int index,
				  unsigned int nr_cpus)
{
	size_t sz = sizeof(*base) + base->nent * sizeof(base->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	unsigned int i, addressable = 1u << id_bits(nr_cpus);

	if (!c)
		return NULL;
	memcpy(c, base, sz);
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 1) {
			/* EBX[31:24] initial APIC ID, [23:16] addressable IDs. */
			e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) |
				 (MIN(addressable, 255u) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
		} else {
			topology_leaf(e, index, nr_cpus);
		}
	}
	return c;
}

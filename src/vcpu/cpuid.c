/*
 * CPUID for the guest: what KVM supports on this host, with the per-vCPU
 * identity (APIC ID) and the hypervisor bit filled in. Full topology leaves
 * (0xb, 0x8000001e) and cache leaves come with multi-socket work.
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

struct kvm_cpuid2 *vcpu_cpuid_for(const struct kvm_cpuid2 *base, unsigned int index,
				  unsigned int nr_cpus)
{
	size_t sz = sizeof(*base) + base->nent * sizeof(base->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	unsigned int i;

	if (!c)
		return NULL;
	memcpy(c, base, sz);
	for (i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, [23:16] logical processors. */
			e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) |
				 ((nr_cpus > 255 ? 255 : nr_cpus) << 16);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (nr_cpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			break;
		case 0xb:
		case 0x1f:
			e->edx = index; /* x2APIC ID */
			break;
		default:
			break;
		}
	}
	return c;
}

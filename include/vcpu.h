/*
 * vCPUs: one thread each, running KVM_RUN and the short register handlers
 * that the buses dispatch to. Nothing else runs on a vCPU thread.
 */
#ifndef SKIFF_VCPU_H
#define SKIFF_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bus.h"
#include "runstate.h"
#include "sandbox.h"
#include "util.h"

struct vcpu_ctx {
	int vm_fd;
	int kvm_fd;
	int run_size;             /* KVM_GET_VCPU_MMAP_SIZE */
	struct bus *pio;
	struct bus *mmio;
	struct runstate *rs;
	struct kvm_cpuid2 *cpuid; /* supported CPUID, adjusted per vCPU */
	unsigned int nr_cpus;
	const struct sandbox *sandbox; /* vCPU threads' seccomp filter, NULL: none */
	/* Probed once when the VM is built, read by migration (an ioctl
	 * each time would sit in the downtime): KVM_CAP_XSAVE2's XSAVE
	 * size, KVM_CAP_SREGS2 as 1 (has it) or -1; 0 in both: not probed. */
	int xsave_size;
	int sregs2;
	/* KVM_CAP_SYNC_REGS's mask (KVM_SYNC_X86_*); 0: none or not probed. */
	int sync_regs;
};

struct vcpu;
typedef void (*vcpu_park_fn)(struct vcpu *v, void *arg);

struct vcpu {
	unsigned int index;       /* also the APIC ID */
	int fd;
	struct kvm_run *run;
	const struct vcpu_ctx *ctx;
	pthread_t thread;
	bool started;
	pid_t tid;                /* set by the thread itself */
	uint64_t exits_io, exits_mmio;
	struct kvm_lapic_state *lapic0; /* LAPIC at power-on, restored on reset */
	/* The MSRs migration saves, probed once (vcpu_saved_msrs). */
	atomic_bool msr_req;
	_Atomic(struct kvm_msrs *) saved_msrs;
	uint64_t apic_base0;            /* IA32_APIC_BASE at power-on */
	/* One piece of work for the vCPU thread at its next park (see
	 * vcpu_on_next_park); the pointer is the claim. */
	_Atomic(vcpu_park_fn) park_fn;
	void *park_arg;
};

/* How vCPUs start: the BSP (index 0) at the PVH 32-bit entry, or with
 * linux64 at the 64-bit Linux entry (long mode, identity page tables at
 * `cr3`, GDT at `gdt`, %rsi = boot_params); APs wait for INIT/SIPI unless
 * all_at_entry (skiff test guests) starts them at the PVH entry too. */
struct vcpu_boot {
	bool all_at_entry;
	bool linux64;
	uint64_t entry;           /* 32-bit PVH entry, or the 64-bit entry */
	uint32_t start_info;      /* PVH: %ebx; linux64: %rsi (zero page) */
	uint32_t cr3;             /* linux64: PML4 */
	uint32_t gdt;             /* linux64: GDT with code 0x10, data 0x18 */
};

/* Builds the CPUID table for nr_cpus vCPUs from KVM_GET_SUPPORTED_CPUID. */
int MUST_CHECK vcpu_cpuid_create(int kvm_fd, struct kvm_cpuid2 **out);
void vcpu_cpuid_destroy(struct kvm_cpuid2 *c);
/* A malloc'd copy of `base` patched for vCPU `index` of `nr_cpus` (APIC ID,
 * logical count, hypervisor bit); NULL on allocation failure. */
struct kvm_cpuid2 *vcpu_cpuid_for(const struct kvm_cpuid2 *base, unsigned int index,
				  unsigned int nr_cpus);

#define VCPU_MAX_MSRS 512
#define VCPU_MSR_TSC_DEADLINE 0x6e0
/* Migration thread: asks the vCPU thread to find, at its next exit, which
 * MSRs KVM saves for it (probing costs about 0.3 ms: better before the VM
 * stops than in the downtime). */
void vcpu_request_saved_msrs(struct vcpu *v);
/* Any thread, the vCPU parked or its thread asked above: a copy (caller
 * frees) of that MSR list, probed here if the vCPU thread has not. */
int MUST_CHECK vcpu_saved_msrs(struct vcpu *v, struct kvm_msrs **out);
/* Main thread, just before it parks the vCPUs for a migration's final
 * phase: fn(v, arg) runs once on the vCPU's own thread right after it parks
 * (each vCPU saves its state there, in parallel with the migration
 * thread's work). The work is claimed by
 * whoever swaps the pointer out first: vcpu_claim_park() returns fn when
 * the vCPU thread has not taken it (it never parked again, or was parked
 * already by `stop`): then the caller runs it itself; NULL when the vCPU
 * thread has it (the caller waits for the work's own completion signal). */
void vcpu_on_next_park(struct vcpu *v, vcpu_park_fn fn, void *arg);
vcpu_park_fn vcpu_claim_park(struct vcpu *v);

int MUST_CHECK vcpu_create(const struct vcpu_ctx *ctx, unsigned int index,
			   const struct vcpu_boot *boot, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);
/* Sets the boot-time register, FPU and LAPIC state (creation, and reset
 * with the vCPU thread stopped). */
int MUST_CHECK vcpu_reset_state(struct vcpu *v, const struct vcpu_boot *boot);

/* Starts the thread (signals must already be blocked by the caller). */
int MUST_CHECK vcpu_start(struct vcpu *v);
/* Makes KVM_RUN return promptly (any thread); the thread then sees the
 * run state and leaves its loop. */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);

/* The general registers. A destination's load may leave them in the
 * vCPU's kvm_run for its next KVM_RUN to set (vcpu_defer_regs); until that
 * KVM_RUN, KVM holds stale ones, so every reader and writer goes through
 * these two, from the vCPU's thread or with the thread parked or stopped. */
int MUST_CHECK vcpu_get_regs(struct vcpu *v, struct kvm_regs *regs);
int MUST_CHECK vcpu_set_regs(struct vcpu *v, const struct kvm_regs *regs);
/* The vCPU parked or not started: the registers go into kvm_run, and KVM sets
 * them at the start of the next KVM_RUN (KVM_CAP_SYNC_REGS), before it
 * handles anything else: a vCPU ioctl less, several microseconds of a
 * migration's downtime under some hypervisors. -ENOTSUP without the
 * capability. Only for a runnable or halted vCPU: KVM applies them only
 * once the vCPU runs, after an INIT or SIPI would have set its own. */
int MUST_CHECK vcpu_defer_regs(struct vcpu *v, const struct kvm_regs *regs);

/* Prints registers and segment state (for guest faults). */
void vcpu_dump(struct vcpu *v, FILE *out);

/* The signal used to kick vCPU threads out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

#endif

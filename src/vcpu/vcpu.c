/*
 * vCPU threads: KVM_RUN and the exits it returns. Port and MMIO accesses go
 * to the VM's buses; everything else that ends the guest goes to the run
 * state. Nothing slow runs here.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "vcpu.h"

/* --- initial state -------------------------------------------------------- */

/* Flat 4 GiB segment as the Xen PVH ABI requires at entry. */
static struct kvm_segment flat_seg(uint16_t sel, uint8_t type)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

/* PVH entry (xen docs/misc/pvh.pandoc): 32-bit protected mode, paging off,
 * CR0 = PE|ET, flat CS/DS/ES/SS, a 32-bit TSS in TR, %ebx = start_info. */
static int setup_pvh_entry(struct vcpu *v, const struct vcpu_boot *boot)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	struct kvm_fpu fpu = { 0 };
	int ret;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_seg(0x10, 0xb);      /* execute/read, accessed */
	sregs.ds = flat_seg(0x18, 0x3);      /* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){ .limit = 0x67, .type = 0xb, .present = 1 };
	sregs.cr0 = 0x11; /* PE | ET */
	sregs.cr3 = 0;
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	regs.rip = (uint32_t)boot->entry;
	regs.rbx = boot->start_info;
	regs.rflags = 0x2; /* reserved bit 1 */
	ret = vcpu_set_regs(v, &regs);
	if (ret)
		return ret;

	/* x87 and SSE control words as after FNINIT / power-on. */
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;

	return 0;
}

/* 64-bit Linux entry (Documentation/x86/boot.rst, "64-bit Boot Protocol"):
 * long mode with paging on an identity map that covers the kernel, the zero
 * page and the command line; __BOOT_CS = 0x10 64-bit code, __BOOT_DS = 0x18
 * flat data; interrupts off; %rsi = boot_params. */
static int setup_linux64_entry(struct vcpu *v, const struct vcpu_boot *boot)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	struct kvm_fpu fpu = { 0 };
	int ret;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = flat_seg(0x10, 0xb);
	sregs.cs.l = 1;
	sregs.cs.db = 0;
	sregs.ds = flat_seg(0x18, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){ .limit = 0x67, .type = 0xb, .present = 1 };
	sregs.gdt.base = boot->gdt;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.cr0 = 0x80000011; /* PG | ET | PE */
	sregs.cr3 = boot->cr3;
	sregs.cr4 = 0x20;       /* PAE */
	sregs.efer = 0x500;     /* LME | LMA */
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	regs.rip = boot->entry;
	regs.rsi = boot->start_info;
	regs.rflags = 0x2;
	ret = vcpu_set_regs(v, &regs);
	if (ret)
		return ret;
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

/* Local APIC as firmware leaves it on a PC: LINT0 in ExtINT mode (the PIC's
 * virtual wire), LINT1 delivering NMI. Linux relies on this when it checks
 * the timer through the PIC and for NMI watchdog/IPI set-up. */
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI (4u << 8)
#define APIC_MODE_EXTINT (7u << 8)

static int setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state la;
	uint32_t lint0, lint1;

	if (ioctl(v->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	memcpy(&lint0, la.regs + APIC_LVT_LINT0, 4);
	memcpy(&lint1, la.regs + APIC_LVT_LINT1, 4);
	/* Only the BSP takes the PIC's virtual wire; APs keep LINT0 masked. */
	if (v->index == 0)
		lint0 = (lint0 & ~0x700u & ~(1u << 16)) | APIC_MODE_EXTINT;
	lint1 = (lint1 & ~0x700u & ~(1u << 16)) | APIC_MODE_NMI;
	memcpy(la.regs + APIC_LVT_LINT0, &lint0, 4);
	memcpy(la.regs + APIC_LVT_LINT1, &lint1, 4);
	if (ioctl(v->fd, KVM_SET_LAPIC, &la) < 0)
		return -errno;
	return 0;
}

/* KVM paravirtual MSRs that make KVM write into guest memory (kvmclock,
 * steal time, async PF, PV EOI): zero at power-on, so a reset kernel is not
 * scribbled on at the old kernel's addresses. */
static const uint32_t pv_msrs[] = {
	0x4b564d01, /* MSR_KVM_SYSTEM_TIME_NEW */
	0x4b564d02, /* MSR_KVM_ASYNC_PF_EN */
	0x4b564d03, /* MSR_KVM_STEAL_TIME */
	0x4b564d04, /* MSR_KVM_PV_EOI_EN */
	0x12,       /* MSR_KVM_SYSTEM_TIME (old) */
};

static void clear_pv_msrs(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(pv_msrs)];
	} m;
	unsigned int i;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < ARRAY_SIZE(pv_msrs); i++)
		m.e[i].index = pv_msrs[i];
	m.hdr.nmsrs = ARRAY_SIZE(pv_msrs);
	/* KVM stops at the first MSR it refuses; a host without one of
	 * these simply never had it enabled. */
	(void)ioctl(v->fd, KVM_SET_MSRS, &m);
}

/* A reset restarts the time-stamp counter from 0, as at power-on (KVM
 * starts a new vCPU's at 0). All vCPUs are written within a few ms of each
 * other, so KVM matches their offsets and the TSCs stay synchronized. */
static void reset_tsc(struct vcpu *v)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} m;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = 1;
	m.e[0].index = 0x10; /* MSR_IA32_TSC */
	(void)ioctl(v->fd, KVM_SET_MSRS, &m);
}

/* KVM finishes an exit's I/O (and may skip the instruction) on the next
 * KVM_RUN; with immediate_exit set that run executes no guest instruction
 * (KVM API: "re-enter the guest ... with the immediate_exit field set to
 * complete pending operations"). Called with the vCPU thread stopped. */
static void complete_pending_exit(struct vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	(void)ioctl(v->fd, KVM_RUN, 0); /* -EINTR by design */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
}

int vcpu_reset_state(struct vcpu *v, const struct vcpu_boot *boot)
{
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_UNINITIALIZED };
	struct kvm_vcpu_events ev = { .flags = KVM_VCPUEVENT_VALID_NMI_PENDING };
	bool at_entry = v->index == 0 || boot->all_at_entry;
	bool resetting = v->lapic0 != NULL; /* a guest reset, not vcpu_create() */
	int ret;

	if (resetting) {
		/* A reset: the vCPU has run, and its LAPIC may be in x2APIC
		 * mode. Back to the power-on APIC base (xAPIC) first: KVM checks
		 * the saved registers against the mode. */
		struct kvm_sregs sregs;

		complete_pending_exit(v);
		if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
			return -errno;
		sregs.apic_base = v->apic_base0;
		if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 ||
		    ioctl(v->fd, KVM_SET_LAPIC, v->lapic0) < 0)
			return -errno;
	} else {
		struct kvm_sregs sregs;

		if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
			return -errno;
		v->apic_base0 = sregs.apic_base;
		ret = setup_lapic(v);
		if (ret)
			return ret;
		v->lapic0 = malloc(sizeof(*v->lapic0));
		if (!v->lapic0 || ioctl(v->fd, KVM_GET_LAPIC, v->lapic0) < 0)
			return v->lapic0 ? -errno : -ENOMEM;
	}
	clear_pv_msrs(v);
	if (resetting)
		reset_tsc(v);
	(void)ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev);
	/* APs wait for INIT/SIPI: an INIT resets their registers in KVM. */
	if (at_entry)
		mp.mp_state = KVM_MP_STATE_RUNNABLE;
	if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	if (boot->linux64 && v->index == 0)
		return setup_linux64_entry(v, boot);
	if (at_entry)
		return setup_pvh_entry(v, boot);
	return 0;
}

/* --- create/destroy ------------------------------------------------------- */

int vcpu_create(const struct vcpu_ctx *ctx, unsigned int index, const struct vcpu_boot *boot,
		struct vcpu **out)
{
	struct kvm_cpuid2 *cpuid = NULL;
	struct vcpu *v;
	int ret;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->index = index;
	v->ctx = ctx;
	v->fd = ioctl(ctx->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		ret = -errno;
		goto err_free;
	}
	v->run = mmap(NULL, (size_t)ctx->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	cpuid = vcpu_cpuid_for(ctx->cpuid, index, ctx->nr_cpus);
	if (!cpuid) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		ret = -errno;
		goto err_cpuid;
	}
	free(cpuid);
	cpuid = NULL;
	ret = vcpu_reset_state(v, boot);
	if (ret)
		goto err_unmap;
	*out = v;
	return 0;

err_cpuid:
	free(cpuid);
err_unmap:
	free(v->lapic0);
	munmap(v->run, (size_t)ctx->run_size);
err_close:
	close(v->fd);
err_free:
	free(v);
	return ret;
}

/* The MSRs KVM saves for this vCPU (the TSC deadline aside: migration has
 * it in its own section, after the LAPIC): the index list minus those
 * KVM_GET_MSRS refuses. KVM_GET_MSRS stops at the first MSR it refuses
 * and returns how many it read, so one call per refused MSR finds them. */
static int probe_msrs(struct vcpu *v, struct kvm_msrs **out)
{
	struct kvm_msr_list *list;
	struct kvm_msrs *m, *probe;
	uint32_t n = 0, from = 0;
	int ret = 0;

	list = calloc(1, sizeof(*list) + VCPU_MAX_MSRS * sizeof(uint32_t));
	m = calloc(1, sizeof(*m) + VCPU_MAX_MSRS * sizeof(struct kvm_msr_entry));
	probe = calloc(1, sizeof(*probe) + VCPU_MAX_MSRS * sizeof(struct kvm_msr_entry));
	if (!list || !m || !probe) {
		ret = -ENOMEM;
		goto fail;
	}
	list->nmsrs = VCPU_MAX_MSRS;
	if (ioctl(v->ctx->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		ret = -errno;
		goto fail;
	}
	while (from < list->nmsrs) {
		uint32_t k = 0;
		int got;

		for (uint32_t i = from; i < list->nmsrs; i++) {
			if (list->indices[i] != VCPU_MSR_TSC_DEADLINE) /* its own section */
				probe->entries[k++].index = list->indices[i];
		}
		if (!k)
			break;
		probe->nmsrs = k;
		got = ioctl(v->fd, KVM_GET_MSRS, probe);
		if (got < 0) {
			ret = -errno;
			goto fail;
		}
		for (int i = 0; i < got; i++)
			m->entries[n++].index = probe->entries[i].index;
		if ((uint32_t)got == k)
			break;
		/* Skip the refused one: find it in the list and go on after it. */
		for (uint32_t i = from; i < list->nmsrs; i++) {
			if (list->indices[i] == probe->entries[got].index) {
				from = i + 1;
				break;
			}
		}
	}
	m->nmsrs = n;
	free(probe);
	free(list);
	*out = m;
	return 0;
fail:
	free(probe);
	free(list);
	free(m);
	return ret;
}

/* vCPU thread (after a kick) or any thread while the vCPU is parked. */
static void publish_saved_msrs(struct vcpu *v)
{
	struct kvm_msrs *m;

	if (atomic_load_explicit(&v->saved_msrs, memory_order_acquire) || probe_msrs(v, &m))
		return;
	/* Release: the entries are complete before the pointer is seen. A
	 * second prober (the migration thread, racing) frees its own copy. */
	struct kvm_msrs *none = NULL;

	if (!atomic_compare_exchange_strong_explicit(&v->saved_msrs, &none, m,
						     memory_order_release, memory_order_relaxed))
		free(m);
}

void vcpu_request_saved_msrs(struct vcpu *v)
{
	atomic_store_explicit(&v->msr_req, true, memory_order_relaxed);
	vcpu_kick(v);
}

void vcpu_on_next_park(struct vcpu *v, vcpu_park_fn fn, void *arg)
{
	v->park_arg = arg;
	/* Release: park_arg is set before the vCPU thread can see fn. */
	atomic_store_explicit(&v->park_fn, fn, memory_order_release);
}

vcpu_park_fn vcpu_claim_park(struct vcpu *v)
{
	return atomic_exchange_explicit(&v->park_fn, NULL, memory_order_acq_rel);
}

/* vCPU thread, counted as parked: the work left by vcpu_on_next_park. */
static void park_work(void *arg)
{
	struct vcpu *v = arg;
	vcpu_park_fn fn = vcpu_claim_park(v);

	if (fn)
		fn(v, v->park_arg);
}

int vcpu_saved_msrs(struct vcpu *v, struct kvm_msrs **out)
{
	struct kvm_msrs *m;
	size_t bytes;

	publish_saved_msrs(v); /* no-op when the vCPU thread did it */
	m = atomic_load_explicit(&v->saved_msrs, memory_order_acquire);
	if (!m)
		return -EIO;
	bytes = sizeof(*m) + m->nmsrs * sizeof(m->entries[0]);
	*out = malloc(bytes);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, m, bytes);
	return 0;
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v)
		return;
	free(atomic_load(&v->saved_msrs));
	munmap(v->run, (size_t)v->ctx->run_size);
	close(v->fd);
	free(v->lapic0);
	free(v);
}

/* --- general registers ---------------------------------------------------- */

/* kvm_dirty_regs is shared with KVM, which clears the bit in the KVM_RUN
 * that applies the registers; the callers' contexts (the vCPU's own
 * thread, or its thread parked or stopped, with the park's lock ordering
 * the accesses) keep it from being read or written concurrently. */
static bool regs_deferred(const struct vcpu *v)
{
	return v->run && (v->run->kvm_dirty_regs & KVM_SYNC_X86_REGS);
}

int vcpu_get_regs(struct vcpu *v, struct kvm_regs *regs)
{
	if (regs_deferred(v)) {
		*regs = v->run->s.regs.regs;
		return 0;
	}
	return ioctl(v->fd, KVM_GET_REGS, regs) < 0 ? -errno : 0;
}

int vcpu_set_regs(struct vcpu *v, const struct kvm_regs *regs)
{
	struct kvm_regs copy = *regs;

	/* A deferred set would overwrite this one at the next KVM_RUN. */
	if (regs_deferred(v))
		v->run->kvm_dirty_regs &= ~(uint64_t)KVM_SYNC_X86_REGS;
	return ioctl(v->fd, KVM_SET_REGS, &copy) < 0 ? -errno : 0;
}

int vcpu_defer_regs(struct vcpu *v, const struct kvm_regs *regs)
{
	if (!v->run || !(v->ctx->sync_regs & KVM_SYNC_X86_REGS))
		return -ENOTSUP;
	v->run->s.regs.regs = *regs;
	v->run->kvm_dirty_regs |= KVM_SYNC_X86_REGS;
	return 0;
}

/* --- diagnostics ---------------------------------------------------------- */

static void dump_seg(FILE *out, const char *name, const struct kvm_segment *s)
{
	fprintf(out, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u l=%u db=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->l, s->db);
}

void vcpu_dump(struct vcpu *v, FILE *out)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	bool have_regs = vcpu_get_regs(v, &r) == 0;

	fprintf(out, "vCPU %u registers:\n", v->index);
	if (have_regs) {
		fprintf(out, "  rip=%016llx rsp=%016llx rflags=%016llx\n"
			"  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
			"  rsi=%016llx rdi=%016llx rbp=%016llx\n"
			"  r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
			"  r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n",
			r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
			r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &s) == 0) {
		fprintf(out, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n",
			s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
		dump_seg(out, "cs", &s.cs);
		dump_seg(out, "ss", &s.ss);
		dump_seg(out, "ds", &s.ds);
		dump_seg(out, "tr", &s.tr);
		fprintf(out, "  gdt=%016llx+%x idt=%016llx+%x\n", s.gdt.base, s.gdt.limit,
			s.idt.base, s.idt.limit);
		/* skiff starts no vCPU at the reset vector (there is no
		 * firmware): this is KVM's INIT state. */
		if (s.cs.selector == 0xf000 && s.cs.base == 0xffff0000 &&
		    (s.cr0 & 1) == 0 && have_regs && r.rip == 0xfff0)
			fprintf(out, "  (the power-on state: on AMD hosts KVM re-initialises a vCPU "
				"when it reports a triple fault, so these are not the registers "
				"the guest faulted with)\n");
	}
}

/* --- the run loop (vCPU thread) ------------------------------------------ */

static void guest_fault(struct vcpu *v, const char *what)
{
	char why[160];

	snprintf(why, sizeof(why), "guest fault on vCPU %u: %s", v->index, what);
	/* Only the first fault is reported with a dump: later vCPUs that stop
	 * because of it would only add noise. */
	if (runstate_request_exit(v->ctx->rs, SKIFF_EXIT_GUEST_FAULT, why)) {
		log_err("%s", why);
		vcpu_dump(v, stderr);
	}
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint32_t i;

	v->exits_io++;
	/* String I/O (rep outs/ins) arrives as `count` items of `size` bytes. */
	for (i = 0; i < run->io.count; i++, data += run->io.size)
		bus_dispatch(v->ctx->pio, run->io.port, data, run->io.size, is_write);
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	uint32_t len = MIN(run->mmio.len, (uint32_t)sizeof(run->mmio.data));

	v->exits_mmio++;
	bus_dispatch(v->ctx->mmio, run->mmio.phys_addr, run->mmio.data, len, run->mmio.is_write);
}

static void handle_system_event(struct vcpu *v)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		runstate_request_exit(v->ctx->rs, SKIFF_EXIT_OK, "guest powered off");
		break;
	case KVM_SYSTEM_EVENT_RESET:
		runstate_request_exit(v->ctx->rs, SKIFF_EXIT_RESET, "guest reset");
		break;
	default:
		guest_fault(v, "guest crashed (KVM system event)");
		break;
	}
}

/* Returns false when the loop must end. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *run = v->run;
	char what[128];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_HLT:
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_SYSTEM_EVENT:
		handle_system_event(v);
		return false;
	case KVM_EXIT_SHUTDOWN:
		guest_fault(v, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed (hardware reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		guest_fault(v, what);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u%s",
			 run->internal.suberror,
			 run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ?
			 " (instruction emulation failed)" : "");
		guest_fault(v, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unhandled KVM exit reason %u", run->exit_reason);
		guest_fault(v, what);
		return false;
	}
}

/*
 * Auto-converge (migration): the migration's kicker thread kicks every vCPU
 * each 10 ms; a kicked vCPU sleeps throttle_pct of that period. The kick set
 * immediate_exit: clear it (sequentially consistent, so the loop's next
 * check of the pause/exit requests cannot be ordered before the clear; a
 * pause or exit kick after the clear sets it again).
 */
static void vcpu_throttle(struct vcpu *v)
{
	unsigned int pct = atomic_load_explicit(&v->ctx->rs->throttle_pct, memory_order_relaxed);
	struct timespec ts;

	if (!pct || runstate_pause_requested(v->ctx->rs) || runstate_exiting(v->ctx->rs))
		return;
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	ts = (struct timespec){ .tv_nsec = (long)MIN(pct, 99u) * 100000L };
	nanosleep(&ts, NULL);
}

/* vCPU thread, about to park after KVM_RUN returned an exit. KVM finishes
 * an exit's port or MMIO access (the data of a read into the register, the
 * instruction pointer past an IN, OUT or MMIO instruction) only on the
 * next KVM_RUN. A parked vCPU's state may be saved (migration, snapshot):
 * saved before that, the destination would run the access again (a
 * character printed twice, a byte read from a FIFO lost). So it enters
 * KVM_RUN once more with immediate_exit set, which completes the access
 * and returns -EINTR without running a guest instruction (KVM API,
 * "immediate_exit"); an access the completion splits (MMIO across a page)
 * exits again and is served first. Returns false when the vCPU must end. */
static bool finish_exit(struct vcpu *v)
{
	for (;;) {
		char what[96];

		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
		if (ioctl(v->fd, KVM_RUN, 0) == 0) {
			if (!handle_exit(v))
				return false;
			continue;
		}
		if (errno == EINTR || errno == EAGAIN)
			return true;
		snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
		guest_fault(v, what);
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	bool exit_pending = false;   /* the last KVM_RUN returned an exit */
	char name[16];
	sigset_t set;
	int ret;

	v->tid = (pid_t)syscall(SYS_gettid);
	snprintf(name, sizeof(name), "vcpu%u", v->index);
	pthread_setname_np(pthread_self(), name);
	/* Only the kick signal may interrupt KVM_RUN on this thread. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	ret = sandbox_enter(v->ctx->sandbox, SANDBOX_VCPU);
	if (ret) {
		log_err("vCPU %u: cannot install its seccomp filter: %s", v->index, strerror(-ret));
		runstate_request_exit(v->ctx->rs, SKIFF_EXIT_SETUP, "a vCPU has no seccomp filter");
		return NULL;
	}

	while (!runstate_exiting(v->ctx->rs)) {
		if (runstate_pause_requested(v->ctx->rs)) {
			if (exit_pending) {
				exit_pending = false;
				if (!finish_exit(v))
					break;
			}
			runstate_park(v->ctx->rs, park_work, v);
			/* The kick that brought us here set immediate_exit; clear it
			 * so KVM_RUN runs the guest again. A new kick after this
			 * store sets it again, so no request is lost. */
			__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				exit_pending = false;
				vcpu_throttle(v);
				if (atomic_exchange_explicit(&v->msr_req, false,
							     memory_order_relaxed)) {
					publish_saved_msrs(v);
					/* The request's kick set immediate_exit: clear
					 * it (as vcpu_throttle does) or KVM_RUN would
					 * return at once forever. A pause or stop that
					 * came with it is seen at the top of the loop. */
					__atomic_store_n(&v->run->immediate_exit, 0,
							 __ATOMIC_SEQ_CST);
				}
				continue;
			}
			char what[96];

			snprintf(what, sizeof(what), "KVM_RUN failed: %s", strerror(errno));
			guest_fault(v, what);
			break;
		}
		exit_pending = true;
		if (!handle_exit(v))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	int ret = pthread_create(&v->thread, NULL, vcpu_thread, v);

	if (ret)
		return -ret;
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/* immediate_exit closes the race with a thread about to enter KVM_RUN:
	 * it returns -EINTR at once and then sees the run state. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *v)
{
	if (!v->started)
		return;
	pthread_join(v->thread, NULL);
	v->started = false;
}

/*
 * vCPU and VM state records for migration.
 *
 * vCPU record (v1): u32 version, then sections {u32 tag, u32 length, bytes}
 * in load order. Sections holding a KVM ABI struct carry it verbatim (x86
 * is little-endian; the length must equal the struct's size on load).
 * MSRs: u32 count, then count x {u32 index, u32 reserved, u64 value}.
 *
 * Thread context: migration thread, the vCPU's thread parked (not in
 * KVM_RUN); KVM serialises vCPU ioctls anyway.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "migration.h"
#include "vcpu.h"

#define VCPU_REC_VERSION 1
#define VM_REC_VERSION 1
#define MSR_IA32_TSC_DEADLINE VCPU_MSR_TSC_DEADLINE
#define MAX_MSRS VCPU_MAX_MSRS

enum {
	SEC_REGS = 1, SEC_XSAVE, SEC_FPU, SEC_XCRS, SEC_SREGS, SEC_MSRS, SEC_MPSTATE,
	SEC_LAPIC, SEC_DEADLINE, SEC_EVENTS, SEC_DEBUGREGS, SEC_SREGS2,
	VM_SEC_CLOCK = 32, VM_SEC_PIC0, VM_SEC_PIC1, VM_SEC_IOAPIC, VM_SEC_PIT,
};

/* The order of a record's sections, which is KVM's required load order:
 * registers; the FPU; XCRs; segment and control registers (sregs2 when the
 * source's KVM has it: it carries the PAE PDPTRs) before the MSRs, since
 * EFER and the APIC base checks depend on CR0/CR4/EFER; MP state before
 * the LAPIC (it does not touch it) and before the vCPU events (KVM refuses
 * an INIT_RECEIVED MP state while events latch an INIT); the LAPIC before
 * the TSC deadline (timer mode) and the events (pending interrupt state).
 * The loader sets the MSRs later than their place, with the deadline
 * (load_sections). A record whose sections do not strictly ascend in this
 * rank is refused. */
static int sec_rank(uint32_t tag)
{
	switch (tag) {
	case SEC_REGS: return 1;
	case SEC_XSAVE: case SEC_FPU: return 2;
	case SEC_XCRS: return 3;
	case SEC_SREGS: case SEC_SREGS2: return 4;
	case SEC_MSRS: return 5;
	case SEC_MPSTATE: return 6;
	case SEC_LAPIC: return 7;
	case SEC_DEADLINE: return 8;
	case SEC_EVENTS: return 9;
	case SEC_DEBUGREGS: return 10;
	default: return 0;
	}
}

/* The vCPU context's probes, or a probe now when it has none (tests). */
static int xsave_size(const struct vcpu *v)
{
	int n = v->ctx->xsave_size;

	if (!n)
		n = ioctl(v->ctx->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n < (int)sizeof(struct kvm_xsave) ? (int)sizeof(struct kvm_xsave) : n;
}

static bool has_sregs2(const struct vcpu *v)
{
	if (v->ctx->sregs2)
		return v->ctx->sregs2 > 0;
	return ioctl(v->ctx->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0;
}

static void put_sec(struct mig_buf *b, uint32_t tag, const void *p, size_t len)
{
	mig_put_u32(b, tag);
	mig_put_u32(b, (uint32_t)len);
	mig_put_bytes(b, p, len);
}

int mig_vcpu_save(struct vcpu *v, struct mig_buf *out)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xcrs xcrs;
	struct kvm_mp_state mp;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dbg;
	struct kvm_msrs *msrs = NULL, *all;
	uint32_t nr;
	size_t at;
	int xsize, ret;
	void *xsave;

	mig_put_u32(out, VCPU_REC_VERSION);
	ret = vcpu_get_regs(v, &regs);   /* also those a load left for KVM_RUN */
	if (ret)
		return ret;
	put_sec(out, SEC_REGS, &regs, sizeof(regs));
	xsize = xsave_size(v);
	/* Straight into the record (the buffer is faulted in beforehand):
	 * this runs in the downtime. */
	at = out->len;
	mig_put_u32(out, SEC_XSAVE);
	mig_put_u32(out, (uint32_t)xsize);
	xsave = mig_put_space(out, (size_t)xsize);
	if (!xsave)
		return out->err;
	memset(xsave, 0, (size_t)xsize);
	if (ioctl(v->fd, KVM_GET_XSAVE2, xsave) < 0 && ioctl(v->fd, KVM_GET_XSAVE, xsave) < 0) {
		struct kvm_fpu fpu;

		out->len = at;
		if (ioctl(v->fd, KVM_GET_FPU, &fpu) < 0)
			return -errno;
		put_sec(out, SEC_FPU, &fpu, sizeof(fpu));
	}
	/* A host without XSAVE reports no XCR (and refuses to set any). */
	if (ioctl(v->fd, KVM_GET_XCRS, &xcrs) == 0 && xcrs.nr_xcrs)
		put_sec(out, SEC_XCRS, &xcrs, sizeof(xcrs));
	if (has_sregs2(v)) {
		struct kvm_sregs2 sregs2;

		if (ioctl(v->fd, KVM_GET_SREGS2, &sregs2) < 0)
			return -errno;
		put_sec(out, SEC_SREGS2, &sregs2, sizeof(sregs2));
	} else {
		if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
			return -errno;
		put_sec(out, SEC_SREGS, &sregs, sizeof(sregs));
	}
	/* Usually probed by the vCPU thread itself while the guest still ran
	 * (vcpu_request_saved_msrs at the start of the migration): then only
	 * the one KVM_GET_MSRS below is in the downtime. The TSC deadline
	 * rides last in the same call (KVM stops at the first MSR it
	 * refuses) but has its own section: it is loaded after the LAPIC. */
	ret = vcpu_saved_msrs(v, &msrs);
	if (ret)
		return ret;
	nr = msrs->nmsrs;
	all = realloc(msrs, sizeof(*msrs) + (nr + 1) * sizeof(msrs->entries[0]));
	if (!all) {
		free(msrs);
		return -ENOMEM;
	}
	all->entries[nr] = (struct kvm_msr_entry){ .index = MSR_IA32_TSC_DEADLINE };
	all->nmsrs = nr + 1;
	ret = ioctl(v->fd, KVM_GET_MSRS, all);
	if (ret < (int)nr) {
		free(all);
		return -EIO;
	}
	mig_put_u32(out, SEC_MSRS);
	mig_put_u32(out, 4 + 16 * nr);
	mig_put_u32(out, nr);
	for (uint32_t i = 0; i < nr; i++) {
		mig_put_u32(out, all->entries[i].index);
		mig_put_u32(out, 0);
		mig_put_u64(out, all->entries[i].data);
	}
	if (ioctl(v->fd, KVM_GET_MP_STATE, &mp) < 0 || ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0 || ioctl(v->fd, KVM_GET_DEBUGREGS, &dbg) < 0) {
		ret = -errno;
		free(all);
		return ret;
	}
	put_sec(out, SEC_MPSTATE, &mp, sizeof(mp));
	put_sec(out, SEC_LAPIC, &lapic, sizeof(lapic));
	if (ret == (int)nr + 1)
		put_sec(out, SEC_DEADLINE, &all->entries[nr].data, sizeof(all->entries[nr].data));
	put_sec(out, SEC_EVENTS, &ev, sizeof(ev));
	put_sec(out, SEC_DEBUGREGS, &dbg, sizeof(dbg));
	free(all);
	return out->err;
}

/* Fixed-size section: the payload must be exactly `size` bytes. */
static bool sec_is(uint32_t len, size_t size, const char *what, char *err, size_t errlen)
{
	if (len == size)
		return true;
	snprintf(err, errlen, "%s section is %u bytes, this host's KVM uses %zu", what, len, size);
	return false;
}

struct mig_vcpu_cur {
	struct kvm_mp_state mp;
	struct kvm_vcpu_events ev;
	struct kvm_debugregs dbg;
	struct kvm_xcrs xcrs;
	bool have_xcrs;
};

int mig_vcpu_current(struct vcpu *v, struct mig_vcpu_cur **out)
{
	struct mig_vcpu_cur *c = calloc(1, sizeof(*c));
	int ret = 0;

	if (!c)
		return -ENOMEM;
	if (ioctl(v->fd, KVM_GET_MP_STATE, &c->mp) < 0 ||
	    ioctl(v->fd, KVM_GET_VCPU_EVENTS, &c->ev) < 0 ||
	    ioctl(v->fd, KVM_GET_DEBUGREGS, &c->dbg) < 0) {
		ret = -errno;
		free(c);
		return ret;
	}
	c->have_xcrs = ioctl(v->fd, KVM_GET_XCRS, &c->xcrs) == 0;
	*out = c;
	return 0;
}

void mig_vcpu_current_free(struct mig_vcpu_cur *c)
{
	free(c);
}

/* The snapshot's copy of section `tag`, or NULL (always set). */
static const void *cur_sec(const struct mig_vcpu_cur *c, uint32_t tag)
{
	if (!c)
		return NULL;
	switch (tag) {
	case SEC_MPSTATE: return &c->mp;
	case SEC_EVENTS: return &c->ev;
	case SEC_DEBUGREGS: return &c->dbg;
	case SEC_XCRS: return c->have_xcrs ? &c->xcrs : NULL;
	default: return NULL;
	}
}

int mig_vcpu_load(struct vcpu *v, const void *p, size_t len, char *err, size_t errlen)
{
	return mig_vcpu_load_cur(v, p, len, NULL, err, errlen);
}

/* Sets the held MSRs (the MSR section, then the TSC deadline) in one call
 * and frees them. */
static int flush_msrs(struct vcpu *v, struct kvm_msrs **msrs, char *err, size_t errlen)
{
	struct kvm_msrs *m = *msrs;
	int got;

	if (!m)
		return 0;
	*msrs = NULL;
	got = ioctl(v->fd, KVM_SET_MSRS, m);
	if (got != (int)m->nmsrs) {
		snprintf(err, errlen, "KVM refused MSR 0x%x (%d of %u set): the hosts' CPUs or "
			 "KVM versions differ", got >= 0 && (uint32_t)got < m->nmsrs ?
			 m->entries[got].index : 0, got, m->nmsrs);
		free(m);
		return -EINVAL;
	}
	free(m);
	return 0;
}

static int load_sections(struct vcpu *v, const void *p, size_t len,
			 const struct mig_vcpu_cur *cur, struct kvm_msrs **msrs, char *err,
			 size_t errlen);

int mig_vcpu_load_cur(struct vcpu *v, const void *p, size_t len, const struct mig_vcpu_cur *cur,
		      char *err, size_t errlen)
{
	struct kvm_msrs *msrs = NULL;
	int ret = load_sections(v, p, len, cur, &msrs, err, errlen);

	free(msrs);
	return ret;
}

/* The general registers, held by load_sections while KVM can take them
 * with the next KVM_RUN (KVM_CAP_SYNC_REGS): then they cost no ioctl in the
 * downtime. They are set last, or just before the vCPU events when those
 * are loaded (KVM_SET_REGS clears a pending exception). Deferred only for
 * a runnable or halted vCPU (see vcpu_defer_regs): the rest get the ioctl. */
static int put_regs(struct vcpu *v, const uint8_t *d, bool defer, char *err, size_t errlen)
{
	struct kvm_regs regs;
	int ret;

	memcpy(&regs, d, sizeof(regs));
	ret = defer ? vcpu_defer_regs(v, &regs) : -ENOTSUP;
	if (ret == -ENOTSUP)
		ret = vcpu_set_regs(v, &regs);
	if (ret)
		snprintf(err, errlen, "KVM refused the registers: %s", strerror(-ret));
	return ret;
}

/* The MP state section d (NULL: none) leaves the vCPU runnable or halted. */
static bool mp_runs(const uint8_t *d)
{
	struct kvm_mp_state mp;

	if (!d)
		return false;
	memcpy(&mp, d, sizeof(mp));
	return mp.mp_state == KVM_MP_STATE_RUNNABLE || mp.mp_state == KVM_MP_STATE_HALTED;
}

/* The MSRs are held in *msrs and set after the LAPIC, together with the
 * TSC deadline: one vCPU ioctl less in the downtime (each costs several
 * microseconds under some hypervisors). Their place after the segment
 * registers (EFER, checked against CR0/CR4) is kept; MP state and the
 * LAPIC do not depend on them (the APIC base comes with the segment
 * registers), and the guest TSC precedes the deadline in the one call. */
static int load_sections(struct vcpu *v, const void *p, size_t len,
			 const struct mig_vcpu_cur *cur, struct kvm_msrs **msrs, char *err,
			 size_t errlen)
{
	struct mig_rd r;
	uint32_t version, seen = 0;
	int rank = 0;
	int xsize = xsave_size(v);
	const uint8_t *regs = NULL;     /* held: see put_regs */
	const uint8_t *mp = NULL;

	mig_rd_init(&r, p, len);
	version = mig_get_u32(&r);
	if (r.bad || version != VCPU_REC_VERSION) {
		snprintf(err, errlen, "vCPU record version %u, expected %u", version, VCPU_REC_VERSION);
		return -EPROTO;
	}
	while (mig_rd_left(&r)) {
		uint32_t tag = mig_get_u32(&r), slen = mig_get_u32(&r);
		const uint8_t *d = mig_get_ptr(&r, slen);
		unsigned long req = 0;
		const char *what = NULL;
		size_t size = 0;

		if (!d) {
			snprintf(err, errlen, "vCPU section %u overruns the record", tag);
			return -EBADMSG;
		}
		if (!sec_rank(tag)) {
			snprintf(err, errlen, "unknown vCPU section %u (a newer skiff?)", tag);
			return -EPROTO;
		}
		if (sec_rank(tag) <= rank) {
			snprintf(err, errlen, "vCPU section %u repeated or out of order", tag);
			return -EBADMSG;
		}
		rank = sec_rank(tag);
		seen |= 1u << tag;
		if (rank > sec_rank(SEC_DEADLINE)) {
			int ret = flush_msrs(v, msrs, err, errlen);

			if (ret)
				return ret;
		}
		switch (tag) {
		case SEC_REGS: req = KVM_SET_REGS; what = "registers"; size = sizeof(struct kvm_regs); break;
		case SEC_XSAVE: req = KVM_SET_XSAVE; what = "XSAVE"; size = (size_t)xsize; break;
		case SEC_FPU: req = KVM_SET_FPU; what = "FPU"; size = sizeof(struct kvm_fpu); break;
		case SEC_XCRS: req = KVM_SET_XCRS; what = "XCR"; size = sizeof(struct kvm_xcrs); break;
		case SEC_SREGS: req = KVM_SET_SREGS; what = "segment registers"; size = sizeof(struct kvm_sregs); break;
		case SEC_SREGS2:
			if (!has_sregs2(v)) {
				snprintf(err, errlen, "the source saved segment registers with "
					 "KVM_GET_SREGS2; this host's KVM lacks KVM_CAP_SREGS2");
				return -EPROTO;
			}
			req = KVM_SET_SREGS2; what = "segment registers (sregs2)";
			size = sizeof(struct kvm_sregs2);
			break;
		case SEC_MPSTATE: req = KVM_SET_MP_STATE; what = "MP state"; size = sizeof(struct kvm_mp_state); break;
		case SEC_LAPIC: req = KVM_SET_LAPIC; what = "LAPIC"; size = sizeof(struct kvm_lapic_state); break;
		case SEC_EVENTS: req = KVM_SET_VCPU_EVENTS; what = "vCPU events"; size = sizeof(struct kvm_vcpu_events); break;
		case SEC_DEBUGREGS: req = KVM_SET_DEBUGREGS; what = "debug registers"; size = sizeof(struct kvm_debugregs); break;
		case SEC_DEADLINE:
		case SEC_MSRS: {
			struct mig_rd mr;
			uint32_t n, have = *msrs ? (*msrs)->nmsrs : 0;
			struct kvm_msrs *m;

			mig_rd_init(&mr, d, slen);
			n = tag == SEC_DEADLINE ? 1 : mig_get_u32(&mr);
			if (mr.bad || n > MAX_MSRS) {
				snprintf(err, errlen, "malformed MSR section");
				return -EBADMSG;
			}
			/* Held, and set in one call with the deadline
			 * (flush_msrs, after the LAPIC). */
			m = realloc(*msrs, sizeof(*m) + (have + n) * sizeof(struct kvm_msr_entry));
			if (!m)
				return -ENOMEM;
			*msrs = m;
			m->nmsrs = have + n;
			for (uint32_t i = have; i < have + n; i++) {
				if (tag == SEC_DEADLINE) {
					m->entries[i].index = MSR_IA32_TSC_DEADLINE;
				} else {
					m->entries[i].index = mig_get_u32(&mr);
					(void)mig_get_u32(&mr);
				}
				m->entries[i].reserved = 0;
				m->entries[i].data = mig_get_u64(&mr);
			}
			if (!mig_rd_done(&mr, true)) {
				snprintf(err, errlen, "malformed MSR section");
				return -EBADMSG;
			}
			continue;
		}
		default:
			snprintf(err, errlen, "unknown vCPU section %u (a newer skiff?)", tag);
			return -EPROTO;
		}
		if (!sec_is(slen, size, what, err, errlen))
			return -EPROTO;
		if (tag == SEC_MPSTATE)
			mp = d;
		if (cur_sec(cur, tag) && !memcmp(cur_sec(cur, tag), d, size))
			continue;   /* KVM holds exactly this already */
		if (tag == SEC_REGS && (v->ctx->sync_regs & KVM_SYNC_X86_REGS)) {
			regs = d;
			continue;
		}
		if (tag == SEC_EVENTS && regs) {
			/* Setting the registers clears a pending exception:
			 * they go first. */
			int ret = put_regs(v, regs, false, err, errlen);

			if (ret)
				return ret;
			regs = NULL;
		}
		/* Straight from the record: these KVM_SET_* only read their
		 * argument (no copy, no malloc in the downtime). */
		if (ioctl(v->fd, req, (void *)d) < 0) {
			int ret = -errno;

			snprintf(err, errlen, "KVM refused the %s: %s", what, strerror(errno));
			return ret;
		}
	}
	if (mig_rd_done(&r, true)) {
		int ret = flush_msrs(v, msrs, err, errlen);

		if (!ret && regs)
			ret = put_regs(v, regs, mp_runs(mp), err, errlen);
		if (ret)
			return ret;
	}
	if (!mig_rd_done(&r, true) || !(seen & (1u << SEC_REGS)) ||
	    !(seen & ((1u << SEC_SREGS) | (1u << SEC_SREGS2))) ||
	    !(seen & (1u << SEC_LAPIC)) || !(seen & (1u << SEC_MSRS))) {
		snprintf(err, errlen, "the vCPU record lacks registers, MSRs or the LAPIC");
		return -EBADMSG;
	}
	return 0;
}

int mig_vm_save(int vm_fd, struct mig_buf *out)
{
	struct kvm_clock_data clock = { 0 };
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;

	mig_put_u32(out, VM_REC_VERSION);
	if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return -errno;
	put_sec(out, VM_SEC_CLOCK, &clock, sizeof(clock));
	for (int i = 0; i < 3; i++) {
		memset(&chip[i], 0, sizeof(chip[i]));
		chip[i].chip_id = (uint32_t)i;
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chip[i]) < 0)
			return -errno;
		put_sec(out, VM_SEC_PIC0 + (uint32_t)i, &chip[i], sizeof(chip[i]));
	}
	if (ioctl(vm_fd, KVM_GET_PIT2, &pit) < 0)
		return -errno;
	put_sec(out, VM_SEC_PIT, &pit, sizeof(pit));
	return out->err;
}

int mig_vm_load(int vm_fd, const void *p, size_t len, char *err, size_t errlen)
{
	struct mig_rd r;
	uint32_t version, seen = 0;

	mig_rd_init(&r, p, len);
	version = mig_get_u32(&r);
	if (r.bad || version != VM_REC_VERSION) {
		snprintf(err, errlen, "VM record version %u, expected %u", version, VM_REC_VERSION);
		return -EPROTO;
	}
	while (mig_rd_left(&r)) {
		uint32_t tag = mig_get_u32(&r), slen = mig_get_u32(&r);
		const uint8_t *d = mig_get_ptr(&r, slen);

		if (!d || tag < VM_SEC_CLOCK || tag > VM_SEC_PIT || (seen & (1u << (tag - 32)))) {
			snprintf(err, errlen, "malformed VM record (section %u)", tag);
			return -EBADMSG;
		}
		seen |= 1u << (tag - 32);
		if (tag == VM_SEC_CLOCK) {
			struct kvm_clock_data c;

			if (!sec_is(slen, sizeof(c), "KVM clock", err, errlen))
				return -EPROTO;
			memcpy(&c, d, sizeof(c));
			/* Only the clock value is set; KVM picks the flags. */
			c.flags = 0;
			if (ioctl(vm_fd, KVM_SET_CLOCK, &c) < 0) {
				snprintf(err, errlen, "KVM_SET_CLOCK: %s", strerror(errno));
				return -errno;
			}
		} else if (tag == VM_SEC_PIT) {
			struct kvm_pit_state2 pit;

			if (!sec_is(slen, sizeof(pit), "PIT", err, errlen))
				return -EPROTO;
			memcpy(&pit, d, sizeof(pit));
			if (ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0) {
				snprintf(err, errlen, "KVM_SET_PIT2: %s", strerror(errno));
				return -errno;
			}
		} else {
			struct kvm_irqchip chip;

			if (!sec_is(slen, sizeof(chip), "interrupt controller", err, errlen))
				return -EPROTO;
			memcpy(&chip, d, sizeof(chip));
			if (chip.chip_id != tag - VM_SEC_PIC0) {
				snprintf(err, errlen, "interrupt controller section with chip id %u",
					 chip.chip_id);
				return -EBADMSG;
			}
			if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chip) < 0) {
				snprintf(err, errlen, "KVM_SET_IRQCHIP: %s", strerror(errno));
				return -errno;
			}
		}
	}
	if (seen != 0x1f) {
		snprintf(err, errlen, "the VM record lacks a section");
		return -EBADMSG;
	}
	return 0;
}

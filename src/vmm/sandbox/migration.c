/* Migration threads: the driver ("migration"), the senders and receivers
 * of each channel ("migration-tx", "migration-rx") and the auto-converge
 * kicker. They connect, accept, stream RAM and state, read dirty logs and
 * get or set vCPU, VM and device state while the vCPUs are parked. */
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "sandbox_priv.h"

static const struct sandbox_rule rules[] = {
	/* the stream: sockets and files */
	SB_SYS(socket), SB_SYS(connect), SB_SYS(bind), SB_SYS(listen), SB_SYS(accept4),
	SB_SYS(setsockopt), SB_SYS(getsockopt), SB_SYS(shutdown),
	SB_SYS(read), SB_SYS(write), SB_SYS(readv), SB_SYS(sendto), SB_SYS(recvfrom),
	SB_SYS(sendmsg), SB_SYS(recvmsg), SB_SYS(poll), SB_SYS(ppoll),
	SB_SYS(openat), SB_SYS(close), SB_SYS(fstat), SB_SYS(newfstatat), SB_SYS(lseek),
	SB_SYS(pread64), SB_SYS(pwrite64), SB_SYS(ftruncate), SB_SYS(fsync), SB_SYS(fdatasync),
	SB_SYS(fcntl), SB_SYS(rename), SB_SYS(renameat), SB_SYS(unlink), SB_SYS(unlinkat),
	/* the channel threads and the kicker */
	SB_SYS(clone), SB_SYS(clone3), SB_SYS(set_robust_list), SB_SYS(rseq), SB_SYS(prctl),
	SB_SYS(seccomp),
	/* RAM */
	SB_IOCTL(KVM_GET_DIRTY_LOG), SB_IOCTL(KVM_CLEAR_DIRTY_LOG),
	SB_IOCTL(KVM_SET_USER_MEMORY_REGION), SB_IOCTL(KVM_CHECK_EXTENSION),
	SB_IOCTL(KVM_ENABLE_CAP),
	/* vCPU state */
	SB_IOCTL(KVM_GET_REGS), SB_IOCTL(KVM_SET_REGS), SB_IOCTL(KVM_GET_SREGS),
	SB_IOCTL(KVM_SET_SREGS), SB_IOCTL(KVM_GET_SREGS2), SB_IOCTL(KVM_SET_SREGS2),
	SB_IOCTL(KVM_GET_FPU), SB_IOCTL(KVM_SET_FPU), SB_IOCTL(KVM_GET_XSAVE),
	SB_IOCTL(KVM_GET_XSAVE2), SB_IOCTL(KVM_SET_XSAVE), SB_IOCTL(KVM_GET_XCRS),
	SB_IOCTL(KVM_SET_XCRS), SB_IOCTL(KVM_GET_MSRS), SB_IOCTL(KVM_SET_MSRS),
	SB_IOCTL(KVM_GET_MSR_INDEX_LIST), SB_IOCTL(KVM_GET_MP_STATE),
	SB_IOCTL(KVM_SET_MP_STATE), SB_IOCTL(KVM_GET_LAPIC), SB_IOCTL(KVM_SET_LAPIC),
	SB_IOCTL(KVM_GET_VCPU_EVENTS), SB_IOCTL(KVM_SET_VCPU_EVENTS),
	SB_IOCTL(KVM_GET_DEBUGREGS), SB_IOCTL(KVM_SET_DEBUGREGS),
	SB_IOCTL(KVM_GET_SUPPORTED_CPUID),
	/* VM state */
	SB_IOCTL(KVM_GET_CLOCK), SB_IOCTL(KVM_SET_CLOCK), SB_IOCTL(KVM_GET_IRQCHIP),
	SB_IOCTL(KVM_SET_IRQCHIP), SB_IOCTL(KVM_GET_PIT2), SB_IOCTL(KVM_SET_PIT2),
	/* device state loads: BARs and MSI-X routes rebuilt */
	SB_IOCTL(KVM_IOEVENTFD), SB_IOCTL(KVM_IRQFD), SB_IOCTL(KVM_SET_GSI_ROUTING),
	SB_IOCTL(KVM_IRQ_LINE),
	/* virtio-net state: the queue pairs the guest had enabled */
	SB_IOCTL(TUNSETQUEUE),
};

const struct sandbox_list sandbox_migration_list = SB_LIST(rules);

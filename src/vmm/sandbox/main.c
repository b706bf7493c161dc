/* The main thread after set-up: the event loop (signals, control socket,
 * serial input, device events), guest resets (RAM cleared, kernel reloaded,
 * vCPUs and irqchip reset), starting and stopping vCPU and migration
 * threads, and the exit path (teardown child, terminal, socket file). */
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "sandbox_priv.h"

static const struct sandbox_rule rules[] = {
	/* event loop */
	SB_SYS(epoll_wait), SB_SYS(epoll_pwait), SB_SYS(epoll_ctl), SB_SYS(poll), SB_SYS(ppoll),
	SB_SYS(read), SB_SYS(write), SB_SYS(readv), SB_SYS(writev), SB_SYS(close),
	/* control socket clients */
	SB_SYS(accept4), SB_SYS(recvfrom), SB_SYS(sendto), SB_SYS(recvmsg), SB_SYS(sendmsg),
	SB_SYS(getsockopt), SB_SYS(setsockopt), SB_SYS(shutdown), SB_SYS(fcntl), SB_SYS(unlink),
	/* json-c seeds its hash tables from getrandom */
	SB_SYS(getrandom),
	/* serial input from a terminal */
	SB_IOCTL(TCGETS), SB_IOCTL(TIOCGWINSZ),
	/* threads: vCPUs at every boot, migration; each installs its filter */
	SB_SYS(clone), SB_SYS(clone3), SB_SYS(set_robust_list), SB_SYS(rseq), SB_SYS(prctl),
	SB_SYS(seccomp),
	/* guest reset: RAM punched, kernel and initrd mapped again, irqchip,
	 * PIT and vCPUs back to their power-on state */
	SB_SYS(fallocate), SB_SYS(openat), SB_SYS(fstat), SB_SYS(newfstatat), SB_SYS(lseek),
	SB_IOCTL(KVM_SET_IRQCHIP), SB_IOCTL(KVM_SET_PIT2), SB_IOCTL(KVM_SET_REGS),
	SB_IOCTL(KVM_SET_SREGS), SB_IOCTL(KVM_SET_FPU), SB_IOCTL(KVM_SET_MSRS),
	SB_IOCTL(KVM_SET_LAPIC), SB_IOCTL(KVM_SET_MP_STATE), SB_IOCTL(KVM_SET_VCPU_EVENTS),
	SB_IOCTL(KVM_IRQ_LINE),
	/* ... and virtio-net devices reset (offloads off, one queue pair) */
	SB_IOCTL(TUNSETOFFLOAD), SB_IOCTL(TUNSETQUEUE),
	/* exit: I/O threads' pending polls cancelled through their rings; the
	 * teardown child (fork, stdio to /dev/null, setsid) */
	SB_SYS(io_uring_enter),
	SB_SYS(dup2), SB_SYS(dup3), SB_SYS(setsid), SB_SYS(close_range),
#ifdef SKIFF_SANITIZE
	/* -Dsanitize=true only: LeakSanitizer's check at exit stops the
	 * threads from a helper that ptraces them (found with --seccomp log) */
	SB_SYS(ptrace), SB_SYS(wait4), SB_SYS(getppid), SB_SYS(getdents), SB_SYS(getdents64),
	SB_SYS(open),
#endif
};

const struct sandbox_list sandbox_main_list = SB_LIST(rules);

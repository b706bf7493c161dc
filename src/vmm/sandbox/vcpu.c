/* vCPU threads: KVM_RUN and the register handlers of the devices they reach
 * (serial, debug-exit, i8042, ACPI, PCI configuration and BARs, MSI-X tables,
 * virtio transport registers). */
#include <linux/kvm.h>

#include "sandbox_priv.h"

static const struct sandbox_rule rules[] = {
	SB_IOCTL(KVM_RUN),
	/* a guest fault's register dump */
	SB_IOCTL(KVM_GET_REGS), SB_IOCTL(KVM_GET_SREGS),
	/* interrupts: serial and i8042 lines; MSI-X vectors routed and bound
	 * when the guest writes a table entry */
	SB_IOCTL(KVM_IRQ_LINE), SB_IOCTL(KVM_SET_GSI_ROUTING), SB_IOCTL(KVM_IRQFD),
	/* a virtio BAR placed or moved: its queue notifications rebound */
	SB_IOCTL(KVM_IOEVENTFD),
	/* a migration asks each vCPU for the MSRs KVM saves (probed once),
	 * and each vCPU saves its own state as it parks for the final phase */
	SB_IOCTL(KVM_GET_MSR_INDEX_LIST), SB_IOCTL(KVM_GET_MSRS), SB_IOCTL(KVM_CHECK_EXTENSION),
	SB_IOCTL(KVM_GET_XSAVE2), SB_IOCTL(KVM_GET_XSAVE), SB_IOCTL(KVM_GET_FPU),
	SB_IOCTL(KVM_GET_XCRS), SB_IOCTL(KVM_GET_SREGS2), SB_IOCTL(KVM_GET_MP_STATE),
	SB_IOCTL(KVM_GET_LAPIC), SB_IOCTL(KVM_GET_VCPU_EVENTS), SB_IOCTL(KVM_GET_DEBUGREGS),
	/* eventfds: waking the main thread and the I/O threads; serial output
	 * (write is common) waits for a slow console with poll */
	SB_SYS(read), SB_SYS(poll),
	/* auto-converge throttling sleeps (nanosleep is common) */
};

const struct sandbox_list sandbox_vcpu_list = SB_LIST(rules);

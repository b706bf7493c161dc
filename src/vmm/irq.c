/* Interrupt lines into the in-kernel irqchip. */
#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "irq.h"

int irq_line_set(const struct irq_line *line, int level)
{
	struct kvm_irq_level irq = { .irq = line->gsi, .level = level ? 1 : 0 };

	if (line->vm_fd < 0)
		return 0;
	/* KVM_IRQ_LINE is thread-safe in the kernel; callers serialise the
	 * device state that decides the level under their own lock. */
	if (ioctl(line->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		return -errno;
	return 0;
}

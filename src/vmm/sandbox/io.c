/* I/O threads (one io_uring loop per virtio device): block I/O is submitted
 * through io_uring (reads, writes, fsync, fallocate happen in the kernel's
 * io_uring context, not as system calls of this thread); tap frames are
 * read and written here; virtio-rng reads getrandom(). */
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "sandbox_priv.h"

static const struct sandbox_rule rules[] = {
	SB_SYS(io_uring_enter),
	/* eventfds (kicks, wake-ups, irqfds) and tap frames */
	SB_SYS(read), SB_SYS(readv), SB_SYS(write), SB_SYS(writev),
	SB_SYS(getrandom),
	/* virtio-net: offloads the guest negotiated, queue pairs it enabled
	 * (and both undone at a device reset) */
	SB_IOCTL(TUNSETOFFLOAD), SB_IOCTL(TUNSETQUEUE),
};

const struct sandbox_list sandbox_io_list = SB_LIST(rules);

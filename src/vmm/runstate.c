/* The VM's exit request: first caller wins, the main thread is woken. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runstate.h"

int runstate_init(struct runstate *rs)
{
	memset(rs, 0, sizeof(*rs));
	atomic_init(&rs->exit_requested, false);
	rs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return rs->wake_fd < 0 ? -errno : 0;
}

void runstate_fini(struct runstate *rs)
{
	if (rs->wake_fd >= 0)
		close(rs->wake_fd);
	rs->wake_fd = -1;
}

bool runstate_request_exit(struct runstate *rs, int status, const char *reason)
{
	bool expected = false;
	uint64_t one = 1;

	/* The winner of the CAS writes status and reason; the main thread reads
	 * them only after the eventfd wakes it, and the write(2)/read(2) pair
	 * orders those accesses (a syscall is a full barrier). */
	if (!atomic_compare_exchange_strong_explicit(&rs->exit_requested, &expected, true,
						     memory_order_acq_rel, memory_order_acquire))
		return false;
	rs->exit_status = status;
	snprintf(rs->reason, sizeof(rs->reason), "%s", reason ? reason : "");
	if (write(rs->wake_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: the main thread is already woken */
	}
	return true;
}

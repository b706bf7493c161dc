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
	atomic_init(&rs->pause_requested, false);
	atomic_init(&rs->stop_requested, false);
	pthread_mutex_init(&rs->lock, NULL);
	pthread_cond_init(&rs->cond, NULL);
	rs->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return rs->wake_fd < 0 ? -errno : 0;
}

void runstate_rearm(struct runstate *rs)
{
	uint64_t v;

	if (read(rs->wake_fd, &v, sizeof(v)) < 0) {
		/* nothing pending: fine */
	}
	rs->exit_status = 0;
	rs->reason[0] = '\0';
	atomic_store_explicit(&rs->exit_requested, false, memory_order_release);
}

void runstate_fini(struct runstate *rs)
{
	if (rs->wake_fd >= 0)
		close(rs->wake_fd);
	rs->wake_fd = -1;
	pthread_cond_destroy(&rs->cond);
	pthread_mutex_destroy(&rs->lock);
}

void runstate_pause_begin(struct runstate *rs)
{
	atomic_store_explicit(&rs->pause_requested, true, memory_order_release);
}

bool runstate_pause_wait(struct runstate *rs, unsigned int n)
{
	bool ok;

	pthread_mutex_lock(&rs->lock);
	while (rs->parked < n && !runstate_exiting(rs))
		pthread_cond_wait(&rs->cond, &rs->lock);
	ok = rs->parked >= n;
	pthread_mutex_unlock(&rs->lock);
	return ok;
}

void runstate_resume(struct runstate *rs)
{
	pthread_mutex_lock(&rs->lock);
	atomic_store_explicit(&rs->pause_requested, false, memory_order_release);
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
}

void runstate_park(struct runstate *rs, void (*work)(void *), void *arg)
{
	pthread_mutex_lock(&rs->lock);
	rs->parked++;
	pthread_cond_broadcast(&rs->cond);
	if (work) {
		pthread_mutex_unlock(&rs->lock);
		work(arg);
		pthread_mutex_lock(&rs->lock);
	}
	while (runstate_pause_requested(rs) && !runstate_exiting(rs))
		pthread_cond_wait(&rs->cond, &rs->lock);
	rs->parked--;
	pthread_mutex_unlock(&rs->lock);
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
	/* Wake parked vCPUs and a main thread waiting for them to park. */
	pthread_mutex_lock(&rs->lock);
	pthread_cond_broadcast(&rs->cond);
	pthread_mutex_unlock(&rs->lock);
	if (write(rs->wake_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: the main thread is already woken */
	}
	return true;
}

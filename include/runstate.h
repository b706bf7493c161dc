/*
 * The VM's run state and the one way any thread asks the VM to end.
 *
 * Devices (vCPU threads) and signal handling (main thread) call
 * runstate_request_exit(); the first request wins and its status becomes the
 * process exit status. The main thread waits on `wake_fd` (an eventfd) in its
 * event loop and then stops the vCPUs.
 */
#ifndef SKIFF_RUNSTATE_H
#define SKIFF_RUNSTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "util.h"

/* Exit statuses of skiff itself; debug-exit statuses are (v << 1) | 1 (odd). */
enum {
	SKIFF_EXIT_OK = 0,          /* guest powered off / reset, or SIGINT/SIGTERM */
	SKIFF_EXIT_SETUP = 2,       /* bad command line or the VM could not be built */
	SKIFF_EXIT_GUEST_FAULT = 4, /* triple fault, emulation failure, failed entry */
	SKIFF_EXIT_RESET = 6,       /* the guest reset: vm_run() reboots it, or with
				     * --no-reboot (or for skiff test guests) ends */
	SKIFF_EXIT_MIGRATION = 8,   /* --incoming/--restore failed; the guest never ran */
	SKIFF_EXIT_SECCOMP = 10,    /* a thread made a system call its seccomp filter refuses */
};

struct runstate {
	atomic_bool exit_requested;
	int exit_status;          /* valid once exit_requested is set */
	char reason[128];
	int wake_fd;              /* eventfd, written once on the first request */
	/* Sticky: SIGINT/SIGTERM asked skiff to end. Set by the main thread
	 * (signal handling) next to its exit request, which may lose to a
	 * guest reset; vm_run() then ends instead of rebooting. Not cleared by
	 * runstate_rearm(). */
	atomic_bool stop_requested;

	/* Pausing vCPUs (stop/cont, migration, reset). The main thread sets
	 * pause_requested and kicks the vCPUs; each vCPU thread parks in
	 * runstate_park() until resumed. `lock` guards `parked` and the wait;
	 * pause_requested is also read without it by vCPU loops (atomic).
	 * Lock order: runstate.lock is a leaf. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool pause_requested;
	unsigned int parked;

	/* Auto-converge during migration: a kicked vCPU sleeps this percent
	 * of each 10 ms period (0: off). Written by the migration thread. */
	atomic_uint throttle_pct;
};

int MUST_CHECK runstate_init(struct runstate *rs);
void runstate_fini(struct runstate *rs);
/* Main thread, with no vCPU thread running (a VM reset): clears the exit
 * request so the VM can run again. */
void runstate_rearm(struct runstate *rs);

/* Any thread. Returns true if this call was the first request. */
bool runstate_request_exit(struct runstate *rs, int status, const char *reason);
/* Main thread: ask vCPUs to park (then kick them), wait until `n` vCPUs
 * are parked (returns false if the VM began exiting instead), resume. */
void runstate_pause_begin(struct runstate *rs);
bool runstate_pause_wait(struct runstate *rs, unsigned int n);
void runstate_resume(struct runstate *rs);
/* vCPU thread: parks while a pause is requested and the VM is not exiting.
 * `work` (may be NULL) runs once right after the thread counts as parked,
 * outside the lock: the pause it completes is not delayed by it. */
void runstate_park(struct runstate *rs, void (*work)(void *), void *arg);
static inline bool runstate_pause_requested(struct runstate *rs)
{
	return atomic_load_explicit(&rs->pause_requested, memory_order_acquire);
}

static inline bool runstate_exiting(struct runstate *rs)
{
	return atomic_load_explicit(&rs->exit_requested, memory_order_acquire);
}

#endif

/*
 * The migration driver's state, shared by migrate.c (main-thread side and
 * the outgoing thread) and incoming.c (the incoming thread).
 *
 * Lock: migration.lock (leaf) guards `info`, the request fields and
 * `finished`/`result`. The migration thread posts wake_fd after changing
 * any of them; the main thread reads them in its event handler.
 */
#ifndef SKIFF_MIGRATE_PRIV_H
#define SKIFF_MIGRATE_PRIV_H

#include "migration_priv.h"
#include "vm.h"

#define MIG_STATUS_LOG 16

/* A channel's first bytes (extra channels only; channel 0 starts with the
 * stream header whose flags carry the channel count):
 * "SKIFFCHN", u32 version (1), u32 channel index. */
#define MIG_CHAN_MAGIC "SKIFFCHN"
#define MIG_HDR_VERIFY 1u
#define MIG_HDR_CHANNELS_SHIFT 8     /* bits 8-15: channels - 1 */

struct migration {
	struct vm *vm;
	struct event_loop *loop;
	int wake_fd;                 /* eventfd: migration thread -> main */
	int cancel_fd;               /* eventfd: main -> incoming accept */
	struct mig_params params;    /* main thread; copied by the thread at start */

	pthread_t thread;
	bool thread_running;         /* main thread: started and not joined */
	bool incoming;
	struct mig_uri uri;
	atomic_bool cancel;
	atomic_int fd[MIG_MAX_CHANNELS]; /* the streams' sockets, for shutdown(); -1 */

	pthread_t throttle_thread;
	bool throttle_running;
	atomic_bool throttle_stop;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Pause handshake: the thread sets pause_req and waits for
	 * pause_done; the main thread asks the vCPUs to park, then sets
	 * pause_ok and pause_done; the thread waits for the vCPUs, pauses the
	 * virtio devices and, if the VM was running, stamps stopped_at and
	 * sets stop_pending (the main thread emits STOP at its next wake). */
	bool pause_req, pause_done, pause_ok;
	struct timespec stopped_at;
	bool stop_pending;
	/* Outgoing final phase: set by the migration thread before it asks
	 * for the pause; main_pause calls arm_vcpu_saves(m) under the lock
	 * just before it asks running vCPUs to park (outgoing.c). */
	void (*arm_vcpu_saves)(struct migration *m);
	void *vcpu_saves;
	/* Destination: once the stream is loaded the migration thread itself
	 * releases the devices and vCPUs (mig_release_vm: no hand-off to the
	 * main thread in the guest's pause), stamps resumed_at and sets
	 * resume_req; the main thread then does the bookkeeping (vm->paused,
	 * status, RESUME). no_resume: skiff is ending, release nothing. */
	bool resume_req, no_resume;
	struct timespec resumed_at;
	bool vm_paused_by_us;        /* main thread: we paused it, we resume it */
	bool was_paused;             /* main thread: paused by `stop` before */
	bool finished;               /* the thread is done: join it */
	bool listening;              /* incoming: the stream can be sent now */
	int result;                  /* 0 or -errno */
	struct mig_info info;
	enum mig_status status_log[MIG_STATUS_LOG]; /* changes not yet emitted */
	unsigned int status_log_len;
	uint64_t t_start_ns, t_pause_ns;
};

uint64_t mig_now_ns(void);
/* Migration thread: status change (logged for the MIGRATION event). */
void mig_set_status(struct migration *m, enum mig_status s);
/* The same with m->lock held and without waking the main thread: its
 * event goes out at the main thread's next wake. For the final phase,
 * where a wake of the main thread (an eventfd write, and often a switch
 * to it on this CPU) lengthens the guest's pause. */
void mig_log_status_locked(struct migration *m, enum mig_status s);
/* Migration thread: asks the main thread to have the vCPUs park, waits
 * until they have, then pauses the devices; false if the main thread
 * refused or the VM is exiting (or the migration was cancelled). */
bool mig_request_pause(struct migration *m);
/* Migration thread of a destination: the VM is loaded, let it run now,
 * before the acknowledgement and the teardown (neither is then in the
 * guest's pause, and the source, which exits on the ack, does not compete
 * for a CPU with the resume). False if skiff is ending instead. Lock
 * order: m->lock, then the I/O workers' and the run state's locks. */
bool MUST_CHECK mig_release_vm(struct migration *m);
/* Incoming migration thread: its listening socket is open (or its file):
 * migration_incoming() returns only then, so nobody is told `inmigrate`
 * before a source can connect. */
void mig_set_listening(struct migration *m);
/* Migration thread: the last thing it does. */
void mig_finish(struct migration *m, int result, const char *error);
void mig_wake_main(struct migration *m);

void *mig_incoming_thread(void *arg);
void *mig_outgoing_thread(void *arg);
/* Stops auto-converge's kicker and joins it (migration or main thread,
 * never both at once: see outgoing.c). */
void mig_throttle_stop(struct migration *m);

/* Configuration record (config_rec.c). */
int MUST_CHECK mig_config_save(struct vm *vm, struct mig_buf *b);
int MUST_CHECK mig_config_check(struct vm *vm, const void *p, size_t len, char *err,
				size_t errlen);

/* The destination's answer after MIG_REC_END: "SKIFFACK", u32 status (0 or
 * a positive errno), u32 message length (< 256), message. */
#define MIG_ACK_MAGIC "SKIFFACK"
/* After each PASS record the destination answers "SKIFFSYN", u32 pass,
 * u32 0 once it has applied the pass: the source waits for the last one
 * before it stops the VM, so the downtime never includes the destination
 * catching up with RAM it already received. */
#define MIG_SYN_MAGIC "SKIFFSYN"

#endif

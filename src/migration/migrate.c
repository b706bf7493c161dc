/*
 * The migration driver, main thread's side: start, cancel, the pause
 * handshake with the migration thread, outcomes and MIGRATION events.
 * The outgoing thread is in outgoing.c, the incoming one in incoming.c.
 *
 * Threads: the public functions and on_wake run on the main thread; the
 * mig_* helpers at the top are called by the migration thread (which
 * waits for the parked vCPUs and pauses or resumes the devices itself;
 * the main thread owns vm->paused and the status, and updates them on
 * its next wake).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate_priv.h"
#include "runstate.h"

static const char *const status_names[] = {
	[MIG_S_NONE] = "none", [MIG_S_SETUP] = "setup", [MIG_S_ACTIVE] = "active",
	[MIG_S_DEVICE] = "device", [MIG_S_COMPLETED] = "completed",
	[MIG_S_FAILED] = "failed", [MIG_S_CANCELLED] = "cancelled",
};

const char *mig_status_name(enum mig_status s)
{
	return (unsigned int)s < ARRAY_SIZE(status_names) ? status_names[s] : "none";
}

uint64_t mig_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void mig_wake_main(struct migration *m)
{
	uint64_t one = 1;

	if (write(m->wake_fd, &one, sizeof(one)) < 0) {
		/* saturated: the main thread is already due to wake */
	}
}

void mig_log_status_locked(struct migration *m, enum mig_status s)
{
	m->info.status = s;
	if (m->status_log_len < MIG_STATUS_LOG)
		m->status_log[m->status_log_len++] = s;
}

void mig_set_status(struct migration *m, enum mig_status s)
{
	pthread_mutex_lock(&m->lock);
	mig_log_status_locked(m, s);
	pthread_mutex_unlock(&m->lock);
	mig_wake_main(m);
}

bool mig_request_pause(struct migration *m)
{
	struct timespec now;
	bool ok, was_paused;

	pthread_mutex_lock(&m->lock);
	m->pause_req = true;
	m->pause_done = false;
	pthread_mutex_unlock(&m->lock);
	mig_wake_main(m);
	pthread_mutex_lock(&m->lock);
	while (!m->pause_done)
		pthread_cond_wait(&m->cond, &m->lock);
	ok = m->pause_ok;
	was_paused = m->was_paused;
	pthread_mutex_unlock(&m->lock);
	if (!ok)
		return false;
	/* main_pause only asked the vCPUs to park: the last one to park wakes
	 * this thread directly, instead of the main thread, which would then
	 * wake this one (one thread wake-up less in the guest's pause:
	 * 10-40 us on this 2-CPU PVM machine). False if skiff is exiting:
	 * main_finished then resumes what main_pause began. */
	if (!vm_pause_wait(m->vm))
		return false;
	if (!was_paused) {
		/* For STOP, emitted at the main thread's next wake. */
		clock_gettime(CLOCK_REALTIME, &now);
		pthread_mutex_lock(&m->lock);
		m->stopped_at = now;
		m->stop_pending = true;
		pthread_mutex_unlock(&m->lock);
	}
	vm_devices_pause(m->vm);
	return true;
}

bool mig_release_vm(struct migration *m)
{
	struct vm *vm = m->vm;
	bool ok;

	pthread_mutex_lock(&m->lock);
	ok = !m->no_resume && !atomic_load(&m->cancel) && !runstate_exiting(&vm->rs);
	if (ok) {
		/* Both are thread-safe; the main thread's flags (vm->paused,
		 * vm_paused_by_us, the status) follow in on_wake: until then
		 * the status is still inmigrate, so stop/cont are refused. */
		vm_devices_resume(vm);
		clock_gettime(CLOCK_REALTIME, &m->resumed_at);
		runstate_resume(&vm->rs);
		m->resume_req = true;
	}
	pthread_mutex_unlock(&m->lock);
	if (ok)
		mig_wake_main(m);
	return ok;
}

void mig_set_listening(struct migration *m)
{
	pthread_mutex_lock(&m->lock);
	m->listening = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

void mig_finish(struct migration *m, int result, const char *error)
{
	pthread_mutex_lock(&m->lock);
	m->result = result;
	if (result && error)
		snprintf(m->info.error, sizeof(m->info.error), "%s", error);
	m->finished = true;
	pthread_cond_broadcast(&m->cond);   /* migration_incoming may wait */
	pthread_mutex_unlock(&m->lock);
	mig_wake_main(m);
}

/* --- main thread ------------------------------------------------------------- */

/* The completed event of an outgoing migration also carries the summary:
 * the source ends right after it, so nobody can query it any more. */
static void emit_status(struct migration *m, enum mig_status s)
{
	char data[320];
	struct mig_info i;

	if (s == MIG_S_COMPLETED && !m->incoming) {
		migration_info(m, &i);
		snprintf(data, sizeof(data), "{\"status\": \"completed\", \"total-time\": %llu, "
			 "\"downtime\": %.3f, \"transferred\": %llu, \"pages\": %llu, "
			 "\"zero-pages\": %llu, \"dirty-sync-count\": %llu}",
			 (unsigned long long)i.total_time_ms, i.downtime_ms,
			 (unsigned long long)i.transferred, (unsigned long long)i.pages,
			 (unsigned long long)i.zero_pages, (unsigned long long)i.iterations);
	} else {
		snprintf(data, sizeof(data), "{\"status\": \"%s\"}", mig_status_name(s));
	}
	control_emit(m->vm->control, "MIGRATION", data);
}

/* Main thread: asks the vCPUs to park (vm_pause_begin: kicks, no wait);
 * the migration thread waits for them, stamps STOP and pauses the virtio
 * devices itself (mig_request_pause). From here the status refuses stop
 * and cont until main_resume or the end. */
static bool main_pause(struct migration *m)
{
	struct vm *vm = m->vm;

	if (atomic_load(&m->cancel) || runstate_exiting(&vm->rs))
		return false;
	m->was_paused = vm->paused;
	pthread_mutex_lock(&m->lock);
	if (m->arm_vcpu_saves && !m->was_paused)
		m->arm_vcpu_saves(m);
	pthread_mutex_unlock(&m->lock);
	vm_pause_begin(vm);
	m->vm_paused_by_us = true;
	control_set_status(vm->control, m->incoming ? VM_STATUS_INMIGRATE :
			   VM_STATUS_FINISH_MIGRATE);
	return true;
}

/* Main thread: resumes the devices and (unless `stop` had paused it) the
 * vCPUs of a VM this migration paused. */
static void main_resume(struct migration *m)
{
	struct vm *vm = m->vm;
	struct timespec now;

	if (!m->vm_paused_by_us)
		return;
	m->vm_paused_by_us = false;
	vm_devices_resume(vm);
	/* Stamped before: a released vCPU thread may take this CPU. */
	clock_gettime(CLOCK_REALTIME, &now);
	if (!m->was_paused) {
		vm_resume(vm);
		control_emit_at(vm->control, "RESUME", &now);
	}
	control_set_status(vm->control, VM_STATUS_AUTO);
}

static void main_finished(struct migration *m)
{
	struct vm *vm = m->vm;
	enum mig_status st;
	char reason[128];
	int result;

	pthread_join(m->thread, NULL);
	m->thread_running = false;
	mig_throttle_stop(m);
	pthread_mutex_lock(&m->lock);
	result = m->result;
	st = result == 0 ? MIG_S_COMPLETED :
	     atomic_load(&m->cancel) && !m->incoming ? MIG_S_CANCELLED : MIG_S_FAILED;
	m->info.status = st;
	pthread_mutex_unlock(&m->lock);
	if (m->incoming) {
		if (result == 0) {
			m->was_paused = false;
			main_resume(m);
			log_info("migration: VM received from %s and running", m->uri.text);
		} else {
			log_err("incoming migration failed: %s", m->info.error);
			runstate_request_exit(&vm->rs, SKIFF_EXIT_MIGRATION, "incoming migration failed");
		}
		emit_status(m, st);
		return;
	}
	emit_status(m, st);
	if (result == 0 && m->uri.kind != MIG_URI_FILE) {
		/* The destination runs the VM now: this one must never run
		 * again. It stays parked until skiff exits. */
		control_set_status(vm->control, VM_STATUS_POSTMIGRATE);
		snprintf(reason, sizeof(reason), "migrated to %.100s", m->uri.text);
		log_info("%s (downtime %.2f ms)", reason, m->info.downtime_ms);
		runstate_request_exit(&vm->rs, SKIFF_EXIT_OK, reason);
		return;
	}
	if (result)
		log_warn("migration to %s %s: %s; the VM runs on here", m->uri.text,
			 st == MIG_S_CANCELLED ? "cancelled" : "failed", m->info.error);
	main_resume(m);
}

static void on_wake(void *opaque, uint32_t events)
{
	struct migration *m = opaque;
	enum mig_status log[MIG_STATUS_LOG];
	unsigned int n;
	uint64_t v;
	struct timespec stopped = { 0 };
	bool pause, resume, finished, stop;

	(void)events;
	if (read(m->wake_fd, &v, sizeof(v)) < 0) {
		/* nothing pending */
	}
	pthread_mutex_lock(&m->lock);
	n = m->status_log_len;
	memcpy(log, m->status_log, sizeof(log[0]) * n);
	m->status_log_len = 0;
	pause = m->pause_req && !m->pause_done;
	resume = m->resume_req;
	m->resume_req = false;
	finished = m->finished && m->thread_running;
	stop = m->stop_pending;
	stopped = m->stopped_at;
	m->stop_pending = false;
	pthread_mutex_unlock(&m->lock);
	/* The migration thread waits for a pause and the guest for a resume:
	 * both go before any event is built. */
	if (pause) {
		bool ok = main_pause(m);

		pthread_mutex_lock(&m->lock);
		m->pause_ok = ok;
		m->pause_done = true;
		m->pause_req = false;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
	}
	/* A destination's migration thread released the VM (mig_release_vm). */
	if (resume && m->vm_paused_by_us) {
		m->vm_paused_by_us = false;
		m->vm->paused = false;
		control_emit_at(m->vm->control, "RESUME", &m->resumed_at);
		control_set_status(m->vm->control, VM_STATUS_AUTO);
	}
	for (unsigned int i = 0; i < n; i++)
		emit_status(m, log[i]);
	/* Stamped by the migration thread when the vCPUs were all parked,
	 * sent at this thread's next wake (often the migration's end). */
	if (stop)
		control_emit_at(m->vm->control, "STOP", &stopped);
	if (finished)
		main_finished(m);
}

int migration_create(struct vm *vm, struct migration **out)
{
	struct migration *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->vm = vm;
	m->params = (struct mig_params){
		.downtime_limit_ms = 300, .max_bandwidth = 0, .auto_converge = true,
		.channels = 1, .verify = false,
	};
	for (unsigned int i = 0; i < MIG_MAX_CHANNELS; i++)
		atomic_store(&m->fd[i], -1);
	m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	m->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->wake_fd < 0 || m->cancel_fd < 0) {
		int e = errno;

		if (m->wake_fd >= 0)
			close(m->wake_fd);
		if (m->cancel_fd >= 0)
			close(m->cancel_fd);
		free(m);
		return -e;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	*out = m;
	return 0;
}

int migration_attach(struct migration *m, struct event_loop *loop)
{
	m->loop = loop;
	return event_add(loop, m->wake_fd, EPOLLIN, on_wake, m);
}

static void cancel_thread(struct migration *m)
{
	uint64_t one = 1;
	int fd;

	atomic_store(&m->cancel, true);
	if (write(m->cancel_fd, &one, sizeof(one)) < 0) {
		/* saturated */
	}
	for (unsigned int i = 0; i < MIG_MAX_CHANNELS; i++) {
		fd = atomic_load(&m->fd[i]);
		if (fd >= 0)
			shutdown(fd, SHUT_RDWR);
	}
}

void migration_vm_stopping(struct migration *m)
{
	if (!m)
		return;
	/* The migration thread may wait for a pause the main thread will no
	 * longer grant: refuse it, and stop kicking vCPUs that are about to
	 * be joined. */
	if (m->thread_running)
		cancel_thread(m);
	pthread_mutex_lock(&m->lock);
	if (m->pause_req && !m->pause_done) {
		m->pause_ok = false;
		m->pause_done = true;
	}
	/* Nor may a loaded destination release its VM: skiff is ending. */
	m->no_resume = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->thread_running) {
		pthread_join(m->thread, NULL);
		m->thread_running = false;
	}
	mig_throttle_stop(m);
}

void migration_destroy(struct migration *m)
{
	if (!m)
		return;
	migration_vm_stopping(m);
	if (m->loop)
		event_del(m->loop, m->wake_fd);
	close(m->wake_fd);
	close(m->cancel_fd);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int start_thread(struct migration *m, void *(*fn)(void *), char *err, size_t errlen)
{
	int ret;

	atomic_store(&m->cancel, false);
	pthread_mutex_lock(&m->lock);
	m->info = (struct mig_info){ .status = MIG_S_SETUP, .incoming = m->incoming,
				     .ram_total = m->vm->mem->size };
	m->finished = false;
	m->result = 0;
	m->pause_req = m->pause_done = false;
	m->stop_pending = false;
	m->resume_req = m->no_resume = false;
	m->listening = false;
	m->status_log_len = 0;
	pthread_mutex_unlock(&m->lock);
	m->t_start_ns = mig_now_ns();
	emit_status(m, MIG_S_SETUP);
	ret = pthread_create(&m->thread, NULL, fn, m);
	if (ret) {
		snprintf(err, errlen, "cannot start the migration thread: %s", strerror(ret));
		m->info.status = MIG_S_FAILED;
		return -ret;
	}
	m->thread_running = true;
	return 0;
}

int migration_start(struct migration *m, const char *uri, char *err, size_t errlen)
{
	int ret;

	if (m->thread_running) {
		snprintf(err, errlen, "a migration is already running");
		return -EBUSY;
	}
	if (runstate_exiting(&m->vm->rs)) {
		snprintf(err, errlen, "the VM is stopping");
		return -ESHUTDOWN;
	}
	ret = mig_uri_parse(uri, &m->uri, err, errlen);
	if (ret)
		return ret;
	m->incoming = false;
	return start_thread(m, mig_outgoing_thread, err, errlen);
}

int migration_incoming(struct migration *m, const char *uri, char *err, size_t errlen)
{
	int ret = mig_uri_parse(uri, &m->uri, err, errlen);

	if (ret)
		return ret;
	m->incoming = true;
	/* The vCPUs are parked (vm_run did that) and stay so until the
	 * stream is loaded: resuming is main_finished's decision. */
	m->vm_paused_by_us = true;
	m->was_paused = false;
	control_set_status(m->vm->control, VM_STATUS_INMIGRATE);
	ret = start_thread(m, mig_incoming_thread, err, errlen);
	if (ret)
		return ret;
	/* Not before the thread listens: the control socket answers
	 * `inmigrate` as soon as the event loop runs, and a script that waits
	 * for that would otherwise connect too early (seen under load: the
	 * source's connect refused). A failure ends the thread instead. */
	pthread_mutex_lock(&m->lock);
	while (!m->listening && !m->finished)
		pthread_cond_wait(&m->cond, &m->lock);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int migration_cancel(struct migration *m)
{
	if (!m->thread_running || m->incoming)
		return -ENOENT;
	cancel_thread(m);
	return 0;
}

bool migration_owns_vm(struct migration *m)
{
	return m && m->vm_paused_by_us;
}

void migration_info(struct migration *m, struct mig_info *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->info;
	if (m->thread_running && out->status != MIG_S_COMPLETED)
		out->total_time_ms = (mig_now_ns() - m->t_start_ns) / 1000000;
	pthread_mutex_unlock(&m->lock);
}

void migration_get_params(struct migration *m, struct mig_params *out)
{
	*out = m->params;
}

int migration_set_params(struct migration *m, const struct mig_params *p, char *err, size_t errlen)
{
	if (m->thread_running) {
		snprintf(err, errlen, "a migration is running: set parameters before `migrate`");
		return -EBUSY;
	}
	if (p->channels < 1 || p->channels > MIG_MAX_CHANNELS) {
		snprintf(err, errlen, "channels must be from 1 to %d", MIG_MAX_CHANNELS);
		return -EINVAL;
	}
	if (p->downtime_limit_ms > 2000000) {
		snprintf(err, errlen, "downtime-limit must be at most 2000000 ms");
		return -EINVAL;
	}
	m->params = *p;
	return 0;
}

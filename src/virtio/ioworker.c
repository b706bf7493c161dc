/*
 * The I/O thread shared by the block (and later net) devices: one thread,
 * one io_uring. The thread sleeps in io_uring_submit_and_wait(); the queues'
 * ioeventfds and a control eventfd are read through the ring (one READ in
 * flight per eventfd, re-armed after it completes), so a guest kick, a
 * completed disk request and a control request all wake the same wait.
 *
 * Thread context: ioworker_sqe/inflight run on the I/O thread only;
 * wake/pause/resume/destroy on other threads. `lock` guards the control
 * flags and the pause handshake (a leaf lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "virtio_priv.h"

/* user_data values below this are eventfd sources (index + 1). */
#define UD_SOURCES (IOWORKER_MAX_FDS + 2)
#define UD_CTL 1
#define UD_CANCEL UD_SOURCES   /* an ASYNC_CANCEL's own completion */

struct source {
	int fd;
	unsigned int id;
	uint64_t buf;     /* the READ's target */
	bool armed;       /* a READ (or POLL_ADD) is in flight */
	bool fired;       /* completed, handler not run yet */
	unsigned int poll_events; /* 0: an eventfd to read; else POLL_ADD mask */
	bool held;        /* not re-armed (ioworker_hold) */
};

struct ioworker {
	char name[16];
	struct io_uring ring;
	bool ring_ok;
	unsigned int entries;
	const struct ioworker_ops *ops;
	void *opaque;
	pthread_t thread;
	bool started;
	const struct sandbox *sandbox; /* set before the thread starts */
	int enter_ret;                 /* the thread's sandbox_enter(), under lock */
	bool entered;
	struct source src[IOWORKER_MAX_FDS + 1]; /* [0] is the control eventfd */
	unsigned int nr_src;
	unsigned int inflight;   /* I/O thread only */
	uint64_t poll_ns;
	bool poll_idle_only;     /* no busy-poll while requests are in flight */

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop, pause, paused, woken;
};

static void arm(struct ioworker *w, unsigned int i)
{
	struct source *s = &w->src[i];
	struct io_uring_sqe *sqe;

	if (s->armed || s->held)
		return;
	sqe = io_uring_get_sqe(&w->ring);
	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe)
			return; /* retried on the next round */
	}
	if (s->poll_events)
		io_uring_prep_poll_add(sqe, s->fd, s->poll_events);
	else
		io_uring_prep_read(sqe, s->fd, &s->buf, sizeof(s->buf), 0);
	io_uring_sqe_set_data64(sqe, i + 1);
	s->armed = true;
}

struct io_uring_sqe *ioworker_sqe(struct ioworker *w, struct ioworker_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe)
			return NULL;
	}
	io_uring_sqe_set_data(sqe, op);
	w->inflight++;
	return sqe;
}

unsigned int ioworker_inflight(const struct ioworker *w)
{
	return w->inflight;
}

static void reap(struct ioworker *w)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&w->ring, head, cqe) {
		uint64_t ud = cqe->user_data;

		n++;
		if (ud < UD_SOURCES) {
			struct source *s = &w->src[ud - 1];

			s->armed = false;
			/* -EAGAIN/-EINTR: nothing read, re-arm; any result wakes. */
			s->fired = true;
		} else if (ud == UD_CANCEL) {
			/* the cancelled READ/POLL_ADD completes on its own */
		} else {
			struct ioworker_op *op = (struct ioworker_op *)(uintptr_t)ud;

			w->inflight--;
			op->done(op, cqe->res);
		}
	}
	io_uring_cq_advance(&w->ring, n);
}

/* Handles the control flags. Returns false when the thread must end. */
static bool control(struct ioworker *w, bool *paused)
{
	bool woken, stop;

	pthread_mutex_lock(&w->lock);
	/* While a pause or stop is pending, wake-ups wait: the device would
	 * pop new requests from them. */
	woken = w->woken && !w->pause && !w->stop;
	if (woken)
		w->woken = false;
	stop = w->stop;
	if (w->pause && w->inflight == 0) {
		w->paused = true;
		pthread_cond_broadcast(&w->cond);
		while (w->pause && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		w->paused = false;
		woken = true; /* look at the queues again after a pause */
		stop = w->stop;
	}
	*paused = w->pause || w->stop;
	pthread_mutex_unlock(&w->lock);
	if (stop && w->inflight == 0)
		return false;
	if (woken && !stop && w->ops->on_wake)
		w->ops->on_wake(w->opaque);
	return true;
}

/*
 * Before sleeping: submit what is queued, then busy-poll the completion
 * queue and the virtqueues for poll_ns (a sleeping thread's wake-up costs
 * far more than a request here), then let the device re-enable guest
 * notifications and look once more. Returns true when there is work (the
 * caller reaps and runs the queues without sleeping).
 */
static bool poll_for_work(struct ioworker *w)
{
	uint64_t end;

	io_uring_submit(&w->ring);
	if (io_uring_cq_ready(&w->ring))
		return false; /* completions: reap them (no wait) */
	/* poll_idle_only: requests still in flight went on asynchronously,
	 * and their completions come from io_uring's worker threads (buffered
	 * writes, reads that miss the page cache), which need the CPU a
	 * spinning thread would take: sleep until one completes or a kick. */
	if (w->poll_ns && w->ops->poll && !(w->poll_idle_only && w->inflight)) {
		end = now_ns() + w->poll_ns;
		do {
			if (io_uring_cq_ready(&w->ring))
				return false; /* completions: reap them (no wait) */
			if (w->ops->poll(w->opaque))
				return true;
			__builtin_ia32_pause();
		} while (now_ns() < end);
	}
	if (io_uring_cq_ready(&w->ring))
		return false;
	return w->ops->before_sleep && w->ops->before_sleep(w->opaque);
}

static void *worker_thread(void *arg)
{
	struct ioworker *w = arg;
	bool paused = false;
	unsigned int i;
	int ret0;

	pthread_setname_np(pthread_self(), w->name);
	/* The filter first, and ioworker_start() learns whether it holds
	 * before the device is offered to the guest. */
	ret0 = sandbox_enter(w->sandbox, SANDBOX_IO);
	pthread_mutex_lock(&w->lock);
	w->enter_ret = ret0;
	w->entered = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (ret0)
		return NULL;
	for (i = 0; i < w->nr_src; i++)
		arm(w, i);
	for (;;) {
		bool run = false;
		int ret;

		if (!paused)
			run = poll_for_work(w);
		ret = run ? 0 : io_uring_submit_and_wait(&w->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			log_err("%s: io_uring_submit_and_wait: %s", w->name, strerror(-ret));
			break;
		}
		reap(w);
		if (w->src[0].fired) {
			w->src[0].fired = false;
		}
		if (!control(w, &paused))
			break;
		for (i = 1; i < w->nr_src; i++) {
			if (!w->src[i].fired || paused)
				continue;
			w->src[i].fired = false;
			w->ops->on_fd(w->opaque, w->src[i].id);
		}
		if (run && !paused && w->ops->run)
			w->ops->run(w->opaque);
		if (w->ops->after_batch)
			w->ops->after_batch(w->opaque);
		for (i = 0; i < w->nr_src; i++)
			arm(w, i);
	}
	return NULL;
}

int ioworker_run_sync(struct ioworker *w)
{
	bool woken;
	int ret;

	if (w->started)
		return -EBUSY;
	pthread_mutex_lock(&w->lock);
	woken = w->woken;
	w->woken = false;
	pthread_mutex_unlock(&w->lock);
	if (woken && w->ops->on_wake)
		w->ops->on_wake(w->opaque);
	if (w->ops->run)
		w->ops->run(w->opaque);
	while (w->inflight) {
		ret = io_uring_submit_and_wait(&w->ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN)
			return ret;
		reap(w);
	}
	if (w->ops->after_batch)
		w->ops->after_batch(w->opaque);
	return 0;
}

int ioworker_create(const char *name, unsigned int entries, const struct ioworker_ops *ops,
		    void *opaque, struct ioworker **out)
{
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE };
	struct ioworker *w;
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->ops = ops;
	w->opaque = opaque;
	w->entries = entries;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->src[0].fd = eventfd(0, EFD_CLOEXEC);
	if (w->src[0].fd < 0) {
		ret = -errno;
		goto fail;
	}
	w->nr_src = 1;
	p.cq_entries = 2 * entries;
	ret = io_uring_queue_init_params(entries, &w->ring, &p);
	if (ret)
		goto fail;
	w->ring_ok = true;
	*out = w;
	return 0;
fail:
	ioworker_destroy(w);
	return ret;
}

int ioworker_add_fd(struct ioworker *w, int fd, unsigned int id)
{
	if (w->started || w->nr_src > IOWORKER_MAX_FDS)
		return -ENOSPC;
	w->src[w->nr_src].fd = fd;
	w->src[w->nr_src].id = id;
	w->nr_src++;
	return 0;
}

int ioworker_add_poll(struct ioworker *w, int fd, unsigned int events, unsigned int id,
		      bool held)
{
	int ret = ioworker_add_fd(w, fd, id);

	if (ret)
		return ret;
	w->src[w->nr_src - 1].poll_events = events;
	w->src[w->nr_src - 1].held = held;
	return 0;
}

void ioworker_hold(struct ioworker *w, unsigned int id, bool hold)
{
	unsigned int i;

	for (i = 1; i < w->nr_src; i++) {
		if (w->src[i].id == id)
			w->src[i].held = hold;
	}
}

void ioworker_set_poll(struct ioworker *w, uint64_t ns)
{
	w->poll_ns = ns;
}

void ioworker_poll_when_idle(struct ioworker *w, bool idle_only)
{
	w->poll_idle_only = idle_only;
}

int ioworker_start(struct ioworker *w, const struct sandbox *sb)
{
	int ret;

	w->sandbox = sb;
	ret = pthread_create(&w->thread, NULL, worker_thread, w);
	if (ret)
		return -ret;
	pthread_mutex_lock(&w->lock);
	while (!w->entered)
		pthread_cond_wait(&w->cond, &w->lock);
	ret = w->enter_ret;
	pthread_mutex_unlock(&w->lock);
	if (ret) {
		pthread_join(w->thread, NULL); /* it has returned */
		return ret;
	}
	w->started = true;
	return 0;
}

void ioworker_wake(struct ioworker *w)
{
	uint64_t one = 1;

	pthread_mutex_lock(&w->lock);
	w->woken = true;
	pthread_mutex_unlock(&w->lock);
	if (write(w->src[0].fd, &one, sizeof(one)) < 0) {
		/* the counter cannot overflow in practice; the flag is set */
	}
}

void ioworker_pause(struct ioworker *w)
{
	uint64_t one = 1;

	if (!w->started)
		return;
	pthread_mutex_lock(&w->lock);
	w->pause = true;
	pthread_mutex_unlock(&w->lock);
	if (write(w->src[0].fd, &one, sizeof(one)) < 0) {
		/* see ioworker_wake */
	}
	pthread_mutex_lock(&w->lock);
	while (!w->paused && !w->stop)
		pthread_cond_wait(&w->cond, &w->lock);
	pthread_mutex_unlock(&w->lock);
}

void ioworker_resume(struct ioworker *w)
{
	pthread_mutex_lock(&w->lock);
	w->pause = false;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Main thread, the I/O thread joined: cancel the sources' READs and
 * POLL_ADDs and wait for them. io_uring drops its file references only when
 * an operation ends; left to the ring's asynchronous teardown, a tap would
 * stay attached for a while after skiff exits (TUNSETIFF: EBUSY for the
 * next user of the interface). */
static void cancel_sources(struct ioworker *w)
{
	struct __kernel_timespec ts = { .tv_nsec = 100 * 1000 * 1000 };
	struct io_uring_cqe *cqe;
	unsigned int i, tries;
	bool armed = false;

	for (i = 0; i < w->nr_src; i++) {
		struct io_uring_sqe *sqe;

		if (!w->src[i].armed)
			continue;
		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe) {
			io_uring_submit(&w->ring);
			sqe = io_uring_get_sqe(&w->ring);
			if (!sqe)
				break;
		}
		io_uring_prep_cancel64(sqe, i + 1, 0);
		io_uring_sqe_set_data64(sqe, UD_CANCEL);
		armed = true;
	}
	for (tries = 0; armed && tries < 20; tries++) {
		io_uring_submit(&w->ring);
		if (io_uring_wait_cqe_timeout(&w->ring, &cqe, &ts) < 0 && !io_uring_cq_ready(&w->ring))
			continue;
		reap(w);
		armed = false;
		for (i = 0; i < w->nr_src; i++)
			armed |= w->src[i].armed;
	}
}

void ioworker_destroy(struct ioworker *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		if (write(w->src[0].fd, &one, sizeof(one)) < 0) {
			/* see ioworker_wake */
		}
		pthread_join(w->thread, NULL);
	}
	if (w->ring_ok) {
		cancel_sources(w);
		io_uring_queue_exit(&w->ring);
	}
	if (w->src[0].fd >= 0 && w->nr_src)
		close(w->src[0].fd);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

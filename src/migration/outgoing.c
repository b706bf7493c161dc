/*
 * The outgoing migration thread: pre-copy passes, the final phase, the
 * destination's acknowledgement; and auto-converge's kicker thread.
 *
 * Outgoing, in order:
 *   setup:  connect (tcp/unix) or create PATH.part (file); header; the
 *           configuration record; dirty logging on.
 *   active: pass 1 sends every non-zero page; each later pass sends what
 *           was dirtied meanwhile. After each pass: expected downtime =
 *           dirty bytes / measured bandwidth; done when it is within
 *           downtime-limit. With auto-converge, vCPUs are throttled in
 *           steps while the dirty rate outruns the link.
 *   device: the main thread asks every vCPU to park; this thread waits
 *           for them and pauses every virtio device (in-flight requests
 *           complete first); the last dirty pages, VM,
 *           vCPU and device state, the optional verify hash and the end
 *           marker go out; tcp/unix wait for the destination's ack.
 *   then:   tcp/unix success: skiff ends (status 0, "migrated to URI");
 *           file success: the VM runs on (a snapshot); failure or cancel:
 *           the VM runs on, nothing lost.
 *
 * Threads: the migration thread (mig_outgoing_thread), one sender thread
 * per extra channel during each pass, and while auto-converge throttles, a
 * kicker thread that kicks every vCPU each 10 ms. The main thread's side
 * is in migrate.c.
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
#include "sandbox.h"

#define MIG_THROTTLE_PERIOD_NS 10000000ull
#define MIG_THROTTLE_FIRST 20u
#define MIG_THROTTLE_STEP 10u
#define MIG_THROTTLE_MAX 99u
#define MIG_ACK_TIMEOUT_TRIES 6      /* x MIG_IO_TIMEOUT_S */
/* Pre-copy keeps going while each pass shrinks the dirty set by a quarter
 * (at most this many passes), until what is left would take less than the
 * floor to send; the downtime limit is the most it may take. */
#define MIG_DOWNTIME_FLOOR_US 1000
#define MIG_MAX_SHRINK_PASSES 30

/* --- auto-converge ---------------------------------------------------------- */

/* Kicker thread: while throttling, kicks every vCPU once per period; a kicked
 * vCPU sleeps throttle_pct of the period (src/vcpu/vcpu.c). It stops before
 * the vCPU threads are joined (migration_vm_stopping). */
static void *throttle_thread(void *arg)
{
	struct migration *m = arg;
	struct timespec ts = { .tv_nsec = (long)MIG_THROTTLE_PERIOD_NS };

	pthread_setname_np(pthread_self(), "migration-kick");
	if (sandbox_enter(m->vm->sandbox, SANDBOX_MIGRATION)) {
		log_warn("migration: auto-converge off: cannot install its seccomp filter");
		return NULL;
	}
	while (!atomic_load(&m->throttle_stop)) {
		for (unsigned int i = 0; i < m->vm->nr_vcpus; i++)
			vcpu_kick(m->vm->vcpus[i]);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void throttle_set(struct migration *m, unsigned int pct)
{
	atomic_store(&m->vm->rs.throttle_pct, pct);
	pthread_mutex_lock(&m->lock);
	m->info.throttle_pct = pct;
	pthread_mutex_unlock(&m->lock);
	if (pct && !m->throttle_running) {
		atomic_store(&m->throttle_stop, false);
		if (pthread_create(&m->throttle_thread, NULL, throttle_thread, m) == 0)
			m->throttle_running = true;
	}
}

/* Migration thread or main thread (never both: the main thread calls it only
 * after the migration thread has finished or before the vCPUs are joined,
 * when the migration thread is blocked in the pause handshake or done). */
void mig_throttle_stop(struct migration *m)
{
	atomic_store(&m->vm->rs.throttle_pct, 0);
	if (m->throttle_running) {
		atomic_store(&m->throttle_stop, true);
		pthread_join(m->throttle_thread, NULL);
		m->throttle_running = false;
	}
}

/* --- the outgoing thread ------------------------------------------------------ */

static void update_info(struct migration *m, uint64_t sent, const struct mig_ram *r,
			uint64_t iterations, uint64_t bw, uint64_t dirty_rate)
{
	pthread_mutex_lock(&m->lock);
	m->info.transferred = sent;
	m->info.remaining = r->dirty_pages * MEM_PAGE_SIZE;
	m->info.pages = r->data_pages;
	m->info.zero_pages = r->zero_pages;
	m->info.iterations = iterations;
	m->info.dirty_bytes_rate = dirty_rate;
	m->info.dirty_pages_rate = dirty_rate / MEM_PAGE_SIZE;
	m->info.mbps = (double)bw * 8 / 1e6;
	m->info.expected_downtime_ms = bw ? r->dirty_pages * MEM_PAGE_SIZE * 1000 / bw : 0;
	m->info.total_time_ms = (mig_now_ns() - m->t_start_ns) / 1000000;
	pthread_mutex_unlock(&m->lock);
}

#define MIG_STATE_BUF (64u << 10)
#define MIG_VCPU_BUF (16u << 10)

/* One vCPU's state record, saved by the vCPU's own thread as it parks for
 * the final phase (in parallel with the last RAM pages and the VM state
 * here), or by the migration thread when the vCPU thread did not take the
 * work. `armed`, `done` and `ret` are under m->lock. */
struct vcpu_save {
	struct migration *m;
	struct mig_buf buf;
	int ret;
	bool armed;   /* the main thread left the work to the vCPU thread */
	bool done;
};

/* vCPU thread (parked) or migration thread. */
static void save_vcpu(struct vcpu *v, void *arg)
{
	struct vcpu_save *vs = arg;
	int ret;

	mig_buf_reset(&vs->buf);
	mig_put_u32(&vs->buf, v->index);
	ret = mig_vcpu_save(v, &vs->buf);
	pthread_mutex_lock(&vs->m->lock);
	vs->ret = ret ? ret : vs->buf.err;
	vs->done = true;
	pthread_cond_broadcast(&vs->m->cond);
	pthread_mutex_unlock(&vs->m->lock);
}

/* Main thread, in the final phase's pause, just before it parks running
 * vCPUs (so the next park of each vCPU is this one: a `stop` and `cont`
 * between would otherwise have taken the work with a state that then
 * changed). Not called when the VM was stopped already: its vCPU threads
 * are parked and will not look. m->lock is held. */
static void arm_vcpu_saves(struct migration *m)
{
	struct vcpu_save *vs = m->vcpu_saves;

	for (unsigned int i = 0; i < m->vm->nr_vcpus; i++) {
		vs[i].armed = true;
		vcpu_on_next_park(m->vm->vcpus[i], save_vcpu, &vs[i]);
	}
}

/* Migration thread: the record of vCPU v once it exists. With run, work
 * no vCPU thread took is done here; without, it is withdrawn (teardown:
 * vs must not be used by anyone after this returns). */
static int settle_vcpu(struct migration *m, struct vcpu *v, struct vcpu_save *vs, bool run)
{
	bool armed, here;
	int ret;

	pthread_mutex_lock(&m->lock);
	armed = vs->armed;
	pthread_mutex_unlock(&m->lock);
	/* Here when never armed, or armed but not taken by the vCPU thread
	 * (the claim withdraws it); else the vCPU thread does it. */
	here = !armed || vcpu_claim_park(v);
	if (here && !run)
		return -ECANCELED;
	if (here)
		save_vcpu(v, vs);
	pthread_mutex_lock(&m->lock);
	while (!vs->done)
		pthread_cond_wait(&m->cond, &m->lock);
	ret = vs->ret;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int put_state(struct migration *m, struct mig_stream *s, struct mig_buf *b,
		     struct vcpu_save *vs, char *err, size_t errlen)
{
	struct vm *vm = m->vm;
	int ret;

	mig_buf_reset(b);
	ret = mig_vm_save(vm->vm_fd, b);
	if (!ret)
		ret = b->err;
	if (ret) {
		snprintf(err, errlen, "saving the VM state: %s", strerror(-ret));
		return ret;
	}
	ret = mig_stream_put(s, MIG_REC_VM, b->data, b->len);
	if (ret)
		goto io;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		ret = settle_vcpu(m, vm->vcpus[i], &vs[i], true);
		if (ret) {
			snprintf(err, errlen, "saving vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
		ret = mig_stream_put(s, MIG_REC_VCPU, vs[i].buf.data, vs[i].buf.len);
		if (ret)
			goto io;
	}
	mig_buf_reset(b);
	ret = mig_devices_save(vm, b);
	if (!ret)
		ret = b->err;
	if (ret) {
		snprintf(err, errlen, "saving the device state: %s", strerror(-ret));
		return ret;
	}
	ret = mig_stream_put(s, MIG_REC_DEVICES, b->data, b->len);
	if (ret)
		goto io;
	return 0;
io:
	snprintf(err, errlen, "sending the state: %s", strerror(-ret));
	return ret;
}

/* Reads the destination's answers: with want_syn, until it has applied
 * pass want_syn (*synced: the last pass it confirmed); else until its final
 * ack, 0 if it loaded the VM and runs it. */
static int read_ack(struct migration *m, int fd, uint32_t want_syn, uint32_t *synced,
		    char *err, size_t errlen)
{
	uint8_t h[16];
	char msg[256];
	uint32_t status, len;
	size_t got = 0;
	int tries = 0;

again:
	got = 0;
	while (got < sizeof(h)) {
		ssize_t n = read(fd, h + got, sizeof(h) - got);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    ++tries < MIG_ACK_TIMEOUT_TRIES && !atomic_load(&m->cancel))
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "the destination did not confirm: %s",
				 n == 0 ? "connection closed" : strerror(errno));
			return n == 0 ? -EPIPE : -errno;
		}
		got += (size_t)n;
	}
	if (!memcmp(h, MIG_SYN_MAGIC, 8)) {
		memcpy(&status, h + 8, 4);
		*synced = le32toh(status);
		if (want_syn && *synced >= want_syn)
			return 0;
		goto again;
	}
	if (memcmp(h, MIG_ACK_MAGIC, 8)) {
		snprintf(err, errlen, "the destination answered garbage");
		return -EPROTO;
	}
	memcpy(&status, h + 8, 4);
	memcpy(&len, h + 12, 4);
	status = le32toh(status);
	len = le32toh(len);
	if (status == 0)
		return 0;
	if (len >= sizeof(msg))
		len = sizeof(msg) - 1;
	got = 0;
	while (got < len) {
		ssize_t n = read(fd, msg + got, len - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	msg[got] = '\0';
	snprintf(err, errlen, "the destination refused the VM: %s", got ? msg : strerror((int)status));
	return -(int)(status < 4096 ? status : EPROTO);
}

static int open_target(struct migration *m, char *tmp, size_t tmplen, char *err, size_t errlen)
{
	int fd;

	if (m->uri.kind != MIG_URI_FILE)
		return mig_uri_connect(&m->uri, err, errlen);
	snprintf(tmp, tmplen, "%s.part", m->uri.path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%.200s: %s", tmp, strerror(errno));
		return -errno;
	}
	return fd;
}

/* Extra channel i: connect and say which one it is. */
static int open_channel(struct migration *m, unsigned int i, char *err, size_t errlen)
{
	uint8_t hello[16];
	uint32_t v = htole32(1), idx = htole32(i);
	int fd = mig_uri_connect(&m->uri, err, errlen);

	if (fd < 0)
		return fd;
	memcpy(hello, MIG_CHAN_MAGIC, 8);
	memcpy(hello + 8, &v, 4);
	memcpy(hello + 12, &idx, 4);
	if (send(fd, hello, sizeof(hello), MSG_NOSIGNAL) != (ssize_t)sizeof(hello)) {
		snprintf(err, errlen, "channel %u: %s", i, strerror(errno));
		close(fd);
		return -EIO;
	}
	return fd;
}

struct pass_job {
	struct mig_sender *x;
	const struct sandbox *sb;
	const atomic_bool *cancel;
	pthread_t thread;
	bool started;
	int ret;
};

static void *pass_thread(void *arg)
{
	struct pass_job *j = arg;

	pthread_setname_np(pthread_self(), "migration-tx");
	/* Already under the migration filter (inherited from the migration
	 * thread); entering it again names the thread for a violation report. */
	j->ret = sandbox_enter(j->sb, SANDBOX_MIGRATION);
	if (!j->ret)
		j->ret = mig_ram_send_part(j->x, j->cancel);
	return NULL;
}

/* One RAM pass over n channels: channel 0 on this thread, the others on
 * short-lived threads (one per pass: a pass is milliseconds at least; if a
 * thread cannot be started, its part runs here). */
static int send_pass(struct mig_ram *r, struct mig_sender *x, unsigned int n,
		     const atomic_bool *cancel, const struct sandbox *sb)
{
	struct pass_job jobs[MIG_MAX_CHANNELS];
	int ret;

	for (unsigned int i = 1; i < n; i++) {
		jobs[i] = (struct pass_job){ .x = &x[i], .cancel = cancel, .sb = sb };
		jobs[i].started = pthread_create(&jobs[i].thread, NULL, pass_thread, &jobs[i]) == 0;
	}
	ret = mig_ram_send_part(&x[0], cancel);
	for (unsigned int i = 1; i < n; i++) {
		if (jobs[i].started)
			pthread_join(jobs[i].thread, NULL);
		else
			jobs[i].ret = mig_ram_send_part(&x[i], cancel);
		if (!ret)
			ret = jobs[i].ret;
	}
	mig_ram_pass_done(r, x, n);
	return ret;
}

static uint64_t sent_bytes(const struct mig_stream *s, unsigned int n)
{
	uint64_t b = 0;

	for (unsigned int i = 0; i < n; i++)
		b += s[i].bytes;
	return b;
}

void *mig_outgoing_thread(void *arg)
{
	struct migration *m = arg;
	struct vm *vm = m->vm;
	struct mig_params p = m->params;  /* fixed for this run */
	unsigned int n = m->uri.kind == MIG_URI_FILE ? 1 : MAX(p.channels, 1u);
	struct mig_stream s[MIG_MAX_CHANNELS];
	struct mig_sender x[MIG_MAX_CHANNELS];
	struct mig_ram r;
	struct mig_buf b;
	struct vcpu_save *vs = NULL;
	bool vs_offered = false;
	char err[256] = "", tmp[4200] = "";
	uint64_t iter = 0, bw = 0, dirty_rate = 0, t0, t1, sent0, verify_hash = 0;
	uint64_t prev_dirty = UINT64_MAX, t_parked = 0, t_ram = 0, t_state = 0, last_pages = 0;
	unsigned int nr_open = 0, nr_senders = 0;
	bool within, shrinking, throttled_out;
	uint32_t synced = 0;
	int fd, ret;
	bool ram_ok = false;

	pthread_setname_np(pthread_self(), "migration");
	mig_buf_init(&b);
	ret = sandbox_enter(vm->sandbox, SANDBOX_MIGRATION);
	if (ret) {
		snprintf(err, sizeof(err), "cannot install the migration thread's seccomp filter: %s",
			 strerror(-ret));
		goto out;
	}
	/* Each vCPU finds its MSR list now, while RAM is copied. */
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_request_saved_msrs(vm->vcpus[i]);
	n = MIN(n, (unsigned int)MIG_MAX_CHANNELS);
	fd = open_target(m, tmp, sizeof(tmp), err, sizeof(err));
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	atomic_store(&m->fd[0], fd);
	mig_stream_init(&s[0], fd);
	nr_open = 1;
	ret = mig_ram_init(&r, vm->mem, vm->vm_fd);
	if (ret) {
		snprintf(err, sizeof(err), "out of memory for the dirty bitmaps");
		goto out_streams;
	}
	ram_ok = true;
	ret = mig_stream_write_header(&s[0], (p.verify ? MIG_HDR_VERIFY : 0) |
				      ((n - 1) << MIG_HDR_CHANNELS_SHIFT));
	if (!ret)
		ret = mig_config_save(vm, &b);
	if (!ret)
		ret = mig_stream_put(&s[0], MIG_REC_CONFIG, b.data, b.len);
	if (ret) {
		snprintf(err, sizeof(err), "sending the header: %s", strerror(-ret));
		goto out_ram;
	}
	/* The state records are built in the downtime: their buffer is
	 * faulted in now (a vCPU record is ~7 KiB, the device tree less). */
	ret = mig_buf_reserve(&b, MIG_STATE_BUF);
	vs = calloc(vm->nr_vcpus, sizeof(*vs));
	for (unsigned int i = 0; !ret && vs && i < vm->nr_vcpus; i++) {
		vs[i].m = m;
		mig_buf_init(&vs[i].buf);
		ret = mig_buf_reserve(&vs[i].buf, MIG_VCPU_BUF);
	}
	if (ret || !vs) {
		ret = -ENOMEM;
		snprintf(err, sizeof(err), "out of memory for the state buffers");
		goto out_ram;
	}
	for (; nr_open < n; nr_open++) {
		int cfd = open_channel(m, nr_open, err, sizeof(err));

		if (cfd < 0) {
			ret = cfd;
			goto out_ram;
		}
		atomic_store(&m->fd[nr_open], cfd);
		mig_stream_init(&s[nr_open], cfd);
	}
	for (; nr_senders < n; nr_senders++) {
		s[nr_senders].max_bandwidth = p.max_bandwidth / n;
		ret = mig_sender_init(&x[nr_senders], &r, &s[nr_senders], nr_senders, n);
		if (ret) {
			snprintf(err, sizeof(err), "out of memory for the send buffers");
			goto out_ram;
		}
	}
	ret = mig_ram_log_start(&r);
	if (ret) {
		snprintf(err, sizeof(err), "cannot turn on dirty logging: %s", strerror(-ret));
		goto out_ram;
	}
	pthread_mutex_lock(&m->lock);
	m->info.setup_time_ms = (mig_now_ns() - m->t_start_ns) / 1000000;
	m->info.ram_total = vm->mem->size;
	pthread_mutex_unlock(&m->lock);
	mig_set_status(m, MIG_S_ACTIVE);
	log_debug("migration: set up in %.3f ms", (double)(mig_now_ns() - m->t_start_ns) / 1e6);

	/* Pre-copy passes. */
	for (;;) {
		t0 = mig_now_ns();
		sent0 = sent_bytes(s, n);
		ret = send_pass(&r, x, n, &m->cancel, vm->sandbox);
		if (ret)
			goto ram_err;
		iter++;
		mig_buf_reset(&b);
		mig_put_u32(&b, (uint32_t)iter);
		ret = mig_stream_put(&s[0], MIG_REC_PASS, b.data, b.len);
		if (ret)
			goto ram_err;
		/* Let the destination catch up with this pass before measuring
		 * what is left: its backlog would otherwise be paid in the
		 * downtime, after the dirty set was judged small enough. */
		if (m->uri.kind != MIG_URI_FILE) {
			ret = read_ack(m, fd, (uint32_t)iter, &synced, err, sizeof(err));
			if (ret)
				goto out_log;
		}
		ret = mig_ram_sync(&r);
		if (ret) {
			snprintf(err, sizeof(err), "KVM_GET_DIRTY_LOG: %s", strerror(-ret));
			goto out_log;
		}
		t1 = mig_now_ns();
		/* Bandwidth from this pass when it was long enough to measure,
		 * else keep the last figure. */
		if (t1 - t0 > 1000000 && sent_bytes(s, n) - sent0 > (1u << 20))
			bw = (sent_bytes(s, n) - sent0) * 1000000000ull / (t1 - t0);
		else if (!bw)
			bw = 1000ull << 20; /* a first guess: 1 GB/s */
		dirty_rate = r.dirty_pages * MEM_PAGE_SIZE * 1000000000ull / MAX(t1 - t0, 1ull);
		log_debug("migration: pass %llu: %.3f ms, %llu bytes, %llu pages dirty after it",
			  (unsigned long long)iter, (double)(t1 - t0) / 1e6,
			  (unsigned long long)(sent_bytes(s, n) - sent0),
			  (unsigned long long)r.dirty_pages);
		update_info(m, sent_bytes(s, n), &r, iter, bw, dirty_rate);
		/* Stop when the rest fits in the floor; or when it fits in the
		 * limit and neither another pass nor (with auto-converge) more
		 * throttling can shrink it further. */
		within = r.dirty_pages * MEM_PAGE_SIZE * 1000 <= p.downtime_limit_ms * bw;
		shrinking = r.dirty_pages * 4 < prev_dirty * 3;
		throttled_out = !p.auto_converge ||
				atomic_load(&vm->rs.throttle_pct) >= MIG_THROTTLE_MAX;
		if (r.dirty_pages * MEM_PAGE_SIZE * 1000000 <= MIG_DOWNTIME_FLOOR_US * bw ||
		    (within && ((!shrinking && throttled_out) || iter >= MIG_MAX_SHRINK_PASSES)))
			break;
		prev_dirty = r.dirty_pages;
		if (atomic_load(&m->cancel)) {
			ret = -ECANCELED;
			goto ram_err;
		}
		/* The dirty set stopped shrinking above the floor: slow the
		 * vCPUs down, more each pass. */
		if (p.auto_converge && iter >= 2 && !shrinking) {
			unsigned int pct = atomic_load(&vm->rs.throttle_pct);

			pct = pct ? MIN(pct + MIG_THROTTLE_STEP, MIG_THROTTLE_MAX) : MIG_THROTTLE_FIRST;
			throttle_set(m, pct);
		}
	}

	/* Final phase: the VM stops here. Downtime starts when we ask for
	 * the pause: parking the vCPUs is part of it. */
	m->t_pause_ns = mig_now_ns();
	/* Each vCPU thread saves its own state as it parks: the main thread
	 * arms that in the pause (arm_vcpu_saves). The status is "device"
	 * from here: the main thread, woken for the pause, emits it. */
	pthread_mutex_lock(&m->lock);
	m->vcpu_saves = vs;
	m->arm_vcpu_saves = arm_vcpu_saves;
	mig_log_status_locked(m, MIG_S_DEVICE);
	pthread_mutex_unlock(&m->lock);
	vs_offered = true;
	if (!mig_request_pause(m)) {
		ret = -ECANCELED;
		snprintf(err, sizeof(err), "the VM is stopping");
		goto out_log;
	}
	t_parked = mig_now_ns();
	/* The kicker ends on its own (joined below, off the downtime). */
	atomic_store(&vm->rs.throttle_pct, 0);
	atomic_store(&m->throttle_stop, true);
	ret = mig_ram_sync(&r);
	if (ret) {
		snprintf(err, sizeof(err), "KVM_GET_DIRTY_LOG: %s", strerror(-ret));
		goto out_log;
	}
	last_pages = r.dirty_pages;
	r.final_pass = true;
	ret = send_pass(&r, x, n, NULL, vm->sandbox);
	/* Extra channels end here; the destination waits for their ends
	 * before it loads any state. */
	for (unsigned int i = 1; !ret && i < n; i++)
		ret = mig_stream_put(&s[i], MIG_REC_END, NULL, 0);
	if (ret)
		goto ram_err;
	t_ram = mig_now_ns();
	ret = put_state(m, &s[0], &b, vs, err, sizeof(err));
	if (ret)
		goto out_log;
	t_state = mig_now_ns();
	if (p.verify) {
		verify_hash = mig_ram_hash(vm->mem);
		mig_buf_reset(&b);
		mig_put_u64(&b, verify_hash);
		ret = mig_stream_put(&s[0], MIG_REC_VERIFY, b.data, b.len);
		if (ret)
			goto ram_err;
	}
	ret = mig_stream_put(&s[0], MIG_REC_END, NULL, 0);
	if (ret)
		goto ram_err;
	update_info(m, sent_bytes(s, n), &r, iter, bw, dirty_rate);
	if (m->uri.kind == MIG_URI_FILE) {
		if (fsync(fd) < 0 || rename(tmp, m->uri.path) < 0) {
			ret = -errno;
			snprintf(err, sizeof(err), "%.200s: %s", m->uri.path, strerror(errno));
			goto out_log;
		}
		tmp[0] = '\0';
	} else {
		ret = read_ack(m, fd, 0, &synced, err, sizeof(err));
		if (ret)
			goto out_log;
	}
	log_debug("migration: downtime %.3f ms: park %.3f, last RAM %.3f (%llu pages), state %.3f, "
		  "end/verify/ack %.3f; %llu passes", (double)(mig_now_ns() - m->t_pause_ns) / 1e6,
		  (double)(t_parked - m->t_pause_ns) / 1e6, (double)(t_ram - t_parked) / 1e6,
		  (unsigned long long)last_pages, (double)(t_state - t_ram) / 1e6,
		  (double)(mig_now_ns() - t_state) / 1e6, (unsigned long long)iter);
	pthread_mutex_lock(&m->lock);
	m->info.downtime_ms = (double)(mig_now_ns() - m->t_pause_ns) / 1e6;
	m->info.total_time_ms = (mig_now_ns() - m->t_start_ns) / 1000000;
	m->info.remaining = 0;
	pthread_mutex_unlock(&m->lock);
	ret = 0;
	goto out_log;

ram_err:
	if (ret == -ECANCELED)
		snprintf(err, sizeof(err), "cancelled");
	else
		snprintf(err, sizeof(err), "sending RAM: %s%s", strerror(-ret),
			 ret == -EAGAIN ? " (timed out: is the destination still there?)" : "");
out_log:
	mig_throttle_stop(m);
	/* After a completed tcp/unix migration skiff ends: the log can stay.
	 * Otherwise the VM runs on and must not pay for dirty logging. */
	if (ret || m->uri.kind == MIG_URI_FILE)
		mig_ram_log_stop(&r);
out_ram:
	for (unsigned int i = 0; i < nr_senders; i++)
		mig_sender_fini(&x[i]);
	if (ram_ok)
		mig_ram_fini(&r);
out_streams:
	for (unsigned int i = 0; i < nr_open; i++) {
		atomic_store(&m->fd[i], -1);
		close(s[i].fd);
		mig_stream_fini(&s[i]);
	}
	if (tmp[0])
		unlink(tmp);
out:
	/* No vCPU thread may still write into vs (a failed pause or save). */
	pthread_mutex_lock(&m->lock);
	m->arm_vcpu_saves = NULL;
	m->vcpu_saves = NULL;
	pthread_mutex_unlock(&m->lock);
	for (unsigned int i = 0; vs_offered && i < vm->nr_vcpus; i++)
		(void)settle_vcpu(m, vm->vcpus[i], &vs[i], false);
	for (unsigned int i = 0; vs && i < vm->nr_vcpus; i++)
		mig_buf_free(&vs[i].buf);
	free(vs);
	mig_buf_free(&b);
	if (ret == -ECANCELED || atomic_load(&m->cancel))
		snprintf(err, sizeof(err), "cancelled");
	mig_finish(m, ret, err);
	return NULL;
}

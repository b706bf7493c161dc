/*
 * The incoming side (--incoming URI, --restore file:PATH): the migration
 * thread waits for one stream, checks its configuration against this VM,
 * applies RAM batches, then the VM, vCPU and device state, checks the
 * optional verify hash, and only after the end marker and a complete set of
 * state records tells the main thread to run the VM. Nothing in the stream
 * is trusted: records come in a fixed order, each at most once, and every
 * length and address is checked (stream.c, ram.c, the state loaders).
 *
 * The guest never runs before the whole stream is loaded: on any error the
 * main thread ends skiff with SKIFF_EXIT_MIGRATION.
 *
 * Thread context: the migration thread; vCPU threads are parked and the
 * virtio devices paused (mig_request_pause) before any state is loaded.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate_priv.h"
#include "sandbox.h"

static void send_ack(int fd, int result, const char *msg)
{
	uint8_t h[16 + 256];
	uint32_t st = htole32(result < 0 ? (uint32_t)-result : 0);
	uint32_t len = result ? (uint32_t)MIN(strlen(msg), 255u) : 0;
	uint32_t le = htole32(len);
	size_t n = 16 + len, off = 0;

	memcpy(h, MIG_ACK_MAGIC, 8);
	memcpy(h + 8, &st, 4);
	memcpy(h + 12, &le, 4);
	memcpy(h + 16, msg, len);
	while (off < n) {
		ssize_t w = send(fd, h + off, n - off, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* Best effort: a lost SYN only makes the source wait (then fail). */
static void send_syn(int fd, uint32_t pass)
{
	uint8_t h[16];
	uint32_t p = htole32(pass), z = 0;

	memcpy(h, MIG_SYN_MAGIC, 8);
	memcpy(h + 8, &p, 4);
	memcpy(h + 12, &z, 4);
	if (send(fd, h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
		/* the source will notice */
	}
}

static const char *rec_name(uint32_t t)
{
	switch (t) {
	case MIG_REC_CONFIG: return "configuration";
	case MIG_REC_RAM: return "RAM";
	case MIG_REC_PASS: return "pass marker";
	case MIG_REC_VM: return "VM state";
	case MIG_REC_VCPU: return "vCPU state";
	case MIG_REC_DEVICES: return "device state";
	case MIG_REC_VERIFY: return "verify hash";
	case MIG_REC_END: return "end marker";
	default: return "unknown";
	}
}

/* An extra channel: RAM batches until its END record. */
struct chan_rx {
	struct migration *m;
	struct mig_stream s;
	uint64_t *written;
	uint64_t *pages;
	pthread_t thread;
	bool open, started, joined;
	int ret;
	char err[256];
};

static void *chan_thread(void *arg)
{
	struct chan_rx *c = arg;
	uint32_t type;
	char why[256];

	pthread_setname_np(pthread_self(), "migration-rx");
	/* Inherited from the migration thread; entered again for its name. */
	c->ret = sandbox_enter(c->m->vm->sandbox, SANDBOX_MIGRATION);
	if (c->ret) {
		snprintf(c->err, sizeof(c->err), "cannot install its seccomp filter");
		return NULL;
	}
	for (;;) {
		c->ret = mig_stream_next(&c->s, &type, why, sizeof(why));
		if (c->ret)
			break;
		if (type == MIG_REC_END)
			return NULL;
		if (type != MIG_REC_RAM) {
			snprintf(why, sizeof(why), "a %s record on a RAM channel", rec_name(type));
			c->ret = -EBADMSG;
			break;
		}
		c->ret = mig_ram_load(c->m->vm->mem, c->written, c->s.rec.data, c->s.rec.len,
				      c->pages, why, sizeof(why));
		if (c->ret)
			break;
	}
	snprintf(c->err, sizeof(c->err), "%s", why);
	return NULL;
}

/* Accepts channels 1..n-1 on the listening socket; each names itself. */
static int accept_channels(struct migration *m, int lfd, struct chan_rx *ch, unsigned int n,
			   char *err, size_t errlen)
{
	for (unsigned int k = 1; k < n; k++) {
		uint8_t hello[16];
		uint32_t v, idx;
		size_t got = 0;
		int fd = mig_uri_accept(lfd, m->cancel_fd, atomic_load(&m->fd[0]),
					MIG_IO_TIMEOUT_S * 1000, err, errlen);

		if (fd < 0)
			return fd;
		while (got < sizeof(hello)) {
			ssize_t r = read(fd, hello + got, sizeof(hello) - got);

			if (r <= 0)
				break;
			got += (size_t)r;
		}
		memcpy(&v, hello + 8, 4);
		memcpy(&idx, hello + 12, 4);
		idx = le32toh(idx);
		if (got != sizeof(hello) || memcmp(hello, MIG_CHAN_MAGIC, 8) || le32toh(v) != 1 ||
		    idx == 0 || idx >= n || ch[idx].open) {
			snprintf(err, errlen, "a RAM channel connection did not introduce itself "
				 "properly");
			close(fd);
			return -EPROTO;
		}
		mig_stream_init(&ch[idx].s, fd);
		ch[idx].open = true;
		atomic_store(&m->fd[idx], fd);
	}
	return 0;
}

/* Waits for every channel's END; returns the first error. */
static int join_channels(struct chan_rx *ch, unsigned int n, char *err, size_t errlen)
{
	int ret = 0;

	for (unsigned int i = 1; i < n; i++) {
		if (!ch[i].started || ch[i].joined)
			continue;
		pthread_join(ch[i].thread, NULL);
		ch[i].joined = true;
		if (ch[i].ret && !ret) {
			ret = ch[i].ret;
			snprintf(err, errlen, "RAM channel %u: %s", i, ch[i].err);
		}
	}
	return ret;
}

/* Loads the stream on fd. Returns 0 once MIG_REC_END closed a complete
 * stream, else -errno with err set. */
static int load_stream(struct migration *m, struct mig_stream *s, int lfd, char *err,
		       size_t errlen)
{
	struct chan_rx ch[MIG_MAX_CHANNELS] = { 0 };
	unsigned int n = 1;
	bool channels_done = false;
	struct vm *vm = m->vm;
	uint64_t *written = NULL, pages = 0, passes = 0;
	bool have_config = false, have_vm = false, have_devices = false, have_verify = false;
	bool state_started = false, paused = false;
	uint64_t t_state = 0;
	bool *have_vcpu = NULL;
	struct mig_vcpu_cur **cur = NULL;   /* each vCPU's state at CONFIG */
	uint32_t flags, type;
	char why[256];
	int ret;

	written = calloc(vm->mem->dirty_words, sizeof(uint64_t));
	have_vcpu = calloc(vm->nr_vcpus, sizeof(bool));
	if (!written || !have_vcpu) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	ret = mig_stream_read_header(s, &flags, err, errlen);
	if (ret)
		goto out;
	n = ((flags >> MIG_HDR_CHANNELS_SHIFT) & 0xff) + 1;
	if (n > MIG_MAX_CHANNELS || (n > 1 && lfd < 0)) {
		snprintf(err, errlen, "the stream announces %u channels (%s)", n,
			 lfd < 0 ? "a file has one" : "too many");
		ret = -EBADMSG;
		n = 1;
		goto out;
	}
	if (n > 1) {
		ret = accept_channels(m, lfd, ch, n, err, errlen);
		if (ret)
			goto out;
		for (unsigned int i = 1; i < n; i++) {
			ch[i].m = m;
			ch[i].written = written;
			ch[i].pages = &pages;
			ch[i].started = pthread_create(&ch[i].thread, NULL, chan_thread, &ch[i]) == 0;
			if (!ch[i].started) {
				snprintf(err, errlen, "cannot start a receive thread");
				ret = -EAGAIN;
				goto out;
			}
		}
	}
	for (;;) {
		const void *p;
		size_t len;

		if (atomic_load(&m->cancel)) {
			snprintf(err, errlen, "cancelled");
			ret = -ECANCELED;
			goto out;
		}
		ret = mig_stream_next(s, &type, err, errlen);
		if (ret)
			goto out;
		p = s->rec.data;
		len = s->rec.len;
		/* Everything after the RAM needs the channels' RAM too. */
		if (!channels_done && (type == MIG_REC_VM || type == MIG_REC_VCPU ||
				       type == MIG_REC_DEVICES || type == MIG_REC_END)) {
			channels_done = true;
			ret = join_channels(ch, n, err, errlen);
			if (ret)
				goto out;
		}
		if (!have_config && type != MIG_REC_CONFIG) {
			snprintf(err, errlen, "the stream starts with a %s record, not the "
				 "configuration", rec_name(type));
			ret = -EBADMSG;
			goto out;
		}
		switch (type) {
		case MIG_REC_CONFIG:
			if (have_config) {
				snprintf(err, errlen, "two configuration records");
				ret = -EBADMSG;
				goto out;
			}
			ret = mig_config_check(vm, p, len, why, sizeof(why));
			if (ret) {
				snprintf(err, errlen, "configuration mismatch: %s", why);
				goto out;
			}
			have_config = true;
			/* Pause the devices now, off the downtime's path: the
			 * guest does not run here yet anyway. */
			if (!mig_request_pause(m)) {
				snprintf(err, errlen, "the VM is stopping");
				ret = -ECANCELED;
				goto out;
			}
			paused = true;
			/* What the vCPUs hold now, so their load can skip what
			 * would not change (taken here, off the downtime; nothing
			 * runs or sets them until the vCPU records). Without it
			 * every section is loaded. */
			cur = calloc(vm->nr_vcpus, sizeof(*cur));
			for (unsigned int i = 0; cur && i < vm->nr_vcpus; i++) {
				if (mig_vcpu_current(vm->vcpus[i], &cur[i]))
					cur[i] = NULL;
			}
			mig_set_status(m, MIG_S_ACTIVE);
			break;
		case MIG_REC_RAM:
			if (state_started) {
				snprintf(err, errlen, "RAM after the device state");
				ret = -EBADMSG;
				goto out;
			}
			ret = mig_ram_load(vm->mem, written, p, len, &pages, why, sizeof(why));
			if (ret) {
				snprintf(err, errlen, "%s", why);
				goto out;
			}
			break;
		case MIG_REC_PASS:
			passes++;
			if (lfd >= 0)
				send_syn(s->fd, (uint32_t)passes);
			pthread_mutex_lock(&m->lock);
			m->info.iterations = passes;
			m->info.pages = pages;
			m->info.transferred = s->bytes;
			pthread_mutex_unlock(&m->lock);
			break;
		case MIG_REC_VM:
		case MIG_REC_VCPU:
		case MIG_REC_DEVICES:
			if (!state_started) {
				t_state = mig_now_ns();
				state_started = true;
				/* Emitted when the main thread wakes for the
				 * resume (or the failure): not woken for it
				 * here, inside the guest's pause. */
				pthread_mutex_lock(&m->lock);
				mig_log_status_locked(m, MIG_S_DEVICE);
				pthread_mutex_unlock(&m->lock);
			}
			if (type == MIG_REC_VM) {
				if (have_vm) {
					snprintf(err, errlen, "two VM state records");
					ret = -EBADMSG;
					goto out;
				}
				ret = mig_vm_load(vm->vm_fd, p, len, why, sizeof(why));
				have_vm = true;
			} else if (type == MIG_REC_VCPU) {
				struct mig_rd rd;
				uint32_t idx;

				mig_rd_init(&rd, p, len);
				idx = mig_get_u32(&rd);
				if (rd.bad || idx >= vm->nr_vcpus || have_vcpu[idx]) {
					snprintf(err, errlen, "vCPU state record for vCPU %u: %s", idx,
						 rd.bad || idx >= vm->nr_vcpus ? "no such vCPU" :
						 "duplicate");
					ret = -EBADMSG;
					goto out;
				}
				if (!have_vm) {
					snprintf(err, errlen, "vCPU state before the VM state");
					ret = -EBADMSG;
					goto out;
				}
				ret = mig_vcpu_load_cur(vm->vcpus[idx], (const uint8_t *)p + 4,
							len - 4, cur ? cur[idx] : NULL, why,
							sizeof(why));
				have_vcpu[idx] = true;
			} else {
				if (have_devices) {
					snprintf(err, errlen, "two device state records");
					ret = -EBADMSG;
					goto out;
				}
				ret = mig_devices_load(vm, p, len, why, sizeof(why));
				have_devices = true;
			}
			if (ret) {
				snprintf(err, errlen, "%s: %s", rec_name(type), why);
				goto out;
			}
			break;
		case MIG_REC_VERIFY: {
			struct mig_rd rd;
			uint64_t want, got;

			mig_rd_init(&rd, p, len);
			want = mig_get_u64(&rd);
			if (!mig_rd_done(&rd, true) || have_verify) {
				snprintf(err, errlen, "malformed verify record");
				ret = -EBADMSG;
				goto out;
			}
			got = mig_ram_hash(vm->mem);
			if (got != want) {
				snprintf(err, errlen, "verify: RAM hash 0x%016llx differs from the "
					 "source's 0x%016llx", (unsigned long long)got,
					 (unsigned long long)want);
				ret = -EBADMSG;
				goto out;
			}
			have_verify = true;
			break;
		}
		case MIG_REC_END:
			if (!have_vm || !have_devices) {
				snprintf(err, errlen, "the stream ended without the %s state",
					 have_vm ? "device" : "VM");
				ret = -EBADMSG;
				goto out;
			}
			for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
				if (!have_vcpu[i]) {
					snprintf(err, errlen, "the stream has no state for vCPU %u", i);
					ret = -EBADMSG;
					goto out;
				}
			}
			if ((flags & 1) && !have_verify) {
				snprintf(err, errlen, "the stream announced a verify hash but has none");
				ret = -EBADMSG;
				goto out;
			}
			pthread_mutex_lock(&m->lock);
			m->info.pages = pages;
			m->info.transferred = s->bytes;
			m->info.iterations = passes;
			pthread_mutex_unlock(&m->lock);
			log_debug("migration: state loaded in %.3f ms", (double)(mig_now_ns() - t_state) / 1e6);
			ret = 0;
			goto out;
		default:
			snprintf(err, errlen, "unknown record type %u: corrupt stream or a newer "
				 "skiff", type);
			ret = -EBADMSG;
			goto out;
		}
	}
out:
	(void)paused;
	/* On an error the channel threads may still be reading: wake them. */
	for (unsigned int i = 1; i < n; i++) {
		if (ch[i].open && !ch[i].joined)
			shutdown(ch[i].s.fd, SHUT_RDWR);
	}
	if (join_channels(ch, n, why, sizeof(why)) && !ret) {
		snprintf(err, errlen, "%s", why);
		ret = -EIO;
	}
	for (unsigned int i = 1; i < n; i++) {
		if (ch[i].open) {
			atomic_store(&m->fd[i], -1);
			close(ch[i].s.fd);
			mig_stream_fini(&ch[i].s);
		}
	}
	for (unsigned int i = 0; cur && i < vm->nr_vcpus; i++)
		mig_vcpu_current_free(cur[i]);
	free(cur);
	free(have_vcpu);
	free(written);
	return ret;
}

void *mig_incoming_thread(void *arg)
{
	struct migration *m = arg;
	struct mig_stream s;
	char err[300] = "";
	int lfd = -1, fd, ret;

	pthread_setname_np(pthread_self(), "migration");
	ret = sandbox_enter(m->vm->sandbox, SANDBOX_MIGRATION);
	if (ret) {
		snprintf(err, sizeof(err), "cannot install the migration thread's seccomp filter: %s",
			 strerror(-ret));
		goto out;
	}
	if (m->uri.kind == MIG_URI_FILE) {
		fd = open(m->uri.path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			snprintf(err, sizeof(err), "%.200s: %s", m->uri.path, strerror(errno));
			goto out;
		}
		mig_set_listening(m);
	} else {
		lfd = mig_uri_listen(&m->uri, err, sizeof(err));
		if (lfd < 0) {
			ret = lfd;
			goto out;
		}
		log_info("migration: waiting for the VM on %s", m->uri.text);
		mig_set_listening(m);
		fd = mig_uri_accept(lfd, m->cancel_fd, -1, -1, err, sizeof(err));
		if (fd < 0) {
			ret = fd;
			goto out_listen;
		}
	}
	atomic_store(&m->fd[0], fd);
	mig_stream_init(&s, fd);
	ret = load_stream(m, &s, lfd, err, sizeof(err));
	/* Running before the acknowledgement (see mig_release_vm). */
	if (!ret && !mig_release_vm(m)) {
		ret = -ECANCELED;
		snprintf(err, sizeof(err), "the destination is stopping");
	}
	if (m->uri.kind != MIG_URI_FILE)
		send_ack(fd, ret, err);
	pthread_mutex_lock(&m->lock);
	m->info.total_time_ms = (mig_now_ns() - m->t_start_ns) / 1000000;
	pthread_mutex_unlock(&m->lock);
	atomic_store(&m->fd[0], -1);
	mig_stream_fini(&s);
	close(fd);
out_listen:
	if (lfd >= 0) {
		close(lfd);
		if (m->uri.kind == MIG_URI_UNIX)
			unlink(m->uri.path);
	}
out:
	mig_finish(m, ret, err);
	return NULL;
}

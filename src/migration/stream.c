/*
 * The framed migration stream over a file descriptor (socket or file):
 * header, then records of (type, length, payload, CRC32C). The reader
 * trusts nothing: every length is bounded before anything is allocated and
 * every record's checksum is checked before its payload is handed on.
 *
 * Thread context: one stream belongs to one thread (the migration thread).
 * Another thread may shutdown(2) a socket stream's fd to make a blocked
 * read or write fail (migrate_cancel, SIGTERM on the destination).
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "migration.h"

/* Sockets get this receive timeout (uri.c, MIG_IO_TIMEOUT_S). */
#define MIG_IO_TIMEOUT_STREAM_S 10

void mig_stream_init(struct mig_stream *s, int fd)
{
	struct stat st;

	*s = (struct mig_stream){ .fd = fd };
	s->is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
	mig_buf_init(&s->rec);
}

void mig_stream_fini(struct mig_stream *s)
{
	mig_buf_free(&s->rec);
}

static uint64_t stream_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* max-bandwidth: bytes are counted in 50 ms windows; a window that is full
 * sleeps until its end. */
#define BW_WINDOW_NS 50000000ull

static void throttle(struct mig_stream *s, size_t n)
{
	uint64_t now, budget;

	if (!s->max_bandwidth)
		return;
	now = stream_now_ns();
	if (now - s->window_start_ns >= BW_WINDOW_NS) {
		s->window_start_ns = now;
		s->window_bytes = 0;
	}
	s->window_bytes += n;
	budget = s->max_bandwidth / (1000000000ull / BW_WINDOW_NS);
	if (budget && s->window_bytes >= budget) {
		uint64_t left = s->window_start_ns + BW_WINDOW_NS - now;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)left };

		nanosleep(&ts, NULL);
		s->window_start_ns = stream_now_ns();
		s->window_bytes = 0;
	}
}

static int write_all(struct mig_stream *s, const struct iovec *iov_in, int cnt)
{
	struct iovec iov[4];
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = (size_t)cnt };
	size_t total = 0;

	memcpy(iov, iov_in, sizeof(*iov) * (size_t)cnt);
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	throttle(s, total);
	while (msg.msg_iovlen) {
		ssize_t n;

		if (s->is_socket)
			n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
		else
			n = writev(s->fd, msg.msg_iov, (int)msg.msg_iovlen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		s->bytes += (uint64_t)n;
		while (n > 0 && msg.msg_iovlen) {
			if ((size_t)n >= msg.msg_iov->iov_len) {
				n -= (ssize_t)msg.msg_iov->iov_len;
				msg.msg_iov++;
				msg.msg_iovlen--;
			} else {
				msg.msg_iov->iov_base = (uint8_t *)msg.msg_iov->iov_base + n;
				msg.msg_iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	return 0;
}

int mig_stream_write_header(struct mig_stream *s, uint32_t flags)
{
	uint8_t h[16];
	uint32_t v = htole32(MIG_VERSION), f = htole32(flags);
	struct iovec iov = { h, sizeof(h) };

	memcpy(h, MIG_MAGIC, 8);
	memcpy(h + 8, &v, 4);
	memcpy(h + 12, &f, 4);
	return write_all(s, &iov, 1);
}

int mig_stream_put(struct mig_stream *s, uint32_t type, const void *p, size_t len)
{
	uint32_t hdr[2], crc;
	struct iovec iov[3];

	if (len > MIG_MAX_RECORD)
		return -E2BIG;
	hdr[0] = htole32(type);
	hdr[1] = htole32((uint32_t)len);
	crc = mig_crc32c(0, hdr, sizeof(hdr));
	crc = htole32(mig_crc32c(crc, p, len));
	iov[0] = (struct iovec){ hdr, sizeof(hdr) };
	iov[1] = (struct iovec){ (void *)p, len };
	iov[2] = (struct iovec){ &crc, sizeof(crc) };
	return write_all(s, iov, 3);
}

/* Reads exactly n bytes; -EPIPE when the stream ends first. */
static int read_all(struct mig_stream *s, void *dst, size_t n)
{
	uint8_t *p = dst;

	while (n) {
		ssize_t r = read(s->fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		s->bytes += (uint64_t)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void read_error(int ret, const char *what, char *err, size_t errlen)
{
	if (ret == -EPIPE)
		snprintf(err, errlen, "the stream ended in the middle of %s (truncated, or the "
			 "sender stopped)", what);
	else if (ret == -EAGAIN || ret == -EWOULDBLOCK)
		snprintf(err, errlen, "nothing arrived for %d s while reading %s: the connection "
			 "is gone", MIG_IO_TIMEOUT_STREAM_S, what);
	else
		snprintf(err, errlen, "reading %s: %s", what, strerror(-ret));
}

int mig_stream_read_header(struct mig_stream *s, uint32_t *flags, char *err, size_t errlen)
{
	uint8_t h[16];
	uint32_t v;
	int ret = read_all(s, h, sizeof(h));

	if (ret) {
		read_error(ret, "the stream header", err, errlen);
		return ret;
	}
	if (memcmp(h, MIG_MAGIC, 8)) {
		snprintf(err, errlen, "not a skiff migration stream (bad magic)");
		return -EINVAL;
	}
	memcpy(&v, h + 8, 4);
	if (le32toh(v) != MIG_VERSION) {
		snprintf(err, errlen, "stream format version %u; this skiff reads version %u",
			 le32toh(v), MIG_VERSION);
		return -EPROTO;
	}
	memcpy(flags, h + 12, 4);
	*flags = le32toh(*flags);
	return 0;
}

int mig_stream_next(struct mig_stream *s, uint32_t *type, char *err, size_t errlen)
{
	uint32_t hdr[2], crc, len, want;
	void *p;
	int ret;

	ret = read_all(s, hdr, sizeof(hdr));
	if (ret) {
		read_error(ret, "a record header", err, errlen);
		return ret;
	}
	*type = le32toh(hdr[0]);
	len = le32toh(hdr[1]);
	if (len > MIG_MAX_RECORD) {
		snprintf(err, errlen, "record of type %u claims %u bytes (limit %u): corrupt stream",
			 *type, len, MIG_MAX_RECORD);
		return -EBADMSG;
	}
	mig_buf_reset(&s->rec);
	p = mig_put_space(&s->rec, len);
	if (!p && len) {
		snprintf(err, errlen, "out of memory for a %u-byte record", len);
		return -ENOMEM;
	}
	if (len) {
		ret = read_all(s, p, len);
		if (ret) {
			read_error(ret, "a record", err, errlen);
			return ret;
		}
	}
	ret = read_all(s, &crc, sizeof(crc));
	if (ret) {
		read_error(ret, "a record checksum", err, errlen);
		return ret;
	}
	want = mig_crc32c(mig_crc32c(0, hdr, sizeof(hdr)), p, len);
	if (le32toh(crc) != want) {
		snprintf(err, errlen, "checksum mismatch in a record of type %u (%u bytes) at "
			 "stream offset %llu: corrupt stream", *type, len,
			 (unsigned long long)(s->bytes - len - 12));
		return -EBADMSG;
	}
	return 0;
}

/*
 * Migration URIs: tcp:HOST:PORT, unix:PATH, file:PATH, and the sockets
 * behind them.
 *
 * Thread context: mig_uri_parse anywhere (no I/O); the rest on the
 * migration thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "migration_priv.h"

int mig_uri_parse(const char *s, struct mig_uri *u, char *err, size_t errlen)
{
	const char *rest, *colon;
	size_t n;

	*u = (struct mig_uri){ 0 };
	if (!s || strlen(s) >= sizeof(u->text))
		goto bad;
	snprintf(u->text, sizeof(u->text), "%s", s);
	if (!strncmp(s, "unix:", 5) || !strncmp(s, "file:", 5)) {
		u->kind = s[0] == 'u' ? MIG_URI_UNIX : MIG_URI_FILE;
		rest = s + 5;
		if (!*rest || strlen(rest) >= sizeof(u->path))
			goto bad;
		if (u->kind == MIG_URI_UNIX && strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
			snprintf(err, errlen, "%s: the socket path is longer than %zu bytes", s,
				 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
			return -ENAMETOOLONG;
		}
		snprintf(u->path, sizeof(u->path), "%s", rest);
		return 0;
	}
	if (strncmp(s, "tcp:", 4))
		goto bad;
	u->kind = MIG_URI_TCP;
	rest = s + 4;
	if (*rest == '[') {
		const char *close = strchr(rest, ']');

		if (!close || close[1] != ':')
			goto bad;
		n = (size_t)(close - rest - 1);
		colon = close + 1;
		rest++;
	} else {
		colon = strrchr(rest, ':');
		if (!colon)
			goto bad;
		n = (size_t)(colon - rest);
	}
	if (n >= sizeof(u->host))
		goto bad;
	memcpy(u->host, rest, n);
	u->host[n] = '\0';
	colon++;
	n = strlen(colon);
	if (n == 0 || n >= sizeof(u->port) || strspn(colon, "0123456789") != n ||
	    atoi(colon) <= 0 || atoi(colon) > 65535)
		goto bad;
	memcpy(u->port, colon, n + 1);
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a migration URI (expected tcp:HOST:PORT, "
		 "unix:PATH or file:PATH)", s ? s : "");
	return -EINVAL;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = MIG_IO_TIMEOUT_S };
	int one = 1, idle = MIG_IO_TIMEOUT_S, cnt = 3, intvl = 2;

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	/* Records are written whole; the last ones of the downtime are small
	 * and must not wait for Nagle (tens of ms with delayed ACKs). */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
}

static int unix_addr(const struct mig_uri *u, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (strlen(u->path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, u->path, strlen(u->path) + 1);
	return 0;
}

/* Connect with a timeout: non-blocking connect, poll, then blocking again. */
static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int fl = fcntl(fd, F_GETFL), e = 0;
	socklen_t el = sizeof(e);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	for (int tries = 0; connect(fd, sa, len) < 0; tries++) {
		/* A Unix listener with a full backlog says EAGAIN at once: its
		 * owner is accepting the other channels; try again. */
		if (errno == EAGAIN && sa->sa_family == AF_UNIX && tries < MIG_IO_TIMEOUT_S * 100) {
			usleep(10000);
			continue;
		}
		if (errno != EINPROGRESS)
			return -errno;
		if (poll(&p, 1, MIG_IO_TIMEOUT_S * 1000) <= 0)
			return -ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			return -errno;
		if (e)
			return -e;
		break;
	}
	fcntl(fd, F_SETFL, fl);
	return 0;
}

int mig_uri_connect(const struct mig_uri *u, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	struct sockaddr_un sa;
	int fd = -1, ret, gai;

	if (u->kind == MIG_URI_UNIX) {
		ret = unix_addr(u, &sa);
		if (ret)
			goto fail;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			goto fail;
		}
		ret = connect_timeout(fd, (struct sockaddr *)&sa, sizeof(sa));
		if (ret)
			goto fail;
		set_timeouts(fd);
		return fd;
	}
	gai = getaddrinfo(u->host, u->port, &hints, &res);
	if (gai) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", u->text, u->host, gai_strerror(gai));
		return -EHOSTUNREACH;
	}
	ret = -ECONNREFUSED;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		ret = connect_timeout(fd, ai->ai_addr, ai->ai_addrlen);
		if (!ret)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		goto fail;
	set_timeouts(fd);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: cannot connect: %s", u->text, strerror(-ret));
	return ret;
}

int mig_uri_listen(const struct mig_uri *u, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	struct sockaddr_un sa;
	int fd = -1, one = 1, ret, gai;

	if (u->kind == MIG_URI_UNIX) {
		ret = unix_addr(u, &sa);
		if (ret)
			goto fail;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			ret = -errno;
			goto fail;
		}
		unlink(u->path); /* a stale socket from an earlier run */
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, MIG_MAX_CHANNELS) < 0) {
			ret = -errno;
			goto fail;
		}
		return fd;
	}
	gai = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints, &res);
	if (gai) {
		snprintf(err, errlen, "%s: cannot resolve %s: %s", u->text, u->host, gai_strerror(gai));
		return -EHOSTUNREACH;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, MIG_MAX_CHANNELS) < 0) {
		ret = -errno;
		goto fail;
	}
	freeaddrinfo(res);
	return fd;
fail:
	if (res)
		freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: cannot listen: %s", u->text, strerror(-ret));
	return ret;
}

int mig_uri_accept(int listen_fd, int cancel_fd, int peer_fd, int timeout_ms, char *err,
		   size_t errlen)
{
	struct pollfd p[3] = {
		{ .fd = listen_fd, .events = POLLIN },
		{ .fd = cancel_fd, .events = POLLIN },
		{ .fd = peer_fd, .events = POLLRDHUP },
	};
	int fd, r;

	for (;;) {
		r = poll(p, peer_fd >= 0 ? 3 : 2, timeout_ms);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "waiting for the incoming connection: %s",
				 strerror(errno));
			return -errno;
		}
		if (r == 0) {
			snprintf(err, errlen, "the source did not open its other channels in time");
			return -ETIMEDOUT;
		}
		if (p[1].revents) {
			snprintf(err, errlen, "cancelled while waiting for the incoming connection");
			return -ECANCELED;
		}
		if (peer_fd >= 0 && (p[2].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
			snprintf(err, errlen, "the source closed the connection before opening its "
				 "other channels");
			return -EPIPE;
		}
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
			snprintf(err, errlen, "accept: %s", strerror(errno));
			return -errno;
		}
	}
	set_timeouts(fd);
	return fd;
}

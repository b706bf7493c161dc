/* The main thread's epoll loop. Main thread only. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "event.h"

struct event_src {
	int fd;
	event_fn fn;
	void *opaque;
	struct event_src *next;
};

struct event_loop {
	int epfd;
	struct event_src *srcs;
	/* Sources deleted while a round dispatches: a handler may delete
	 * another source whose event is pending in the same round, so they are
	 * freed only when the round ends (fn == NULL marks them dead). */
	struct event_src *dead;
	bool dispatching;
};

int event_loop_create(struct event_loop **out)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int ret = -errno;

		free(loop);
		return ret;
	}
	*out = loop;
	return 0;
}

void event_loop_destroy(struct event_loop *loop)
{
	struct event_src *s, *n;

	if (!loop)
		return;
	for (s = loop->srcs; s; s = n) {
		n = s->next;
		free(s);
	}
	close(loop->epfd);
	free(loop);
}

int event_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque)
{
	struct event_src *s = calloc(1, sizeof(*s));
	struct epoll_event ev = { .events = events };

	if (!s)
		return -ENOMEM;
	s->fd = fd;
	s->fn = fn;
	s->opaque = opaque;
	ev.data.ptr = s;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int ret = -errno;

		free(s);
		return ret;
	}
	s->next = loop->srcs;
	loop->srcs = s;
	return 0;
}

int event_del(struct event_loop *loop, int fd)
{
	struct event_src **p;

	for (p = &loop->srcs; *p; p = &(*p)->next) {
		if ((*p)->fd == fd) {
			struct event_src *s = *p;

			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
			*p = s->next;
			if (loop->dispatching) {
				/* The round's ready list may still point at s. */
				s->fn = NULL;
				s->next = loop->dead;
				loop->dead = s;
			} else {
				free(s);
			}
			return 0;
		}
	}
	return -ENOENT;
}

int event_loop_run_once(struct event_loop *loop, int timeout_ms)
{
	struct epoll_event evs[16];
	int n, i;

	n = epoll_wait(loop->epfd, evs, (int)ARRAY_SIZE(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	loop->dispatching = true;
	for (i = 0; i < n; i++) {
		struct event_src *s = evs[i].data.ptr;

		if (s->fn)
			s->fn(s->opaque, evs[i].events);
	}
	loop->dispatching = false;
	while (loop->dead) {
		struct event_src *s = loop->dead;

		loop->dead = s->next;
		free(s);
	}
	return 0;
}

int event_mod(struct event_loop *loop, int fd, uint32_t events)
{
	struct event_src *s;

	for (s = loop->srcs; s; s = s->next) {
		if (s->fd == fd) {
			struct epoll_event ev = { .events = events, .data.ptr = s };

			return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
		}
	}
	return -ENOENT;
}

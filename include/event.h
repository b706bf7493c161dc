/*
 * The main thread's event loop: epoll over file descriptors, each with a
 * callback. Single-threaded by design: only the main thread adds, removes and
 * runs handlers.
 */
#ifndef SKIFF_EVENT_H
#define SKIFF_EVENT_H

#include <stdint.h>

#include "util.h"

typedef void (*event_fn)(void *opaque, uint32_t events);

struct event_loop;

int MUST_CHECK event_loop_create(struct event_loop **out);
void event_loop_destroy(struct event_loop *loop);
/* events: EPOLLIN etc. Returns 0 or -errno. */
int MUST_CHECK event_add(struct event_loop *loop, int fd, uint32_t events, event_fn fn, void *opaque);
/* Safe from any handler, also for another fd whose event is pending in the
 * same round (its handler is then not called). */
int event_del(struct event_loop *loop, int fd);
/* Changes the events watched on fd (EPOLL_CTL_MOD); -ENOENT if not added. */
int MUST_CHECK event_mod(struct event_loop *loop, int fd, uint32_t events);
/* Runs one round of ready handlers, waiting at most timeout_ms (-1: forever). */
int MUST_CHECK event_loop_run_once(struct event_loop *loop, int timeout_ms);

#endif

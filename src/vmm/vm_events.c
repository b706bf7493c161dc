/*
 * The main thread's event handlers: signals, the run state's wake-up, and
 * console input from stdin (with the Ctrl-A escape in raw mode).
 * Thread context: main thread only.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vm_priv.h"

#define CTRL_A 0x01

static void on_wake(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint64_t v;

	if (read(vm->rs.wake_fd, &v, sizeof(v)) < 0) {
		/* spurious wake-up: the flag is what counts */
	}
}

static void on_signal(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	struct signalfd_siginfo si;
	char why[64];

	if (read(vm->signal_fd, &si, sizeof(si)) != sizeof(si))
		return;
	snprintf(why, sizeof(why), "terminating on signal %u", si.ssi_signo);
	/* Sticky first: if a guest reset won the exit request, vm_run() sees
	 * this and ends rather than booting the guest again. */
	atomic_store_explicit(&vm->rs.stop_requested, true, memory_order_release);
	runstate_request_exit(&vm->rs, SKIFF_EXIT_OK, why);
}

void vm_stdin_close(struct vm *vm)
{
	if (vm->stdin_open)
		event_del(vm->loop, STDIN_FILENO);
	vm->stdin_open = false;
}

/* Console input. In raw mode Ctrl-A is an escape: Ctrl-A x quits. */
static void on_stdin(void *opaque, uint32_t events)
{
	struct vm *vm = opaque;
	uint8_t buf[256], out[256];
	size_t room = serial_input_room(vm->serial), n = 0, i;
	ssize_t r;

	if (room == 0) {
		/* The guest is not draining its FIFO: stop watching stdin and
		 * poll for room from the run loop instead of spinning. */
		vm_stdin_close(vm);
		vm->stdin_paused = true;
		return;
	}
	r = read(STDIN_FILENO, buf, MIN(room, sizeof(buf)));
	if (r <= 0) {
		if (r == 0 || (errno != EINTR && errno != EAGAIN))
			vm_stdin_close(vm);
		return;
	}
	for (i = 0; i < (size_t)r; i++) {
		if (vm->term_raw && vm->escape) {
			vm->escape = false;
			if (buf[i] == 'x' || buf[i] == 'X') {
				runstate_request_exit(&vm->rs, SKIFF_EXIT_OK, "quit from the console (Ctrl-A x)");
				return;
			}
			if (buf[i] != CTRL_A)
				continue;
		} else if (vm->term_raw && buf[i] == CTRL_A) {
			vm->escape = true;
			continue;
		}
		out[n++] = buf[i];
	}
	serial_input(vm->serial, out, n);
}

int vm_events_setup(struct vm *vm, char *err, size_t errlen)
{
	sigset_t set;
	int ret;

	ret = event_loop_create(&vm->loop);
	if (ret)
		goto fail;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	vm->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (vm->signal_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = event_add(vm->loop, vm->signal_fd, EPOLLIN, on_signal, vm);
	if (ret)
		goto fail;
	ret = event_add(vm->loop, vm->rs.wake_fd, EPOLLIN, on_wake, vm);
	if (ret)
		goto fail;
	if (vm->cfg->serial == SERIAL_STDIO) {
		/* A regular file or /dev/null on stdin cannot be polled (EPERM):
		 * then the guest simply gets no input. */
		if (event_add(vm->loop, STDIN_FILENO, EPOLLIN, on_stdin, vm) == 0)
			vm->stdin_open = true;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot set up the event loop: %s", strerror(-ret));
	return ret;
}

void vm_stdin_retry(struct vm *vm)
{
	if (vm->stdin_paused && serial_input_room(vm->serial) > 0 &&
	    event_add(vm->loop, STDIN_FILENO, EPOLLIN, on_stdin, vm) == 0) {
		vm->stdin_paused = false;
		vm->stdin_open = true;
	}
}

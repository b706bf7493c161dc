/*
 * Seccomp filters per thread role (see include/sandbox.h for the model, and
 * src/vmm/sandbox/ for the allow-lists).
 *
 * Filters are built with libseccomp once, on the main thread, and exported
 * as BPF programs; a thread's sandbox_enter() is then a single seccomp(2)
 * call, so a vCPU thread started at a reboot pays microseconds, not a
 * compilation. A refused call (mode on) raises SIGSYS on the calling thread;
 * the handler names the role, the thread and the call, restores the terminal
 * and ends skiff with status 10.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "runstate.h"
#include "sandbox.h"
#include "sandbox/sandbox_priv.h"
#include "term.h"

struct sandbox {
	enum sandbox_mode mode;
	struct sock_fprog prog[SANDBOX_NR_ROLES];
};

static const char *const role_names[SANDBOX_NR_ROLES] = {
	[SANDBOX_VCPU] = "vCPU",
	[SANDBOX_IO] = "I/O",
	[SANDBOX_MIGRATION] = "migration",
	[SANDBOX_MAIN] = "main",
};

/* What the SIGSYS handler reports: the role and name of the thread, set by
 * the thread itself in sandbox_enter(). Thread-local because a signal
 * handler has no other way to reach per-thread data. */
static __thread const char *thread_role;
static __thread char thread_name[16];

const char *sandbox_role_name(enum sandbox_role role)
{
	return role < SANDBOX_NR_ROLES ? role_names[role] : "?";
}

/* Lists that make up each role's filter. The main thread's filter also
 * admits the lists of the threads it starts after installing it. */
static size_t role_lists(enum sandbox_role role, const struct sandbox_list **out)
{
	size_t n = 0;

	out[n++] = &sandbox_common_list;
	switch (role) {
	case SANDBOX_VCPU:
		out[n++] = &sandbox_vcpu_list;
		break;
	case SANDBOX_IO:
		out[n++] = &sandbox_io_list;
		break;
	case SANDBOX_MIGRATION:
		out[n++] = &sandbox_migration_list;
		break;
	case SANDBOX_MAIN:
	case SANDBOX_NR_ROLES:
		out[n++] = &sandbox_main_list;
		out[n++] = &sandbox_vcpu_list;
		out[n++] = &sandbox_migration_list;
		break;
	}
	return n;
}

static int add_rule(scmp_filter_ctx ctx, const struct sandbox_rule *r)
{
	int ret;

	if (r->nr == __NR_ioctl)
		/* The kernel takes the request as 32 bits; compare those. */
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 1,
				       SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL,
					       r->ioctl & 0xffffffffUL));
	else
		ret = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r->nr, 0);
	return ret == -EEXIST ? 0 : ret; /* a call listed by two lists */
}

/* Builds one role's filter and exports it as a BPF program into `prog`. */
static int compile_role(enum sandbox_mode mode, enum sandbox_role role, struct sock_fprog *prog)
{
	const struct sandbox_list *lists[4];
	size_t nl = role_lists(role, lists), i, j;
	scmp_filter_ctx ctx;
	off_t size;
	int fd = -1, ret;

	ctx = seccomp_init(mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
	if (!ctx)
		return -ENOMEM;
	for (i = 0; i < nl; i++) {
		for (j = 0; j < lists[i]->n; j++) {
			ret = add_rule(ctx, &lists[i]->rules[j]);
			if (ret)
				goto out;
		}
	}
	/* seccomp_export_bpf() writes to a descriptor: a memfd, read back. */
	fd = memfd_create("skiff-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = seccomp_export_bpf(ctx, fd);
	if (ret)
		goto out;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) ||
	    size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
		ret = -EINVAL;
		goto out;
	}
	prog->filter = malloc((size_t)size);
	if (!prog->filter) {
		ret = -ENOMEM;
		goto out;
	}
	if (pread(fd, prog->filter, (size_t)size, 0) != size) {
		ret = -EIO;
		free(prog->filter);
		prog->filter = NULL;
		goto out;
	}
	prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return ret;
}

static size_t put(char *buf, size_t pos, size_t cap, const char *s)
{
	while (*s && pos < cap)
		buf[pos++] = *s++;
	return pos;
}

static size_t put_uint(char *buf, size_t pos, size_t cap, unsigned long v)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && pos < cap)
		buf[pos++] = tmp[--n];
	return pos;
}

static size_t put_hex32(char *buf, size_t pos, size_t cap, uint32_t v)
{
	int shift;

	for (shift = 28; shift >= 0 && pos < cap; shift -= 4)
		buf[pos++] = "0123456789abcdef"[(v >> shift) & 0xf];
	return pos;
}

/*
 * SIGSYS from a refused call (mode on). Any thread; async-signal-safe: the
 * message is assembled by hand, write(), tcsetattr() and _exit() are in the
 * common allow-list. The refused call never ran.
 */
static void sigsys_handler(int sig, siginfo_t *si, void *uc)
{
	const char *name = NULL;
	char msg[256];
	size_t n = 0;
	int nr = si->si_syscall;

	(void)sig;
	if (nr >= 0 && nr < SANDBOX_SYSCALL_NAMES)
		name = sandbox_syscall_names[nr];
	n = put(msg, n, sizeof(msg), "skiff: seccomp: the ");
	n = put(msg, n, sizeof(msg), thread_role ? thread_role : "unfiltered");
	n = put(msg, n, sizeof(msg), " thread '");
	n = put(msg, n, sizeof(msg), thread_name);
	n = put(msg, n, sizeof(msg), "' made a system call its filter does not allow: ");
	n = put(msg, n, sizeof(msg), name ? name : "unknown");
	n = put(msg, n, sizeof(msg), " (");
	n = put_uint(msg, n, sizeof(msg), (unsigned long)nr);
	n = put(msg, n, sizeof(msg), ")");
	if (nr == __NR_ioctl) {
		/* Which request: the second argument, %rsi at the call. */
		n = put(msg, n, sizeof(msg), " request 0x");
		n = put_hex32(msg, n, sizeof(msg),
			      (uint32_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RSI]);
	}
	n = put(msg, n, sizeof(msg) - 1, "; ending skiff\n");
	term_restore_from_signal();
	(void)!write(STDERR_FILENO, msg, n);
	_exit(SKIFF_EXIT_SECCOMP);
}

int sandbox_create(enum sandbox_mode mode, struct sandbox **out, char *err, size_t errlen)
{
	struct sigaction sa;
	struct sandbox *sb;
	int r, ret;

	*out = NULL;
	if (mode == SANDBOX_OFF)
		return 0;
	sb = calloc(1, sizeof(*sb));
	if (!sb) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sb->mode = mode;
	for (r = 0; r < SANDBOX_NR_ROLES; r++) {
		ret = compile_role(mode, (enum sandbox_role)r, &sb->prog[r]);
		if (ret) {
			snprintf(err, errlen, "cannot build the seccomp filter of the %s threads: %s",
				 role_names[r], strerror(-ret));
			sandbox_destroy(sb);
			return ret;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigsys_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSYS, &sa, NULL);
	*out = sb;
	return 0;
}

int sandbox_enter(const struct sandbox *sb, enum sandbox_role role)
{
	if (!sb)
		return 0;
	if (role >= SANDBOX_NR_ROLES)
		return -EINVAL;
	/* Before the filter: these two calls are not on every role's list. */
	thread_role = role_names[role];
	if (prctl(PR_GET_NAME, thread_name) < 0)
		thread_name[0] = '\0';
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &sb->prog[role]) < 0)
		return -errno;
	return 0;
}

void sandbox_destroy(struct sandbox *sb)
{
	int r;

	if (!sb)
		return;
	for (r = 0; r < SANDBOX_NR_ROLES; r++)
		free(sb->prog[r].filter);
	free(sb);
}

/* Seccomp filters, one per thread role (src/vmm/sandbox.c; the allow-lists
 * are src/vmm/sandbox/<role>.c).
 *
 * The filters are compiled once, on the main thread, while the VM is built;
 * each thread then installs its role's filter itself with one system call at
 * the top of its thread function (sandbox_enter). A filter is inherited by the
 * threads a thread starts afterwards and filters stack, so the main thread's
 * filter admits its own list and the lists of the threads it starts later
 * (vCPU threads, again at every reboot; migration threads): each of those
 * narrows itself to its own list on entry. I/O threads start during set-up,
 * before the main thread's filter, and carry only theirs. */
#ifndef SKIFF_SANDBOX_H
#define SKIFF_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

enum sandbox_mode {
	SANDBOX_OFF = 0,  /* no filters (unit tests, debugging) */
	SANDBOX_ON,       /* a refused call ends skiff, naming the call */
	SANDBOX_LOG,      /* refused calls are allowed and logged by the kernel (audit) */
};

enum sandbox_role {
	SANDBOX_VCPU,
	SANDBOX_IO,
	SANDBOX_MIGRATION,
	SANDBOX_MAIN,
	SANDBOX_NR_ROLES,
};

struct sandbox;

/* Compiles every role's filter (SANDBOX_OFF: *out = NULL, nothing to do);
 * installs the SIGSYS handler that reports a refused call. Main thread. */
int MUST_CHECK sandbox_create(enum sandbox_mode mode, struct sandbox **out,
			      char *err, size_t errlen);
/* Installs `role`'s filter on the calling thread (and sets no_new_privs).
 * `sb` NULL: nothing to do. Any thread, once, at its start. 0 or -errno. */
int MUST_CHECK sandbox_enter(const struct sandbox *sb, enum sandbox_role role);
/* Frees the compiled filters; installed ones stay (they cannot be removed). */
void sandbox_destroy(struct sandbox *sb);
const char *sandbox_role_name(enum sandbox_role role);

/* --user/--group (sandbox_user.c): a user and/or group name or number. Main
 * thread, while no other thread runs, after every privileged open. Hands
 * the control socket to the new identity. Neither given: nothing to do. */
int MUST_CHECK sandbox_drop_privileges(const char *user, const char *group,
				       const char *api_socket, char *err, size_t errlen);

#endif

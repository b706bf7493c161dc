/*
 * --user/--group: give up root once everything that needs it is open.
 *
 * Main thread, in the builder, while it is the only thread: /dev/kvm, the VM,
 * guest RAM, the disks, the taps and the control socket are open, no I/O,
 * vCPU or migration thread has started (glibc's setuid() family changes
 * every thread, and a filtered thread would refuse the call). After this the
 * process cannot get root back: the test with setuid(0) below proves it.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sandbox.h"

/* A name from the user/group database, or a number. */
static int lookup_id(const char *s, bool group, unsigned int *id, unsigned int *pgid)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (group) {
		struct group *g = getgrnam(s);

		if (g) {
			*id = g->gr_gid;
			return 0;
		}
	} else {
		struct passwd *p = getpwnam(s);

		if (p) {
			*id = p->pw_uid;
			*pgid = p->pw_gid;
			return 0;
		}
	}
	v = strtoul(s, &end, 10);
	if (!*s || *end || v >= 0xffffffffUL)
		return -ENOENT;
	*id = (unsigned int)v;
	if (!group) {
		struct passwd *p = getpwuid((uid_t)v);

		*pgid = p ? p->pw_gid : (unsigned int)v;
	}
	return 0;
}

int sandbox_drop_privileges(const char *user, const char *group, const char *api_socket,
			    char *err, size_t errlen)
{
	unsigned int uid = 0, gid = 0, pgid = 0;
	gid_t groups[1];

	if (!user && !group)
		return 0;
	if (user && lookup_id(user, false, &uid, &pgid)) {
		snprintf(err, errlen, "--user %s: no such user", user);
		return -ENOENT;
	}
	if (group && lookup_id(group, true, &gid, NULL)) {
		snprintf(err, errlen, "--group %s: no such group", group);
		return -ENOENT;
	}
	if (!group)
		gid = pgid; /* the user's own group */
	if (user && !uid) {
		snprintf(err, errlen, "--user %s is root: nothing to drop", user);
		return -EINVAL;
	}
	/* The control socket stays usable by the user skiff becomes (and by
	 * root); it was created mode 0600 by root. */
	if (api_socket && chown(api_socket, user ? uid : (uid_t)-1, gid) < 0) {
		snprintf(err, errlen, "--api-socket %s: cannot hand it to the new user: %s",
			 api_socket, strerror(errno));
		return -errno;
	}
	groups[0] = gid;
	if (setgroups(1, groups) < 0 || setresgid(gid, gid, gid) < 0 ||
	    (user && setresuid(uid, uid, uid) < 0)) {
		int e = errno;

		snprintf(err, errlen, "--user/--group: cannot change identity: %s%s", strerror(e),
			 e == EPERM ? " (skiff must start as root, or with CAP_SETUID and "
			 "CAP_SETGID)" : "");
		return -e;
	}
	if (user && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "--user %s: root could be regained after the drop", user);
		return -EPERM;
	}
	return 0;
}

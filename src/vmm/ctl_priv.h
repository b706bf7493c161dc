/*
 * Internal interface of `skiff ctl` (ctl.c) shared with its migration
 * follower (ctl_migrate.c). Client process, one thread.
 */
#ifndef SKIFF_CTL_PRIV_H
#define SKIFF_CTL_PRIV_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define CTL_OK 0
#define CTL_ERROR_ANSWER 1
#define CTL_FAILED 2

struct ctl_conn {
	int fd;
	struct json_tokener *tok;
	char buf[65536];
	size_t len, pos;
	int timeout_ms;           /* -1: wait forever */
};

/* One message in / out. ctl_recv returns 0, -ETIMEDOUT, -ECONNRESET (skiff
 * closed the connection) or another -errno. */
int ctl_recv(struct ctl_conn *c, struct json_object **out);
int ctl_send(struct ctl_conn *c, struct json_object *msg);

/* After `migrate` was accepted: polls query-migrate until the migration
 * ends, showing progress on stderr (or, with json, printing the final
 * answer). Returns the exit status. */
int ctl_migrate_follow(struct ctl_conn *c, bool json);

#endif

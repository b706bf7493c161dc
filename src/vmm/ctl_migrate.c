/*
 * `skiff ctl SOCKET migrate URI`: follows a migration that skiff accepted,
 * polling query-migrate every 100 ms. On a terminal the progress line is
 * redrawn in place; otherwise one line per second. The migration ends with
 * status completed (exit 0), failed or cancelled (exit 1); a source skiff
 * that completed a tcp:/unix: migration exits, which closes the socket
 * before the last poll may be answered: that counts as completed only if
 * the MIGRATION event said so.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl_priv.h"
#include "log.h"
#include "util.h"

#define POLL_MS 100

static int64_t get_i64(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static double get_dbl(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0;
}

static const char *get_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

static void progress(struct json_object *q, bool tty)
{
	struct json_object *ram = NULL;
	double total, remaining, sent, mbps, dirty, pct, eta;

	json_object_object_get_ex(q, "ram", &ram);
	total = (double)get_i64(ram, "total");
	remaining = (double)get_i64(ram, "remaining");
	sent = (double)get_i64(ram, "transferred");
	mbps = get_dbl(ram, "mbps");
	dirty = (double)get_i64(ram, "dirty-bytes-rate");
	pct = total > 0 ? 100.0 * (1.0 - remaining / total) : 0;
	if (!strcmp(get_str(q, "status"), "setup") || get_i64(ram, "dirty-sync-count") == 0)
		pct = total > 0 ? MIN(100.0, 100.0 * sent / total) : 0;
	eta = mbps > 0 ? remaining * 8 / (mbps * 1e6) : 0;
	fprintf(stderr, "%s%-8s %5.1f%%  %8.1f MiB sent  %7.1f MB/s  dirty %7.1f MB/s  "
		"pass %lld  ETA %.1f s%s", tty ? "\r" : "", get_str(q, "status"), pct,
		sent / (1 << 20), mbps / 8, dirty / 1e6,
		(long long)get_i64(ram, "dirty-sync-count"), eta, tty ? "  " : "\n");
	fflush(stderr);
}

static void summary(struct json_object *q)
{
	struct json_object *ram = NULL;

	json_object_object_get_ex(q, "ram", &ram);
	fprintf(stderr, "migration %s: total %lld ms, downtime %.2f ms, %.1f MiB sent, "
		"%lld pages, %lld zero pages, %lld passes\n", get_str(q, "status"),
		(long long)get_i64(q, "total-time"), get_dbl(q, "downtime"),
		(double)get_i64(ram, "transferred") / (1 << 20), (long long)get_i64(ram, "pages"),
		(long long)get_i64(ram, "zero-pages"), (long long)get_i64(ram, "dirty-sync-count"));
}

static void summary_event(struct json_object *e)
{
	fprintf(stderr, "migration completed: total %lld ms, downtime %.2f ms, %.1f MiB sent, "
		"%lld pages, %lld zero pages, %lld passes; the source skiff has exited\n",
		(long long)get_i64(e, "total-time"), get_dbl(e, "downtime"),
		(double)get_i64(e, "transferred") / (1 << 20), (long long)get_i64(e, "pages"),
		(long long)get_i64(e, "zero-pages"), (long long)get_i64(e, "dirty-sync-count"));
}

/* Sends query-migrate; returns the answer's "return" object (a new
 * reference) or NULL; *event_status gets the status of any MIGRATION
 * event seen meanwhile. */
static struct json_object *query(struct ctl_conn *c, char *event_status, size_t n, int *err,
				 struct json_object **final)
{
	int send_err;
	struct json_object *req = json_object_new_object(), *m = NULL, *ret, *ev, *data;

	json_object_object_add(req, "execute", json_object_new_string("query-migrate"));
	json_object_object_add(req, "id", json_object_new_string("skiff-ctl-q"));
	/* A source that completed exits: the send may fail, but the events it
	 * sent before (MIGRATION completed) are still there to read. */
	send_err = ctl_send(c, req);
	json_object_put(req);
	for (;;) {
		*err = ctl_recv(c, &m);
		if (*err) {
			if (*err != -ECONNRESET && send_err)
				*err = send_err;
			return NULL;
		}
		if (json_object_object_get_ex(m, "event", &ev)) {
			if (!strcmp(json_object_get_string(ev), "MIGRATION") &&
			    json_object_object_get_ex(m, "data", &data)) {
				snprintf(event_status, n, "%s", get_str(data, "status"));
				if (!strcmp(event_status, "completed")) {
					json_object_put(*final);
					*final = json_object_get(data);
				}
			}
			json_object_put(m);
			continue;
		}
		if (json_object_object_get_ex(m, "return", &ret)) {
			json_object_get(ret);
			json_object_put(m);
			return ret;
		}
		json_object_put(m);
		*err = -EPROTO;
		return NULL;
	}
}

int ctl_migrate_follow(struct ctl_conn *c, bool json)
{
	bool tty = isatty(STDERR_FILENO);
	char ev[32] = "";
	struct json_object *last = NULL, *final = NULL;
	struct timespec ts = { .tv_nsec = POLL_MS * 1000000L };
	unsigned int polls = 0;
	int err, ret;

	for (;;) {
		struct json_object *q = query(c, ev, sizeof(ev), &err, &final);
		const char *st;

		if (!q) {
			/* A source skiff exits right after a completed migration;
			 * its last event carries the summary. */
			if ((err == -ECONNRESET || err == -EPIPE) && !strcmp(ev, "completed")) {
				if (tty && !json)
					fputc('\n', stderr);
				if (json)
					printf("%s\n", final ? json_object_to_json_string_ext(
						final, JSON_C_TO_STRING_PLAIN) : "{\"status\": \"completed\"}");
				else if (final)
					summary_event(final);
				json_object_put(final);
				json_object_put(last);
				return CTL_OK;
			}
			json_object_put(final);
			log_err("ctl: lost the connection while migrating: %s", strerror(-err));
			json_object_put(last);
			return CTL_FAILED;
		}
		json_object_put(last);
		last = q;
		st = get_str(q, "status");
		if (!strcmp(st, "completed") || !strcmp(st, "failed") || !strcmp(st, "cancelled")) {
			if (json) {
				printf("%s\n", json_object_to_json_string_ext(q, JSON_C_TO_STRING_PLAIN));
			} else {
				if (tty)
					fputc('\n', stderr);
				summary(q);
				if (strcmp(st, "completed"))
					fprintf(stderr, "error: %s\n", get_str(q, "error-desc"));
			}
			ret = strcmp(st, "completed") ? CTL_ERROR_ANSWER : CTL_OK;
			json_object_put(q);
			json_object_put(final);
			return ret;
		}
		if (!json && (tty || polls % (1000 / POLL_MS) == 0))
			progress(q, tty);
		polls++;
		nanosleep(&ts, NULL);
	}
}

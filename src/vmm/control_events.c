/*
 * Control server events (to every negotiated client), the device-event
 * queue that any thread may fill, the query-stats registry, and the
 * version and status names.
 *
 * Thread context: main thread, except control_device_needs_reset() (any
 * thread; see dev_lock in control_priv.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control_priv.h"

const char *vm_status_name(enum vm_status s)
{
	switch (s) {
	case VM_STATUS_RUNNING: return "running";
	case VM_STATUS_PAUSED: return "paused";
	case VM_STATUS_SHUTDOWN: return "shutdown";
	case VM_STATUS_INMIGRATE: return "inmigrate";
	case VM_STATUS_POSTMIGRATE: return "postmigrate";
	case VM_STATUS_FINISH_MIGRATE: return "finish-migrate";
	case VM_STATUS_AUTO: break;
	}
	return "running";
}

struct json_object *control_version_obj(void)
{
	struct json_object *v = json_object_new_object(), *q = json_object_new_object();
	unsigned int major = 0, minor = 0, micro = 0;

	sscanf(SKIFF_VERSION, "%u.%u.%u", &major, &minor, &micro);
	json_object_object_add(q, "major", json_object_new_int((int)major));
	json_object_object_add(q, "minor", json_object_new_int((int)minor));
	json_object_object_add(q, "micro", json_object_new_int((int)micro));
	/* "qemu" is the member QMP tools read; "package" names skiff. */
	json_object_object_add(v, "qemu", q);
	json_object_object_add(v, "package", json_object_new_string("skiff " SKIFF_VERSION));
	return v;
}

/* --- events ---------------------------------------------------------------- */

void control_emit_obj(struct control *c, const char *name, struct json_object *data,
		      const struct timespec *ts)
{
	struct json_object *msg, *t;
	struct timespec now;

	if (!ts) {
		clock_gettime(CLOCK_REALTIME, &now);
		ts = &now;
	}
	msg = json_object_new_object();
	t = json_object_new_object();
	json_object_object_add(msg, "event", json_object_new_string(name));
	json_object_object_add(msg, "data", data ? data : json_object_new_object());
	json_object_object_add(t, "seconds", json_object_new_int64((int64_t)ts->tv_sec));
	json_object_object_add(t, "microseconds", json_object_new_int64(ts->tv_nsec / 1000));
	json_object_object_add(msg, "timestamp", t);
	log_debug("control: event %s", name);
	control_broadcast(c, msg);
	json_object_put(msg);
}

void control_emit(struct control *c, const char *name, const char *data_json)
{
	struct json_object *data = NULL;

	if (!c)
		return;
	if (data_json) {
		data = json_tokener_parse(data_json);
		if (!data || !json_object_is_type(data, json_type_object)) {
			log_warn("control: event %s: malformed data, sent as {}", name);
			json_object_put(data);
			data = NULL;
		}
	}
	control_emit_obj(c, name, data, NULL);
}

void control_emit_at(struct control *c, const char *name, const struct timespec *ts)
{
	if (c)
		control_emit_obj(c, name, NULL, ts);
}

void control_device_needs_reset(struct control *c, const char *device, const char *reason)
{
	uint64_t one = 1;

	if (!c)
		return;
	pthread_mutex_lock(&c->dev_lock);
	if (c->dev_len < CONTROL_DEV_QUEUE) {
		struct dev_event *e = &c->dev_q[c->dev_len++];

		clock_gettime(CLOCK_REALTIME, &e->ts);
		snprintf(e->device, sizeof(e->device), "%s", device ? device : "");
		snprintf(e->reason, sizeof(e->reason), "%s", reason ? reason : "");
	} else {
		c->dev_dropped++;
	}
	pthread_mutex_unlock(&c->dev_lock);
	if (write(c->dev_fd, &one, sizeof(one)) < 0) {
		/* counter saturated: the main thread is woken anyway */
	}
}

void control_on_dev_event(void *opaque, uint32_t events)
{
	struct control *c = opaque;
	struct dev_event q[CONTROL_DEV_QUEUE];
	unsigned int n, i;
	uint64_t v, dropped;

	if (read(c->dev_fd, &v, sizeof(v)) < 0) {
		/* nothing pending: the queue is what counts */
	}
	pthread_mutex_lock(&c->dev_lock);
	n = c->dev_len;
	memcpy(q, c->dev_q, n * sizeof(q[0]));
	dropped = c->dev_dropped;
	c->dev_len = 0;
	c->dev_dropped = 0;
	pthread_mutex_unlock(&c->dev_lock);
	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "device", json_object_new_string(q[i].device));
		json_object_object_add(d, "reason", json_object_new_string(q[i].reason));
		if (i == n - 1 && dropped)
			json_object_object_add(d, "dropped", json_object_new_int64((int64_t)dropped));
		control_emit_obj(c, "DEVICE_NEEDS_RESET", d, &q[i].ts);
	}
}

/* --- stats registry -------------------------------------------------------- */

void control_stats_u64(struct control_stats *st, const char *key, uint64_t value)
{
	json_object_object_add(st->obj, key, json_object_new_uint64(value));
}

void control_stats_str(struct control_stats *st, const char *key, const char *value)
{
	json_object_object_add(st->obj, key, json_object_new_string(value ? value : ""));
}

void control_stats_bool(struct control_stats *st, const char *key, bool value)
{
	json_object_object_add(st->obj, key, json_object_new_boolean(value));
}

static int provider_add(struct control *c, bool block, const char *name,
			control_stats_fn fn, void *opaque)
{
	struct stats_provider *p;

	if (c->nr_stats >= CONTROL_MAX_STATS)
		return -ENOSPC;
	p = &c->stats[c->nr_stats++];
	p->block = block;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->fn = fn;
	p->opaque = opaque;
	return 0;
}

int control_stats_register(struct control *c, const char *name, control_stats_fn fn,
			   void *opaque)
{
	return provider_add(c, false, name, fn, opaque);
}

int control_block_register(struct control *c, const char *name, control_stats_fn fn,
			   void *opaque)
{
	return provider_add(c, true, name, fn, opaque);
}

void control_stats_unregister(struct control *c, void *opaque)
{
	unsigned int i = 0;

	if (!c)
		return;
	while (i < c->nr_stats) {
		if (c->stats[i].opaque == opaque) {
			memmove(&c->stats[i], &c->stats[i + 1],
				(c->nr_stats - i - 1) * sizeof(c->stats[0]));
			c->nr_stats--;
		} else {
			i++;
		}
	}
}

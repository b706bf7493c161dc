/*
 * Inside the control server: what control.c (socket, framing, negotiation,
 * events) and control_cmds.c (the command handlers) share. Main thread only,
 * except the device-event queue (see dev_lock).
 */
#ifndef SKIFF_CONTROL_PRIV_H
#define SKIFF_CONTROL_PRIV_H

#include <json-c/json.h>
#include <pthread.h>
#include <time.h>

#include "control.h"
#include "log.h"

#define CONTROL_DEV_QUEUE 64

struct client;

struct dev_event {
	struct timespec ts;
	char device[64];
	char reason[128];
};

struct stats_provider {
	bool block;                   /* query-block, else query-stats */
	char name[48];
	control_stats_fn fn;
	void *opaque;
};

struct control {
	struct vm *vm;
	struct event_loop *loop;      /* NULL until control_start */
	char *path;                   /* socket file we created, NULL without one */
	int listen_fd;
	struct client *clients;
	unsigned int nr_clients;
	enum vm_status status;        /* VM_STATUS_AUTO unless migration set one */
	bool ended;                   /* SHUTDOWN sent */
	struct log_ratelimit rl;

	struct stats_provider stats[CONTROL_MAX_STATS];
	unsigned int nr_stats;

	/* Device events from any thread. dev_lock guards dev_q, dev_len and
	 * dev_dropped; it is a leaf lock (callers may hold a device lock).
	 * The writer posts dev_fd (eventfd) after unlocking; the main thread
	 * drains dev_fd, then takes the lock and empties the queue, so an
	 * event queued after the drain posts the eventfd again. */
	pthread_mutex_t dev_lock;
	int dev_fd;
	struct dev_event dev_q[CONTROL_DEV_QUEUE];
	unsigned int dev_len;
	uint64_t dev_dropped;
};

/* One request being executed: handlers set an error instead of returning. */
struct control_req {
	struct control *c;
	const char *err_class;        /* NULL: no error */
	char err_desc[256];
};

struct control_stats {
	struct json_object *obj;
};

enum arg_type { ARG_BOOL, ARG_INT, ARG_STRING, ARG_ARRAY, ARG_OBJECT };

struct control_arg {
	const char *name;
	enum arg_type type;
	bool required;
};

/* Returns the command's "return" value (a new reference), or NULL after
 * control_req_error(). `args` is always an object (maybe empty) whose
 * members were checked against the command's `args` list. */
typedef struct json_object *(*control_cmd_fn)(struct control_req *r, struct json_object *args);

struct control_cmd {
	const char *name;
	control_cmd_fn fn;
	const struct control_arg *args;   /* NULL-name terminated, or NULL */
};

/* control_cmds.c */
extern const struct control_cmd control_cmds[];
const struct control_cmd *control_cmd_find(const char *name);
enum vm_status control_status(struct control *c);
/* The SHUTDOWN event's data from the run state (a new object). */
struct json_object *control_shutdown_data(struct control *c);
/* Registers the built-in providers (serial). */
int MUST_CHECK control_cmds_register_stats(struct control *c);

/* control_migrate.c: the migration commands. */
struct json_object *control_cmd_migrate(struct control_req *r, struct json_object *args);
struct json_object *control_cmd_migrate_cancel(struct control_req *r, struct json_object *args);
struct json_object *control_cmd_query_migrate(struct control_req *r, struct json_object *args);
struct json_object *control_cmd_query_migrate_parameters(struct control_req *r,
							 struct json_object *args);
struct json_object *control_cmd_migrate_set_parameters(struct control_req *r,
						       struct json_object *args);

/* control.c: sends msg to every negotiated client. */
void control_broadcast(struct control *c, struct json_object *msg);

/* control_events.c: main thread, sends the queued device events. */
void control_on_dev_event(void *opaque, uint32_t events);

/* control.c */
void control_req_error(struct control_req *r, const char *cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Emits an event whose data object is given (reference taken). */
void control_emit_obj(struct control *c, const char *name, struct json_object *data,
		      const struct timespec *ts);
/* Same as the query-version return value (a new object). */
struct json_object *control_version_obj(void);

#endif

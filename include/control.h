/*
 * The JSON control socket (QMP wire format, see docs/control.md).
 *
 * The server runs on the main thread's event loop. The builder creates it
 * early (control_create: the stats registry and the device-event queue exist
 * before the devices), starts serving once the event loop exists
 * (control_start), announces the end of the VM (control_vm_ending) and
 * destroys it last.
 *
 * Devices may include this header: it needs no frame header and no JSON
 * library. What they may call, and from which thread, is said per function.
 */
#ifndef SKIFF_CONTROL_H
#define SKIFF_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "event.h"
#include "util.h"

struct control;
struct vm;

/* What query-status reports. RUNNING/PAUSED/SHUTDOWN are derived from the
 * VM; the others are set by their owner (migration) with
 * control_set_status() and win until set back to VM_STATUS_AUTO. */
enum vm_status {
	VM_STATUS_AUTO,         /* running, paused or shutdown, from the VM */
	VM_STATUS_RUNNING,
	VM_STATUS_PAUSED,
	VM_STATUS_SHUTDOWN,
	VM_STATUS_INMIGRATE,    /* waiting for an incoming migration */
	VM_STATUS_POSTMIGRATE,  /* paused after migrating out */
	VM_STATUS_FINISH_MIGRATE, /* paused to send the last state */
};
const char *vm_status_name(enum vm_status s);

/* Limits (docs/control.md). */
#define CONTROL_MAX_MESSAGE (1u << 20)   /* bytes in one request */
#define CONTROL_MAX_DEPTH 32             /* JSON nesting of one request */
#define CONTROL_MAX_OUTPUT (4u << 20)    /* queued answers/events per client */
#define CONTROL_MAX_CLIENTS 256
#define CONTROL_MAX_STATS 64             /* registered stats providers */

/* --- the builder's side (main thread) ----------------------------------- */

/* socket_path may be NULL (no socket: the registry and events still exist,
 * events are dropped). Binds the socket at once: a stale socket file is
 * replaced, a live one refused. err gets one line on failure. */
int MUST_CHECK control_create(struct vm *vm, const char *socket_path,
			      struct control **out, char *err, size_t errlen);
/* Adds the listening socket and the device-event eventfd to the loop. */
int MUST_CHECK control_start(struct control *c, struct event_loop *loop);
/* The VM is ending (vCPUs stopped): emits SHUTDOWN with the run state's
 * reason and flushes every client's queue for at most ~200 ms. */
void control_vm_ending(struct control *c);
/* The VM is about to reboot (vCPUs stopped, run state not yet re-armed):
 * emits RESET with the cause taken from the run state. */
void control_vm_reset(struct control *c);
/* Closes every client, removes the socket file. Called after the event
 * loop is destroyed and after the devices (which may raise events until
 * then); it does not touch the loop. */
void control_destroy(struct control *c);

/* Main thread, for migration: what query-status reports (VM_STATUS_AUTO:
 * derive it again from the VM). */
void control_set_status(struct control *c, enum vm_status s);

/* --- events ----------------------------------------------------------------- */

/* Main thread: sends {"event": name, "data": {...}, "timestamp": ...} to
 * every negotiated client. data_json is the text of a JSON object (or NULL
 * for {}); it is parsed, so a malformed one is logged and sent as {}. */
void control_emit(struct control *c, const char *name, const char *data_json);

/* Main thread: an event with empty data stamped with `ts` (CLOCK_REALTIME)
 * rather than the time of sending: STOP and RESUME of a migration carry
 * the instant the vCPUs were parked or released. */
void control_emit_at(struct control *c, const char *name, const struct timespec *ts);

/* Any thread (vCPU, I/O worker, main): DEVICE_NEEDS_RESET for `device`
 * with a short reason. Queued under a mutex and handed to the main thread
 * through an eventfd; never blocks beyond that mutex (a leaf lock: callers
 * may hold their device lock). At most 64 events wait; more are counted and
 * reported in the next delivered event's data ("dropped"). c may be NULL. */
void control_device_needs_reset(struct control *c, const char *device, const char *reason);

/* --- query-stats providers ------------------------------------------------- */

/* Filled by a provider: counters (or, for query-block, properties) under
 * the provider's name. */
struct control_stats;
void control_stats_u64(struct control_stats *st, const char *key, uint64_t value);
void control_stats_str(struct control_stats *st, const char *key, const char *value);
void control_stats_bool(struct control_stats *st, const char *key, bool value);

/* Called on the main thread while query-stats runs; it must only take
 * leaf locks (its device lock) to read its counters. */
typedef void (*control_stats_fn)(void *opaque, struct control_stats *st);

/* Main thread (builder): registers / removes a provider. `name` is copied
 * (e.g. "serial0", "virtio-blk0"). -ENOSPC past CONTROL_MAX_STATS. */
int MUST_CHECK control_stats_register(struct control *c, const char *name,
				      control_stats_fn fn, void *opaque);
/* A block device for query-block: fn fills its "inserted" object (file,
 * ro, ...). Same rules and limit as the stats providers. */
int MUST_CHECK control_block_register(struct control *c, const char *name,
				      control_stats_fn fn, void *opaque);
/* Removes every provider (stats and block) registered with `opaque`. */
void control_stats_unregister(struct control *c, void *opaque);

/* --- the client: `skiff ctl` (src/vmm/ctl.c) --------------------------------- */

/* argv[0] is "ctl". Returns the process exit status. */
int ctl_main(int argc, char **argv);

#endif

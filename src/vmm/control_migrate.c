/*
 * The control socket's migration commands: migrate, migrate_cancel,
 * query-migrate, migrate-set-parameters, query-migrate-parameters
 * (docs/control.md, docs/migration.md). Main thread, called by control.c
 * with the request's arguments already checked against the tables in
 * control_cmds.c.
 */
#include <errno.h>
#include <string.h>

#include "control_priv.h"
#include "vm.h"

static struct json_object *empty(void)
{
	return json_object_new_object();
}

struct json_object *control_cmd_migrate(struct control_req *r, struct json_object *args)
{
	struct vm *vm = r->c->vm;
	struct json_object *uri;
	char err[300];

	if (!json_object_object_get_ex(args, "uri", &uri)) {
		control_req_error(r, "GenericError", "migrate needs \"uri\"");
		return NULL;
	}
	if (r->c->status == VM_STATUS_INMIGRATE) {
		control_req_error(r, "GenericError", "the VM has not arrived yet (inmigrate)");
		return NULL;
	}
	if (migration_start(vm->migration, json_object_get_string(uri), err, sizeof(err))) {
		control_req_error(r, "GenericError", "%s", err);
		return NULL;
	}
	return empty();
}

struct json_object *control_cmd_migrate_cancel(struct control_req *r, struct json_object *args)
{
	(void)args;
	/* Like QEMU: cancelling when nothing runs is not an error. */
	(void)migration_cancel(r->c->vm->migration);
	return empty();
}

static void add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)MIN(v, (uint64_t)INT64_MAX)));
}

struct json_object *control_cmd_query_migrate(struct control_req *r, struct json_object *args)
{
	struct json_object *o = json_object_new_object(), *ram;
	struct mig_info i;

	(void)args;
	migration_info(r->c->vm->migration, &i);
	if (i.status == MIG_S_NONE)
		return o;
	json_object_object_add(o, "status", json_object_new_string(mig_status_name(i.status)));
	add_u64(o, "total-time", i.total_time_ms);
	add_u64(o, "setup-time", i.setup_time_ms);
	if (i.status == MIG_S_COMPLETED)
		json_object_object_add(o, "downtime", json_object_new_double(i.downtime_ms));
	else
		add_u64(o, "expected-downtime", i.expected_downtime_ms);
	if (i.status == MIG_S_FAILED || i.status == MIG_S_CANCELLED)
		json_object_object_add(o, "error-desc", json_object_new_string(i.error));
	if (i.incoming)
		json_object_object_add(o, "incoming", json_object_new_boolean(true));
	ram = json_object_new_object();
	add_u64(ram, "total", i.ram_total);
	add_u64(ram, "transferred", i.transferred);
	add_u64(ram, "remaining", i.remaining);
	add_u64(ram, "pages", i.pages);
	add_u64(ram, "zero-pages", i.zero_pages);
	add_u64(ram, "dirty-pages-rate", i.dirty_pages_rate);
	add_u64(ram, "dirty-bytes-rate", i.dirty_bytes_rate);
	add_u64(ram, "dirty-sync-count", i.iterations);
	add_u64(ram, "throttle-percent", i.throttle_pct);
	json_object_object_add(ram, "mbps", json_object_new_double(i.mbps));
	json_object_object_add(o, "ram", ram);
	return o;
}

static struct json_object *params_obj(const struct mig_params *p)
{
	struct json_object *o = json_object_new_object();

	add_u64(o, "downtime-limit", p->downtime_limit_ms);
	add_u64(o, "max-bandwidth", p->max_bandwidth);
	json_object_object_add(o, "auto-converge", json_object_new_boolean(p->auto_converge));
	add_u64(o, "channels", p->channels);
	json_object_object_add(o, "verify", json_object_new_boolean(p->verify));
	return o;
}

struct json_object *control_cmd_query_migrate_parameters(struct control_req *r,
							 struct json_object *args)
{
	struct mig_params p;

	(void)args;
	migration_get_params(r->c->vm->migration, &p);
	return params_obj(&p);
}

/* A non-negative integer argument, if present. */
static bool get_uint(struct control_req *r, struct json_object *args, const char *key,
		     uint64_t *out)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(args, key, &v))
		return true;
	x = json_object_get_int64(v);
	if (x < 0) {
		control_req_error(r, "GenericError", "%s must not be negative", key);
		return false;
	}
	*out = (uint64_t)x;
	return true;
}

struct json_object *control_cmd_migrate_set_parameters(struct control_req *r,
						       struct json_object *args)
{
	struct migration *m = r->c->vm->migration;
	struct json_object *v;
	struct mig_params p;
	uint64_t ch;
	char err[200];

	migration_get_params(m, &p);
	ch = p.channels;
	if (!get_uint(r, args, "downtime-limit", &p.downtime_limit_ms) ||
	    !get_uint(r, args, "max-bandwidth", &p.max_bandwidth) ||
	    !get_uint(r, args, "channels", &ch))
		return NULL;
	if (ch > 64) {
		control_req_error(r, "GenericError", "channels: at most 64");
		return NULL;
	}
	p.channels = (unsigned int)ch;
	if (json_object_object_get_ex(args, "auto-converge", &v))
		p.auto_converge = json_object_get_boolean(v);
	if (json_object_object_get_ex(args, "verify", &v))
		p.verify = json_object_get_boolean(v);
	if (migration_set_params(m, &p, err, sizeof(err))) {
		control_req_error(r, "GenericError", "%s", err);
		return NULL;
	}
	return empty();
}

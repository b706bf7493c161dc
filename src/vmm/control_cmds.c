/*
 * The control socket's commands (docs/control.md lists each with its
 * arguments and answer). Main thread, called by control.c with the request's
 * arguments already checked against each command's argument list.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "control_priv.h"
#include "vm.h"

/* --- helpers --------------------------------------------------------------- */

enum vm_status control_status(struct control *c)
{
	struct vm *vm = c->vm;

	if (c->ended || runstate_exiting(&vm->rs))
		return VM_STATUS_SHUTDOWN;
	if (c->status != VM_STATUS_AUTO)
		return c->status;
	return vm->paused ? VM_STATUS_PAUSED : VM_STATUS_RUNNING;
}

#define QUIT_REASON "quit requested on the control socket"
#define RESET_REASON "reset requested"   /* vm_request_reset()'s */

/* QEMU's ShutdownCause names, from the run state's reason and status. */
static const char *shutdown_cause(struct control *c, bool *guest)
{
	const struct runstate *rs = &c->vm->rs;

	*guest = false;
	if (!strcmp(rs->reason, QUIT_REASON))
		return "host-qmp-quit";
	if (!strcmp(rs->reason, RESET_REASON))
		return "host-qmp-system-reset";
	if (!strncmp(rs->reason, "terminating on signal", 21))
		return "host-signal";
	if (strstr(rs->reason, "Ctrl-A"))
		return "host-ui";
	*guest = true;
	if (rs->exit_status == SKIFF_EXIT_GUEST_FAULT)
		return "guest-panic";
	if (strstr(rs->reason, "reset"))
		return "guest-reset";
	return "guest-shutdown";
}

struct json_object *control_shutdown_data(struct control *c)
{
	struct json_object *d = json_object_new_object();
	const struct runstate *rs = &c->vm->rs;
	bool guest;
	const char *cause = shutdown_cause(c, &guest);

	json_object_object_add(d, "guest", json_object_new_boolean(guest));
	json_object_object_add(d, "reason", json_object_new_string(cause));
	json_object_object_add(d, "message", json_object_new_string(rs->reason));
	json_object_object_add(d, "exit-status", json_object_new_int(rs->exit_status));
	return d;
}

void control_vm_reset(struct control *c)
{
	struct json_object *d = json_object_new_object();
	bool guest;
	const char *cause = shutdown_cause(c, &guest);

	json_object_object_add(d, "guest", json_object_new_boolean(guest));
	json_object_object_add(d, "reason", json_object_new_string(guest ? "guest-reset" : cause));
	control_emit_obj(c, "RESET", d, NULL);
}

static struct json_object *empty(void)
{
	return json_object_new_object();
}

/* --- commands -------------------------------------------------------------- */

static struct json_object *cmd_query_version(struct control_req *r, struct json_object *args)
{
	return control_version_obj();
}

static struct json_object *cmd_query_commands(struct control_req *r, struct json_object *args)
{
	struct json_object *list = json_object_new_array();
	const struct control_cmd *cmd;

	for (cmd = control_cmds; cmd->name; cmd++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(cmd->name));
		json_object_array_add(list, o);
	}
	return list;
}

static struct json_object *cmd_query_status(struct control_req *r, struct json_object *args)
{
	struct json_object *o = json_object_new_object();
	enum vm_status s = control_status(r->c);

	json_object_object_add(o, "status", json_object_new_string(vm_status_name(s)));
	json_object_object_add(o, "running", json_object_new_boolean(s == VM_STATUS_RUNNING));
	json_object_object_add(o, "singlestep", json_object_new_boolean(false));
	return o;
}

static struct json_object *cmd_stop(struct control_req *r, struct json_object *args)
{
	struct vm *vm = r->c->vm;
	int ret;

	if (r->c->status != VM_STATUS_AUTO) {
		control_req_error(r, "GenericError", "cannot stop: the VM is %s",
				  vm_status_name(r->c->status));
		return NULL;
	}
	if (vm->paused)
		return empty();
	ret = vm_pause(vm);
	if (ret) {
		control_req_error(r, "GenericError", "cannot stop the VM: %s",
				  ret == -ESHUTDOWN ? "it is shutting down" : strerror(-ret));
		return NULL;
	}
	control_emit_obj(r->c, "STOP", NULL, NULL);
	return empty();
}

static struct json_object *cmd_cont(struct control_req *r, struct json_object *args)
{
	struct vm *vm = r->c->vm;

	if (r->c->status != VM_STATUS_AUTO) {
		control_req_error(r, "GenericError", "cannot continue: the VM is %s",
				  vm_status_name(r->c->status));
		return NULL;
	}
	if (!vm->paused)
		return empty();
	vm_resume(vm);
	control_emit_obj(r->c, "RESUME", NULL, NULL);
	return empty();
}

static struct json_object *cmd_quit(struct control_req *r, struct json_object *args)
{
	struct vm *vm = r->c->vm;

	runstate_request_exit(&vm->rs, SKIFF_EXIT_OK, QUIT_REASON);
	return empty();
}

static struct json_object *cmd_system_powerdown(struct control_req *r, struct json_object *args)
{
	int ret = vm_request_powerdown(r->c->vm);

	if (ret == -ENOTSUP) {
		control_req_error(r, "GenericError", "system_powerdown is not available: "
				  "this VM has no ACPI power button");
		return NULL;
	}
	if (ret) {
		control_req_error(r, "GenericError", "system_powerdown failed: %s", strerror(-ret));
		return NULL;
	}
	control_emit_obj(r->c, "POWERDOWN", NULL, NULL);
	return empty();
}

/* The reset happens when vm_run() reboots the VM, which then emits RESET
 * (control_vm_reset); a VM that does not reboot (--no-reboot, skiff test
 * guests) ends instead, with SHUTDOWN. */
static struct json_object *cmd_system_reset(struct control_req *r, struct json_object *args)
{
	int ret = vm_request_reset(r->c->vm);

	if (ret) {
		control_req_error(r, "GenericError", "system_reset failed: %s", strerror(-ret));
		return NULL;
	}
	return empty();
}

/* The vCPU thread writes its tid itself as it starts, so right after
 * start-up it may still be 0: wait for it a little (microseconds in
 * practice, 100 ms at most), then report 0. */
static pid_t vcpu_tid(const struct vcpu *v)
{
	pid_t tid = 0;
	int i;

	for (i = 0; i < 100; i++) {
		tid = __atomic_load_n(&v->tid, __ATOMIC_RELAXED);
		if (tid || !v->started)
			break;
		usleep(1000);
	}
	return tid;
}

static struct json_object *cmd_query_cpus_fast(struct control_req *r, struct json_object *args)
{
	struct vm *vm = r->c->vm;
	struct json_object *list = json_object_new_array();
	unsigned int i;

	for (i = 0; i < vm->nr_vcpus; i++) {
		struct json_object *o = json_object_new_object();
		pid_t tid = vcpu_tid(vm->vcpus[i]);

		json_object_object_add(o, "cpu-index", json_object_new_int((int)i));
		json_object_object_add(o, "thread-id", json_object_new_int(tid));
		json_object_object_add(o, "target", json_object_new_string("x86_64"));
		json_object_array_add(list, o);
	}
	return list;
}

static struct json_object *cmd_query_memory(struct control_req *r, struct json_object *args)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "base-memory", json_object_new_uint64(r->c->vm->mem->size));
	json_object_object_add(o, "plugged-memory", json_object_new_uint64(0));
	return o;
}

static struct json_object *cmd_query_block(struct control_req *r, struct json_object *args)
{
	struct control *c = r->c;
	struct json_object *list = json_object_new_array();
	unsigned int i;

	for (i = 0; i < c->nr_stats; i++) {
		struct json_object *d;
		struct control_stats st;

		if (!c->stats[i].block)
			continue;
		d = json_object_new_object();
		st.obj = json_object_new_object();
		c->stats[i].fn(c->stats[i].opaque, &st);
		json_object_object_add(d, "device", json_object_new_string(c->stats[i].name));
		json_object_object_add(d, "removable", json_object_new_boolean(false));
		json_object_object_add(d, "locked", json_object_new_boolean(false));
		json_object_object_add(d, "inserted", st.obj);
		json_object_array_add(list, d);
	}
	return list;
}

static struct json_object *cmd_query_stats(struct control_req *r, struct json_object *args)
{
	struct control *c = r->c;
	struct json_object *o = json_object_new_object();
	struct json_object *devs = json_object_new_array(), *cpus = json_object_new_array();
	unsigned int i;

	for (i = 0; i < c->nr_stats; i++) {
		struct json_object *d;
		struct control_stats st;

		if (c->stats[i].block)
			continue;
		d = json_object_new_object();
		st.obj = json_object_new_object();
		c->stats[i].fn(c->stats[i].opaque, &st);
		json_object_object_add(d, "name", json_object_new_string(c->stats[i].name));
		json_object_object_add(d, "stats", st.obj);
		json_object_array_add(devs, d);
	}
	for (i = 0; i < c->vm->nr_vcpus; i++) {
		struct vcpu *v = c->vm->vcpus[i];
		struct json_object *d = json_object_new_object();

		/* Counters the vCPU thread bumps without a lock: a relaxed
		 * read may be one exit behind, which is all a counter needs. */
		json_object_object_add(d, "cpu-index", json_object_new_int((int)i));
		json_object_object_add(d, "exits-io", json_object_new_uint64(
			__atomic_load_n(&v->exits_io, __ATOMIC_RELAXED)));
		json_object_object_add(d, "exits-mmio", json_object_new_uint64(
			__atomic_load_n(&v->exits_mmio, __ATOMIC_RELAXED)));
		json_object_array_add(cpus, d);
	}
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "vcpus", cpus);
	return o;
}

/* --- built-in stats providers ---------------------------------------------- */

/* The serial port is created after the control server: look it up at
 * query time. */
static void serial_stats(void *opaque, struct control_stats *st)
{
	struct vm *vm = opaque;
	struct serial_stats s = { 0 };

	if (vm->serial)
		serial_get_stats(vm->serial, &s);
	control_stats_u64(st, "tx-bytes", s.tx_bytes);
	control_stats_u64(st, "rx-bytes", s.rx_bytes);
	control_stats_u64(st, "rx-dropped", s.rx_dropped);
}

int control_cmds_register_stats(struct control *c)
{
	return control_stats_register(c, "serial0", serial_stats, c->vm);
}

/* --- the table ------------------------------------------------------------- */

static const struct control_arg caps_args[] = {
	{ "enable", ARG_ARRAY, false },
	{ NULL, 0, false },
};

static const struct control_arg migrate_args[] = {
	{ "uri", ARG_STRING, true },
	{ NULL, 0, false },
};

static const struct control_arg migrate_params_args[] = {
	{ "downtime-limit", ARG_INT, false },
	{ "max-bandwidth", ARG_INT, false },
	{ "auto-converge", ARG_BOOL, false },
	{ "channels", ARG_INT, false },
	{ "verify", ARG_BOOL, false },
	{ NULL, 0, false },
};

/* qmp_capabilities has no fn: control.c negotiates. Sorted by name. */
const struct control_cmd control_cmds[] = {
	{ "cont", cmd_cont, NULL },
	{ "migrate", control_cmd_migrate, migrate_args },
	{ "migrate-set-parameters", control_cmd_migrate_set_parameters, migrate_params_args },
	{ "migrate_cancel", control_cmd_migrate_cancel, NULL },
	{ "qmp_capabilities", NULL, caps_args },
	{ "query-block", cmd_query_block, NULL },
	{ "query-commands", cmd_query_commands, NULL },
	{ "query-cpus-fast", cmd_query_cpus_fast, NULL },
	{ "query-memory-size-summary", cmd_query_memory, NULL },
	{ "query-migrate", control_cmd_query_migrate, NULL },
	{ "query-migrate-parameters", control_cmd_query_migrate_parameters, NULL },
	{ "query-stats", cmd_query_stats, NULL },
	{ "query-status", cmd_query_status, NULL },
	{ "query-version", cmd_query_version, NULL },
	{ "quit", cmd_quit, NULL },
	{ "stop", cmd_stop, NULL },
	{ "system_powerdown", cmd_system_powerdown, NULL },
	{ "system_reset", cmd_system_reset, NULL },
	{ NULL, NULL, NULL },
};

const struct control_cmd *control_cmd_find(const char *name)
{
	const struct control_cmd *cmd;

	for (cmd = control_cmds; cmd->name; cmd++)
		if (!strcmp(cmd->name, name))
			return cmd;
	return NULL;
}

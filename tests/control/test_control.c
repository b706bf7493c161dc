/*
 * Unit tests of the control server without KVM: a struct vm with only a run
 * state, the server on its own event loop, a client on a socket in the same
 * thread (the loop is pumped between writes and reads).
 */
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "vm.h"

struct fixture {
	char dir[64];
	char path[128];
	struct vm *vm;
	struct event_loop *loop;
	int fd;
	char buf[1 << 16];
	size_t len;
};

static void pump(struct fixture *f)
{
	int i;

	for (i = 0; i < 20; i++)
		ck_assert_int_eq(event_loop_run_once(f->loop, 5), 0);
}

/* The next message from the server (pumping the loop while waiting). */
static struct json_object *next_msg(struct fixture *f)
{
	int tries;

	for (tries = 0; tries < 200; tries++) {
		char *nl = memchr(f->buf, '\n', f->len);
		ssize_t n;

		if (nl) {
			struct json_object *o;
			size_t used = (size_t)(nl - f->buf) + 1;

			*nl = '\0';
			o = json_tokener_parse(f->buf);
			memmove(f->buf, f->buf + used, f->len - used);
			f->len -= used;
			ck_assert_ptr_nonnull(o);
			return o;
		}
		pump(f);
		n = recv(f->fd, f->buf + f->len, sizeof(f->buf) - f->len - 1, MSG_DONTWAIT);
		if (n > 0)
			f->len += (size_t)n;
	}
	ck_abort_msg("no message from the server");
	return NULL;
}

static void send_str(struct fixture *f, const char *s)
{
	ck_assert_int_eq(send(f->fd, s, strlen(s), 0), (ssize_t)strlen(s));
}

static void setup(struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char err[256] = "";
	struct json_object *m;

	memset(f, 0, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/skiff-ctlunit-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s", f->dir);
	f->vm = calloc(1, sizeof(*f->vm));
	ck_assert_int_eq(runstate_init(&f->vm->rs), 0);
	ck_assert_int_eq(event_loop_create(&f->loop), 0);
	ck_assert_msg(control_create(f->vm, f->path, &f->vm->control, err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_int_eq(control_start(f->vm->control, f->loop), 0);
	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, f->path, strlen(f->path));
	ck_assert_int_eq(connect(f->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	m = next_msg(f);
	ck_assert(json_object_object_get_ex(m, "QMP", NULL));
	json_object_put(m);
	send_str(f, "{\"execute\":\"qmp_capabilities\"}\n");
	m = next_msg(f);
	ck_assert(json_object_object_get_ex(m, "return", NULL));
	json_object_put(m);
}

static void teardown(struct fixture *f)
{
	close(f->fd);
	event_loop_destroy(f->loop);
	control_destroy(f->vm->control);
	ck_assert_int_ne(access(f->path, F_OK), 0);  /* socket file removed */
	runstate_fini(&f->vm->rs);
	free(f->vm);
	rmdir(f->dir);
}

static const char *event_name(struct json_object *m)
{
	struct json_object *e;

	return json_object_object_get_ex(m, "event", &e) ? json_object_get_string(e) : "";
}

/* --- DEVICE_NEEDS_RESET from other threads -------------------------------- */

#define RESET_THREADS 4
#define RESETS_EACH 50

static void *raise_resets(void *arg)
{
	struct control *c = arg;
	int i;

	for (i = 0; i < RESETS_EACH; i++)
		control_device_needs_reset(c, "virtio-test0", "descriptor out of range");
	return NULL;
}

START_TEST(device_needs_reset_from_threads)
{
	struct fixture f;
	pthread_t t[RESET_THREADS];
	int64_t seen = 0, dropped = 0;
	int i;

	setup(&f);
	for (i = 0; i < RESET_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, raise_resets, f.vm->control), 0);
	for (i = 0; i < RESET_THREADS; i++)
		pthread_join(t[i], NULL);
	/* The main thread picks device events up from the eventfd: once the
	 * loop ran, a marker event comes after all of them. */
	pump(&f);
	control_emit(f.vm->control, "MARKER", NULL);
	for (;;) {
		struct json_object *m = next_msg(&f), *d, *v;

		if (!strcmp(event_name(m), "MARKER")) {
			json_object_put(m);
			break;
		}
		ck_assert_str_eq(event_name(m), "DEVICE_NEEDS_RESET");
		ck_assert(json_object_object_get_ex(m, "data", &d));
		ck_assert(json_object_object_get_ex(d, "device", &v));
		ck_assert_str_eq(json_object_get_string(v), "virtio-test0");
		ck_assert(json_object_object_get_ex(d, "reason", &v));
		ck_assert_str_eq(json_object_get_string(v), "descriptor out of range");
		if (json_object_object_get_ex(d, "dropped", &v))
			dropped += json_object_get_int64(v);
		ck_assert(json_object_object_get_ex(m, "timestamp", NULL));
		seen++;
		json_object_put(m);
	}
	ck_assert_int_eq(seen + dropped, RESET_THREADS * RESETS_EACH);
	ck_assert_int_ge(seen, 1);
	control_device_needs_reset(NULL, "x", "y");  /* no server: a no-op */
	teardown(&f);
}
END_TEST

/* --- control_emit ------------------------------------------------------------ */

START_TEST(emit_event_data)
{
	struct fixture f;
	struct json_object *m, *d, *v;

	setup(&f);
	control_emit(f.vm->control, "TEST_EVENT", "{\"x\": 7, \"s\": \"a\"}");
	m = next_msg(&f);
	ck_assert_str_eq(event_name(m), "TEST_EVENT");
	ck_assert(json_object_object_get_ex(m, "data", &d));
	ck_assert(json_object_object_get_ex(d, "x", &v));
	ck_assert_int_eq(json_object_get_int(v), 7);
	json_object_put(m);
	control_emit(f.vm->control, "BAD_DATA", "[1, 2");
	m = next_msg(&f);
	ck_assert_str_eq(event_name(m), "BAD_DATA");
	ck_assert(json_object_object_get_ex(m, "data", &d));
	ck_assert_int_eq(json_object_object_length(d), 0);
	json_object_put(m);
	teardown(&f);
}
END_TEST

/* --- the stats registry ---------------------------------------------------- */

static void fake_stats(void *opaque, struct control_stats *st)
{
	control_stats_u64(st, "requests", *(uint64_t *)opaque);
}

static void fake_block(void *opaque, struct control_stats *st)
{
	control_stats_str(st, "file", (const char *)opaque);
	control_stats_bool(st, "ro", true);
}

static struct json_object *find_device(struct json_object *ans, const char *name)
{
	struct json_object *ret, *devs;
	size_t i;

	ck_assert(json_object_object_get_ex(ans, "return", &ret));
	ck_assert(json_object_object_get_ex(ret, "devices", &devs));
	for (i = 0; i < json_object_array_length(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i), *n, *st;

		json_object_object_get_ex(d, "name", &n);
		if (!strcmp(json_object_get_string(n), name)) {
			json_object_object_get_ex(d, "stats", &st);
			return st;
		}
	}
	return NULL;
}

START_TEST(stats_providers)
{
	struct fixture f;
	struct json_object *m, *st, *v;
	uint64_t counter = 12345;

	setup(&f);
	ck_assert_int_eq(control_stats_register(f.vm->control, "fake0", fake_stats, &counter), 0);
	send_str(&f, "{\"execute\":\"query-stats\"}\n");
	m = next_msg(&f);
	st = find_device(m, "fake0");
	ck_assert_ptr_nonnull(st);
	ck_assert(json_object_object_get_ex(st, "requests", &v));
	ck_assert_int_eq(json_object_get_int64(v), 12345);
	ck_assert_ptr_nonnull(find_device(m, "serial0"));  /* built in */
	json_object_put(m);
	control_stats_unregister(f.vm->control, &counter);
	send_str(&f, "{\"execute\":\"query-stats\"}\n");
	m = next_msg(&f);
	ck_assert_ptr_null(find_device(m, "fake0"));
	json_object_put(m);

	/* block providers show in query-block only */
	ck_assert_int_eq(control_block_register(f.vm->control, "disk7", fake_block,
						(void *)"/img/a.raw"), 0);
	send_str(&f, "{\"execute\":\"query-stats\"}\n");
	m = next_msg(&f);
	ck_assert_ptr_null(find_device(m, "disk7"));
	json_object_put(m);
	send_str(&f, "{\"execute\":\"query-block\"}\n");
	m = next_msg(&f);
	{
		struct json_object *ret, *d, *ins;

		ck_assert(json_object_object_get_ex(m, "return", &ret));
		ck_assert_int_eq(json_object_array_length(ret), 1);
		d = json_object_array_get_idx(ret, 0);
		ck_assert(json_object_object_get_ex(d, "device", &v));
		ck_assert_str_eq(json_object_get_string(v), "disk7");
		ck_assert(json_object_object_get_ex(d, "inserted", &ins));
		ck_assert(json_object_object_get_ex(ins, "file", &v));
		ck_assert_str_eq(json_object_get_string(v), "/img/a.raw");
		ck_assert(json_object_object_get_ex(ins, "ro", &v));
		ck_assert(json_object_get_boolean(v));
	}
	json_object_put(m);
	control_stats_unregister(f.vm->control, (void *)"/img/a.raw");
	send_str(&f, "{\"execute\":\"query-block\"}\n");
	m = next_msg(&f);
	{
		struct json_object *ret;

		ck_assert(json_object_object_get_ex(m, "return", &ret));
		ck_assert_int_eq(json_object_array_length(ret), 0);
	}
	json_object_put(m);
	teardown(&f);
}
END_TEST

/* --- status and SHUTDOWN ----------------------------------------------------- */

static const char *status_of(struct fixture *f)
{
	static char s[32];
	struct json_object *m, *ret, *st;

	send_str(f, "{\"execute\":\"query-status\"}\n");
	m = next_msg(f);
	ck_assert(json_object_object_get_ex(m, "return", &ret));
	ck_assert(json_object_object_get_ex(ret, "status", &st));
	snprintf(s, sizeof(s), "%s", json_object_get_string(st));
	json_object_put(m);
	return s;
}

START_TEST(status_and_shutdown)
{
	struct fixture f;
	struct json_object *m, *d, *v;

	setup(&f);
	ck_assert_str_eq(status_of(&f), "running");
	control_set_status(f.vm->control, VM_STATUS_INMIGRATE);
	ck_assert_str_eq(status_of(&f), "inmigrate");
	send_str(&f, "{\"execute\":\"cont\",\"id\":1}\n");
	m = next_msg(&f);
	ck_assert(json_object_object_get_ex(m, "error", NULL));  /* cannot cont now */
	json_object_put(m);
	control_set_status(f.vm->control, VM_STATUS_POSTMIGRATE);
	ck_assert_str_eq(status_of(&f), "postmigrate");
	control_set_status(f.vm->control, VM_STATUS_AUTO);
	ck_assert_str_eq(status_of(&f), "running");

	runstate_request_exit(&f.vm->rs, 0, "terminating on signal 15");
	control_vm_ending(f.vm->control);
	m = next_msg(&f);
	ck_assert_str_eq(event_name(m), "SHUTDOWN");
	ck_assert(json_object_object_get_ex(m, "data", &d));
	ck_assert(json_object_object_get_ex(d, "reason", &v));
	ck_assert_str_eq(json_object_get_string(v), "host-signal");
	ck_assert(json_object_object_get_ex(d, "guest", &v));
	ck_assert(!json_object_get_boolean(v));
	json_object_put(m);
	teardown(&f);
}
END_TEST

/* --- event loop: a handler deleting another ready source -------------------- */

struct two {
	struct event_loop *loop;
	int fd[2];
	int calls;
};

static void on_one(void *opaque, uint32_t events)
{
	struct two *t = opaque;
	uint64_t v;

	t->calls++;
	/* whichever runs first removes both: the other must not run */
	ck_assert_int_eq(read(t->fd[0], &v, sizeof(v)), sizeof(v));
	event_del(t->loop, t->fd[0]);
	event_del(t->loop, t->fd[1]);
}

START_TEST(event_del_other_source_in_round)
{
	struct two t = { 0 };
	uint64_t one = 1;
	int i;

	ck_assert_int_eq(event_loop_create(&t.loop), 0);
	for (i = 0; i < 2; i++) {
		t.fd[i] = eventfd(0, EFD_NONBLOCK);
		ck_assert_int_eq(write(t.fd[i], &one, sizeof(one)), sizeof(one));
	}
	ck_assert_int_eq(event_add(t.loop, t.fd[0], EPOLLIN, on_one, &t), 0);
	ck_assert_int_eq(event_add(t.loop, t.fd[1], EPOLLIN, on_one, &t), 0);
	ck_assert_int_eq(event_loop_run_once(t.loop, 100), 0);
	ck_assert_int_eq(t.calls, 1);
	ck_assert_int_eq(event_mod(t.loop, t.fd[0], EPOLLIN), -ENOENT);
	event_loop_destroy(t.loop);
	close(t.fd[0]);
	close(t.fd[1]);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, device_needs_reset_from_threads);
	tcase_add_test(tc, emit_event_data);
	tcase_add_test(tc, stats_providers);
	tcase_add_test(tc, status_and_shutdown);
	tcase_add_test(tc, event_del_other_source_in_round);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(control_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/*
 * `skiff ctl`: a small client for the control socket (docs/control.md).
 * Connects, negotiates, sends one command (or follows events), prints the
 * answer for people or, with --json, as one JSON line per message.
 *
 * Exit status: 0 success; 1 skiff answered with an error; 2 bad usage,
 * cannot connect, timeout or protocol error.
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "ctl_priv.h"
#include "log.h"

#define CTL_ID "skiff-ctl"

struct ctl_opts {
	bool json;
	long count;               /* events: stop after this many (0: never) */
	int timeout_ms;
	const char *socket;
	const char *raw;          /* --json '{...}' */
	const char *command;
	char **args;              /* KEY=VALUE ... */
	int nr_args;
	char uri_arg[4200];       /* `migrate URI`: uri=URI */
	bool migrate_follow;      /* `migrate URI`: follow it to the end */
};

static void ctl_help(FILE *out)
{
	fprintf(out,
		"Usage: skiff ctl [OPTIONS] SOCKET COMMAND [KEY=VALUE ...]\n"
		"       skiff ctl [OPTIONS] SOCKET --json '{\"execute\": ..., \"arguments\": ...}'\n"
		"       skiff ctl [OPTIONS] SOCKET events [--count N]\n"
		"       skiff ctl [OPTIONS] SOCKET migrate URI\n"
		"\n"
		"Sends one command to the control socket of a running skiff (skiff run\n"
		"--api-socket SOCKET) and prints the answer; `events` prints the events\n"
		"skiff sends until interrupted. Commands: query-commands lists them;\n"
		"docs/control.md describes each.\n"
		"\n"
		"Arguments: KEY=VALUE gives an integer, true/false, or else a string;\n"
		"KEY:=JSON gives any JSON value.\n"
		"\n"
		"`migrate URI` (tcp:HOST:PORT, unix:PATH, file:PATH) starts a migration\n"
		"and follows it: a progress line on stderr (percent, rate, dirty rate,\n"
		"ETA), then a summary; exit 0 when it completed, 1 when it failed or was\n"
		"cancelled. With --json the final query-migrate answer is printed instead.\n"
		"(`migrate uri=URI` only starts it.)\n"
		"\n"
		"Options:\n"
		"  --json          print every answer and event as one line of JSON;\n"
		"                  followed by '{...}': send that raw request\n"
		"  --timeout SEC   wait at most SEC seconds for an answer (default 10,\n"
		"                  0: forever; `events` waits for events forever)\n"
		"  --count N       events: stop after N events\n"
		"  -h, --help      show this help\n"
		"\n"
		"Exit status: 0 success, 1 skiff answered with an error, 2 bad usage,\n"
		"no connection, timeout or a malformed answer.\n");
}

/* --- connection ------------------------------------------------------------ */

static int ctl_connect(struct ctl_conn *c, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("ctl: socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		log_err("ctl: cannot connect to %s: %s", path, strerror(e));
		return -e;
	}
	c->tok = json_tokener_new_ex(64);
	return c->tok ? 0 : -ENOMEM;
}

static void ctl_close(struct ctl_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->tok)
		json_tokener_free(c->tok);
}

/* Next message from skiff; -ETIMEDOUT, -ECONNRESET (closed) or -EPROTO. */
int ctl_recv(struct ctl_conn *c, struct json_object **out)
{
	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t n;
		int r;

		while (c->pos < c->len) {
			size_t chunk = c->len - c->pos;
			struct json_object *o = json_tokener_parse_ex(c->tok, c->buf + c->pos, (int)chunk);
			enum json_tokener_error e = json_tokener_get_error(c->tok);

			if (e == json_tokener_continue) {
				c->pos = c->len;
				break;
			}
			if (e != json_tokener_success) {
				log_err("ctl: malformed message from skiff: %s", json_tokener_error_desc(e));
				return -EPROTO;
			}
			c->pos += json_tokener_get_parse_end(c->tok);
			json_tokener_reset(c->tok);
			if (!json_object_is_type(o, json_type_object)) {
				json_object_put(o);
				log_err("ctl: skiff sent something that is not a JSON object");
				return -EPROTO;
			}
			*out = o;
			return 0;
		}
		c->pos = c->len = 0;
		r = poll(&p, 1, c->timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			log_err("ctl: no answer from skiff within %d s", c->timeout_ms / 1000);
			return -ETIMEDOUT;
		}
		n = read(c->fd, c->buf, sizeof(c->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -ECONNRESET;
		c->len = (size_t)n;
	}
}

/* Sends the message and its newline in one go: skiff may act on the object
 * (quit, say) and close the socket before a separate newline would arrive. */
int ctl_send(struct ctl_conn *c, struct json_object *msg)
{
	const char *s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN);
	size_t len = strlen(s), off = 0;
	char *line = malloc(len + 2);
	int ret = 0;

	if (!line)
		return -ENOMEM;
	memcpy(line, s, len);
	line[len++] = '\n';
	while (off < len) {
		ssize_t n = send(c->fd, line + off, len - off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			log_err("ctl: cannot send: %s", strerror(errno));
			break;
		}
		off += (size_t)n;
	}
	free(line);
	return ret;
}

/* --- printing ---------------------------------------------------------------- */

static void print_json_line(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
}

static bool is_scalar(struct json_object *v)
{
	return !json_object_is_type(v, json_type_object) &&
	       !json_object_is_type(v, json_type_array);
}

static const char *scalar_text(struct json_object *v)
{
	if (!v)
		return "null";
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static void print_value(struct json_object *v, int indent);

/* dash: the first line starts an array item ("- key: value"). */
static void print_object(struct json_object *o, int indent, bool dash)
{
	json_object_object_foreach(o, key, val) {
		const char *lead = dash ? "- " : "";
		int pad = dash ? indent - 2 : indent;

		dash = false;
		if (!val || is_scalar(val)) {
			printf("%*s%s%s: %s\n", pad, "", lead, key, scalar_text(val));
		} else if (json_object_is_type(val, json_type_array) &&
			   json_object_array_length(val) == 0) {
			printf("%*s%s%s: (none)\n", pad, "", lead, key);
		} else {
			printf("%*s%s%s:\n", pad, "", lead, key);
			print_value(val, indent + 2);
		}
	}
}

/* Objects as "key: value" lines, arrays as "- " items, nested indented. */
static void print_value(struct json_object *v, int indent)
{
	size_t i, n;

	if (!v || is_scalar(v)) {
		printf("%*s%s\n", indent, "", scalar_text(v));
		return;
	}
	if (json_object_is_type(v, json_type_object)) {
		print_object(v, indent, false);
		return;
	}
	n = json_object_array_length(v);
	if (n == 0)
		printf("%*s(none)\n", indent, "");
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		if (!e || is_scalar(e)) {
			printf("%*s- %s\n", indent, "", scalar_text(e));
		} else if (json_object_is_type(e, json_type_object) &&
			   json_object_object_length(e)) {
			print_object(e, indent + 2, true);
		} else {
			printf("%*s-\n", indent, "");
			print_value(e, indent + 2);
		}
	}
}

static void print_event(struct json_object *ev, bool json)
{
	struct json_object *name = NULL, *data = NULL, *ts = NULL, *sec = NULL, *usec = NULL;

	if (json) {
		print_json_line(ev);
		return;
	}
	json_object_object_get_ex(ev, "event", &name);
	json_object_object_get_ex(ev, "data", &data);
	if (json_object_object_get_ex(ev, "timestamp", &ts)) {
		json_object_object_get_ex(ts, "seconds", &sec);
		json_object_object_get_ex(ts, "microseconds", &usec);
	}
	printf("%lld.%06lld %s", (long long)json_object_get_int64(sec),
	       (long long)json_object_get_int64(usec), json_object_get_string(name));
	if (data && json_object_is_type(data, json_type_object)) {
		json_object_object_foreach(data, key, val)
			printf(" %s=%s", key, scalar_text(val));
	}
	printf("\n");
	fflush(stdout);
}

/* --- requests ---------------------------------------------------------------- */

/* KEY=VALUE: integer, true/false, else string; KEY:=JSON: any value. */
static int parse_arg(const char *arg, struct json_object *args)
{
	const char *eq = strchr(arg, '=');
	struct json_object *v;
	char key[128], *end;
	size_t klen;
	bool raw;
	long long n;

	if (!eq || eq == arg) {
		log_err("ctl: argument '%s' is not KEY=VALUE", arg);
		return -EINVAL;
	}
	raw = eq[-1] == ':';
	klen = (size_t)(eq - arg) - raw;
	if (klen == 0 || klen >= sizeof(key)) {
		log_err("ctl: argument '%s' has no usable key", arg);
		return -EINVAL;
	}
	memcpy(key, arg, klen);
	key[klen] = '\0';
	if (raw) {
		enum json_tokener_error e;

		v = json_tokener_parse_verbose(eq + 1, &e);
		if (!v && e != json_tokener_success) {
			log_err("ctl: %s: value is not JSON (%s)", key, json_tokener_error_desc(e));
			return -EINVAL;
		}
	} else if (!strcmp(eq + 1, "true") || !strcmp(eq + 1, "false")) {
		v = json_object_new_boolean(eq[1] == 't');
	} else {
		errno = 0;
		n = strtoll(eq + 1, &end, 0);
		if (eq[1] && !*end && !errno)
			v = json_object_new_int64(n);
		else
			v = json_object_new_string(eq + 1);
	}
	json_object_object_add(args, key, v);
	return 0;
}

static int build_request(const struct ctl_opts *o, struct json_object **out)
{
	struct json_object *req, *args;
	int i;

	if (o->raw) {
		enum json_tokener_error e;

		req = json_tokener_parse_verbose(o->raw, &e);
		if (!req || !json_object_is_type(req, json_type_object)) {
			log_err("ctl: --json: the request is not a JSON object%s%s",
				req ? "" : ": ", req ? "" : json_tokener_error_desc(e));
			json_object_put(req);
			return -EINVAL;
		}
		if (!json_object_object_get_ex(req, "id", NULL))
			json_object_object_add(req, "id", json_object_new_string(CTL_ID));
		*out = req;
		return 0;
	}
	req = json_object_new_object();
	args = json_object_new_object();
	for (i = 0; i < o->nr_args; i++) {
		if (parse_arg(o->args[i], args)) {
			json_object_put(args);
			json_object_put(req);
			return -EINVAL;
		}
	}
	json_object_object_add(req, "execute", json_object_new_string(o->command));
	if (json_object_object_length(args))
		json_object_object_add(req, "arguments", args);
	else
		json_object_put(args);
	json_object_object_add(req, "id", json_object_new_string(CTL_ID));
	*out = req;
	return 0;
}

/* Waits for the answer carrying `id` (events before it are skipped, or
 * printed in events mode). Returns the exit status. */
static int await_answer(struct ctl_conn *c, struct json_object *id, bool json, bool quiet_ok)
{
	for (;;) {
		struct json_object *m = NULL, *mid = NULL, *ret = NULL, *err = NULL;
		int r = ctl_recv(c, &m);

		if (r == -ECONNRESET) {
			log_err("ctl: skiff closed the connection before answering");
			return CTL_FAILED;
		}
		if (r)
			return CTL_FAILED;
		json_object_object_get_ex(m, "id", &mid);
		if (!json_object_object_get_ex(m, "return", &ret) &&
		    !json_object_object_get_ex(m, "error", &err)) {
			json_object_put(m);  /* an event */
			continue;
		}
		if (!json_object_equal(mid, id)) {
			json_object_put(m);
			continue;
		}
		if (json) {
			if (!quiet_ok || err)
				print_json_line(m);
		} else if (err) {
			struct json_object *cls = NULL, *desc = NULL;

			json_object_object_get_ex(err, "class", &cls);
			json_object_object_get_ex(err, "desc", &desc);
			fprintf(stderr, "skiff ctl: error: %s: %s\n",
				cls ? json_object_get_string(cls) : "?",
				desc ? json_object_get_string(desc) : "?");
		} else if (!quiet_ok) {
			if (json_object_is_type(ret, json_type_object) &&
			    json_object_object_length(ret) == 0)
				printf("ok\n");
			else
				print_value(ret, 0);
		}
		json_object_put(m);
		return err ? CTL_ERROR_ANSWER : CTL_OK;
	}
}

static int follow_events(struct ctl_conn *c, const struct ctl_opts *o)
{
	long seen = 0;

	c->timeout_ms = -1;
	while (!o->count || seen < o->count) {
		struct json_object *m = NULL;
		int r = ctl_recv(c, &m);

		if (r == -ECONNRESET)
			return CTL_OK;  /* skiff ended */
		if (r)
			return CTL_FAILED;
		if (json_object_object_get_ex(m, "event", NULL)) {
			print_event(m, o->json);
			seen++;
		}
		json_object_put(m);
	}
	return CTL_OK;
}

static int ctl_session(const struct ctl_opts *o)
{
	struct ctl_conn c = { .fd = -1, .timeout_ms = o->timeout_ms };
	struct json_object *m = NULL, *req = NULL, *caps, *id = NULL;
	int ret = CTL_FAILED;

	if (!o->raw && strcmp(o->command, "events") && build_request(o, &req))
		return CTL_FAILED;
	if (o->raw && build_request(o, &req))
		return CTL_FAILED;
	if (ctl_connect(&c, o->socket))
		goto out;
	if (ctl_recv(&c, &m) || !json_object_object_get_ex(m, "QMP", NULL)) {
		log_err("ctl: %s did not greet with a QMP greeting", o->socket);
		goto out;
	}
	caps = json_object_new_object();
	json_object_object_add(caps, "execute", json_object_new_string("qmp_capabilities"));
	json_object_object_add(caps, "id", json_object_new_string("skiff-ctl-caps"));
	if (ctl_send(&c, caps)) {
		json_object_put(caps);
		goto out;
	}
	id = json_object_new_string("skiff-ctl-caps");
	ret = await_answer(&c, id, o->json, true);
	json_object_put(caps);
	json_object_put(id);
	if (ret)
		goto out;
	if (!req) {
		ret = follow_events(&c, o);
		goto out;
	}
	ret = CTL_FAILED;
	if (ctl_send(&c, req))
		goto out;
	json_object_object_get_ex(req, "id", &id);
	ret = await_answer(&c, id, o->json, o->migrate_follow);
	if (ret == CTL_OK && o->migrate_follow)
		ret = ctl_migrate_follow(&c, o->json);
out:
	json_object_put(m);
	json_object_put(req);
	ctl_close(&c);
	return ret;
}

int ctl_main(int argc, char **argv)
{
	struct ctl_opts o = { .timeout_ms = 10000 };
	char **pos = calloc((size_t)argc + 1, sizeof(*pos));
	int i, n = 0, ret;

	if (!pos)
		return CTL_FAILED;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		uint64_t v;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			ctl_help(stdout);
			free(pos);
			return CTL_OK;
		} else if (!strcmp(a, "--json")) {
			o.json = true;
			if (i + 1 < argc && argv[i + 1][0] == '{')
				o.raw = argv[++i];
		} else if (!strcmp(a, "--timeout") || !strcmp(a, "--count")) {
			if (i + 1 >= argc || parse_uint(argv[i + 1], 86400 * 365, &v)) {
				log_err("ctl: %s needs a number (see skiff ctl --help)", a);
				goto usage;
			}
			i++;
			if (a[2] == 't')
				o.timeout_ms = v ? (int)(v * 1000) : -1;
			else
				o.count = (long)v;
		} else if (a[0] == '-' && a[1] == '-' && n < 2) {
			log_err("ctl: unknown option %s (see skiff ctl --help)", a);
			goto usage;
		} else {
			pos[n++] = argv[i];
		}
	}
	if (n < 1 || (n < 2 && !o.raw) || (o.raw && n > 1)) {
		log_err("ctl: expected SOCKET and COMMAND (see skiff ctl --help)");
		goto usage;
	}
	o.socket = pos[0];
	if (!o.raw) {
		o.command = pos[1];
		o.args = pos + 2;
		o.nr_args = n - 2;
		if (!strcmp(o.command, "events") && o.nr_args) {
			log_err("ctl: events takes no arguments");
			goto usage;
		}
		if (!strcmp(o.command, "migrate") && o.nr_args == 1 && !strchr(o.args[0], '=')) {
			snprintf(o.uri_arg, sizeof(o.uri_arg), "uri=%s", o.args[0]);
			o.args[0] = o.uri_arg;
			o.migrate_follow = true;
		}
	}
	ret = ctl_session(&o);
	free(pos);
	return ret;
usage:
	free(pos);
	return CTL_FAILED;
}

/*
 * The control socket server: Unix stream socket, clients, QMP framing and
 * negotiation, dispatch to control_cmds.c (docs/control.md). Events and the
 * stats registry are in control_events.c.
 *
 * Thread context: everything runs on the main thread's event loop, except
 * control_device_needs_reset() (any thread, see control_priv.h). No call
 * here blocks: client sockets are non-blocking, each client has a bounded
 * input buffer and a bounded output queue.
 *
 * Framing: requests are JSON objects fed byte by byte to a json_tokener, so
 * they need no delimiter and may span lines. Recovery after bad input is by
 * line: an error on a message's first line discards input up to and
 * including the next newline; an error on a later line (the message was
 * truncated and a new one began) answers the truncated message with one
 * error and parses that line again as a new message.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_priv.h"

#define READ_CHUNK 65536
/* Above this much queued output a client's input is not read (backpressure
 * for a client that sends faster than it reads). */
#define OUTPUT_HIGH (256u * 1024)
#define FLUSH_AT_END_MS 200

struct client {
	struct control *c;
	struct client *next;
	int fd;
	bool negotiated;
	bool eof;                 /* the client sent EOF: close once flushed */
	bool dead;                /* closed at the end of its own handler */
	bool reading;             /* EPOLLIN watched */
	bool writing;             /* EPOLLOUT watched */
	struct json_tokener *tok;
	/* input: bytes [0, in_len); parsing is at pos. While a message is
	 * incomplete, the buffer keeps its current line from line_start. */
	char *in;
	size_t in_len, in_cap, pos, line_start, msg_bytes;
	bool in_msg, msg_first_line, discarding;
	/* output queue: bytes [out_off, out_len) are unsent */
	char *out;
	size_t out_len, out_cap, out_off;
};

/* --- output ---------------------------------------------------------------- */

static void client_kill(struct client *cl)
{
	if (cl->dead)
		return;
	cl->dead = true;
	/* Makes the socket readable/hung up, so the client's own handler runs
	 * and closes it even when this is called from another client's. */
	shutdown(cl->fd, SHUT_RDWR);
}

static void client_watch(struct client *cl, bool rd, bool wr)
{
	uint32_t ev = (rd ? EPOLLIN : 0) | (wr ? EPOLLOUT : 0);

	if (cl->dead || (rd == cl->reading && wr == cl->writing) || !cl->c->loop)
		return;
	if (event_mod(cl->c->loop, cl->fd, ev)) {
		client_kill(cl);
		return;
	}
	cl->reading = rd;
	cl->writing = wr;
}

static size_t out_pending(const struct client *cl)
{
	return cl->out_len - cl->out_off;
}

/* Writes what the socket takes now; watches EPOLLOUT for the rest. */
static void client_flush(struct client *cl)
{
	while (!cl->dead && out_pending(cl)) {
		ssize_t n = send(cl->fd, cl->out + cl->out_off, out_pending(cl),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_kill(cl);
			return;
		}
		cl->out_off += (size_t)n;
	}
	if (!out_pending(cl)) {
		cl->out_off = cl->out_len = 0;
		if (cl->out_cap > OUTPUT_HIGH) {
			free(cl->out);  /* a burst is over: give it back */
			cl->out = NULL;
			cl->out_cap = 0;
		}
	}
	if (cl->eof && !out_pending(cl)) {
		cl->dead = true;
		return;
	}
	client_watch(cl, !cl->eof && out_pending(cl) < OUTPUT_HIGH, out_pending(cl) > 0);
}

static void client_send(struct client *cl, struct json_object *msg)
{
	size_t len;
	const char *s;

	if (cl->dead)
		return;
	s = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s) {
		client_kill(cl);
		return;
	}
	if (out_pending(cl) + len + 2 > CONTROL_MAX_OUTPUT) {
		log_limited(&cl->c->rl, LOG_WARN, "control: a client does not read "
			    "its answers and events (%zu bytes queued): dropped", out_pending(cl));
		client_kill(cl);
		return;
	}
	if (cl->out_off && cl->out_len + len + 2 > cl->out_cap) {
		memmove(cl->out, cl->out + cl->out_off, out_pending(cl));
		cl->out_len -= cl->out_off;
		cl->out_off = 0;
	}
	if (cl->out_len + len + 2 > cl->out_cap) {
		size_t cap = MAX(cl->out_cap * 2, cl->out_len + len + 2);
		char *p = realloc(cl->out, cap);

		if (!p) {
			client_kill(cl);
			return;
		}
		cl->out = p;
		cl->out_cap = cap;
	}
	memcpy(cl->out + cl->out_len, s, len);
	memcpy(cl->out + cl->out_len + len, "\r\n", 2);
	cl->out_len += len + 2;
	client_flush(cl);
}

/* has_id: the request had an "id" member (id is NULL for a JSON null). */
static void send_error(struct client *cl, const char *cls, const char *desc,
		       bool has_id, struct json_object *id)
{
	struct json_object *msg = json_object_new_object(), *e = json_object_new_object();

	json_object_object_add(e, "class", json_object_new_string(cls));
	json_object_object_add(e, "desc", json_object_new_string(desc));
	json_object_object_add(msg, "error", e);
	if (has_id)
		json_object_object_add(msg, "id", json_object_get(id));
	client_send(cl, msg);
	json_object_put(msg);
}

void control_req_error(struct control_req *r, const char *cls, const char *fmt, ...)
{
	va_list ap;

	r->err_class = cls;
	va_start(ap, fmt);
	vsnprintf(r->err_desc, sizeof(r->err_desc), fmt, ap);
	va_end(ap);
}

void control_broadcast(struct control *c, struct json_object *msg)
{
	struct client *cl;

	for (cl = c->clients; cl; cl = cl->next)
		if (cl->negotiated)
			client_send(cl, msg);
}

/* --- requests -------------------------------------------------------------- */

static const char *type_name(enum arg_type t)
{
	static const char *const names[] = { "a boolean", "an integer", "a string",
					     "an array", "an object" };
	return names[t];
}

static bool type_ok(struct json_object *v, enum arg_type t)
{
	switch (t) {
	case ARG_BOOL: return json_object_is_type(v, json_type_boolean);
	case ARG_INT: return json_object_is_type(v, json_type_int);
	case ARG_STRING: return json_object_is_type(v, json_type_string);
	case ARG_ARRAY: return json_object_is_type(v, json_type_array);
	case ARG_OBJECT: return json_object_is_type(v, json_type_object);
	}
	return false;
}

/* Checks args against the command's list; sets the error and returns false. */
static bool check_args(struct control_req *r, const struct control_cmd *cmd,
		       struct json_object *args)
{
	const struct control_arg *a;

	json_object_object_foreach(args, key, val) {
		for (a = cmd->args; a && a->name; a++)
			if (!strcmp(a->name, key))
				break;
		if (!a || !a->name) {
			control_req_error(r, "GenericError", "Parameter '%.64s' is unexpected", key);
			return false;
		}
		if (!type_ok(val, a->type)) {
			control_req_error(r, "GenericError", "Parameter '%s' expects %s",
					  a->name, type_name(a->type));
			return false;
		}
	}
	for (a = cmd->args; a && a->name; a++) {
		if (a->required && !json_object_object_get_ex(args, a->name, NULL)) {
			control_req_error(r, "GenericError", "Parameter '%s' is missing", a->name);
			return false;
		}
	}
	return true;
}

static bool negotiate(struct client *cl, struct control_req *r, struct json_object *args)
{
	struct json_object *en;
	size_t i;

	if (cl->negotiated) {
		control_req_error(r, "CommandNotFound",
				  "Capabilities negotiation is already complete, command ignored");
		return false;
	}
	if (json_object_object_get_ex(args, "enable", &en)) {
		for (i = 0; i < json_object_array_length(en); i++) {
			struct json_object *cap = json_object_array_get_idx(en, i);

			control_req_error(r, "GenericError", "Capability '%.64s' not available",
					  json_object_is_type(cap, json_type_string) ?
					  json_object_get_string(cap) : "?");
			return false;
		}
	}
	cl->negotiated = true;
	return true;
}

/* Validates the request's shape and runs it; answers exactly once. */
static void handle_request(struct client *cl, struct json_object *req)
{
	struct control_req r = { .c = cl->c };
	struct json_object *id = NULL, *exec = NULL, *args = NULL, *ret = NULL, *msg;
	struct json_object *empty = NULL;
	const struct control_cmd *cmd;
	const char *name;
	bool has_id;

	if (!json_object_is_type(req, json_type_object)) {
		send_error(cl, "GenericError", "QMP input must be a JSON object", false, NULL);
		return;
	}
	has_id = json_object_object_get_ex(req, "id", &id);
	json_object_object_foreach(req, key, val) {
		(void)val;
		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			control_req_error(&r, "GenericError", "QMP input member '%.64s' is unexpected", key);
			goto answer;
		}
	}
	if (!json_object_object_get_ex(req, "execute", &exec)) {
		control_req_error(&r, "GenericError", "QMP input lacks member 'execute'");
		goto answer;
	}
	if (!json_object_is_type(exec, json_type_string)) {
		control_req_error(&r, "GenericError", "QMP input member 'execute' must be a string");
		goto answer;
	}
	if (json_object_object_get_ex(req, "arguments", &args) &&
	    !json_object_is_type(args, json_type_object)) {
		control_req_error(&r, "GenericError", "QMP input member 'arguments' must be an object");
		goto answer;
	}
	if (!args)
		args = empty = json_object_new_object();
	name = json_object_get_string(exec);
	/* A name with an embedded NUL ("quit\u0000x") names no command. */
	cmd = strlen(name) == (size_t)json_object_get_string_len(exec) ?
	      control_cmd_find(name) : NULL;
	if (!cmd) {
		control_req_error(&r, "CommandNotFound", "The command %.64s has not been found", name);
		goto answer;
	}
	if (!cl->negotiated && strcmp(name, "qmp_capabilities")) {
		control_req_error(&r, "CommandNotFound",
				  "Expecting capabilities negotiation with 'qmp_capabilities'");
		goto answer;
	}
	if (!check_args(&r, cmd, args))
		goto answer;
	if (!cmd->fn) {
		if (negotiate(cl, &r, args))
			ret = json_object_new_object();
	} else {
		ret = cmd->fn(&r, args);
	}
	if (!ret && !r.err_class)
		control_req_error(&r, "GenericError", "%s failed", name);
answer:
	if (r.err_class) {
		json_object_put(ret);
		send_error(cl, r.err_class, r.err_desc, has_id, id);
	} else {
		msg = json_object_new_object();
		json_object_object_add(msg, "return", ret);
		if (has_id)
			json_object_object_add(msg, "id", json_object_get(id));
		client_send(cl, msg);
		json_object_put(msg);
	}
	json_object_put(empty);
}

/* --- framing --------------------------------------------------------------- */

static struct json_tokener *new_tokener(void)
{
	struct json_tokener *tok = json_tokener_new_ex(CONTROL_MAX_DEPTH);

	if (tok)
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				       JSON_TOKENER_ALLOW_TRAILING_CHARS |
				       JSON_TOKENER_VALIDATE_UTF8);
	return tok;
}

static void renew_tokener(struct client *cl)
{
	struct json_tokener *tok = new_tokener();

	if (!tok)
		return;  /* keep the old one */
	json_tokener_free(cl->tok);
	cl->tok = tok;
}

static void parse_error(struct client *cl, const char *what)
{
	char desc[160];

	snprintf(desc, sizeof(desc), "JSON parse error, %s", what);
	send_error(cl, "GenericError", desc, false, NULL);
	json_tokener_reset(cl->tok);
	cl->in_msg = false;
}

/* Keeps only what an incomplete message may still need: its current line. */
static void compact_input(struct client *cl)
{
	size_t keep = MIN((cl->in_msg && !cl->discarding) ? cl->line_start : cl->pos, cl->pos);

	memmove(cl->in, cl->in + keep, cl->in_len - keep);
	cl->in_len -= keep;
	cl->pos -= keep;
	cl->line_start -= MIN(keep, cl->line_start);
	if (cl->in_cap > 4 * READ_CHUNK && cl->in_len < READ_CHUNK) {
		char *p = realloc(cl->in, READ_CHUNK);

		if (p) {
			cl->in = p;
			cl->in_cap = READ_CHUNK;
		}
	}
}

/* Parses what is buffered; stops early when the client's output is above
 * the high mark (resumed by on_client once it drains) or the client died. */
static void client_process(struct client *cl)
{
	while (cl->pos < cl->in_len && !cl->dead && out_pending(cl) < OUTPUT_HIGH) {
		char *p = cl->in + cl->pos, *nl;
		size_t avail = cl->in_len - cl->pos, seg, used;
		struct json_object *obj;
		enum json_tokener_error e;

		if (cl->discarding) {
			nl = memchr(p, '\n', avail);
			cl->pos = nl ? (size_t)(nl - cl->in) + 1 : cl->in_len;
			cl->discarding = !nl;
			continue;
		}
		if (!cl->in_msg) {
			if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
				cl->pos++;
				continue;
			}
			cl->in_msg = true;
			cl->msg_first_line = true;
			cl->line_start = cl->pos;
			cl->msg_bytes = 0;
		}
		/* Feed up to the end of the line (newline included), within the
		 * message size limit. */
		nl = memchr(p, '\n', avail);
		seg = nl ? (size_t)(nl - p) + 1 : avail;
		seg = MIN(seg, CONTROL_MAX_MESSAGE - cl->msg_bytes);
		obj = json_tokener_parse_ex(cl->tok, p, (int)seg);
		e = json_tokener_get_error(cl->tok);
		if (e == json_tokener_success) {
			used = json_tokener_get_parse_end(cl->tok);
			cl->pos += used;
			json_tokener_reset(cl->tok);
			cl->in_msg = false;
			handle_request(cl, obj);
			json_object_put(obj);
		} else if (e == json_tokener_continue) {
			cl->pos += seg;
			cl->msg_bytes += seg;
			if (cl->msg_bytes >= CONTROL_MAX_MESSAGE) {
				char what[96];

				snprintf(what, sizeof(what), "message larger than %u bytes "
					 "(discarded up to the next newline)", CONTROL_MAX_MESSAGE);
				parse_error(cl, what);
				cl->discarding = cl->in[cl->pos - 1] != '\n';
				/* The tokener keeps its string buffer on reset:
				 * give the megabyte back. */
				renew_tokener(cl);
			} else if (cl->in[cl->pos - 1] == '\n') {
				cl->line_start = cl->pos;
				cl->msg_first_line = false;
			}
		} else {
			used = json_tokener_get_parse_end(cl->tok);
			parse_error(cl, json_tokener_error_desc(e));
			if (!cl->msg_first_line) {
				/* A truncated message and then a new line: parse
				 * that line again as a message of its own. */
				cl->pos = cl->line_start;
			} else {
				cl->pos += MIN(used, seg);
				cl->discarding = true;
			}
		}
	}
	compact_input(cl);
}

/* --- clients --------------------------------------------------------------- */

static void client_close(struct client *cl)
{
	struct control *c = cl->c;
	struct client **pp;

	for (pp = &c->clients; *pp; pp = &(*pp)->next) {
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	}
	c->nr_clients--;
	if (c->loop)
		event_del(c->loop, cl->fd);
	close(cl->fd);
	json_tokener_free(cl->tok);
	free(cl->in);
	free(cl->out);
	free(cl);
}

static void client_read(struct client *cl)
{
	ssize_t n;

	if (cl->in_cap - cl->in_len < READ_CHUNK) {
		size_t cap = cl->in_len + READ_CHUNK;
		char *p = realloc(cl->in, cap);

		if (!p) {
			client_kill(cl);
			return;
		}
		cl->in = p;
		cl->in_cap = cap;
	}
	n = recv(cl->fd, cl->in + cl->in_len, READ_CHUNK, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n < 0) {
		/* reset, possibly mid-message: dropped quietly */
		cl->dead = true;
		return;
	}
	if (n == 0) {
		/* EOF: answers still queued are sent, an incomplete message is
		 * dropped quietly. */
		cl->eof = true;
		client_process(cl);
		client_flush(cl);
		return;
	}
	cl->in_len += (size_t)n;
	client_process(cl);
}

static void on_client(void *opaque, uint32_t events)
{
	struct client *cl = opaque;

	if (!cl->dead && (events & EPOLLOUT))
		client_flush(cl);
	if (!cl->dead && out_pending(cl) < OUTPUT_HIGH && cl->pos < cl->in_len)
		client_process(cl);  /* resumes after backpressure */
	if (!cl->dead && !cl->eof && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    out_pending(cl) < OUTPUT_HIGH)
		client_read(cl);
	if (!cl->dead && (events & EPOLLERR))
		cl->dead = true;
	if (!cl->dead && cl->eof && (events & EPOLLHUP))
		cl->dead = true;  /* cannot write any more */
	if (!cl->dead)
		client_flush(cl);
	if (cl->dead)
		client_close(cl);
}

static void on_listen(void *opaque, uint32_t events)
{
	struct control *c = opaque;
	struct json_object *greet, *qmp;
	struct client *cl;
	int fd, i;

	for (i = 0; i < 16; i++) {
		fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				log_limited(&c->rl, LOG_WARN, "control: accept: %s", strerror(errno));
			return;
		}
		if (c->nr_clients >= CONTROL_MAX_CLIENTS || c->ended) {
			log_limited(&c->rl, LOG_WARN, "control: %u clients connected: "
				    "refusing another", c->nr_clients);
			close(fd);
			continue;
		}
		cl = calloc(1, sizeof(*cl));
		if (cl)
			cl->tok = new_tokener();
		if (!cl || !cl->tok || event_add(c->loop, fd, EPOLLIN, on_client, cl)) {
			if (cl && cl->tok)
				json_tokener_free(cl->tok);
			free(cl);
			close(fd);
			continue;
		}
		cl->c = c;
		cl->fd = fd;
		cl->reading = true;
		cl->next = c->clients;
		c->clients = cl;
		c->nr_clients++;

		greet = json_object_new_object();
		qmp = json_object_new_object();
		json_object_object_add(qmp, "version", control_version_obj());
		json_object_object_add(qmp, "capabilities", json_object_new_array());
		json_object_object_add(greet, "QMP", qmp);
		client_send(cl, greet);
		json_object_put(greet);
	}
}

/* --- socket ---------------------------------------------------------------- */

/* A socket file left by a dead process is replaced; one that accepts a
 * connection belongs to a live process and is refused. */
static int check_existing(const char *path, const struct sockaddr_un *sa,
			  char *err, size_t errlen)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "--api-socket %s: exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0) {
		snprintf(err, errlen, "--api-socket %s: another process is listening on it", path);
		return -EADDRINUSE;
	}
	if (errno != ECONNREFUSED)
		return -errno;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int open_socket(struct control *c, const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old;
	int ret;

	if (!*path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "--api-socket: the path must be 1 to %zu bytes",
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	ret = check_existing(path, &sa, err, errlen);
	if (ret) {
		if (!*err)
			snprintf(err, errlen, "--api-socket %s: %s", path, strerror(-ret));
		return ret;
	}
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0)
		goto fail;
	/* Main thread during the build: no other thread creates files, so the
	 * process-wide umask may be narrowed around bind() for mode 0600. */
	old = umask(0177);
	ret = bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0)
		goto fail;
	c->path = strdup(path);
	if (!c->path) {
		unlink(path);
		errno = ENOMEM;
		goto fail;
	}
	if (listen(c->listen_fd, 128) < 0)
		goto fail;
	return 0;
fail:
	ret = -errno;
	snprintf(err, errlen, "--api-socket %s: %s", path, strerror(errno));
	return ret;
}

/* --- create / destroy ------------------------------------------------------ */

int control_create(struct vm *vm, const char *socket_path, struct control **out,
		   char *err, size_t errlen)
{
	struct control *c = calloc(1, sizeof(*c));
	int ret;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->vm = vm;
	c->listen_fd = -1;
	c->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5);
	pthread_mutex_init(&c->dev_lock, NULL);
	c->dev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->dev_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (socket_path) {
		ret = open_socket(c, socket_path, err, errlen);
		if (ret)
			goto fail;
	}
	ret = control_cmds_register_stats(c);
	if (ret) {
		snprintf(err, errlen, "control: %s", strerror(-ret));
		goto fail;
	}
	*out = c;
	return 0;
fail:
	control_destroy(c);
	return ret;
}

int control_start(struct control *c, struct event_loop *loop)
{
	int ret;

	ret = event_add(loop, c->dev_fd, EPOLLIN, control_on_dev_event, c);
	if (ret)
		return ret;
	c->loop = loop;
	if (c->listen_fd >= 0) {
		ret = event_add(loop, c->listen_fd, EPOLLIN, on_listen, c);
		if (ret)
			return ret;
	}
	return 0;
}

void control_set_status(struct control *c, enum vm_status s)
{
	c->status = s;
}

void control_vm_ending(struct control *c)
{
	uint64_t deadline;
	struct client *cl;

	if (!c || c->ended)
		return;
	control_on_dev_event(c, 0); /* device events raised on the way out */
	control_emit_obj(c, "SHUTDOWN", control_shutdown_data(c), NULL);
	c->ended = true;
	/* Best effort: the event loop no longer runs, so poll here. */
	deadline = now_ns() + FLUSH_AT_END_MS * 1000000ULL;
	for (;;) {
		struct pollfd pfd[CONTROL_MAX_CLIENTS];
		nfds_t n = 0;
		uint64_t now = now_ns();

		for (cl = c->clients; cl; cl = cl->next) {
			if (!cl->dead && out_pending(cl)) {
				pfd[n].fd = cl->fd;
				pfd[n].events = POLLOUT;
				n++;
			}
		}
		if (!n || now >= deadline)
			break;
		if (poll(pfd, n, (int)((deadline - now) / 1000000ULL) + 1) <= 0)
			break;
		for (cl = c->clients; cl; cl = cl->next)
			if (!cl->dead && out_pending(cl))
				client_flush(cl);
	}
}

void control_destroy(struct control *c)
{
	if (!c)
		return;
	c->loop = NULL; /* already destroyed: closing the fds unregisters them */
	while (c->clients)
		client_close(c->clients);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->path)
		unlink(c->path);
	free(c->path);
	if (c->dev_fd >= 0)
		close(c->dev_fd);
	pthread_mutex_destroy(&c->dev_lock);
	free(c);
}

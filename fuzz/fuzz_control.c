/*
 * libFuzzer target: the control socket as a client reaches it — QMP
 * greeting and capabilities negotiation, the incremental JSON tokenizer
 * and its recovery after garbage, message framing, argument checking and
 * dispatch of every command, replies and errors. Each input is the whole of
 * what one client sends on a real Unix socket, served by control.c through
 * a real event loop; the client reads everything back until the server
 * closes.
 *
 * The VM behind it is a struct vm with what the commands read (run state,
 * RAM, a serial port, the ACPI event device, the migration driver), no
 * vCPUs. Skipped: inputs containing `"migrate"` (the command would write a
 * stream to any file the input names, as root) or a \u escape (which could
 * spell it); every other command runs, including stop/cont/quit/reset,
 * whose effects are undone before the next input.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "acpi_ged.h"
#include "config.h"
#include "control.h"
#include "devices.h"
#include "event.h"
#include "mem.h"
#include "migration.h"
#include "platform.h"
#include "vm.h"

/* vm.c's demo guest is linked into the skiff binary only. */
const uint8_t skiff_demo_elf[1], skiff_demo_elf_end[1];

static struct vm *vm;
static struct config cfg;
static struct event_loop *loop;
static struct sockaddr_un addr;
static char dir[] = "/tmp/skiff-fuzz-control-XXXXXX";

static void die(const char *what, const char *err)
{
	fprintf(stderr, "fuzz_control set-up: %s: %s\n", what, err);
	abort();
}

/* The socket and its directory go when libFuzzer exits (after its time
 * or run limit); a crashing run leaves them for the reproducer. */
static void remove_dir(void)
{
	unlink(addr.sun_path);
	rmdir(dir);
}

static void setup(void)
{
	struct irq_line none = { .vm_fd = -1, .gsi = 0 };
	char err[256] = "";
	int null;

	if (!mkdtemp(dir))
		die("mkdtemp", strerror(errno));
	atexit(remove_dir);
	addr.sun_family = AF_UNIX;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/api.sock", dir);
	vm = calloc(1, sizeof(*vm));
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (!vm || null < 0)
		abort();
	vm->cfg = &cfg;
	vm->vm_fd = -1;
	if (runstate_init(&vm->rs) || mem_create(16ULL << 20, &vm->mem) ||
	    bus_create("pio", &vm->pio) || bus_create("mmio", &vm->mmio) ||
	    event_loop_create(&loop))
		die("core", "out of memory or descriptors");
	vm->loop = loop;
	if (serial_create(vm->pio, SERIAL_COM1_BASE, none, null, &vm->serial) ||
	    acpi_ged_create(vm->mmio, vm->pio, none, &vm->rs, &vm->ged))
		die("devices", "");
	if (control_create(vm, addr.sun_path, &vm->control, err, sizeof(err)))
		die("control_create", err);
	if (migration_create(vm, &vm->migration) || migration_attach(vm->migration, loop))
		die("migration", "");
	if (control_start(vm->control, loop))
		die("control_start", "");
}

static bool skipped(const uint8_t *data, size_t size)
{
	static const char *const bad[] = { "\"migrate\"", "\\u" };

	for (unsigned int i = 0; i < 2; i++) {
		size_t n = strlen(bad[i]);

		for (size_t j = 0; j + n <= size; j++) {
			if (!memcmp(data + j, bad[i], n))
				return true;
		}
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t sent = 0;
	bool eof = false;
	char buf[65536];
	int fd, i;

	if (!vm)
		setup();
	if (skipped(data, size))
		return 0;
	/* The effects of the last input's commands, undone. */
	runstate_rearm(&vm->rs);
	vm->paused = false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 &&
		       errno != EINPROGRESS))
		abort();
	/* Serve until the server has read everything and answered, then
	 * closed (after our shutdown), or for a bounded number of rounds. */
	for (i = 0; i < 2000 && !eof; i++) {
		ssize_t r;

		if (sent < size) {
			r = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
			if (r > 0)
				sent += (size_t)r;
			if (sent == size)
				shutdown(fd, SHUT_WR);
		} else if (size == 0 && i == 0) {
			shutdown(fd, SHUT_WR);
		}
		if (event_loop_run_once(loop, 0))
			abort();
		while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) {
			/* SKIFF_FUZZ_VERBOSE: the replies (to check seeds). */
			if (getenv("SKIFF_FUZZ_VERBOSE"))
				fwrite(buf, 1, (size_t)r, stderr);
		}
		if (r == 0)
			eof = true;
	}
	if (getenv("SKIFF_FUZZ_VERBOSE"))
		fprintf(stderr, "[%zu of %zu bytes sent, %d rounds, %s]\n", sent, size, i,
			eof ? "closed by the server" : "still open");
	close(fd);
	for (i = 0; i < 4; i++)
		(void)event_loop_run_once(loop, 0);
	return 0;
}

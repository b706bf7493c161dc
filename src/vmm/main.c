/* skiff: command-line entry. Only main() may end the process. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "kvm_host.h"
#include "log.h"
#include "runstate.h"
#include "vm.h"

static void print_help(FILE *out)
{
	fprintf(out,
		"Usage: skiff COMMAND [OPTIONS]\n"
		"\n"
		"skiff is a small KVM virtual machine monitor.\n"
		"\n"
		"Commands:\n"
		"  run         boot a guest (skiff run --help for its options)\n"
		"  host-info   show this host's KVM backend and capabilities\n"
		"  ctl         send a command to a running skiff's --api-socket\n"
		"              (skiff ctl --help)\n"
		"\n"
		"Options:\n"
		"  -h, --help     show this help\n"
		"  -V, --version  show the version\n");
}

static int cmd_run(int argc, char **argv)
{
	struct config cfg;
	struct vm *vm = NULL;
	char err[512] = "";
	sigset_t set;
	int status;

	switch (config_parse_run(argc, argv, &cfg, err, sizeof(err))) {
	case CONFIG_HELP:
		config_print_run_help(stdout);
		return 0;
	case CONFIG_ERROR:
		log_err("%s", err);
		return SKIFF_EXIT_SETUP;
	case CONFIG_OK:
		break;
	}
	/* Block the signals the main thread reads through signalfd, and the
	 * vCPU kick signal, before any thread exists: threads inherit the mask
	 * and each vCPU thread unblocks only the kick signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* A console that goes away must not kill skiff: writes then fail. */
	signal(SIGPIPE, SIG_IGN);

	if (vm_create(&cfg, &vm, err, sizeof(err))) {
		log_err("%s", err);
		return SKIFF_EXIT_SETUP;
	}
	status = vm_run(vm);
	vm_teardown_async(vm);
	vm_destroy(vm);
	return status;
}

int main(int argc, char **argv)
{
	/* SKIFF_DEBUG=1: debug lines on stderr (migration timings, ...). */
	if (getenv("SKIFF_DEBUG") && *getenv("SKIFF_DEBUG") && strcmp(getenv("SKIFF_DEBUG"), "0"))
		log_set_level(LOG_DEBUG);
	if (argc < 2) {
		print_help(stderr);
		return SKIFF_EXIT_SETUP;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		print_help(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("skiff %s\n", SKIFF_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (!strcmp(argv[1], "host-info")) {
		const char *path = argc > 2 ? argv[2] : "/dev/kvm";

		return kvm_host_print_info(path, stdout);
	}
	log_err("unknown command '%s' (see skiff --help)", argv[1]);
	return SKIFF_EXIT_SETUP;
}

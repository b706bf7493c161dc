/*
 * The command line turned into a plain configuration struct. Parsing does
 * no I/O and touches no KVM: it is unit-tested on its own.
 */
#ifndef SKIFF_CONFIG_H
#define SKIFF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define CONFIG_MAX_CPUS 255   /* xAPIC IDs; the builder also checks KVM's limit */
#define CONFIG_DEFAULT_MEMORY (256 * MiB)
#define BOOT_CMDLINE_MAX_LEN 4095 /* bytes, without the NUL */

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

struct config {
	const char *kernel;      /* NULL: the embedded demo guest */
	const char *initrd;
	const char *cmdline;
	uint64_t memory;         /* bytes, multiple of 4 KiB */
	unsigned int cpus;
	enum serial_mode serial;
	const char *serial_path; /* SERIAL_FILE */
	int debug_exit_port;     /* -1: none */
	unsigned int debug_exit_size; /* ports: 1, 2 or 4 */
	const char *kvm_path;    /* default /dev/kvm */
};

enum config_result { CONFIG_OK, CONFIG_HELP, CONFIG_ERROR };

/* Parses `skiff run` options (argv[0] is "run"). On CONFIG_ERROR, err holds
 * one line naming the option and what is wrong. Pointers in cfg point into argv. */
enum config_result config_parse_run(int argc, char **argv, struct config *cfg,
				    char *err, size_t errlen);
void config_print_run_help(FILE *out);

#endif

/*
 * The command line turned into a plain configuration struct. Parsing does
 * no I/O and touches no KVM: it is unit-tested on its own.
 */
#ifndef SKIFF_CONFIG_H
#define SKIFF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sandbox.h"

#include "util.h"

#define CONFIG_MAX_CPUS 255   /* xAPIC IDs; the builder also checks KVM's limit */
#define CONFIG_DEFAULT_MEMORY (256 * MiB)
#define BOOT_CMDLINE_MAX_LEN 4095 /* bytes, without the NUL */

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

/* --disk path=IMG[,readonly=on][,serial=ID][,direct=on][,queues=N][,poll=US] */
#define CONFIG_MAX_DISKS 8
#define CONFIG_DISK_SERIAL_MAX 20   /* virtio-blk GET_ID bytes */
#define CONFIG_DISK_MAX_QUEUES 8
#define CONFIG_DISK_MAX_POLL_US 1000
#define CONFIG_DISK_DEFAULT_POLL_US 50
struct config_disk {
	char path[4096];
	char serial[CONFIG_DISK_SERIAL_MAX + 1]; /* "" : none */
	bool readonly;
	bool direct;             /* O_DIRECT */
	unsigned int queues;     /* 1..CONFIG_DISK_MAX_QUEUES */
	unsigned int poll_us;    /* I/O thread busy-poll window, 0..CONFIG_DISK_MAX_POLL_US */
};

/* --net tap=NAME|tap-fd=N[,mac=MAC][,queues=N][,poll=US] */
#define CONFIG_MAX_NETS 4
#define CONFIG_NET_MAX_QUEUES 4     /* queue pairs (VIRTIO_NET_MAX_PAIRS) */
#define CONFIG_NET_MAX_POLL_US 1000
struct config_net {
	char tap[16];            /* IFNAMSIZ; "" with tap_fd */
	int tap_fd;              /* -1: open tap by name */
	uint8_t mac[6];          /* all zero: generated */
	unsigned int queues;     /* queue pairs, 1..CONFIG_NET_MAX_QUEUES */
	unsigned int poll_us;    /* I/O thread busy-poll window (default 0) */
};

struct config {
	const char *kernel;      /* NULL: the embedded demo guest */
	const char *initrd;
	const char *cmdline;
	uint64_t memory;         /* bytes, multiple of 4 KiB */
	bool thp;                /* --memory ...,thp=on: anonymous RAM, huge pages */
	unsigned int cpus;
	enum serial_mode serial;
	const char *serial_path; /* SERIAL_FILE */
	int debug_exit_port;     /* -1: none */
	unsigned int debug_exit_size; /* ports: 1, 2 or 4 */
	const char *kvm_path;    /* default /dev/kvm */
	bool no_reboot;          /* a guest reset ends skiff (status 6) */
	const char *api_socket;  /* control socket path, NULL: none */
	struct config_disk disks[CONFIG_MAX_DISKS];
	unsigned int nr_disks;
	bool rng;                /* --rng: a virtio-rng device */
	struct config_net nets[CONFIG_MAX_NETS];
	unsigned int nr_nets;
	const char *incoming;    /* --incoming URI / --restore file:PATH, NULL: boot */
	enum sandbox_mode seccomp; /* default SANDBOX_ON (a zeroed config: off) */
	const char *user, *group;  /* --user/--group, NULL: keep the identity */
};

enum config_result { CONFIG_OK, CONFIG_HELP, CONFIG_ERROR };

/* Parses `skiff run` options (argv[0] is "run"). On CONFIG_ERROR, err holds
 * one line naming the option and what is wrong. Pointers in cfg point into argv. */
enum config_result config_parse_run(int argc, char **argv, struct config *cfg,
				    char *err, size_t errlen);
void config_print_run_help(FILE *out);
/* One --disk value (config_disk.c); appends to cfg->disks. */
int MUST_CHECK config_parse_disk(const char *arg, struct config *cfg, char *err, size_t errlen);
/* One --net value (config_net.c); appends to cfg->nets. */
int MUST_CHECK config_parse_net(const char *arg, struct config *cfg, char *err, size_t errlen);

#endif

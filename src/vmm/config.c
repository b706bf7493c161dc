/* `skiff run` options -> struct config. No I/O beyond writing help text. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "mem.h"

enum {
	OPT_KERNEL = 0x100, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS,
	OPT_SERIAL, OPT_DEBUG_EXIT, OPT_KVM_DEVICE, OPT_HELP,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "cpus", required_argument, NULL, OPT_CPUS },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "debug-exit", required_argument, NULL, OPT_DEBUG_EXIT },
	{ "kvm-device", required_argument, NULL, OPT_KVM_DEVICE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

void config_print_run_help(FILE *out)
{
	fprintf(out,
		"Usage: skiff run [OPTIONS]\n"
		"\n"
		"Boots a guest. With no --kernel, boots the demo guest built into skiff.\n"
		"\n"
		"Options:\n"
		"  --kernel PATH         kernel to boot: an ELF (32- or 64-bit) with a Xen PVH\n"
		"                        entry note (skiff test guests, Linux vmlinux with PVH)\n"
		"  --initrd PATH         initial ramdisk, passed as the first PVH module\n"
		"  --cmdline STR         kernel command line (at most %d bytes)\n"
		"  --memory SIZE         guest RAM, e.g. 512M, 4G (default 256M; K/M/G/T are\n"
		"                        powers of 1024; from 2M up to 16T). RAM is allocated\n"
		"                        lazily: only what the guest touches costs host memory\n"
		"  --cpus N              number of vCPUs, 1 to %d (default 1)\n"
		"  --serial MODE         COM1 console: stdio (default), file=PATH, or none\n"
		"  --debug-exit PORT[,size=N]\n"
		"                        add an isa-debug-exit device at I/O port PORT\n"
		"                        (N = 1, 2 or 4 ports, default 4): a guest write of\n"
		"                        value v ends skiff with exit status (v << 1) | 1\n"
		"  --kvm-device PATH     KVM device node (default /dev/kvm)\n"
		"  -h, --help            show this help\n"
		"\n"
		"Console: with --serial stdio on a terminal, the terminal is put in raw mode;\n"
		"type Ctrl-A x to quit skiff, Ctrl-A Ctrl-A to send Ctrl-A to the guest.\n"
		"\n"
		"Exit status: 0 guest powered off or reset, or skiff stopped by SIGINT/SIGTERM;\n"
		"2 bad command line or the VM could not be built; 4 the guest faulted (triple\n"
		"fault, emulation failure; registers are dumped on stderr); odd values come\n"
		"from --debug-exit.\n",
		BOOT_CMDLINE_MAX_LEN, CONFIG_MAX_CPUS);
}

static int parse_memory(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	uint64_t v;
	int ret = parse_size(arg, &v);

	if (ret == -ERANGE || (ret == 0 && v > MEM_MAX_SIZE)) {
		snprintf(err, errlen, "--memory %s is more than the maximum of 16T", arg);
		return -ERANGE;
	}
	if (ret) {
		snprintf(err, errlen, "--memory %s is not a size (examples: 512M, 4G)", arg);
		return ret;
	}
	if (v < MEM_MIN_SIZE) {
		snprintf(err, errlen, "--memory %s is too small: the minimum is 2M", arg);
		return -ERANGE;
	}
	cfg->memory = ALIGN_UP(v, MEM_PAGE_SIZE);
	return 0;
}

static int parse_cpus(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	uint64_t v;
	int ret = parse_uint(arg, CONFIG_MAX_CPUS, &v);

	if (ret || v == 0) {
		snprintf(err, errlen, "--cpus %s: expected a number from 1 to %d", arg, CONFIG_MAX_CPUS);
		return -EINVAL;
	}
	cfg->cpus = (unsigned int)v;
	return 0;
}

static int parse_serial(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	if (!strcmp(arg, "stdio")) {
		cfg->serial = SERIAL_STDIO;
	} else if (!strcmp(arg, "none")) {
		cfg->serial = SERIAL_NONE;
	} else if (!strncmp(arg, "file=", 5) && arg[5]) {
		cfg->serial = SERIAL_FILE;
		cfg->serial_path = arg + 5;
	} else {
		snprintf(err, errlen, "--serial %s: expected stdio, none or file=PATH", arg);
		return -EINVAL;
	}
	return 0;
}

static int parse_debug_exit(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	char port[16];
	const char *comma = strchr(arg, ',');
	size_t n = comma ? (size_t)(comma - arg) : strlen(arg);
	uint64_t v, size = 4;

	if (n == 0 || n >= sizeof(port))
		goto bad;
	memcpy(port, arg, n);
	port[n] = '\0';
	if (parse_uint(port, 0xffff, &v))
		goto bad;
	if (comma) {
		if (strncmp(comma + 1, "size=", 5) || parse_uint(comma + 6, 4, &size) ||
		    (size != 1 && size != 2 && size != 4))
			goto bad;
	}
	if (v + size > 0x10000)
		goto bad;
	cfg->debug_exit_port = (int)v;
	cfg->debug_exit_size = (unsigned int)size;
	return 0;
bad:
	snprintf(err, errlen, "--debug-exit %s: expected an I/O port (0-0xffff), "
		 "optionally followed by ,size=1|2|4", arg);
	return -EINVAL;
}

enum config_result config_parse_run(int argc, char **argv, struct config *cfg,
				    char *err, size_t errlen)
{
	int c, ret = 0;

	*cfg = (struct config){
		.memory = CONFIG_DEFAULT_MEMORY,
		.cpus = 1,
		.serial = SERIAL_STDIO,
		.debug_exit_port = -1,
		.debug_exit_size = 4,
		.kvm_path = "/dev/kvm",
	};
	optind = 0; /* glibc: full re-initialisation, so tests can parse twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_KVM_DEVICE: cfg->kvm_path = optarg; break;
		case OPT_MEMORY: ret = parse_memory(optarg, cfg, err, errlen); break;
		case OPT_CPUS: ret = parse_cpus(optarg, cfg, err, errlen); break;
		case OPT_SERIAL: ret = parse_serial(optarg, cfg, err, errlen); break;
		case OPT_DEBUG_EXIT: ret = parse_debug_exit(optarg, cfg, err, errlen); break;
		case 'h':
		case OPT_HELP:
			return CONFIG_HELP;
		case ':':
			snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
			return CONFIG_ERROR;
		default:
			snprintf(err, errlen, "unknown option %s (see skiff run --help)", argv[optind - 1]);
			return CONFIG_ERROR;
		}
		if (ret)
			return CONFIG_ERROR;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s' (see skiff run --help)", argv[optind]);
		return CONFIG_ERROR;
	}
	if (cfg->kernel && !*cfg->kernel) {
		snprintf(err, errlen, "--kernel needs a path");
		return CONFIG_ERROR;
	}
	if (cfg->initrd && !cfg->kernel) {
		snprintf(err, errlen, "--initrd needs --kernel");
		return CONFIG_ERROR;
	}
	if (cfg->cmdline && strlen(cfg->cmdline) > BOOT_CMDLINE_MAX_LEN) {
		snprintf(err, errlen, "--cmdline is %zu bytes; the limit is %d",
			 strlen(cfg->cmdline), BOOT_CMDLINE_MAX_LEN);
		return CONFIG_ERROR;
	}
	return CONFIG_OK;
}

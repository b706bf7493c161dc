/* `skiff run` options -> struct config. No I/O beyond writing help text. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "mem.h"

enum {
	OPT_KERNEL = 0x100, OPT_INITRD, OPT_CMDLINE, OPT_MEMORY, OPT_CPUS,
	OPT_SERIAL, OPT_DEBUG_EXIT, OPT_KVM_DEVICE, OPT_HELP, OPT_NO_REBOOT,
	OPT_API_SOCKET, OPT_DISK, OPT_RNG, OPT_NET, OPT_INCOMING, OPT_RESTORE,
	OPT_SECCOMP, OPT_USER, OPT_GROUP,
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
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "api-socket", required_argument, NULL, OPT_API_SOCKET },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "net", required_argument, NULL, OPT_NET },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "user", required_argument, NULL, OPT_USER },
	{ "group", required_argument, NULL, OPT_GROUP },
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
		"  --kernel PATH         kernel to boot: a Linux bzImage, an ELF with a Xen PVH\n"
		"                        entry note (skiff test guests, vmlinux with PVH), or a\n"
		"                        64-bit vmlinux (64-bit Linux boot protocol)\n"
		"  --initrd PATH         initial ramdisk\n"
		"  --cmdline STR         kernel command line (at most %d bytes)\n"
		"  --memory SIZE[,thp=on|off]\n"
		"                        guest RAM, e.g. 512M, 4G (default 256M; K/M/G/T are\n"
		"                        powers of 1024; from 2M up to 16T). RAM is allocated\n"
		"                        lazily: only what the guest touches costs host memory.\n"
		"                        thp=on: anonymous RAM in transparent huge pages (each\n"
		"                        touch costs 2 MiB; faster O_DIRECT disks and fewer\n"
		"                        TLB misses); default off: a shared memfd, 4 KiB pages\n"
		"  --cpus N              number of vCPUs, 1 to %d (default 1)\n"
		"  --serial MODE         COM1 console: stdio (default), file=PATH, or none\n"
		"  --debug-exit PORT[,size=N]\n"
		"                        add an isa-debug-exit device at I/O port PORT\n"
		"                        (N = 1, 2 or 4 ports, default 4): a guest write of\n"
		"                        value v ends skiff with exit status (v << 1) | 1\n"
		"  --kvm-device PATH     KVM device node (default /dev/kvm)\n"
		"  --no-reboot           a guest reset ends skiff with exit status 6 instead\n"
		"                        of rebooting the guest\n"
		"  --api-socket PATH     JSON control socket (QMP wire format, mode 0600;\n"
		"                        see skiff ctl, docs/control.md)\n"
		"  --disk path=IMG[,readonly=on][,serial=ID][,direct=on][,queues=N][,poll=US]\n"
		"                        virtio-blk (PCI) on a raw image or block device;\n"
		"                        repeatable (up to %d). serial: GET_ID string (20\n"
		"                        bytes max); direct=on opens with O_DIRECT; queues:\n"
		"                        1 to %d request queues (default 1); poll: the I/O\n"
		"                        thread busy-polls US microseconds before sleeping\n"
		"                        (default 50, 0: never; without direct=on only\n"
		"                        while no request is in flight)\n"
		"  --rng                 virtio-rng (PCI), fed from the host's getrandom()\n"
		"  --net tap=NAME|tap-fd=N[,mac=MAC][,queues=N][,poll=US]\n"
		"                        virtio-net (PCI) on a tap: NAME is created (or an\n"
		"                        existing tap attached; needs CAP_NET_ADMIN), or N is\n"
		"                        an open tap descriptor with IFF_VNET_HDR. mac:\n"
		"                        xx:xx:xx:xx:xx:xx (default: random, locally\n"
		"                        administered); queues: 1 to 4 queue pairs\n"
		"                        (IFF_MULTI_QUEUE; not with tap-fd); poll: busy-poll\n"
		"                        window (default 0); repeatable (up to 4)\n"
		"  --incoming URI        receive a migrating VM instead of booting: URI is\n"
		"                        tcp:HOST:PORT or unix:PATH; give the same VM options\n"
		"                        as the source (see docs/migration.md)\n"
		"  --restore file:PATH   start from a snapshot written by `migrate file:PATH`\n"
		"  --seccomp on|log|off  seccomp filters per thread role (default on): on ends\n"
		"                        skiff (status 10) naming any refused system call; log\n"
		"                        lets it run and the kernel logs it (audit); off: none\n"
		"  --user USER           run as USER (name or number) once /dev/kvm, the disks,\n"
		"                        the taps and the control socket are open; skiff must\n"
		"                        start as root. The group is USER's own unless --group\n"
		"  --group GROUP         run with group GROUP (supplementary groups dropped)\n"
		"  -h, --help            show this help\n"
		"\n"
		"Console: with --serial stdio on a terminal, the terminal is put in raw mode;\n"
		"type Ctrl-A x to quit skiff, Ctrl-A Ctrl-A to send Ctrl-A to the guest.\n"
		"\n"
		"Exit status: 0 guest powered off (or a skiff test guest reset), or skiff\n"
		"stopped by SIGINT/SIGTERM; 2 bad command line or the VM could not be built;\n"
		"4 the guest faulted (triple fault, emulation failure; registers are dumped\n"
		"on stderr); 6 the guest reset with --no-reboot; 8 --incoming/--restore\n"
		"failed (the guest never ran); 10 a thread made a system call that its\n"
		"seccomp filter refuses; odd values come from\n"
		"--debug-exit. Without --no-reboot a Linux guest's reset reboots it.\n",
		BOOT_CMDLINE_MAX_LEN, CONFIG_MAX_CPUS, CONFIG_MAX_DISKS, CONFIG_DISK_MAX_QUEUES);
}

/* SIZE[,thp=on|off] */
static int parse_memory(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	char size[64];
	const char *comma = strchr(arg, ',');
	uint64_t v;
	int ret;

	if (comma) {
		if (!strcmp(comma + 1, "thp=on")) {
			cfg->thp = true;
		} else if (!strcmp(comma + 1, "thp=off")) {
			cfg->thp = false;
		} else {
			snprintf(err, errlen, "--memory %s: unknown option '%s' (thp=on or thp=off)",
				 arg, comma + 1);
			return -EINVAL;
		}
		if ((size_t)(comma - arg) >= sizeof(size)) {
			snprintf(err, errlen, "--memory %s is not a size (examples: 512M, 4G)", arg);
			return -EINVAL;
		}
		memcpy(size, arg, (size_t)(comma - arg));
		size[comma - arg] = '\0';
		arg = size;
	}
	ret = parse_size(arg, &v);

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

static int parse_incoming(bool restore, const char *arg, struct config *cfg, char *err,
			  size_t errlen)
{
	bool file = !strncmp(arg, "file:", 5);

	if (cfg->incoming) {
		snprintf(err, errlen, "--incoming and --restore may be given once, not both");
		return -EINVAL;
	}
	if (restore ? !file || !arg[5] :
	    file || (strncmp(arg, "tcp:", 4) && strncmp(arg, "unix:", 5))) {
		snprintf(err, errlen, restore ? "--restore %s: expected file:PATH" :
			 "--incoming %s: expected tcp:HOST:PORT or unix:PATH (use --restore "
			 "for file:)", arg);
		return -EINVAL;
	}
	cfg->incoming = arg;
	return 0;
}

static int parse_seccomp(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	if (!strcmp(arg, "on")) {
		cfg->seccomp = SANDBOX_ON;
	} else if (!strcmp(arg, "log")) {
		cfg->seccomp = SANDBOX_LOG;
	} else if (!strcmp(arg, "off")) {
		cfg->seccomp = SANDBOX_OFF;
	} else {
		snprintf(err, errlen, "--seccomp %s: expected on, log or off", arg);
		return -EINVAL;
	}
	return 0;
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
		.seccomp = SANDBOX_ON,
	};
	optind = 0; /* glibc: full re-initialisation, so tests can parse twice */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_KVM_DEVICE: cfg->kvm_path = optarg; break;
		case OPT_NO_REBOOT: cfg->no_reboot = true; break;
		case OPT_API_SOCKET: cfg->api_socket = optarg; break;
		case OPT_DISK: ret = config_parse_disk(optarg, cfg, err, errlen); break;
		case OPT_RNG: cfg->rng = true; break;
		case OPT_NET: ret = config_parse_net(optarg, cfg, err, errlen); break;
		case OPT_INCOMING:
		case OPT_RESTORE:
			ret = parse_incoming(c == OPT_RESTORE, optarg, cfg, err, errlen);
			break;
		case OPT_MEMORY: ret = parse_memory(optarg, cfg, err, errlen); break;
		case OPT_CPUS: ret = parse_cpus(optarg, cfg, err, errlen); break;
		case OPT_SERIAL: ret = parse_serial(optarg, cfg, err, errlen); break;
		case OPT_DEBUG_EXIT: ret = parse_debug_exit(optarg, cfg, err, errlen); break;
		case OPT_SECCOMP: ret = parse_seccomp(optarg, cfg, err, errlen); break;
		case OPT_USER: cfg->user = optarg; break;
		case OPT_GROUP: cfg->group = optarg; break;
		case 'h':
		case OPT_HELP:
			return CONFIG_HELP;
		case ':':
			snprintf(err, errlen, "option %s needs a value", argv[optind - 1]);
			return CONFIG_ERROR;
		default:
			/* For an unknown short option inside a group (-xq) glibc
			 * has not advanced optind yet: name it through optopt.
			 * Long options leave optopt at 0 or at their value. */
			if (optopt > 0 && optopt < 0x100)
				snprintf(err, errlen, "unknown option -%c (see skiff run --help)", optopt);
			else
				snprintf(err, errlen, "unknown option %s (see skiff run --help)",
					 argv[optind - 1]);
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

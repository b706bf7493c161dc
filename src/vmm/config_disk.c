/* `--disk` values -> struct config_disk. No I/O: the builder opens the image. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static bool on_off(const char *v, size_t n, bool *out)
{
	if (n == 2 && !strncmp(v, "on", 2))
		*out = true;
	else if (n == 3 && !strncmp(v, "off", 3))
		*out = false;
	else
		return false;
	return true;
}

/* path=IMG[,readonly=on|off][,serial=ID][,direct=on|off][,queues=N][,poll=US]; a path
 * cannot contain a comma. */
int config_parse_disk(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	struct config_disk d = { .queues = 1, .poll_us = CONFIG_DISK_DEFAULT_POLL_US };
	const char *p = arg;

	if (cfg->nr_disks >= CONFIG_MAX_DISKS) {
		snprintf(err, errlen, "--disk: at most %d disks", CONFIG_MAX_DISKS);
		return -E2BIG;
	}
	while (*p) {
		const char *comma = strchr(p, ','), *eq;
		size_t n = comma ? (size_t)(comma - p) : strlen(p), klen, vlen;
		char num[16];
		uint64_t q;

		eq = memchr(p, '=', n);
		if (!eq)
			goto bad;
		klen = (size_t)(eq - p);
		vlen = n - klen - 1;
		if (klen == 4 && !strncmp(p, "path", 4)) {
			if (vlen == 0 || vlen >= sizeof(d.path))
				goto bad;
			memcpy(d.path, eq + 1, vlen);
			d.path[vlen] = '\0';
		} else if (klen == 8 && !strncmp(p, "readonly", 8)) {
			if (!on_off(eq + 1, vlen, &d.readonly))
				goto bad;
		} else if (klen == 6 && !strncmp(p, "direct", 6)) {
			if (!on_off(eq + 1, vlen, &d.direct))
				goto bad;
		} else if (klen == 6 && !strncmp(p, "serial", 6)) {
			if (vlen > CONFIG_DISK_SERIAL_MAX) {
				snprintf(err, errlen, "--disk %s: serial is longer than %d bytes",
					 arg, CONFIG_DISK_SERIAL_MAX);
				return -EINVAL;
			}
			memcpy(d.serial, eq + 1, vlen);
			d.serial[vlen] = '\0';
		} else if (klen == 4 && !strncmp(p, "poll", 4)) {
			if (vlen == 0 || vlen >= sizeof(num))
				goto bad;
			memcpy(num, eq + 1, vlen);
			num[vlen] = '\0';
			if (parse_uint(num, CONFIG_DISK_MAX_POLL_US, &q)) {
				snprintf(err, errlen, "--disk %s: poll must be 0 to %d (microseconds)", arg,
					 CONFIG_DISK_MAX_POLL_US);
				return -EINVAL;
			}
			d.poll_us = (unsigned int)q;
		} else if (klen == 6 && !strncmp(p, "queues", 6)) {
			if (vlen == 0 || vlen >= sizeof(num))
				goto bad;
			memcpy(num, eq + 1, vlen);
			num[vlen] = '\0';
			if (parse_uint(num, CONFIG_DISK_MAX_QUEUES, &q) || q == 0) {
				snprintf(err, errlen, "--disk %s: queues must be 1 to %d", arg,
					 CONFIG_DISK_MAX_QUEUES);
				return -EINVAL;
			}
			d.queues = (unsigned int)q;
		} else {
			goto bad;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!d.path[0]) {
		snprintf(err, errlen, "--disk %s: path=IMG is required", arg);
		return -EINVAL;
	}
	cfg->disks[cfg->nr_disks++] = d;
	return 0;
bad:
	snprintf(err, errlen, "--disk %s: expected path=IMG[,readonly=on][,serial=ID]"
		 "[,direct=on][,queues=N][,poll=US]", arg);
	return -EINVAL;
}

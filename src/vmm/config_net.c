/* `--net` values -> struct config_net. No I/O: the builder opens the tap. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* xx:xx:xx:xx:xx:xx, unicast (bit 0 of the first byte clear), not zero. */
static bool parse_mac(const char *v, size_t n, uint8_t *mac)
{
	unsigned int i;

	if (n != 17)
		return false;
	for (i = 0; i < 6; i++) {
		int hi = hexval(v[3 * i]), lo = hexval(v[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && v[3 * i + 2] != ':'))
			return false;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	if (mac[0] & 1)
		return false;
	return mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5];
}

static int number(const char *v, size_t n, uint64_t max, uint64_t *out)
{
	char num[16];

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, v, n);
	num[n] = '\0';
	return parse_uint(num, max, out);
}

/* tap=NAME|tap-fd=N[,mac=MAC][,queues=N][,poll=US] */
int config_parse_net(const char *arg, struct config *cfg, char *err, size_t errlen)
{
	struct config_net d = { .tap_fd = -1, .queues = 1 };
	const char *p = arg;
	uint64_t q;

	if (cfg->nr_nets >= CONFIG_MAX_NETS) {
		snprintf(err, errlen, "--net: at most %d network devices", CONFIG_MAX_NETS);
		return -E2BIG;
	}
	while (*p) {
		const char *comma = strchr(p, ','), *eq, *v;
		size_t n = comma ? (size_t)(comma - p) : strlen(p), klen, vlen;

		eq = memchr(p, '=', n);
		if (!eq)
			goto bad;
		klen = (size_t)(eq - p);
		v = eq + 1;
		vlen = n - klen - 1;
		if (klen == 3 && !strncmp(p, "tap", 3)) {
			if (vlen == 0 || vlen >= sizeof(d.tap) || memchr(v, '/', vlen)) {
				snprintf(err, errlen, "--net %s: tap must be an interface name of 1 to %zu "
					 "characters", arg, sizeof(d.tap) - 1);
				return -EINVAL;
			}
			memcpy(d.tap, v, vlen);
			d.tap[vlen] = '\0';
		} else if (klen == 6 && !strncmp(p, "tap-fd", 6)) {
			if (number(v, vlen, 1 << 30, &q))
				goto bad;
			d.tap_fd = (int)q;
		} else if (klen == 3 && !strncmp(p, "mac", 3)) {
			if (!parse_mac(v, vlen, d.mac)) {
				snprintf(err, errlen, "--net %s: mac must be a unicast xx:xx:xx:xx:xx:xx",
					 arg);
				return -EINVAL;
			}
		} else if (klen == 6 && !strncmp(p, "queues", 6)) {
			if (number(v, vlen, CONFIG_NET_MAX_QUEUES, &q) || q == 0) {
				snprintf(err, errlen, "--net %s: queues must be 1 to %d", arg,
					 CONFIG_NET_MAX_QUEUES);
				return -EINVAL;
			}
			d.queues = (unsigned int)q;
		} else if (klen == 4 && !strncmp(p, "poll", 4)) {
			if (number(v, vlen, CONFIG_NET_MAX_POLL_US, &q)) {
				snprintf(err, errlen, "--net %s: poll must be 0 to %d (microseconds)", arg,
					 CONFIG_NET_MAX_POLL_US);
				return -EINVAL;
			}
			d.poll_us = (unsigned int)q;
		} else {
			goto bad;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	if (!d.tap[0] == (d.tap_fd < 0)) {
		snprintf(err, errlen, "--net %s: give exactly one of tap=NAME and tap-fd=N", arg);
		return -EINVAL;
	}
	if (d.tap_fd >= 0 && d.queues != 1) {
		snprintf(err, errlen, "--net %s: tap-fd=N gives one queue pair", arg);
		return -EINVAL;
	}
	cfg->nets[cfg->nr_nets++] = d;
	return 0;
bad:
	snprintf(err, errlen, "--net %s: expected tap=NAME|tap-fd=N[,mac=MAC][,queues=N]"
		 "[,poll=US]", arg);
	return -EINVAL;
}

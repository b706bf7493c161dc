/* Logging to stderr: one write(2) per line so lines from threads never mix. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* Process-wide verbosity: the one piece of state that is not per VM, because
 * stderr itself is process-wide. Set once by main before threads start. */
static enum log_level max_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	max_level = level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	char line[1024];
	int n, m;

	if (level > max_level)
		return;
	n = snprintf(line, sizeof(line), "skiff: %s", prefix[level]);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += MIN(m, (int)(sizeof(line) - (size_t)n - 2));
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	uint64_t now = now_ns();
	uint64_t start = __atomic_load_n(&rl->window_start_ns, __ATOMIC_RELAXED);
	uint32_t suppressed;
	va_list ap;

	if (now - start >= 1000000000ULL &&
	    __atomic_compare_exchange_n(&rl->window_start_ns, &start, now, false,
					__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		__atomic_store_n(&rl->count, 0, __ATOMIC_RELAXED);
	if (__atomic_fetch_add(&rl->count, 1, __ATOMIC_RELAXED) >= rl->burst) {
		__atomic_fetch_add(&rl->suppressed, 1, __ATOMIC_RELAXED);
		return;
	}
	suppressed = __atomic_exchange_n(&rl->suppressed, 0, __ATOMIC_RELAXED);
	if (suppressed)
		log_msg(level, "(%u similar messages suppressed)", suppressed);
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

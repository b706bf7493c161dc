/* Logging to stderr. Safe from any thread (one write(2) per line). */
#ifndef SKIFF_LOG_H
#define SKIFF_LOG_H

#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * Rate limit for messages a guest can trigger at will: at most `burst`
 * messages per second; the number suppressed is reported with the next one.
 * Lives inside the device that logs; all fields are atomic so any thread may use it.
 */
struct log_ratelimit {
	uint64_t window_start_ns;
	uint32_t count;
	uint32_t suppressed;
	uint32_t burst;
};

#define LOG_RATELIMIT_INIT(b) { 0, 0, 0, (b) }

void log_limited(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif

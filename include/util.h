/* Small helpers shared by every part of skiff. */
#ifndef SKIFF_UTIL_H
#define SKIFF_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MUST_CHECK __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define KiB (1024ULL)
#define MiB (1024ULL * KiB)
#define GiB (1024ULL * MiB)
#define TiB (1024ULL * GiB)

/*
 * Parses a size such as "512M", "4G", "65536", "1.5G" is refused (integers
 * only). Suffixes K, M, G, T (powers of 1024, optional trailing "iB" or "B").
 * A bare number is bytes. Returns 0, -EINVAL for a malformed string or
 * -ERANGE when the value does not fit in 64 bits.
 */
int MUST_CHECK parse_size(const char *s, uint64_t *out);

/* Parses an unsigned integer (decimal, or hex with 0x) into *out; -EINVAL/-ERANGE. */
int MUST_CHECK parse_uint(const char *s, uint64_t max, uint64_t *out);

/* Reads a whole file (up to max_len bytes) into a malloc'd buffer. */
int MUST_CHECK read_file(const char *path, size_t max_len, uint8_t **buf, size_t *len);

/* Maps a regular file read-only; *len may be 0 (then *buf is NULL).
 * -EISDIR/-EINVAL for non-regular files, -EFBIG above max_len. */
int MUST_CHECK map_file(const char *path, size_t max_len, const uint8_t **buf, size_t *len);
void unmap_file(const uint8_t *buf, size_t len);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

#endif

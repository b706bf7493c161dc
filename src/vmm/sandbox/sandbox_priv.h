/* The allow-lists of the seccomp filters, one file per thread role. */
#ifndef SKIFF_SANDBOX_PRIV_H
#define SKIFF_SANDBOX_PRIV_H

#include <stddef.h>
#include <sys/syscall.h>

/* One allowed system call; for ioctl, one allowed request number (ioctl is
 * never allowed with any request). */
struct sandbox_rule {
	int nr;              /* __NR_* */
	unsigned long ioctl; /* nr == __NR_ioctl: the request */
};

#define SB_SYS(name) { .nr = __NR_##name, .ioctl = 0 }
#define SB_IOCTL(req) { .nr = __NR_ioctl, .ioctl = (unsigned long)(req) }

struct sandbox_list {
	const struct sandbox_rule *rules;
	size_t n;
};

#define SB_LIST(arr) { .rules = (arr), .n = sizeof(arr) / sizeof((arr)[0]) }

extern const struct sandbox_list sandbox_common_list; /* every role (common.c) */
extern const struct sandbox_list sandbox_vcpu_list;
extern const struct sandbox_list sandbox_io_list;
extern const struct sandbox_list sandbox_migration_list;
extern const struct sandbox_list sandbox_main_list;

/* Generated from asm/unistd_64.h (gen_syscall_names.py). */
#define SANDBOX_SYSCALL_NAMES 1024
extern const char *const sandbox_syscall_names[SANDBOX_SYSCALL_NAMES];

#endif

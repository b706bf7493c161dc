/* Allowed to every thread role: what the C library and skiff's own exit
 * paths need on any thread. Nothing here opens, creates or sends. */
#include <sys/ioctl.h>

#include "sandbox_priv.h"

static const struct sandbox_rule rules[] = {
	/* malloc, thread stacks, free */
	SB_SYS(mmap), SB_SYS(munmap), SB_SYS(mprotect), SB_SYS(madvise), SB_SYS(brk),
	SB_SYS(mremap),
	/* locks, condition variables, sleeps, time (vDSO fallbacks) */
	SB_SYS(futex), SB_SYS(nanosleep), SB_SYS(clock_nanosleep), SB_SYS(clock_gettime),
	SB_SYS(sched_yield), SB_SYS(gettid), SB_SYS(getpid),
	/* signals: the kick, signal returns, pthread_sigmask */
	SB_SYS(rt_sigreturn), SB_SYS(rt_sigprocmask), SB_SYS(restart_syscall),
	/* log lines on stderr; the fatal-signal paths restore the terminal
	 * (tcsetattr) and end the thread or process; abort() raises */
	SB_SYS(write), SB_SYS(writev),
	SB_IOCTL(TCSETS), SB_IOCTL(TCSETSW), SB_IOCTL(TCSETSF),
	SB_SYS(tgkill), SB_SYS(rt_sigaction), SB_SYS(exit), SB_SYS(exit_group),
#ifdef SKIFF_SANITIZE
	/* -Dsanitize=true only: ASan's per-thread signal stacks and its
	 * queries of the CPU set (found with --seccomp log) */
	SB_SYS(sigaltstack), SB_SYS(sched_getaffinity),
#endif
};

const struct sandbox_list sandbox_common_list = SB_LIST(rules);

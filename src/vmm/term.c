/* Host terminal raw mode for the serial console. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "term.h"

/* Process-wide, like the terminal it describes: saved once, restored from
 * main's exit path and from atexit. Main thread only. */
static struct termios saved;
static bool is_raw;

void term_restore(void)
{
	if (!is_raw)
		return;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	is_raw = false;
}

void term_restore_from_signal(void)
{
	/* tcsetattr() is async-signal-safe; `saved` is set before is_raw. */
	if (is_raw)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
}

/* Fatal signals restore the terminal, then take their default action. */
static void fatal_signal(int sig)
{
	term_restore_from_signal();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_fatal_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGHUP, SIGQUIT };
	struct sigaction sa;
	unsigned int i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal_signal;
	sa.sa_flags = SA_RESETHAND;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

bool term_raw_enter(void)
{
	struct termios raw;

	if (is_raw || !isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved) < 0)
		return false;
	raw = saved;
	/* Raw input so keys reach the guest as typed, but keep output
	 * post-processing so the guest's "\n" still returns the carriage. */
	raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) < 0)
		return false;
	is_raw = true;
	atexit(term_restore);
	catch_fatal_signals();
	return true;
}

/* The host terminal: raw mode for stdin while a guest console is attached,
 * restored on every exit path (normal return, error, fatal signal). */
#ifndef SKIFF_TERM_H
#define SKIFF_TERM_H

#include <stdbool.h>

/* Puts stdin in raw mode if it is a tty. Returns true if it changed it. */
bool term_raw_enter(void);
void term_restore(void);
/* The same, from a signal handler on any thread (async-signal-safe). */
void term_restore_from_signal(void);

#endif

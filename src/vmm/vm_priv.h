/*
 * Internal interface between the builder/run loop (vm.c) and the main
 * thread's event handlers (vm_events.c). Main thread only.
 */
#ifndef SKIFF_VM_PRIV_H
#define SKIFF_VM_PRIV_H

#include "vm.h"

/* Event loop with signalfd (SIGINT/SIGTERM), the run state's eventfd and,
 * with --serial stdio, console input from stdin. */
int MUST_CHECK vm_events_setup(struct vm *vm, char *err, size_t errlen);
/* Stops watching stdin. */
void vm_stdin_close(struct vm *vm);
/* After the guest drained its receive FIFO, watches stdin again. */
void vm_stdin_retry(struct vm *vm);

#endif

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

/* Device steps of the builder (vm_devices.c), main thread. */
/* Serial port, debug-exit, i8042, ACPI event device on the buses. */
int MUST_CHECK vm_platform_create(struct vm *vm, char *err, size_t errlen);
/* PCI host and virtio devices (disks, rng, nets), when any is configured. */
int MUST_CHECK vm_pci_create(struct vm *vm, char *err, size_t errlen);
/* Starts every virtio device's I/O thread (after --user, see vm_create). */
int MUST_CHECK vm_virtio_start(struct vm *vm, char *err, size_t errlen);
/* Every virtio device in PCI order (disks, rng, nets). */
void vm_each_virtio(struct vm *vm, void (*fn)(struct virtio_dev *d));
/* Guest reboot (vCPU threads joined): virtio devices and PCI to power-on. */
void vm_pci_reset(struct vm *vm);
/* Reverse of vm_pci_create; vCPU threads gone. */
void vm_pci_destroy(struct vm *vm);

#endif

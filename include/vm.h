/*
 * The VM and its builder (frame): creates memory, irqchip, buses, devices and
 * vCPUs from a config in one visible order, runs it, and tears it down.
 */
#ifndef SKIFF_VM_H
#define SKIFF_VM_H

#include <stddef.h>

#include "acpi_ged.h"
#include "boot.h"
#include "bus.h"
#include "config.h"
#include "control.h"
#include "devices.h"
#include "event.h"
#include "kvm_host.h"
#include "loader.h"
#include "mem.h"
#include "migration.h"
#include "pci.h"
#include "runstate.h"
#include "vcpu.h"
#include "virtio.h"

/* KVM_GET_SUPPORTED_CPUID, fetched on a helper thread during the build. */
/* Set-up work done on a short-lived thread while the builder goes on
 * (vm.c: start_prefetch/finish_prefetch). */
struct prefetch {
	pthread_t thread;
	bool started;
	int kvm_fd;
	int ret;                      /* KVM_GET_SUPPORTED_CPUID */
	struct kvm_cpuid2 *cpuid;
	enum sandbox_mode mode;       /* --seccomp */
	int sb_ret;                   /* sandbox_create */
	struct sandbox *sandbox;
	char sb_err[256];
};

struct vm {
	const struct config *cfg;
	struct kvm_host kvm;
	int vm_fd;
	struct guest_mem *mem;
	struct bus *pio;
	struct bus *mmio;
	struct runstate rs;
	struct event_loop *loop;
	int signal_fd;
	int serial_out_fd;        /* owned when serial=file */
	bool serial_out_owned;
	struct serial *serial;
	struct debug_exit *debug_exit;
	struct i8042 *i8042;
	struct acpi_ged *ged;     /* ACPI sleep/reset registers, power button */
	struct boot_image boot;   /* boot protocol of the loaded kernel */
	struct kvm_irqchip chip0[3];     /* irqchip at power-on, for reset */
	struct kvm_pit_state2 pit0;
	struct pci_host *pci;     /* NULL without PCI devices */
	struct virtio_dev *disks[CONFIG_MAX_DISKS];
	unsigned int nr_disks;
	struct virtio_dev *rng;
	struct virtio_dev *nets[CONFIG_MAX_NETS];
	unsigned int nr_nets;
	struct kernel_info kernel;
	struct prefetch prefetch;
	struct vcpu_ctx vcpu_ctx;
	struct vcpu **vcpus;
	unsigned int nr_vcpus;
	bool stdin_open;          /* stdin is in the event loop */
	bool stdin_paused;        /* guest FIFO full: stdin taken out of the loop */
	bool term_raw;            /* stdin is a terminal in raw mode */
	bool escape;              /* Ctrl-A seen: next byte is a console command */
	bool paused;              /* all vCPUs parked by vm_pause() */
	struct control *control;  /* control socket server (always exists) */
	struct migration *migration; /* outgoing/incoming migration driver */
	struct sandbox *sandbox;     /* seccomp filters per thread role, NULL: off */
	bool incoming_started;    /* --incoming/--restore handed to the driver */
};

/* Main thread, while vm_run's vCPU threads exist: parks every vCPU outside
 * KVM_RUN (returns once all are parked; -ESHUTDOWN if the VM is exiting),
 * and lets them run again. Idempotent. */
int MUST_CHECK vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);
/* vm_pause in two halves. Main thread: asks every vCPU to park and kicks
 * it, and counts the VM as paused (vm->paused) without waiting. Any
 * thread, after that: waits until all are parked; false if the VM is
 * exiting (then the main thread's vm_resume undoes the request). */
void vm_pause_begin(struct vm *vm);
bool vm_pause_wait(struct vm *vm);
/* Quiesce every virtio device (in-flight requests complete first) and let
 * them run again. For migration: its thread calls them with the vCPUs
 * parked and the main thread kept from `stop`/`cont` by the status. */
void vm_devices_pause(struct vm *vm);
void vm_devices_resume(struct vm *vm);

/* Main thread: press the ACPI power button (-ENOTSUP without ACPI), and
 * reset the machine. */
int MUST_CHECK vm_request_powerdown(struct vm *vm);
int MUST_CHECK vm_request_reset(struct vm *vm);

/* Builds the VM. On failure err holds one line and the return is -errno. */
int MUST_CHECK vm_create(const struct config *cfg, struct vm **out, char *err, size_t errlen);
/* Runs until the guest or a signal ends it; returns the process exit status. */
int vm_run(struct vm *vm);
void vm_destroy(struct vm *vm);
/* Before vm_destroy at process exit: hands the kernel's VM teardown to a
 * short-lived child so the exit is not delayed by it. Main thread, after
 * vm_run (no other threads left). */
void vm_teardown_async(struct vm *vm);

#endif

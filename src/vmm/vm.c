/*
 * The builder: one function that creates the VM top to bottom in a visible
 * order (KVM, memory, irqchip, buses, devices, kernel, vCPUs, event loop),
 * the main thread's run loop, and the teardown in reverse order.
 *
 * Thread context: everything here runs on the main thread. vCPU threads are
 * started by vm_run() and joined before it returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "acpi.h"
#include "platform.h"
#include "log.h"
#include "sandbox.h"
#include "term.h"
#include "vm.h"
#include "vm_priv.h"

/* The demo guest, linked in from tests/guests by demo_blob.S. */
extern const uint8_t skiff_demo_elf[];
extern const uint8_t skiff_demo_elf_end[];

/* KVM's real-mode helpers live in the top of the 32-bit hole, below the
 * BIOS area, where no device or RAM will ever be placed. */
#define KVM_IDENTITY_MAP_GPA 0xfeffc000ULL
#define KVM_TSS_GPA 0xfeffd000ULL
#define KERNEL_MAX_BYTES (1ULL << 30)

/* --- builder steps -------------------------------------------------------- */

static int create_kvm_vm(struct vm *vm, char *err, size_t errlen)
{
	uint64_t ident = KVM_IDENTITY_MAP_GPA;

	const char *step;
	int e;

	step = "KVM_CREATE_VM";
	vm->vm_fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0UL);
	if (vm->vm_fd < 0)
		goto fail;
	step = "KVM_SET_IDENTITY_MAP_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident) < 0)
		goto fail;
	step = "KVM_SET_TSS_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0)
		goto fail;
	return 0;
fail:
	e = errno;
	snprintf(err, errlen, "%s failed: %s", step, strerror(e));
	return -e;
}

/* In-kernel PIC, IOAPIC and LAPICs; the PIT needs the irqchip first. Called
 * after the RAM slots exist: registering a slot once the irqchip is there
 * costs an expedited SRCU grace period (0.25 ms before, 5-7 ms after, measured). */
static int create_irqchip(struct vm *vm, char *err, size_t errlen)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	const char *step;
	int e;

	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	step = "KVM_CREATE_PIT2";
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		goto fail;
	/* Their power-on state, for a guest reset (vm_reboot). */
	step = "KVM_GET_IRQCHIP";
	for (unsigned int i = 0; i < ARRAY_SIZE(vm->chip0); i++) {
		vm->chip0[i].chip_id = i; /* PIC master, PIC slave, IOAPIC */
		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &vm->chip0[i]) < 0)
			goto fail;
	}
	step = "KVM_GET_PIT2";
	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &vm->pit0) < 0)
		goto fail;
	return 0;
fail:
	e = errno;
	snprintf(err, errlen, "%s failed: %s", step, strerror(e));
	return -e;
}

static int create_memory(struct vm *vm, char *err, size_t errlen)
{
	unsigned int i;
	int ret;

	ret = mem_create_flags(vm->cfg->memory, vm->cfg->thp ? MEM_F_THP : 0, &vm->mem);
	if (ret) {
		snprintf(err, errlen, "cannot allocate %llu MiB of guest RAM: %s",
			 (unsigned long long)(vm->cfg->memory / MiB), strerror(-ret));
		return ret;
	}
	for (i = 0; i < vm->mem->nr_regions; i++) {
		const struct mem_region *r = &vm->mem->regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->mem->host + r->offset),
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			ret = -errno;
			snprintf(err, errlen, "KVM refused guest RAM at 0x%llx (%llu MiB): %s%s",
				 (unsigned long long)r->gpa, (unsigned long long)(r->size / MiB),
				 strerror(errno), errno == EINVAL || errno == E2BIG ?
				 " (is --memory beyond this host's physical address width?)" : "");
			return ret;
		}
	}
	return 0;
}


static int load_kernel(struct vm *vm, char *err, size_t errlen)
{
	const struct config *cfg = vm->cfg;
	const uint8_t *img = skiff_demo_elf, *rd = NULL;
	size_t len = (size_t)(skiff_demo_elf_end - skiff_demo_elf), rdlen = 0;
	uint64_t rd_gpa = 0, rsdp = 0;
	char why[256];
	int ret;

	if (cfg->kernel) {
		ret = map_file(cfg->kernel, KERNEL_MAX_BYTES, &img, &len);
		if (ret) {
			snprintf(err, errlen, "--kernel %s: %s", cfg->kernel,
				 ret == -EFBIG ? "larger than 1 GiB" : strerror(-ret));
			return ret;
		}
	}
	ret = boot_load_kernel(vm->mem, img, len, &vm->kernel, &vm->boot, why, sizeof(why));
	if (ret) {
		snprintf(err, errlen, "%s: %s", cfg->kernel ? cfg->kernel : "demo guest", why);
		goto out;
	}
	if (cfg->initrd) {
		ret = map_file(cfg->initrd, vm->mem->size, &rd, &rdlen);
		if (ret == -EFBIG) {
			snprintf(err, errlen, "--initrd %s is larger than guest RAM (%llu MiB)",
				 cfg->initrd, (unsigned long long)(vm->mem->size / MiB));
			goto out;
		} else if (ret) {
			snprintf(err, errlen, "--initrd %s: %s", cfg->initrd, strerror(-ret));
			goto out;
		}
		ret = boot_place_initrd(vm->mem, &vm->kernel, &vm->boot, rd, rdlen, &rd_gpa,
					why, sizeof(why));
		unmap_file(rd, rdlen);
		if (ret) {
			snprintf(err, errlen, "--initrd %s: %s", cfg->initrd, why);
			goto out;
		}
	}
	ret = acpi_build(vm->mem, vm->cfg->cpus, &rsdp);
	if (ret) {
		snprintf(err, errlen, "cannot write the ACPI tables: %s", strerror(-ret));
		goto out;
	}
	ret = boot_setup(vm->mem, &vm->boot, cfg->cmdline, rd_gpa, rdlen, rsdp, why, sizeof(why));
	if (ret)
		snprintf(err, errlen, "%s", why);
out:
	if (cfg->kernel)
		unmap_file(img, len);
	return ret;
}

/*
 * KVM_GET_SUPPORTED_CPUID needs only /dev/kvm and costs 0.35-0.45 ms here (it
 * runs CPUID on the host for every leaf), and compiling the seccomp filters
 * 0.75 ms, so a short-lived thread does both while the main thread builds
 * memory, irqchip, devices and loads the kernel; create_vcpus() joins it
 * (nothing before needs either). The thread touches only its own struct
 * prefetch (sandbox_create also installs the process-wide SIGSYS handler).
 */
static void *prefetch_thread(void *arg)
{
	struct prefetch *f = arg;

	f->ret = vcpu_cpuid_create(f->kvm_fd, &f->cpuid);
	f->sb_ret = sandbox_create(f->mode, &f->sandbox, f->sb_err, sizeof(f->sb_err));
	return NULL;
}

static int start_prefetch(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	vm->prefetch.kvm_fd = vm->kvm.fd;
	vm->prefetch.mode = vm->cfg->seccomp;
	ret = pthread_create(&vm->prefetch.thread, NULL, prefetch_thread, &vm->prefetch);
	if (ret) {
		snprintf(err, errlen, "cannot start a thread: %s", strerror(ret));
		return -ret;
	}
	vm->prefetch.started = true;
	return 0;
}

/* Joins the prefetch thread and takes its results (the sandbox too, so
 * vm_destroy frees it). Returns the CPUID fetch's result. */
static int finish_prefetch(struct vm *vm)
{
	if (!vm->prefetch.started)
		return -EINVAL;
	pthread_join(vm->prefetch.thread, NULL);
	vm->prefetch.started = false;
	vm->vcpu_ctx.cpuid = vm->prefetch.cpuid;
	vm->prefetch.cpuid = NULL;
	vm->sandbox = vm->prefetch.sandbox;
	vm->prefetch.sandbox = NULL;
	return vm->prefetch.ret;
}

/* Where and how the vCPUs start, for the loaded kernel's protocol. */
static void vm_boot_state(const struct vm *vm, struct vcpu_boot *boot)
{
	bool linux64 = vm->boot.proto == BOOT_PROTO_LINUX64;

	*boot = (struct vcpu_boot){
		.all_at_entry = vm->kernel.skiff_guest &&
				(vm->kernel.skiff_flags & SKIFF_NOTE_F_ALL_CPUS_AT_ENTRY),
		.linux64 = linux64,
		.entry = vm->kernel.entry,
		.start_info = linux64 ? BOOT_ZERO_PAGE_GPA : BOOT_START_INFO_GPA,
		.cr3 = BOOT_PML4_GPA,
		.gdt = BOOT_GDT_GPA,
	};
}

static int create_vcpus(struct vm *vm, char *err, size_t errlen)
{
	struct vcpu_boot boot;
	unsigned int i;
	int ret;

	vm_boot_state(vm, &boot);
	if (vm->cfg->cpus > (unsigned int)vm->kvm.max_vcpus) {
		snprintf(err, errlen, "--cpus %u is more than this host's KVM allows (%d)",
			 vm->cfg->cpus, vm->kvm.max_vcpus);
		return -EINVAL;
	}
	ret = finish_prefetch(vm);
	if (ret) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-ret));
		return ret;
	}
	if (vm->prefetch.sb_ret) {
		snprintf(err, errlen, "%s", vm->prefetch.sb_err);
		return vm->prefetch.sb_ret;
	}
	vm->vcpu_ctx = (struct vcpu_ctx){
		.vm_fd = vm->vm_fd, .kvm_fd = vm->kvm.fd, .run_size = vm->kvm.vcpu_mmap_size,
		.pio = vm->pio, .mmio = vm->mmio, .rs = &vm->rs,
		.cpuid = vm->vcpu_ctx.cpuid, .nr_cpus = vm->cfg->cpus,
		.sandbox = vm->sandbox,
		.xsave_size = ioctl(vm->kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2),
		.sregs2 = ioctl(vm->kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_SREGS2) > 0 ? 1 : -1,
		.sync_regs = ioctl(vm->kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS),
	};
	if (vm->vcpu_ctx.sync_regs < 0)
		vm->vcpu_ctx.sync_regs = 0;
	if (vm->vcpu_ctx.xsave_size < (int)sizeof(struct kvm_xsave))
		vm->vcpu_ctx.xsave_size = sizeof(struct kvm_xsave);
	vm->vcpus = calloc(vm->cfg->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	for (i = 0; i < vm->cfg->cpus; i++) {
		ret = vcpu_create(&vm->vcpu_ctx, i, &boot, &vm->vcpus[i]);
		if (ret) {
			snprintf(err, errlen, "cannot create vCPU %u: %s", i, strerror(-ret));
			return ret;
		}
		vm->nr_vcpus++;
	}
	return 0;
}

/* --- create / run / destroy ---------------------------------------------- */

int vm_create(const struct config *cfg, struct vm **out, char *err, size_t errlen)
{
	struct vm *vm;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vm->cfg = cfg;
	vm->vm_fd = -1;
	vm->signal_fd = -1;
	vm->serial_out_fd = -1;
	vm->kvm.fd = -1;
	ret = runstate_init(&vm->rs);
	if (ret) {
		snprintf(err, errlen, "eventfd: %s", strerror(-ret));
		goto fail;
	}

	/* Early: a live --api-socket is refused before any KVM work, and the
	 * stats registry exists before the devices. */
	ret = control_create(vm, cfg->api_socket, &vm->control, err, errlen);
	if (ret)
		goto fail;
	ret = kvm_host_open(cfg->kvm_path, &vm->kvm, err, errlen);
	if (ret)
		goto fail;
	/* CPUID and the seccomp filters (installed by each thread as it
	 * starts, this one at the end of set-up), on another thread. */
	ret = start_prefetch(vm, err, errlen);
	if (ret)
		goto fail;
	ret = create_kvm_vm(vm, err, errlen);
	if (ret)
		goto fail;
	ret = create_memory(vm, err, errlen);
	if (ret)
		goto fail;
	ret = create_irqchip(vm, err, errlen);
	if (ret)
		goto fail;
	ret = bus_create("pio", &vm->pio);
	if (!ret)
		ret = bus_create("mmio", &vm->mmio);
	if (ret) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	ret = vm_platform_create(vm, err, errlen);
	if (ret)
		goto fail;
	ret = vm_pci_create(vm, err, errlen);
	if (ret)
		goto fail;
	/* Port 0xCF9 (reset control) shares the PCI host's CONFIG_ADDRESS
	 * dword when there is one. */
	if (vm->pci) {
		pci_host_set_cf9(vm->pci, acpi_ged_cf9_write, vm->ged);
	} else if (acpi_ged_claim_cf9(vm->ged)) {
		snprintf(err, errlen, "cannot register the reset control port 0xCF9");
		ret = -EEXIST;
		goto fail;
	}
	/* An incoming VM gets its RAM (kernel, tables and all) from the
	 * stream; RAM stays empty until then, which the loader relies on. */
	ret = cfg->incoming ? 0 : load_kernel(vm, err, errlen);
	if (ret)
		goto fail;
	if (vm->kvm.backend == KVM_BACKEND_PVM && vm->boot.is_linux) {
		snprintf(err, errlen, "this host's KVM is PVM: it emulates guest ring 0 and cannot run "
			 "unmodified kernels such as %s (it would hang); run Linux guests on a VMX or "
			 "SVM host (see docs/linux-boot.md)", cfg->kernel);
		ret = -ENOTSUP;
		goto fail;
	}
	if (vm->kvm.backend == KVM_BACKEND_PVM && !vm->kernel.skiff_guest && !cfg->incoming)
		log_warn("this host's KVM is PVM: it emulates guest ring 0 and cannot run "
			 "unmodified kernels; only skiff test guests run here");
	ret = create_vcpus(vm, err, errlen);
	if (ret)
		goto fail;
	ret = vm_events_setup(vm, err, errlen);
	if (ret)
		goto fail;
	ret = migration_create(vm, &vm->migration);
	if (!ret)
		ret = migration_attach(vm->migration, vm->loop);
	if (ret) {
		snprintf(err, errlen, "cannot set up migration: %s", strerror(-ret));
		goto fail;
	}
	ret = control_start(vm->control, vm->loop);
	if (ret) {
		snprintf(err, errlen, "cannot serve the control socket: %s", strerror(-ret));
		goto fail;
	}
	/* Every privileged open is behind us and no other thread runs. */
	ret = sandbox_drop_privileges(cfg->user, cfg->group, cfg->api_socket, err, errlen);
	if (ret)
		goto fail;
	ret = vm_virtio_start(vm, err, errlen);
	if (ret)
		goto fail;
	/* Set-up is over: from here the main thread only runs its loop,
	 * resets, threads and the exit path (src/vmm/sandbox/main.c). */
	ret = sandbox_enter(vm->sandbox, SANDBOX_MAIN);
	if (ret) {
		snprintf(err, errlen, "cannot install the main thread's seccomp filter: %s",
			 strerror(-ret));
		goto fail;
	}
	*out = vm;
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return -EINTR */
}

/*
 * A guest reset, with every vCPU thread joined: reload the kernel, initrd,
 * boot information and ACPI tables (RAM keeps its other contents, as on a
 * real warm reset), put each vCPU back into its power-on state (APs wait for
 * INIT/SIPI, which resets their registers in KVM) and re-arm the run state.
 */
static int vm_reboot(struct vm *vm)
{
	struct vcpu_boot boot;
	char err[256];
	unsigned int i;
	int ret;

	vm_pci_reset(vm);
	/* The old kernel's IOAPIC routes (and PIC/PIT state) would deliver
	 * stale vectors into the new kernel's early boot. */
	for (i = 0; i < ARRAY_SIZE(vm->chip0); i++) {
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &vm->chip0[i]) < 0)
			log_warn("reset: KVM_SET_IRQCHIP %u: %s", i, strerror(errno));
	}
	if (ioctl(vm->vm_fd, KVM_SET_PIT2, &vm->pit0) < 0)
		log_warn("reset: KVM_SET_PIT2: %s", strerror(errno));
	serial_reset(vm->serial);
	/* A reset is a cold boot for the guest: RAM reads as zero again, so
	 * nothing of the old kernel (page tables, pvclock pages, boot data)
	 * can be mistaken for the new one's. After reset_pci: no device DMA. */
	ret = mem_reset(vm->mem);
	if (ret) {
		log_err("reset: cannot clear guest RAM: %s", strerror(-ret));
		vm->rs.exit_status = SKIFF_EXIT_SETUP;
		return ret;
	}
	ret = load_kernel(vm, err, sizeof(err));
	if (ret) {
		log_err("reset: %s", err);
		vm->rs.exit_status = SKIFF_EXIT_SETUP;
		return ret;
	}
	vm_boot_state(vm, &boot);
	for (i = 0; i < vm->nr_vcpus; i++) {
		ret = vcpu_reset_state(vm->vcpus[i], &boot);
		if (ret) {
			log_err("reset: vCPU %u: %s", i, strerror(-ret));
			vm->rs.exit_status = SKIFF_EXIT_SETUP;
			return ret;
		}
	}
	log_info("%s: rebooting", vm->rs.reason);
	runstate_rearm(&vm->rs);
	return 0;
}

int vm_run(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	unsigned int i;
	int ret;

	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
	if (vm->cfg->serial == SERIAL_STDIO)
		vm->term_raw = term_raw_enter();
	if (vm->cfg->incoming && !vm->incoming_started) {
		char err[300];

		/* The vCPUs start parked and stay so until the stream is in. */
		vm->incoming_started = true;
		runstate_pause_begin(&vm->rs);
		vm->paused = true;
		if (migration_incoming(vm->migration, vm->cfg->incoming, err, sizeof(err))) {
			log_err("incoming migration failed: %s", err);
			runstate_request_exit(&vm->rs, SKIFF_EXIT_MIGRATION, "incoming migration failed");
		}
	}
again:
	for (i = 0; i < vm->nr_vcpus; i++) {
		ret = vcpu_start(vm->vcpus[i]);
		if (ret) {
			runstate_request_exit(&vm->rs, SKIFF_EXIT_SETUP, "cannot start a vCPU thread");
			log_err("cannot start vCPU %u: %s", i, strerror(-ret));
			break;
		}
	}
	while (!runstate_exiting(&vm->rs)) {
		vm_stdin_retry(vm);
		ret = event_loop_run_once(vm->loop, vm->stdin_paused ? 20 : -1);
		if (ret) {
			log_err("event loop: %s", strerror(-ret));
			runstate_request_exit(&vm->rs, SKIFF_EXIT_SETUP, "event loop failed");
		}
	}
	migration_vm_stopping(vm->migration);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
	for (i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(vm->vcpus[i]);
	if (vm->rs.exit_status == SKIFF_EXIT_RESET &&
	    atomic_load_explicit(&vm->rs.stop_requested, memory_order_acquire)) {
		/* SIGINT/SIGTERM came with (or after) a guest reset: end, as
		 * the signal asks, rather than boot the guest again. */
		vm->rs.exit_status = SKIFF_EXIT_OK;
		snprintf(vm->rs.reason, sizeof(vm->rs.reason), "terminating on signal");
	} else if (vm->rs.exit_status == SKIFF_EXIT_RESET && !vm->cfg->no_reboot) {
		/* skiff test guests end with a reset (the demo does): that is
		 * their power-off. Other guests boot again. */
		if (vm->kernel.skiff_guest) {
			vm->rs.exit_status = SKIFF_EXIT_OK;
		} else {
			control_vm_reset(vm->control); /* before the re-arm clears the reason */
			if (vm_reboot(vm) == 0)
				goto again;
		}
	}
	control_vm_ending(vm->control);
	term_restore();
	if ((vm->rs.exit_status == SKIFF_EXIT_OK || vm->rs.exit_status == SKIFF_EXIT_RESET) &&
	    vm->rs.reason[0])
		log_info("%s", vm->rs.reason);
	return vm->rs.exit_status;
}

/*
 * Destroying a VM with an in-kernel irqchip costs the host kernel several
 * expedited SRCU grace periods (15-30 ms measured here), all paid in the
 * close() of the last VM fd. At process exit, skiff lets a child process hold
 * the last references and pay that cost after skiff has exited (QEMU's
 * async-teardown does the same). The child owns nothing else: it closes stdio
 * at once so no pipe reader waits for it, and every other descriptor but the
 * VM's, so that a tap, a disk or the control socket is free for the next
 * skiff at once (a tap still attached here would make the next TUNSETIFF fail with
 * EBUSY); it touches no shared state.
 */
void vm_teardown_async(struct vm *vm)
{
	pid_t pid;
	int null;

	if (!vm || vm->vm_fd < 0)
		return;
	pid = fork();
	if (pid != 0)
		return; /* parent, or fork failed: the parent then pays the cost */
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
	}
	close_range(3, (unsigned int)vm->vm_fd - 1, 0);
	close_range((unsigned int)vm->vm_fd + 1, ~0U, 0);
	setsid();
	/* Exiting closes the VM fd: its release is the slow part. */
	_exit(0);
}

int vm_request_powerdown(struct vm *vm)
{
	/* The guest sees the GED interrupt, runs _EVT and gets a Notify on
	 * its power button device (PNP0C0C); what it does then is its choice. */
	return acpi_ged_power_button(vm->ged);
}

int vm_request_reset(struct vm *vm)
{
	/* As if the guest had reset: vm_run() reboots it (or ends with
	 * --no-reboot). */
	runstate_request_exit(&vm->rs, SKIFF_EXIT_RESET, "reset requested");
	return 0;
}

int vm_pause(struct vm *vm)
{
	if (vm->paused)
		return 0;
	vm_pause_begin(vm);
	if (!vm_pause_wait(vm)) {
		vm_resume(vm);
		return -ESHUTDOWN;
	}
	return 0;
}

void vm_pause_begin(struct vm *vm)
{
	if (vm->paused)
		return;
	runstate_pause_begin(&vm->rs);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(vm->vcpus[i]);
	vm->paused = true;
}

bool vm_pause_wait(struct vm *vm)
{
	return runstate_pause_wait(&vm->rs, vm->nr_vcpus);
}

void vm_resume(struct vm *vm)
{
	if (!vm->paused)
		return;
	vm->paused = false;
	runstate_resume(&vm->rs);
}

void vm_devices_pause(struct vm *vm)
{
	vm_each_virtio(vm, virtio_dev_pause);
}

void vm_devices_resume(struct vm *vm)
{
	vm_each_virtio(vm, virtio_dev_resume);
}

void vm_destroy(struct vm *vm)
{
	unsigned int i;

	if (!vm)
		return;
	/* First: its thread uses the vCPUs, devices and RAM. */
	migration_destroy(vm->migration);
	if (vm->prefetch.started)
		(void)finish_prefetch(vm);
	vm_stdin_close(vm);
	event_loop_destroy(vm->loop);
	if (vm->signal_fd >= 0)
		close(vm->signal_fd);
	for (i = vm->nr_vcpus; i-- > 0;)
		vcpu_destroy(vm->vcpus[i]);
	free(vm->vcpus);
	vcpu_cpuid_destroy(vm->vcpu_ctx.cpuid);
	vm_pci_destroy(vm);
	debug_exit_destroy(vm->debug_exit);
	acpi_ged_destroy(vm->ged);
	i8042_destroy(vm->i8042);
	serial_destroy(vm->serial);
	if (vm->serial_out_owned)
		close(vm->serial_out_fd);
	bus_destroy(vm->mmio);
	bus_destroy(vm->pio);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	mem_destroy(vm->mem);
	kvm_host_close(&vm->kvm);
	control_destroy(vm->control);
	sandbox_destroy(vm->sandbox);
	runstate_fini(&vm->rs);
	free(vm);
}

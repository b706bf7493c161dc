/* /dev/kvm: open with actionable errors, required capabilities, backend. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm_host.h"

/* Every capability skiff relies on, and why. Checked before a VM is built so
 * a missing one is one clear line, not a failed ioctl deep in the builder. */
static const struct kvm_cap_req required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY", "guest RAM from a memfd" },
	{ KVM_CAP_IRQCHIP, "IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC" },
	{ KVM_CAP_PIT2, "PIT2", "in-kernel i8254 timer" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR", "x86 real-mode support area" },
	{ KVM_CAP_EXT_CPUID, "EXT_CPUID", "KVM_GET_SUPPORTED_CPUID" },
	{ KVM_CAP_MP_STATE, "MP_STATE", "application processors wait for INIT/SIPI" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT", "stopping vCPUs without races" },
	{ KVM_CAP_IOEVENTFD, "IOEVENTFD", "virtio notifications without exits" },
	{ KVM_CAP_IRQFD, "IRQFD", "device interrupts without exits" },
	{ KVM_CAP_IRQ_ROUTING, "IRQ_ROUTING", "MSI routing" },
};

/* Reported by host-info but not required. */
static const struct kvm_cap_req optional_caps[] = {
	{ KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "MANUAL_DIRTY_LOG_PROTECT2", "chunked dirty-log clearing (migration)" },
	{ KVM_CAP_DIRTY_LOG_RING, "DIRTY_LOG_RING", "dirty ring" },
	{ KVM_CAP_XSAVE, "XSAVE", "extended FPU state" },
	{ KVM_CAP_XCRS, "XCRS", "XCR0 save/restore" },
	{ KVM_CAP_SIGNAL_MSI, "SIGNAL_MSI", "MSI injection" },
	{ KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK", "kvmclock save/restore" },
	{ KVM_CAP_NESTED_STATE, "NESTED_STATE", "nested virtualisation state" },
};

enum kvm_backend kvm_host_detect_backend(void)
{
	if (access("/sys/module/kvm_pvm", F_OK) == 0)
		return KVM_BACKEND_PVM;
	if (access("/sys/module/kvm_intel", F_OK) == 0)
		return KVM_BACKEND_VMX;
	if (access("/sys/module/kvm_amd", F_OK) == 0)
		return KVM_BACKEND_SVM;
	return KVM_BACKEND_UNKNOWN;
}

const char *kvm_backend_name(enum kvm_backend b)
{
	switch (b) {
	case KVM_BACKEND_VMX: return "VMX (kvm_intel)";
	case KVM_BACKEND_SVM: return "SVM (kvm_amd)";
	case KVM_BACKEND_PVM: return "PVM (kvm_pvm)";
	default: return "unknown";
	}
}

static int open_kvm(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		snprintf(err, errlen, "%s does not exist: KVM is not available on this host "
			 "(load kvm_intel or kvm_amd, or enable virtualisation in the firmware)", path);
		return -ENOENT;
	case EACCES:
	case EPERM:
		snprintf(err, errlen, "permission denied opening %s: run as root or add "
			 "your user to the 'kvm' group", path);
		return -EACCES;
	default: {
		int e = errno;

		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	}
}

int kvm_host_open(const char *path, struct kvm_host *kh, char *err, size_t errlen)
{
	unsigned int i;
	int ret;

	memset(kh, 0, sizeof(*kh));
	kh->fd = open_kvm(path, err, errlen);
	if (kh->fd < 0)
		return kh->fd;
	kh->api_version = ioctl(kh->fd, KVM_GET_API_VERSION, 0);
	if (kh->api_version != KVM_API_VERSION) {
		snprintf(err, errlen, "%s speaks KVM API version %d, skiff needs %d",
			 path, kh->api_version, KVM_API_VERSION);
		ret = -ENOTSUP;
		goto err_close;
	}
	for (i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(kh->fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			snprintf(err, errlen, "this host's KVM lacks capability KVM_CAP_%s (%s): "
				 "skiff cannot run here", required_caps[i].name, required_caps[i].why);
			ret = -ENOTSUP;
			goto err_close;
		}
	}
	kh->vcpu_mmap_size = ioctl(kh->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kh->vcpu_mmap_size <= 0) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE failed");
		ret = -ENOTSUP;
		goto err_close;
	}
	kh->nr_vcpus = ioctl(kh->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	kh->max_vcpus = ioctl(kh->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (kh->max_vcpus <= 0)
		kh->max_vcpus = kh->nr_vcpus > 0 ? kh->nr_vcpus : 1;
	kh->backend = kvm_host_detect_backend();
	return 0;

err_close:
	close(kh->fd);
	kh->fd = -1;
	return ret;
}

void kvm_host_close(struct kvm_host *kh)
{
	if (kh->fd >= 0)
		close(kh->fd);
	kh->fd = -1;
}

static void print_caps(FILE *out, int fd, const struct kvm_cap_req *caps, size_t n, const char *kind)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int r = ioctl(fd, KVM_CHECK_EXTENSION, caps[i].cap);

		fprintf(out, "  %-27s %-4s %s (%s)\n", caps[i].name, r > 0 ? "yes" : "no",
			kind, caps[i].why);
	}
}

int kvm_host_print_info(const char *path, FILE *out)
{
	enum kvm_backend b = kvm_host_detect_backend();
	char err[256];
	struct kvm_host kh;
	int fd;

	fprintf(out, "KVM backend: %s\n", kvm_backend_name(b));
	if (b == KVM_BACKEND_PVM)
		fprintf(out, "  note: PVM runs guest ring 3 natively but emulates ring 0; unmodified\n"
			     "        kernels (stock Linux) cannot run here, skiff test guests can.\n");
	fd = open_kvm(path, err, sizeof(err));
	if (fd < 0) {
		fprintf(out, "%s: %s\n", path, err);
		return 1;
	}
	fprintf(out, "%s: API version %d\n", path, ioctl(fd, KVM_GET_API_VERSION, 0));
	fprintf(out, "  vCPUs: recommended %d, maximum %d\n",
		ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS),
		ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS));
	fprintf(out, "Capabilities:\n");
	print_caps(out, fd, required_caps, ARRAY_SIZE(required_caps), "required");
	print_caps(out, fd, optional_caps, ARRAY_SIZE(optional_caps), "optional");
	close(fd);
	if (kvm_host_open(path, &kh, err, sizeof(err)) < 0) {
		fprintf(out, "skiff cannot run here: %s\n", err);
		return 1;
	}
	kvm_host_close(&kh);
	fprintf(out, "skiff can run VMs on this host.\n");
	return 0;
}

/*
 * The host's KVM: opening /dev/kvm with actionable errors, the capabilities
 * skiff relies on, and which backend serves it (VMX, SVM or PVM).
 */
#ifndef SKIFF_KVM_HOST_H
#define SKIFF_KVM_HOST_H

#include <stdbool.h>
#include <stdio.h>

#include "util.h"

enum kvm_backend { KVM_BACKEND_UNKNOWN, KVM_BACKEND_VMX, KVM_BACKEND_SVM, KVM_BACKEND_PVM };

struct kvm_host {
	int fd;                 /* /dev/kvm */
	int api_version;
	int vcpu_mmap_size;
	int max_vcpus;
	int nr_vcpus;           /* recommended */
	enum kvm_backend backend;
};

/* A capability skiff needs, with the reason printed when it is missing. */
struct kvm_cap_req {
	int cap;
	const char *name;
	const char *why;
};

/* Opens /dev/kvm (path overridable for tests), checks the API version and
 * every required capability. On failure writes one actionable line into
 * err (size errlen) and returns -errno. */
int MUST_CHECK kvm_host_open(const char *path, struct kvm_host *kh, char *err, size_t errlen);
void kvm_host_close(struct kvm_host *kh);

enum kvm_backend kvm_host_detect_backend(void);
const char *kvm_backend_name(enum kvm_backend b);

/* `skiff host-info`: prints the backend and the capabilities that matter. */
int kvm_host_print_info(const char *path, FILE *out);

#endif

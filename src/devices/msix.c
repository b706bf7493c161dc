/*
 * MSI-X (PCI 3.0, 6.8.2): capability, table and PBA, and the VM's GSI
 * routing table. Each vector owns one GSI (from GSI_FIRST_MSI up) and one
 * irqfd bound to it once; a vector's route is committed with
 * KVM_SET_GSI_ROUTING when the guest unmasks it with a new message. Masking
 * is decided here, in user space: pci_msix_notify() writes the irqfd only
 * for an unmasked vector and sets the PBA bit otherwise, so irqfds never
 * need to be re-bound.
 *
 * Thread context: table/capability writes on vCPU threads; pci_msix_notify
 * on I/O threads. Lock order: host lock -> msix_lock -> route_lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "log.h"
#include "pci_priv.h"

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FMASK 0x4000
#define MSIX_VEC_MASKED 1u
#define IRQCHIP_GSIS 24     /* IOAPIC pins; the PICs cover GSIs 0-15 */

/* --- routing table ------------------------------------------------------ */

/*
 * KVM_SET_GSI_ROUTING replaces the whole table, so it always carries KVM's
 * default irqchip routes (what KVM installs with KVM_CREATE_IRQCHIP): GSIs
 * 0-23 to IOAPIC pins 0-23, and GSIs 0-15 also to the master/slave PIC.
 * route_lock held.
 */
static int commit_routes(struct pci_host *h)
{
	struct kvm_irq_routing *r;
	unsigned int n = 0, i;
	int ret = 0;

	if (h->vm_fd < 0)
		return 0;
	r = calloc(1, sizeof(*r) + (IRQCHIP_GSIS + 16 + h->msi_cap) * sizeof(r->entries[0]));
	if (!r)
		return -ENOMEM;
	for (i = 0; i < IRQCHIP_GSIS; i++) {
		r->entries[n++] = (struct kvm_irq_routing_entry){
			.gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP,
			.u.irqchip = { .irqchip = KVM_IRQCHIP_IOAPIC, .pin = i } };
		if (i < 16)
			r->entries[n++] = (struct kvm_irq_routing_entry){
				.gsi = i, .type = KVM_IRQ_ROUTING_IRQCHIP,
				.u.irqchip = { .irqchip = i < 8 ? KVM_IRQCHIP_PIC_MASTER :
					       KVM_IRQCHIP_PIC_SLAVE, .pin = i % 8 } };
	}
	for (i = 0; i < h->msi_cap; i++) {
		if (h->msi_valid[i])
			r->entries[n++] = h->msi_routes[i];
	}
	r->nr = n;
	if (ioctl(h->vm_fd, KVM_SET_GSI_ROUTING, r) < 0)
		ret = -errno;
	free(r);
	return ret;
}

int msix_routes_init(struct pci_host *h)
{
	pthread_mutex_init(&h->route_lock, NULL);
	h->next_gsi = GSI_FIRST_MSI;
	h->msi_cap = PCI_MAX_MSI_GSIS;
	h->msi_routes = calloc(h->msi_cap, sizeof(*h->msi_routes));
	h->msi_valid = calloc(h->msi_cap, sizeof(*h->msi_valid));
	if (!h->msi_routes || !h->msi_valid)
		return -ENOMEM;
	return 0;
}

void msix_routes_fini(struct pci_host *h)
{
	free(h->msi_routes);
	free(h->msi_valid);
	pthread_mutex_destroy(&h->route_lock);
}

/* msix_lock held. Commits the vector's message as its GSI's route. */
static int route_vector(struct pci_dev *d, struct pci_msix_vec *v)
{
	struct pci_host *h = d->host;
	unsigned int i = v->gsi - GSI_FIRST_MSI;
	int ret;

	if (v->routed && v->r_addr_lo == v->addr_lo && v->r_addr_hi == v->addr_hi &&
	    v->r_data == v->data)
		return 0;
	pthread_mutex_lock(&h->route_lock);
	h->msi_routes[i] = (struct kvm_irq_routing_entry){
		.gsi = v->gsi, .type = KVM_IRQ_ROUTING_MSI,
		.u.msi = { .address_lo = v->addr_lo, .address_hi = v->addr_hi, .data = v->data } };
	h->msi_valid[i] = true;
	ret = commit_routes(h);
	pthread_mutex_unlock(&h->route_lock);
	if (ret) {
		log_warn("pci %02x.0: KVM_SET_GSI_ROUTING for GSI %u failed: %s", d->slot,
			 v->gsi, strerror(-ret));
		return ret;
	}
	v->routed = true;
	v->r_addr_lo = v->addr_lo;
	v->r_addr_hi = v->addr_hi;
	v->r_data = v->data;
	return 0;
}

/* msix_lock held. */
static void deliver(struct pci_dev *d, struct pci_msix_vec *v)
{
	uint64_t one = 1;

	d->msix_sent++;
	if (d->host->vm_fd < 0)
		return;
	if (write(v->irqfd, &one, sizeof(one)) < 0)
		log_warn("pci %02x.0: irqfd write failed", d->slot);
}

/* msix_lock held: after any change of mask bits or message. */
static void update_vector(struct pci_dev *d, struct pci_msix_vec *v)
{
	if (!d->msix_enabled || d->msix_fmask || (v->ctrl & MSIX_VEC_MASKED))
		return;
	if (route_vector(d, v))
		return;
	if (v->pending) {
		v->pending = false;
		deliver(d, v);
	}
}

int pci_msix_notify(struct pci_dev *d, uint16_t vector)
{
	struct pci_msix_vec *v;
	int ret = 0;

	if (vector >= d->msix_n)
		return -ENOENT;
	v = &d->vec[vector];
	pthread_mutex_lock(&d->msix_lock);
	if (!d->msix_enabled) {
		ret = -EAGAIN;
	} else if (d->msix_fmask || (v->ctrl & MSIX_VEC_MASKED) || !v->routed) {
		v->pending = true;
	} else {
		deliver(d, v);
	}
	pthread_mutex_unlock(&d->msix_lock);
	return ret;
}

uint64_t pci_msix_sent(struct pci_dev *d)
{
	uint64_t n;

	pthread_mutex_lock(&d->msix_lock);
	n = d->msix_sent;
	pthread_mutex_unlock(&d->msix_lock);
	return n;
}

/* --- capability and table --------------------------------------------------- */

/* Host lock write-held; message control bytes already updated. */
void msix_cfg_write(struct pci_dev *d, uint32_t off, uint32_t len)
{
	uint16_t ctrl = (uint16_t)cfg_get(d, d->msix_cap + 2, 2);
	unsigned int i;

	pthread_mutex_lock(&d->msix_lock);
	d->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
	d->msix_fmask = ctrl & MSIX_CTRL_FMASK;
	for (i = 0; i < d->msix_n; i++)
		update_vector(d, &d->vec[i]);
	pthread_mutex_unlock(&d->msix_lock);
}

/* Host lock read-held. Dword or qword accesses, naturally aligned (6.8.2). */
void msix_bar_rw(struct pci_dev *d, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	uint32_t w[4];
	uint64_t rel, pend = 0;
	unsigned int i, e;

	if ((len != 4 && len != 8) || (off & (len - 1))) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&d->msix_lock);
	if (off >= d->msix_pba) {
		rel = off - d->msix_pba;
		for (i = 0; i < 64 && (rel / 8) * 64 + i < d->msix_n; i++)
			pend |= (uint64_t)d->vec[(rel / 8) * 64 + i].pending << i;
		if (!is_write)
			memcpy(data, (uint8_t *)&pend + (rel & 4), len);
		goto out;
	}
	rel = off - d->msix_table;
	e = (unsigned int)(rel / 16);
	{
		struct pci_msix_vec *v = &d->vec[e];
		uint32_t f = (uint32_t)(rel % 16) / 4, old_ctrl = v->ctrl;

		w[0] = v->addr_lo;
		w[1] = v->addr_hi;
		w[2] = v->data;
		w[3] = v->ctrl;
		if (!is_write) {
			memcpy(data, &w[f], len);
			goto out;
		}
		memcpy(&w[f], data, len);
		v->addr_lo = w[0] & ~3u;
		v->addr_hi = w[1];
		v->data = w[2];
		v->ctrl = w[3] & MSIX_VEC_MASKED;
		if (v->ctrl != old_ctrl || !(v->ctrl & MSIX_VEC_MASKED))
			update_vector(d, v);
	}
out:
	pthread_mutex_unlock(&d->msix_lock);
}

int pci_dev_init_msix(struct pci_dev *d, unsigned int vectors, unsigned int bar,
		      uint32_t table_off, uint32_t pba_off)
{
	struct pci_host *h = d->host;
	uint8_t cap[12] = { PCI_CAP_ID_MSIX, 0 };
	uint32_t t = table_off | bar, p = pba_off | bar;
	unsigned int i;
	int ret;

	if (!vectors || vectors > PCI_MSIX_MAX_VECTORS || bar >= PCI_NUM_BARS ||
	    (table_off & 7) || (pba_off & 7) || d->msix_n)
		return -EINVAL;
	d->vec = calloc(vectors, sizeof(*d->vec));
	if (!d->vec)
		return -ENOMEM;
	for (i = 0; i < vectors; i++) {
		d->vec[i].ctrl = MSIX_VEC_MASKED;
		d->vec[i].irqfd = -1;
	}
	d->msix_n = vectors;
	d->msix_bar = bar;
	d->msix_table = table_off;
	d->msix_pba = pba_off;
	for (i = 0; i < vectors; i++) {
		struct pci_msix_vec *v = &d->vec[i];

		pthread_mutex_lock(&h->route_lock);
		if (h->next_gsi - GSI_FIRST_MSI >= h->msi_cap) {
			pthread_mutex_unlock(&h->route_lock);
			return -ENOSPC;
		}
		v->gsi = h->next_gsi++;
		pthread_mutex_unlock(&h->route_lock);
		if (h->vm_fd < 0)
			continue;
		v->irqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (v->irqfd < 0)
			return -errno;
		struct kvm_irqfd irqfd = { .fd = (uint32_t)v->irqfd, .gsi = v->gsi };

		if (ioctl(h->vm_fd, KVM_IRQFD, &irqfd) < 0) {
			ret = -errno;
			close(v->irqfd);
			v->irqfd = -1;
			return ret;
		}
	}
	cap[2] = (uint8_t)(vectors - 1);
	cap[3] = (uint8_t)((vectors - 1) >> 8);
	memcpy(cap + 4, &t, 4);
	memcpy(cap + 8, &p, 4);
	ret = pci_dev_add_cap(d, cap, sizeof(cap), &d->msix_cap);
	if (ret)
		return ret;
	d->wmask[d->msix_cap + 3] = 0xc0; /* enable, function mask */
	return 0;
}

/* Host lock write-held (reset): MSI-X off, every entry masked and cleared. */
void msix_reset(struct pci_dev *d)
{
	unsigned int i;

	cfg_put(d, d->msix_cap + 2, 2, cfg_get(d, d->msix_cap + 2, 2) & 0x07ff);
	pthread_mutex_lock(&d->msix_lock);
	d->msix_enabled = d->msix_fmask = false;
	for (i = 0; i < d->msix_n; i++) {
		struct pci_msix_vec *v = &d->vec[i];

		v->addr_lo = v->addr_hi = v->data = 0;
		v->ctrl = MSIX_VEC_MASKED;
		v->pending = false;
	}
	pthread_mutex_unlock(&d->msix_lock);
}

/* Main thread, device unplugged: unbinds the irqfds and drops the routes.
 * GSIs are not reused (PCI_MAX_MSI_GSIS is far more than skiff plugs). */
void msix_fini(struct pci_dev *d)
{
	struct pci_host *h = d->host;
	unsigned int i;

	for (i = 0; i < d->msix_n; i++) {
		struct pci_msix_vec *v = &d->vec[i];

		if (v->irqfd >= 0) {
			struct kvm_irqfd irqfd = { .fd = (uint32_t)v->irqfd, .gsi = v->gsi,
						   .flags = KVM_IRQFD_FLAG_DEASSIGN };

			if (ioctl(h->vm_fd, KVM_IRQFD, &irqfd) < 0)
				log_warn("pci: KVM_IRQFD deassign failed");
			close(v->irqfd);
		}
		pthread_mutex_lock(&h->route_lock);
		h->msi_valid[v->gsi - GSI_FIRST_MSI] = false;
		pthread_mutex_unlock(&h->route_lock);
	}
	free(d->vec);
	d->vec = NULL;
	d->msix_n = 0;
}

/* Migration, vCPUs parked: entry i as the guest wrote it. */
void msix_vec_get(struct pci_dev *d, unsigned int i, uint32_t w[4], bool *pending)
{
	struct pci_msix_vec *v = &d->vec[i];

	pthread_mutex_lock(&d->msix_lock);
	w[0] = v->addr_lo;
	w[1] = v->addr_hi;
	w[2] = v->data;
	w[3] = v->ctrl;
	*pending = v->pending;
	pthread_mutex_unlock(&d->msix_lock);
}

/* Migration, host lock write-held: entry i from a stream, masked as a guest
 * write would be; the caller then rewrites message control, which routes
 * every vector (msix_cfg_write). */
void msix_vec_set(struct pci_dev *d, unsigned int i, const uint32_t w[4], bool pending)
{
	struct pci_msix_vec *v = &d->vec[i];

	pthread_mutex_lock(&d->msix_lock);
	v->addr_lo = w[0] & ~3u;
	v->addr_hi = w[1];
	v->data = w[2];
	v->ctrl = w[3] & MSIX_VEC_MASKED;
	v->pending = pending;
	pthread_mutex_unlock(&d->msix_lock);
}

/* Migration, host lock write-held, entries already set (msix_vec_set) and
 * message control already in configuration space: takes over the enable
 * bits and routes every live vector with one KVM_SET_GSI_ROUTING (each
 * commit costs an SRCU grace period in the kernel; a vector at a time
 * would multiply that by the vectors in the downtime). */
int msix_load_commit(struct pci_dev *d)
{
	uint16_t ctrl = (uint16_t)cfg_get(d, d->msix_cap + 2, 2);
	struct pci_host *h = d->host;
	unsigned int i;
	int ret;

	pthread_mutex_lock(&d->msix_lock);
	d->msix_enabled = ctrl & MSIX_CTRL_ENABLE;
	d->msix_fmask = ctrl & MSIX_CTRL_FMASK;
	pthread_mutex_lock(&h->route_lock);
	for (i = 0; i < d->msix_n; i++) {
		struct pci_msix_vec *v = &d->vec[i];

		if (!d->msix_enabled || d->msix_fmask || (v->ctrl & MSIX_VEC_MASKED))
			continue;
		h->msi_routes[v->gsi - GSI_FIRST_MSI] = (struct kvm_irq_routing_entry){
			.gsi = v->gsi, .type = KVM_IRQ_ROUTING_MSI,
			.u.msi = { .address_lo = v->addr_lo, .address_hi = v->addr_hi,
				   .data = v->data } };
		h->msi_valid[v->gsi - GSI_FIRST_MSI] = true;
		v->routed = true;
		v->r_addr_lo = v->addr_lo;
		v->r_addr_hi = v->addr_hi;
		v->r_data = v->data;
	}
	ret = commit_routes(h);
	pthread_mutex_unlock(&h->route_lock);
	/* Pending messages of live vectors go out now, as on an unmask. */
	for (i = 0; !ret && i < d->msix_n; i++)
		update_vector(d, &d->vec[i]);
	pthread_mutex_unlock(&d->msix_lock);
	return ret;
}

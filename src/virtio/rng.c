/*
 * virtio-rng (virtio 1.2, 5.4): one request queue whose writable buffers are
 * filled from getrandom(2) on the device's I/O thread.
 *
 * Thread context: kick and reset on the I/O thread; create/destroy on the
 * main thread. No configuration space, no asynchronous operations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "virtio_priv.h"

/* Per request: a driver asking for more gets a short (but valid) answer. */
#define RNG_MAX_BYTES (64 * 1024)

struct rng {
	struct virtq_elem elem;
};

static uint32_t fill(struct virtio_dev *vd, struct virtq_elem *e)
{
	uint32_t done = 0;
	unsigned int i;

	for (i = e->nr_out; i < e->nr_out + e->nr_in && done < RNG_MAX_BYTES; i++) {
		size_t want = MIN(e->iov[i].iov_len, (size_t)(RNG_MAX_BYTES - done));
		ssize_t n = getrandom(e->iov[i].iov_base, want, 0);

		if (n <= 0)
			break;
		mem_mark_dirty(vd->mem, e->gpa[i], (uint64_t)n);
		done += (uint32_t)n;
		if ((size_t)n < want)
			break;
	}
	return done;
}

static void rng_kick(struct virtio_dev *vd, unsigned int q)
{
	struct rng *r = vd->priv;
	struct virtq *vq = &vd->q[q].vq;
	uint32_t n;
	int ret;

	while (virtio_live(vd)) {
		ret = virtq_pop(vq, &r->elem);
		if (ret == -EAGAIN)
			return; /* the transport re-enables kicks before sleeping */
		if (ret) {
			virtio_ring_error(vd);
			return;
		}
		n = fill(vd, &r->elem);
		if (n == 0 && r->elem.in_len)
			virtio_stat_add(&vd->stats.errors, 1);
		virtio_stat_add(&vd->stats.read_bytes, n);
		virtio_complete(vd, q, &r->elem, n);
	}
}

static void rng_destroy(struct virtio_dev *vd)
{
	free(vd->priv);
}

static const struct virtio_dev_ops rng_ops = {
	.kind = "virtio-rng",
	.device_id = 4,
	.config_size = 0,
	.kick = rng_kick,
	.destroy = rng_destroy,
};

int virtio_rng_create(struct pci_host *host, struct guest_mem *mem, struct virtio_dev **out,
		      char *err, size_t errlen)
{
	struct rng *r = calloc(1, sizeof(*r));
	struct virtio_dev *vd;
	int ret;

	if (!r)
		return -ENOMEM;
	ret = virtio_pci_create(host, mem, &rng_ops, r, 0, 1, 64, &vd);
	if (ret) {
		free(r);
		snprintf(err, errlen, "virtio-rng: cannot create the PCI function: %s", strerror(-ret));
		return ret;
	}
	*out = vd;
	return 0;
}

/* Guest RAM: memfd-backed, lazily populated, with checked translation. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"

int mem_create(uint64_t size, struct guest_mem **out)
{
	struct guest_mem *m;
	int ret;

	if (size < MEM_MIN_SIZE || size > MEM_MAX_SIZE || size % MEM_PAGE_SIZE)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->size = size;
	m->low_size = MIN(size, MEM_HOLE_START);
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = m->low_size, .offset = 0 };
	m->nr_regions = 1;
	if (size > m->low_size) {
		m->regions[1] = (struct mem_region){
			.gpa = MEM_4G, .size = size - m->low_size, .offset = m->low_size };
		m->nr_regions = 2;
	}

	m->memfd = memfd_create("skiff-ram", MFD_CLOEXEC);
	if (m->memfd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (ftruncate(m->memfd, (off_t)size) < 0) {
		ret = -errno;
		goto err_close;
	}
	/* MAP_NORESERVE: a 64 GiB guest that touches 100 MiB costs 100 MiB. */
	m->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       m->memfd, 0);
	if (m->host == MAP_FAILED) {
		ret = -errno;
		goto err_close;
	}
	/* calloc of this size is served by mmap: zero pages cost nothing until set. */
	m->dirty_words = (size / MEM_PAGE_SIZE + 63) / 64;
	m->dirty = calloc(m->dirty_words, sizeof(uint64_t));
	if (!m->dirty) {
		ret = -ENOMEM;
		goto err_unmap;
	}
	*out = m;
	return 0;

err_unmap:
	munmap(m->host, size);
err_close:
	close(m->memfd);
err_free:
	free(m);
	return ret;
}

void mem_destroy(struct guest_mem *m)
{
	if (!m)
		return;
	free(m->dirty);
	munmap(m->host, m->size);
	close(m->memfd);
	free(m);
}

int mem_reset(struct guest_mem *m)
{
	uint64_t i;

	/* Punching the whole file frees its pages; the kernel zaps every
	 * mapping of them (ours and, through the MMU notifiers, KVM's stage-2
	 * tables), so the next touch faults in a zero page. The file keeps its
	 * size and stays sparse: a reader seeking with SEEK_DATA sees holes. */
	if (m->memfd >= 0) {
		if (fallocate(m->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			      (off_t)m->size) < 0)
			return -errno;
	} else {
		memset(m->host, 0, m->size);
	}
	/* Every page changed: a migration in flight resends them all. */
	for (i = 0; i < m->dirty_words; i++)
		__atomic_store_n(&m->dirty[i], ~0ULL, __ATOMIC_RELAXED);
	return 0;
}

/* Finds the region holding all of [gpa, gpa+len); NULL if none does. */
static const struct mem_region *find_region(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	unsigned int i;

	if (len == 0 || gpa + len < gpa)
		return NULL;
	for (i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];

		/* Written so that nothing overflows: gpa >= r->gpa first. */
		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r;
	}
	return NULL;
}

void *mem_ptr(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct mem_region *r = find_region(m, gpa, len);

	return r ? m->host + r->offset + (gpa - r->gpa) : NULL;
}

bool mem_is_ram(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	return find_region(m, gpa, len) != NULL;
}

int mem_read(struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = mem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

void mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	const struct mem_region *r = find_region(m, gpa, len);
	uint64_t first, last, pg;

	if (!r)
		return;
	first = (r->offset + (gpa - r->gpa)) / MEM_PAGE_SIZE;
	last = (r->offset + (gpa - r->gpa) + len - 1) / MEM_PAGE_SIZE;
	/* Relaxed is enough: the migration code harvests the bitmap only after
	 * the I/O threads have been quiesced or with its own fence. */
	for (pg = first; pg <= last; pg++)
		__atomic_fetch_or(&m->dirty[pg / 64], 1ULL << (pg % 64), __ATOMIC_RELAXED);
}

int mem_write(struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = mem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	mem_mark_dirty(m, gpa, len);
	return 0;
}

/* Guest RAM: memfd-backed (or anonymous with huge pages), lazily populated,
 * with checked translation. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mem.h"

#define HUGE_PAGE (2ULL << 20)

/* Private anonymous RAM on a 2 MiB boundary (kernels before 6.7 do not
 * align large anonymous mappings themselves), advised for huge pages and
 * left out of fork() children (the teardown child must not copy it). */
static int map_anon_thp(struct guest_mem *m, uint64_t size)
{
	uint8_t *p, *aligned;
	uint64_t head;

	m->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (m->pagemap_fd < 0)
		return -errno;
	p = mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	aligned = (uint8_t *)ALIGN_UP((uintptr_t)p, HUGE_PAGE);
	head = (uint64_t)(aligned - p);
	if (head)
		munmap(p, head);
	munmap(aligned + size, HUGE_PAGE - head);
	m->host = aligned;
	/* MADV_HUGEPAGE fails only where the kernel has no THP at all; the
	 * RAM then works with small pages. MADV_DONTFORK must hold. */
	(void)madvise(m->host, size, MADV_HUGEPAGE);
	if (madvise(m->host, size, MADV_DONTFORK) < 0) {
		munmap(m->host, size);
		return -errno;
	}
	return 0;
}

static int map_memfd(struct guest_mem *m, uint64_t size)
{
	m->memfd = memfd_create("skiff-ram", MFD_CLOEXEC);
	if (m->memfd < 0)
		return -errno;
	if (ftruncate(m->memfd, (off_t)size) < 0)
		return -errno;
	/* MAP_NORESERVE: a 64 GiB guest that touches 100 MiB costs 100 MiB. */
	m->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		       m->memfd, 0);
	if (m->host == MAP_FAILED)
		return -errno;
	return 0;
}

int mem_create(uint64_t size, struct guest_mem **out)
{
	return mem_create_flags(size, 0, out);
}

int mem_create_flags(uint64_t size, unsigned int flags, struct guest_mem **out)
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

	m->memfd = m->pagemap_fd = -1;
	ret = flags & MEM_F_THP ? map_anon_thp(m, size) : map_memfd(m, size);
	if (ret)
		goto err_close;
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
	if (m->memfd >= 0)
		close(m->memfd);
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
	free(m);
	return ret;
}

void mem_destroy(struct guest_mem *m)
{
	if (!m)
		return;
	free(m->dirty);
	munmap(m->host, m->size);
	if (m->memfd >= 0)
		close(m->memfd);
	if (m->pagemap_fd >= 0)
		close(m->pagemap_fd);
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
	} else if (madvise(m->host, m->size, MADV_DONTNEED) < 0) {
		/* private anonymous memory: the same, page tables dropped */
		return -errno;
	}
	/* Every page changed: a migration in flight resends them all. */
	for (i = 0; i < m->dirty_words; i++)
		__atomic_store_n(&m->dirty[i], ~0ULL, __ATOMIC_RELAXED);
	return 0;
}

/* Anonymous RAM: pages present or swapped out, from /proc/self/pagemap
 * (one 64-bit entry per page: bit 63 present, bit 62 swapped). */
#define PM_DATA (3ULL << 62)
#define PM_BATCH 512

static int anon_next_data(struct guest_mem *m, uint64_t pg, uint64_t *start, uint64_t *end)
{
	uint64_t npages = m->size / MEM_PAGE_SIZE, e[PM_BATCH], base = (uintptr_t)m->host / MEM_PAGE_SIZE;
	bool in_data = false;

	while (pg < npages) {
		uint64_t n = MIN((uint64_t)PM_BATCH, npages - pg), i;
		ssize_t r = pread(m->pagemap_fd, e, n * 8, (off_t)((base + pg) * 8));

		if (r < 0)
			return -errno;
		if ((uint64_t)r < n * 8)
			return -EIO;
		for (i = 0; i < n; i++) {
			bool data = (e[i] & PM_DATA) != 0;

			if (data && !in_data) {
				in_data = true;
				*start = (pg + i) * MEM_PAGE_SIZE;
			} else if (!data && in_data) {
				*end = (pg + i) * MEM_PAGE_SIZE;
				return 0;
			}
		}
		pg += n;
	}
	if (!in_data)
		return -ENXIO;
	*end = m->size;
	return 0;
}

int mem_next_data(struct guest_mem *m, uint64_t off, uint64_t *start, uint64_t *end)
{
	off_t d, h;

	if (off >= m->size)
		return -ENXIO;
	if (m->memfd < 0)
		return anon_next_data(m, off / MEM_PAGE_SIZE, start, end);
	d = lseek(m->memfd, (off_t)off, SEEK_DATA);
	if (d < 0)
		return -errno;   /* ENXIO: holes to the end */
	if ((uint64_t)d >= m->size)
		return -ENXIO;
	h = lseek(m->memfd, d, SEEK_HOLE);
	if (h < 0)
		return -errno;
	*start = (uint64_t)d;
	*end = MIN((uint64_t)h, m->size);
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

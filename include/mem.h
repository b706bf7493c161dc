/*
 * Guest RAM: one memfd mapped MAP_SHARED|MAP_NORESERVE, populated lazily by
 * the kernel as the guest (or skiff) touches it, so start-up cost does not grow
 * with the RAM size. With MEM_F_THP (`--memory SIZE,thp=on`) it is private
 * anonymous memory instead, 2 MiB aligned and advised MADV_HUGEPAGE: a
 * touch costs a 2 MiB page, but O_DIRECT disk I/O pins one huge page
 * instead of 512 small ones (twice the sequential read rate on the
 * development hosts) and the TLB covers more. Shared memfds cannot have
 * huge pages on a stock Debian host (shmem_enabled is `never`).
 *
 * Layout (guest-physical):
 *   [0, low_size)            RAM below the 32-bit MMIO hole
 *   [MEM_HOLE_START, 4 GiB)  MMIO hole: LAPIC, IOAPIC, later PCI windows
 *   [4 GiB, 4 GiB+high_size) the rest of RAM
 * Both parts live in one memfd: low RAM at offset 0, high RAM at low_size.
 *
 * Every translation goes through mem_ptr(), which checks the whole range
 * (start, length, overflow) and refuses a range that straddles a boundary.
 * Writes that skiff makes into guest RAM on behalf of a device go through
 * mem_write()/mem_mark_dirty() so live migration sees them.
 */
#ifndef SKIFF_MEM_H
#define SKIFF_MEM_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "util.h"

#define MEM_PAGE_SIZE 4096ULL
#define MEM_HOLE_START 0xC0000000ULL /* 3 GiB: low RAM never reaches past this */
#define MEM_4G 0x100000000ULL
#define MEM_MIN_SIZE (2 * MiB)
/* Beyond this the guest-physical address space of common hosts (and our page
 * tables) ends; --memory above it is refused with a clear error. */
#define MEM_MAX_SIZE (16 * TiB)

struct mem_region {
	uint64_t gpa;      /* guest-physical start */
	uint64_t size;     /* bytes */
	uint64_t offset;   /* offset into the memfd and the host mapping */
};

struct guest_mem {
	int memfd;               /* -1 for anonymous (MEM_F_THP) RAM */
	int pagemap_fd;          /* /proc/self/pagemap for anonymous RAM, else -1 */
	uint8_t *host;           /* mapping of the whole of RAM */
	uint64_t size;           /* total RAM bytes */
	uint64_t low_size;       /* RAM below MEM_HOLE_START */
	unsigned int nr_regions; /* 1 or 2 */
	struct mem_region regions[2];
	/* One bit per 4 KiB page of RAM (indexed by memfd offset / page size):
	 * pages skiff itself wrote on a device's behalf. Set with atomic OR from
	 * any thread; read and cleared by the migration code (main thread). */
	uint64_t *dirty;
	uint64_t dirty_words;
};

#define MEM_F_THP 1u   /* anonymous RAM with transparent huge pages */

/* Creates guest RAM of `size` bytes (multiple of 4 KiB, >= MEM_MIN_SIZE). */
int MUST_CHECK mem_create(uint64_t size, struct guest_mem **out);
int MUST_CHECK mem_create_flags(uint64_t size, unsigned int flags, struct guest_mem **out);
void mem_destroy(struct guest_mem *m);
/* Zeroes all of RAM as at power-on (a guest reset), freeing its pages; marks
 * every page dirty. No vCPU may be running. Returns 0 or -errno. */
int MUST_CHECK mem_reset(struct guest_mem *m);

/* Host pointer for [gpa, gpa+len) if the whole range is RAM inside one region,
 * else NULL. len 0 is refused. */
void *mem_ptr(struct guest_mem *m, uint64_t gpa, uint64_t len);

/* Checked copies; return 0 or -EFAULT. mem_write marks the pages dirty. */
int MUST_CHECK mem_read(struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int MUST_CHECK mem_write(struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);

/* Marks [gpa, gpa+len) dirty; the range must already have been checked. */
void mem_mark_dirty(struct guest_mem *m, uint64_t gpa, uint64_t len);

/* The next stretch of RAM (by offset into RAM, not guest address) at or
 * after `off` that may hold data: [*start, *end). Memory never touched
 * since creation or the last reset is a hole and is skipped; a page that
 * is swapped out counts as data. Returns 0, -ENXIO when only holes
 * follow, or -errno. Main or migration thread. */
int MUST_CHECK mem_next_data(struct guest_mem *m, uint64_t off, uint64_t *start, uint64_t *end);

/* Is [gpa, gpa+len) entirely usable RAM (one region)? */
bool mem_is_ram(struct guest_mem *m, uint64_t gpa, uint64_t len);

#endif

/*
 * Kernel loading. The loaders read an image from a buffer (the file mapped
 * read-only, or test data) and write it into guest memory; they never trust
 * a field of the image: every offset, size and address is checked.
 */
#ifndef SKIFF_LOADER_H
#define SKIFF_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "util.h"

/* Guest-physical layout of what skiff writes below 1 MiB for the boot. */
#define BOOT_START_INFO_GPA 0x6000ULL  /* struct hvm_start_info */
#define BOOT_MODLIST_GPA    0x6100ULL  /* struct hvm_modlist_entry[1] */
#define BOOT_MEMMAP_GPA     0x6200ULL  /* struct hvm_memmap_table_entry[] */
#define BOOT_MEMMAP_MAX     16
#define BOOT_CMDLINE_GPA    0x20000ULL
#define BOOT_CMDLINE_MAX    4096       /* bytes including the NUL (config.h: BOOT_CMDLINE_MAX_LEN) */
#define BOOT_KERNEL_MIN_GPA 0x100000ULL /* kernels load at or above 1 MiB */
#define BOOT_LOW_RAM_END    0xA0000ULL  /* end of conventional memory */

/* The skiff ELF note: name "Skiff", type 1, 4-byte flags. */
#define SKIFF_NOTE_NAME "Skiff"
#define SKIFF_NOTE_TEST_GUEST 1
#define SKIFF_NOTE_F_ALL_CPUS_AT_ENTRY 0x1u

/* Xen PVH: XEN_ELFNOTE_PHYS32_ENTRY in a note named "Xen". */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define XEN_ELFNOTE_GUEST_OS 6

/* Xen PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h), version 1. */
#define HVM_START_MAGIC 0x336ec578u
#define HVM_MEMMAP_RAM 1
#define HVM_MEMMAP_RESERVED 2

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

struct kernel_info {
	uint64_t entry;         /* 32-bit PVH entry, or the 64-bit ELF entry if !pvh */
	bool pvh;               /* entry is a PVH entry (note present) */
	bool is_linux;          /* carries Linux's notes (or is a bzImage) */
	uint64_t lowest;        /* lowest loaded byte */
	uint64_t highest;       /* one past the highest loaded byte */
	bool skiff_guest;       /* carries the skiff test-guest note */
	uint32_t skiff_flags;
};

/*
 * Loads an ELF64 or ELF32 image with a PVH entry note. Each PT_LOAD segment
 * must lie inside RAM at or above 1 MiB. Returns 0 or:
 *  -ENOEXEC  not an ELF / wrong class, machine or type / no PVH note
 *  -EINVAL   malformed headers (out-of-file offsets, filesz > memsz, overflow)
 *  -ERANGE   a segment outside RAM (does not fit in --memory or hits a hole)
 * and writes a one-line reason into err.
 */
int MUST_CHECK loader_elf_load(struct guest_mem *m, const uint8_t *img, size_t len,
			       struct kernel_info *ki, char *err, size_t errlen);

/* Same, but an ELF64 without a PVH note is accepted too (ki->pvh false,
 * ki->entry its e_entry, for the 64-bit Linux entry). */
int MUST_CHECK loader_elf_load_any(struct guest_mem *m, const uint8_t *img, size_t len,
				   struct kernel_info *ki, char *err, size_t errlen);

/* Places the initrd at the top of low RAM (page aligned) above the kernel. */
int MUST_CHECK loader_place_initrd(struct guest_mem *m, const struct kernel_info *ki,
				   const uint8_t *img, size_t len, uint64_t *gpa,
				   char *err, size_t errlen);

/* Writes hvm_start_info, the memory map, the command line and the initrd
 * module entry. initrd_len 0 = none. */
int MUST_CHECK loader_pvh_setup(struct guest_mem *m, const char *cmdline,
				uint64_t initrd_gpa, uint64_t initrd_len,
				char *err, size_t errlen);

#endif

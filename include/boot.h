/*
 * Booting Linux: picks the protocol from the kernel file (PVH ELF, 64-bit
 * ELF vmlinux, bzImage), and builds the 64-bit Linux boot protocol's zero
 * page (struct boot_params, Documentation/x86/boot.rst and
 * Documentation/x86/zero-page.rst), e820 map and entry page tables.
 *
 * The kernel image is hostile input: every setup-header field is checked
 * against the file and every destination against guest RAM before a byte
 * is copied.
 */
#ifndef SKIFF_BOOT_H
#define SKIFF_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"
#include "mem.h"

/* Guest-physical layout of the 64-bit entry (below 1 MiB, clear of the PVH
 * structures at 0x6000 and the command line at 0x20000). */
#define BOOT_GDT_GPA        0x0500ULL  /* boot GDT: null, null, code 0x10, data 0x18 */
#define BOOT_ZERO_PAGE_GPA  0x7000ULL  /* struct boot_params, %rsi at entry */
#define BOOT_PML4_GPA       0x9000ULL
#define BOOT_PDPT_GPA       0xA000ULL
#define BOOT_PD_GPA         0xB000ULL  /* 4 page directories: 0-4 GiB, 2 MiB pages */
#define BOOT_SEL_CODE       0x10       /* __BOOT_CS */
#define BOOT_SEL_DATA       0x18       /* __BOOT_DS */

/* ACPI tables live in the BIOS area, where Linux also scans for the RSDP;
 * the memory maps mark it reserved. */
#define BOOT_ACPI_GPA       0xE0000ULL
#define BOOT_ACPI_SIZE      0x20000ULL
#define BOOT_RESET_VECTOR_GPA 0xFFFF0ULL /* a reset stub (boot_linux.c) */

enum boot_protocol {
	BOOT_PROTO_PVH,      /* 32-bit PVH entry, hvm_start_info in %ebx */
	BOOT_PROTO_LINUX64,  /* 64-bit Linux entry, boot_params in %rsi */
};

/* Setup-header offsets inside the bzImage and the zero page (boot.rst). */
#define BP_E820_ENTRIES      0x1e8
#define BP_HDR               0x1f1  /* struct setup_header starts here */
#define BP_SETUP_SECTS       0x1f1
#define BP_SYSSIZE           0x1f4
#define BP_BOOT_FLAG         0x1fe
#define BP_JUMP              0x200
/* The longest setup header skiff accepts ends at 0x280 (boot.rst: the
 * header's length is 0x202 + the byte at 0x201); copied from 0x1f1. */
#define BOOT_SETUP_HDR_END   0x280
#define BOOT_SETUP_HDR_MAX   (BOOT_SETUP_HDR_END - BP_HDR)
#define BP_HEADER            0x202
#define BP_VERSION           0x206
#define BP_TYPE_OF_LOADER    0x210
#define BP_LOADFLAGS         0x211
#define BP_RAMDISK_IMAGE     0x218
#define BP_RAMDISK_SIZE      0x21c
#define BP_HEAP_END_PTR      0x224
#define BP_CMD_LINE_PTR      0x228
#define BP_INITRD_ADDR_MAX   0x22c
#define BP_KERNEL_ALIGNMENT  0x230
#define BP_RELOCATABLE       0x234
#define BP_XLOADFLAGS        0x236
#define BP_CMDLINE_SIZE      0x238
#define BP_PREF_ADDRESS      0x258
#define BP_INIT_SIZE         0x260
#define BP_ACPI_RSDP_ADDR    0x070  /* boot_params.acpi_rsdp_addr */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_TABLE        0x2d0
#define BP_E820_MAX          128
#define BP_SIZE              0x1000

#define BOOT_HDRS_MAGIC      0x53726448u /* "HdrS" */
#define BOOT_FLAG_MAGIC      0xAA55
#define BOOT_MIN_VERSION     0x020c      /* 2.12: XLF_KERNEL_64 in xloadflags */
#define BOOT_LOADED_HIGH     0x01
#define BOOT_CAN_USE_HEAP    0x80
#define BOOT_XLF_KERNEL_64   0x01
#define BOOT_XLF_CAN_BE_LOADED_ABOVE_4G 0x02

#define E820_RAM      1
#define E820_RESERVED 2

/* What the loaders found out about a kernel, on top of struct kernel_info. */
struct boot_image {
	enum boot_protocol proto;
	bool is_linux;             /* a Linux kernel (bzImage, or a Linux ELF) */
	uint8_t setup_hdr[BOOT_SETUP_HDR_MAX]; /* bzImage: setup header bytes 0x1f1.. */
	size_t setup_hdr_len;
	uint32_t initrd_addr_max;  /* highest byte address the initrd may use */
	uint32_t cmdline_size;     /* the kernel's limit, without the NUL */
};

/*
 * Loads `img` with the protocol its format calls for: an ELF with a PVH note
 * boots through PVH, a 64-bit ELF without one through the 64-bit Linux entry
 * (its e_entry), a bzImage (HdrS) through the 64-bit Linux entry. Returns 0,
 * -ENOEXEC (none of these, with a reason), -EINVAL (malformed/truncated),
 * -ERANGE (does not fit in RAM); err holds one line.
 */
int MUST_CHECK boot_load_kernel(struct guest_mem *m, const uint8_t *img, size_t len,
				struct kernel_info *ki, struct boot_image *bi,
				char *err, size_t errlen);

/* Places the initrd as high as the kernel allows (initrd_addr_max) above
 * the kernel. */
int MUST_CHECK boot_place_initrd(struct guest_mem *m, const struct kernel_info *ki,
				 const struct boot_image *bi, const uint8_t *img, size_t len,
				 uint64_t *gpa, char *err, size_t errlen);

/* Writes the boot information for the chosen protocol: the zero page
 * (e820, command line, initrd, RSDP), the entry GDT and page tables for
 * Linux64, or hvm_start_info for PVH. rsdp 0 = no ACPI. */
int MUST_CHECK boot_setup(struct guest_mem *m, const struct boot_image *bi,
			  const char *cmdline, uint64_t initrd_gpa, uint64_t initrd_len,
			  uint64_t rsdp, char *err, size_t errlen);

#endif

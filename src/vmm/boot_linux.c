/*
 * Booting Linux: the protocol dispatcher, the bzImage setup header, and the
 * 64-bit boot protocol's zero page, e820 map, GDT and identity page tables
 * (Documentation/x86/boot.rst, "64-bit Boot Protocol").
 *
 * The image is hostile input: the setup header is checked completely
 * (magic, version, flags, sizes against the file, load range against RAM)
 * before a byte is copied.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot.h"
#include "platform.h"

/* Entry GDT: flat 64-bit code at __BOOT_CS (0x10), flat data at __BOOT_DS
 * (0x18), as boot.rst requires. */
static const uint64_t boot_gdt[4] = {
	0,
	0,
	0x00af9b000000ffffULL, /* code: P, DPL0, S, type 0xb, L, G */
	0x00cf93000000ffffULL, /* data: P, DPL0, S, type 0x3, D/B, G */
};

#define PTE_P   0x1ULL
#define PTE_RW  0x2ULL
#define PTE_PS  0x80ULL
#define BZ_PM_ENTRY64 0x200 /* startup_64 is 0x200 into the protected-mode code */
#define BZ_HDR_MAX_END BOOT_SETUP_HDR_END

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void wr32(uint8_t *p, uint32_t v) { wr16(p, (uint16_t)v); wr16(p + 2, (uint16_t)(v >> 16)); }
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

static bool is_bzimage(const uint8_t *img, size_t len)
{
	return len >= BP_HEADER + 4 && rd16(img + BP_BOOT_FLAG) == BOOT_FLAG_MAGIC &&
	       rd32(img + BP_HEADER) == BOOT_HDRS_MAGIC;
}

/* --- bzImage --------------------------------------------------------------- */

static int bzimage_check(const uint8_t *img, size_t len, uint64_t *pm_off, uint64_t *load,
			 uint64_t *span, char *err, size_t errlen)
{
	uint64_t setup_sects, syssize, hdr_end, align, init_size;
	uint16_t version;

	/* Before any read past the magic (fuzz_loader found the version read
	 * first, past the end of a 0x206-byte image). */
	if (len < BP_INIT_SIZE + 4) {
		snprintf(err, errlen, "bzImage truncated inside its setup header (%zu bytes)", len);
		return -EINVAL;
	}
	version = rd16(img + BP_VERSION);
	if (version < BOOT_MIN_VERSION) {
		snprintf(err, errlen, "bzImage boot protocol %u.%02u is older than 2.12 (no 64-bit entry)",
			 version >> 8, version & 0xff);
		return -ENOEXEC;
	}
	if (!(img[BP_LOADFLAGS] & BOOT_LOADED_HIGH)) {
		snprintf(err, errlen, "a zImage (loaded low) is not supported; use a bzImage");
		return -ENOEXEC;
	}
	if (!(rd16(img + BP_XLOADFLAGS) & BOOT_XLF_KERNEL_64)) {
		snprintf(err, errlen, "bzImage has no 64-bit entry point (not an x86-64 kernel?)");
		return -ENOEXEC;
	}
	hdr_end = BP_JUMP + 2 + (uint64_t)img[BP_JUMP + 1];
	if (hdr_end < BP_INIT_SIZE + 4 || hdr_end > BZ_HDR_MAX_END || hdr_end > len) {
		snprintf(err, errlen, "bzImage setup header length 0x%llx is malformed",
			 (unsigned long long)hdr_end);
		return -EINVAL;
	}
	setup_sects = img[BP_SETUP_SECTS] ? img[BP_SETUP_SECTS] : 4;
	*pm_off = (setup_sects + 1) * 512;
	syssize = (uint64_t)rd32(img + BP_SYSSIZE) * 16; /* 16-byte paragraphs */
	if (*pm_off >= len || syssize == 0 || syssize > ALIGN_UP((uint64_t)len, 16) - *pm_off) {
		snprintf(err, errlen, "bzImage truncated: its header announces %llu bytes of kernel "
			 "after %llu bytes of setup, the file has %zu",
			 (unsigned long long)syssize, (unsigned long long)*pm_off, len);
		return -EINVAL;
	}
	align = rd32(img + BP_KERNEL_ALIGNMENT);
	*load = rd64(img + BP_PREF_ADDRESS);
	init_size = rd32(img + BP_INIT_SIZE);
	if (align == 0 || (align & (align - 1)) || (*load & (align - 1))) {
		snprintf(err, errlen, "bzImage kernel_alignment 0x%llx / pref_address 0x%llx are malformed",
			 (unsigned long long)align, (unsigned long long)*load);
		return -EINVAL;
	}
	if (!img[BP_RELOCATABLE] && *load < BOOT_KERNEL_MIN_GPA) {
		snprintf(err, errlen, "non-relocatable bzImage wants to load at 0x%llx, below 1 MiB",
			 (unsigned long long)*load);
		return -ENOEXEC;
	}
	*span = MAX(init_size, len - *pm_off);
	return 0;
}

static int bzimage_load(struct guest_mem *m, const uint8_t *img, size_t len,
			struct kernel_info *ki, struct boot_image *bi, char *err, size_t errlen)
{
	uint64_t pm_off, load, span;
	uint8_t *dst;
	int ret;

	ret = bzimage_check(img, len, &pm_off, &load, &span, err, errlen);
	if (ret)
		return ret;
	if (load < BOOT_KERNEL_MIN_GPA || !mem_is_ram(m, load, span)) {
		snprintf(err, errlen, "bzImage needs RAM at 0x%llx-0x%llx (its init_size); guest RAM "
			 "is %llu MiB: raise --memory", (unsigned long long)load,
			 (unsigned long long)(load + span), (unsigned long long)(m->size / MiB));
		return -ERANGE;
	}
	dst = mem_ptr(m, load, len - pm_off);
	memcpy(dst, img + pm_off, len - pm_off);

	memset(ki, 0, sizeof(*ki));
	ki->entry = load + BZ_PM_ENTRY64;
	ki->lowest = load;
	ki->highest = load + span;
	ki->is_linux = true;
	bi->proto = BOOT_PROTO_LINUX64;
	bi->is_linux = true;
	/* bzimage_check bounded the header at BOOT_SETUP_HDR_END, which
	 * setup_hdr holds (it was 0x80 bytes, 15 short of that limit: a long
	 * header overwrote setup_hdr_len; found by fuzz_loader). */
	bi->setup_hdr_len = BP_JUMP + 2 + (size_t)img[BP_JUMP + 1] - BP_HDR;
	if (bi->setup_hdr_len > sizeof(bi->setup_hdr))
		return -EINVAL;
	memcpy(bi->setup_hdr, img + BP_HDR, bi->setup_hdr_len);
	bi->initrd_addr_max = rd32(img + BP_INITRD_ADDR_MAX);
	bi->cmdline_size = rd32(img + BP_CMDLINE_SIZE);
	return 0;
}

/* --- dispatcher ------------------------------------------------------------ */

int boot_load_kernel(struct guest_mem *m, const uint8_t *img, size_t len,
		     struct kernel_info *ki, struct boot_image *bi, char *err, size_t errlen)
{
	int ret;

	memset(bi, 0, sizeof(*bi));
	if (is_bzimage(img, len))
		return bzimage_load(m, img, len, ki, bi, err, errlen);
	if (len < 4 || memcmp(img, "\177ELF", 4)) {
		snprintf(err, errlen, "not a kernel: not an ELF file and not a bzImage "
			 "(no ELF magic, no HdrS setup header)");
		return -ENOEXEC;
	}
	ret = loader_elf_load_any(m, img, len, ki, err, errlen);
	if (ret)
		return ret;
	bi->proto = ki->pvh ? BOOT_PROTO_PVH : BOOT_PROTO_LINUX64;
	bi->is_linux = ki->is_linux;
	/* A vmlinux has no setup header: the kernel takes what boot.rst
	 * says a loader fills in, and 64-bit kernels accept an initrd
	 * anywhere below 4 GiB. */
	bi->initrd_addr_max = 0xffffffffu;
	bi->cmdline_size = BOOT_CMDLINE_MAX - 1;
	return 0;
}

int boot_place_initrd(struct guest_mem *m, const struct kernel_info *ki,
		      const struct boot_image *bi, const uint8_t *img, size_t len,
		      uint64_t *gpa, char *err, size_t errlen)
{
	uint64_t top = MIN(m->low_size, (uint64_t)bi->initrd_addr_max + 1);
	uint64_t floor = ALIGN_UP(ki->highest, MEM_PAGE_SIZE);
	uint64_t start;

	if (bi->proto == BOOT_PROTO_PVH)
		return loader_place_initrd(m, ki, img, len, gpa, err, errlen);
	top = ALIGN_DOWN(top, MEM_PAGE_SIZE);
	if (len == 0) {
		snprintf(err, errlen, "initrd is empty");
		return -EINVAL;
	}
	if (len > top || ALIGN_DOWN(top - len, MEM_PAGE_SIZE) < floor) {
		snprintf(err, errlen, "initrd (%zu bytes) does not fit in guest RAM between the kernel "
			 "and 0x%llx (the kernel's initrd_addr_max or the end of low RAM): raise --memory",
			 len, (unsigned long long)top);
		return -ENOSPC;
	}
	start = ALIGN_DOWN(top - len, MEM_PAGE_SIZE);
	memcpy(mem_ptr(m, start, len), img, len);
	*gpa = start;
	return 0;
}

/* --- boot information ------------------------------------------------------ */

static unsigned int e820_add(uint8_t *zp, unsigned int n, uint64_t addr, uint64_t size, uint32_t type)
{
	uint8_t *e = zp + BP_E820_TABLE + n * 20;

	if (size == 0 || n >= BP_E820_MAX)
		return n;
	wr64(e, addr);
	wr64(e + 8, size);
	wr32(e + 16, type);
	return n + 1;
}

/* RAM as the PVH map has it, plus the reserved areas Linux must not use:
 * the BIOS area holding the ACPI tables and the PCI ECAM (which Linux wants
 * reserved before it trusts MCFG). */
static unsigned int build_e820(struct guest_mem *m, uint8_t *zp)
{
	unsigned int n = 0, i;

	n = e820_add(zp, n, 0, BOOT_LOW_RAM_END, E820_RAM);
	n = e820_add(zp, n, BOOT_ACPI_GPA, BOOT_ACPI_SIZE, E820_RESERVED);
	for (i = 0; i < m->nr_regions; i++) {
		uint64_t start = MAX(m->regions[i].gpa, BOOT_KERNEL_MIN_GPA);
		uint64_t end = m->regions[i].gpa + m->regions[i].size;

		if (end > start)
			n = e820_add(zp, n, start, end - start, E820_RAM);
		if (i == 0)
			n = e820_add(zp, n, PCI_ECAM_BASE, PCI_ECAM_SIZE, E820_RESERVED);
	}
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	return n;
}

/* Identity map of the first 4 GiB with 2 MiB pages, and the entry GDT. */
static int write_entry_tables(struct guest_mem *m)
{
	uint64_t pml4[512] = { 0 }, pdpt[512] = { 0 }, pd[512];
	unsigned int i, j;

	pml4[0] = BOOT_PDPT_GPA | PTE_P | PTE_RW;
	for (i = 0; i < 4; i++) {
		pdpt[i] = (BOOT_PD_GPA + i * 0x1000ULL) | PTE_P | PTE_RW;
		for (j = 0; j < 512; j++)
			pd[j] = ((uint64_t)i * GiB + (uint64_t)j * 2 * MiB) | PTE_P | PTE_RW | PTE_PS;
		if (mem_write(m, BOOT_PD_GPA + i * 0x1000ULL, pd, sizeof(pd)))
			return -ENOSPC;
	}
	if (mem_write(m, BOOT_PML4_GPA, pml4, sizeof(pml4)) ||
	    mem_write(m, BOOT_PDPT_GPA, pdpt, sizeof(pdpt)) ||
	    mem_write(m, BOOT_GDT_GPA, boot_gdt, sizeof(boot_gdt)))
		return -ENOSPC;
	return 0;
}

static int linux64_setup(struct guest_mem *m, const struct boot_image *bi, const char *cmdline,
			 uint64_t initrd_gpa, uint64_t initrd_len, uint64_t rsdp,
			 char *err, size_t errlen)
{
	uint8_t zp[BP_SIZE] = { 0 };
	size_t cmdlen = cmdline ? strlen(cmdline) : 0;
	uint32_t limit = bi->cmdline_size ? MIN(bi->cmdline_size, BOOT_CMDLINE_MAX - 1) :
			 BOOT_CMDLINE_MAX - 1;

	if (cmdlen > limit) {
		snprintf(err, errlen, "command line is %zu bytes; this kernel takes at most %u",
			 cmdlen, limit);
		return -E2BIG;
	}
	if (bi->setup_hdr_len) {
		memcpy(zp + BP_HDR, bi->setup_hdr, bi->setup_hdr_len);
	} else {
		/* vmlinux: the fields boot.rst says a boot loader provides. */
		wr16(zp + BP_BOOT_FLAG, BOOT_FLAG_MAGIC);
		wr32(zp + BP_HEADER, BOOT_HDRS_MAGIC);
		wr16(zp + BP_VERSION, 0x020f);
		wr32(zp + BP_KERNEL_ALIGNMENT, 0x200000);
	}
	zp[BP_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
	zp[BP_LOADFLAGS] = (uint8_t)((zp[BP_LOADFLAGS] | BOOT_LOADED_HIGH) & ~BOOT_CAN_USE_HEAP);
	if (mem_write(m, BOOT_CMDLINE_GPA, cmdline ? cmdline : "", cmdlen + 1))
		goto fault;
	wr32(zp + BP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE_GPA);
	wr32(zp + BP_EXT_CMD_LINE_PTR, 0);
	wr32(zp + BP_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	wr32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd_gpa >> 32));
	wr32(zp + BP_RAMDISK_SIZE, (uint32_t)initrd_len);
	wr32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_len >> 32));
	wr64(zp + BP_ACPI_RSDP_ADDR, rsdp);
	build_e820(m, zp);
	if (mem_write(m, BOOT_ZERO_PAGE_GPA, zp, BP_SIZE) || write_entry_tables(m))
		goto fault;
	return 0;
fault:
	snprintf(err, errlen, "guest RAM too small for the boot information");
	return -ENOSPC;
}

/*
 * The reset vector (F000:FFF0). skiff has no firmware, but Linux's reboot on
 * hardware-reduced ACPI without EFI (reboot type "EFI", then "BIOS") jumps
 * there in real mode expecting the BIOS to reset the machine. This stub
 * does what that BIOS would: pulse the reset line through the i8042.
 */
static const uint8_t reset_vector[] = {
	0xb0, 0xfe,  /* mov $0xfe, %al */
	0xe6, 0x64,  /* out %al, $0x64: i8042 "pulse reset line" */
	0xf4,        /* hlt */
	0xeb, 0xf9,  /* jmp back to the mov */
};

int boot_setup(struct guest_mem *m, const struct boot_image *bi, const char *cmdline,
	       uint64_t initrd_gpa, uint64_t initrd_len, uint64_t rsdp, char *err, size_t errlen)
{
	int ret;

	if (mem_write(m, BOOT_RESET_VECTOR_GPA, reset_vector, sizeof(reset_vector))) {
		snprintf(err, errlen, "guest RAM too small for the boot information");
		return -ENOSPC;
	}

	if (bi->proto == BOOT_PROTO_LINUX64)
		return linux64_setup(m, bi, cmdline, initrd_gpa, initrd_len, rsdp, err, errlen);
	ret = loader_pvh_setup(m, cmdline, initrd_gpa, initrd_len, err, errlen);
	if (ret || !rsdp)
		return ret;
	if (mem_write(m, BOOT_START_INFO_GPA + offsetof(struct hvm_start_info, rsdp_paddr),
		      &rsdp, sizeof(rsdp))) {
		snprintf(err, errlen, "guest RAM too small for the boot information");
		return -ENOSPC;
	}
	return 0;
}

/*
 * ELF kernels with a Xen PVH entry note, and the PVH boot information
 * (hvm_start_info, memory map, command line, initrd module).
 *
 * The image is hostile input: every header field is checked against the
 * image length and every destination against guest RAM before a byte moves.
 */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "loader.h"

#define MAX_PHDRS 128
#define MAX_NOTES 256

/* One program header, widened to 64 bits whatever the ELF class. */
struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* Is [off, off+n) inside an image of len bytes? */
static bool in_image(size_t len, uint64_t off, uint64_t n)
{
	return off <= len && n <= len - off;
}

static int read_phdr(const uint8_t *img, bool is64, uint64_t at, struct phdr *ph)
{
	if (is64) {
		ph->type = rd32(img + at + offsetof(Elf64_Phdr, p_type));
		ph->offset = rd64(img + at + offsetof(Elf64_Phdr, p_offset));
		ph->paddr = rd64(img + at + offsetof(Elf64_Phdr, p_paddr));
		ph->filesz = rd64(img + at + offsetof(Elf64_Phdr, p_filesz));
		ph->memsz = rd64(img + at + offsetof(Elf64_Phdr, p_memsz));
	} else {
		ph->type = rd32(img + at + offsetof(Elf32_Phdr, p_type));
		ph->offset = rd32(img + at + offsetof(Elf32_Phdr, p_offset));
		ph->paddr = rd32(img + at + offsetof(Elf32_Phdr, p_paddr));
		ph->filesz = rd32(img + at + offsetof(Elf32_Phdr, p_filesz));
		ph->memsz = rd32(img + at + offsetof(Elf32_Phdr, p_memsz));
	}
	return 0;
}

/* Walks the notes of one PT_NOTE segment (ELF gABI: 4-byte aligned name and
 * descriptor for both classes as used by Linux and Xen). */
static int scan_notes(const uint8_t *img, size_t len, const struct phdr *ph,
		      struct kernel_info *ki, bool *have_entry, char *err, size_t errlen)
{
	uint64_t pos = ph->offset, end;
	unsigned int n = 0;

	if (!in_image(len, ph->offset, ph->filesz)) {
		snprintf(err, errlen, "note segment lies outside the file");
		return -EINVAL;
	}
	end = ph->offset + ph->filesz;
	while (end - pos >= 12 && n++ < MAX_NOTES) {
		uint32_t namesz = rd32(img + pos), descsz = rd32(img + pos + 4);
		uint32_t type = rd32(img + pos + 8);
		uint64_t name = pos + 12;
		uint64_t desc = name + ALIGN_UP((uint64_t)namesz, 4);
		uint64_t next = desc + ALIGN_UP((uint64_t)descsz, 4);

		if (next > end || next <= pos) {
			snprintf(err, errlen, "malformed ELF note at file offset 0x%llx",
				 (unsigned long long)pos);
			return -EINVAL;
		}
		if (namesz == 4 && !memcmp(img + name, "Xen", 4) &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (descsz != 4 && descsz != 8) {
				snprintf(err, errlen, "PVH entry note has a %u-byte descriptor", descsz);
				return -EINVAL;
			}
			ki->entry = rd32(img + desc);
			*have_entry = true;
		} else if (namesz == 4 && !memcmp(img + name, "Xen", 4) &&
			   type == XEN_ELFNOTE_GUEST_OS && descsz >= 5 &&
			   !memcmp(img + desc, "linux", 5)) {
			ki->is_linux = true;
		} else if (namesz == 6 && !memcmp(img + name, "Linux", 6)) {
			ki->is_linux = true;
		} else if (namesz == sizeof(SKIFF_NOTE_NAME) &&
			   !memcmp(img + name, SKIFF_NOTE_NAME, sizeof(SKIFF_NOTE_NAME)) &&
			   type == SKIFF_NOTE_TEST_GUEST && descsz >= 4) {
			ki->skiff_guest = true;
			ki->skiff_flags = rd32(img + desc);
		}
		pos = next;
	}
	return 0;
}

static int check_header(const uint8_t *img, size_t len, bool *is64, char *err, size_t errlen)
{
	uint16_t type, machine;

	if (len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG)) {
		snprintf(err, errlen, "not an ELF file");
		return -ENOEXEC;
	}
	if (img[EI_CLASS] != ELFCLASS64 && img[EI_CLASS] != ELFCLASS32) {
		snprintf(err, errlen, "ELF class %u is neither ELF32 nor ELF64", img[EI_CLASS]);
		return -ENOEXEC;
	}
	*is64 = img[EI_CLASS] == ELFCLASS64;
	if (img[EI_DATA] != ELFDATA2LSB) {
		snprintf(err, errlen, "ELF file is not little-endian");
		return -ENOEXEC;
	}
	if (len < (*is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr))) {
		snprintf(err, errlen, "ELF file truncated inside its header (%zu bytes)", len);
		return -EINVAL;
	}
	type = rd16(img + EI_NIDENT);
	machine = rd16(img + EI_NIDENT + 2);
	if (machine != (*is64 ? EM_X86_64 : EM_386)) {
		snprintf(err, errlen, "ELF machine %u is not x86 (%s)", machine, *is64 ? "x86-64" : "i386");
		return -ENOEXEC;
	}
	if (type != ET_EXEC) {
		snprintf(err, errlen, "ELF type %u is not an executable", type);
		return -ENOEXEC;
	}
	return 0;
}

/* need_pvh false: an ELF64 without a PVH note is accepted for the 64-bit
 * Linux entry (ki->pvh false, ki->entry = e_entry). */
static int elf_load(struct guest_mem *m, const uint8_t *img, size_t len,
		    struct kernel_info *ki, bool need_pvh, char *err, size_t errlen)
{
	uint64_t phoff;
	uint16_t phentsize, phnum, i;
	bool is64, have_entry = false, loaded = false;
	int ret;

	memset(ki, 0, sizeof(*ki));
	ret = check_header(img, len, &is64, err, errlen);
	if (ret)
		return ret;
	if (is64) {
		phoff = rd64(img + offsetof(Elf64_Ehdr, e_phoff));
		phentsize = rd16(img + offsetof(Elf64_Ehdr, e_phentsize));
		phnum = rd16(img + offsetof(Elf64_Ehdr, e_phnum));
	} else {
		phoff = rd32(img + offsetof(Elf32_Ehdr, e_phoff));
		phentsize = rd16(img + offsetof(Elf32_Ehdr, e_phentsize));
		phnum = rd16(img + offsetof(Elf32_Ehdr, e_phnum));
	}
	if (phnum == 0 || phnum > MAX_PHDRS ||
	    phentsize < (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) ||
	    !in_image(len, phoff, (uint64_t)phnum * phentsize)) {
		snprintf(err, errlen, "ELF program headers are malformed or outside the file "
			 "(%u headers of %u bytes at 0x%llx, file is %zu bytes)",
			 phnum, phentsize, (unsigned long long)phoff, len);
		return -EINVAL;
	}

	/* Pass 1: validate every segment, so a bad one leaves RAM untouched. */
	ki->lowest = UINT64_MAX;
	for (i = 0; i < phnum; i++) {
		struct phdr ph;

		read_phdr(img, is64, phoff + (uint64_t)i * phentsize, &ph);
		if (ph.type == PT_NOTE) {
			ret = scan_notes(img, len, &ph, ki, &have_entry, err, errlen);
			if (ret)
				return ret;
		}
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		if (ph.filesz > ph.memsz || !in_image(len, ph.offset, ph.filesz)) {
			snprintf(err, errlen, "ELF segment %u: file range 0x%llx+0x%llx is outside the "
				 "file or larger than its memory size", i,
				 (unsigned long long)ph.offset, (unsigned long long)ph.filesz);
			return -EINVAL;
		}
		if (ph.paddr < BOOT_KERNEL_MIN_GPA || !mem_is_ram(m, ph.paddr, ph.memsz)) {
			snprintf(err, errlen, "ELF segment %u at 0x%llx-0x%llx does not fit in guest RAM "
				 "(%llu MiB; kernels load between 1 MiB and the end of RAM below 3 GiB)",
				 i, (unsigned long long)ph.paddr,
				 (unsigned long long)(ph.paddr + ph.memsz),
				 (unsigned long long)(m->size / MiB));
			return -ERANGE;
		}
		ki->lowest = MIN(ki->lowest, ph.paddr);
		ki->highest = MAX(ki->highest, ph.paddr + ph.memsz);
		loaded = true;
	}
	if (!loaded) {
		snprintf(err, errlen, "ELF file has no loadable segment");
		return -EINVAL;
	}
	if (!have_entry && (need_pvh || !is64)) {
		snprintf(err, errlen, "ELF kernel has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)%s",
			 is64 ? "" : " and a 32-bit ELF cannot use the 64-bit Linux entry");
		return -ENOEXEC;
	}
	if (!have_entry && !ki->is_linux) {
		snprintf(err, errlen, "not a kernel: an ELF executable with neither a PVH entry note "
			 "nor Linux's ELF notes");
		return -ENOEXEC;
	}
	ki->pvh = have_entry;
	if (!have_entry)
		ki->entry = rd64(img + offsetof(Elf64_Ehdr, e_entry));
	if (ki->entry < ki->lowest || ki->entry >= ki->highest || !mem_is_ram(m, ki->entry, 1)) {
		snprintf(err, errlen, "%s entry 0x%llx is not inside the kernel's loaded segments",
			 have_entry ? "PVH" : "ELF",
			 (unsigned long long)ki->entry);
		return -ERANGE;
	}

	/* Pass 2: copy. Fresh memfd RAM is zero, but a reset reloads, so the
	 * bss part is cleared explicitly. */
	for (i = 0; i < phnum; i++) {
		struct phdr ph;
		uint8_t *dst;

		read_phdr(img, is64, phoff + (uint64_t)i * phentsize, &ph);
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		dst = mem_ptr(m, ph.paddr, ph.memsz);
		memcpy(dst, img + ph.offset, ph.filesz);
		memset(dst + ph.filesz, 0, ph.memsz - ph.filesz);
	}
	return 0;
}

int loader_elf_load(struct guest_mem *m, const uint8_t *img, size_t len,
		    struct kernel_info *ki, char *err, size_t errlen)
{
	return elf_load(m, img, len, ki, true, err, errlen);
}

int loader_elf_load_any(struct guest_mem *m, const uint8_t *img, size_t len,
			struct kernel_info *ki, char *err, size_t errlen)
{
	return elf_load(m, img, len, ki, false, err, errlen);
}

int loader_place_initrd(struct guest_mem *m, const struct kernel_info *ki,
			const uint8_t *img, size_t len, uint64_t *gpa, char *err, size_t errlen)
{
	uint64_t top = ALIGN_DOWN(m->low_size, MEM_PAGE_SIZE);
	uint64_t start;
	uint8_t *dst;

	if (len == 0) {
		snprintf(err, errlen, "initrd is empty");
		return -EINVAL;
	}
	if (len > top || ALIGN_DOWN(top - len, MEM_PAGE_SIZE) < ALIGN_UP(ki->highest, MEM_PAGE_SIZE)) {
		snprintf(err, errlen, "initrd (%zu bytes) does not fit in guest RAM above the kernel "
			 "(%llu bytes free below 3 GiB): raise --memory", len,
			 (unsigned long long)(top > ki->highest ? top - ALIGN_UP(ki->highest, MEM_PAGE_SIZE) : 0));
		return -ENOSPC;
	}
	start = ALIGN_DOWN(top - len, MEM_PAGE_SIZE);
	dst = mem_ptr(m, start, len);
	if (!dst) {
		snprintf(err, errlen, "initrd range 0x%llx+%zu is not RAM", (unsigned long long)start, len);
		return -ERANGE;
	}
	memcpy(dst, img, len);
	*gpa = start;
	return 0;
}

int loader_pvh_setup(struct guest_mem *m, const char *cmdline,
		     uint64_t initrd_gpa, uint64_t initrd_len, char *err, size_t errlen)
{
	struct hvm_memmap_table_entry map[BOOT_MEMMAP_MAX];
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.memmap_paddr = BOOT_MEMMAP_GPA,
	};
	size_t cmdlen = cmdline ? strlen(cmdline) : 0;
	unsigned int n = 0, i;

	if (cmdlen >= BOOT_CMDLINE_MAX) {
		snprintf(err, errlen, "command line is %zu bytes; the limit is %d", cmdlen,
			 BOOT_CMDLINE_MAX - 1);
		return -E2BIG;
	}
	if (mem_write(m, BOOT_CMDLINE_GPA, cmdline ? cmdline : "", cmdlen + 1))
		goto fault;
	si.cmdline_paddr = BOOT_CMDLINE_GPA;

	/* Conventional memory, then RAM from 1 MiB; 640K-1M stays a hole as on PCs. */
	map[n++] = (struct hvm_memmap_table_entry){ 0, BOOT_LOW_RAM_END, HVM_MEMMAP_RAM, 0 };
	for (i = 0; i < m->nr_regions; i++) {
		uint64_t start = m->regions[i].gpa, end = start + m->regions[i].size;

		if (start < BOOT_KERNEL_MIN_GPA)
			start = BOOT_KERNEL_MIN_GPA;
		if (end > start)
			map[n++] = (struct hvm_memmap_table_entry){ start, end - start, HVM_MEMMAP_RAM, 0 };
	}
	si.memmap_entries = n;
	if (mem_write(m, BOOT_MEMMAP_GPA, map, n * sizeof(map[0])))
		goto fault;

	if (initrd_len) {
		struct hvm_modlist_entry mod = { .paddr = initrd_gpa, .size = initrd_len };

		if (mem_write(m, BOOT_MODLIST_GPA, &mod, sizeof(mod)))
			goto fault;
		si.nr_modules = 1;
		si.modlist_paddr = BOOT_MODLIST_GPA;
	}
	if (mem_write(m, BOOT_START_INFO_GPA, &si, sizeof(si)))
		goto fault;
	return 0;
fault:
	snprintf(err, errlen, "guest RAM too small for the boot information");
	return -ENOSPC;
}

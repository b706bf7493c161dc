/* ELF images for the loader suites: see elf_image.h. */
#include <check.h>
#include <elf.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf_image.h"

size_t put_note(uint8_t *p, const char *name, uint32_t namesz, uint32_t type,
		const void *desc, uint32_t descsz)
{
	size_t n = 12;

	memcpy(p, &namesz, 4);
	memcpy(p + 4, &descsz, 4);
	memcpy(p + 8, &type, 4);
	memset(p + 12, 0, ALIGN_UP(namesz, 4u) + ALIGN_UP(descsz, 4u));
	memcpy(p + n, name, namesz);
	n += ALIGN_UP(namesz, 4u);
	memcpy(p + n, desc, descsz);
	n += ALIGN_UP(descsz, 4u);
	return n;
}

void set_notes(struct image *im, bool xen, bool skiff)
{
	uint32_t entry = ENTRY, flags = SKIFF_NOTE_F_ALL_CPUS_AT_ENTRY;
	size_t n = 0;

	/* An unrelated note first, as real kernels have (GNU build id). */
	n += put_note(im->notes + n, "GNU", 4, NT_GNU_BUILD_ID, "0123456789abcdef0123", 20);
	if (xen)
		n += put_note(im->notes + n, "Xen", 4, XEN_ELFNOTE_PHYS32_ENTRY, &entry, 4);
	if (skiff)
		n += put_note(im->notes + n, SKIFF_NOTE_NAME, sizeof(SKIFF_NOTE_NAME),
			      SKIFF_NOTE_TEST_GUEST, &flags, 4);
	im->notes_len = n;
	im->ph[1].filesz = n;
	im->ph[1].memsz = 0;
}

void image_init(struct image *im, bool is64, bool skiff)
{
	memset(im, 0, sizeof(*im));
	im->is64 = is64;
	memcpy(im->magic, ELFMAG, SELFMAG);
	im->cls = is64 ? ELFCLASS64 : ELFCLASS32;
	im->data = ELFDATA2LSB;
	im->type = ET_EXEC;
	im->machine = is64 ? EM_X86_64 : EM_386;
	im->phentsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	im->phnum = 3;
	im->phoff = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	im->ph[0] = (struct seg){ PT_LOAD, SEG0_OFF, SEG0_GPA, SEG0_FILESZ, SEG0_MEMSZ };
	im->ph[1] = (struct seg){ PT_NOTE, NOTES_OFF, 0, 0, 0 };
	im->notes_off = NOTES_OFF;
	im->ph[2] = (struct seg){ PT_LOAD, SEG1_OFF, SEG1_GPA, SEG1_SZ, SEG1_SZ };
	set_notes(im, true, skiff);
	im->len = SEG1_OFF + SEG1_SZ;
}

uint8_t seg0_byte(size_t i)
{
	return (uint8_t)(i * 7 + 1);
}

uint8_t seg1_byte(size_t i)
{
	return (uint8_t)(0xa5 ^ i);
}

/* Does program header i (of `size` bytes) fit in buf? Broken phoff values
 * (past the buffer, or wrapping) leave the header out of the bytes. */
static bool fits(const struct image *im, unsigned int i, size_t size)
{
	return im->phoff <= sizeof(im->buf) &&
	       (uint64_t)i * im->phentsize + size <= sizeof(im->buf) - im->phoff;
}

void image_build(struct image *im)
{
	unsigned int i;

	memset(im->buf, 0, sizeof(im->buf));
	if (im->is64) {
		Elf64_Ehdr eh = {
			.e_type = im->type, .e_machine = im->machine, .e_version = EV_CURRENT,
			.e_entry = 0xdeadbeef, /* ignored: the PVH note has the entry */
			.e_phoff = im->phoff, .e_ehsize = sizeof(Elf64_Ehdr),
			.e_phentsize = im->phentsize, .e_phnum = im->phnum,
		};

		memcpy(eh.e_ident, im->magic, 4);
		eh.e_ident[EI_CLASS] = im->cls;
		eh.e_ident[EI_DATA] = im->data;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(im->buf, &eh, sizeof(eh));
		for (i = 0; i < MAX_SEGS && i < im->phnum; i++) {
			Elf64_Phdr ph = {
				.p_type = im->ph[i].type, .p_offset = im->ph[i].offset,
				.p_vaddr = 0xffffffff80000000ULL + im->ph[i].paddr,
				.p_paddr = im->ph[i].paddr, .p_filesz = im->ph[i].filesz,
				.p_memsz = im->ph[i].memsz, .p_align = 0x1000,
			};

			if (fits(im, i, sizeof(ph)))
				memcpy(im->buf + im->phoff + (uint64_t)i * im->phentsize, &ph, sizeof(ph));
		}
	} else {
		Elf32_Ehdr eh = {
			.e_type = im->type, .e_machine = im->machine, .e_version = EV_CURRENT,
			.e_entry = 0xdeadbeef, .e_phoff = (Elf32_Off)im->phoff,
			.e_ehsize = sizeof(Elf32_Ehdr), .e_phentsize = im->phentsize,
			.e_phnum = im->phnum,
		};

		memcpy(eh.e_ident, im->magic, 4);
		eh.e_ident[EI_CLASS] = im->cls;
		eh.e_ident[EI_DATA] = im->data;
		eh.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(im->buf, &eh, sizeof(eh));
		for (i = 0; i < MAX_SEGS && i < im->phnum; i++) {
			Elf32_Phdr ph = {
				.p_type = im->ph[i].type, .p_offset = (Elf32_Off)im->ph[i].offset,
				.p_vaddr = (Elf32_Addr)im->ph[i].paddr,
				.p_paddr = (Elf32_Addr)im->ph[i].paddr,
				.p_filesz = (Elf32_Word)im->ph[i].filesz,
				.p_memsz = (Elf32_Word)im->ph[i].memsz, .p_align = 0x1000,
			};

			if (fits(im, i, sizeof(ph)))
				memcpy(im->buf + im->phoff + (uint64_t)i * im->phentsize, &ph, sizeof(ph));
		}
	}
	memcpy(im->buf + im->notes_off, im->notes, im->notes_len);
	for (i = 0; i < SEG0_FILESZ; i++)
		im->buf[SEG0_OFF + i] = seg0_byte(i);
	for (i = 0; i < SEG1_SZ; i++)
		im->buf[SEG1_OFF + i] = seg1_byte(i);
}

/* A copy of `len` bytes ending right before an inaccessible page. */
struct guarded {
	uint8_t *map;
	size_t map_len;
	uint8_t *data;
};

static void guard_copy(struct guarded *g, const uint8_t *src, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t data_pages = (len + page - 1) / page;

	g->map_len = (data_pages + 1) * page;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(g->map, MAP_FAILED);
	ck_assert_int_eq(mprotect(g->map + data_pages * page, page, PROT_NONE), 0);
	g->data = g->map + data_pages * page - len;
	if (len)
		memcpy(g->data, src, len);
	/* Read-only, as the loader gets the kernel file mapped. */
	ck_assert_int_eq(mprotect(g->map, data_pages * page, PROT_READ), 0);
}

static void guard_free(struct guarded *g)
{
	munmap(g->map, g->map_len);
}

int load_bytes(struct guest_mem *m, const uint8_t *bytes, size_t len,
	       struct kernel_info *ki, char *err, size_t errlen)
{
	struct guarded g;
	int ret;

	guard_copy(&g, bytes, len);
	err[0] = '\0';
	ret = loader_elf_load(m, g.data, len, ki, err, errlen);
	guard_free(&g);
	return ret;
}

int load(struct guest_mem *m, struct image *im, struct kernel_info *ki, char *err, size_t errlen)
{
	image_build(im);
	return load_bytes(m, im->buf, im->len, ki, err, errlen);
}

struct guest_mem *make_mem(uint64_t size)
{
	struct guest_mem *m = NULL;

	ck_assert_int_eq(mem_create(size, &m), 0);
	return m;
}

void expect_load_err_in(uint64_t ram, struct image *im, size_t len, int want, const char *what)
{
	struct guest_mem *m = make_mem(ram);
	struct kernel_info ki;
	char err[512];
	int ret;

	image_build(im);
	ret = load_bytes(m, im->buf, len, &ki, err, sizeof(err));
	ck_assert_msg(ret == want, "%s: loader_elf_load = %d, want %d (err '%s')", what, ret, want, err);
	ck_assert_msg(err[0] != '\0', "%s: error text is empty", what);
	ck_assert_msg(strchr(err, '\n') == NULL, "%s: error text is not one line", what);
	ck_assert_msg(m->host[SEG0_GPA] == 0 && m->host[SEG1_GPA] == 0,
		      "%s: guest RAM written although the image was refused", what);
	mem_destroy(m);
}

void expect_load_err(struct image *im, int want, const char *what)
{
	expect_load_err_in(RAM_SIZE, im, im->len, want, what);
}

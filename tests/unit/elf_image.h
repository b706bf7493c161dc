/*
 * Test helper for the loader suites: ELF images built in memory, field by
 * field, so a test can break any header field, and a loader call that reads
 * the image from a copy ending right before a PROT_NONE page (a read past the
 * image's end crashes the test, which CK_FORK=yes reports as an error).
 */
#ifndef SKIFF_TEST_ELF_IMAGE_H
#define SKIFF_TEST_ELF_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"
#include "mem.h"

#define RAM_SIZE (64 * MiB) /* the guest most loader tests use */

struct seg {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

#define MAX_SEGS 8
#define IMG_CAP 0x3000
#define NOTES_OFF 0x400
#define SEG0_OFF 0x1000
#define SEG0_GPA 0x100000ULL
#define SEG0_FILESZ 0x200
#define SEG0_MEMSZ 0x3000
#define SEG1_OFF 0x1200
#define SEG1_GPA 0x200000ULL
#define SEG1_SZ 0x100
#define ENTRY 0x100010u

/* Header fields kept apart from the bytes so a test can break any of them. */
struct image {
	bool is64;
	uint8_t magic[4], cls, data;
	uint16_t type, machine, phentsize, phnum;
	uint64_t phoff;
	struct seg ph[MAX_SEGS];
	uint8_t notes[256];
	size_t notes_len;
	uint64_t notes_off;     /* where image_build puts the notes */
	size_t len;
	uint8_t buf[IMG_CAP];
};

/* Appends one note (name padded to 4, descriptor padded to 4); returns its size. */
size_t put_note(uint8_t *p, const char *name, uint32_t namesz, uint32_t type,
		const void *desc, uint32_t descsz);
/* Notes: a GNU build-id, then optionally the Xen PVH entry and the Skiff note. */
void set_notes(struct image *im, bool xen, bool skiff);
/* A good kernel: a text segment with bss, a note segment, a data segment. */
void image_init(struct image *im, bool is64, bool skiff);
/* Writes the header fields and segment contents into im->buf. */
void image_build(struct image *im);
/* The contents of segment 0 and segment 1 at byte i. */
uint8_t seg0_byte(size_t i);
uint8_t seg1_byte(size_t i);

struct guest_mem *make_mem(uint64_t size);
/* loader_elf_load on a guarded copy of bytes[0, len). */
int load_bytes(struct guest_mem *m, const uint8_t *bytes, size_t len,
	       struct kernel_info *ki, char *err, size_t errlen);
/* Builds im and loads im->len bytes of it. */
int load(struct guest_mem *m, struct image *im, struct kernel_info *ki, char *err, size_t errlen);
/* Builds im, loads `len` bytes into a fresh guest of `ram` bytes and expects
 * `want`, a one-line reason, and guest RAM untouched. */
void expect_load_err_in(uint64_t ram, struct image *im, size_t len, int want, const char *what);
/* The same for the whole image and a 64 MiB guest. */
void expect_load_err(struct image *im, int want, const char *what);

#endif

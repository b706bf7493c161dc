/*
 * libFuzzer target: the kernel loaders as the VM builder runs them
 * (load_kernel in src/vmm/vm.c): format detection, ELF headers and program
 * headers (PVH note, ELF32/ELF64), the bzImage setup header (magic,
 * protocol version, loadflags, relocation, setup sectors, initrd limit),
 * placing an initrd, and the boot information (zero page with e820 and
 * command line, or hvm_start_info) with the ACPI tables.
 *
 * Input: byte 0 flags (bit 0: the tail is an initrd; bits 1-3: command line
 * length class); bytes 1-4: the kernel image's length (little-endian,
 * clipped to what is there); the image; the rest, the initrd.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "boot.h"
#include "loader.h"
#include "mem.h"

#define RAM (64ULL << 20)

static struct guest_mem *mem;
static char cmdline[8192];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kernel_info ki;
	struct boot_image bi;
	uint64_t rd_gpa = 0, rsdp = 0;
	const uint8_t *img, *rd = NULL;
	size_t len, rdlen = 0, clen;
	uint32_t klen;
	char err[512];
	uint8_t flags;

	if (!mem) {
		if (mem_create(RAM, &mem))
			abort();
		memset(cmdline, 'x', sizeof(cmdline) - 1);
	}
	if (size < 5)
		return 0;
	flags = data[0];
	memcpy(&klen, data + 1, 4);
	img = data + 5;
	len = size - 5;
	if (klen < len) {
		if (flags & 1) {
			rd = img + klen;
			rdlen = len - klen;
		}
		len = klen;
	}
	memset(&ki, 0, sizeof(ki));
	memset(&bi, 0, sizeof(bi));
	if (boot_load_kernel(mem, img, len, &ki, &bi, err, sizeof(err)))
		return 0;
	if (rd && boot_place_initrd(mem, &ki, &bi, rd, rdlen, &rd_gpa, err, sizeof(err)))
		return 0;
	if (acpi_build(mem, 1 + (flags >> 4), &rsdp))
		abort(); /* fixed tables in fixed RAM: cannot fail */
	/* command lines from empty to past every limit */
	clen = (size_t[]){ 0, 1, 255, 2047, 2048, 4095, 4096, 8191 }[(flags >> 1) & 7];
	cmdline[clen] = '\0';
	(void)boot_setup(mem, &bi, cmdline, rd_gpa, rdlen, rsdp, err, sizeof(err));
	cmdline[clen] = 'x';
	return 0;
}

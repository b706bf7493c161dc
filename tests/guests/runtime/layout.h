/*
 * Constants shared by the ring-0 start-up code (entry.S), the linker script
 * (link.ld repeats the addresses and asserts them) and the C runtime.
 * Only preprocessor definitions: this file is included from assembly.
 */
#ifndef SKIFF_GUEST_LAYOUT_H
#define SKIFF_GUEST_LAYOUT_H

/* Static per-CPU arrays are sized for this many CPUs (APIC IDs 0..N-1). */
#define RT_MAX_CPUS 16

/*
 * Per-CPU stacks. The ring-0 stack only ever holds an exception frame and
 * the reporting code; the ring-3 stack is where the test body runs.
 */
#define RT_KSTACK_SHIFT 13 /* 8 KiB */
#define RT_USTACK_SHIFT 16 /* 64 KiB */
#define RT_KSTACK_SIZE (1 << RT_KSTACK_SHIFT)
#define RT_USTACK_SIZE (1 << RT_USTACK_SHIFT)

/*
 * Fixed addresses. The PVH loader puts the image at its ELF physical
 * addresses (we link at 1 MiB, the lowest address PVH loaders accept).
 * The IDT gates and the TSS descriptors split their target addresses into
 * bit fields, which the assembler can only compute from constants, so the
 * exception stubs and the TSS block live at addresses fixed here (and
 * checked by ASSERTs in link.ld).
 */
#define RT_LOAD_ADDR 0x100000       /* .boot.text starts with the stubs */
#define RT_STUB_SIZE 16             /* bytes per exception stub */
#define RT_NUM_EXC 32               /* architectural exception vectors */
#define RT_BOOT_DATA_ADDR 0x101000  /* .boot.data starts with the TSS block */

/* Architectural 64-bit TSS (Intel SDM vol. 3, "Task-State Segment"). */
#define RT_TSS_SIZE 104
#define RT_TSS_RSP0 4
#define RT_TSS_IOMAP 102
/* One I/O permission bitmap shared by all TSSes: each TSS's iomap_base is
 * the distance from that TSS to the bitmap that follows the TSS array.
 * 65536 ports / 8 = 8192 bytes, plus the 0xff terminator byte. */
#define RT_IOPB_ADDR (RT_BOOT_DATA_ADDR + RT_MAX_CPUS * RT_TSS_SIZE)
#define RT_IOPB_BYTES 8192

/*
 * GDT in the Linux x86-64 layout: PVM reports ring-3 CS/SS as 0x33/0x2b
 * whatever the guest loaded, so the user selectors must be exactly those.
 */
#define RT_SEL_KCODE32 0x08
#define RT_SEL_KCODE 0x10
#define RT_SEL_KDATA 0x18
#define RT_SEL_UCODE32 0x23
#define RT_SEL_UDATA 0x2b
#define RT_SEL_UCODE 0x33
#define RT_GDT_TSS_INDEX 8          /* each TSS descriptor takes 2 slots */
#define RT_GDT_ENTRIES (RT_GDT_TSS_INDEX + 2 * RT_MAX_CPUS)

/* Local APIC ID register (xAPIC MMIO, bits 31:24). */
#define RT_LAPIC_ID_ADDR 0xfee00020

/* The skiff ELF note (see README.md). */
#define RT_SKIFF_NOTE_TYPE 1
#define RT_SKIFF_F_ALL_CPUS_AT_ENTRY 0x1

/* Xen public/elfnote.h: XEN_ELFNOTE_PHYS32_ENTRY. */
#define RT_XEN_ELFNOTE_PHYS32_ENTRY 18

#endif

/*
 * Ring-0 start-up of the skiff test guests.
 *
 * Ring-0 code is emulated one instruction at a time on the PVM host (see
 * /work/shared/HOST-NOTES.md), so everything that can be data is data:
 * page tables, GDT, IDT and TSSes are laid out here fully initialised and
 * each CPU runs a few dozen plain integer instructions before it drops to
 * ring 3, where the test body runs natively.
 */
#include "layout.h"
#include "notes.h"

	RT_ELF_NOTES rt_entry32, RT_SKIFF_F_ALL_CPUS_AT_ENTRY

/* ------------------------------------------------------------------------
 * .boot.text is linked at RT_LOAD_ADDR and starts with the exception
 * stubs, so that stub N is at RT_LOAD_ADDR + N * RT_STUB_SIZE and the IDT
 * below can be computed by the assembler.
 * --------------------------------------------------------------------- */
	.section .boot.text, "ax", @progbits
	.code64
	.globl rt_isr_stubs
rt_isr_stubs:
	/* The CPU pushes an error code for vectors 8, 10-14, 17, 21, 29 and
	 * 30 (SDM vol. 3, "Exception and Interrupt Reference"); the others get
	 * a dummy 0 so every frame looks the same. */
	.set .Lvec, 0
	.rept RT_NUM_EXC
	.if ((0x60227d00 >> .Lvec) & 1) == 0
	pushq $0
	.endif
	pushq $.Lvec
	jmp rt_isr_common
	.org rt_isr_stubs + (.Lvec + 1) * RT_STUB_SIZE, 0xcc
	.set .Lvec, .Lvec + 1
	.endr

/* Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS. Never returns. */
rt_isr_common:
	/* rt_park() is a ring-3 ud2 at rt_park_ud2: ring 3 cannot halt, and
	 * exceptions are the one way from ring 3 into ring 0 on PVM, so a #UD
	 * from exactly there means "halt this CPU for good" (no host CPU is
	 * burnt, unlike a ring-3 pause loop). */
	cmpq $6, (%rsp)
	jne 1f
	cmpq $rt_park_ud2, 16(%rsp)
	jne 1f
2:	hlt
	jmp 2b
1:	mov %rsp, %rdi
	and $-16, %rsp
	call rt_exception_report
3:	hlt
	jmp 3b

/*
 * Xen PVH entry (docs/misc/pvh.pandoc): 32-bit flat protected mode, paging
 * off, interrupts off, %ebx = guest-physical address of hvm_start_info.
 * skiff starts every vCPU here when the skiff note asks for it.
 */
	.code32
	.globl rt_entry32
rt_entry32:
	lgdt rt_gdt_ptr			/* 6-byte form: base below 4 GiB */
	mov $rt_pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax			/* CR4.PAE */
	mov %eax, %cr4
	mov $0xc0000080, %ecx		/* IA32_EFER */
	rdmsr
	or $0x100, %eax			/* EFER.LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* CR0.PG | CR0.PE: activates long mode */
	mov %eax, %cr0
	ljmp $RT_SEL_KCODE, $rt_entry64

	.code64
rt_entry64:
	mov $RT_SEL_KDATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs

	/* CPU index = local APIC ID. The APIC ID register is xAPIC MMIO;
	 * the identity map covers it. */
	mov $RT_LAPIC_ID_ADDR, %esi
	mov (%rsi), %eax
	shr $24, %eax
	cmp $RT_MAX_CPUS, %eax
	jae rt_too_many_cpus
	mov %eax, %edi			/* rt_start(cpu) argument, survives iretq */
	test %eax, %eax
	jnz 1f
	mov %ebx, rt_start_info_pa(%rip) /* the BSP publishes start_info */
1:
	mov %eax, %ecx
	shl $RT_KSTACK_SHIFT, %rcx
	lea rt_kstacks + RT_KSTACK_SIZE(%rcx), %rsp

	/* Each CPU has its own TSS descriptor: ltr marks it busy. */
	shl $4, %eax
	add $(RT_GDT_TSS_INDEX * 8), %eax
	ltr %ax
	lidt rt_idt_ptr

	/* iretq into ring 3. RFLAGS = 0x3002: IF stays 0 (the guests use no
	 * interrupts), IOPL 3 so ring 3 may use in/out. PVM forces IOPL 0:
	 * there the TSS I/O bitmap lets it. (The bitmap alone is not enough
	 * under QEMU TCG's SVM, the nested test host: it checks the bitmap
	 * only while TR's cached type says "available", and KVM restores TR
	 * as busy after a migration.) */
	mov %edi, %ecx
	shl $RT_USTACK_SHIFT, %rcx
	lea rt_ustacks + RT_USTACK_SIZE(%rcx), %rax
	pushq $RT_SEL_UDATA
	pushq %rax
	pushq $0x3002
	pushq $RT_SEL_UCODE
	pushq $rt_user_entry
	iretq

rt_too_many_cpus:
	/* No per-CPU state for this APIC ID: stay out of the way. */
	hlt
	jmp rt_too_many_cpus

/* ------------------------------------------------------------------------
 * Ring-3 code.
 * --------------------------------------------------------------------- */
	.text
rt_user_entry:
	xor %ebp, %ebp
	call rt_start			/* %edi = cpu; never returns */
	ud2

	.globl rt_park
	.type rt_park, @function
rt_park:
	.globl rt_park_ud2
rt_park_ud2:
	ud2				/* see rt_isr_common */
	jmp rt_park
	.size rt_park, . - rt_park

/* ------------------------------------------------------------------------
 * .boot.data is linked at RT_BOOT_DATA_ADDR and starts with the TSSes, so
 * their addresses are constants the GDT below can split into fields.
 * --------------------------------------------------------------------- */
	.section .boot.data, "aw", @progbits
	.globl rt_tss_block
rt_tss_block:
	.set .Lcpu, 0
	.rept RT_MAX_CPUS
	.long 0					/* reserved */
	.quad rt_kstacks + (.Lcpu + 1) * RT_KSTACK_SIZE /* rsp0 */
	.fill RT_TSS_IOMAP - 12, 1, 0		/* rsp1-2, IST1-7 unused */
	.word RT_IOPB_ADDR - (RT_BOOT_DATA_ADDR + .Lcpu * RT_TSS_SIZE)
	.set .Lcpu, .Lcpu + 1
	.endr

	/* I/O permission bitmap shared by all TSSes: all bits clear, i.e.
	 * ring 3 may use every port 0-0xffff; the 0xff byte after it is the
	 * terminator the SDM asks for. */
	.globl rt_iopb
rt_iopb:
	.fill RT_IOPB_BYTES, 1, 0
	.byte 0xff

	.balign 16
rt_gdt:
	.quad 0				/* null */
	.quad 0x00cf9a000000ffff	/* 0x08 kernel code, 32-bit */
	.quad 0x00af9a000000ffff	/* 0x10 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x18 kernel data */
	.quad 0x00cffa000000ffff	/* 0x23 user code, 32-bit */
	.quad 0x00cff2000000ffff	/* 0x2b user data */
	.quad 0x00affa000000ffff	/* 0x33 user code, 64-bit */
	.quad 0				/* 0x38 unused */
	/* 64-bit available-TSS descriptors (type 9, present), 16 bytes
	 * each; the limit reaches the bitmap's terminator byte. */
	.set .Lcpu, 0
	.rept RT_MAX_CPUS
	.set .Lbase, RT_BOOT_DATA_ADDR + .Lcpu * RT_TSS_SIZE
	.set .Llim, RT_IOPB_ADDR + RT_IOPB_BYTES - .Lbase
	.quad (.Llim & 0xffff) | ((.Lbase & 0xffffff) << 16) | (0x89 << 40) | (((.Llim >> 16) & 0xf) << 48) | (((.Lbase >> 24) & 0xff) << 56)
	.quad .Lbase >> 32
	.set .Lcpu, .Lcpu + 1
	.endr
rt_gdt_end:

	.balign 8
rt_gdt_ptr:				/* lgdt reads 6 bytes in 32-bit mode */
	.word rt_gdt_end - rt_gdt - 1
	.quad rt_gdt

	.balign 16
rt_idt:
	/* 64-bit interrupt gates (type 0xe, DPL 0, present): IF is cleared
	 * on entry; ring 3 cannot raise them with int n. */
	.set .Lvec, 0
	.rept RT_NUM_EXC
	.set .Loff, RT_LOAD_ADDR + .Lvec * RT_STUB_SIZE
	.quad (.Loff & 0xffff) | (RT_SEL_KCODE << 16) | (0x8e << 40) | (((.Loff >> 16) & 0xffff) << 48)
	.quad .Loff >> 32
	.set .Lvec, .Lvec + 1
	.endr
rt_idt_end:

	.balign 8
rt_idt_ptr:
	.word rt_idt_end - rt_idt - 1
	.quad rt_idt

/* ------------------------------------------------------------------------
 * Identity map of the first 4 GiB with 2 MiB pages (4-level paging, SDM
 * vol. 3 "4-Level Paging"), user-accessible so ring 3 reaches all of RAM
 * and the devices. The top 64 MiB (IOAPIC, local APIC, ...) is uncached.
 * --------------------------------------------------------------------- */
	.data
	.balign 4096
	.globl rt_pml4
rt_pml4:
	.quad rt_pdpt + 0x7		/* P | RW | US */
	.fill 511, 8, 0
rt_pdpt:
	.set .Li, 0
	.rept 4
	.quad rt_pd + .Li * 4096 + 0x7
	.set .Li, .Li + 1
	.endr
	.fill 508, 8, 0
rt_pd:
	.set .Li, 0
	.rept 2048
	.if .Li < 2016
	.quad (.Li << 21) | 0x87	/* P | RW | US | PS */
	.else
	.quad (.Li << 21) | 0x9f	/* ... | PWT | PCD */
	.endif
	.set .Li, .Li + 1
	.endr

	.bss
	.balign 4096
rt_kstacks:
	.skip RT_KSTACK_SIZE * RT_MAX_CPUS
rt_ustacks:
	.skip RT_USTACK_SIZE * RT_MAX_CPUS

	.section .note.GNU-stack, "", @progbits

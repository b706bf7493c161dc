/*
 * Triple-faults on purpose: at the 32-bit PVH entry it loads an empty IDT
 * and executes ud2. #UD cannot be delivered, nor can the #DF that follows,
 * so the CPU shuts down (KVM_EXIT_SHUTDOWN). The VMM must report a guest
 * fault with a register dump; it must not hang or crash.
 */
#include "layout.h"
#include "notes.h"

	RT_ELF_NOTES triplefault_entry32, 0

	.section .boot.text, "ax", @progbits
	.code32
	.globl triplefault_entry32
triplefault_entry32:
	lidt empty_idt
	ud2
1:	hlt
	jmp 1b

	.balign 8
empty_idt:
	.word 0
	.long 0

	.section .note.GNU-stack, "", @progbits

/*
 * The start-up benchmark guest: the least a PVH guest can do. At the
 * 32-bit PVH entry it writes "ok\n" to COM1 (no LSR polling: a VMM's UART
 * takes bytes whenever they come) and exit code 0 to the debug-exit port,
 * then halts. No paging, no runtime.
 *
 * Single-CPU by design: its skiff note does not ask for all vCPUs to start
 * at the entry point.
 */
#include "layout.h"
#include "notes.h"

	RT_ELF_NOTES trivial_entry32, 0

	.section .boot.text, "ax", @progbits
	.code32
	.globl trivial_entry32
trivial_entry32:
	mov $0x3f8, %dx
	mov $'o', %al
	out %al, %dx
	mov $'k', %al
	out %al, %dx
	mov $'\n', %al
	out %al, %dx
	mov $0xf4, %dx
	xor %eax, %eax
	out %eax, %dx
1:	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits

/* The demo guest (tests/guests/demo.c), embedded so that `skiff run` with
 * no --kernel boots something. The build passes the ELF's path. */
	.section .rodata, "a"
	.balign 16
	.globl skiff_demo_elf
	.globl skiff_demo_elf_end
skiff_demo_elf:
	.incbin DEMO_ELF_PATH
skiff_demo_elf_end:
	.section .note.GNU-stack, "", @progbits

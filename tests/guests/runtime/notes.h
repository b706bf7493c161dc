/*
 * Assembler macro emitting the two ELF notes every test guest carries.
 * Include from a .S file after runtime/layout.h.
 *
 * Notes follow the ELF gABI note layout with 4-byte alignment (what Linux
 * and the Xen tools use; QEMU's PVH loader steps through notes using the
 * PT_NOTE segment's alignment, so it must stay 4).
 */
#ifndef SKIFF_GUEST_NOTES_H
#define SKIFF_GUEST_NOTES_H

/* RT_ELF_NOTES entry32_symbol, skiff_flags */
.macro RT_ELF_NOTES entry, flags
	/* Xen PVH boot ABI (docs/misc/pvh.pandoc): XEN_ELFNOTE_PHYS32_ENTRY,
	 * name "Xen", desc = 32-bit physical entry address. */
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f
	.long 4f - 3f
	.long RT_XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
3:	.long \entry
4:	.balign 4
	.popsection

	/* The skiff note: name "Skiff", type 1, desc = 32-bit flags. */
	.pushsection .note.skiff, "a", @note
	.balign 4
	.long 2f - 1f
	.long 4f - 3f
	.long RT_SKIFF_NOTE_TYPE
1:	.asciz "Skiff"
2:	.balign 4
3:	.long \flags
4:	.balign 4
	.popsection
.endm

#endif

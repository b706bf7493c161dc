/*
 * Raises an exception from ring 3; the runtime's ring-0 handler must report
 * it ("EXCEPTION vector=N ...") and exit with RT_EXIT_EXCEPTION. Reaching
 * the end of guest_main is a failure.
 *
 * exception_kind= on the command line selects the fault:
 *   ud (default)  ud2                         -> vector 6
 *   gp            cli (privileged at CPL 3)   -> vector 13
 *   hlt           hlt (privileged at CPL 3)   -> vector 13
 *   pf            read of an unmapped address -> vector 14
 *   de            division by zero            -> vector 0
 */
#include "rt.h"

void guest_main(void)
{
	char kind[16] = "ud";
	rt_cmdline_str("exception_kind", kind, sizeof(kind));

	if (!rt_strcmp(kind, "ud")) {
		extern const char exc_ud_insn[];
		rt_printf("exception: ud2 at %p\n", (const void *)exc_ud_insn);
		__asm__ volatile(".globl exc_ud_insn\nexc_ud_insn: ud2");
	} else if (!rt_strcmp(kind, "gp")) {
		extern const char exc_gp_insn[];
		rt_printf("exception: cli at %p\n", (const void *)exc_gp_insn);
		__asm__ volatile(".globl exc_gp_insn\nexc_gp_insn: cli");
	} else if (!rt_strcmp(kind, "hlt")) {
		extern const char exc_hlt_insn[];
		rt_printf("exception: hlt at %p\n", (const void *)exc_hlt_insn);
		__asm__ volatile(".globl exc_hlt_insn\nexc_hlt_insn: hlt");
	} else if (!rt_strcmp(kind, "pf")) {
		/* Only the first 4 GiB are mapped (PML4 slot 0). */
		volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)0x10000000000ULL;
		rt_printf("exception: read of %p\n", (const void *)p);
		(void)*p;
	} else if (!rt_strcmp(kind, "de")) {
		extern const char exc_de_insn[];
		rt_printf("exception: div by zero at %p\n", (const void *)exc_de_insn);
		__asm__ volatile("xor %%ecx, %%ecx\n"
				 ".globl exc_de_insn\nexc_de_insn: divl %%ecx"
				 : : : "eax", "ecx", "edx");
	} else {
		rt_fail("unknown exception_kind=%s", kind);
	}
	rt_fail("no exception was raised (exception_kind=%s)", kind);
}

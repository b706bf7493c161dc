/* The smallest runtime test: output, command line, pass. */
#include "rt.h"

void guest_main(void)
{
	rt_printf("Hello from skiff test guest\n");
	rt_printf("cmdline: \"%s\"\n", rt_cmdline());
	rt_pass();
}

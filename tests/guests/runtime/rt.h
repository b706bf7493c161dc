/*
 * The skiff test-guest runtime: what a guest's C code (ring 3, no libc)
 * can use. See README.md for the boot flow and the result protocol.
 */
#ifndef SKIFF_GUEST_RT_H
#define SKIFF_GUEST_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* --- entry points a guest provides ------------------------------------ */

/* Runs on the BSP (APIC ID 0) in ring 3. Must end with rt_pass(),
 * rt_fail() or rt_exit(); returning counts as a failure. */
void guest_main(void);
/* Runs on every AP (1..RT_MAX_CPUS-1) in ring 3 when the VMM starts all
 * vCPUs at the entry point. Optional: the default returns at once. When it
 * returns, the CPU is parked (halted in ring 0). */
void guest_ap_main(unsigned cpu);

/* --- port I/O (ring 3 may use every port: see the TSS I/O bitmap) ----- */

static inline void rt_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}
static inline void rt_outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}
static inline void rt_outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}
static inline uint8_t rt_inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint16_t rt_inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t rt_inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* --- CPU helpers -------------------------------------------------------- */

static inline uint64_t rt_rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}
static inline void rt_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}
static inline void rt_cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid"
			 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

/* TSC ticks per second: cmdline tsc_khz=N, else CPUID (hypervisor leaf
 * 0x40000010, leaf 0x15, leaf 0x16), else measured against PIT channel 2,
 * else 3 GHz assumed. Measured once, then cached. */
uint64_t rt_tsc_hz(void);
void rt_delay_us(uint64_t us);
/* Deadline helpers: rt_deadline_ms(ms) -> TSC value; rt_expired(d). */
uint64_t rt_deadline_ms(uint64_t ms);
static inline bool rt_expired(uint64_t deadline)
{
	return (int64_t)(rt_rdtsc() - deadline) >= 0;
}

/* CPUs that have reached ring 3 so far (the BSP included). */
unsigned rt_cpus_online(void);
/* Halts the calling CPU for good (via a #UD the ring-0 handler knows). */
_Noreturn void rt_park(void);

/* --- console (COM1 16550, polled) --------------------------------------- */

#define RT_COM1 0x3f8
void rt_putc(char c);
void rt_puts(const char *s);                /* no newline added */
int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rt_vprintf(const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --- results ------------------------------------------------------------ */

#define RT_DEBUG_EXIT_PORT 0xf4
#define RT_EXIT_PASS 0       /* VMM exit status 1 */
#define RT_EXIT_FAIL 1       /* VMM exit status 3 */
#define RT_EXIT_EXCEPTION 2  /* VMM exit status 5 */

/* 32-bit write of code to the debug-exit port, then halts forever. */
_Noreturn void rt_exit(uint32_t code);
/* Prints "TEST PASS", exits with RT_EXIT_PASS. */
_Noreturn void rt_pass(void);
/* Prints "TEST FAIL: <message>", exits with RT_EXIT_FAIL. */
_Noreturn void rt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void rt_assert_failed(const char *file, int line, const char *expr);

#define RT_ASSERT(e) \
	((e) ? (void)0 : rt_assert_failed(__FILE__, __LINE__, #e))

/* --- boot information (Xen PVH hvm_start_info) ------------------------- */

/* Layouts from Xen's public/arch-x86/hvm/start_info.h. */
#define HVM_START_MAGIC_VALUE 0x336ec578
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version >= 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;   /* E820 types: 1 = RAM */
	uint32_t reserved;
};
#define HVM_MEMMAP_TYPE_RAM 1

/* NULL when %ebx did not point at a valid hvm_start_info. */
const struct hvm_start_info *rt_start_info(void);
/* The command line, "" when there is none. */
const char *rt_cmdline(void);
/* Number of memory map entries (0 without one) and the table. */
unsigned rt_memmap(const struct hvm_memmap_table_entry **table);
/* Highest end address of the RAM (type 1) entries. */
uint64_t rt_ram_end(void);
/* Sum of the sizes of the RAM (type 1) entries. */
uint64_t rt_ram_total(void);

/* Value of "key=N" on the command line (decimal or 0x-hex, optional K/M/G
 * suffix); def when absent or malformed. */
uint64_t rt_cmdline_uint(const char *key, uint64_t def);
/* Copies the value of "key=value" into buf (NUL-terminated, truncated to
 * size). Returns true when the key is present. */
bool rt_cmdline_str(const char *key, char *buf, size_t size);

/* --- memory and strings (gcc may call the mem* functions itself) ------- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t rt_strlen(const char *s);
int rt_strcmp(const char *a, const char *b);
int rt_strncmp(const char *a, const char *b, size_t n);

#endif

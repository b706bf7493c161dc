/*
 * The skiff test-guest runtime library. Runs in ring 3, except
 * rt_exception_report() (and what it calls: the formatter, the serial
 * output, rt_exit), which runs in ring 0 and therefore goes through the PVM
 * instruction emulator: keep that path to plain integer instructions.
 */
#include "rt.h"

/* Written by entry.S (BSP, ring 0) before ring 3 starts. */
uint32_t rt_start_info_pa;

static unsigned rt_online;
static int rt_console_lock;

/* --- memory and strings ------------------------------------------------- */

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	if (p < q) {
		while (n--)
			*p++ = *q++;
	} else {
		while (n--)
			p[n] = q[n];
	}
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;
	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p < *q ? -1 : 1;
	return 0;
}

size_t rt_strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int rt_strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
		if (!*a)
			return 0;
	}
	return 0;
}

int rt_strcmp(const char *a, const char *b)
{
	return rt_strncmp(a, b, (size_t)-1);
}

/* --- serial ---------------------------------------------------------------- */

static void serial_putc(char c)
{
	/* LSR bit 5: transmit holding register empty. Bounded, so a missing
	 * UART (reads 0xff anyway) or a stuck one cannot hang the guest. */
	for (unsigned i = 0; i < 100000; i++) {
		if (rt_inb(RT_COM1 + 5) & 0x20)
			break;
		rt_pause();
	}
	rt_outb(RT_COM1, (uint8_t)c);
}

/* --- formatter -------------------------------------------------------------- */

struct sink {
	char *buf;      /* NULL: straight to the serial port */
	size_t size;
	size_t len;     /* characters produced (also past size) */
};

static void sink_put(struct sink *s, char c)
{
	if (!s->buf)
		serial_putc(c);
	else if (s->len + 1 < s->size)
		s->buf[s->len] = c;
	s->len++;
}

static void put_num(struct sink *s, uint64_t v, unsigned base, bool upper, bool neg,
		    int width, bool zero, bool left)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	int len = n + (neg ? 1 : 0);
	if (!left && !zero)
		for (; width > len; width--)
			sink_put(s, ' ');
	if (neg)
		sink_put(s, '-');
	if (!left && zero)
		for (; width > len; width--)
			sink_put(s, '0');
	while (n)
		sink_put(s, tmp[--n]);
	if (left)
		for (; width > len; width--)
			sink_put(s, ' ');
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			sink_put(s, *fmt);
			continue;
		}
		fmt++;
		bool zero = false, left = false;
		for (;; fmt++) {
			if (*fmt == '0')
				zero = true;
			else if (*fmt == '-')
				left = true;
			else
				break;
		}
		int width = 0;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		int lng = 0; /* 0 int, 1 long, 2 long long (both 64-bit here) */
		for (;; fmt++) {
			if (*fmt == 'l' || *fmt == 'z' || *fmt == 'j')
				lng++;
			else if (*fmt != 'h')
				break;
		}
		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
			put_num(s, u, 10, false, v < 0, width, zero, left);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			put_num(s, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', false, width, zero, left);
			break;
		}
		case 'p':
			sink_put(s, '0');
			sink_put(s, 'x');
			put_num(s, (uintptr_t)va_arg(ap, void *), 16, false, false, width, zero, left);
			break;
		case 'c':
			sink_put(s, (char)va_arg(ap, int));
			break;
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			int len = (int)rt_strlen(str);
			if (!left)
				for (; width > len; width--)
					sink_put(s, ' ');
			while (*str)
				sink_put(s, *str++);
			for (; width > len; width--)
				sink_put(s, ' ');
			break;
		}
		case '%':
			sink_put(s, '%');
			break;
		case '\0':
			return;
		default:
			sink_put(s, '%');
			sink_put(s, *fmt);
			break;
		}
	}
}

/* Unlocked: for ring 0, where a ring-3 holder of the lock may be stuck. */
static void raw_printf(const char *fmt, ...)
{
	struct sink s = { 0 };
	va_list ap;
	va_start(ap, fmt);
	format(&s, fmt, ap);
	va_end(ap);
}

/* Whole messages from different CPUs must not interleave. */
static void console_lock(void)
{
	while (__atomic_exchange_n(&rt_console_lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&rt_console_lock, __ATOMIC_RELAXED))
			rt_pause();
}

static void console_unlock(void)
{
	__atomic_store_n(&rt_console_lock, 0, __ATOMIC_RELEASE);
}

int rt_vprintf(const char *fmt, va_list ap)
{
	struct sink s = { 0 };
	console_lock();
	format(&s, fmt, ap);
	console_unlock();
	return (int)s.len;
}

int rt_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = rt_vprintf(fmt, ap);
	va_end(ap);
	return n;
}

int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	struct sink s = { .buf = buf, .size = size };
	va_list ap;
	va_start(ap, fmt);
	format(&s, fmt, ap);
	va_end(ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = '\0';
	return (int)s.len;
}

void rt_putc(char c)
{
	console_lock();
	serial_putc(c);
	console_unlock();
}

void rt_puts(const char *str)
{
	console_lock();
	while (*str)
		serial_putc(*str++);
	console_unlock();
}

/* --- results ---------------------------------------------------------------- */

_Noreturn void rt_exit(uint32_t code)
{
	/* isa-debug-exit protocol: the VMM ends with status (code << 1) | 1. */
	rt_outl(RT_DEBUG_EXIT_PORT, code);
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	if ((cs & 3) == 0)
		for (;;)
			__asm__ volatile("hlt");
	rt_park();
}

_Noreturn void rt_pass(void)
{
	rt_puts("TEST PASS\n");
	rt_exit(RT_EXIT_PASS);
}

_Noreturn void rt_fail(const char *fmt, ...)
{
	struct sink s = { 0 };
	va_list ap;
	va_start(ap, fmt);
	console_lock();
	for (const char *c = "TEST FAIL: "; *c; c++)
		sink_put(&s, *c);
	format(&s, fmt, ap);
	serial_putc('\n');
	console_unlock();
	va_end(ap);
	rt_exit(RT_EXIT_FAIL);
}

_Noreturn void rt_assert_failed(const char *file, int line, const char *expr)
{
	rt_printf("ASSERT FAILED %s:%d: %s\n", file, line, expr);
	rt_exit(RT_EXIT_FAIL);
}

/* --- exceptions (ring 0) ------------------------------------------------------ */

/* What rt_isr_common in entry.S leaves on the stack. */
struct rt_exc_frame {
	uint64_t vector, err, rip, cs, rflags, rsp, ss;
};

void rt_exception_report(const struct rt_exc_frame *f);

static const char *const exc_names[RT_NUM_EXC] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor segment overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 error", "#AC alignment check",
	"#MC machine check", "#XM SIMD error", "#VE virtualization",
	"#CP control protection", "reserved", "reserved", "reserved", "reserved",
	"reserved", "reserved", "#HV hypervisor injection", "#VC VMM communication",
	"#SX security", "reserved",
};

void rt_exception_report(const struct rt_exc_frame *f)
{
	uint32_t apic_id = *(volatile uint32_t *)(uintptr_t)RT_LAPIC_ID_ADDR;
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	raw_printf("\nEXCEPTION vector=%u err=0x%lx rip=0x%lx cpu=%u\n",
		   (unsigned)f->vector, f->err, f->rip, apic_id >> 24);
	raw_printf("  %s, cs=0x%lx rflags=0x%lx rsp=0x%lx ss=0x%lx cr2=0x%lx\n",
		   f->vector < RT_NUM_EXC ? exc_names[f->vector] : "?", f->cs,
		   f->rflags, f->rsp, f->ss, cr2);
	rt_exit(RT_EXIT_EXCEPTION);
}

/* --- start-up (ring 3) ---------------------------------------------------------- */

void rt_start(unsigned cpu);

__attribute__((weak)) void guest_ap_main(unsigned cpu)
{
	(void)cpu;
}

void rt_start(unsigned cpu)
{
	__atomic_fetch_add(&rt_online, 1, __ATOMIC_SEQ_CST);
	if (cpu == 0) {
		if (!rt_start_info())
			rt_printf("warning: no valid hvm_start_info at 0x%x\n", rt_start_info_pa);
		guest_main();
		rt_fail("guest_main returned without a verdict");
	}
	/* All CPUs start at once, and only the BSP publishes start_info (in
	 * ring 0, before its iretq): an AP must not read the boot information
	 * before then. */
	while (!__atomic_load_n(&rt_start_info_pa, __ATOMIC_ACQUIRE))
		rt_pause();
	guest_ap_main(cpu);
	rt_park();
}

unsigned rt_cpus_online(void)
{
	return __atomic_load_n(&rt_online, __ATOMIC_SEQ_CST);
}

/* --- boot information ------------------------------------------------------------ */

/* Only the first 4 GiB are mapped. */
static bool mapped(uint64_t pa, uint64_t len)
{
	return pa != 0 && pa < (1ULL << 32) && len <= (1ULL << 32) - pa;
}

const struct hvm_start_info *rt_start_info(void)
{
	const struct hvm_start_info *si;
	if (!mapped(rt_start_info_pa, sizeof(*si)))
		return NULL;
	si = (const struct hvm_start_info *)(uintptr_t)rt_start_info_pa;
	return si->magic == HVM_START_MAGIC_VALUE ? si : NULL;
}

const char *rt_cmdline(void)
{
	const struct hvm_start_info *si = rt_start_info();
	if (!si || !mapped(si->cmdline_paddr, 1))
		return "";
	return (const char *)(uintptr_t)si->cmdline_paddr;
}

unsigned rt_memmap(const struct hvm_memmap_table_entry **table)
{
	const struct hvm_start_info *si = rt_start_info();
	*table = NULL;
	if (!si || si->version < 1 || !si->memmap_entries ||
	    !mapped(si->memmap_paddr,
		    (uint64_t)si->memmap_entries * sizeof(struct hvm_memmap_table_entry)))
		return 0;
	*table = (const struct hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
	return si->memmap_entries;
}

uint64_t rt_ram_end(void)
{
	const struct hvm_memmap_table_entry *e;
	unsigned n = rt_memmap(&e);
	uint64_t end = 0;
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == HVM_MEMMAP_TYPE_RAM && e[i].addr + e[i].size > end)
			end = e[i].addr + e[i].size;
	return end;
}

uint64_t rt_ram_total(void)
{
	const struct hvm_memmap_table_entry *e;
	unsigned n = rt_memmap(&e);
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == HVM_MEMMAP_TYPE_RAM)
			total += e[i].size;
	return total;
}

/* --- command line ------------------------------------------------------------------ */

/* Start of the value of "key=" as a whole space-separated word, or NULL. */
static const char *cmdline_find(const char *key)
{
	size_t klen = rt_strlen(key);
	const char *p = rt_cmdline();
	while (*p) {
		while (*p == ' ')
			p++;
		if (!rt_strncmp(p, key, klen) && p[klen] == '=')
			return p + klen + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

bool rt_cmdline_str(const char *key, char *buf, size_t size)
{
	const char *v = cmdline_find(key);
	if (!v)
		return false;
	size_t n = 0;
	while (v[n] && v[n] != ' ') {
		if (n + 1 < size)
			buf[n] = v[n];
		n++;
	}
	if (size)
		buf[n < size ? n : size - 1] = '\0';
	return true;
}

uint64_t rt_cmdline_uint(const char *key, uint64_t def)
{
	const char *v = cmdline_find(key);
	if (!v)
		return def;
	unsigned base = 10;
	if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		v += 2;
	}
	uint64_t n = 0;
	bool any = false;
	for (;; v++) {
		unsigned d;
		if (*v >= '0' && *v <= '9')
			d = (unsigned)(*v - '0');
		else if (base == 16 && *v >= 'a' && *v <= 'f')
			d = (unsigned)(*v - 'a' + 10);
		else if (base == 16 && *v >= 'A' && *v <= 'F')
			d = (unsigned)(*v - 'A' + 10);
		else
			break;
		n = n * base + d;
		any = true;
	}
	if (!any)
		return def;
	switch (*v) {
	case 'k': case 'K': n <<= 10; v++; break;
	case 'm': case 'M': n <<= 20; v++; break;
	case 'g': case 'G': n <<= 30; v++; break;
	default: break;
	}
	return (*v == '\0' || *v == ' ') ? n : def;
}

/* --- time ---------------------------------------------------------------------- */

static uint64_t rt_tsc_hz_cache;

static uint64_t tsc_hz_cpuid(void)
{
	uint32_t r[4];
	rt_cpuid(0, 0, r);
	uint32_t max = r[0];
	rt_cpuid(1, 0, r);
	if (r[2] & (1u << 31)) {
		/* Hypervisor timing leaf (VMware's, also offered by KVM/QEMU):
		 * EAX = TSC frequency in kHz. */
		rt_cpuid(0x40000000, 0, r);
		if (r[0] >= 0x40000010) {
			rt_cpuid(0x40000010, 0, r);
			if (r[0])
				return (uint64_t)r[0] * 1000;
		}
	}
	if (max >= 0x15) {
		rt_cpuid(0x15, 0, r); /* TSC/crystal ratio EBX/EAX, crystal Hz ECX */
		if (r[0] && r[1] && r[2])
			return (uint64_t)r[2] * r[1] / r[0];
	}
	if (max >= 0x16) {
		rt_cpuid(0x16, 0, r); /* base frequency, MHz */
		if (r[0])
			return (uint64_t)r[0] * 1000000;
	}
	return 0;
}

/* PIT channel 2 one-shot (mode 0) gated through port 0x61, the classic
 * PC calibration: count 10 ms of the 1.193182 MHz PIT clock in TSC ticks. */
static uint64_t tsc_hz_pit(void)
{
	const uint32_t pit_hz = 1193182, count = pit_hz / 100;
	uint8_t p61 = rt_inb(0x61);
	if (p61 == 0xff)
		return 0;
	rt_outb(0x61, (uint8_t)((p61 & ~0x02) | 0x01)); /* gate on, speaker off */
	rt_outb(0x43, 0xb0); /* channel 2, lo/hi byte, mode 0, binary */
	rt_outb(0x42, count & 0xff);
	rt_outb(0x42, count >> 8);
	uint64_t t0 = rt_rdtsc(), t1;
	for (;;) {
		t1 = rt_rdtsc();
		if (rt_inb(0x61) & 0x20)
			break;
		if (t1 - t0 > 2000000000ULL) { /* no PIT after all */
			t1 = t0;
			break;
		}
	}
	rt_outb(0x61, p61);
	uint64_t hz = (t1 - t0) * pit_hz / count;
	return hz >= 100000000ULL && hz <= 20000000000ULL ? hz : 0;
}

uint64_t rt_tsc_hz(void)
{
	uint64_t hz = __atomic_load_n(&rt_tsc_hz_cache, __ATOMIC_RELAXED);
	if (hz)
		return hz;
	hz = rt_cmdline_uint("tsc_khz", 0) * 1000;
	if (!hz)
		hz = tsc_hz_cpuid();
	if (!hz)
		hz = tsc_hz_pit();
	if (!hz)
		hz = 3000000000ULL;
	__atomic_store_n(&rt_tsc_hz_cache, hz, __ATOMIC_RELAXED);
	return hz;
}

uint64_t rt_deadline_ms(uint64_t ms)
{
	return rt_rdtsc() + rt_tsc_hz() / 1000 * ms;
}

void rt_delay_us(uint64_t us)
{
	uint64_t end = rt_rdtsc() + rt_tsc_hz() / 1000000 * us;
	while (!rt_expired(end))
		rt_pause();
}

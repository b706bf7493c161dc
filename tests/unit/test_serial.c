/*
 * Unit tests for src/devices/serial.c: the 16550A driven through a PIO bus,
 * with a pipe standing in for the console and an unwired IRQ line.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bus.h"
#include "devices.h"

#define COM1 SERIAL_COM1_BASE
#define THR (COM1 + 0)
#define RBR (COM1 + 0)
#define DLL (COM1 + 0)
#define IER (COM1 + 1)
#define DLM (COM1 + 1)
#define IIR (COM1 + 2)
#define FCR (COM1 + 2)
#define LCR (COM1 + 3)
#define MCR (COM1 + 4)
#define LSR (COM1 + 5)
#define MSR (COM1 + 6)
#define SCR (COM1 + 7)

#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

static struct bus *pio;
static struct serial *ser;
static int out[2] = { -1, -1 }; /* the console: ser writes out[1], tests read out[0] */

static void setup(void)
{
	struct irq_line irq = { .vm_fd = -1, .gsi = SERIAL_COM1_IRQ };

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	ck_assert_int_eq(fcntl(out[0], F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(bus_create("pio", &pio), 0);
	ck_assert_int_eq(serial_create(pio, COM1, irq, out[1], &ser), 0);
}

static void teardown(void)
{
	serial_destroy(ser);
	ser = NULL;
	bus_destroy(pio);
	pio = NULL;
	if (out[0] >= 0)
		close(out[0]);
	if (out[1] >= 0)
		close(out[1]);
	out[0] = out[1] = -1;
}

static void outb(uint16_t port, uint8_t v)
{
	ck_assert_msg(bus_dispatch(pio, port, &v, 1, true), "write to 0x%x unclaimed", port);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;

	ck_assert_msg(bus_dispatch(pio, port, &v, 1, false), "read of 0x%x unclaimed", port);
	return v;
}

/* Everything the console received so far (non-blocking). */
static size_t console(char *buf, size_t cap)
{
	ssize_t r = read(out[0], buf, cap);

	if (r < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		return 0;
	}
	return (size_t)r;
}

/* --- transmit ----------------------------------------------------------------- */

START_TEST(thr_to_console)
{
	const char *msg = "hello\n";
	char got[32];
	size_t i;

	for (i = 0; msg[i]; i++)
		outb(THR, (uint8_t)msg[i]);
	ck_assert_uint_eq(console(got, sizeof(got)), 6);
	ck_assert_int_eq(memcmp(got, msg, 6), 0);
	ck_assert_uint_eq(console(got, sizeof(got)), 0);
}
END_TEST

START_TEST(lsr_idle)
{
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT);
	outb(THR, 'x');
	/* Transmission is instant: THR is empty again at once. */
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT);
	/* Writes to LSR are ignored. */
	outb(LSR, 0x00);
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT);
}
END_TEST

START_TEST(scratch_register)
{
	ck_assert_uint_eq(inb(SCR), 0);
	outb(SCR, 0x5a);
	ck_assert_uint_eq(inb(SCR), 0x5a);
	outb(SCR, 0xa5);
	ck_assert_uint_eq(inb(SCR), 0xa5);
	/* Scratch is not the data path. */
	{
		char got[4];

		ck_assert_uint_eq(console(got, sizeof(got)), 0);
	}
}
END_TEST

START_TEST(divisor_latch)
{
	char got[8];

	outb(IER, 0x05);
	outb(LCR, 0x83);                 /* DLAB | 8N1 */
	ck_assert_uint_eq(inb(LCR), 0x83);
	ck_assert_uint_eq(inb(DLL), 0x0c); /* 9600 baud as firmware leaves it */
	ck_assert_uint_eq(inb(DLM), 0x00);
	outb(DLL, 0x01);                 /* 115200 */
	outb(DLM, 0x02);
	ck_assert_uint_eq(inb(DLL), 0x01);
	ck_assert_uint_eq(inb(DLM), 0x02);
	/* With DLAB set, offset 0 is the latch: nothing was transmitted. */
	ck_assert_uint_eq(console(got, sizeof(got)), 0);
	outb(LCR, 0x03);
	ck_assert_uint_eq(inb(LCR), 0x03);
	ck_assert_uint_eq(inb(IER), 0x05);  /* IER kept its value under the latch */
	outb(THR, 'z');
	ck_assert_uint_eq(console(got, sizeof(got)), 1);
	ck_assert_uint_eq(got[0], 'z');
	/* The latch keeps its value across DLAB toggles. */
	outb(LCR, 0x80);
	ck_assert_uint_eq(inb(DLL), 0x01);
	ck_assert_uint_eq(inb(DLM), 0x02);
}
END_TEST

START_TEST(ier_mask)
{
	outb(IER, 0xff);
	ck_assert_uint_eq(inb(IER), 0x0f);
}
END_TEST

START_TEST(loopback)
{
	char got[8];

	outb(MCR, 0x10);
	ck_assert_uint_eq(inb(MCR), 0x10);
	outb(THR, 'A');
	outb(THR, 'B');
	ck_assert_uint_eq(console(got, sizeof(got)), 0);  /* not on the wire */
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT | LSR_DR);
	ck_assert_uint_eq(inb(RBR), 'A');
	ck_assert_uint_eq(inb(LSR) & LSR_DR, LSR_DR);
	ck_assert_uint_eq(inb(RBR), 'B');
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT);
	/* Back to normal: the wire again. */
	outb(MCR, 0x00);
	outb(THR, 'C');
	ck_assert_uint_eq(console(got, sizeof(got)), 1);
	ck_assert_uint_eq(got[0], 'C');
}
END_TEST

START_TEST(modem_status)
{
	ck_assert_uint_eq(inb(MSR), 0xb0);       /* DCD, DSR, CTS */
	/* Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	outb(MCR, 0x10 | 0x01);
	ck_assert_uint_eq(inb(MSR), 0x20);
	outb(MCR, 0x10 | 0x02);
	ck_assert_uint_eq(inb(MSR), 0x10);
	outb(MCR, 0x10 | 0x04);
	ck_assert_uint_eq(inb(MSR), 0x40);
	outb(MCR, 0x10 | 0x08);
	ck_assert_uint_eq(inb(MSR), 0x80);
	outb(MCR, 0x1f);
	ck_assert_uint_eq(inb(MSR), 0xf0);
	outb(MCR, 0xff);
	ck_assert_uint_eq(inb(MCR), 0x1f);
}
END_TEST

/* --- receive -------------------------------------------------------------------- */

START_TEST(input_to_rbr)
{
	ck_assert_uint_eq(inb(LSR) & LSR_DR, 0);
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"abc", 3), 3);
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT | LSR_DR);
	ck_assert_uint_eq(inb(RBR), 'a');
	ck_assert_uint_eq(inb(RBR), 'b');
	ck_assert_uint_eq(inb(LSR) & LSR_DR, LSR_DR);
	ck_assert_uint_eq(inb(RBR), 'c');
	ck_assert_uint_eq(inb(LSR) & LSR_DR, 0);
	ck_assert_uint_eq(inb(RBR), 0);            /* empty: reads 0 */
}
END_TEST

START_TEST(input_room)
{
	static uint8_t big[5000];
	size_t i;

	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	ck_assert_uint_eq(serial_input_room(ser), 4096);
	ck_assert_uint_eq(serial_input(ser, big, 3), 3);
	ck_assert_uint_eq(serial_input_room(ser), 4093);
	/* Only what fits is taken. */
	ck_assert_uint_eq(serial_input(ser, big + 3, sizeof(big) - 3), 4093);
	ck_assert_uint_eq(serial_input_room(ser), 0);
	ck_assert_uint_eq(serial_input(ser, big, 1), 0);
	/* Order is kept across the whole FIFO, and reading frees room. */
	for (i = 0; i < 4096; i++)
		ck_assert_uint_eq(inb(RBR), (uint8_t)i);
	ck_assert_uint_eq(serial_input_room(ser), 4096);
	ck_assert_uint_eq(inb(LSR) & LSR_DR, 0);
	/* Wrap around the ring. */
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"xy", 2), 2);
	ck_assert_uint_eq(inb(RBR), 'x');
	ck_assert_uint_eq(inb(RBR), 'y');
}
END_TEST

START_TEST(loopback_overrun)
{
	static uint8_t fill[4096];
	unsigned int i;

	for (i = 0; i < sizeof(fill); i++)
		fill[i] = (uint8_t)(i * 3);
	ck_assert_uint_eq(serial_input(ser, fill, sizeof(fill)), 4096);
	/* A byte looped back into a full FIFO is lost; the FIFO is intact. */
	outb(MCR, 0x10);
	outb(THR, 0xee);
	ck_assert_uint_eq(serial_input_room(ser), 0);
	for (i = 0; i < sizeof(fill); i++)
		ck_assert_uint_eq(inb(RBR), (uint8_t)(i * 3));
	ck_assert_uint_eq(inb(LSR) & LSR_DR, 0);
	ck_assert_uint_eq(serial_input_room(ser), 4096);
}
END_TEST

START_TEST(fcr_clears_rx)
{
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"junk", 4), 4);
	outb(FCR, 0x07);                  /* enable + clear RX + clear TX */
	ck_assert_uint_eq(inb(LSR) & LSR_DR, 0);
	ck_assert_uint_eq(serial_input_room(ser), 4096);
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"k", 1), 1);
	ck_assert_uint_eq(inb(RBR), 'k');
}
END_TEST

/* --- interrupt identification ---------------------------------------------------- */

START_TEST(iir_rx_data)
{
	ck_assert_uint_eq(inb(IIR), 0x01);     /* no interrupt pending */
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"q", 1), 1);
	ck_assert_uint_eq(inb(IIR), 0x01);     /* RX data, but not enabled */
	outb(IER, 0x01);
	ck_assert_uint_eq(inb(IIR), 0x04);     /* received data available */
	ck_assert_uint_eq(inb(IIR), 0x04);     /* reading IIR does not clear it */
	ck_assert_uint_eq(inb(RBR), 'q');
	ck_assert_uint_eq(inb(IIR), 0x01);
	/* Input arriving while enabled raises it. */
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"r", 1), 1);
	ck_assert_uint_eq(inb(IIR), 0x04);
}
END_TEST

START_TEST(iir_thr_empty)
{
	outb(IER, 0x02);
	ck_assert_uint_eq(inb(IIR), 0x02);     /* THR empty, raised on enable */
	ck_assert_uint_eq(inb(IIR), 0x01);     /* cleared by reading IIR */
	outb(THR, 'x');
	ck_assert_uint_eq(inb(IIR), 0x02);     /* raised again after a byte */
	ck_assert_uint_eq(inb(IIR), 0x01);
	/* Re-writing IER with THRI still set does not raise it again. */
	outb(IER, 0x02);
	ck_assert_uint_eq(inb(IIR), 0x01);
	/* Disabling and re-enabling does. */
	outb(IER, 0x00);
	outb(IER, 0x02);
	ck_assert_uint_eq(inb(IIR), 0x02);
}
END_TEST

START_TEST(iir_priority)
{
	outb(IER, 0x03);
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"p", 1), 1);
	/* RX data outranks THR empty; reading IIR then must not eat THRE. */
	ck_assert_uint_eq(inb(IIR), 0x04);
	ck_assert_uint_eq(inb(RBR), 'p');
	ck_assert_uint_eq(inb(IIR), 0x02);
	ck_assert_uint_eq(inb(IIR), 0x01);
}
END_TEST

START_TEST(iir_fifo_bits)
{
	outb(FCR, 0x01);
	ck_assert_uint_eq(inb(IIR), 0xc1);
	outb(IER, 0x01);
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"f", 1), 1);
	ck_assert_uint_eq(inb(IIR), 0xc4);
	outb(FCR, 0x00);
	ck_assert_uint_eq(inb(IIR), 0x04);
}
END_TEST

/* --- counters ------------------------------------------------------------------------ */

START_TEST(stats_count)
{
	static uint8_t fill[4096];
	struct serial_stats st;

	memset(&st, 0xa5, sizeof(st));
	serial_get_stats(ser, &st);
	ck_assert_uint_eq(st.tx_bytes, 0);
	ck_assert_uint_eq(st.rx_bytes, 0);
	ck_assert_uint_eq(st.rx_dropped, 0);

	outb(THR, 'a');
	outb(THR, 'b');
	outb(THR, 'c');
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"xy", 2), 2);
	serial_get_stats(ser, &st);
	ck_assert_uint_eq(st.tx_bytes, 3);
	ck_assert_uint_eq(st.rx_bytes, 2);
	ck_assert_uint_eq(st.rx_dropped, 0);

	/* Loopback bytes are received, not transmitted; into a full FIFO
	 * they are dropped. */
	outb(MCR, 0x10);
	outb(THR, 'l');
	ck_assert_uint_eq(serial_input(ser, fill, sizeof(fill)), 4096 - 3);
	outb(THR, 'm');
	outb(THR, 'n');
	serial_get_stats(ser, &st);
	ck_assert_uint_eq(st.tx_bytes, 3);
	ck_assert_uint_eq(st.rx_bytes, 4096);
	ck_assert_uint_eq(st.rx_dropped, 2);
}
END_TEST

/* --- bus behaviour, lifetime ---------------------------------------------------------- */

START_TEST(wide_access)
{
	uint8_t d[4] = { 0xee, 0xee, 0xee, 0xee };

	/* A 2-byte read at LSR returns LSR and a zero upper byte. */
	ck_assert(bus_dispatch(pio, LSR, d, 2, false));
	ck_assert_uint_eq(d[0], LSR_THRE | LSR_TEMT);
	ck_assert_uint_eq(d[1], 0);
	ck_assert_uint_eq(d[2], 0xee);
	/* A 4-byte access at 0x3fe would run past the window: unclaimed. */
	ck_assert(!bus_dispatch(pio, COM1 + 6, d, 4, false));
	ck_assert_uint_eq(d[0], 0xff);
}
END_TEST

/* A guest reset puts the registers back to power-on values and empties the
 * receive FIFO. */
START_TEST(reset_power_on_state)
{
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"ab", 2), 2);
	outb(IER, 0x03);
	outb(SCR, 0x5a);
	outb(MCR, 0x1f);
	outb(LCR, 0x80);
	outb(DLL, 0x01);
	outb(LCR, 0x03);
	ck_assert_uint_eq(inb(IIR) & 0x0f, 0x04); /* receive data pending */
	serial_reset(ser);
	ck_assert_uint_eq(inb(IER), 0);
	ck_assert_uint_eq(inb(SCR), 0);
	ck_assert_uint_eq(inb(MCR), 0);
	ck_assert_uint_eq(inb(LCR), 0);
	ck_assert_uint_eq(inb(IIR) & 0x0f, 0x01); /* no interrupt pending */
	ck_assert_uint_eq(inb(LSR) & LSR_DR, 0);  /* FIFO empty */
	outb(LCR, 0x80);
	ck_assert_uint_eq(inb(DLL), 0x0c);
	ck_assert_uint_eq(inb(DLM), 0);
	outb(LCR, 0x03);
	ck_assert_uint_eq(serial_input(ser, (const uint8_t *)"c", 1), 1);
	ck_assert_uint_eq(inb(RBR), 'c');
}
END_TEST

START_TEST(double_create_refused)
{
	struct irq_line irq = { .vm_fd = -1, .gsi = SERIAL_COM1_IRQ };
	struct serial *other = NULL;

	ck_assert_int_eq(serial_create(pio, COM1 + 4, irq, -1, &other), -EEXIST);
	ck_assert_ptr_null(other);
	/* COM2 is fine. */
	ck_assert_int_eq(serial_create(pio, 0x2f8, irq, -1, &other), 0);
	ck_assert_uint_eq(inb(0x2f8 + 5), LSR_THRE | LSR_TEMT);
	serial_destroy(other);
	ck_assert(!bus_dispatch(pio, 0x2f8 + 5, (uint8_t[1]){ 0 }, 1, false));
}
END_TEST

START_TEST(destroy_unregisters)
{
	uint8_t v = 0;

	serial_destroy(ser);
	ser = NULL;
	ck_assert(!bus_dispatch(pio, LSR, &v, 1, false));
	ck_assert_uint_eq(v, 0xff);
	serial_destroy(NULL);
}
END_TEST

START_TEST(no_output_fd)
{
	struct irq_line irq = { .vm_fd = -1, .gsi = 3 };
	struct serial *s2 = NULL;
	uint8_t v = 'x';

	ck_assert_int_eq(serial_create(pio, 0x2f8, irq, -1, &s2), 0);
	ck_assert(bus_dispatch(pio, 0x2f8, &v, 1, true));   /* dropped */
	ck_assert(bus_dispatch(pio, 0x2f8 + 5, &v, 1, false));
	ck_assert_uint_eq(v, LSR_THRE | LSR_TEMT);
	serial_destroy(s2);
}
END_TEST

START_TEST(console_closed)
{
	/* The reader went away: the byte is dropped, the guest carries on.
	 * (skiff ignores SIGPIPE in main; do the same here.) */
	signal(SIGPIPE, SIG_IGN);
	close(out[0]);
	out[0] = -1;
	outb(THR, 'x');
	ck_assert_uint_eq(inb(LSR), LSR_THRE | LSR_TEMT);
}
END_TEST

/* --- a stalled console ----------------------------------------------------------------- */

/* Fills the console pipe so that the next write(2) would block, and leaves
 * the write end blocking, as stdout normally is. */
static void fill_console(void)
{
	static const char junk[4096];
	int fl = fcntl(out[1], F_GETFL);

	ck_assert_int_ge(fl, 0);
	ck_assert_int_eq(fcntl(out[1], F_SETFL, fl | O_NONBLOCK), 0);
	while (write(out[1], junk, sizeof(junk)) > 0)
		;
	while (write(out[1], junk, 1) > 0)
		;
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(fcntl(out[1], F_SETFL, fl & ~O_NONBLOCK), 0);
}

static void drain_console(void)
{
	char buf[4096];

	while (read(out[0], buf, sizeof(buf)) > 0)
		;
}

static void *vcpu_writes_thr(void *arg)
{
	uint8_t c = 'x';

	(void)arg;
	bus_dispatch(pio, THR, &c, 1, true);
	return NULL;
}

static void *main_queues_input(void *arg)
{
	(void)arg;
	(void)serial_input(ser, (const uint8_t *)"k", 1);
	return NULL;
}

/* Joins t within ms milliseconds; returns false if it is still running. */
static bool join_within(pthread_t t, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/*
 * serial.c says: "A closed or full console must not stop the guest: drop the
 * byte." skiff hands the device STDOUT_FILENO, a blocking fd. A guest
 * writing THR while the console reader is stalled must not hang its vCPU.
 */
START_TEST(full_console_does_not_block_vcpu)
{
	pthread_t vcpu;
	bool returned;

	fill_console();
	ck_assert_int_eq(pthread_create(&vcpu, NULL, vcpu_writes_thr, NULL), 0);
	returned = join_within(vcpu, 1000);
	if (!returned) {
		drain_console();        /* unblock it, so the test ends cleanly */
		pthread_join(vcpu, NULL);
	}
	ck_assert_msg(returned, "a THR write to a full console blocked the vCPU thread for over 1 s");
}
END_TEST

/*
 * The main thread's console input (serial_input / serial_input_room, called
 * from vm.c's stdin handler and run loop) must not wait for a vCPU stuck
 * writing to the console: that stalls SIGTERM and Ctrl-A x handling.
 */
START_TEST(stalled_output_does_not_block_input)
{
	pthread_t vcpu, mainthr;
	bool input_returned;

	fill_console();
	ck_assert_int_eq(pthread_create(&vcpu, NULL, vcpu_writes_thr, NULL), 0);
	usleep(100 * 1000);
	ck_assert_int_eq(pthread_create(&mainthr, NULL, main_queues_input, NULL), 0);
	input_returned = join_within(mainthr, 1000);
	drain_console();
	if (!input_returned)
		pthread_join(mainthr, NULL);
	pthread_join(vcpu, NULL);
	ck_assert_msg(input_returned,
		      "serial_input() waited over 1 s for a vCPU blocked writing to the console");
}
END_TEST

static Suite *serial_suite(void)
{
	Suite *s = suite_create("serial");
	TCase *tx = tcase_create("transmit");
	TCase *rx = tcase_create("receive");
	TCase *irq = tcase_create("iir");
	TCase *life = tcase_create("lifetime");
	TCase *stall = tcase_create("stalled_console");

	tcase_add_checked_fixture(tx, setup, teardown);
	tcase_add_test(tx, thr_to_console);
	tcase_add_test(tx, lsr_idle);
	tcase_add_test(tx, scratch_register);
	tcase_add_test(tx, divisor_latch);
	tcase_add_test(tx, ier_mask);
	tcase_add_test(tx, loopback);
	tcase_add_test(tx, modem_status);
	suite_add_tcase(s, tx);

	tcase_add_checked_fixture(rx, setup, teardown);
	tcase_add_test(rx, input_to_rbr);
	tcase_add_test(rx, input_room);
	tcase_add_test(rx, loopback_overrun);
	tcase_add_test(rx, fcr_clears_rx);
	tcase_add_test(rx, reset_power_on_state);
	suite_add_tcase(s, rx);

	tcase_add_checked_fixture(irq, setup, teardown);
	tcase_add_test(irq, iir_rx_data);
	tcase_add_test(irq, iir_thr_empty);
	tcase_add_test(irq, iir_priority);
	tcase_add_test(irq, iir_fifo_bits);
	suite_add_tcase(s, irq);

	tcase_add_checked_fixture(life, setup, teardown);
	tcase_add_test(life, stats_count);
	tcase_add_test(life, wide_access);
	tcase_add_test(life, double_create_refused);
	tcase_add_test(life, destroy_unregisters);
	tcase_add_test(life, no_output_fd);
	tcase_add_test(life, console_closed);
	suite_add_tcase(s, life);

	tcase_add_checked_fixture(stall, setup, teardown);
	tcase_add_test(stall, full_console_does_not_block_vcpu);
	tcase_add_test(stall, stalled_output_does_not_block_input);
	suite_add_tcase(s, stall);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(serial_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

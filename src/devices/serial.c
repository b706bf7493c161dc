/*
 * 16550A UART (register layout and interrupt priorities per the TI/National
 * PC16550D data sheet). Transmission is instant: every byte written to THR
 * goes straight to the output fd, so THR is always empty again.
 *
 * Threads: register handlers run on vCPU threads; serial_input() runs on the
 * main thread. Everything in struct serial is guarded by `lock`, which is a
 * leaf lock (nothing else is taken while holding it; the bus read lock is held
 * by the caller of the handler, so the order is bus lock -> serial lock).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices.h"
#include "log.h"

#define RX_QUEUE 4096   /* host input buffered for the guest (a deep FIFO) */
#define TX_PENDING 65536 /* guest output waiting for a slow console */
#define TX_CHUNK 256     /* at most this much per write(2) */
#define EXIT_FLUSH_MS 200 /* how long destroy waits for a stalled console */

enum { REG_DATA, REG_IER, REG_IIR_FCR, REG_LCR, REG_MCR, REG_LSR, REG_MSR, REG_SCR };

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_RLSI 0x04
#define IER_MSI 0x08
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DEFAULT 0xb0 /* DCD, DSR, CTS: a terminal is attached */

struct serial {
	/* --- state (under lock) --- */
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_pending;       /* THR-empty interrupt armed and not yet read */
	bool irq_level;         /* what we last drove onto the line */
	uint8_t rx[RX_QUEUE];
	size_t rx_head, rx_len;
	uint8_t tx[TX_PENDING];
	size_t tx_head, tx_len;
	struct serial_stats stats;
	/* --- wiring (immutable after create) --- */
	struct bus *pio;
	uint16_t base;
	struct irq_line irq;
	int out_fd;
	struct log_ratelimit rl;
};

/* --- register handlers (vCPU threads, lock held) ------------------------- */

static uint8_t iir_value(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void update_irq(struct serial *s)
{
	bool level = !(iir_value(s) & IIR_NONE);

	if (level == s->irq_level)
		return;
	s->irq_level = level;
	if (irq_line_set(&s->irq, level))
		log_limited(&s->rl, LOG_WARN, "serial: cannot drive IRQ %u", s->irq.gsi);
}

static void rx_push(struct serial *s, uint8_t c)
{
	if (s->rx_len == RX_QUEUE) {
		s->stats.rx_dropped++;
		return; /* overrun: the byte is dropped, as on real hardware */
	}
	s->stats.rx_bytes++;
	s->rx[(s->rx_head + s->rx_len) % RX_QUEUE] = c;
	s->rx_len++;
}

/*
 * Console output never blocks the vCPU (which holds s->lock, also wanted by
 * the main thread for input): bytes go through a pending buffer that is
 * flushed only while poll() says the fd can take data, in chunks small
 * enough for a pipe or tty with room to accept without blocking. When the
 * reader stalls, the buffer absorbs TX_PENDING bytes, then further bytes are
 * dropped and counted. Returns after at most one non-blocking pass.
 */
static void flush_out(struct serial *s, int timeout_ms)
{
	while (s->tx_len) {
		struct pollfd pfd = { .fd = s->out_fd, .events = POLLOUT };
		size_t chunk = MIN(MIN(s->tx_len, (size_t)TX_CHUNK), TX_PENDING - s->tx_head);
		ssize_t r;

		if (poll(&pfd, 1, timeout_ms) <= 0 || !(pfd.revents & POLLOUT))
			return; /* not writable (or an error: POLLERR/POLLHUP) */
		r = write(s->out_fd, s->tx + s->tx_head, chunk);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			/* The console is gone: nothing will ever drain it. */
			s->stats.tx_dropped += s->tx_len;
			s->tx_len = 0;
			return;
		}
		s->stats.tx_bytes += (uint64_t)r;
		s->tx_head = (s->tx_head + (size_t)r) % TX_PENDING;
		s->tx_len -= (size_t)r;
	}
}

static void transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, c);
	} else if (s->out_fd >= 0) {
		if (s->tx_len == TX_PENDING) {
			s->stats.tx_dropped++;
		} else {
			s->tx[(s->tx_head + s->tx_len) % TX_PENDING] = c;
			s->tx_len++;
		}
		flush_out(s, 0);
	}
	s->thr_pending = true;
}

static uint8_t reg_read(struct serial *s, unsigned int reg)
{
	uint8_t v = 0;

	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->rx_len) {
			v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % RX_QUEUE;
			s->rx_len--;
		}
		return v;
	case REG_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR_FCR:
		v = iir_value(s);
		/* Reading IIR while THRE is the reported source acknowledges it. */
		if ((v & 0x0f) == IIR_THRI)
			s->thr_pending = false;
		return v;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
	case REG_MSR:
		if (s->mcr & MCR_LOOP) /* loopback: outputs fed back to inputs */
			return (uint8_t)(((s->mcr & 0x02) << 3) | ((s->mcr & 0x01) << 5) |
					 ((s->mcr & 0x04) << 4) | ((s->mcr & 0x08) << 4));
		return MSR_DEFAULT;
	default:
		return s->scr;
	}
}

static void reg_write(struct serial *s, unsigned int reg, uint8_t v)
{
	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			break;
		}
		/* Enabling THRI while THR is empty raises it at once (Linux's
		 * UART_BUG_THRE probing relies on this). */
		if (!(s->ier & IER_THRI) && (v & IER_THRI))
			s->thr_pending = true;
		s->ier = v & 0x0f;
		break;
	case REG_IIR_FCR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_len = 0;
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		s->mcr = v & 0x1f;
		break;
	case REG_SCR:
		s->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
}

static void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;

	pthread_mutex_lock(&s->lock);
	if (is_write) {
		reg_write(s, (unsigned int)offset, data[0]);
	} else {
		data[0] = reg_read(s, (unsigned int)offset);
		if (len > 1)
			memset(data + 1, 0, len - 1);
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

/* --- host input (main thread) -------------------------------------------- */

size_t serial_input_room(struct serial *s)
{
	size_t room;

	pthread_mutex_lock(&s->lock);
	room = RX_QUEUE - s->rx_len;
	pthread_mutex_unlock(&s->lock);
	return room;
}

size_t serial_input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t i;

	pthread_mutex_lock(&s->lock);
	for (i = 0; i < len && s->rx_len < RX_QUEUE; i++)
		rx_push(s, buf[i]);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return i;
}

void serial_get_stats(struct serial *s, struct serial_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	s->ier = s->lcr = s->mcr = s->scr = s->fcr = s->dlm = 0;
	s->dll = 0x0c; /* as serial_create leaves it */
	s->thr_pending = false;
	s->rx_head = s->rx_len = 0;
	update_irq(s); /* IIR reads "none" now: drives the line low if it was high */
	pthread_mutex_unlock(&s->lock);
}

/* --- create/destroy ------------------------------------------------------- */

int serial_create(struct bus *pio, uint16_t base, struct irq_line irq, int out_fd,
		  struct serial **out)
{
	struct serial *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->pio = pio;
	s->base = base;
	s->irq = irq;
	s->out_fd = out_fd;
	s->rl = (struct log_ratelimit)LOG_RATELIMIT_INIT(5);
	s->dll = 0x0c; /* 9600 baud, as firmware leaves it */
	ret = bus_register(pio, base, 8, serial_io, s, "serial");
	if (ret) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	/* vCPUs are gone: give a slow console a last, bounded chance. */
	if (s->out_fd >= 0)
		flush_out(s, EXIT_FLUSH_MS);
	if (bus_unregister(s->pio, s->base))
		log_warn("serial: window at 0x%x was not registered", s->base);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* --- migration ----------------------------------------------------------------
 *
 * Layout (v1): u8 version, ier, lcr, mcr, scr, fcr, dll, dlm, thr_pending,
 * 3 reserved bytes, u32 rx_len, then rx_len bytes of the receive FIFO.
 */
#define SERIAL_STATE_VERSION 1

_Static_assert(SERIAL_STATE_MAX >= 16 + RX_QUEUE, "SERIAL_STATE_MAX too small");

size_t serial_state_save(struct serial *s, uint8_t *buf)
{
	uint32_t n;

	pthread_mutex_lock(&s->lock);
	buf[0] = SERIAL_STATE_VERSION;
	buf[1] = s->ier;
	buf[2] = s->lcr;
	buf[3] = s->mcr;
	buf[4] = s->scr;
	buf[5] = s->fcr;
	buf[6] = s->dll;
	buf[7] = s->dlm;
	buf[8] = s->thr_pending;
	buf[9] = buf[10] = buf[11] = 0;
	n = (uint32_t)s->rx_len;
	memcpy(buf + 12, &n, 4);
	for (size_t i = 0; i < s->rx_len; i++)
		buf[16 + i] = s->rx[(s->rx_head + i) % RX_QUEUE];
	pthread_mutex_unlock(&s->lock);
	return 16 + n;
}

int serial_state_load(struct serial *s, const uint8_t *buf, size_t len)
{
	uint32_t n;

	if (len < 16 || buf[0] != SERIAL_STATE_VERSION)
		return -EINVAL;
	memcpy(&n, buf + 12, 4);
	if (n > RX_QUEUE || len != 16 + (size_t)n || buf[8] > 1)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	s->ier = buf[1] & 0x0f;
	s->lcr = buf[2];
	s->mcr = buf[3] & 0x1f;
	s->scr = buf[4];
	s->fcr = buf[5] & 0xc9;
	s->dll = buf[6];
	s->dlm = buf[7];
	s->thr_pending = buf[8];
	memcpy(s->rx, buf + 16, n);
	s->rx_head = 0;
	s->rx_len = n;
	/* The destination's line is low (its guest never ran): raise it when
	 * an interrupt is pending; lowering it again would be an ioctl in the
	 * migration's downtime for nothing. */
	s->irq_level = !(iir_value(s) & IIR_NONE);
	if (s->irq_level && irq_line_set(&s->irq, 1))
		log_limited(&s->rl, LOG_WARN, "serial: cannot drive IRQ %u", s->irq.gsi);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/*
 * Live migration and snapshots (docs/migration.md has the stream format).
 *
 * Pieces:
 *  - buf.c:       little-endian record buffers (mig_buf writer, mig_rd reader)
 *                 and CRC32C;
 *  - stream.c:    the framed stream over an fd: header, records, checksums;
 *  - ram.c:       dirty logging and RAM passes (send) / RAM batches (load);
 *  - cpu_state.c: vCPU and VM (KVM clock, PIC, IOAPIC, PIT) state records;
 *  - dev_state.c: device state as one flattened device tree (libfdt);
 *  - migrate.c:   the outgoing driver (a migration thread) and the incoming
 *                 side, wired to the main thread and the control socket.
 *
 * Thread contexts: the migration thread streams RAM and, while the main
 * thread keeps every vCPU parked and every virtio device paused, the final
 * state. The main thread owns the decisions (start, pause, resume, exit);
 * it and the migration thread hand over through an eventfd and a mutex
 * (struct migration's lock, a leaf lock).
 */
#ifndef SKIFF_MIGRATION_H
#define SKIFF_MIGRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct vm;
struct vcpu;

/* --- little-endian buffers (buf.c) ------------------------------------- */

/* A growable output buffer. The first failed allocation sets err
 * (-ENOMEM); later puts are ignored, so a writer checks err once at the end. */
struct mig_buf {
	uint8_t *data;
	size_t len, cap;
	int err;
};

void mig_buf_init(struct mig_buf *b);
void mig_buf_free(struct mig_buf *b);
void mig_buf_reset(struct mig_buf *b);               /* len = 0, err = 0 */
void mig_put_u8(struct mig_buf *b, uint8_t v);
void mig_put_u16(struct mig_buf *b, uint16_t v);
void mig_put_u32(struct mig_buf *b, uint32_t v);
void mig_put_u64(struct mig_buf *b, uint64_t v);
void mig_put_bytes(struct mig_buf *b, const void *p, size_t n);
/* Reserves n bytes and returns where they go (NULL after an error). */
void *mig_put_space(struct mig_buf *b, size_t n);
/* Grows the buffer to hold n more bytes and touches them (faults the pages
 * in) without changing its length: for buffers filled in the downtime. */
int MUST_CHECK mig_buf_reserve(struct mig_buf *b, size_t n);

/* A bounds-checked reader over untrusted bytes. A read past the end sets
 * `bad` and returns zeros; the caller checks mig_rd_done() once at the end
 * (nothing overran and, if `exact`, nothing was left over). */
struct mig_rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

void mig_rd_init(struct mig_rd *r, const void *p, size_t len);
uint8_t mig_get_u8(struct mig_rd *r);
uint16_t mig_get_u16(struct mig_rd *r);
uint32_t mig_get_u32(struct mig_rd *r);
uint64_t mig_get_u64(struct mig_rd *r);
/* Copies n bytes (zeros and `bad` if they are not there). */
void mig_get_bytes(struct mig_rd *r, void *dst, size_t n);
/* Pointer to the next n bytes, or NULL (and `bad`) if fewer remain. */
const void *mig_get_ptr(struct mig_rd *r, size_t n);
static inline size_t mig_rd_left(const struct mig_rd *r) { return r->bad ? 0 : r->len - r->off; }
bool mig_rd_done(const struct mig_rd *r, bool exact);

/* CRC32C (Castagnoli), hardware-accelerated when the CPU has SSE4.2.
 * Start with crc = 0; chain calls by passing the previous result. */
uint32_t mig_crc32c(uint32_t crc, const void *p, size_t len);

/* --- the framed stream (stream.c) ----------------------------------------
 *
 * Header: "SKIFFMIG" (8 bytes), u32 version, u32 flags. Then records:
 * u32 type, u32 length, payload[length], u32 CRC32C over type, length and
 * payload. All integers little-endian. docs/migration.md has the details.
 */
#define MIG_MAGIC "SKIFFMIG"
#define MIG_VERSION 1
#define MIG_MAX_RECORD (8u << 20)      /* payload bytes */
#define MIG_MAX_CHANNELS 16

enum mig_record {
	MIG_REC_CONFIG = 1,     /* the source's VM configuration */
	MIG_REC_RAM = 2,        /* a batch of pages */
	MIG_REC_PASS = 3,       /* end of one RAM pass (u32 pass number) */
	MIG_REC_VM = 4,         /* mig_vm_save */
	MIG_REC_VCPU = 5,       /* u32 index, then mig_vcpu_save */
	MIG_REC_DEVICES = 6,    /* mig_devices_save */
	MIG_REC_VERIFY = 7,     /* u32 CRC32C over all of RAM, in address order */
	MIG_REC_END = 8,
};

struct mig_stream {
	int fd;
	bool is_socket;
	uint64_t bytes;              /* written or read, including framing */
	uint64_t max_bandwidth;      /* bytes/s, 0 = unlimited (writer) */
	uint64_t window_start_ns, window_bytes;
	struct mig_buf rec;          /* the record being read */
};

void mig_stream_init(struct mig_stream *s, int fd);
void mig_stream_fini(struct mig_stream *s);
int MUST_CHECK mig_stream_write_header(struct mig_stream *s, uint32_t flags);
/* Writes one record (type, payload) with its checksum. Returns 0 or -errno. */
int MUST_CHECK mig_stream_put(struct mig_stream *s, uint32_t type, const void *p, size_t len);
/* Reads and checks the header; err gets one line. */
int MUST_CHECK mig_stream_read_header(struct mig_stream *s, uint32_t *flags, char *err,
				      size_t errlen);
/* Reads the next record into s->rec (checked length and checksum). Returns
 * 0, or -errno with one line in err (-EPIPE: the stream ended early). */
int MUST_CHECK mig_stream_next(struct mig_stream *s, uint32_t *type, char *err, size_t errlen);

/* --- vCPU, VM and device state records (cpu_state.c, dev_state.c) ------
 *
 * Each save appends one self-contained, versioned payload to `out`; the
 * matching load checks every length and version in it and reports what is
 * wrong in err (one line). Loads run on the destination before any vCPU
 * has run (vCPU threads parked), saves on the source with every vCPU
 * parked and every virtio device paused. Both run on the migration thread.
 */

/* Registers, segment and control registers, FPU/XSAVE, XCRs, MSRs (the
 * KVM_GET_MSR_INDEX_LIST set that KVM_GET_MSRS accepts), LAPIC, vCPU
 * events, debug registers, MP state. */
int MUST_CHECK mig_vcpu_save(struct vcpu *v, struct mig_buf *out);
int MUST_CHECK mig_vcpu_load(struct vcpu *v, const void *p, size_t len, char *err, size_t errlen);
/* A destination's snapshot, taken off the downtime with its vCPU parked, of
 * the sections a record often carries unchanged (MP state, vCPU events,
 * debug registers, XCRs). mig_vcpu_load_cur() does not tell KVM again what
 * it already holds: a section equal byte for byte to the snapshot is
 * skipped (each vCPU ioctl costs microseconds of downtime). The snapshot
 * must be of the state the load would overwrite: nothing may run or set
 * those sections in between. */
struct mig_vcpu_cur;
int MUST_CHECK mig_vcpu_current(struct vcpu *v, struct mig_vcpu_cur **out);
void mig_vcpu_current_free(struct mig_vcpu_cur *c);
int MUST_CHECK mig_vcpu_load_cur(struct vcpu *v, const void *p, size_t len,
				 const struct mig_vcpu_cur *cur, char *err, size_t errlen);

/* KVM clock, PIC master/slave, IOAPIC, PIT. */
int MUST_CHECK mig_vm_save(int vm_fd, struct mig_buf *out);
int MUST_CHECK mig_vm_load(int vm_fd, const void *p, size_t len, char *err, size_t errlen);

/* Every device's state (UART, i8042, ACPI GED, PCI functions and their
 * MSI-X tables, virtio transports, queues and device-specific state) as one
 * flattened device tree with a version property per node. */
int MUST_CHECK mig_devices_save(struct vm *vm, struct mig_buf *out);
int MUST_CHECK mig_devices_load(struct vm *vm, const void *p, size_t len, char *err,
				size_t errlen);

/* --- migration driver (migrate.c, incoming.c) ----------------------------- */

struct migration;
struct event_loop;

/* Tunables (migrate-set-parameters). */
struct mig_params {
	uint64_t downtime_limit_ms;   /* default 300 */
	uint64_t max_bandwidth;       /* bytes/s, 0 = unlimited (default) */
	bool auto_converge;           /* default true */
	unsigned int channels;        /* TCP connections for RAM, default 1 */
	bool verify;                  /* final RAM hash, default false */
};

enum mig_status {
	MIG_S_NONE, MIG_S_SETUP, MIG_S_ACTIVE, MIG_S_DEVICE,
	MIG_S_COMPLETED, MIG_S_FAILED, MIG_S_CANCELLED,
};
const char *mig_status_name(enum mig_status s);

/* What query-migrate reports. */
struct mig_info {
	enum mig_status status;
	bool incoming;
	uint64_t total_time_ms, setup_time_ms, expected_downtime_ms;
	double downtime_ms;           /* after completion */
	uint64_t ram_total, transferred, remaining;
	uint64_t pages, zero_pages, iterations;
	uint64_t dirty_pages_rate, dirty_bytes_rate;
	double mbps;
	unsigned int throttle_pct;
	char error[256];
};

/* Main thread, builder: the driver (idle until started). */
int MUST_CHECK migration_create(struct vm *vm, struct migration **out);
/* Main thread, teardown: cancels a running migration and joins its thread. */
void migration_destroy(struct migration *m);
/* Main thread: watch the migration thread's requests in the event loop. */
int MUST_CHECK migration_attach(struct migration *m, struct event_loop *loop);
/* Main thread, before the vCPU threads are joined: stops vCPU throttling. */
void migration_vm_stopping(struct migration *m);

/* Main thread: starts an outgoing migration or snapshot. err: one line. */
int MUST_CHECK migration_start(struct migration *m, const char *uri, char *err, size_t errlen);
/* Main thread, vCPUs parked: waits for and loads an incoming stream
 * (--incoming / --restore); on success the VM is resumed, on failure the
 * run state ends with SKIFF_EXIT_MIGRATION. */
int MUST_CHECK migration_incoming(struct migration *m, const char *uri, char *err, size_t errlen);
/* Main thread: -ENOENT if no outgoing migration is running. */
int migration_cancel(struct migration *m);
/* Main thread: is the VM stopped for the final phase (stop/cont refused)? */
bool migration_owns_vm(struct migration *m);
void migration_info(struct migration *m, struct mig_info *out);
void migration_get_params(struct migration *m, struct mig_params *out);
/* Main thread; refused (-EBUSY) while a migration runs. */
int MUST_CHECK migration_set_params(struct migration *m, const struct mig_params *p, char *err,
				    size_t errlen);

#endif

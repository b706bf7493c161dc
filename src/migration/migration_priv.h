/*
 * Internals of src/migration: RAM passes, the configuration record, URIs,
 * and the driver's shared state between the main and migration threads.
 */
#ifndef SKIFF_MIGRATION_PRIV_H
#define SKIFF_MIGRATION_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "log.h"
#include "mem.h"
#include "migration.h"

/* --- RAM (ram.c) ------------------------------------------------------------ */

struct mig_ram {
	struct guest_mem *mem;
	int vm_fd;
	bool manual_checked, manual;   /* MANUAL_DIRTY_LOG_PROTECT2 enabled */
	bool logging;
	bool first_pass;
	bool final_pass;               /* vCPUs parked: no re-protecting */
	uint64_t nr_pages, words;
	uint64_t *bitmap;              /* pages to send, by memfd page index */
	uint64_t *scratch;             /* KVM_GET_DIRTY_LOG output */
	uint64_t dirty_pages;          /* set bits in bitmap after a sync */
	/* counters */
	uint64_t data_pages, zero_pages;
};

/* One sender per channel: its own batch, sending the chunks `part` of
 * `nparts` (by 16 MiB chunk number). Senders of one pass run in parallel:
 * they touch disjoint words of the shared bitmap. */
struct mig_sender {
	struct mig_ram *r;
	struct mig_stream *s;
	unsigned int part, nparts;
	uint8_t *batch_data;
	uint8_t *entries;
	uint32_t nr_entries, nr_data;
	unsigned int last_kind;
	uint32_t last_pages;
	uint64_t last_gpa_end;
	struct mig_buf out;
	off_t extent_start, extent_end;  /* first pass: memfd extent cache */
	bool extent_hole;
	uint64_t data_pages, zero_pages;
};

int MUST_CHECK mig_ram_init(struct mig_ram *r, struct guest_mem *mem, int vm_fd);
void mig_ram_fini(struct mig_ram *r);
/* Turns dirty logging on for every RAM slot and marks all pages for pass 1. */
int MUST_CHECK mig_ram_log_start(struct mig_ram *r);
void mig_ram_log_stop(struct mig_ram *r);
/* Adds the pages dirtied since the last sync (KVM's log and the devices'
 * bitmap) to the send bitmap; updates dirty_pages. */
int MUST_CHECK mig_ram_sync(struct mig_ram *r);
int MUST_CHECK mig_sender_init(struct mig_sender *x, struct mig_ram *r, struct mig_stream *s,
				unsigned int part, unsigned int nparts);
void mig_sender_fini(struct mig_sender *x);
/* Sends the sender's chunks of the bitmap (clearing KVM's log chunk by
 * chunk first) and flushes its batch. */
int MUST_CHECK mig_ram_send_part(struct mig_sender *x, const atomic_bool *cancel);
/* After every sender of a pass finished: adds up their counters. */
void mig_ram_pass_done(struct mig_ram *r, struct mig_sender *x, unsigned int n);
/* One sender, one stream: a whole pass. */
int MUST_CHECK mig_ram_send(struct mig_ram *r, struct mig_stream *s, const atomic_bool *cancel);
/* Destination: applies one MIG_REC_RAM payload; `written` has a bit per
 * page this load wrote data to. Adds the pages described to *pages. */
int MUST_CHECK mig_ram_load(struct guest_mem *mem, uint64_t *written, const void *p, size_t len,
			    uint64_t *pages, char *err, size_t errlen);
/* The verify hash over all of RAM (docs/migration.md). */
uint64_t mig_ram_hash(struct guest_mem *mem);

/* --- URIs (uri.c) ------------------------------------------------------------ */

enum mig_uri_kind { MIG_URI_TCP, MIG_URI_UNIX, MIG_URI_FILE };

struct mig_uri {
	enum mig_uri_kind kind;
	char host[256];
	char port[8];
	char path[4096];
	char text[4200];             /* as given, for messages */
};

/* "tcp:HOST:PORT" ([v6] in brackets), "unix:PATH", "file:PATH". */
int MUST_CHECK mig_uri_parse(const char *s, struct mig_uri *u, char *err, size_t errlen);
/* Blocking connect (tcp with a timeout) / listen; return an fd or -errno
 * with err set. Sockets get send/receive timeouts (MIG_IO_TIMEOUT_S). */
int mig_uri_connect(const struct mig_uri *u, char *err, size_t errlen);
int mig_uri_listen(const struct mig_uri *u, char *err, size_t errlen);
/* Accepts one connection, returning early when cancel_fd is readable
 * (-ECANCELED), when peer_fd (the first channel, or -1) hangs up (-EPIPE)
 * or after timeout_ms (-1: never; -ETIMEDOUT). */
int mig_uri_accept(int listen_fd, int cancel_fd, int peer_fd, int timeout_ms, char *err,
		   size_t errlen);

#define MIG_IO_TIMEOUT_S 10

#endif

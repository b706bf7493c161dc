/*
 * Unit tests for the migration stream (src/migration/buf.c, stream.c,
 * ram.c, uri.c) and the --incoming/--restore options: round trips and
 * hostile input. No KVM needed: RAM is a plain memfd (mem_create) and the
 * stream goes through a temporary file.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mem.h"
#include "migration.h"
#include "migration_priv.h"

#define RAM (8 * MiB)

static int tmpfile_fd(void)
{
	char path[] = "/tmp/skiff-mig-test-XXXXXX";
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	unlink(path);
	return fd;
}

START_TEST(buf_round_trip)
{
	struct mig_buf b;
	struct mig_rd r;
	uint8_t bytes[3];

	mig_buf_init(&b);
	mig_put_u8(&b, 0x12);
	mig_put_u16(&b, 0x3456);
	mig_put_u32(&b, 0x789abcde);
	mig_put_u64(&b, 0x0123456789abcdefull);
	mig_put_bytes(&b, "xyz", 3);
	ck_assert_int_eq(b.err, 0);
	ck_assert_uint_eq(b.len, 1 + 2 + 4 + 8 + 3);
	/* Little-endian on the wire whatever the host. */
	ck_assert_uint_eq(b.data[1], 0x56);
	ck_assert_uint_eq(b.data[2], 0x34);
	mig_rd_init(&r, b.data, b.len);
	ck_assert_uint_eq(mig_get_u8(&r), 0x12);
	ck_assert_uint_eq(mig_get_u16(&r), 0x3456);
	ck_assert_uint_eq(mig_get_u32(&r), 0x789abcde);
	ck_assert_uint_eq(mig_get_u64(&r), 0x0123456789abcdefull);
	mig_get_bytes(&r, bytes, 3);
	ck_assert_mem_eq(bytes, "xyz", 3);
	ck_assert(mig_rd_done(&r, true));
	/* Reading past the end: zeros and `bad`, never out of bounds. */
	ck_assert_uint_eq(mig_get_u32(&r), 0);
	ck_assert(r.bad);
	ck_assert(!mig_rd_done(&r, false));
	ck_assert_ptr_null(mig_get_ptr(&r, 1));
	/* Left-over bytes fail an exact check. */
	mig_rd_init(&r, b.data, b.len);
	(void)mig_get_u8(&r);
	ck_assert(mig_rd_done(&r, false));
	ck_assert(!mig_rd_done(&r, true));
	mig_buf_free(&b);
}
END_TEST

START_TEST(crc32c_vectors)
{
	uint8_t zeros[32] = { 0 }, buf[4096];

	/* RFC 3720 B.4 check values. */
	ck_assert_uint_eq(mig_crc32c(0, "123456789", 9), 0xe3069283);
	ck_assert_uint_eq(mig_crc32c(0, zeros, 32), 0x8a9136aa);
	/* Chaining equals one call; misaligned starts agree. */
	for (unsigned int i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	ck_assert_uint_eq(mig_crc32c(mig_crc32c(0, buf, 1000), buf + 1000, 3096),
			  mig_crc32c(0, buf, 4096));
	ck_assert_uint_eq(mig_crc32c(0, buf + 3, 101),
			  mig_crc32c(mig_crc32c(0, buf + 3, 1), buf + 4, 100));
}
END_TEST

/* Writes a header and three records to a file, rewinds it. */
static int write_sample(void)
{
	struct mig_stream s;
	int fd = tmpfile_fd();

	mig_stream_init(&s, fd);
	ck_assert(!s.is_socket);
	ck_assert_int_eq(mig_stream_write_header(&s, 1), 0);
	ck_assert_int_eq(mig_stream_put(&s, MIG_REC_PASS, "\x01\0\0\0", 4), 0);
	ck_assert_int_eq(mig_stream_put(&s, MIG_REC_VM, "hello", 5), 0);
	ck_assert_int_eq(mig_stream_put(&s, MIG_REC_END, NULL, 0), 0);
	ck_assert_uint_eq(s.bytes, 16 + (12 + 4) + (12 + 5) + 12);
	mig_stream_fini(&s);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

START_TEST(stream_round_trip)
{
	struct mig_stream s;
	uint32_t flags, type;
	char err[256];
	int fd = write_sample();

	mig_stream_init(&s, fd);
	ck_assert_int_eq(mig_stream_read_header(&s, &flags, err, sizeof(err)), 0);
	ck_assert_uint_eq(flags, 1);
	ck_assert_int_eq(mig_stream_next(&s, &type, err, sizeof(err)), 0);
	ck_assert_uint_eq(type, MIG_REC_PASS);
	ck_assert_uint_eq(s.rec.len, 4);
	ck_assert_int_eq(mig_stream_next(&s, &type, err, sizeof(err)), 0);
	ck_assert_uint_eq(type, MIG_REC_VM);
	ck_assert_mem_eq(s.rec.data, "hello", 5);
	ck_assert_int_eq(mig_stream_next(&s, &type, err, sizeof(err)), 0);
	ck_assert_uint_eq(type, MIG_REC_END);
	ck_assert_uint_eq(s.rec.len, 0);
	/* After the end: the stream ended (EPIPE) with a clear message. */
	ck_assert_int_eq(mig_stream_next(&s, &type, err, sizeof(err)), -EPIPE);
	ck_assert_ptr_nonnull(strstr(err, "ended"));
	mig_stream_fini(&s);
	close(fd);
}
END_TEST

/* Reads the whole sample after applying `mutate` to its bytes; returns the
 * first error (0 if everything read). */
static int read_mutated(void (*mutate)(uint8_t *p, size_t *len, size_t arg), size_t arg,
			char *err, size_t errlen)
{
	uint8_t data[256];
	size_t len;
	struct mig_stream s;
	uint32_t flags, type;
	int fd = write_sample(), out, ret;
	ssize_t n = read(fd, data, sizeof(data));

	ck_assert_int_gt(n, 0);
	close(fd);
	len = (size_t)n;
	mutate(data, &len, arg);
	out = tmpfile_fd();
	ck_assert_int_eq(write(out, data, len), (ssize_t)len);
	lseek(out, 0, SEEK_SET);
	mig_stream_init(&s, out);
	ret = mig_stream_read_header(&s, &flags, err, errlen);
	while (!ret) {
		ret = mig_stream_next(&s, &type, err, errlen);
		if (!ret && type == MIG_REC_END)
			break;
	}
	mig_stream_fini(&s);
	close(out);
	return ret;
}

static void flip(uint8_t *p, size_t *len, size_t at)
{
	(void)len;
	p[at] ^= 0x40;
}

static void truncate_at(uint8_t *p, size_t *len, size_t at)
{
	(void)p;
	*len = at;
}

static void huge_length(uint8_t *p, size_t *len, size_t arg)
{
	(void)len;
	(void)arg;
	/* The first record's length field: 1 GiB. */
	p[16 + 4] = 0;
	p[16 + 5] = 0;
	p[16 + 6] = 0;
	p[16 + 7] = 0x40;
}

START_TEST(stream_hostile)
{
	char err[256];
	size_t total = 16 + 16 + 17 + 12;

	ck_assert_int_eq(read_mutated(truncate_at, total, err, sizeof(err)), 0);
	/* Every flipped byte is caught: magic, version, or a checksum. */
	for (size_t i = 0; i < total; i++) {
		int ret = read_mutated(flip, i, err, sizeof(err));

		if (i >= 12 && i < 16)
			continue; /* header flags are not checksummed: any value reads */
		ck_assert_msg(ret != 0, "flipped byte %zu went unnoticed", i);
		ck_assert(err[0]);
	}
	/* Every truncation point is an error (EPIPE), never a success. */
	for (size_t i = 0; i < total; i++) {
		int ret = read_mutated(truncate_at, i, err, sizeof(err));

		ck_assert_msg(ret == -EPIPE, "truncated at %zu: %d", i, ret);
	}
	ck_assert_int_eq(read_mutated(huge_length, 0, err, sizeof(err)), -EBADMSG);
	ck_assert_ptr_nonnull(strstr(err, "claims"));
	ck_assert_int_eq(read_mutated(flip, 0, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "magic"));
	ck_assert_int_eq(read_mutated(flip, 9, err, sizeof(err)), -EPROTO);
}
END_TEST

/* RAM: pages written in `src` go through a real send (a file) and a load
 * into `dst`; both end equal. */
static void fill(struct guest_mem *m, uint64_t gpa, uint8_t v)
{
	uint8_t *p = mem_ptr(m, gpa, MEM_PAGE_SIZE);

	ck_assert_ptr_nonnull(p);
	memset(p, v, MEM_PAGE_SIZE);
}

static uint64_t send_ram(struct guest_mem *src, bool first, const uint64_t *pages, int n, int fd)
{
	struct mig_ram r;
	struct mig_stream s;

	ck_assert_int_eq(mig_ram_init(&r, src, -1), 0);
	mig_stream_init(&s, fd);
	r.first_pass = first;
	if (first) {
		memset(r.bitmap, 0xff, r.words * sizeof(uint64_t));
	} else {
		for (int i = 0; i < n; i++)
			r.bitmap[pages[i] / 64] |= 1ull << (pages[i] % 64);
	}
	ck_assert_int_eq(mig_ram_send(&r, &s, NULL), 0);
	ck_assert_uint_eq(r.data_pages + r.zero_pages, first ? RAM / MEM_PAGE_SIZE : (uint64_t)n);
	mig_stream_fini(&s);
	mig_ram_fini(&r);
	return 0;
}

static void load_all(struct guest_mem *dst, uint64_t *written, int fd)
{
	struct mig_stream s;
	uint32_t type;
	char err[256];
	uint64_t pages = 0;

	lseek(fd, 0, SEEK_SET);
	mig_stream_init(&s, fd);
	while (mig_stream_next(&s, &type, err, sizeof(err)) == 0) {
		ck_assert_uint_eq(type, MIG_REC_RAM);
		ck_assert_msg(mig_ram_load(dst, written, s.rec.data, s.rec.len, &pages, err,
					   sizeof(err)) == 0, "%s", err);
	}
	mig_stream_fini(&s);
}

START_TEST(ram_round_trip)
{
	struct guest_mem *src, *dst;
	uint64_t *written;
	int fd = tmpfile_fd(), fd2 = tmpfile_fd();
	uint64_t again[] = { 5, 6, 300 };

	ck_assert_int_eq(mem_create(RAM, &src), 0);
	ck_assert_int_eq(mem_create(RAM, &dst), 0);
	written = calloc(dst->dirty_words, sizeof(uint64_t));
	ck_assert_ptr_nonnull(written);
	for (uint64_t pg = 0; pg < 600; pg += 3)
		fill(src, pg * MEM_PAGE_SIZE, (uint8_t)(pg + 1));
	fill(src, 5 * MEM_PAGE_SIZE, 0x55);      /* written, then ... */
	fill(src, RAM - MEM_PAGE_SIZE, 0xee);    /* the last page */
	send_ram(src, true, NULL, 0, fd);
	load_all(dst, written, fd);
	ck_assert_mem_eq(dst->host, src->host, RAM);
	/* A later pass: page 5 became zero, page 6 data, page 300 changed. */
	memset(src->host + 5 * MEM_PAGE_SIZE, 0, MEM_PAGE_SIZE);
	fill(src, 6 * MEM_PAGE_SIZE, 0x66);
	fill(src, 300 * MEM_PAGE_SIZE, 0x30);
	send_ram(src, false, again, 3, fd2);
	load_all(dst, written, fd2);
	ck_assert_mem_eq(dst->host, src->host, RAM);
	ck_assert_uint_eq(mig_ram_hash(src), mig_ram_hash(dst));
	fill(dst, 7 * MEM_PAGE_SIZE, 1);
	ck_assert_uint_ne(mig_ram_hash(src), mig_ram_hash(dst));
	free(written);
	mem_destroy(src);
	mem_destroy(dst);
	close(fd);
	close(fd2);
}
END_TEST

/* Three senders (channels) split a pass by 16 MiB chunk: each page goes out
 * exactly once, and loading the channels one after the other rebuilds RAM. */
START_TEST(ram_channels)
{
	struct guest_mem *src, *dst;
	struct mig_ram r;
	struct mig_sender x[3];
	struct mig_stream s[3];
	uint64_t *written, total = 0;
	int fds[3];
	const uint64_t ram = 64 * MiB;

	ck_assert_int_eq(mem_create(ram, &src), 0);
	ck_assert_int_eq(mem_create(ram, &dst), 0);
	written = calloc(dst->dirty_words, sizeof(uint64_t));
	for (uint64_t gpa = 0; gpa < ram; gpa += 5 * MEM_PAGE_SIZE + 8192)
		fill(src, gpa & ~(MEM_PAGE_SIZE - 1), (uint8_t)(gpa >> 12));
	ck_assert_int_eq(mig_ram_init(&r, src, -1), 0);
	memset(r.bitmap, 0xff, r.words * sizeof(uint64_t));
	r.first_pass = true;
	for (int i = 0; i < 3; i++) {
		fds[i] = tmpfile_fd();
		mig_stream_init(&s[i], fds[i]);
		ck_assert_int_eq(mig_sender_init(&x[i], &r, &s[i], (unsigned int)i, 3), 0);
	}
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(mig_ram_send_part(&x[i], NULL), 0);
		/* 64 MiB = 4 chunks of 16 MiB: channel 0 gets two. */
		ck_assert_uint_eq(x[i].data_pages + x[i].zero_pages, (i == 0 ? 2 : 1) * 4096);
		total += x[i].data_pages + x[i].zero_pages;
	}
	ck_assert_uint_eq(total, ram / MEM_PAGE_SIZE);
	mig_ram_pass_done(&r, x, 3);
	ck_assert_uint_eq(r.data_pages + r.zero_pages, ram / MEM_PAGE_SIZE);
	for (int i = 2; i >= 0; i--)
		load_all(dst, written, fds[i]);
	ck_assert_mem_eq(dst->host, src->host, ram);
	for (int i = 0; i < 3; i++) {
		mig_sender_fini(&x[i]);
		mig_stream_fini(&s[i]);
		close(fds[i]);
	}
	mig_ram_fini(&r);
	free(written);
	mem_destroy(src);
	mem_destroy(dst);
}
END_TEST

/* One batch: count entries then data. */
static size_t batch(uint8_t *out, const uint64_t *gpa, const uint32_t *n, const uint32_t *kind,
		    int count, size_t data_pages)
{
	struct mig_buf b;
	size_t len;

	mig_buf_init(&b);
	mig_put_u32(&b, (uint32_t)count);
	mig_put_u32(&b, 0);
	for (int i = 0; i < count; i++) {
		mig_put_u64(&b, gpa[i]);
		mig_put_u32(&b, n[i]);
		mig_put_u32(&b, kind[i]);
	}
	for (size_t i = 0; i < data_pages * MEM_PAGE_SIZE; i++)
		mig_put_u8(&b, 0xab);
	len = b.len;
	memcpy(out, b.data, len);
	mig_buf_free(&b);
	return len;
}

START_TEST(ram_hostile)
{
	static uint8_t buf[3 * 4096 + 256];
	struct guest_mem *m;
	uint64_t *written, pages = 0;
	char err[256];
	size_t len;
	struct {
		uint64_t gpa;
		uint32_t n, kind;
		size_t data;
	} bad[] = {
		{ RAM, 1, 2, 1 },                     /* past the end of RAM */
		{ RAM - MEM_PAGE_SIZE, 2, 2, 2 },     /* straddles the end */
		{ 0x1001, 1, 2, 1 },                  /* not page aligned */
		{ 0, 0, 2, 0 },                       /* empty entry */
		{ 0, 1, 3, 1 },                       /* unknown kind */
		{ 0, 1, 2, 0 },                       /* data missing */
		{ 0, 1, 2, 2 },                       /* data left over */
		{ 0, 1, 1, 1 },                       /* zero page with data */
		{ UINT64_MAX & ~0xfffull, 2, 1, 0 },  /* wraps around */
		{ 0, UINT32_MAX, 1, 0 },              /* huge run */
	};

	ck_assert_int_eq(mem_create(RAM, &m), 0);
	written = calloc(m->dirty_words, sizeof(uint64_t));
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		len = batch(buf, &bad[i].gpa, &bad[i].n, &bad[i].kind, 1, bad[i].data);
		ck_assert_msg(mig_ram_load(m, written, buf, len, &pages, err, sizeof(err)) ==
			      -EBADMSG, "case %u accepted", i);
		ck_assert(err[0]);
	}
	/* Nothing was written by the refused batches. */
	for (uint64_t w = 0; w < m->dirty_words; w++)
		ck_assert_uint_eq(written[w], 0);
	/* A count larger than the payload, and a short header. */
	len = batch(buf, &bad[0].gpa, &bad[0].n, &bad[0].kind, 1, 0);
	buf[0] = 200;
	ck_assert_int_eq(mig_ram_load(m, written, buf, len, &pages, err, sizeof(err)), -EBADMSG);
	ck_assert_int_eq(mig_ram_load(m, written, buf, 4, &pages, err, sizeof(err)), -EBADMSG);
	/* Random corruption of a good batch: refused or applied, never a crash,
	 * never a write outside RAM (ASan build). */
	{
		uint64_t g[2] = { 0x2000, 0x10000 };
		uint32_t n[2] = { 2, 3 }, k[2] = { 2, 1 };
		size_t good = batch(buf, g, n, k, 2, 2);

		srand(7);
		for (int it = 0; it < 20000; it++) {
			static uint8_t copy[sizeof(buf)];

			memcpy(copy, buf, good);
			for (int f = 0; f < 3; f++)
				copy[(size_t)rand() % 40] ^= (uint8_t)(1u << (rand() % 8));
			int r = mig_ram_load(m, written, copy, good - (size_t)(rand() % 2) * 7,
					     &pages, err, sizeof(err));

			ck_assert(r == 0 || r == -EBADMSG);
		}
	}
	free(written);
	mem_destroy(m);
}
END_TEST

START_TEST(uri_parse)
{
	struct mig_uri u;
	char err[256];

	ck_assert_int_eq(mig_uri_parse("tcp:127.0.0.1:4444", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.kind, MIG_URI_TCP);
	ck_assert_str_eq(u.host, "127.0.0.1");
	ck_assert_str_eq(u.port, "4444");
	ck_assert_int_eq(mig_uri_parse("tcp:[::1]:80", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "::1");
	ck_assert_int_eq(mig_uri_parse("tcp::5000", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.host, "");
	ck_assert_int_eq(mig_uri_parse("unix:/tmp/x.sock", &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.kind, MIG_URI_UNIX);
	ck_assert_int_eq(mig_uri_parse("file:/tmp/snap", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.path, "/tmp/snap");
	const char *bad[] = { "", "tcp:", "tcp:host", "tcp:host:", "tcp:host:0", "tcp:host:65536",
			      "tcp:host:12a", "tcp:[::1:80", "file:", "unix:", "http://x", "exec:ls" };
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		ck_assert_msg(mig_uri_parse(bad[i], &u, err, sizeof(err)) < 0, "%s accepted", bad[i]);
		ck_assert(err[0]);
	}
}
END_TEST

static enum config_result parse(struct config *cfg, char *err, int argc, char **argv)
{
	return config_parse_run(argc, argv, cfg, err, 256);
}

START_TEST(config_incoming)
{
	struct config cfg;
	char err[256];
	char *a1[] = { "run", "--incoming", "tcp:0.0.0.0:4000" };
	char *a2[] = { "run", "--restore", "file:/tmp/s" };
	char *a3[] = { "run", "--restore", "tcp:h:1" };
	char *a4[] = { "run", "--incoming", "file:/tmp/s" };
	char *a5[] = { "run", "--incoming", "unix:/a", "--restore", "file:/b" };
	char *a6[] = { "run", "--incoming", "ftp:x" };

	ck_assert_int_eq(parse(&cfg, err, 3, a1), CONFIG_OK);
	ck_assert_str_eq(cfg.incoming, "tcp:0.0.0.0:4000");
	ck_assert_int_eq(parse(&cfg, err, 3, a2), CONFIG_OK);
	ck_assert_str_eq(cfg.incoming, "file:/tmp/s");
	ck_assert_int_eq(parse(&cfg, err, 3, a3), CONFIG_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "--restore"));
	ck_assert_int_eq(parse(&cfg, err, 3, a4), CONFIG_ERROR);
	ck_assert_ptr_nonnull(strstr(err, "--restore"));
	ck_assert_int_eq(parse(&cfg, err, 5, a5), CONFIG_ERROR);
	ck_assert_int_eq(parse(&cfg, err, 3, a6), CONFIG_ERROR);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("migration-stream");
	TCase *tc = tcase_create("stream");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, buf_round_trip);
	tcase_add_test(tc, crc32c_vectors);
	tcase_add_test(tc, stream_round_trip);
	tcase_add_test(tc, stream_hostile);
	tcase_add_test(tc, ram_round_trip);
	tcase_add_test(tc, ram_channels);
	tcase_add_test(tc, ram_hostile);
	tcase_add_test(tc, uri_parse);
	tcase_add_test(tc, config_incoming);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/*
 * store_test.c: the segment store: round trips across segments, reopen,
 * truncate, removal after a snapshot, metadata, recovery of torn tails at
 * every byte, detection of single-bit flips, ENOSPC and short writes from
 * a fault hook, and the power-loss hook.  Each test works in its own
 * directory under /tmp, removed in teardown.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "crc32c.h"
#include "mom.h"
#include "storage/store.h"
#include "tmpdir.h"

static char dir[64];


static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/store_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	rm_dir(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* Entry i of term t: a payload of i*7 % 41 bytes that depends on both. */
static size_t
payload(uint64_t i, uint64_t t, uint8_t *b)
{
	size_t n = (size_t)(i * 7 % 41), k;

	for (k = 0; k < n; k++)
		b[k] = (uint8_t)(i * 31 + t * 5 + k);
	return n;
}

static struct store *
open_ok(uint64_t segsize)
{
	struct store_config cfg = { .segment_size = segsize };
	struct store       *s;
	char                err[512];
	int                 rc;

	rc = store_open(dir, &cfg, &s, err, sizeof(err));
	cr_assert_eq(rc, 0, "store_open: %d %s", rc, err);
	return s;
}

/* Appends from..to with term t in batches of up to batch entries. */
static void
append_range(struct store *s, uint64_t from, uint64_t to, uint64_t t, size_t batch)
{
	struct store_entry e[8];
	uint8_t            buf[8][64];
	size_t             n;
	uint64_t           i = from;
	int                rc;

	cr_assert_leq(batch, 8);
	while (i <= to) {
		for (n = 0; n < batch && i <= to; n++, i++) {
			e[n].index = i;
			e[n].term = t;
			e[n].type = (uint8_t)(i % 3);
			e[n].buf = buf[n];
			e[n].len = payload(i, t, buf[n]);
		}
		rc = store_append(s, e, n);
		cr_assert_eq(rc, 0, "append at %lu: %s", (unsigned long)(i - n), store_errmsg(s));
	}
}

struct want {
	uint64_t next;
	uint64_t term_from; /* entries >= this have term2, others term1 */
	uint64_t term1, term2;
};

static int
check_cb(void *arg, const struct store_entry *e)
{
	struct want *w = arg;
	uint8_t      b[64];
	uint64_t     t = e->index >= w->term_from ? w->term2 : w->term1;
	size_t       n = payload(e->index, t, b);

	cr_assert_eq(e->index, w->next);
	cr_assert_eq(e->term, t, "entry %lu term %lu", (unsigned long)e->index,
	    (unsigned long)e->term);
	cr_assert_eq(e->type, e->index % 3);
	cr_assert_eq(e->len, n);
	cr_assert(n == 0 || memcmp(e->buf, b, n) == 0);
	w->next++;
	return 0;
}

/* The store holds exactly first..last, entries >= term_from in term t2. */
static void
check_all(struct store *s, uint64_t first, uint64_t last, uint64_t term_from, uint64_t t1,
    uint64_t t2)
{
	struct want w = { first, term_from, t1, t2 };

	cr_assert_eq(store_first(s), first);
	cr_assert_eq(store_last(s), last);
	if (last == 0)
		return;
	cr_assert_eq(store_read(s, first, last, check_cb, &w), 0, "%s", store_errmsg(s));
	cr_assert_eq(w.next, last + 1);
}

static void
check_terms(struct store *s, uint64_t first, uint64_t last)
{
	check_all(s, first, last, UINT64_MAX, 1, 1);
}

static int
stop_cb(void *arg, const struct store_entry *e)
{
	(void)e;
	return ++*(int *)arg == 3 ? 42 : 0;
}

/* The CPU's instruction (where there is one) and the tables agree, at every length and alignment. */
Test(store, crc32c_hardware_and_tables_agree)
{
	static uint8_t buf[1100];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 3));
	cr_assert_eq(mom_crc32c_tables(0, "123456789", 9), 0xE3069283u);
	for (int k = 0; k < 64; k++) {
		const uint8_t *p = buf + k % 13;
		size_t         n = 1 + (size_t)k * 17;

		cr_assert_eq(mom_crc32c((uint32_t)k, p, n), mom_crc32c_tables((uint32_t)k, p, n),
		    "length %zu", n);
	}
}

Test(store, crc32c_known_answer)
{
	cr_assert_eq(mom_crc32c(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(mom_crc32c(mom_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

Test(store, round_trip_across_segments_and_reopen)
{
	struct want   w = { 40, UINT64_MAX, 1, 1 };
	struct store *s = open_ok(256);
	size_t        nseg;
	int           n = 0;

	cr_assert_eq(store_last(s), 0);
	append_range(s, 1, 100, 1, 3);
	nseg = store_nsegments(s);
	cr_assert_gt(nseg, 5);
	check_terms(s, 1, 100);
	cr_assert_eq(store_sync(s), 0);
	/* A partial range, and a callback that stops the walk. */
	cr_assert_eq(store_read(s, 40, 60, check_cb, &w), 0);
	cr_assert_eq(w.next, 61);
	cr_assert_eq(store_read(s, 1, 100, stop_cb, &n), 42);
	cr_assert_eq(store_read(s, 0, 5, check_cb, &w), MOM_EINVAL);
	cr_assert_eq(store_read(s, 90, 101, check_cb, &w), MOM_EINVAL);
	store_close(s);

	s = open_ok(256);
	cr_assert_eq(store_nsegments(s), nseg);
	check_terms(s, 1, 100);
	/* Appends continue after a reopen; a gap or a repeat is refused. */
	append_range(s, 101, 120, 1, 1);
	check_terms(s, 1, 120);
	{
		struct store_entry e = { .index = 122, .term = 1 };
		cr_assert_eq(store_append(s, &e, 1), MOM_EINVAL);
		e.index = 120;
		cr_assert_eq(store_append(s, &e, 1), MOM_EINVAL);
	}
	store_close(s);
	s = open_ok(256);
	check_terms(s, 1, 120);
	store_close(s);
}

Test(store, a_batch_is_one_segment_and_the_log_may_start_anywhere)
{
	struct store *s = open_ok(128);

	append_range(s, 1000, 1007, 1, 8);
	cr_assert_eq(store_nsegments(s), 1); /* a batch never spans segments */
	append_range(s, 1008, 1008, 1, 1);
	cr_assert_eq(store_nsegments(s), 2);
	check_terms(s, 1000, 1008);
	store_close(s);
	s = open_ok(128);
	check_terms(s, 1000, 1008);
	store_close(s);
}

Test(store, truncate_then_append)
{
	struct store *s = open_ok(256);
	uint64_t      seg2;

	append_range(s, 1, 50, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	/* In the middle of a segment. */
	cr_assert_eq(store_truncate(s, 30), 0, "%s", store_errmsg(s));
	cr_assert_eq(store_last(s), 29);
	cr_assert_eq(store_truncate(s, 60), 0); /* past the end: nothing */
	append_range(s, 30, 45, 2, 3);
	check_all(s, 1, 45, 30, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	s = open_ok(256);
	check_all(s, 1, 45, 30, 1, 2);

	/* At the first index of a later segment: that file goes. */
	store_close(s);
	{
		struct dirent *de;
		DIR           *d = opendir(dir);
		uint64_t       v;

		seg2 = UINT64_MAX;
		while ((de = readdir(d)) != NULL)
			if (sscanf(de->d_name, "seg-%16lx.log", &v) == 1 && v > 1 && v < seg2)
				seg2 = v;
		closedir(d);
	}
	s = open_ok(256);
	cr_assert_neq(seg2, UINT64_MAX);
	cr_assert_eq(store_truncate(s, seg2), 0);
	cr_assert_eq(store_last(s), seg2 - 1);
	cr_assert_eq(store_nsegments(s), 1);
	append_range(s, seg2, 45, 3, 1);
	check_all(s, 1, 45, seg2, 1, 3);
	store_close(s);
	s = open_ok(256);
	check_all(s, 1, 45, seg2, 1, 3);

	/* Everything. */
	cr_assert_eq(store_truncate(s, 1), 0);
	cr_assert_eq(store_last(s), 0);
	cr_assert_eq(store_nsegments(s), 0);
	append_range(s, 1, 5, 4, 1);
	check_all(s, 1, 5, 1, 4, 4);
	store_close(s);
	s = open_ok(256);
	check_all(s, 1, 5, 1, 4, 4);
	store_close(s);
}

Test(store, remove_before_after_a_snapshot)
{
	struct store *s = open_ok(256);
	size_t        nseg;
	uint64_t      first;

	append_range(s, 1, 100, 1, 1);
	nseg = store_nsegments(s);
	cr_assert_eq(store_remove_before(s, 1), 0);
	cr_assert_eq(store_nsegments(s), nseg);
	cr_assert_eq(store_remove_before(s, 50), 0, "%s", store_errmsg(s));
	first = store_first(s);
	cr_assert_gt(first, 1);
	cr_assert_leq(first, 50);
	cr_assert_lt(store_nsegments(s), nseg);
	check_terms(s, first, 100);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	s = open_ok(256);
	check_terms(s, first, 100);
	/* A snapshot past the end keeps the last segment. */
	cr_assert_eq(store_remove_before(s, 1000), 0);
	cr_assert_eq(store_nsegments(s), 1);
	cr_assert_eq(store_last(s), 100);
	first = store_first(s);
	append_range(s, 101, 110, 1, 2);
	check_terms(s, first, 110);
	store_close(s);
	s = open_ok(256);
	check_terms(s, first, 110);
	store_close(s);
}

/* Fault hooks: a write budget (short writes, then ENOSPC), failing syncs. */
struct fault {
	size_t budget;  /* bytes writes may still put down */
	size_t chunk;   /* at most this much per call (short writes); 0: no limit */
	int    sync_err;
	int    syncs;
};

static ssize_t
fault_pwrite(void *arg, int fd, const void *b, size_t n, off_t off)
{
	struct fault *f = arg;

	if (f->budget == 0) {
		errno = ENOSPC;
		return -1;
	}
	if (n > f->budget)
		n = f->budget;
	if (f->chunk && n > f->chunk)
		n = f->chunk;
	f->budget -= n;
	return pwrite(fd, b, n, off);
}

static int
fault_sync(void *arg, int fd)
{
	struct fault *f = arg;

	f->syncs++;
	if (f->sync_err) {
		errno = f->sync_err;
		return -1;
	}
	return fdatasync(fd);
}

static off_t
seg_size(uint64_t first)
{
	struct stat st;
	char        p[128];

	snprintf(p, sizeof(p), "%s/seg-%016lx.log", dir, (unsigned long)first);
	if (stat(p, &st) < 0)
		return -1;
	return st.st_size;
}

Test(store, enospc_in_the_middle_of_an_append_is_cut_back)
{
	struct fault       f = { 0 };
	struct store_fault h = { fault_pwrite, fault_sync, &f };
	struct store      *s = open_ok(1 << 20);
	off_t              before;

	append_range(s, 1, 10, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	before = seg_size(1);
	store_set_fault(s, &h);

	/* 30 bytes of a 5-entry batch reach the file, then the disk is full. */
	{
		struct store_entry e[5];
		uint8_t            b[5][64];
		int                i;

		for (i = 0; i < 5; i++) {
			e[i].index = 11 + (uint64_t)i;
			e[i].term = 1;
			e[i].type = (uint8_t)((11 + i) % 3);
			e[i].buf = b[i];
			e[i].len = payload(11 + (uint64_t)i, 1, b[i]);
		}
		f.budget = 30;
		f.chunk = 7;
		cr_assert_eq(store_append(s, e, 5), MOM_EFULL);
		cr_assert_not_null(strstr(store_errmsg(s), "No space"), "%s", store_errmsg(s));
		cr_assert_eq(seg_size(1), before, "the partial batch was cut back");
		cr_assert_eq(store_last(s), 10);
		f.budget = 0;
		cr_assert_eq(store_append(s, e, 1), MOM_EFULL);
		cr_assert_eq(seg_size(1), before);
	}
	check_terms(s, 1, 10);
	store_close(s);
	s = open_ok(1 << 20);
	check_terms(s, 1, 10);
	cr_assert_eq(seg_size(1), before);
	store_set_fault(s, &h);

	/* Space is back: short writes alone are retried, appends go on. */
	f.budget = SIZE_MAX;
	f.chunk = 3;
	append_range(s, 11, 20, 1, 4);
	cr_assert_eq(store_sync(s), 0);
	check_terms(s, 1, 20);
	store_close(s);
	s = open_ok(1 << 20);
	check_terms(s, 1, 20);
	store_close(s);
}

Test(store, enospc_when_rolling_leaves_an_empty_segment_that_reopens)
{
	struct fault       f = { .budget = SIZE_MAX };
	struct store_fault h = { fault_pwrite, fault_sync, &f };
	struct store      *s = open_ok(200);
	struct store_entry e = { .term = 1 };
	uint8_t            b[64];
	size_t             nseg;

	append_range(s, 1, 5, 1, 1);
	nseg = store_nsegments(s);
	store_set_fault(s, &h);
	/* Find the append that rolls, and make it fail. */
	for (e.index = 6;; e.index++) {
		e.type = (uint8_t)(e.index % 3);
		e.buf = b;
		e.len = payload(e.index, 1, b);
		f.budget = 0;
		if (store_append(s, &e, 1) == 0)
			cr_assert_fail("appended with no space");
		if (store_nsegments(s) > nseg)
			break;
		f.budget = SIZE_MAX;
		cr_assert_eq(store_append(s, &e, 1), 0);
	}
	cr_assert_eq(seg_size(e.index), 0);
	store_close(s);
	s = open_ok(200);
	check_terms(s, 1, e.index - 1);
	append_range(s, e.index, e.index + 20, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	s = open_ok(200);
	check_terms(s, 1, e.index + 20);
	store_close(s);
}

Test(store, failed_fsync_breaks_the_store_until_reopened)
{
	struct fault       f = { .budget = SIZE_MAX, .sync_err = ENOSPC };
	struct store_fault h = { fault_pwrite, fault_sync, &f };
	struct store      *s = open_ok(1 << 20);

	append_range(s, 1, 10, 1, 1);
	store_set_fault(s, &h);
	cr_assert_eq(store_sync(s), MOM_EFULL);
	cr_assert_eq(f.syncs, 1);
	{
		struct store_entry e = { .index = 11, .term = 1 };
		cr_assert_eq(store_append(s, &e, 1), MOM_EFULL);
		cr_assert_eq(store_sync(s), MOM_EFULL);
		cr_assert_eq(f.syncs, 1, "no retry of a failed fsync");
	}
	store_close(s);
	s = open_ok(1 << 20);
	/* What reached the disk is whole records (here: all of them). */
	check_terms(s, 1, 10);
	append_range(s, 11, 15, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	check_terms(s, 1, 15);
	store_close(s);
}

Test(store, one_sync_covers_every_append_since_the_last)
{
	struct fault       f = { .budget = SIZE_MAX };
	struct store_fault h = { fault_pwrite, fault_sync, &f };
	struct store      *s = open_ok(1 << 20);

	store_set_fault(s, &h);
	append_range(s, 1, 100, 1, 5);
	cr_assert_eq(f.syncs, 0, "append does not sync");
	cr_assert_eq(store_sync(s), 0);
	/* The new segment's data, then the directory that names it. */
	cr_assert_eq(f.syncs, 2);
	cr_assert_eq(store_sync(s), 0);
	cr_assert_eq(f.syncs, 2, "nothing new: no fsync");
	append_range(s, 101, 150, 1, 5);
	cr_assert_eq(store_sync(s), 0);
	cr_assert_eq(f.syncs, 3);
	store_close(s);
}

static int
count_fds(void)
{
	struct dirent *de;
	DIR           *d = opendir("/proc/self/fd");
	int            n = 0;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* A nosync store (rio's never mode) keeps one segment fd, not one per
 * unsynced segment; a store_sync still covers every segment. */
Test(store, nosync_keeps_one_segment_open_and_can_still_sync)
{
	struct store_config cfg = { .segment_size = 300, .nosync = true };
	struct fault        f = { .budget = SIZE_MAX };
	struct store_fault  h = { fault_pwrite, fault_sync, &f };
	struct store       *s;
	size_t              nseg;
	int                 fds;

	fds = count_fds();
	cr_assert_eq(store_open(dir, &cfg, &s, NULL, 0), 0);
	store_set_fault(s, &h);
	append_range(s, 1, 200, 1, 2);
	nseg = store_nsegments(s);
	cr_assert_gt(nseg, 10);
	cr_assert_eq(count_fds(), fds + 2, "the directory and the last segment only");
	cr_assert_eq(f.syncs, 0);
	cr_assert_eq(store_sync(s), 0, "%s", store_errmsg(s));
	cr_assert_eq(f.syncs, (int)nseg + 1, "each segment, then the directory");
	cr_assert_eq(count_fds(), fds + 2);
	store_crash(s);
	cr_assert_eq(store_open(dir, &cfg, &s, NULL, 0), 0);
	check_terms(s, 1, 200);
	store_close(s);
}

Test(store, power_loss_keeps_synced_entries_and_drops_the_rest)
{
	struct store *s = open_ok(300);
	size_t        nseg;

	append_range(s, 1, 30, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	nseg = store_nsegments(s);
	append_range(s, 31, 60, 1, 2); /* rolls: some of this is in new files */
	cr_assert_gt(store_nsegments(s), nseg);
	store_crash(s);
	s = open_ok(300);
	check_terms(s, 1, 30);
	cr_assert_eq(store_nsegments(s), nseg);

	/* Without the power loss (a kill -9), the page cache keeps them. */
	append_range(s, 31, 60, 1, 2);
	store_close(s);
	s = open_ok(300);
	check_terms(s, 1, 60);
	store_close(s);
}

/* A truncation fsyncs the segment it cuts: what is left of it is durable,
 * unsynced appends before the cut included. */
Test(store, a_truncation_makes_the_rest_of_its_segment_durable)
{
	struct store *s = open_ok(1 << 20);

	append_range(s, 1, 10, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	append_range(s, 11, 20, 1, 2);
	cr_assert_eq(store_truncate(s, 15), 0);
	store_crash(s);
	s = open_ok(1 << 20);
	check_terms(s, 1, 14);
	store_close(s);
}

Test(store, metadata_round_trip_and_atomic_replace)
{
	struct fault       f = { .budget = SIZE_MAX };
	struct store_fault h = { fault_pwrite, fault_sync, &f };
	struct store_meta  m = { 7, 7 }, m2 = { 3, 2 };
	struct store      *s = open_ok(0);
	char               p[128];
	FILE              *fp;

	cr_assert_eq(store_meta_load(s, &m), 0);
	cr_assert_eq(m.term, 0);
	cr_assert_eq(m.vote, 0);
	cr_assert_eq(store_meta_save(s, &m2), 0);
	cr_assert_eq(store_meta_load(s, &m), 0);
	cr_assert_eq(m.term, 3);
	cr_assert_eq(m.vote, 2);
	m2.term = 4;
	m2.vote = 0;
	cr_assert_eq(store_meta_save(s, &m2), 0);
	store_close(s);

	/* A crash in the middle of the next save leaves a half meta.tmp behind. */
	snprintf(p, sizeof(p), "%s/meta.tmp", dir);
	fp = fopen(p, "w");
	cr_assert_not_null(fp);
	fputs("MOMME", fp);
	fclose(fp);
	s = open_ok(0);
	cr_assert_eq(store_meta_load(s, &m), 0);
	cr_assert_eq(m.term, 4);
	cr_assert_eq(m.vote, 0);

	/* A save that fails (no space, or its fsync) keeps the old one. */
	store_set_fault(s, &h);
	m2.term = 5;
	f.budget = 10;
	cr_assert_eq(store_meta_save(s, &m2), MOM_EFULL);
	f.budget = SIZE_MAX;
	f.sync_err = EIO;
	cr_assert_eq(store_meta_save(s, &m2), MOM_EINTERNAL);
	cr_assert_eq(store_meta_load(s, &m), 0);
	cr_assert_eq(m.term, 4);
	f.sync_err = 0;
	cr_assert_eq(store_meta_save(s, &m2), 0);
	store_close(s);
	s = open_ok(0);
	cr_assert_eq(store_meta_load(s, &m), 0);
	cr_assert_eq(m.term, 5);

	/* A damaged meta is an error, not zeros. */
	snprintf(p, sizeof(p), "%s/meta", dir);
	fp = fopen(p, "r+");
	fseek(fp, 9, SEEK_SET);
	fputc('X', fp);
	fclose(fp);
	cr_assert_eq(store_meta_load(s, &m), MOM_EBADDATA);
	store_close(s);
}

/* Whole files, to damage copies of them. */
struct img {
	uint64_t first;
	uint8_t *b;
	size_t   n;
};

static size_t
read_imgs(struct img *im, size_t max)
{
	struct dirent *de;
	DIR           *d = opendir(dir);
	size_t         n = 0, i, j;
	struct img     t;
	char           p[512];
	struct stat    st;
	FILE          *fp;

	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "seg-", 4) != 0)
			continue;
		cr_assert_lt(n, max);
		im[n].first = strtoull(de->d_name + 4, NULL, 16);
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		cr_assert_eq(stat(p, &st), 0);
		im[n].n = (size_t)st.st_size;
		im[n].b = malloc(im[n].n);
		fp = fopen(p, "rb");
		cr_assert_eq(fread(im[n].b, 1, im[n].n, fp), im[n].n);
		fclose(fp);
		n++;
	}
	closedir(d);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (im[j].first < im[i].first) {
				t = im[i];
				im[i] = im[j];
				im[j] = t;
			}
	return n;
}

static void
write_img(const struct img *im, size_t len)
{
	char  p[512];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/seg-%016lx.log", dir, (unsigned long)im->first);
	fp = fopen(p, "wb");
	cr_assert_not_null(fp);
	cr_assert_eq(fwrite(im->b, 1, len, fp), len);
	fclose(fp);
}

static size_t
rec_size(uint64_t i)
{
	uint8_t b[64];

	return STORE_REC_HDR + STORE_BODY_MIN + payload(i, 1, b);
}

Test(store, torn_tail_at_every_byte_of_the_last_three_records)
{
	struct store *s = open_ok(400);
	struct img    im[16];
	size_t        n, k, cut, start, prefix, cuts = 0;
	uint64_t      last, i, whole;

	append_range(s, 1, 30, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	n = read_imgs(im, 16);
	cr_assert_gt(n, 1);
	/* Make sure the last three records are all in the last segment. */
	last = 30;
	cr_assert_leq(im[n - 1].first, last - 2);
	start = im[n - 1].n - rec_size(28) - rec_size(29) - rec_size(30);

	for (cut = start; cut < im[n - 1].n; cut++) {
		/* The complete prefix: records that end at or before the cut. */
		whole = im[n - 1].first - 1;
		prefix = 0;
		for (i = im[n - 1].first; prefix + rec_size(i) <= cut; i++) {
			prefix += rec_size(i);
			whole = i;
		}
		write_img(&im[n - 1], cut);
		s = open_ok(400);
		check_terms(s, 1, whole);
		cr_assert_eq(seg_size(im[n - 1].first), (off_t)prefix, "cut at %zu", cut);
		/* And appends go on right after it. */
		append_range(s, whole + 1, 30, 1, 1);
		check_terms(s, 1, 30);
		store_close(s);
		cuts++;
	}
	cr_assert_eq(cuts, rec_size(28) + rec_size(29) + rec_size(30));
	for (k = 0; k < n; k++)
		free(im[k].b);
}

/* A small deterministic generator (xorshift64*). */
static uint64_t
rnd(uint64_t *x)
{
	*x ^= *x >> 12;
	*x ^= *x << 25;
	*x ^= *x >> 27;
	return *x * 2685821657736338717ull;
}

/*
 * 1,000 single-bit flips anywhere in the segment files, after a crash (no
 * clean-stop record).  What is asserted: either open fails with
 * MOM_EBADDATA and a message naming the damaged file, or the flip lies in
 * the length field of the final record of the last segment (a length that
 * now runs past the end of the file, which is what a torn write looks
 * like) and the store opens with exactly the records before it.  Why that
 * is sound: CRC-32C catches every single-bit error in the bytes it covers
 * (length and body) and a flip in the CRC field cannot match either, so a
 * flipped record never passes.  A flipped record with an intact record
 * after it is damage in the middle; a whole last record with no
 * zero-filled tail had every byte written, so a crash cannot explain it
 * either (store_scan).  No flip may be silently accepted.
 */
Test(store, every_single_bit_flip_is_detected)
{
	struct store *s = open_ok(300);
	struct img    im[16];
	size_t        n, k, total = 0, at, lastrec, failed = 0, cut = 0;
	uint64_t      x = 0x9e3779b97f4a7c15ull, r;
	char          err[512], name[64];
	int           iter, rc;

	append_range(s, 1, 40, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	n = read_imgs(im, 16);
	cr_assert_geq(n, 3);
	for (k = 0; k < n; k++)
		total += im[k].n;
	lastrec = im[n - 1].n - rec_size(40);

	for (iter = 0; iter < 1000; iter++) {
		struct store_config cfg = { .segment_size = 300 };

		r = rnd(&x) % (total * 8);
		for (k = 0; r >= im[k].n * 8; k++)
			r -= im[k].n * 8;
		at = (size_t)(r / 8);
		im[k].b[at] ^= (uint8_t)(1u << (r % 8));
		for (size_t j = 0; j < n; j++)
			write_img(&im[j], im[j].n);
		im[k].b[at] ^= (uint8_t)(1u << (r % 8));

		rc = store_open(dir, &cfg, &s, err, sizeof(err));
		if (rc != 0) {
			cr_assert_eq(rc, MOM_EBADDATA, "flip %zu/%zu: %s", k, at, err);
			snprintf(name, sizeof(name), "seg-%016lx.log", (unsigned long)im[k].first);
			cr_assert_not_null(strstr(err, name), "%s does not name %s", err, name);
			cr_assert_not_null(strstr(err, "byte "), "%s", err);
			failed++;
			continue;
		}
		/* Only a length that now runs past the end can be a torn write. */
		cr_assert(k == n - 1 && at >= lastrec && at < lastrec + 4,
		    "flip in file %zu byte %zu (bit %lu) went undetected", k, at,
		    (unsigned long)(r % 8));
		check_terms(s, 1, 39);
		store_close(s);
		cut++;
	}
	cr_assert_eq(failed + cut, 1000);
	cr_assert_gt(failed, 900);
	for (k = 0; k < n; k++)
		free(im[k].b);
}

Test(store, corruption_names_the_file_and_offset)
{
	struct store *s = open_ok(300);
	struct img    im[16];
	size_t        n, k, off;
	char          err[512], want[128];
	struct store_config cfg = { .segment_size = 300 };

	append_range(s, 1, 40, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	n = read_imgs(im, 16);

	/* A bad CRC in the second record of the last segment, valid data after. */
	off = rec_size(im[n - 1].first);
	im[n - 1].b[off + 4] ^= 0x10;
	write_img(&im[n - 1], im[n - 1].n);
	cr_assert_eq(store_open(dir, &cfg, &s, err, sizeof(err)), MOM_EBADDATA);
	snprintf(want, sizeof(want), "seg-%016lx.log: byte %zu:", (unsigned long)im[n - 1].first,
	    off);
	cr_assert_not_null(strstr(err, want), "%s", err);
	im[n - 1].b[off + 4] ^= 0x10;
	write_img(&im[n - 1], im[n - 1].n);

	/* A torn end of a segment that is not the last: corruption too. */
	write_img(&im[0], im[0].n - 1);
	cr_assert_eq(store_open(dir, &cfg, &s, err, sizeof(err)), MOM_EBADDATA);
	cr_assert_not_null(strstr(err, "seg-0000000000000001.log"), "%s", err);
	write_img(&im[0], im[0].n);

	/* A missing segment in the middle is a gap. */
	snprintf(want, sizeof(want), "%s/seg-%016lx.log", dir, (unsigned long)im[1].first);
	cr_assert_eq(unlink(want), 0);
	cr_assert_eq(store_open(dir, &cfg, &s, err, sizeof(err)), MOM_EBADDATA);
	cr_assert_not_null(strstr(err, "gap"), "%s", err);
	write_img(&im[1], im[1].n);

	s = open_ok(300);
	check_terms(s, 1, 40);
	store_close(s);
	for (k = 0; k < n; k++)
		free(im[k].b);
}

/*
 * Power loss after a roll: the new segment's name reached the disk but
 * none of its data, and the segment before it lost its unsynced tail.  The
 * empty file goes and the tail before it is torn, not corrupt.
 */
Test(store, empty_segments_at_the_end_make_the_one_before_them_last)
{
	struct store *s = open_ok(300);
	struct img    im[16];
	size_t        n, k;
	uint64_t      whole;

	append_range(s, 1, 40, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	n = read_imgs(im, 16);
	cr_assert_geq(n, 3);
	/* Cut the second to last segment inside its last record, empty the last. */
	write_img(&im[n - 2], im[n - 2].n - 3);
	write_img(&im[n - 1], 0);
	whole = im[n - 1].first - 2;
	s = open_ok(300);
	check_terms(s, 1, whole);
	cr_assert_eq(store_nsegments(s), n - 1);
	cr_assert_eq(seg_size(im[n - 1].first), -1);
	append_range(s, whole + 1, 50, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	s = open_ok(300);
	check_terms(s, 1, 50);
	store_close(s);
	for (k = 0; k < n; k++)
		free(im[k].b);
}

Test(store, damage_after_open_is_caught_on_read)
{
	struct store *s = open_ok(0);
	struct want   w = { 1, UINT64_MAX, 1, 1 };
	char          p[128];
	FILE         *fp;

	append_range(s, 1, 10, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	snprintf(p, sizeof(p), "%s/seg-%016lx.log", dir, 1ul);
	fp = fopen(p, "r+");
	cr_assert_not_null(fp);
	fseek(fp, (long)(rec_size(1) + rec_size(2) + 20), SEEK_SET);
	fputc(0xff, fp);
	fclose(fp);
	cr_assert_eq(store_read(s, 1, 10, check_cb, &w), MOM_EBADDATA);
	cr_assert_eq(w.next, 3, "the two good entries before it were read");
	cr_assert_not_null(strstr(store_errmsg(s), "seg-0000000000000001.log: byte "),
	    "%s", store_errmsg(s));
	store_close(s);
}

Test(store, a_bad_batch_changes_nothing)
{
	struct store      *s = open_ok(0);
	struct store_entry e[3] = { { .index = 1 }, { .index = 2 }, { .index = 4 } };

	cr_assert_eq(store_append(s, e, 3), MOM_EINVAL);
	cr_assert_eq(store_last(s), 0);
	cr_assert_eq(store_nsegments(s), 0);
	e[0].index = 0;
	cr_assert_eq(store_append(s, e, 1), MOM_EINVAL);
	append_range(s, 1, 3, 1, 1);
	check_terms(s, 1, 3);
	store_close(s);
}

/* ---- torn writes, damage, clean stops, repair, the reserve ---- */

/* Appends entries from..to with a payload of len bytes of (i + k) | 1 (never 0). */
static void
append_big(struct store *s, uint64_t from, uint64_t to, size_t len)
{
	struct store_entry e;
	uint8_t            b[2048];
	uint64_t           i;
	size_t             k;

	cr_assert_leq(len, sizeof(b));
	for (i = from; i <= to; i++) {
		for (k = 0; k < len; k++)
			b[k] = (uint8_t)((i + k) | 1);
		e = (struct store_entry){ i, 1, 0, b, len };
		cr_assert_eq(store_append(s, &e, 1), 0, "%s", store_errmsg(s));
	}
}

/* An image of entries 1..3 of 1,000-byte payloads (1,025-byte records). */
static size_t
big_image(uint8_t **b)
{
	struct store *s = open_ok(0);
	struct img    im[4];

	append_big(s, 1, 3, 1000);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	cr_assert_eq(read_imgs(im, 4), 1);
	*b = im[0].b;
	return im[0].n;
}

Test(store, scan_tells_a_torn_tail_from_a_damaged_last_record)
{
	struct store_scan sc;
	uint8_t          *b, *c;
	size_t            n = big_image(&b), rec = 25 + 1000, last = 2 * rec, z;

	cr_assert_eq(n, 3 * rec);
	c = malloc(n);
	/* Whole: fine either way. */
	cr_assert_eq(store_scan(b, n, 1, true, false, &sc), 0);
	cr_assert_eq(sc.status, STORE_SCAN_OK);
	/* Cut short anywhere inside the last record: torn. */
	for (z = last + 1; z < n; z += 97) {
		cr_assert_eq(store_scan(b, z, 1, true, false, &sc), 0);
		cr_assert_eq(sc.status, STORE_SCAN_TORN, "cut at %zu", z);
		cr_assert_eq(sc.end, last);
	}
	/* Zero-filled from the record's start or a sector boundary inside it: torn. */
	for (z = last; z < n; z = (z / 512 + 1) * 512) {
		memcpy(c, b, n);
		memset(c + z, 0, n - z);
		cr_assert_eq(store_scan(c, n, 1, true, false, &sc), 0);
		cr_assert_eq(sc.status, STORE_SCAN_TORN, "zeros from %zu", z);
		cr_assert_eq(sc.n, 2);
	}
	/* Zeros after the last sector boundary (3,072) only: written, so damage. */
	memcpy(c, b, n);
	memset(c + n - 2, 0, 2);
	cr_assert_eq(store_scan(c, n, 1, true, false, &sc), 0);
	cr_assert_eq(sc.status, STORE_SCAN_CORRUPT);
	cr_assert_eq(sc.bad, last);
	/* A flipped bit in the payload or CRC of the whole last record: damage. */
	for (z = last + 4; z < n; z += 101) {
		memcpy(c, b, n);
		c[z] ^= 0x10;
		cr_assert_eq(store_scan(c, n, 1, true, false, &sc), 0);
		cr_assert_eq(sc.status, STORE_SCAN_CORRUPT, "flip at %zu", z);
		cr_assert_eq(sc.bad, last);
		cr_assert_not_null(strstr(sc.why, "not a torn write"), "%s", sc.why);
	}
	/* Not the last segment (or after a clean stop): nothing is torn. */
	cr_assert_eq(store_scan(b, n - 1, 1, false, false, &sc), 0);
	cr_assert_eq(sc.status, STORE_SCAN_CORRUPT);
	free(b);
	free(c);
}

/* Opens dir expecting MOM_EBADDATA with want in the message. */
static void
open_bad(const char *want)
{
	struct store_config cfg = { 0 };
	struct store       *s;
	char                err[512];

	cr_assert_eq(store_open(dir, &cfg, &s, err, sizeof(err)), MOM_EBADDATA, "%s", err);
	cr_assert_not_null(strstr(err, want), "'%s' not in: %s", want, err);
}

static void
seg_cut(uint64_t first, off_t len)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/seg-%016lx.log", dir, (unsigned long)first);
	cr_assert_eq(truncate(p, len), 0);
}

static void
seg_flip(uint64_t first, off_t at)
{
	char p[128];
	int  fd;
	uint8_t c;

	snprintf(p, sizeof(p), "%s/seg-%016lx.log", dir, (unsigned long)first);
	cr_assert_geq(fd = open(p, O_RDWR), 0);
	cr_assert_eq(pread(fd, &c, 1, at), 1);
	c ^= 0x04;
	cr_assert_eq(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

Test(store, a_flip_in_the_whole_last_record_after_a_crash_is_refused)
{
	struct store *s = open_ok(0);
	char          want[128];

	append_big(s, 1, 3, 1000);
	cr_assert_eq(store_sync(s), 0);
	store_close(s); /* no clean stop: as after a crash */
	seg_flip(1, 2 * 1025 + 500);
	snprintf(want, sizeof(want), "seg-0000000000000001.log: byte %d:", 2 * 1025);
	open_bad(want);
	/* Still there: refused again, nothing was cut. */
	cr_assert_eq(seg_size(1), 3 * 1025);
	open_bad("not a torn write");
}

Test(store, after_a_clean_stop_no_bad_record_is_cut)
{
	struct store *s = open_ok(0);

	append_big(s, 1, 3, 1000);
	cr_assert_eq(store_mark_clean(s), 0);
	store_close(s);
	/* A short last record: torn after a crash, damage after a clean stop. */
	seg_cut(1, 3 * 1025 - 3);
	open_bad("after a clean stop");
	/* The log one record short, cut at a record boundary: damage too. */
	seg_cut(1, 2 * 1025);
	open_bad("the clean stop recorded 3");
	/* Without the record (a crash), the same short file is torn and cut. */
	seg_cut(1, 3 * 1025 - 3);
	{
		char p[128];

		snprintf(p, sizeof(p), "%s/clean", dir);
		cr_assert_eq(unlink(p), 0);
	}
	s = open_ok(0);
	cr_assert_eq(store_last(s), 2);
	cr_assert_not_null(store_warning(s));
	store_close(s);
}

Test(store, the_clean_record_goes_at_open_and_at_the_next_change)
{
	struct store *s = open_ok(0);
	char          p[128];

	snprintf(p, sizeof(p), "%s/clean", dir);
	append_big(s, 1, 2, 100);
	cr_assert_eq(store_mark_clean(s), 0);
	cr_assert_eq(access(p, F_OK), 0);
	/* An append after the mark: the mark would lie, it goes first. */
	append_big(s, 3, 3, 100);
	cr_assert_neq(access(p, F_OK), 0);
	cr_assert_eq(store_mark_clean(s), 0);
	store_close(s);
	s = open_ok(0);
	cr_assert_eq(store_last(s), 3);
	cr_assert_neq(access(p, F_OK), 0, "open keeps the clean record");
	store_close(s);
}

struct seen {
	uint64_t n, last;
};

static int
seen_cb(void *arg, const struct store_entry *e)
{
	struct seen *w = arg;

	w->n++;
	w->last = e->index;
	return 0;
}

Test(store, repair_cuts_at_the_first_damage_and_shows_what_it_drops)
{
	struct store_config cfg = { .segment_size = 3000, .repair = true };
	struct seen         w = { 0, 0 };
	struct store       *s = open_ok(3000);
	const struct store_repair *rp;
	char                err[512];

	append_big(s, 1, 9, 1000); /* two records a segment: 1, 3, 5, 7, 9 */
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	cr_assert_eq(store_nsegments(s = open_ok(3000)), 5);
	store_close(s);
	seg_flip(3, 1025 + 100); /* entry 4 */
	open_bad("seg-0000000000000003.log: byte 1025:");
	cfg.repair_cb = seen_cb;
	cfg.repair_arg = &w;
	cr_assert_eq(store_open(dir, &cfg, &s, err, sizeof(err)), 0, "%s", err);
	rp = store_repaired(s);
	cr_assert(rp->cut);
	cr_assert_str_eq(rp->file, "seg-0000000000000003.log");
	cr_assert_eq(rp->offset, 1025);
	cr_assert_eq(rp->index, 4);
	cr_assert_eq(rp->last, 9);
	cr_assert_eq(w.n, 5, "entries 5..9 are readable and shown");
	cr_assert_eq(rp->readable, 5);
	cr_assert_eq(store_last(s), 3);
	cr_assert_eq(seg_size(5), -1);
	cr_assert_eq(seg_size(3), 1025);
	store_close(s);
	/* Then it opens as it is, and takes appends after the cut. */
	s = open_ok(3000);
	cr_assert_eq(store_last(s), 3);
	append_big(s, 4, 5, 1000);
	store_close(s);
}

Test(store, a_full_disk_releases_the_reserve_and_takes_it_back)
{
	struct store_config cfg = { .reserve = 1 << 20 };
	struct fault        f = { 0 };
	struct store_fault  h = { fault_pwrite, fault_sync, &f };
	struct store       *s;
	struct stat         st;
	char                err[512], p[128];

	snprintf(p, sizeof(p), "%s/reserve", dir);
	cr_assert_eq(store_open(dir, &cfg, &s, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_size, 1 << 20);
	cr_assert_geq((uint64_t)st.st_blocks * 512, 1 << 20, "allocated, not sparse");
	cr_assert(!store_full(s));
	append_big(s, 1, 1, 100);
	store_set_fault(s, &h); /* the disk is full */
	{
		struct store_entry e = { 2, 1, 0, "x", 1 };

		cr_assert_eq(store_append(s, &e, 1), MOM_EFULL);
		cr_assert(store_full(s));
		cr_assert_not_null(strstr(store_errmsg(s), "reserve"), "%s", store_errmsg(s));
	}
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_size, 0, "the reserve is given up");
	/* What it freed takes the next writes. */
	store_set_fault(s, NULL);
	append_big(s, 2, 3, 100);
	cr_assert_eq(store_reserve_restore(s), 0);
	cr_assert(!store_full(s));
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_size, 1 << 20);
	store_close(s);
}

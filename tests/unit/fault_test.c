/*
 * fault_test.c: the fault-injection build of the store and rio (compiled
 * with -DMOM_FAULT_INJECTION, see the Makefile), driven through the same
 * environment variables as the programs of make fault.  A "kill" here is
 * closing without a sync (the files keep what was written, as the page
 * cache would); a "kill at the moment of a confirmation" is a copy of the
 * directory taken in the append callback.  Each test runs in its own
 * process (criterion), so setenv stays in it.
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

#include "mom.h"
#include "storage/rio.h"
#include "storage/store.h"
#include "tmpdir.h"

static char dir[64], dir2[64];


static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/fault_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(dir2, sizeof(dir2), "/tmp/fault_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir2));
}

static void
teardown(void)
{
	rm_dir(dir);
	rm_dir(dir2);
}

TestSuite(fault, .init = setup, .fini = teardown);

/* ---- the store ---- */

static struct store *
open_in(const char *d, uint64_t segsize)
{
	struct store_config cfg = { .segment_size = segsize };
	struct store       *s;
	char                err[512];
	int                 rc;

	rc = store_open(d, &cfg, &s, err, sizeof(err));
	cr_assert_eq(rc, 0, "store_open: %d %s", rc, err);
	return s;
}

/* Entries from..to of term t, payload "e<index>-t<term>", n per batch. */
static void
append_range(struct store *s, uint64_t from, uint64_t to, uint64_t t, size_t batch)
{
	struct store_entry e[8];
	char               b[8][32];
	size_t             n;
	uint64_t           i = from;

	while (i <= to) {
		for (n = 0; n < batch && i <= to; n++, i++) {
			snprintf(b[n], sizeof(b[n]), "e%llu-t%llu", (unsigned long long)i,
			    (unsigned long long)t);
			e[n] = (struct store_entry){ i, t, 0, b[n], strlen(b[n]) };
		}
		cr_assert_eq(store_append(s, e, n), 0, "append: %s", store_errmsg(s));
	}
}

struct want {
	uint64_t next, t2_from, t2;
};

static int
check_cb(void *arg, const struct store_entry *e)
{
	struct want *w = arg;
	char         b[32];
	uint64_t     t = e->index >= w->t2_from ? w->t2 : 1;

	snprintf(b, sizeof(b), "e%llu-t%llu", (unsigned long long)e->index, (unsigned long long)t);
	cr_assert_eq(e->index, w->next);
	cr_assert_eq(e->term, t);
	cr_assert(e->len == strlen(b) && memcmp(e->buf, b, e->len) == 0, "entry %llu",
	    (unsigned long long)e->index);
	w->next++;
	return 0;
}

/* The store holds exactly 1..last; entries >= t2_from have term t2. */
static void
check(struct store *s, uint64_t last, uint64_t t2_from, uint64_t t2)
{
	struct want w = { 1, t2_from, t2 };

	cr_assert_eq(store_last(s), last, "last %llu, expected %llu",
	    (unsigned long long)store_last(s), (unsigned long long)last);
	if (last == 0)
		return;
	cr_assert_eq(store_first(s), 1);
	cr_assert_eq(store_read(s, 1, last, check_cb, &w), 0, "%s", store_errmsg(s));
}

/* The recorded synced length of the segment starting at first; -1: none. */
static long long
sidecar(const char *d, uint64_t first)
{
	char      p[256];
	FILE     *f;
	long long v = -1;

	snprintf(p, sizeof(p), "%s/seg-%016llx.log.synced", d, (unsigned long long)first);
	if (!(f = fopen(p, "r")))
		return -1;
	cr_assert_eq(fscanf(f, "%lld", &v), 1);
	fclose(f);
	return v;
}

static long long
file_size(const char *d, const char *name)
{
	struct stat st;
	char        p[256];

	snprintf(p, sizeof(p), "%s/%s", d, name);
	return stat(p, &st) < 0 ? -1 : (long long)st.st_size;
}

/* Names and sizes of the segment files, sorted: "name size\n" each. */
static void
listing(const char *d, char *out, size_t n)
{
	struct dirent **de;
	int             k, i;
	size_t          p = 0;

	k = scandir(d, &de, NULL, alphasort);
	cr_assert_geq(k, 0);
	out[0] = '\0';
	for (i = 0; i < k; i++) {
		if (strlen(de[i]->d_name) == 24 && strncmp(de[i]->d_name, "seg-", 4) == 0)
			p += (size_t)snprintf(out + p, n - p, "%s %lld\n", de[i]->d_name,
			    file_size(d, de[i]->d_name));
		free(de[i]);
	}
	free(de);
	cr_assert_lt(p, n);
}

/* Synced, then more (rolling into new segments), then a kill. */
static void
synced_then_more(struct store *s)
{
	append_range(s, 1, 30, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	append_range(s, 31, 60, 1, 2);
}

Test(fault, powerloss_leaves_what_store_crash_leaves)
{
	struct store *s;
	char          a[4096], b[4096];
	size_t        nseg;

	setenv("MOM_FAULT_POWERLOSS", "1", 1);
	s = open_in(dir, 300);
	synced_then_more(s);
	cr_assert_eq(sidecar(dir, 1), file_size(dir, "seg-0000000000000001.log"));
	store_close(s); /* the kill: the files keep everything */
	s = open_in(dir, 300);
	check(s, 30, UINT64_MAX, 1);
	nseg = store_nsegments(s);
	store_close(s);

	/* The unit tests' model of a power loss, in another directory. */
	unsetenv("MOM_FAULT_POWERLOSS");
	s = open_in(dir2, 300);
	synced_then_more(s);
	store_crash(s);
	s = open_in(dir2, 300);
	check(s, 30, UINT64_MAX, 1);
	cr_assert_eq(store_nsegments(s), nseg);
	store_close(s);

	listing(dir, a, sizeof(a));
	listing(dir2, b, sizeof(b));
	cr_assert_str_eq(a, b);
}

Test(fault, powerloss_without_the_variable_is_a_plain_kill)
{
	struct store *s;

	setenv("MOM_FAULT_POWERLOSS", "0", 1);
	s = open_in(dir, 300);
	synced_then_more(s);
	cr_assert_eq(sidecar(dir, 1), -1, "no sidecar unless asked");
	store_close(s);
	s = open_in(dir, 300);
	check(s, 60, UINT64_MAX, 1);
	store_close(s);
}

Test(fault, powerloss_drops_a_store_never_synced)
{
	struct store *s;

	setenv("MOM_FAULT_POWERLOSS", "1", 1);
	s = open_in(dir, 300);
	append_range(s, 1, 20, 1, 3);
	cr_assert_gt(store_nsegments(s), 1);
	store_close(s);
	s = open_in(dir, 300);
	check(s, 0, UINT64_MAX, 1);
	cr_assert_eq(store_nsegments(s), 0);
	append_range(s, 1, 5, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	s = open_in(dir, 300);
	check(s, 5, UINT64_MAX, 1);
	store_close(s);
}

/* A durable truncation is recorded: the entries appended after it (over
 * the old synced length) are not kept by the next power loss. */
Test(fault, powerloss_after_a_truncation)
{
	struct store *s;

	setenv("MOM_FAULT_POWERLOSS", "1", 1);
	s = open_in(dir, 1 << 20);
	append_range(s, 1, 20, 1, 4);
	cr_assert_eq(store_sync(s), 0);
	append_range(s, 21, 25, 1, 1);
	cr_assert_eq(store_truncate(s, 18), 0); /* durable: 1..17 */
	append_range(s, 18, 40, 2, 3);
	store_close(s);
	s = open_in(dir, 1 << 20);
	check(s, 17, UINT64_MAX, 1);
	append_range(s, 18, 22, 2, 1);
	cr_assert_eq(store_sync(s), 0);
	store_close(s);
	s = open_in(dir, 1 << 20);
	check(s, 22, 18, 2);
	store_close(s);
}

/* The first index of the k-th segment file of d (sorted). */
static uint64_t
seg_first(const char *d, int k)
{
	struct dirent **de;
	uint64_t        v = 0;
	int             n, i, j = 0;

	n = scandir(d, &de, NULL, alphasort);
	cr_assert_geq(n, 0);
	for (i = 0; i < n; i++) {
		if (strlen(de[i]->d_name) == 24 && strncmp(de[i]->d_name, "seg-", 4) == 0 &&
		    j++ == k)
			v = strtoull(de[i]->d_name + 4, NULL, 16);
		free(de[i]);
	}
	free(de);
	cr_assert_gt(v, 0, "no segment %d", k);
	return v;
}

/* Segments removed by a truncation take their sidecars with them; a
 * segment created again under the same name starts unsynced. */
Test(fault, powerloss_forgets_removed_segments)
{
	struct store *s;
	uint64_t      f;

	setenv("MOM_FAULT_POWERLOSS", "1", 1);
	s = open_in(dir, 300);
	append_range(s, 1, 60, 1, 2);
	cr_assert_eq(store_sync(s), 0);
	f = seg_first(dir, 2);
	cr_assert_gt(sidecar(dir, f), 0);
	cr_assert_eq(store_truncate(s, f), 0);
	cr_assert_eq(sidecar(dir, f), -1);
	append_range(s, f, f + 9, 3, 2); /* the same segment name again, unsynced */
	cr_assert_eq(seg_first(dir, 2), f);
	store_close(s);
	s = open_in(dir, 300);
	check(s, f - 1, UINT64_MAX, 1);
	store_close(s);
}

Test(fault, enospc_while_the_file_exists)
{
	struct store_entry e = { 4, 1, 0, "e4-t1", 5 };
	struct store_meta  m = { 2, 1 };
	struct store      *s;
	char               full[128];
	int                fd;

	snprintf(full, sizeof(full), "%s/full", dir2);
	setenv("MOM_FAULT_ENOSPC_FILE", full, 1);
	s = open_in(dir, 1 << 20);
	append_range(s, 1, 3, 1, 1);
	cr_assert_eq(store_sync(s), 0);

	cr_assert_geq(fd = open(full, O_CREAT | O_WRONLY, 0600), 0);
	close(fd);
	cr_assert_eq(store_append(s, &e, 1), MOM_EFULL);
	cr_assert(strstr(store_errmsg(s), "No space") != NULL, "%s", store_errmsg(s));
	cr_assert_eq(store_meta_save(s, &m), MOM_EFULL);
	cr_assert_eq(store_last(s), 3);
	cr_assert_eq(store_sync(s), 0, "a full disk does not break the store");

	cr_assert_eq(unlink(full), 0);
	append_range(s, 4, 6, 1, 1);
	cr_assert_eq(store_sync(s), 0);
	cr_assert_eq(store_meta_save(s, &m), 0);
	store_close(s);
	unsetenv("MOM_FAULT_ENOSPC_FILE");
	s = open_in(dir, 1 << 20);
	check(s, 6, UINT64_MAX, 1);
	store_close(s);
}

/* ---- rio: MOM_FAULT_CONFIRM_EARLY, caught by MOM_FAULT_POWERLOSS ---- */

static uint64_t fake_now = 1000000;

static uint64_t
fake_clock(void *arg)
{
	return fake_now;
}

/* Copies every file of from into to: the disk as a kill at this moment leaves it. */
static void
copy_dir(const char *from, const char *to)
{
	struct dirent *de;
	DIR           *d;
	char           p[512], q[512], b[65536];
	ssize_t        n;
	int            in, out;

	cr_assert_not_null(d = opendir(from));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", from, de->d_name);
		snprintf(q, sizeof(q), "%s/%s", to, de->d_name);
		cr_assert_geq(in = open(p, O_RDONLY), 0);
		cr_assert_geq(out = open(q, O_WRONLY | O_CREAT | O_TRUNC, 0600), 0);
		while ((n = read(in, b, sizeof(b))) > 0)
			cr_assert_eq(write(out, b, (size_t)n), n);
		close(in);
		close(out);
	}
	closedir(d);
}

static struct raft_io *cb_io;
static int             confirmed;
static uint64_t        syncs_at_cb;

/* The entry is confirmed: the process is killed right now. */
static void
killing_cb(struct raft_io_append *req, int status)
{
	struct rio_stats st;

	cr_assert_eq(status, 0);
	rio_stats(cb_io, &st);
	syncs_at_cb = st.syncs;
	confirmed++;
	copy_dir(dir, dir2);
}

/* Bootstraps an io in dir, appends entry 2, steps (the callback copies
 * dir to dir2), and returns the last index that survives in dir2 after
 * the power loss. */
static uint64_t
confirmed_then_power_loss(void)
{
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 1 };
	struct raft_configuration conf;
	struct raft_io            io;
	struct raft_io_append     req;
	struct raft_entry         e = { .term = 1, .type = RAFT_COMMAND, .buf = { "x", 1 } };
	struct rio_stats          st;
	struct store             *s;
	uint64_t                  last;

	setenv("MOM_FAULT_POWERLOSS", "1", 1);
	cb_io = &io;
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io.bootstrap(&io, &conf), 0);
	raft_configuration_close(&conf);
	cr_assert_eq(io.append(&io, &req, &e, 1, killing_cb), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(confirmed, 1);
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 2, "synced in the end either way");
	io.close(&io, NULL);
	rio_destroy(&io);

	s = open_in(dir2, 0);
	last = store_last(s);
	store_close(s);
	return last;
}

Test(fault, a_confirmed_append_survives_a_power_loss)
{
	cr_assert_eq(confirmed_then_power_loss(), 2);
	cr_assert_eq(syncs_at_cb, 2, "confirmed after its sync");
}

Test(fault, confirm_early_loses_a_confirmed_append_at_a_power_loss)
{
	setenv("MOM_FAULT_CONFIRM_EARLY", "1", 1);
	cr_assert_eq(confirmed_then_power_loss(), 1, "the bug the crash tests must catch");
	cr_assert_eq(syncs_at_cb, 1, "confirmed before its sync");
}

/*
 * rio_test.c: a single-node libraft (0.15.0) on our raft_io over the
 * segment store, with a fake clock: bootstrap, self-election, raft_apply
 * committing and applying in order, close and reopen from the directory
 * (entries re-applied, the log continues), an ENOSPC from the store's
 * fault hook failing raft_apply's callback with nothing applied, the io
 * methods alone (truncate, a failed append's hole, send, async work), and
 * the fsync modes (when appends complete relative to syncs, the interval
 * timer through rio_poll, the counters).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mom.h"
#include "storage/rio.h"
#include "tmpdir.h"
#include "linefsm.h"

static char     dir[64];
static uint64_t fake_now = 1000000;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}


static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rio_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void
teardown(void)
{
	rm_dir(dir);
}

TestSuite(rio, .init = setup, .fini = teardown);

/* ---- a node: raft + our io + an fsm that records what it applies (linefsm.h) ---- */

struct node {
	struct raft     raft;
	struct raft_io  io;
	struct linefsm  lf;
	bool            closed;
};


static uint64_t  seg_size;            /* 0: default */
static unsigned  snap_threshold = 1u << 30, snap_trailing = 128;
static enum rio_fsync fsync_mode;     /* 0: always */
static uint64_t  fsync_interval;

static void
node_open(struct node *n, bool bootstrap)
{
	struct rio_config cfg = { .dir = dir, .clock = fake_clock, .seed = 42,
		.segment_size = seg_size, .fsync = fsync_mode, .fsync_interval_ms = fsync_interval };
	int               rc;

	memset(n, 0, sizeof(*n));
	linefsm_init(&n->lf);
	cr_assert_eq(rio_create(&n->io, &cfg), 0);
	rc = raft_init(&n->raft, &n->io, &n->lf.fsm, 1, "node1");
	cr_assert_eq(rc, 0, "raft_init: %s", raft_strerror(rc));
	rio_attach(&n->io, &n->raft);
	raft_set_snapshot_threshold(&n->raft, snap_threshold);
	raft_set_snapshot_trailing(&n->raft, snap_trailing);
	if (bootstrap) {
		struct raft_configuration conf;

		raft_configuration_init(&conf);
		cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
		rc = raft_bootstrap(&n->raft, &conf);
		raft_configuration_close(&conf);
		cr_assert_eq(rc, 0, "raft_bootstrap: %s", raft_errmsg(&n->raft));
	}
	rc = raft_start(&n->raft);
	cr_assert_eq(rc, 0, "raft_start: %s (%s)", raft_strerror(rc), raft_errmsg(&n->raft));
}

static void
close_cb(struct raft *r)
{
	struct node *n = (struct node *)r; /* raft is the first member */

	n->closed = true;
}

static void
node_close(struct node *n)
{
	raft_close(&n->raft, close_cb);
	/* Our io completes the close synchronously. */
	cr_assert(n->closed);
	rio_destroy(&n->io);
	linefsm_clear(&n->lf);
}

/* Steps the fake clock by 10 ms and drives the io. */
static void
step(struct node *n)
{
	fake_now += 10;
	cr_assert_eq(rio_step(&n->io), 0, "rio_step: %s", n->io.errmsg);
}

static void
until_leader(struct node *n)
{
	for (int i = 0; i < 1000 && raft_state(&n->raft) != RAFT_LEADER; i++)
		step(n);
	cr_assert_eq(raft_state(&n->raft), RAFT_LEADER);
}

struct req {
	struct raft_apply a;
	bool              done;
	int               status;
};

static void
apply_cb(struct raft_apply *a, int status, void *result)
{
	struct req *q = a->data;

	q->done = true;
	q->status = status;
}

/* raft_apply of one "msg-<i>" command: its return (the buffer freed on failure). */
static int
try_apply(struct node *n, struct req *q, int i)
{
	struct raft_buffer b;
	char               s[32];
	int                rc;

	snprintf(s, sizeof(s), "msg-%d", i);
	b.len = strlen(s);
	b.base = raft_malloc(b.len);
	cr_assert_not_null(b.base);
	memcpy(b.base, s, b.len);
	memset(q, 0, sizeof(*q));
	q->a.data = q;
	rc = raft_apply(&n->raft, &q->a, &b, 1, apply_cb);
	if (rc != 0)
		raft_free(b.base);
	return rc;
}

static void
apply(struct node *n, struct req *q, int i)
{
	int rc = try_apply(n, q, i);

	cr_assert_eq(rc, 0, "raft_apply: %s", raft_errmsg(&n->raft));
}

static void
until_done(struct node *n, struct req *q, size_t nq)
{
	for (int i = 0; i < 1000; i++) {
		size_t k = 0;

		while (k < nq && q[k].done)
			k++;
		if (k == nq)
			return;
		step(n);
	}
	cr_assert_fail("requests not completed");
}

static void
expect_applied(struct node *n, const int *ids, size_t nids)
{
	cr_assert_eq(n->lf.napplied, nids, "applied %zu, expected %zu", n->lf.napplied, nids);
	for (size_t i = 0; i < nids; i++) {
		char s[32];

		snprintf(s, sizeof(s), "msg-%d", ids[i]);
		cr_assert_str_eq(n->lf.applied[i], s, "applied[%zu]", i);
	}
}

Test(rio, bootstrap_elect_apply_reopen)
{
	static struct node n;
	struct req         q[20];
	int                ids[30];
	uint64_t           last;

	node_open(&n, true);
	until_leader(&n);
	for (int i = 0; i < 10; i++)
		apply(&n, &q[i], i);
	until_done(&n, q, 10);
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(q[i].status, 0, "apply %d: %s", i, raft_strerror(q[i].status));
		ids[i] = i;
	}
	expect_applied(&n, ids, 10);
	last = store_last(rio_store(&n.io));
	cr_assert_geq(last, 11); /* the configuration, then the ten */
	cr_assert_eq(raft_last_applied(&n.raft), last);
	node_close(&n);

	/* Reopen: not pristine any more, the log is loaded and goes on. */
	{
		struct rio_config cfg = { .dir = dir, .clock = fake_clock };
		struct raft_configuration conf;

		memset(&n, 0, sizeof(n));
		linefsm_init(&n.lf);
		cr_assert_eq(rio_create(&n.io, &cfg), 0);
		cr_assert_eq(raft_init(&n.raft, &n.io, &n.lf.fsm, 1, "node1"), 0);
		raft_configuration_init(&conf);
		cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
		cr_assert_eq(raft_bootstrap(&n.raft, &conf), RAFT_CANTBOOTSTRAP);
		raft_configuration_close(&conf);
		cr_assert_eq(raft_start(&n.raft), 0, "%s", raft_errmsg(&n.raft));
	}
	until_leader(&n);
	cr_assert_geq(raft_last_index(&n.raft), last);
	for (int i = 0; i < 5; i++)
		apply(&n, &q[i], 10 + i);
	until_done(&n, q, 5);
	for (int i = 0; i < 15; i++)
		ids[i] = i;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(q[i].status, 0);
	expect_applied(&n, ids, 15);
	cr_assert_gt(store_last(rio_store(&n.io)), last + 4);
	node_close(&n);
}

/* Snapshots: taken every 8 entries keeping 2, old segments deleted;
 * a restart restores the snapshot and applies the log after it. */
Test(rio, snapshot_and_restart)
{
	static struct node n;
	struct req         q[41];
	int                ids[41];
	char               p[128];

	seg_size = 256;
	snap_threshold = 8;
	snap_trailing = 2;
	node_open(&n, true);
	until_leader(&n);
	for (int i = 0; i < 40; i++) {
		apply(&n, &q[i], i);
		ids[i] = i;
		if (i % 3 == 0)
			step(&n);
	}
	until_done(&n, q, 40);
	for (int i = 0; i < 20; i++)
		step(&n);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(q[i].status, 0);
	expect_applied(&n, ids, 40);
	snprintf(p, sizeof(p), "%s/snap", dir);
	cr_assert_eq(access(p, F_OK), 0, "no snapshot file");
	cr_assert_gt(store_first(rio_store(&n.io)), 8, "first %llu",
	    (unsigned long long)store_first(rio_store(&n.io)));
	node_close(&n);

	node_open(&n, false);
	until_leader(&n);
	apply(&n, &q[40], 40);
	ids[40] = 40;
	until_done(&n, &q[40], 1);
	cr_assert_eq(q[40].status, 0);
	expect_applied(&n, ids, 41);
	node_close(&n);
	seg_size = 0;
	snap_threshold = 1u << 30;
	snap_trailing = 128;
}

/* Batches of applies between two steps share one sync (group commit). */
Test(rio, group_commit)
{
	static struct node n;
	struct req         q[50];
	int                ids[50];

	node_open(&n, true);
	until_leader(&n);
	for (int i = 0; i < 50; i++) {
		apply(&n, &q[i], i);
		ids[i] = i;
	}
	/* Written, not yet synced nor completed. */
	for (int i = 0; i < 50; i++)
		cr_assert_not(q[i].done);
	cr_assert_eq(rio_poll(&n.io), 0);
	cr_assert_eq(rio_step(&n.io), 0);
	for (int i = 0; i < 50; i++)
		cr_assert(q[i].done && q[i].status == 0, "apply %d", i);
	expect_applied(&n, ids, 50);
	cr_assert_gt(rio_poll(&n.io), 0); /* only the tick left */
	node_close(&n);
}

/* Fault hook: ENOSPC on every data write while armed. */
static bool full;

static ssize_t
full_pwrite(void *arg, int fd, const void *b, size_t n, off_t off)
{
	if (full) {
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, b, n, off);
}

static int
plain_sync(void *arg, int fd)
{
	return fdatasync(fd);
}

Test(rio, enospc_fails_the_apply)
{
	static struct node n;
	struct store_fault h = { full_pwrite, plain_sync, NULL };
	struct req         q[10];
	int                ids[10] = { 0, 1, 2, 3, 4, 5, 6, 7 };

	full = false;
	node_open(&n, true);
	store_set_fault(rio_store(&n.io), &h);
	until_leader(&n);
	for (int i = 0; i < 3; i++)
		apply(&n, &q[i], i);
	until_done(&n, q, 3);
	expect_applied(&n, ids, 3);

	/* Two in flight, then the disk is full: that apply is refused at
	 * once, the two in flight are unharmed. */
	apply(&n, &q[3], 3);
	apply(&n, &q[4], 4);
	full = true;
	cr_assert_eq(try_apply(&n, &q[5], 100), RAFT_NOSPACE, "%s", raft_errmsg(&n.raft));
	cr_assert_eq(try_apply(&n, &q[5], 101), RAFT_NOSPACE);
	cr_assert_eq(raft_last_index(&n.raft), 6);
	full = false;
	apply(&n, &q[5], 5);
	until_done(&n, &q[3], 3);
	for (int i = 3; i < 6; i++)
		cr_assert_eq(q[i].status, 0);
	for (int i = 0; i < 20; i++)
		step(&n);
	expect_applied(&n, ids, 6);
	cr_assert_not(rio_failed(&n.io));
	cr_assert_eq(store_last(rio_store(&n.io)), 7);
	node_close(&n);

	/* The restart loads what is on disk; the refused ones are not there. */
	node_open(&n, false);
	until_leader(&n);
	apply(&n, &q[6], 6);
	apply(&n, &q[7], 7);
	until_done(&n, &q[6], 2);
	cr_assert_eq(q[6].status, 0);
	cr_assert_eq(q[7].status, 0);
	expect_applied(&n, ids, 8);
	node_close(&n);
}

/* A failed fsync: the pending applies fail, nothing is applied, the io
 * refuses everything after (what reached the disk is unknown). */
static bool sync_fails;

static int
failing_sync(void *arg, int fd)
{
	if (sync_fails) {
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

Test(rio, failed_sync_fails_the_applies)
{
	static struct node n;
	struct store_fault h = { full_pwrite, failing_sync, NULL };
	struct req         q[4];
	int                ids[1] = { 0 };

	full = sync_fails = false;
	node_open(&n, true);
	store_set_fault(rio_store(&n.io), &h);
	until_leader(&n);
	apply(&n, &q[0], 0);
	until_done(&n, q, 1);
	expect_applied(&n, ids, 1);

	sync_fails = true;
	apply(&n, &q[1], 1);
	apply(&n, &q[2], 2);
	fake_now += 10;
	cr_assert_eq(rio_step(&n.io), RAFT_IOERR);
	cr_assert(rio_failed(&n.io));
	sync_fails = false;
	/* Parked: nothing completes, nothing more commits. */
	apply(&n, &q[3], 3);
	for (int i = 0; i < 20; i++) {
		fake_now += 10;
		rio_step(&n.io);
	}
	for (int i = 1; i < 4; i++)
		cr_assert_not(q[i].done, "apply %d", i);
	expect_applied(&n, ids, 1);
	/* The owner restarts: libraft fails the pending applies at close. */
	raft_close(&n.raft, close_cb);
	cr_assert(n.closed);
	for (int i = 1; i < 4; i++)
		cr_assert(q[i].done && q[i].status != 0, "apply %d: %d", i, q[i].status);
	rio_destroy(&n.io);
	expect_applied(&n, ids, 1);
	free(n.lf.applied[0]);
	n.lf.napplied = 0;

	/* Back from the directory: the log continues after what is there. */
	node_open(&n, false);
	until_leader(&n);
	apply(&n, &q[0], 9);
	until_done(&n, q, 1);
	cr_assert_eq(q[0].status, 0);
	cr_assert_geq(n.lf.napplied, 2);
	cr_assert_str_eq(n.lf.applied[0], "msg-0");
	cr_assert_str_eq(n.lf.applied[n.lf.napplied - 1], "msg-9");
	node_close(&n);
}

/* ---- the io alone ---- */

static int appended, append_status, sent_status, worked;

static void
append_cb(struct raft_io_append *req, int status)
{
	appended++;
	append_status = status;
}

static void
send_cb(struct raft_io_send *req, int status)
{
	sent_status = status;
}

static int
work_fn(struct raft_io_async_work *req)
{
	return 7;
}

static void
work_cb(struct raft_io_async_work *req, int status)
{
	worked = status;
}

static void
io_append(struct raft_io *io, raft_term term, const char *s, int expect_status)
{
	struct raft_io_append req;
	struct raft_entry     e = { .term = term, .type = RAFT_COMMAND,
		.buf = { (void *)s, strlen(s) } };

	appended = 0;
	if (expect_status != 0) {
		cr_assert_eq(io->append(io, &req, &e, 1, append_cb), expect_status);
		cr_assert_eq(rio_step(io), 0);
		cr_assert_eq(appended, 0);
		return;
	}
	cr_assert_eq(io->append(io, &req, &e, 1, append_cb), 0);
	cr_assert_eq(appended, 0); /* deferred to the step */
	cr_assert_eq(rio_step(io), 0);
	cr_assert_eq(appended, 1);
	cr_assert_eq(append_status, expect_status, "status %d", append_status);
}

static void
io_load(struct raft_io *io, raft_term *term, raft_id *vote, struct raft_entry **e, size_t *n)
{
	struct raft_snapshot *snap;
	raft_index            start;

	cr_assert_eq(io->load(io, term, vote, &snap, &start, e, n), 0, "%s", io->errmsg);
	cr_assert_null(snap);
	cr_assert_eq(start, 1);
}

/*
 * Loaded entries carry no batch: libraft 0.15 looks through the whole log
 * for another entry of an entry's batch each time it drops one, so a
 * batch per loaded entry made the first snapshot after a start quadratic
 * (rio.c, load_one).
 */
static void
free_entries(struct raft_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		cr_assert_null(e[i].batch, "loaded entry %zu has a batch", i);
		raft_free(e[i].buf.base);
	}
	raft_free(e);
}

Test(rio, io_truncate_hole_send_work)
{
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 1 };
	struct store_fault        h = { full_pwrite, plain_sync, NULL };
	struct raft_io            io;
	struct raft_configuration conf;
	struct raft_entry        *e;
	struct raft_io_send       sreq;
	struct raft_io_async_work wreq = { .work = work_fn };
	struct raft_message       m = { .type = RAFT_IO_REQUEST_VOTE, .server_id = 2 };
	raft_term                 term;
	raft_id                   vote;
	size_t                    n;

	full = false;
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io.bootstrap(&io, &conf), 0);
	cr_assert_eq(io.bootstrap(&io, &conf), RAFT_CANTBOOTSTRAP);
	cr_assert_eq(io.set_term(&io, 3), 0);
	cr_assert_eq(io.set_vote(&io, 1), 0);
	io_load(&io, &term, &vote, &e, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(term, 3);
	cr_assert_eq(vote, 1);
	cr_assert_eq(e[0].type, RAFT_CHANGE);
	cr_assert_eq(e[0].term, 1);
	free_entries(e, n);

	io_append(&io, 2, "a2", 0);
	io_append(&io, 2, "a3", 0);
	io_append(&io, 2, "a4", 0);
	/* Uncommitted entries overridden by a new leader: truncate, append. */
	cr_assert_eq(io.truncate(&io, 3), 0);
	io_append(&io, 3, "b3", 0);

	/* A failed write is refused at once and leaves no trace. */
	store_set_fault(rio_store(&io), &h);
	full = true;
	io_append(&io, 3, "c4", RAFT_NOSPACE);
	full = false;
	cr_assert_not(rio_failed(&io));
	io_append(&io, 3, "d4", 0);

	/* No transport: sends fail at the next step; work runs. */
	sent_status = 0;
	cr_assert_eq(io.send(&io, &sreq, &m, send_cb), 0);
	cr_assert_eq(io.async_work(&io, &wreq, work_cb), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(sent_status, RAFT_NOCONNECTION);
	cr_assert_eq(worked, 7);
	{
		struct raft_io_snapshot_get g;

		cr_assert_eq(io.snapshot_get(&io, &g, NULL), RAFT_NOTFOUND);
	}

	for (int i = 0; i < 100; i++) {
		int r = io.random(&io, 10, 20);

		cr_assert(r >= 10 && r < 20);
	}
	cr_assert_eq(io.time(&io), fake_now);
	io.close(&io, NULL);
	rio_destroy(&io);

	/* Reopen: 1 conf, a2, b3, d4 with their terms. */
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	io_load(&io, &term, &vote, &e, &n);
	cr_assert_eq(n, 4);
	cr_assert_eq(term, 3);
	cr_assert_eq(e[1].term, 2);
	cr_assert_eq(e[2].term, 3);
	cr_assert(e[1].buf.len == 2 && memcmp(e[1].buf.base, "a2", 2) == 0);
	cr_assert(e[2].buf.len == 2 && memcmp(e[2].buf.base, "b3", 2) == 0);
	cr_assert(e[3].buf.len == 2 && memcmp(e[3].buf.base, "d4", 2) == 0);
	free_entries(e, n);
	io.close(&io, NULL);
	rio_destroy(&io);
	raft_configuration_close(&conf);
}

static struct raft_snapshot *got_snap;
static int                   got_status = -1, put_status = -1;

static void
snap_get_cb(struct raft_io_snapshot_get *req, struct raft_snapshot *sn, int status)
{
	got_snap = sn;
	got_status = status;
}

static void
snap_put_cb(struct raft_io_snapshot_put *req, int status)
{
	put_status = status;
}

static void
free_snap(struct raft_snapshot *sn)
{
	raft_configuration_close(&sn->configuration);
	for (unsigned i = 0; i < sn->n_bufs; i++)
		raft_free(sn->bufs[i].base);
	raft_free(sn->bufs);
	raft_free(sn);
}

/* An installed snapshot (trailing 0) replaces the log; get and load read
 * it back; a damaged snapshot file is corruption. */
Test(rio, io_snapshot_install_get_load)
{
	struct rio_config           cfg = { .dir = dir, .clock = fake_clock, .seed = 1 };
	struct raft_io              io;
	struct raft_configuration   conf;
	struct raft_buffer          bufs[2] = { { "hello ", 6 }, { "world", 5 } };
	struct raft_snapshot        sn = { .index = 10, .term = 2, .configuration_index = 1,
		.bufs = bufs, .n_bufs = 2 };
	struct raft_io_snapshot_put put;
	struct raft_io_snapshot_get get;
	struct raft_snapshot       *ls;
	struct raft_entry          *e;
	raft_index                  start;
	raft_term                   term;
	raft_id                     vote;
	size_t                      n;
	char                        p[128];
	FILE                       *f;

	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io.bootstrap(&io, &conf), 0);
	io_append(&io, 1, "a2", 0);
	sn.configuration = conf;
	cr_assert_eq(io.snapshot_put(&io, 0, &put, &sn, snap_put_cb), 0, "%s", io.errmsg);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(put_status, 0);
	cr_assert_eq(store_last(rio_store(&io)), 0);
	io_append(&io, 2, "e11", 0);
	cr_assert_eq(store_last(rio_store(&io)), 11);

	cr_assert_eq(io.snapshot_get(&io, &get, snap_get_cb), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(got_status, 0);
	cr_assert_not_null(got_snap);
	cr_assert_eq(got_snap->index, 10);
	cr_assert_eq(got_snap->term, 2);
	cr_assert_eq(got_snap->configuration_index, 1);
	cr_assert_eq(got_snap->configuration.n, 1);
	cr_assert_str_eq(got_snap->configuration.servers[0].address, "node1");
	cr_assert_eq(got_snap->n_bufs, 1);
	cr_assert(got_snap->bufs[0].len == 11 && memcmp(got_snap->bufs[0].base, "hello world", 11) == 0);
	free_snap(got_snap);
	io.close(&io, NULL);
	rio_destroy(&io);

	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.load(&io, &term, &vote, &ls, &start, &e, &n), 0, "%s", io.errmsg);
	cr_assert_not_null(ls);
	cr_assert_eq(ls->index, 10);
	cr_assert_eq(start, 11);
	cr_assert_eq(n, 1);
	cr_assert(e[0].term == 2 && e[0].buf.len == 3 && memcmp(e[0].buf.base, "e11", 3) == 0);
	free_entries(e, n);
	free_snap(ls);
	io.close(&io, NULL);
	rio_destroy(&io);

	/* One flipped byte in the snapshot file. */
	snprintf(p, sizeof(p), "%s/snap", dir);
	cr_assert_not_null(f = fopen(p, "r+"));
	fseek(f, 20, SEEK_SET);
	fputc(0x5a ^ 0xff, f);
	fclose(f);
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.load(&io, &term, &vote, &ls, &start, &e, &n), RAFT_CORRUPT);
	cr_assert(strstr(io.errmsg, "snap") != NULL, "%s", io.errmsg);
	io.close(&io, NULL);
	rio_destroy(&io);
	raft_configuration_close(&conf);
}

/* libraft sends some messages without a callback (the TimeoutNow of a
 * leadership transfer, raft_transfer): the step completes them silently. */
Test(rio, io_send_without_callback)
{
	struct rio_config   cfg = { .dir = dir, .clock = fake_clock, .seed = 1 };
	struct raft_io      io;
	struct raft_io_send sreq = { 0 };
	struct raft_message m = { .type = RAFT_IO_TIMEOUT_NOW, .server_id = 2 };

	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.send(&io, &sreq, &m, NULL), 0);
	cr_assert_eq(rio_poll(&io), 0);
	cr_assert_eq(rio_step(&io), 0);
	io.close(&io, NULL);
	rio_destroy(&io);
}

/* A heap whose fresh blocks hold a pattern, as reused memory would. */
static int fill_byte;

static void *
fill_malloc(void *data, size_t n)
{
	void *p = malloc(n);

	if (p)
		memset(p, fill_byte, n);
	return p;
}

static void
fill_free(void *data, void *p)
{
	free(p);
}

static void *
fill_calloc(void *data, size_t nm, size_t n)
{
	return calloc(nm, n);
}

static void *
fill_realloc(void *data, void *p, size_t n)
{
	return realloc(p, n);
}

static void *
fill_aligned_alloc(void *data, size_t a, size_t n)
{
	return aligned_alloc(a, (n + a - 1) / a * a);
}

static void
fill_aligned_free(void *data, size_t a, void *p)
{
	free(p);
}

/* Bootstraps a store in d with a three-server configuration; entry 1's bytes in *out (malloc'd). */
static size_t
bootstrap_bytes(const char *d, int fill, uint8_t **out)
{
	struct raft_heap          heap = { NULL, fill_malloc, fill_free, fill_calloc, fill_realloc,
		fill_aligned_alloc, fill_aligned_free };
	struct rio_config         cfg = { .dir = d, .clock = fake_clock, .seed = 1 };
	struct raft_configuration conf;
	struct raft_io            io;
	struct raft_entry        *e;
	raft_term                 term;
	raft_id                   vote;
	size_t                    n, len;

	fill_byte = fill;
	raft_heap_set(&heap);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(raft_configuration_add(&conf, 2, "node2", RAFT_VOTER), 0);
	cr_assert_eq(raft_configuration_add(&conf, 3, "node3", RAFT_VOTER), 0);
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.bootstrap(&io, &conf), 0);
	io_load(&io, &term, &vote, &e, &n);
	cr_assert_eq(n, 1);
	len = e[0].buf.len;
	cr_assert_not_null(*out = malloc(len));
	memcpy(*out, e[0].buf.base, len);
	free_entries(e, n);
	io.close(&io, NULL);
	rio_destroy(&io);
	raft_configuration_close(&conf);
	raft_heap_set_default();
	return len;
}

/* The same configuration is the same bytes on disk, whatever the heap held:
 * raft_configuration_encode leaves its padding to 8 bytes uninitialised. */
Test(rio, bootstrap_writes_no_stray_bytes)
{
	char     d2[128];
	uint8_t *a, *b;
	size_t   na, nb;

	snprintf(d2, sizeof(d2), "%s/b", dir);
	na = bootstrap_bytes(dir, 0xa5, &a);
	nb = bootstrap_bytes(d2, 0x5a, &b);
	cr_assert_eq(na, nb);
	for (size_t i = 0; i < na; i++)
		cr_assert_eq(a[i], b[i], "configuration byte %zu of %zu: 0x%02x, then 0x%02x", i, na,
		    a[i], b[i]);
	free(a);
	free(b);
	rm_dir(d2);
}

/* ---- fsync modes ---- */

/* Counts the store's syncs (data, directory, metadata) through its fault hook. */
static int hook_syncs;

static int
counting_sync(void *arg, int fd)
{
	hook_syncs++;
	return failing_sync(arg, fd);
}

/* Each append callback notes how many syncs were done when it ran. */
static struct raft_io *cb_io;
static uint64_t        boot_bytes; /* the configuration entry's */
static uint64_t        syncs_at_cb[64];
static int             ncb, cb_status;

static void
noting_cb(struct raft_io_append *req, int status)
{
	struct rio_stats st;

	rio_stats(cb_io, &st);
	cr_assert_lt(ncb, 64);
	syncs_at_cb[ncb++] = st.syncs;
	cb_status = status;
}

static int ticks;

static void
count_tick(struct raft_io *io)
{
	ticks++;
}

/* A bootstrapped io in mode m (one entry, synced: syncs 1). */
static void
mode_open(struct raft_io *io, enum rio_fsync m, uint64_t interval)
{
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.segment_size = 256, .fsync = m, .fsync_interval_ms = interval };
	struct raft_configuration conf;
	struct store_fault        h = { full_pwrite, counting_sync, NULL };
	struct rio_stats          st;

	full = sync_fails = false;
	hook_syncs = ncb = 0;
	cb_io = io;
	cr_assert_eq(rio_create(io, &cfg), 0);
	cr_assert_eq(io->init(io, 1, "node1"), 0);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io->bootstrap(io, &conf), 0);
	raft_configuration_close(&conf);
	store_set_fault(rio_store(io), &h);
	rio_stats(io, &st);
	cr_assert_eq(st.syncs, 1);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.appends, 0);
	cr_assert_gt(st.bytes, 25);
	boot_bytes = st.bytes;
}

/* io->append of one 10-byte entry "entry-%04d" (35 bytes on disk). */
static void
mode_append(struct raft_io *io, struct raft_io_append *req, int i)
{
	static char       bufs[64][20]; /* room for any int: the compiler cannot see i < 64 */
	struct raft_entry e = { .term = 1, .type = RAFT_COMMAND };

	cr_assert_lt(i, 64);
	snprintf(bufs[i], sizeof(bufs[i]), "entry-%04d", i);
	e.buf = (struct raft_buffer){ bufs[i], 10 };
	cr_assert_eq(io->append(io, req, &e, 1, noting_cb), 0, "%s", io->errmsg);
}

static void
mode_close(struct raft_io *io)
{
	io->close(io, NULL);
	rio_destroy(io);
}

/* The entries 2..last on disk are entry-0000.. (reopened in always mode). */
static void
expect_on_disk(uint64_t last)
{
	struct rio_config cfg = { .dir = dir, .clock = fake_clock, .seed = 1 };
	struct raft_io    io;
	struct raft_entry *e;
	raft_term         term;
	raft_id           vote;
	size_t            n;

	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	io_load(&io, &term, &vote, &e, &n);
	cr_assert_eq(n, last);
	for (size_t i = 1; i < n; i++) {
		char s[32];

		snprintf(s, sizeof(s), "entry-%04zu", i - 1);
		cr_assert(e[i].buf.len == 10 && memcmp(e[i].buf.base, s, 10) == 0, "entry %zu", i + 1);
	}
	free_entries(e, n);
	mode_close(&io);
}

Test(rio, fsync_always_one_sync_per_step_before_the_callbacks)
{
	struct raft_io        io;
	struct raft_io_append req[20];
	struct rio_stats      st;

	mode_open(&io, RIO_FSYNC_ALWAYS, 0);
	for (int i = 0; i < 3; i++)
		mode_append(&io, &req[i], i);
	cr_assert_eq(ncb, 0, "written, not completed");
	cr_assert_eq(hook_syncs, 0);
	cr_assert_eq(rio_poll(&io), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(syncs_at_cb[i], 2, "callback %d ran before its sync", i);
	cr_assert_eq(hook_syncs, 1, "one fdatasync for the three");
	cr_assert_eq(rio_poll(&io), -1, "nothing to do (no tick: not started)");
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(hook_syncs, 1);

	/* Ten more in two steps: two syncs (the segment rolls: +directory). */
	for (int i = 3; i < 8; i++)
		mode_append(&io, &req[i], i);
	cr_assert_eq(rio_step(&io), 0);
	for (int i = 8; i < 13; i++)
		mode_append(&io, &req[i], i);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 13);
	cr_assert_eq(syncs_at_cb[7], 3);
	cr_assert_eq(syncs_at_cb[12], 4);
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 4);
	cr_assert_eq(st.appends, 13);
	cr_assert_eq(st.entries, 14);
	cr_assert_eq(st.bytes, boot_bytes + 13 * 35);
	cr_assert_eq(st.snapshots, 0);
	mode_close(&io);
	expect_on_disk(14);
}

Test(rio, fsync_interval_completes_at_once_and_syncs_when_due)
{
	struct raft_io        io;
	struct raft_io_append req[20];
	struct rio_stats      st;

	mode_open(&io, RIO_FSYNC_INTERVAL, 50); /* the bootstrap synced at fake_now */
	fake_now += 10;
	mode_append(&io, &req[0], 0);
	mode_append(&io, &req[1], 1);
	cr_assert_eq(rio_poll(&io), 0, "completions are due");
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 2, "completed without a sync");
	cr_assert_eq(syncs_at_cb[0], 1);
	cr_assert_eq(hook_syncs, 0);
	cr_assert_eq(rio_poll(&io), 40, "the sync is due 50 ms after the last");
	fake_now += 39;
	mode_append(&io, &req[2], 2);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 3);
	cr_assert_eq(syncs_at_cb[2], 1);
	cr_assert_eq(rio_poll(&io), 1);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(hook_syncs, 0, "not due yet");
	fake_now += 1;
	cr_assert_eq(rio_poll(&io), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(hook_syncs, 1, "one sync for the three");
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 2);
	cr_assert_eq(rio_poll(&io), -1, "nothing unsynced");

	/* After a quiet spell, the next step syncs (before completing). */
	fake_now += 1000;
	mode_append(&io, &req[3], 3);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 4);
	cr_assert_eq(syncs_at_cb[3], 3);

	/* With a tick, rio_poll returns the nearer of the two. */
	cr_assert_eq(io.start(&io, 30, count_tick, NULL), 0);
	fake_now += 20;
	mode_append(&io, &req[4], 4);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(rio_poll(&io), 10, "the tick, in 10 ms");
	fake_now += 15;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ticks, 1);
	cr_assert_eq(hook_syncs, 2);
	cr_assert_eq(rio_poll(&io), 15, "the sync, 50 ms after the last");
	fake_now += 15;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(hook_syncs, 3);
	mode_append(&io, &req[5], 5);
	cr_assert_eq(rio_step(&io), 0);

	/* A clean close syncs what is left. */
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 4);
	hook_syncs = 0;
	io.close(&io, NULL);
	cr_assert_gt(hook_syncs, 0);
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 5);
	cr_assert_eq(st.appends, 6);
	cr_assert_eq(st.entries, 7);
	cr_assert_eq(st.bytes, boot_bytes + 6 * 35);
	cr_assert_gt(st.sync_us, 0);
	rio_destroy(&io);
	expect_on_disk(7);
}

/* Never mode: no data sync, ever; term, vote and snapshots still fsync. */
Test(rio, fsync_never_does_no_data_sync)
{
	struct raft_io              io;
	struct raft_io_append       req[30];
	struct raft_io_snapshot_put put;
	struct raft_configuration   conf;
	struct raft_snapshot        sn = { .index = 31, .term = 1, .configuration_index = 1 };
	struct rio_stats            st;

	mode_open(&io, RIO_FSYNC_NEVER, 0);
	for (int i = 0; i < 30; i++) {
		mode_append(&io, &req[i], i);
		if (i % 4 == 0) {
			fake_now += 1000;
			cr_assert_eq(rio_step(&io), 0);
		}
	}
	cr_assert_eq(rio_poll(&io), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 30);
	cr_assert_eq(cb_status, 0);
	cr_assert_eq(rio_poll(&io), -1, "nothing due, ever");
	fake_now += 100000;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(hook_syncs, 0, "no fsync of any kind");
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 1, "the bootstrap's only");
	cr_assert_eq(st.appends, 30);
	cr_assert_eq(st.entries, 31);
	cr_assert_gt(store_nsegments(rio_store(&io)), 3);

	cr_assert_eq(io.set_term(&io, 2), 0);
	cr_assert_gt(hook_syncs, 0, "term and vote are durable");
	hook_syncs = 0;
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	sn.configuration = conf;
	cr_assert_eq(io.snapshot_put(&io, 4, &put, &sn, snap_put_cb), 0, "%s", io.errmsg);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(put_status, 0);
	cr_assert_gt(hook_syncs, 0, "the segments under the snapshot go durably");
	rio_stats(&io, &st);
	cr_assert_eq(st.snapshots, 1);
	cr_assert_eq(st.syncs, 1);
	raft_configuration_close(&conf);

	hook_syncs = 0;
	io.close(&io, NULL);
	cr_assert_eq(hook_syncs, 0, "close leaves it to the kernel");
	rio_destroy(&io);
}

/* Interval mode: a failed sync fences as in always mode. */
Test(rio, fsync_interval_failed_sync_fences)
{
	struct raft_io        io;
	struct raft_io_append req[4];
	struct rio_stats      st;

	mode_open(&io, RIO_FSYNC_INTERVAL, 50);
	fake_now += 10;
	mode_append(&io, &req[0], 0);
	mode_append(&io, &req[1], 1);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 2);
	sync_fails = true;
	fake_now += 40;
	cr_assert_eq(rio_poll(&io), 0);
	mode_append(&io, &req[2], 2);
	cr_assert_eq(rio_step(&io), RAFT_IOERR);
	cr_assert(rio_failed(&io));
	cr_assert(strstr(io.errmsg, "sync") != NULL, "%s", io.errmsg);
	cr_assert_eq(ncb, 2, "the one written before the failed sync is parked");
	sync_fails = false;
	cr_assert_eq(io.append(&io, &req[3], &(struct raft_entry){ .term = 1,
	    .type = RAFT_COMMAND, .buf = { "x", 1 } }, 1, noting_cb), 0);
	for (int i = 0; i < 10; i++) {
		fake_now += 100;
		cr_assert_eq(rio_step(&io), 0);
	}
	cr_assert_eq(ncb, 2, "nothing completes while fenced");
	cr_assert_eq(rio_poll(&io), -1);
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 1, "the failed one is not counted");
	io.close(&io, NULL);
	cr_assert_eq(ncb, 4, "released at close");
	rio_destroy(&io);
}

/* libraft on top: interval and never modes commit and apply, with far
 * fewer syncs than entries; a restart after a clean close has it all. */
static void
mode_commits(enum rio_fsync m, uint64_t max_syncs)
{
	static struct node n;
	struct req         q[40];
	int                ids[40];
	struct rio_stats   st;

	fsync_mode = m;
	fsync_interval = 200;
	node_open(&n, true);
	until_leader(&n);
	for (int i = 0; i < 40; i++) {
		apply(&n, &q[i], i);
		ids[i] = i;
		step(&n);
	}
	until_done(&n, q, 40);
	for (int i = 0; i < 40; i++)
		cr_assert_eq(q[i].status, 0);
	expect_applied(&n, ids, 40);
	rio_stats(&n.io, &st);
	cr_assert_geq(st.entries, 41);
	cr_assert_leq(st.syncs, max_syncs, "%llu syncs", (unsigned long long)st.syncs);
	node_close(&n);
	node_open(&n, false);
	until_leader(&n);
	for (int i = 0; i < 20; i++)
		step(&n);
	expect_applied(&n, ids, 40);
	node_close(&n);
	fsync_mode = RIO_FSYNC_ALWAYS;
}

Test(rio, fsync_interval_with_raft)
{
	/* 40 steps of 10 ms: a sync every 200 ms, the bootstrap's, close's. */
	mode_commits(RIO_FSYNC_INTERVAL, 6);
}

Test(rio, fsync_never_with_raft)
{
	mode_commits(RIO_FSYNC_NEVER, 1);
}

/* ---- syncs on rio's thread (rio_config.wake) ---- */

/* The sync hook waits at a gate the test opens: a disk as slow as we like. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  gate_cv = PTHREAD_COND_INITIALIZER;
static int             gate_open, gate_waiting, wakes;

static int
gated_sync(void *arg, int fd)
{
	pthread_mutex_lock(&gate_mu);
	gate_waiting++;
	pthread_cond_broadcast(&gate_cv);
	while (gate_open == 0)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_open--;
	gate_waiting--;
	pthread_mutex_unlock(&gate_mu);
	return fsync(fd);
}

static void
gate_pass(int n)
{
	pthread_mutex_lock(&gate_mu);
	gate_open += n;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

/* Waits (bounded) until the sync thread sits at the gate. */
static void
gate_reached(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&gate_mu);
	while (gate_waiting == 0)
		cr_assert_eq(pthread_cond_timedwait(&gate_cv, &gate_mu, &ts), 0,
		    "the sync thread never reached the disk");
	pthread_mutex_unlock(&gate_mu);
}

static void
count_wake(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&wakes, 1, __ATOMIC_SEQ_CST);
}

/* Steps (bounded: 10 s) until *counter reaches n. */
static void
step_until(struct raft_io *io, const int *counter, int n)
{
	for (int i = 0; i < 10000 && *counter < n; i++) {
		if (rio_poll(io) == 0)
			cr_assert_eq(rio_step(io), 0, "%s", io->errmsg);
		else
			usleep(1000);
	}
}

/* Steps until the sync that is running finished and was collected (bounded). */
static void
until_collected(struct raft_io *io, int ncb_expected)
{
	step_until(io, &ncb, ncb_expected);
	cr_assert_eq(ncb, ncb_expected, "completed %d of %d (poll %lld, waiting %d, open %d, wakes %d)",
	    ncb, ncb_expected, (long long)rio_poll(io), gate_waiting, gate_open, wakes);
}

Test(rio, threaded_syncs_complete_appends_after_their_sync_and_group_the_next)
{
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.fsync = RIO_FSYNC_ALWAYS, .wake = count_wake };
	struct raft_configuration conf;
	struct store_fault        h = { full_pwrite, gated_sync, NULL };
	struct raft_io            io;
	struct raft_io_append     req[20];
	struct rio_stats          st;

	full = sync_fails = false;
	ncb = wakes = gate_open = gate_waiting = 0;
	cb_io = &io;
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io.bootstrap(&io, &conf), 0);
	raft_configuration_close(&conf);
	store_set_fault(rio_store(&io), &h);
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 1);

	/* Three appends: one sync starts, on the thread; nothing completes yet. */
	for (int i = 0; i < 3; i++)
		mode_append(&io, &req[i], i);
	cr_assert_eq(rio_poll(&io), 0);
	cr_assert_eq(rio_step(&io), 0);
	gate_reached();
	cr_assert_eq(ncb, 0, "completed before the disk said so");
	cr_assert_neq(rio_poll(&io), 0, "nothing to do while the sync runs");
	/* Two more while it runs: they wait for the next sync. */
	mode_append(&io, &req[3], 3);
	mode_append(&io, &req[4], 4);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 0);
	/* The disk answers: the first three complete, the next sync takes two. */
	gate_pass(1);
	until_collected(&io, 3);
	cr_assert_geq(__atomic_load_n(&wakes, __ATOMIC_SEQ_CST), 1, "the owner was woken");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(syncs_at_cb[i], 2, "callback %d after sync 2", i);
	gate_reached();
	cr_assert_eq(ncb, 3, "the second group waits for its own sync");
	gate_pass(1);
	until_collected(&io, 5);
	cr_assert_eq(syncs_at_cb[3], 3);
	cr_assert_eq(syncs_at_cb[4], 3);
	rio_stats(&io, &st);
	cr_assert_eq(st.syncs, 3, "two groups, two syncs");
	/* Close with a sync running: it waits for it. */
	mode_append(&io, &req[5], 5);
	cr_assert_eq(rio_step(&io), 0);
	gate_reached();
	gate_pass(100);
	mode_close(&io);
	cr_assert_eq(ncb, 6);
	expect_on_disk(7);
}

/* ---- snapshot work on rio's worker thread (rio_config.wake) ---- */

static int work_ran, work_cb_status = -1, order[8], norder;

/* The snapshot work of the test: it waits at the gate, as a big state would take its time. */
static int
gated_work(struct raft_io_async_work *req)
{
	(void)req;
	(void)gated_sync(NULL, -1);
	__atomic_add_fetch(&work_ran, 1, __ATOMIC_SEQ_CST);
	return 0;
}

static void
bg_work_cb(struct raft_io_async_work *req, int status)
{
	work_cb_status = status;
	order[norder++] = 1;
}

static void
ordered_put_cb(struct raft_io_snapshot_put *req, int status)
{
	put_status = status;
	order[norder++] = 2;
}

static void
ordered_get_cb(struct raft_io_snapshot_get *req, struct raft_snapshot *sn, int status)
{
	got_snap = sn;
	got_status = status;
	order[norder++] = 3;
}

/* Steps (bounded) until n completions came in. */
static void
until_ordered(struct raft_io *io, int n)
{
	step_until(io, &norder, n);
	cr_assert_eq(norder, n, "%d of %d completions (ran %d, poll %lld, wakes %d)", norder, n, work_ran, (long long)rio_poll(io), wakes);
}

/* A bootstrapped node1 of one voter (conf) in io, with n entries appended and completed. */
static void
worker_node(struct raft_io *io, const struct rio_config *cfg, struct raft_configuration *conf,
    struct raft_io_append *req, int n)
{
	cb_io = io;
	cr_assert_eq(rio_create(io, cfg), 0);
	cr_assert_eq(io->init(io, 1, "node1"), 0);
	raft_configuration_init(conf);
	cr_assert_eq(raft_configuration_add(conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io->bootstrap(io, conf), 0);
	for (int i = 0; i < n; i++)
		mode_append(io, &req[i], i);
	cr_assert_eq(rio_step(io), 0);
	cr_assert_eq(ncb, n);
}

/*
 * With a wake, libraft's snapshot work, the put of its own snapshot and a
 * get run on rio's worker, in order: the owner goes on appending (and
 * syncing) while they take their time; each completes at a step after
 * the wake; the segments under the snapshot go when its put is collected.
 */
Test(rio, snapshot_work_put_and_get_run_on_the_worker)
{
	struct rio_config           cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.fsync = RIO_FSYNC_NEVER, .segment_size = 256, .wake = count_wake };
	struct raft_io              io;
	struct raft_configuration   conf;
	struct raft_buffer          buf = { "state", 5 };
	struct raft_snapshot        sn = { .index = 40, .term = 1, .configuration_index = 1,
		.bufs = &buf, .n_bufs = 1 };
	struct raft_io_async_work   work = { .work = gated_work };
	struct raft_io_snapshot_put put;
	struct raft_io_snapshot_get get;
	struct raft_io_append       req[64];
	char                        p[128];

	ncb = wakes = gate_open = gate_waiting = norder = work_ran = 0;
	put_status = got_status = work_cb_status = -1;
	got_snap = NULL;
	worker_node(&io, &cfg, &conf, req, 45);
	cr_assert_gt(store_first(rio_store(&io)), 0);

	/* The work blocks on the worker; the put and the get queue behind it. */
	cr_assert_eq(io.async_work(&io, &work, bg_work_cb), 0);
	gate_reached();
	sn.configuration = conf;
	cr_assert_eq(io.snapshot_put(&io, 2, &put, &sn, ordered_put_cb), 0, "%s", io.errmsg);
	cr_assert_eq(io.snapshot_get(&io, &get, ordered_get_cb), 0, "%s", io.errmsg);
	/* Meanwhile the owner appends and completes as if nothing ran. */
	for (int i = 45; i < 50; i++)
		mode_append(&io, &req[i], i);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ncb, 50, "appends wait for nothing the worker does");
	cr_assert_eq(norder, 0, "nothing completed before the worker did");
	snprintf(p, sizeof(p), "%s/snap", dir);
	cr_assert_neq(access(p, F_OK), 0, "the put ran before the work before it");
	cr_assert_eq(store_first(rio_store(&io)), 1, "no segment dropped yet");

	gate_pass(1);
	until_ordered(&io, 3);
	cr_assert_eq(order[0], 1);
	cr_assert_eq(order[1], 2);
	cr_assert_eq(order[2], 3, "the get read after the put: %d %d %d", order[0], order[1], order[2]);
	cr_assert_eq(work_ran, 1);
	cr_assert_eq(work_cb_status, 0);
	cr_assert_eq(put_status, 0);
	cr_assert_geq(__atomic_load_n(&wakes, __ATOMIC_SEQ_CST), 1, "the owner was woken");
	cr_assert_eq(access(p, F_OK), 0, "no snapshot file");
	cr_assert_gt(store_first(rio_store(&io)), 1, "the segments under index 39 went at collection");
	cr_assert_leq(store_first(rio_store(&io)), 39);
	cr_assert_eq(got_status, 0);
	cr_assert_not_null(got_snap);
	cr_assert_eq(got_snap->index, 40);
	cr_assert(got_snap->bufs[0].len == 5 && memcmp(got_snap->bufs[0].base, "state", 5) == 0);
	free_snap(got_snap);

	/* A close with work still on the worker waits for it and completes it. */
	norder = 0;
	cr_assert_eq(io.async_work(&io, &work, bg_work_cb), 0);
	gate_reached();
	gate_pass(1);
	mode_close(&io);
	cr_assert_eq(norder, 1, "the close completed the work");
	cr_assert_eq(work_ran, 2);
	raft_configuration_close(&conf);
}

/* The stale-tail test: what the transport was handed, what libraft's recv saw. */
static raft_index guard_sent_last, guard_seen_commit, guard_seen_prev;
static int        guard_sends;

static int
guard_transport(void *arg, const struct raft_message *m)
{
	(void)arg;
	if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
		guard_sent_last = m->append_entries_result.last_log_index;
		guard_sends++;
	}
	return 0;
}

/* libraft's recv, as a follower with 9 entries answers an AppendEntries at once. */
static void
guard_recv(struct raft_io *io, struct raft_message *m)
{
	static struct raft_io_send req;
	struct raft_message        res = { .type = RAFT_IO_APPEND_ENTRIES_RESULT };

	guard_seen_commit = m->append_entries.leader_commit;
	guard_seen_prev = m->append_entries.prev_log_index;
	res.append_entries_result.last_log_index = 9;
	cr_assert_eq(io->send(io, &req, &res, NULL), 0);
}

static void
send_result(struct raft_io *io, raft_index last)
{
	static struct raft_io_send req;
	struct raft_message        res = { .type = RAFT_IO_APPEND_ENTRIES_RESULT };

	res.append_entries_result.last_log_index = last;
	cr_assert_eq(io->send(io, &req, &res, NULL), 0);
}

/*
 * rio wires the stale-tail guard (storage/guard.h): an AppendEntries
 * reaches libraft with its leader_commit capped at what it carries, and
 * the answer sent while libraft handles it vouches for no more; an
 * answer sent at another time goes as it is.
 */
/* A started rio of one node whose transport and recv are the guard tests' above. */
static void
guard_io(struct raft_io *io, struct raft_configuration *conf)
{
	static struct rio_transport tr = { guard_transport, NULL };
	struct rio_config           cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.transport = &tr };

	guard_sends = 0;
	cr_assert_eq(rio_create(io, &cfg), 0);
	cr_assert_eq(io->init(io, 1, "node1"), 0);
	raft_configuration_init(conf);
	cr_assert_eq(raft_configuration_add(conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(io->bootstrap(io, conf), 0);
	cr_assert_eq(io->start(io, 100, count_tick, guard_recv), 0);
}

Test(rio, an_answer_vouches_only_for_the_append_entries_it_answers)
{
	struct raft_io            io;
	struct raft_configuration conf;
	struct raft_message       ae = { .type = RAFT_IO_APPEND_ENTRIES };

	guard_io(&io, &conf);
	/* A heartbeat at 5 to a follower whose log runs to 9. */
	ae.append_entries.term = 1;
	ae.append_entries.prev_log_index = 5;
	ae.append_entries.leader_commit = 8;
	rio_recv(&io, &ae);
	cr_assert_eq(guard_sends, 1);
	cr_assert_eq(guard_sent_last, 5, "the answer claimed %llu", (unsigned long long)guard_sent_last);
	cr_assert_eq(guard_seen_commit, 5, "libraft saw leader_commit %llu",
	    (unsigned long long)guard_seen_commit);
	/* Outside a receive (an append stored later): as libraft says. */
	send_result(&io, 9);
	cr_assert_eq(guard_sends, 2);
	cr_assert_eq(guard_sent_last, 9);
	cr_assert_eq(rio_step(&io), 0);
	io.close(&io, NULL);
	rio_destroy(&io);
	raft_configuration_close(&conf);
}

/*
 * rio wires the snapshot-gap fix (storage/guard.h): with a raft attached
 * whose snapshot is at 10 and whose log holds nothing else, an
 * AppendEntries at 5 reaches libraft at 10, counted; its leader_commit is
 * capped at 10 after the move.  One at 10 goes as it is.
 */
Test(rio, an_append_entries_below_the_snapshot_reaches_libraft_at_the_snapshot)
{
	struct raft_io            io;
	struct raft_configuration conf;
	struct raft_message       ae = { .type = RAFT_IO_APPEND_ENTRIES };
	struct rio_stats          st;
	static struct raft        fake; /* what rio and the guard read of it */

	memset(&fake, 0, sizeof(fake));
	fake.state = RAFT_FOLLOWER;
	fake.current_term = 2;
	fake.log.offset = 10;
	fake.log.snapshot.last_index = 10;
	fake.log.snapshot.last_term = 2;
	fake.last_stored = 10;
	guard_io(&io, &conf);
	rio_attach(&io, &fake);
	ae.append_entries.term = 2;
	ae.append_entries.prev_log_index = 5;
	ae.append_entries.prev_log_term = 1;
	ae.append_entries.leader_commit = 12;
	rio_recv(&io, &ae);
	cr_assert_eq(guard_seen_prev, 10, "libraft saw prev %llu", (unsigned long long)guard_seen_prev);
	cr_assert_eq(guard_seen_commit, 10);
	rio_stats(&io, &st);
	cr_assert_eq(st.gap_fixes, 1);
	ae.append_entries.prev_log_index = 10;
	ae.append_entries.prev_log_term = 2;
	rio_recv(&io, &ae);
	cr_assert_eq(guard_seen_prev, 10);
	rio_stats(&io, &st);
	cr_assert_eq(st.gap_fixes, 1);
	io.close(&io, NULL);
	rio_destroy(&io);
	raft_configuration_close(&conf);
}

/* The prepare hook of the next test: where and with what it ran, what it made. */
static pthread_t prep_thread;
static int       prepared_n, discarded_n;
static char      prepared_copy[16];

static void *
test_prepare(void *arg, const void *data, size_t len)
{
	(void)arg;
	prep_thread = pthread_self();
	snprintf(prepared_copy, sizeof(prepared_copy), "%.*s", (int)len, (const char *)data);
	__atomic_add_fetch(&prepared_n, 1, __ATOMIC_SEQ_CST);
	return strdup("parsed");
}

static void
test_discard(void *arg, void *p)
{
	(void)arg;
	discarded_n++;
	free(p);
}

/* Opens the gate after 200 ms, from a thread of its own (the owner is blocked). */
static void *
late_gate(void *arg)
{
	(void)arg;
	usleep(200000);
	gate_pass(1);
	return NULL;
}

/*
 * With a wake, a snapshot installed from a leader (trailing 0) is written
 * on the worker and prepared there (cfg.prepare, off the owner's thread);
 * the log it replaces goes when it is collected, and an append meanwhile
 * waits for it and lands after the snapshot.  What was prepared goes to
 * whoever claims it for the same data, and to discard at close if nobody did.
 */
Test(rio, an_installed_snapshot_is_written_and_prepared_on_the_worker)
{
	struct rio_config           cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.fsync = RIO_FSYNC_NEVER, .segment_size = 256, .wake = count_wake,
		.prepare = test_prepare, .discard = test_discard };
	struct raft_io              io;
	struct raft_configuration   conf;
	struct raft_buffer          buf = { "state", 5 }, buf2 = { "newer", 5 };
	struct raft_snapshot        sn = { .index = 100, .term = 3, .configuration_index = 1,
		.bufs = &buf, .n_bufs = 1 }, sn2 = sn;
	struct raft_io_async_work   work = { .work = gated_work };
	struct raft_io_snapshot_put put, put2;
	struct raft_io_append       req[16];
	struct raft_snapshot       *ls;
	struct raft_entry          *e;
	raft_index                  start;
	raft_term                   term;
	raft_id                     vote;
	pthread_t                   th;
	size_t                      n;
	char                        p[128], *got;

	ncb = wakes = gate_open = gate_waiting = norder = work_ran = 0;
	prepared_n = discarded_n = 0;
	put_status = work_cb_status = -1;
	worker_node(&io, &cfg, &conf, req, 10);
	cr_assert_eq(store_last(rio_store(&io)), 11);

	/* The worker is busy: the install waits behind that, and the put returns at once. */
	cr_assert_eq(io.async_work(&io, &work, bg_work_cb), 0);
	gate_reached();
	sn.configuration = conf;
	cr_assert_eq(io.snapshot_put(&io, 0, &put, &sn, ordered_put_cb), 0, "%s", io.errmsg);
	snprintf(p, sizeof(p), "%s/snap", dir);
	cr_assert_neq(access(p, F_OK), 0, "written on the owner's thread");
	cr_assert_eq(store_last(rio_store(&io)), 11, "the log goes when the put is collected");
	cr_assert_null(rio_take_prepared(&io, buf.base), "prepared before it was written");
	gate_pass(1);
	until_ordered(&io, 2);
	cr_assert_eq(order[1], 2);
	cr_assert_eq(put_status, 0);
	cr_assert_eq(access(p, F_OK), 0, "no snapshot file");
	cr_assert_eq(store_last(rio_store(&io)), 0, "the install replaces the whole log");
	cr_assert_eq(prepared_n, 1);
	cr_assert_not(pthread_equal(prep_thread, pthread_self()), "prepared on the owner's thread");
	cr_assert_str_eq(prepared_copy, "state");
	cr_assert_null(rio_take_prepared(&io, buf2.base), "claimed for other data");
	cr_assert_not_null(got = rio_take_prepared(&io, buf.base));
	cr_assert_str_eq(got, "parsed");
	free(got);
	cr_assert_null(rio_take_prepared(&io, buf.base), "claimed twice");

	/* An append while an install is on the worker waits for it. */
	norder = 0;
	cr_assert_eq(io.async_work(&io, &work, bg_work_cb), 0);
	gate_reached();
	sn2.index = 200;
	sn2.bufs = &buf2;
	sn2.configuration = conf;
	cr_assert_eq(io.snapshot_put(&io, 0, &put2, &sn2, ordered_put_cb), 0, "%s", io.errmsg);
	cr_assert_eq(pthread_create(&th, NULL, late_gate, NULL), 0);
	mode_append(&io, &req[10], 10);
	pthread_join(th, NULL);
	cr_assert_eq(store_last(rio_store(&io)), 201, "the append went before the install");
	until_ordered(&io, 2);
	step_until(&io, &ncb, 11);
	cr_assert_eq(ncb, 11);
	cr_assert_eq(put_status, 0);
	cr_assert_eq(prepared_n, 2);
	cr_assert_eq(discarded_n, 0);
	mode_close(&io);
	cr_assert_eq(discarded_n, 1, "what nobody claimed went at close");

	/* On disk: the second snapshot, then the append. */
	cfg.wake = NULL;
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.load(&io, &term, &vote, &ls, &start, &e, &n), 0, "%s", io.errmsg);
	cr_assert_not_null(ls);
	cr_assert_eq(ls->index, 200);
	cr_assert_eq(start, 201);
	cr_assert_eq(n, 1);
	free_entries(e, n);
	free_snap(ls);
	io.close(&io, NULL);
	rio_destroy(&io);
	raft_configuration_close(&conf);
}

/* The transport of the next test: where each message was handed over. */
static pthread_t owner_thread;
static int       sent_here, sent_elsewhere, sent_snapshot_bytes;

static int
thread_send(void *arg, const struct raft_message *m)
{
	(void)arg;
	if (pthread_equal(pthread_self(), owner_thread))
		sent_here++;
	else
		sent_elsewhere++;
	if (m->type == RAFT_IO_INSTALL_SNAPSHOT)
		sent_snapshot_bytes = (int)m->install_snapshot.data.len;
	return 0;
}

static int sends_done, sends_status = -1;

static void
counting_send_cb(struct raft_io_send *req, int status)
{
	sends_done++;
	sends_status = status;
}

/*
 * With a wake, a snapshot (the whole state) goes to the transport on the
 * worker, its callback (which frees libraft's buffers) after that; every
 * other message on the owner's thread, as before.
 */
Test(rio, a_snapshot_is_sent_from_the_worker_the_rest_from_the_owner)
{
	struct rio_transport      tr = { thread_send, NULL };
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.fsync = RIO_FSYNC_NEVER, .wake = count_wake, .transport = &tr };
	struct raft_io            io;
	struct raft_io_send       s1, s2;
	struct raft_message       ae = { .type = RAFT_IO_APPEND_ENTRIES, .server_id = 2,
		.server_address = "node2" };
	struct raft_message       is = { .type = RAFT_IO_INSTALL_SNAPSHOT, .server_id = 2,
		.server_address = "node2" };
	static char               state[1000];

	owner_thread = pthread_self();
	sent_here = sent_elsewhere = sends_done = 0;
	is.install_snapshot.data = (struct raft_buffer){ state, sizeof(state) };
	raft_configuration_init(&is.install_snapshot.conf);
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.send(&io, &s1, &ae, counting_send_cb), 0);
	cr_assert_eq(sent_here, 1, "an append goes at once, from here");
	cr_assert_eq(io.send(&io, &s2, &is, counting_send_cb), 0);
	for (int i = 0; i < 10000 && sends_done < 2; i++) {
		if (rio_poll(&io) == 0)
			cr_assert_eq(rio_step(&io), 0, "%s", io.errmsg);
		else
			usleep(1000);
	}
	cr_assert_eq(sends_done, 2);
	cr_assert_eq(sends_status, 0);
	cr_assert_eq(sent_elsewhere, 1, "the snapshot went from the worker");
	cr_assert_eq(sent_here, 1);
	cr_assert_eq(sent_snapshot_bytes, (int)sizeof(state));
	io.close(&io, NULL);
	rio_destroy(&io);
}

static int
refusing_send(void *arg, const struct raft_message *m)
{
	(void)arg;
	(void)m;
	return RAFT_NOCONNECTION;
}

/*
 * A transport that refuses everything: an AppendEntries is reported to
 * libraft as sent (lost on the way; libraft 0.15 would otherwise send a
 * new leader's whole snapshot to the node), and counted; any other
 * message's refusal is reported as it is.
 */
Test(rio, an_append_entries_the_links_refuse_is_lost_not_failed)
{
	struct rio_transport tr = { refusing_send, NULL };
	struct rio_config    cfg = { .dir = dir, .clock = fake_clock, .seed = 1,
		.fsync = RIO_FSYNC_NEVER, .transport = &tr };
	struct raft_io       io;
	struct raft_io_send  s1, s2;
	struct raft_message  ae = { .type = RAFT_IO_APPEND_ENTRIES, .server_id = 2,
		.server_address = "node2" };
	struct raft_message  rv = { .type = RAFT_IO_REQUEST_VOTE, .server_id = 2,
		.server_address = "node2" };
	struct rio_stats     st;

	sends_done = 0;
	sends_status = -1;
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.send(&io, &s1, &ae, counting_send_cb), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(sends_done, 1);
	cr_assert_eq(sends_status, 0);
	cr_assert_eq(io.send(&io, &s2, &rv, counting_send_cb), 0);
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(sends_done, 2);
	cr_assert_eq(sends_status, RAFT_NOCONNECTION);
	rio_stats(&io, &st);
	cr_assert_eq(st.appends_lost, 1);
	io.close(&io, NULL);
	rio_destroy(&io);
}

/* A completion that takes its time, as installing a big snapshot does. */
static void
slow_work_cb(struct raft_io_async_work *req, int status)
{
	fake_now += 700;
}

static int
noop_work(struct raft_io_async_work *req)
{
	return 0;
}

/*
 * After a step that ran longer than a tick, the tick waits one more
 * interval: the owner reads what came meanwhile (a follower's heartbeats)
 * before libraft looks at its election timer.
 */
Test(rio, a_long_step_puts_the_tick_after_the_owner_reads)
{
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 1 };
	struct raft_io            io;
	struct raft_io_async_work w = { .work = noop_work };

	ticks = 0;
	cr_assert_eq(rio_create(&io, &cfg), 0);
	cr_assert_eq(io.init(&io, 1, "node1"), 0);
	cr_assert_eq(io.start(&io, 100, count_tick, NULL), 0);
	fake_now += 100;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ticks, 1);
	/* A quick completion: the tick comes when due. */
	cr_assert_eq(io.async_work(&io, &w, NULL), 0);
	fake_now += 100;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ticks, 2);
	/* A slow one: no tick in that step, one interval later. */
	cr_assert_eq(io.async_work(&io, &w, slow_work_cb), 0);
	fake_now += 100;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ticks, 2, "the tick waits for the owner to read");
	cr_assert_eq(rio_poll(&io), 100);
	fake_now += 100;
	cr_assert_eq(rio_step(&io), 0);
	cr_assert_eq(ticks, 3);
	io.close(&io, NULL);
	rio_destroy(&io);
}

/* ---- invariants at the boundary: libraft's asserts are compiled out ---- */

/* A leader of one with five commands committed and applied. */
static void
committed_node(struct node *n)
{
	struct req q[5];

	node_open(n, true);
	until_leader(n);
	for (int i = 0; i < 5; i++)
		apply(n, &q[i], i);
	until_done(n, q, 5);
	step(n);
	cr_assert_eq(n->raft.commit_index, store_last(rio_store(&n->io)));
}

/* The owner's view of a broken invariant: rio_step fails, rio_failed, errmsg says which. */
static void
expect_stopped(struct node *n, const char *what)
{
	fake_now += 10;
	cr_assert_eq(rio_step(&n->io), RAFT_CORRUPT, "%s", n->io.errmsg);
	cr_assert(rio_failed(&n->io));
	cr_assert_eq(rio_poll(&n->io), 0, "the owner is not called to step again");
	cr_assert_eq(rio_step(&n->io), RAFT_CORRUPT);
	cr_assert_not_null(strstr(n->io.errmsg, "raft invariant broken"), "%s", n->io.errmsg);
	cr_assert_not_null(strstr(n->io.errmsg, what), "%s", n->io.errmsg);
}

Test(rio, invariant_a_truncate_at_or_below_the_commit_index_stops_the_node)
{
	static struct node n;
	uint64_t           last;

	committed_node(&n);
	last = store_last(rio_store(&n.io));
	cr_assert_eq(n.io.truncate(&n.io, last), RAFT_CORRUPT);
	cr_assert_eq(store_last(rio_store(&n.io)), last, "a committed entry was cut");
	expect_stopped(&n, "at or below the commit index");
	node_close(&n);
}

Test(rio, invariant_the_commit_index_going_back_stops_the_node)
{
	static struct node n;
	raft_index         c;

	committed_node(&n);
	c = n.raft.commit_index;
	n.raft.commit_index = c - 2; /* as a libraft bug would */
	expect_stopped(&n, "the commit index went back");
	n.raft.commit_index = c;
	node_close(&n);
}

Test(rio, invariant_the_applied_index_going_back_stops_the_node)
{
	static struct node n;
	raft_index         a;

	committed_node(&n);
	a = n.raft.last_applied;
	n.raft.last_applied = a - 1;
	expect_stopped(&n, "the applied index went back");
	n.raft.last_applied = a;
	node_close(&n);
}

static void
noop_append_cb(struct raft_io_append *req, int status)
{
	(void)req;
	(void)status;
}

/* An append that does not start right after the log on disk (here: over its last entry). */
Test(rio, invariant_an_append_not_after_the_log_stops_the_node)
{
	static struct node    n;
	struct raft_io_append req;
	struct raft_entry     e = { .term = 2, .type = RAFT_COMMAND };
	uint64_t              last;

	committed_node(&n);
	last = store_last(rio_store(&n.io));
	e.buf.base = "x";
	e.buf.len = 1;
	/* libraft's log ends where the disk's does: these would be entry "last" again. */
	cr_assert_eq(n.io.append(&n.io, &req, &e, 1, noop_append_cb), RAFT_CORRUPT);
	cr_assert_eq(store_last(rio_store(&n.io)), last);
	expect_stopped(&n, "not after the log on disk");
	node_close(&n);
}

/* ---- a follower in interval mode syncs before it acknowledges ---- */

static struct raft_io *ack_io;
static unsigned        nresults;
static uint64_t        syncs_at_result;
static raft_index      result_last;

static int
capture_send(void *arg, const struct raft_message *m)
{
	struct rio_stats st;

	(void)arg;
	if (m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
		rio_stats(ack_io, &st);
		syncs_at_result = st.syncs;
		result_last = m->append_entries_result.rejected ? 0 :
		    m->append_entries_result.last_log_index;
		nresults++;
	}
	return 0;
}

/*
 * Node 1 of two voters, a follower (its clock never reaches an election),
 * --fsync interval with an interval that never falls due: an
 * AppendEntries from node 2 with one entry is written, and the result
 * that acknowledges it goes out only after a sync that covers it.
 */
Test(rio, fsync_interval_follower_syncs_before_it_acknowledges)
{
	static struct node        n;
	struct rio_transport      tr = { capture_send, NULL };
	struct rio_config         cfg = { .dir = dir, .clock = fake_clock, .seed = 42,
		.fsync = RIO_FSYNC_INTERVAL, .fsync_interval_ms = 1000000, .transport = &tr };
	struct raft_configuration conf;
	struct raft_message       m;
	struct raft_entry        *e;
	struct rio_stats          st;

	memset(&n, 0, sizeof(n));
	linefsm_init(&n.lf);
	cr_assert_eq(rio_create(&n.io, &cfg), 0);
	ack_io = &n.io;
	cr_assert_eq(raft_init(&n.raft, &n.io, &n.lf.fsm, 1, "node1"), 0);
	rio_attach(&n.io, &n.raft);
	raft_configuration_init(&conf);
	cr_assert_eq(raft_configuration_add(&conf, 1, "node1", RAFT_VOTER), 0);
	cr_assert_eq(raft_configuration_add(&conf, 2, "node2", RAFT_VOTER), 0);
	cr_assert_eq(raft_bootstrap(&n.raft, &conf), 0);
	raft_configuration_close(&conf);
	cr_assert_eq(raft_start(&n.raft), 0, "%s", raft_errmsg(&n.raft));
	cr_assert_eq(raft_state(&n.raft), RAFT_FOLLOWER);

	cr_assert_not_null(e = raft_malloc(sizeof(*e)));
	e->term = 2;
	e->type = RAFT_COMMAND;
	e->buf.len = 5;
	cr_assert_not_null(e->buf.base = raft_malloc(5));
	memcpy(e->buf.base, "msg-0", 5);
	e->batch = e->buf.base;
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_APPEND_ENTRIES;
	m.server_id = 2;
	m.server_address = "node2";
	m.append_entries = (struct raft_append_entries){ .term = 2, .prev_log_index = 1,
		.prev_log_term = 1, .leader_commit = 1, .entries = e, .n_entries = 1 };
	rio_stats(&n.io, &st);
	rio_recv(&n.io, &m);
	cr_assert_eq(store_last(rio_store(&n.io)), 2, "the entry is written");
	for (int i = 0; i < 5 && nresults == 0; i++) {
		fake_now += 1;
		cr_assert_eq(rio_step(&n.io), 0, "%s", n.io.errmsg);
	}
	cr_assert_eq(nresults, 1, "no AppendEntries result");
	cr_assert_eq(result_last, 2, "the entry was not acknowledged");
	cr_assert_gt(syncs_at_result, st.syncs, "acknowledged before any sync (%llu syncs)",
	    (unsigned long long)syncs_at_result);
	node_close(&n);
}

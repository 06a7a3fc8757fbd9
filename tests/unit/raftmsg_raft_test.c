/*
 * raftmsg_raft_test.c: three libraft (0.15) nodes on rio whose every
 * message goes through raftmsg_encode and raftmsg_decode, as the cluster
 * links will carry them: an election, replication to every node, and a
 * node cut off long enough to need an InstallSnapshot to catch up.  The
 * raft heap counts live blocks: after the nodes close nothing is left,
 * which shows that what decode allocates is what libraft frees (the one
 * batch per AppendEntries, the snapshot's data and configuration).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "mom.h"
#include "replica/raftmsg.h"
#include "storage/rio.h"
#include "tmpdir.h"
#include "linefsm.h"

#define NODES    3
#define MAXQ     4096

static long heap_live;

static void *
h_malloc(void *d, size_t n)
{
	void *p = malloc(n);

	heap_live += p != NULL;
	return p;
}

static void
h_free(void *d, void *p)
{
	heap_live -= p != NULL;
	free(p);
}

static void *
h_calloc(void *d, size_t n, size_t m)
{
	void *p = calloc(n, m);

	heap_live += p != NULL;
	return p;
}

static void *
h_realloc(void *d, void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!p)
		heap_live += q != NULL;
	else if (n == 0)
		heap_live--;
	return q;
}

static void *
h_aligned_alloc(void *d, size_t a, size_t n)
{
	void *p = aligned_alloc(a, (n + a - 1) / a * a);

	heap_live += p != NULL;
	return p;
}

static void
h_aligned_free(void *d, size_t a, void *p)
{
	heap_live -= p != NULL;
	free(p);
}

static struct raft_heap heap = { NULL, h_malloc, h_free, h_calloc, h_realloc, h_aligned_alloc,
	h_aligned_free };

static uint64_t fake_now = 1000000;

static uint64_t
fake_clock(void *arg)
{
	return fake_now;
}

struct node {
	struct raft          raft;
	struct raft_io       io;
	struct linefsm       lf;
	struct rio_transport tp;
	uint64_t             id;
	char                 addr[32];
	char                 dir[64];
	bool                 cut;    /* its messages, both ways, are lost */
	bool                 closed;
};

static struct node nodes[NODES];
static bool        finished; /* finish() ran */

/* Encoded messages on their way: to, bytes. */
static struct {
	uint64_t to;
	uint8_t *data;
	size_t   len;
} q[MAXQ];
static size_t nq;
static long   sent[RAFT_IO_TIMEOUT_NOW + 1];

static int
tp_send(void *arg, const struct raft_message *m)
{
	struct node   *n = arg;
	struct mom_buf b;

	cr_assert_lt(nq, MAXQ);
	cr_assert(m->server_id >= 1 && m->server_id <= NODES);
	mom_buf_init(&b);
	cr_assert_eq(raftmsg_encode(&b, m, n->id, n->addr), 0);
	sent[m->type]++;
	if (n->cut || nodes[m->server_id - 1].cut) {
		mom_buf_fini(&b);
		return 0; /* lost on the way, as a dead link loses it */
	}
	q[nq].to = m->server_id;
	q[nq].data = mom_buf_steal(&b, &q[nq].len);
	nq++;
	return 0;
}


static void
node_open(struct node *n, uint64_t id)
{
	struct rio_config         cfg = { .clock = fake_clock, .seed = id * 7919 };
	struct raft_configuration conf;
	char                      addr[32];
	int                       rc;

	memset(n, 0, sizeof(*n));
	n->id = id;
	snprintf(n->addr, sizeof(n->addr), "tcp://127.0.0.1:%d", (int)(7421 + id));
	snprintf(n->dir, sizeof(n->dir), "/tmp/raftmsg_raft_test.XXXXXX");
	cr_assert_not_null(mkdtemp(n->dir));
	n->tp = (struct rio_transport){ .send = tp_send, .arg = n };
	cfg.dir = n->dir;
	cfg.transport = &n->tp;
	linefsm_init(&n->lf);
	cr_assert_eq(rio_create(&n->io, &cfg), 0);
	cr_assert_eq(raft_init(&n->raft, &n->io, &n->lf.fsm, id, n->addr), 0);
	rio_attach(&n->io, &n->raft);
	raft_set_snapshot_threshold(&n->raft, 16);
	raft_set_snapshot_trailing(&n->raft, 4);
	raft_configuration_init(&conf);
	for (uint64_t i = 1; i <= NODES; i++) {
		snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", (int)(7421 + i));
		cr_assert_eq(raft_configuration_add(&conf, i, addr, RAFT_VOTER), 0);
	}
	rc = raft_bootstrap(&n->raft, &conf);
	raft_configuration_close(&conf);
	cr_assert_eq(rc, 0, "raft_bootstrap: %s", raft_errmsg(&n->raft));
	rc = raft_start(&n->raft);
	cr_assert_eq(rc, 0, "raft_start: %s", raft_errmsg(&n->raft));
}

static void
close_cb(struct raft *r)
{
	((struct node *)r)->closed = true; /* raft is the first member */
}

static void
node_close(struct node *n)
{
	raft_close(&n->raft, close_cb);
	cr_assert(n->closed);
	rio_destroy(&n->io);
	linefsm_clear(&n->lf);
	rm_dir(n->dir);
}

/* 10 ms of fake time: every io steps, then what was sent arrives. */
static void
round_trip(void)
{
	size_t n = nq;

	fake_now += 10;
	for (int i = 0; i < NODES; i++)
		cr_assert_eq(rio_step(&nodes[i].io), 0, "node %d: %s", i + 1, nodes[i].io.errmsg);
	n = nq;
	for (size_t i = 0; i < n; i++) {
		struct raft_message m;
		char                addr[RAFTMSG_MAX_ADDR + 1];
		struct node        *to = &nodes[q[i].to - 1];

		cr_assert_eq(raftmsg_decode(q[i].data, q[i].len, &m, addr, sizeof(addr)), 0);
		free(q[i].data);
		cr_assert_str_eq(m.server_address, nodes[m.server_id - 1].addr);
		if (to->cut)
			raftmsg_release(&m);
		else
			rio_recv(&to->io, &m); /* libraft's now */
	}
	/* Sent while delivering: next round. */
	memmove(q, q + n, (nq - n) * sizeof(q[0]));
	nq -= n;
}

static struct node *
leader(void)
{
	for (int i = 0; i < NODES; i++)
		if (!nodes[i].cut && raft_state(&nodes[i].raft) == RAFT_LEADER)
			return &nodes[i];
	return NULL;
}

static struct node *
until_leader(void)
{
	for (int i = 0; i < 3000 && !leader(); i++)
		round_trip();
	cr_assert_not_null(leader(), "no leader elected");
	return leader();
}

static void
apply_cb(struct raft_apply *a, int status, void *result)
{
	*(int *)a->data = status;
}

/* Commands "cmd-<first>".. "cmd-<first + n - 1>", one by one, each committed. */
static void
apply_n(int first, int n)
{
	for (int i = first; i < first + n; i++) {
		struct raft_apply  a;
		struct raft_buffer b;
		struct node       *l = until_leader();
		char               s[32];
		int                st = -1, rc;

		snprintf(s, sizeof(s), "cmd-%d", i);
		b.len = strlen(s);
		cr_assert_not_null(b.base = raft_malloc(b.len));
		memcpy(b.base, s, b.len);
		a.data = &st;
		rc = raft_apply(&l->raft, &a, &b, 1, apply_cb);
		cr_assert_eq(rc, 0, "raft_apply: %s", raft_errmsg(&l->raft));
		for (int k = 0; k < 3000 && st == -1; k++)
			round_trip();
		cr_assert_eq(st, 0, "cmd-%d: %d", i, st);
	}
}

/* Every node that is not cut off has applied cmd-0 .. cmd-<n - 1>. */
static void
until_applied_everywhere(int n)
{
	for (int k = 0; k < 3000; k++) {
		int done = 0;

		for (int i = 0; i < NODES; i++)
			done += nodes[i].lf.napplied == (size_t)n;
		if (done == NODES)
			break;
		round_trip();
	}
	for (int i = 0; i < NODES; i++) {
		cr_assert_eq(nodes[i].lf.napplied, (size_t)n, "node %d applied %zu of %d", i + 1,
		    nodes[i].lf.napplied, n);
		for (int j = 0; j < n; j++) {
			char s[32];

			snprintf(s, sizeof(s), "cmd-%d", j);
			cr_assert_str_eq(nodes[i].lf.applied[j], s, "node %d, command %d", i + 1, j);
		}
	}
}

static void
setup(void)
{
	heap_live = 0;
	finished = false;
	raft_heap_set(&heap);
	memset(sent, 0, sizeof(sent));
	for (int i = 0; i < NODES; i++)
		node_open(&nodes[i], (uint64_t)i + 1);
}

/*
 * Closes the nodes and checks that the raft heap is empty: in the test's
 * body, since criterion does not fail a test for an assertion in .fini.
 */
static void
finish(void)
{
	for (size_t i = 0; i < nq; i++)
		free(q[i].data);
	nq = 0;
	for (int i = 0; i < NODES; i++)
		node_close(&nodes[i]);
	finished = true;
	raft_heap_set_default();
	cr_assert_eq(heap_live, 0, "%ld raft heap blocks left", heap_live);
}

static void
teardown(void)
{
	if (!finished)
		finish();
}

TestSuite(raftmsg_raft, .init = setup, .fini = teardown, .timeout = 60);

Test(raftmsg_raft, three_nodes_elect_and_replicate_through_the_encoding)
{
	until_leader();
	apply_n(0, 40);
	until_applied_everywhere(40);
	cr_assert_gt(sent[RAFT_IO_REQUEST_VOTE], 0);
	cr_assert_gt(sent[RAFT_IO_REQUEST_VOTE_RESULT], 0);
	cr_assert_gt(sent[RAFT_IO_APPEND_ENTRIES], 0);
	cr_assert_gt(sent[RAFT_IO_APPEND_ENTRIES_RESULT], 0);
	finish();
}

Test(raftmsg_raft, a_node_cut_off_catches_up_through_a_snapshot)
{
	struct node *l = until_leader(), *behind = NULL;

	apply_n(0, 5);
	for (int i = 0; i < NODES; i++)
		if (&nodes[i] != l)
			behind = &nodes[i];
	behind->cut = true;
	/* Past the threshold (16) and the trailing (4): the entries it lacks are gone. */
	apply_n(5, 60);
	behind->cut = false;
	until_applied_everywhere(65);
	cr_assert_gt(sent[RAFT_IO_INSTALL_SNAPSHOT], 0);
	cr_assert_gt(behind->lf.restores, 0, "caught up without a snapshot");
	finish();
}

Test(raftmsg_raft, leadership_moves_with_timeout_now)
{
	static struct raft_transfer req; /* libraft keeps it until the transfer ends */
	struct node                *l = until_leader(), *to = NULL;

	apply_n(0, 3);
	for (int i = 0; i < NODES; i++)
		if (&nodes[i] != l)
			to = &nodes[i];
	cr_assert_eq(raft_transfer(&l->raft, &req, to->id, NULL), 0);
	for (int k = 0; k < 3000 && leader() != to; k++)
		round_trip();
	cr_assert_eq(leader(), to);
	cr_assert_gt(sent[RAFT_IO_TIMEOUT_NOW], 0);
	apply_n(3, 3);
	until_applied_everywhere(6);
	finish();
}

/*
 * libraft 0.15 refuses an AppendEntries of an old term by freeing
 * entries[0].batch and the array alone: every entry must be in that batch.
 */
Test(raftmsg_raft, entries_of_an_old_term_are_refused_and_freed_whole)
{
	struct raft_entry   e[3];
	struct raft_message m, d;
	struct mom_buf      b;
	struct node        *l = until_leader(), *f = NULL, *from = NULL;
	char                addr[RAFTMSG_MAX_ADDR + 1];
	long                before;

	apply_n(0, 2);
	for (int i = 0; i < NODES; i++) {
		if (&nodes[i] == l)
			continue;
		if (!f)
			f = &nodes[i];
		else
			from = &nodes[i];
	}
	cr_assert_gt(f->raft.current_term, 1);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_APPEND_ENTRIES;
	m.append_entries.term = 1;
	m.append_entries.prev_log_index = 1;
	m.append_entries.prev_log_term = 1;
	for (int i = 0; i < 3; i++) {
		e[i] = (struct raft_entry){ .term = 1, .type = RAFT_COMMAND,
			.buf = { .base = "stale", .len = 5 } };
	}
	m.append_entries.entries = e;
	m.append_entries.n_entries = 3;
	mom_buf_init(&b);
	cr_assert_eq(raftmsg_encode(&b, &m, from->id, from->addr), 0);
	before = heap_live;
	cr_assert_eq(raftmsg_decode(b.data, b.len, &d, addr, sizeof(addr)), 0);
	cr_assert_gt(heap_live, before);
	rio_recv(&f->io, &d);
	mom_buf_fini(&b);
	/* Its answer (a result, rejected) is queued: what is live is that alone. */
	for (int k = 0; k < 5; k++)
		round_trip();
	apply_n(2, 2);
	until_applied_everywhere(4);
	finish();
}

/*
 * raftpaths_test.c: the libraft 0.15.0 paths known to go wrong, on a
 * cluster of three real libraft nodes in one process.  Each node is a
 * struct raft over its own rio and segment store in its own temporary
 * directory; the rio transport hooks feed an in-memory router (below) that
 * the test's step loop drives on one fake clock shared by every node.  The
 * router can cut links (messages dropped, in flight too), delay them, and
 * hold a node (paused: neither stepped nor delivered to) so that the
 * order of events is the test's choice, not the scheduler's.
 *
 * The paths: election and replication with a restart from disk; a
 * partitioned leader's uncommitted entries truncated and replaced (on disk
 * too) and their raft_apply failed; a snapshot taken with entries in
 * flight, a lagging follower caught up by InstallSnapshot; a follower
 * whose append fails (ENOSPC on write, EIO on sync); a new term arriving
 * while a follower installs a snapshot.  And one property of 0.15.0 met
 * on the way: under steady load a leader commits nothing until a follower
 * acknowledges its last stored entry.
 *
 * What 0.15.0 does on each is written at each test.  RAFTPATHS_TRACE=1 in
 * the environment prints every message the router carries.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mom.h"
#include "storage/rio.h"
#include "tmpdir.h"

#define NNODES       3
#define STEP_MS      5u   /* fake time per step */
#define HEARTBEAT_MS 20u  /* also rio's tick */
#define ELECTION_MS  100u /* randomized by libraft to 100..200 */

/* ---- the nodes ---- */

struct node {
	struct raft          raft; /* first: close_cb casts */
	struct raft_io       io;
	struct raft_fsm      fsm;
	struct rio_transport tr;
	unsigned             id; /* 1..NNODES */
	char                 dir[64];
	char                 addr[16];
	bool                 up;     /* raft started, not closed */
	bool                 closed; /* close_cb ran */
	bool                 paused; /* neither stepped nor delivered to */
	int                  io_err; /* first error rio_step returned since start */
	/* Faults on the store's segment files (the log), not on its metadata. */
	bool                 fail_write; /* ENOSPC */
	bool                 fail_sync;  /* EIO */
	unsigned             nfaults;
	/* The fsm: the commands applied, in order. */
	char               **applied;
	size_t               napplied, capapplied;
	unsigned             nsnapshots, nrestores;
	/* Snapshots taken while entries were not yet on its disk, and while
	 * AppendEntries with entries it sent were still on their way. */
	unsigned             snap_unstored, snap_in_air;
	unsigned             starts;
};

static struct node nodes[NNODES + 1]; /* [0] unused */
static uint64_t    fake_now;
static uint64_t    seg_size;
static unsigned    snap_threshold, snap_trailing;
static bool        trace;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* ---- the router ---- */

static const char *const type_name[] = { "?", "append", "append-result", "vote", "vote-result",
	"install-snapshot", "timeout-now" };
#define NTYPES 7

struct envelope {
	struct envelope    *next;
	uint64_t            seq;
	uint64_t            at; /* due on the fake clock */
	unsigned            from, to;
	struct raft_message m; /* a deep copy, owned until delivered */
};

static struct {
	struct envelope  *head, **tailp;
	uint64_t          seq;
	bool              cut[NNODES + 1][NNODES + 1];   /* [from][to]: dropped */
	unsigned          delay[NNODES + 1][NNODES + 1]; /* ms */
	unsigned          pause_on_install;              /* node paused when a snapshot is sent to it */
	unsigned          sent[NTYPES], dropped[NTYPES];
	unsigned          delivered[NNODES + 1][NTYPES];
	unsigned          bad_dest; /* sends to an id outside the cluster */
	raft_id           bad_dest_id;
	/* The last messages a node sent, for tests that look at them. */
	struct raft_message last_sent[NNODES + 1][NTYPES];
} net;

static unsigned
mtype(const struct raft_message *m)
{
	return m->type < NTYPES ? m->type : 0;
}

static void
msg_free(struct raft_message *m)
{
	switch (m->type) {
	case RAFT_IO_APPEND_ENTRIES:
		if (m->append_entries.n_entries > 0)
			raft_free(m->append_entries.entries[0].batch);
		raft_free(m->append_entries.entries);
		break;
	case RAFT_IO_INSTALL_SNAPSHOT:
		raft_configuration_close(&m->install_snapshot.conf);
		raft_free(m->install_snapshot.data.base);
		break;
	}
}

/*
 * A deep copy of m in the form libraft expects to receive: what libraft
 * passes to io->send is borrowed for the call only (its entries stay
 * referenced until the send callback, but rio's hook promises nothing past
 * the call), while what io's recv callback hands to libraft is consumed by
 * it: the entries array and every batch (entryBatchesDestroy frees each
 * distinct batch, then the array; entries NULL when n_entries is 0), a
 * snapshot's configuration and data.  raft_malloc throughout.
 */
static int
msg_copy(struct raft_message *dst, const struct raft_message *src)
{
	*dst = *src;
	switch (src->type) {
	case RAFT_IO_APPEND_ENTRIES: {
		const struct raft_append_entries *a = &src->append_entries;
		struct raft_entry                *e;
		size_t                            len = 0, off = 0;
		uint8_t                          *batch;

		dst->append_entries.entries = NULL;
		if (a->n_entries == 0)
			return 0;
		for (unsigned i = 0; i < a->n_entries; i++)
			len += a->entries[i].buf.len;
		if (!(e = raft_malloc(a->n_entries * sizeof(*e))))
			return RAFT_NOMEM;
		if (!(batch = raft_malloc(len ? len : 1))) {
			raft_free(e);
			return RAFT_NOMEM;
		}
		/* One batch for the message, as the libuv transport decodes it. */
		for (unsigned i = 0; i < a->n_entries; i++) {
			e[i].term = a->entries[i].term;
			e[i].type = a->entries[i].type;
			e[i].buf.base = batch + off;
			e[i].buf.len = a->entries[i].buf.len;
			e[i].batch = batch;
			if (e[i].buf.len)
				memcpy(batch + off, a->entries[i].buf.base, e[i].buf.len);
			off += e[i].buf.len;
		}
		dst->append_entries.entries = e;
		return 0;
	}
	case RAFT_IO_INSTALL_SNAPSHOT: {
		const struct raft_install_snapshot *s = &src->install_snapshot;
		struct raft_install_snapshot       *d = &dst->install_snapshot;

		raft_configuration_init(&d->conf);
		for (unsigned i = 0; i < s->conf.n; i++)
			if (raft_configuration_add(&d->conf, s->conf.servers[i].id,
			    s->conf.servers[i].address, s->conf.servers[i].role) != 0) {
				raft_configuration_close(&d->conf);
				return RAFT_NOMEM;
			}
		if (!(d->data.base = raft_malloc(s->data.len ? s->data.len : 1))) {
			raft_configuration_close(&d->conf);
			return RAFT_NOMEM;
		}
		if (s->data.len)
			memcpy(d->data.base, s->data.base, s->data.len);
		return 0;
	}
	default:
		return 0;
	}
}

static void
trace_msg(const char *what, unsigned from, unsigned to, const struct raft_message *m)
{
	if (!trace)
		return;
	fprintf(stderr, "t=%llu %s %u->%u %s", (unsigned long long)fake_now, what, from, to,
	    type_name[mtype(m)]);
	switch (m->type) {
	case RAFT_IO_APPEND_ENTRIES:
		fprintf(stderr, " term %llu prev %llu/%llu n %u commit %llu",
		    (unsigned long long)m->append_entries.term,
		    (unsigned long long)m->append_entries.prev_log_index,
		    (unsigned long long)m->append_entries.prev_log_term, m->append_entries.n_entries,
		    (unsigned long long)m->append_entries.leader_commit);
		break;
	case RAFT_IO_APPEND_ENTRIES_RESULT:
		fprintf(stderr, " term %llu rejected %llu last %llu",
		    (unsigned long long)m->append_entries_result.term,
		    (unsigned long long)m->append_entries_result.rejected,
		    (unsigned long long)m->append_entries_result.last_log_index);
		break;
	case RAFT_IO_REQUEST_VOTE:
		fprintf(stderr, " term %llu last %llu/%llu disrupt %d",
		    (unsigned long long)m->request_vote.term,
		    (unsigned long long)m->request_vote.last_log_index,
		    (unsigned long long)m->request_vote.last_log_term, m->request_vote.disrupt_leader);
		break;
	case RAFT_IO_REQUEST_VOTE_RESULT:
		fprintf(stderr, " term %llu granted %d", (unsigned long long)m->request_vote_result.term,
		    m->request_vote_result.vote_granted);
		break;
	case RAFT_IO_INSTALL_SNAPSHOT:
		fprintf(stderr, " term %llu last %llu/%llu %zu bytes",
		    (unsigned long long)m->install_snapshot.term,
		    (unsigned long long)m->install_snapshot.last_index,
		    (unsigned long long)m->install_snapshot.last_term, m->install_snapshot.data.len);
		break;
	}
	fputc('\n', stderr);
}

/* rio's transport hook: m is borrowed for this call only. */
static int
net_send_cb(void *arg, const struct raft_message *m)
{
	struct node     *from = arg;
	struct envelope *e;
	unsigned         to = m->server_id <= NNODES ? (unsigned)m->server_id : 0;
	int              rc;

	if (to == 0 || to == from->id) {
		/* 0.15.0 can address a reply to nobody: see new_term_while_installing. */
		net.bad_dest++;
		net.bad_dest_id = m->server_id;
		trace_msg("bad-dest", from->id, (unsigned)m->server_id, m);
		return RAFT_NOCONNECTION;
	}
	net.sent[mtype(m)]++;
	net.last_sent[from->id][mtype(m)] = *m; /* the scalars only */
	if (net.cut[from->id][to]) {
		net.dropped[mtype(m)]++;
		trace_msg("cut", from->id, to, m);
		return 0; /* lost on the way, as on a network */
	}
	if (!(e = calloc(1, sizeof(*e))))
		return RAFT_NOMEM;
	if ((rc = msg_copy(&e->m, m)) != 0) {
		free(e);
		return rc;
	}
	e->seq = net.seq++;
	e->at = fake_now + net.delay[from->id][to];
	e->from = from->id;
	e->to = to;
	*net.tailp = e;
	net.tailp = &e->next;
	trace_msg("send", from->id, to, m);
	if (m->type == RAFT_IO_INSTALL_SNAPSHOT && net.pause_on_install == to) {
		nodes[to].paused = true;
		net.pause_on_install = 0;
	}
	return 0;
}

/* Takes e out of the queue; pp points at the link to it. */
static void
net_unlink(struct envelope **pp, struct envelope *e)
{
	*pp = e->next;
	if (net.tailp == &e->next)
		net.tailp = pp;
	e->next = NULL;
}

/* Hands e's message to its destination (which then owns its contents). */
static void
net_hand(struct envelope *e)
{
	struct node *to = &nodes[e->to];

	if (net.cut[e->from][e->to] || !to->up) {
		net.dropped[mtype(&e->m)]++;
		trace_msg("drop", e->from, e->to, &e->m);
		msg_free(&e->m);
		free(e);
		return;
	}
	/* On receipt server_id and address name the sender. */
	e->m.server_id = e->from;
	e->m.server_address = nodes[e->from].addr;
	net.delivered[e->to][mtype(&e->m)]++;
	trace_msg("recv", e->from, e->to, &e->m);
	rio_recv(&to->io, &e->m);
	free(e);
}

/* Delivers every message due that was queued before this call. */
static void
net_deliver(void)
{
	uint64_t          limit = net.seq;
	struct envelope **pp = &net.head, *e;

	while ((e = *pp) != NULL && e->seq < limit) {
		if (e->at > fake_now || nodes[e->to].paused) {
			pp = &e->next;
			continue;
		}
		net_unlink(pp, e);
		net_hand(e); /* may queue more, after limit */
	}
}

/* The first queued message of that type to that node, or NULL. */
static struct envelope *
net_find(unsigned to, unsigned type, struct envelope ***ppp)
{
	struct envelope **pp;

	for (pp = &net.head; *pp; pp = &(*pp)->next)
		if ((*pp)->to == to && (*pp)->m.type == type) {
			if (ppp)
				*ppp = pp;
			return *pp;
		}
	return NULL;
}

/* Delivers the first queued message of that type to that node now, paused or not. */
static void
net_deliver_one(unsigned to, unsigned type)
{
	struct envelope **pp = NULL, *e = net_find(to, type, &pp);

	cr_assert_not_null(e, "no %s queued for node %u", type_name[type], to);
	net_unlink(pp, e);
	net_hand(e);
}

static void
net_cut(unsigned a, unsigned b, bool cut)
{
	net.cut[a][b] = net.cut[b][a] = cut;
}

/* Cuts (or heals) every link of node a. */
static void
net_isolate(unsigned a, bool cut)
{
	for (unsigned b = 1; b <= NNODES; b++)
		if (b != a)
			net_cut(a, b, cut);
}

static void
net_clear(void)
{
	struct envelope *e;

	while ((e = net.head) != NULL) {
		net.head = e->next;
		msg_free(&e->m);
		free(e);
	}
	memset(&net, 0, sizeof(net));
	net.tailp = &net.head;
}

/* ---- the fsm: the commands applied, in order ---- */

static void
applied_push(struct node *n, const char *s, size_t len)
{
	if (n->napplied == n->capapplied) {
		size_t c = n->capapplied ? n->capapplied * 2 : 64;
		char **v = realloc(n->applied, c * sizeof(*v));

		cr_assert_not_null(v);
		n->applied = v;
		n->capapplied = c;
	}
	cr_assert_not_null(n->applied[n->napplied] = strndup(s, len));
	n->napplied++;
}

static void
applied_clear(struct node *n)
{
	for (size_t i = 0; i < n->napplied; i++)
		free(n->applied[i]);
	free(n->applied);
	n->applied = NULL;
	n->napplied = n->capapplied = 0;
}

static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	applied_push(fsm->data, buf->base, buf->len);
	*result = NULL;
	return 0;
}

/* The snapshot: every command applied, one per line. */
static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct node *n = fsm->data;
	size_t       len = 0, off = 0;
	char        *p;

	for (size_t i = 0; i < n->napplied; i++)
		len += strlen(n->applied[i]) + 1;
	cr_assert_not_null(*bufs = raft_malloc(sizeof(**bufs)));
	cr_assert_not_null(p = raft_malloc(len + 1));
	for (size_t i = 0; i < n->napplied; i++)
		off += (size_t)snprintf(p + off, len + 1 - off, "%s\n", n->applied[i]);
	(*bufs)[0].base = p;
	(*bufs)[0].len = len;
	*n_bufs = 1;
	n->nsnapshots++;
	if (n->raft.last_stored < raft_last_index(&n->raft))
		n->snap_unstored++;
	for (struct envelope *e = net.head; e; e = e->next)
		if (e->from == n->id && e->m.type == RAFT_IO_APPEND_ENTRIES &&
		    e->m.append_entries.n_entries > 0) {
			n->snap_in_air++;
			break;
		}
	if (trace)
		fprintf(stderr, "t=%llu node %u snapshot at %llu, last %llu, stored %llu\n",
		    (unsigned long long)fake_now, n->id, (unsigned long long)n->raft.last_applied,
		    (unsigned long long)raft_last_index(&n->raft),
		    (unsigned long long)n->raft.last_stored);
	return 0;
}

static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct node *n = fsm->data;
	const char  *p = buf->base, *end = p + buf->len;

	for (size_t i = 0; i < n->napplied; i++)
		free(n->applied[i]);
	n->napplied = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		cr_assert_not_null(nl);
		applied_push(n, p, (size_t)(nl - p));
		p = nl + 1;
	}
	n->nrestores++;
	raft_free(buf->base); /* the fsm's on success */
	return 0;
}

/* ---- faults on a node's log files ---- */

static bool
is_segment(int fd)
{
	char link[64], path[512];
	ssize_t k;
	const char *base;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((k = readlink(link, path, sizeof(path) - 1)) < 0)
		return false;
	path[k] = '\0';
	base = strrchr(path, '/');
	return base && strncmp(base + 1, "seg-", 4) == 0;
}

static ssize_t
fault_pwrite(void *arg, int fd, const void *b, size_t n, off_t off)
{
	struct node *nd = arg;

	if (nd->fail_write && is_segment(fd)) {
		nd->nfaults++;
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, b, n, off);
}

static int
fault_sync(void *arg, int fd)
{
	struct node *nd = arg;

	if (nd->fail_sync && is_segment(fd)) {
		nd->nfaults++;
		errno = EIO;
		return -1;
	}
	return fdatasync(fd);
}

/* ---- lifecycle ---- */

static void
close_cb(struct raft *r)
{
	((struct node *)r)->closed = true;
}

static void
node_start(unsigned id, bool bootstrap)
{
	struct node      *n = &nodes[id];
	struct rio_config cfg = { .dir = n->dir, .clock = fake_clock, .clock_arg = NULL,
		.seed = id * 7919u + n->starts * 104729u + 1, .segment_size = seg_size,
		.transport = &n->tr };
	struct store_fault h = { fault_pwrite, fault_sync, n };
	int               rc;

	cr_assert_not(n->up);
	memset(&n->raft, 0, sizeof(n->raft));
	n->tr = (struct rio_transport){ net_send_cb, n };
	n->fsm = (struct raft_fsm){ .version = 1, .data = n, .apply = fsm_apply,
		.snapshot = fsm_snapshot, .restore = fsm_restore };
	n->io_err = 0;
	n->paused = false;
	n->starts++;
	cr_assert_eq(rio_create(&n->io, &cfg), 0);
	rc = raft_init(&n->raft, &n->io, &n->fsm, id, n->addr);
	cr_assert_eq(rc, 0, "node %u: raft_init: %s", id, raft_strerror(rc));
	rio_attach(&n->io, &n->raft);
	store_set_fault(rio_store(&n->io), &h);
	raft_set_election_timeout(&n->raft, ELECTION_MS);
	raft_set_heartbeat_timeout(&n->raft, HEARTBEAT_MS);
	raft_set_snapshot_threshold(&n->raft, snap_threshold);
	raft_set_snapshot_trailing(&n->raft, snap_trailing);
	if (bootstrap) {
		struct raft_configuration conf;

		raft_configuration_init(&conf);
		for (unsigned i = 1; i <= NNODES; i++)
			cr_assert_eq(raft_configuration_add(&conf, i, nodes[i].addr, RAFT_VOTER), 0);
		rc = raft_bootstrap(&n->raft, &conf);
		raft_configuration_close(&conf);
		cr_assert_eq(rc, 0, "node %u: raft_bootstrap: %s", id, raft_errmsg(&n->raft));
	}
	rc = raft_start(&n->raft);
	cr_assert_eq(rc, 0, "node %u: raft_start: %s (%s)", id, raft_strerror(rc),
	    raft_errmsg(&n->raft));
	n->up = true;
}

static void
node_stop(unsigned id)
{
	struct node *n = &nodes[id];

	cr_assert(n->up);
	n->closed = false;
	raft_close(&n->raft, close_cb);
	cr_assert(n->closed, "node %u: raft_close did not complete", id); /* rio closes at once */
	rio_destroy(&n->io);
	n->up = false;
	n->paused = false;
	applied_clear(n); /* rebuilt from the snapshot and the log */
}

static void
start_all(bool bootstrap)
{
	for (unsigned i = 1; i <= NNODES; i++)
		node_start(i, bootstrap);
}


static void
setup(void)
{
	const char *t = getenv("RAFTPATHS_TRACE");

	trace = t && *t && strcmp(t, "0") != 0;
	fake_now = 1000000;
	seg_size = 0;
	snap_threshold = 1u << 30;
	snap_trailing = 128;
	net_clear();
	memset(nodes, 0, sizeof(nodes));
	for (unsigned i = 1; i <= NNODES; i++) {
		nodes[i].id = i;
		snprintf(nodes[i].addr, sizeof(nodes[i].addr), "node%u", i);
		snprintf(nodes[i].dir, sizeof(nodes[i].dir), "/tmp/raftpaths.XXXXXX");
		cr_assert_not_null(mkdtemp(nodes[i].dir));
	}
}

static void
teardown(void)
{
	for (unsigned i = 1; i <= NNODES; i++)
		if (nodes[i].up)
			node_stop(i);
	net_clear(); /* after the stops: nothing is sent while closing */
	for (unsigned i = 1; i <= NNODES; i++) {
		applied_clear(&nodes[i]);
		rm_dir(nodes[i].dir);
	}
}

TestSuite(raftpaths, .init = setup, .fini = teardown, .timeout = 60);

/* ---- driving ---- */

/* One step: the clock moves, due messages are delivered, each running node's io steps. */
static void
step(void)
{
	fake_now += STEP_MS;
	net_deliver();
	for (unsigned i = 1; i <= NNODES; i++) {
		struct node *n = &nodes[i];
		int          rc;

		if (!n->up || n->paused)
			continue;
		if ((rc = rio_step(&n->io)) != 0 && n->io_err == 0) {
			n->io_err = rc;
			cr_log_info("node %u: rio_step: %s (%s)", i, raft_strerror(rc), n->io.errmsg);
		}
	}
}

static const char *
state_name(int s)
{
	static const char *const names[] = { "unavailable", "follower", "candidate", "leader" };

	return s >= 0 && s < 4 ? names[s] : "?";
}

/* Everything a failure message needs to be understood, on stderr. */
static void
dump(const char *why)
{
	fprintf(stderr, "---- %s at t=%llu\n", why, (unsigned long long)fake_now);
	for (unsigned i = 1; i <= NNODES; i++) {
		struct node *n = &nodes[i];

		if (!n->up) {
			fprintf(stderr, "node %u: down\n", i);
			continue;
		}
		fprintf(stderr,
		    "node %u: %s%s term %llu last %llu stored %llu commit %llu applied %llu "
		    "(fsm %zu: last %s) snap %llu store %llu..%llu io_err %d faults %u\n",
		    i, state_name(raft_state(&n->raft)), n->paused ? " (paused)" : "",
		    (unsigned long long)n->raft.current_term,
		    (unsigned long long)raft_last_index(&n->raft),
		    (unsigned long long)n->raft.last_stored, (unsigned long long)n->raft.commit_index,
		    (unsigned long long)raft_last_applied(&n->raft), n->napplied,
		    n->napplied ? n->applied[n->napplied - 1] : "-",
		    (unsigned long long)n->raft.log.snapshot.last_index,
		    (unsigned long long)store_first(rio_store(&n->io)),
		    (unsigned long long)store_last(rio_store(&n->io)), n->io_err, n->nfaults);
	}
	fprintf(stderr, "router: sent");
	for (unsigned t = 1; t < NTYPES; t++)
		fprintf(stderr, " %s %u", type_name[t], net.sent[t]);
	fprintf(stderr, "; dropped");
	for (unsigned t = 1; t < NTYPES; t++)
		fprintf(stderr, " %s %u", type_name[t], net.dropped[t]);
	fprintf(stderr, "; to nobody %u (last to id %llu)\n", net.bad_dest,
	    (unsigned long long)net.bad_dest_id);
}

typedef bool (*cond_fn)(void *arg);

/* Steps until cond holds, at most max steps; fails with a dump otherwise. */
static void
until(cond_fn cond, void *arg, int max, const char *what)
{
	for (int i = 0; i < max; i++) {
		if (cond(arg))
			return;
		step();
	}
	if (cond(arg))
		return;
	dump(what);
	cr_assert_fail("not reached after %d steps (%u ms): %s", max, max * STEP_MS, what);
}

static void
steps(int k)
{
	while (k-- > 0)
		step();
}

/* The leader with the highest term among running nodes, 0 when none. */
static unsigned
leader(void)
{
	unsigned   best = 0;
	raft_term  t = 0;

	for (unsigned i = 1; i <= NNODES; i++)
		if (nodes[i].up && raft_state(&nodes[i].raft) == RAFT_LEADER &&
		    nodes[i].raft.current_term >= t) {
			best = i;
			t = nodes[i].raft.current_term;
		}
	return best;
}

/* A leader that every running, connected, unpaused node follows. */
static bool
stable_leader(void *arg)
{
	unsigned l = leader();

	(void)arg;
	if (l == 0)
		return false;
	for (unsigned i = 1; i <= NNODES; i++) {
		raft_id     id;
		const char *a;

		if (i == l || !nodes[i].up || nodes[i].paused || net.cut[l][i] || net.cut[i][l])
			continue;
		raft_leader(&nodes[i].raft, &id, &a);
		if (id != l || nodes[i].raft.current_term != nodes[l].raft.current_term)
			return false;
	}
	return true;
}

static unsigned
until_leader(void)
{
	until(stable_leader, NULL, 400, "a leader followed by every connected node");
	return leader();
}

/* ---- client requests ---- */

struct req {
	struct raft_apply a;
	bool              done;
	int               status;
	char              cmd[32];
};

static void
apply_cb(struct raft_apply *a, int status, void *result)
{
	struct req *q = a->data;

	(void)result;
	cr_assert_not(q->done, "%s: callback twice", q->cmd);
	q->done = true;
	q->status = status;
}

/* raft_apply of cmd on node id: its return code. */
static int
try_submit(unsigned id, struct req *q, const char *cmd)
{
	struct raft_buffer b;
	int                rc;

	memset(q, 0, sizeof(*q));
	snprintf(q->cmd, sizeof(q->cmd), "%s", cmd);
	b.len = strlen(q->cmd);
	cr_assert_not_null(b.base = raft_malloc(b.len));
	memcpy(b.base, q->cmd, b.len);
	q->a.data = q;
	if ((rc = raft_apply(&nodes[id].raft, &q->a, &b, 1, apply_cb)) != 0)
		raft_free(b.base);
	return rc;
}

static void
submit(unsigned id, struct req *q, const char *prefix, int i)
{
	char cmd[32];
	int  rc;

	snprintf(cmd, sizeof(cmd), "%s%d", prefix, i);
	rc = try_submit(id, q, cmd);
	cr_assert_eq(rc, 0, "node %u: raft_apply %s: %s (%s)", id, cmd, raft_strerror(rc),
	    raft_errmsg(&nodes[id].raft));
}

struct reqs {
	struct req *q;
	size_t      n;
};

static bool
all_done(void *arg)
{
	struct reqs *r = arg;

	for (size_t i = 0; i < r->n; i++)
		if (!r->q[i].done)
			return false;
	return true;
}

static void
until_done(struct req *q, size_t n, const char *what)
{
	struct reqs r = { q, n };

	until(all_done, &r, 600, what);
}

static void
expect_ok(struct req *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_assert(q[i].done && q[i].status == 0, "%s: done %d status %d (%s)", q[i].cmd,
		    q[i].done, q[i].status, q[i].done ? raft_strerror(q[i].status) : "pending");
}

/* ---- states compared ---- */

struct want {
	unsigned mask; /* nodes that must hold it */
	size_t   n;    /* commands applied */
};

static bool
applied_n(void *arg)
{
	struct want *w = arg;

	for (unsigned i = 1; i <= NNODES; i++)
		if ((w->mask & (1u << i)) && (!nodes[i].up || nodes[i].napplied < w->n))
			return false;
	return true;
}

#define ALL ((1u << 1) | (1u << 2) | (1u << 3))

/* Steps until the nodes in mask applied n commands: the same ones, in the same order. */
static void
until_applied(unsigned mask, size_t n, const char *what)
{
	struct want w = { mask, n };
	unsigned    ref = 0;

	until(applied_n, &w, 800, what);
	for (unsigned i = 1; i <= NNODES; i++) {
		if (!(mask & (1u << i)))
			continue;
		if (ref == 0) {
			ref = i;
			continue;
		}
		cr_assert_eq(nodes[i].napplied, nodes[ref].napplied, "%s: node %u applied %zu, node %u %zu",
		    what, i, nodes[i].napplied, ref, nodes[ref].napplied);
		for (size_t k = 0; k < nodes[i].napplied; k++)
			cr_assert_str_eq(nodes[i].applied[k], nodes[ref].applied[k],
			    "%s: command %zu: node %u applied %s, node %u %s", what, k, i,
			    nodes[i].applied[k], ref, nodes[ref].applied[k]);
	}
}

/* Node id applied exactly the commands <prefix>0..<prefix>n-1 after skip others. */
static void
expect_applied_seq(unsigned id, size_t skip, const char *prefix, size_t n)
{
	struct node *nd = &nodes[id];

	cr_assert_eq(nd->napplied, skip + n, "node %u applied %zu, expected %zu", id, nd->napplied,
	    skip + n);
	for (size_t i = 0; i < n; i++) {
		char s[32];

		snprintf(s, sizeof(s), "%s%zu", prefix, i);
		cr_assert_str_eq(nd->applied[skip + i], s, "node %u: command %zu", id, skip + i);
	}
}

static bool
applied_has(unsigned id, const char *prefix)
{
	for (size_t i = 0; i < nodes[id].napplied; i++)
		if (strncmp(nodes[id].applied[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

/* A store's log, read back. */
struct slog {
	uint64_t first, last;
	struct sent {
		uint64_t term;
		uint8_t  type;
		char    *buf;
		size_t   len;
	} *e;
	size_t n;
};

static int
slog_one(void *arg, const struct store_entry *se)
{
	struct slog *l = arg;
	struct sent *s = &l->e[l->n++];

	s->term = se->term;
	s->type = se->type;
	s->len = se->len;
	s->buf = malloc(se->len + 1);
	cr_assert_not_null(s->buf);
	memcpy(s->buf, se->buf, se->len);
	s->buf[se->len] = '\0';
	return 0;
}

static void
slog_read(unsigned id, struct slog *l)
{
	struct store *s = rio_store(&nodes[id].io);
	int           rc;

	memset(l, 0, sizeof(*l));
	cr_assert_not_null(s);
	l->first = store_first(s);
	l->last = store_last(s);
	if (l->last == 0)
		return;
	cr_assert_not_null(l->e = calloc(l->last - l->first + 1, sizeof(*l->e)));
	rc = store_read(s, l->first, l->last, slog_one, l);
	cr_assert_eq(rc, 0, "node %u: store_read: %s", id, store_errmsg(s));
}

static void
slog_free(struct slog *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].buf);
	free(l->e);
	memset(l, 0, sizeof(*l));
}

static const struct sent *
slog_at(const struct slog *l, uint64_t index)
{
	if (index < l->first || index > l->last)
		return NULL;
	return &l->e[index - l->first];
}

/* The logs on disk of a and b agree on every index both hold, and end at the same index. */
static void
expect_same_disk_log(unsigned a, unsigned b)
{
	struct slog la, lb;
	uint64_t    from;

	slog_read(a, &la);
	slog_read(b, &lb);
	cr_assert_eq(la.last, lb.last, "node %u's log ends at %llu, node %u's at %llu", a,
	    (unsigned long long)la.last, b, (unsigned long long)lb.last);
	from = la.first > lb.first ? la.first : lb.first;
	for (uint64_t i = from; i <= la.last; i++) {
		const struct sent *x = slog_at(&la, i), *y = slog_at(&lb, i);

		cr_assert(x->term == y->term && x->type == y->type && x->len == y->len &&
		    memcmp(x->buf, y->buf, x->len) == 0,
		    "index %llu: node %u has term %llu type %u \"%s\", node %u term %llu type %u \"%s\"",
		    (unsigned long long)i, a, (unsigned long long)x->term, x->type,
		    x->type == RAFT_COMMAND ? x->buf : "", b, (unsigned long long)y->term, y->type,
		    y->type == RAFT_COMMAND ? y->buf : "");
	}
	slog_free(&la);
	slog_free(&lb);
}

/* Commands on a node's disk log that start with prefix. */
static unsigned
disk_count(unsigned id, const char *prefix)
{
	struct slog l;
	unsigned    k = 0;

	slog_read(id, &l);
	for (size_t i = 0; i < l.n; i++)
		if (l.e[i].type == RAFT_COMMAND && strncmp(l.e[i].buf, prefix, strlen(prefix)) == 0)
			k++;
	slog_free(&l);
	return k;
}

static unsigned
other(unsigned a, unsigned b)
{
	for (unsigned i = 1; i <= NNODES; i++)
		if (i != a && i != b)
			return i;
	return 0;
}

/* A leader other than *old, followed by every node connected to it. */
static bool
new_leader(void *arg)
{
	unsigned m = leader();

	return m != 0 && m != *(unsigned *)arg && stable_leader(NULL);
}

/* ---- a) election and replication, restart ---- */

/*
 * Three fresh nodes elect one leader, 100 commands are applied in the same
 * order on all three and their disk logs are identical; restarted from
 * their directories they elect again, load the same logs, and apply the
 * same state (a command in the new term commits the old ones: 0.15.0's new
 * leader appends no entry of its own at election).
 */
Test(raftpaths, elect_replicate_restart)
{
	static struct req q[101];
	unsigned          l, k = 0;

	start_all(true);
	l = until_leader();
	cr_log_info("elected node %u in term %llu at t=%llu", l,
	    (unsigned long long)nodes[l].raft.current_term, (unsigned long long)fake_now);
	/* Ten per step: several appends and sends in flight at once. */
	for (int b = 0; b < 10; b++) {
		for (int i = 0; i < 10; i++, k++)
			submit(l, &q[k], "a-", (int)k);
		step();
	}
	until_done(q, 100, "the 100 commands completed");
	expect_ok(q, 100);
	until_applied(ALL, 100, "100 commands applied everywhere");
	expect_applied_seq(1, 0, "a-", 100);
	for (unsigned i = 1; i <= NNODES; i++)
		cr_assert_eq(raft_last_index(&nodes[i].raft), raft_last_index(&nodes[l].raft));
	expect_same_disk_log(1, 2);
	expect_same_disk_log(1, 3);
	cr_assert_eq(store_last(rio_store(&nodes[1].io)), 101); /* configuration + 100 */

	for (unsigned i = 1; i <= NNODES; i++)
		node_stop(i);
	steps(10);
	start_all(false);
	for (unsigned i = 1; i <= NNODES; i++)
		cr_assert_eq(raft_last_index(&nodes[i].raft), 101, "node %u loaded %llu entries", i,
		    (unsigned long long)raft_last_index(&nodes[i].raft));
	l = until_leader();
	submit(l, &q[100], "a-", 100);
	until_done(&q[100], 1, "a command after the restart");
	expect_ok(&q[100], 1);
	until_applied(ALL, 101, "101 commands applied everywhere after the restart");
	expect_applied_seq(1, 0, "a-", 101);
	expect_same_disk_log(1, 2);
	expect_same_disk_log(1, 3);
}

/* ---- b) truncation of uncommitted entries ---- */

/*
 * The leader is cut off alone and accepts four commands that cannot
 * commit (written to its disk); the other two elect a new leader and
 * commit two different commands at the same indexes; healed, the old
 * leader's four are truncated (in libraft's log and on disk: rio's
 * io->truncate) and replaced by the majority's.  Each lost command's
 * raft_apply callback reports an error, never success, and no node
 * applies one.  After a restart from its directory, the old leader's
 * disk log is the majority's.
 *
 * 0.15.0: the partitioned leader steps down by itself after an election
 * timeout without a quorum (RAFT_LEADERSHIPLOST for its pending applies),
 * before any truncation; the truncation comes with the new leader's first
 * AppendEntries after the heal.
 */
Test(raftpaths, truncate_uncommitted)
{
	static struct req q[8], lost[4];
	unsigned          l, m, base;

	start_all(true);
	l = until_leader();
	for (int i = 0; i < 3; i++)
		submit(l, &q[i], "b-", i);
	until_done(q, 3, "three commands committed");
	until_applied(ALL, 3, "three commands everywhere");
	base = (unsigned)raft_last_index(&nodes[l].raft);

	net_isolate(l, true);
	for (int i = 0; i < 4; i++)
		submit(l, &lost[i], "lost-", i);
	steps(2);
	cr_assert_eq(disk_count(l, "lost-"), 4, "the old leader wrote its four to disk");
	cr_assert_eq(store_last(rio_store(&nodes[l].io)), base + 4);
	for (int i = 0; i < 4; i++)
		cr_assert_not(lost[i].done && lost[i].status == 0, "%s succeeded while cut off",
		    lost[i].cmd);

	/* The majority moves on. */
	until(new_leader, &l, 400, "a new leader among the majority");
	m = leader();
	for (int i = 0; i < 2; i++)
		submit(m, &q[3 + i], "maj-", i);
	until_done(&q[3], 2, "the majority committed two");
	expect_ok(&q[3], 2);
	cr_log_info("old leader %u: %s term %llu; lost applies: %s %s %s %s", l,
	    state_name(raft_state(&nodes[l].raft)), (unsigned long long)nodes[l].raft.current_term,
	    lost[0].done ? raft_strerror(lost[0].status) : "pending",
	    lost[1].done ? raft_strerror(lost[1].status) : "pending",
	    lost[2].done ? raft_strerror(lost[2].status) : "pending",
	    lost[3].done ? raft_strerror(lost[3].status) : "pending");

	net_isolate(l, false);
	until_applied(ALL, 5, "the old leader caught up after the heal");
	cr_assert_eq(raft_state(&nodes[l].raft), RAFT_FOLLOWER);
	cr_assert_eq(raft_last_index(&nodes[l].raft), raft_last_index(&nodes[m].raft),
	    "the old leader's log ends at %llu, the leader's at %llu",
	    (unsigned long long)raft_last_index(&nodes[l].raft),
	    (unsigned long long)raft_last_index(&nodes[m].raft));
	for (int i = 0; i < 4; i++)
		cr_assert(lost[i].done && lost[i].status != 0, "%s: done %d status %d", lost[i].cmd,
		    lost[i].done, lost[i].status);
	for (unsigned i = 1; i <= NNODES; i++)
		cr_assert_not(applied_has(i, "lost-"), "node %u applied a lost command", i);
	expect_applied_seq(l, 3, "maj-", 2);
	cr_assert_eq(disk_count(l, "lost-"), 0, "a lost command is still on the old leader's disk");
	expect_same_disk_log(l, m);

	/* From its directory: the majority's log, and it goes on. */
	node_stop(l);
	node_start(l, false);
	cr_assert_eq(disk_count(l, "lost-"), 0);
	cr_assert_eq(disk_count(l, "maj-"), 2);
	expect_same_disk_log(l, m);
	m = until_leader();
	submit(m, &q[5], "maj-", 2);
	until_done(&q[5], 1, "a command after the old leader's restart");
	expect_ok(&q[5], 1);
	until_applied(ALL, 6, "everyone applied the majority's commands");
	expect_applied_seq(l, 3, "maj-", 3);
	expect_same_disk_log(1, 2);
	expect_same_disk_log(1, 3);
}

/* ---- c) a snapshot taken while entries are in flight ---- */

static bool
snap_file(unsigned id)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/snap", nodes[id].dir);
	return access(p, F_OK) == 0;
}

/*
 * Snapshots every 16 entries keeping 8, small segments.  One follower is
 * cut off while the leader takes commands without pause: the leader takes
 * its snapshots with appends not yet on its disk and AppendEntries not
 * yet answered, and drops the log (in memory and the segments on disk)
 * past what the cut-off follower holds.  Healed, that follower is caught up by
 * InstallSnapshot and the three agree; restarted from their directories
 * (snapshot + log after it) they agree again.
 */
Test(raftpaths, snapshot_with_entries_in_flight)
{
	static struct req q[66];
	unsigned          l, a, f;
	int               k = 0;

	seg_size = 1024;
	snap_threshold = 16;
	snap_trailing = 8;
	start_all(true);
	l = until_leader();
	a = other(l, 0);
	f = other(l, a);
	for (; k < 5; k++)
		submit(l, &q[k], "c-", k);
	until_done(q, 5, "five commands committed");
	until_applied(ALL, 5, "five commands everywhere");

	net_isolate(f, true);
	/* Three per step: each commit (an acknowledgement from a, delivered
	 * before the leader's io steps) finds the next three written but not
	 * synced, and on their way to a. */
	while (k < 65) {
		for (int i = 0; i < 3 && k < 65; i++, k++)
			submit(l, &q[k], "c-", k);
		step();
	}
	until_done(q, 65, "65 commands committed by two nodes");
	expect_ok(q, 65);
	until_applied((1u << l) | (1u << a), 65, "the two connected nodes applied 65");
	cr_log_info("leader %u: %u snapshots, %u with appends not yet on its disk, %u with "
	    "AppendEntries in the air; snapshot index %llu, store %llu..%llu; cut-off follower %u "
	    "ends at %llu", l, nodes[l].nsnapshots, nodes[l].snap_unstored, nodes[l].snap_in_air,
	    (unsigned long long)nodes[l].raft.log.snapshot.last_index,
	    (unsigned long long)store_first(rio_store(&nodes[l].io)),
	    (unsigned long long)store_last(rio_store(&nodes[l].io)), f,
	    (unsigned long long)raft_last_index(&nodes[f].raft));
	cr_assert_gt(nodes[l].nsnapshots, 1);
	cr_assert_gt(nodes[l].snap_unstored, 0, "no snapshot was taken with appends in flight");
	cr_assert_gt(nodes[l].snap_in_air, 0, "no snapshot was taken with entries on their way");
	cr_assert_gt(nodes[l].raft.log.snapshot.last_index,
	    raft_last_index(&nodes[f].raft) + snap_trailing,
	    "the leader still holds what the cut-off follower needs");
	cr_assert_gt(store_first(rio_store(&nodes[l].io)), raft_last_index(&nodes[f].raft) + 1,
	    "the leader's disk still holds what the cut-off follower needs");
	cr_assert(snap_file(l));

	net_isolate(f, false);
	until_applied(ALL, 65, "the cut-off follower caught up");
	cr_assert_gt(net.delivered[f][RAFT_IO_INSTALL_SNAPSHOT], 0, "no InstallSnapshot reached %u", f);
	cr_assert_gt(nodes[f].nrestores, 0);
	cr_assert(snap_file(f));
	for (unsigned i = 1; i <= NNODES; i++)
		expect_applied_seq(i, 0, "c-", 65);
	cr_assert_eq(store_last(rio_store(&nodes[f].io)), store_last(rio_store(&nodes[l].io)));
	expect_same_disk_log(f, l);

	for (unsigned i = 1; i <= NNODES; i++)
		node_stop(i);
	start_all(false);
	for (unsigned i = 1; i <= NNODES; i++)
		cr_assert_gt(nodes[i].nrestores, 0, "node %u did not load its snapshot", i);
	l = until_leader();
	submit(l, &q[65], "c-", 65);
	until_done(&q[65], 1, "a command after the restart");
	expect_ok(&q[65], 1);
	until_applied(ALL, 66, "66 commands everywhere after the restart");
	for (unsigned i = 1; i <= NNODES; i++)
		expect_applied_seq(i, 0, "c-", 66);
	expect_same_disk_log(1, 2);
	expect_same_disk_log(1, 3);
}

/*
 * A 0.15.0 property the broker's batching has to live with: on each
 * acknowledgement the leader tries to commit its own last stored index
 * and nothing below it (replicationUpdate calls replicationQuorum(r,
 * r->last_stored); later libraft tries the index acknowledged).  With one
 * follower cut off and the other acknowledging 30 ms late while the leader
 * stores new entries every 5 ms, no acknowledgement ever reaches the
 * leader's last stored index: nothing commits while the load lasts,
 * although a majority holds dozens of entries; when it stops everything
 * commits at once.  Under steady load, then, commit latency is bounded by
 * the load's pauses, not by the round trip.  Should this test fail, the
 * rule changed (good news): update this comment.
 */
Test(raftpaths, commit_waits_for_the_leaders_last_stored_index)
{
	static struct req q[65];
	unsigned          l, a, f, ia = 0;
	raft_index        commit0;
	int               k = 0;

	start_all(true);
	l = until_leader();
	a = other(l, 0);
	f = other(l, a);
	for (; k < 5; k++)
		submit(l, &q[k], "s-", k);
	until_done(q, 5, "five commands committed");
	net_isolate(f, true);
	net.delay[l][a] = net.delay[a][l] = 3 * STEP_MS;
	commit0 = nodes[l].raft.commit_index;
	while (k < 65) {
		for (int i = 0; i < 3; i++, k++)
			submit(l, &q[k], "s-", k);
		step();
	}
	while (nodes[l].raft.configuration.servers[ia].id != a)
		ia++;
	cr_log_info("after 20 steps of load: leader %u stored %llu, commit %llu; follower %u "
	    "acknowledged %llu", l, (unsigned long long)nodes[l].raft.last_stored,
	    (unsigned long long)nodes[l].raft.commit_index, a,
	    (unsigned long long)nodes[l].raft.leader_state.progress[ia].match_index);
	cr_assert_gt(nodes[l].raft.leader_state.progress[ia].match_index, commit0 + 30,
	    "the slow follower acknowledged little: the test does not show the stall");
	cr_assert_eq(nodes[l].raft.commit_index, commit0,
	    "libraft committed under load: its commit rule changed (see the comment)");
	for (int i = 5; i < 65; i++)
		cr_assert_not(q[i].done, "%s completed under load", q[i].cmd);
	until_done(q, 65, "everything committed once the load stopped");
	expect_ok(q, 65);
}

/* ---- d) a failed append on a follower ---- */

/* Node id's applied commands are a prefix of node ref's. */
static void
expect_prefix(unsigned id, unsigned ref)
{
	cr_assert_leq(nodes[id].napplied, nodes[ref].napplied);
	for (size_t i = 0; i < nodes[id].napplied; i++)
		cr_assert_str_eq(nodes[id].applied[i], nodes[ref].applied[i], "node %u command %zu", id, i);
}

/*
 * ENOSPC on one follower's log writes while the leader replicates 20
 * commands: the other two commit all of them; the faulty node neither
 * crashes nor keeps anything, and applies nothing it did not get.  With
 * the fault gone (and a restart: see below) it catches up, its disk log
 * the leader's.
 *
 * 0.15.0 with rio: rio returns the failed write from io->append (see
 * rio.h), replicationAppend drops the entries from libraft's log and
 * returns the error, and recvCb turns any error from a handler into
 * convertToUnavailable: the follower is RAFT_UNAVAILABLE for good (it
 * drops every message and never times out) until raft_close and a
 * restart.  The owner must watch raft_state() for this, as it watches
 * rio_failed() for a failed sync.
 */
Test(raftpaths, follower_append_enospc)
{
	static struct req q[26];
	unsigned          l, f, g;
	uint64_t          disk;
	int               k = 0;

	start_all(true);
	l = until_leader();
	f = other(l, 0);
	g = other(l, f);
	for (; k < 5; k++)
		submit(l, &q[k], "d-", k);
	until_done(q, 5, "five commands committed");
	until_applied(ALL, 5, "five commands everywhere");
	disk = store_last(rio_store(&nodes[f].io));

	nodes[f].fail_write = true;
	while (k < 25) {
		for (int i = 0; i < 4; i++, k++)
			submit(l, &q[k], "d-", k);
		step();
	}
	until_done(q, 25, "20 commands committed without the faulty follower");
	expect_ok(q, 25);
	until_applied((1u << l) | (1u << g), 25, "the two healthy nodes applied 25");
	steps(40);
	cr_log_info("faulty follower %u after %u failed writes: %s, term %llu, last %llu, "
	    "stored %llu, applied %zu, errmsg \"%s\"", f, nodes[f].nfaults,
	    state_name(raft_state(&nodes[f].raft)), (unsigned long long)nodes[f].raft.current_term,
	    (unsigned long long)raft_last_index(&nodes[f].raft),
	    (unsigned long long)nodes[f].raft.last_stored, nodes[f].napplied,
	    raft_errmsg(&nodes[f].raft));
	cr_assert_gt(nodes[f].nfaults, 0, "the fault never fired");
	cr_assert_eq(store_last(rio_store(&nodes[f].io)), disk, "the faulty node kept a failed write");
	cr_assert_not(rio_failed(&nodes[f].io));
	cr_assert_leq(raft_last_applied(&nodes[f].raft), nodes[f].raft.last_stored);
	expect_prefix(f, l);
	cr_assert_eq(raft_state(&nodes[l].raft), RAFT_LEADER, "the leader lost its place");
	/* What 0.15.0 does (above); a change here means rio.h's notes need a new look. */
	cr_assert_eq(raft_state(&nodes[f].raft), RAFT_UNAVAILABLE,
	    "libraft no longer gives up on a follower whose append fails: state %s",
	    state_name(raft_state(&nodes[f].raft)));

	/* The space is back; unavailable stays unavailable: the owner restarts it. */
	nodes[f].fail_write = false;
	steps(20);
	cr_assert_eq(raft_state(&nodes[f].raft), RAFT_UNAVAILABLE);
	node_stop(f);
	node_start(f, false);
	until_applied(ALL, 25, "the faulty follower caught up after its restart");
	submit(l, &q[25], "d-", 25);
	until_done(&q[25], 1, "one more command");
	expect_ok(&q[25], 1);
	until_applied(ALL, 26, "26 commands everywhere");
	for (unsigned i = 1; i <= NNODES; i++)
		expect_applied_seq(i, 0, "d-", 26);
	expect_same_disk_log(f, l);
	expect_same_disk_log(g, l);
}

/*
 * EIO from one follower's fdatasync: rio fences (rio_step returns the
 * error once, rio_failed turns true, every append is parked, never
 * completed).  The other two commit; the fenced follower acknowledges
 * nothing past what was synced; its owner restarts it from its directory
 * and it catches up.
 */
Test(raftpaths, follower_sync_eio)
{
	static struct req q[21];
	unsigned          l, f, g;
	int               k = 0;

	start_all(true);
	l = until_leader();
	f = other(l, 0);
	g = other(l, f);
	for (; k < 5; k++)
		submit(l, &q[k], "e-", k);
	until_done(q, 5, "five commands committed");
	until_applied(ALL, 5, "five commands everywhere");

	nodes[f].fail_sync = true;
	while (k < 20) {
		for (int i = 0; i < 3; i++, k++)
			submit(l, &q[k], "e-", k);
		step();
	}
	until_done(q, 20, "commands committed without the fenced follower");
	expect_ok(q, 20);
	until_applied((1u << l) | (1u << g), 20, "the two healthy nodes applied 20");
	steps(40);
	cr_log_info("fenced follower %u: %s, term %llu, last %llu, stored %llu, commit %llu, "
	    "applied %zu, io_err %d", f, state_name(raft_state(&nodes[f].raft)),
	    (unsigned long long)nodes[f].raft.current_term,
	    (unsigned long long)raft_last_index(&nodes[f].raft),
	    (unsigned long long)nodes[f].raft.last_stored,
	    (unsigned long long)nodes[f].raft.commit_index, nodes[f].napplied, nodes[f].io_err);
	cr_assert_eq(nodes[f].io_err, RAFT_IOERR);
	cr_assert(rio_failed(&nodes[f].io));
	/* 0.15.0 takes min(leader's commit, last stored) on a heartbeat: what
	 * is parked in rio is neither acknowledged nor applied. */
	cr_assert_leq(nodes[f].raft.last_stored, 6, "the fenced node reported unsynced entries stored");
	cr_assert_leq(raft_last_applied(&nodes[f].raft), nodes[f].raft.last_stored,
	    "the fenced node applied entries it has not stored");
	expect_prefix(f, l);
	cr_assert_eq(raft_state(&nodes[l].raft), RAFT_LEADER);

	nodes[f].fail_sync = false;
	node_stop(f);
	node_start(f, false);
	until_applied(ALL, 20, "the fenced follower caught up after its restart");
	submit(l, &q[20], "e-", 20);
	until_done(&q[20], 1, "one more command");
	expect_ok(&q[20], 1);
	until_applied(ALL, 21, "21 commands everywhere");
	for (unsigned i = 1; i <= NNODES; i++)
		expect_applied_seq(i, 0, "e-", 21);
	expect_same_disk_log(f, l);
}

/* ---- e) a new term while a follower installs a snapshot ---- */

struct q_to {
	unsigned from, to, type;
	raft_term min_term;
};

static bool
queued(void *arg)
{
	struct q_to     *w = arg;
	struct envelope *e;

	for (e = net.head; e; e = e->next)
		if (e->from == w->from && e->to == w->to && (w->type == 0 || e->m.type == w->type) &&
		    (e->m.type != RAFT_IO_REQUEST_VOTE || e->m.request_vote.term >= w->min_term))
			return true;
	return false;
}

static bool
is_paused(void *arg)
{
	return nodes[*(unsigned *)arg].paused;
}

static bool transferred;

static void
transfer_cb(struct raft_transfer *req)
{
	(void)req;
	transferred = true;
}

/*
 * Follower f falls behind (cut off, paused: its term stays put) while
 * the leader compacts its log; healed, the leader sends it a snapshot.
 * That InstallSnapshot is delivered, and before f's io completes the
 * snapshot_put (before its next rio_step) a RequestVote of a higher term
 * arrives: the leader handed leadership to the third node (raft_transfer:
 * TimeoutNow, then a RequestVote with disrupt_leader, which a follower
 * with a leader does not ignore).  Then the install completes in the new
 * term.  The three must converge, and again after a restart.
 *
 * 0.15.0: f bumps its term and grants the vote in the middle of the
 * install; the install completes (installSnapshotCb asserts nothing in
 * this build: libraft is built with NDEBUG) and its result goes out in the
 * new term (see the log line for where to: 0.15.0 sends it to whoever f
 * takes for the leader, which after the bump can be the old leader).
 * Upstream fixed this after 0.15.0 (canonical/raft#356, #357: a
 * RequestVote is rejected during an install, and an install begun in an
 * older term completes without a reply).
 */
Test(raftpaths, new_term_while_installing)
{
	static struct req           q[24];
	static struct raft_transfer tr;
	const struct raft_message  *res;
	unsigned                    l, a, f, nl, bad0;
	raft_term                   term0;
	int                         k = 0, rc;

	seg_size = 1024;
	snap_threshold = 8;
	snap_trailing = 2;
	transferred = false;
	start_all(true);
	l = until_leader();
	a = other(l, 0);
	f = other(l, a);
	for (; k < 3; k++)
		submit(l, &q[k], "n-", k);
	until_done(q, 3, "three commands committed");
	until_applied(ALL, 3, "three commands everywhere");

	net_isolate(f, true);
	nodes[f].paused = true;
	while (k < 23) {
		for (int i = 0; i < 4; i++, k++)
			submit(l, &q[k], "n-", k);
		step();
	}
	until_done(q, 23, "20 commands committed by two");
	expect_ok(q, 23);
	until_applied((1u << l) | (1u << a), 23, "two nodes applied 23");
	cr_assert_gt(nodes[l].raft.log.snapshot.last_index,
	    raft_last_index(&nodes[f].raft) + snap_trailing + 1,
	    "the leader still holds the entries the follower needs");

	/* Healed; f resumes when a message from the leader waits for it (so
	 * that it hears from the leader before its election timer fires), and
	 * pauses again when the leader sends it a snapshot. */
	net_isolate(f, false);
	net.pause_on_install = f;
	{
		struct q_to w = { l, f, 0, 0 };

		until(queued, &w, 100, "a message from the leader queued for the paused follower");
	}
	nodes[f].paused = false;
	until(is_paused, &f, 200, "the leader sent the follower a snapshot");
	term0 = nodes[l].raft.current_term;
	cr_assert_eq(nodes[f].raft.current_term, term0);
	cr_assert_null(nodes[f].raft.snapshot.put.data);

	/* Leadership to a: TimeoutNow, a's RequestVote in term0 + 1 (f is paused: it waits). */
	rc = raft_transfer(&nodes[l].raft, &tr, a, transfer_cb);
	cr_assert_eq(rc, 0, "raft_transfer: %s", raft_strerror(rc));
	{
		struct q_to w = { a, f, RAFT_IO_REQUEST_VOTE, term0 + 1 };

		until(queued, &w, 100, "a RequestVote of the next term queued for the follower");
	}

	net_deliver_one(f, RAFT_IO_INSTALL_SNAPSHOT);
	cr_assert_not_null(nodes[f].raft.snapshot.put.data, "the follower is not installing");
	net_deliver_one(f, RAFT_IO_REQUEST_VOTE);
	cr_assert_gt(nodes[f].raft.current_term, term0, "the new term did not reach the follower");
	cr_assert_not_null(nodes[f].raft.snapshot.put.data, "the install ended before its io did");
	cr_log_info("follower %u installing snapshot %llu in term %llu, now term %llu, voted for %llu",
	    f, (unsigned long long)nodes[f].raft.log.snapshot.last_index,
	    (unsigned long long)term0, (unsigned long long)nodes[f].raft.current_term,
	    (unsigned long long)nodes[f].raft.voted_for);

	/* The install completes in the new term. */
	bad0 = net.bad_dest;
	memset(&net.last_sent[f][RAFT_IO_APPEND_ENTRIES_RESULT], 0, sizeof(struct raft_message));
	fake_now += STEP_MS;
	rc = rio_step(&nodes[f].io);
	cr_assert_eq(rc, 0, "rio_step: %s", nodes[f].io.errmsg);
	cr_assert_null(nodes[f].raft.snapshot.put.data);
	res = &net.last_sent[f][RAFT_IO_APPEND_ENTRIES_RESULT];
	cr_log_info("after the install: follower %u %s term %llu, applied %zu, restores %u; "
	    "its install result went to %llu (term %llu, rejected %llu, last %llu), "
	    "%u message(s) to nobody",
	    f, state_name(raft_state(&nodes[f].raft)), (unsigned long long)nodes[f].raft.current_term,
	    nodes[f].napplied, nodes[f].nrestores, (unsigned long long)res->server_id,
	    (unsigned long long)res->append_entries_result.term,
	    (unsigned long long)res->append_entries_result.rejected,
	    (unsigned long long)res->append_entries_result.last_log_index, net.bad_dest - bad0);
	cr_assert_neq(raft_state(&nodes[f].raft), RAFT_UNAVAILABLE);
	cr_assert_gt(nodes[f].nrestores, 0, "the snapshot was not restored");

	nodes[f].paused = false;
	nl = until_leader();
	cr_log_info("leader now %u in term %llu (transfer to %u %s)", nl,
	    (unsigned long long)nodes[nl].raft.current_term, a, transferred ? "done" : "pending");
	cr_assert_gt(nodes[nl].raft.current_term, term0);
	submit(nl, &q[23], "n-", 23);
	until_done(&q[23], 1, "a command in the new term");
	expect_ok(&q[23], 1);
	until_applied(ALL, 24, "24 commands everywhere");
	for (unsigned i = 1; i <= NNODES; i++)
		expect_applied_seq(i, 0, "n-", 24);
	expect_same_disk_log(f, nl);

	for (unsigned i = 1; i <= NNODES; i++)
		node_stop(i);
	start_all(false);
	nl = until_leader();
	{
		static struct req q2;

		submit(nl, &q2, "n-", 24);
		until_done(&q2, 1, "a command after the restart");
		expect_ok(&q2, 1);
	}
	until_applied(ALL, 25, "25 commands everywhere after the restart");
	for (unsigned i = 1; i <= NNODES; i++)
		expect_applied_seq(i, 0, "n-", 25);
	expect_same_disk_log(1, 2);
	expect_same_disk_log(1, 3);
}

/* ---- f) the figure-8 guard in rio_recv ---- */

/*
 * A new leader whose last stored entry is of an older term (here the
 * bootstrap configuration, term 1) takes no AppendEntries result: rio_recv
 * drops them (counted in rio_stats guard_drops), so libraft cannot commit
 * an older entry by counting replicas.  The first entry of its own term
 * (a command here; the broker's barrier) once stored, the results pass
 * again and it commits.  storage/guard.h; the scenario
 * where it matters is tests/unit/cluster_test.c's figure 8.
 */
Test(raftpaths, a_new_leader_takes_no_append_result_before_an_entry_of_its_term)
{
	static struct req q[1];
	struct rio_stats  st;
	unsigned          l;

	start_all(true);
	l = until_leader();
	/*
	 * Heartbeats and their results, two rounds, well within an election
	 * timeout: dropped results are no contact, and a leader that hears
	 * from no majority for that long steps down (why the broker appends
	 * its barrier at once).
	 */
	steps(10);
	rio_stats(&nodes[l].io, &st);
	cr_log_info("leader %u, term %llu: %llu results dropped, commit %llu", l,
	    (unsigned long long)nodes[l].raft.current_term, (unsigned long long)st.guard_drops,
	    (unsigned long long)nodes[l].raft.commit_index);
	cr_assert_gt(nodes[l].raft.current_term, 1);
	cr_assert_gt(st.guard_drops, 0, "no result dropped");
	/* 0.15.0 takes a bootstrap entry as committed at start. */
	cr_assert_eq(nodes[l].raft.commit_index, 1, "a commit with no entry of the leader's term");
	submit(l, &q[0], "g-", 0);
	until_done(q, 1, "the command of the leader's term committed");
	expect_ok(q, 1);
	cr_assert_eq(nodes[l].raft.commit_index, 2);
}

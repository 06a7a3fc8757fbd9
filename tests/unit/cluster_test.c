/*
 * cluster_test.c: libraft 0.15.0's gaps and our workarounds, on
 * raft_fixture (libraft's in-memory cluster: deterministic, fake time,
 * its own io).  Each test runs in its own process (criterion).
 *
 * The broker's workarounds appear here as the fixture's owner would do
 * them, with the same pure pieces the broker uses:
 *   - the figure-8 guard, storage/guard.h's predicate, in a recv wrapper
 *     (the fixture's io is not rio), built as the fault build compiles it
 *     (see the Makefile) so that MOM_FAULT_NO_GUARD switches it off;
 *   - a barrier on every transition to leader (cluster.c's cluster_watch),
 *     in watch() after every step;
 *   - at most one uncommitted entry in flight (replica.c's replica_flush).
 *
 * The fsm records what it applied at which index; "diverged" means two
 * servers applied different commands at one index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>
#include <raft/fixture.h>

#include "storage/guard.h"

#define MAXS    5
#define MAXAPP  4096
#define CMDLEN  8

struct srv {
	unsigned   i;
	unsigned   n;                     /* commands applied */
	char       cmd[MAXAPP][CMDLEN];   /* command applied at at[k] */
	raft_index at[MAXAPP];
	bool       was_leader;
	raft_time  since;                 /* leads since (fixture time + 1), 0: not leader */
	unsigned   barriers;
	unsigned   snapshots, restores;
};

static struct raft_fixture F;
static struct raft_fsm     fsms[MAXS];
static struct srv          S[MAXS];
static raft_io_recv_cb     real_recv[MAXS];
static int               (*real_start)(struct raft_io *, unsigned, raft_io_tick_cb,
    raft_io_recv_cb);
static unsigned            guard_drops;
/* The stale-tail guard (storage/guard.h): on unless a test says; what each server vouches for. */
static bool                no_tail_guard;
static uint64_t            vouch[MAXS];
/* The snapshot-gap fix (storage/guard.h): on unless a test says; how often it moved a request. */
static bool                no_gap_fix;
static unsigned            gap_fixes;
static int               (*real_send)(struct raft_io *, struct raft_io_send *,
    const struct raft_message *, raft_io_send_cb);
/* The test's say on when server i may append its barrier (NULL: at once). */
static bool              (*barrier_ok)(unsigned i);

static unsigned
index_of(struct raft_io *io)
{
	for (unsigned i = 0; i < raft_fixture_n(&F); i++)
		if (raft_fixture_get(&F, i)->io == io)
			return i;
	cr_assert_fail("unknown io");
	return 0;
}

/* ---- the fsm: what was applied where ---- */

static int
fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct srv  *s = fsm->data;
	struct raft *r = raft_fixture_get(&F, s->i);

	cr_assert_lt(s->n, MAXAPP);
	snprintf(s->cmd[s->n], CMDLEN, "%.*s", (int)(buf->len < CMDLEN ? buf->len : CMDLEN - 1),
	    (const char *)buf->base);
	s->at[s->n] = raft_last_applied(r) + 1;
	s->n++;
	*result = NULL;
	return 0;
}

static int
fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
	struct srv *s = fsm->data;

	s->snapshots++;
	*bufs = raft_malloc(sizeof(**bufs));
	(*bufs)[0].len = 8;
	(*bufs)[0].base = raft_malloc(8);
	memset((*bufs)[0].base, 0, 8);
	*n = 1;
	return 0;
}

static int
fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct srv *s = fsm->data;

	s->restores++;
	raft_free(buf->base);
	return 0;
}

/* ---- the guard and the barrier, as the broker does them ---- */

static void
guard_recv(struct raft_io *io, struct raft_message *m)
{
	unsigned     i = index_of(io);
	struct raft *r = raft_fixture_get(&F, i);

	if (replica_guard_drop(raft_state(r), r->current_term, replica_guard_stored_term(r),
	    m->type)) {
		guard_drops++;
		return;
	}
	if (!no_gap_fix && replica_guard_covered(r, m))
		gap_fixes++;
	vouch[i] = no_tail_guard ? 0 : replica_guard_vouch(m);
	real_recv[i](io, m);
	vouch[i] = 0;
}

static int
guard_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
    raft_io_send_cb cb)
{
	struct raft_message c = *m;

	replica_guard_cap_result(&c, vouch[index_of(io)]);
	return real_send(io, req, &c, cb);
}

static int
wrap_start(struct raft_io *io, unsigned ms, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	real_recv[index_of(io)] = recv;
	return real_start(io, ms, tick, guard_recv);
}

static void
barrier_done(struct raft_barrier *b, int status)
{
	(void)status;
	free(b);
}

/* After every step: a barrier on each new leadership (cluster.c's cluster_watch). */
static void
watch(void)
{
	for (unsigned i = 0; i < raft_fixture_n(&F); i++) {
		struct raft        *r = raft_fixture_get(&F, i);
		bool                l = raft_fixture_alive(&F, i) && raft_state(r) == RAFT_LEADER;
		struct raft_barrier *b;

		if (!l)
			S[i].since = 0;
		else if (S[i].since == 0)
			S[i].since = raft_fixture_time(&F) + 1;
		if (l && !S[i].was_leader) {
			if (barrier_ok != NULL && !barrier_ok(i))
				continue; /* not yet: asked again after the next step */
			cr_assert_not_null(b = calloc(1, sizeof(*b)));
			if (raft_barrier(r, b, barrier_done) != 0)
				free(b);
			else
				S[i].barriers++;
		}
		S[i].was_leader = l;
	}
}

static struct raft_fixture_event *
step(void)
{
	struct raft_fixture_event *ev = raft_fixture_step(&F);

	watch();
	return ev;
}

static void
step_for(raft_time ms)
{
	raft_time end = raft_fixture_time(&F) + ms;

	while (raft_fixture_time(&F) < end)
		step();
}

/* Steps until a leader (within ms of fixture time); its index. */
static unsigned
until_leader(raft_time ms)
{
	raft_time end = raft_fixture_time(&F) + ms;

	while (raft_fixture_leader_index(&F) == raft_fixture_n(&F) && raft_fixture_time(&F) < end)
		step();
	cr_assert_lt(raft_fixture_leader_index(&F), raft_fixture_n(&F), "no leader in %llu ms",
	    (unsigned long long)ms);
	return raft_fixture_leader_index(&F);
}

/* n servers, the guard in their recv; not yet bootstrapped. */
static void
grow(unsigned n)
{
	memset(&F, 0, sizeof(F)); /* libraft 0.15 reads fields it never set */
	cr_assert_eq(raft_fixture_initialize(&F), 0);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(raft_fixture_grow(&F, &fsms[i]), 0);
}

static void
fsm_init(unsigned i)
{
	memset(&fsms[i], 0, sizeof(fsms[i]));
	S[i].i = i;
	fsms[i].version = 1;
	fsms[i].data = &S[i];
	fsms[i].apply = fsm_apply;
	fsms[i].snapshot = fsm_snapshot;
	fsms[i].restore = fsm_restore;
}

static void
wrap_io(unsigned i)
{
	struct raft_io *io = raft_fixture_get(&F, i)->io;

	real_start = io->start;
	io->start = wrap_start;
	real_send = io->send;
	io->send = guard_send;
}

/* n voters of n servers, bootstrapped, guard wrapped, not started. */
static void
cluster(unsigned n, unsigned voters)
{
	struct raft_configuration conf;

	memset(S, 0, sizeof(S));
	for (unsigned i = 0; i < MAXS; i++)
		fsm_init(i);
	grow(n);
	cr_assert_eq(raft_fixture_configuration(&F, voters, &conf), 0);
	cr_assert_eq(raft_fixture_bootstrap(&F, &conf), 0);
	raft_configuration_close(&conf);
	for (unsigned i = 0; i < n; i++)
		wrap_io(i);
}

/* Stored entry i of server i with a command payload. */
static void
add_entry(unsigned i, raft_term t, const char *cmd)
{
	struct raft_entry e = { .term = t, .type = RAFT_COMMAND };

	e.buf.len = CMDLEN;
	e.buf.base = raft_malloc(CMDLEN);
	memset(e.buf.base, 0, CMDLEN);
	memcpy(e.buf.base, cmd, strlen(cmd));
	e.batch = NULL;
	raft_fixture_add_entry(&F, i, &e);
}

/* The command server i applied at index, or NULL. */
static const char *
applied_at(unsigned i, raft_index index)
{
	for (unsigned k = 0; k < S[i].n; k++)
		if (S[i].at[k] == index)
			return S[i].cmd[k];
	return NULL;
}

/* Two servers that applied different commands at one index: 1, else 0. */
static int
diverged(unsigned n, char *why, size_t len)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned k = 0; k < S[i].n; k++)
			for (unsigned j = i + 1; j < n; j++) {
				const char *o = applied_at(j, S[i].at[k]);

				if (o != NULL && strcmp(o, S[i].cmd[k]) != 0) {
					snprintf(why, len, "server %u applied %s and server %u "
					    "applied %s at index %llu", i + 1, S[i].cmd[k], j + 1,
					    o, (unsigned long long)S[i].at[k]);
					return 1;
				}
			}
	return 0;
}

static void
fini(void)
{
	raft_fixture_close(&F);
	no_tail_guard = false;
	no_gap_fix = false;
	gap_fixes = 0;
}

TestSuite(cluster, .fini = fini, .timeout = 120);

/* ---- figure 8 ---- */

/*
 * S1's barrier comes late: 300 ms after it leads.  That is the window in which only the guard stands between
 * 0.15.0 and a commit of A by counting replicas: the barrier is what lets
 * a new leader commit at all (liveness), the guard is what makes it safe
 * whenever the barrier lands (a loop turn after libraft handled the
 * results, an append refused on a full disk, a slow disk).
 */
static bool
s1_late(unsigned i)
{
	return i != 0 || raft_fixture_time(&F) + 1 >= S[0].since + 300;
}

/*
 * The Raft paper's figure 8 on three servers, a history Raft allows:
 * S1 led term 2 and stored A at index 2 alone; S2 led term 3 (S3 voted)
 * and stored B at index 2 alone.  S2 down, S1 is elected in term 4 with
 * S3's vote and copies A to S3; the run goes on until S1 commits
 * something (or 10 s), then S1 dies.  S2 comes back and S3 campaigns too,
 * for 10 s.  Returns what S1 committed; *why says whether servers
 * diverged.
 */
static raft_index
figure8(char *why, size_t len, int *div)
{
	struct raft *s1;
	raft_index   commit;
	raft_time    end;

	cluster(3, 3);
	add_entry(0, 2, "A");
	add_entry(1, 3, "B");
	raft_fixture_set_term(&F, 0, 3); /* S1 saw S2's RequestVote of term 3 */
	raft_fixture_set_term(&F, 1, 3);
	raft_fixture_set_term(&F, 2, 3);
	barrier_ok = s1_late;
	cr_assert_eq(raft_fixture_start(&F), 0);
	raft_fixture_kill(&F, 1);
	raft_fixture_set_randomized_election_timeout(&F, 0, 1000);
	raft_fixture_set_randomized_election_timeout(&F, 1, 100000);
	raft_fixture_set_randomized_election_timeout(&F, 2, 100000);
	cr_assert_eq(until_leader(20000), 0, "S1 is not the first leader");
	s1 = raft_fixture_get(&F, 0);
	cr_assert_eq(s1->current_term, 4);
	end = raft_fixture_time(&F) + 10000;
	while (s1->commit_index < 2 && raft_fixture_time(&F) < end)
		step();
	commit = s1->commit_index; /* and applied in the same step */
	cr_log_info("S1 committed %llu (S3 stored %llu), guard drops %u", (unsigned long long)commit,
	    (unsigned long long)raft_fixture_get(&F, 2)->last_stored, guard_drops);
	raft_fixture_kill(&F, 0);
	raft_fixture_revive(&F, 1);
	barrier_ok = NULL;
	raft_fixture_set_randomized_election_timeout(&F, 1, 1000);
	raft_fixture_set_randomized_election_timeout(&F, 2, 1500);
	step_for(10000);
	for (unsigned i = 0; i < 3; i++) {
		struct raft *r = raft_fixture_get(&F, i);

		cr_log_info("S%u state %d term %llu last %llu commit %llu applied %u: %s@%llu %s@%llu",
		    i + 1, raft_state(r), (unsigned long long)r->current_term,
		    (unsigned long long)raft_last_index(r), (unsigned long long)r->commit_index,
		    S[i].n, S[i].n ? S[i].cmd[0] : "-", (unsigned long long)(S[i].n ? S[i].at[0] : 0),
		    S[i].n > 1 ? S[i].cmd[1] : "-", (unsigned long long)(S[i].n > 1 ? S[i].at[1] : 0));
	}
	*div = diverged(3, why, len);
	return commit;
}

/*
 * With the guard, S1 commits nothing until S3 has its barrier (term 4,
 * index 3); then S2 (last term 3) cannot win S3's vote, S3 leads, and
 * every server applies A at index 2, B nowhere.  Run it with
 * MOM_FAULT_NO_GUARD=1 in the environment and it fails.
 */
Test(cluster, figure8_guard_keeps_a_committed_entry)
{
	char why[256] = "";
	int  div;

	(void)figure8(why, sizeof(why), &div);
	cr_assert_eq(div, 0, "servers diverged: %s", why);
	cr_assert_gt(guard_drops, 0, "the guard never dropped a result: the scenario missed "
	    "the window");
	cr_assert_str_eq(applied_at(0, 2) ? applied_at(0, 2) : "-", "A", "S1 applied A at 2");
	for (unsigned i = 1; i < 3; i++) {
		cr_assert_str_eq(applied_at(i, 2) ? applied_at(i, 2) : "-", "A",
		    "S%u did not apply A at index 2", i + 1);
		for (unsigned k = 0; k < S[i].n; k++)
			cr_assert_str_neq(S[i].cmd[k], "B", "S%u applied B", i + 1);
	}
}

/*
 * The negative control: the guard switched off (the fault build's
 * MOM_FAULT_NO_GUARD), S1 commits and applies A at index 2 by counting
 * replicas, and after it dies S2 and S3 apply B there: the check above
 * sees the divergence.  If this fails, 0.15.0's commit rule changed or
 * the scenario no longer reaches the bug.
 */
Test(cluster, figure8_without_the_guard_loses_a_committed_entry)
{
	char       why[256] = "";
	int        div;
	raft_index c;

	setenv("MOM_FAULT_NO_GUARD", "1", 1);
	c = figure8(why, sizeof(why), &div);
	cr_log_info("without the guard: %s", why);
	cr_assert_eq(c, 2, "S1 did not commit A by counting replicas (commit %llu)",
	    (unsigned long long)c);
	cr_assert_eq(guard_drops, 0);
	cr_assert_eq(div, 1, "no divergence seen without the guard");
	cr_assert_str_eq(applied_at(0, 2) ? applied_at(0, 2) : "-", "A");
	cr_assert_str_eq(applied_at(2, 2) ? applied_at(2, 2) : "-", "B");
}

/* ---- a follower's stale tail ---- */

/* The term of r's entry at index, from its in-memory log (0: not there). */
static raft_term
term_at(const struct raft *r, raft_index index)
{
	const struct raft_log *l = &r->log;
	size_t                 n = l->back >= l->front ? l->back - l->front
	                                               : l->size - l->front + l->back;

	if (index == l->snapshot.last_index)
		return l->snapshot.last_term;
	if (index <= l->offset || index > l->offset + n)
		return 0;
	return l->entries[(l->front + (size_t)(index - 1 - l->offset)) % l->size].term;
}

/*
 * S1 led term 2 and stored X at index 2 alone.  S2 is elected in term 3
 * with S3's vote and appends its barrier at index 2; then S3 is cut off
 * from S2; S1's messages take 200 ms and its appends 500 ms.  S1 accepts S2's first
 * heartbeat (prev_log_index 1, no entries) with X still at 2.  For 3 s,
 * every time S2's commit index moves, a majority must store S2's entry
 * there (Raft's rule); returns 1 and says why at the first time it did
 * not, else 0.
 */
static int
stale_tail(char *why, size_t len)
{
	struct raft *s1, *s2;
	raft_index   seen = 0;
	raft_time    end;

	cluster(3, 3);
	add_entry(0, 2, "X");
	for (unsigned i = 0; i < 3; i++)
		raft_fixture_set_term(&F, i, 2);
	cr_assert_eq(raft_fixture_start(&F), 0);
	raft_fixture_set_randomized_election_timeout(&F, 0, 100000);
	raft_fixture_set_randomized_election_timeout(&F, 1, 1000);
	raft_fixture_set_randomized_election_timeout(&F, 2, 100000);
	raft_fixture_set_network_latency(&F, 0, 200);
	raft_fixture_set_disk_latency(&F, 0, 500);
	cr_assert_eq(until_leader(20000), 1, "S2 is not the first leader");
	raft_fixture_saturate(&F, 1, 2);
	raft_fixture_saturate(&F, 2, 1);
	s1 = raft_fixture_get(&F, 0);
	s2 = raft_fixture_get(&F, 1);
	end = raft_fixture_time(&F) + 3000;
	while (raft_fixture_time(&F) < end && raft_state(s2) == RAFT_LEADER) {
		raft_index c;

		step();
		if ((c = s2->commit_index) <= seen || c < 2)
			continue;
		seen = c;
		if (s1->last_stored < c || term_at(s1, c) != term_at(s2, c)) {
			snprintf(why, len, "S2 committed %llu (term %llu) with S1 storing up to %llu, "
			    "term %llu there", (unsigned long long)c,
			    (unsigned long long)term_at(s2, c), (unsigned long long)s1->last_stored,
			    (unsigned long long)term_at(s1, c));
			return 1;
		}
	}
	cr_log_info("S2 commit %llu, S1 stored %llu", (unsigned long long)s2->commit_index,
	    (unsigned long long)s1->last_stored);
	return 0;
}

Test(cluster, a_stale_tail_never_counts_towards_a_commit)
{
	char why[256] = "";

	cr_assert_eq(stale_tail(why, sizeof(why)), 0, "%s", why);
	cr_assert_geq(raft_fixture_get(&F, 1)->commit_index, 2,
	    "S2 never committed its barrier once S1 had it");
}

/* The guard's two halves, alone. */
Test(cluster, the_stale_tail_guard_caps_to_what_the_request_vouches_for)
{
	struct raft_message ae = { .type = RAFT_IO_APPEND_ENTRIES }, res, other;
	uint64_t            v;

	ae.append_entries.prev_log_index = 5;
	ae.append_entries.n_entries = 2;
	ae.append_entries.leader_commit = 10;
	cr_assert_eq(v = replica_guard_vouch(&ae), 8);
	cr_assert_eq(ae.append_entries.leader_commit, 7, "a commit past the request's entries");
	ae.append_entries.leader_commit = 3;
	cr_assert_eq(replica_guard_vouch(&ae), 8);
	cr_assert_eq(ae.append_entries.leader_commit, 3);

	memset(&res, 0, sizeof(res));
	res.type = RAFT_IO_APPEND_ENTRIES_RESULT;
	res.append_entries_result.last_log_index = 9;
	replica_guard_cap_result(&res, v);
	cr_assert_eq(res.append_entries_result.last_log_index, 7);
	res.append_entries_result.last_log_index = 6;
	replica_guard_cap_result(&res, v);
	cr_assert_eq(res.append_entries_result.last_log_index, 6, "lower stays");
	res.append_entries_result.last_log_index = 9;
	res.append_entries_result.rejected = 6;
	replica_guard_cap_result(&res, v);
	cr_assert_eq(res.append_entries_result.last_log_index, 9, "a refusal's hint stays");
	res.append_entries_result.rejected = 0;
	replica_guard_cap_result(&res, 0);
	cr_assert_eq(res.append_entries_result.last_log_index, 9, "no request being handled");

	/* From the very start of the log: vouches for nothing. */
	ae.append_entries.prev_log_index = 0;
	ae.append_entries.n_entries = 0;
	cr_assert_eq(v = replica_guard_vouch(&ae), 1);
	cr_assert_eq(ae.append_entries.leader_commit, 0);
	replica_guard_cap_result(&res, v);
	cr_assert_eq(res.append_entries_result.last_log_index, 0);

	memset(&other, 0, sizeof(other));
	other.type = RAFT_IO_REQUEST_VOTE;
	cr_assert_eq(replica_guard_vouch(&other), 0);
}

/* The negative control: without the stale-tail guard, libraft commits on S1's word. */
Test(cluster, a_stale_tail_counts_without_the_guard)
{
	char why[256] = "";

	no_tail_guard = true;
	cr_assert_eq(stale_tail(why, sizeof(why)), 1, "no false commit without the guard: the "
	    "scenario no longer reaches libraft's fault");
	cr_log_info("without the stale-tail guard: %s", why);
}

/* ---- the commit stall under steady load ---- */

#define LOADMAX 1000

struct load_req {
	struct raft_apply req;
	unsigned          first, n;
};

static raft_time made[LOADMAX], done_at[LOADMAX];
static unsigned  ncmd, ndone;

static void
load_done(struct raft_apply *a, int status, void *result)
{
	struct load_req *q = (struct load_req *)a;

	(void)result;
	for (unsigned i = 0; i < q->n && status == 0; i++) {
		done_at[q->first + i] = raft_fixture_time(&F);
		ndone++;
	}
	free(q);
}

/* Proposes commands first.. as one entry (window) or one (not): entries proposed. */
static unsigned
propose(struct raft *l, bool window, unsigned *first)
{
	struct load_req   *q;
	struct raft_buffer b;
	unsigned           n;

	if (ncmd == *first || (window && raft_last_index(l) != l->commit_index))
		return 0;
	n = window ? ncmd - *first : 1;
	cr_assert_not_null(q = calloc(1, sizeof(*q)));
	b.len = CMDLEN * n;
	cr_assert_not_null(b.base = raft_malloc(b.len));
	memset(b.base, 'x', b.len);
	q->first = *first;
	q->n = n;
	cr_assert_eq(raft_apply(l, &q->req, &b, 1, load_done), 0);
	*first += n;
	return 1;
}

/*
 * A command every 5 ms for 3 s of fixture time to the leader of three
 * (network 15 ms, disk 10 ms: the fixture's defaults).  window: what
 * replica_flush does with more than one voter (a new entry only when
 * nothing is uncommitted, the commands meanwhile batched into it);
 * otherwise one entry per command at once.  Returns the commands
 * committed during the load; *entries the entries they went in.
 */
static unsigned
steady_load(bool window, unsigned *entries, raft_time *worst)
{
	struct raft *l;
	raft_time    t0, next, end;
	unsigned     first = 0, during;

	cluster(3, 3);
	cr_assert_eq(raft_fixture_start(&F), 0);
	l = raft_fixture_get(&F, until_leader(10000));
	step_for(500);
	ncmd = ndone = 0;
	*entries = 0;
	t0 = raft_fixture_time(&F);
	next = t0;
	end = t0 + 3000;
	while (raft_fixture_time(&F) < end) {
		while (next <= raft_fixture_time(&F) && ncmd < LOADMAX) {
			made[ncmd++] = next;
			next += 5;
		}
		*entries += propose(l, window, &first);
		step();
	}
	during = ndone;
	for (end += 3000; raft_fixture_time(&F) < end; step())
		*entries += propose(l, window, &first);
	cr_assert_eq(ndone, ncmd, "%u of %u commands committed 3 s after the load", ndone, ncmd);
	*worst = 0;
	for (unsigned i = 0; i < ncmd; i++)
		if (done_at[i] - made[i] > *worst)
			*worst = done_at[i] - made[i];
	return during;
}

/*
 * One uncommitted entry in flight, the rest batched: more than 90 % of
 * the commands commit during the load (the experiment: 585 of 598,
 * 75 ms at worst).
 */
Test(cluster, steady_load_keeps_committing_with_one_entry_in_flight)
{
	unsigned  during, entries;
	raft_time worst;

	during = steady_load(true, &entries, &worst);
	cr_log_info("window of one entry: %u of %u committed during the load, in %u entries, "
	    "%llu ms at worst", during, ncmd, entries, (unsigned long long)worst);
	cr_assert_geq(ncmd, 590);
	cr_assert_gt(during * 10, ncmd * 9, "only %u of %u committed during the load", during,
	    ncmd);
	cr_assert_lt(worst, 500, "a command waited %llu ms", (unsigned long long)worst);
}

/*
 * The bug the window works around: an entry per command at once, and
 * 0.15.0 commits only up to the leader's last stored index, which a new
 * entry every 5 ms keeps ahead of every follower: almost nothing commits
 * until the load stops (the experiment: nothing).  If this fails,
 * libraft's commit rule changed (upstream fixed it in 0.17.1).
 */
Test(cluster, steady_load_stalls_commits_without_the_window)
{
	unsigned  during, entries;
	raft_time worst;

	during = steady_load(false, &entries, &worst);
	cr_log_info("pipelined: %u of %u committed during the load, in %u entries, "
	    "%llu ms at worst", during, ncmd, entries, (unsigned long long)worst);
	cr_assert_lt(during * 10, ncmd, "%u of %u committed during the load: no stall", during,
	    ncmd);
}

/* ---- a steady trickle of commands, for the tests below ---- */

static unsigned  first_unproposed;
static raft_time next_cmd;

/*
 * The live leader of the highest term, or n: raft_fixture_leader_index
 * wants every live server to acknowledge it, which an unavailable one
 * never does.
 */
static unsigned
leader_now(void)
{
	unsigned l = raft_fixture_n(&F);

	for (unsigned i = 0; i < raft_fixture_n(&F); i++) {
		struct raft *r = raft_fixture_get(&F, i);

		if (raft_fixture_alive(&F, i) && raft_state(r) == RAFT_LEADER &&
		    (l == raft_fixture_n(&F) || r->current_term > raft_fixture_get(&F, l)->current_term))
			l = i;
	}
	return l;
}

/* One step with a command due every 10 ms, proposed to the leader as replica_flush would. */
static void
trickle_step(void)
{
	unsigned l = leader_now();

	while (next_cmd <= raft_fixture_time(&F) && ncmd < LOADMAX) {
		made[ncmd++] = next_cmd;
		next_cmd += 10;
	}
	/* A command made under a leader that is gone is dropped, not retried. */
	if (l < raft_fixture_n(&F))
		(void)propose(raft_fixture_get(&F, l), true, &first_unproposed);
	else
		first_unproposed = ncmd;
	step();
}

static void
trickle_for(raft_time ms)
{
	raft_time end = raft_fixture_time(&F) + ms;

	while (raft_fixture_time(&F) < end)
		trickle_step();
}

/* ms more with no new command: what is left is proposed and commits. */
static void
drain(raft_time ms)
{
	raft_time end = raft_fixture_time(&F) + ms;
	unsigned  l;

	while (raft_fixture_time(&F) < end) {
		if ((l = leader_now()) < raft_fixture_n(&F))
			(void)propose(raft_fixture_get(&F, l), true, &first_unproposed);
		step();
	}
}

static void
trickle_start(void)
{
	ncmd = ndone = first_unproposed = 0;
	next_cmd = raft_fixture_time(&F);
}

/* Every server's applied commands agree index by index. */
static void
expect_no_divergence(unsigned n)
{
	char why[256];

	cr_assert_eq(diverged(n, why, sizeof(why)), 0, "%s", why);
}

/* ---- membership 3 -> 5 -> 3 ---- */

struct change {
	struct raft_change req;
	bool               done;
	int                status;
};

static void
change_done(struct raft_change *req, int status)
{
	struct change *c = req->data;

	c->done = true;
	c->status = status;
}

static int
voter_count(const struct raft *r)
{
	int n = 0;

	for (unsigned i = 0; i < r->configuration.n; i++)
		n += r->configuration.servers[i].role == RAFT_VOTER;
	return n;
}

/*
 * One change (add, assign as voter, remove) on the leader under the
 * trickle, waited for (10 s at most); the commands keep committing
 * meanwhile.
 */
static void
change(const char *what, unsigned id)
{
	struct raft  *l = raft_fixture_get(&F, until_leader(10000));
	struct change c = { .req = { .data = &c } };
	raft_time     end = raft_fixture_time(&F) + 10000;
	unsigned      done0 = ndone;
	char          addr[16];
	int           rv;

	snprintf(addr, sizeof(addr), "%u", id);
	if (strcmp(what, "add") == 0)
		rv = raft_add(l, &c.req, id, addr, change_done);
	else if (strcmp(what, "voter") == 0)
		rv = raft_assign(l, &c.req, id, RAFT_VOTER, change_done);
	else
		rv = raft_remove(l, &c.req, id, change_done);
	cr_assert_eq(rv, 0, "%s %u: %s", what, id, raft_errmsg(l));
	while (!c.done && raft_fixture_time(&F) < end)
		trickle_step();
	cr_assert(c.done, "%s %u did not finish in 10 s", what, id);
	cr_assert_eq(c.status, 0, "%s %u: %s", what, id, raft_strerror(c.status));
	trickle_for(300);
	cr_assert_gt(ndone, done0, "nothing committed during %s %u", what, id);
}

/* A new empty server (not in any configuration), started. */
static void
grow_started(void)
{
	unsigned i = raft_fixture_n(&F);

	cr_assert_eq(raft_fixture_grow(&F, &fsms[i]), 0);
	wrap_io(i);
	cr_assert_eq(raft_start(raft_fixture_get(&F, i)), 0);
}

/*
 * Three voters, then servers 4 and 5 join one at a time (raft_add as a
 * spare, raft_assign as a voter after libraft's catch-up rounds), then
 * leave one at a time (raft_remove), with a command every 10 ms all the
 * while (a removed server is then stopped): each change finishes,
 * commands commit during each, and no two
 * servers apply different commands at an index; the joiners applied the
 * log from its start.
 */
Test(cluster, membership_three_to_five_to_three_under_load)
{
	struct raft *l;

	cluster(3, 3);
	cr_assert_eq(raft_fixture_start(&F), 0);
	until_leader(10000);
	trickle_start();
	trickle_for(500);
	for (unsigned id = 4; id <= 5; id++) {
		grow_started();
		change("add", id);
		change("voter", id);
	}
	l = raft_fixture_get(&F, until_leader(10000));
	cr_assert_eq(voter_count(l), 5);
	trickle_for(500);
	for (unsigned id = 4; id <= 5; id++)
		cr_assert_geq(S[id - 1].n + 3, S[raft_fixture_leader_index(&F)].n,
		    "server %u applied %u entries, the leader %u", id, S[id - 1].n,
		    S[raft_fixture_leader_index(&F)].n);
	for (unsigned id = 5; id >= 4; id--) {
		change("remove", id);
		raft_fixture_kill(&F, id - 1); /* stopped, as an operator would */
	}
	l = raft_fixture_get(&F, until_leader(10000));
	cr_assert_eq(voter_count(l), 3);
	cr_assert_eq(l->configuration.n, 3);
	trickle_for(500);
	drain(2000);
	cr_log_info("membership: %u of %u commands committed; the leader applied %u entries",
	    ndone, ncmd, S[until_leader(1000)].n);
	cr_assert_eq(ndone, ncmd, "%u of %u commands committed", ndone, ncmd);
	expect_no_divergence(5);
}

/* ---- a follower caught up through a snapshot ---- */

/*
 * Snapshots every 16 entries keeping 4; one follower is down while the
 * leader writes far more than that under the trickle, so the entries it
 * misses are gone from the leader's log: it comes back, gets
 * InstallSnapshot (restored once), then the entries after it, and
 * applies what the leader applies from there on.
 */
Test(cluster, a_follower_catches_up_through_a_snapshot)
{
	unsigned     l, f;
	struct raft *lr, *fr;
	raft_index   behind;

	cluster(3, 3);
	for (unsigned i = 0; i < 3; i++) {
		raft_set_snapshot_threshold(raft_fixture_get(&F, i), 16);
		raft_set_snapshot_trailing(raft_fixture_get(&F, i), 4);
	}
	cr_assert_eq(raft_fixture_start(&F), 0);
	l = until_leader(10000);
	f = (l + 1) % 3;
	lr = raft_fixture_get(&F, l);
	fr = raft_fixture_get(&F, f);
	trickle_start();
	trickle_for(300);
	raft_fixture_kill(&F, f);
	behind = raft_last_applied(fr);
	trickle_for(3000);
	cr_assert_gt(S[l].snapshots, 0, "the leader took no snapshot");
	cr_assert_gt(lr->log.snapshot.last_index, behind + 4,
	    "the leader's log still holds what the follower misses");
	raft_fixture_revive(&F, f);
	for (raft_time end = raft_fixture_time(&F) + 10000;
	    raft_fixture_time(&F) < end && raft_last_applied(fr) < lr->commit_index;)
		trickle_step();
	trickle_for(1000);
	drain(2000);
	cr_log_info("follower %u: %llu applied before, restored %u snapshot(s), applied %llu "
	    "of the leader's %llu", f + 1, (unsigned long long)behind, S[f].restores,
	    (unsigned long long)raft_last_applied(fr), (unsigned long long)lr->commit_index);
	cr_assert_eq(S[f].restores, 1, "restored %u snapshots", S[f].restores);
	cr_assert_eq(raft_last_applied(fr), raft_last_applied(lr));
	cr_assert_gt(S[f].n, 0, "nothing applied after the snapshot");
	cr_assert_eq(ndone, ncmd);
	expect_no_divergence(3);
}

/* ---- a follower whose append failed, restarted in-process ---- */

/* raft_close, then raft_init and raft_start on the same io, as replica would do. */
static bool closed;

static void
closed_cb(struct raft *r)
{
	(void)r;
	closed = true;
}

static void
restart(unsigned i)
{
	struct raft *r = raft_fixture_get(&F, i);
	char         addr[16];
	raft_id      id = r->id;

	closed = false;
	raft_close(r, closed_cb);
	cr_assert(closed, "the fixture's io closes synchronously");
	snprintf(addr, sizeof(addr), "%llu", (unsigned long long)id);
	S[i].was_leader = false;
	cr_assert_eq(raft_init(r, r->io, &fsms[i], id, addr), 0);
	cr_assert_eq(raft_start(r), 0, "%s", raft_errmsg(r));
}

/*
 * A follower's disk fails one append (the fixture's io fault: io->append
 * refuses it at once).  0.15.0 turns the error of the AppendEntries
 * handler into RAFT_UNAVAILABLE, for good: it takes nothing more, while
 * the other two go on committing.  The owner sees the state, restarts
 * raft in-process (raft_close, raft_init, raft_start on the same io, whose
 * disk works again), and the follower catches up and applies what the
 * leader applied.
 */
Test(cluster, a_follower_whose_append_failed_recovers_after_a_restart)
{
	unsigned     l, f;
	struct raft *lr, *fr;
	raft_index   stuck;

	cluster(3, 3);
	cr_assert_eq(raft_fixture_start(&F), 0);
	l = until_leader(10000);
	f = (l + 1) % 3;
	lr = raft_fixture_get(&F, l);
	fr = raft_fixture_get(&F, f);
	trickle_start();
	trickle_for(300);
	raft_fixture_io_fault(&F, f, 0, 1); /* the next io request fails, once */
	for (raft_time end = raft_fixture_time(&F) + 2000;
	    raft_state(fr) != RAFT_UNAVAILABLE && raft_fixture_time(&F) < end;)
		trickle_step();
	cr_assert_eq(raft_state(fr), RAFT_UNAVAILABLE, "the follower is %d",
	    raft_state(fr));
	stuck = raft_last_applied(fr);
	trickle_for(1000);
	cr_assert_eq(raft_state(fr), RAFT_UNAVAILABLE, "it came back by itself");
	cr_assert_eq(raft_last_applied(fr), stuck);
	cr_assert_gt(lr->commit_index, stuck + 10, "the other two stopped committing: %llu, %llu",
	    (unsigned long long)lr->commit_index, (unsigned long long)stuck);
	restart(f);
	for (raft_time end = raft_fixture_time(&F) + 5000;
	    raft_fixture_time(&F) < end && raft_last_applied(fr) < lr->commit_index;)
		trickle_step();
	drain(1000);
	cr_log_info("follower %u: unavailable at %llu, after the restart applied %llu of %llu",
	    f + 1, (unsigned long long)stuck, (unsigned long long)raft_last_applied(fr),
	    (unsigned long long)lr->commit_index);
	cr_assert_eq(raft_state(fr), RAFT_FOLLOWER);
	cr_assert_eq(raft_last_applied(fr), raft_last_applied(lr));
	cr_assert_eq(ndone, ncmd);
	expect_no_divergence(3);
}

/* ---- a follower whose snapshot is newer than the leader's ---- */

#define NO_SNAPSHOTS 1000000

/*
 * What a chaos run livelocked on.  S3 snapshots once early (keeping no
 * entry before it), S2 later (keeping 4), so S2's snapshot is newer than
 * S3's and its log no longer holds S3's snapshot index; S1 takes none.
 * S1 leads, then S3 is elected while its sends to S2 fail: libraft 0.15
 * puts S2 back to next index 1 (a failed send goes back to probe at the
 * match index plus one, 0 plus one for a follower not heard in this term).
 * S3 goes on committing with S1.  Once the link is back, S2 refuses S3's
 * first heartbeat (it lacks the entry), and S3 then sends its snapshot;
 * S2 takes it for a no-op (it has a newer one) and answers with its
 * index; S3 probes right after it, where S2 has no entry either: S2
 * refuses, S3 steps back below its log and sends its snapshot again.
 * Returns S2's applied index after 5 s more of trickle and 2 s of drain;
 * *lead is S3's.
 */
static raft_index
newer_follower_snapshot(raft_index *lead)
{
	static struct raft_transfer xfer;
	struct raft *s2, *s3;
	raft_index   s3snap;

	cluster(3, 3);
	s2 = raft_fixture_get(&F, 1);
	s3 = raft_fixture_get(&F, 2);
	raft_set_snapshot_threshold(raft_fixture_get(&F, 0), NO_SNAPSHOTS);
	raft_set_snapshot_threshold(s2, 48);
	raft_set_snapshot_trailing(s2, 4);
	raft_set_snapshot_threshold(s3, 16);
	raft_set_snapshot_trailing(s3, 0);
	cr_assert_eq(raft_fixture_start(&F), 0);
	raft_fixture_set_randomized_election_timeout(&F, 0, 1000);
	raft_fixture_set_randomized_election_timeout(&F, 1, 100000);
	raft_fixture_set_randomized_election_timeout(&F, 2, 100000);
	cr_assert_eq(until_leader(20000), 0, "S1 is not the first leader");
	trickle_start();
	/* Its snapshot index moves when the snapshot is stored. */
	for (raft_time end = raft_fixture_time(&F) + 20000;
	    s3->log.snapshot.last_index == 0 && raft_fixture_time(&F) < end;)
		trickle_step();
	raft_set_snapshot_threshold(s3, NO_SNAPSHOTS);
	cr_assert_eq(S[2].snapshots, 1);
	s3snap = s3->log.snapshot.last_index;
	cr_assert_gt(s3snap, 0);
	for (raft_time end = raft_fixture_time(&F) + 20000;
	    s2->log.snapshot.last_index < s3snap + 16 && raft_fixture_time(&F) < end;)
		trickle_step();
	raft_set_snapshot_threshold(s2, NO_SNAPSHOTS);
	drain(1000);
	cr_assert_gt(s2->log.snapshot.last_index, s3snap);
	cr_assert_eq(term_at(s2, s3snap), 0, "S2's log still holds S3's snapshot index");
	cr_assert_eq(raft_last_applied(s2), raft_last_applied(raft_fixture_get(&F, 0)));
	/* S1 hands over to S3, whose sends to S2 fail. */
	raft_fixture_disconnect(&F, 2, 1);
	raft_fixture_set_randomized_election_timeout(&F, 0, 100000);
	cr_assert_eq(raft_transfer(raft_fixture_get(&F, 0), &xfer, 3, NULL), 0);
	/* No proposals during the transfer (raft_apply refuses them). */
	for (raft_time end = raft_fixture_time(&F) + 5000;
	    leader_now() != 2 && raft_fixture_time(&F) < end;)
		step();
	cr_assert_eq(leader_now(), 2, "S3 does not lead");
	trickle_for(1000);
	cr_assert_gt(raft_last_index(s3), raft_last_index(s2), "S3 wrote nothing S2 misses");
	raft_fixture_reconnect(&F, 2, 1);
	trickle_for(5000);
	drain(2000);
	*lead = raft_last_applied(s3);
	cr_log_info("S3 snapshot %llu, S2 snapshot %llu; applied: S3 %llu, S2 %llu; gap fixes %u",
	    (unsigned long long)s3snap, (unsigned long long)s2->log.snapshot.last_index,
	    (unsigned long long)*lead, (unsigned long long)raft_last_applied(s2), gap_fixes);
	return raft_last_applied(s2);
}

Test(cluster, a_follower_with_a_newer_snapshot_than_the_leaders_catches_up)
{
	raft_index lead, got = newer_follower_snapshot(&lead);

	cr_assert_eq(got, lead, "S2 applied %llu of the leader's %llu", (unsigned long long)got,
	    (unsigned long long)lead);
	cr_assert_gt(gap_fixes, 0, "the scenario never reached the gap");
	cr_assert_eq(ndone, ncmd);
	expect_no_divergence(3);
}

/* The negative control: without the fix, S2 applies nothing more. */
Test(cluster, a_follower_with_a_newer_snapshot_livelocks_without_the_fix)
{
	raft_index lead, got;

	no_gap_fix = true;
	got = newer_follower_snapshot(&lead);
	cr_assert_lt(got, lead, "S2 caught up without the fix: the scenario missed the livelock");
	cr_assert_eq(gap_fixes, 0);
}

/* An AppendEntries of n entries after prev, each term terms[k], one batch; entry k's first byte is k. */
static void
gap_ae(struct raft_message *m, raft_index prev, raft_term prev_term, unsigned n,
    const raft_term *terms)
{
	uint8_t *batch;

	memset(m, 0, sizeof(*m));
	m->type = RAFT_IO_APPEND_ENTRIES;
	m->append_entries.term = 2;
	m->append_entries.prev_log_index = prev;
	m->append_entries.prev_log_term = prev_term;
	m->append_entries.leader_commit = prev + n;
	m->append_entries.n_entries = n;
	if (n == 0)
		return;
	cr_assert_not_null(m->append_entries.entries = raft_malloc(n * sizeof(struct raft_entry)));
	cr_assert_not_null(batch = raft_malloc(n * CMDLEN));
	for (unsigned k = 0; k < n; k++) {
		struct raft_entry *e = &m->append_entries.entries[k];

		memset(batch + k * CMDLEN, (int)k, CMDLEN);
		e->term = terms[k];
		e->type = RAFT_COMMAND;
		e->buf.base = batch + k * CMDLEN;
		e->buf.len = CMDLEN;
		e->batch = batch;
	}
}

static void
gap_ae_free(struct raft_message *m)
{
	if (m->append_entries.n_entries > 0)
		raft_free(m->append_entries.entries[0].batch);
	raft_free(m->append_entries.entries);
}

/*
 * The fix alone, on one server with a snapshot at 10 (term 2) and entries
 * 11 to 13 after it.
 */
Test(cluster, the_snapshot_gap_fix_moves_only_requests_below_the_snapshot_and_outside_the_log)
{
	static const raft_term two[8] = { 2, 2, 2, 2, 2, 2, 2, 2 };
	static const raft_term odd[8] = { 2, 2, 2, 2, 3, 3, 3, 3 };
	struct raft_snapshot  *sn;
	struct raft_message    m;
	struct raft           *r;

	memset(S, 0, sizeof(S));
	fsm_init(0);
	grow(1);
	cr_assert_not_null(sn = raft_malloc(sizeof(*sn)));
	memset(sn, 0, sizeof(*sn));
	sn->index = 10;
	sn->term = 2;
	raft_configuration_init(&sn->configuration);
	cr_assert_eq(raft_configuration_add(&sn->configuration, 1, "1", RAFT_VOTER), 0);
	sn->configuration_index = 1;
	cr_assert_not_null(sn->bufs = raft_malloc(sizeof(*sn->bufs)));
	cr_assert_not_null(sn->bufs[0].base = raft_malloc(8));
	memset(sn->bufs[0].base, 0, 8);
	sn->bufs[0].len = 8;
	sn->n_bufs = 1;
	raft_fixture_set_snapshot(&F, 0, sn);
	for (int k = 0; k < 3; k++)
		add_entry(0, 2, "a");
	cr_assert_eq(raft_fixture_start(&F), 0);
	r = raft_fixture_get(&F, 0);
	cr_assert_eq(r->log.snapshot.last_index, 10);
	cr_assert_eq(raft_last_index(r), 13);

	/* Entries 6 to 12 after 5: those up to 10 go, 11 and 12 stay, checked at 10. */
	gap_ae(&m, 5, 2, 7, two);
	cr_assert(replica_guard_covered(r, &m));
	cr_assert_eq(m.append_entries.prev_log_index, 10);
	cr_assert_eq(m.append_entries.prev_log_term, 2);
	cr_assert_eq(m.append_entries.n_entries, 2);
	cr_assert_eq(((uint8_t *)m.append_entries.entries[0].buf.base)[0], 5);
	cr_assert_eq(((uint8_t *)m.append_entries.entries[1].buf.base)[0], 6);
	gap_ae_free(&m);

	/* All of its entries under the snapshot: a heartbeat at 10, the batch freed (valgrind). */
	gap_ae(&m, 3, 2, 4, two);
	cr_assert(replica_guard_covered(r, &m));
	cr_assert_eq(m.append_entries.prev_log_index, 10);
	cr_assert_eq(m.append_entries.n_entries, 0);
	cr_assert_null(m.append_entries.entries);
	gap_ae(&m, 4, 2, 0, NULL);
	cr_assert(replica_guard_covered(r, &m));
	cr_assert_eq(m.append_entries.prev_log_index, 10);

	/* The leader's entry at 10 is of another term: left to libraft's own check. */
	gap_ae(&m, 5, 2, 7, odd);
	cr_assert_not(replica_guard_covered(r, &m));
	cr_assert_eq(m.append_entries.prev_log_index, 5);
	cr_assert_eq(m.append_entries.n_entries, 7);
	gap_ae_free(&m);

	/* At the snapshot, in the log, past it, from the start, or not an AppendEntries: untouched. */
	for (raft_index prev = 10; prev <= 14; prev++) {
		gap_ae(&m, prev, 2, 0, NULL);
		cr_assert_not(replica_guard_covered(r, &m), "prev %llu", (unsigned long long)prev);
	}
	gap_ae(&m, 0, 0, 0, NULL);
	cr_assert_not(replica_guard_covered(r, &m));
	m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
	m.append_entries.prev_log_index = 5;
	cr_assert_not(replica_guard_covered(r, &m));
}

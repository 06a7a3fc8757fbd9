/*
 * replica.c: the replicated log through libraft (see replica.h).
 *
 * Every command of one turn of the core loop goes into one raft log
 * entry (a batch: the count, then each command with its length),
 * proposed to libraft (a cluster of one), written by rio to the segment
 * store and covered by one fsync with everything else appended in that
 * turn (group commit).  When libraft applies the entry, each command goes
 * through fsm_apply() and its waiter gets the result: a reply is sent
 * only after the command is on disk and applied.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>

#include "buf.h"
#include "log.h"
#include "mom.h"
#include "replica/replica.h"
#include "replica/replica_int.h"
#include "state/fsm.h"
#include "storage/rio.h"
#include "storage/store.h"
#include "wire.h"

#define REPLAY_MAX_MS 300000 /* a log that never becomes ready */
#define STOP_MAX_MS   5000

/* A libraft status as the error a client gets. */
static void
fail_all(struct replica *r, const struct replica_waiter *w, size_t n, int status)
{
	int         err = MOM_EUNAVAIL;
	const char *why = raft_strerror(status);
	char        msg[256];
	size_t      i;

	switch (status) {
	case RAFT_NOSPACE:
		err = MOM_EFULL;
		why = "the broker's disk is full";
		break;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		err = MOM_ENOTLEADER;
		break;
	case RAFT_CANCELED:
	case RAFT_SHUTDOWN:
		err = MOM_ECLOSED;
		why = "broker shutting down";
		break;
	case RAFT_NOMEM:
		err = MOM_ENOMEM;
		break;
	}
	snprintf(msg, sizeof(msg), "not stored: %s", why);
	for (i = 0; i < n; i++)
		r->cfg.fail(r->cfg.arg, &w[i], err, msg);
}

/*
 * libraft applies committed entries through rfsm_apply, on the core thread
 * (inside rio_step, rio_recv or raft_start), and answers the proposal
 * (prop_done) right after.  rfsm_apply only stashes the entry; stash_apply
 * puts it through the fsm when libraft's step is over.  libraft 0.15 makes
 * a follower apply what the leader says is committed before it tells the
 * leader that it stored the new entries, and a leader apply what it
 * committed before it proposes the next entry: applying a batch of
 * thousands of commands took 5 to 10 ms there, twice on every round of
 * the one-entry window.  With the stash a follower answers first, and a
 * leader proposes the next entry first (step_done), so that the next
 * round is on its way while each node applies.  The stash is emptied
 * when each libraft step is over (step_done, replay, raft_start), before
 * a snapshot is taken or restored, and before the core is called with
 * anything that reads the state (a new leadership, a forwarded request):
 * the core never sees it.  Its buffers stay valid meanwhile: libraft frees
 * a committed entry only once a snapshot that covers it is stored.
 */
static void
apply_one(struct replica *r, uint64_t index, const void *base, size_t len)
{
	struct prop      *p;
	struct mom_rd     rd;
	struct fsm_result res;
	uint64_t          n, i;

	/* Ours if we proposed it (then it is the oldest in flight). */
	TAILQ_FOREACH(p, &r->props, link)
		if (p->req.index >= index)
			break;
	if (p != NULL && (p->req.index != index || p->answered))
		p = NULL;
	mom_rd_init(&rd, base, len);
	n = mom_rd_varint(&rd);
	for (i = 0; i < n; i++) {
		const uint8_t *cmd;
		size_t         clen;

		cmd = mom_rd_bytes(&rd, &clen);
		if (rd.err)
			break;
		fsm_apply(r->fsm, cmd, clen, &res);
		if (p != NULL && i < p->n)
			r->cfg.result(r->cfg.arg, &p->w[i], &res);
		else if (res.status != 0)
			log_debug("command refused: %s", res.err);
		json_decref(res.json);
	}
	if (rd.err)
		log_warnx("log entry %llu is malformed: %llu of its %llu commands applied",
		    (unsigned long long)index, (unsigned long long)i, (unsigned long long)n);
	r->commands += i;
	if (p != NULL) {
		if (i < p->n)
			fail_all(r, p->w + i, p->n - i, RAFT_MALFORMED);
		p->answered = true;
	}
	/* Proposals libraft applied up to here are done (prop_done left them). */
	while ((p = TAILQ_FIRST(&r->props)) != NULL && p->committed && p->req.index <= index) {
		if (!p->answered)
			fail_all(r, p->w, p->n, RAFT_MALFORMED);
		TAILQ_REMOVE(&r->props, p, link);
		free(p->w);
		free(p);
	}
}

/* Applies what rfsm_apply stashed, in log order. */
static void
stash_apply(struct replica *r)
{
	size_t i;

	/* An apply never calls back into libraft, so nothing joins the stash meanwhile. */
	for (i = 0; i < r->nstash; i++)
		apply_one(r, r->stash[i].index, r->stash[i].base, r->stash[i].len);
	r->nstash = 0;
}

static int
rfsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
	struct replica *r = rf->data;
	raft_index      index = raft_last_applied(&r->raft) + 1;

	*result = NULL;
	/* Every node applies every entry: followers snapshot too, by what they applied. */
	r->applied_bytes += buf->len;
	if (r->applied_bytes >= r->snap_at)
		raft_set_snapshot_threshold(&r->raft, 1);
	if (r->nstash == r->capstash) {
		size_t          cap = r->capstash ? 2 * r->capstash : 16;
		struct stashed *s = reallocarray(r->stash, cap, sizeof(*s));

		if (s == NULL) { /* out of memory: apply now, in order */
			stash_apply(r);
			apply_one(r, index, buf->base, buf->len);
			return 0;
		}
		r->stash = s;
		r->capstash = cap;
	}
	r->stash[r->nstash++] = (struct stashed){ index, buf->base, buf->len };
	return 0;
}

/*
 * The core's callbacks that read the state, called inside a libraft step:
 * what that step committed is applied first (see stash_apply).
 */
void
replica_call_role(struct replica *r, bool leading)
{
	stash_apply(r);
	if (r->cfg.role != NULL)
		r->cfg.role(r->cfg.arg, leading);
}

void
replica_call_deliver(struct replica *r, uint64_t from, uint8_t kind, const void *data,
    size_t len)
{
	stash_apply(r);
	if (r->cfg.deliver != NULL)
		r->cfg.deliver(r->cfg.arg, from, kind, data, len);
}

/*
 * Snapshots in two halves (libraft's fsm version 3), so that a big state
 * does not stop the core thread: rfsm_snapshot, on the core thread, takes
 * fsm_snap_begin's copy (all but the messages, which are referenced);
 * rfsm_snapshot_async, on rio's worker (or at once without one), writes
 * the snapshot from that copy alone; rio writes the file on the worker
 * too; rfsm_snapshot_finalize, on the core thread when it is written (or
 * failed), frees both.  libraft takes one snapshot at a time.
 */
static int
rfsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct replica *r = rf->data;
	int64_t         t0 = mom_mono_us();
	uint64_t        size;

	*bufs = NULL;
	*n_bufs = 0;
	if (r->snap != NULL)
		return RAFT_BUSY;
	stash_apply(r); /* the snapshot covers everything libraft applied */
	if (fsm_snap_begin(r->fsm, &r->snap) != 0)
		return RAFT_NOMEM;
	size = fsm_snap_size(r->snap);
	/* The next one after as much log again as the state is big, at least snapshot_bytes. */
	r->snap_at = r->applied_bytes + (2 * size > r->cfg.snapshot_bytes ? 2 * size :
	    r->cfg.snapshot_bytes);
	raft_set_snapshot_threshold(&r->raft, UINT32_MAX);
	r->snapshots++;
	r->snap_begin_us = (uint64_t)(mom_mono_us() - t0);
	log_debug("snapshot: about %llu bytes, %llu us on the core thread",
	    (unsigned long long)size, (unsigned long long)r->snap_begin_us);
	return 0;
}

/* On rio's worker: reads r->snap only, which the core thread leaves alone until finalize. */
static int
rfsm_snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct replica     *r = rf->data;
	struct mom_buf      b;
	struct raft_buffer *rb;
	size_t              len;

	mom_buf_init(&b);
	if (r->snap == NULL || fsm_snap_write(r->snap, &b) != 0 ||
	    (rb = malloc(sizeof(*rb))) == NULL) {
		mom_buf_fini(&b);
		return RAFT_NOMEM;
	}
	rb->base = mom_buf_steal(&b, &len);
	rb->len = len;
	*bufs = rb;
	*n_bufs = 1;
	return 0;
}

static int
rfsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct replica *r = rf->data;

	for (unsigned i = 0; *bufs != NULL && i < *n_bufs; i++)
		free((*bufs)[i].base);
	free(*bufs);
	*bufs = NULL;
	*n_bufs = 0;
	fsm_snap_end(r->snap);
	r->snap = NULL;
	return 0;
}

/*
 * An installed snapshot, on rio's worker once it is written (rio.h,
 * prepare): its state is built there, and rfsm_restore only swaps it in.
 * Reads r->fsm_cfg alone.  NULL: out of memory or malformed (the restore
 * then parses it again and says so).
 */
static void *
install_parse(void *arg, const void *data, size_t len)
{
	struct replica *r = arg;
	struct fsm     *n;

	return fsm_restore_parse(&r->fsm_cfg, data, len, &n) == 0 ? n : NULL;
}

static void
install_discard(void *arg, void *prepared)
{
	(void)arg;
	fsm_free(prepared);
}

static int
rfsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct replica *r = rf->data;
	struct fsm     *n = rio_take_prepared(&r->io, buf->base);
	int64_t         t0 = mom_mono_us();
	int             rv;

	stash_apply(r); /* older than the snapshot, which replaces the state */
	if (n != NULL) {
		fsm_restore_swap(r->fsm, n);
	} else if ((rv = fsm_restore(r->fsm, buf->base, buf->len)) != 0) {
		log_warnx("the snapshot in the data directory is unusable (%s)",
		    rv == MOM_ENOMEM ? "out of memory" : "malformed");
		return rv == MOM_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
	}
	if (!r->loading) {
		r->installed++;
		r->install_us = (uint64_t)(mom_mono_us() - t0);
		log_info("installed a snapshot of %zu bytes from the leader (%llu ms on the core "
		    "thread%s)", buf->len, (unsigned long long)(r->install_us / 1000),
		    n != NULL ? ", parsed before" : "");
	}
	raft_free(buf->base);
	return 0;
}

/* Proposals. */

int
replica_add(struct replica *r, const void *cmd, size_t len, const struct replica_waiter *w)
{
	static const struct replica_waiter nobody = { NULL, 0 };

	if (r->bn == r->bcap) {
		size_t                 cap = r->bcap ? r->bcap * 2 : 64;
		struct replica_waiter *nw = realloc(r->bw, cap * sizeof(*nw));

		if (nw == NULL)
			return MOM_ENOMEM;
		r->bw = nw;
		r->bcap = cap;
	}
	mom_buf_put_bytes(&r->batch, cmd, len);
	if (r->batch.err != 0)
		return MOM_ENOMEM;
	r->bw[r->bn++] = w != NULL ? *w : nobody;
	return 0;
}

size_t
replica_pending(const struct replica *r)
{
	return r->bn;
}

static void
prop_done(struct raft_apply *req, int status, void *result)
{
	struct prop    *p = req->data;
	struct replica *r = p->r;

	(void)result;
	/* Applied by libraft, stashed by rfsm_apply: apply_one answers and frees it. */
	if (status == 0 && !p->answered) {
		p->committed = true;
		return;
	}
	if (!p->answered)
		fail_all(r, p->w, p->n, status != 0 ? status : RAFT_MALFORMED);
	TAILQ_REMOVE(&r->props, p, link);
	free(p->w);
	free(p);
}

/* The entry: the command count (LEB128), then the commands.  0, or -1: out of memory. */
static int
entry_build(struct replica *r, struct raft_buffer *b)
{
	uint8_t  hdr[10];
	size_t   h = 0;
	uint64_t v = r->bn;

	do {
		hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	b->len = h + r->batch.len;
	if ((b->base = raft_malloc(b->len)) == NULL)
		return -1;
	memcpy(b->base, hdr, h);
	memcpy((uint8_t *)b->base + h, r->batch.data, r->batch.len);
	return 0;
}

/* Voters in the configuration. */
static unsigned
voters(const struct replica *r)
{
	unsigned i, n = 0;

	for (i = 0; i < r->raft.configuration.n; i++)
		if (r->raft.configuration.servers[i].role == RAFT_VOTER)
			n++;
	return n;
}

/*
 * May a new entry go now?  With more than one voter, only when nothing is
 * uncommitted: libraft 0.15.0 commits only up to the leader's last stored
 * index, so with a new entry every few milliseconds that index keeps ahead
 * of every follower and nothing commits (the stall; upstream fixed it in
 * 0.17.1; tests/unit/cluster_test.c shows both).  The commands that arrive
 * meanwhile wait in the batch and go as the next entry.  A single voter
 * commits what it stores: no window there (group commit as before).
 */
static bool
window_open(struct replica *r)
{
	return voters(r) <= 1 || raft_state(&r->raft) != RAFT_LEADER ||
	    raft_last_index(&r->raft) <= r->raft.commit_index;
}

void
replica_flush(struct replica *r)
{
	struct raft_buffer b;
	struct prop       *p;
	int                rv;

	if (r->bn == 0 || !window_open(r))
		return;
	p = calloc(1, sizeof(*p));
	if (p == NULL || entry_build(r, &b) != 0) {
		free(p);
		mom_buf_reset(&r->batch);
		fail_all(r, r->bw, r->bn, RAFT_NOMEM);
		r->bn = 0;
		return;
	}
	mom_buf_reset(&r->batch);
	p->r = r;
	p->w = r->bw;
	p->n = r->bn;
	p->req.data = p;
	r->bw = NULL;
	r->bn = r->bcap = 0;
	if ((rv = raft_apply(&r->raft, &p->req, &b, 1, prop_done)) != 0) {
		raft_free(b.base);
		if (rv != RAFT_NOSPACE || !r->disk_full)
			log_warnx("not stored: %s", raft_errmsg(&r->raft));
		r->disk_full = rv == RAFT_NOSPACE;
		fail_all(r, p->w, p->n, rv);
		free(p->w);
		free(p);
		return;
	}
	if (r->disk_full) {
		log_info("the data directory takes writes again");
		r->disk_full = false;
	}
	TAILQ_INSERT_TAIL(&r->props, p, link);
	r->entries++;
	r->log_bytes += b.len;
	/*
	 * On a full disk only a snapshot frees the segments that acks and
	 * deletes empty: one after every eighth of the reserve written.
	 */
	if (rio_full(&r->io) && r->log_bytes >= r->full_snap_at) {
		r->full_snap_at = r->log_bytes + (r->cfg.reserve / 8 > 65536 ?
		    r->cfg.reserve / 8 : 65536);
		raft_set_snapshot_threshold(&r->raft, 1);
	}
}

/*
 * A cluster node looks for a new leadership after every step (cluster.c:
 * the new leader's barrier).  A single broker leads from replay on, its
 * barrier replay's.
 */
static void
watch(struct replica *r)
{
	if (r->cfg.node_id != 0)
		cluster_watch(r);
}

/*
 * After each libraft step: what the window waited for may be committed now,
 * so the next entry goes before this node applies (see stash_apply).
 */
static void
step_done(struct replica *r)
{
	if (r->nstash > 0) {
		replica_flush(r);
		stash_apply(r);
	}
	watch(r);
}

int
replica_drive(struct replica *r, const char **errmsg)
{
	if (r->cfg.node_id != 0)
		transport_drain(r);
	/* First look too: a received vote (rio_recv) may have made it leader. */
	step_done(r);
	while (rio_poll(&r->io) == 0) {
		if (rio_step(&r->io) != 0) {
			*errmsg = r->io.errmsg;
			return -1;
		}
		step_done(r);
	}
	/*
	 * libraft 0.15 turns a node unavailable for good when a handler
	 * fails: an append this follower could not store (a full disk), or
	 * a leader's entry that conflicts with one this node committed
	 * (which only a broken Raft produces).  It then drops every message
	 * and never stands again: stop, and a restart recovers from the disk.
	 */
	if (r->cfg.node_id != 0 && raft_state(&r->raft) == RAFT_UNAVAILABLE) {
		*errmsg = "libraft stopped this node: an append it could not store (a full "
		    "disk), or a leader's entry that conflicts with one it committed";
		return -1;
	}
	return 0;
}

bool
replica_full(struct replica *r)
{
	return rio_full(&r->io);
}

bool
replica_inflight(const struct replica *r)
{
	/* Commands waiting for the window (replica_flush) count too. */
	return !TAILQ_EMPTY(&r->props) || r->bn > 0;
}

int64_t
replica_poll(struct replica *r)
{
	if (r->node.more)
		return 0;
	return rio_poll(&r->io);
}

void
replica_trim(struct replica *r)
{
	/*
	 * After a snapshot libraft freed the log entries it covers: give the
	 * pages back (glibc keeps freed memory otherwise), once per snapshot.
	 */
	if (r->trimmed != r->snapshots) {
		int64_t t0 = mom_mono_us();

		r->trimmed = r->snapshots;
		malloc_trim(0);
		/* It walks every free chunk of the heap, the core thread waiting. */
		r->trim_us = (uint64_t)(mom_mono_us() - t0);
		if (r->trim_us > r->trim_us_max)
			r->trim_us_max = r->trim_us;
		if (r->trim_us >= 100000)
			log_warnx("giving freed memory back (malloc_trim) held the core thread "
			    "for %llu ms", (unsigned long long)(r->trim_us / 1000));
	}
}

/* Leadership and numbers. */

bool
replica_is_leader(const struct replica *r)
{
	if (r->cfg.node_id != 0)
		return r->node.leading;
	return raft_state((struct raft *)&r->raft) == RAFT_LEADER;
}

enum replica_role
replica_role(const struct replica *r)
{
	struct raft *raft = (struct raft *)&r->raft;
	const struct raft_server *s;
	unsigned i;

	if (r->node.removed_index != 0 && raft_state(raft) != RAFT_LEADER)
		return REPLICA_REMOVED;
	switch (raft_state(raft)) {
	case RAFT_LEADER:
		return replica_is_leader(r) ? REPLICA_LEADER : REPLICA_CANDIDATE;
	case RAFT_CANDIDATE:
		return REPLICA_CANDIDATE;
	case RAFT_UNAVAILABLE:
		return REPLICA_UNAVAILABLE;
	default:
		for (i = 0; i < raft->configuration.n; i++) {
			s = &raft->configuration.servers[i];
			if (s->id == raft->id)
				return s->role == RAFT_VOTER ? REPLICA_FOLLOWER : REPLICA_STANDBY;
		}
		return REPLICA_STANDBY;
	}
}

uint64_t
replica_leader(const struct replica *r, const char **url)
{
	raft_id     id = 0;
	const char *addr = NULL;

	raft_leader((struct raft *)&r->raft, &id, &addr);
	if (url != NULL)
		*url = addr;
	return id;
}

uint64_t
replica_term(const struct replica *r)
{
	return r->raft.current_term;
}

static const char *
fsync_name(int mode)
{
	return mode == RIO_FSYNC_INTERVAL ? "interval" : mode == RIO_FSYNC_NEVER ? "never" :
	    "always";
}

void
replica_stats_json(struct replica *r, json_t *o)
{
	struct rio_stats st;

	json_object_set_new(o, "fsync", json_string(fsync_name(r->cfg.fsync)));
	json_object_set_new(o, "log_index", json_integer((json_int_t)raft_last_index(&r->raft)));
	json_object_set_new(o, "log_applied",
	    json_integer((json_int_t)raft_last_applied(&r->raft)));
	json_object_set_new(o, "log_entries", json_integer((json_int_t)r->entries));
	json_object_set_new(o, "log_commands", json_integer((json_int_t)r->commands));
	json_object_set_new(o, "log_bytes", json_integer((json_int_t)r->log_bytes));
	json_object_set_new(o, "snapshots", json_integer((json_int_t)r->snapshots));
	json_object_set_new(o, "snapshots_installed", json_integer((json_int_t)r->installed));
	json_object_set_new(o, "snapshot_pause_us", json_integer((json_int_t)r->snap_begin_us));
	json_object_set_new(o, "snapshot_install_pause_us", json_integer((json_int_t)r->install_us));
	json_object_set_new(o, "trim_pause_us", json_integer((json_int_t)r->trim_us));
	json_object_set_new(o, "trim_pause_us_max", json_integer((json_int_t)r->trim_us_max));
	rio_stats(&r->io, &st);
	json_object_set_new(o, "log_syncs", json_integer((json_int_t)st.syncs));
	json_object_set_new(o, "log_sync_us", json_integer((json_int_t)st.sync_us));
	json_object_set_new(o, "log_disk_bytes", json_integer((json_int_t)st.bytes));
	json_object_set_new(o, "raft_guard_drops", json_integer((json_int_t)st.guard_drops));
	json_object_set_new(o, "raft_gap_fixes", json_integer((json_int_t)st.gap_fixes));
	json_object_set_new(o, "raft_appends_lost", json_integer((json_int_t)st.appends_lost));
	json_object_set_new(o, "raft_barriers", json_integer((json_int_t)r->node.barriers));
}

void
replica_status(const struct replica *r, uint64_t *term, uint64_t *commit, uint64_t *applied)
{
	*term = r->raft.current_term;
	*commit = r->raft.commit_index;
	*applied = raft_last_applied((struct raft *)&r->raft);
}

/* Start and stop. */

static void
barrier_cb(struct raft_barrier *req, int status)
{
	struct replica *r = req->data;

	if (status != 0) {
		r->start_err = status;
		snprintf(r->errmsg, sizeof(r->errmsg), "the log did not start: %s",
		    raft_strerror(status));
	} else
		r->ready = true;
}

/* raft_close takes a callback; rio closes synchronously, nothing waits for it. */
static void
close_cb(struct raft *raft)
{
	(void)raft;
}

/* rio and raft_init: this node's id and address (1, "self" for a single broker). */
static int
raft_create(struct replica *r)
{
	struct rio_config rc;
	int               rv;

	memset(&rc, 0, sizeof(rc));
	rc.dir = r->cfg.dir;
	rc.fsync = r->cfg.fsync;
	rc.fsync_interval_ms = r->cfg.fsync_interval_ms;
	rc.reserve = r->cfg.reserve;
	rc.transport = r->transport.send != NULL ? &r->transport : NULL;
	/* The syncs run on rio's thread: the core serves on meanwhile. */
	rc.wake = r->cfg.wake;
	rc.wake_arg = r->cfg.arg;
	/* A snapshot installed from the leader is parsed there too. */
	rc.prepare = install_parse;
	rc.discard = install_discard;
	rc.prepare_arg = r;
	if (rio_create(&r->io, &rc) != 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "out of memory");
		return -1;
	}
	r->rfsm.version = 3;
	r->rfsm.data = r;
	r->rfsm.apply = rfsm_apply;
	r->rfsm.snapshot = rfsm_snapshot;
	r->rfsm.restore = rfsm_restore;
	r->rfsm.snapshot_finalize = rfsm_snapshot_finalize;
	r->rfsm.snapshot_async = rfsm_snapshot_async;
	rv = r->cfg.node_id != 0 ?
	    raft_init(&r->raft, &r->io, &r->rfsm, r->cfg.node_id, r->cfg.cluster_url) :
	    raft_init(&r->raft, &r->io, &r->rfsm, 1, "self");
	if (rv != 0) {
		r->start_code = rv;
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", r->io.errmsg[0] ?
		    r->io.errmsg : raft_strerror(rv));
		rio_destroy(&r->io);
		return -1;
	}
	r->raft.data = r;
	rio_attach(&r->io, &r->raft);
	raft_set_snapshot_threshold(&r->raft, UINT32_MAX);
	raft_set_snapshot_trailing(&r->raft, 64);
	if (r->cfg.node_id != 0) {
		unsigned et = (unsigned)(r->cfg.election_timeout_ms ? r->cfg.election_timeout_ms :
		    REPLICA_ELECTION_MS);

		/*
		 * A node that was cut off or stalled (a big snapshot, SIGSTOP)
		 * asks first whether it could win: only then does it raise the
		 * term, which would depose a leader the others still follow.
		 */
		raft_set_pre_vote(&r->raft, true);
		raft_set_election_timeout(&r->raft, et);
		raft_set_heartbeat_timeout(&r->raft, et / 10 > 10 ? et / 10 : 10);
	}
	return 0;
}

/* A single broker: a configuration of one voter, "self". */
static int
bootstrap_single(struct replica *r)
{
	struct raft_configuration conf;
	int                       rv;

	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, 1, "self", RAFT_VOTER);
	if (rv == 0)
		rv = raft_bootstrap(&r->raft, &conf);
	raft_configuration_close(&conf);
	return rv == RAFT_CANTBOOTSTRAP ? 0 : rv;
}

static void
raft_abort(struct replica *r, int rv)
{
	r->start_code = rv;
	if (r->errmsg[0] == '\0')
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", raft_errmsg(&r->raft));
	raft_close(&r->raft, close_cb);
	rio_destroy(&r->io);
}

/*
 * Opens the log.  Every start is a leadership of its own where this node
 * is the only voter (new_term): a new term, so that receipts handed out
 * before a restart are never handed out again.  libraft 0.15 makes the
 * only voter leader again in the term it had; in a cluster an election
 * moves the term on.  0, or -1 with r->errmsg.
 */
static int
raft_open(struct replica *r, bool new_term)
{
	bool alone = false;
	int  rv;

	if (raft_create(r) != 0)
		return -1;
	if (r->cfg.node_id == 0) {
		rv = bootstrap_single(r);
		new_term = true;
	} else
		rv = cluster_bootstrap(r, &alone) == 0 ? 0 : RAFT_INVALID;
	if (rv == 0 && new_term && (rv = rio_new_term(&r->io)) != 0)
		snprintf(r->raft.errmsg, sizeof(r->raft.errmsg), "%s", r->io.errmsg);
	r->loading = true; /* a restore now is our own snapshot */
	if (rv == 0)
		rv = raft_start(&r->raft);
	r->loading = false;
	stash_apply(r);
	if (rv != 0) {
		raft_abort(r, rv);
		return -1;
	}
	/* Alone in the configuration: it led at once, in its old term.  Again, with a new one. */
	if (alone && !new_term && raft_state(&r->raft) == RAFT_LEADER) {
		raft_close(&r->raft, close_cb);
		rio_destroy(&r->io);
		return raft_open(r, true);
	}
	return 0;
}

/*
 * Leader of one, then a barrier: everything in the log is applied.
 * Replaying a large log takes its time inside rio_step; the bound is for
 * a log that never becomes ready.  0 or -1.
 */
static int
replay(struct replica *r)
{
	struct raft_barrier barrier;
	int64_t             deadline = mom_now_ms() + REPLAY_MAX_MS;
	int                 rv;
	bool                retried = false;

	memset(&barrier, 0, sizeof(barrier));
	barrier.data = r;
	while (!r->ready && r->start_err == 0 && mom_now_ms() < deadline) {
		if (raft_state(&r->raft) == RAFT_LEADER && barrier.cb == NULL &&
		    (rv = raft_barrier(&r->raft, &barrier, barrier_cb)) != 0) {
			/*
			 * A full disk: the write that found it full made the
			 * store give up its reserve, where the barrier fits now.
			 */
			if (rv == RAFT_NOSPACE && rio_full(&r->io) && !retried) {
				retried = true;
				barrier.cb = NULL;
				continue;
			}
			snprintf(r->errmsg, sizeof(r->errmsg), "%s", raft_errmsg(&r->raft));
			return -1;
		}
		/* -1: a sync runs on rio's thread (or nothing is due). */
		if ((rv = rio_poll(&r->io)) != 0)
			usleep(rv < 0 || rv > 10 ? 1000 : (useconds_t)rv * 1000);
		if ((rv = rio_step(&r->io)) != 0) {
			snprintf(r->errmsg, sizeof(r->errmsg), "%s", r->io.errmsg);
			return -1;
		}
		stash_apply(r);
	}
	if (r->ready)
		return 0;
	if (r->start_err == 0)
		snprintf(r->errmsg, sizeof(r->errmsg), "the log did not become ready in %d s",
		    REPLAY_MAX_MS / 1000);
	return -1;
}

static void
replica_free(struct replica *r)
{
	membership_free(r);
	fsm_snap_end(r->snap); /* NULL: rio's close completed every snapshot */
	mom_buf_fini(&r->batch);
	free(r->bw);
	free(r->stash);
	free(r);
}

int
replica_start(struct replica **rp, struct fsm *fsm, const struct replica_config *cfg,
    char *err, size_t errlen)
{
	struct replica *r;
	int             rv;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		mom_errf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	}
	r->fsm = fsm;
	r->fsm_cfg = fsm->cfg;
	r->cfg = *cfg;
	r->snap_at = cfg->snapshot_bytes;
	mom_buf_init(&r->batch);
	TAILQ_INIT(&r->props);
	if (cluster_check_dir(r) != 0 || (cfg->node_id != 0 && transport_start(r) != 0)) {
		mom_errf(err, errlen, "%s", r->errmsg);
		transport_stop(r);
		replica_free(r);
		return MOM_EINVAL;
	}
	if (raft_open(r, false) != 0) {
		transport_stop(r);
		mom_errf(err, errlen, "%s", r->errmsg);
		rv = r->start_code == RAFT_CORRUPT || r->start_code == RAFT_MALFORMED ?
		    MOM_EBADDATA : r->start_code == RAFT_NOMEM ? MOM_ENOMEM : MOM_EINTERNAL;
		replica_free(r);
		return rv;
	}
	if (cfg->node_id == 0 && replay(r) != 0) {
		mom_errf(err, errlen, "%s", r->errmsg);
		r->ready = false;
		raft_close(&r->raft, close_cb);
		rio_destroy(&r->io);
		transport_stop(r);
		replica_free(r);
		return MOM_EINTERNAL;
	}
	*rp = r;
	return 0;
}

void
replica_stop(struct replica *r)
{
	int64_t     deadline = mom_now_ms() + STOP_MAX_MS;
	const char *why;

	if (r == NULL)
		return;
	/* What was proposed is finished (confirmed or refused) before closing. */
	replica_flush(r);
	while (replica_inflight(r) && mom_now_ms() < deadline) {
		int64_t w = rio_poll(&r->io);

		if (w != 0)
			usleep(w < 0 || w > 10 ? 1000 : (useconds_t)w * 1000);
		if (replica_drive(r, &why) != 0)
			break;
		replica_flush(r);
	}
	/* Never proposed (the window stayed shut): refused, not forgotten. */
	if (r->bn > 0) {
		fail_all(r, r->bw, r->bn, RAFT_SHUTDOWN);
		r->bn = 0;
	}
	/*
	 * Whatever --fsync says, a clean stop leaves everything on disk, and
	 * says so: the next start takes no bad record for a torn write.  Not
	 * after a failed sync: what is on disk is unknown.
	 */
	if (rio_store(&r->io) != NULL && !rio_failed(&r->io) &&
	    store_mark_clean(rio_store(&r->io)) != 0)
		log_warnx("the last sync of the log failed: %s", store_errmsg(rio_store(&r->io)));
	stash_apply(r); /* a drive that failed may have left some: committed all the same */
	membership_stop(r);
	raft_close(&r->raft, close_cb);
	rio_destroy(&r->io);
	transport_stop(r);
	replica_free(r);
}

/* Repair (mom-broker --repair). */

struct repair_ctx {
	uint64_t snap;     /* the snapshot's index: it holds what is below */
	uint64_t messages; /* published by the readable entries dropped */
};

/* A readable entry the cut drops: its messages, unless the snapshot has them. */
static int
repair_count(void *arg, const struct store_entry *e)
{
	struct repair_ctx *c = arg;
	struct mom_rd      rd;
	const uint8_t     *cmd;
	uint64_t           n, i;
	size_t             len;

	if (e->index <= c->snap || e->type != RAFT_COMMAND)
		return 0;
	mom_rd_init(&rd, e->buf, e->len);
	n = mom_rd_varint(&rd);
	for (i = 0; i < n && !rd.err; i++) {
		cmd = mom_rd_bytes(&rd, &len);
		if (!rd.err)
			c->messages += fsm_cmd_messages(cmd, len);
	}
	return 0;
}

int
replica_repair(const char *dir, char *report, size_t replen, char *err, size_t errlen)
{
	struct store_config        cfg;
	struct repair_ctx          c = { 0, 0 };
	struct store              *s;
	const struct store_repair *rp;
	uint64_t                   from, to;
	int                        rc;

	if ((rc = rio_snapshot_index(dir, &c.snap, err, errlen)) != 0)
		return rc;
	memset(&cfg, 0, sizeof(cfg));
	cfg.repair = true;
	cfg.repair_cb = repair_count;
	cfg.repair_arg = &c;
	if ((rc = store_open(dir, &cfg, &s, err, errlen)) != 0)
		return rc;
	rp = store_repaired(s);
	if (!rp->cut) {
		mom_errf(report, replen, "nothing to repair in %s: the log is whole "
		    "(entries %llu..%llu)", dir, (unsigned long long)store_first(s),
		    (unsigned long long)store_last(s));
		store_close(s);
		return 0;
	}
	/* Cut below the snapshot: what is left before the cut is in it. */
	if (rp->index <= c.snap && store_last(s) != 0 &&
	    (rc = store_truncate(s, store_first(s))) != 0) {
		mom_errf(err, errlen, "%s", store_errmsg(s));
		store_close(s);
		return rc;
	}
	from = rp->index > c.snap ? rp->index : c.snap + 1;
	to = rp->last > from ? rp->last : from;
	mom_errf(report, replen, "repaired %s: %s cut at byte %llu (%s): %llu entries dropped "
	    "(%llu..%llu, %llu of them readable, with %llu messages; the damaged one is "
	    "unreadable), %llu bytes", dir, rp->file, (unsigned long long)rp->offset, rp->why,
	    (unsigned long long)(to - from + 1), (unsigned long long)from,
	    (unsigned long long)to, (unsigned long long)rp->readable,
	    (unsigned long long)c.messages, (unsigned long long)rp->bytes);
	store_close(s);
	return 0;
}

/* Conversion (mom-broker --convert-to-cluster). */

int
replica_convert(const char *dir, uint64_t node_id, const char *url, const uint8_t *key,
    size_t keylen, char *err, size_t errlen)
{
	struct replica           *r;
	struct raft_configuration conf;
	struct ident_member       m = { node_id, url };
	char                      salt[64];
	int                       rv;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		mom_errf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	}
	r->cfg.dir = dir;
	r->cfg.node_id = node_id;
	r->cfg.cluster_url = url;
	mom_buf_init(&r->batch);
	TAILQ_INIT(&r->props);
	rv = ident_load(dir, &r->node.ident, err, errlen);
	if (rv == 0) {
		mom_errf(err, errlen, "%s is node %" PRIu64 " of cluster %016" PRIx64 " already",
		    dir, r->node.ident.node, r->node.ident.cluster);
		replica_free(r);
		return MOM_EEXIST;
	}
	if (rv != MOM_ENOENT || raft_create(r) != 0) {
		if (rv == MOM_ENOENT)
			mom_errf(err, errlen, "%s", r->errmsg);
		replica_free(r);
		return MOM_EINVAL;
	}
	/* The stored configuration is replaced by this node alone, with a term of its own. */
	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, node_id, url, RAFT_VOTER);
	if (rv == 0)
		rv = raft_recover(&r->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == 0 && (rv = rio_new_term(&r->io)) != 0)
		snprintf(r->raft.errmsg, sizeof(r->raft.errmsg), "%s", r->io.errmsg);
	if (rv == 0) {
		snprintf(salt, sizeof(salt), "converted %lld", (long long)time(NULL));
		r->node.ident.node = node_id;
		r->node.ident.cluster = ident_derive(key, keylen, &m, 1, salt);
		if (ident_save(dir, &r->node.ident, err, errlen) != 0)
			rv = RAFT_IOERR;
	} else
		mom_errf(err, errlen, "%s", raft_errmsg(&r->raft));
	if (rv == 0 && rio_store(&r->io) != NULL)
		(void)store_mark_clean(rio_store(&r->io));
	raft_close(&r->raft, close_cb);
	rio_destroy(&r->io);
	replica_free(r);
	return rv == 0 ? 0 : MOM_EINTERNAL;
}

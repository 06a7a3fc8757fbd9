/*
 * rio.c: our struct raft_io for libraft: its log and metadata in the
 * segment store, its snapshots in one file, completions driven by the
 * owner's rio_step (see rio.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "crc32c.h"
#include "le.h"
#include "mom.h"
#include "storage/guard.h"
#include "storage/rio.h"
#include "log.h"

enum done_kind { DONE_APPEND, DONE_SEND, DONE_WORK, DONE_PARKED, DONE_SNAP_PUT, DONE_SNAP_GET };

struct done {
	enum done_kind        kind;
	void                 *req;
	void                 *cb;
	int                   status;
	struct raft_snapshot *snap; /* DONE_SNAP_GET */
};

/* A job of the snapshot worker (rio.h, wake). */
enum bg_kind { BG_WORK, BG_PUT, BG_GET, BG_SEND };

struct bg {
	struct bg                  *next;
	enum bg_kind                kind;
	void                       *req, *cb;
	const char                 *dir;
	const struct raft_snapshot *put;      /* BG_PUT: libraft's, until its callback */
	unsigned                    trailing; /* BG_PUT */
	struct raft_snapshot       *got;      /* BG_GET */
	struct raft_message         msg;      /* BG_SEND: libraft's, until its callback */
	char                       *addr;     /* BG_SEND: msg.server_address, copied */
	struct rio_transport        tp;       /* BG_SEND */
	int                         status;
	uint64_t                    took_ms;
	void                       *prepared; /* BG_PUT of an install: cfg.prepare's */
	char                        err[RAFT_ERRMSG_BUF_SIZE];
	void                     *(*prepare)(void *, const void *, size_t);
	void                       *prepare_arg;
};

struct rio {
	struct rio_config    cfg;
	struct rio_transport transport;
	bool                 has_transport;
	struct store        *store;
	struct raft         *raft; /* rio_attach: where libraft's next index comes from */
	struct store_meta    meta;
	uint64_t             rnd;
	uint64_t             snap_index; /* of the latest snapshot, 0: none */
	/* The index of the next append when there is no rio_attach. */
	uint64_t             next;
	bool                 fenced; /* a sync failed: appends parked until close */
	/* Invariants at the boundary (rio.h): what libraft had at the last look. */
	uint64_t             seen_commit, seen_applied;
	uint64_t             vouch; /* while an AppendEntries is handled: guard.h */
	char                 broken[200]; /* "": none broken (fits io->errmsg) */
	bool                 unsynced; /* appends written since the last sync */
	uint64_t             interval; /* RIO_FSYNC_INTERVAL, in ms */
	uint64_t             last_sync; /* owner's clock at the last sync (or init) */
	bool                 full_told; /* rio_full: the full disk was logged */
	uint64_t             reserve_try; /* owner's clock of the next store_reserve_restore */
	struct rio_stats     stats;
#ifdef MOM_FAULT_INJECTION
	bool                 confirm_early; /* MOM_FAULT_CONFIRM_EARLY (rio.h) */
#endif
	/* Timer. */
	raft_io_tick_cb      tick;
	raft_io_recv_cb      recv;
	unsigned             msecs;
	uint64_t             next_tick;
	/* Completions, in order. */
	struct done         *q;
	size_t               nq, capq;
	/* Syncs on a thread (rio.h, wake): wq holds the appends it covers. */
	bool                 async, syncing;
	struct done         *wq;
	size_t               nwq, capwq;
	struct store_synctok tok;
	pthread_t            thr;
	bool                 thr_up;
	pthread_mutex_t      mu;
	pthread_cond_t       cv;
	bool                 posted, done, quit; /* under mu */
	uint64_t             took_us;            /* under mu */
	/* Snapshot work on a thread (rio.h, wake): jobs to do, jobs done. */
	pthread_t            bthr;
	bool                 bthr_up;
	pthread_mutex_t      bmu;
	pthread_cond_t       bcv;
	struct bg           *bhead, **btail;     /* under bmu */
	struct bg           *bdone, **bdtail;    /* under bmu */
	bool                 bquit;              /* under bmu */
	size_t               bpending;           /* submitted, not collected */
	/* An installed snapshot on the worker (rio.h, prepare); what it prepared. */
	bool                 installing;
	void                *prepared;
	const void          *prepared_data;
};

static struct rio *
R(struct raft_io *io)
{
	return io->impl;
}

static uint64_t
now_ms(struct rio *r)
{
	struct timespec ts;

	if (r->cfg.clock)
		return r->cfg.clock(r->cfg.clock_arg);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
raft_err(int mom)
{
	switch (mom) {
	case 0:             return 0;
	case MOM_EFULL:     return RAFT_NOSPACE;
	case MOM_ENOMEM:    return RAFT_NOMEM;
	case MOM_EBADDATA:  return RAFT_CORRUPT;
	case MOM_EINVAL:    return RAFT_INVALID;
	default:            return RAFT_IOERR;
	}
}

/* Sets io->errmsg from the store's last error and returns the RAFT_* code. */
static int
store_fail(struct raft_io *io, const char *what, int mom)
{
	snprintf(io->errmsg, sizeof(io->errmsg), "%s: %s", what,
	    R(io)->store ? store_errmsg(R(io)->store) : "store closed");
	return raft_err(mom);
}

static int
push(struct rio *r, enum done_kind k, void *req, void *cb, int status)
{
	if (r->nq == r->capq) {
		size_t       c = r->capq ? r->capq * 2 : 16;
		struct done *q = realloc(r->q, c * sizeof(*q));

		if (!q)
			return RAFT_NOMEM;
		r->q = q;
		r->capq = c;
	}
	r->q[r->nq++] = (struct done){ k, req, cb, status, NULL };
	return 0;
}

/*
 * store_sync, counted and timed.  The time is CLOCK_MONOTONIC's, not the
 * owner's clock: it measures the disk, and a test's fake clock does not move.
 */
static int
sync_store(struct rio *r)
{
	struct timespec a, b;
	int64_t         ns;
	int             rc;

	r->unsynced = false;
	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = store_sync(r->store);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ns = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
	r->stats.sync_us += ns > 0 ? (uint64_t)ns / 1000u : 0;
	r->last_sync = now_ms(r);
	if (rc == 0)
		r->stats.syncs++;
	return rc;
}

/* A sync of the appends: a failure fences (see rio.h). */
static int
sync_or_fence(struct raft_io *io)
{
	struct rio *r = R(io);
	int         rc;

	if ((rc = sync_store(r)) != 0) {
		r->fenced = true;
		return store_fail(io, "sync", rc);
	}
	return 0;
}

/*
 * A follower (of a cluster: alone, a node leads) acknowledges what it
 * stores: in interval mode its appends are synced before they complete,
 * as in always mode (rio.h).
 */
static bool
acks_appends(struct rio *r)
{
	return r->raft != NULL && raft_state(r->raft) == RAFT_FOLLOWER;
}

/* Milliseconds until the appends written need a sync: 0 now, -1 never. */
static int64_t
sync_wait(struct rio *r, uint64_t now)
{
	uint64_t since;

	if (!r->unsynced)
		return -1;
	switch (r->cfg.fsync) {
	case RIO_FSYNC_ALWAYS:
		return 0;
	case RIO_FSYNC_INTERVAL:
		if (acks_appends(r))
			return 0;
		since = now > r->last_sync ? now - r->last_sync : 0;
		if (since >= r->interval)
			return 0;
		return r->interval - since > INT64_MAX ? INT64_MAX : (int64_t)(r->interval - since);
	default:
		return -1;
	}
}

/*
 * An invariant libraft broke (its asserts are compiled out of Debian's
 * build): said once, and the io fences as after a failed sync, so that
 * nothing more commits; rio_step returns RAFT_CORRUPT from now on and the
 * owner stops (rio.h).  Returns RAFT_CORRUPT for the call that found it.
 */
static int PRINTFLIKE(2, 3)
broken(struct raft_io *io, const char *fmt, ...)
{
	struct rio *r = R(io);
	va_list     ap;

	if (r->broken[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(r->broken, sizeof(r->broken), fmt, ap);
		va_end(ap);
		log_warnx("raft invariant broken: %s: %s", r->cfg.dir, r->broken);
	}
	r->fenced = true;
	snprintf(io->errmsg, sizeof(io->errmsg), "raft invariant broken: %s", r->broken);
	return RAFT_CORRUPT;
}

/* The commit and applied index only move forward (checked at every step and receive). */
static void
check_indexes(struct raft_io *io)
{
	struct rio *r = R(io);
	uint64_t    c, a;

	if (r->raft == NULL || r->broken[0] != '\0')
		return;
	c = r->raft->commit_index;
	a = raft_last_applied(r->raft);
	if (c < r->seen_commit)
		(void)broken(io, "the commit index went back from %llu to %llu",
		    (unsigned long long)r->seen_commit, (unsigned long long)c);
	else if (a < r->seen_applied)
		(void)broken(io, "the applied index went back from %llu to %llu",
		    (unsigned long long)r->seen_applied, (unsigned long long)a);
	r->seen_commit = c > r->seen_commit ? c : r->seen_commit;
	r->seen_applied = a > r->seen_applied ? a : r->seen_applied;
}

/* ---- methods ---- */

static int
m_init(struct raft_io *io, raft_id id, const char *address)
{
	struct rio         *r = R(io);
	struct store_config sc = { .segment_size = r->cfg.segment_size,
		.nosync = r->cfg.fsync == RIO_FSYNC_NEVER, .reserve = r->cfg.reserve };
	char                err[RAFT_ERRMSG_BUF_SIZE - 16];
	int                 rc;

	(void)id;
	(void)address;
	if (r->store) {
		snprintf(io->errmsg, sizeof(io->errmsg), "rio: already initialized");
		return RAFT_BUSY;
	}
	if ((rc = store_open(r->cfg.dir, &sc, &r->store, err, sizeof(err))) != 0) {
		snprintf(io->errmsg, sizeof(io->errmsg), "open store: %s", err);
		r->store = NULL;
		return raft_err(rc);
	}
	if (store_warning(r->store) != NULL)
		log_warnx("%s", store_warning(r->store));
	if ((rc = store_meta_load(r->store, &r->meta)) != 0) {
		rc = store_fail(io, "load metadata", rc);
		store_close(r->store);
		r->store = NULL;
		return rc;
	}
	r->next = store_last(r->store) + 1;
	r->full_told = store_full(r->store);
	r->fenced = false;
	r->async = r->thr_up; /* close did the syncs itself */
	r->unsynced = false;
	r->last_sync = now_ms(r);
	r->tick = NULL;
	r->recv = NULL;
	return 0;
}

static int  snap_read(const char *dir, struct raft_snapshot **out, char *err, size_t errlen);
static void snap_free(struct raft_snapshot *sn);

/* Syncs and completes everything queued. */
static int flush(struct raft_io *io, bool closing);
static int sync_drain(struct raft_io *io, bool closing);
static void bg_drain(struct raft_io *io);
static void prepared_drop(struct rio *r, void *prepared);

static void
m_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct rio *r = R(io);

	/* Snapshot work ends first (its completions are queued). */
	bg_drain(io);
	/* A sync on the thread ends first; the rest is synced here. */
	if (r->async) {
		(void)sync_drain(io, true);
		r->async = false;
	}
	/* A clean close leaves nothing unsynced that interval mode would
	 * have synced later (never mode leaves it to the OS). */
	if (r->unsynced && r->cfg.fsync == RIO_FSYNC_INTERVAL)
		(void)sync_or_fence(io);
	/* Pending requests hold libraft memory: complete them now.  raft is
	 * unavailable: it only releases them (parked ones report 0, see
	 * flush).  Callbacks may queue nothing that matters. */
	while (r->nq || r->bpending) {
		bg_drain(io); /* a completed snapshot work may start its put */
		flush(io, true);
	}
	prepared_drop(r, r->prepared);
	r->prepared = NULL;
	r->prepared_data = NULL;
	store_close(r->store);
	r->store = NULL;
	r->tick = NULL;
	r->recv = NULL;
	if (cb)
		cb(io);
}

struct load_ctx {
	struct raft_entry *e;
	size_t             n;
	int                rc;
};

static int
load_one(void *arg, const struct store_entry *se)
{
	struct load_ctx   *c = arg;
	struct raft_entry *e = &c->e[c->n];
	void              *b = raft_malloc(se->len ? se->len : 1);

	if (!b)
		return c->rc = RAFT_NOMEM;
	if (se->len)
		memcpy(b, se->buf, se->len);
	e->term = se->term;
	e->type = se->type;
	e->buf.base = b;
	e->buf.len = se->len;
	/*
	 * No batch: libraft frees the payload when the entry is gone.  With a
	 * batch of its own per entry, libraft 0.15 looks through the whole
	 * log for another entry of that batch each time it drops one
	 * (isBatchReferenced in log.c): the first snapshot after a start
	 * dropped tens of thousands of loaded entries, each against the whole
	 * log, and held the core thread for seconds (the watchdog's stacks in
	 * a chaos run: rio_step -> takeSnapshotCb -> log.c).  The price: if
	 * raft_start fails after the load, entryBatchesDestroy frees only
	 * batches and the payloads leak, in a broker that then exits.
	 */
	e->batch = NULL;
	c->n++;
	return 0;
}

static int
m_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
    struct raft_snapshot **snapshot, raft_index *start_index,
    struct raft_entry *entries[], size_t *n_entries)
{
	struct rio     *r = R(io);
	struct load_ctx c = { 0 };
	uint64_t        first = store_first(r->store), last = store_last(r->store);
	int             rc;

	struct raft_snapshot *sn;

	*term = r->meta.term;
	*voted_for = r->meta.vote;
	*snapshot = NULL;
	*entries = NULL;
	*n_entries = 0;
	if ((rc = snap_read(r->cfg.dir, &sn, io->errmsg, sizeof(io->errmsg))) != 0)
		return rc;
	*start_index = first ? first : sn ? sn->index + 1 : 1;
	if (first > (sn ? sn->index + 1 : 1)) {
		/* Only a snapshot can drop the head of the log. */
		snprintf(io->errmsg, sizeof(io->errmsg),
		    "log starts at %llu after the snapshot's %llu", (unsigned long long)first,
		    (unsigned long long)(sn ? sn->index : 0));
		snap_free(sn);
		return RAFT_CORRUPT;
	}
	*snapshot = sn;
	r->snap_index = sn ? sn->index : 0;
	if (last == 0) {
		r->next = r->snap_index + 1;
		return 0;
	}
	if (!(c.e = raft_malloc((size_t)(last - first + 1) * sizeof(*c.e)))) {
		snap_free(sn);
		*snapshot = NULL;
		snprintf(io->errmsg, sizeof(io->errmsg), "load: out of memory");
		return RAFT_NOMEM;
	}
	rc = store_read(r->store, first, last, load_one, &c);
	if (rc != 0) {
		for (size_t i = 0; i < c.n; i++)
			raft_free(c.e[i].buf.base);
		raft_free(c.e);
		snap_free(sn);
		*snapshot = NULL;
		if (c.rc) {
			snprintf(io->errmsg, sizeof(io->errmsg), "load: out of memory");
			return c.rc;
		}
		return store_fail(io, "load", rc);
	}
	*entries = c.e;
	*n_entries = c.n;
	return 0;
}

static int
m_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
	struct rio *r = R(io);

	r->msecs = msecs ? msecs : 1;
	r->tick = tick;
	r->recv = recv;
	r->next_tick = now_ms(r) + r->msecs;
	return 0;
}

/* Appends one configuration entry at the end of the log, durably. */
static int
append_conf(struct raft_io *io, const struct raft_configuration *conf, uint64_t term)
{
	struct rio        *r = R(io);
	struct raft_buffer b;
	struct store_entry e;
	size_t             used = 1 + 8;
	int                rc;

	if ((rc = raft_configuration_encode(conf, &b)) != 0) {
		snprintf(io->errmsg, sizeof(io->errmsg), "encode configuration: %s", raft_strerror(rc));
		return rc;
	}
	/* The encoding (u8 version, u64 n, per server u64 id, address and
	 * its NUL, u8 role) is padded to 8 bytes left uninitialised: zero
	 * them, or the log holds stray heap bytes (different on each node). */
	for (unsigned i = 0; i < conf->n; i++)
		used += 8 + strlen(conf->servers[i].address) + 1 + 1;
	if (used < b.len)
		memset((uint8_t *)b.base + used, 0, b.len - used);
	e = (struct store_entry){ store_last(r->store) + 1, term, RAFT_CHANGE, b.base, b.len };
	rc = store_append(r->store, &e, 1);
	raft_free(b.base);
	if (rc != 0)
		return store_fail(io, "append configuration", rc);
	r->stats.entries++;
	r->stats.bytes += STORE_REC_HDR + STORE_BODY_MIN + e.len;
	/* Synced in every mode: bootstrap and recover are rare, and a node
	 * must not come back without the configuration it was given. */
	if ((rc = sync_store(r)) != 0)
		return store_fail(io, "append configuration", rc);
	r->next = store_last(r->store) + 1;
	return 0;
}

static int
save_meta(struct raft_io *io, uint64_t term, uint64_t vote)
{
	struct rio       *r = R(io);
	struct store_meta m = { term, vote };
	int               rc;

	if ((rc = store_meta_save(r->store, &m)) != 0)
		return store_fail(io, "save term and vote", rc);
	r->meta = m;
	return 0;
}

int
rio_new_term(struct raft_io *io)
{
	struct rio *r = R(io);
	int         rc = save_meta(io, r->meta.term + 1, 0);

	/* On a full disk the new term went into the reserve (store_meta_save). */
	if (rc == 0 && store_full(r->store) && !r->full_told) {
		r->full_told = true;
		log_warnx("the disk is full: %s; publishes and creates are refused until "
		    "there is room again", store_errmsg(r->store));
	}
	return rc;
}

static int
m_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
	struct rio *r = R(io);
	int         rc;

	if (r->meta.term != 0 || store_last(r->store) != 0) {
		snprintf(io->errmsg, sizeof(io->errmsg), "bootstrap: the store is not empty");
		return RAFT_CANTBOOTSTRAP;
	}
	/* Term 1 first: a crash in between leaves a non-pristine store that
	 * fails the next bootstrap loudly rather than a log without a term. */
	if ((rc = save_meta(io, 1, 0)) != 0)
		return rc;
	return append_conf(io, conf, 1);
}

static int
m_recover(struct raft_io *io, const struct raft_configuration *conf)
{
	struct rio *r = R(io);

	if (r->fenced) {
		snprintf(io->errmsg, sizeof(io->errmsg), "recover: a sync failed");
		return RAFT_IOERR;
	}
	return append_conf(io, conf, r->meta.term ? r->meta.term : 1);
}

static int
m_set_term(struct raft_io *io, raft_term term)
{
	return save_meta(io, term, 0);
}

static int
m_set_vote(struct raft_io *io, raft_id id)
{
	return save_meta(io, R(io)->meta.term, id);
}

static int bg_send(struct rio *r, struct raft_io_send *req, raft_io_send_cb cb,
    const struct raft_message *m);

static int
m_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
    raft_io_send_cb cb)
{
	struct rio         *r = R(io);
	struct raft_message capped;
	int                 st = RAFT_NOCONNECTION;

	req->cb = cb;
	/* An answer to the AppendEntries being handled: the stale-tail guard (guard.h). */
	if (r->vouch != 0 && m->type == RAFT_IO_APPEND_ENTRIES_RESULT) {
		capped = *m;
		replica_guard_cap_result(&capped, r->vouch);
		m = &capped;
	}
	/*
	 * A snapshot (the whole state) is encoded and handed to the
	 * transport on the worker: libraft keeps its buffers until the
	 * callback, which comes when the worker is done.
	 */
	if (m->type == RAFT_IO_INSTALL_SNAPSHOT && r->has_transport && r->bthr_up)
		return bg_send(r, req, cb, m);
	if (r->has_transport) {
		st = r->transport.send(r->transport.arg, m);
		/*
		 * An AppendEntries the links could not take is lost on the
		 * way, as Raft expects any message may be.  Reported as
		 * failed, libraft 0.15 puts the follower back to probe at its
		 * match index plus one: 1 for a follower a new leader has
		 * not heard from yet, so the leader sends its whole snapshot
		 * to a node that was down a moment and may miss a few entries.
		 */
		if (st != 0 && m->type == RAFT_IO_APPEND_ENTRIES) {
			r->stats.appends_lost++;
			st = 0;
		}
	}
	return push(r, DONE_SEND, req, (void *)cb, st);
}

static int
m_append(struct raft_io *io, struct raft_io_append *req, const struct raft_entry entries[],
    unsigned n, raft_io_append_cb cb)
{
	struct rio         *r = R(io);
	struct store_entry *se;
	uint64_t            first = r->next, bytes = 0;
	int                 rc;

	req->cb = cb;
	if (r->fenced) /* completed (discarded) at close: see rio.h */
		return push(r, DONE_PARKED, req, (void *)cb, 0);
	if (r->installing) {
		bg_drain(io); /* the log the install replaces goes first */
		first = r->next;
	}
	/* libraft has already put the entries at the end of its log. */
	if (r->raft && n > 0 && raft_last_index(r->raft) >= n)
		first = raft_last_index(r->raft) - n + 1;
	if (first != (store_last(r->store) ? store_last(r->store) + 1 : r->snap_index + 1))
		return broken(io, "an append at %llu, not after the log on disk (which ends "
		    "at %llu)", (unsigned long long)first, (unsigned long long)(store_last(r->store) ?
		    store_last(r->store) : r->snap_index));
	if (n == 0) {
		if ((rc = push(r, DONE_APPEND, req, (void *)cb, 0)) == 0)
			r->stats.appends++;
		return rc;
	}
	if (!(se = malloc(n * sizeof(*se)))) {
		snprintf(io->errmsg, sizeof(io->errmsg), "append: out of memory");
		return RAFT_NOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		/*
		 * libraft 0.15 allocates a barrier's 8-byte body and leaves it
		 * uninitialised: zero it (nothing reads it), or the log holds
		 * stray heap bytes, different on each node (valgrind saw it).
		 */
		if (entries[i].type == RAFT_BARRIER && entries[i].buf.base != NULL)
			memset(entries[i].buf.base, 0, entries[i].buf.len);
		se[i] = (struct store_entry){ first + i, entries[i].term,
			(uint8_t)entries[i].type, entries[i].buf.base, entries[i].buf.len };
		bytes += STORE_REC_HDR + STORE_BODY_MIN + entries[i].buf.len;
	}
	rc = store_append(r->store, se, n);
	free(se);
	if (rc == MOM_EFULL && store_full(r->store) && !r->full_told) {
		r->full_told = true;
		log_warnx("the disk is full: %s; publishes and creates are refused until "
		    "there is room again", store_errmsg(r->store));
	}
	/* A failed write kept nothing: refused now, libraft drops the entries
	 * at once (raft_apply returns the error) and the log stays whole. */
	if (rc != 0)
		return store_fail(io, "append", rc);
	if ((rc = push(r, DONE_APPEND, req, (void *)cb, 0)) != 0) {
		/* Written but libraft drops it: cut it back. */
		if (store_truncate(r->store, first) != 0)
			r->fenced = true;
		snprintf(io->errmsg, sizeof(io->errmsg), "append: out of memory");
		return rc;
	}
	r->unsynced = true;
	r->next = first + n;
	r->stats.appends++;
	r->stats.entries += n;
	r->stats.bytes += bytes;
	return 0;
}

static int
m_truncate(struct raft_io *io, raft_index index)
{
	struct rio *r = R(io);
	int         rc;

	if (index == 0) {
		snprintf(io->errmsg, sizeof(io->errmsg), "truncate at 0");
		return RAFT_INVALID;
	}
	if (r->installing)
		bg_drain(io);
	/* Committed entries are never taken back: refused, and the node stops. */
	if (r->raft != NULL && index <= r->raft->commit_index)
		return broken(io, "a truncate at %llu, at or below the commit index %llu",
		    (unsigned long long)index, (unsigned long long)r->raft->commit_index);
	if (index <= store_last(r->store) && (rc = store_truncate(r->store, index)) != 0)
		return store_fail(io, "truncate", rc);
	/* Everything from index on is gone, in libraft's log as on disk. */
	if (index <= r->next)
		r->next = index;
	return 0;
}

/*
 * The snapshot file, <dir>/snap (written as snap.tmp, fsynced, renamed,
 * directory fsynced), little-endian:
 *   "MOMSNAP1", u64 index, u64 term, u64 configuration index,
 *   u32 servers, per server: u64 id, u32 role, u32 address length, address,
 *   u64 data length, data, u32 CRC-32C of everything before it.
 */
#define SNAP_MAGIC "MOMSNAP1"

/* A little-endian field of the snapshot file. */
static void
put_le64(struct mom_buf *b, uint64_t v)
{
	uint8_t p[8];

	mom_le_put64(p, v);
	mom_buf_put(b, p, sizeof(p));
}

static void
put_le32(struct mom_buf *b, uint32_t v)
{
	uint8_t p[4];

	mom_le_put32(p, v);
	mom_buf_put(b, p, sizeof(p));
}

static int
snap_path(const char *dir, char *p, size_t n, const char *name)
{
	return snprintf(p, n, "%s/%s", dir, name) >= (int)n ? -1 : 0;
}

/* Writes one piece of the file and runs the CRC over it. */
static int
snap_piece(int fd, uint32_t *crc, const void *p, size_t n)
{
	*crc = mom_crc32c(*crc, p, n);
	return mom_write_all(fd, p, n);
}

/*
 * Writes sn as dir's snapshot file (rio.h), streaming its buffers (no
 * copy of the state): 0, or a RAFT_* error with err set.  Reads only its
 * arguments, so it runs on the worker thread as well.
 */
static int
snap_write(const char *dir, const struct raft_snapshot *sn, char *err, size_t errlen)
{
	struct mom_buf w;
	char        tmp[4096], fin[4096];
	uint64_t    len = 0;
	uint32_t    crc = 0;
	uint8_t     t[4];
	int         fd = -1, dfd, rc = RAFT_IOERR;

	mom_buf_init(&w);
	mom_buf_put(&w, SNAP_MAGIC, 8);
	put_le64(&w, sn->index);
	put_le64(&w, sn->term);
	put_le64(&w, sn->configuration_index);
	put_le32(&w, sn->configuration.n);
	for (unsigned i = 0; i < sn->configuration.n; i++) {
		const struct raft_server *sv = &sn->configuration.servers[i];
		size_t                    al = strlen(sv->address);

		put_le64(&w, sv->id);
		put_le32(&w, (uint32_t)sv->role);
		put_le32(&w, (uint32_t)al);
		mom_buf_put(&w, sv->address, al);
	}
	for (unsigned i = 0; i < sn->n_bufs; i++)
		len += sn->bufs[i].len;
	put_le64(&w, len);
	if (w.err != 0) {
		mom_buf_fini(&w);
		snprintf(err, errlen, "snapshot: out of memory");
		return RAFT_NOMEM;
	}
	if (snap_path(dir, tmp, sizeof(tmp), "snap.tmp") || snap_path(dir, fin, sizeof(fin), "snap")) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		goto fail;
	if (snap_piece(fd, &crc, w.data, w.len) != 0)
		goto fail;
	for (unsigned i = 0; i < sn->n_bufs; i++)
		if (snap_piece(fd, &crc, sn->bufs[i].base, sn->bufs[i].len) != 0)
			goto fail;
	mom_le_put32(t, crc);
	if (mom_write_all(fd, t, sizeof(t)) != 0 || fsync(fd) != 0)
		goto fail;
	close(fd);
	fd = -1;
	if (rename(tmp, fin) != 0)
		goto fail;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		goto fail;
	if (fsync(dfd) != 0) {
		close(dfd);
		goto fail;
	}
	close(dfd);
	mom_buf_fini(&w);
	return 0;
fail:
	if (errno == ENOSPC || errno == EDQUOT)
		rc = RAFT_NOSPACE;
	snprintf(err, errlen, "snapshot %.200s: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	mom_buf_fini(&w);
	return rc;
}

/* A little-endian field of the snapshot file; 0 (r->err set) past its end. */
static uint64_t
get_le64(struct mom_rd *r)
{
	const uint8_t *p = mom_rd_raw(r, 8);

	return p ? mom_le_get64(p) : 0;
}

static uint32_t
get_le32(struct mom_rd *r)
{
	const uint8_t *p = mom_rd_raw(r, 4);

	return p ? mom_le_get32(p) : 0;
}

/* Frees a snapshot built by snap_read. */
static void
snap_free(struct raft_snapshot *sn)
{
	if (!sn)
		return;
	raft_configuration_close(&sn->configuration);
	for (unsigned i = 0; i < sn->n_bufs; i++)
		raft_free(sn->bufs[i].base);
	raft_free(sn->bufs);
	raft_free(sn);
}

/*
 * The snapshot in dir: 0 and *out (NULL when there is none), or a RAFT_*
 * error with err set.  The file is read once into the buffer that becomes
 * the snapshot's data (no second copy of the state).  Reads only its
 * arguments, so it runs on the worker thread as well.
 */
static int
snap_read(const char *dir, struct raft_snapshot **out, char *err, size_t errlen)
{
	struct raft_snapshot *sn = NULL;
	struct mom_rd         rd;
	struct stat           st;
	uint8_t              *b = NULL;
	char                  path[4096], addr[1024];
	size_t                n = 0, size;
	uint32_t              ns;
	uint64_t              dl;
	int                   fd, rc = RAFT_CORRUPT;

	*out = NULL;
	if (snap_path(dir, path, sizeof(path), "snap")) {
		snprintf(err, errlen, "%.200s/snap: name too long", dir);
		return RAFT_NAMETOOLONG;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "open %.200s: %s", path, strerror(errno));
		return RAFT_IOERR;
	}
	if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX - 1) {
		snprintf(err, errlen, "stat %.200s: %s", path, strerror(errno));
		close(fd);
		return RAFT_IOERR;
	}
	size = (size_t)st.st_size;
	if ((b = raft_malloc(size ? size : 1)) == NULL) {
		close(fd);
		snprintf(err, errlen, "%.200s: out of memory", path);
		return RAFT_NOMEM;
	}
	while (n < size) {
		ssize_t k = read(fd, b + n, size - n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			snprintf(err, errlen, "read %.200s: %s", path, strerror(errno));
			close(fd);
			raft_free(b);
			return RAFT_IOERR;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (n < 12 || memcmp(b, SNAP_MAGIC, 8) != 0 ||
	    mom_crc32c(0, b, n - 4) != mom_le_get32(b + n - 4)) {
		snprintf(err, errlen, "%.200s: bad magic or CRC", path);
		goto out;
	}
	mom_rd_init(&rd, b, n - 4);
	(void)mom_rd_raw(&rd, 8);
	if (!(sn = raft_calloc(1, sizeof(*sn)))) {
		rc = RAFT_NOMEM;
		goto out;
	}
	raft_configuration_init(&sn->configuration);
	sn->index = get_le64(&rd);
	sn->term = get_le64(&rd);
	sn->configuration_index = get_le64(&rd);
	ns = get_le32(&rd);
	for (uint32_t i = 0; i < ns && !rd.err; i++) {
		uint64_t       id = get_le64(&rd);
		uint32_t       role = get_le32(&rd), al = get_le32(&rd);
		const uint8_t *a;

		if (al >= sizeof(addr) || !(a = mom_rd_raw(&rd, al))) {
			rd.err = MOM_EBADDATA;
			break;
		}
		memcpy(addr, a, al);
		addr[al] = '\0';
		if ((rc = raft_configuration_add(&sn->configuration, id, addr, (int)role)) != 0)
			goto out;
		rc = RAFT_CORRUPT;
	}
	dl = get_le64(&rd);
	if (rd.err || dl != mom_rd_left(&rd)) {
		snprintf(err, errlen, "%.200s: malformed", path);
		goto out;
	}
	if (!(sn->bufs = raft_malloc(sizeof(*sn->bufs)))) {
		rc = RAFT_NOMEM;
		goto out;
	}
	/* The data moves to the front of the file's buffer, which it becomes. */
	memmove(b, rd.p + rd.off, dl);
	sn->n_bufs = 1;
	sn->bufs[0].len = dl;
	sn->bufs[0].base = b;
	b = NULL;
	*out = sn;
	sn = NULL;
	rc = 0;
out:
	snap_free(sn);
	raft_free(b);
	return rc;
}

/* ---- snapshot work on a thread of its own (rio.h, wake) ---- */

/* What prepare made goes unused (rio.h). */
static void
prepared_drop(struct rio *r, void *prepared)
{
	if (prepared != NULL && r->cfg.discard != NULL)
		r->cfg.discard(r->cfg.prepare_arg, prepared);
}

void *
rio_take_prepared(struct raft_io *io, const void *data)
{
	struct rio *r = R(io);
	void       *p = r->prepared;

	if (p == NULL || data == NULL || data != r->prepared_data)
		return NULL;
	r->prepared = NULL;
	r->prepared_data = NULL;
	return p;
}

/*
 * A snapshot at index is on disk: the log under it goes (all but trailing
 * entries; the whole log for an installed one, trailing 0, after which
 * appends resume past it).  0 or a RAFT_* error (errmsg).
 */
static int
snap_stored(struct raft_io *io, uint64_t index, unsigned trailing)
{
	struct rio *r = R(io);
	int         rc;

	r->stats.snapshots++;
	r->snap_index = index;
	if (trailing == 0) {
		/* libraft truncates its own log. */
		if (store_last(r->store) && (rc = store_truncate(r->store, store_first(r->store))) != 0)
			return store_fail(io, "drop the log under a snapshot", rc);
		r->next = index + 1;
	} else if (index > trailing &&
	    (rc = store_remove_before(r->store, index - trailing + 1)) != 0) {
		return store_fail(io, "drop segments under a snapshot", rc);
	}
	return 0;
}

/* Queues j (filled in) for the worker.  A job is complete when collected. */
static void
bg_queue(struct rio *r, struct bg *j)
{
	pthread_mutex_lock(&r->bmu);
	*r->btail = j;
	r->btail = &j->next;
	pthread_cond_signal(&r->bcv);
	pthread_mutex_unlock(&r->bmu);
	r->bpending++;
}

/* Hands a job to the worker; 0 or RAFT_NOMEM. */
static int
bg_submit(struct rio *r, enum bg_kind kind, void *req, void *cb,
    const struct raft_snapshot *put, unsigned trailing)
{
	struct bg *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return RAFT_NOMEM;
	j->kind = kind;
	j->req = req;
	j->cb = cb;
	j->put = put;
	j->trailing = trailing;
	j->dir = r->cfg.dir;
	if (kind == BG_PUT && trailing == 0) {
		j->prepare = r->cfg.prepare;
		j->prepare_arg = r->cfg.prepare_arg;
	}
	bg_queue(r, j);
	return 0;
}

/* Hands the send of m to the worker (m copied, its buffers borrowed). */
static int
bg_send(struct rio *r, struct raft_io_send *req, raft_io_send_cb cb, const struct raft_message *m)
{
	struct bg *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->addr = strdup(m->server_address ? m->server_address : "")) == NULL) {
		free(j);
		return RAFT_NOMEM;
	}
	j->kind = BG_SEND;
	j->req = req;
	j->cb = (void *)cb;
	j->msg = *m;
	j->msg.server_address = j->addr;
	j->tp = r->transport;
	bg_queue(r, j);
	return 0;
}

static void
bg_run(struct bg *j)
{
	switch (j->kind) {
	case BG_WORK:
		j->status = ((struct raft_io_async_work *)j->req)->work(j->req);
		break;
	case BG_PUT:
		j->status = snap_write(j->dir, j->put, j->err, sizeof(j->err));
		/* An installed one: what the restore will need, done here too. */
		if (j->status == 0 && j->prepare != NULL && j->put->n_bufs == 1)
			j->prepared = j->prepare(j->prepare_arg, j->put->bufs[0].base,
			    j->put->bufs[0].len);
		break;
	case BG_GET:
		j->status = snap_read(j->dir, &j->got, j->err, sizeof(j->err));
		if (j->status == 0 && j->got == NULL) {
			snprintf(j->err, sizeof(j->err), "no snapshot");
			j->status = RAFT_NOTFOUND;
		}
		break;
	case BG_SEND:
		j->status = j->tp.send(j->tp.arg, &j->msg);
		break;
	}
}

static void *
bg_main(void *arg)
{
	struct rio     *r = arg;
	struct bg      *j;
	int64_t         t0;

	pthread_mutex_lock(&r->bmu);
	for (;;) {
		while (r->bhead == NULL && !r->bquit)
			pthread_cond_wait(&r->bcv, &r->bmu);
		if (r->bhead == NULL)
			break; /* quit, nothing left: close drained what it waits for */
		j = r->bhead;
		if ((r->bhead = j->next) == NULL)
			r->btail = &r->bhead;
		j->next = NULL;
		pthread_mutex_unlock(&r->bmu);
		t0 = mom_mono_ms();
		bg_run(j);
		j->took_ms = (uint64_t)(mom_mono_ms() - t0);
		pthread_mutex_lock(&r->bmu);
		*r->bdtail = j;
		r->bdtail = &j->next;
		pthread_mutex_unlock(&r->bmu);
		r->cfg.wake(r->cfg.wake_arg);
		pthread_mutex_lock(&r->bmu);
	}
	pthread_mutex_unlock(&r->bmu);
	return NULL;
}

static bool
bg_finished(struct rio *r)
{
	bool d;

	if (r->bpending == 0)
		return false;
	pthread_mutex_lock(&r->bmu);
	d = r->bdone != NULL;
	pthread_mutex_unlock(&r->bmu);
	return d;
}

/*
 * Queues the completions of the jobs the worker finished, in order.  A
 * written snapshot drops the segments below it here, on the owner's
 * thread (the store is not shared): until then the log still holds
 * what the new file covers, which a crash in between leaves harmless.
 */
static void
bg_collect(struct raft_io *io)
{
	struct rio *r = R(io);
	struct bg  *j, *next;

	pthread_mutex_lock(&r->bmu);
	j = r->bdone;
	r->bdone = NULL;
	r->bdtail = &r->bdone;
	pthread_mutex_unlock(&r->bmu);
	for (; j != NULL; j = next) {
		next = j->next;
		r->bpending--;
		switch (j->kind) {
		case BG_WORK:
			(void)push(r, DONE_WORK, j->req, j->cb, j->status);
			break;
		case BG_PUT:
			if (j->trailing == 0)
				r->installing = false;
			if (j->status == 0) {
				j->status = snap_stored(io, j->put->index, j->trailing);
				if (j->took_ms >= 1000)
					log_info("snapshot at %llu written in %llu ms",
					    (unsigned long long)j->put->index,
					    (unsigned long long)j->took_ms);
			} else {
				log_warnx("%s", j->err);
			}
			if (j->prepared != NULL && j->status == 0) {
				prepared_drop(r, r->prepared);
				r->prepared = j->prepared;
				r->prepared_data = j->put->bufs[0].base;
			} else {
				prepared_drop(r, j->prepared);
			}
			(void)push(r, DONE_SNAP_PUT, j->req, j->cb, j->status);
			break;
		case BG_SEND:
			free(j->addr);
			(void)push(r, DONE_SEND, j->req, j->cb, j->status);
			break;
		case BG_GET:
			if (j->status != 0)
				log_warnx("read the snapshot to send: %s", j->err);
			if (push(r, DONE_SNAP_GET, j->req, j->cb, j->status) != 0)
				snap_free(j->got);
			else
				r->q[r->nq - 1].snap = j->got;
			break;
		}
		free(j);
	}
}

/* Waits for the worker to finish every job (closing) and collects them. */
static void
bg_drain(struct raft_io *io)
{
	struct rio *r = R(io);

	while (r->bpending > 0) {
		if (bg_finished(r))
			bg_collect(io);
		else
			usleep(1000);
	}
}

static int
m_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
    const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
	struct rio *r = R(io);
	int         rc;

	if (r->fenced) {
		snprintf(io->errmsg, sizeof(io->errmsg), "snapshot: a sync failed");
		return RAFT_IOERR;
	}
	req->cb = cb;
	/*
	 * Written on the worker.  A snapshot of our own: libraft appends
	 * meanwhile, and the segments below it go when it is collected.  An
	 * installed one (trailing 0) replaces the whole log when it is
	 * collected; libraft appends nothing while it installs (it drops the
	 * entries of AppendEntries meanwhile), and should it append or
	 * truncate all the same (it became leader), that waits for the put
	 * (installing).  The worker also runs cfg.prepare on its data.
	 */
	if (r->bthr_up) {
		if ((rc = bg_submit(r, BG_PUT, req, (void *)cb, snapshot, trailing)) == 0 &&
		    trailing == 0)
			r->installing = true;
		return rc;
	}
	if ((rc = snap_write(r->cfg.dir, snapshot, io->errmsg, sizeof(io->errmsg))) != 0 ||
	    (rc = snap_stored(io, snapshot->index, trailing)) != 0)
		return rc;
	return push(r, DONE_SNAP_PUT, req, (void *)cb, 0);
}

static int
m_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
    raft_io_snapshot_get_cb cb)
{
	struct rio           *r = R(io);
	struct raft_snapshot *sn;
	int                   rc;

	req->cb = cb;
	/* The whole state is read: on the worker, after any put before it. */
	if (r->bthr_up)
		return bg_submit(r, BG_GET, req, (void *)cb, NULL, 0);
	if ((rc = snap_read(r->cfg.dir, &sn, io->errmsg, sizeof(io->errmsg))) != 0)
		return rc;
	if (!sn) {
		snprintf(io->errmsg, sizeof(io->errmsg), "no snapshot");
		return RAFT_NOTFOUND;
	}
	if ((rc = push(r, DONE_SNAP_GET, req, (void *)cb, 0)) != 0) {
		snap_free(sn);
		return rc;
	}
	r->q[r->nq - 1].snap = sn;
	return 0;
}

static raft_time
m_time(struct raft_io *io)
{
	return now_ms(R(io));
}

static int
m_random(struct raft_io *io, int min, int max)
{
	struct rio *r = R(io);
	uint64_t    x = r->rnd;

	/* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->rnd = x;
	x *= 0x2545F4914F6CDD1DULL;
	if (max <= min)
		return min;
	return min + (int)((x >> 33) % (uint64_t)(max - min));
}

static int
m_async_work(struct raft_io *io, struct raft_io_async_work *req, raft_io_async_work_cb cb)
{
	int st;

	req->cb = cb;
	/* libraft's only work is writing a snapshot out (fsm version 3). */
	if (R(io)->bthr_up)
		return bg_submit(R(io), BG_WORK, req, (void *)cb, NULL, 0);
	st = req->work(req);
	return push(R(io), DONE_WORK, req, (void *)cb, st);
}

/* ---- driving ---- */

/* ---- syncs on a thread (rio.h, wake) ---- */

static void *
sync_main(void *arg)
{
	struct rio     *r = arg;
	struct timespec a, b;
	int64_t         ns;

	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->posted && !r->quit)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->quit)
			break;
		r->posted = false;
		pthread_mutex_unlock(&r->mu);
#ifdef MOM_FAULT_INJECTION
		/*
		 * The deliberate bug confirmed these appends already; a disk
		 * that takes its time (100 ms) makes the window in which a
		 * power loss eats confirmed data wide enough for a test to hit.
		 */
		if (r->confirm_early)
			usleep(100000);
#endif
		clock_gettime(CLOCK_MONOTONIC, &a);
		store_sync_run(&r->tok); /* the token is ours until done */
		clock_gettime(CLOCK_MONOTONIC, &b);
		ns = (int64_t)(b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec);
		pthread_mutex_lock(&r->mu);
		r->took_us = ns > 0 ? (uint64_t)ns / 1000u : 0;
		r->done = true;
		pthread_mutex_unlock(&r->mu);
		r->cfg.wake(r->cfg.wake_arg);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static bool
sync_finished(struct rio *r)
{
	bool d;

	pthread_mutex_lock(&r->mu);
	d = r->done;
	pthread_mutex_unlock(&r->mu);
	return d;
}

static void
call_append(struct done *d)
{
	if (d->cb != NULL)
		((raft_io_append_cb)d->cb)(d->req, d->status);
}

/*
 * Ends the finished sync: the appends it covered are stored (or, if it
 * failed, parked: see rio.h).  0 or RAFT_IOERR.
 */
static int
sync_collect(struct raft_io *io, bool closing)
{
	struct rio  *r = R(io);
	struct done *w = r->wq;
	size_t       n = r->nwq, i;
	int          rc;

	pthread_mutex_lock(&r->mu);
	r->done = false;
	r->stats.sync_us += r->took_us;
	pthread_mutex_unlock(&r->mu);
	r->syncing = false;
	r->last_sync = now_ms(r);
	if ((rc = store_sync_end(r->store, &r->tok)) != 0) {
		r->fenced = true;
		rc = store_fail(io, "sync", rc);
	} else
		r->stats.syncs++;
	r->wq = NULL;
	r->nwq = r->capwq = 0;
#ifdef MOM_FAULT_INJECTION
	if (r->confirm_early)
		n = 0; /* told "stored" when the sync began */
#endif
	for (i = 0; i < n; i++) {
		if (r->fenced && !closing) {
			(void)push(r, DONE_PARKED, w[i].req, w[i].cb, 0);
			continue;
		}
		call_append(&w[i]);
	}
	free(w);
	return rc;
}

/* Starts a sync of every append written so far, moving their completions to wq. */
static int
sync_start(struct raft_io *io)
{
	struct rio  *r = R(io);
	struct done *keep;
	size_t       i, nk = 0, nw = 0;
	int          rc;

	for (i = 0; i < r->nq; i++)
		if (r->q[i].kind == DONE_APPEND)
			nw++;
	if (nw == 0)
		return 0;
	if ((r->wq = calloc(nw, sizeof(*r->wq))) == NULL ||
	    (keep = calloc(r->nq - nw + 1, sizeof(*keep))) == NULL) {
		free(r->wq);
		r->wq = NULL;
		return 0; /* out of memory: the next step tries again */
	}
	if ((rc = store_sync_begin(r->store, &r->tok)) != 0) {
		free(r->wq);
		free(keep);
		r->wq = NULL;
		r->fenced = true;
		return store_fail(io, "sync", rc);
	}
	for (i = 0; i < r->nq; i++) {
		if (r->q[i].kind == DONE_APPEND)
			r->wq[r->nwq++] = r->q[i];
		else
			keep[nk++] = r->q[i];
	}
	free(r->q);
	r->q = keep;
	r->nq = nk;
	r->capq = nk + 1;
	r->capwq = nw;
	r->unsynced = false;
	r->syncing = true;
#ifdef MOM_FAULT_INJECTION
	/* The deliberate bug: "stored" before the sync even started. */
	if (r->confirm_early)
		for (i = 0; i < r->nwq; i++)
			call_append(&r->wq[i]);
#endif
	pthread_mutex_lock(&r->mu);
	r->posted = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return 0;
}

/* Waits for a running sync (closing) and collects it. */
static int
sync_drain(struct raft_io *io, bool closing)
{
	struct rio *r = R(io);

	if (!r->syncing)
		return 0;
	for (;;) {
		if (sync_finished(r))
			break;
		usleep(1000);
	}
	return sync_collect(io, closing);
}

static int flush(struct raft_io *io, bool closing);

static void dispatch(struct raft_io *io, struct done *d, bool closing);

/*
 * flush with syncs on the thread: collect a finished sync, start the next
 * if none runs, complete what needs no sync; appends wait for theirs.
 */
static int
flush_async(struct raft_io *io, bool closing)
{
	struct rio  *r = R(io);
	struct done *q;
	size_t       n, i;
	int          rc = 0, rc2;

	if (r->syncing && sync_finished(r))
		rc = sync_collect(io, closing);
	if (!r->syncing && !r->fenced && (rc2 = sync_start(io)) != 0 && rc == 0)
		rc = rc2;
	q = r->q;
	n = r->nq;
	r->q = NULL;
	r->nq = r->capq = 0;
	/* Appends first, in order: callbacks below may queue more after them. */
	for (i = 0; i < n; i++)
		if (q[i].kind == DONE_APPEND && !r->fenced)
			(void)push(r, q[i].kind, q[i].req, q[i].cb, q[i].status);
	for (i = 0; i < n; i++)
		if (!(q[i].kind == DONE_APPEND && !r->fenced))
			dispatch(io, &q[i], closing);
	free(q);
	return rc;
}

/* Delivers one completion (or parks an append: see rio.h). */
static void
dispatch(struct raft_io *io, struct done *d, bool closing)
{
	struct rio *r = R(io);

	/* libraft passes no callback for some requests (the TimeoutNow
	 * of a leadership transfer): nothing to tell it. */
	if (d->cb == NULL)
		return;
	if (r->fenced && !closing && (d->kind == DONE_APPEND || d->kind == DONE_PARKED)) {
		/* Kept for close (see rio.h); never delivered as failed:
		 * 0.15.0 truncates its log from each failed request's
		 * index and reads past its end on the second one.
		 * Out of memory, one is lost (libraft leaks it): a
		 * success now would commit what is not on disk. */
		(void)push(r, DONE_PARKED, d->req, d->cb, 0);
		return;
	}
	switch (d->kind) {
	case DONE_APPEND:
	case DONE_PARKED:
		((raft_io_append_cb)d->cb)(d->req, d->status);
		break;
	case DONE_SEND:
		((raft_io_send_cb)d->cb)(d->req, d->status);
		break;
	case DONE_WORK:
		((raft_io_async_work_cb)d->cb)(d->req, d->status);
		break;
	case DONE_SNAP_PUT:
		((raft_io_snapshot_put_cb)d->cb)(d->req, d->status);
		break;
	case DONE_SNAP_GET:
		((raft_io_snapshot_get_cb)d->cb)(d->req, d->snap, d->status);
		break;
	}
}

static int
flush(struct raft_io *io, bool closing)
{
	struct rio  *r = R(io);
	struct done *q;
	size_t       n, cap;
	bool         sync;
	int          rc = 0;

	if (bg_finished(r))
		bg_collect(io);
	if (r->async)
		return flush_async(io, closing);
	q = r->q;
	n = r->nq;
	cap = r->capq;
	/* Before the callbacks: in always mode, they say "stored". */
	sync = sync_wait(r, now_ms(r)) == 0;
#ifdef MOM_FAULT_INJECTION
	/* The deliberate bug: "stored" before it is (the sync comes after). */
	bool late = sync && r->confirm_early;

	sync = sync && !late;
#endif
	if (sync)
		rc = sync_or_fence(io);
	/* Callbacks may queue more: they go to a fresh queue. */
	r->q = NULL;
	r->nq = r->capq = 0;
	for (size_t i = 0; i < n; i++)
		dispatch(io, &q[i], closing);
	if (r->q == NULL) { /* nothing new: keep the old array */
		r->q = q;
		r->capq = cap;
	} else {
		free(q);
	}
#ifdef MOM_FAULT_INJECTION
	if (late && !r->fenced)
		rc = sync_or_fence(io);
#endif
	return rc;
}

static bool
has_work(struct rio *r, uint64_t now)
{
	if (r->broken[0] != '\0')
		return true; /* rio_step says so to the owner */
	if (bg_finished(r))
		return true;
	if (r->async) {
		bool appends = false;

		if (r->syncing && sync_finished(r))
			return true;
		for (size_t i = 0; i < r->nq; i++) {
			if (r->q[i].kind == DONE_APPEND)
				appends = true;
			else if (r->q[i].kind != DONE_PARKED)
				return true;
		}
		/* Appends wait for the running sync (wake says when it ends). */
		return appends && !r->syncing && !r->fenced;
	}
	if (sync_wait(r, now) == 0)
		return true;
	for (size_t i = 0; i < r->nq; i++)
		if (r->q[i].kind != DONE_PARKED)
			return true;
	return false;
}

int
rio_step(struct raft_io *io)
{
	struct rio *r = R(io);
	int         rc = 0;
	uint64_t    now;

	if (!r->store)
		return 0;
	now = now_ms(r);
	if (has_work(r, now)) {
		rc = flush(io, false);
		/*
		 * A long step (installing a big snapshot) kept the owner from
		 * reading: heartbeats wait in its queue.  The tick waits for
		 * them, or a follower would take its own silence for the
		 * leader's and stand for election.
		 */
		if (now_ms(r) - now > r->msecs && r->next_tick <= now_ms(r) &&
		    (r->raft == NULL || raft_state(r->raft) == RAFT_FOLLOWER))
			r->next_tick = now_ms(r) + r->msecs;
	}
	check_indexes(io);
	now = now_ms(r);
	if (store_full(r->store) && now >= r->reserve_try) {
		r->reserve_try = now + 1000;
		(void)rio_full(io);
	}
	if (r->tick && r->store && now >= r->next_tick) {
		r->next_tick = now + r->msecs;
		r->tick(io);
		check_indexes(io);
	}
	if (r->broken[0] != '\0') {
		snprintf(io->errmsg, sizeof(io->errmsg), "raft invariant broken: %s", r->broken);
		return RAFT_CORRUPT;
	}
	return rc;
}

int64_t
rio_poll(struct raft_io *io)
{
	struct rio *r = R(io);
	uint64_t    now;
	int64_t     wait, t;

	if (!r->store)
		return -1;
	now = now_ms(r);
	if (has_work(r, now))
		return 0;
	/* Interval mode: wake up for the sync that falls due.  With syncs on
	 * the thread, its wake says when (has_work decides). */
	wait = r->async ? -1 : sync_wait(r, now);
	if (r->tick) {
		t = now >= r->next_tick ? 0 : (int64_t)(r->next_tick - now);
		if (wait < 0 || t < wait)
			wait = t;
	}
	return wait;
}

void
rio_recv(struct raft_io *io, struct raft_message *m)
{
	struct rio *r = R(io);

	if (!r->recv)
		return;
	/* The figure-8 guard (storage/guard.h): an AppendEntries result owns
	 * no memory, so dropping it leaks nothing. */
	if (r->raft != NULL && replica_guard_drop(raft_state(r->raft), r->raft->current_term,
	    replica_guard_stored_term(r->raft), m->type)) {
		r->stats.guard_drops++;
		return;
	}
	if (r->raft != NULL && replica_guard_covered(r->raft, m))
		r->stats.gap_fixes++;
	r->vouch = replica_guard_vouch(m);
	r->recv(io, m);
	r->vouch = 0;
	check_indexes(io);
}

void
rio_attach(struct raft_io *io, struct raft *raft)
{
	R(io)->raft = raft;
	R(io)->seen_commit = R(io)->seen_applied = 0;
}

void
rio_stats(struct raft_io *io, struct rio_stats *st)
{
	*st = R(io)->stats;
}

bool
rio_failed(struct raft_io *io)
{
	return R(io)->fenced;
}

bool
rio_full(struct raft_io *io)
{
	struct rio *r = R(io);

	if (r->store == NULL || !store_full(r->store))
		return false;
	/* Cheap when there is no room (statvfs), so asked at every refusal. */
	if (store_reserve_restore(r->store) != 0)
		return true;
	r->full_told = false;
	log_info("the disk has room again: the reserve of %llu bytes is back, writes resume",
	    (unsigned long long)r->cfg.reserve);
	return false;
}

int
rio_snapshot_index(const char *dir, uint64_t *index, char *err, size_t errlen)
{
	struct raft_snapshot *sn;
	char                  msg[RAFT_ERRMSG_BUF_SIZE];
	int                   rc;

	*index = 0;
	msg[0] = '\0';
	if ((rc = snap_read(dir, &sn, msg, sizeof(msg))) != 0) {
		mom_errf(err, errlen, "%s", msg[0] ? msg : raft_strerror(rc));
		return rc == RAFT_NOMEM ? MOM_ENOMEM : rc == RAFT_CORRUPT ? MOM_EBADDATA :
		    MOM_EINTERNAL;
	}
	if (sn != NULL)
		*index = sn->index;
	snap_free(sn);
	return 0;
}

struct store *
rio_store(struct raft_io *io)
{
	return R(io)->store;
}

static void rio_destroy_thread(struct rio *r);

int
rio_create(struct raft_io *io, const struct rio_config *cfg)
{
	struct rio *r;

	if (!io || !cfg || !cfg->dir || (unsigned)cfg->fsync > RIO_FSYNC_NEVER)
		return MOM_EINVAL;
	if (!(r = calloc(1, sizeof(*r))))
		return MOM_ENOMEM;
	r->cfg = *cfg;
	r->interval = cfg->fsync_interval_ms ? cfg->fsync_interval_ms : 100;
	if (cfg->transport) {
		r->transport = *cfg->transport;
		r->has_transport = r->transport.send != NULL;
	}
	r->cfg.transport = NULL;
#ifdef MOM_FAULT_INJECTION
	{
		const char *v = getenv("MOM_FAULT_CONFIRM_EARLY");

		if ((r->confirm_early = v && *v && strcmp(v, "0") != 0))
			log_warnx("fault injection: MOM_FAULT_CONFIRM_EARLY: %s: appends are "
			    "confirmed before they are synced", cfg->dir);
	}
#endif
	if (cfg->wake != NULL && cfg->fsync == RIO_FSYNC_ALWAYS) {
		pthread_mutex_init(&r->mu, NULL);
		pthread_cond_init(&r->cv, NULL);
		if (pthread_create(&r->thr, NULL, sync_main, r) != 0) {
			pthread_mutex_destroy(&r->mu);
			pthread_cond_destroy(&r->cv);
			free(r);
			return MOM_ENOMEM;
		}
		r->thr_up = true;
		r->async = true;
	}
	r->btail = &r->bhead;
	r->bdtail = &r->bdone;
	if (cfg->wake != NULL) {
		pthread_mutex_init(&r->bmu, NULL);
		pthread_cond_init(&r->bcv, NULL);
		if (pthread_create(&r->bthr, NULL, bg_main, r) != 0) {
			pthread_mutex_destroy(&r->bmu);
			pthread_cond_destroy(&r->bcv);
			rio_destroy_thread(r);
			free(r);
			return MOM_ENOMEM;
		}
		r->bthr_up = true;
	}
	r->rnd = cfg->seed ? cfg->seed : (now_ms(r) ^ ((uint64_t)getpid() << 32)) | 1u;
	memset(io, 0, sizeof(*io));
	io->version = 2;
	io->impl = r;
	io->init = m_init;
	io->close = m_close;
	io->load = m_load;
	io->start = m_start;
	io->bootstrap = m_bootstrap;
	io->recover = m_recover;
	io->set_term = m_set_term;
	io->set_vote = m_set_vote;
	io->send = m_send;
	io->append = m_append;
	io->truncate = m_truncate;
	io->snapshot_put = m_snapshot_put;
	io->snapshot_get = m_snapshot_get;
	io->time = m_time;
	io->random = m_random;
	io->async_work = m_async_work;
	return 0;
}

/* Stops the sync thread (rio_create's failure path as well). */
static void
rio_destroy_thread(struct rio *r)
{
	if (!r->thr_up)
		return;
	pthread_mutex_lock(&r->mu);
	r->quit = true;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thr, NULL);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	if (r->syncing) /* never collected: close was not called */
		(void)store_sync_end(r->store, &r->tok);
	r->thr_up = false;
}

void
rio_destroy(struct raft_io *io)
{
	struct rio *r;

	if (!io || !(r = io->impl))
		return;
	if (r->bthr_up) {
		/* Close drained it; without a close, what is queued still runs. */
		pthread_mutex_lock(&r->bmu);
		r->bquit = true;
		pthread_cond_signal(&r->bcv);
		pthread_mutex_unlock(&r->bmu);
		pthread_join(r->bthr, NULL);
		pthread_mutex_destroy(&r->bmu);
		pthread_cond_destroy(&r->bcv);
		for (struct bg *j = r->bdone, *next; j != NULL; j = next) {
			next = j->next;
			if (j->kind == BG_GET)
				snap_free(j->got);
			free(j->addr);
			free(j);
		}
	}
	rio_destroy_thread(r);
	store_close(r->store);
	free(r->wq);
	free(r->q);
	free(r);
	io->impl = NULL;
}

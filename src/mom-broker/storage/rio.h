/*
 * rio.h: our struct raft_io (libraft 0.15.0), backed by the segment store.
 *
 * Single-threaded and driven by its owner (the core loop): nothing happens
 * behind the owner's back.  libraft's asynchronous requests are queued and
 * completed by rio_step:
 *   - appends are written to the store at once (store_append copies them)
 *     and completed at the next step, when the fsync mode (below) allows;
 *   - sends go to the transport hook (without one they fail with
 *     RAFT_NOCONNECTION); async work, snapshot writes and reads run on
 *     rio's worker (with cfg.wake, below; else at once); all complete at
 *     a later step;
 *   - the tick callback fires when the tick interval given to start has
 *     elapsed on the owner's clock.
 * rio_poll says how long the owner may sleep before the next rio_step.
 *
 * fsync modes (rio_config.fsync), for the entries of io->append:
 *   - RIO_FSYNC_ALWAYS (the default): an append completes only after a
 *     store_sync that covers it.  Group commit: one store_sync per
 *     rio_step, before the callbacks, for everything appended since the
 *     previous one.  A completed append survives a power loss.
 *   - RIO_FSYNC_INTERVAL: an append completes at the next step without a
 *     sync, except on a follower (with rio_attach, raft_state
 *     RAFT_FOLLOWER), whose completed append is acknowledged to the
 *     leader: there the step syncs first, as in always mode.  A step syncs when fsync_interval_ms (0: 100) have passed on
 *     the owner's clock since the last sync and something is unsynced (so
 *     an append after a quiet spell is synced at the next step), and
 *     rio_poll returns no more than the time until that sync is due.  A
 *     power loss can lose what was completed in the last interval (a
 *     process crash loses nothing: the page cache keeps it).  raft_close
 *     syncs what is left.  A failed sync fences as in always mode (the
 *     appends it covered that had already completed stay completed, with
 *     their durability unknown).
 *   - RIO_FSYNC_NEVER: an append completes at the next step and is never
 *     synced (the kernel writes it back when it likes); a power loss can
 *     lose any of it.  The store is opened nosync (store.h).
 * In every mode, term and vote (set_term, set_vote), the configuration
 * entry of bootstrap and recover, truncations and snapshots are durable
 * before the call returns: they are rare, and a vote forgotten after a
 * crash can elect two leaders in one term.  In a cluster: in always mode
 * every copy that counts for a commit is synced.  In interval mode the
 * followers' copies are (see above) but the leader counts its own copy
 * as soon as it is written: a commit rests on a majority less one synced
 * disks, so a power loss of the leader can still lose what it committed
 * in the last interval (the synced copies may be fewer than a majority,
 * and a node without them can be elected); a process crash (kill -9)
 * loses nothing, the page cache keeps it.  In never mode a follower
 * acknowledges entries it has not synced, and a commit may rest on page
 * caches only.
 *
 * Term and vote are the store's metadata; the log is the store's entries
 * (raft entry type in the record's type byte).  Bootstrap writes the
 * configuration (raft_configuration_encode) as entry 1 of term 1.
 *
 * Failures, shaped around libraft 0.15.0:
 *   - a failed write (ENOSPC, EDQUOT, EIO) keeps nothing and is returned
 *     by io->append at once: libraft drops the entries and raft_apply
 *     returns the error (RAFT_NOSPACE for a full disk; the caller still
 *     owns its buffers).  Nothing is applied, later appends work.  Not
 *     through the callback: 0.15.0's failed-append callback truncates its
 *     log from that request's index, so with other appends in flight the
 *     next failed callback truncates past the log's end (a crash).
 *     On a follower the refusal fails the AppendEntries handler, and
 *     0.15.0 turns any handler error into RAFT_UNAVAILABLE for good: the
 *     owner watches raft_state() and stops, as after a failed sync
 *     (replica_drive: the broker exits 1, and a restart recovers from the
 *     directory; tests/unit/raftpaths_test.c, tests/e2e/cluster.bats).
 *   - the index: raft_io's append carries none.  rio takes it from
 *     libraft (rio_attach: the entries are the tail of raft_last_index)
 *     and refuses an append that would not start right after the last
 *     entry on disk, so the disk log stays a prefix of libraft's (a
 *     broken invariant: see below).
 *   - a failed sync: what reached the disk is unknown and the store
 *     refuses everything.  rio_step returns the error, rio_failed turns
 *     true, and every append (pending or new) is parked, never completed,
 *     so nothing more commits.  The owner must raft_close (libraft then
 *     fails the pending raft_apply requests; the parked appends are
 *     released with status 0, which an unavailable raft only uses to
 *     release memory) and restart from the directory.  Entries whose
 *     apply failed that way may still be on disk after the restart (the
 *     outcome of a failed fsync is unknown, as after a lost leadership).
 *
 * Invariants (Debian's libraft has its asserts compiled out, so a broken
 * one would go on silently): with rio_attach, after every step and every
 * received message the commit and applied index must not have gone back;
 * a truncate at or below the commit index is refused; an append must
 * start right after the last entry on disk (or the snapshot).  A broken
 * one is logged once ("raft invariant broken: ..."), fences the io as a
 * failed sync does (nothing more completes, so nothing more commits), and
 * from then on rio_poll says 0 and rio_step returns RAFT_CORRUPT with
 * errmsg saying which: the owner stops (the broker exits, as after a
 * failed sync) rather than serve from a log it cannot trust.
 *
 * The fault-injection build (make fault: -DMOM_FAULT_INJECTION; none of
 * this is in the normal build) reads, at rio_create,
 * MOM_FAULT_CONFIRM_EARLY (set unless empty or "0"): in always mode, a
 * step runs the append callbacks before the store_sync that covers them
 * (the sync still follows, in the same step), and a line is logged.  It
 * is the deliberate bug a crash test must catch: with MOM_FAULT_POWERLOSS
 * (store.h), a kill right after a confirmation loses the confirmed entry.
 * The store's variables (MOM_FAULT_POWERLOSS, MOM_FAULT_ENOSPC_FILE) are
 * read when io->init opens it.
 *
 * Snapshots: one file, <dir>/snap (format in rio.c: index, term,
 * configuration and its index, the fsm's data, CRC-32C), written new,
 * fsynced, renamed, directory fsynced.  snapshot_put then drops the
 * store's segments below index - trailing + 1 (the whole log when
 * trailing is 0: an installed snapshot); load returns it with the log
 * after it; a log that starts after the snapshot's index + 1 (or after 1
 * with no snapshot) is corruption.  snapshot_get reads the file back.
 */
#ifndef BROKER_RIO_H
#define BROKER_RIO_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>

#include "storage/store.h"

/*
 * The transport hook (the cluster's links): send is called from io->send
 * with the message (valid only during the call: encode or copy it) and
 * returns 0 or a RAFT_* error; either is reported to libraft at the next
 * rio_step, but for an AppendEntries, whose refusal is reported as sent:
 * a message lost on the way (appends_lost).  Received messages go in
 * through rio_recv.
 */
struct rio_transport {
	int  (*send)(void *arg, const struct raft_message *m);
	void *arg;
};

struct rio_config {
	const char *dir;                  /* the store's directory */
	uint64_t    segment_size;         /* 0: the store's default */
	uint64_t  (*clock)(void *arg);    /* milliseconds; NULL: CLOCK_MONOTONIC */
	void       *clock_arg;
	uint64_t    seed;                 /* io->random; 0: from the clock and pid */
	const struct rio_transport *transport; /* NULL: single node, sends fail */
	enum rio_fsync {
		RIO_FSYNC_ALWAYS = 0,     /* an append completes after its sync */
		RIO_FSYNC_INTERVAL,       /* completes at once; synced every interval */
		RIO_FSYNC_NEVER,          /* completes at once; never synced */
	}           fsync;                /* see above */
	uint64_t    fsync_interval_ms;    /* RIO_FSYNC_INTERVAL; 0: 100 ms */
	uint64_t    reserve;              /* the store's reserve (store.h); 0: none */
	/*
	 * RIO_FSYNC_ALWAYS with wake: the syncs run on a thread of rio's, so
	 * that the owner goes on (reading, appending) while the disk works.
	 * rio_step starts a sync of every append written so far when none
	 * is running, and completes the appends a finished one covered;
	 * appends written meanwhile wait for the next (group commit grows
	 * with the load).  wake is called on rio's thread when a sync
	 * finished: the owner must then call rio_step (rio_poll says 0).
	 */
	void      (*wake)(void *arg);
	void       *wake_arg;
	/*
	 * With wake, snapshots are written on a worker thread of rio's, a
	 * snapshot installed from a leader too (snapshot_put with trailing
	 * 0).  prepare, if set, is then called on the worker with that
	 * snapshot's data, once it is written, to do ahead what the restore
	 * will need (parse it); a non-NULL result is kept until
	 * rio_take_prepared claims it for the same data, or is handed to
	 * discard (on the owner's thread) when the put failed, a later
	 * install replaced it, or at close.
	 */
	void     *(*prepare)(void *arg, const void *data, size_t len);
	void      (*discard)(void *arg, void *prepared);
	void       *prepare_arg;
};

/*
 * Counters since rio_create (kept across raft_close and a new io->init).
 * syncs: store_syncs of appended data done (the bootstrap/recover entry's
 * included, a failed one not); sync_us: microseconds spent in them
 * (CLOCK_MONOTONIC, failed ones included); appends: io->append requests
 * written; entries, bytes: log entries written to the store (the
 * bootstrap/recover entry included) and their bytes on disk (framing
 * included); snapshots: snapshot files written; guard_drops:
 * AppendEntries results rio_recv dropped (storage/guard.h); gap_fixes:
 * AppendEntries whose previous entry rio_recv moved to this node's
 * snapshot (guard.h, replica_guard_covered); appends_lost: AppendEntries
 * the transport refused, reported to libraft as sent (io->send).
 */
struct rio_stats {
	uint64_t syncs;
	uint64_t appends;
	uint64_t entries;
	uint64_t bytes;
	uint64_t snapshots;
	uint64_t sync_us;
	uint64_t guard_drops;
	uint64_t gap_fixes;
	uint64_t appends_lost;
};

/*
 * Fills io (every method; io->impl is ours) for raft_init.  The store is
 * opened by io->init (called by raft_init) and closed by io->close (called
 * by raft_close).  Returns 0 or MOM_ENOMEM / MOM_EINVAL.
 */
int  rio_create(struct raft_io *io, const struct rio_config *cfg);
/* Frees what rio_create allocated; after raft_close's callback.  */
void rio_destroy(struct raft_io *io);

/*
 * Does what is due: the store_sync the fsync mode calls for (always: one
 * for the appends written since the last step; interval: one when the
 * interval is over; never: none), then every queued completion in order
 * (append, send, work, snapshot), then the tick if its time has come.
 * Completions queued by those callbacks wait for the next step.  Returns
 * 0, or the RAFT_* error of a failed sync (rio_failed is then true: the
 * pending appends are parked, the store refuses everything after, the
 * owner must close and restart), or RAFT_CORRUPT once an invariant broke
 * (see above; rio_failed is true too).
 */
int rio_step(struct raft_io *io);
/*
 * Milliseconds until rio_step has something to do (a completion, a sync
 * due, the tick): 0 when now, -1 never.
 */
int64_t rio_poll(struct raft_io *io);

/* Tells rio which raft uses it (after raft_init; see above). */
void rio_attach(struct raft_io *io, struct raft *raft);

/*
 * A message from the transport, handed to libraft (started only).  With
 * rio_attach, an AppendEntries result that arrives while this node leads
 * and has not yet stored an entry of its current term is dropped and
 * counted (guard_drops): the figure-8 guard of storage/guard.h, which
 * keeps libraft 0.15.0 from committing an earlier term's entry by
 * counting replicas.  The owner appends a barrier on every transition to
 * leader so that such an entry comes soon.  An AppendEntries whose
 * previous entry this node's snapshot covers is moved to that snapshot
 * (gap_fixes: replica_guard_covered), and its leader_commit capped to
 * what it vouches for (replica_guard_vouch).
 */
void rio_recv(struct raft_io *io, struct raft_message *m);

/* Copies the counters to *st. */
void rio_stats(struct raft_io *io, struct rio_stats *st);

/* True once a sync failed or an invariant broke: close and restart raft (see above). */
bool rio_failed(struct raft_io *io);
/*
 * The disk filled and the store gave up its reserve (store.h): the owner
 * refuses what adds data.  A failed append logs it once.  Each call (and
 * rio_step, once a second) first tries to take the reserve back
 * (store_reserve_restore) and logs when it did: then it says false.
 */
bool rio_full(struct raft_io *io);
/*
 * What rio_config's prepare made of the installed snapshot whose data is
 * data (the restore's buffer), or NULL (none, or another one's): the
 * caller owns it.
 */
void *rio_take_prepared(struct raft_io *, const void *data);

/* The index of the snapshot in dir (0 and no error when there is none). */
int  rio_snapshot_index(const char *dir, uint64_t *index, char *err, size_t errlen);
/* The store under the io (NULL before init / after close), e.g. for tests' fault hooks. */
struct store *rio_store(struct raft_io *io);
/*
 * Moves the stored term on by one, with no vote, as an election would
 * (the metadata file is always fsynced).  Call it after io->init and
 * before raft_start: libraft 0.15 makes the only voter of a cluster of one
 * leader again in the term it had, and receipts (state/mq.h) need each
 * leadership to have a term of its own.  0, or a RAFT_* error (errmsg).
 */
int rio_new_term(struct raft_io *io);

#endif

/*
 * fsm.h: the broker's replicated state machine, and the entry to state/.
 *
 * state/ is the broker's bottom layer, deterministic: fsm.c (the objects;
 * publish, settle and tick), fsm_admin.c (admin commands), fsm_snap.c
 * (snapshots), fsm_int.h (what those three share, private to state/),
 * mq.c (delivery), msg.c (stored messages), map.c (hash maps).  The layer
 * rule: state/ includes nothing from the other layers (only state/ and
 * src/libmom); no threads, no I/O, no clock.  tests/layers.sh checks it.
 *
 * Everything that changes what the broker stores is a command: publish a
 * batch, create or delete a queue/topic/subscription, purge, move.
 * fsm_apply() is deterministic: the same commands in the same order give
 * the same state, it reads no clock (each command carries its time) and
 * does no I/O.  That is what lets the same log be replayed after a restart
 * and applied on every node of a cluster.
 *
 * Deliveries (leases) are not commands: they live in each mq and are
 * driven by the core thread (see mq.h).
 */
#ifndef BROKER_FSM_H
#define BROKER_FSM_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "state/map.h"
#include "state/mq.h"

struct fsm;

enum cmd_type {
	CMD_PUBLISH = 1, /* body: the wire publish body */
	CMD_ADMIN = 2,   /* body: a JSON object {"op": ..., ...} */
	CMD_SETTLE = 3,  /* body: count, then settlements (fsm_settle_put) */
	CMD_TICK = 4,    /* no body: expiries due at the command's time */
};

struct queue {
	struct fsm   *fsm;
	char         *name;
	size_t        nlen;
	struct mq     mq;
	char         *dead_letter; /* NULL: none */
	char         *owner;
	int64_t       created_ms;
	uint64_t      idle_expire_ms; /* 0: never; else the core deletes it when unused */
	int64_t       last_used;      /* the core's: last fetch or parked poll (not replicated) */
	uint64_t      pend_n, pend_b; /* scratch for a batch's capacity check */
};

struct sub;

struct topic {
	char         *name;
	size_t        nlen;
	struct msg  **log;   /* retained messages, a power-of-two ring */
	size_t        lcap, lhead, llen;
	uint64_t      bytes;
	uint64_t      retain_ms, retain_bytes;
	struct sub  **subs;  /* subscriptions whose pattern matches */
	size_t        nsubs, subcap;
	uint64_t      published;
	char         *owner;
	int64_t       created_ms;
};

struct sub {
	struct fsm   *fsm;
	char         *key;   /* pattern '\0' name */
	size_t        klen;
	char         *pattern;
	char         *name;
	bool          durable;
	char         *owner;    /* who created it (token subject), or NULL */
	uint64_t      consumer; /* ephemeral: the one consumer it serves */
	int64_t       last_seen;
	int64_t       created_ms;
	struct mq     mq;
};

struct fsm_config {
	size_t   max_payload;      /* default MOM_PAYLOAD_DEFAULT */
	uint64_t dedupe_window_ms; /* default 120000 */
	uint64_t retain_ms;        /* topic default, 24 h */
	uint64_t retain_bytes;     /* topic default, 64 MiB */
};

struct fsm_result {
	int      status;       /* 0 or enum mom_err */
	char     err[256];
	uint64_t stored, duplicates;
	json_t  *json;         /* admin result (owned by the caller) */
};

struct fsm;
struct producer;
typedef void (*fsm_gone_fn)(void *arg, struct mq *);
/* A queue's (s NULL) or subscription's message should leave: log it. */
typedef void (*fsm_settle_fn)(void *arg, const struct queue *, const struct sub *,
    uint64_t seq, int how);

struct fsm {
	struct fsm_config cfg;
	struct smap       queues, topics, subs;
	struct umap       producers;
	struct producer  *prod_head, *prod_tail; /* by last_ms (fsm_int.h) */
	struct smap       ids;
	struct idrec     *ids_head, *ids_tail;
	uint64_t          next_seq;
	int64_t           last_time;
	struct mq        *touched;  /* mqs with waiters that got messages */
	fsm_gone_fn       gone;     /* an mq is about to be freed */
	void             *gone_arg;
	fsm_settle_fn     settle;   /* NULL: mqs settle at once (see mq.h) */
	void             *settle_arg;
	uint64_t          published, duplicates, dead_dropped;
	/* While a dead-letter settlement applies: the headers its command carries. */
	const uint8_t    *dead_hdr;
	size_t            dead_hdr_len;
};

struct fsm *fsm_new(const struct fsm_config *);
/* Has the fsm a handler for this admin command (a write of adminops.h)? */
bool        fsm_admin_known(const char *op);
void        fsm_free(struct fsm *);

/* Encodes a command: type, time, body. */
void fsm_cmd_encode(struct mom_buf *, uint8_t type, int64_t time_ms, const void *body, size_t len);
/*
 * What an encoded command would do to the disk, for a broker whose disk is
 * full: true for commands that add data (a publish, a create), false for
 * those that settle, delete or only pass time.
 */
bool fsm_cmd_grows(const uint8_t *cmd, size_t len);
/* The messages an encoded command publishes (0 for other commands). */
uint64_t fsm_cmd_messages(const uint8_t *cmd, size_t len);
/* Applies one encoded command. */
void fsm_apply(struct fsm *, const uint8_t *cmd, size_t len, struct fsm_result *);

/* Lookups for the core. */
struct queue *fsm_queue(struct fsm *, const char *, size_t);
struct topic *fsm_topic(struct fsm *, const char *, size_t);
struct sub   *fsm_sub(struct fsm *, const char *pattern, size_t plen, const char *name, size_t nlen);
/*
 * Walks: start with *it = 0; each call returns the next object, NULL at
 * the end.  Nothing may be added or removed during a walk.
 */
struct queue *fsm_queue_next(struct fsm *, size_t *it);
struct topic *fsm_topic_next(struct fsm *, size_t *it);
struct sub   *fsm_sub_next(struct fsm *, size_t *it);

/* The whole broker's numbers, for stats. */
struct fsm_stats {
	uint64_t queues, topics, subs;
	uint64_t published, duplicates, dead_dropped;
	/* Over every queue and subscription (bytes, dead letters, expiries: queues). */
	uint64_t messages, bytes, in_flight, delivered, acked, redelivered;
	uint64_t dead_lettered, expired;
};
void fsm_stats(struct fsm *, struct fsm_stats *);

/*
 * The core's hooks.  gone: an mq is about to be freed (its waiters must
 * go).  Touched: mqs with waiters (mq->waiters non-NULL) that got
 * messages since the last call, one at a time; NULL when none is left.
 */
void       fsm_set_gone(struct fsm *, fsm_gone_fn fn, void *arg);
struct mq *fsm_touched_pop(struct fsm *);

/*
 * Expiries that depend on time only (topic retention, the de-duplication
 * window, idle producers): applied by CMD_TICK at the command's time, so
 * that a replay expires exactly what the original did.  fsm_due says
 * whether anything would expire at now (the core then logs a CMD_TICK).
 */
int64_t fsm_tick(struct fsm *, int64_t now);
bool    fsm_due(const struct fsm *, int64_t now);
/* The producer sequence number after the highest stored (1: none known). */
uint64_t fsm_producer_next(const struct fsm *, uint64_t producer);

/*
 * Settlements go through the log: fsm_set_settle routes every mq's
 * requests (see mq.h) to fn; fsm_settle_put appends one settlement to a
 * CMD_SETTLE body under construction (the caller prefixes the count).
 */
void fsm_set_settle(struct fsm *, fsm_settle_fn fn, void *arg);
/* Gives back every lease of every queue and subscription (mq_release_all). */
void fsm_release_all(struct fsm *);
void fsm_settle_put(struct mom_buf *, const struct queue *, const struct sub *, uint64_t seq,
    int how);
/*
 * A queue's message to its dead-letter queue with why it died as headers
 * (hdr: a header block, wire.h), which the leader, the only node that
 * knows deliveries and exit statuses, puts into the command: applying it
 * copies them, never computes them.
 */
void fsm_settle_put_dead(struct mom_buf *, const struct queue *, uint64_t seq,
    const uint8_t *hdr, size_t hdr_len);
/* Header names of a dead letter (fsm_settle_put_dead). */
#define FSM_HDR_DEAD_QUEUE    "Mom-Dead-Queue"
#define FSM_HDR_DEAD_REASON   "Mom-Dead-Reason"
#define FSM_HDR_DEAD_DELIVERY "Mom-Dead-Deliveries"
#define FSM_HDR_DEAD_EXIT     "Mom-Dead-Exit-Status"
#define FSM_HDR_DEAD_PREFIX   "Mom-Dead-"

/* Read-only admin answers (JSON, owned by the caller). */
json_t *fsm_queue_json(const struct queue *);
/*
 * A queue's oldest messages (at most max, and past the first no more than
 * max_bytes of payload), left where they are: {"queue", "count",
 * "messages": [...]}, or NULL when out of memory.
 */
json_t *fsm_queue_peek_json(const struct queue *, size_t max, size_t max_bytes);
json_t *fsm_topic_json(const struct topic *);
json_t *fsm_sub_json(const struct sub *);

/*
 * Snapshots (see fsm_snap.c for the format): fsm_snapshot() appends the whole
 * replicated state to out (0 or MOM_ENOMEM; out is left as it was on
 * failure).  Messages leased at that moment are written as ready, with
 * their delivery counts: leases are leader-local, a restore delivers them
 * again.  fsm_restore() replaces f's state by a snapshot's, keeping f's
 * config and callbacks; the input is untrusted: anything malformed, cut
 * or damaged is refused with MOM_EBADDATA (or MOM_ENOMEM) and f is left
 * unchanged.
 */
int fsm_snapshot(const struct fsm *, struct mom_buf *out);
/*
 * The same in two halves, so that a big state is written off the owner's
 * thread: fsm_snap_begin (owner's thread) copies all but the messages and
 * takes a reference on each message (messages are immutable); the fsm
 * may change at once.  fsm_snap_write (any thread, one at a time; it
 * reads only the fsm_snap) appends the snapshot as fsm_snapshot would
 * have at begin.  fsm_snap_end (owner's thread) drops the references.
 * 0 or MOM_ENOMEM (begin leaves *out NULL; write leaves out as it was).
 */
struct fsm_snap;
int  fsm_snap_begin(const struct fsm *, struct fsm_snap **out);
int  fsm_snap_write(const struct fsm_snap *, struct mom_buf *out);
void fsm_snap_end(struct fsm_snap *);
/* No fewer bytes than fsm_snap_write will append. */
uint64_t fsm_snap_size(const struct fsm_snap *);
int fsm_restore(struct fsm *, const uint8_t *, size_t);
/*
 * The same in two halves, so that a big snapshot a follower installs is
 * parsed off the owner's thread: fsm_restore_parse (any thread; it reads
 * only cfg and b) builds the snapshot's state in a new fsm, *out (NULL on
 * failure: MOM_EBADDATA or MOM_ENOMEM); fsm_restore_swap (owner's thread)
 * replaces f's state by it and frees n.  n must come from f's config;
 * an n not swapped in goes with fsm_free.
 */
int  fsm_restore_parse(const struct fsm_config *cfg, const uint8_t *b, size_t len,
    struct fsm **out);
void fsm_restore_swap(struct fsm *f, struct fsm *n);

/*
 * A digest of the replicated state (fsm_digest.c says what goes in and what
 * is left out as leader-local), with the counts it covered: nodes at the
 * same applied index have the same digest.  0 or MOM_ENOMEM.
 */
struct fsm_digest {
	uint64_t digest;
	uint64_t queues, topics, subs, messages;
};
int fsm_digest(struct fsm *, struct fsm_digest *);

#endif

/*
 * mq.h: the delivery engine shared by queues and subscriptions.
 *
 * An mq holds messages ready for delivery (FIFO; a message given back,
 * by a nack, a release or an expired lease, goes back in front of newer
 * ones, in broker sequence order), delayed ones (until their time), and leased ones:
 * handed to a consumer and waiting for its ack.  A lease that is not acked
 * within the ack wait, or is nacked, makes the message ready again; after
 * max_deliver deliveries it is handed to the dead-letter callback instead.
 *
 * Leases are leader-local: they are not part of the replicated state.
 * What is (the set of messages held, hence mq_count and bytes, which
 * max-len and max-bytes decide on) changes only through the state
 * machine's commands, so that replaying the log gives the same answers:
 * a message leaves an mq only by mq_settle (an applied ack, dead-letter
 * or expiry command), mq_purge or mq_take_all, never by a local event.
 * With a settle callback (mq_set_settle), a local event that wants a
 * message gone (an ack, a delivery without ack, the last allowed delivery
 * failing, a message found past its TTL) parks it in a settling lease,
 * which is never delivered, and asks the callback to log the settlement;
 * the lease ends when the command is applied.  If the command fails
 * (full disk), the settling lease expires after the ack wait and the
 * settlement is asked for again.  Without a callback (unit tests of the
 * engine alone) settlements happen at once.
 *
 * Everything here runs on the core thread.
 */
#ifndef BROKER_MQ_H
#define BROKER_MQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "state/map.h"
#include "state/msg.h"

struct qent {
	struct msg *m;
	uint32_t    deliveries;
};

struct dent {
	int64_t     at; /* ready at */
	struct qent e;
};

struct lease {
	struct qent   e;
	uint64_t      receipt;
	uint64_t      consumer;
	uint64_t      holder;   /* who may settle it (mq_lease); 0: anyone */
	int64_t       deadline;
	uint8_t       settling; /* 0, or the MQ_* the log is asked to settle it by */
	uint8_t       why;      /* enum mq_why, once it is to be dead-lettered */
	uint16_t      status;   /* the consumer's exit status + 1 (0: unknown) */
	struct lease *prev, *next; /* the mq's list, in deadline order */
};

/* How a message leaves an mq for good: each is a logged command. */
enum mq_how {
	MQ_ACK = 1,    /* consumed */
	MQ_DEAD = 2,   /* used up its deliveries: to the dead-letter queue */
	MQ_EXPIRE = 3, /* past its TTL */
	MQ_DROP = 4,   /* the oldest, to make room (drop_head) */
};

/* Why a message is dead-lettered (the leader knows; its command says). */
enum mq_why {
	MQ_WHY_NONE = 0,
	MQ_WHY_DELIVERIES = 1, /* used up max-deliver */
	MQ_WHY_REJECTED = 2,   /* a consumer asked (a worker's exit 65) */
	MQ_WHY_EXPIRED = 3,    /* past its TTL, in a queue with a dead-letter queue */
};

struct mq_stats {
	uint64_t published;     /* pushed */
	uint64_t delivered;     /* leases handed out (incl. redeliveries) */
	uint64_t acked;
	uint64_t redelivered;   /* leases expired or nacked */
	uint64_t dead_lettered;
	uint64_t expired;       /* dropped at their TTL */
	uint64_t dropped;       /* dropped to make room (drop_head) */
};

struct mq;
typedef void (*mq_dead_fn)(void *arg, struct mq *, struct msg *, uint32_t deliveries);
typedef void (*mq_settle_fn)(void *arg, struct mq *, uint64_t seq, int how);

struct mq_config {
	uint64_t ack_wait_ms; /* default 30000 */
	uint32_t max_deliver; /* 0: unlimited */
	uint64_t ttl_ms;      /* 0: none */
	uint64_t max_len;     /* 0: unlimited */
	uint64_t max_bytes;   /* 0: unlimited */
	bool     drop_head;   /* when full, drop the oldest ready messages (subscriptions) */
};

struct mq {
	struct mq_config cfg;
	struct qent     *ring;  /* ready messages */
	size_t           rcap, rhead, rlen;
	struct dent     *delayed; /* min-heap on at */
	size_t           dcap, dlen;
	struct lease    *lhead, *ltail;
	struct umap      leases; /* receipt -> lease */
	struct umap      lseq;   /* seq -> lease */
	size_t           nleased;
	size_t           nsettling;      /* leases waiting for their settlement */
	uint64_t         settling_bytes;
	uint64_t         bytes;  /* payload bytes of every message held */
	struct mq_stats  st;
	mq_dead_fn       dead;
	void            *dead_arg;
	mq_settle_fn     settle;  /* NULL: settle at once (see mq_set_settle) */
	void            *settle_arg;
	/* Owned by the core: consumers waiting in a long poll. */
	void            *waiters;
	bool             touched;
	struct mq       *touched_next;
};

void   mq_init(struct mq *, const struct mq_config *, mq_dead_fn, void *);
/* Releases every message; leases are forgotten. */
void   mq_fini(struct mq *);
/*
 * Stores m (consumes one reference).  Returns 0 or MOM_ENOMEM.  With
 * drop_head, a full mq first drops its oldest ready messages (a slow
 * subscription loses its oldest backlog rather than growing forever);
 * otherwise limits are the caller's business (mq_fits).
 */
int    mq_push(struct mq *, struct msg *, int64_t now);
/* Would n more messages of b bytes fit under max-len/max-bytes? */
bool   mq_fits(const struct mq *, uint64_t n, uint64_t b);
size_t mq_count(const struct mq *); /* ready + delayed + leased */
size_t mq_ready(const struct mq *);

/*
 * Receipts.  A receipt names one delivery, for good: settling goes by
 * receipt alone (an HTTP ack comes on another connection than its
 * receive), so a number handed out again would let an old ack settle
 * another message.  Leases die with the broker and with its leadership,
 * so a receipt is made of an epoch, the raft term it was handed out in
 * (every start and every new leader is a new term, and terms are kept in
 * the log's metadata), in the high bits, and a counter of that epoch in
 * the low MQ_RECEIPT_BITS.  Within an epoch the counter wraps after
 * 2^40 - 1 deliveries; epochs wrap after 2^24 terms.
 */
#define MQ_RECEIPT_BITS  40
#define MQ_RECEIPT_COUNT ((UINT64_C(1) << MQ_RECEIPT_BITS) - 1)

struct mq_receipts {
	uint64_t epoch;
	uint64_t n;     /* the last counter handed out in this epoch */
};

/* A new epoch (a term) starts the counter again; the same one changes nothing. */
void     mq_receipts_epoch(struct mq_receipts *, uint64_t epoch);
/* The next receipt: never 0. */
uint64_t mq_receipt_next(struct mq_receipts *);

typedef void (*mq_emit_fn)(void *arg, struct msg *, uint64_t receipt, uint32_t deliveries);

/*
 * Leases up to max messages (and max_bytes, but at least one) to a
 * consumer, calling emit for each.  With noack the messages are settled
 * as they are handed out.  Receipts come from rc, the broker's.  holder
 * (non-zero) is who may settle the leases besides a settler of holder 0:
 * the core passes a hash of the token's user.
 */
size_t mq_lease(struct mq *, uint64_t consumer, uint64_t holder, size_t max, size_t max_bytes,
    bool noack, int64_t now, struct mq_receipts *rc, mq_emit_fn, void *arg);
/*
 * Settling: receipt must name a lease the mq holds now, and holder must
 * be 0 (anyone) or the lease's holder.  Otherwise the receipt is stale
 * (its ack wait passed, it was settled, it is of an earlier epoch) or
 * another's, nothing changes and the answer is MOM_ENOENT.
 */
int    mq_ack(struct mq *, uint64_t receipt, uint64_t holder, int64_t now);
/*
 * Gives a lease back.  delay_ms > 0 requeues after that long; unseen
 * means the consumer never looked at it (prefetched and not used), so
 * the delivery is not counted.
 */
int    mq_nack(struct mq *, uint64_t receipt, uint64_t holder, uint64_t delay_ms, bool unseen,
    int64_t now);
/*
 * Dead-letters a leased message now (a poison message), whatever its
 * deliveries; status is the consumer's exit status (-1: unknown).
 */
int    mq_dead(struct mq *, uint64_t receipt, uint64_t holder, int status, int64_t now);
/* Extends a lease by the ack wait (work in progress). */
int    mq_touch(struct mq *, uint64_t receipt, uint64_t holder, int64_t now);
/* Gives back every lease of a consumer (it left cleanly): deliveries uncounted. */
void   mq_release(struct mq *, uint64_t consumer, int64_t now);
/*
 * Gives back every lease, settling ones too (their settlement may still
 * be applied: it finds the message where it is), deliveries counted: the
 * leader that leased them stepped down, the next one delivers them again.
 */
void   mq_release_all(struct mq *);
/* Drops every message, leased ones too (their acks become stale). Returns how many. */
size_t mq_purge(struct mq *);
/*
 * Timers: expires leases, makes due delayed messages ready, drops expired
 * messages at the front.  Returns the next time anything is due (or
 * INT64_MAX).
 */
int64_t mq_tick(struct mq *, int64_t now);
/*
 * Removes up to max messages (0: all), the oldest (lowest seq) first,
 * whatever their state, for a queue move: *out gets an array of them (the
 * caller owns it and the references; NULL when none).  Messages past their
 * TTL at now are dropped instead (counted as expired).  Returns how many
 * are in *out, or -1 when out of memory (nothing removed).
 */
long   mq_take_all(struct mq *, uint64_t max, int64_t now, struct msg ***out);

/*
 * What the leader knows of a message it asked to settle (a settling
 * lease, seq): its deliveries, why it goes (enum mq_why) and the
 * consumer's exit status (-1: unknown).  False when seq is not settling.
 */
struct mq_why_info {
	uint32_t deliveries;
	int      why;
	int      status;
};
bool   mq_settling_why(const struct mq *, uint64_t seq, struct mq_why_info *);

/* A message as a peek shows it, left where it is. */
enum mq_where { MQ_READY = 1, MQ_DELAYED = 2, MQ_LEASED = 3 };
struct mq_peek {
	const struct msg *m;
	uint32_t          deliveries;
	int               where; /* enum mq_where */
};
/*
 * The (at most max) oldest messages held (lowest seq first), whatever
 * their state but leaving (settling), into out; changes nothing.
 * Returns how many; O(messages x log max).
 */
size_t mq_peek(const struct mq *, struct mq_peek *out, size_t max);

/*
 * Calls fn for every leased and ready message in the order a restart
 * gives them back: the leases as if all expired at once (merged by seq
 * into the front of the ready ring, as mq_tick merges them), then the
 * rest of the ring.  For snapshots.  Without memory to sort the leases,
 * they come in lease order, before the ring.
 */
typedef void (*mq_walk_fn)(void *arg, const struct qent *);
void   mq_walk_ready(const struct mq *, mq_walk_fn, void *);

/* Sets the callback that logs settlements (see above). */
void   mq_set_settle(struct mq *, mq_settle_fn, void *);
/*
 * Applies a settlement: removes the message with this seq wherever it is
 * (ready, delayed, leased) and counts it; MQ_DEAD hands it to the dead
 * callback.  A seq no longer held is ignored (returns MOM_ENOENT).
 */
int    mq_settle(struct mq *, uint64_t seq, int how);

/*
 * Snapshot restore: appends a message to the ready ring, or to the delayed
 * heap with its due time, keeping its delivery count.  Takes a reference
 * of its own on success (0 or MOM_ENOMEM); stats are left alone.
 */
int mq_restore_ready(struct mq *, struct msg *, uint32_t deliveries);
int mq_restore_delayed(struct mq *, int64_t at, struct msg *, uint32_t deliveries);

#endif

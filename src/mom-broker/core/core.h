/*
 * core.h: the core thread.  It alone owns the broker's state (the fsm and
 * every lease); the network planes (net/) hand it requests through a
 * bounded queue and get each answer back through the request's reply
 * callback.  This is the Redis rule: one writer, no locks around queues
 * and topics.
 *
 * core/ is the layer above replica/, storage/ and state/ and below net/:
 * it includes nothing from net/.  Its files: core.c (the thread, its
 * queue and loop, timers), fetch.c (fetch, long polls), publish.c
 * (per-producer order), admin.c (admin requests, stats), acl.c (pure
 * permission rules).
 *
 * The fault-injection build (make fault; none of this is in the normal
 * build) reads MOM_FAULT_CONFIRM_BEFORE_COMMIT at core_start (set unless
 * empty or "0"): a publish is confirmed to its client as soon as it is
 * proposed to the log, before a majority stored it.  It is the deliberate
 * bug that the chaos run's checker must catch (tests/chaos: a leader killed
 * or cut off loses publishes it confirmed).  MOM_FAULT_CLOCK_SKEW_MS=N
 * (signed) sets the core's clock N ms off this machine's, as on a machine
 * whose clock is wrong (cluster.bats: a leader whose clock is behind).
 */
#ifndef BROKER_CORE_H
#define BROKER_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fsm;
struct core;
struct replica_peer;
struct creq;
struct mom_claims;

/*
 * One request, as a plane hands it to the core.  The plane owns it and
 * everything it points to until the core calls reply, exactly once.
 */
struct core_req {
	uint8_t                  op;     /* MOM_OP_* */
	const uint8_t           *body;   /* the op's body (after the frame header) */
	size_t                   len;
	const struct mom_claims *claims; /* who asks; NULL: an open broker */
	uint64_t                 conn;   /* the connection it came on (core_conn_closed); 0: none */
	/*
	 * The answer: a whole reply frame, borrowed for the call; NULL when
	 * none could be made (out of memory: let the client resend).  Called
	 * on the core thread, or on the submitting thread for "busy".
	 */
	void                   (*reply)(struct core_req *, const uint8_t *frame, size_t len);
	void                    *arg;    /* the plane's */
	/* The core's own, from core_submit until reply. */
	struct core_req         *qnext;
	struct creq             *cr;
};

struct core_config {
	size_t      max_payload;
	size_t      queue_max;      /* requests waiting for the core; beyond: "busy" */
	const char *dir;            /* the data directory (the log) */
	int         fsync;          /* enum rio_fsync */
	uint64_t    fsync_interval_ms;
	uint64_t    snapshot_bytes; /* log written between snapshots, at least; 0: 64 MiB */
	uint64_t    reserve;        /* bytes kept back for a full disk; 0: none */
	/* Cluster mode when node_id != 0 (replica.h's fields of the same names). */
	uint64_t    node_id;
	const char *cluster_url;
	const struct replica_peer *peers;
	size_t      npeers;
	const uint8_t *key;
	size_t      keylen;
	bool        bootstrap;
	uint64_t    election_timeout_ms; /* 0: REPLICA_ELECTION_MS */
};

/*
 * Starts the core thread, which opens the log in cfg->dir and replays it
 * (snapshot, then the entries after it) before returning.  0, or an error
 * with err saying why (a damaged data directory names the file and
 * offset).  The fsm is borrowed until core_free.
 */
int  core_start(struct core **, struct fsm *, const struct core_config *, char *err,
    size_t errlen);
/* Hands a request to the core (any thread).  Replies "busy" when full. */
void core_submit(struct core *, struct core_req *);
/*
 * A connection closed (any thread): its requests parked in long polls are
 * answered (empty, to nobody) at once instead of being handed messages
 * that would come back only after the ack wait.  conn is the plane's
 * id, the same as in its requests; planes keep their ids apart.
 */
void core_conn_closed(struct core *, uint64_t conn);
/* Where stats find the number of connected clients (any thread calls fn). */
void core_set_connections(struct core *, int (*fn)(void *), void *arg);
/*
 * Stops the thread after it answered everything queued; later requests
 * are answered "shutting down".  Free only after the planes are stopped.
 */
void core_stop(struct core *);
void core_free(struct core *);

/* Builds an error reply frame for op and hands it to req->reply (any thread). */
void core_reply_error(struct core_req *, int err, const char *msg);

#endif

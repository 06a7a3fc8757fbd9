/*
 * core_int.h: the core thread's own structures, shared by the files of
 * core/ and by nobody else.
 */
#ifndef BROKER_CORE_INT_H
#define BROKER_CORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>

#include "buf.h"
#include "mom.h"
#include "watchdog.h"
#include "core/core.h"
#include "replica/replica.h"
#include "state/fsm.h"
#include "state/map.h"

#define LONGPOLL_MAX_MS   20000 /* keep well under the clients' resend time (30 s) */
#define EPHEMERAL_IDLE_MS 60000 /* an unused ephemeral subscription goes */
#define TICK_MAX_MS       250
#define REORDER_WAIT_MS   1000  /* how long a batch waits for an earlier one */
#define PRODUCER_IDLE_MS  60000
#define STOP_DRAIN_MS     5000  /* at stop, for what was proposed to finish */

/* What a command's result is for (replica_waiter.want). */
enum want {
	W_NONE,    /* nobody waits (settlements, timers) */
	W_PUBLISH, /* a publish reply */
	W_ADMIN,   /* an admin reply (JSON) */
	W_FETCH,   /* a receive waiting for its subscription: handled again */
	W_TICK,    /* the CMD_TICK in flight */
	W_SETTLE,  /* a CMD_SETTLE: who is its generation (fetch.c: settle holds) */
};

/* A consumer parked in a long poll. */
struct waiter {
	struct mq   *mq;
	uint64_t     consumer;
	size_t       max, max_bytes;
	bool         noack;
	bool         parked;
	uint8_t      kind;
	const char  *qname;  /* queue name for queue deliveries */
	uint64_t     holder; /* who the leases are for (fetch.c: holder_of) */
	uint64_t    *stale;  /* receipts this request could not settle (malloc'd) */
	size_t       nstale, stale_cap;
	int64_t      deadline;
	TAILQ_ENTRY(creq) link;  /* the mq's waiters, first come first served */
	TAILQ_ENTRY(creq) glink; /* every waiter, for timeouts */
};

TAILQ_HEAD(creq_list, creq);

/*
 * A cluster change (cluster.add, .remove, .transfer) waiting for the
 * replica's done callback, which owns it until then.  cr is NULL once
 * its client went away (answered at once) or the broker stops.
 */
struct cluster_call {
	struct core                  *c;
	struct creq                  *cr;
	TAILQ_ENTRY(cluster_call)     link;
};

TAILQ_HEAD(cluster_call_list, cluster_call);

/* The core's side of a request, from handle() until the reply. */
struct creq {
	struct core_req *req;
	bool             resumed; /* handled again (after a command it needed) */
	/*
	 * A close that waits for the CMD_SETTLE of generation settle_gen to
	 * be applied before it goes on (fetch.c); gone: its connection
	 * closed meanwhile.
	 */
	bool             settled, gone;
	uint64_t         settle_gen;
	TAILQ_ENTRY(creq) slink;
	struct waiter    w;
	/* A publish that arrived before an earlier batch of its producer. */
	uint64_t         pub_seq, pub_count;
	int64_t          pub_until;
	struct creq     *pub_next;
	struct creq     *free_next;
};

/*
 * Publish order per producer.  nng hands requests that arrived in order
 * on one connection to the core through several threads, so batch 7 of a
 * stream may reach the core before batch 6.  Each batch carries its
 * producer's sequence number; a batch that comes early waits here (for
 * at most REORDER_WAIT_MS) so that a stream is stored in the order it was
 * sent.
 */
struct porder {
	uint64_t     next;    /* sequence number expected next */
	int64_t      last_ms;
	struct creq *pending; /* early batches, sorted by first_seq */
};

struct core {
	struct replica    *rep;
	struct fsm        *fsm;
	struct core_config cfg;
	int              (*connections)(void *);
	void              *connections_arg;
	pthread_t          thread;
	pthread_mutex_t    mu;
	pthread_cond_t     cv;
	struct core_req   *qhead, *qtail;
	size_t             qlen;
	uint64_t          *closed;  /* connections closed since the last turn */
	size_t             nclosed, closed_cap;
	bool               stop;
	/* Core thread only from here. */
	struct creq_list   waiters; /* every parked long poll */
	struct cluster_call_list cluster_calls; /* changes waiting for the replica */
	struct creq       *free;    /* recycled creqs */
	struct mq_receipts receipts; /* epoch: the raft term (fetch.c) */
	int64_t            started;
	struct mom_buf     scratch, reply, cmd;
	struct umap        porders;
	uint64_t           requests, busy_replies;
	struct watchdog    wd;       /* says when one turn of the loop lasts (core.c) */
	int64_t            stall_ms; /* fault build: one turn that long, once (MOM_FAULT_CORE_STALL_MS) */
	struct mom_buf     settles;  /* CMD_SETTLE body being built */
	uint64_t           nsettles;
	uint64_t           settle_gen; /* the generation of settles (counts proposals) */
	uint64_t           settle_applied; /* generations below it are applied or failed */
	struct creq_list   settling;   /* fetches held for their settles, by generation */
	bool               tick_inflight, ready;
	bool               started_up, start_ok, io_wake; /* under mu */
	int                start_code; /* replica_start's MOM_E* when it failed */
	char               start_msg[512];
	/* Cluster mode: requests forwarded to the leader, and from followers (forward.c). */
	TAILQ_HEAD(, fwd_out) fwd_outs;
	struct umap        fwd_ids;  /* our forward id -> fwd_out */
	struct umap        fwd_ins;  /* (node, id) -> fwd_in being served here */
	size_t             fwd_n;
	uint64_t           fwd_next, fwd_sent, fwd_resent, fwd_served;
	int64_t            fwd_due;    /* the earliest deadline of fwd_outs */
	uint64_t           fwd_leader; /* the leader at the last walk */
	/*
	 * The core's clock is this machine's wall clock plus clock_offset:
	 * 0, unless the log's last command was stamped later than this clock
	 * says when the node began to lead (or started): then the broker's
	 * time continues from that stamp (core_clock_follow), so that a
	 * leader whose clock is behind neither rewinds nor freezes TTLs,
	 * retention and idle expiry.
	 */
	int64_t            clock_offset;
#ifdef MOM_FAULT_INJECTION
	bool               confirm_before_commit; /* core.h: MOM_FAULT_CONFIRM_BEFORE_COMMIT */
	int64_t            clock_skew;            /* core.h: MOM_FAULT_CLOCK_SKEW_MS */
#endif
};

/* The core's clock (see clock_offset). */
static inline int64_t
core_now(const struct core *c)
{
#ifdef MOM_FAULT_INJECTION
	return mom_now_ms() + c->clock_skew + c->clock_offset;
#else
	return mom_now_ms() + c->clock_offset;
#endif
}

/* core.c */
void creq_reply(struct core *, struct creq *, const struct mom_buf *);
void creq_error(struct core *, struct creq *, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void creq_json(struct core *, struct creq *, json_t *);
void core_handle(struct core *, struct creq *, int64_t now);
/* Answers cr: this node does not lead (and who does, when known). */
void core_not_leader(struct core *, struct creq *);
/* A request this node cannot serve as it does not lead: forwarded, or refused. */
void core_elsewhere(struct core *, struct creq *, int64_t now);
struct creq *creq_get(struct core *, struct core_req *);

/* forward.c */
struct fwd_out;
void forward_request(struct core *, struct creq *, int64_t now);
void forward_deliver(void *arg, uint64_t from, uint8_t kind, const uint8_t *msg, size_t len);
void forward_conn_closed(struct core *, uint64_t conn);
void forward_tick(struct core *, int64_t now, int64_t *next);
void forward_release_all(struct core *);
/* Was this request forwarded by another node (never forwarded again)? */
#define CORE_CONN_FORWARDED(conn) (((conn) >> 62) == 3)
/*
 * Proposes c->cmd; cr (or nobody) gets the result as want says.  0,
 * MOM_ENOMEM, or MOM_EFULL: the disk is full and the command would add
 * data (a client's only; core_refuse answers it).
 */
int  core_propose(struct core *, struct creq *, int want);
/* Answers cr after core_propose (or core_admin_cmd) returned rv. */
void core_refuse(struct core *, struct creq *, int rv);
/* Proposes an admin command from a JSON object (consumed).  As core_propose. */
int  core_admin_cmd(struct core *, json_t *o, int64_t now, struct creq *, int want);
/* The owner a new queue, topic or subscription is recorded with. */
void core_set_owner(const struct creq *, json_t *o);

/* publish.c */
void publish_handle(struct core *, struct creq *, const uint8_t *body, size_t len, int64_t now);
void publish_reply(struct core *, struct creq *, const struct fsm_result *);
/* Applies what waited for earlier batches and is due; the next deadline lowers *next. */
void publish_tick(struct core *, int64_t now, int64_t *next);
/* At stop: everything that waits is applied. */
void publish_drain_all(struct core *, int64_t now);

/* fetch.c */
void fetch_handle(struct core *, struct creq *, const uint8_t *body, size_t len, int64_t now);
void fetch_serve_waiters(struct core *, struct mq *, int64_t now);
/* The long polls whose deadline passed get their (empty) answer. */
void fetch_tick(struct core *, int64_t now, int64_t *next);
/* The fsm is about to free an mq: its waiters learn it is gone. */
void fetch_gone(void *core, struct mq *);
/* Answers every long poll (empty), at stop. */
void fetch_release_all(struct core *, int64_t now);
/* The polls parked by requests of connection conn end (empty). */
void fetch_conn_closed(struct core *, uint64_t conn, int64_t now);
/* Has this mq consumers parked on it? */
bool fetch_has_waiters(struct core *, struct mq *);
size_t fetch_waiting(struct core *, struct mq *);
/*
 * A consumer's close is answered only once the settlements before it
 * are applied (fetch.c, "Settle holds").  The CMD_SETTLE of generation
 * gen was applied (err 0) or will never be (err, msg): the closes held
 * for it and for older ones go on, or get the error.
 */
void fetch_settle_done(struct core *, uint64_t gen, int err, const char *msg);
/* The settlements not yet proposed are dropped (no longer leading): their fetches get err. */
void fetch_settle_drop(struct core *, int err, const char *msg);

/* admin.c */
void admin_handle(struct core *, struct creq *, const uint8_t *body, size_t len, int64_t now);
/* A connection closed: its cluster changes are answered now, to nobody. */
void admin_conn_closed(struct core *, uint64_t conn);
/* At stop: every cluster change still waiting is answered "shutting down". */
void admin_release_all(struct core *);
/* prom.c: the replica's role, term, indexes and elections as stats keys raft_*. */
void raft_stats_json(struct core *, json_t *o);
/* prom.c: the Prometheus text of what cl may see (malloc'd; NULL: out of memory). */
char *prom_text(struct core *, const struct mom_claims *cl, int64_t now);

#endif

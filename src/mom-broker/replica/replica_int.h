/*
 * replica_int.h: the replica's state, shared by the files of replica/
 * (replica.c: the log; cluster.c: a node of a cluster).  Nothing above
 * replica/ includes it.
 */
#ifndef BROKER_REPLICA_INT_H
#define BROKER_REPLICA_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>
#include <raft.h>

#include "buf.h"
#include "replica/ident.h"
#include "replica/replica.h"
#include "state/fsm.h"
#include "storage/rio.h"

/*
 * A node of a cluster (cfg.node_id != 0).  Per raft group, as the rest of
 * struct replica: the broker will run several groups over the same links.
 */
#define REPLICA_MAX_NODES 64

struct link;

/* What a member last said of itself (transport.c, LINK_STATUS). */
struct peer_report {
	uint64_t term, commit, applied;
	int64_t  at_ms; /* mom_mono_ms when it came; 0: never */
};

/*
 * The replication traffic with a member as this node saw it (transport.c):
 * the last AppendEntries and the last answer to one, each way.  It says
 * why a node does not catch up: no requests, requests refused, or answers
 * that do not move.
 */
struct peer_append {
	uint64_t count, term, prev, entries, commit;
	int64_t  at_ms; /* mom_mono_ms of the last; 0: none */
};
struct peer_answer {
	uint64_t count, term, rejected, last;
	int64_t  at_ms;
};
struct peer_traffic {
	struct peer_append append_out, append_in;
	struct peer_answer answer_out, answer_in;
};

/* A member but this node (transport.c keeps them in step with the configuration). */
struct peer_state {
	uint64_t            id;
	int64_t             heard_ms; /* mom_mono_ms of its last raft message; 0: never */
	struct peer_report  report;   /* what it last said of itself */
	struct peer_traffic traffic;
};

/*
 * A node this one heard from that is not in its configuration (transport.c):
 * told so at most every STRANGER_TELL_MS.  kept: a member removed since
 * this node started, whose link stays up so that it can be told.
 */
#define STRANGERS_MAX 8
struct stranger {
	uint64_t id;
	int64_t  told_ms;
	bool     kept;
};

struct replica_node {
	struct ident        ident;
	uint64_t            boot_cluster; /* --bootstrap on an empty directory: the id to form */
	struct raft_barrier barrier;      /* the new leader's first entry */
	bool                barrier_out;  /* proposed, not yet applied */
	bool                leading;      /* leader, and its barrier applied */
	uint64_t            lead_term;    /* the term whose barrier was proposed */
	uint64_t            won_term;     /* the fault build's late barrier: this term's */
	int64_t             won_ms;       /* leadership was seen then (mom_mono_ms) */
	uint64_t            elections;    /* times this node became leader */
	uint64_t            barriers;     /* barriers proposed on becoming leader */
	uint64_t            conf_index;   /* the configuration the links know */
	struct peer_state   peer[REPLICA_MAX_NODES]; /* its members but this node */
	size_t              npeer;
	int64_t             report_ms;    /* when this node last sent its own */
	uint64_t            bad_msgs;     /* undecodable, or lying about their sender */
	struct stranger     stranger[STRANGERS_MAX];
	size_t              nstranger;
	uint64_t            strangers_told; /* LINK_NOT_MEMBER sent */
	uint64_t            removed_by;   /* the member that said this node is not one */
	uint64_t            removed_index; /* and the configuration it has */
	bool                more;         /* the links had more than one drive takes */
	struct member_op   *op;           /* the membership change under way (membership.c) */
	bool                op_busy;      /* its raft request is out */
};

/* A log entry in flight: its commands' waiters, in order. */
struct prop {
	struct raft_apply      req;
	struct replica        *r;
	struct replica_waiter *w;
	size_t                 n;
	bool                   answered;
	bool                   committed; /* libraft applied it; our apply is in r->stash */
	TAILQ_ENTRY(prop)      link;
};

/* A committed entry libraft counts as applied and our fsm has yet to apply
 * (replica.c, stash): its buffer is libraft's, in its log until a snapshot. */
struct stashed {
	uint64_t    index;
	const void *base;
	size_t      len;
};

struct replica {
	struct raft           raft;
	struct raft_io        io;
	struct raft_fsm       rfsm;
	struct fsm           *fsm;
	struct fsm_config     fsm_cfg;  /* fsm's, for parsing an install on rio's worker */
	struct replica_config cfg;
	/* The entry being built: commands (varint length + command each). */
	struct mom_buf         batch;
	struct replica_waiter *bw;
	size_t                 bn, bcap;
	TAILQ_HEAD(, prop)     props; /* in flight, in log order */
	struct stashed        *stash; /* committed, not yet through fsm_apply */
	size_t                 nstash, capstash;
	bool                   ready, disk_full;
	int                    start_err, start_code; /* RAFT_* of a failed open */
	char                   errmsg[512];
	uint64_t               log_bytes;          /* bytes proposed */
	uint64_t               applied_bytes, snap_at; /* bytes applied; when to snapshot */
	uint64_t               full_snap_at;       /* the same on a full disk */
	uint64_t               entries, commands, snapshots, trimmed;
	struct fsm_snap       *snap;          /* the snapshot being taken (rfsm_snapshot) */
	uint64_t               snap_begin_us; /* the core thread's part of the last one */
	uint64_t               installed;     /* snapshots restored from a leader */
	uint64_t               install_us;    /* the core thread's part of the last one */
	uint64_t               trim_us, trim_us_max; /* malloc_trim after a snapshot: last, longest */
	bool                   loading;       /* in raft_start: a restore is from our disk */
	struct replica_node    node;      /* cluster mode */
	struct rio_transport   transport; /* cluster mode: the links (transport.c) */
	struct link           *link;
	struct mom_buf         tx;        /* a raft message being encoded */
	char                   rx_addr[256]; /* the sender's address of the last one received */
};


/* The core's role and deliver callbacks, called with what libraft applied
 * and rfsm_apply stashed put through the fsm first (replica.c). */
void replica_call_role(struct replica *r, bool leading);
void replica_call_deliver(struct replica *r, uint64_t from, uint8_t kind, const void *data,
    size_t len);

/* A member's report of its own term, commit and applied index, if one came
 * within REPORT_FRESH_MS; else NULL (transport.c). */
#define REPORT_EVERY_MS 500
#define REPORT_FRESH_MS 2000
const struct peer_report *replica_report(struct replica *r, uint64_t id);
/* The replication traffic with member id, or NULL for a non-member (transport.c). */
const struct peer_traffic *replica_traffic(struct replica *r, uint64_t id);

/* Cluster mode (cluster.c). */
int  cluster_check_dir(struct replica *r);
int  cluster_bootstrap(struct replica *r, bool *alone);
void cluster_watch(struct replica *r);
void cluster_learned(struct replica *r, uint64_t cluster);
/* Status and changes (membership.c). */
json_t *cluster_json(struct replica *r);
void    membership_drive(struct replica *r);
void    membership_stop(struct replica *r);
void    membership_free(struct replica *r);
int     cluster_member_add(struct replica *r, uint64_t id, const char *url,
    replica_done_fn done, void *arg);
int     cluster_member_remove(struct replica *r, uint64_t id, replica_done_fn done, void *arg);
int     cluster_transfer(struct replica *r, uint64_t id, replica_done_fn done, void *arg);
struct member_op;

/* The links (transport.c): start before raft_init, drain at each drive. */
int  transport_start(struct replica *r);
void transport_stop(struct replica *r);
void transport_drain(struct replica *r);
void transport_stats_json(struct replica *r, json_t *o);

#endif

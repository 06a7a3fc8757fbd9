/*
 * replica.h: the replicated log.  Every call into libraft lives here:
 * opening and bootstrapping the log, replaying it, proposing the turn's
 * commands as one entry, driving libraft and rio (storage/rio.h) from the
 * core loop, applying committed entries to the fsm, snapshots, and who
 * leads.  The cluster's transport and membership will live in this
 * folder too.
 *
 * replica/ may include storage/ and state/, never core/ or net/.  It
 * knows nothing of requests: a command's waiter is an opaque tag that
 * comes back through the result and fail callbacks.  libraft is
 * single-threaded: every function here runs on the core thread.
 */
#ifndef BROKER_REPLICA_H
#define BROKER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct fsm;
struct fsm_result;
struct replica;

/* Who waits for a command's result: the replica only carries it. */
struct replica_waiter {
	void *who;
	int   want;
};

/* A cluster member (replica_config.peers). */
struct replica_peer {
	uint64_t    id;
	const char *url;
};

/* What a node is to the cluster (replica_role). */
enum replica_role {
	REPLICA_FOLLOWER = 0,
	REPLICA_CANDIDATE,
	REPLICA_LEADER,     /* leads, and its own first entry is applied: serves */
	REPLICA_STANDBY,    /* in the configuration as a spare: catching up */
	REPLICA_UNAVAILABLE,
	REPLICA_REMOVED,    /* a member says its configuration leaves this node out */
};

#define REPLICA_ELECTION_MS 800

struct replica_config {
	const char *dir;               /* the data directory */
	/*
	 * Cluster mode when node_id != 0 (mom-broker(8), "Cluster"):
	 * cluster_url is this node's listener for the other nodes, peers the
	 * other members it knows of (--peer), key the cluster key.
	 * bootstrap: form a new cluster with peers when the data directory
	 * is empty.  Without node_id: a single broker, node 1 alone.
	 */
	uint64_t    node_id;
	const char *cluster_url;
	const struct replica_peer *peers;
	size_t      npeers;
	const uint8_t *key;
	size_t      keylen;
	bool        bootstrap;
	/*
	 * A follower that hears no leader for this long (to twice as long,
	 * at random) stands for election, after a pre-vote; the leader's
	 * heartbeat is a tenth of it.  0: REPLICA_ELECTION_MS.
	 */
	uint64_t    election_timeout_ms;
	int         fsync;             /* enum rio_fsync */
	uint64_t    fsync_interval_ms;
	uint64_t    snapshot_bytes;    /* log written between snapshots, at least */
	uint64_t    reserve;           /* bytes kept back for a full disk (storage/store.h) */
	/* rio's sync thread finished a sync: the core loop should step (any thread). */
	void      (*wake)(void *);
	/* A command was applied: res is its result (borrowed for the call). */
	void      (*result)(void *, const struct replica_waiter *, struct fsm_result *res);
	/* A command will never be applied: err (MOM_E*) and a message for the client. */
	void      (*fail)(void *, const struct replica_waiter *, int err, const char *msg);
	void       *arg;
	/* Cluster mode: this node began or stopped serving as the leader (core thread). */
	void      (*role)(void *, bool leading);
	/*
	 * Cluster mode: a message of another kind than raft's (link.h
	 * LINK_FWD...) from node from, borrowed for the call (core thread).
	 */
	void      (*deliver)(void *, uint64_t from, uint8_t kind, const uint8_t *msg, size_t len);
};

/*
 * Opens the log in cfg->dir, replays it into fsm (snapshot, then the
 * entries after it) and becomes its leader.  0, or MOM_EBADDATA (the log
 * or snapshot is damaged: err names the file and offset) or another
 * MOM_E* code, with err saying why.  Commands applied while replaying
 * reach no waiter.  A full disk at start is no reason to stop: the
 * start-up barrier takes its place in the reserve.
 */
int  replica_start(struct replica **, struct fsm *, const struct replica_config *, char *err,
    size_t errlen);
/*
 * Finishes what was proposed (for at most 5 s), syncs the log whatever
 * --fsync says, records the clean stop (store_mark_clean) and closes it.
 * Then frees.
 */
void replica_stop(struct replica *);

/*
 * Adds a command (encoded by fsm_cmd_encode) to this turn's entry; w
 * (copied; may be NULL) gets its result.  0 or MOM_ENOMEM.
 */
int  replica_add(struct replica *, const void *cmd, size_t len, const struct replica_waiter *w);
/* Commands added this turn and not yet proposed. */
size_t replica_pending(const struct replica *);
/*
 * Proposes this turn's commands as one log entry (failures reach their
 * waiters).  With more than one voter, at most one entry is uncommitted
 * at a time (libraft 0.15.0's commit stall, see replica.c): while one is,
 * the commands stay in the batch and go with the next call after it
 * committed (replica_pending and replica_inflight count them).
 */
void replica_flush(struct replica *);
/*
 * Drives libraft and rio until nothing is due now: appends, syncs and
 * applies; a barrier on every transition to leader (the figure-8
 * workaround with storage/guard.h).  0, or -1 when the data directory failed (errmsg says how):
 * the caller must stop, since what reached the disk is unknown.
 */
int  replica_drive(struct replica *, const char **errmsg);
/* Milliseconds until the replica needs driving again; -1: nothing due. */
int64_t replica_poll(struct replica *);
/* Log entries proposed and not yet applied or refused, or commands not yet proposed. */
bool replica_inflight(const struct replica *);
/* Gives memory back after a snapshot freed log entries (once per snapshot). */
void replica_trim(struct replica *);

/*
 * The disk is full (the store gave up its reserve): the caller refuses
 * commands that add data (fsm_cmd_grows) while the rest drain the disk.
 */
bool replica_full(struct replica *);

/*
 * mom-broker --repair: opens the log in dir cutting at the first damage
 * instead of refusing it (store.h, cfg.repair); when the cut falls below
 * the snapshot, the whole log goes (the snapshot holds what it had).
 * report gets one line: what was cut where, how many entries and
 * messages were dropped.  0 (also when there was nothing to repair) or a
 * MOM_E* code with err.  Only for a node that is alone: a voter of a
 * cluster would forget entries it acknowledged (wipe it and let it
 * catch up instead).
 */
int  replica_repair(const char *dir, char *report, size_t replen, char *err, size_t errlen);

/*
 * Is this node the leader, with everything committed before its term
 * applied (always, for a single broker)?  Only then does it serve.
 */
bool replica_is_leader(const struct replica *);
/*
 * Cluster mode: sends msg (copied) of kind (link.h) to node to over the
 * links; never blocks.  0, or MOM_EUNAVAIL (no such node, no room in the
 * link now, not a cluster), MOM_ETOOBIG, MOM_ENOMEM.
 */
int  replica_send(struct replica *, uint64_t to, uint8_t kind, const void *msg, size_t len);
/* Cluster mode: is this node's connection to node id up (false: no such node, not a cluster)? */
bool replica_link_up(struct replica *, uint64_t id);
/* Whether a raft message from member id came in the last ms milliseconds. */
bool replica_heard_within(struct replica *, uint64_t id, uint64_t ms);
/* This node's role; the leader's id and cluster URL (0 and NULL: none known). */
enum replica_role replica_role(const struct replica *);
uint64_t replica_leader(const struct replica *, const char **url);
/*
 * Cluster mode: the member that told this node it is not in the cluster's
 * configuration (REPLICA_REMOVED), and that configuration's index; 0: no
 * member did, or this node has been added back since.
 */
uint64_t replica_removed_by(const struct replica *, uint64_t *conf_index);
/*
 * mom-broker --convert-to-cluster: makes the single broker's data
 * directory dir node node_id, alone, of a new cluster (a configuration of
 * one voter at url; the cluster id derived from key, node, url and the
 * time), so that others can be added.  0, or a MOM_E* code with err.
 */
int  replica_convert(const char *dir, uint64_t node_id, const char *url, const uint8_t *key,
    size_t keylen, char *err, size_t errlen);
/*
 * The current raft term: a new one at every start (the node elects itself
 * again) and at every change of leader, kept in the log's metadata so
 * that it only grows.  Receipts carry it (state/mq.h).
 */
uint64_t replica_term(const struct replica *);
/* The log's numbers for stats (fsync mode, indexes, entries, syncs). */
void replica_stats_json(struct replica *, json_t *o);
/* Raft's view for "cluster status": term, commit and applied index. */
void replica_status(const struct replica *, uint64_t *term, uint64_t *commit,
    uint64_t *applied);

/*
 * Cluster administration (members.c).  A change reports its outcome
 * through done, on the core thread: err 0 or a MOM_E* code, and msg one
 * line for the client (borrowed for the call).  done is called exactly
 * once, possibly before the call returns, when the call returns 0; a
 * non-zero return (MOM_ENOMEM) means it will not be called.  Changes
 * still in flight at replica_stop get done(MOM_ECLOSED) before it
 * returns.  For a broker that is not in a cluster each change is done
 * at once with MOM_EINVAL and a line that says how to start one (in the
 * fault build with MOM_FAULT_CLUSTER_HOLD set, only when the next change
 * comes: members.c).
 */
typedef void (*replica_done_fn)(void *arg, int err /* 0 or MOM_E* */, const char *msg);

/*
 * SPEC "Cluster": {"leader": id or null, "self": id, "term", "commit",
 * "applied", "elections", "nodes": [{"id", "url" (null: none), "role",
 * "term", "commit", "applied", "lag"}]}.  A new reference (NULL: out of
 * memory).
 */
json_t *replica_cluster_json(struct replica *);
/* Adds node id (a positive integer) with its cluster URL, as a standby that becomes a voter. */
int  replica_member_add(struct replica *, uint64_t id, const char *url, replica_done_fn,
    void *);
int  replica_member_remove(struct replica *, uint64_t id, replica_done_fn, void *);
/* Leadership to node id (0: any other voter); done once the target leads. */
int  replica_transfer(struct replica *, uint64_t id, replica_done_fn, void *);

#endif

/*
 * failover.h: which broker of a client's list gets the next request.
 *
 * Pure decisions (no clock, no sockets), for client.c and its unit test:
 * each broker of the list has a state; what happened to a request there
 * (answered, silent past its deadline, connection lost, "not leader" or
 * "unavailable") sets it aside for a while, and the next request goes to
 * the first broker from the current one on that is connected and not set
 * aside.  Requests stay on one broker while it answers (a cluster's
 * follower forwards them to the leader anyway), which keeps a stream's
 * batches in order on one connection.
 */
#ifndef MOM_FAILOVER_H
#define MOM_FAILOVER_H

#include <stdint.h>

struct mom_node_state {
	int     connected;   /* has a connection now */
	int64_t aside_until; /* mono ms: set aside until then; 0: never was */
	int64_t silent_ms;   /* the next set-aside for silence (grows while it stays silent) */
};

enum mom_node_event {
	MOM_NODE_ANSWERED, /* a reply: the back-off starts over */
	MOM_NODE_SILENT,   /* no reply within the attempt's deadline (stopped, overloaded) */
	MOM_NODE_GONE,     /* its connection closed, or it refused one */
	MOM_NODE_REFUSED,  /* up, but "not leader", "unavailable" or "shutting down" */
};

/* Set-asides: silence from 1 s doubling to 30 s, a lost connection 1 s, a refusal 250 ms. */
#define MOM_NODE_SILENT_MIN_MS 1000
#define MOM_NODE_SILENT_MAX_MS 30000
#define MOM_NODE_GONE_MS       1000
#define MOM_NODE_REFUSED_MS    250

void mom_node_note(struct mom_node_state *, enum mom_node_event, int64_t now);

/*
 * The broker for the next request (an index below n), from cur on: the
 * first connected one not set aside, else the first not set aside (its
 * connection may come), else the one whose set-aside ends first.
 */
int mom_node_pick(const struct mom_node_state *, int n, int cur, int64_t now);

/*
 * The current broker after ev on node (cur: the current one, n brokers):
 * the one that answered; past one that failed, so that a broker that keeps
 * saying "not leader" is not asked first again once its set-aside ends.
 */
int mom_node_after(int cur, int node, int n, enum mom_node_event ev);

/*
 * Is a reply status a reason to send the request again, to another broker
 * of the list: "shutting down" (a restart), "not the leader", "unavailable"
 * (a cluster without a leader)?
 */
int mom_node_retry_status(int status);

/*
 * How long to wait before sending requests again after a refusal of
 * status (mom_node_retry_status), away_ms after the brokers began to
 * refuse: half that, at least 50 ms; at most 1 s for a broker that
 * restarts, 200 ms while a cluster elects a leader ("not the leader"),
 * which takes about a second: a longer pause would outlast the election.
 */
int64_t mom_node_again_pause(int status, int64_t away_ms);

#endif

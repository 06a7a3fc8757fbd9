/*
 * membership.c: a cluster node's status and its membership and
 * leadership changes (replica.h: replica_cluster_json, replica_member_add,
 * replica_member_remove, replica_transfer in cluster mode).
 *
 * One change at a time, driven from the core loop (membership_drive).
 * Adding a node: raft_add makes it a spare, which libraft 0.15 sends
 * nothing; so it becomes a standby at once (it receives the log, or a
 * snapshot, and counts for no majority), and a voter only once it has
 * caught up (its match index within CATCHUP_SLACK entries of the log's
 * end), so that a slow newcomer never stalls the majority.  A transfer
 * is checked: 0.15 can fail one silently, so it is tried again until
 * raft_leader names the target, at most TRANSFER_TRIES times.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <raft.h>

#include "log.h"
#include "mom.h"
#include "replica/replica.h"
#include "replica/replica_int.h"

#define CATCHUP_SLACK  64      /* entries a standby may lag and become a voter */
#define CHANGE_MAX_MS  300000  /* a newcomer catching up, at most */
#define TRANSFER_TRIES 3

enum { OP_ADD = 1, OP_REMOVE, OP_TRANSFER };
enum { PH_START, PH_WAIT, PH_ADDED, PH_STANDBY, PH_VOTER, PH_DONE };

struct member_op {
	int              kind, phase, tries;
	uint64_t         id;
	char             url[256];
	int64_t          deadline;
	struct raft_change  chg;
	struct raft_transfer xfer;
	replica_done_fn  done;
	void            *arg;
	int              status; /* of the last raft request */
	bool             answered;
};

static const struct raft_server *
server_of(const struct replica *r, uint64_t id, unsigned *idx)
{
	unsigned i;

	for (i = 0; i < r->raft.configuration.n; i++)
		if (r->raft.configuration.servers[i].id == id) {
			if (idx != NULL)
				*idx = i;
			return &r->raft.configuration.servers[i];
		}
	return NULL;
}

static const char *
role_name(int role)
{
	return role == RAFT_VOTER ? "follower" : "standby";
}

static json_t *
append_json(const struct peer_append *a, int64_t now)
{
	if (a->at_ms == 0)
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)a->count,
	    "term", (json_int_t)a->term, "prev", (json_int_t)a->prev,
	    "entries", (json_int_t)a->entries, "commit", (json_int_t)a->commit,
	    "ago_ms", (json_int_t)(now - a->at_ms));
}

static json_t *
answer_json(const struct peer_answer *w, int64_t now)
{
	if (w->at_ms == 0)
		return json_null();
	return json_pack("{s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)w->count,
	    "term", (json_int_t)w->term, "rejected", (json_int_t)w->rejected,
	    "last", (json_int_t)w->last, "ago_ms", (json_int_t)(now - w->at_ms));
}

/*
 * The replication traffic with a node (replica_int.h), and on the leader
 * libraft's progress for it: what tells why a node does not catch up.
 */
static json_t *
replication_json(struct replica *r, uint64_t id, unsigned i)
{
	static const char *const states[] = { "probe", "pipeline", "snapshot" };
	const struct peer_traffic *t = replica_traffic(r, id);
	int64_t now = mom_mono_ms();
	json_t *o;

	if (t == NULL || (o = json_object()) == NULL)
		return json_null();
	json_object_set_new(o, "sent", json_pack("{s:o, s:o}",
	    "append", append_json(&t->append_out, now), "answer", answer_json(&t->answer_out, now)));
	json_object_set_new(o, "received", json_pack("{s:o, s:o}",
	    "append", append_json(&t->append_in, now), "answer", answer_json(&t->answer_in, now)));
	if (raft_state(&r->raft) == RAFT_LEADER) {
		const struct raft_progress *p = &r->raft.leader_state.progress[i];

		json_object_set_new(o, "state", json_string(p->state < 3 ? states[p->state] : "?"));
		json_object_set_new(o, "next", json_integer((json_int_t)p->next_index));
		json_object_set_new(o, "match", json_integer((json_int_t)p->match_index));
	}
	return o;
}

static json_t *
node_json(struct replica *r, const struct raft_server *s, unsigned i, uint64_t leader)
{
	bool    self = s->id == r->cfg.node_id;
	bool    leading = raft_state(&r->raft) == RAFT_LEADER;
	json_t *n;
	const char *role;

	if (self)
		role = replica_role(r) == REPLICA_LEADER ? "leader" :
		    replica_role(r) == REPLICA_CANDIDATE ? "candidate" :
		    replica_role(r) == REPLICA_UNAVAILABLE ? "unavailable" :
		    replica_role(r) == REPLICA_REMOVED ? "removed" : role_name(s->role);
	else if (s->id == leader)
		role = "leader";
	else if (leading && !replica_heard_within(r, s->id, r->raft.election_timeout))
		role = "unreachable";
	else
		role = role_name(s->role);
	n = json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)s->id, "url",
	    s->address != NULL ? s->address : "", "role", role, "voter", s->role == RAFT_VOTER);
	if (n == NULL)
		return NULL;
	if (self) {
		json_object_set_new(n, "term", json_integer((json_int_t)r->raft.current_term));
		json_object_set_new(n, "commit", json_integer((json_int_t)r->raft.commit_index));
		json_object_set_new(n, "applied",
		    json_integer((json_int_t)raft_last_applied(&r->raft)));
		json_object_set_new(n, "lag", json_integer(0));
	} else {
		/* What the node said of itself lately (transport.c), if it did. */
		const struct peer_report *rep = replica_report(r, s->id);

		json_object_set_new(n, "term", rep ? json_integer((json_int_t)rep->term) :
		    json_null());
		json_object_set_new(n, "commit", rep ? json_integer((json_int_t)rep->commit) :
		    json_null());
		json_object_set_new(n, "applied", rep ? json_integer((json_int_t)rep->applied) :
		    json_null());
		/* Known to the leader only: how far each node's log is. */
		if (leading) {
			raft_index m = r->raft.leader_state.progress[i].match_index;

			json_object_set_new(n, "match", json_integer((json_int_t)m));
			json_object_set_new(n, "lag", json_integer((json_int_t)
			    (raft_last_index(&r->raft) > m ? raft_last_index(&r->raft) - m : 0)));
		} else
			json_object_set_new(n, "lag", json_null());
		json_object_set_new(n, "replication", replication_json(r, s->id, i));
	}
	return n;
}

json_t *
cluster_json(struct replica *r)
{
	uint64_t leader = replica_leader(r, NULL);
	json_t  *o, *nodes, *links;
	char     cid[24];
	unsigned i;

	/* Only a leader that serves is named: one still applying its barrier is not yet. */
	if (leader == r->cfg.node_id && !replica_is_leader(r))
		leader = 0;
	if ((nodes = json_array()) == NULL)
		return NULL;
	for (i = 0; i < r->raft.configuration.n; i++)
		json_array_append_new(nodes, node_json(r, &r->raft.configuration.servers[i], i,
		    leader));
	snprintf(cid, sizeof(cid), "%016" PRIx64, r->node.ident.cluster);
	o = json_pack("{s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:o}",
	    "leader", leader != 0 ? json_integer((json_int_t)leader) : json_null(),
	    "self", (json_int_t)r->cfg.node_id,
	    "cluster", cid,
	    "term", (json_int_t)r->raft.current_term,
	    "commit", (json_int_t)r->raft.commit_index,
	    "applied", (json_int_t)raft_last_applied(&r->raft),
	    "elections", (json_int_t)r->node.elections,
	    "nodes", nodes);
	if (o != NULL && (links = json_object()) != NULL) {
		transport_stats_json(r, links);
		json_object_set_new(o, "transport", links);
	}
	return o;
}

/* Changes. */

static void
finish(struct replica *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
finish(struct replica *r, int err, const char *fmt, ...)
{
	struct member_op *op = r->node.op;
	char              msg[512];
	va_list           ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	op->phase = PH_DONE;
	if (!op->answered) {
		op->answered = true;
		op->done(op->arg, err, msg);
	}
	if (err != 0)
		log_warnx("cluster change: %s", msg);
	else
		log_info("cluster change: %s", msg);
}

static void
change_cb(struct raft_change *req, int status)
{
	struct replica   *r = req->data;
	struct member_op *op = r->node.op;

	if (op == NULL)
		return;
	op->status = status;
	op->phase = op->phase == PH_WAIT ? PH_ADDED : op->phase;
	r->node.op_busy = false;
}

static void
transfer_cb(struct raft_transfer *req)
{
	struct replica *r = req->data;

	r->node.op_busy = false;
}

/* An op's next raft request; false when it could not be made (finished). */
static void
add_step(struct replica *r, struct member_op *op)
{
	unsigned i;
	int      rv = 0;

	if (op->status == RAFT_NOCONNECTION) {
		/* libraft 0.15 gives up a promotion when it cannot send to the
		 * node at all (its URL does not resolve, or is refused). */
		finish(r, MOM_EINVAL, "adding node %" PRIu64 ": %s cannot be reached "
		    "(does its host name resolve?); it stays a standby until "
		    "'mom-admin cluster remove %" PRIu64 "'", op->id, op->url, op->id);
		return;
	}
	if (op->status != 0) {
		finish(r, MOM_EINVAL, "adding node %" PRIu64 ": %s", op->id,
		    raft_strerror(op->status));
		return;
	}
	switch (op->phase) {
	case PH_START:
		op->phase = PH_WAIT;
		rv = raft_add(&r->raft, &op->chg, op->id, op->url, change_cb);
		break;
	case PH_ADDED:
		op->phase = PH_STANDBY;
		rv = raft_assign(&r->raft, &op->chg, op->id, RAFT_STANDBY, change_cb);
		break;
	case PH_STANDBY:
		if (server_of(r, op->id, &i) == NULL || r->raft.configuration.servers[i].role !=
		    RAFT_STANDBY)
			return; /* the standby change is not in the configuration yet */
		if (r->raft.leader_state.progress[i].match_index + CATCHUP_SLACK <
		    raft_last_index(&r->raft))
			return; /* catching up */
		op->phase = PH_VOTER;
		rv = raft_assign(&r->raft, &op->chg, op->id, RAFT_VOTER, change_cb);
		break;
	default: /* PH_VOTER: the voter change was applied */
		finish(r, 0, "node %" PRIu64 " (%s) is a voter", op->id, op->url);
		return;
	}
	if (rv != 0)
		finish(r, rv == RAFT_NOTLEADER ? MOM_ENOTLEADER : MOM_EINVAL, "adding node %"
		    PRIu64 ": %s", op->id, raft_errmsg(&r->raft));
	else
		r->node.op_busy = true;
}

static void
transfer_step(struct replica *r, struct member_op *op)
{
	uint64_t leader = replica_leader(r, NULL);
	int      rv;

	if (op->tries > 0 && leader != r->cfg.node_id && leader != 0 &&
	    (op->id == 0 || leader == op->id)) {
		finish(r, 0, "node %" PRIu64 " leads now", leader);
		return;
	}
	if (op->tries > 0 && leader != r->cfg.node_id)
		return; /* an election is under way: wait for its outcome */
	if (op->tries++ == TRANSFER_TRIES) {
		finish(r, MOM_EUNAVAIL, "the leadership did not move to %s in %d tries",
		    op->id ? "the node asked" : "another node", TRANSFER_TRIES);
		return;
	}
	memset(&op->xfer, 0, sizeof(op->xfer));
	op->xfer.data = r;
	if ((rv = raft_transfer(&r->raft, &op->xfer, op->id, transfer_cb)) != 0)
		finish(r, rv == RAFT_NOTLEADER ? MOM_ENOTLEADER : MOM_EINVAL, "cannot move the "
		    "leadership: %s", raft_errmsg(&r->raft));
	else
		r->node.op_busy = true;
}

/* Each drive: the change under way takes its next step. */
void
membership_drive(struct replica *r)
{
	struct member_op *op = r->node.op;

	if (op == NULL || r->node.op_busy)
		return;
	if (op->phase != PH_DONE && mom_now_ms() > op->deadline)
		finish(r, MOM_ETIMEDOUT, "the change of node %" PRIu64 " did not finish in %d s",
		    op->id, CHANGE_MAX_MS / 1000);
	else if (op->phase != PH_DONE && op->kind != OP_TRANSFER &&
	    raft_state(&r->raft) != RAFT_LEADER)
		finish(r, MOM_ENOTLEADER, "this node lost the leadership during the change of "
		    "node %" PRIu64 ": see cluster status", op->id);
	else if (op->phase != PH_DONE && op->kind == OP_ADD)
		add_step(r, op);
	else if (op->phase != PH_DONE && op->kind == OP_REMOVE) {
		if (op->status != 0)
			finish(r, MOM_EINVAL, "removing node %" PRIu64 ": %s", op->id,
			    raft_strerror(op->status));
		else if (op->phase == PH_ADDED)
			finish(r, 0, "node %" PRIu64 " removed", op->id);
	} else if (op->phase != PH_DONE)
		transfer_step(r, op);
	if (op->phase == PH_DONE && !r->node.op_busy) {
		free(op);
		r->node.op = NULL;
	}
}

/* A new change, or why not. */
static struct member_op *
op_new(struct replica *r, int kind, uint64_t id, replica_done_fn done, void *arg)
{
	struct member_op *op;

	if (r->node.op != NULL) {
		done(arg, MOM_EBUSY, "another cluster change is under way: one at a time");
		return NULL;
	}
	if (raft_state(&r->raft) != RAFT_LEADER) {
		done(arg, MOM_ENOTLEADER, "only the leader changes the cluster");
		return NULL;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		done(arg, MOM_ENOMEM, "out of memory");
		return NULL;
	}
	op->kind = kind;
	op->id = id;
	op->done = done;
	op->arg = arg;
	op->chg.data = r;
	op->deadline = mom_now_ms() + CHANGE_MAX_MS;
	r->node.op = op;
	return op;
}

int
cluster_member_add(struct replica *r, uint64_t id, const char *url, replica_done_fn done,
    void *arg)
{
	const struct raft_server *s = server_of(r, id, NULL);
	struct member_op         *op;
	char                      msg[512];

	/* What the add is for is done already (an add sent again after its
	 * answer was lost, say): success; with another URL, a mistake. */
	if (s != NULL && s->role == RAFT_VOTER) {
		if (s->address != NULL && strcmp(s->address, url) == 0) {
			snprintf(msg, sizeof(msg), "node %" PRIu64 " (%s) is a voter already", id,
			    url);
			done(arg, 0, msg);
		} else {
			snprintf(msg, sizeof(msg), "node %" PRIu64 " is a member already, at %s: "
			    "remove it first to move it", id, s->address ? s->address : "?");
			done(arg, MOM_EEXIST, msg);
		}
		return 0;
	}
	/* A standby or spare left by an earlier add keeps the URL it was
	 * added with: another one would never be dialled. */
	if (s != NULL && (s->address == NULL || strcmp(s->address, url) != 0)) {
		snprintf(msg, sizeof(msg), "node %" PRIu64 " is a standby already, at %s: "
		    "'mom-admin cluster remove %" PRIu64 "' first to add it at another URL", id,
		    s->address ? s->address : "?", id);
		done(arg, MOM_EEXIST, msg);
		return 0;
	}
	if ((op = op_new(r, OP_ADD, id, done, arg)) == NULL)
		return 0;
	snprintf(op->url, sizeof(op->url), "%s", url);
	/* A standby or spare left by an earlier add goes on from there. */
	if (s != NULL)
		op->phase = s->role == RAFT_SPARE ? PH_ADDED : PH_STANDBY;
	membership_drive(r);
	return 0;
}

/*
 * Would removing id leave voters of which too few answer to make a
 * majority?  The leader counts itself and those it heard from within an
 * election timeout.  Removing a node that answers while another does not
 * stops the cluster at once: in a cluster of three with one node down,
 * the two left must both answer, and the leader steps down (seen in the
 * chaos run).  etcd refuses such a change too (its strict reconfig check).
 */
static bool
remove_strands(struct replica *r, uint64_t id, char *msg, size_t len)
{
	const struct raft_configuration *c = &r->raft.configuration;
	unsigned                         i, voters = 0, up = 0;
	uint64_t                         silent = 0;

	if (raft_state(&r->raft) != RAFT_LEADER)
		return false; /* op_new says so */
	for (i = 0; i < c->n; i++) {
		if (c->servers[i].id == id || c->servers[i].role != RAFT_VOTER)
			continue;
		voters++;
		if (c->servers[i].id == r->cfg.node_id ||
		    replica_heard_within(r, c->servers[i].id, r->raft.election_timeout))
			up++;
		else
			silent = c->servers[i].id;
	}
	if (up > voters / 2)
		return false;
	snprintf(msg, len, "removing node %" PRIu64 " would leave %u voters of which %u "
	    "answer%s (node %" PRIu64 " is silent): the cluster would stop confirming; "
	    "bring it back first, or remove it instead", id, voters, up, up == 1 ? "s" : "",
	    silent);
	return true;
}

int
cluster_member_remove(struct replica *r, uint64_t id, replica_done_fn done, void *arg)
{
	struct member_op *op;
	char              msg[512];
	int               rv;

	if (server_of(r, id, NULL) == NULL) {
		done(arg, MOM_ENOENT, "no such node in the cluster");
		return 0;
	}
	if (id == r->cfg.node_id) {
		done(arg, MOM_EINVAL, "this node leads: move the leadership first (mom-admin "
		    "cluster transfer), then remove it through the new leader");
		return 0;
	}
	if (remove_strands(r, id, msg, sizeof(msg))) {
		/* Refused as "remove the leader" is: not as asked (a retry would not help). */
		done(arg, MOM_EINVAL, msg);
		return 0;
	}
	if ((op = op_new(r, OP_REMOVE, id, done, arg)) == NULL)
		return 0;
	op->phase = PH_WAIT;
	if ((rv = raft_remove(&r->raft, &op->chg, id, change_cb)) != 0)
		finish(r, MOM_EINVAL, "removing node %" PRIu64 ": %s", id, raft_errmsg(&r->raft));
	else
		r->node.op_busy = true;
	membership_drive(r);
	return 0;
}

int
cluster_transfer(struct replica *r, uint64_t id, replica_done_fn done, void *arg)
{
	const struct raft_server *s;

	if (id != 0 && ((s = server_of(r, id, NULL)) == NULL || s->role != RAFT_VOTER)) {
		done(arg, MOM_ENOENT, "no such voter in the cluster");
		return 0;
	}
	if (id == r->cfg.node_id) {
		done(arg, 0, "this node leads already");
		return 0;
	}
	if (op_new(r, OP_TRANSFER, id, done, arg) != NULL)
		membership_drive(r);
	return 0;
}

/* At stop: a change under way is answered; its memory goes with the replica (after raft_close). */
void
membership_stop(struct replica *r)
{
	struct member_op *op = r->node.op;

	if (op != NULL && !op->answered) {
		op->answered = true;
		op->done(op->arg, MOM_ECLOSED, "broker shutting down; the cluster change may "
		    "still happen: see cluster status");
	}
}

void
membership_free(struct replica *r)
{
	free(r->node.op);
	r->node.op = NULL;
}

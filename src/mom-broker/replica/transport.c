/*
 * transport.c: libraft's messages over the cluster links (replica/link.h),
 * in our encoding (replica/raftmsg.h), and the links' other kinds of
 * message (forwarded client requests) handed up to the core.
 *
 * rio calls tp_send from io->send on the core thread; the result goes
 * back to libraft at the next rio_step, never synchronously (a
 * synchronous failure makes a 0.15 node unavailable for good).  The core
 * loop drains what the links received at every drive (bounded per turn,
 * so that a flood cannot starve the clients); the links wake the loop
 * when something arrives.
 *
 * The links accept frames from the members only: the --peer list and
 * every server of the current configuration (kept in step at each drive),
 * and the members removed since this node started, so that a removed node
 * that did not learn of it (it was down, or cut off) is told when it
 * calls (LINK_NOT_MEMBER), and says so instead of telling its clients
 * that the cluster has no leader.  The telling is for the operator only:
 * it changes nothing in raft, which decides membership by its log alone
 * (libraft still has such a node call pre-votes, which nobody grants).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <raft.h>

#include "buf.h"
#include "le.h"
#include "log.h"
#include "mom.h"
#include "replica/link.h"
#include "replica/raftmsg.h"
#include "replica/replica.h"
#include "replica/replica_int.h"
#include "storage/rio.h"

#define DRAIN_MAX 512 /* messages taken from the links per drive */
#define STRANGER_TELL_MS 1000 /* a non-member is told at most this often */
/*
 * An AppendEntries is cut to this many bytes: libraft 0.15 sends
 * everything from a follower's next index, which for a node far behind
 * is the whole log.  The follower's answer says how far it got.
 */
#define APPEND_MAX ((size_t)4 << 20)

static void note_traffic(struct replica *, const struct raft_message *, bool);

static int
tp_send(void *arg, const struct raft_message *m)
{
	struct replica     *r = arg;
	struct raft_message cut;
	size_t              len;
	int                 rv;

	if (m->server_address != NULL && m->server_address[0] != '\0' &&
	    link_peer_add(r->link, m->server_id, m->server_address) != 0)
		return RAFT_NOCONNECTION;

	if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.n_entries > 1) {
		cut = *m;
		cut.append_entries.n_entries = raftmsg_entries_fit(m, r->cfg.cluster_url,
		    APPEND_MAX);
		if (cut.append_entries.n_entries == 0)
			cut.append_entries.n_entries = 1; /* one entry always goes */
		m = &cut;
	}
	/*
	 * A snapshot (the whole state) is encoded into a buffer of its own
	 * that the link takes: one copy, not two, and no buffer the size of
	 * the state kept for the next message.  (rio sends it from its worker.)
	 */
	if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
		struct mom_buf b;

		mom_buf_init(&b);
		if (raftmsg_encode(&b, m, r->cfg.node_id, r->cfg.cluster_url) != 0) {
			mom_buf_fini(&b);
			return RAFT_NOMEM;
		}
		len = b.len;
		rv = link_send_buf(r->link, m->server_id, 0, LINK_RAFT, &b);
	} else {
		mom_buf_reset(&r->tx);
		if (raftmsg_encode(&r->tx, m, r->cfg.node_id, r->cfg.cluster_url) != 0 || r->tx.err)
			return RAFT_NOMEM;
		len = r->tx.len;
		rv = link_send(r->link, m->server_id, 0, LINK_RAFT, r->tx.data, r->tx.len);
	}
	if (rv == 0)
		note_traffic(r, m, true);
	if (rv == MOM_ETOOBIG)
		log_warnx("a raft message of %zu bytes to node %" PRIu64 " is over the links' "
		    "limit", len, (uint64_t)m->server_id);
	return rv == 0 ? 0 : rv == MOM_ENOMEM ? RAFT_NOMEM : RAFT_NOCONNECTION;
}

static bool
is_peer(const struct replica *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->cfg.npeers; i++)
		if (r->cfg.peers[i].id == id)
			return true;
	return false;
}

/* Is id in the latest configuration libraft holds? */
static bool
in_config(const struct replica *r, uint64_t id)
{
	const struct raft_configuration *c = &r->raft.configuration;
	unsigned i;

	for (i = 0; i < c->n; i++)
		if (c->servers[i].id == id)
			return true;
	return false;
}

/*
 * Stranger id's entry, new when it has none: past STRANGERS_MAX, the one
 * told longest ago makes room (a removed member's link goes with it).
 */
static struct stranger *
stranger_of(struct replica *r, uint64_t id)
{
	struct stranger *s;
	size_t           i, old = 0;

	for (i = 0; i < r->node.nstranger; i++)
		if (r->node.stranger[i].id == id)
			return &r->node.stranger[i];
	if (r->node.nstranger < STRANGERS_MAX) {
		s = &r->node.stranger[r->node.nstranger++];
	} else {
		for (i = 1; i < STRANGERS_MAX; i++)
			if (r->node.stranger[i].told_ms < r->node.stranger[old].told_ms)
				old = i;
		s = &r->node.stranger[old];
		if (s->kept && !in_config(r, s->id) && !is_peer(r, s->id))
			link_peer_remove(r->link, s->id);
	}
	memset(s, 0, sizeof(*s));
	s->id = id;
	return s;
}

/*
 * Node from, which this node's configuration leaves out, sent something:
 * it was removed and may not know.  It is told (at most every
 * STRANGER_TELL_MS) the index of that configuration and the leader, by a
 * member whose configuration is committed and holds itself.
 */
static void
tell_stranger(struct replica *r, uint64_t from)
{
	struct stranger *s;
	raft_id          leader;
	const char      *addr;
	uint8_t          b[16];
	int64_t          now = mom_mono_ms();

	if (r->raft.configuration_uncommitted_index != 0 || r->raft.configuration_index == 0 ||
	    !in_config(r, r->cfg.node_id) || in_config(r, from))
		return;
	s = stranger_of(r, from);
	if (s->told_ms != 0 && now - s->told_ms < STRANGER_TELL_MS)
		return;
	s->told_ms = now;
	raft_leader(&r->raft, &leader, &addr);
	mom_le_put64(b, r->raft.configuration_index);
	mom_le_put64(b + 8, leader);
	if (link_send(r->link, from, 0, LINK_NOT_MEMBER, b, sizeof(b)) == 0)
		r->node.strangers_told++;
}

/* A member says this node is not in its configuration (index, leader: 2 x 8 bytes LE). */
static void
recv_not_member(struct replica *r, uint64_t from, const uint8_t *p, size_t n)
{
	uint64_t idx, mine = r->raft.configuration_uncommitted_index > r->raft.configuration_index ?
	    r->raft.configuration_uncommitted_index : r->raft.configuration_index;

	if (n != 16) {
		r->node.bad_msgs++;
		return;
	}
	idx = mom_le_get64(p);
	/* From a member this node knows, about a configuration it does not have. */
	if (!in_config(r, from) || idx <= mine)
		return;
	if (r->node.removed_index == 0)
		log_warnx("node %" PRIu64 " says that this node is not in the cluster's "
		    "configuration (its index %" PRIu64 ", ours %" PRIu64 "): it was removed, and "
		    "serves no client; stop it, or add it back (mom-admin cluster add %" PRIu64
		    " URL)", from, idx, mine, r->cfg.node_id);
	r->node.removed_by = from;
	r->node.removed_index = idx;
}

uint64_t
replica_removed_by(const struct replica *r, uint64_t *conf_index)
{
	*conf_index = r->node.removed_index;
	return r->node.removed_index != 0 ? r->node.removed_by : 0;
}

/*
 * The links know every member of the latest configuration; a removed one
 * is kept as a stranger (tell_stranger).
 */
static void
peers_sync(struct replica *r)
{
	const struct raft_configuration *c = &r->raft.configuration;
	raft_index idx = r->raft.configuration_uncommitted_index ?
	    r->raft.configuration_uncommitted_index : r->raft.configuration_index;
	struct peer_state old[REPLICA_MAX_NODES];
	size_t     old_n;
	unsigned   i, j;

	if (idx == r->node.conf_index)
		return;
	if (r->node.removed_index != 0 && idx >= r->node.removed_index) {
		if (in_config(r, r->cfg.node_id))
			log_info("this node is in the cluster's configuration again (index %" PRIu64
			    ")", (uint64_t)idx);
		r->node.removed_by = r->node.removed_index = 0;
	}
	for (i = 0; i < c->n; i++)
		if (c->servers[i].id != r->cfg.node_id)
			(void)link_peer_add(r->link, c->servers[i].id, c->servers[i].address);
	for (i = 0; i < r->node.npeer; i++) {
		uint64_t id = r->node.peer[i].id;
		bool     member = false;

		for (j = 0; j < c->n; j++)
			member |= c->servers[j].id == id;
		if (!member && !is_peer(r, id))
			stranger_of(r, id)->kept = true;
	}
	old_n = r->node.npeer;
	memcpy(old, r->node.peer, old_n * sizeof(old[0]));
	r->node.npeer = 0;
	for (i = 0; i < c->n && r->node.npeer < REPLICA_MAX_NODES; i++) {
		struct peer_state *ps;

		if (c->servers[i].id == r->cfg.node_id)
			continue;
		ps = &r->node.peer[r->node.npeer++];
		memset(ps, 0, sizeof(*ps));
		ps->id = c->servers[i].id;
		for (j = 0; j < old_n; j++)
			if (old[j].id == ps->id)
				*ps = old[j];
	}
	r->node.conf_index = idx;
}

/* Member id's state, or NULL for a non-member. */
static struct peer_state *
peer_of(struct replica *r, uint64_t id)
{
	size_t i;

	for (i = 0; i < r->node.npeer; i++)
		if (r->node.peer[i].id == id)
			return &r->node.peer[i];
	return NULL;
}

bool
replica_heard_within(struct replica *r, uint64_t id, uint64_t ms)
{
	const struct peer_state *ps = r->link != NULL ? peer_of(r, id) : NULL;

	return ps != NULL && ps->heard_ms != 0 && (uint64_t)(mom_mono_ms() - ps->heard_ms) <= ms;
}

const struct peer_traffic *
replica_traffic(struct replica *r, uint64_t id)
{
	const struct peer_state *ps = r->link != NULL ? peer_of(r, id) : NULL;

	return ps != NULL ? &ps->traffic : NULL;
}

/* Notes an AppendEntries or an answer to one, sent (out) or received. */
static void
note_traffic(struct replica *r, const struct raft_message *m, bool out)
{
	struct peer_state *ps;
	struct peer_append *a;
	struct peer_answer *w;

	if (m->type != RAFT_IO_APPEND_ENTRIES && m->type != RAFT_IO_APPEND_ENTRIES_RESULT)
		return;
	if ((ps = peer_of(r, m->server_id)) == NULL)
		return;
	if (m->type == RAFT_IO_APPEND_ENTRIES) {
		a = out ? &ps->traffic.append_out : &ps->traffic.append_in;
		a->count++;
		a->term = m->append_entries.term;
		a->prev = m->append_entries.prev_log_index;
		a->entries = m->append_entries.n_entries;
		a->commit = m->append_entries.leader_commit;
		a->at_ms = mom_mono_ms();
	} else {
		w = out ? &ps->traffic.answer_out : &ps->traffic.answer_in;
		w->count++;
		w->term = m->append_entries_result.term;
		w->rejected = m->append_entries_result.rejected;
		w->last = m->append_entries_result.last_log_index;
		w->at_ms = mom_mono_ms();
	}
}

/*
 * libraft 0.15 refuses a vote while this follower knows a leader, however
 * long ago it last heard from it, until its own election timer runs out:
 * after a leader dies the first candidate is always refused, and the
 * cluster needs a second election (bench/cluster: the new leader's term was
 * the old one's plus 2 in 10 kills of 10, failover 2.6-4.3 s).  The rule
 * protects a leader that still sends heartbeats from a node that stopped
 * hearing them; when this node's own connection to its leader is down (the
 * leader's process died, its machine is gone), that leader sends nothing
 * here, and a vote request from another member may disrupt it: libraft's
 * disrupt_leader flag, which leadership transfer uses, says so.  A paused
 * leader keeps its connections: that case still takes two elections.
 */
static bool
leader_gone(struct replica *r, uint64_t candidate)
{
	raft_id     leader;
	const char *addr;

	if (raft_state(&r->raft) != RAFT_FOLLOWER)
		return false;
	raft_leader(&r->raft, &leader, &addr);
	return leader != 0 && leader != candidate && leader != r->cfg.node_id &&
	    !link_connected(r->link, leader);
}

/* A raft message from node from: to libraft, unless it lies about its sender. */
static void
recv_raft(struct replica *r, uint64_t from, const uint8_t *p, size_t n)
{
	struct raft_message m;
	struct peer_state  *ps;

	if (raftmsg_decode(p, n, &m, r->rx_addr, sizeof(r->rx_addr)) != 0) {
		r->node.bad_msgs++;
		return;
	}
	if (m.server_id != from) {
		r->node.bad_msgs++;
		raftmsg_release(&m);
		return;
	}
	if ((ps = peer_of(r, from)) != NULL)
		ps->heard_ms = mom_mono_ms();
	else
		tell_stranger(r, from);
	note_traffic(r, &m, false);
	if (m.type == RAFT_IO_REQUEST_VOTE && !m.request_vote.disrupt_leader &&
	    leader_gone(r, from))
		m.request_vote.disrupt_leader = true;
	rio_recv(&r->io, &m);
}

const struct peer_report *
replica_report(struct replica *r, uint64_t id)
{
	const struct peer_state  *ps = r->link != NULL ? peer_of(r, id) : NULL;
	const struct peer_report *p = ps != NULL ? &ps->report : NULL;

	return p != NULL && p->at_ms != 0 && mom_mono_ms() - p->at_ms <= REPORT_FRESH_MS ?
	    p : NULL;
}

/* A member's report of itself: term, commit and applied index (3 x 8 bytes LE). */
static void
recv_status(struct replica *r, uint64_t from, const uint8_t *p, size_t n)
{
	struct peer_state  *ps = peer_of(r, from);
	struct peer_report *rep = ps != NULL ? &ps->report : NULL;

	if (n != 24) {
		r->node.bad_msgs++;
		return;
	}
	if (rep == NULL) {
		tell_stranger(r, from);
		return;
	}
	rep->term = mom_le_get64(p);
	rep->commit = mom_le_get64(p + 8);
	rep->applied = mom_le_get64(p + 16);
	rep->at_ms = mom_mono_ms();
}

/*
 * Every REPORT_EVERY_MS this node tells each member its term, commit and
 * applied index, so that cluster status asked of any node shows every
 * node's (at most that old, and none from a node not heard for
 * REPORT_FRESH_MS).  A node that is not connected is skipped.
 */
static void
send_status(struct replica *r)
{
	int64_t now = mom_mono_ms();
	uint8_t b[24];
	size_t  i;

	if (now - r->node.report_ms < REPORT_EVERY_MS)
		return;
	r->node.report_ms = now;
	mom_le_put64(b, r->raft.current_term);
	mom_le_put64(b + 8, r->raft.commit_index);
	mom_le_put64(b + 16, raft_last_applied(&r->raft));
	for (i = 0; i < r->node.npeer; i++)
		(void)link_send(r->link, r->node.peer[i].id, 0, LINK_STATUS, b, sizeof(b));
}

void
transport_drain(struct replica *r)
{
	struct link_msg *lm;
	int              n;

	peers_sync(r);
	if (r->node.ident.cluster == 0 && link_cluster(r->link) != 0)
		cluster_learned(r, link_cluster(r->link));
	for (n = 0; n < DRAIN_MAX && (lm = link_recv(r->link)) != NULL; n++) {
		if (lm->group != 0)
			r->node.bad_msgs++;
		else if (lm->kind == LINK_RAFT)
			recv_raft(r, lm->from, lm->data, lm->len);
		else if (lm->kind == LINK_STATUS)
			recv_status(r, lm->from, lm->data, lm->len);
		else if (lm->kind == LINK_NOT_MEMBER)
			recv_not_member(r, lm->from, lm->data, lm->len);
		else /* a raft message before it may have committed entries */
			replica_call_deliver(r, lm->from, lm->kind, lm->data, lm->len);
		link_msg_free(lm);
	}
	r->node.more = n == DRAIN_MAX;
	send_status(r);
}

int
transport_start(struct replica *r)
{
	struct link_config lc;
	char               err[256];
	size_t             i;

	memset(&lc, 0, sizeof(lc));
	lc.self = r->cfg.node_id;
	lc.cluster = r->node.ident.node != 0 ? r->node.ident.cluster : r->node.boot_cluster;
	lc.listen = r->cfg.cluster_url;
	lc.key = r->cfg.key;
	lc.keylen = r->cfg.keylen;
	lc.wake = r->cfg.wake;
	lc.arg = r->cfg.arg;
	if (link_start(&r->link, &lc, err, sizeof(err)) != 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "cannot listen for the cluster on %s: %s",
		    r->cfg.cluster_url, err);
		return -1;
	}
	for (i = 0; i < r->cfg.npeers; i++)
		if (link_peer_add(r->link, r->cfg.peers[i].id, r->cfg.peers[i].url) != 0)
			log_warnx("cannot reach peer %" PRIu64 " at %s", r->cfg.peers[i].id,
			    r->cfg.peers[i].url);
	r->transport.send = tp_send;
	r->transport.arg = r;
	mom_buf_init(&r->tx);
	return 0;
}

void
transport_stop(struct replica *r)
{
	if (r->link == NULL)
		return;
	link_stop(r->link);
	r->link = NULL;
	mom_buf_fini(&r->tx);
}

int
replica_send(struct replica *r, uint64_t to, uint8_t kind, const void *msg, size_t len)
{
	if (r->link == NULL)
		return MOM_EUNAVAIL;
	return link_send(r->link, to, 0, kind, msg, len);
}

bool
replica_link_up(struct replica *r, uint64_t id)
{
	return r->link != NULL && link_connected(r->link, id);
}

void
transport_stats_json(struct replica *r, json_t *o)
{
	json_t *peers = json_object();

	if (r->link != NULL && peers != NULL)
		link_stats_json(r->link, peers);
	json_object_set_new(o, "links", peers != NULL ? peers : json_null());
	json_object_set_new(o, "bad_messages", json_integer((json_int_t)r->node.bad_msgs));
	json_object_set_new(o, "strangers_told", json_integer((json_int_t)r->node.strangers_told));
}

/*
 * prom.c: the Prometheus text exposition (GET /metrics, the admin request
 * stats.prom).  Each family is written whole: HELP, TYPE, then every
 * sample of it, so that a family never splits across queues (Prometheus
 * takes a family's later samples for a second family; promtool 2.42 does
 * not notice, tests/tools/promgroup.awk does).  Counters end in _total,
 * times are seconds and sizes bytes.  The HTTP plane appends its own
 * mom_http_* families (net/http.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/acl.h"
#include "core/core_int.h"
#include "mom.h"
#include "wire.h"

/* A label set is at most a pattern and a name: two names and their quoting. */
#define PROM_LINE (2 * MOM_NAME_MAX + 256)

static void
prom_head(struct mom_buf *b, const char *name, const char *type, const char *help)
{
	char line[512];

	snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	mom_buf_put(b, line, strlen(line));
}

/* One sample; labels is NULL or "k=\"v\",..." (names need no escaping: names.h). */
static void
prom_sample(struct mom_buf *b, const char *name, const char *labels, uint64_t v)
{
	char line[PROM_LINE + 64];

	snprintf(line, sizeof(line), "%s%s%s%s %" PRIu64 "\n", name, labels ? "{" : "",
	    labels ? labels : "", labels ? "}" : "", v);
	mom_buf_put(b, line, strlen(line));
}

/* A time in milliseconds or microseconds as seconds, to the unit's precision. */
static void
prom_seconds(struct mom_buf *b, const char *name, uint64_t v, uint64_t per_s)
{
	char line[256];

	snprintf(line, sizeof(line), "%s %" PRIu64 ".%0*" PRIu64 "\n", name, v / per_s,
	    per_s == 1000 ? 3 : 6, v % per_s);
	mom_buf_put(b, line, strlen(line));
}

struct fam {
	const char *name, *type, *help;
};

/* The broker's totals (fsm_stats), in the order of broker_value. */
static const struct fam broker_fams[] = {
	{ "mom_connections", "gauge", "Connections on the nng plane." },
	{ "mom_queues", "gauge", "Queues." },
	{ "mom_topics", "gauge", "Topics." },
	{ "mom_subscriptions", "gauge", "Subscriptions, durable and ephemeral." },
	{ "mom_published_total", "counter", "Messages stored (queues and topics)." },
	{ "mom_duplicates_total", "counter", "Publishes dropped as duplicates." },
	{ "mom_messages", "gauge", "Messages held by queues and subscriptions." },
	{ "mom_bytes", "gauge", "Payload bytes held by queues." },
	{ "mom_in_flight", "gauge", "Messages leased to consumers, not yet settled." },
	{ "mom_delivered_total", "counter", "Leases handed out, redeliveries included." },
	{ "mom_acked_total", "counter", "Messages acknowledged." },
	{ "mom_redelivered_total", "counter", "Leases that expired or were nacked." },
	{ "mom_dead_lettered_total", "counter", "Messages moved to a dead-letter queue." },
	{ "mom_dead_letters_dropped_total", "counter",
	    "Dead letters dropped (their queue was gone or full)." },
	{ "mom_expired_total", "counter", "Queue messages dropped at their time to live." },
	{ "mom_waiting_consumers", "gauge", "Long polls parked for messages." },
};

static uint64_t
broker_value(struct core *c, const struct fsm_stats *st, size_t i)
{
	struct creq *cr;
	uint64_t     n = 0;

	switch (i) {
	case 0: return c->connections ? (uint64_t)c->connections(c->connections_arg) : 0;
	case 1: return st->queues;
	case 2: return st->topics;
	case 3: return st->subs;
	case 4: return st->published;
	case 5: return st->duplicates;
	case 6: return st->messages;
	case 7: return st->bytes;
	case 8: return st->in_flight;
	case 9: return st->delivered;
	case 10: return st->acked;
	case 11: return st->redelivered;
	case 12: return st->dead_lettered;
	case 13: return st->dead_dropped;
	case 14: return st->expired;
	default:
		TAILQ_FOREACH(cr, &c->waiters, w.glink)
			n++;
		return n;
	}
}

static void
prom_broker(struct mom_buf *b, struct core *c, int64_t now)
{
	struct fsm_stats st;
	char             l[64];
	size_t           i;

	prom_head(b, "mom_build_info", "gauge", "The broker's version, as a label.");
	snprintf(l, sizeof(l), "version=\"%s\"", MOM_VERSION);
	prom_sample(b, "mom_build_info", l, 1);
	prom_head(b, "mom_uptime_seconds", "gauge", "Seconds since the broker started.");
	prom_seconds(b, "mom_uptime_seconds", (uint64_t)(now > c->started ? now - c->started : 0),
	    1000);
	fsm_stats(c->fsm, &st);
	for (i = 0; i < sizeof(broker_fams) / sizeof(broker_fams[0]); i++) {
		prom_head(b, broker_fams[i].name, broker_fams[i].type, broker_fams[i].help);
		prom_sample(b, broker_fams[i].name, NULL, broker_value(c, &st, i));
	}
}

static uint64_t
jint(json_t *o, const char *k)
{
	json_int_t v = json_integer_value(json_object_get(o, k));

	return v > 0 ? (uint64_t)v : 0;
}

/* The log and its fsyncs (replica_stats_json's numbers). */
static void
prom_log(struct mom_buf *b, struct core *c)
{
	static const struct fam fams[] = {
		{ "mom_log_last_index", "gauge", "Index of the last entry in the log." },
		{ "mom_log_applied_index", "gauge", "Index of the last entry applied." },
		{ "mom_log_entries_total", "counter", "Log entries proposed since the start." },
		{ "mom_log_commands_total", "counter", "Commands applied since the start." },
		{ "mom_log_bytes_total", "counter", "Bytes of the log entries proposed." },
		{ "mom_log_written_bytes_total", "counter",
		    "Bytes written to the log's segment files, framing included." },
		{ "mom_snapshots_total", "counter", "Snapshots taken since the start." },
		{ "mom_snapshots_installed_total", "counter",
		    "Snapshots received from a leader and installed since the start." },
	};
	static const char *const keys[] = { "log_index", "log_applied", "log_entries",
		"log_commands", "log_bytes", "log_disk_bytes", "snapshots", "snapshots_installed" };
	json_t *o = json_object();
	char    l[64];
	size_t  i;

	if (o == NULL)
		return;
	replica_stats_json(c->rep, o);
	for (i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		prom_head(b, fams[i].name, fams[i].type, fams[i].help);
		prom_sample(b, fams[i].name, NULL, jint(o, keys[i]));
	}
	prom_head(b, "mom_fsync_mode", "gauge", "The --fsync mode, as a label.");
	snprintf(l, sizeof(l), "mode=\"%s\"", json_string_value(json_object_get(o, "fsync")));
	prom_sample(b, "mom_fsync_mode", l, 1);
	prom_head(b, "mom_fsync_duration_seconds", "summary",
	    "Syncs of the log to disk (fdatasync and fsync), and the time spent in them.");
	prom_seconds(b, "mom_fsync_duration_seconds_sum", jint(o, "log_sync_us"), 1000000);
	prom_sample(b, "mom_fsync_duration_seconds_count", NULL, jint(o, "log_syncs"));
	prom_head(b, "mom_snapshot_pause_seconds", "gauge",
	    "The last snapshot's time on the core thread (the rest is written on another).");
	prom_seconds(b, "mom_snapshot_pause_seconds", jint(o, "snapshot_pause_us"), 1000000);
	json_decref(o);
}

/*
 * The replica's numbers for stats (keys raft_*), from its cluster status
 * (replica_cluster_json), so that a node of a cluster reports its own.
 */
static void
raft_stats_from(json_t *cl, json_t *o)
{
	json_t     *n;
	json_int_t  self;
	const char *role = "follower";
	size_t      i;

	if (cl == NULL)
		return;
	self = json_integer_value(json_object_get(cl, "self"));
	json_array_foreach(json_object_get(cl, "nodes"), i, n)
		if (json_integer_value(json_object_get(n, "id")) == self &&
		    json_is_string(json_object_get(n, "role")))
			role = json_string_value(json_object_get(n, "role"));
	json_object_set_new(o, "raft_role", json_string(role));
	json_object_set_new(o, "raft_term", json_integer((json_int_t)jint(cl, "term")));
	json_object_set_new(o, "raft_commit_index", json_integer((json_int_t)jint(cl, "commit")));
	json_object_set_new(o, "raft_applied_index",
	    json_integer((json_int_t)jint(cl, "applied")));
	json_object_set_new(o, "raft_elections", json_integer((json_int_t)jint(cl, "elections")));
	/* Cluster mode: each peer's link counters (bytes, gaps, resends, refusals). */
	n = json_object_get(json_object_get(cl, "transport"), "links");
	if (json_is_object(n) && json_object_size(n) > 0)
		json_object_set(o, "cluster_links", n);
}

void
raft_stats_json(struct core *c, json_t *o)
{
	json_t *cl = replica_cluster_json(c->rep);

	raft_stats_from(cl, o);
	json_decref(cl);
}

/* Raft (cl: the cluster status): this node's role as a state set, term, indexes, elections. */
static void
prom_raft(struct mom_buf *b, json_t *cl)
{
	static const char *const roles[] = { "leader", "follower", "candidate", "standby",
		"removed" };
	json_t     *o = json_object();
	const char *role;
	char        l[64];
	size_t      i;

	if (o == NULL)
		return;
	raft_stats_from(cl, o);
	if ((role = json_string_value(json_object_get(o, "raft_role"))) == NULL)
		role = "";
	prom_head(b, "mom_raft_role", "gauge", "This node's raft role: 1 for the one it has.");
	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		snprintf(l, sizeof(l), "role=\"%s\"", roles[i]);
		prom_sample(b, "mom_raft_role", l, strcmp(roles[i], role) == 0);
	}
	prom_head(b, "mom_raft_term", "gauge", "The current raft term.");
	prom_sample(b, "mom_raft_term", NULL, jint(o, "raft_term"));
	prom_head(b, "mom_raft_commit_index", "gauge", "Index of the last entry committed.");
	prom_sample(b, "mom_raft_commit_index", NULL, jint(o, "raft_commit_index"));
	prom_head(b, "mom_raft_applied_index", "gauge", "Index of the last entry applied here.");
	prom_sample(b, "mom_raft_applied_index", NULL, jint(o, "raft_applied_index"));
	prom_head(b, "mom_raft_elections_total", "counter",
	    "Elections this node started since the start.");
	prom_sample(b, "mom_raft_elections_total", NULL, jint(o, "raft_elections"));
	json_decref(o);
}

/*
 * Cluster mode: per peer, its lag (entries behind this leader; the leader
 * alone knows it) and its link's counters (cluster status's transport.links).
 */
static const struct { const char *name, *type, *help, *key, *key2; } peer_fams[] = {
	{ "mom_cluster_peer_lag", "gauge",
	    "Entries the peer is behind this node (on the leader; 0 elsewhere).", NULL, NULL },
	{ "mom_cluster_link_connected", "gauge", "1 while a connection to the peer is up.",
	    "connected", NULL },
	{ "mom_cluster_link_bytes_sent_total", "counter", "Bytes of frames sent to the peer.",
	    "bytes_sent", NULL },
	{ "mom_cluster_link_bytes_received_total", "counter",
	    "Bytes of frames received from the peer.", "bytes_received", NULL },
	{ "mom_cluster_link_frames_lost_total", "counter",
	    "Frames from the peer that never came (gaps in its sequence numbers).", "gaps", NULL },
	{ "mom_cluster_link_frames_resent_total", "counter",
	    "Chunks resent to the peer for want of an acknowledgement.", "resent", NULL },
	{ "mom_cluster_link_frames_refused_total", "counter",
	    "Frames claiming to be the peer's refused (bad MAC, foreign cluster).", "bad_mac",
	    "foreign_cluster" },
};

static json_int_t
peer_lag(json_t *cl, const char *id)
{
	json_t *n;
	size_t  i;

	json_array_foreach(json_object_get(cl, "nodes"), i, n) {
		char s[24];

		snprintf(s, sizeof(s), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(n, "id")));
		if (strcmp(s, id) == 0)
			return json_integer_value(json_object_get(n, "lag"));
	}
	return 0;
}

/* One peer's value of family i: its lag, or the sum of its counters key and key2. */
static uint64_t
peer_value(json_t *cl, const char *id, json_t *link, size_t i)
{
	json_t *x;

	if (peer_fams[i].key == NULL)
		return (uint64_t)peer_lag(cl, id);
	x = json_object_get(link, peer_fams[i].key);
	if (json_is_boolean(x))
		return json_is_true(x);
	return (uint64_t)json_integer_value(x) + (peer_fams[i].key2 == NULL ? 0 :
	    (uint64_t)json_integer_value(json_object_get(link, peer_fams[i].key2)));
}

static void
prom_peers(struct mom_buf *b, json_t *cl)
{
	json_t     *links, *v;
	const char *id;
	char        l[48];
	size_t      i;

	links = json_object_get(json_object_get(cl, "transport"), "links");
	if (!json_is_object(links) || json_object_size(links) == 0)
		return;
	for (i = 0; i < sizeof(peer_fams) / sizeof(peer_fams[0]); i++) {
		prom_head(b, peer_fams[i].name, peer_fams[i].type, peer_fams[i].help);
		json_object_foreach(links, id, v) {
			snprintf(l, sizeof(l), "peer=\"%s\"", id);
			prom_sample(b, peer_fams[i].name, l, peer_value(cl, id, v, i));
		}
	}
}

static const struct fam queue_fams[] = {
	{ "mom_queue_messages", "gauge", "Messages in the queue: ready, delayed and in flight." },
	{ "mom_queue_ready", "gauge", "Messages ready for a consumer." },
	{ "mom_queue_in_flight", "gauge", "Messages leased to consumers." },
	{ "mom_queue_bytes", "gauge", "Payload bytes in the queue." },
	{ "mom_queue_consumers_waiting", "gauge", "Long polls parked on the queue." },
	{ "mom_queue_published_total", "counter", "Messages stored in the queue." },
	{ "mom_queue_delivered_total", "counter", "Leases handed out, redeliveries included." },
	{ "mom_queue_acked_total", "counter", "Messages acknowledged." },
	{ "mom_queue_redelivered_total", "counter", "Leases that expired or were nacked." },
	{ "mom_queue_dead_lettered_total", "counter", "Messages moved to the dead-letter queue." },
	{ "mom_queue_expired_total", "counter", "Messages dropped at their time to live." },
};

static uint64_t
queue_value(struct core *c, struct mq *m, size_t i)
{
	switch (i) {
	case 0: return mq_count(m);
	case 1: return mq_ready(m);
	case 2: return m->nleased;
	case 3: return m->bytes;
	case 4: return fetch_waiting(c, m);
	case 5: return m->st.published;
	case 6: return m->st.delivered;
	case 7: return m->st.acked;
	case 8: return m->st.redelivered;
	case 9: return m->st.dead_lettered;
	default: return m->st.expired;
	}
}

/* Per queue, those cl may see (a private reply queue only to its creator). */
static void
prom_queues(struct mom_buf *b, struct core *c, const struct mom_claims *cl)
{
	char          l[PROM_LINE];
	struct queue *q;
	size_t        i, it;

	for (i = 0; i < sizeof(queue_fams) / sizeof(queue_fams[0]); i++) {
		prom_head(b, queue_fams[i].name, queue_fams[i].type, queue_fams[i].help);
		for (it = 0; (q = fsm_queue_next(c->fsm, &it)) != NULL;) {
			if (!acl_sees_queue(cl, q->name, q->owner))
				continue;
			snprintf(l, sizeof(l), "queue=\"%s\"", q->name);
			prom_sample(b, queue_fams[i].name, l, queue_value(c, &q->mq, i));
		}
	}
}

static const struct fam topic_fams[] = {
	{ "mom_topic_messages", "gauge", "Messages the topic retains." },
	{ "mom_topic_bytes", "gauge", "Payload bytes the topic retains." },
	{ "mom_topic_published_total", "counter", "Messages published to the topic." },
	{ "mom_topic_subscriptions", "gauge", "Subscriptions whose pattern matches the topic." },
};

static const struct fam sub_fams[] = {
	{ "mom_subscription_messages", "gauge", "Messages waiting for the subscription or in flight." },
	{ "mom_subscription_ready", "gauge", "Messages ready for the subscriber." },
	{ "mom_subscription_in_flight", "gauge", "Messages leased to the subscriber." },
	{ "mom_subscription_consumers_waiting", "gauge", "Long polls parked on the subscription." },
	{ "mom_subscription_delivered_total", "counter", "Leases handed out, redeliveries included." },
	{ "mom_subscription_acked_total", "counter", "Messages acknowledged." },
	{ "mom_subscription_redelivered_total", "counter", "Leases that expired or were nacked." },
	{ "mom_subscription_dropped_total", "counter",
	    "Oldest messages dropped to make room (a slow subscriber)." },
};

static uint64_t
sub_value(struct core *c, struct mq *m, size_t i)
{
	switch (i) {
	case 0: return mq_count(m);
	case 1: return mq_ready(m);
	case 2: return m->nleased;
	case 3: return fetch_waiting(c, m);
	case 4: return m->st.delivered;
	case 5: return m->st.acked;
	case 6: return m->st.redelivered;
	default: return m->st.dropped;
	}
}

/* Per topic and per subscription (topic and sub lists are open to every token). */
static void
prom_topics(struct mom_buf *b, struct core *c)
{
	char          l[PROM_LINE];
	struct topic *t;
	struct sub   *s;
	size_t        i, it;
	uint64_t      v;

	for (i = 0; i < sizeof(topic_fams) / sizeof(topic_fams[0]); i++) {
		prom_head(b, topic_fams[i].name, topic_fams[i].type, topic_fams[i].help);
		for (it = 0; (t = fsm_topic_next(c->fsm, &it)) != NULL;) {
			v = i == 0 ? t->llen : i == 1 ? t->bytes : i == 2 ? t->published : t->nsubs;
			snprintf(l, sizeof(l), "topic=\"%s\"", t->name);
			prom_sample(b, topic_fams[i].name, l, v);
		}
	}
	for (i = 0; i < sizeof(sub_fams) / sizeof(sub_fams[0]); i++) {
		prom_head(b, sub_fams[i].name, sub_fams[i].type, sub_fams[i].help);
		for (it = 0; (s = fsm_sub_next(c->fsm, &it)) != NULL;) {
			snprintf(l, sizeof(l), "topic=\"%s\",subscription=\"%s\"", s->pattern,
			    s->name);
			prom_sample(b, sub_fams[i].name, l, sub_value(c, &s->mq, i));
		}
	}
}

char *
prom_text(struct core *c, const struct mom_claims *cl, int64_t now)
{
	struct mom_buf b;
	json_t        *status = replica_cluster_json(c->rep); /* built once for both */

	mom_buf_init(&b);
	prom_broker(&b, c, now);
	prom_log(&b, c);
	prom_raft(&b, status);
	prom_peers(&b, status);
	json_decref(status);
	prom_queues(&b, c, cl);
	prom_topics(&b, c);
	mom_buf_put_u8(&b, 0);
	return (char *)mom_buf_steal(&b, NULL);
}

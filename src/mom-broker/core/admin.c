/*
 * admin.c: admin requests.  Reads (lists, info, stats, Prometheus text,
 * cluster status) are answered from the state at once; changes are
 * checked (core/acl.h) and go through the log as CMD_ADMIN commands;
 * cluster changes go to the replica and wait for its answer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adminops.h"
#include "core/acl.h"
#include "core/core_int.h"
#include "mom.h"
#include "names.h"
#include "wire.h"

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_t *
stats_json(struct core *c, int64_t now)
{
	struct fsm_stats st;
	uint64_t         waiting = 0;
	struct creq     *cr;

	fsm_stats(c->fsm, &st);
	TAILQ_FOREACH(cr, &c->waiters, w.glink)
		waiting++;
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I}",
	    "version", MOM_VERSION,
	    "uptime_ms", (json_int_t)(now - c->started),
	    "connections", (json_int_t)(c->connections ? c->connections(c->connections_arg) : 0),
	    "queues", (json_int_t)st.queues,
	    "topics", (json_int_t)st.topics,
	    "subscriptions", (json_int_t)st.subs,
	    "published", (json_int_t)st.published,
	    "duplicates", (json_int_t)st.duplicates,
	    "messages", (json_int_t)st.messages,
	    "bytes", (json_int_t)st.bytes,
	    "in_flight", (json_int_t)st.in_flight,
	    "delivered", (json_int_t)st.delivered,
	    "acked", (json_int_t)st.acked,
	    "redelivered", (json_int_t)st.redelivered,
	    "dead_lettered", (json_int_t)st.dead_lettered,
	    "dead_letters_dropped", (json_int_t)st.dead_dropped,
	    "expired", (json_int_t)st.expired,
	    "waiting_consumers", (json_int_t)waiting);
}

/*
 * Cluster changes.  The replica answers through cluster_done_cb, maybe
 * before the call returns, maybe turns later: the request waits in a
 * cluster_call meanwhile, which the replica owns until done.
 */
static void
cluster_done_cb(void *arg, int err, const char *msg)
{
	struct cluster_call *cc = arg;
	struct core         *c = cc->c;
	json_t              *o;

	TAILQ_REMOVE(&c->cluster_calls, cc, link);
	if (cc->cr != NULL && err != 0)
		creq_error(c, cc->cr, err, "%s", msg != NULL ? msg : mom_strerror(err));
	else if (cc->cr != NULL) {
		o = msg != NULL ? json_pack("{s:s}", "message", msg) : json_object();
		creq_json(c, cc->cr, o);
		json_decref(o);
	}
	free(cc);
}

/* A node id member: absent (when optional), else a positive integer.  0: none given. */
static int
node_id(json_t *o, bool optional, uint64_t *id)
{
	json_t *v = json_object_get(o, "id");

	*id = 0;
	if ((v == NULL || json_is_null(v)) && optional)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < (optional ? 0 : 1))
		return -1;
	*id = (uint64_t)json_integer_value(v);
	return 0;
}

/* cluster.add {id,url}, cluster.remove {id}, cluster.transfer {id?} (admin: checked). */
static void
cluster_change(struct core *c, struct creq *cr, json_t *o, const char *op)
{
	struct cluster_call *cc;
	const char          *url = jstr(o, "url");
	uint64_t             id;
	int                  rv;

	if (node_id(o, strcmp(op, "cluster.transfer") == 0, &id) != 0) {
		creq_error(c, cr, MOM_EINVAL, "%s: the node id must be a positive integer", op);
		return;
	}
	if (strcmp(op, "cluster.add") == 0 && (url == NULL || strstr(url, "://") == NULL)) {
		creq_error(c, cr, MOM_EINVAL, "cluster.add: the node's cluster URL must have a "
		    "scheme (tcp://HOST:PORT)");
		return;
	}
	if ((cc = calloc(1, sizeof(*cc))) == NULL) {
		creq_error(c, cr, MOM_ENOMEM, "out of memory");
		return;
	}
	cc->c = c;
	cc->cr = cr;
	TAILQ_INSERT_TAIL(&c->cluster_calls, cc, link);
	if (strcmp(op, "cluster.add") == 0)
		rv = replica_member_add(c->rep, id, url, cluster_done_cb, cc);
	else if (strcmp(op, "cluster.remove") == 0)
		rv = replica_member_remove(c->rep, id, cluster_done_cb, cc);
	else
		rv = replica_transfer(c->rep, id, cluster_done_cb, cc);
	if (rv != 0) {
		/* Refused at once: done will not come. */
		TAILQ_REMOVE(&c->cluster_calls, cc, link);
		free(cc);
		creq_error(c, cr, rv, "%s: %s", op, mom_strerror(rv));
	}
}

void
admin_conn_closed(struct core *c, uint64_t conn)
{
	struct cluster_call *cc;

	TAILQ_FOREACH(cc, &c->cluster_calls, link)
		if (cc->cr != NULL && cc->cr->req->conn == conn) {
			/* The change goes on; nobody hears of it but the log. */
			creq_error(c, cc->cr, MOM_ECLOSED, "the client went away");
			cc->cr = NULL;
		}
}

void
admin_release_all(struct core *c)
{
	struct cluster_call *cc;

	TAILQ_FOREACH(cc, &c->cluster_calls, link)
		if (cc->cr != NULL) {
			creq_error(c, cc->cr, MOM_ECLOSED, "broker shutting down; the cluster "
			    "change may still happen: see cluster status");
			cc->cr = NULL;
		}
}

/* What acl_change needs to know about the object a change names. */
static void
change_target(struct core *c, json_t *o, const struct mom_admin_op *op, struct acl_change *ch)
{
	const struct mom_admin_opt *opt;
	struct queue *q;
	struct topic *t;
	struct sub   *s;

	memset(ch, 0, sizeof(*ch));
	ch->op = op;
	ch->name = jstr(o, "name");
	ch->pattern = jstr(o, "pattern");
	if (op->perm == MOM_AP_MOVE) {
		ch->name = jstr(o, "src");
		ch->dst = jstr(o, "dst");
	}
	for (opt = op->opts; opt != NULL && opt->key != NULL; opt++)
		if (opt->type == MOM_AOPT_NAME && jstr(o, opt->key) != NULL &&
		    ch->ntargets < sizeof(ch->targets) / sizeof(ch->targets[0])) {
			ch->targets[ch->ntargets] = jstr(o, opt->key);
			ch->target_opts[ch->ntargets++] = opt;
		}
	if (ch->name == NULL || op->object == NULL)
		return;
	if (strcmp(op->object, "queue") == 0 &&
	    (q = fsm_queue(c->fsm, ch->name, strlen(ch->name))) != NULL) {
		ch->exists = true;
		ch->owner = q->owner;
	} else if (strcmp(op->object, "topic") == 0 &&
	    (t = fsm_topic(c->fsm, ch->name, strlen(ch->name))) != NULL) {
		ch->exists = true;
		ch->owner = t->owner;
	} else if (strcmp(op->object, "subscription") == 0 && ch->pattern != NULL &&
	    (s = fsm_sub(c->fsm, ch->pattern, strlen(ch->pattern), ch->name,
	    strlen(ch->name))) != NULL) {
		ch->exists = true;
		ch->owner = s->owner;
	}
}

/* A state change: checked, then through the command door.  o is consumed. */
static void
admin_change(struct core *c, struct creq *cr, json_t *o, const struct mom_admin_op *op,
    int64_t now)
{
	struct acl_change ch;
	char              denied[300];
	int               rv;

	change_target(c, o, op, &ch);
	if (!acl_change(cr->req->claims, &ch, denied, sizeof(denied))) {
		creq_error(c, cr, MOM_EPERM, "%s", denied);
		json_decref(o);
		return;
	}
	/* The creator is the token's subject, never what the request says. */
	if (op->perm == MOM_AP_CREATE || op->perm == MOM_AP_SUBSCRIBE)
		core_set_owner(cr, o);
	if ((rv = core_admin_cmd(c, o, now, cr, W_ADMIN)) != 0)
		core_refuse(c, cr, rv);
}

/* A list; the queues are those cl sees (a private queue is its creator's). */
static json_t *
list_json(struct core *c, const struct mom_claims *cl, const char *op, json_t *o)
{
	json_t       *a = json_array();
	const char   *topic = jstr(o, "topic");
	size_t        it;
	struct queue *q;
	struct topic *t;
	struct sub   *s;

	if (strcmp(op, "queue.list") == 0)
		for (it = 0; (q = fsm_queue_next(c->fsm, &it)) != NULL;) {
			if (acl_sees_queue(cl, q->name, q->owner))
				json_array_append_new(a, fsm_queue_json(q));
		}
	else if (strcmp(op, "topic.list") == 0)
		for (it = 0; (t = fsm_topic_next(c->fsm, &it)) != NULL;)
			json_array_append_new(a, fsm_topic_json(t));
	else
		for (it = 0; (s = fsm_sub_next(c->fsm, &it)) != NULL;) {
			if (topic == NULL || strcmp(topic, s->pattern) == 0 ||
			    (mom_name_ok(topic) && mom_match(s->pattern, topic)))
				json_array_append_new(a, fsm_sub_json(s));
		}
	return a;
}

/* queue.info, topic.info: the object, or NULL when cr was answered with an error. */
static json_t *
info_json(struct core *c, struct creq *cr, const char *op, const char *name)
{
	bool          q = op[0] == 'q';
	void         *v;
	struct queue *qu;

	if (name == NULL || !mom_name_ok(name)) {
		creq_error(c, cr, MOM_EINVAL, "bad %s name", q ? "queue" : "topic");
		return NULL;
	}
	if (q && (qu = fsm_queue(c->fsm, name, strlen(name))) != NULL) {
		if (acl_sees_queue(cr->req->claims, qu->name, qu->owner))
			return fsm_queue_json(qu);
		creq_error(c, cr, MOM_EPERM, "permission denied: queue '%s' is private to its "
		    "creator", name);
		return NULL;
	}
	if (!q && (v = fsm_topic(c->fsm, name, strlen(name))) != NULL)
		return fsm_topic_json(v);
	creq_error(c, cr, MOM_ENOENT, "no such %s '%s'", q ? "queue" : "topic", name);
	return NULL;
}

/*
 * A peek's bounds: at most PEEK_MAX messages, and past the first no more
 * than PEEK_BYTES of payload, so that the answer stays one reasonable frame.
 */
#define PEEK_DEFAULT 10
#define PEEK_MAX     1000
#define PEEK_BYTES   (1024 * 1024)

/* queue.peek: its oldest messages, left where they are (acl_change checked who asks). */
static json_t *
peek_json(struct core *c, struct creq *cr, json_t *o)
{
	const char   *name = jstr(o, "name");
	json_t       *v = json_object_get(o, "max");
	json_int_t    max = PEEK_DEFAULT;
	struct queue *q;
	json_t       *res;

	if (name == NULL || !mom_name_ok(name)) {
		creq_error(c, cr, MOM_EINVAL, "bad queue name");
		return NULL;
	}
	if (v != NULL && (!json_is_integer(v) || (max = json_integer_value(v)) < 1)) {
		creq_error(c, cr, MOM_EINVAL, "max must be a number of messages (1 to %d)",
		    PEEK_MAX);
		return NULL;
	}
	if ((q = fsm_queue(c->fsm, name, strlen(name))) == NULL) {
		creq_error(c, cr, MOM_ENOENT, "no such queue '%s'", name);
		return NULL;
	}
	if ((res = fsm_queue_peek_json(q, max > PEEK_MAX ? PEEK_MAX : (size_t)max,
	    PEEK_BYTES)) == NULL)
		creq_error(c, cr, MOM_ENOMEM, "out of memory");
	return res;
}

/*
 * publish.check: would a publish to this queue or topic be refused?  The
 * same checks in the same order as a publish (permission, then the
 * target), so that a publisher can fail before it reads any input.
 */
static json_t *
publish_check(struct core *c, struct creq *cr, json_t *o)
{
	const char *kind = jstr(o, "kind"), *name = jstr(o, "name");
	bool        q = kind != NULL && strcmp(kind, "queue") == 0;

	if ((!q && (kind == NULL || strcmp(kind, "topic") != 0)) || name == NULL ||
	    !mom_name_ok(name)) {
		creq_error(c, cr, MOM_EINVAL, "publish.check wants a kind (queue or topic) and "
		    "a name");
		return NULL;
	}
	if (!acl_may(cr->req->claims, name, strlen(name), true)) {
		creq_error(c, cr, MOM_EPERM, "permission denied: publish to %s '%s'", kind, name);
		return NULL;
	}
	if (q ? fsm_queue(c->fsm, name, strlen(name)) == NULL :
	    fsm_topic(c->fsm, name, strlen(name)) == NULL) {
		creq_error(c, cr, MOM_ENOENT, "no such %s '%s'", kind, name);
		return NULL;
	}
	return json_object();
}

/*
 * cluster.digest: this node's digest of the replicated state (fsm_digest)
 * at its applied index, answered by every node for itself: the copies agree
 * when equal indexes give equal digests.  The walk is over every message:
 * a diagnostic, not for polling.
 */
static json_t *
digest_json(struct core *c, struct creq *cr)
{
	struct fsm_digest d;
	uint64_t          term, commit, applied;
	char              hex[17];

	if (fsm_digest(c->fsm, &d) != 0) {
		creq_error(c, cr, MOM_ENOMEM, "out of memory");
		return NULL;
	}
	replica_status(c->rep, &term, &commit, &applied);
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)d.digest);
	return json_pack("{s:I, s:I, s:s, s:I, s:I, s:I, s:I}",
	    "node", (json_int_t)(c->cfg.node_id ? c->cfg.node_id : 1), "applied", (json_int_t)applied,
	    "digest", hex, "queues", (json_int_t)d.queues, "topics", (json_int_t)d.topics,
	    "subscriptions", (json_int_t)d.subs, "messages", (json_int_t)d.messages);
}

/* A read: the answer, or NULL when cr was answered (an error). */
static json_t *
admin_read(struct core *c, struct creq *cr, json_t *o, const char *op, int64_t now)
{
	json_t *res;

	if (strcmp(op, "queue.peek") == 0)
		return peek_json(c, cr, o);

	if (strcmp(op, "queue.list") == 0 || strcmp(op, "topic.list") == 0 ||
	    strcmp(op, "sub.list") == 0)
		return list_json(c, cr->req->claims, op, o);
	if (strcmp(op, "queue.info") == 0 || strcmp(op, "topic.info") == 0)
		return info_json(c, cr, op, jstr(o, "name"));
	if (strcmp(op, "stats") == 0) {
		res = stats_json(c, now);
		replica_stats_json(c->rep, res);
		raft_stats_json(c, res);
		/* Cluster mode: requests this node forwarded to the leader, and served for others. */
		json_object_set_new(res, "forwarded", json_integer((json_int_t)c->fwd_sent));
		json_object_set_new(res, "forwards_resent",
		    json_integer((json_int_t)c->fwd_resent));
		json_object_set_new(res, "forwards_served",
		    json_integer((json_int_t)c->fwd_served));
		{
			uint64_t stalls;
			int64_t  longest;

			/* Turns of the core loop that lasted a second or more (core.c). */
			watchdog_counts(&c->wd, &stalls, &longest);
			json_object_set_new(res, "core_stalls", json_integer((json_int_t)stalls));
			json_object_set_new(res, "core_stall_longest_ms",
			    json_integer((json_int_t)longest));
		}
		return res;
	}
	if (strcmp(op, "cluster.status") == 0) {
		if ((res = replica_cluster_json(c->rep)) == NULL)
			creq_error(c, cr, MOM_ENOMEM, "out of memory");
		return res;
	}
	if (strcmp(op, "cluster.digest") == 0)
		return digest_json(c, cr);
	if (strcmp(op, "publish.check") == 0)
		return publish_check(c, cr, o);
	if (strcmp(op, "stats.prom") == 0) {
		char *t = prom_text(c, cr->req->claims, now);

		res = json_pack("{s:s}", "text", t ? t : "");
		free(t);
		return res;
	}
	creq_error(c, cr, MOM_EINVAL, "unknown admin request '%s'", op);
	return NULL;
}

void
admin_handle(struct core *c, struct creq *cr, const uint8_t *body, size_t len, int64_t now)
{
	struct mom_rd  r;
	const uint8_t *js;
	size_t         jlen;
	json_t        *o, *res;
	const char    *op;
	const struct mom_admin_op *aop;

	mom_rd_init(&r, body, len);
	js = mom_rd_bytes(&r, &jlen);
	if (r.err || (o = json_loadb((const char *)js, jlen, 0, NULL)) == NULL) {
		creq_error(c, cr, MOM_EBADDATA, "malformed admin request");
		return;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		creq_error(c, cr, MOM_EBADDATA, "malformed admin request");
		return;
	}
	if ((op = jstr(o, "op")) == NULL) {
		creq_error(c, cr, MOM_EBADDATA, "admin request without an op");
		json_decref(o);
		return;
	}
	if ((aop = mom_admin_op(op)) == NULL) {
		creq_error(c, cr, MOM_EINVAL, "unknown admin request '%s'", op);
		json_decref(o);
		return;
	}
	/* A follower answers for itself (its status, digest and numbers), else forwards. */
	if (!replica_is_leader(c->rep) && !aop->local) {
		core_elsewhere(c, cr, now);
		json_decref(o);
		return;
	}
	if (aop->write) {
		admin_change(c, cr, o, aop, now);
		return;
	}
	if (aop->perm != MOM_AP_READ) {
		struct acl_change ch;
		char              denied[300];

		change_target(c, o, aop, &ch);
		if (!acl_change(cr->req->claims, &ch, denied, sizeof(denied))) {
			creq_error(c, cr, MOM_EPERM, "%s", denied);
			json_decref(o);
			return;
		}
	}
	if (strncmp(op, "cluster.", 8) == 0 && aop->perm == MOM_AP_ADMIN) {
		cluster_change(c, cr, o, op);
		json_decref(o);
		return;
	}
	if ((res = admin_read(c, cr, o, op, now)) != NULL) {
		creq_json(c, cr, res);
		json_decref(res);
	}
	json_decref(o);
}

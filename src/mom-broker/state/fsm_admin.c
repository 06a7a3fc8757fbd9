/*
 * fsm_admin.c: the admin commands (CMD_ADMIN: create, delete, purge and
 * move queues, create and delete topics and subscriptions) and the JSON
 * the admin answers show.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "state/fsm.h"
#include "state/fsm_int.h"
#include "adminops.h"
#include "duration.h"
#include "format.h"
#include "mom.h"
#include "names.h"
#include "wire.h"

static uint64_t
jnum(json_t *o, const char *k, uint64_t def)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	    (uint64_t)json_integer_value(v) : def;
}

/*
 * An option of an admin command, or its default from the table
 * (adminops.h): the defaults are part of the log's meaning, so they
 * live in one place and never change.
 */
static uint64_t
opt(json_t *o, const char *op, const char *key)
{
	return jnum(o, key, mom_admin_default(op, key));
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *
xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

json_t *
fsm_queue_json(const struct queue *q)
{
	const struct mq *m = &q->mq;

	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s?, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:s?, s:I}",
	    "name", q->name,
	    "messages", (json_int_t)mq_count(m),
	    "ready", (json_int_t)m->rlen,
	    "in_flight", (json_int_t)m->nleased,
	    "delayed", (json_int_t)m->dlen,
	    "bytes", (json_int_t)m->bytes,
	    "ack_wait_ms", (json_int_t)m->cfg.ack_wait_ms,
	    "max_deliver", (json_int_t)m->cfg.max_deliver,
	    "ttl_ms", (json_int_t)m->cfg.ttl_ms,
	    "dead_letter", q->dead_letter,
	    "max_len", (json_int_t)m->cfg.max_len,
	    "max_bytes", (json_int_t)m->cfg.max_bytes,
	    "published", (json_int_t)m->st.published,
	    "delivered", (json_int_t)m->st.delivered,
	    "acked", (json_int_t)m->st.acked,
	    "redelivered", (json_int_t)m->st.redelivered,
	    "dead_lettered", (json_int_t)m->st.dead_lettered,
	    "expired", (json_int_t)m->st.expired,
	    "owner", q->owner,
	    "idle_expire_ms", (json_int_t)q->idle_expire_ms);
}

json_t *
fsm_topic_json(const struct topic *t)
{
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}",
	    "name", t->name,
	    "retained", (json_int_t)t->llen,
	    "bytes", (json_int_t)t->bytes,
	    "retain_ms", (json_int_t)t->retain_ms,
	    "retain_bytes", (json_int_t)t->retain_bytes,
	    "published", (json_int_t)t->published,
	    "subscriptions", (json_int_t)t->nsubs,
	    "owner", t->owner);
}

json_t *
fsm_sub_json(const struct sub *s)
{
	const struct mq *m = &s->mq;

	return json_pack("{s:I, s:I, s:I, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:s?}",
	    "dropped", (json_int_t)m->st.dropped,
	    "expired", (json_int_t)m->st.expired,
	    "bytes", (json_int_t)m->bytes,
	    "topic", s->pattern,
	    "name", s->name,
	    "durable", s->durable,
	    "messages", (json_int_t)mq_count(m),
	    "ready", (json_int_t)m->rlen,
	    "in_flight", (json_int_t)m->nleased,
	    "delivered", (json_int_t)m->st.delivered,
	    "acked", (json_int_t)m->st.acked,
	    "redelivered", (json_int_t)m->st.redelivered,
	    "owner", s->owner);
}

static void
queue_create(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	const char      *name = jstr(o, "name"), *dl = jstr(o, "dead_letter");
	struct mq_config cfg;
	struct queue    *q;
	uint64_t         idle = opt(o, "queue.create", "idle_expire_ms");

	if (name == NULL || !mom_name_ok(name) || (dl && !mom_name_ok(dl))) {
		fsm_fail(res, MOM_EINVAL, "bad queue name");
		return;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.ack_wait_ms = opt(o, "queue.create", "ack_wait_ms");
	cfg.max_deliver = (uint32_t)opt(o, "queue.create", "max_deliver");
	cfg.ttl_ms = opt(o, "queue.create", "ttl_ms");
	cfg.max_len = opt(o, "queue.create", "max_len");
	cfg.max_bytes = opt(o, "queue.create", "max_bytes");
	if (cfg.ack_wait_ms == 0)
		cfg.ack_wait_ms = mom_admin_default("queue.create", "ack_wait_ms");
	if ((q = fsm_queue(f, name, strlen(name))) != NULL) {
		/* Declaring again is fine; declaring differently is not. */
		if (!json_is_true(json_object_get(o, "ensure")) &&
		    (cfg.ack_wait_ms != q->mq.cfg.ack_wait_ms ||
		    cfg.max_deliver != q->mq.cfg.max_deliver || cfg.ttl_ms != q->mq.cfg.ttl_ms ||
		    cfg.max_len != q->mq.cfg.max_len || cfg.max_bytes != q->mq.cfg.max_bytes ||
		    idle != q->idle_expire_ms ||
		    (dl == NULL) != (q->dead_letter == NULL) ||
		    (dl && strcmp(dl, q->dead_letter) != 0))) {
			fsm_fail(res, MOM_EEXIST, "queue '%s' exists with other options", name);
			return;
		}
		res->json = fsm_queue_json(q);
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL || (q->name = strdup(name)) == NULL) {
		free(q);
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	q->fsm = f;
	q->nlen = strlen(name);
	q->dead_letter = xstrdup(dl);
	q->owner = xstrdup(jstr(o, "owner"));
	q->created_ms = q->last_used = now;
	q->idle_expire_ms = idle;
	mq_init(&q->mq, &cfg, fsm_dead_letter, q);
	fsm_attach_queue(f, q);
	if (smap_put(&f->queues, q->name, q->nlen, q) != 0) {
		fsm_queue_free(f, q);
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	res->json = fsm_queue_json(q);
}

/* One message of a peek: the shape of an HTTP receive's, without a receipt. */
static json_t *
peek_msg_json(const struct queue *q, const struct mq_peek *p)
{
	static const char *const where[] = { "?", "ready", "delayed", "in_flight" };
	const struct msg        *m = p->m;
	json_t                  *o, *h = json_object();
	struct mom_hdr_iter      it;
	struct mom_slice         k, v;
	char                     tm[40];

	mom_hdr_iter_init(&it, msg_hdr(m), m->hdr_len);
	while (m->hdr_len > 0 && mom_hdr_next(&it, &k, &v)) {
		char key[256];

		snprintf(key, sizeof(key), "%.*s", (int)k.n, (const char *)k.p);
		json_object_set_new(h, key, json_stringn((const char *)v.p, v.n));
	}
	mom_time_format(m->time_ms, tm, sizeof(tm));
	o = json_pack("{s:s, s:I, s:s, s:I, s:s, s:o}", "queue", q->name,
	    "seq", (json_int_t)m->seq, "time", tm, "deliveries", (json_int_t)p->deliveries,
	    "state", where[p->where >= 1 && p->where <= 3 ? p->where : 0], "headers", h);
	if (o == NULL)
		return NULL;
	if (m->id_len > 0)
		json_object_set_new(o, "id", json_stringn((const char *)msg_id(m), m->id_len));
	if (mom_utf8_valid(msg_payload(m), m->len))
		json_object_set_new(o, "payload", json_stringn((const char *)msg_payload(m), m->len));
	else {
		struct mom_buf b;

		mom_buf_init(&b);
		mom_b64_encode(msg_payload(m), m->len, &b);
		json_object_set_new(o, "payload_b64", json_stringn(b.data ? (char *)b.data : "",
		    b.len));
		mom_buf_fini(&b);
	}
	return o;
}

json_t *
fsm_queue_peek_json(const struct queue *q, size_t max, size_t max_bytes)
{
	struct mq_peek *p = max ? calloc(max, sizeof(*p)) : NULL;
	json_t         *a = json_array();
	size_t          n, i, bytes = 0;

	if ((max > 0 && p == NULL) || a == NULL) {
		free(p);
		json_decref(a);
		return NULL;
	}
	n = mq_peek(&q->mq, p, max);
	/* At least one, then no more than max_bytes of payload. */
	for (i = 0; i < n && (i == 0 || bytes + p[i].m->len <= max_bytes); i++) {
		bytes += p[i].m->len;
		json_array_append_new(a, peek_msg_json(q, &p[i]));
	}
	free(p);
	return json_pack("{s:s, s:I, s:o}", "queue", q->name, "count",
	    (json_int_t)mq_count(&q->mq), "messages", a);
}

/*
 * A dead-letter queue that a queue names but that is not there (never
 * created, or deleted since) is created when a message first dies, with
 * the default options and the owner of the queue that names it: a dead
 * letter is never dropped for want of its queue.  This happens while the
 * command that killed the message is applied, so a replay does it again.
 */
struct queue *
fsm_queue_implicit(struct fsm *f, const char *name, const char *owner, int64_t now)
{
	struct fsm_result res;
	json_t           *o = json_pack("{s:s, s:s?}", "name", name, "owner", owner);

	if (o == NULL)
		return NULL;
	memset(&res, 0, sizeof(res));
	queue_create(f, o, now, &res);
	json_decref(o);
	json_decref(res.json);
	return res.status == 0 ? fsm_queue(f, name, strlen(name)) : NULL;
}

static struct queue *
need_queue(struct fsm *f, const char *name, struct fsm_result *res)
{
	struct queue *q = name ? fsm_queue(f, name, strlen(name)) : NULL;

	if (q == NULL)
		fsm_fail(res, MOM_ENOENT, "no such queue '%s'", name ? name : "");
	return q;
}

static void
queue_delete(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	(void)now;
	struct queue *q = need_queue(f, jstr(o, "name"), res);

	if (q == NULL)
		return;
	smap_del(&f->queues, q->name, q->nlen);
	res->json = json_pack("{s:s, s:I}", "deleted", q->name, "messages",
	    (json_int_t)mq_count(&q->mq));
	fsm_queue_free(f, q);
}

static void
queue_purge(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	(void)now;
	struct queue *q = need_queue(f, jstr(o, "name"), res);

	if (q == NULL)
		return;
	res->json = json_pack("{s:s, s:I}", "purged", q->name, "messages",
	    (json_int_t)mq_purge(&q->mq));
}

static void
queue_move(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	struct queue *src = need_queue(f, jstr(o, "src"), res), *dst;
	struct msg  **ms;
	uint64_t      n = 0, max = jnum(o, "max", 0);
	long          got, i;

	if (src == NULL || (dst = need_queue(f, jstr(o, "dst"), res)) == NULL)
		return;
	if (src == dst) {
		fsm_fail(res, MOM_EINVAL, "source and destination are the same queue");
		return;
	}
	/*
	 * The oldest first, whatever their state (a message in flight moves
	 * too, its ack turns stale): the choice must not depend on leases,
	 * which are not replicated.
	 */
	if ((got = mq_take_all(&src->mq, max, now, &ms)) < 0) {
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	for (i = 0; i < got; i++)
		if (mq_push(&dst->mq, ms[i], now) == 0)
			n++;
	free(ms);
	if (n > 0)
		fsm_touch(f, &dst->mq);
	res->json = json_pack("{s:s, s:s, s:I}", "from", src->name, "to", dst->name,
	    "moved", (json_int_t)n);
}

/*
 * Changes the options given, keeps the others: what is held stays (a
 * lower max-len refuses publishes until consumers make room), leases keep
 * their deadlines, the new ack wait applies to the next deliveries.
 */
static void
queue_update(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	struct queue     *q = need_queue(f, jstr(o, "name"), res);
	json_t           *dl = json_object_get(o, "dead_letter");
	struct mq_config *cfg;
	char             *ndl = NULL;

	(void)now;
	if (q == NULL)
		return;
	if (dl != NULL && !json_is_null(dl) &&
	    (!json_is_string(dl) || !mom_name_ok(json_string_value(dl)))) {
		fsm_fail(res, MOM_EINVAL, "bad dead_letter queue name");
		return;
	}
	if (json_is_string(dl) && (ndl = strdup(json_string_value(dl))) == NULL) {
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	cfg = &q->mq.cfg;
	cfg->ack_wait_ms = jnum(o, "ack_wait_ms", cfg->ack_wait_ms);
	if (cfg->ack_wait_ms == 0)
		cfg->ack_wait_ms = mom_admin_default("queue.create", "ack_wait_ms");
	cfg->max_deliver = (uint32_t)jnum(o, "max_deliver", cfg->max_deliver);
	cfg->ttl_ms = jnum(o, "ttl_ms", cfg->ttl_ms);
	cfg->max_len = jnum(o, "max_len", cfg->max_len);
	cfg->max_bytes = jnum(o, "max_bytes", cfg->max_bytes);
	q->idle_expire_ms = jnum(o, "idle_expire_ms", q->idle_expire_ms);
	if (dl != NULL) {
		free(q->dead_letter);
		q->dead_letter = ndl;
	}
	/* A longer TTL or a higher limit may let waiting consumers in. */
	fsm_touch(f, &q->mq);
	res->json = fsm_queue_json(q);
}

static void
topic_create(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	const char   *name = jstr(o, "name");
	uint64_t      retain = jnum(o, "retain_ms", f->cfg.retain_ms);
	uint64_t      rbytes = jnum(o, "retain_bytes", f->cfg.retain_bytes);
	struct topic *t;
	size_t        it;
	void         *v;

	if (name == NULL || !mom_name_ok(name)) {
		fsm_fail(res, MOM_EINVAL, "bad topic name");
		return;
	}
	if ((t = fsm_topic(f, name, strlen(name))) != NULL) {
		if (!json_is_true(json_object_get(o, "ensure")) &&
		    (t->retain_ms != retain || t->retain_bytes != rbytes)) {
			fsm_fail(res, MOM_EEXIST, "topic '%s' exists with other options", name);
			return;
		}
		res->json = fsm_topic_json(t);
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->name = strdup(name)) == NULL) {
		free(t);
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	t->nlen = strlen(name);
	t->retain_ms = retain;
	t->retain_bytes = rbytes;
	t->owner = xstrdup(jstr(o, "owner"));
	t->created_ms = now;
	for (it = 0; smap_next(&f->subs, &it, &v);) {
		struct sub *s = v;

		if (mom_match(s->pattern, t->name))
			fsm_topic_link(t, s);
	}
	if (smap_put(&f->topics, t->name, t->nlen, t) != 0) {
		fsm_topic_free(f, t);
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	res->json = fsm_topic_json(t);
}

static void
topic_delete(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	(void)now;
	const char   *name = jstr(o, "name");
	struct topic *t = name ? fsm_topic(f, name, strlen(name)) : NULL;

	if (t == NULL) {
		fsm_fail(res, MOM_ENOENT, "no such topic '%s'", name ? name : "");
		return;
	}
	smap_del(&f->topics, t->name, t->nlen);
	res->json = json_pack("{s:s, s:I}", "deleted", t->name, "retained", (json_int_t)t->llen);
	fsm_topic_free(f, t);
}

/* Collects the retained messages a new subscription starts with. */
static void
sub_backfill(struct fsm *f, struct sub *s, int from, int64_t from_time, int64_t now)
{
	struct msg **all = NULL;
	size_t       n = 0, cap = 0, i, it;
	void        *v;

	if (from == MOM_FROM_NEW)
		return;
	for (it = 0; smap_next(&f->topics, &it, &v);) {
		struct topic *t = v;
		size_t        first = 0;

		if (t->llen == 0 || !mom_match(s->pattern, t->name))
			continue;
		if (from == MOM_FROM_LAST)
			first = t->llen - 1;
		for (i = first; i < t->llen; i++) {
			struct msg *m = t->log[(t->lhead + i) & (t->lcap - 1)];

			if (from == MOM_FROM_TIME && m->time_ms < from_time)
				continue;
			if (n == cap) {
				struct msg **a;

				cap = cap ? cap * 2 : 64;
				if ((a = realloc(all, cap * sizeof(*a))) == NULL) {
					free(all);
					return;
				}
				all = a;
			}
			all[n++] = m;
		}
	}
	if (n == 0)
		return; /* all is NULL: qsort must not see it */
	qsort(all, n, sizeof(*all), msg_cmp_seq);
	for (i = 0; i < n; i++)
		mq_push(&s->mq, msg_ref(all[i]), now);
	free(all);
}

static void
sub_create(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	const char      *pat = jstr(o, "pattern"), *name = jstr(o, "name");
	struct mq_config cfg;
	struct sub      *s;
	size_t           plen, nlen, it;
	void            *v;

	if (pat == NULL || name == NULL || !mom_pattern_ok(pat) || !mom_name_ok(name)) {
		fsm_fail(res, MOM_EINVAL, "bad subscription");
		return;
	}
	plen = strlen(pat);
	nlen = strlen(name);
	if ((s = fsm_sub(f, pat, plen, name, nlen)) != NULL) {
		res->json = fsm_sub_json(s);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL || fsm_sub_key(s, pat, plen, name, nlen) != 0) {
		free(s);
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	s->durable = json_is_true(json_object_get(o, "durable"));
	s->owner = xstrdup(jstr(o, "owner"));
	s->consumer = jnum(o, "consumer", 0);
	s->created_ms = s->last_seen = now;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ack_wait_ms = opt(o, "sub.create", "ack_wait_ms");
	/*
	 * A subscription's backlog obeys the broker's retention: none older
	 * than retain, at most retain-bytes (then the oldest go), so a
	 * consumer that went away cannot make the broker grow forever.
	 */
	cfg.ttl_ms = f->cfg.retain_ms;
	cfg.max_bytes = f->cfg.retain_bytes;
	cfg.drop_head = true;
	mq_init(&s->mq, &cfg, NULL, NULL);
	fsm_attach_sub(f, s);
	if (smap_put(&f->subs, s->key, s->klen, s) != 0) {
		fsm_sub_free(f, s);
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	for (it = 0; smap_next(&f->topics, &it, &v);) {
		struct topic *t = v;

		if (mom_match(pat, t->name))
			fsm_topic_link(t, s);
	}
	sub_backfill(f, s, (int)jnum(o, "from", MOM_FROM_NEW), (int64_t)jnum(o, "from_time_ms", 0), now);
	res->json = fsm_sub_json(s);
}

static void
sub_delete(struct fsm *f, json_t *o, int64_t now, struct fsm_result *res)
{
	(void)now;
	const char *pat = jstr(o, "pattern"), *name = jstr(o, "name");
	struct sub *s = NULL;

	if (pat != NULL && name != NULL)
		s = fsm_sub(f, pat, strlen(pat), name, strlen(name));
	if (s == NULL) {
		fsm_fail(res, MOM_ENOENT, "no such subscription '%s' on '%s'",
		    name ? name : "", pat ? pat : "");
		return;
	}
	smap_del(&f->subs, s->key, s->klen);
	res->json = json_pack("{s:s, s:s, s:I}", "topic", s->pattern, "deleted", s->name,
	    "messages", (json_int_t)mq_count(&s->mq));
	fsm_sub_free(f, s);
}


/*
 * The handler of each write operation of adminops.c's table: adding an
 * operation is a row there and a row here with its function.
 */
struct handler {
	const char *op;
	void      (*fn)(struct fsm *, json_t *, int64_t, struct fsm_result *);
};

static const struct handler handlers[] = {
	{ "queue.create", queue_create },
	{ "queue.delete", queue_delete },
	{ "queue.purge", queue_purge },
	{ "queue.move", queue_move },
	{ "queue.update", queue_update },
	{ "topic.create", topic_create },
	{ "topic.delete", topic_delete },
	{ "sub.create", sub_create },
	{ "sub.delete", sub_delete },
};

static const struct handler *
handler(const char *op)
{
	size_t i;

	for (i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (strcmp(handlers[i].op, op) == 0)
			return &handlers[i];
	return NULL;
}

bool
fsm_admin_known(const char *op)
{
	return handler(op) != NULL;
}

void
fsm_apply_admin(struct fsm *f, const uint8_t *body, size_t len, int64_t now,
    struct fsm_result *res)
{
	json_error_t         je;
	json_t              *o = json_loadb((const char *)body, len, 0, &je);
	const char          *op = o ? jstr(o, "op") : NULL;
	const struct handler *h;

	if (op == NULL)
		fsm_fail(res, MOM_EBADDATA, "malformed admin command");
	else if ((h = handler(op)) == NULL)
		fsm_fail(res, MOM_EINVAL, "unknown admin command '%s'", op);
	else
		h->fn(f, o, now, res);
	json_decref(o);
}

/*
 * fsm.c: the replicated state machine (see fsm.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/fsm.h"
#include "crc32c.h"
#include "mom.h"
#include "names.h"
#include "wire.h"

/* De-duplication state of one streaming publisher: seen sequence ranges. */
#define PRODUCER_RANGES 16
struct producer {
	int64_t  last_ms;
	size_t   n;
	uint64_t lo[PRODUCER_RANGES], hi[PRODUCER_RANGES]; /* sorted, [lo, hi) */
};

/* A publisher id seen within the de-duplication window. */
struct idrec {
	struct idrec *next;
	int64_t       expires;
	size_t        klen;
	char          key[];  /* kind, target name, NUL, id */
};

static void queue_free(struct fsm *, struct queue *);

static void topic_free(struct fsm *, struct topic *);
static void sub_free(struct fsm *, struct sub *);

struct fsm *
fsm_new(const struct fsm_config *cfg)
{
	struct fsm *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->cfg = *cfg;
	if (f->cfg.max_payload == 0)
		f->cfg.max_payload = MOM_PAYLOAD_DEFAULT;
	if (f->cfg.dedupe_window_ms == 0)
		f->cfg.dedupe_window_ms = 120000;
	if (f->cfg.retain_ms == 0)
		f->cfg.retain_ms = 24 * 3600 * 1000ULL;
	if (f->cfg.retain_bytes == 0)
		f->cfg.retain_bytes = 64ULL << 20;
	smap_init(&f->queues);
	smap_init(&f->topics);
	smap_init(&f->subs);
	smap_init(&f->ids);
	umap_init(&f->producers);
	f->next_seq = 1;
	return f;
}

/* Frees every object (telling the core through gone), leaves the maps finalised. */
static void
fsm_clear(struct fsm *f)
{
	size_t        it;
	void         *v;
	uint64_t      k;
	struct idrec *r, *next;

	/* Subscriptions first: topics point at them. */
	for (it = 0; smap_next(&f->subs, &it, &v);)
		sub_free(f, v);
	for (it = 0; smap_next(&f->topics, &it, &v);)
		topic_free(f, v);
	for (it = 0; smap_next(&f->queues, &it, &v);)
		queue_free(f, v);
	for (it = 0; umap_next(&f->producers, &it, &k, &v);)
		free(v);
	for (r = f->ids_head; r; r = next) {
		next = r->next;
		free(r);
	}
	smap_fini(&f->queues);
	smap_fini(&f->topics);
	smap_fini(&f->subs);
	smap_fini(&f->ids);
	umap_fini(&f->producers);
	f->ids_head = f->ids_tail = NULL;
	f->touched = NULL;
}

void
fsm_free(struct fsm *f)
{
	if (f == NULL)
		return;
	f->gone = NULL;
	fsm_clear(f);
	free(f);
}

void
fsm_cmd_encode(struct mom_buf *b, uint8_t type, int64_t time_ms, const void *body, size_t len)
{
	mom_buf_put_u8(b, type);
	mom_buf_put_varint(b, (uint64_t)time_ms);
	mom_buf_put(b, body, len);
}

static void fail(struct fsm_result *, int, const char *, ...) __attribute__((format(printf, 3, 4)));

static void
fail(struct fsm_result *res, int status, const char *fmt, ...)
{
	va_list ap;

	res->status = status;
	va_start(ap, fmt);
	vsnprintf(res->err, sizeof(res->err), fmt, ap);
	va_end(ap);
}

struct queue *
fsm_queue(struct fsm *f, const char *name, size_t n)
{
	return smap_get(&f->queues, name, n);
}

struct topic *
fsm_topic(struct fsm *f, const char *name, size_t n)
{
	return smap_get(&f->topics, name, n);
}

struct sub *
fsm_sub(struct fsm *f, const char *pat, size_t plen, const char *name, size_t nlen)
{
	char key[2 * MOM_NAME_MAX + 2];

	if (plen > MOM_NAME_MAX || nlen > MOM_NAME_MAX)
		return NULL;
	memcpy(key, pat, plen);
	key[plen] = '\0';
	memcpy(key + plen + 1, name, nlen);
	return smap_get(&f->subs, key, plen + 1 + nlen);
}

static void
touch(struct fsm *f, struct mq *q)
{
	if (q->waiters != NULL && !q->touched) {
		q->touched = true;
		q->touched_next = f->touched;
		f->touched = q;
	}
}

static void
gone(struct fsm *f, struct mq *q)
{
	struct mq **pp;

	for (pp = &f->touched; *pp; pp = &(*pp)->touched_next) {
		if (*pp == q) {
			*pp = q->touched_next;
			break;
		}
	}
	if (f->gone)
		f->gone(f->gone_arg, q);
}

/* Producers. */

static bool
producer_seen(const struct producer *p, uint64_t s)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (s >= p->lo[i] && s < p->hi[i])
			return true;
	return false;
}

static void
producer_add(struct producer *p, uint64_t lo, uint64_t hi)
{
	size_t i, j;

	/* Insert in order, then merge neighbours that touch. */
	if (p->n == PRODUCER_RANGES) {
		/* Forget the oldest range: a duplicate is better than a loss. */
		memmove(p->lo, p->lo + 1, (p->n - 1) * sizeof(p->lo[0]));
		memmove(p->hi, p->hi + 1, (p->n - 1) * sizeof(p->hi[0]));
		p->n--;
	}
	for (i = 0; i < p->n && p->lo[i] < lo; i++)
		;
	memmove(p->lo + i + 1, p->lo + i, (p->n - i) * sizeof(p->lo[0]));
	memmove(p->hi + i + 1, p->hi + i, (p->n - i) * sizeof(p->hi[0]));
	p->lo[i] = lo;
	p->hi[i] = hi;
	p->n++;
	for (i = 0, j = 1; j < p->n; j++) {
		if (p->lo[j] <= p->hi[i]) {
			if (p->hi[j] > p->hi[i])
				p->hi[i] = p->hi[j];
		} else {
			i++;
			p->lo[i] = p->lo[j];
			p->hi[i] = p->hi[j];
		}
	}
	p->n = i + 1;
}

static size_t
id_key(char *key, const struct mom_pub_msg *m)
{
	key[0] = (char)m->kind;
	memcpy(key + 1, m->name.p, m->name.n);
	key[1 + m->name.n] = '\0';
	memcpy(key + 2 + m->name.n, m->id.p, m->id.n);
	return 2 + m->name.n + m->id.n;
}

/*
 * Seen within the window?  The expiry is compared with the command's own
 * time, so the answer does not depend on when fsm_tick() last ran: every
 * replica decides the same.
 */
static bool
id_seen(struct fsm *f, const struct mom_pub_msg *m, int64_t now)
{
	char          key[MOM_NAME_MAX + MOM_ID_MAX + 2];
	size_t        n = id_key(key, m);
	struct idrec *r = smap_get(&f->ids, key, n);

	return r != NULL && r->expires > now;
}

static int
id_add(struct fsm *f, const struct mom_pub_msg *m, int64_t now)
{
	char          key[MOM_NAME_MAX + MOM_ID_MAX + 2];
	size_t        n = id_key(key, m);
	struct idrec *r;

	if ((r = malloc(sizeof(*r) + n)) == NULL)
		return MOM_ENOMEM;
	memcpy(r->key, key, n);
	r->klen = n;
	r->expires = mom_time_add(now, f->cfg.dedupe_window_ms);
	r->next = NULL;
	if (smap_put(&f->ids, r->key, n, r) != 0) {
		free(r);
		return MOM_ENOMEM;
	}
	if (f->ids_tail)
		f->ids_tail->next = r;
	else
		f->ids_head = r;
	f->ids_tail = r;
	return 0;
}

/* Topics and their retained logs. */

static void
topic_trim(struct topic *t, int64_t now)
{
	while (t->llen > 0) {
		struct msg *m = t->log[t->lhead];

		if (!(t->retain_ms && now >= mom_time_add(m->time_ms, t->retain_ms)) &&
		    !(t->retain_bytes && t->bytes > t->retain_bytes))
			break;
		t->bytes -= msg_size(m);
		msg_unref(m);
		t->lhead = (t->lhead + 1) & (t->lcap - 1);
		t->llen--;
	}
}

static int
topic_append(struct topic *t, struct msg *m)
{
	if (t->llen == t->lcap) {
		size_t       cap = t->lcap ? t->lcap * 2 : 64, i;
		struct msg **l = malloc(cap * sizeof(*l));

		if (l == NULL)
			return MOM_ENOMEM;
		for (i = 0; i < t->llen; i++)
			l[i] = t->log[(t->lhead + i) & (t->lcap - 1)];
		free(t->log);
		t->log = l;
		t->lcap = cap;
		t->lhead = 0;
	}
	t->log[(t->lhead + t->llen++) & (t->lcap - 1)] = msg_ref(m);
	t->bytes += msg_size(m);
	return 0;
}

static int
topic_link(struct topic *t, struct sub *s)
{
	if (t->nsubs == t->subcap) {
		size_t       cap = t->subcap ? t->subcap * 2 : 4;
		struct sub **a = realloc(t->subs, cap * sizeof(*a));

		if (a == NULL)
			return MOM_ENOMEM;
		t->subs = a;
		t->subcap = cap;
	}
	t->subs[t->nsubs++] = s;
	return 0;
}

static void
topic_unlink(struct topic *t, struct sub *s)
{
	size_t i;

	for (i = 0; i < t->nsubs; i++) {
		if (t->subs[i] == s) {
			t->subs[i] = t->subs[--t->nsubs];
			return;
		}
	}
}

static void
topic_free(struct fsm *f, struct topic *t)
{
	size_t i;

	(void)f;
	for (i = 0; i < t->llen; i++)
		msg_unref(t->log[(t->lhead + i) & (t->lcap - 1)]);
	free(t->log);
	free(t->subs);
	free(t->owner);
	free(t->name);
	free(t);
}

static void
queue_free(struct fsm *f, struct queue *q)
{
	gone(f, &q->mq);
	mq_fini(&q->mq);
	free(q->dead_letter);
	free(q->owner);
	free(q->name);
	free(q);
}

static void
sub_free(struct fsm *f, struct sub *s)
{
	size_t it;
	void  *v;

	for (it = 0; smap_next(&f->topics, &it, &v);)
		topic_unlink(v, s);
	gone(f, &s->mq);
	mq_fini(&s->mq);
	free(s->owner);
	free(s->key);
	free(s);
}

/*
 * Where a message that used up its deliveries goes: the queue's dead-letter
 * queue when it has one that exists, otherwise nowhere (counted).
 */
static void
dead_letter(void *arg, struct mq *from, struct msg *m, uint32_t deliveries)
{
	struct queue *q = arg, *dlq = NULL;

	(void)from;
	(void)deliveries;
	if (q->dead_letter != NULL)
		dlq = fsm_queue(q->fsm, q->dead_letter, strlen(q->dead_letter));
	if (dlq == NULL || dlq == q) {
		q->fsm->dead_dropped++;
		msg_unref(m);
		return;
	}
	/* A dead letter is kept whatever the dead-letter queue's limits. */
	if (mq_push(&dlq->mq, m, q->fsm->last_time) == 0)
		touch(q->fsm, &dlq->mq);
}

/* The core asks the log for settlements; without a core they happen at once. */
static void
queue_settle(void *arg, struct mq *mq, uint64_t seq, int how)
{
	struct queue *q = arg;

	(void)mq;
	q->fsm->settle(q->fsm->settle_arg, q, NULL, seq, how);
}

static void
sub_settle(void *arg, struct mq *mq, uint64_t seq, int how)
{
	struct sub *s = arg;

	(void)mq;
	s->fsm->settle(s->fsm->settle_arg, NULL, s, seq, how);
}

static void
attach_queue(struct fsm *f, struct queue *q)
{
	mq_set_settle(&q->mq, f->settle ? queue_settle : NULL, q);
}

static void
attach_sub(struct fsm *f, struct sub *s)
{
	s->fsm = f;
	mq_set_settle(&s->mq, f->settle ? sub_settle : NULL, s);
}

static void
attach_all(struct fsm *f)
{
	size_t it;
	void  *v;

	for (it = 0; smap_next(&f->queues, &it, &v);)
		attach_queue(f, v);
	for (it = 0; smap_next(&f->subs, &it, &v);)
		attach_sub(f, v);
}

void
fsm_set_settle(struct fsm *f, fsm_settle_fn fn, void *arg)
{
	f->settle = fn;
	f->settle_arg = arg;
	attach_all(f);
}

/* Publish. */

static void
apply_publish(struct fsm *f, const uint8_t *body, size_t len, int64_t now,
    struct fsm_result *res)
{
	struct mom_rd        r;
	struct mom_pub_batch b;
	struct mom_pub_msg   m;
	struct producer     *p = NULL;
	struct queue        *q;
	struct topic        *t;
	uint64_t             i;
	size_t               start;
	int                  rv;

	mom_rd_init(&r, body, len);
	if ((rv = mom_pub_decode_begin(&r, &b)) != 0) {
		fail(res, rv, "malformed publish request");
		return;
	}
	start = r.off;
	if (b.producer != 0)
		p = umap_get(&f->producers, b.producer);

	/*
	 * Pass 1 checks the whole batch (targets exist, room left) so that a
	 * refused batch stores nothing.
	 */
	for (i = 0; i < b.count; i++) {
		if ((rv = mom_pub_decode_msg(&r, &b, &m, f->cfg.max_payload)) != 0) {
			fail(res, rv, "%s", rv == MOM_ETOOBIG ?
			    "message larger than the broker's limit" : "malformed message");
			goto undo;
		}
		if (m.kind == MOM_KIND_QUEUE) {
			if ((q = fsm_queue(f, (const char *)m.name.p, m.name.n)) == NULL) {
				fail(res, MOM_ENOENT, "no such queue '%.*s'", (int)m.name.n, m.name.p);
				goto undo;
			}
		} else if (fsm_topic(f, (const char *)m.name.p, m.name.n) == NULL) {
			fail(res, MOM_ENOENT, "no such topic '%.*s'", (int)m.name.n, m.name.p);
			goto undo;
		} else
			q = NULL;
		if ((p && producer_seen(p, b.first_seq + i)) || (m.id.n && id_seen(f, &m, now)))
			continue;
		if (q != NULL) {
			q->pend_n++;
			q->pend_b += m.payload.n;
			if (!mq_fits(&q->mq, q->pend_n, q->pend_b)) {
				if (q->mq.cfg.max_len && mq_count(&q->mq) + q->pend_n > q->mq.cfg.max_len)
					fail(res, MOM_EFULL, "queue '%s' is full (max-len %llu)",
					    q->name, (unsigned long long)q->mq.cfg.max_len);
				else
					fail(res, MOM_EFULL, "queue '%s' is full (max-bytes %llu)",
					    q->name, (unsigned long long)q->mq.cfg.max_bytes);
				goto undo;
			}
		}
	}

	/* Pass 2 stores. */
	mom_rd_init(&r, body, len);
	r.off = start;
	for (i = 0; i < b.count; i++) {
		struct msg *msg;

		(void)mom_pub_decode_msg(&r, &b, &m, f->cfg.max_payload);
		if ((p && producer_seen(p, b.first_seq + i)) || (m.id.n && id_seen(f, &m, now))) {
			res->duplicates++;
			continue;
		}
		if (m.id.n && id_add(f, &m, now) != 0)
			goto nomem;
		if ((msg = msg_new(&m, f->next_seq++, now)) == NULL)
			goto nomem;
		if (m.kind == MOM_KIND_QUEUE) {
			q = fsm_queue(f, (const char *)m.name.p, m.name.n);
			q->pend_n = q->pend_b = 0;
			if (mq_push(&q->mq, msg, now) != 0)
				goto nomem;
			touch(f, &q->mq);
		} else {
			size_t k;

			t = fsm_topic(f, (const char *)m.name.p, m.name.n);
			t->published++;
			if (topic_append(t, msg) != 0) {
				msg_unref(msg);
				goto nomem;
			}
			for (k = 0; k < t->nsubs; k++) {
				if (mq_push(&t->subs[k]->mq, msg_ref(msg), now) == 0)
					touch(f, &t->subs[k]->mq);
			}
			msg_unref(msg);
			topic_trim(t, now);
		}
		res->stored++;
	}
	if (b.producer != 0) {
		if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL &&
		    umap_put(&f->producers, b.producer, p) != 0) {
			free(p);
			p = NULL;
		}
		if (p != NULL) {
			producer_add(p, b.first_seq, b.first_seq + b.count);
			p->last_ms = now;
		}
	}
	f->published += res->stored;
	f->duplicates += res->duplicates;
	return;
nomem:
	fail(res, MOM_ENOMEM, "out of memory");
	return;
undo:
	/* Reset the scratch counters pass 1 set. */
	mom_rd_init(&r, body, len);
	r.off = start;
	while (mom_pub_decode_msg(&r, &b, &m, SIZE_MAX) == 0)
		if (m.kind == MOM_KIND_QUEUE &&
		    (q = fsm_queue(f, (const char *)m.name.p, m.name.n)) != NULL)
			q->pend_n = q->pend_b = 0;
}

/* Admin commands. */

static uint64_t
jnum(json_t *o, const char *k, uint64_t def)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	    (uint64_t)json_integer_value(v) : def;
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
	    "s:I, s:I, s:I, s:I, s:I, s:s?}",
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
	    "owner", q->owner);
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

	if (name == NULL || !mom_name_ok(name) || (dl && !mom_name_ok(dl))) {
		fail(res, MOM_EINVAL, "bad queue name");
		return;
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.ack_wait_ms = jnum(o, "ack_wait_ms", 30000);
	cfg.max_deliver = (uint32_t)jnum(o, "max_deliver", 20);
	cfg.ttl_ms = jnum(o, "ttl_ms", 0);
	cfg.max_len = jnum(o, "max_len", 0);
	cfg.max_bytes = jnum(o, "max_bytes", 0);
	if (cfg.ack_wait_ms == 0)
		cfg.ack_wait_ms = 30000;
	if ((q = fsm_queue(f, name, strlen(name))) != NULL) {
		/* Declaring again is fine; declaring differently is not. */
		if (!json_is_true(json_object_get(o, "ensure")) &&
		    (cfg.ack_wait_ms != q->mq.cfg.ack_wait_ms ||
		    cfg.max_deliver != q->mq.cfg.max_deliver || cfg.ttl_ms != q->mq.cfg.ttl_ms ||
		    cfg.max_len != q->mq.cfg.max_len || cfg.max_bytes != q->mq.cfg.max_bytes ||
		    (dl == NULL) != (q->dead_letter == NULL) ||
		    (dl && strcmp(dl, q->dead_letter) != 0))) {
			fail(res, MOM_EEXIST, "queue '%s' exists with other options", name);
			return;
		}
		res->json = fsm_queue_json(q);
		return;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL || (q->name = strdup(name)) == NULL) {
		free(q);
		fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	q->fsm = f;
	q->nlen = strlen(name);
	q->dead_letter = xstrdup(dl);
	q->owner = xstrdup(jstr(o, "owner"));
	q->created_ms = now;
	mq_init(&q->mq, &cfg, dead_letter, q);
	attach_queue(f, q);
	if (smap_put(&f->queues, q->name, q->nlen, q) != 0) {
		queue_free(f, q);
		fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	res->json = fsm_queue_json(q);
}

static struct queue *
need_queue(struct fsm *f, const char *name, struct fsm_result *res)
{
	struct queue *q = name ? fsm_queue(f, name, strlen(name)) : NULL;

	if (q == NULL)
		fail(res, MOM_ENOENT, "no such queue '%s'", name ? name : "");
	return q;
}

static void
queue_delete(struct fsm *f, json_t *o, struct fsm_result *res)
{
	struct queue *q = need_queue(f, jstr(o, "name"), res);

	if (q == NULL)
		return;
	smap_del(&f->queues, q->name, q->nlen);
	res->json = json_pack("{s:s, s:I}", "deleted", q->name, "messages",
	    (json_int_t)mq_count(&q->mq));
	queue_free(f, q);
}

static void
queue_purge(struct fsm *f, json_t *o, struct fsm_result *res)
{
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
		fail(res, MOM_EINVAL, "source and destination are the same queue");
		return;
	}
	/*
	 * The oldest first, whatever their state (a message in flight moves
	 * too, its ack turns stale): the choice must not depend on leases,
	 * which are not replicated.
	 */
	if ((got = mq_take_all(&src->mq, max, now, &ms)) < 0) {
		fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	for (i = 0; i < got; i++)
		if (mq_push(&dst->mq, ms[i], now) == 0)
			n++;
	free(ms);
	if (n > 0)
		touch(f, &dst->mq);
	res->json = json_pack("{s:s, s:s, s:I}", "from", src->name, "to", dst->name,
	    "moved", (json_int_t)n);
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
		fail(res, MOM_EINVAL, "bad topic name");
		return;
	}
	if ((t = fsm_topic(f, name, strlen(name))) != NULL) {
		if (!json_is_true(json_object_get(o, "ensure")) &&
		    (t->retain_ms != retain || t->retain_bytes != rbytes)) {
			fail(res, MOM_EEXIST, "topic '%s' exists with other options", name);
			return;
		}
		res->json = fsm_topic_json(t);
		return;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->name = strdup(name)) == NULL) {
		free(t);
		fail(res, MOM_ENOMEM, "out of memory");
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
			topic_link(t, s);
	}
	if (smap_put(&f->topics, t->name, t->nlen, t) != 0) {
		topic_free(f, t);
		fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	res->json = fsm_topic_json(t);
}

static void
topic_delete(struct fsm *f, json_t *o, struct fsm_result *res)
{
	const char   *name = jstr(o, "name");
	struct topic *t = name ? fsm_topic(f, name, strlen(name)) : NULL;

	if (t == NULL) {
		fail(res, MOM_ENOENT, "no such topic '%s'", name ? name : "");
		return;
	}
	smap_del(&f->topics, t->name, t->nlen);
	res->json = json_pack("{s:s, s:I}", "deleted", t->name, "retained", (json_int_t)t->llen);
	topic_free(f, t);
}

/* Collects the retained messages a new subscription starts with. */
static int
seq_cmp(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

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
	qsort(all, n, sizeof(*all), seq_cmp);
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
		fail(res, MOM_EINVAL, "bad subscription");
		return;
	}
	plen = strlen(pat);
	nlen = strlen(name);
	if ((s = fsm_sub(f, pat, plen, name, nlen)) != NULL) {
		res->json = fsm_sub_json(s);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->key = malloc(plen + nlen + 2)) == NULL) {
		free(s);
		fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	memcpy(s->key, pat, plen + 1);
	memcpy(s->key + plen + 1, name, nlen + 1);
	s->klen = plen + 1 + nlen;
	s->pattern = s->key;
	s->name = s->key + plen + 1;
	s->durable = json_is_true(json_object_get(o, "durable"));
	s->owner = xstrdup(jstr(o, "owner"));
	s->consumer = jnum(o, "consumer", 0);
	s->created_ms = s->last_seen = now;
	memset(&cfg, 0, sizeof(cfg));
	cfg.ack_wait_ms = jnum(o, "ack_wait_ms", 30000);
	/*
	 * A subscription's backlog obeys the broker's retention: none older
	 * than retain, at most retain-bytes (then the oldest go), so a
	 * consumer that went away cannot make the broker grow forever.
	 */
	cfg.ttl_ms = f->cfg.retain_ms;
	cfg.max_bytes = f->cfg.retain_bytes;
	cfg.drop_head = true;
	mq_init(&s->mq, &cfg, NULL, NULL);
	attach_sub(f, s);
	if (smap_put(&f->subs, s->key, s->klen, s) != 0) {
		sub_free(f, s);
		fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	for (it = 0; smap_next(&f->topics, &it, &v);) {
		struct topic *t = v;

		if (mom_match(pat, t->name))
			topic_link(t, s);
	}
	sub_backfill(f, s, (int)jnum(o, "from", MOM_FROM_NEW), (int64_t)jnum(o, "from_time_ms", 0), now);
	res->json = fsm_sub_json(s);
}

static void
sub_delete(struct fsm *f, json_t *o, struct fsm_result *res)
{
	const char *pat = jstr(o, "pattern"), *name = jstr(o, "name");
	struct sub *s = NULL;

	if (pat != NULL && name != NULL)
		s = fsm_sub(f, pat, strlen(pat), name, strlen(name));
	if (s == NULL) {
		fail(res, MOM_ENOENT, "no such subscription '%s' on '%s'",
		    name ? name : "", pat ? pat : "");
		return;
	}
	smap_del(&f->subs, s->key, s->klen);
	res->json = json_pack("{s:s, s:s, s:I}", "topic", s->pattern, "deleted", s->name,
	    "messages", (json_int_t)mq_count(&s->mq));
	sub_free(f, s);
}

static void
apply_admin(struct fsm *f, const uint8_t *body, size_t len, int64_t now, struct fsm_result *res)
{
	json_error_t je;
	json_t      *o = json_loadb((const char *)body, len, 0, &je);
	const char  *op = o ? jstr(o, "op") : NULL;

	if (op == NULL)
		fail(res, MOM_EBADDATA, "malformed admin command");
	else if (strcmp(op, "queue.create") == 0)
		queue_create(f, o, now, res);
	else if (strcmp(op, "queue.delete") == 0)
		queue_delete(f, o, res);
	else if (strcmp(op, "queue.purge") == 0)
		queue_purge(f, o, res);
	else if (strcmp(op, "queue.move") == 0)
		queue_move(f, o, now, res);
	else if (strcmp(op, "topic.create") == 0)
		topic_create(f, o, now, res);
	else if (strcmp(op, "topic.delete") == 0)
		topic_delete(f, o, res);
	else if (strcmp(op, "sub.create") == 0)
		sub_create(f, o, now, res);
	else if (strcmp(op, "sub.delete") == 0)
		sub_delete(f, o, res);
	else
		fail(res, MOM_EINVAL, "unknown admin command '%s'", op);
	json_decref(o);
}

/*
 * Settlements: count, then each: u8 kind (1 queue, 2 subscription), the
 * queue's name or the subscription's pattern and name, seq, u8 how.  One
 * whose queue or message is gone meanwhile is skipped.
 */
void
fsm_settle_put(struct mom_buf *b, const struct queue *q, const struct sub *s, uint64_t seq,
    int how)
{
	if (q != NULL) {
		mom_buf_put_u8(b, 1);
		mom_buf_put_bytes(b, q->name, q->nlen);
	} else {
		mom_buf_put_u8(b, 2);
		mom_buf_put_str(b, s->pattern);
		mom_buf_put_str(b, s->name);
	}
	mom_buf_put_varint(b, seq);
	mom_buf_put_u8(b, (uint8_t)how);
}

static void
apply_settle(struct fsm *f, const uint8_t *body, size_t len, struct fsm_result *res)
{
	struct mom_rd r;
	uint64_t      n, i;

	mom_rd_init(&r, body, len);
	n = mom_rd_varint(&r);
	for (i = 0; i < n && !r.err; i++) {
		uint8_t        kind = mom_rd_u8(&r), how;
		const uint8_t *a, *b = NULL;
		size_t         alen, blen = 0;
		uint64_t       seq;
		struct mq     *q = NULL;

		a = mom_rd_bytes(&r, &alen);
		if (kind == 2)
			b = mom_rd_bytes(&r, &blen);
		seq = mom_rd_varint(&r);
		how = mom_rd_u8(&r);
		if (r.err || (kind != 1 && kind != 2) || how < MQ_ACK || how > MQ_DROP)
			break;
		if (kind == 1) {
			struct queue *qu = fsm_queue(f, (const char *)a, alen);

			q = qu ? &qu->mq : NULL;
		} else {
			struct sub *su = fsm_sub(f, (const char *)a, alen, (const char *)b, blen);

			q = su ? &su->mq : NULL;
		}
		if (q != NULL)
			(void)mq_settle(q, seq, how);
	}
	if (r.err || i < n)
		fail(res, MOM_EPROTO, "malformed settle command");
}

void
fsm_apply(struct fsm *f, const uint8_t *cmd, size_t len, struct fsm_result *res)
{
	struct mom_rd r;
	uint8_t       type;
	int64_t       now;

	memset(res, 0, sizeof(*res));
	mom_rd_init(&r, cmd, len);
	type = mom_rd_u8(&r);
	now = (int64_t)mom_rd_varint(&r);
	if (r.err) {
		fail(res, MOM_EPROTO, "malformed command");
		return;
	}
	/* Time never runs backwards inside the state machine. */
	if (now < f->last_time)
		now = f->last_time;
	f->last_time = now;
	switch (type) {
	case CMD_PUBLISH:
		apply_publish(f, cmd + r.off, len - r.off, now, res);
		break;
	case CMD_ADMIN:
		apply_admin(f, cmd + r.off, len - r.off, now, res);
		break;
	case CMD_SETTLE:
		apply_settle(f, cmd + r.off, len - r.off, res);
		break;
	case CMD_TICK:
		fsm_tick(f, now);
		break;
	default:
		fail(res, MOM_EPROTO, "unknown command type %u", type);
	}
}

uint64_t
fsm_producer_next(const struct fsm *f, uint64_t producer)
{
	const struct producer *p = umap_get(&f->producers, producer);

	return p != NULL && p->n > 0 ? p->hi[p->n - 1] : 1;
}

bool
fsm_due(const struct fsm *f, int64_t now)
{
	size_t   it;
	void    *v;
	uint64_t k;

	if (f->ids_head && f->ids_head->expires <= now)
		return true;
	for (it = 0; umap_next(&f->producers, &it, &k, &v);)
		if (now > mom_time_add(((struct producer *)v)->last_ms, f->cfg.dedupe_window_ms))
			return true;
	for (it = 0; smap_next(&f->topics, &it, &v);) {
		const struct topic *t = v;

		if (t->llen > 0 && t->retain_ms &&
		    now >= mom_time_add(t->log[t->lhead]->time_ms, t->retain_ms))
			return true;
	}
	return false;
}

int64_t
fsm_tick(struct fsm *f, int64_t now)
{
	size_t   it;
	void    *v;
	uint64_t k;

	while (f->ids_head && f->ids_head->expires <= now) {
		struct idrec *r = f->ids_head;

		/* A newer record of the same id may have replaced this one. */
		if (smap_get(&f->ids, r->key, r->klen) == r)
			smap_del(&f->ids, r->key, r->klen);
		if ((f->ids_head = r->next) == NULL)
			f->ids_tail = NULL;
		free(r);
	}
	for (it = 0; umap_next(&f->producers, &it, &k, &v);) {
		struct producer *p = v;

		if (now > mom_time_add(p->last_ms, f->cfg.dedupe_window_ms)) {
			umap_del(&f->producers, k);
			free(p);
			it = 0; /* the table moved under us: start over */
		}
	}
	for (it = 0; smap_next(&f->topics, &it, &v);)
		topic_trim(v, now);
	return f->ids_head ? f->ids_head->expires : INT64_MAX;
}

/*
 * Snapshots.
 *
 * Layout (integers are LEB128 varints unless said otherwise, strings are
 * varint length + bytes, an optional string is u8 present + string):
 *
 *	"MSNP", u32 LE version (1), u64 LE body length, body, u32 LE CRC-32C
 *	of everything before it.
 *
 * body:
 *	next_seq, last_time, published, duplicates, dead_dropped
 *	nmsgs x message (in seq order): seq, time_ms, expires_ms, not_before,
 *	    u8 kind, payload, id, headers, topic name ("" for queue messages)
 *	nqueues x (by name): name, opt dead_letter, opt owner, created_ms, mq
 *	ntopics x (by name): name, opt owner, created_ms, retain_ms,
 *	    retain_bytes, published, nlog x seq (oldest first)
 *	nsubs x (by pattern, name): pattern, name, u8 durable, opt owner,
 *	    consumer, last_seen, created_ms, mq
 *	nproducers x (by id): id, last_ms, n x (lo, hi)
 *	nids x (window order): expires, key
 *   mq: ack_wait_ms, max_deliver, ttl_ms, max_len, max_bytes, u8 drop_head,
 *	published, delivered, acked, redelivered, dead_lettered, expired,
 *	dropped, nready x (seq, deliveries), ndelayed x (at, seq, deliveries)
 *
 * A message is written once and referred to by its seq wherever it is held
 * (a topic's log and its subscriptions share it), so sharing survives.
 * Objects are written in a canonical order, so equal states give equal
 * bytes whatever their history.
 *
 * Leases are leader-local: a message leased when the snapshot is taken is
 * written as ready, in front of the ready ones, in lease order (as if every
 * lease had expired at once), with its delivery count kept, so after a
 * restore it is simply delivered again; no redelivery is counted for it.
 * Receipts, waiters and the broker's config are not part of the snapshot:
 * the restored fsm keeps its own config (dedupe window, retention
 * defaults, max payload).  Subscriptions are linked to matching topics
 * again on restore.
 */
#define SNAP_MAGIC   "MSNP"
#define SNAP_VERSION 1u
#define SNAP_HDR     16
#define SNAP_TRAILER 4

static void
put_le(uint8_t *p, uint64_t v, int n)
{
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	int      i;

	for (i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void
put_i64(struct mom_buf *b, int64_t v)
{
	mom_buf_put_varint(b, (uint64_t)v);
}

static void
put_opt(struct mom_buf *b, const char *s)
{
	mom_buf_put_u8(b, s != NULL);
	if (s != NULL)
		mom_buf_put_bytes(b, s, strlen(s));
}

/* Every distinct message, collected before writing. */
struct snapw {
	struct umap  seen;
	struct msg **all;
	size_t       n, cap;
	int          err;
};

static void
snap_note(struct snapw *w, struct msg *m)
{
	if (w->err != 0 || umap_get(&w->seen, m->seq) != NULL)
		return;
	if (w->n == w->cap) {
		size_t       cap = w->cap ? w->cap * 2 : 256;
		struct msg **a = realloc(w->all, cap * sizeof(*a));

		if (a == NULL) {
			w->err = MOM_ENOMEM;
			return;
		}
		w->all = a;
		w->cap = cap;
	}
	if (umap_put(&w->seen, m->seq, m) != 0) {
		w->err = MOM_ENOMEM;
		return;
	}
	w->all[w->n++] = m;
}

static void
snap_note_mq(struct snapw *w, const struct mq *q)
{
	const struct lease *l;
	size_t              i;

	for (l = q->lhead; l; l = l->next)
		snap_note(w, l->e.m);
	for (i = 0; i < q->rlen; i++)
		snap_note(w, q->ring[(q->rhead + i) & (q->rcap - 1)].m);
	for (i = 0; i < q->dlen; i++)
		snap_note(w, q->delayed[i].e.m);
}

static void
snap_put_mq(struct mom_buf *b, const struct mq *q)
{
	const struct lease *l;
	size_t              i;

	mom_buf_put_varint(b, q->cfg.ack_wait_ms);
	mom_buf_put_varint(b, q->cfg.max_deliver);
	mom_buf_put_varint(b, q->cfg.ttl_ms);
	mom_buf_put_varint(b, q->cfg.max_len);
	mom_buf_put_varint(b, q->cfg.max_bytes);
	mom_buf_put_u8(b, q->cfg.drop_head);
	mom_buf_put_varint(b, q->st.published);
	mom_buf_put_varint(b, q->st.delivered);
	mom_buf_put_varint(b, q->st.acked);
	mom_buf_put_varint(b, q->st.redelivered);
	mom_buf_put_varint(b, q->st.dead_lettered);
	mom_buf_put_varint(b, q->st.expired);
	mom_buf_put_varint(b, q->st.dropped);
	mom_buf_put_varint(b, q->nleased + q->rlen);
	for (l = q->lhead; l; l = l->next) {
		mom_buf_put_varint(b, l->e.m->seq);
		mom_buf_put_varint(b, l->e.deliveries);
	}
	for (i = 0; i < q->rlen; i++) {
		const struct qent *e = &q->ring[(q->rhead + i) & (q->rcap - 1)];

		mom_buf_put_varint(b, e->m->seq);
		mom_buf_put_varint(b, e->deliveries);
	}
	/* The heap's array order: pushed back in that order it is the same heap. */
	mom_buf_put_varint(b, q->dlen);
	for (i = 0; i < q->dlen; i++) {
		put_i64(b, q->delayed[i].at);
		mom_buf_put_varint(b, q->delayed[i].e.m->seq);
		mom_buf_put_varint(b, q->delayed[i].e.deliveries);
	}
}

static int
cmp_seq(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
cmp_queue(const void *a, const void *b)
{
	return strcmp((*(struct queue *const *)a)->name, (*(struct queue *const *)b)->name);
}

static int
cmp_topic(const void *a, const void *b)
{
	return strcmp((*(struct topic *const *)a)->name, (*(struct topic *const *)b)->name);
}

static int
cmp_sub(const void *a, const void *b)
{
	const struct sub *x = *(struct sub *const *)a, *y = *(struct sub *const *)b;
	int               c = strcmp(x->pattern, y->pattern);

	return c ? c : strcmp(x->name, y->name);
}

struct prodent {
	uint64_t         id;
	struct producer *p;
};

static int
cmp_prod(const void *a, const void *b)
{
	const struct prodent *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The values of a map in an array (malloc'd; NULL when empty or out of memory). */
static void **
smap_values(const struct smap *m, int (*cmp)(const void *, const void *), int *err)
{
	void  **a;
	size_t  it, n = 0;
	void   *v;

	if (m->len == 0)
		return NULL;
	if ((a = malloc(m->len * sizeof(*a))) == NULL) {
		*err = MOM_ENOMEM;
		return NULL;
	}
	for (it = 0; smap_next(m, &it, &v);)
		a[n++] = v;
	qsort(a, n, sizeof(*a), cmp);
	return a;
}

int
fsm_snapshot(const struct fsm *f, struct mom_buf *out)
{
	struct snapw     w;
	struct queue   **qs;
	struct topic   **ts;
	struct sub     **ss;
	struct prodent  *ps = NULL;
	struct idrec    *r;
	size_t           i, j, start = out->len, it, np = 0;
	uint64_t         k;
	void            *v;
	uint8_t          hdr[SNAP_HDR];
	int              err = 0;

	memset(&w, 0, sizeof(w));
	umap_init(&w.seen);
	qs = (struct queue **)smap_values(&f->queues, cmp_queue, &err);
	ts = (struct topic **)smap_values(&f->topics, cmp_topic, &err);
	ss = (struct sub **)smap_values(&f->subs, cmp_sub, &err);
	if (f->producers.len > 0 && (ps = malloc(f->producers.len * sizeof(*ps))) == NULL)
		err = MOM_ENOMEM;
	if (err != 0)
		goto done;
	for (it = 0; umap_next(&f->producers, &it, &k, &v);) {
		ps[np].id = k;
		ps[np++].p = v;
	}
	if (np > 0)
		qsort(ps, np, sizeof(*ps), cmp_prod);

	for (i = 0; i < f->queues.len; i++)
		snap_note_mq(&w, &qs[i]->mq);
	for (i = 0; i < f->topics.len; i++)
		for (j = 0; j < ts[i]->llen; j++)
			snap_note(&w, ts[i]->log[(ts[i]->lhead + j) & (ts[i]->lcap - 1)]);
	for (i = 0; i < f->subs.len; i++)
		snap_note_mq(&w, &ss[i]->mq);
	if ((err = w.err) != 0)
		goto done;
	if (w.n > 0)
		qsort(w.all, w.n, sizeof(*w.all), cmp_seq);

	memset(hdr, 0, sizeof(hdr));
	mom_buf_put(out, hdr, sizeof(hdr));
	mom_buf_put_varint(out, f->next_seq);
	put_i64(out, f->last_time);
	mom_buf_put_varint(out, f->published);
	mom_buf_put_varint(out, f->duplicates);
	mom_buf_put_varint(out, f->dead_dropped);

	mom_buf_put_varint(out, w.n);
	for (i = 0; i < w.n; i++) {
		const struct msg *m = w.all[i];

		mom_buf_put_varint(out, m->seq);
		put_i64(out, m->time_ms);
		put_i64(out, m->expires_ms);
		put_i64(out, m->not_before);
		mom_buf_put_u8(out, m->kind);
		mom_buf_put_bytes(out, msg_payload(m), m->len);
		mom_buf_put_bytes(out, msg_id(m), m->id_len);
		mom_buf_put_bytes(out, msg_hdr(m), m->hdr_len);
		mom_buf_put_bytes(out, msg_name(m), m->name_len);
	}

	mom_buf_put_varint(out, f->queues.len);
	for (i = 0; i < f->queues.len; i++) {
		const struct queue *q = qs[i];

		mom_buf_put_bytes(out, q->name, q->nlen);
		put_opt(out, q->dead_letter);
		put_opt(out, q->owner);
		put_i64(out, q->created_ms);
		snap_put_mq(out, &q->mq);
	}

	mom_buf_put_varint(out, f->topics.len);
	for (i = 0; i < f->topics.len; i++) {
		const struct topic *t = ts[i];

		mom_buf_put_bytes(out, t->name, t->nlen);
		put_opt(out, t->owner);
		put_i64(out, t->created_ms);
		mom_buf_put_varint(out, t->retain_ms);
		mom_buf_put_varint(out, t->retain_bytes);
		mom_buf_put_varint(out, t->published);
		mom_buf_put_varint(out, t->llen);
		for (j = 0; j < t->llen; j++)
			mom_buf_put_varint(out, t->log[(t->lhead + j) & (t->lcap - 1)]->seq);
	}

	mom_buf_put_varint(out, f->subs.len);
	for (i = 0; i < f->subs.len; i++) {
		const struct sub *s = ss[i];

		mom_buf_put_bytes(out, s->pattern, strlen(s->pattern));
		mom_buf_put_bytes(out, s->name, strlen(s->name));
		mom_buf_put_u8(out, s->durable);
		put_opt(out, s->owner);
		mom_buf_put_varint(out, s->consumer);
		put_i64(out, s->last_seen);
		put_i64(out, s->created_ms);
		snap_put_mq(out, &s->mq);
	}

	mom_buf_put_varint(out, np);
	for (i = 0; i < np; i++) {
		mom_buf_put_varint(out, ps[i].id);
		put_i64(out, ps[i].p->last_ms);
		mom_buf_put_varint(out, ps[i].p->n);
		for (j = 0; j < ps[i].p->n; j++) {
			mom_buf_put_varint(out, ps[i].p->lo[j]);
			mom_buf_put_varint(out, ps[i].p->hi[j]);
		}
	}

	/* Only the records the window still uses: a replaced one is dead weight. */
	for (np = 0, r = f->ids_head; r; r = r->next)
		np += smap_get(&f->ids, r->key, r->klen) == r;
	mom_buf_put_varint(out, np);
	for (r = f->ids_head; r; r = r->next) {
		if (smap_get(&f->ids, r->key, r->klen) != r)
			continue;
		put_i64(out, r->expires);
		mom_buf_put_bytes(out, r->key, r->klen);
	}

	if ((err = out->err) != 0)
		goto done;
	memcpy(out->data + start, SNAP_MAGIC, 4);
	put_le(out->data + start + 4, SNAP_VERSION, 4);
	put_le(out->data + start + 8, out->len - start - SNAP_HDR, 8);
	put_le(hdr, mom_crc32c(0, out->data + start, out->len - start), 4);
	mom_buf_put(out, hdr, SNAP_TRAILER);
	err = out->err;
done:
	if (err != 0 && out->len > start)
		out->len = start;
	umap_fini(&w.seen);
	free(w.all);
	free(qs);
	free(ts);
	free(ss);
	free(ps);
	return err;
}

/* Restore: everything read is checked; any doubt refuses the whole snapshot. */

static int64_t
get_i64(struct mom_rd *r)
{
	return (int64_t)mom_rd_varint(r);
}

/* A string that must hold no NUL, as a new C string; NULL (r->err set) when bad. */
static char *
get_str(struct mom_rd *r, size_t max)
{
	const uint8_t *p;
	size_t         n;
	char          *s;

	p = mom_rd_bytes(r, &n);
	if (r->err || n > max || (n > 0 && memchr(p, '\0', n) != NULL)) {
		r->err = MOM_EBADDATA;
		return NULL;
	}
	if ((s = malloc(n + 1)) == NULL) {
		r->err = MOM_ENOMEM;
		return NULL;
	}
	if (n > 0)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* An optional string: *out NULL when absent; returns false when bad. */
static bool
get_opt(struct mom_rd *r, char **out)
{
	uint8_t present = mom_rd_u8(r);

	*out = NULL;
	if (r->err || present > 1) {
		r->err = r->err ? r->err : MOM_EBADDATA;
		return false;
	}
	if (present && (*out = get_str(r, MOM_NAME_MAX + MOM_ID_MAX)) == NULL)
		return false;
	return true;
}

static struct msg *
get_ref(struct mom_rd *r, const struct umap *msgs, uint8_t kind)
{
	struct msg *m = umap_get(msgs, mom_rd_varint(r));

	if (r->err || m == NULL || m->kind != kind) {
		r->err = r->err ? r->err : MOM_EBADDATA;
		return NULL;
	}
	return m;
}

/* Reads an mq into q (initialised here; the caller finalises it whatever happens). */
static int
snap_get_mq(struct mom_rd *r, const struct umap *msgs, uint8_t kind, struct mq *q,
    mq_dead_fn dead, void *arg)
{
	struct mq_config cfg;
	uint64_t         n, i;
	uint8_t          dh;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ack_wait_ms = mom_rd_varint(r);
	cfg.max_deliver = (uint32_t)mom_rd_varint_max(r, UINT32_MAX);
	cfg.ttl_ms = mom_rd_varint(r);
	cfg.max_len = mom_rd_varint(r);
	cfg.max_bytes = mom_rd_varint(r);
	dh = mom_rd_u8(r);
	cfg.drop_head = dh != 0;
	mq_init(q, &cfg, dead, arg);
	if (r->err || dh > 1 || cfg.ack_wait_ms == 0)
		return MOM_EBADDATA;
	q->st.published = mom_rd_varint(r);
	q->st.delivered = mom_rd_varint(r);
	q->st.acked = mom_rd_varint(r);
	q->st.redelivered = mom_rd_varint(r);
	q->st.dead_lettered = mom_rd_varint(r);
	q->st.expired = mom_rd_varint(r);
	q->st.dropped = mom_rd_varint(r);
	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct msg *m = get_ref(r, msgs, kind);
		uint32_t    d = (uint32_t)mom_rd_varint_max(r, UINT32_MAX);

		if (r->err)
			break;
		if (mq_restore_ready(q, m, d) != 0)
			return MOM_ENOMEM;
	}
	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		int64_t     at = get_i64(r);
		struct msg *m = get_ref(r, msgs, kind);
		uint32_t    d = (uint32_t)mom_rd_varint_max(r, UINT32_MAX);

		if (r->err)
			break;
		if (mq_restore_delayed(q, at, m, d) != 0)
			return MOM_ENOMEM;
	}
	return r->err ? MOM_EBADDATA : 0;
}

static int
snap_get_msgs(struct mom_rd *r, struct fsm *f, struct umap *msgs)
{
	uint64_t n, i;

	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct mom_pub_msg pm;
		struct msg        *m;
		uint64_t           seq = mom_rd_varint(r);
		int64_t            t = get_i64(r), exp = get_i64(r), nb = get_i64(r);

		memset(&pm, 0, sizeof(pm));
		pm.kind = mom_rd_u8(r);
		pm.payload.p = mom_rd_bytes(r, &pm.payload.n);
		pm.id.p = mom_rd_bytes(r, &pm.id.n);
		pm.headers.p = mom_rd_bytes(r, &pm.headers.n);
		pm.name.p = mom_rd_bytes(r, &pm.name.n);
		if (r->err || seq == 0 || seq >= f->next_seq || umap_get(msgs, seq) != NULL ||
		    (pm.kind != MOM_KIND_QUEUE && pm.kind != MOM_KIND_TOPIC) ||
		    pm.payload.n > MOM_PAYLOAD_LIMIT || pm.headers.n > MOM_PAYLOAD_LIMIT ||
		    pm.id.n > MOM_ID_MAX || pm.name.n > MOM_NAME_MAX ||
		    (pm.kind == MOM_KIND_QUEUE && pm.name.n != 0) ||
		    (pm.headers.n > 0 && mom_hdr_validate(pm.headers.p, pm.headers.n) != 0))
			return MOM_EBADDATA;
		if ((m = msg_new(&pm, seq, t)) == NULL)
			return MOM_ENOMEM;
		m->expires_ms = exp;
		m->not_before = nb;
		if (umap_put(msgs, seq, m) != 0) {
			msg_unref(m);
			return MOM_ENOMEM;
		}
	}
	return r->err ? MOM_EBADDATA : 0;
}

static int
snap_get_queues(struct mom_rd *r, struct fsm *f, const struct umap *msgs)
{
	uint64_t n, i;
	int      rv;

	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct queue *q;

		if ((q = calloc(1, sizeof(*q))) == NULL)
			return MOM_ENOMEM;
		q->fsm = f;
		/* An empty mq first, so that queue_free works from here on. */
		umap_init(&q->mq.leases);
		if ((q->name = get_str(r, MOM_NAME_MAX)) == NULL || !get_opt(r, &q->dead_letter) ||
		    !get_opt(r, &q->owner)) {
			queue_free(f, q);
			return r->err == MOM_ENOMEM ? MOM_ENOMEM : MOM_EBADDATA;
		}
		q->nlen = strlen(q->name);
		q->created_ms = get_i64(r);
		if (!mom_name_ok(q->name) || (q->dead_letter && !mom_name_ok(q->dead_letter)) ||
		    fsm_queue(f, q->name, q->nlen) != NULL) {
			queue_free(f, q);
			return MOM_EBADDATA;
		}
		umap_fini(&q->mq.leases);
		if ((rv = snap_get_mq(r, msgs, MOM_KIND_QUEUE, &q->mq, dead_letter, q)) != 0 ||
		    (rv = smap_put(&f->queues, q->name, q->nlen, q)) != 0) {
			queue_free(f, q);
			return rv;
		}
	}
	return r->err ? MOM_EBADDATA : 0;
}

static int
snap_get_topics(struct mom_rd *r, struct fsm *f, const struct umap *msgs)
{
	uint64_t n, i, j, nlog;

	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct topic *t;

		if ((t = calloc(1, sizeof(*t))) == NULL)
			return MOM_ENOMEM;
		if ((t->name = get_str(r, MOM_NAME_MAX)) == NULL || !get_opt(r, &t->owner)) {
			topic_free(f, t);
			return r->err == MOM_ENOMEM ? MOM_ENOMEM : MOM_EBADDATA;
		}
		t->nlen = strlen(t->name);
		t->created_ms = get_i64(r);
		t->retain_ms = mom_rd_varint(r);
		t->retain_bytes = mom_rd_varint(r);
		t->published = mom_rd_varint(r);
		if (r->err || !mom_name_ok(t->name) || fsm_topic(f, t->name, t->nlen) != NULL) {
			topic_free(f, t);
			return MOM_EBADDATA;
		}
		nlog = mom_rd_varint(r);
		for (j = 0; j < nlog && !r->err; j++) {
			struct msg *m = get_ref(r, msgs, MOM_KIND_TOPIC);

			if (m != NULL && topic_append(t, m) != 0) {
				topic_free(f, t);
				return MOM_ENOMEM;
			}
		}
		if (r->err || smap_put(&f->topics, t->name, t->nlen, t) != 0) {
			topic_free(f, t);
			return r->err ? MOM_EBADDATA : MOM_ENOMEM;
		}
	}
	return r->err ? MOM_EBADDATA : 0;
}

static int
snap_get_subs(struct mom_rd *r, struct fsm *f, const struct umap *msgs)
{
	uint64_t n, i;
	int      rv;

	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct sub *s;
		char       *pat, *name;
		size_t      plen, nlen;
		uint8_t     durable;

		if ((s = calloc(1, sizeof(*s))) == NULL)
			return MOM_ENOMEM;
		umap_init(&s->mq.leases);
		pat = get_str(r, MOM_NAME_MAX);
		name = get_str(r, MOM_NAME_MAX);
		durable = mom_rd_u8(r);
		if (pat == NULL || name == NULL || r->err || durable > 1 || !mom_pattern_ok(pat) ||
		    !mom_name_ok(name) || fsm_sub(f, pat, strlen(pat), name, strlen(name)) != NULL ||
		    !get_opt(r, &s->owner)) {
			rv = r->err == MOM_ENOMEM ? MOM_ENOMEM : MOM_EBADDATA;
			free(pat);
			free(name);
			sub_free(f, s);
			return rv;
		}
		plen = strlen(pat);
		nlen = strlen(name);
		if ((s->key = malloc(plen + nlen + 2)) == NULL) {
			free(pat);
			free(name);
			sub_free(f, s);
			return MOM_ENOMEM;
		}
		memcpy(s->key, pat, plen + 1);
		memcpy(s->key + plen + 1, name, nlen + 1);
		free(pat);
		free(name);
		s->klen = plen + 1 + nlen;
		s->pattern = s->key;
		s->name = s->key + plen + 1;
		s->durable = durable != 0;
		s->consumer = mom_rd_varint(r);
		s->last_seen = get_i64(r);
		s->created_ms = get_i64(r);
		umap_fini(&s->mq.leases);
		if ((rv = snap_get_mq(r, msgs, MOM_KIND_TOPIC, &s->mq, NULL, NULL)) != 0 ||
		    (rv = smap_put(&f->subs, s->key, s->klen, s)) != 0) {
			sub_free(f, s);
			return rv;
		}
	}
	return r->err ? MOM_EBADDATA : 0;
}

static int
snap_get_dedupe(struct mom_rd *r, struct fsm *f)
{
	uint64_t n, i, j;

	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct producer *p;
		uint64_t         id = mom_rd_varint(r);

		if (r->err || id == 0 || umap_get(&f->producers, id) != NULL)
			return MOM_EBADDATA;
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return MOM_ENOMEM;
		p->last_ms = get_i64(r);
		p->n = (size_t)mom_rd_varint_max(r, PRODUCER_RANGES);
		for (j = 0; j < p->n && !r->err; j++) {
			p->lo[j] = mom_rd_varint(r);
			p->hi[j] = mom_rd_varint(r);
			/* Sorted, disjoint, not touching: what producer_add keeps. */
			if (p->lo[j] >= p->hi[j] || (j > 0 && p->lo[j] <= p->hi[j - 1]))
				r->err = MOM_EBADDATA;
		}
		if (r->err) {
			free(p);
			return MOM_EBADDATA;
		}
		if (umap_put(&f->producers, id, p) != 0) {
			free(p);
			return MOM_ENOMEM;
		}
	}
	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		struct idrec  *rec;
		int64_t        exp = get_i64(r);
		const uint8_t *key;
		size_t         klen;

		key = mom_rd_bytes(r, &klen);
		if (r->err || klen < 2 || klen > MOM_NAME_MAX + MOM_ID_MAX + 2 ||
		    smap_get(&f->ids, (const char *)key, klen) != NULL)
			return MOM_EBADDATA;
		if ((rec = malloc(sizeof(*rec) + klen)) == NULL)
			return MOM_ENOMEM;
		memcpy(rec->key, key, klen);
		rec->klen = klen;
		rec->expires = exp;
		rec->next = NULL;
		if (smap_put(&f->ids, rec->key, klen, rec) != 0) {
			free(rec);
			return MOM_ENOMEM;
		}
		if (f->ids_tail)
			f->ids_tail->next = rec;
		else
			f->ids_head = rec;
		f->ids_tail = rec;
	}
	return r->err ? MOM_EBADDATA : 0;
}

/* Parses a whole snapshot into the empty fsm n. */
static int
snap_parse(struct fsm *n, const uint8_t *b, size_t len)
{
	struct mom_rd r;
	struct umap   msgs;
	size_t        it, body;
	uint64_t      k;
	void         *v;
	int           rv;

	if (len < SNAP_HDR + SNAP_TRAILER || memcmp(b, SNAP_MAGIC, 4) != 0 ||
	    get_le(b + 4, 4) != SNAP_VERSION)
		return MOM_EBADDATA;
	body = len - SNAP_HDR - SNAP_TRAILER;
	if (get_le(b + 8, 8) != body ||
	    mom_crc32c(0, b, len - SNAP_TRAILER) != (uint32_t)get_le(b + len - SNAP_TRAILER, 4))
		return MOM_EBADDATA;
	mom_rd_init(&r, b + SNAP_HDR, body);
	n->next_seq = mom_rd_varint(&r);
	n->last_time = get_i64(&r);
	n->published = mom_rd_varint(&r);
	n->duplicates = mom_rd_varint(&r);
	n->dead_dropped = mom_rd_varint(&r);
	if (r.err || n->next_seq == 0)
		return MOM_EBADDATA;
	umap_init(&msgs);
	if ((rv = snap_get_msgs(&r, n, &msgs)) == 0 &&
	    (rv = snap_get_queues(&r, n, &msgs)) == 0 &&
	    (rv = snap_get_topics(&r, n, &msgs)) == 0 &&
	    (rv = snap_get_subs(&r, n, &msgs)) == 0 &&
	    (rv = snap_get_dedupe(&r, n)) == 0 && (r.err || mom_rd_left(&r) != 0))
		rv = MOM_EBADDATA;
	/* The table's references go; the structures hold their own. */
	for (it = 0; umap_next(&msgs, &it, &k, &v);)
		msg_unref(v);
	umap_fini(&msgs);
	if (rv != 0)
		return rv;
	/* Subscriptions serve every topic their pattern matches. */
	for (it = 0; smap_next(&n->topics, &it, &v);) {
		struct topic *t = v;
		size_t        is;
		void         *vs;

		for (is = 0; smap_next(&n->subs, &is, &vs);)
			if (mom_match(((struct sub *)vs)->pattern, t->name) &&
			    topic_link(t, vs) != 0)
				return MOM_ENOMEM;
	}
	return 0;
}

int
fsm_restore(struct fsm *f, const uint8_t *b, size_t len)
{
	struct fsm *n;
	size_t      it;
	void       *v;
	int         rv;

	if ((n = fsm_new(&f->cfg)) == NULL)
		return MOM_ENOMEM;
	if ((rv = snap_parse(n, b, len)) != 0) {
		fsm_free(n);
		return rv;
	}
	/* Everything checked: the old state goes (the core hears of each mq), the new moves in. */
	fsm_clear(f);
	f->queues = n->queues;
	f->topics = n->topics;
	f->subs = n->subs;
	f->producers = n->producers;
	f->ids = n->ids;
	f->ids_head = n->ids_head;
	f->ids_tail = n->ids_tail;
	f->next_seq = n->next_seq;
	f->last_time = n->last_time;
	f->published = n->published;
	f->duplicates = n->duplicates;
	f->dead_dropped = n->dead_dropped;
	f->touched = NULL;
	for (it = 0; smap_next(&f->queues, &it, &v);)
		((struct queue *)v)->fsm = f;
	attach_all(f);
	free(n);
	return 0;
}

/*
 * fsm.c: the state machine's objects and the commands that move messages:
 * fsm_apply's dispatch, publish, settle and tick (see fsm.h).  Admin
 * commands are in fsm_admin.c, snapshots in fsm_snap.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "state/fsm.h"
#include "state/fsm_int.h"
#include "mom.h"
#include "wire.h"

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

void
fsm_clear(struct fsm *f)
{
	size_t        it;
	void         *v;
	uint64_t      k;
	struct idrec *r, *next;

	/* Subscriptions first: topics point at them. */
	for (it = 0; smap_next(&f->subs, &it, &v);)
		fsm_sub_free(f, v);
	for (it = 0; smap_next(&f->topics, &it, &v);)
		fsm_topic_free(f, v);
	for (it = 0; smap_next(&f->queues, &it, &v);)
		fsm_queue_free(f, v);
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
	f->prod_head = f->prod_tail = NULL;
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

void
fsm_fail(struct fsm_result *res, int status, const char *fmt, ...)
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

void
fsm_touch(struct fsm *f, struct mq *q)
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

int
fsm_id_append(struct fsm *f, const void *key, size_t klen, int64_t expires)
{
	struct idrec *r;

	if ((r = malloc(sizeof(*r) + klen)) == NULL)
		return MOM_ENOMEM;
	memcpy(r->key, key, klen);
	r->klen = klen;
	r->expires = expires;
	r->next = NULL;
	if (smap_put(&f->ids, r->key, klen, r) != 0) {
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

static int
id_add(struct fsm *f, const struct mom_pub_msg *m, int64_t now)
{
	char   key[MOM_NAME_MAX + MOM_ID_MAX + 2];
	size_t n = id_key(key, m);

	return fsm_id_append(f, key, n, mom_time_add(now, f->cfg.dedupe_window_ms));
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

int
fsm_topic_append(struct topic *t, struct msg *m)
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

int
fsm_topic_link(struct topic *t, struct sub *s)
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

void
fsm_topic_free(struct fsm *f, struct topic *t)
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

void
fsm_queue_free(struct fsm *f, struct queue *q)
{
	gone(f, &q->mq);
	mq_fini(&q->mq);
	free(q->dead_letter);
	free(q->owner);
	free(q->name);
	free(q);
}

void
fsm_sub_free(struct fsm *f, struct sub *s)
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

int
fsm_sub_key(struct sub *s, const char *pat, size_t plen, const char *name, size_t nlen)
{
	if ((s->key = malloc(plen + nlen + 2)) == NULL)
		return MOM_ENOMEM;
	memcpy(s->key, pat, plen);
	s->key[plen] = '\0';
	memcpy(s->key + plen + 1, name, nlen);
	s->key[plen + 1 + nlen] = '\0';
	s->klen = plen + 1 + nlen;
	s->pattern = s->key;
	s->name = s->key + plen + 1;
	return 0;
}

/*
 * m again with the headers of its death (a header block from the command):
 * those of an earlier death (Mom-Dead-*) give way, the publisher's stay,
 * and it no longer expires by its own TTL (which may be why it died).
 * Consumes the reference to m; if the copy cannot be made, m as it was.
 */
static struct msg *
dead_with_why(struct msg *m, const uint8_t *why, size_t wlen)
{
	struct mom_pub_msg  pm;
	struct mom_hdr_iter it;
	struct mom_slice    k, v;
	struct mom_buf      pairs, h;
	struct mom_rd       r;
	uint64_t            n;
	size_t              plen = strlen(FSM_HDR_DEAD_PREFIX);
	struct msg         *d = NULL;

	mom_rd_init(&r, why, wlen);
	n = mom_rd_varint(&r);
	mom_buf_init(&pairs);
	mom_hdr_iter_init(&it, msg_hdr(m), m->hdr_len);
	while (m->hdr_len > 0 && mom_hdr_next(&it, &k, &v)) {
		if (k.n >= plen && strncasecmp((const char *)k.p, FSM_HDR_DEAD_PREFIX, plen) == 0)
			continue;
		mom_buf_put_bytes(&pairs, k.p, k.n);
		mom_buf_put_bytes(&pairs, v.p, v.n);
		n++;
	}
	mom_buf_init(&h);
	mom_buf_put_varint(&h, n);
	mom_buf_put(&h, pairs.data, pairs.len);
	mom_buf_put(&h, why + r.off, wlen - r.off);
	memset(&pm, 0, sizeof(pm));
	pm.kind = m->kind;
	pm.id.p = msg_id(m);
	pm.id.n = m->id_len;
	pm.payload.p = msg_payload(m);
	pm.payload.n = m->len;
	pm.headers.p = h.data;
	pm.headers.n = h.len;
	if (!r.err && !pairs.err && !h.err && h.len <= MOM_HEADERS_MAX &&
	    (d = msg_new(&pm, m->seq, m->time_ms)) != NULL)
		msg_unref(m);
	mom_buf_fini(&pairs);
	mom_buf_fini(&h);
	return d != NULL ? d : m;
}

/*
 * Where a message that used up its deliveries goes: the queue's dead-letter
 * queue (created now if it is missing: fsm_queue_implicit), otherwise, for
 * a queue without one, nowhere (counted).
 */
void
fsm_dead_letter(void *arg, struct mq *from, struct msg *m, uint32_t deliveries)
{
	struct queue *q = arg, *dlq = NULL;

	(void)from;
	(void)deliveries;
	if (q->dead_letter != NULL &&
	    (dlq = fsm_queue(q->fsm, q->dead_letter, strlen(q->dead_letter))) == NULL)
		dlq = fsm_queue_implicit(q->fsm, q->dead_letter, q->owner, q->fsm->last_time);
	if (dlq == NULL || dlq == q) {
		q->fsm->dead_dropped++;
		msg_unref(m);
		return;
	}
	if (q->fsm->dead_hdr != NULL)
		m = dead_with_why(m, q->fsm->dead_hdr, q->fsm->dead_hdr_len);
	/* A dead letter is kept whatever the dead-letter queue's limits. */
	if (mq_push(&dlq->mq, m, q->fsm->last_time) == 0)
		fsm_touch(q->fsm, &dlq->mq);
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

void
fsm_attach_queue(struct fsm *f, struct queue *q)
{
	mq_set_settle(&q->mq, f->settle ? queue_settle : NULL, q);
}

void
fsm_attach_sub(struct fsm *f, struct sub *s)
{
	s->fsm = f;
	mq_set_settle(&s->mq, f->settle ? sub_settle : NULL, s);
}

void
fsm_attach_all(struct fsm *f)
{
	size_t it;
	void  *v;

	for (it = 0; smap_next(&f->queues, &it, &v);)
		fsm_attach_queue(f, v);
	for (it = 0; smap_next(&f->subs, &it, &v);)
		fsm_attach_sub(f, v);
}

void
fsm_set_settle(struct fsm *f, fsm_settle_fn fn, void *arg)
{
	f->settle = fn;
	f->settle_arg = arg;
	fsm_attach_all(f);
}

void
fsm_release_all(struct fsm *f)
{
	struct queue *q;
	struct sub   *s;
	size_t        it;

	for (it = 0; (q = fsm_queue_next(f, &it)) != NULL;)
		mq_release_all(&q->mq);
	for (it = 0; (s = fsm_sub_next(f, &it)) != NULL;)
		mq_release_all(&s->mq);
}

/* Publish. */

/* Seen before: by the producer's sequence number or by the publisher id. */
static bool
publish_dup(struct fsm *f, const struct producer *p, uint64_t seq,
    const struct mom_pub_msg *m, int64_t now)
{
	return (p && producer_seen(p, seq)) || (m->id.n && id_seen(f, m, now));
}

/*
 * Pass 1 checks the whole batch (targets exist, room left) so that a
 * refused batch stores nothing.  Each queue's pend_n and pend_b count what
 * the batch would add to it.  0, or the status it set in res.
 */
static int
publish_check(struct fsm *f, struct mom_rd *r, const struct mom_pub_batch *b,
    const struct producer *p, int64_t now, struct fsm_result *res)
{
	struct mom_pub_msg m;
	struct queue      *q;
	uint64_t           i;
	int                rv;

	for (i = 0; i < b->count; i++) {
		if ((rv = mom_pub_decode_msg(r, b, &m, f->cfg.max_payload)) != 0) {
			fsm_fail(res, rv, "%s", rv == MOM_ETOOBIG ?
			    "message larger than the broker's limit" : "malformed message");
			return rv;
		}
		if (m.kind == MOM_KIND_QUEUE) {
			if ((q = fsm_queue(f, (const char *)m.name.p, m.name.n)) == NULL) {
				fsm_fail(res, MOM_ENOENT, "no such queue '%.*s'", (int)m.name.n,
				    m.name.p);
				return MOM_ENOENT;
			}
		} else if (fsm_topic(f, (const char *)m.name.p, m.name.n) == NULL) {
			fsm_fail(res, MOM_ENOENT, "no such topic '%.*s'", (int)m.name.n, m.name.p);
			return MOM_ENOENT;
		} else
			q = NULL;
		if (publish_dup(f, p, b->first_seq + i, &m, now) || q == NULL)
			continue;
		q->pend_n++;
		q->pend_b += m.payload.n;
		if (!mq_fits(&q->mq, q->pend_n, q->pend_b)) {
			if (q->mq.cfg.max_len && mq_count(&q->mq) + q->pend_n > q->mq.cfg.max_len)
				fsm_fail(res, MOM_EFULL, "queue '%s' is full (max-len %llu)",
				    q->name, (unsigned long long)q->mq.cfg.max_len);
			else
				fsm_fail(res, MOM_EFULL, "queue '%s' is full (max-bytes %llu)",
				    q->name, (unsigned long long)q->mq.cfg.max_bytes);
			return MOM_EFULL;
		}
	}
	return 0;
}

/* A refused batch: resets the scratch counters pass 1 set. */
static void
publish_undo(struct fsm *f, struct mom_rd *r, const struct mom_pub_batch *b)
{
	struct mom_pub_msg m;
	struct queue      *q;

	while (mom_pub_decode_msg(r, b, &m, SIZE_MAX) == 0)
		if (m.kind == MOM_KIND_QUEUE &&
		    (q = fsm_queue(f, (const char *)m.name.p, m.name.n)) != NULL)
			q->pend_n = q->pend_b = 0;
}

/* Stores one new message in its queue, or in its topic and the topic's subscriptions. */
static int
publish_store(struct fsm *f, const struct mom_pub_msg *m, int64_t now)
{
	struct msg   *msg;
	struct queue *q;
	struct topic *t;
	size_t        k;

	if ((msg = msg_new(m, f->next_seq++, now)) == NULL)
		return MOM_ENOMEM;
	if (m->kind == MOM_KIND_QUEUE) {
		q = fsm_queue(f, (const char *)m->name.p, m->name.n);
		q->pend_n = q->pend_b = 0;
		if (mq_push(&q->mq, msg, now) != 0)
			return MOM_ENOMEM;
		fsm_touch(f, &q->mq);
		return 0;
	}
	t = fsm_topic(f, (const char *)m->name.p, m->name.n);
	t->published++;
	if (fsm_topic_append(t, msg) != 0) {
		msg_unref(msg);
		return MOM_ENOMEM;
	}
	for (k = 0; k < t->nsubs; k++) {
		if (mq_push(&t->subs[k]->mq, msg_ref(msg), now) == 0)
			fsm_touch(f, &t->subs[k]->mq);
	}
	msg_unref(msg);
	topic_trim(t, now);
	return 0;
}

/* Pass 2 stores what is not a duplicate (the batch passed pass 1).  0 or MOM_ENOMEM. */
static int
publish_all(struct fsm *f, struct mom_rd *r, const struct mom_pub_batch *b,
    const struct producer *p, int64_t now, struct fsm_result *res)
{
	struct mom_pub_msg m;
	uint64_t           i;

	for (i = 0; i < b->count; i++) {
		(void)mom_pub_decode_msg(r, b, &m, f->cfg.max_payload);
		if (publish_dup(f, p, b->first_seq + i, &m, now)) {
			res->duplicates++;
			continue;
		}
		if (m.id.n && id_add(f, &m, now) != 0)
			return MOM_ENOMEM;
		if (publish_store(f, &m, now) != 0)
			return MOM_ENOMEM;
		res->stored++;
	}
	return 0;
}

void
fsm_producer_touch(struct fsm *f, struct producer *p)
{
	if (f->prod_tail == p)
		return;
	if (p->prev != NULL || f->prod_head == p) {
		/* On the list, not at its tail: take it out. */
		if (p->prev != NULL)
			p->prev->next = p->next;
		else
			f->prod_head = p->next;
		p->next->prev = p->prev;
	}
	p->prev = f->prod_tail;
	p->next = NULL;
	if (f->prod_tail != NULL)
		f->prod_tail->next = p;
	else
		f->prod_head = p;
	f->prod_tail = p;
}

/* The producer has now sent the batch's range (remembered if memory allows). */
static void
publish_note_producer(struct fsm *f, const struct mom_pub_batch *b, struct producer *p,
    int64_t now)
{
	if (p == NULL && (p = calloc(1, sizeof(*p))) != NULL &&
	    umap_put(&f->producers, b->producer, p) != 0) {
		free(p);
		p = NULL;
	}
	if (p != NULL) {
		producer_add(p, b->first_seq, b->first_seq + b->count);
		p->id = b->producer;
		/* now never runs backwards (fsm_apply): the tail stays the latest. */
		p->last_ms = now;
		fsm_producer_touch(f, p);
	}
}

static void
apply_publish(struct fsm *f, const uint8_t *body, size_t len, int64_t now,
    struct fsm_result *res)
{
	struct mom_rd        r;
	struct mom_pub_batch b;
	struct producer     *p = NULL;
	size_t               start;
	int                  rv;

	mom_rd_init(&r, body, len);
	if ((rv = mom_pub_decode_begin(&r, &b)) != 0) {
		fsm_fail(res, rv, "malformed publish request");
		return;
	}
	start = r.off;
	if (b.producer != 0)
		p = umap_get(&f->producers, b.producer);
	if (publish_check(f, &r, &b, p, now, res) != 0) {
		mom_rd_init(&r, body, len);
		r.off = start;
		publish_undo(f, &r, &b);
		return;
	}
	mom_rd_init(&r, body, len);
	r.off = start;
	if (publish_all(f, &r, &b, p, now, res) != 0) {
		fsm_fail(res, MOM_ENOMEM, "out of memory");
		return;
	}
	if (b.producer != 0)
		publish_note_producer(f, &b, p, now);
	f->published += res->stored;
	f->duplicates += res->duplicates;
}

/*
 * Settlements: count, then each: u8 kind (1 queue, 2 subscription), the
 * queue's name or the subscription's pattern and name, seq, u8 how.  One
 * whose queue or message is gone meanwhile is skipped.  how SETTLE_DEAD_HDR
 * (a log of before has none) is MQ_DEAD followed by the dead letter's
 * header block (bytes).
 */
#define SETTLE_DEAD_HDR 5
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

void
fsm_settle_put_dead(struct mom_buf *b, const struct queue *q, uint64_t seq, const uint8_t *hdr,
    size_t hdr_len)
{
	fsm_settle_put(b, q, NULL, seq, SETTLE_DEAD_HDR);
	mom_buf_put_bytes(b, hdr, hdr_len);
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
		const uint8_t *hdr = NULL;
		size_t         hlen = 0;

		seq = mom_rd_varint(&r);
		how = mom_rd_u8(&r);
		if (how == SETTLE_DEAD_HDR && kind == 1) {
			hdr = mom_rd_bytes(&r, &hlen);
			how = MQ_DEAD;
			if (r.err || mom_hdr_validate(hdr, hlen) != 0)
				break;
		}
		if (r.err || (kind != 1 && kind != 2) || how < MQ_ACK || how > MQ_DROP)
			break;
		if (kind == 1) {
			struct queue *qu = fsm_queue(f, (const char *)a, alen);

			q = qu ? &qu->mq : NULL;
		} else {
			struct sub *su = fsm_sub(f, (const char *)a, alen, (const char *)b, blen);

			q = su ? &su->mq : NULL;
		}
		if (q != NULL) {
			f->dead_hdr = hdr;
			f->dead_hdr_len = hlen;
			(void)mq_settle(q, seq, how);
			f->dead_hdr = NULL;
			f->dead_hdr_len = 0;
		}
	}
	if (r.err || i < n)
		fsm_fail(res, MOM_EPROTO, "malformed settle command");
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
		fsm_fail(res, MOM_EPROTO, "malformed command");
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
		fsm_apply_admin(f, cmd + r.off, len - r.off, now, res);
		break;
	case CMD_SETTLE:
		apply_settle(f, cmd + r.off, len - r.off, res);
		break;
	case CMD_TICK:
		fsm_tick(f, now);
		break;
	default:
		fsm_fail(res, MOM_EPROTO, "unknown command type %u", type);
	}
}

bool
fsm_cmd_grows(const uint8_t *cmd, size_t len)
{
	struct mom_rd r;
	json_t       *o;
	const char   *op;
	size_t        n;
	bool          grows;
	uint8_t       type;

	mom_rd_init(&r, cmd, len);
	type = mom_rd_u8(&r);
	(void)mom_rd_varint(&r);
	if (r.err)
		return false;
	if (type == CMD_PUBLISH)
		return true;
	if (type != CMD_ADMIN)
		return false;
	if ((o = json_loadb((const char *)cmd + r.off, len - r.off, 0, NULL)) == NULL)
		return false;
	op = json_string_value(json_object_get(o, "op"));
	n = op != NULL ? strlen(op) : 0;
	grows = n > 7 && strcmp(op + n - 7, ".create") == 0;
	json_decref(o);
	return grows;
}

uint64_t
fsm_cmd_messages(const uint8_t *cmd, size_t len)
{
	struct mom_rd        r;
	struct mom_pub_batch b;

	mom_rd_init(&r, cmd, len);
	if (mom_rd_u8(&r) != CMD_PUBLISH)
		return 0;
	(void)mom_rd_varint(&r);
	if (r.err || mom_pub_decode_begin(&r, &b) != 0)
		return 0;
	return b.count;
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
	size_t it;
	void  *v;

	if (f->ids_head && f->ids_head->expires <= now)
		return true;
	if (f->prod_head && now > mom_time_add(f->prod_head->last_ms, f->cfg.dedupe_window_ms))
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
	size_t           it;
	void            *v;
	struct producer *p;

	while (f->ids_head && f->ids_head->expires <= now) {
		struct idrec *r = f->ids_head;

		/* A newer record of the same id may have replaced this one. */
		if (smap_get(&f->ids, r->key, r->klen) == r)
			smap_del(&f->ids, r->key, r->klen);
		if ((f->ids_head = r->next) == NULL)
			f->ids_tail = NULL;
		free(r);
	}
	/* Idle producers, the least recently heard first: only what expires is visited. */
	while ((p = f->prod_head) != NULL && now > mom_time_add(p->last_ms, f->cfg.dedupe_window_ms)) {
		if ((f->prod_head = p->next) != NULL)
			f->prod_head->prev = NULL;
		else
			f->prod_tail = NULL;
		umap_del(&f->producers, p->id);
		free(p);
	}
	for (it = 0; smap_next(&f->topics, &it, &v);)
		topic_trim(v, now);
	return f->ids_head ? f->ids_head->expires : INT64_MAX;
}

struct queue *
fsm_queue_next(struct fsm *f, size_t *it)
{
	void *v;

	return smap_next(&f->queues, it, &v) ? v : NULL;
}

struct topic *
fsm_topic_next(struct fsm *f, size_t *it)
{
	void *v;

	return smap_next(&f->topics, it, &v) ? v : NULL;
}

struct sub *
fsm_sub_next(struct fsm *f, size_t *it)
{
	void *v;

	return smap_next(&f->subs, it, &v) ? v : NULL;
}

static void
stats_add(struct fsm_stats *st, const struct mq *q, bool queue)
{
	st->messages += mq_count(q);
	st->in_flight += q->nleased;
	st->delivered += q->st.delivered;
	st->acked += q->st.acked;
	st->redelivered += q->st.redelivered;
	if (queue) {
		st->bytes += q->bytes;
		st->dead_lettered += q->st.dead_lettered;
		st->expired += q->st.expired;
	}
}

void
fsm_stats(struct fsm *f, struct fsm_stats *st)
{
	size_t        it;
	struct queue *q;
	struct sub   *s;

	memset(st, 0, sizeof(*st));
	st->queues = f->queues.len;
	st->topics = f->topics.len;
	st->subs = f->subs.len;
	st->published = f->published;
	st->duplicates = f->duplicates;
	st->dead_dropped = f->dead_dropped;
	for (it = 0; (q = fsm_queue_next(f, &it)) != NULL;)
		stats_add(st, &q->mq, true);
	for (it = 0; (s = fsm_sub_next(f, &it)) != NULL;)
		stats_add(st, &s->mq, false);
}

void
fsm_set_gone(struct fsm *f, fsm_gone_fn fn, void *arg)
{
	f->gone = fn;
	f->gone_arg = arg;
}

struct mq *
fsm_touched_pop(struct fsm *f)
{
	struct mq *q = f->touched;

	if (q != NULL) {
		f->touched = q->touched_next;
		q->touched = false;
	}
	return q;
}

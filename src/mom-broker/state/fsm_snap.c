/*
 * fsm_snap.c: snapshots of the state machine: fsm_snapshot writes the
 * whole replicated state in one canonical byte string, fsm_restore checks
 * and loads one (see fsm.h; the format is below).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "state/fsm.h"
#include "state/fsm_int.h"
#include "crc32c.h"
#include "le.h"
#include "mom.h"
#include "names.h"
#include "wire.h"

/*
 * Snapshots.
 *
 * Layout (integers are LEB128 varints unless said otherwise, strings are
 * varint length + bytes, an optional string is u8 present + string):
 *
 *	"MSNP", u32 LE version (2), u64 LE body length, body, u32 LE CRC-32C
 *	of everything before it.  Version 1 (brokers of before) is read too:
 *	its queues have no idle_expire_ms (0, never).
 *
 * body:
 *	next_seq, last_time, published, duplicates, dead_dropped
 *	nmsgs x message (in seq order): seq, time_ms, expires_ms, not_before,
 *	    u8 kind, payload, id, headers, topic name ("" for queue messages)
 *	nqueues x (by name): name, opt dead_letter, opt owner, created_ms,
 *	    idle_expire_ms (version 2), mq
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
 * written as ready, as if every lease had expired at once (merged by seq
 * before newer ready ones, as mq_tick gives them back), with its delivery
 * count kept, so after a restore it is simply delivered again; no
 * redelivery is counted for it.
 * Receipts, waiters and the broker's config are not part of the snapshot:
 * the restored fsm keeps its own config (dedupe window, retention
 * defaults, max payload).  Subscriptions are linked to matching topics
 * again on restore.
 */
#define SNAP_MAGIC   "MSNP"
#define SNAP_VERSION 2u
#define SNAP_HDR     16
#define SNAP_TRAILER 4

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

/* By id: producers live in a umap, whose order depends on history. */
struct prodent {
	uint64_t         id;
	struct producer *p;
};

/* What a snapshot writes, collected and sorted before writing. */
struct snapw {
	struct umap      seen;
	struct msg     **all;    /* every distinct message, by seq */
	size_t           n, cap;
	struct queue   **qs;     /* by name */
	struct topic   **ts;     /* by name */
	struct sub     **ss;     /* by pattern, name */
	struct prodent  *ps;     /* by id */
	size_t           np;
	int              err;
};

static void
snap_note(struct snapw *w, struct msg *m)
{
	/* Every holder counts a reference: one alone (a queue's) meets it once. */
	bool shared = m->refs > 1;

	if (w->err != 0 || (shared && umap_get(&w->seen, m->seq) != NULL))
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
	if (shared && umap_put(&w->seen, m->seq, m) != 0) {
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
put_qent(void *arg, const struct qent *e)
{
	struct mom_buf *b = arg;

	mom_buf_put_varint(b, e->m->seq);
	mom_buf_put_varint(b, e->deliveries);
}

static void
snap_put_mq(struct mom_buf *b, const struct mq *q)
{
	size_t i;

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
	mq_walk_ready(q, put_qent, b);
	/* The heap's array order: pushed back in that order it is the same heap. */
	mom_buf_put_varint(b, q->dlen);
	for (i = 0; i < q->dlen; i++) {
		put_i64(b, q->delayed[i].at);
		mom_buf_put_varint(b, q->delayed[i].e.m->seq);
		mom_buf_put_varint(b, q->delayed[i].e.deliveries);
	}
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

/*
 * Sorts the objects and notes every message they hold (in seq order), in
 * w, which the caller finalises whatever happens.  0 or MOM_ENOMEM.
 */
static int
snap_collect(struct snapw *w, const struct fsm *f)
{
	size_t   i, j, it;
	uint64_t k;
	void    *v;

	memset(w, 0, sizeof(*w));
	umap_init(&w->seen);
	w->qs = (struct queue **)smap_values(&f->queues, cmp_queue, &w->err);
	w->ts = (struct topic **)smap_values(&f->topics, cmp_topic, &w->err);
	w->ss = (struct sub **)smap_values(&f->subs, cmp_sub, &w->err);
	if (f->producers.len > 0 && (w->ps = malloc(f->producers.len * sizeof(*w->ps))) == NULL)
		w->err = MOM_ENOMEM;
	if (w->err != 0)
		return w->err;
	for (it = 0; umap_next(&f->producers, &it, &k, &v);) {
		w->ps[w->np].id = k;
		w->ps[w->np++].p = v;
	}
	if (w->np > 0)
		qsort(w->ps, w->np, sizeof(*w->ps), cmp_prod);

	for (i = 0; i < f->queues.len; i++)
		snap_note_mq(w, &w->qs[i]->mq);
	for (i = 0; i < f->topics.len; i++)
		for (j = 0; j < w->ts[i]->llen; j++)
			snap_note(w, w->ts[i]->log[(w->ts[i]->lhead + j) & (w->ts[i]->lcap - 1)]);
	for (i = 0; i < f->subs.len; i++)
		snap_note_mq(w, &w->ss[i]->mq);
	if (w->err == 0 && w->n > 0)
		qsort(w->all, w->n, sizeof(*w->all), msg_cmp_seq);
	return w->err;
}

static void
snap_wfini(struct snapw *w)
{
	umap_fini(&w->seen);
	free(w->all);
	free(w->qs);
	free(w->ts);
	free(w->ss);
	free(w->ps);
}

static void
snap_put_msgs(struct mom_buf *out, struct msg *const *all, size_t n)
{
	size_t i;

	mom_buf_put_varint(out, n);
	for (i = 0; i < n; i++) {
		const struct msg *m = all[i];

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
}

static void
snap_put_queues(struct mom_buf *out, struct queue *const *qs, size_t n)
{
	size_t i;

	mom_buf_put_varint(out, n);
	for (i = 0; i < n; i++) {
		const struct queue *q = qs[i];

		mom_buf_put_bytes(out, q->name, q->nlen);
		put_opt(out, q->dead_letter);
		put_opt(out, q->owner);
		put_i64(out, q->created_ms);
		mom_buf_put_varint(out, q->idle_expire_ms);
		snap_put_mq(out, &q->mq);
	}
}

static void
snap_put_topics(struct mom_buf *out, struct topic *const *ts, size_t n)
{
	size_t i, j;

	mom_buf_put_varint(out, n);
	for (i = 0; i < n; i++) {
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
}

static void
snap_put_subs(struct mom_buf *out, struct sub *const *ss, size_t n)
{
	size_t i;

	mom_buf_put_varint(out, n);
	for (i = 0; i < n; i++) {
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
}

/* The de-duplication state: producers' ranges, then the id window. */
static void
snap_put_dedupe(struct mom_buf *out, const struct fsm *f, const struct snapw *w)
{
	const struct idrec *r;
	size_t              i, j, n;

	mom_buf_put_varint(out, w->np);
	for (i = 0; i < w->np; i++) {
		const struct producer *p = w->ps[i].p;

		mom_buf_put_varint(out, w->ps[i].id);
		put_i64(out, p->last_ms);
		mom_buf_put_varint(out, p->n);
		for (j = 0; j < p->n; j++) {
			mom_buf_put_varint(out, p->lo[j]);
			mom_buf_put_varint(out, p->hi[j]);
		}
	}

	/* Only the records the window still uses: a replaced one is dead weight. */
	for (n = 0, r = f->ids_head; r; r = r->next)
		n += smap_get(&f->ids, r->key, r->klen) == r;
	mom_buf_put_varint(out, n);
	for (r = f->ids_head; r; r = r->next) {
		if (smap_get(&f->ids, r->key, r->klen) != r)
			continue;
		put_i64(out, r->expires);
		mom_buf_put_bytes(out, r->key, r->klen);
	}
}

/* Fills in the header reserved at start and appends the CRC.  0 or out's error. */
static int
snap_seal(struct mom_buf *out, size_t start)
{
	uint8_t crc[SNAP_TRAILER];

	if (out->err != 0)
		return out->err;
	memcpy(out->data + start, SNAP_MAGIC, 4);
	mom_le_put32(out->data + start + 4, SNAP_VERSION);
	mom_le_put64(out->data + start + 8, out->len - start - SNAP_HDR);
	mom_le_put32(crc, mom_crc32c(0, out->data + start, out->len - start));
	mom_buf_put(out, crc, SNAP_TRAILER);
	return out->err;
}

/*
 * A snapshot in two halves (fsm.h): begin, on the owner's thread, writes
 * everything but the messages into head and tail and holds a reference
 * on each message; write, on any thread, puts the messages between them.
 */
struct fsm_snap {
	struct mom_buf head;  /* the scalars */
	struct mom_buf tail;  /* queues, topics, subscriptions, de-duplication */
	struct msg   **msgs;  /* referenced, by seq */
	size_t         n;
	uint64_t       msg_bytes; /* what the messages take in the snapshot */
};

int
fsm_snap_begin(const struct fsm *f, struct fsm_snap **out)
{
	struct fsm_snap *s;
	struct snapw     w;
	size_t           i;
	int              err;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return MOM_ENOMEM;
	mom_buf_init(&s->head);
	mom_buf_init(&s->tail);
	if ((err = snap_collect(&w, f)) == 0) {
		mom_buf_put_varint(&s->head, f->next_seq);
		put_i64(&s->head, f->last_time);
		mom_buf_put_varint(&s->head, f->published);
		mom_buf_put_varint(&s->head, f->duplicates);
		mom_buf_put_varint(&s->head, f->dead_dropped);
		snap_put_queues(&s->tail, w.qs, f->queues.len);
		snap_put_topics(&s->tail, w.ts, f->topics.len);
		snap_put_subs(&s->tail, w.ss, f->subs.len);
		snap_put_dedupe(&s->tail, f, &w);
		err = s->head.err ? s->head.err : s->tail.err;
	}
	if (err == 0) {
		/* The array passes to s: its messages stay alive until fsm_snap_end. */
		s->msgs = w.all;
		s->n = w.n;
		w.all = NULL;
		for (i = 0; i < s->n; i++) {
			const struct msg *m = msg_ref(s->msgs[i]);

			s->msg_bytes += mom_varint_len(m->seq) + 3 * 10 + 1 +
			    mom_varint_len(m->len) + m->len + mom_varint_len(m->id_len) +
			    m->id_len + mom_varint_len(m->hdr_len) + m->hdr_len +
			    mom_varint_len(m->name_len) + m->name_len;
		}
	}
	snap_wfini(&w);
	if (err != 0) {
		fsm_snap_end(s);
		return err;
	}
	*out = s;
	return 0;
}

int
fsm_snap_write(const struct fsm_snap *s, struct mom_buf *out)
{
	size_t  start = out->len;
	uint8_t hdr[SNAP_HDR];

	if (mom_buf_reserve(out, fsm_snap_size(s)) != 0)
		return MOM_ENOMEM;
	memset(hdr, 0, sizeof(hdr));
	mom_buf_put(out, hdr, sizeof(hdr));
	mom_buf_put(out, s->head.data, s->head.len);
	snap_put_msgs(out, s->msgs, s->n);
	mom_buf_put(out, s->tail.data, s->tail.len);
	if (snap_seal(out, start) != 0) {
		if (out->len > start)
			out->len = start;
		return MOM_ENOMEM;
	}
	return 0;
}

uint64_t
fsm_snap_size(const struct fsm_snap *s)
{
	return SNAP_HDR + s->head.len + mom_varint_len(s->n) + s->msg_bytes + s->tail.len +
	    SNAP_TRAILER;
}

void
fsm_snap_end(struct fsm_snap *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		msg_unref(s->msgs[i]);
	free(s->msgs);
	mom_buf_fini(&s->head);
	mom_buf_fini(&s->tail);
	free(s);
}

int
fsm_snapshot(const struct fsm *f, struct mom_buf *out)
{
	struct fsm_snap *s;
	int              err;

	if ((err = fsm_snap_begin(f, &s)) != 0)
		return err;
	err = fsm_snap_write(s, out);
	fsm_snap_end(s);
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
snap_get_queues(struct mom_rd *r, struct fsm *f, const struct umap *msgs, uint32_t version)
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
			fsm_queue_free(f, q);
			return r->err == MOM_ENOMEM ? MOM_ENOMEM : MOM_EBADDATA;
		}
		q->nlen = strlen(q->name);
		q->created_ms = q->last_used = get_i64(r);
		if (version >= 2)
			q->idle_expire_ms = mom_rd_varint(r);
		if (!mom_name_ok(q->name) || (q->dead_letter && !mom_name_ok(q->dead_letter)) ||
		    fsm_queue(f, q->name, q->nlen) != NULL) {
			fsm_queue_free(f, q);
			return MOM_EBADDATA;
		}
		umap_fini(&q->mq.leases);
		if ((rv = snap_get_mq(r, msgs, MOM_KIND_QUEUE, &q->mq, fsm_dead_letter, q)) != 0 ||
		    (rv = smap_put(&f->queues, q->name, q->nlen, q)) != 0) {
			fsm_queue_free(f, q);
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
			fsm_topic_free(f, t);
			return r->err == MOM_ENOMEM ? MOM_ENOMEM : MOM_EBADDATA;
		}
		t->nlen = strlen(t->name);
		t->created_ms = get_i64(r);
		t->retain_ms = mom_rd_varint(r);
		t->retain_bytes = mom_rd_varint(r);
		t->published = mom_rd_varint(r);
		if (r->err || !mom_name_ok(t->name) || fsm_topic(f, t->name, t->nlen) != NULL) {
			fsm_topic_free(f, t);
			return MOM_EBADDATA;
		}
		nlog = mom_rd_varint(r);
		for (j = 0; j < nlog && !r->err; j++) {
			struct msg *m = get_ref(r, msgs, MOM_KIND_TOPIC);

			if (m != NULL && fsm_topic_append(t, m) != 0) {
				fsm_topic_free(f, t);
				return MOM_ENOMEM;
			}
		}
		if (r->err || smap_put(&f->topics, t->name, t->nlen, t) != 0) {
			fsm_topic_free(f, t);
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
			fsm_sub_free(f, s);
			return rv;
		}
		rv = fsm_sub_key(s, pat, strlen(pat), name, strlen(name));
		free(pat);
		free(name);
		if (rv != 0) {
			fsm_sub_free(f, s);
			return rv;
		}
		s->durable = durable != 0;
		s->consumer = mom_rd_varint(r);
		s->last_seen = get_i64(r);
		s->created_ms = get_i64(r);
		umap_fini(&s->mq.leases);
		if ((rv = snap_get_mq(r, msgs, MOM_KIND_TOPIC, &s->mq, NULL, NULL)) != 0 ||
		    (rv = smap_put(&f->subs, s->key, s->klen, s)) != 0) {
			fsm_sub_free(f, s);
			return rv;
		}
	}
	return r->err ? MOM_EBADDATA : 0;
}

static int
cmp_prod_time(const void *a, const void *b)
{
	const struct producer *x = *(struct producer *const *)a, *y = *(struct producer *const *)b;

	if (x->last_ms != y->last_ms)
		return x->last_ms < y->last_ms ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The producers read go on the fsm's list by the time each was last heard. */
static int
snap_link_producers(struct fsm *f)
{
	struct producer **ps;
	size_t            it, n = 0;
	uint64_t          k;
	void             *v;

	if (f->producers.len == 0)
		return 0;
	if ((ps = malloc(f->producers.len * sizeof(*ps))) == NULL)
		return MOM_ENOMEM;
	for (it = 0; umap_next(&f->producers, &it, &k, &v);)
		ps[n++] = v;
	qsort(ps, n, sizeof(*ps), cmp_prod_time);
	for (it = 0; it < n; it++)
		fsm_producer_touch(f, ps[it]);
	free(ps);
	return 0;
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
		p->id = id;
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
	if (snap_link_producers(f) != 0)
		return MOM_ENOMEM;
	n = mom_rd_varint(r);
	for (i = 0; i < n && !r->err; i++) {
		int64_t        exp = get_i64(r);
		const uint8_t *key;
		size_t         klen;

		key = mom_rd_bytes(r, &klen);
		if (r->err || klen < 2 || klen > MOM_NAME_MAX + MOM_ID_MAX + 2 ||
		    smap_get(&f->ids, (const char *)key, klen) != NULL)
			return MOM_EBADDATA;
		if (fsm_id_append(f, key, klen, exp) != 0)
			return MOM_ENOMEM;
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
	uint32_t      version;
	uint64_t      k;
	void         *v;
	int           rv;

	if (len < SNAP_HDR + SNAP_TRAILER || memcmp(b, SNAP_MAGIC, 4) != 0)
		return MOM_EBADDATA;
	if ((version = mom_le_get32(b + 4)) < 1 || version > SNAP_VERSION)
		return MOM_EBADDATA;
	body = len - SNAP_HDR - SNAP_TRAILER;
	if (mom_le_get64(b + 8) != body ||
	    mom_crc32c(0, b, len - SNAP_TRAILER) != mom_le_get32(b + len - SNAP_TRAILER))
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
	    (rv = snap_get_queues(&r, n, &msgs, version)) == 0 &&
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
			    fsm_topic_link(t, vs) != 0)
				return MOM_ENOMEM;
	}
	return 0;
}

int
fsm_restore_parse(const struct fsm_config *cfg, const uint8_t *b, size_t len, struct fsm **out)
{
	struct fsm *n;
	int         rv;

	*out = NULL;
	if ((n = fsm_new(cfg)) == NULL)
		return MOM_ENOMEM;
	if ((rv = snap_parse(n, b, len)) != 0) {
		fsm_free(n);
		return rv;
	}
	*out = n;
	return 0;
}

void
fsm_restore_swap(struct fsm *f, struct fsm *n)
{
	size_t it;
	void  *v;

	/* Everything checked: the old state goes (the core hears of each mq), the new moves in. */
	fsm_clear(f);
	f->queues = n->queues;
	f->topics = n->topics;
	f->subs = n->subs;
	f->producers = n->producers;
	f->prod_head = n->prod_head;
	f->prod_tail = n->prod_tail;
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
	fsm_attach_all(f);
	free(n);
}

int
fsm_restore(struct fsm *f, const uint8_t *b, size_t len)
{
	struct fsm *n;
	int         rv;

	if ((rv = fsm_restore_parse(&f->cfg, b, len, &n)) != 0)
		return rv;
	fsm_restore_swap(f, n);
	return 0;
}

/*
 * mq.c: the delivery engine of queues and subscriptions: a ready ring, a
 * heap of delayed messages and the leases of consumers (see mq.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mom.h"
#include "state/mq.h"

void
mq_init(struct mq *q, const struct mq_config *cfg, mq_dead_fn dead, void *arg)
{
	memset(q, 0, sizeof(*q));
	q->cfg = *cfg;
	if (q->cfg.ack_wait_ms == 0)
		q->cfg.ack_wait_ms = 30000;
	q->dead = dead;
	q->dead_arg = arg;
	umap_init(&q->leases);
	umap_init(&q->lseq);
}

void
mq_set_settle(struct mq *q, mq_settle_fn fn, void *arg)
{
	q->settle = fn;
	q->settle_arg = arg;
}

static void
drop(struct mq *q, struct msg *m)
{
	q->bytes -= msg_size(m);
	msg_unref(m);
}

void
mq_fini(struct mq *q)
{
	struct lease *l, *next;
	size_t        i;

	for (i = 0; i < q->rlen; i++)
		msg_unref(q->ring[(q->rhead + i) & (q->rcap - 1)].m);
	for (i = 0; i < q->dlen; i++)
		msg_unref(q->delayed[i].e.m);
	for (l = q->lhead; l; l = next) {
		next = l->next;
		msg_unref(l->e.m);
		free(l);
	}
	free(q->ring);
	free(q->delayed);
	umap_fini(&q->leases);
	umap_fini(&q->lseq);
	q->ring = NULL;
	q->delayed = NULL;
	q->rlen = q->dlen = q->nleased = 0;
	q->lhead = q->ltail = NULL;
	q->bytes = 0;
}

/* The ready ring: a power-of-two deque. */
static int
ring_grow(struct mq *q)
{
	size_t       cap = q->rcap ? q->rcap * 2 : 64, i;
	struct qent *r;

	if ((r = malloc(cap * sizeof(*r))) == NULL)
		return MOM_ENOMEM;
	for (i = 0; i < q->rlen; i++)
		r[i] = q->ring[(q->rhead + i) & (q->rcap - 1)];
	free(q->ring);
	q->ring = r;
	q->rcap = cap;
	q->rhead = 0;
	return 0;
}

static int
ring_push_back(struct mq *q, struct qent e)
{
	if (q->rlen == q->rcap && ring_grow(q) != 0)
		return MOM_ENOMEM;
	q->ring[(q->rhead + q->rlen++) & (q->rcap - 1)] = e;
	return 0;
}

static int
ring_push_front(struct mq *q, struct qent e)
{
	if (q->rlen == q->rcap && ring_grow(q) != 0)
		return MOM_ENOMEM;
	q->rhead = (q->rhead - 1) & (q->rcap - 1);
	q->ring[q->rhead] = e;
	q->rlen++;
	return 0;
}

static struct qent
ring_pop_front(struct mq *q)
{
	struct qent e = q->ring[q->rhead];

	q->rhead = (q->rhead + 1) & (q->rcap - 1);
	q->rlen--;
	return e;
}

/* The delayed heap. */
static int
heap_push(struct mq *q, int64_t at, struct qent e)
{
	size_t i;

	if (q->dlen == q->dcap) {
		size_t       cap = q->dcap ? q->dcap * 2 : 16;
		struct dent *d = realloc(q->delayed, cap * sizeof(*d));

		if (d == NULL)
			return MOM_ENOMEM;
		q->delayed = d;
		q->dcap = cap;
	}
	for (i = q->dlen++; i > 0 && q->delayed[(i - 1) / 2].at > at; i = (i - 1) / 2)
		q->delayed[i] = q->delayed[(i - 1) / 2];
	q->delayed[i].at = at;
	q->delayed[i].e = e;
	return 0;
}

/* Removes the delayed entry at i, keeping the heap a heap. */
static struct qent
heap_remove(struct mq *q, size_t i)
{
	struct qent e = q->delayed[i].e;
	struct dent last = q->delayed[--q->dlen];
	size_t      c;

	if (i == q->dlen)
		return e;
	/* Sift last up from i, or down. */
	while (i > 0 && q->delayed[(i - 1) / 2].at > last.at) {
		q->delayed[i] = q->delayed[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	while ((c = 2 * i + 1) < q->dlen) {
		if (c + 1 < q->dlen && q->delayed[c + 1].at < q->delayed[c].at)
			c++;
		if (q->delayed[c].at >= last.at)
			break;
		q->delayed[i] = q->delayed[c];
		i = c;
	}
	q->delayed[i] = last;
	return e;
}

static struct qent
heap_pop(struct mq *q)
{
	return heap_remove(q, 0);
}

static bool
expired(const struct mq *q, const struct msg *m, int64_t now)
{
	return (m->expires_ms && now >= m->expires_ms) ||
	    (q->cfg.ttl_ms && now >= mom_time_add(m->time_ms, q->cfg.ttl_ms));
}

bool
mq_fits(const struct mq *q, uint64_t n, uint64_t b)
{
	return (q->cfg.max_len == 0 || mq_count(q) + n <= q->cfg.max_len) &&
	    (q->cfg.max_bytes == 0 || q->bytes + b <= q->cfg.max_bytes);
}

size_t
mq_count(const struct mq *q)
{
	return q->rlen + q->dlen + q->nleased;
}

size_t
mq_ready(const struct mq *q)
{
	return q->rlen;
}

/* Would n more messages of b bytes fit, not counting those already leaving? */
static bool
fits_after_settling(const struct mq *q, uint64_t n, uint64_t b)
{
	return (q->cfg.max_len == 0 || mq_count(q) - q->nsettling + n <= q->cfg.max_len) &&
	    (q->cfg.max_bytes == 0 || q->bytes - q->settling_bytes + b <= q->cfg.max_bytes);
}

static int ready_settle(struct mq *, struct qent, int, uint64_t, uint64_t, int64_t);

int
mq_push(struct mq *q, struct msg *m, int64_t now)
{
	struct qent e = { m, 0 };
	int         rv;

	/*
	 * Which messages make room is the leader's choice (the oldest ready
	 * ones: a consumer may hold older ones), logged like an expiry.
	 */
	if (q->cfg.drop_head) {
		while (q->rlen > 0 && !fits_after_settling(q, 1, msg_size(m))) {
			struct qent old = ring_pop_front(q);

			if (ready_settle(q, old, MQ_DROP, 0, 0, now) != 0) {
				ring_push_front(q, old);
				break;
			}
		}
	}
	if (m->not_before > now)
		rv = heap_push(q, m->not_before, e);
	else
		rv = ring_push_back(q, e);
	if (rv != 0) {
		msg_unref(m);
		return rv;
	}
	q->bytes += msg_size(m);
	q->st.published++;
	return 0;
}

static int
cmp_qent(const void *a, const void *b)
{
	uint64_t x = ((const struct qent *)a)->m->seq, y = ((const struct qent *)b)->m->seq;

	return x < y ? -1 : x > y;
}

/*
 * Puts k entries, in ascending seq order, into the ready ring, each before
 * the first entry with a higher seq.  The ring hands out from its front,
 * so what was given back sits there, older than what follows: a queue
 * hands out what was given back in broker sequence order, before newer
 * messages.  One merge of the ring's front with v, in place: the head
 * moves back by k and nothing behind the last insertion point moves.
 */
static int
ring_insert_sorted(struct mq *q, const struct qent *v, size_t k)
{
	size_t mask, head, p = 0, r = 0, g = 0, o = 0;

	while (q->rlen + k > q->rcap)
		if (ring_grow(q) != 0)
			return MOM_ENOMEM;
	mask = q->rcap - 1;
	while (p < q->rlen && q->ring[(q->rhead + p) & mask].m->seq < v[k - 1].m->seq)
		p++;
	/* Writing at o never passes the unread entry r: o <= r + g < r + k. */
	head = (q->rhead - k) & mask;
	while (g < k) {
		const struct qent *e = &q->ring[(q->rhead + r) & mask];

		if (r < p && e->m->seq < v[g].m->seq) {
			q->ring[(head + o++) & mask] = *e;
			r++;
		} else
			q->ring[(head + o++) & mask] = v[g++];
	}
	q->rhead = head;
	q->rlen += k;
	return 0;
}

/* Given-back entries collected, to go into the ring in one merge (give_back). */
struct giveback {
	struct qent *v;
	size_t       n, cap;
};

static void
give_back(struct mq *q, struct qent *v, size_t k)
{
	size_t i;

	if (k == 0)
		return;
	qsort(v, k, sizeof(*v), cmp_qent);
	if (ring_insert_sorted(q, v, k) == 0)
		return;
	for (i = 0; i < k; i++)
		if (ring_insert_sorted(q, &v[i], 1) != 0)
			drop(q, v[i].m); /* out of memory: nothing else to do */
}

static void
gb_add(struct mq *q, struct giveback *gb, struct qent e)
{
	if (gb->n == gb->cap) {
		size_t       cap = gb->cap ? gb->cap * 2 : 16;
		struct qent *v = realloc(gb->v, cap * sizeof(*v));

		if (v == NULL) {
			/* One at a time: the same order, only slower. */
			give_back(q, &e, 1);
			return;
		}
		gb->v = v;
		gb->cap = cap;
	}
	gb->v[gb->n++] = e;
}

static void
gb_flush(struct mq *q, struct giveback *gb)
{
	give_back(q, gb->v, gb->n);
	free(gb->v);
	memset(gb, 0, sizeof(*gb));
}

/* A message comes back from a consumer: ready again, now or later. */
static void
requeue(struct mq *q, struct qent e, int64_t at, int64_t now)
{
	q->st.redelivered++;
	if (at > now) {
		if (heap_push(q, at, e) != 0)
			drop(q, e.m); /* out of memory: nothing else to do */
	} else
		give_back(q, &e, 1);
}

static bool
used_up(const struct mq *q, const struct qent *e)
{
	return q->cfg.max_deliver && e->deliveries >= q->cfg.max_deliver;
}

static void
lease_unlink(struct mq *q, struct lease *l)
{
	if (l->prev)
		l->prev->next = l->next;
	else
		q->lhead = l->next;
	if (l->next)
		l->next->prev = l->prev;
	else
		q->ltail = l->prev;
	l->prev = l->next = NULL;
}

static void
lease_append(struct mq *q, struct lease *l)
{
	l->prev = q->ltail;
	l->next = NULL;
	if (q->ltail)
		q->ltail->next = l;
	else
		q->lhead = l;
	q->ltail = l;
}

static void
lease_end(struct mq *q, struct lease *l)
{
	lease_unlink(q, l);
	if (l->settling) {
		q->nsettling--;
		q->settling_bytes -= msg_size(l->e.m);
	}
	if (l->receipt != 0)
		umap_del(&q->leases, l->receipt);
	umap_del(&q->lseq, l->e.m->seq);
	q->nleased--;
	free(l);
}

static struct lease *
lease_new(struct mq *q, struct qent e, uint64_t receipt, uint64_t consumer, uint64_t holder,
    int64_t now)
{
	struct lease *l;

	/* Receipt 0: a lease no consumer holds (an expired message being settled). */
	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	if (receipt != 0 && umap_put(&q->leases, receipt, l) != 0) {
		free(l);
		return NULL;
	}
	if (umap_put(&q->lseq, e.m->seq, l) != 0) {
		if (receipt != 0)
			umap_del(&q->leases, receipt);
		free(l);
		return NULL;
	}
	l->e = e;
	l->receipt = receipt;
	l->consumer = consumer;
	l->holder = holder;
	l->deadline = mom_time_add(now, q->cfg.ack_wait_ms);
	lease_append(q, l);
	q->nleased++;
	return l;
}

/*
 * A leased message should leave the mq (how): with a settle callback the
 * lease turns settling (never delivered, kept until the command applies;
 * asked again if it is not applied within the ack wait), else at once.
 */
static void
lease_settle(struct mq *q, struct lease *l, int how, int64_t now)
{
	if (q->settle == NULL) {
		uint64_t seq = l->e.m->seq;

		(void)mq_settle(q, seq, how);
		return;
	}
	if (!l->settling) {
		q->nsettling++;
		q->settling_bytes += msg_size(l->e.m);
	}
	if (l->why == MQ_WHY_NONE)
		l->why = how == MQ_DEAD ? MQ_WHY_DELIVERIES : how == MQ_EXPIRE ? MQ_WHY_EXPIRED :
		    MQ_WHY_NONE;
	l->settling = (uint8_t)how;
	lease_unlink(q, l);
	l->deadline = mom_time_add(now, q->cfg.ack_wait_ms);
	lease_append(q, l);
	q->settle(q->settle_arg, q, l->e.m->seq, how);
}

/* A ready message should leave (expired, or delivered without ack). */
static int
ready_settle(struct mq *q, struct qent e, int how, uint64_t receipt, uint64_t consumer,
    int64_t now)
{
	struct lease *l;

	if (q->settle == NULL) {
		if (how == MQ_EXPIRE)
			q->st.expired++;
		else if (how == MQ_DROP)
			q->st.dropped++;
		else
			q->st.acked++;
		drop(q, e.m);
		return 0;
	}
	if ((l = lease_new(q, e, receipt, consumer, 0, now)) == NULL)
		return MOM_ENOMEM;
	lease_settle(q, l, how, now);
	return 0;
}

void
mq_receipts_epoch(struct mq_receipts *rc, uint64_t epoch)
{
	if (rc->epoch != epoch) {
		rc->epoch = epoch;
		rc->n = 0;
	}
}

uint64_t
mq_receipt_next(struct mq_receipts *rc)
{
	rc->n = rc->n >= MQ_RECEIPT_COUNT ? 1 : rc->n + 1;
	return rc->epoch << MQ_RECEIPT_BITS | rc->n;
}

size_t
mq_lease(struct mq *q, uint64_t consumer, uint64_t holder, size_t max, size_t max_bytes,
    bool noack, int64_t now, struct mq_receipts *rc, mq_emit_fn emit, void *arg)
{
	size_t n = 0, bytes = 0;

	while (n < max && q->rlen > 0) {
		struct qent   e = ring_pop_front(q);
		uint64_t      receipt;
		size_t        len;

		if (expired(q, e.m, now)) {
			if (ready_settle(q, e, MQ_EXPIRE, 0, 0, now) != 0) {
				ring_push_front(q, e);
				break;
			}
			continue;
		}
		if (n > 0 && bytes + e.m->len > max_bytes) {
			ring_push_front(q, e);
			break;
		}
		e.deliveries++;
		receipt = mq_receipt_next(rc);
		len = e.m->len; /* a message settled at once is gone after */
		if (noack) {
			/* Settled as it is handed out: emit first, the message may go. */
			emit(arg, e.m, receipt, e.deliveries);
			if (ready_settle(q, e, MQ_ACK, receipt, consumer, now) != 0) {
				e.deliveries--;
				ring_push_front(q, e);
				break;
			}
		} else {
			if (lease_new(q, e, receipt, consumer, holder, now) == NULL) {
				e.deliveries--;
				ring_push_front(q, e);
				break;
			}
			emit(arg, e.m, receipt, e.deliveries);
		}
		q->st.delivered++;
		n++;
		bytes += len;
	}
	return n;
}

/* The lease receipt names, if holder may settle it; else NULL (stale, or another's). */
static struct lease *
held(struct mq *q, uint64_t receipt, uint64_t holder)
{
	struct lease *l = umap_get(&q->leases, receipt);

	return l != NULL && (holder == 0 || l->holder == holder) ? l : NULL;
}

int
mq_ack(struct mq *q, uint64_t receipt, uint64_t holder, int64_t now)
{
	struct lease *l = held(q, receipt, holder);

	if (l == NULL)
		return MOM_ENOENT;
	if (l->settling == 0)
		lease_settle(q, l, MQ_ACK, now);
	return 0;
}

int
mq_nack(struct mq *q, uint64_t receipt, uint64_t holder, uint64_t delay_ms, bool unseen,
    int64_t now)
{
	struct lease *l = held(q, receipt, holder);
	struct qent   e;

	if (l == NULL || l->settling)
		return MOM_ENOENT;
	e = l->e;
	if (unseen && e.deliveries > 0) {
		e.deliveries--;
		l->e.deliveries--;
		q->st.delivered--;
		q->st.redelivered--; /* requeue counts it again */
	}
	if (used_up(q, &e)) {
		lease_settle(q, l, MQ_DEAD, now);
		return 0;
	}
	lease_end(q, l);
	requeue(q, e, mom_time_add(now, delay_ms), now);
	return 0;
}

int
mq_dead(struct mq *q, uint64_t receipt, uint64_t holder, int status, int64_t now)
{
	struct lease *l = held(q, receipt, holder);

	if (l == NULL || l->settling)
		return MOM_ENOENT;
	l->why = MQ_WHY_REJECTED;
	l->status = status >= 0 && status < UINT16_MAX ? (uint16_t)(status + 1) : 0;
	lease_settle(q, l, MQ_DEAD, now);
	return 0;
}

int
mq_touch(struct mq *q, uint64_t receipt, uint64_t holder, int64_t now)
{
	struct lease *l = held(q, receipt, holder);

	if (l == NULL || l->settling)
		return MOM_ENOENT;
	lease_unlink(q, l);
	l->deadline = mom_time_add(now, q->cfg.ack_wait_ms);
	lease_append(q, l);
	return 0;
}

void
mq_release(struct mq *q, uint64_t consumer, int64_t now)
{
	struct giveback gb = { NULL, 0, 0 };
	struct lease   *l, *next;

	(void)now;
	for (l = q->lhead; l; l = next) {
		next = l->next;
		if (l->consumer == consumer && !l->settling) {
			struct qent e = l->e;

			/*
			 * A consumer that leaves cleanly acked what it used: the
			 * rest it never saw, so the delivery does not count.
			 */
			lease_end(q, l);
			if (e.deliveries > 0) {
				e.deliveries--;
				q->st.delivered--;
			}
			gb_add(q, &gb, e);
		}
	}
	gb_flush(q, &gb);
}

void
mq_release_all(struct mq *q)
{
	struct giveback gb = { NULL, 0, 0 };
	struct lease   *l, *next;

	for (l = q->lhead; l; l = next) {
		struct qent e = l->e;

		next = l->next;
		lease_end(q, l);
		gb_add(q, &gb, e);
	}
	gb_flush(q, &gb);
}

size_t
mq_purge(struct mq *q)
{
	size_t n = mq_count(q);

	while (q->rlen > 0)
		drop(q, ring_pop_front(q).m);
	while (q->dlen > 0)
		drop(q, heap_pop(q).m);
	while (q->lhead != NULL) {
		struct lease *l = q->lhead;
		struct msg   *m = l->e.m;

		lease_end(q, l); /* reads the message: drop it after */
		drop(q, m);
	}
	return n;
}

/* Removes the ring entry at offset i (from the head), shifting the shorter side. */
static struct qent
ring_remove(struct mq *q, size_t i)
{
	size_t      mask = q->rcap - 1, k;
	struct qent e = q->ring[(q->rhead + i) & mask];

	if (i < q->rlen / 2) {
		for (k = i; k > 0; k--)
			q->ring[(q->rhead + k) & mask] = q->ring[(q->rhead + k - 1) & mask];
		q->rhead = (q->rhead + 1) & mask;
	} else {
		for (k = i; k + 1 < q->rlen; k++)
			q->ring[(q->rhead + k) & mask] = q->ring[(q->rhead + k + 1) & mask];
	}
	q->rlen--;
	return e;
}


/*
 * Finds and removes the message with this seq: a lease (the leader's
 * settling ones: O(1)), else the ready ring from the front (after a
 * restart or on a follower, settlements are of the oldest messages),
 * else the delayed heap.
 */
static bool
take_seq(struct mq *q, uint64_t seq, struct qent *out)
{
	struct lease *l;
	size_t        i;

	if ((l = umap_get(&q->lseq, seq)) != NULL) {
		*out = l->e;
		lease_end(q, l);
		return true;
	}
	for (i = 0; i < q->rlen; i++)
		if (q->ring[(q->rhead + i) & (q->rcap - 1)].m->seq == seq) {
			*out = ring_remove(q, i);
			return true;
		}
	for (i = 0; i < q->dlen; i++)
		if (q->delayed[i].e.m->seq == seq) {
			*out = heap_remove(q, i);
			return true;
		}
	return false;
}

int
mq_settle(struct mq *q, uint64_t seq, int how)
{
	struct qent e;

	if (!take_seq(q, seq, &e))
		return MOM_ENOENT;
	q->bytes -= msg_size(e.m);
	switch (how) {
	case MQ_DEAD:
		q->st.dead_lettered++;
		if (q->dead) {
			q->dead(q->dead_arg, q, e.m, e.deliveries);
			return 0;
		}
		break;
	case MQ_EXPIRE:
		q->st.expired++;
		break;
	case MQ_DROP:
		q->st.dropped++;
		break;
	default:
		q->st.acked++;
	}
	msg_unref(e.m);
	return 0;
}

static int
cmp_qent_seq(const void *a, const void *b)
{
	uint64_t x = (*(struct msg *const *)a)->seq, y = (*(struct msg *const *)b)->seq;

	return x < y ? -1 : x > y;
}

long
mq_take_all(struct mq *q, uint64_t max, int64_t now, struct msg ***out)
{
	size_t        n = mq_count(q), k = 0, i, keep;
	struct msg  **all;
	struct lease *l;
	long          got = 0;

	*out = NULL;
	if (n == 0)
		return 0;
	if ((all = malloc(n * sizeof(*all))) == NULL)
		return -1;
	for (i = 0; i < q->rlen; i++)
		all[k++] = q->ring[(q->rhead + i) & (q->rcap - 1)].m;
	for (i = 0; i < q->dlen; i++)
		all[k++] = q->delayed[i].e.m;
	for (l = q->lhead; l; l = l->next)
		all[k++] = l->e.m;
	qsort(all, k, sizeof(*all), cmp_qent_seq);
	keep = max == 0 || max > k ? k : (size_t)max;
	for (i = 0; i < keep; i++) {
		struct qent e;

		if (!take_seq(q, all[i]->seq, &e))
			continue;
		q->bytes -= msg_size(e.m);
		if (expired(q, e.m, now)) {
			q->st.expired++;
			msg_unref(e.m);
			continue;
		}
		all[got++] = e.m;
	}
	if (got == 0) {
		free(all);
		return 0;
	}
	*out = all;
	return got;
}

int64_t
mq_tick(struct mq *q, int64_t now)
{
	struct giveback gb = { NULL, 0, 0 };
	int64_t         next = INT64_MAX;
	struct lease   *l, *last = NULL, *nl;

	/*
	 * Expired leases are a prefix of the deadline-ordered list; they go
	 * back with the due delayed messages that were given back, all in one
	 * merge by seq.  A settling lease that expired: its command was not
	 * applied (a full disk): ask again (that moves it to the list's end).
	 * A message that used up its deliveries goes to be dead-lettered.
	 */
	for (l = q->lhead; l && l->deadline <= now; l = l->next)
		last = l;
	for (l = last ? q->lhead : NULL; l; l = nl) {
		struct qent e = l->e;

		/* Settling may free l or move it to the end: the next one first. */
		nl = l == last ? NULL : l->next;
		if (l->settling)
			lease_settle(q, l, l->settling, now);
		else if (used_up(q, &e))
			lease_settle(q, l, MQ_DEAD, now);
		else {
			lease_end(q, l);
			q->st.redelivered++;
			gb_add(q, &gb, e);
		}
	}
	/* A message published with a delay is new when it is due: at the back. */
	while (q->dlen > 0 && q->delayed[0].at <= now) {
		struct qent e = heap_pop(q);

		if (e.deliveries > 0)
			gb_add(q, &gb, e);
		else if (ring_push_back(q, e) != 0)
			drop(q, e.m);
	}
	gb_flush(q, &gb);
	while (q->rlen > 0 && expired(q, q->ring[q->rhead].m, now)) {
		struct qent e = ring_pop_front(q);

		if (ready_settle(q, e, MQ_EXPIRE, 0, 0, now) != 0) {
			ring_push_front(q, e);
			break;
		}
	}
	if (q->lhead)
		next = q->lhead->deadline;
	if (q->dlen > 0 && q->delayed[0].at < next)
		next = q->delayed[0].at;
	return next;
}

void
mq_walk_ready(const struct mq *q, mq_walk_fn fn, void *arg)
{
	const struct lease *l;
	struct qent        *v = NULL;
	size_t              mask = q->rcap - 1, k = 0, p = 0, r = 0, g = 0;

	if (q->nleased > 0 && (v = malloc(q->nleased * sizeof(*v))) != NULL) {
		for (l = q->lhead; l; l = l->next)
			v[k++] = l->e;
		qsort(v, k, sizeof(*v), cmp_qent);
	} else {
		for (l = q->lhead; l; l = l->next)
			fn(arg, &l->e);
	}
	while (k > 0 && p < q->rlen && q->ring[(q->rhead + p) & mask].m->seq < v[k - 1].m->seq)
		p++;
	while (g < k) {
		const struct qent *e = &q->ring[(q->rhead + r) & mask];

		if (r < p && e->m->seq < v[g].m->seq) {
			fn(arg, e);
			r++;
		} else
			fn(arg, &v[g++]);
	}
	for (; r < q->rlen; r++)
		fn(arg, &q->ring[(q->rhead + r) & mask]);
	free(v);
}

int
mq_restore_ready(struct mq *q, struct msg *m, uint32_t deliveries)
{
	struct qent e = { m, deliveries };

	if (ring_push_back(q, e) != 0)
		return MOM_ENOMEM;
	msg_ref(m);
	q->bytes += msg_size(m);
	return 0;
}

int
mq_restore_delayed(struct mq *q, int64_t at, struct msg *m, uint32_t deliveries)
{
	struct qent e = { m, deliveries };

	if (heap_push(q, at, e) != 0)
		return MOM_ENOMEM;
	msg_ref(m);
	q->bytes += msg_size(m);
	return 0;
}

bool
mq_settling_why(const struct mq *q, uint64_t seq, struct mq_why_info *wi)
{
	const struct lease *l = umap_get(&q->lseq, seq);

	if (l == NULL || !l->settling)
		return false;
	wi->deliveries = l->e.deliveries;
	wi->why = l->why;
	wi->status = (int)l->status - 1;
	return true;
}

/* Keeps the max lowest seqs in a max-heap on seq (out[0]: the highest kept). */
static void
peek_offer(struct mq_peek *out, size_t *n, size_t max, struct mq_peek p)
{
	size_t i, c;

	if (*n < max) {
		for (i = (*n)++; i > 0 && out[(i - 1) / 2].m->seq < p.m->seq; i = (i - 1) / 2)
			out[i] = out[(i - 1) / 2];
		out[i] = p;
		return;
	}
	if (max == 0 || p.m->seq >= out[0].m->seq)
		return;
	for (i = 0; (c = 2 * i + 1) < *n; i = c) {
		if (c + 1 < *n && out[c + 1].m->seq > out[c].m->seq)
			c++;
		if (out[c].m->seq <= p.m->seq)
			break;
		out[i] = out[c];
	}
	out[i] = p;
}

static int
cmp_peek(const void *a, const void *b)
{
	uint64_t x = ((const struct mq_peek *)a)->m->seq, y = ((const struct mq_peek *)b)->m->seq;

	return x < y ? -1 : x > y;
}

size_t
mq_peek(const struct mq *q, struct mq_peek *out, size_t max)
{
	const struct lease *l;
	size_t              n = 0, i;

	for (i = 0; i < q->rlen; i++) {
		const struct qent *e = &q->ring[(q->rhead + i) & (q->rcap - 1)];

		peek_offer(out, &n, max, (struct mq_peek){ e->m, e->deliveries, MQ_READY });
	}
	for (i = 0; i < q->dlen; i++)
		peek_offer(out, &n, max, (struct mq_peek){ q->delayed[i].e.m,
		    q->delayed[i].e.deliveries, MQ_DELAYED });
	for (l = q->lhead; l; l = l->next)
		if (!l->settling)
			peek_offer(out, &n, max, (struct mq_peek){ l->e.m, l->e.deliveries,
			    MQ_LEASED });
	if (n > 1)
		qsort(out, n, sizeof(*out), cmp_peek);
	return n;
}

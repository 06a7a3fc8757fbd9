/*
 * fsm_digest.c: a digest of the replicated state, for comparing the nodes
 * of a cluster (mom-admin cluster digest, the chaos run's checker).
 *
 * Two nodes that applied the same log up to the same index hold the same
 * queues, topics and subscriptions with the same messages, and so the same
 * digest.  What is leader-local is left out: leases (a leased message counts
 * as held, whichever list it is on), delivery counts, the counters, the
 * order of the ready list (a lease given back goes to its front), and the
 * core's own fields (last use, waiters).  What goes in, each walk sorted by
 * name so that the maps' layout does not matter: every queue's name,
 * settings, dead-letter queue and the sequence numbers of the messages it
 * holds with each payload's length and CRC-32C; every topic's name,
 * retention and retained messages; every subscription's key, durability and
 * messages.  The digest is FNV-1a (64 bits) over that stream: a check that
 * the copies agree, not a defence against anyone.
 */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "mom.h"
#include "state/fsm_int.h"

#define FNV_OFFSET	UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME	UINT64_C(0x100000001b3)

static void
put(uint64_t *h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--) {
		*h ^= *b++;
		*h *= FNV_PRIME;
	}
}

static void
put64(uint64_t *h, uint64_t v)
{
	uint8_t b[8];
	int     i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	put(h, b, sizeof(b));
}

/* A length, then the bytes: "ab","c" and "a","bc" differ. */
static void
put_str(uint64_t *h, const char *s, size_t n)
{
	put64(h, s ? n : UINT64_MAX);
	if (s)
		put(h, s, n);
}

static void
put_msg(uint64_t *h, const struct msg *m)
{
	put64(h, m->seq);
	put64(h, m->len);
	put64(h, mom_crc32c(0, msg_payload(m), m->len));
	put64(h, (uint64_t)m->expires_ms);
}

static int
by_seq(const void *a, const void *b)
{
	const struct msg *x = *(const struct msg *const *)a, *y = *(const struct msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every message q holds (ready, delayed or leased), by sequence number. */
static int
put_mq(uint64_t *h, const struct mq *q, uint64_t *messages)
{
	size_t         n = q->rlen + q->dlen + q->nleased, k = 0, i;
	struct msg   **v;
	struct lease  *l;

	if (n == 0) {
		put64(h, 0);
		return 0;
	}
	if ((v = calloc(n, sizeof(*v))) == NULL)
		return MOM_ENOMEM;
	for (i = 0; i < q->rlen && k < n; i++)
		v[k++] = q->ring[(q->rhead + i) & (q->rcap - 1)].m;
	for (i = 0; i < q->dlen && k < n; i++)
		v[k++] = q->delayed[i].e.m;
	for (l = q->lhead; l && k < n; l = l->next)
		v[k++] = l->e.m;
	qsort(v, k, sizeof(*v), by_seq);
	put64(h, k);
	for (i = 0; i < k; i++)
		put_msg(h, v[i]);
	*messages += k;
	free(v);
	return 0;
}

static void
put_cfg(uint64_t *h, const struct mq_config *c)
{
	put64(h, c->ack_wait_ms);
	put64(h, c->max_deliver);
	put64(h, c->ttl_ms);
	put64(h, c->max_len);
	put64(h, c->max_bytes);
	put64(h, c->drop_head);
}

/* One object of a kind, with its sort key (a subscription's: its pattern, then its name). */
struct named {
	const char *key;
	void       *obj;
};

static int
named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c == 0 && x->obj != y->obj)
		c = strcmp(((const struct sub *)x->obj)->name, ((const struct sub *)y->obj)->name);
	return c;
}

/* The objects of kind 0 (queues), 1 (topics) or 2 (subscriptions), sorted. */
static int
walk_sorted(struct fsm *f, int kind, struct named **out, size_t *n)
{
	size_t it = 0, k = 0, len = kind == 0 ? f->queues.len : kind == 1 ? f->topics.len :
	    f->subs.len;
	void  *o;

	if ((*out = calloc(len ? len : 1, sizeof(**out))) == NULL)
		return MOM_ENOMEM;
	while (k < len && (o = kind == 0 ? (void *)fsm_queue_next(f, &it) : kind == 1 ?
	    (void *)fsm_topic_next(f, &it) : (void *)fsm_sub_next(f, &it)) != NULL) {
		(*out)[k].obj = o;
		(*out)[k++].key = kind == 0 ? ((struct queue *)o)->name : kind == 1 ?
		    ((struct topic *)o)->name : ((struct sub *)o)->pattern;
	}
	qsort(*out, k, sizeof(**out), named_cmp);
	*n = k;
	return 0;
}

static int
put_queue(uint64_t *h, const struct queue *q, struct fsm_digest *d)
{
	put_str(h, q->name, q->nlen);
	put_cfg(h, &q->mq.cfg);
	put_str(h, q->dead_letter, q->dead_letter ? strlen(q->dead_letter) : 0);
	put64(h, q->idle_expire_ms);
	d->queues++;
	return put_mq(h, &q->mq, &d->messages);
}

static int
put_topic(uint64_t *h, const struct topic *t, struct fsm_digest *d)
{
	size_t i;

	put_str(h, t->name, t->nlen);
	put64(h, t->retain_ms);
	put64(h, t->retain_bytes);
	put64(h, t->llen);
	for (i = 0; i < t->llen; i++)
		put_msg(h, t->log[(t->lhead + i) & (t->lcap - 1)]);
	d->topics++;
	d->messages += t->llen;
	return 0;
}

static int
put_sub(uint64_t *h, const struct sub *s, struct fsm_digest *d)
{
	put_str(h, s->key, s->klen);
	put64(h, s->durable);
	put_cfg(h, &s->mq.cfg);
	d->subs++;
	return put_mq(h, &s->mq, &d->messages);
}

int
fsm_digest(struct fsm *f, struct fsm_digest *d)
{
	struct named *v;
	size_t        n, i;
	uint64_t      h = FNV_OFFSET;
	int           kind, rv = 0;

	memset(d, 0, sizeof(*d));
	for (kind = 0; kind < 3 && rv == 0; kind++) {
		if ((rv = walk_sorted(f, kind, &v, &n)) != 0)
			break;
		put64(&h, n);
		for (i = 0; i < n && rv == 0; i++)
			rv = kind == 0 ? put_queue(&h, v[i].obj, d) : kind == 1 ?
			    put_topic(&h, v[i].obj, d) : put_sub(&h, v[i].obj, d);
		free(v);
	}
	d->digest = h;
	return rv;
}

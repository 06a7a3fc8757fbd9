/*
 * core.c: the core thread (see core.h).
 *
 * The loop takes every queued request at once and handles them in order,
 * then serves long polls whose queues got messages and runs the timers.
 * Reads are answered at once.  A state change is encoded as a command;
 * every command of one turn of the loop goes into one raft log entry (a
 * batch), proposed to libraft (a cluster of one), written by rio to the
 * segment store and covered by one fsync with everything else appended
 * in that turn (group commit).  When libraft applies the entry, each
 * command goes through fsm_apply() and its waiter (a publish, an admin
 * request, a receive that needed a subscription first) gets its answer:
 * a reply is sent only after the command is on disk and applied.
 *
 * libraft is single-threaded: only this thread calls it.  Its timers and
 * rio's group commit are driven from this loop (rio_poll, rio_step).
 */
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <raft.h>

#include "net/auth.h"
#include "core/core.h"
#include "net/front.h"
#include "state/fsm.h"
#include "log.h"
#include "mom.h"
#include "names.h"
#include "storage/rio.h"
#include "wire.h"

#define LONGPOLL_MAX_MS   20000 /* keep well under the clients' resend time (30 s) */
#define EPHEMERAL_IDLE_MS 60000 /* an unused ephemeral subscription goes */
#define TICK_MAX_MS       250
#define REORDER_WAIT_MS   1000  /* how long a batch waits for an earlier one */
#define PRODUCER_IDLE_MS  60000

/*
 * Publish order per producer.  nng hands requests that arrived in order
 * on one connection to the core through several threads, so batch 7 of a
 * stream may reach the core before batch 6.  Each batch carries its
 * producer's sequence number; a batch that comes early waits here (for
 * at most REORDER_WAIT_MS) so that a stream is stored in the order it was
 * sent.
 */
struct porder {
	uint64_t     next;    /* sequence number expected next */
	int64_t      last_ms;
	struct fctx *pending; /* early batches, sorted by first_seq */
};

/* What a command's result is for. */
enum want {
	W_NONE,    /* nobody waits (settlements, timers) */
	W_PUBLISH, /* a publish reply */
	W_ADMIN,   /* an admin reply (JSON) */
	W_FETCH,   /* a receive waiting for its subscription: handled again */
	W_TICK,    /* the CMD_TICK in flight */
};

struct pwait {
	struct fctx *fc;
	uint8_t      want;
};

/* A log entry in flight: its commands' waiters, in order. */
struct prop {
	struct raft_apply req;
	struct core      *c;
	struct pwait     *w;
	size_t            n;
	bool              answered;
	struct prop      *next, *prev;
};

struct core {
	struct raft     raft;
	struct raft_io  io;
	struct raft_fsm rfsm;
	struct fsm     *fsm;
	struct front   *front;
	struct core_config cfg;
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	struct fctx    *qhead, *qtail;
	size_t          qlen;
	bool            stop;
	/* Core thread only from here. */
	struct fctx    *waiters; /* every parked long poll */
	uint64_t        next_receipt;
	int64_t         started;
	struct mom_buf  scratch, reply, cmd;
	struct umap     porders;
	uint64_t        requests, busy_replies;
	/* The batch being built: commands (varint length + command each). */
	struct mom_buf  batch;
	struct pwait   *bw;
	size_t          bn, bcap;
	struct mom_buf  settles;  /* CMD_SETTLE body being built */
	uint64_t        nsettles;
	struct prop    *phead, *ptail; /* in flight, in log order */
	bool            tick_inflight, ready, disk_full;
	bool            started_up, start_ok, io_wake; /* under mu */
	int             start_err;
	char            start_msg[512];
	uint64_t        log_bytes, snap_at;  /* bytes proposed; when to snapshot */
	uint64_t        entries, commands, snapshots, trimmed;
};

static void core_gone(void *, struct mq *);

void
core_set_front(struct core *c, struct front *fr)
{
	c->front = fr;
}

void
core_submit(struct core *c, struct fctx *fc)
{
	pthread_mutex_lock(&c->mu);
	if (c->stop || c->qlen >= c->cfg.queue_max) {
		bool stopping = c->stop;

		c->busy_replies++;
		pthread_mutex_unlock(&c->mu);
		front_error(fc, stopping ? MOM_ECLOSED : MOM_EBUSY,
		    stopping ? "broker shutting down" : "broker busy, retry");
		return;
	}
	fc->qnext = NULL;
	fc->resumed = false;
	if (c->qtail)
		c->qtail->qnext = fc;
	else
		c->qhead = fc;
	c->qtail = fc;
	/* Only the first request of a batch needs to wake the core. */
	if (c->qlen++ == 0)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Replies. */

static void
reply_error(struct fctx *fc, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
reply_error(struct fctx *fc, int err, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	front_error(fc, err, msg);
}

static void
reply_json(struct core *c, struct fctx *fc, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_ADMIN, true, 0);
	mom_buf_put_str(&c->reply, s ? s : "{}");
	free(s);
	front_reply(fc, &c->reply);
}

/*
 * Permissions.  fc->claims is NULL on an open broker (no --auth-key): the
 * planes refuse a request without a valid token before it gets here.
 */
static const struct mom_claims *
claims_of(const struct fctx *fc)
{
	return fc->claims != NULL && !fc->claims->c.admin ? &fc->claims->c : NULL;
}

/* May fc publish to (pub) or consume from a name or pattern? */
static bool
may(const struct fctx *fc, const char *name, size_t n, bool pub)
{
	const struct mom_claims *cl = claims_of(fc);
	char                     buf[MOM_NAME_MAX + 1];

	if (cl == NULL)
		return true;
	if (n > MOM_NAME_MAX)
		return false;
	memcpy(buf, name, n);
	buf[n] = '\0';
	return pub ? mom_claims_can_pub(cl, buf) : mom_claims_can_sub(cl, buf);
}

#define may_pub(fc, name, n) may(fc, name, n, true)
#define may_sub(fc, name, n) may(fc, name, n, false)

/* Deleting and purging: the creator or an admin. */
static bool
owns(const struct fctx *fc, const char *owner)
{
	const struct mom_claims *cl = claims_of(fc);

	return cl == NULL || (owner != NULL && strcmp(owner, cl->sub) == 0);
}

/* The owner a new queue, topic or subscription is recorded with. */
static void
set_owner(const struct fctx *fc, json_t *o)
{
	json_object_del(o, "owner");
	if (fc->claims != NULL)
		json_object_set_new(o, "owner", json_string(fc->claims->c.sub));
}

/*
 * May this batch be stored?  Every message's target needs a mom.pub
 * pattern; consecutive messages to one target are checked once.  A batch
 * that does not decode is left to the fsm to refuse.
 */
static bool
may_publish(struct core *c, const struct fctx *fc, const uint8_t *body, size_t len,
    char *denied, size_t dlen)
{
	struct mom_rd        r;
	struct mom_pub_batch b;
	struct mom_pub_msg   m;
	struct mom_slice     last = { NULL, 0 };
	uint64_t             i;

	if (claims_of(fc) == NULL)
		return true;
	mom_rd_init(&r, body, len);
	if (mom_pub_decode_begin(&r, &b) != 0)
		return true;
	for (i = 0; i < b.count; i++) {
		if (mom_pub_decode_msg(&r, &b, &m, c->cfg.max_payload) != 0)
			return true;
		if (last.p != NULL && last.n == m.name.n && memcmp(last.p, m.name.p, m.name.n) == 0)
			continue;
		if (!may_pub(fc, (const char *)m.name.p, m.name.n)) {
			snprintf(denied, dlen, "permission denied: publish to %s '%.*s'",
			    m.kind == MOM_KIND_TOPIC ? "topic" : "queue", (int)m.name.n, m.name.p);
			return false;
		}
		last = m.name;
	}
	return true;
}

/* Ping. */

static void
do_ping(struct core *c, struct fctx *fc, int64_t now)
{
	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_PING, true, 0);
	mom_buf_put_str(&c->reply, MOM_VERSION);
	mom_buf_put_varint(&c->reply, c->cfg.max_payload);
	mom_buf_put_varint(&c->reply, (uint64_t)(now - c->started));
	front_reply(fc, &c->reply);
}

/*
 * The batch.  Each command built in c->cmd joins the entry of this turn
 * with who waits for its result; core_flush proposes it.
 */
static int
batch_add(struct core *c, struct fctx *fc, uint8_t want)
{
	if (c->bn == c->bcap) {
		size_t        cap = c->bcap ? c->bcap * 2 : 64;
		struct pwait *w = realloc(c->bw, cap * sizeof(*w));

		if (w == NULL)
			return MOM_ENOMEM;
		c->bw = w;
		c->bcap = cap;
	}
	mom_buf_put_bytes(&c->batch, c->cmd.data, c->cmd.len);
	c->bw[c->bn].fc = fc;
	c->bw[c->bn].want = want;
	c->bn++;
	return 0;
}

/* Proposes c->cmd: fc gets the result when it is applied (want says how). */
static void
propose(struct core *c, struct fctx *fc, uint8_t want)
{
	if (batch_add(c, fc, want) != 0 && fc != NULL)
		front_error(fc, MOM_ENOMEM, "out of memory");
}

/* Publish. */

static void
publish_apply(struct core *c, struct fctx *fc, int64_t now)
{
	const uint8_t *body = (const uint8_t *)nng_msg_body(fc->req) + fc->body_off;
	size_t         len = nng_msg_len(fc->req) - fc->body_off;

	mom_buf_reset(&c->cmd);
	fsm_cmd_encode(&c->cmd, CMD_PUBLISH, now, body, len);
	propose(c, fc, W_PUBLISH);
}

static void
publish_reply(struct core *c, struct fctx *fc, const struct fsm_result *res)
{
	if (res->status != 0) {
		front_error(fc, res->status, res->err);
		return;
	}
	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_PUBLISH, true, 0);
	mom_buf_put_varint(&c->reply, res->stored);
	mom_buf_put_varint(&c->reply, res->duplicates);
	front_reply(fc, &c->reply);
}

/* Applies the early batches that are now in order (or waited too long). */
static void
porder_drain(struct core *c, struct porder *po, int64_t now, bool force)
{
	struct fctx *fc;

	while ((fc = po->pending) != NULL &&
	    (fc->pub_seq <= po->next || force || fc->pub_until <= now)) {
		po->pending = fc->pub_next;
		if (fc->pub_seq + fc->pub_count > po->next)
			po->next = fc->pub_seq + fc->pub_count;
		publish_apply(c, fc, now);
	}
}

static void
do_publish(struct core *c, struct fctx *fc, const uint8_t *body, size_t len, int64_t now)
{
	struct mom_rd        r;
	struct mom_pub_batch b;
	struct porder       *po;
	struct fctx        **pp;

	char                 denied[300];

	if (!may_publish(c, fc, body, len, denied, sizeof(denied))) {
		front_error(fc, MOM_EPERM, denied);
		return;
	}
	mom_rd_init(&r, body, len);
	if (mom_pub_decode_begin(&r, &b) != 0 || b.producer == 0) {
		publish_apply(c, fc, now);
		return;
	}
	if ((po = umap_get(&c->porders, b.producer)) == NULL) {
		if ((po = calloc(1, sizeof(*po))) == NULL ||
		    umap_put(&c->porders, b.producer, po) != 0) {
			free(po);
			publish_apply(c, fc, now);
			return;
		}
		/*
		 * A stream the log knows (a broker restart, a reconnect) goes
		 * on after what is stored, without waiting for earlier batches.
		 */
		po->next = fsm_producer_next(c->fsm, b.producer);
	}
	po->last_ms = now;
	if (b.first_seq > po->next) {
		/* Early: park it, sorted by sequence. */
		fc->pub_seq = b.first_seq;
		fc->pub_count = b.count;
		fc->pub_until = now + REORDER_WAIT_MS;
		for (pp = &po->pending; *pp && (*pp)->pub_seq < fc->pub_seq; pp = &(*pp)->pub_next)
			;
		fc->pub_next = *pp;
		*pp = fc;
		return;
	}
	if (b.first_seq + b.count > po->next)
		po->next = b.first_seq + b.count;
	publish_apply(c, fc, now);
	porder_drain(c, po, now, false);
}

/* Fetch and long polls. */

struct emit_ctx {
	struct core *c;
	struct fctx *fc;
	size_t       n;
};

static void
emit_cb(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	struct emit_ctx    *e = arg;
	struct waiter      *w = &e->fc->w;
	struct mom_delivery d;

	d.receipt = receipt;
	d.seq = m->seq;
	d.time_ms = (uint64_t)m->time_ms;
	d.deliveries = deliveries;
	d.kind = m->kind;
	if (m->kind == MOM_KIND_TOPIC) {
		d.name.p = (const uint8_t *)msg_name(m);
		d.name.n = m->name_len;
	} else {
		d.name.p = (const uint8_t *)w->qname;
		d.name.n = strlen(w->qname);
	}
	d.id.p = msg_id(m);
	d.id.n = m->id_len;
	d.headers.p = msg_hdr(m);
	d.headers.n = m->hdr_len;
	d.payload.p = msg_payload(m);
	d.payload.n = m->len;
	mom_delivery_encode(&e->c->scratch, &d);
	e->n++;
}

/* Leases what is ready to the waiter in fc and sends the reply. */
static void
serve(struct core *c, struct fctx *fc, int64_t now)
{
	struct waiter  *w = &fc->w;
	struct emit_ctx e = { c, fc, 0 };

	mom_buf_reset(&c->scratch);
	if (w->mq != NULL)
		mq_lease(w->mq, w->consumer, w->max, w->max_bytes, w->noack, now,
		    &c->next_receipt, emit_cb, &e);
	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_FETCH, true, 0);
	mom_buf_put_varint(&c->reply, w->mq ? mq_ready(w->mq) : 0);
	mom_buf_put_varint(&c->reply, e.n);
	mom_buf_put(&c->reply, c->scratch.data, c->scratch.len);
	front_reply(fc, &c->reply);
}

static void
park(struct core *c, struct fctx *fc)
{
	struct waiter *w = &fc->w;
	struct fctx   *head = w->mq->waiters;

	/* Append to the mq's FIFO of waiters: first come, first served. */
	w->next = NULL;
	if (head == NULL) {
		w->prev = fc; /* the head's prev is the tail */
		w->mq->waiters = fc;
	} else {
		struct fctx *tail = head->w.prev;

		tail->w.next = fc;
		w->prev = tail;
		head->w.prev = fc;
	}
	w->gprev = NULL;
	w->gnext = c->waiters;
	if (c->waiters)
		c->waiters->w.gprev = fc;
	c->waiters = fc;
	w->parked = true;
}

static void
unpark(struct core *c, struct fctx *fc)
{
	struct waiter *w = &fc->w;
	struct fctx   *head = w->mq->waiters;

	if (!w->parked)
		return;
	if (fc == head) {
		w->mq->waiters = w->next;
		if (w->next)
			w->next->w.prev = w->prev;
	} else {
		w->prev->w.next = w->next;
		if (w->next)
			w->next->w.prev = w->prev;
		else
			head->w.prev = w->prev;
	}
	if (w->gprev)
		w->gprev->w.gnext = w->gnext;
	else
		c->waiters = w->gnext;
	if (w->gnext)
		w->gnext->w.gprev = w->gprev;
	w->parked = false;
}

/* Serves the waiters of an mq while it has ready messages. */
static void
serve_waiters(struct core *c, struct mq *q, int64_t now)
{
	struct fctx *fc;

	while ((fc = q->waiters) != NULL && mq_ready(q) > 0) {
		unpark(c, fc);
		serve(c, fc, now);
	}
}

/* The fsm is about to free an mq: its waiters learn it is gone. */
static void
core_gone(void *arg, struct mq *q)
{
	struct core *c = arg;
	struct fctx *fc;

	while ((fc = q->waiters) != NULL) {
		unpark(c, fc);
		front_error(fc, MOM_ENOENT, "deleted while waiting");
	}
}

static void
ephemeral_name(char *buf, size_t len, uint64_t consumer)
{
	snprintf(buf, len, "_ephemeral-%016" PRIx64, consumer);
}

/*
 * Proposes an admin command from a JSON object (consumed); fc (or nobody)
 * gets the result as want says.  0, or MOM_ENOMEM (fc not answered).
 */
static int
admin_cmd(struct core *c, json_t *o, int64_t now, struct fctx *fc, uint8_t want)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s == NULL)
		return MOM_ENOMEM;
	mom_buf_reset(&c->cmd);
	fsm_cmd_encode(&c->cmd, CMD_ADMIN, now, s, strlen(s));
	free(s);
	return batch_add(c, fc, want);
}

/* A FETCH answer without messages: ready is what the queue still holds. */
static void
reply_empty(struct core *c, struct fctx *fc, uint64_t ready)
{
	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_FETCH, true, 0);
	mom_buf_put_varint(&c->reply, ready);
	mom_buf_put_varint(&c->reply, 0);
	front_reply(fc, &c->reply);
}

static void
do_fetch(struct core *c, struct fctx *fc, const uint8_t *body, size_t len, int64_t now)
{
	struct mom_fetch f;
	struct mom_rd    r;
	struct waiter   *w = &fc->w;
	struct mq       *q;
	struct sub      *s = NULL;
	uint64_t         i;
	int              rv;

	mom_rd_init(&r, body, len);
	if ((rv = mom_fetch_decode(&r, &f)) != 0) {
		reply_error(fc, rv, "%s", rv == MOM_EINVAL ? "bad queue name or topic pattern" :
		    "malformed fetch request");
		return;
	}
	if (!may_sub(fc, (const char *)f.name.p, f.name.n)) {
		reply_error(fc, MOM_EPERM, "permission denied: %s '%.*s'",
		    f.kind == MOM_KIND_QUEUE ? "consume from queue" : "subscribe to",
		    (int)f.name.n, f.name.p);
		return;
	}
	memset(w, 0, sizeof(*w));
	if (f.kind == MOM_KIND_QUEUE) {
		struct queue *qu = fsm_queue(c->fsm, (const char *)f.name.p, f.name.n);

		if (qu == NULL) {
			reply_error(fc, MOM_ENOENT, "no such queue '%.*s'", (int)f.name.n, f.name.p);
			return;
		}
		q = &qu->mq;
		w->qname = qu->name;
	} else {
		char   eph[64];
		const char *name = (const char *)f.durable.p;
		size_t nlen = f.durable.n;

		if (nlen == 0) {
			ephemeral_name(eph, sizeof(eph), f.consumer);
			name = eph;
			nlen = strlen(eph);
		}
		s = fsm_sub(c->fsm, (const char *)f.name.p, f.name.n, name, nlen);
		if (s == NULL && (f.flags & MOM_FF_CLOSE)) {
			reply_empty(c, fc, 0);
			return;
		}
		/*
		 * A wildcard pattern may name topics that come later; a plain
		 * name that is no topic is most likely a typo.
		 */
		if (s == NULL && mom_pattern_literal((const char *)f.name.p, f.name.n) &&
		    fsm_topic(c->fsm, (const char *)f.name.p, f.name.n) == NULL) {
			reply_error(fc, MOM_ENOENT, "no such topic '%.*s'", (int)f.name.n, f.name.p);
			return;
		}
		if (s == NULL && fc->resumed) {
			reply_error(fc, MOM_EINTERNAL, "subscription vanished while being created");
			return;
		}
		if (s == NULL) {
			json_t *o = json_pack("{s:s, s:s%, s:s%, s:b, s:I, s:i, s:I}",
			    "op", "sub.create",
			    "pattern", (const char *)f.name.p, f.name.n,
			    "name", name, nlen,
			    "durable", f.durable.n > 0,
			    "consumer", (json_int_t)f.consumer,
			    "from", f.from,
			    "from_time_ms", (json_int_t)f.from_time_ms);

			if (o != NULL)
				set_owner(fc, o);
			/* Once it is applied, this receive is handled again. */
			if (admin_cmd(c, o, now, fc, W_FETCH) != 0)
				reply_error(fc, MOM_ENOMEM, "out of memory");
			return;
		}
		s->last_seen = now;
		q = &s->mq;
	}

	/* Settle first: acks make room, nacks make messages ready again. */
	mom_rd_init(&r, f.ack_rd.p, f.ack_rd.len);
	r.off = f.ack_rd.off;
	for (i = 0; i < f.nacks; i++)
		(void)mq_ack(q, mom_rd_varint(&r), now);
	mom_rd_init(&r, f.nack_rd.p, f.nack_rd.len);
	r.off = f.nack_rd.off;
	for (i = 0; i < f.nnacks; i++) {
		uint64_t receipt = mom_rd_varint(&r), d = mom_rd_varint(&r);

		if (d & MOM_NACK_TOUCH)
			(void)mq_touch(q, receipt, now);
		else if (d & MOM_NACK_DEAD)
			(void)mq_dead(q, receipt, now);
		else
			(void)mq_nack(q, receipt, d >> 3, (d & MOM_NACK_UNSEEN) != 0, now);
	}
	if (f.flags & MOM_FF_CLOSE) {
		struct fctx *wf, *wnext;

		/* A poll of this consumer still parked would lease to no one. */
		for (wf = q->waiters; wf; wf = wnext) {
			wnext = wf->w.next;
			if (wf->w.consumer == f.consumer) {
				unpark(c, wf);
				wf->w.mq = NULL;
				serve(c, wf, now);
			}
		}
		mq_release(q, f.consumer, now);
		if (s != NULL && !s->durable) {
			(void)admin_cmd(c, json_pack("{s:s, s:s, s:s}", "op", "sub.delete",
			    "pattern", s->pattern, "name", s->name), now, NULL, W_NONE);
			q = NULL;
		}
		reply_empty(c, fc, q ? mq_ready(q) : 0);
		if (q != NULL)
			serve_waiters(c, q, now);
		return;
	}
	w->mq = q;
	w->consumer = f.consumer;
	w->kind = f.kind;
	w->noack = (f.flags & MOM_FF_NOACK) != 0;
	w->max = f.max_msgs ? (size_t)f.max_msgs : 1;
	if (w->max > 10000)
		w->max = 10000;
	w->max_bytes = f.max_bytes && f.max_bytes < (8u << 20) ? (size_t)f.max_bytes : (8u << 20);
	/* Someone else may be waiting on what a nack just made ready. */
	serve_waiters(c, q, now);
	if (mq_ready(q) > 0 || f.wait_ms == 0) {
		serve(c, fc, now);
		return;
	}
	w->deadline = now + (int64_t)(f.wait_ms < LONGPOLL_MAX_MS ? f.wait_ms : LONGPOLL_MAX_MS);
	park(c, fc);
}

/* Admin. */

static json_t *
stats_json(struct core *c, int64_t now)
{
	struct fsm *f = c->fsm;
	uint64_t    msgs = 0, inflight = 0, delivered = 0, acked = 0, redelivered = 0;
	uint64_t    dead = 0, expired = 0, bytes = 0, waiting = 0;
	size_t      it;
	void       *v;
	struct fctx *fc;

	for (it = 0; smap_next(&f->queues, &it, &v);) {
		struct mq *q = &((struct queue *)v)->mq;

		msgs += mq_count(q);
		inflight += q->nleased;
		bytes += q->bytes;
		delivered += q->st.delivered;
		acked += q->st.acked;
		redelivered += q->st.redelivered;
		dead += q->st.dead_lettered;
		expired += q->st.expired;
	}
	for (it = 0; smap_next(&f->subs, &it, &v);) {
		struct mq *q = &((struct sub *)v)->mq;

		msgs += mq_count(q);
		inflight += q->nleased;
		delivered += q->st.delivered;
		acked += q->st.acked;
		redelivered += q->st.redelivered;
	}
	for (fc = c->waiters; fc; fc = fc->w.gnext)
		waiting++;
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	    "s:I, s:I, s:I, s:I, s:I}",
	    "version", MOM_VERSION,
	    "uptime_ms", (json_int_t)(now - c->started),
	    "connections", (json_int_t)(c->front ? front_connections(c->front) : 0),
	    "queues", (json_int_t)f->queues.len,
	    "topics", (json_int_t)f->topics.len,
	    "subscriptions", (json_int_t)f->subs.len,
	    "published", (json_int_t)f->published,
	    "duplicates", (json_int_t)f->duplicates,
	    "messages", (json_int_t)msgs,
	    "bytes", (json_int_t)bytes,
	    "in_flight", (json_int_t)inflight,
	    "delivered", (json_int_t)delivered,
	    "acked", (json_int_t)acked,
	    "redelivered", (json_int_t)redelivered,
	    "dead_lettered", (json_int_t)dead,
	    "dead_letters_dropped", (json_int_t)f->dead_dropped,
	    "expired", (json_int_t)expired,
	    "waiting_consumers", (json_int_t)waiting);
}

static const char *
fsync_name(int mode)
{
	return mode == RIO_FSYNC_INTERVAL ? "interval" : mode == RIO_FSYNC_NEVER ? "never" :
	    "always";
}

/* The log's numbers, for stats: how well group commit does. */
static void
log_json(struct core *c, json_t *o)
{
	json_object_set_new(o, "fsync", json_string(fsync_name(c->cfg.fsync)));
	json_object_set_new(o, "log_index", json_integer((json_int_t)raft_last_index(&c->raft)));
	json_object_set_new(o, "log_applied",
	    json_integer((json_int_t)raft_last_applied(&c->raft)));
	json_object_set_new(o, "log_entries", json_integer((json_int_t)c->entries));
	json_object_set_new(o, "log_commands", json_integer((json_int_t)c->commands));
	json_object_set_new(o, "log_bytes", json_integer((json_int_t)c->log_bytes));
	json_object_set_new(o, "snapshots", json_integer((json_int_t)c->snapshots));
	{
		struct rio_stats st;

		rio_stats(&c->io, &st);
		json_object_set_new(o, "log_syncs", json_integer((json_int_t)st.syncs));
		json_object_set_new(o, "log_sync_us", json_integer((json_int_t)st.sync_us));
		json_object_set_new(o, "log_disk_bytes", json_integer((json_int_t)st.bytes));
	}
}

/* One labelled sample (a queue name is up to 200 bytes: one line at a time). */
static void
prom_q(struct mom_buf *b, const char *metric, const char *q, uint64_t v)
{
	char line[MOM_NAME_MAX + 128];

	snprintf(line, sizeof(line), "mom_queue_%s{queue=\"%s\"} %" PRIu64 "\n", metric, q, v);
	mom_buf_put(b, line, strlen(line));
}

/* Prometheus text exposition of the same numbers, per queue too. */
static char *
stats_prom(struct core *c, int64_t now)
{
	struct mom_buf b;
	json_t        *s = stats_json(c, now);
	const char    *k;
	json_t        *v;
	size_t         it;
	void          *p;
	char           line[512];

	mom_buf_init(&b);
	json_object_foreach(s, k, v) {
		if (!json_is_integer(v))
			continue;
		snprintf(line, sizeof(line), "# TYPE mom_%s %s\nmom_%s %" JSON_INTEGER_FORMAT "\n",
		    k, strcmp(k, "published") == 0 || strcmp(k, "delivered") == 0 ||
		    strcmp(k, "acked") == 0 || strcmp(k, "redelivered") == 0 ||
		    strcmp(k, "dead_lettered") == 0 || strcmp(k, "expired") == 0 ||
		    strcmp(k, "duplicates") == 0 || strcmp(k, "dead_letters_dropped") == 0 ?
		    "counter" : "gauge", k, json_integer_value(v));
		mom_buf_put(&b, line, strlen(line));
	}
	json_decref(s);
	{
		static const char *const hdr =
		    "# TYPE mom_queue_messages gauge\n"
		    "# TYPE mom_queue_ready gauge\n"
		    "# TYPE mom_queue_in_flight gauge\n"
		    "# TYPE mom_queue_consumers_waiting gauge\n"
		    "# TYPE mom_queue_published_total counter\n"
		    "# TYPE mom_queue_delivered_total counter\n"
		    "# TYPE mom_queue_acked_total counter\n"
		    "# TYPE mom_queue_redelivered_total counter\n"
		    "# TYPE mom_queue_dead_lettered_total counter\n";
		mom_buf_put(&b, hdr, strlen(hdr));
	}
	for (it = 0; smap_next(&c->fsm->queues, &it, &p);) {
		struct queue *q = p;
		struct fctx  *w;
		uint64_t      waiting = 0;

		for (w = q->mq.waiters; w != NULL; w = w->w.next)
			waiting++;
		prom_q(&b, "messages", q->name, mq_count(&q->mq));
		prom_q(&b, "ready", q->name, mq_ready(&q->mq));
		prom_q(&b, "in_flight", q->name, q->mq.nleased);
		prom_q(&b, "consumers_waiting", q->name, waiting);
		prom_q(&b, "published_total", q->name, q->mq.st.published);
		prom_q(&b, "delivered_total", q->name, q->mq.st.delivered);
		prom_q(&b, "acked_total", q->name, q->mq.st.acked);
		prom_q(&b, "redelivered_total", q->name, q->mq.st.redelivered);
		prom_q(&b, "dead_lettered_total", q->name, q->mq.st.dead_lettered);
	}
	mom_buf_put_u8(&b, 0);
	return (char *)mom_buf_steal(&b, NULL);
}

static const char *
jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/*
 * May this admin request change state?  Creating needs a mom.pub or
 * mom.sub pattern for the name (and records the creator); deleting,
 * purging and moving out of a queue are the creator's or an admin's.
 */
static bool
may_change(struct core *c, const struct fctx *fc, json_t *o, const char *op, char *denied,
    size_t dlen)
{
	const char   *name = jstr(o, "name");
	struct queue *q;
	struct topic *t;
	struct sub   *s;

	if (strcmp(op, "queue.create") == 0 || strcmp(op, "topic.create") == 0) {
		set_owner(fc, o);
		if (name == NULL || may_pub(fc, name, strlen(name)) ||
		    may_sub(fc, name, strlen(name)))
			return true;
		snprintf(denied, dlen, "permission denied: create %s '%s'",
		    op[0] == 'q' ? "queue" : "topic", name);
		return false;
	}
	if (claims_of(fc) == NULL)
		return true;
	if (strcmp(op, "queue.delete") == 0 || strcmp(op, "queue.purge") == 0) {
		if (name == NULL || (q = fsm_queue(c->fsm, name, strlen(name))) == NULL ||
		    owns(fc, q->owner))
			return true;
		snprintf(denied, dlen, "permission denied: only the creator of queue '%s' or an "
		    "admin may %s it", name, op + 6);
		return false;
	}
	if (strcmp(op, "queue.move") == 0) {
		const char *src = jstr(o, "src"), *dst = jstr(o, "dst");

		if (src != NULL && (q = fsm_queue(c->fsm, src, strlen(src))) != NULL &&
		    !owns(fc, q->owner)) {
			snprintf(denied, dlen, "permission denied: only the creator of queue '%s' or "
			    "an admin may move its messages", src);
			return false;
		}
		if (dst != NULL && !may_pub(fc, dst, strlen(dst))) {
			snprintf(denied, dlen, "permission denied: publish to queue '%s'", dst);
			return false;
		}
		return true;
	}
	if (strcmp(op, "topic.delete") == 0) {
		if (name == NULL || (t = fsm_topic(c->fsm, name, strlen(name))) == NULL ||
		    owns(fc, t->owner))
			return true;
		snprintf(denied, dlen, "permission denied: only the creator of topic '%s' or an "
		    "admin may delete it", name);
		return false;
	}
	if (strcmp(op, "sub.create") == 0) {
		/* A durable subscription made ahead of its first receive (HTTP PUT). */
		const char *pat = jstr(o, "pattern");

		set_owner(fc, o);
		if (pat == NULL || may_sub(fc, pat, strlen(pat)))
			return true;
		snprintf(denied, dlen, "permission denied: subscribe to '%s'", pat);
		return false;
	}
	if (strcmp(op, "sub.delete") == 0) {
		const char *pat = jstr(o, "pattern");

		if (pat == NULL || name == NULL ||
		    (s = fsm_sub(c->fsm, pat, strlen(pat), name, strlen(name))) == NULL ||
		    owns(fc, s->owner))
			return true;
		snprintf(denied, dlen, "permission denied: only the creator of subscription '%s' "
		    "or an admin may delete it", name);
		return false;
	}
	snprintf(denied, dlen, "permission denied: %s needs an admin token", op);
	return false;
}

static void
do_admin(struct core *c, struct fctx *fc, const uint8_t *body, size_t len, int64_t now)
{
	struct mom_rd     r;
	const uint8_t    *js;
	size_t            jlen, it;
	json_t           *o, *res_json = NULL;
	const char       *op, *name;
	void             *v;

	mom_rd_init(&r, body, len);
	js = mom_rd_bytes(&r, &jlen);
	if (r.err || (o = json_loadb((const char *)js, jlen, 0, NULL)) == NULL ||
	    !json_is_object(o)) {
		reply_error(fc, MOM_EBADDATA, "malformed admin request");
		return;
	}
	op = jstr(o, "op");
	name = jstr(o, "name");
	if (op == NULL) {
		reply_error(fc, MOM_EBADDATA, "admin request without an op");
		json_decref(o);
		return;
	}
	if (strcmp(op, "queue.list") == 0) {
		res_json = json_array();
		for (it = 0; smap_next(&c->fsm->queues, &it, &v);)
			json_array_append_new(res_json, fsm_queue_json(v));
	} else if (strcmp(op, "topic.list") == 0) {
		res_json = json_array();
		for (it = 0; smap_next(&c->fsm->topics, &it, &v);)
			json_array_append_new(res_json, fsm_topic_json(v));
	} else if (strcmp(op, "sub.list") == 0) {
		const char *topic = jstr(o, "topic");

		res_json = json_array();
		for (it = 0; smap_next(&c->fsm->subs, &it, &v);) {
			struct sub *s = v;

			if (topic == NULL || strcmp(topic, s->pattern) == 0 ||
			    (mom_name_ok(topic) && mom_match(s->pattern, topic)))
				json_array_append_new(res_json, fsm_sub_json(s));
		}
	} else if (strcmp(op, "queue.info") == 0 || strcmp(op, "topic.info") == 0) {
		bool q = op[0] == 'q';

		if (name == NULL || !mom_name_ok(name)) {
			reply_error(fc, MOM_EINVAL, "bad %s name", q ? "queue" : "topic");
			json_decref(o);
			return;
		}
		if (q && (v = fsm_queue(c->fsm, name, strlen(name))) != NULL)
			res_json = fsm_queue_json(v);
		else if (!q && (v = fsm_topic(c->fsm, name, strlen(name))) != NULL)
			res_json = fsm_topic_json(v);
		else {
			reply_error(fc, MOM_ENOENT, "no such %s '%s'", q ? "queue" : "topic", name);
			json_decref(o);
			return;
		}
	} else if (strcmp(op, "stats") == 0) {
		res_json = stats_json(c, now);
		log_json(c, res_json);
	} else if (strcmp(op, "cluster.status") == 0) {
		/* A cluster of one until brokers replicate. */
		res_json = json_pack("{s:s, s:s, s:I, s:I, s:I, s:[{s:s, s:s, s:b, s:I}], s:s, s:I}",
		    "mode", "single",
		    "leader", "self",
		    "term", (json_int_t)c->raft.current_term,
		    "commit_index", (json_int_t)c->raft.commit_index,
		    "applied_index", (json_int_t)raft_last_applied(&c->raft),
		    "nodes", "id", "self", "state", "leader", "healthy", 1, "lag", (json_int_t)0,
		    "version", MOM_VERSION,
		    "uptime_ms", (json_int_t)(now - c->started));
	} else if (strcmp(op, "stats.prom") == 0) {
		char *t = stats_prom(c, now);

		res_json = json_pack("{s:s}", "text", t ? t : "");
		free(t);
	} else if (strncmp(op, "queue.", 6) == 0 || strncmp(op, "topic.", 6) == 0 ||
	    strcmp(op, "sub.delete") == 0 || strcmp(op, "sub.create") == 0) {
		/* A state change: through the command door. */
		char denied[300];

		if (!may_change(c, fc, o, op, denied, sizeof(denied))) {
			front_error(fc, MOM_EPERM, denied);
			json_decref(o);
			return;
		}
		if (admin_cmd(c, o, now, fc, W_ADMIN) != 0)
			front_error(fc, MOM_ENOMEM, "out of memory");
		return;
	} else {
		reply_error(fc, MOM_EINVAL, "unknown admin request '%s'", op);
		json_decref(o);
		return;
	}
	json_decref(o);
	reply_json(c, fc, res_json ? res_json : json_object());
	json_decref(res_json);
}

static void
handle(struct core *c, struct fctx *fc, int64_t now)
{
	const uint8_t *p = nng_msg_body(fc->req);
	size_t         len = nng_msg_len(fc->req);

	c->requests++;
	p += fc->body_off;
	len -= fc->body_off;
	switch (fc->op) {
	case MOM_OP_PING:
		do_ping(c, fc, now);
		break;
	case MOM_OP_PUBLISH:
		do_publish(c, fc, p, len, now);
		break;
	case MOM_OP_FETCH:
		do_fetch(c, fc, p, len, now);
		break;
	case MOM_OP_ADMIN:
		do_admin(c, fc, p, len, now);
		break;
	default:
		front_error(fc, MOM_EPROTO, "unknown request");
	}
}

/* Timers: leases, delays, retention, long-poll deadlines, idle subs. */
static int64_t
tick(struct core *c, int64_t now)
{
	int64_t      next = now + TICK_MAX_MS, t;
	size_t       it;
	void        *v;
	struct fctx *fc, *gnext;

	/* Retention and the de-duplication window expire through the log. */
	if (!c->tick_inflight && fsm_due(c->fsm, now)) {
		mom_buf_reset(&c->cmd);
		fsm_cmd_encode(&c->cmd, CMD_TICK, now, NULL, 0);
		if (batch_add(c, NULL, W_TICK) == 0)
			c->tick_inflight = true;
	}
	{
		uint64_t       k;
		struct porder *po;

		for (it = 0; umap_next(&c->porders, &it, &k, &v);) {
			po = v;
			porder_drain(c, po, now, false);
			if (po->pending != NULL && po->pending->pub_until < next)
				next = po->pending->pub_until;
			if (po->pending == NULL && now - po->last_ms > PRODUCER_IDLE_MS) {
				umap_del(&c->porders, k);
				free(po);
				it = 0;
			}
		}
	}
	for (it = 0; smap_next(&c->fsm->queues, &it, &v);) {
		struct mq *q = &((struct queue *)v)->mq;

		if ((t = mq_tick(q, now)) < next)
			next = t;
		serve_waiters(c, q, now);
	}
	for (it = 0; smap_next(&c->fsm->subs, &it, &v);) {
		struct sub *s = v;

		if ((t = mq_tick(&s->mq, now)) < next)
			next = t;
		serve_waiters(c, &s->mq, now);
		if (s->mq.waiters != NULL)
			s->last_seen = now;
	}
	/* Idle ephemeral subscriptions: their consumer is gone. */
	for (it = 0; smap_next(&c->fsm->subs, &it, &v);) {
		struct sub *s = v;

		if (s->durable || now - s->last_seen < EPHEMERAL_IDLE_MS)
			continue;
		log_debug("dropping idle ephemeral subscription %s on %s", s->name, s->pattern);
		s->last_seen = now; /* asked once; again only if this one fails */
		(void)admin_cmd(c, json_pack("{s:s, s:s, s:s}", "op", "sub.delete",
		    "pattern", s->pattern, "name", s->name), now, NULL, W_NONE);
	}
	for (fc = c->waiters; fc; fc = gnext) {
		gnext = fc->w.gnext;
		if (fc->w.deadline <= now) {
			unpark(c, fc);
			serve(c, fc, now);
		} else if (fc->w.deadline < next)
			next = fc->w.deadline;
	}
	return next;
}

/*
 * The log.  libraft applies committed entries through these callbacks,
 * on this thread (inside rio_step or raft_start).
 */

static void
fail_waiters(struct core *c, struct pwait *w, size_t n, int status)
{
	int         err = MOM_EUNAVAIL;
	const char *why = raft_strerror(status);
	char        msg[256];
	size_t      i;

	switch (status) {
	case RAFT_NOSPACE:
		err = MOM_EFULL;
		why = "the broker's disk is full";
		break;
	case RAFT_NOTLEADER:
	case RAFT_LEADERSHIPLOST:
		err = MOM_ENOTLEADER;
		break;
	case RAFT_CANCELED:
	case RAFT_SHUTDOWN:
		err = MOM_ECLOSED;
		why = "broker shutting down";
		break;
	case RAFT_NOMEM:
		err = MOM_ENOMEM;
		break;
	}
	snprintf(msg, sizeof(msg), "not stored: %s", why);
	for (i = 0; i < n; i++) {
		if (w[i].want == W_TICK)
			c->tick_inflight = false;
		if (w[i].fc != NULL)
			front_error(w[i].fc, err, msg);
	}
}

/* A command's result reaches whoever waits for it. */
static void
deliver(struct core *c, const struct pwait *w, struct fsm_result *res, int64_t now)
{
	switch (w->want) {
	case W_PUBLISH:
		publish_reply(c, w->fc, res);
		return;
	case W_ADMIN:
		if (res->status != 0)
			front_error(w->fc, res->status, res->err);
		else if (res->json == NULL) {
			json_t *e = json_object();

			reply_json(c, w->fc, e);
			json_decref(e);
		} else
			reply_json(c, w->fc, res->json);
		return;
	case W_FETCH:
		if (res->status != 0 && res->status != MOM_EEXIST) {
			front_error(w->fc, res->status, res->err);
			return;
		}
		w->fc->resumed = true;
		handle(c, w->fc, now);
		return;
	case W_TICK:
		c->tick_inflight = false;
		break;
	}
	if (res->status != 0)
		log_debug("command refused: %s", res->err);
}

static int
rfsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
	struct core      *c = rf->data;
	raft_index        index = raft_last_applied(&c->raft) + 1;
	struct prop      *p;
	struct mom_rd     r;
	struct fsm_result res;
	uint64_t          n, i;
	int64_t           now = mom_now_ms();

	*result = NULL;
	/* Ours if we proposed it (then it is the oldest in flight). */
	for (p = c->phead; p != NULL && p->req.index < index; p = p->next)
		;
	if (p != NULL && (p->req.index != index || p->answered))
		p = NULL;
	mom_rd_init(&r, buf->base, buf->len);
	n = mom_rd_varint(&r);
	for (i = 0; i < n; i++) {
		const uint8_t *cmd;
		size_t         len;

		cmd = mom_rd_bytes(&r, &len);
		if (r.err)
			break;
		fsm_apply(c->fsm, cmd, len, &res);
		if (p != NULL && i < p->n)
			deliver(c, &p->w[i], &res, now);
		else if (res.status != 0)
			log_debug("command refused: %s", res.err);
		json_decref(res.json);
	}
	if (r.err)
		log_warnx("log entry %llu is malformed: %llu of its %llu commands applied",
		    (unsigned long long)index, (unsigned long long)i, (unsigned long long)n);
	c->commands += i;
	if (p != NULL) {
		if (i < p->n)
			fail_waiters(c, p->w + i, p->n - i, RAFT_MALFORMED);
		p->answered = true;
	}
	return 0;
}

static int
rfsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct core    *c = rf->data;
	struct mom_buf  b;
	struct raft_buffer *rb;

	mom_buf_init(&b);
	if (fsm_snapshot(c->fsm, &b) != 0) {
		mom_buf_fini(&b);
		return RAFT_NOMEM;
	}
	if ((rb = raft_malloc(sizeof(*rb))) == NULL ||
	    (rb->base = raft_malloc(b.len)) == NULL) {
		raft_free(rb);
		mom_buf_fini(&b);
		return RAFT_NOMEM;
	}
	memcpy(rb->base, b.data, b.len);
	rb->len = b.len;
	*bufs = rb;
	*n_bufs = 1;
	/* The next one after as much log again as the state is big, at least snapshot_bytes. */
	c->snap_at = c->log_bytes + (2 * b.len > c->cfg.snapshot_bytes ? 2 * b.len :
	    c->cfg.snapshot_bytes);
	raft_set_snapshot_threshold(&c->raft, UINT32_MAX);
	c->snapshots++;
	log_debug("snapshot: %zu bytes", b.len);
	mom_buf_fini(&b);
	return 0;
}

static int
rfsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct core *c = rf->data;
	int          rv;

	if ((rv = fsm_restore(c->fsm, buf->base, buf->len)) != 0) {
		log_warnx("the snapshot in the data directory is unusable (%s)",
		    rv == MOM_ENOMEM ? "out of memory" : "malformed");
		return rv == MOM_ENOMEM ? RAFT_NOMEM : RAFT_MALFORMED;
	}
	raft_free(buf->base);
	return 0;
}

static void
prop_unlink(struct core *c, struct prop *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->phead = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->ptail = p->prev;
}

static void
prop_done(struct raft_apply *req, int status, void *result)
{
	struct prop *p = req->data;
	struct core *c = p->c;

	(void)result;
	if (!p->answered)
		fail_waiters(c, p->w, p->n, status != 0 ? status : RAFT_MALFORMED);
	prop_unlink(c, p);
	free(p->w);
	free(p);
}

/* A message should leave an mq: the settlement joins this turn's CMD_SETTLE. */
static void
core_settle(void *arg, const struct queue *q, const struct sub *s, uint64_t seq, int how)
{
	struct core *c = arg;

	/*
	 * While the log is replayed at start the leader's own settlements
	 * follow in the log; a settling lease asked for here is asked again
	 * after its ack wait.
	 */
	if (!c->ready)
		return;
	fsm_settle_put(&c->settles, q, s, seq, how);
	c->nsettles++;
}

/* Proposes this turn's commands as one log entry. */
static void
flush(struct core *c, int64_t now)
{
	struct raft_buffer b;
	struct prop       *p;
	struct mom_buf     e;
	int                rv;

	if (c->nsettles > 0) {
		mom_buf_init(&e);
		mom_buf_put_varint(&e, c->nsettles);
		mom_buf_put(&e, c->settles.data, c->settles.len);
		mom_buf_reset(&c->cmd);
		fsm_cmd_encode(&c->cmd, CMD_SETTLE, now, e.data, e.len);
		mom_buf_fini(&e);
		if (batch_add(c, NULL, W_NONE) != 0)
			return; /* the settling leases ask again later */
		mom_buf_reset(&c->settles);
		c->nsettles = 0;
	}
	if (c->bn == 0)
		return;
	/* The entry: the count (LEB128), then the commands. */
	{
		uint8_t  hdr[10];
		size_t   h = 0;
		uint64_t v = c->bn;

		do {
			hdr[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v != 0);
		b.len = h + c->batch.len;
		b.base = raft_malloc(b.len);
		p = calloc(1, sizeof(*p));
		if (b.base == NULL || p == NULL) {
			raft_free(b.base);
			free(p);
			mom_buf_reset(&c->batch);
			fail_waiters(c, c->bw, c->bn, RAFT_NOMEM);
			c->bn = 0;
			return;
		}
		memcpy(b.base, hdr, h);
		memcpy((uint8_t *)b.base + h, c->batch.data, c->batch.len);
		mom_buf_reset(&c->batch);
	}
	p->c = c;
	p->w = c->bw;
	p->n = c->bn;
	p->req.data = p;
	c->bw = NULL;
	c->bn = c->bcap = 0;
	if ((rv = raft_apply(&c->raft, &p->req, &b, 1, prop_done)) != 0) {
		raft_free(b.base);
		if (rv != RAFT_NOSPACE || !c->disk_full)
			log_warnx("not stored: %s", raft_errmsg(&c->raft));
		c->disk_full = rv == RAFT_NOSPACE;
		fail_waiters(c, p->w, p->n, rv);
		free(p->w);
		free(p);
		return;
	}
	if (c->disk_full) {
		log_info("the data directory takes writes again");
		c->disk_full = false;
	}
	p->prev = c->ptail;
	if (c->ptail)
		c->ptail->next = p;
	else
		c->phead = p;
	c->ptail = p;
	c->entries++;
	c->log_bytes += b.len;
	if (c->log_bytes >= c->snap_at)
		raft_set_snapshot_threshold(&c->raft, 1);
}

/* Serves the long polls of every mq that got messages. */
static void
serve_touched(struct core *c, int64_t now)
{
	struct mq *q;

	while ((q = c->fsm->touched) != NULL) {
		c->fsm->touched = q->touched_next;
		q->touched = false;
		serve_waiters(c, q, now);
	}
}

/*
 * Proposes what this turn built and drives the io until nothing is due
 * now: with --fsync always, one rio_step syncs every append of the turn
 * and libraft applies them (the replies go out from rfsm_apply).
 * Applying may build more commands (a receive that needed its
 * subscription, acks): a few rounds, bounded.
 */
static void
pump(struct core *c)
{
	int i, rv;

	for (i = 0; i < 16; i++) {
		flush(c, mom_now_ms());
		while (rio_poll(&c->io) == 0) {
			if ((rv = rio_step(&c->io)) != 0) {
				/*
				 * A failed fsync: what reached the disk is unknown.
				 * Nothing unconfirmed was confirmed; exit so that a
				 * restart recovers from what the disk holds (the
				 * PostgreSQL rule after fsyncgate).
				 */
				log_warnx("the data directory failed (%s): stopping; a restart "
				    "recovers what was confirmed", c->io.errmsg);
				_exit(MOM_EXIT_FAIL);
			}
		}
		serve_touched(c, mom_now_ms());
		if (c->bn == 0 && c->nsettles == 0)
			break;
	}
	/*
	 * After a snapshot libraft freed the log entries it covers: give the
	 * pages back (glibc keeps freed memory otherwise), once per snapshot.
	 */
	if (c->trimmed != c->snapshots) {
		c->trimmed = c->snapshots;
		malloc_trim(0);
	}
}

static void
barrier_cb(struct raft_barrier *req, int status)
{
	struct core *c = req->data;

	if (status != 0) {
		c->start_err = status;
		snprintf(c->start_msg, sizeof(c->start_msg), "the log did not start: %s",
		    raft_strerror(status));
	} else
		c->ready = true;
}

/* raft_close takes a callback; rio closes synchronously, nothing waits for it. */
static void
close_cb(struct raft *r)
{
	(void)r;
}

/* rio's sync thread: a sync finished, rio_step has work. */
static void
core_wake(void *arg)
{
	struct core *c = arg;

	pthread_mutex_lock(&c->mu);
	c->io_wake = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Opens the log in cfg.dir, replays it and becomes its (only) leader. */
static int
log_start(struct core *c)
{
	struct rio_config         rc;
	struct raft_configuration conf;
	struct raft_barrier       barrier;
	int64_t                   deadline;
	int                       rv;

	memset(&rc, 0, sizeof(rc));
	rc.dir = c->cfg.dir;
	rc.fsync = c->cfg.fsync;
	rc.fsync_interval_ms = c->cfg.fsync_interval_ms;
	/* The syncs run on rio's thread: the core serves on meanwhile. */
	rc.wake = core_wake;
	rc.wake_arg = c;
	if (rio_create(&c->io, &rc) != 0) {
		snprintf(c->start_msg, sizeof(c->start_msg), "out of memory");
		return -1;
	}
	c->rfsm.version = 1;
	c->rfsm.data = c;
	c->rfsm.apply = rfsm_apply;
	c->rfsm.snapshot = rfsm_snapshot;
	c->rfsm.restore = rfsm_restore;
	if ((rv = raft_init(&c->raft, &c->io, &c->rfsm, 1, "self")) != 0) {
		snprintf(c->start_msg, sizeof(c->start_msg), "%s", c->io.errmsg[0] ?
		    c->io.errmsg : raft_strerror(rv));
		rio_destroy(&c->io);
		return -1;
	}
	c->raft.data = c;
	rio_attach(&c->io, &c->raft);
	raft_set_snapshot_threshold(&c->raft, UINT32_MAX);
	raft_set_snapshot_trailing(&c->raft, 64);
	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, 1, "self", RAFT_VOTER);
	if (rv == 0)
		rv = raft_bootstrap(&c->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == 0 || rv == RAFT_CANTBOOTSTRAP)
		rv = raft_start(&c->raft);
	if (rv != 0) {
		snprintf(c->start_msg, sizeof(c->start_msg), "%s", raft_errmsg(&c->raft));
		goto fail;
	}
	/*
	 * Leader of one, then a barrier: everything in the log is applied.
	 * Replaying a large log takes its time inside rio_step; the bound is
	 * for a log that never becomes ready.
	 */
	deadline = mom_now_ms() + 300000;
	memset(&barrier, 0, sizeof(barrier));
	barrier.data = c;
	while (!c->ready && c->start_err == 0 && mom_now_ms() < deadline) {
		if (raft_state(&c->raft) == RAFT_LEADER && barrier.cb == NULL &&
		    (rv = raft_barrier(&c->raft, &barrier, barrier_cb)) != 0) {
			snprintf(c->start_msg, sizeof(c->start_msg), "%s", raft_errmsg(&c->raft));
			goto fail;
		}
		/* -1: a sync runs on rio's thread (or nothing is due). */
		if ((rv = rio_poll(&c->io)) != 0)
			usleep(rv < 0 || rv > 10 ? 1000 : (useconds_t)rv * 1000);
		if ((rv = rio_step(&c->io)) != 0) {
			snprintf(c->start_msg, sizeof(c->start_msg), "%s", c->io.errmsg);
			goto fail;
		}
	}
	if (c->ready)
		return 0;
	if (c->start_err == 0)
		snprintf(c->start_msg, sizeof(c->start_msg), "the log did not become ready in 300 s");
fail:
	c->ready = false;
	raft_close(&c->raft, close_cb);
	rio_destroy(&c->io);
	return -1;
}

static void
log_stop(struct core *c)
{
	int64_t deadline = mom_now_ms() + 5000;

	/* What was proposed is finished (confirmed or refused) before closing. */
	while (c->phead != NULL && mom_now_ms() < deadline) {
		int64_t w = rio_poll(&c->io);

		if (w != 0)
			usleep(w < 0 || w > 10 ? 1000 : (useconds_t)w * 1000);
		pump(c);
	}
	/* Whatever --fsync says, a clean stop leaves everything on disk. */
	if (rio_store(&c->io) != NULL && store_sync(rio_store(&c->io)) != 0)
		log_warnx("the last sync of the log failed: %s", store_errmsg(rio_store(&c->io)));
	raft_close(&c->raft, close_cb);
	rio_destroy(&c->io);
}

static void *
core_main(void *arg)
{
	struct core    *c = arg;
	int64_t         next_tick = mom_now_ms();
	struct timespec ts;
	int             rv;

	rv = log_start(c);
	pthread_mutex_lock(&c->mu);
	c->started_up = true;
	c->start_ok = rv == 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (rv != 0)
		return NULL;
	c->started = mom_now_ms();
	for (;;) {
		struct fctx *batch, *fc, *nfc;
		int64_t      now, wake, w;
		bool         stop;

		wake = next_tick;
		if ((w = rio_poll(&c->io)) >= 0 && mom_now_ms() + w < wake)
			wake = mom_now_ms() + w;
		pthread_mutex_lock(&c->mu);
		while (c->qhead == NULL && !c->stop && !c->io_wake) {
			int64_t wait = wake - mom_now_ms();

			if (wait <= 0)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		}
		batch = c->qhead;
		c->qhead = c->qtail = NULL;
		c->qlen = 0;
		stop = c->stop;
		c->io_wake = false;
		pthread_mutex_unlock(&c->mu);

		now = mom_now_ms();
		for (fc = batch; fc; fc = nfc) {
			nfc = fc->qnext;
			handle(c, fc, now);
		}
		serve_touched(c, now);
		if (now >= next_tick || stop)
			next_tick = tick(c, now);
		pump(c);
		if (stop)
			break;
	}
	{
		size_t         it;
		uint64_t       k;
		void          *v;

		for (it = 0; umap_next(&c->porders, &it, &k, &v);) {
			porder_drain(c, v, mom_now_ms(), true);
			free(v);
		}
		umap_fini(&c->porders);
	}
	log_stop(c);
	/* Answer every long poll (empty) so that clients move on. */
	while (c->waiters) {
		struct fctx *fc = c->waiters;

		unpark(c, fc);
		fc->w.mq = NULL;
		serve(c, fc, mom_now_ms());
	}
	return NULL;
}

int
core_start(struct core **cp, struct fsm *fsm, const struct core_config *cfg, char *err,
    size_t errlen)
{
	struct core *c;
	bool         ok;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return MOM_ENOMEM;
	c->fsm = fsm;
	c->cfg = *cfg;
	if (c->cfg.queue_max == 0)
		c->cfg.queue_max = 65536;
	if (c->cfg.snapshot_bytes == 0)
		c->cfg.snapshot_bytes = 64u << 20;
	c->snap_at = c->cfg.snapshot_bytes;
	c->next_receipt = 1;
	c->started = mom_now_ms();
	mom_buf_init(&c->scratch);
	mom_buf_init(&c->reply);
	mom_buf_init(&c->cmd);
	mom_buf_init(&c->batch);
	mom_buf_init(&c->settles);
	umap_init(&c->porders);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	fsm->gone = core_gone;
	fsm->gone_arg = c;
	fsm_set_settle(fsm, core_settle, c);
	if (pthread_create(&c->thread, NULL, core_main, c) != 0) {
		snprintf(err, errlen, "cannot start the core thread");
		core_free(c);
		return MOM_ENOMEM;
	}
	/* The log is replayed before anyone is served. */
	pthread_mutex_lock(&c->mu);
	while (!c->started_up)
		pthread_cond_wait(&c->cv, &c->mu);
	ok = c->start_ok;
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		pthread_join(c->thread, NULL);
		snprintf(err, errlen, "%s", c->start_msg);
		core_free(c);
		return MOM_EINTERNAL;
	}
	*cp = c;
	return 0;
}

void
core_stop(struct core *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
}

void
core_free(struct core *c)
{
	if (c == NULL)
		return;
	c->fsm->gone = NULL;
	fsm_set_settle(c->fsm, NULL, NULL);
	mom_buf_fini(&c->scratch);
	mom_buf_fini(&c->reply);
	mom_buf_fini(&c->cmd);
	mom_buf_fini(&c->batch);
	mom_buf_fini(&c->settles);
	free(c->bw);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

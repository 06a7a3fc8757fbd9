/*
 * front.c: the nng data plane (see front.h).
 *
 * The plane speaks nng's wire protocol itself, on nng_stream connections,
 * as http.c does for HTTP: the SP handshake (8 bytes each way: 0 'S' 'P'
 * 0, the protocol, 0 0; we are rep0, the peer must be req0), then
 * messages of an 8-byte big-endian length (ipc:// puts a type byte 1
 * before it) and a body that starts with the request's backtrace (4-byte
 * words, the last with its top bit set), which the reply carries back.
 *
 * Owning the framing is what lets the broker bound what a peer can make
 * it hold, which nng's socket layer cannot (it buffers any frame up to its
 * receive limit, for as long as the sender takes):
 *   - at most max_conns connections (beyond: closed at once, logged);
 *   - a frame is received into a buffer that grows as its bytes arrive,
 *     charged to one budget for every partially received frame; when the
 *     budget is full, the connections whose frames started longest ago
 *     are dropped to make room (slow senders, not the one that is
 *     sending now);
 *   - a frame must be complete within frame_ms of its first byte, the
 *     handshake within HELLO_MS;
 *   - a connection's requests in the core: at most max_polls long polls
 *     ("busy" beyond), and while they hold more than CORE_BYTES bytes the
 *     connection is not read (TCP pushes back on its sender).
 * A frame that is not ours (bad magic, version or op, no backtrace) costs
 * its sender the connection; the event is logged and the broker serves on.
 *
 * Locking: fr->mu guards the connection list and the budget, c->mu a
 * connection; fr->mu is never taken while holding c->mu except to charge
 * the budget (budget_*), which takes no c->mu.  The core's answers come on
 * the core's thread (or the submitting one for "busy") with no lock held.
 */
#include <sys/queue.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "net/auth.h"
#include "core/core.h"
#include "net/front.h"
#include "log.h"
#include "mom.h"
#include "tls.h"
#include "wire.h"

#define HELLO_MS    10000     /* the SP handshake */
#define CHUNK_MIN   (64u << 10) /* a frame's first buffer, at most */
#define MAX_HOPS    8         /* backtrace words (nng's default TTL) */
#define POLLS_TOTAL 65536     /* long polls in the core from every connection */
#define LOG_EVERY   10000     /* ms between two log lines about one limit */
#define PROTO_REQ0  0x30
#define PROTO_REP0  0x31

/* A reply on its way out: the framing, the backtrace, the frame. */
struct fout {
	STAILQ_ENTRY(fout) link;
	size_t             len;
	uint8_t            data[];
};

enum { CS_HELLO, CS_HEAD, CS_BODY };

struct fconn {
	struct front      *fr;
	nng_stream        *s;
	nng_aio           *rx, *tx;
	pthread_mutex_t    mu;
	uint64_t           id;
	bool               ipc;        /* a type byte before each length */
	int                state;
	uint8_t            hello[8];   /* ours, then the peer's */
	uint8_t            head[9];
	size_t             got;        /* of hello, head or the frame */
	uint8_t           *buf;        /* the frame being received */
	size_t             flen, fcap;
	size_t             charged;    /* of the budget (fr->mu) */
	int64_t            fstart;     /* when its first byte came (mono ms) */
	int                in_core, polls;
	size_t             core_bytes;
	bool               rx_busy, tx_busy, closed, reaped, paused, hello_sent;
	bool               notify_gone;
	STAILQ_HEAD(, fout) outq;
	size_t             out_off;    /* of the first of outq */
	TAILQ_ENTRY(fconn) link;       /* fr->conns */
	TAILQ_ENTRY(fconn) plink;      /* fr->partial, oldest frame first */
	bool               in_partial; /* (fr->mu) */
	SLIST_ENTRY(fconn) dlink;      /* fr->dead */
	char               who[64];
};

/* One request in the core. */
struct freq {
	struct core_req  req;
	struct fconn    *c;
	uint8_t         *msg;    /* backtrace + frame, as received */
	size_t           len;
	size_t           hops;   /* backtrace length in bytes */
	bool             poll;
	struct mom_slice tok;    /* its token, in msg */
	struct bclaims  *claims; /* its token's claims (auth.h); NULL: open broker */
};

struct limit_log {
	int64_t  last;
	uint64_t count;
};

/* What a listener's accept (or pause) callback is for. */
struct acc_arg {
	struct front *fr;
	int           i;
	bool          pause;
};

struct front {
	struct core         *core;
	struct auth         *auth;
	size_t               max_frame, budget, core_bytes;
	int                  max_conns, max_polls;
	int64_t              frame_ms;
	nng_stream_listener *ls[FRONT_MAX_LISTEN];
	nng_aio             *acc[FRONT_MAX_LISTEN], *pause[FRONT_MAX_LISTEN];
	bool                 ipc[FRONT_MAX_LISTEN];
	int                  nls;
	pthread_mutex_t      mu;
	pthread_cond_t       cv;
	TAILQ_HEAD(, fconn)  conns;
	TAILQ_HEAD(, fconn)  partial;
	SLIST_HEAD(, fconn)  dead;
	int                  nconns;
	size_t               charged;
	uint64_t             next_id;
	bool                 closing, reaper_stop;
	atomic_bool          stopping; /* closing, for readers without fr->mu */
	pthread_t            reaper;
	atomic_int           live, polls;
	atomic_int           answers;  /* replies queued or being written */
	struct acc_arg       accs[FRONT_MAX_LISTEN][2];
	struct limit_log     log_conns, log_budget, log_slow, log_polls;
};

/* This plane's connection ids (struct core_req's conn). */
#define FRONT_CONN(id) ((uint64_t)1 << 62 | (id))

static void rx_cb(void *);
static void tx_cb(void *);
static void freq_reply(struct core_req *, const uint8_t *, size_t);

/*
 * A limit acted: true now and then (then *n is how often since the last
 * line), so that a flood of refusals logs one line per LOG_EVERY.
 * fr->mu held.
 */
static bool
limit_due(struct limit_log *l, unsigned long long *n)
{
	int64_t now = mom_mono_ms();

	l->count++;
	if (l->last != 0 && now - l->last < LOG_EVERY)
		return false;
	*n = (unsigned long long)l->count;
	l->count = 0;
	l->last = now;
	return true;
}

int
front_connections(struct front *fr)
{
	return atomic_load(&fr->live);
}

static void
peer_name(nng_stream *s, bool ipc, char *buf, size_t len)
{
	nng_sockaddr sa;

	snprintf(buf, len, ipc ? "ipc client" : "unknown peer");
	if (ipc || nng_stream_get_addr(s, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET) {
		const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;

		snprintf(buf, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
		    (unsigned)((sa.s_in.sa_port & 0xff) << 8 | sa.s_in.sa_port >> 8));
	} else if (sa.s_family == NNG_AF_INET6)
		snprintf(buf, len, "[ipv6 client]");
}

/* The budget for partially received frames. */

static void
budget_release(struct front *fr, struct fconn *c)
{
	pthread_mutex_lock(&fr->mu);
	fr->charged -= c->charged;
	c->charged = 0;
	if (c->in_partial) {
		TAILQ_REMOVE(&fr->partial, c, plink);
		c->in_partial = false;
	}
	pthread_mutex_unlock(&fr->mu);
}

/*
 * Charges n more bytes for c's frame.  When the budget is full, the
 * frames that started longest ago make room: their connections are
 * closed (their callbacks clean up) and their charges dropped now.
 * -1: no room even so (c's own frame is the oldest).
 */
static int
budget_charge(struct front *fr, struct fconn *c, size_t n)
{
	struct fconn      *o;
	unsigned long long n_;
	int                rv = 0;

	pthread_mutex_lock(&fr->mu);
	if (!c->in_partial) {
		TAILQ_INSERT_TAIL(&fr->partial, c, plink);
		c->in_partial = true;
	}
	while (fr->charged + n > fr->budget) {
		if ((o = TAILQ_FIRST(&fr->partial)) == c) {
			rv = -1;
			break;
		}
		TAILQ_REMOVE(&fr->partial, o, plink);
		o->in_partial = false;
		fr->charged -= o->charged;
		o->charged = 0;
		if (limit_due(&fr->log_budget, &n_))
			log_warnx("dropping client %s: partially received frames hold the whole "
			    "--frame-budget (%zu bytes); %llu dropped", o->who, fr->budget, n_);
		nng_stream_close(o->s);
	}
	if (rv == 0) {
		fr->charged += n;
		c->charged += n;
	}
	pthread_mutex_unlock(&fr->mu);
	return rv;
}

/* Connections: closing and freeing. */

/*
 * Closes c once (c->mu held).  Its long polls end then (conn_unlock tells
 * the core), whatever closed it: the peer, a limit, a malformed frame.
 */
static void
conn_close(struct fconn *c)
{
	if (!c->closed) {
		c->closed = true;
		c->notify_gone = true;
		nng_stream_close(c->s);
	}
}

/* Nothing outstanding any more: hand it to the reaper (c->mu held). */
static bool
conn_dead(struct fconn *c)
{
	if (!c->closed || c->rx_busy || c->tx_busy || c->in_core > 0 || c->reaped)
		return false;
	c->reaped = true;
	return true;
}

static void
conn_free(struct fconn *c)
{
	struct fout *o;

	nng_aio_free(c->rx);
	nng_aio_free(c->tx);
	nng_stream_free(c->s);
	while ((o = STAILQ_FIRST(&c->outq)) != NULL) {
		STAILQ_REMOVE_HEAD(&c->outq, link);
		atomic_fetch_sub(&c->fr->answers, 1);
		free(o);
	}
	free(c->buf);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void *
reaper_main(void *arg)
{
	struct front *fr = arg;
	struct fconn *c;

	pthread_setname_np(pthread_self(), "mom:nng-reap");
	pthread_mutex_lock(&fr->mu);
	for (;;) {
		while (SLIST_EMPTY(&fr->dead) && !fr->reaper_stop)
			pthread_cond_wait(&fr->cv, &fr->mu);
		if ((c = SLIST_FIRST(&fr->dead)) == NULL)
			break;
		SLIST_REMOVE_HEAD(&fr->dead, dlink);
		pthread_mutex_unlock(&fr->mu);
		conn_free(c);
		pthread_mutex_lock(&fr->mu);
		fr->nconns--;
		pthread_cond_broadcast(&fr->cv);
	}
	pthread_mutex_unlock(&fr->mu);
	return NULL;
}

/* The end of every callback: what was decided under c->mu happens after. */
static void
conn_unlock(struct fconn *c)
{
	struct front *fr = c->fr;
	bool          gone = c->notify_gone, dead;

	c->notify_gone = false;
	dead = conn_dead(c);
	pthread_mutex_unlock(&c->mu);
	/* A stopping broker's core has answered every poll already. */
	gone = gone && !atomic_load(&fr->stopping);
	if (gone && !dead)
		core_conn_closed(fr->core, FRONT_CONN(c->id));
	if (!dead)
		return;
	budget_release(fr, c);
	/* A consumer that died in a long poll must not be handed messages. */
	if (gone)
		core_conn_closed(fr->core, FRONT_CONN(c->id));
	atomic_fetch_sub(&fr->live, 1);
	pthread_mutex_lock(&fr->mu);
	TAILQ_REMOVE(&fr->conns, c, link);
	SLIST_INSERT_HEAD(&fr->dead, c, dlink);
	pthread_cond_broadcast(&fr->cv);
	pthread_mutex_unlock(&fr->mu);
}

/* Closes c on an error of the peer's, once (c->mu held). */
static void
conn_drop(struct fconn *c, const char *why, size_t len)
{
	if (!c->closed)
		log_warnx("dropping client %s: %s (%zu bytes)", c->who, why, len);
	conn_close(c);
}

/* Writing. */

static void
conn_write(struct fconn *c)
{
	struct fout *o = STAILQ_FIRST(&c->outq);
	nng_iov      iov;

	if (o == NULL || c->tx_busy || c->closed)
		return;
	iov.iov_buf = o->data + c->out_off;
	iov.iov_len = o->len - c->out_off;
	nng_aio_set_iov(c->tx, 1, &iov);
	/* A peer that does not read its answers for this long is gone. */
	nng_aio_set_timeout(c->tx, 60000);
	c->tx_busy = true;
	nng_stream_send(c->s, c->tx);
}

static void conn_read(struct fconn *);

static void
tx_cb(void *arg)
{
	struct fconn *c = arg;
	struct fout  *o;
	int           rv = nng_aio_result(c->tx);

	pthread_mutex_lock(&c->mu);
	c->tx_busy = false;
	if (rv != 0 || c->closed) {
		conn_close(c);
	} else if (c->state == CS_HELLO && !c->hello_sent) {
		/* Our half of the handshake is out: now the peer's. */
		c->hello_sent = true;
		c->got = 0;
		conn_read(c);
	} else {
		o = STAILQ_FIRST(&c->outq);
		if ((c->out_off += nng_aio_count(c->tx)) >= o->len) {
			STAILQ_REMOVE_HEAD(&c->outq, link);
			atomic_fetch_sub(&c->fr->answers, 1);
			free(o);
			c->out_off = 0;
		}
		conn_write(c);
	}
	conn_unlock(c);
}

/* Reading. */

/* Posts the next read of whatever c is receiving (c->mu held). */
static void
conn_read(struct fconn *c)
{
	struct front *fr = c->fr;
	nng_iov       iov;
	nng_duration  t = NNG_DURATION_INFINITE;

	if (c->rx_busy || c->closed)
		return;
	if (c->core_bytes >= fr->core_bytes) {
		c->paused = true; /* the core's answers resume it */
		return;
	}
	c->paused = false;
	switch (c->state) {
	case CS_HELLO:
		iov.iov_buf = c->hello + c->got;
		iov.iov_len = sizeof(c->hello) - c->got;
		t = HELLO_MS - (mom_mono_ms() - c->fstart);
		break;
	case CS_HEAD:
		iov.iov_buf = c->head + c->got;
		iov.iov_len = (c->ipc ? 9 : 8) - c->got;
		/* Between frames a client may idle; within one, not for long. */
		if (c->got > 0)
			t = fr->frame_ms - (mom_mono_ms() - c->fstart);
		break;
	default:
		iov.iov_buf = c->buf + c->got;
		iov.iov_len = c->fcap - c->got;
		t = fr->frame_ms - (mom_mono_ms() - c->fstart);
		break;
	}
	if (t != NNG_DURATION_INFINITE && t < 1)
		t = 1;
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_aio_set_timeout(c->rx, t);
	c->rx_busy = true;
	nng_stream_recv(c->s, c->rx);
}

/* The peer's handshake is in: is it an nng req0 socket? (c->mu held) */
static void
got_hello(struct fconn *c)
{
	const uint8_t *h = c->hello;

	if (h[0] != 0 || h[1] != 'S' || h[2] != 'P' || h[3] != 0 || h[6] != 0 || h[7] != 0) {
		conn_drop(c, "not the nng protocol", sizeof(c->hello));
		return;
	}
	if ((h[4] << 8 | h[5]) != PROTO_REQ0) {
		conn_drop(c, "an nng socket other than req", sizeof(c->hello));
		return;
	}
	c->state = CS_HEAD;
	c->got = 0;
	conn_read(c);
}

/* A frame's length is in: room for its first bytes (c->mu held). */
static void
got_head(struct fconn *c)
{
	struct front *fr = c->fr;
	const uint8_t *p = c->head + (c->ipc ? 1 : 0);
	uint64_t       len = 0;
	int            i;

	if (c->ipc && c->head[0] != 1) {
		conn_drop(c, "malformed frame", 9);
		return;
	}
	for (i = 0; i < 8; i++)
		len = len << 8 | p[i];
	if (len > fr->max_frame || len < 4) {
		conn_drop(c, len < 4 ? "malformed frame" : "oversized frame", (size_t)len);
		return;
	}
	c->flen = (size_t)len;
	c->fcap = c->flen < CHUNK_MIN ? c->flen : CHUNK_MIN;
	if (budget_charge(fr, c, c->fcap) != 0 || (c->buf = malloc(c->fcap)) == NULL) {
		conn_drop(c, "no room for its frame", c->flen);
		return;
	}
	c->state = CS_BODY;
	c->got = 0;
	conn_read(c);
}

/* More of a frame came; grows the buffer as bytes arrive (c->mu held). */
static int
grow_frame(struct fconn *c)
{
	size_t   ncap = c->fcap * 2 < c->flen ? c->fcap * 2 : c->flen;
	uint8_t *nb;

	if (budget_charge(c->fr, c, ncap - c->fcap) != 0) {
		conn_drop(c, "no room for its frame", c->flen);
		return -1;
	}
	if ((nb = realloc(c->buf, ncap)) == NULL) {
		conn_drop(c, "out of memory for its frame", c->flen);
		return -1;
	}
	c->buf = nb;
	c->fcap = ncap;
	return 0;
}

/*
 * A whole frame: checks it and makes the request (c->mu held).  NULL when
 * the connection was dropped; *err set when the request is to be answered
 * with an error rather than go to the core.
 */
static struct freq *
take_frame(struct fconn *c, int *err, const char **why)
{
	struct front    *fr = c->fr;
	struct freq     *q;
	struct mom_rd    r;
	struct mom_frame f;
	struct mom_slice tok;
	size_t           hops = 0;

	/* The backtrace: 4-byte words up to the one with its top bit set. */
	for (;;) {
		if (hops + 4 > c->flen || hops / 4 == MAX_HOPS) {
			conn_drop(c, "malformed frame", c->flen);
			return NULL;
		}
		hops += 4;
		if (c->buf[hops - 4] & 0x80)
			break;
	}
	mom_rd_init(&r, c->buf + hops, c->flen - hops);
	if (mom_frame_decode(&r, &f) != 0 || f.reply || f.op < MOM_OP_PING ||
	    f.op > MOM_OP_ADMIN || mom_frame_token(&r, &f, &tok) != 0) {
		conn_drop(c, "malformed frame", c->flen);
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		conn_drop(c, "out of memory for its request", c->flen);
		return NULL;
	}
	q->c = c;
	q->msg = c->buf;
	q->len = c->flen;
	q->hops = hops;
	c->buf = NULL;
	q->req.op = f.op;
	q->req.body = q->msg + hops + r.off;
	q->req.len = q->len - hops - r.off;
	q->req.reply = freq_reply;
	q->req.arg = q;
	q->req.conn = FRONT_CONN(c->id);
	q->tok = tok;
	if (f.op == MOM_OP_FETCH) {
		struct mom_rd   fr_rd;
		struct mom_fetch mf;

		mom_rd_init(&fr_rd, q->req.body, q->req.len);
		/* Only wait_ms: the core decodes and checks the whole fetch. */
		q->poll = mom_fetch_decode_head(&fr_rd, &mf) == 0 && mf.wait_ms > 0;
	}
	if (q->poll && (c->polls >= fr->max_polls || atomic_load(&fr->polls) >= POLLS_TOTAL)) {
		unsigned long long n;

		pthread_mutex_lock(&fr->mu);
		if (limit_due(&fr->log_polls, &n))
			log_warnx("client %s: %d long polls waiting (%d in all): answering \"busy\" "
			    "(--max-polls); %llu times", c->who, c->polls, atomic_load(&fr->polls), n);
		pthread_mutex_unlock(&fr->mu);
		q->poll = false;
		*err = MOM_EBUSY;
		*why = "too many long polls waiting on this connection (--max-polls), retry";
	}
	c->in_core++;
	c->core_bytes += q->len;
	if (q->poll) {
		c->polls++;
		atomic_fetch_add(&fr->polls, 1);
	}
	return q;
}

/* Checks the token and hands the request to the core (no lock held). */
static void
rx_submit(struct front *fr, struct freq *q, int err, const char *why)
{
	char buf[160];

	if (err != 0) {
		core_reply_error(&q->req, err, why);
		return;
	}
	if (auth_enabled(fr->auth)) {
		/* PING stays open: "is the broker up" needs no credentials. */
		if (q->tok.n == 0 && q->req.op != MOM_OP_PING) {
			core_reply_error(&q->req, MOM_EAUTH, "token required (--token-file, MOM_TOKEN)");
			return;
		}
		if (q->tok.n > 0 && auth_check(fr->auth, (const char *)q->tok.p, q->tok.n, &q->claims, buf,
		    sizeof(buf)) != 0) {
			core_reply_error(&q->req, MOM_EAUTH, buf);
			return;
		}
		q->req.claims = q->claims != NULL ? &q->claims->c : NULL;
	}
	core_submit(fr->core, &q->req);
}

static void
rx_cb(void *arg)
{
	struct fconn *c = arg;
	struct front *fr = c->fr;
	struct freq  *q = NULL;
	int           rv = nng_aio_result(c->rx), err = 0;
	const char   *why = NULL;

	pthread_mutex_lock(&c->mu);
	c->rx_busy = false;
	if (rv == 0)
		c->got += nng_aio_count(c->rx);
	if (c->closed) {
		/* nothing */
	} else if (rv == NNG_ETIMEDOUT) {
		unsigned long long n;

		pthread_mutex_lock(&fr->mu);
		if (limit_due(&fr->log_slow, &n))
			log_warnx("dropping client %s: %s not complete within %lld ms%s; %llu dropped",
			    c->who, c->state == CS_HELLO ? "the nng handshake" : "a frame",
			    c->state == CS_HELLO ? (long long)HELLO_MS : (long long)fr->frame_ms,
			    c->state == CS_HELLO ? "" : " (--frame-timeout)", n);
		pthread_mutex_unlock(&fr->mu);
		conn_close(c);
	} else if (rv != 0) {
		/* The client left: its long polls end now (conn_unlock). */
		conn_close(c);
	} else if (c->state == CS_HELLO) {
		if (c->got < sizeof(c->hello))
			conn_read(c);
		else
			got_hello(c);
	} else if (c->state == CS_HEAD) {
		if (c->got == nng_aio_count(c->rx))
			c->fstart = mom_mono_ms(); /* the frame's first bytes */
		if (c->got < (size_t)(c->ipc ? 9 : 8))
			conn_read(c);
		else
			got_head(c);
	} else if (c->got < c->flen) {
		if (c->got < c->fcap || grow_frame(c) == 0)
			conn_read(c);
	} else if ((q = take_frame(c, &err, &why)) != NULL) {
		/* The frame is the core's now: off the budget, and on to the next. */
		budget_release(fr, c);
		c->state = CS_HEAD;
		c->got = 0;
		conn_read(c);
	}
	conn_unlock(c);
	if (q != NULL)
		rx_submit(fr, q, err, why);
}

/*
 * The core's answer (core thread, or the submitting one): queues the
 * reply on the connection and drops the request and its claims.
 */
static void
freq_reply(struct core_req *req, const uint8_t *frame, size_t len)
{
	struct freq  *q = req->arg;
	struct fconn *c = q->c;
	struct fout  *o = NULL;
	size_t        n = q->hops + len;
	int           i;

	if (frame != NULL && (o = malloc(sizeof(*o) + 9 + n)) != NULL) {
		uint8_t *p = o->data;

		if (c->ipc)
			*p++ = 1;
		for (i = 7; i >= 0; i--)
			*p++ = (uint8_t)(n >> (8 * i));
		memcpy(p, q->msg, q->hops);
		memcpy(p + q->hops, frame, len);
		o->len = (size_t)(p - o->data) + n;
	}
	/* No answer (out of memory): the client's resend finds us again. */
	pthread_mutex_lock(&c->mu);
	c->in_core--;
	c->core_bytes -= q->len;
	if (q->poll) {
		c->polls--;
		atomic_fetch_sub(&c->fr->polls, 1);
	}
	if (o != NULL && !c->closed) {
		STAILQ_INSERT_TAIL(&c->outq, o, link);
		atomic_fetch_add(&c->fr->answers, 1);
		o = NULL;
		conn_write(c);
	}
	if (c->paused)
		conn_read(c);
	conn_unlock(c);
	free(o);
	bclaims_release(q->claims);
	free(q->msg);
	free(q);
}

/* Accepting. */

static void
conn_new(struct front *fr, nng_stream *s, bool ipc)
{
	struct fconn *c;
	nng_iov       iov;

	pthread_mutex_lock(&fr->mu);
	if (fr->closing || fr->nconns >= fr->max_conns) {
		char who[64];

		unsigned long long n;

		if (!fr->closing && limit_due(&fr->log_conns, &n)) {
			peer_name(s, ipc, who, sizeof(who));
			log_warnx("refusing client %s: %d connections (--max-connections); %llu "
			    "refused", who, fr->nconns, n);
		}
		pthread_mutex_unlock(&fr->mu);
		nng_stream_free(s);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || nng_aio_alloc(&c->rx, rx_cb, c) != 0 ||
	    nng_aio_alloc(&c->tx, tx_cb, c) != 0) {
		pthread_mutex_unlock(&fr->mu);
		if (c != NULL) {
			nng_aio_free(c->rx);
			free(c);
		}
		nng_stream_free(s);
		return;
	}
	c->fr = fr;
	c->s = s;
	c->ipc = ipc;
	c->id = ++fr->next_id;
	STAILQ_INIT(&c->outq);
	pthread_mutex_init(&c->mu, NULL);
	peer_name(s, ipc, c->who, sizeof(c->who));
	TAILQ_INSERT_TAIL(&fr->conns, c, link);
	fr->nconns++;
	atomic_fetch_add(&fr->live, 1);
	pthread_mutex_lock(&c->mu);
	pthread_mutex_unlock(&fr->mu);
	/* Our half of the handshake first (as nng does), then the peer's. */
	c->state = CS_HELLO;
	c->fstart = mom_mono_ms();
	c->hello[0] = 0;
	c->hello[1] = 'S';
	c->hello[2] = 'P';
	c->hello[3] = 0;
	c->hello[4] = 0;
	c->hello[5] = PROTO_REP0;
	c->hello[6] = c->hello[7] = 0;
	iov.iov_buf = c->hello;
	iov.iov_len = sizeof(c->hello);
	nng_aio_set_iov(c->tx, 1, &iov);
	nng_aio_set_timeout(c->tx, HELLO_MS);
	c->tx_busy = true;
	nng_stream_send(c->s, c->tx);
	conn_unlock(c);
}

static void
acc_done(struct front *fr, int i)
{
	int rv = nng_aio_result(fr->acc[i]);

	if (rv != 0) {
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		/* Out of descriptors, most likely: try again a little later. */
		log_warnx("accept: %s", nng_strerror(rv));
		nng_sleep_aio(100, fr->pause[i]);
		return;
	}
	conn_new(fr, nng_aio_get_output(fr->acc[i], 0), fr->ipc[i]);
	nng_stream_listener_accept(fr->ls[i], fr->acc[i]);
}

/* Each listener's accept and pause aios: a names which. */
static void
acc_cb(void *arg)
{
	struct acc_arg *a = arg;
	struct front   *fr = a->fr;

	if (!a->pause)
		acc_done(fr, a->i);
	else if (nng_aio_result(fr->pause[a->i]) == 0)
		nng_stream_listener_accept(fr->ls[a->i], fr->acc[a->i]);
}

/* Starting and stopping. */

static int
listen_one(struct front *fr, const char *url, nng_tls_config *tls)
{
	struct acc_arg *a;
	int             i = fr->nls, rv, k;
	bool            ipc = strncmp(url, "ipc://", 6) == 0 || strncmp(url, "abstract://", 11) == 0;
	bool            tcp = strncmp(url, "tcp", 3) == 0, tlsurl = mom_tls_url(url);

	if (!ipc && !tcp && !tlsurl) {
		log_fatalx("cannot listen on %s: not a tcp://, tls+tcp:// or ipc:// address", url);
		return -1;
	}
	if ((rv = nng_stream_listener_alloc(&fr->ls[i], url)) != 0) {
		log_fatalx("cannot listen on %s: %s", url, nng_strerror(rv));
		return -1;
	}
	fr->ipc[i] = ipc;
	fr->nls++;
	if (!ipc)
		(void)nng_stream_listener_set_bool(fr->ls[i], NNG_OPT_TCP_NODELAY, true);
	if (!ipc)
		(void)nng_stream_listener_set_bool(fr->ls[i], NNG_OPT_TCP_KEEPALIVE, true);
	/* A TLS listener is given its certificate before it listens. */
	rv = tlsurl ? (tls != NULL ? nng_stream_listener_set_ptr(fr->ls[i], NNG_OPT_TLS_CONFIG, tls) :
	    NNG_EINVAL) : 0;
	for (k = 0; k < 2 && rv == 0; k++) {
		a = &fr->accs[i][k];
		a->fr = fr;
		a->i = i;
		a->pause = k == 1;
		rv = nng_aio_alloc(k == 0 ? &fr->acc[i] : &fr->pause[i], acc_cb, a);
	}
	if (rv == 0)
		rv = nng_stream_listener_listen(fr->ls[i]);
	if (rv != 0) {
		log_fatalx("cannot listen on %s: %s", url, nng_strerror(rv));
		return -1;
	}
	nng_stream_listener_accept(fr->ls[i], fr->acc[i]);
	log_info("listening on %s", url);
	return 0;
}

int
front_start(struct front **frp, const struct front_config *cfg, struct core *core)
{
	struct front *fr;
	int           i;

	if ((fr = calloc(1, sizeof(*fr))) == NULL)
		return -1;
	fr->core = core;
	fr->auth = cfg->auth;
	/* A batch of small messages may exceed one message's limit, hence the slack. */
	fr->max_frame = cfg->max_payload + (2u << 20);
	fr->max_conns = cfg->max_conns > 0 ? cfg->max_conns : 1024;
	fr->max_polls = cfg->max_polls > 0 ? cfg->max_polls : FRONT_POLLS_DEFAULT;
	fr->frame_ms = cfg->frame_ms > 0 ? (int64_t)cfg->frame_ms : FRONT_FRAME_MS_DEFAULT;
	fr->budget = cfg->frame_budget > 0 ? cfg->frame_budget : FRONT_BUDGET_DEFAULT;
	/* One frame of the largest size always fits. */
	if (fr->budget < fr->max_frame)
		fr->budget = fr->max_frame;
	fr->core_bytes = 4 * fr->max_frame;
	TAILQ_INIT(&fr->conns);
	TAILQ_INIT(&fr->partial);
	SLIST_INIT(&fr->dead);
	pthread_mutex_init(&fr->mu, NULL);
	pthread_cond_init(&fr->cv, NULL);
	if (pthread_create(&fr->reaper, NULL, reaper_main, fr) != 0) {
		log_fatalx("cannot start a thread");
		pthread_mutex_destroy(&fr->mu);
		pthread_cond_destroy(&fr->cv);
		free(fr);
		return -1;
	}
	for (i = 0; i < cfg->nlisten && i < FRONT_MAX_LISTEN; i++)
		if (listen_one(fr, cfg->listen[i], cfg->tls) != 0) {
			front_stop(fr);
			return -1;
		}
	log_info("at most %d connections, frames within %lld ms, %zu bytes of partial frames",
	    fr->max_conns, (long long)fr->frame_ms, fr->budget);
	*frp = fr;
	return 0;
}

/* Waits (briefly) for the answers the stopped core gave to be written. */
static void
flush_answers(struct front *fr)
{
	int64_t t0 = mom_mono_ms();

	while (atomic_load(&fr->answers) > 0 && mom_mono_ms() - t0 < 2000)
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
}

void
front_stop(struct front *fr)
{
	struct fconn *c;
	int           i;

	if (fr == NULL)
		return;
	pthread_mutex_lock(&fr->mu);
	fr->closing = true;
	atomic_store(&fr->stopping, true);
	pthread_mutex_unlock(&fr->mu);
	for (i = 0; i < fr->nls; i++) {
		nng_stream_listener_close(fr->ls[i]);
		if (fr->acc[i] != NULL)
			nng_aio_stop(fr->acc[i]);
		if (fr->pause[i] != NULL)
			nng_aio_stop(fr->pause[i]);
	}
	flush_answers(fr);
	pthread_mutex_lock(&fr->mu);
	/*
	 * Not c->mu: a callback holding it may be waiting for fr->mu.  The
	 * stream lives until the reaper frees c, after it left this list.
	 */
	TAILQ_FOREACH(c, &fr->conns, link)
		nng_stream_close(c->s);
	/* Every callback now fails; the last of each connection reaps it. */
	while (fr->nconns > 0)
		pthread_cond_wait(&fr->cv, &fr->mu);
	fr->reaper_stop = true;
	pthread_cond_broadcast(&fr->cv);
	pthread_mutex_unlock(&fr->mu);
	pthread_join(fr->reaper, NULL);
	for (i = 0; i < fr->nls; i++) {
		nng_stream_listener_free(fr->ls[i]);
		nng_aio_free(fr->acc[i]);
		nng_aio_free(fr->pause[i]);
	}
	pthread_mutex_destroy(&fr->mu);
	pthread_cond_destroy(&fr->cv);
	free(fr);
}

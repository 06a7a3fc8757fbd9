/*
 * http.c: the broker's HTTP plane (see http.h).
 *
 * One struct hconn per connection cycles HEAD -> BODY -> CORE -> SEND ->
 * HEAD.  Its mutex orders what touches it: the read and write callbacks
 * (on nng's task threads), the core's answer (done_cb, on the core
 * thread, which only copies the answer and queues the connection) and the
 * sender thread, which turns answers into responses and writes them.
 * nng's completions are always dispatched to a task thread, never run
 * inside the call that starts an operation, so reads and writes may be
 * started under the mutex; core_submit() may answer at once on the
 * calling thread ("busy"), so it is called only after the mutex is
 * released (conn_unlock).
 *
 * A connection is freed by the reaper thread once it is closed and nothing
 * of it is outstanding: no read, no write, no request in the core, no
 * answer queued.  Freeing an aio waits for its callback, which must
 * therefore not be the thread that frees it.
 *
 * Bodies: a request that announces more than its route accepts is
 * answered 413 before any of the body is read, and the connection closed
 * (the rest of the body would otherwise be read as the next request).
 * "Expect: 100-continue" is answered "100 Continue" only once the request
 * passed every check (route, size, token), so curl never waits for it and
 * never sends a body that would be refused.  Chunked bodies are refused
 * with 411: every mom client knows its body's length.
 *
 * The end of a client's input (EOF) is not the end of the client: one
 * that shuts down its sending side after its requests gets every answer,
 * buffered (pipelined) requests included, and the connection closes when
 * no whole request is left.  A killed client looks the same until a
 * write fails, so a long poll ends at once, empty, on EOF (the core's
 * core_conn_closed); an error other than EOF (a reset) means gone for
 * sure: nothing more is written and what a fetch got goes back.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>

#include "net/auth.h"
#include "core/core.h"
#include "net/http.h"
#include "log.h"
#include "mom.h"
#include "net/rest.h"
#include "tls.h"
#include "wire.h"

#define BUF_CHUNK    16384
#define BUF_KEEP     65536   /* a buffer grown past this shrinks back after its request */
#define IDLE_MS      60000   /* a kept-alive connection without a request */
#define WRITE_MS     30000   /* an answer must keep going out */
#define POLL_MS      (REST_WAIT_MAX_MS + 45000) /* reading for EOF while in the core */
#define EVICT_LOG_MS 10000   /* making room is logged at most this often */

enum { ST_HEAD, ST_BODY, ST_CORE, ST_SEND };

struct http;

struct hconn {
	struct http       *h;
	nng_stream        *s;
	nng_aio           *rx, *tx;
	pthread_mutex_t    mu;
	int                state;
	char              *buf;        /* unread bytes are buf[start, len) */
	size_t             start, len, cap;
	size_t             req_end;    /* the request being served ends here in buf */
	struct rest_head   head;       /* of that request, until it is in the core */
	struct rest_target t;
	struct rest_call   call;
	struct mom_buf     frame;      /* the wire request */
	struct mom_buf     out;        /* the response being written */
	size_t             out_off;
	uint64_t           consumer;
	struct bclaims    *claims;     /* the request's token, while it is served */
	struct bclaims    *req_claims; /* the core's reference, until it answers */
	bool               keep_alive, http10, head_only;
	bool               interim;    /* out holds "100 Continue" */
	bool               releasing;  /* the core gives back what a vanished client got */
	bool               rx_busy, tx_busy, in_core, submit;
	bool               submitting; /* core_submit() runs (conn_unlock) */
	bool               queued;     /* in h->outbox with the core's answer */
	struct mom_buf     reply;      /* that answer (a copy: the core reuses its buffer) */
	bool               noreply;    /* the core could build none */
	STAILQ_ENTRY(hconn) olink;     /* h->outbox */
	bool               closed, gone, reaped, reap_here;
	bool               eof;        /* the client sends no more (shut down or gone) */
	bool               head_timed; /* the head being read has a deadline */
	int64_t            deadline;   /* of that head (mom_mono_ms) */
	int64_t            body_t0;    /* when its body began */
	/*
	 * Since when the connection waits for a request (idle, or reading its
	 * head or body), for conn_evict; 0 while a request is served or once
	 * it is closed.  Written under mu, read under h->mu.
	 */
	_Atomic int64_t    since;
	bool               notify_gone; /* tell the core (conn_unlock) */
	bool               moved;      /* buf moved since head was parsed */
	char               what[96];   /* "METHOD target" for the debug log */
	struct core_req    req;        /* to the core: body in reqmsg */
	nng_msg           *reqmsg;
	LIST_ENTRY(hconn)  link;       /* h->conns */
	SLIST_ENTRY(hconn) dlink;      /* h->dead */
};

struct http {
	struct http_config   cfg;
	char                *url;
	struct core         *core;
	nng_stream_listener *l;
	nng_aio             *acc, *pause;
	pthread_mutex_t      mu;
	pthread_cond_t       cv;
	LIST_HEAD(, hconn)   conns;
	SLIST_HEAD(, hconn)  dead;     /* for the reaper */
	int                  nconns;
	bool                 stopping, reaper_stop, full_logged;
	int64_t              evict_logged; /* when making room was last logged */
	pthread_t            reaper;
	/* Answers from the core, for the sender thread. */
	pthread_mutex_t      omu;
	pthread_cond_t       ocv;
	STAILQ_HEAD(hconn_q, hconn) outbox;
	bool                 sender_stop;
	pthread_t            sender;
	atomic_bool          quiesced;
	atomic_uint_fast64_t next_consumer;
	atomic_uint_fast64_t requests, accepted;
	atomic_uint_fast64_t evicted, timeouts;
	atomic_int           live;     /* connections, for /metrics */
	int64_t              started;
};

/* This plane's connection ids (struct core_req's conn), apart from the nng plane's. */
#define HTTP_CONN(c) ((uint64_t)2 << 62 | ((c)->consumer & (((uint64_t)1 << 62) - 1)))

static void rx_cb(void *);
static void tx_cb(void *);
static void done_cb(struct core_req *, const uint8_t *, size_t);
static void process(struct hconn *);
static void conn_timed_out(struct hconn *);

/* Connections: closing and freeing. */

static void
conn_close(struct hconn *c)
{
	atomic_store(&c->since, 0);
	if (!c->closed) {
		c->closed = true;
		nng_stream_close(c->s);
	}
}

/* Is the connection finished, with nothing outstanding?  (Once true, true.) */
static bool
conn_dead(struct hconn *c)
{
	if (!c->closed || c->rx_busy || c->tx_busy || c->in_core || c->queued || c->submitting ||
	    c->reaped)
		return false;
	c->reaped = true;
	return true;
}

/* Hands a dead connection to the reaper; the caller holds nothing of c. */
static void
conn_reap(struct hconn *c)
{
	struct http *h = c->h;

	pthread_mutex_lock(&h->mu);
	LIST_REMOVE(c, link);
	SLIST_INSERT_HEAD(&h->dead, c, dlink);
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

static void
conn_free(struct hconn *c)
{
	nng_aio_free(c->rx);
	nng_aio_free(c->tx);
	nng_stream_free(c->s);
	if (c->reqmsg != NULL)
		nng_msg_free(c->reqmsg);
	bclaims_release(c->req_claims);
	rest_call_fini(&c->call);
	bclaims_release(c->claims);
	mom_buf_fini(&c->frame);
	mom_buf_fini(&c->out);
	mom_buf_fini(&c->reply);
	free(c->buf);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static void *
reaper_main(void *arg)
{
	struct http  *h = arg;
	struct hconn *c;

	pthread_setname_np(pthread_self(), "mom:http-reap");
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (SLIST_EMPTY(&h->dead) && !h->reaper_stop)
			pthread_cond_wait(&h->cv, &h->mu);
		if ((c = SLIST_FIRST(&h->dead)) == NULL)
			break;
		SLIST_REMOVE_HEAD(&h->dead, dlink);
		pthread_mutex_unlock(&h->mu);
		conn_free(c);
		atomic_fetch_sub(&h->live, 1);
		pthread_mutex_lock(&h->mu);
		h->nconns--;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/*
 * The end of every callback: what was decided under the mutex happens
 * after it is released.  The core hears that a client is gone only after
 * the request it submitted (a poll parked after that news would wait out
 * its time): while core_submit() runs, the news waits in notify_gone for
 * the submitting thread, and c stays alive for it (conn_dead).
 */
static void
conn_unlock(struct hconn *c)
{
	bool submit = c->submit, gone, dead;

	c->submit = false;
	c->submitting = c->submitting || submit;
	gone = c->notify_gone && !c->submitting;
	if (gone)
		c->notify_gone = false;
	dead = conn_dead(c);
	pthread_mutex_unlock(&c->mu);
	if (submit) {
		core_submit(c->h->core, &c->req);
		pthread_mutex_lock(&c->mu);
		c->submitting = false;
		gone = c->notify_gone;
		c->notify_gone = false;
		dead = conn_dead(c);
		pthread_mutex_unlock(&c->mu);
	}
	if (gone)
		core_conn_closed(c->h->core, HTTP_CONN(c));
	if (dead)
		conn_reap(c);
}

/* Reading. */

/* Room for at least want more bytes after len; moves unread bytes down first. */
static int
conn_room(struct hconn *c, size_t want)
{
	char  *nb;
	size_t ncap;

	if (c->start > 0) {
		c->moved = true;
		memmove(c->buf, c->buf + c->start, c->len - c->start);
		c->len -= c->start;
		c->req_end -= c->req_end >= c->start ? c->start : c->req_end;
		c->start = 0;
	}
	if (c->cap - c->len >= want)
		return 0;
	ncap = c->cap ? c->cap : BUF_CHUNK;
	while (ncap - c->len < want)
		ncap *= 2;
	if ((nb = realloc(c->buf, ncap)) == NULL)
		return -1;
	c->moved = true;
	c->buf = nb;
	c->cap = ncap;
	return 0;
}

static void
conn_read(struct hconn *c, size_t want, nng_duration timeout)
{
	nng_iov iov;

	if (c->rx_busy || c->closed)
		return;
	if (c->eof) {
		/* What is buffered is served; what is missing will never come. */
		conn_close(c);
		return;
	}
	if (conn_room(c, want) != 0) {
		log_warnx("http: out of memory for a request of %zu bytes", want);
		conn_close(c);
		return;
	}
	iov.iov_buf = c->buf + c->len;
	iov.iov_len = c->cap - c->len;
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_aio_set_timeout(c->rx, timeout);
	c->rx_busy = true;
	nng_stream_recv(c->s, c->rx);
}

/*
 * While a request is in the core: read on, to learn when the client goes
 * away (and to take in a pipelined request), within a bounded buffer.
 */
static void
conn_poll(struct hconn *c)
{
	if (!c->eof && c->len - c->start < REST_HEAD_MAX)
		conn_read(c, 4096, POLL_MS);
}

static void
rx_cb(void *arg)
{
	struct hconn *c = arg;
	int           rv = nng_aio_result(c->rx);

	pthread_mutex_lock(&c->mu);
	c->rx_busy = false;
	if (rv == 0)
		c->len += nng_aio_count(c->rx);
	if (c->closed) {
		/* nothing */
	} else if (c->state == ST_CORE || c->state == ST_SEND) {
		if (rv == NNG_ECONNSHUT) {
			/*
			 * End of input: the client shut down its sending side
			 * (shutdown(SHUT_WR) after its request), or it went away
			 * (a killed process closes its socket the same way).
			 * Nothing tells the two apart until a write fails, so the
			 * answer is written, and a long poll ends now, empty
			 * (conn_unlock), rather than hand messages to a client
			 * that may be gone.
			 */
			c->notify_gone = !c->eof && c->state == ST_CORE;
			c->eof = true;
		} else if (rv != 0 && rv != NNG_ETIMEDOUT) {
			/* Reset: gone for sure.  A long poll ends now (conn_unlock). */
			c->notify_gone = !c->gone && c->state == ST_CORE;
			c->gone = true;
		} else
			conn_poll(c);
	} else if (rv != 0) {
		/* Idle too long, a request that stalled, or the client left. */
		if (rv == NNG_ETIMEDOUT && (c->state == ST_BODY || c->head_timed))
			conn_timed_out(c);
		else
			conn_close(c);
	} else if (!c->interim)
		process(c);
	conn_unlock(c);
}

/* Writing. */

static void
conn_write(struct hconn *c)
{
	nng_iov iov;

	iov.iov_buf = c->out.data + c->out_off;
	iov.iov_len = c->out.len - c->out_off;
	nng_aio_set_iov(c->tx, 1, &iov);
	nng_aio_set_timeout(c->tx, WRITE_MS);
	c->tx_busy = true;
	nng_stream_send(c->s, c->tx);
}

/* A buffer that grew for a large request or answer goes back to nothing. */
static void
buf_shrink(struct mom_buf *b)
{
	if (b->cap > BUF_KEEP) {
		mom_buf_fini(b);
		mom_buf_init(b);
	}
}

/* The request is over: drop what it held. */
static void
conn_request_done(struct hconn *c)
{
	rest_call_fini(&c->call);
	bclaims_release(c->claims);
	c->claims = NULL;
	buf_shrink(&c->frame);
	buf_shrink(&c->reply);
}

static void
conn_respond(struct hconn *c, struct rest_response *r)
{
	if (atomic_load(&c->h->quiesced))
		c->keep_alive = false;
	if (log_verbose)
		log_debug("http: %s -> %d", c->what, r->status);
	conn_request_done(c);
	atomic_store(&c->since, 0);
	mom_buf_reset(&c->out);
	rest_render(&c->out, r, c->keep_alive, c->http10, c->head_only);
	if (c->out.err) {
		conn_close(c);
		return;
	}
	c->out_off = 0;
	c->state = ST_SEND;
	conn_write(c);
}

/* An answer before the body was read: the body must not be taken for the next request. */
static void
conn_refuse(struct hconn *c, int status, const char *code, const char *msg, const char *extra)
{
	struct rest_response r;

	rest_response_init(&r);
	rest_http_error(&r, status, code, msg);
	if (extra != NULL)
		snprintf(r.extra, sizeof(r.extra), "%s", extra);
	if (c->head.length > 0 && (c->head.expect == 1 || c->len - c->start < c->head.len +
	    c->head.length))
		c->keep_alive = false;
	else
		c->req_end = c->start + c->head.len + c->head.length;
	conn_respond(c, &r);
	rest_response_fini(&r);
}

static void
tx_cb(void *arg)
{
	struct hconn *c = arg;
	int           rv = nng_aio_result(c->tx);

	pthread_mutex_lock(&c->mu);
	c->tx_busy = false;
	if (rv != 0 || c->closed) {
		conn_close(c);
	} else if ((c->out_off += nng_aio_count(c->tx)) < c->out.len) {
		conn_write(c);
	} else if (c->interim) {
		/* "100 Continue" is out: now the body comes. */
		c->interim = false;
		process(c);
	} else if (!c->keep_alive || c->gone) {
		conn_close(c);
	} else {
		buf_shrink(&c->out);
		c->start = c->req_end;
		c->state = ST_HEAD;
		c->head_timed = false;
		atomic_store(&c->since, mom_mono_ms());
		if (c->cap > BUF_KEEP && !c->rx_busy && c->len - c->start < BUF_CHUNK) {
			/* A large body is done with: give its memory back. */
			char *nb;

			memmove(c->buf, c->buf + c->start, c->len - c->start);
			c->len -= c->start;
			c->start = c->req_end = 0;
			if ((nb = realloc(c->buf, BUF_CHUNK)) != NULL) {
				c->buf = nb;
				c->cap = BUF_CHUNK;
			}
		}
		process(c);
	}
	conn_unlock(c);
}

/* Requests. */

static void
healthz(struct hconn *c)
{
	struct rest_response r;
	char                 s[256];

	rest_response_init(&r);
	if (atomic_load(&c->h->quiesced)) {
		r.status = 503;
		snprintf(s, sizeof(s), "{\"status\":\"shutting_down\",\"error\":\"broker shutting "
		    "down\",\"code\":\"closed\"}");
	} else
		snprintf(s, sizeof(s), "{\"status\":\"ok\",\"version\":\"%s\",\"max_message_size\":%zu,"
		    "\"uptime_ms\":%" PRId64 "}", MOM_VERSION, c->h->cfg.max_payload,
		    mom_mono_ms() - c->h->started);
	mom_buf_put(&r.body, s, strlen(s));
	conn_respond(c, &r);
	rest_response_fini(&r);
}

/* Takes another reference to claims (released when the core answers: done_cb). */
static struct bclaims *
claims_ref(struct bclaims *bc)
{
	if (bc != NULL)
		atomic_fetch_add(&bc->refs, 1);
	return bc;
}

/* Hands c->frame to the core (after the mutex is released: conn_unlock). */
static void
conn_submit(struct hconn *c)
{
	nng_msg *m;

	if (nng_msg_alloc(&m, c->frame.len) != 0) {
		struct rest_response r;

		rest_response_init(&r);
		rest_error(&r, MOM_ENOMEM, "out of memory");
		conn_respond(c, &r);
		rest_response_fini(&r);
		return;
	}
	memcpy(nng_msg_body(m), c->frame.data, c->frame.len);
	memset(&c->req, 0, sizeof(c->req));
	c->reqmsg = m;
	c->req.op = c->frame.data[2];
	c->req.body = (const uint8_t *)nng_msg_body(m) + MOM_WIRE_HDRLEN;
	c->req.len = c->frame.len - MOM_WIRE_HDRLEN;
	c->req_claims = claims_ref(c->claims);
	c->req.claims = c->req_claims != NULL ? &c->req_claims->c : NULL;
	c->req.reply = done_cb;
	c->req.arg = c;
	c->req.conn = HTTP_CONN(c);
	atomic_store(&c->since, 0);
	c->in_core = true;
	c->submit = true;
	/* A poll from a client that sends no more ends at once, as in rx_cb. */
	c->notify_gone = c->notify_gone || c->eof;
	c->state = ST_CORE;
	conn_poll(c);
}

static void
conn_dispatch(struct hconn *c)
{
	struct rest_response r;
	char                 err[512];
	int                  rv;

	/* The head's pointers went stale if the body made the buffer move. */
	if (c->moved && rest_parse_head(c->buf + c->start, c->len - c->start, &c->head) <= 0) {
		c->keep_alive = false;
		rest_response_init(&r);
		rest_error(&r, MOM_EINTERNAL, "request lost");
		conn_respond(c, &r);
		rest_response_fini(&r);
		return;
	}
	/*
	 * A consumer id of its own for every request: a settle leaves (and
	 * releases what its consumer holds), so it must never share the id
	 * of a receive.
	 */
	while ((c->consumer = atomic_fetch_add(&c->h->next_consumer, 1)) == 0)
		;
	rv = rest_build(&c->t, &c->head, (const uint8_t *)c->buf + c->start + c->head.len,
	    (size_t)c->head.length, c->h->cfg.max_payload, c->consumer, &c->call, &c->frame, err,
	    sizeof(err));
	if (rv == 0 && c->call.op == RO_LOCAL) {
		healthz(c);
		return;
	}
	if (rv != 0) {
		rest_response_init(&r);
		rest_error(&r, rv, err);
		conn_respond(c, &r);
		rest_response_fini(&r);
		return;
	}
	conn_submit(c);
}

/*
 * A head arrived: route it and check it before a byte of its body is
 * read.  Returns true when the body is to be read now.
 */
static bool
conn_begin(struct hconn *c)
{
	struct rest_head *h = &c->head;
	struct http      *ht = c->h;
	char              err[512], extra[256];
	const char       *tok;
	size_t            toklen;
	uint64_t          limit;
	int               st, allow, rv;

	atomic_fetch_add(&ht->requests, 1);
	c->moved = false;
	if (log_verbose)
		snprintf(c->what, sizeof(c->what), "%.*s %.*s", (int)(h->mlen > 16 ? 16 : h->mlen),
		    h->mname, (int)(h->tlen > 72 ? 72 : h->tlen), h->target);
	c->keep_alive = h->keep_alive;
	c->http10 = h->minor == 0;
	c->head_only = h->method == REST_HEAD;
	c->req_end = c->start + h->len;
	memset(&c->t, 0, sizeof(c->t));
	if (h->te) {
		c->keep_alive = false;
		conn_refuse(c, 411, "length_required", "Content-Length required: a chunked or "
		    "otherwise encoded body is not accepted", NULL);
		return false;
	}
	if (h->expect == 2) {
		conn_refuse(c, 417, "expectation_failed", "only \"Expect: 100-continue\" is understood",
		    NULL);
		return false;
	}
	if ((st = rest_route(h, mom_now_ms(), &c->t, &allow, err, sizeof(err))) != 0) {
		if (st == 405) {
			char a[64];

			rest_allow_text(allow, a, sizeof(a));
			snprintf(extra, sizeof(extra), "Allow: %s\r\n", a);
		}
		conn_refuse(c, st, st == 404 ? "not_found" : st == 405 ? "method_not_allowed" :
		    "invalid", err, st == 405 ? extra : NULL);
		return false;
	}
	/* Who asks comes first: the limits are nobody else's business. */
	if (auth_enabled(ht->cfg.auth) && rest_needs_auth(&c->t)) {
		rv = rest_bearer(h, &tok, &toklen);
		if (rv == MOM_ENOENT) {
			conn_refuse(c, 401, mom_err_name(MOM_EAUTH), "token required (Authorization: "
			    "Bearer TOKEN)", "WWW-Authenticate: Bearer realm=\"mom\"\r\n");
			return false;
		}
		if (rv != 0) {
			conn_refuse(c, 401, mom_err_name(MOM_EAUTH), "Authorization must be \"Bearer "
			    "TOKEN\"", "WWW-Authenticate: Bearer error=\"invalid_request\"\r\n");
			return false;
		}
		if (auth_check(ht->cfg.auth, tok, toklen, &c->claims, err, sizeof(err)) != 0) {
			conn_refuse(c, 401, mom_err_name(MOM_EAUTH), err,
			    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
			return false;
		}
	}
	limit = rest_body_limit(&c->t, h, ht->cfg.max_payload);
	if (h->length > limit) {
		snprintf(err, sizeof(err), "body of %" PRIu64 " bytes is over the limit of %" PRIu64
		    " bytes for this request", h->length, limit);
		c->keep_alive = false;
		conn_refuse(c, 413, mom_err_name(MOM_ETOOBIG), err, NULL);
		return false;
	}
	c->req_end += h->length;
	c->state = ST_BODY;
	c->head_timed = false;
	c->body_t0 = mom_mono_ms();
	if (h->length > 0 && h->expect == 1 && h->minor == 1 && c->len < c->req_end) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		mom_buf_reset(&c->out);
		mom_buf_put(&c->out, cont, sizeof(cont) - 1);
		c->out_off = 0;
		c->interim = true;
		conn_write(c);
		return false;
	}
	return true;
}

/*
 * How long the next read of a head may take: a kept-alive connection may
 * be idle for IDLE_MS, but from a head's first byte (from the connection's
 * start for its first request) the whole head has header_timeout_ms.
 * 0: the time is up.
 */
static nng_duration
head_timeout(struct hconn *c)
{
	int64_t now = mom_mono_ms();

	if (c->len == c->start && !c->head_timed)
		return IDLE_MS;
	if (!c->head_timed) {
		c->head_timed = true;
		c->deadline = now + (int64_t)c->h->cfg.header_timeout_ms;
	}
	return c->deadline > now ? (nng_duration)(c->deadline - now) : 0;
}

/*
 * The same for a body: after a start of header_timeout_ms it must have
 * come at body_rate bytes a second at least, so the bytes in hand buy the
 * time until the next ones are due.  0: they are late.
 */
static nng_duration
body_timeout(struct hconn *c)
{
	uint64_t got = c->len - (c->req_end - c->head.length);
	int64_t  due = c->body_t0 + (int64_t)c->h->cfg.header_timeout_ms +
	    (int64_t)(got * 1000 / c->h->cfg.body_rate);
	int64_t  now = mom_mono_ms();

	return due > now ? (nng_duration)(due - now) : 0;
}

/* A request too slow to wait for any more. */
static void
conn_timed_out(struct hconn *c)
{
	atomic_fetch_add(&c->h->timeouts, 1);
	log_debug("http: a request %s came too slowly: closed", c->state == ST_BODY ? "body" :
	    "head");
	conn_close(c);
}

/* Reads and serves requests for as long as the buffer holds them. */
static void
process(struct hconn *c)
{
	nng_duration tmo;
	int          rv;

	if (c->closed)
		return;
	if (c->state == ST_HEAD) {
		rv = rest_parse_head(c->buf + c->start, c->len - c->start, &c->head);
		if (rv == 0) {
			if ((tmo = head_timeout(c)) == 0)
				conn_timed_out(c);
			else
				conn_read(c, BUF_CHUNK, tmo);
			return;
		}
		if (rv < 0) {
			snprintf(c->what, sizeof(c->what), "(malformed request)");
			memset(&c->head, 0, sizeof(c->head));
			memset(&c->t, 0, sizeof(c->t));
			c->keep_alive = false;
			c->http10 = false;
			c->head_only = false;
			conn_refuse(c, -rv, rv == -431 ? "too_large" : rv == -505 ? "version" : "invalid",
			    rv == -431 ? "request head too large" : rv == -505 ?
			    "HTTP version not supported" : "malformed request", NULL);
			return;
		}
		if (!conn_begin(c))
			return;
	}
	if (c->state != ST_BODY)
		return;
	if (c->len < c->req_end) {
		if ((tmo = body_timeout(c)) == 0)
			conn_timed_out(c);
		else
			conn_read(c, c->req_end - c->len, tmo);
		return;
	}
	conn_dispatch(c);
}

/*
 * The HTTP plane's families after the core's (core/prom.c): HELP and TYPE
 * each, and no gauge shares a name with a counter (a counter foo_total is
 * the family foo to Prometheus): open connections, accepted ones.
 */
static void
metrics_append(struct hconn *c, struct mom_buf *b)
{
	char t[1536];
	int  n = atomic_load(&c->h->live);

	snprintf(t, sizeof(t),
	    "# HELP mom_http_requests_total HTTP requests read.\n"
	    "# TYPE mom_http_requests_total counter\n"
	    "mom_http_requests_total %" PRIuFAST64 "\n"
	    "# HELP mom_http_connections_open HTTP connections open now.\n"
	    "# TYPE mom_http_connections_open gauge\n"
	    "mom_http_connections_open %d\n"
	    "# HELP mom_http_connections_accepted_total HTTP connections accepted.\n"
	    "# TYPE mom_http_connections_accepted_total counter\n"
	    "mom_http_connections_accepted_total %" PRIuFAST64 "\n"
	    "# HELP mom_http_connections_evicted_total Connections closed to make room "
	    "at --http-max-conns.\n"
	    "# TYPE mom_http_connections_evicted_total counter\n"
	    "mom_http_connections_evicted_total %" PRIuFAST64 "\n"
	    "# HELP mom_http_request_timeouts_total Connections cut at "
	    "--http-header-timeout or under --http-body-rate.\n"
	    "# TYPE mom_http_request_timeouts_total counter\n"
	    "mom_http_request_timeouts_total %" PRIuFAST64 "\n",
	    atomic_load(&c->h->requests), n, atomic_load(&c->h->accepted),
	    atomic_load(&c->h->evicted), atomic_load(&c->h->timeouts));
	mom_buf_put(b, t, strlen(t));
}

/*
 * What the core answered, taken up on the sender thread: the answer is
 * read, rendered and written there, so that the core thread, which every
 * request passes, spends nothing on JSON, write(2) or waking the thread
 * that completes the write.
 */
static void
conn_answer(struct hconn *c)
{
	const uint8_t       *frame = c->noreply ? NULL : c->reply.data;
	size_t               len = c->noreply ? 0 : c->reply.len;
	struct rest_response r;

	if (c->releasing) {
		c->releasing = false;
		conn_close(c);
	} else if (c->closed || c->gone) {
		/* Nobody to tell: messages handed to a vanished client go back at once. */
		if (c->call.op == RO_FETCH &&
		    rest_release(&c->t, frame, len, c->consumer, &c->frame) == 0) {
			c->releasing = true;
			conn_submit(c);
		} else
			conn_close(c);
		conn_request_done(c);
	} else {
		rest_response_init(&r);
		rest_reply(&c->call, frame, len, &r, &c->frame);
		if (r.again)
			conn_submit(c);
		else {
			if (c->call.op == RO_METRICS && r.status == 200)
				metrics_append(c, &r.body);
			conn_respond(c, &r);
		}
		rest_response_fini(&r);
	}
}

static void *
sender_main(void *arg)
{
	struct http   *h = arg;
	struct hconn  *c;
	struct hconn_q batch;

	pthread_setname_np(pthread_self(), "mom:http-send");
	pthread_mutex_lock(&h->omu);
	for (;;) {
		while (STAILQ_EMPTY(&h->outbox) && !h->sender_stop)
			pthread_cond_wait(&h->ocv, &h->omu);
		if (STAILQ_EMPTY(&h->outbox))
			break;
		STAILQ_INIT(&batch);
		STAILQ_CONCAT(&batch, &h->outbox);
		pthread_mutex_unlock(&h->omu);
		while ((c = STAILQ_FIRST(&batch)) != NULL) {
			STAILQ_REMOVE_HEAD(&batch, olink);
			pthread_mutex_lock(&c->mu);
			c->queued = false;
			conn_answer(c);
			conn_unlock(c);
		}
		pthread_mutex_lock(&h->omu);
	}
	pthread_mutex_unlock(&h->omu);
	return NULL;
}

/* The core's answer (core thread, or the submitting thread for "busy"). */
static void
done_cb(struct core_req *req, const uint8_t *frame, size_t len)
{
	struct hconn   *c = req->arg;
	struct http    *h = c->h;
	struct bclaims *claims;
	nng_msg        *m;
	bool            wake;

	pthread_mutex_lock(&c->mu);
	c->in_core = false;
	m = c->reqmsg;
	c->reqmsg = NULL;
	claims = c->req_claims;
	c->req_claims = NULL;
	mom_buf_reset(&c->reply);
	if (frame != NULL)
		mom_buf_put(&c->reply, frame, len);
	c->noreply = frame == NULL || c->reply.err != 0;
	c->queued = true;
	pthread_mutex_unlock(&c->mu);
	nng_msg_free(m);
	bclaims_release(claims);
	/* Like the core's own queue: only the first answer of a batch wakes the sender. */
	pthread_mutex_lock(&h->omu);
	wake = STAILQ_EMPTY(&h->outbox);
	STAILQ_INSERT_TAIL(&h->outbox, c, olink);
	if (wake)
		pthread_cond_signal(&h->ocv);
	pthread_mutex_unlock(&h->omu);
}

/* Accepting. */

/*
 * At the cap, a new connection takes the place of the one that has waited
 * longest for a request of its own to come whole: idle, or trickling in
 * a head or body (slowloris).  Clients whose requests come promptly are
 * seldom that one; those with a request in the core never are.  h->mu
 * held; false when every connection is serving a request.
 */
static bool
conn_evict(struct http *h)
{
	struct hconn *c, *victim = NULL;
	int64_t       oldest = INT64_MAX, t;
	bool          done = false;

	LIST_FOREACH(c, &h->conns, link) {
		if ((t = atomic_load(&c->since)) != 0 && t < oldest) {
			oldest = t;
			victim = c;
		}
	}
	if (victim == NULL)
		return false;
	pthread_mutex_lock(&victim->mu);
	if (!victim->closed && atomic_load(&victim->since) != 0 &&
	    (victim->state == ST_HEAD || victim->state == ST_BODY)) {
		conn_close(victim);
		done = true;
		/* Nothing outstanding will call back for it (see http_stop): reaped here. */
		if (conn_dead(victim)) {
			LIST_REMOVE(victim, link);
			SLIST_INSERT_HEAD(&h->dead, victim, dlink);
			pthread_cond_broadcast(&h->cv);
		}
	}
	pthread_mutex_unlock(&victim->mu);
	if (done)
		atomic_fetch_add(&h->evicted, 1);
	return done;
}

/* Room for one more connection?  h->mu held. */
static bool
conn_room_for_one(struct http *h)
{
	int64_t now;

	if (h->stopping)
		return false;
	if (h->nconns < h->cfg.max_conns) {
		h->full_logged = false;
		return true;
	}
	if (conn_evict(h)) {
		now = mom_mono_ms();
		if (h->evict_logged == 0 || now - h->evict_logged >= EVICT_LOG_MS) {
			log_warnx("http: %d connections (--http-max-conns): closing the longest idle "
			    "or slowest to make room (%" PRIuFAST64 " so far)", h->cfg.max_conns,
			    atomic_load(&h->evicted));
			h->evict_logged = now;
		}
		return true;
	}
	if (!h->full_logged)
		log_warnx("http: %d connections, each serving a request: refusing more",
		    h->nconns);
	h->full_logged = true;
	return false;
}

static void
conn_new(struct http *h, nng_stream *s)
{
	struct hconn *c;

	pthread_mutex_lock(&h->mu);
	if (!conn_room_for_one(h)) {
		pthread_mutex_unlock(&h->mu);
		nng_stream_free(s);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || nng_aio_alloc(&c->rx, rx_cb, c) != 0 ||
	    nng_aio_alloc(&c->tx, tx_cb, c) != 0) {
		pthread_mutex_unlock(&h->mu);
		if (c != NULL) {
			nng_aio_free(c->rx);
			free(c);
		}
		nng_stream_free(s);
		return;
	}
	c->h = h;
	c->s = s;
	pthread_mutex_init(&c->mu, NULL);
	mom_buf_init(&c->frame);
	mom_buf_init(&c->out);
	mom_buf_init(&c->reply);
	LIST_INSERT_HEAD(&h->conns, c, link);
	h->nconns++;
	atomic_fetch_add(&h->live, 1);
	atomic_fetch_add(&h->accepted, 1);
	pthread_mutex_lock(&c->mu);
	pthread_mutex_unlock(&h->mu);
	c->state = ST_HEAD;
	/* The first request's head is due from the start. */
	c->head_timed = true;
	c->deadline = mom_mono_ms() + (int64_t)h->cfg.header_timeout_ms;
	atomic_store(&c->since, mom_mono_ms());
	conn_read(c, BUF_CHUNK, (nng_duration)h->cfg.header_timeout_ms);
	conn_unlock(c);
}

static void
acc_cb(void *arg)
{
	struct http *h = arg;
	int          rv = nng_aio_result(h->acc);

	if (rv != 0) {
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
		/* Out of descriptors, most likely: try again a little later. */
		log_warnx("http: accept: %s", nng_strerror(rv));
		nng_sleep_aio(100, h->pause);
		return;
	}
	conn_new(h, nng_aio_get_output(h->acc, 0));
	nng_stream_listener_accept(h->l, h->acc);
}

static void
pause_cb(void *arg)
{
	struct http *h = arg;

	if (nng_aio_result(h->pause) == 0)
		nng_stream_listener_accept(h->l, h->acc);
}

/* Configuration. */

int
http_url(const char *addr, char *url, size_t len, bool *tls)
{
	const char *hp = addr, *port, *host_end;
	char       *e;
	long        p;
	int         n;

	*tls = false;
	if (strncasecmp(addr, "http://", 7) == 0)
		hp = addr + 7;
	else if (strncasecmp(addr, "https://", 8) == 0) {
		hp = addr + 8;
		*tls = true;
	}
	if (*hp == '\0' || strpbrk(hp, "/?#@ \t") != NULL)
		return MOM_EINVAL;
	if (*hp == '[') {
		if ((host_end = strchr(hp, ']')) == NULL || host_end == hp + 1)
			return MOM_EINVAL;
		host_end++;
		if (*host_end != '\0' && *host_end != ':')
			return MOM_EINVAL;
	} else {
		host_end = strchr(hp, ':');
		if (host_end == NULL)
			host_end = hp + strlen(hp);
		if (host_end == hp || strchr(host_end + (*host_end == ':'), ':') != NULL)
			return MOM_EINVAL;
	}
	if (*host_end == ':') {
		port = host_end + 1;
		p = strtol(port, &e, 10);
		if (*port < '0' || *port > '9' || *e != '\0' || p < 1 || p > 65535)
			return MOM_EINVAL;
	} else
		p = *tls ? 7443 : 7421;
	n = snprintf(url, len, "%s://%.*s:%ld", *tls ? "tls+tcp" : "tcp", (int)(host_end - hp), hp, p);
	return n < 0 || (size_t)n >= len ? MOM_EINVAL : 0;
}

static uint64_t
random_u64(void)
{
	uint64_t v = 0;
	int      fd;

	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) >= 0) {
		if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			v = 0;
		close(fd);
	}
	if (v == 0)
		v = (uint64_t)mom_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	return v;
}

int
http_start(struct http **hp, const struct http_config *cfg, struct core *core, char *err,
    size_t errlen)
{
	struct http *h;
	int          rv;

	*hp = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL || (h->url = strdup(cfg->url)) == NULL) {
		free(h);
		mom_errf(err, errlen, "out of memory");
		return -1;
	}
	h->cfg = *cfg;
	h->cfg.url = h->url;
	LIST_INIT(&h->conns);
	SLIST_INIT(&h->dead);
	STAILQ_INIT(&h->outbox);
	if (h->cfg.max_conns <= 0)
		h->cfg.max_conns = HTTP_MAX_CONNS;
	if (h->cfg.header_timeout_ms == 0)
		h->cfg.header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
	if (h->cfg.body_rate == 0)
		h->cfg.body_rate = HTTP_BODY_RATE;
	h->core = core;
	h->started = mom_mono_ms();
	atomic_store(&h->next_consumer, random_u64());
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	pthread_mutex_init(&h->omu, NULL);
	pthread_cond_init(&h->ocv, NULL);
	if ((rv = nng_aio_alloc(&h->acc, acc_cb, h)) != 0 ||
	    (rv = nng_aio_alloc(&h->pause, pause_cb, h)) != 0) {
		mom_errf(err, errlen, "%s", nng_strerror(rv));
		goto fail;
	}
	/* TCP_NODELAY from the first packet on, the TLS handshake included. */
	if (mom_tls_stream_listener(&h->l, h->url, cfg->tls, err, errlen) != 0)
		goto fail;
	if (pthread_create(&h->reaper, NULL, reaper_main, h) != 0) {
		mom_errf(err, errlen, "cannot start a thread");
		goto fail;
	}
	if (pthread_create(&h->sender, NULL, sender_main, h) != 0) {
		mom_errf(err, errlen, "cannot start a thread");
		pthread_mutex_lock(&h->mu);
		h->reaper_stop = true;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->reaper, NULL);
		goto fail;
	}
	nng_stream_listener_accept(h->l, h->acc);
	log_info("http: listening on %s", h->url);
	*hp = h;
	return 0;
fail:
	if (h->l)
		nng_stream_listener_free(h->l);
	nng_aio_free(h->acc);
	nng_aio_free(h->pause);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->omu);
	pthread_cond_destroy(&h->ocv);
	free(h->url);
	free(h);
	return -1;
}

void
http_quiesce(struct http *h)
{
	if (h != NULL)
		atomic_store(&h->quiesced, true);
}

void
http_stop(struct http *h)
{
	struct hconn *c;
	int64_t       t0 = mom_mono_ms();
	bool          warned = false;

	if (h == NULL)
		return;
	atomic_store(&h->quiesced, true);
	pthread_mutex_lock(&h->mu);
	h->stopping = true;
	pthread_mutex_unlock(&h->mu);
	nng_stream_listener_close(h->l);
	nng_aio_stop(h->acc);
	nng_aio_stop(h->pause);
	/*
	 * Answers the core already gave (a stopping core ends every long
	 * poll with an empty one) are written before connections close:
	 * wait, briefly, until none is in the core, the outbox or a write.
	 */
	while (mom_mono_ms() - t0 < 3000) {
		bool busy = false;

		pthread_mutex_lock(&h->mu);
		LIST_FOREACH(c, &h->conns, link) {
			if (busy)
				break;
			pthread_mutex_lock(&c->mu);
			busy = !c->closed && (c->in_core || c->queued || c->tx_busy);
			pthread_mutex_unlock(&c->mu);
		}
		pthread_mutex_unlock(&h->mu);
		if (!busy)
			break;
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
	pthread_mutex_lock(&h->mu);
	LIST_FOREACH(c, &h->conns, link) {
		pthread_mutex_lock(&c->mu);
		conn_close(c);
		/* Nothing outstanding will call back for these: reaped here. */
		c->reap_here = conn_dead(c);
		pthread_mutex_unlock(&c->mu);
	}
	for (c = LIST_FIRST(&h->conns); c != NULL;) {
		struct hconn *n = LIST_NEXT(c, link);

		if (c->reap_here) {
			LIST_REMOVE(c, link);
			SLIST_INSERT_HEAD(&h->dead, c, dlink);
		}
		c = n;
	}
	pthread_cond_broadcast(&h->cv);
	while (h->nconns > 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&h->cv, &h->mu, &ts);
		if (!warned && mom_mono_ms() - t0 > 5000) {
			log_warnx("http: waiting for %d connections to finish", h->nconns);
			warned = true;
		}
	}
	h->reaper_stop = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->reaper, NULL);
	/* Every connection is gone, so none is in the outbox any more. */
	pthread_mutex_lock(&h->omu);
	h->sender_stop = true;
	pthread_cond_signal(&h->ocv);
	pthread_mutex_unlock(&h->omu);
	pthread_join(h->sender, NULL);
	nng_stream_listener_free(h->l);
	nng_aio_free(h->acc);
	nng_aio_free(h->pause);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->omu);
	pthread_cond_destroy(&h->ocv);
	free(h->url);
	free(h);
}

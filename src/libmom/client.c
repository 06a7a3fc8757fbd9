/*
 * client.c: the client connection (see client.h).
 *
 * Each broker of the list (a node) has a req socket and dialer of its
 * own, so that the client, not nng, chooses where a request goes: one
 * socket dialling every broker lets nng pick a pipe, and a request that
 * went to a broker that stopped answering (SIGSTOP, a hung host: its TCP
 * connection stays up) would wait for nng's resend timer.  Each slot of
 * the window has an nng context on every node's socket and one aio that
 * goes send -> recv -> done; with several nodes an attempt has a deadline
 * (--request-timeout, plus the wait of a long poll), after which, or when
 * its node's connection is lost, the slot sends a copy of the request to
 * the node failover.c picks.  Completions are handed to the caller's
 * thread through a FIFO under one mutex; nng's callbacks never block.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "client.h"
#include "nngclose.h"
#include "failover.h"
#include "mom.h"

/* The longest mom_client_close waits for nng to close a socket (nngclose.h). */
#define CLOSE_MS 1000

enum { SLOT_FREE, SLOT_SEND, SLOT_RECV, SLOT_DONE };

struct slot {
	struct mom_client *c;
	nng_ctx           *ctx;        /* one on each node's socket */
	nng_aio           *aio;
	int                state;
	int                rv;
	void              *tag;
	nng_msg           *rep;
	nng_msg           *req;        /* a copy to send elsewhere (several nodes); NULL: none */
	int                node;       /* where the attempt went */
	int64_t            attempt_ms; /* its deadline; 0: none (one node: nng reconnects and resends) */
	int                answer_wait; /* once sent, wait for the answer (a cluster change) */
	int64_t            sent_at;    /* mono ms */
	struct slot       *next;       /* free list or done FIFO */
};

/* A broker of the list: its socket, dialer and dialling thread. */
struct dial {
	struct mom_client *c;
	int                idx;         /* in c->nodes and c->st */
	char              *url;
	nng_socket         sock;
	int                sock_open;
	int                npipes;
	nng_dialer         dialer;
	int                tls;         /* a tls+ URL */
	char               tlswhy[256]; /* what a failed TLS handshake most likely means */
	char               tlsshut[160]; /* what the server hanging up in the handshake means */
	char               noname[160]; /* the host name does not resolve: why */
	pthread_t          thread;
	int                started, done, rv;
	struct dial       *next;
};

struct mom_client {
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	int             npipes;
	int64_t         down_since; /* mono ms; valid when npipes == 0 */
	int64_t         replaced_since; /* mono ms of the first "shutting down" reply in a row; 0: none */
	int64_t         again_at;   /* mono ms: mom_client_again's callers send again then */
	int64_t         reconnect_ms;
	int             verbose;
	char           *token;
	volatile int   *interrupt;
	struct dial    *dials;
	struct dial   **nodes;      /* the list's order */
	struct mom_node_state *st;  /* failover.c's view of each node */
	int             nnodes, cur;
	int64_t         request_ms; /* --request-timeout */
	int             closing;
	int             ready;      /* the slots are all set up */
	struct slot    *slots;
	int             nslots;
	int             inflight;
	struct slot    *free;
	struct slot    *done_head, *done_tail;
};

/* Aborts the attempts in flight on node d: slot_cb sends them elsewhere. */
static void
node_abort(struct mom_client *c, struct dial *d)
{
	nng_aio **aios;
	int       i, n = 0;

	if ((aios = calloc((size_t)c->nslots, sizeof(*aios))) == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	for (i = 0; c->ready && i < c->nslots; i++) {
		struct slot *s = &c->slots[i];

		if ((s->state == SLOT_SEND || s->state == SLOT_RECV) && s->node == d->idx &&
		    s->req != NULL)
			aios[n++] = s->aio;
	}
	pthread_mutex_unlock(&c->mu);
	/*
	 * Outside the lock: a cancelled aio's callback takes it.  A slot that
	 * completed meanwhile and went out again is only resent: harmless.
	 */
	for (i = 0; i < n; i++)
		nng_aio_cancel(aios[i]);
	free(aios);
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct dial       *d = arg;
	struct mom_client *c = d->c;
	int                lost = 0;

	(void)p;
	pthread_mutex_lock(&c->mu);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		c->npipes++;
		d->npipes++;
		/*
		 * A new connection, to the broker that came back: a long poll
		 * parked there must not count as time without a broker.
		 */
		c->replaced_since = 0;
	} else if (ev == NNG_PIPE_EV_REM_POST && d->npipes > 0) {
		if (--d->npipes == 0) {
			mom_node_note(&c->st[d->idx], MOM_NODE_GONE, mom_mono_ms());
			lost = c->nnodes > 1 && !c->closing;
		}
		if (c->npipes > 0 && --c->npipes == 0)
			c->down_since = mom_mono_ms();
	}
	c->st[d->idx].connected = d->npipes > 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (lost) {
		if (c->verbose)
			fprintf(stderr, "mom: lost the connection to %s\n", d->url);
		node_abort(c, d);
	}
}

static void
slot_finish(struct slot *s, int rv, nng_msg *rep)
{
	struct mom_client *c = s->c;

	pthread_mutex_lock(&c->mu);
	s->state = SLOT_DONE;
	s->rv = rv;
	s->rep = rep;
	s->next = NULL;
	if (c->done_tail)
		c->done_tail->next = s;
	else
		c->done_head = s;
	c->done_tail = s;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* What is left of the attempt's deadline, as an nng timeout. */
static nng_duration
attempt_left(const struct slot *s)
{
	int64_t left;

	if (s->attempt_ms <= 0)
		return NNG_DURATION_INFINITE;
	left = s->attempt_ms - (mom_mono_ms() - s->sent_at);
	return left > 0 ? (nng_duration)left : 1;
}

/* Sends m (owned) on the slot's node, within the attempt's deadline. */
static void
slot_send(struct slot *s, nng_msg *m)
{
	nng_aio_set_msg(s->aio, m);
	nng_aio_set_timeout(s->aio, attempt_left(s));
	nng_ctx_send(s->ctx[s->node], s->aio);
}

/*
 * The attempt timed out (the node is silent) or was aborted (its
 * connection was lost): sends the request to the node failover.c picks
 * now.  0 when it cannot (one node, closing, no memory): the slot then
 * completes with the error.
 */
static int
slot_again(struct slot *s, int why)
{
	struct mom_client *c = s->c;
	nng_msg           *m = NULL;
	int64_t            now = mom_mono_ms();
	int                from = s->node;
	enum mom_node_event ev;

	if (s->req == NULL || nng_msg_dup(&m, s->req) != 0)
		return 0;
	pthread_mutex_lock(&c->mu);
	if (c->closing || (c->interrupt != NULL && *c->interrupt)) {
		pthread_mutex_unlock(&c->mu);
		nng_msg_free(m);
		return 0;
	}
	ev = why == NNG_ETIMEDOUT ? MOM_NODE_SILENT : MOM_NODE_GONE;
	mom_node_note(&c->st[from], ev, now);
	c->cur = mom_node_after(c->cur, from, c->nnodes, ev);
	c->cur = s->node = mom_node_pick(c->st, c->nnodes, c->cur, now);
	s->state = SLOT_SEND;
	s->sent_at = now;
	pthread_mutex_unlock(&c->mu);
	if (c->verbose)
		fprintf(stderr, "mom: %s%s: request resent to %s\n", c->nodes[from]->url,
		    why == NNG_ETIMEDOUT ? " did not answer in time" : " went away",
		    c->nodes[s->node]->url);
	slot_send(s, m);
	return 1;
}

static void
slot_cb(void *arg)
{
	struct slot *s = arg;
	int          rv = nng_aio_result(s->aio);

	if (s->state == SLOT_SEND && rv == 0) {
		s->state = SLOT_RECV;
		nng_aio_set_timeout(s->aio, s->answer_wait ? NNG_DURATION_INFINITE :
		    attempt_left(s));
		nng_ctx_recv(s->ctx[s->node], s->aio);
		return;
	}
	if (s->state == SLOT_SEND) {
		nng_msg_free(nng_aio_get_msg(s->aio));
		nng_aio_set_msg(s->aio, NULL);
	}
	if ((rv == NNG_ETIMEDOUT || rv == NNG_ECANCELED) && slot_again(s, rv))
		return;
	slot_finish(s, rv, rv == 0 ? nng_aio_get_msg(s->aio) : NULL);
}

static void deadline_ts(struct timespec *, int64_t);

/*
 * Creates d's dialer (not started): a URL nng cannot take fails here, and
 * a tls+ URL gets its TLS configuration, verifying the URL's host.
 */
static int
dial_setup(struct mom_client *c, struct dial *d, const struct mom_client_opts *o, char *err,
    size_t errlen)
{
	nng_tls_config *cfg;
	nng_url        *u;
	unsigned char   a[16];
	const char     *ca;
	int             rv;

	if ((rv = nng_dialer_create(&d->dialer, d->sock, d->url)) != 0) {
		/* "127.0.0.1:7420" is the likeliest slip: a host and port without a scheme. */
		if (strstr(d->url, "://") == NULL && strchr(d->url, ':') != NULL)
			mom_errf(err, errlen, "bad server URL '%s': no scheme (did you mean "
			    "tcp://%s?)", d->url, d->url);
		else
			mom_errf(err, errlen, "bad server URL '%s': %s", d->url, nng_strerror(rv));
		return MOM_EINVAL;
	}
	if (!(d->tls = mom_tls_url(d->url)))
		return 0;
	if ((rv = nng_url_parse(&u, d->url)) != 0) {
		mom_errf(err, errlen, "bad server URL '%s': %s", d->url, nng_strerror(rv));
		return MOM_EINVAL;
	}
	if (mom_tls_client_config(&cfg, &o->tls, u->u_hostname, err, errlen) != 0) {
		nng_url_free(u);
		return MOM_EINVAL;
	}
	/* The dialer takes its own hold on the configuration. */
	rv = nng_dialer_set_ptr(d->dialer, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg);
	if (rv != 0) {
		nng_url_free(u);
		mom_errf(err, errlen, "%s: cannot use TLS: %s", d->url, nng_strerror(rv));
		return MOM_EINVAL;
	}
	/*
	 * nng reports a failed certificate check as a bare "Cryptographic
	 * error", which is also what a server that does not speak TLS gets
	 * us: say what it most likely means.
	 */
	ca = o->tls.cafile ? o->tls.cafile : mom_tls_default_cafile();
	if (o->tls.insecure)
		snprintf(d->tlswhy, sizeof(d->tlswhy), "the server does not speak TLS%s",
		    o->tls.cert ? ", or refused our certificate" : "");
	else if (inet_pton(AF_INET, u->u_hostname, a) == 1 || inet_pton(AF_INET6, u->u_hostname, a) == 1)
		snprintf(d->tlswhy, sizeof(d->tlswhy), "the server's certificate does not verify "
		    "against %s, or lacks DNS:%s (nng's TLS cannot match IP addresses: use a host "
		    "name)%s", ca, u->u_hostname, o->tls.cert ? "; or the server refused our certificate" : "");
	else
		snprintf(d->tlswhy, sizeof(d->tlswhy), "the server's certificate does not verify "
		    "against %s, or is not issued for %s%s", ca, u->u_hostname,
		    o->tls.cert ? "; or the server refused our certificate" : "");
	/* A TLS server that hangs up in the handshake did not take our certificate (or its absence). */
	if (o->tls.cert)
		snprintf(d->tlsshut, sizeof(d->tlsshut), "the server refused our certificate %s",
		    o->tls.cert);
	else
		snprintf(d->tlsshut, sizeof(d->tlsshut), "the server wants a client certificate "
		    "(--cert, --key)");
	nng_url_free(u);
	return 0;
}

/*
 * nng's answers when a TLS handshake fails: verification (ours, or the
 * server's of our certificate, told by an alert) or a server that hung up.
 */
static int
tls_failure(int rv)
{
	return rv == NNG_ECRYPTO || rv == NNG_EPEERAUTH || rv == NNG_ECONNSHUT;
}

/*
 * nng says "address invalid" both for an address it cannot parse and for
 * a host name that does not resolve; only the first is a usage error.
 * Fills d->noname when the URL's host does not resolve (now).
 */
static void
dial_resolve(struct dial *d)
{
	struct addrinfo hints, *ai = NULL;
	nng_url        *u;
	int             rv;

	if (nng_url_parse(&u, d->url) != 0)
		return;
	if (u->u_hostname != NULL && u->u_hostname[0] != '\0' && strstr(u->u_scheme, "tcp")) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		rv = getaddrinfo(u->u_hostname, NULL, &hints, &ai);
		if (rv == EAI_NONAME || rv == EAI_AGAIN || rv == EAI_FAIL
#ifdef EAI_NODATA
		    || rv == EAI_NODATA
#endif
		    )
			snprintf(d->noname, sizeof(d->noname), "host name '%s' does not resolve (%s)",
			    u->u_hostname, gai_strerror(rv));
		if (ai != NULL)
			freeaddrinfo(ai);
	}
	nng_url_free(u);
}

static void *
dial_main(void *arg)
{
	struct dial       *d = arg;
	struct mom_client *c = d->c;
	int                rv = nng_dialer_start(d->dialer, 0);

	if (rv != 0 && rv != NNG_ECLOSED) {
		if (rv == NNG_EADDRINVAL)
			dial_resolve(d);
		if (c->verbose)
			fprintf(stderr, "mom: %s: %s\n", d->url, d->noname[0] ? d->noname :
			    nng_strerror(rv));
		/* A failed blocking start leaves the dialer ready to start again. */
		nng_dialer_start(d->dialer, NNG_FLAG_NONBLOCK);
	}
	pthread_mutex_lock(&c->mu);
	d->rv = rv;
	d->done = 1;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* The client without its socket: NULL when out of memory (err set only for the token). */
static struct mom_client *
client_new(const struct mom_client_opts *o, char *err, size_t errlen)
{
	struct mom_client *c;
	pthread_condattr_t ca;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	/* Deadlines are monotonic: so must the condition variable's clock be. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_condattr_destroy(&ca);
	c->reconnect_ms = o->reconnect_ms > 0 ? o->reconnect_ms : 60000;
	c->verbose = o->verbose;
	if (o->token != NULL && (c->token = strdup(o->token)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(c);
		return NULL;
	}
	c->nslots = o->window > 0 ? o->window : 8;
	c->request_ms = o->request_ms > 0 ? o->request_ms : MOM_CLIENT_REQUEST_MS;
	c->down_since = mom_mono_ms();
	return c;
}

/* Node d's req socket: 0 or an error code. */
static int
node_socket(struct mom_client *c, struct dial *d, char *err, size_t errlen)
{
	int rv;

	if ((rv = nng_req0_open(&d->sock)) != 0) {
		mom_errf(err, errlen, "cannot open socket: %s", nng_strerror(rv));
		return MOM_EINTERNAL;
	}
	d->sock_open = 1;
	/* Replies carry whole batches; the broker bounds what it sends. */
	nng_socket_set_size(d->sock, NNG_OPT_RECVMAXSZ, (size_t)MOM_PAYLOAD_LIMIT * 2);
	nng_socket_set_ms(d->sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(d->sock, NNG_OPT_RECONNMAXT, 1000);
	nng_socket_set_ms(d->sock, NNG_OPT_REQ_RESENDTIME, 30000);
	nng_socket_set_int(d->sock, NNG_OPT_SENDBUF, 64);
	nng_socket_set_int(d->sock, NNG_OPT_RECVBUF, 64);
	nng_pipe_notify(d->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, d);
	nng_pipe_notify(d->sock, NNG_PIPE_EV_REM_POST, pipe_cb, d);
	(void)c;
	return 0;
}

/* The window: slots with a context on every node's socket.  0 or an error code. */
static int
client_slots(struct mom_client *c)
{
	int i, k;

	if ((c->slots = calloc((size_t)c->nslots, sizeof(*c->slots))) == NULL)
		return MOM_ENOMEM;
	for (i = 0; i < c->nslots; i++) {
		struct slot *s = &c->slots[i];

		s->c = c;
		if ((s->ctx = calloc((size_t)c->nnodes, sizeof(*s->ctx))) == NULL)
			return MOM_ENOMEM;
		for (k = 0; k < c->nnodes; k++)
			if (nng_ctx_open(&s->ctx[k], c->nodes[k]->sock) != 0)
				return MOM_ENOMEM;
		if (nng_aio_alloc(&s->aio, slot_cb, s) != 0)
			return MOM_ENOMEM;
		s->next = c->free;
		c->free = s;
	}
	pthread_mutex_lock(&c->mu);
	c->ready = 1;
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Adds a node for url (the list's next): 0 or an error code. */
static int
node_add(struct mom_client *c, const char *url, struct dial **dp)
{
	struct dial **nodes;
	struct mom_node_state *st;
	struct dial  *d;

	*dp = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return MOM_ENOMEM;
	if ((d->url = strdup(url)) == NULL) {
		free(d);
		return MOM_ENOMEM;
	}
	/* The earlier nodes' pipe callbacks read c->st under the lock. */
	pthread_mutex_lock(&c->mu);
	if ((nodes = realloc(c->nodes, (size_t)(c->nnodes + 1) * sizeof(*nodes))) != NULL)
		c->nodes = nodes;
	if ((st = realloc(c->st, (size_t)(c->nnodes + 1) * sizeof(*st))) != NULL)
		c->st = st;
	if (nodes == NULL || st == NULL) {
		pthread_mutex_unlock(&c->mu);
		free(d->url);
		free(d);
		return MOM_ENOMEM;
	}
	d->c = c;
	d->idx = c->nnodes;
	d->next = c->dials;
	c->dials = d;
	memset(&c->st[d->idx], 0, sizeof(c->st[d->idx]));
	c->nodes[c->nnodes++] = d;
	pthread_mutex_unlock(&c->mu);
	*dp = d;
	return 0;
}

/*
 * Starts dialling every server of the list: each on a thread of its own,
 * since a blocking dial tells at once whether a server refuses, and the
 * threads let the wait be bounded when one accepts TCP but never answers
 * (stopped).  A server that refuses is dialled again in the background, so
 * that the client fails over to it when it comes back.  *ndials: how many.
 * 0 or an error code (err set but for MOM_ENOMEM).
 */
static int
dials_start(struct mom_client *c, const struct mom_client_opts *o, int *ndials, char *err,
    size_t errlen)
{
	char *list, *url, *save = NULL;
	int   rv = 0;

	*ndials = 0;
	if ((list = strdup(o->servers ? o->servers : "tcp://127.0.0.1:7420")) == NULL)
		return MOM_ENOMEM;
	for (url = strtok_r(list, ",", &save); url; url = strtok_r(NULL, ",", &save)) {
		struct dial *d;

		while (*url == ' ')
			url++;
		if (*url == '\0')
			continue;
		if ((rv = node_add(c, url, &d)) != 0 || (rv = node_socket(c, d, err, errlen)) != 0 ||
		    (rv = dial_setup(c, d, o, err, errlen)) != 0)
			break;
		if (pthread_create(&d->thread, NULL, dial_main, d) != 0) {
			d->done = 1;
			d->rv = NNG_ENOMEM;
		} else
			d->started = 1;
		(*ndials)++;
	}
	free(list);
	if (rv == 0 && *ndials == 0) {
		mom_errf(err, errlen, "no server given");
		rv = MOM_EINVAL;
	}
	return rv;
}

/* What the dials have come to so far (under c->mu). */
struct dial_count {
	int done, ok, bad, tlsbad;
};

/*
 * Counts the dials by outcome; err says why for a bad URL or a failed TLS
 * handshake, lasterr what the last other failure was.
 */
static void
dials_count(struct mom_client *c, struct dial_count *n, char *err, size_t errlen, char *lasterr,
    size_t lastlen)
{
	struct dial *d;

	memset(n, 0, sizeof(*n));
	for (d = c->dials; d; d = d->next) {
		n->done += d->done;
		n->ok += d->done && d->rv == 0;
		if (d->done && d->noname[0] != '\0')
			snprintf(lasterr, lastlen, "%s: %s", d->url, d->noname);
		else if (d->done && (d->rv == NNG_EADDRINVAL || d->rv == NNG_EINVAL ||
		    d->rv == NNG_ENOTSUP)) {
			n->bad++;
			mom_errf(err, errlen, "bad server URL '%s': %s", d->url, nng_strerror(d->rv));
		} else if (d->done && d->tls && tls_failure(d->rv)) {
			n->tlsbad++;
			mom_errf(err, errlen, "%s: TLS handshake failed: %s", d->url,
			    d->rv == NNG_ECONNSHUT ? d->tlsshut : d->tlswhy);
		} else if (d->done && d->rv != 0)
			snprintf(lasterr, lastlen, "%s: %s%s", d->url, nng_strerror(d->rv),
			    d->rv == NNG_ECONNSHUT && !d->tls ? " (a tls+tcp:// listener?)" : "");
	}
}

/*
 * Waits until a server accepts (0), every dial failed (at once, or when
 * they still fail after retry_ms: nng dials them again in the background),
 * or the connect time (retry_ms, else -W, else 10 s) passed: an error code
 * with err set.
 */
static int
dials_wait(struct mom_client *c, const struct mom_client_opts *o, int ndials, char *err,
    size_t errlen)
{
	struct dial_count n;
	struct timespec   ts;
	char              lasterr[256] = "";
	int64_t           deadline, start = mom_mono_ms();
	int               ret;

	deadline = start + (o->retry_ms > 0 ? o->retry_ms : o->connect_ms > 0 ? o->connect_ms :
	    10000);
	pthread_mutex_lock(&c->mu);
	for (;;) {
		dials_count(c, &n, err, errlen, lasterr, sizeof(lasterr));
		if (n.bad) {
			ret = MOM_EINVAL;
			break;
		}
		if (n.ok || c->npipes > 0) {
			ret = 0;
			break;
		}
		/* Dialling again will not fix a certificate: an authentication failure. */
		if (n.done == ndials && n.tlsbad) {
			ret = MOM_EAUTH;
			break;
		}
		if (n.done == ndials && (o->retry_ms <= 0 || mom_mono_ms() >= deadline)) {
			if (o->retry_ms > 0)
				mom_errf(err, errlen, "no broker reachable within %.1f s (%s)",
				    (double)(mom_mono_ms() - start) / 1000, lasterr);
			else
				mom_errf(err, errlen, "no broker reachable (%s)", lasterr);
			ret = MOM_EUNAVAIL;
			break;
		}
		if (mom_mono_ms() >= deadline) {
			mom_errf(err, errlen, "timed out connecting to %s", o->servers);
			ret = o->connect_ms > 0 ? MOM_ETIMEDOUT : MOM_EUNAVAIL;
			break;
		}
		deadline_ts(&ts, 50);
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	pthread_mutex_unlock(&c->mu);
	return ret;
}

int
mom_client_open(struct mom_client **cp, const struct mom_client_opts *o, char *err, size_t errlen)
{
	struct mom_client *c;
	int                ndials, rv;

	*cp = NULL;
	if ((c = client_new(o, err, errlen)) == NULL)
		return MOM_ENOMEM;
	if ((rv = dials_start(c, o, &ndials, err, errlen)) != 0 ||
	    (rv = client_slots(c)) != 0 ||
	    (rv = dials_wait(c, o, ndials, err, errlen)) != 0) {
		mom_client_close(c);
		return rv;
	}
	*cp = c;
	return 0;
}

void
mom_client_close(struct mom_client *c)
{
	int          i;
	struct slot *s;
	struct dial *d;
	bool         stuck = false;

	if (c == NULL)
		return;
	/* A cancelled attempt is not sent elsewhere now (slot_again). */
	pthread_mutex_lock(&c->mu);
	c->closing = 1;
	pthread_mutex_unlock(&c->mu);
	/*
	 * Stop every aio first: a callback that re-arms its context while
	 * the socket is being closed trips a race inside nng 1.5.2 (a panic
	 * on a destroyed mutex).  A stopped aio takes no new operation.
	 */
	for (i = 0; c->slots && i < c->nslots; i++)
		if (c->slots[i].aio)
			nng_aio_stop(c->slots[i].aio);
	/*
	 * Closing the sockets ends the dials still blocked.  A close that
	 * does not finish (nng 1.5.2, nngclose.h) leaves everything as it
	 * is: nng may still use the aios and messages, and the program is
	 * about to exit, whose last word is already said.
	 */
	for (d = c->dials; d; d = d->next)
		if (d->sock_open && !mom_nng_close_within(d->sock, CLOSE_MS))
			stuck = true;
	if (stuck)
		return;
	while (c->dials) {
		d = c->dials;
		c->dials = d->next;
		if (d->started)
			pthread_join(d->thread, NULL);
		free(d->url);
		free(d);
	}
	for (i = 0; c->slots && i < c->nslots; i++) {
		if (c->slots[i].aio)
			nng_aio_free(c->slots[i].aio);
		if (c->slots[i].req != NULL)
			nng_msg_free(c->slots[i].req);
		free(c->slots[i].ctx);
	}
	for (s = c->done_head; s; s = s->next)
		nng_msg_free(s->rep);
	free(c->slots);
	free(c->nodes);
	free(c->st);
	free(c->token);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

void
mom_client_set_interrupt(struct mom_client *c, volatile int *flag)
{
	c->interrupt = flag;
}

int
mom_client_inflight(const struct mom_client *c)
{
	return c->inflight;
}

int
mom_client_window(const struct mom_client *c)
{
	return c->nslots;
}

static void
deadline_ts(struct timespec *ts, int64_t ms)
{
	mom_timespec_in(ts, CLOCK_MONOTONIC, ms);
}

/*
 * Since when no usable broker was there (under c->mu): not connected, or
 * answering "shutting down"; now when there is one.
 */
static int64_t
gone_since(const struct mom_client *c, int64_t now)
{
	int64_t t = now;

	if (c->npipes == 0 && c->down_since < t)
		t = c->down_since;
	if (c->replaced_since > 0 && c->replaced_since < t)
		t = c->replaced_since;
	return t;
}

/*
 * Waits on the condition variable for at most 100 ms (so that a lost
 * connection is noticed) and reports whether the wait should stop:
 * MOM_ETIMEDOUT at the deadline, MOM_EUNAVAIL after the reconnect window.
 * Called with the mutex held.
 */
static int
wait_step(struct mom_client *c, int64_t deadline)
{
	struct timespec ts;
	int64_t         now = mom_mono_ms(), step = 100;

	if (c->interrupt != NULL && *c->interrupt)
		return MOM_ECLOSED;
	if (deadline >= 0 && now >= deadline)
		return MOM_ETIMEDOUT;
	if (now - gone_since(c, now) >= c->reconnect_ms)
		return MOM_EUNAVAIL;
	if (deadline >= 0 && deadline - now < step)
		step = deadline - now;
	deadline_ts(&ts, step);
	pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	return 0;
}

/*
 * How long one attempt of req may take before it goes to another node:
 * the request timeout, plus the wait of a long poll, which the broker
 * holds that long by design.
 */
static int64_t
attempt_ms(const struct mom_client *c, const struct mom_buf *req)
{
	struct mom_rd    rd;
	struct mom_frame f;
	struct mom_fetch fe;

	mom_rd_init(&rd, req->data, req->len);
	if (mom_frame_decode(&rd, &f) != 0 || f.op != MOM_OP_FETCH)
		return c->request_ms;
	memset(&fe, 0, sizeof(fe));
	if (mom_fetch_decode_head(&rd, &fe) != 0 || fe.wait_ms > INT32_MAX)
		return c->request_ms;
	return c->request_ms + (int64_t)fe.wait_ms;
}

/*
 * Is req a change of the cluster's membership or leadership?  Its node
 * answers when the cluster is done, which may take longer than the
 * request timeout (a newcomer catching up); sent again to another node
 * meanwhile, it would meet its own change under way, and then the change
 * done ("node 4 is a member already").  Such a request, once a node took
 * it, waits for that node's answer: it goes elsewhere only when the
 * node's connection is lost, and the caller's -W bounds it.
 */
static int
answer_wait(const struct mom_buf *req)
{
	static const char *const changes[] = { "cluster.add", "cluster.remove",
	    "cluster.transfer" };
	struct mom_rd    rd;
	struct mom_frame f;
	const uint8_t   *p;
	const char      *op;
	json_t          *j;
	size_t           n, i;
	int              yes = 0;

	mom_rd_init(&rd, req->data, req->len);
	if (mom_frame_decode(&rd, &f) != 0 || f.op != MOM_OP_ADMIN)
		return 0;
	p = mom_rd_bytes(&rd, &n);
	if (rd.err || (j = json_loadb((const char *)p, n, 0, NULL)) == NULL)
		return 0;
	if ((op = json_string_value(json_object_get(j, "op"))) != NULL)
		for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
			yes |= strcmp(op, changes[i]) == 0;
	json_decref(j);
	return yes;
}

int
mom_client_submit(struct mom_client *c, const struct mom_buf *req, void *tag, int64_t timeout_ms)
{
	struct slot *s;
	nng_msg     *m;
	int64_t      deadline = timeout_ms < 0 ? -1 : mom_mono_ms() + timeout_ms;
	int          rv;

	if (req->err)
		return req->err;
	if (c->token != NULL) {
		struct mom_buf t;

		mom_buf_init(&t);
		mom_frame_with_token(&t, req->data, req->len, c->token, strlen(c->token));
		rv = t.err ? MOM_ENOMEM : nng_msg_alloc(&m, t.len) != 0 ? MOM_ENOMEM : 0;
		if (rv == 0)
			memcpy(nng_msg_body(m), t.data, t.len);
		mom_buf_fini(&t);
		if (rv != 0)
			return rv;
	} else {
		if (nng_msg_alloc(&m, req->len) != 0)
			return MOM_ENOMEM;
		memcpy(nng_msg_body(m), req->data, req->len);
	}
	pthread_mutex_lock(&c->mu);
	while ((s = c->free) == NULL) {
		/* Slots come back through next(): the caller must drain. */
		if ((rv = wait_step(c, deadline)) != 0) {
			pthread_mutex_unlock(&c->mu);
			nng_msg_free(m);
			return rv;
		}
	}
	c->free = s->next;
	c->inflight++;
	s->state = SLOT_SEND;
	s->tag = tag;
	s->rep = NULL;
	s->sent_at = mom_mono_ms();
	c->cur = s->node = mom_node_pick(c->st, c->nnodes, c->cur, s->sent_at);
	pthread_mutex_unlock(&c->mu);
	/* One node: nng reconnects and resends there; several: a copy to send elsewhere. */
	s->attempt_ms = 0;
	s->answer_wait = 0;
	if (c->nnodes > 1 && nng_msg_dup(&s->req, m) == 0) {
		s->attempt_ms = attempt_ms(c, req);
		s->answer_wait = answer_wait(req);
	}
	slot_send(s, m);
	return 0;
}

/*
 * A reply came from node (under c->mu): is its broker about to be
 * replaced, or unable to serve?  Then the request goes elsewhere when it
 * is sent again (mom_client_again).
 */
static void
note_reply(struct mom_client *c, nng_msg *rep, int node)
{
	const uint8_t *h = nng_msg_body(rep);
	int64_t        now = mom_mono_ms();

	if (nng_msg_len(rep) >= MOM_WIRE_HDRLEN && mom_client_replaced(h[3])) {
		if (c->replaced_since == 0)
			c->replaced_since = now;
		mom_node_note(&c->st[node], MOM_NODE_REFUSED, now);
		c->cur = mom_node_after(c->cur, node, c->nnodes, MOM_NODE_REFUSED);
	} else {
		c->replaced_since = 0;
		mom_node_note(&c->st[node], MOM_NODE_ANSWERED, now);
	}
}

int
mom_client_replaced(int st)
{
	return mom_node_retry_status(st);
}

int
mom_client_again(struct mom_client *c, int st)
{
	int64_t now, gone, pause;
	int     rv;

	if (!mom_client_replaced(st))
		return st;
	pthread_mutex_lock(&c->mu);
	now = mom_mono_ms();
	if (now - (gone = gone_since(c, now)) >= c->reconnect_ms) {
		pthread_mutex_unlock(&c->mu);
		return MOM_EUNAVAIL;
	}
	/*
	 * Requests refused together (a window of batches) go again together,
	 * after a pause that grows with the time the broker has been away.
	 */
	if (now >= c->again_at) {
		pause = mom_node_again_pause(st, now - gone);
		c->again_at = now + pause;
	}
	while ((rv = wait_step(c, c->again_at)) == 0)
		;
	pthread_mutex_unlock(&c->mu);
	return rv == MOM_ETIMEDOUT ? 0 : rv;
}

/*
 * A wait of the caller's ended with rv (under c->mu).  Its deadline (-W)
 * passed while the connected brokers only answered "not leader",
 * "unavailable" or "shutting down": the broker is unavailable (69), as a
 * cluster without a leader is, rather than slow (75).
 */
static int
wait_end(const struct mom_client *c, int rv)
{
	if (rv == MOM_ETIMEDOUT && c->replaced_since > 0 && c->npipes > 0)
		return MOM_EUNAVAIL;
	return rv;
}

int
mom_client_next(struct mom_client *c, nng_msg **rep, void **tag, int64_t timeout_ms)
{
	struct slot *s;
	int64_t      deadline = timeout_ms < 0 ? -1 : mom_mono_ms() + timeout_ms;
	int          rv;

	*rep = NULL;
	pthread_mutex_lock(&c->mu);
	while ((s = c->done_head) == NULL) {
		if (c->inflight == 0) {
			pthread_mutex_unlock(&c->mu);
			return MOM_EINVAL;
		}
		if ((rv = wait_step(c, deadline)) != 0) {
			rv = wait_end(c, rv);
			pthread_mutex_unlock(&c->mu);
			return rv;
		}
	}
	if ((c->done_head = s->next) == NULL)
		c->done_tail = NULL;
	*tag = s->tag;
	*rep = s->rep;
	rv = s->rv;
	if (rv == 0 && s->rep != NULL)
		note_reply(c, s->rep, s->node);
	s->rep = NULL;
	if (s->req != NULL) {
		nng_msg_free(s->req);
		s->req = NULL;
	}
	s->state = SLOT_FREE;
	s->next = c->free;
	c->free = s;
	c->inflight--;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (rv == NNG_ECLOSED)
		return MOM_ECLOSED;
	return rv == 0 ? 0 : MOM_EUNAVAIL;
}

int
mom_client_status(nng_msg *rep, uint8_t op, struct mom_rd *body, char *err, size_t errlen)
{
	return mom_wire_status(nng_msg_body(rep), nng_msg_len(rep), op, body, err, errlen);
}

int
mom_client_call(struct mom_client *c, const struct mom_buf *req, nng_msg **rep,
    struct mom_rd *body, int64_t timeout_ms, char *err, size_t errlen)
{
	static uintptr_t serial;
	int64_t start = mom_mono_ms(), left = timeout_ms, backoff = 10;
	void   *mine = (void *)(0x1000 + ++serial); /* tags are never dereferenced */
	void   *tag;
	int     rv;

	*rep = NULL;
	if (errlen > 0)
		err[0] = '\0';
	for (;;) {
		if ((rv = mom_client_submit(c, req, mine, left)) != 0)
			break;
		/* Completions of earlier, abandoned requests are dropped. */
		do {
			if (*rep != NULL) {
				nng_msg_free(*rep);
				*rep = NULL;
			}
			if (timeout_ms >= 0 && (left = timeout_ms - (mom_mono_ms() - start)) < 0)
				left = 0;
			rv = mom_client_next(c, rep, &tag, left);
		} while (rv == 0 && tag != mine);
		if (rv != 0)
			break;
		rv = mom_client_status(*rep, req->data[2], body, err, errlen);
		if (rv != MOM_EBUSY && !mom_client_replaced(rv))
			break;
		nng_msg_free(*rep);
		*rep = NULL;
		if (rv != MOM_EBUSY) {
			/* A restart or a failover: send it again to the next broker. */
			if ((rv = mom_client_again(c, rv)) != 0)
				break;
		} else {
			nanosleep(&(struct timespec){ backoff / 1000, (backoff % 1000) * 1000000 },
			    NULL);
			if (backoff < 1000)
				backoff *= 2;
		}
		if (timeout_ms >= 0 && (left = timeout_ms - (mom_mono_ms() - start)) <= 0) {
			pthread_mutex_lock(&c->mu);
			rv = wait_end(c, MOM_ETIMEDOUT);
			pthread_mutex_unlock(&c->mu);
			break;
		}
	}
	if (rv != 0 && *rep != NULL) {
		nng_msg_free(*rep);
		*rep = NULL;
	}
	if (rv == MOM_EUNAVAIL && err[0] != '\0' && timeout_ms >= 0 &&
	    mom_mono_ms() - start >= timeout_ms)
		/* err holds the last refusal ("not leader", "unavailable"): keep it. */
		;
	else if (rv == MOM_ETIMEDOUT || rv == MOM_EUNAVAIL)
		mom_errf(err, errlen, "%s", rv == MOM_ETIMEDOUT ?
		    "timed out waiting for the broker" : "lost the connection to the broker");
	return rv;
}

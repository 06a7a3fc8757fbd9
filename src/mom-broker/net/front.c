/*
 * front.c: the nng data plane (see front.h).
 *
 * Each context cycles RECV -> CORE -> SEND -> RECV.  A frame that is not
 * ours (bad magic, version or op) costs its sender the connection: the
 * pipe is closed and the event logged, and the broker keeps serving.
 * Frames over the size limit never get here: nng drops the pipe itself.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "net/auth.h"
#include "core/core.h"
#include "net/front.h"
#include "log.h"
#include "mom.h"
#include "tls.h"
#include "wire.h"

enum { FC_RECV, FC_CORE, FC_SEND };

/* One request context of the pool: RECV -> CORE -> SEND -> RECV. */
struct fctx {
	struct front    *fr;
	nng_ctx          ctx;
	nng_aio         *aio;
	int              state;
	nng_msg         *msg;    /* the request, while the core has it */
	struct bclaims  *claims; /* its token's claims (auth.h); NULL: open broker */
	struct core_req  req;
};

#define CHUNK      256   /* contexts are added this many at a time */
#define MAX_CHUNKS 256   /* at most 65536 requests in the broker at once */
#define LOW_WATER  32    /* fewer idle contexts than this: add a chunk */

struct front {
	nng_socket      sock;
	size_t          max_frame;
	struct core    *core;
	struct auth    *auth;
	pthread_mutex_t grow_mu;
	struct fctx    *chunks[MAX_CHUNKS];
	atomic_int      nchunks;
	atomic_int      idle;     /* contexts waiting to receive */
	atomic_bool     started;  /* the first pool is in place: log growth */
	atomic_int    conns;
	atomic_bool   closing;
};

/* This plane's connection ids (struct core_req's conn): its pipes'. */
#define FRONT_CONN(p) ((uint64_t)1 << 62 | (uint64_t)nng_pipe_id(p))

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct front *fr = arg;

	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&fr->conns, 1);
	else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_fetch_sub(&fr->conns, 1);
		/* A consumer that died in a long poll must not be handed messages. */
		if (!atomic_load(&fr->closing))
			core_conn_closed(fr->core, FRONT_CONN(p));
	}
}

int
front_connections(struct front *fr)
{
	return atomic_load(&fr->conns);
}

static void
peer_name(nng_pipe p, char *buf, size_t len)
{
	nng_sockaddr sa;

	snprintf(buf, len, "unknown peer");
	if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
		return;
	if (sa.s_family == NNG_AF_INET) {
		const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;

		snprintf(buf, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
		    (unsigned)((sa.s_in.sa_port & 0xff) << 8 | sa.s_in.sa_port >> 8));
	} else if (sa.s_family == NNG_AF_IPC)
		snprintf(buf, len, "ipc client");
	else if (sa.s_family == NNG_AF_INET6)
		snprintf(buf, len, "[ipv6 client]");
}

static void
fctx_recv(struct fctx *fc)
{
	fc->state = FC_RECV;
	fc->msg = NULL;
	atomic_fetch_add(&fc->fr->idle, 1);
	nng_ctx_recv(fc->ctx, fc->aio);
}

static void fctx_cb(void *);
static void fctx_reply(struct core_req *, const uint8_t *, size_t);

/*
 * Adds a chunk of contexts.  Long polls hold their context while they
 * wait, so a broker with many idle consumers would otherwise stop taking
 * requests (publishes included) once every context is parked.
 */
static int
grow(struct front *fr)
{
	struct fctx *chunk;
	int          i, n;

	pthread_mutex_lock(&fr->grow_mu);
	n = atomic_load(&fr->nchunks);
	if (atomic_load(&fr->closing) || n == MAX_CHUNKS || (chunk = calloc(CHUNK, sizeof(*chunk))) == NULL) {
		pthread_mutex_unlock(&fr->grow_mu);
		return -1;
	}
	for (i = 0; i < CHUNK; i++) {
		chunk[i].fr = fr;
		if (nng_ctx_open(&chunk[i].ctx, fr->sock) != 0 ||
		    nng_aio_alloc(&chunk[i].aio, fctx_cb, &chunk[i]) != 0) {
			for (; i >= 0; i--) {
				if (chunk[i].aio)
					nng_aio_free(chunk[i].aio);
				nng_ctx_close(chunk[i].ctx);
			}
			free(chunk);
			pthread_mutex_unlock(&fr->grow_mu);
			return -1;
		}
	}
	fr->chunks[n] = chunk;
	atomic_store(&fr->nchunks, n + 1);
	pthread_mutex_unlock(&fr->grow_mu);
	for (i = 0; i < CHUNK; i++)
		fctx_recv(&chunk[i]);
	if (atomic_load(&fr->started))
		log_info("%d request contexts", (n + 1) * CHUNK);
	return 0;
}

static void
fctx_cb(void *arg)
{
	struct fctx     *fc = arg;
	struct front    *fr = fc->fr;
	int              rv = nng_aio_result(fc->aio);
	struct mom_rd    r;
	struct mom_frame f;
	struct mom_slice tok;
	nng_msg         *m;

	if (fc->state == FC_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(fc->aio));
			nng_aio_set_msg(fc->aio, NULL);
		}
		if (!atomic_load(&fr->closing))
			fctx_recv(fc);
		return;
	}
	atomic_fetch_sub(&fr->idle, 1);
	if (rv != 0) {
		if (rv != NNG_ECLOSED && !atomic_load(&fr->closing))
			fctx_recv(fc);
		return;
	}
	if (atomic_load(&fr->idle) < LOW_WATER && !atomic_load(&fr->closing))
		grow(fr);
	m = nng_aio_get_msg(fc->aio);
	nng_aio_set_msg(fc->aio, NULL);
	mom_rd_init(&r, nng_msg_body(m), nng_msg_len(m));
	if (nng_msg_len(m) > fr->max_frame || mom_frame_decode(&r, &f) != 0 || f.reply ||
	    f.op < MOM_OP_PING || f.op > MOM_OP_ADMIN || mom_frame_token(&r, &f, &tok) != 0) {
		char who[64];

		peer_name(nng_msg_get_pipe(m), who, sizeof(who));
		log_warnx("dropping client %s: %s frame (%zu bytes)", who,
		    nng_msg_len(m) > fr->max_frame ? "oversized" : "malformed", nng_msg_len(m));
		nng_pipe_close(nng_msg_get_pipe(m));
		nng_msg_free(m);
		fctx_recv(fc);
		return;
	}
	fc->msg = m;
	memset(&fc->req, 0, sizeof(fc->req));
	fc->req.op = f.op;
	fc->req.body = (const uint8_t *)nng_msg_body(m) + r.off;
	fc->req.len = nng_msg_len(m) - r.off;
	fc->req.reply = fctx_reply;
	fc->req.arg = fc;
	fc->req.conn = FRONT_CONN(nng_msg_get_pipe(m));
	fc->state = FC_CORE;
	if (auth_enabled(fr->auth)) {
		char why[160];

		/* PING stays open: "is the broker up" needs no credentials. */
		if (tok.n == 0 && f.op != MOM_OP_PING) {
			core_reply_error(&fc->req, MOM_EAUTH,
			    "token required (--token-file, MOM_TOKEN)");
			return;
		}
		if (tok.n > 0 && auth_check(fr->auth, (const char *)tok.p, tok.n, &fc->claims, why,
		    sizeof(why)) != 0) {
			core_reply_error(&fc->req, MOM_EAUTH, why);
			return;
		}
		fc->req.claims = fc->claims != NULL ? &fc->claims->c : NULL;
	}
	core_submit(fr->core, &fc->req);
}

/*
 * The core's answer (struct core_req's reply): sends the frame on the
 * context and drops the request and its claims.
 */
static void
fctx_reply(struct core_req *req, const uint8_t *frame, size_t len)
{
	struct fctx *fc = req->arg;
	nng_msg     *m;

	if (fc->msg != NULL) {
		nng_msg_free(fc->msg);
		fc->msg = NULL;
	}
	if (fc->claims != NULL) {
		bclaims_release(fc->claims);
		fc->claims = NULL;
	}
	if (frame == NULL || nng_msg_alloc(&m, len) != 0) {
		/* Nothing to say: let the client's resend find us again. */
		fctx_recv(fc);
		return;
	}
	memcpy(nng_msg_body(m), frame, len);
	if (atomic_load(&fc->fr->closing)) {
		nng_msg_free(m);
		return;
	}
	fc->state = FC_SEND;
	nng_aio_set_msg(fc->aio, m);
	nng_ctx_send(fc->ctx, fc->aio);
}

int
front_start(struct front **frp, const struct front_config *cfg, struct core *core)
{
	struct front *fr;
	int           i, rv, n;

	if ((fr = calloc(1, sizeof(*fr))) == NULL)
		return -1;
	fr->core = core;
	fr->auth = cfg->auth;
	pthread_mutex_init(&fr->grow_mu, NULL);
	if ((rv = nng_rep0_open(&fr->sock)) != 0) {
		log_fatalx("cannot open socket: %s", nng_strerror(rv));
		free(fr);
		return -1;
	}
	/*
	 * A batch of small messages may exceed one message's limit, hence
	 * the slack.  nng cuts (silently) what is over twice our limit;
	 * between the two, we see the frame, log it and drop the client.
	 */
	fr->max_frame = cfg->max_payload + (2u << 20);
	nng_socket_set_size(fr->sock, NNG_OPT_RECVMAXSZ, 2 * fr->max_frame);
	nng_socket_set_int(fr->sock, NNG_OPT_SENDBUF, 256);
	nng_socket_set_int(fr->sock, NNG_OPT_RECVBUF, 256);
	nng_pipe_notify(fr->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, fr);
	nng_pipe_notify(fr->sock, NNG_PIPE_EV_REM_POST, pipe_cb, fr);
	n = (cfg->contexts > 0 ? cfg->contexts : 1024) / CHUNK;
	for (i = 0; i < (n > 0 ? n : 1); i++)
		if (grow(fr) != 0)
			goto fail;
	for (i = 0; i < cfg->nlisten; i++) {
		nng_listener l;

		/* A TLS listener is created, given its certificate, then started. */
		if ((rv = nng_listener_create(&l, fr->sock, cfg->listen[i])) == 0 &&
		    mom_tls_url(cfg->listen[i]))
			rv = cfg->tls != NULL ? nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg->tls) :
			    NNG_EINVAL;
		if (rv == 0)
			rv = nng_listener_start(l, 0);
		if (rv != 0) {
			/* mom-broker stops: every listener it was told to open is needed. */
			log_fatalx("cannot listen on %s: %s", cfg->listen[i], nng_strerror(rv));
			goto fail;
		}
		log_info("listening on %s", cfg->listen[i]);
	}
	atomic_store(&fr->started, true);
	*frp = fr;
	return 0;
fail:
	front_stop(fr);
	return -1;
}

void
front_stop(struct front *fr)
{
	int i, j;

	if (fr == NULL)
		return;
	atomic_store(&fr->closing, true);
	/* No new chunk after this (closing is set); then stop every aio
	 * before the socket goes: see mom_client_close for why. */
	pthread_mutex_lock(&fr->grow_mu);
	pthread_mutex_unlock(&fr->grow_mu);
	for (i = 0; i < atomic_load(&fr->nchunks); i++)
		for (j = 0; j < CHUNK; j++)
			nng_aio_stop(fr->chunks[i][j].aio);
	nng_close(fr->sock);
	/*
	 * A grow() under way finishes before this lock is ours, and none
	 * starts after: closing is set.  Freeing an aio waits for its
	 * callback, so it happens outside the lock.
	 */
	pthread_mutex_lock(&fr->grow_mu);
	pthread_mutex_unlock(&fr->grow_mu);
	for (i = 0; i < atomic_load(&fr->nchunks); i++) {
		struct fctx *chunk = fr->chunks[i];

		for (j = 0; j < CHUNK; j++) {
			/* A reply handed to a stopped aio was never sent: ours. */
			if (nng_aio_get_msg(chunk[j].aio) != NULL)
				nng_msg_free(nng_aio_get_msg(chunk[j].aio));
			nng_aio_set_msg(chunk[j].aio, NULL);
			nng_aio_free(chunk[j].aio);
			if (chunk[j].msg)
				nng_msg_free(chunk[j].msg);
			bclaims_release(chunk[j].claims);
		}
		free(chunk);
	}
	pthread_mutex_destroy(&fr->grow_mu);
	free(fr);
}

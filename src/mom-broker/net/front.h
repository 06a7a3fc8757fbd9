/*
 * front.h: the nng data plane.  nng's threads receive requests on a pool
 * of rep contexts, check the frame header and hand each request to the
 * core; the core answers with front_reply().  Nothing here touches broker
 * state.
 */
#ifndef BROKER_FRONT_H
#define BROKER_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "buf.h"

struct core;
struct mq;

/* A consumer parked in a long poll (owned by the core while parked). */
struct waiter {
	struct mq     *mq;
	uint64_t       consumer;
	size_t         max, max_bytes;
	bool           noack;
	bool           parked;
	uint8_t        kind;
	const char    *qname;  /* queue name for queue deliveries */
	int64_t        deadline;
	struct fctx   *next, *prev;   /* the mq's waiters */
	struct fctx   *gnext, *gprev; /* every waiter, for timeouts */
};

struct bclaims;

/*
 * One request on its way through the core.  The nng plane owns a pool of
 * these; other planes (HTTP) allocate their own and set done, so that the
 * core answers them through the same front_reply().
 */
struct fctx {
	struct front  *fr;        /* NULL for other planes */
	nng_ctx        ctx;
	nng_aio       *aio;
	int            state;
	nng_msg       *req;
	uint8_t        op;
	size_t         body_off;  /* the op's body starts here in req */
	struct bclaims *claims;   /* who asks (auth.h); NULL: open broker */
	/* Other planes: the reply frame goes here (NULL, 0: none could be made). */
	void         (*done)(struct fctx *, const uint8_t *frame, size_t len);
	void          *done_arg;
	struct fctx   *qnext; /* core's input queue */
	bool           resumed; /* the core handles it again (after a command it needed) */
	struct waiter  w;
	/* A publish that arrived before an earlier batch of its producer. */
	uint64_t       pub_seq, pub_count;
	int64_t        pub_until;
	struct fctx   *pub_next;
};

struct front_config {
	const char **listen;  /* URLs */
	int          nlisten;
	size_t       max_payload;
	int          contexts; /* per socket; default 1024 */
	struct auth *auth;     /* token checks; NULL or disabled: open broker */
	nng_tls_config *tls;   /* tls+tcp:// listeners' certificate (borrowed; they take a hold) */
};

struct front;

/* Opens and listens; the core must exist.  0 or -1 (logged). */
int  front_start(struct front **, const struct front_config *, struct core *);
/* Closes the sockets and waits for nng's callbacks to finish. */
void front_stop(struct front *);
/*
 * Sends a reply (a whole frame) on fc and recycles it (or hands it to
 * fc->done); drops fc's request and claims.  Any thread.
 */
void front_reply(struct fctx *, const struct mom_buf *);
/* Replies with an error frame. */
void front_error(struct fctx *, int err, const char *msg);
/* Connected clients now. */
int  front_connections(struct front *);

#endif

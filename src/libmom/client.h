/*
 * client.h: a client's connection to mom brokers over nng req/rep.
 *
 * The server list is dialled at open: a server that refuses is retried in
 * the background, and open fails with MOM_EUNAVAIL only when none of them
 * accepted.  Requests go out on a pool of nng contexts (the window), so
 * many can be in flight at once.  With one server, nng resends a request
 * whose connection broke as soon as a connection is back.  With several,
 * a request goes to one server while it answers (failover.h chooses); one
 * not answered within request_ms (plus a long poll's wait), or whose
 * connection broke, is sent again to the next server, and the silent one
 * is passed over for a back-off.  Either way every request must be
 * idempotent (publishes carry producer sequence numbers, acks are
 * receipts).  While no broker is connected for longer than the reconnect
 * window, pending requests fail with MOM_EUNAVAIL.  A broker that answers
 * "shutting down" (a restart), "not the leader" or "unavailable" (a
 * failover) cannot serve now: such a reply is a reason to send the
 * request again (mom_client_again), to the next server of the list,
 * within the same window.
 */
#ifndef MOM_CLIENT_H
#define MOM_CLIENT_H

#include <stdint.h>

#include <nng/nng.h>

#include "buf.h"
#include "tls.h"
#include "wire.h"

struct mom_client;

/* The default request timeout: a server silent this long is passed over. */
#define MOM_CLIENT_REQUEST_MS 2000

struct mom_client_opts {
	const char *servers;      /* "tcp://a:7420,tcp://b:7420" */
	int         window;       /* requests in flight; default 8 */
	int64_t     reconnect_ms; /* give up after this long disconnected; default 60000 */
	int64_t     connect_ms;   /* first connection: MOM_ETIMEDOUT after this (-W); 0: 10 s, then MOM_EUNAVAIL */
	int64_t     retry_ms;     /* keep dialling servers that refuse or do not resolve this long; 0: fail at once */
	int64_t     request_ms;   /* several servers: one attempt's bound (plus a long poll's wait); 0: default */
	int         verbose;
	const char *token;        /* JWT sent with every request; NULL: none */
	struct mom_tls_client tls; /* tls+tcp:// servers: what to verify and present */
};

/*
 * Fills err with one line on failure: MOM_EINVAL (bad URL, unusable TLS
 * files), MOM_EUNAVAIL (refused, unreachable, a host name that does not
 * resolve: at once, or after retry_ms), MOM_EAUTH (a tls+tcp:// server failed the TLS
 * handshake: its certificate did not verify, or it refused ours).
 */
int  mom_client_open(struct mom_client **, const struct mom_client_opts *, char *err, size_t errlen);
void mom_client_close(struct mom_client *);

/*
 * One request, one reply.  req is a whole frame (borrowed).  On 0, *rep
 * is the reply (owned by the caller, nng_msg_free) whose status was 0;
 * body is positioned after its frame header.  On an error reply the
 * broker's message is copied into err.  timeout_ms < 0: no limit.
 * MOM_EBUSY replies are retried here with back-off.
 */
int mom_client_call(struct mom_client *, const struct mom_buf *req, nng_msg **rep,
    struct mom_rd *body, int64_t timeout_ms, char *err, size_t errlen);

/*
 * Pipelining.  submit waits (up to timeout_ms) for a free slot, then sends
 * a copy of req tagged with tag.  next waits for any completed request and
 * returns its reply (owned) and tag; it returns MOM_ETIMEDOUT when
 * timeout_ms passes first and MOM_EUNAVAIL when the connection is gone
 * for longer than the reconnect window.  A reply with an error status is
 * returned as 0 with the reply: check it with mom_client_status.
 */
int mom_client_submit(struct mom_client *, const struct mom_buf *req, void *tag, int64_t timeout_ms);
int mom_client_next(struct mom_client *, nng_msg **rep, void **tag, int64_t timeout_ms);
int mom_client_inflight(const struct mom_client *);
/*
 * While *flag is non-zero, waits in submit/next/call return MOM_ECLOSED
 * at once (a signal handler sets it).
 */
void mom_client_set_interrupt(struct mom_client *, volatile int *flag);
int mom_client_window(const struct mom_client *);

/*
 * After a reply with status st: for "shutting down", "not the leader" and
 * "unavailable" (mom_client_replaced), waits a back-off (50 ms growing to 1 s, the same
 * for requests refused together) and returns 0, for the caller to send the request again; MOM_EUNAVAIL once
 * such replies and no connection at all have lasted the reconnect window;
 * MOM_ECLOSED when interrupted.  Any other st is returned as it is.
 */
int mom_client_again(struct mom_client *, int st);
/* Is st a reply status of a broker that cannot serve now (mom_node_retry_status)? */
int mom_client_replaced(int st);

/*
 * Decodes a reply frame: returns its status (0 or enum mom_err, with the
 * broker's message in err), MOM_EPROTO when it is not a reply to op.
 */
int mom_client_status(nng_msg *rep, uint8_t op, struct mom_rd *body, char *err, size_t errlen);

#endif

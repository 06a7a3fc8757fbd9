/*
 * httpapi.h: the broker's HTTP API as a client sees it.  Which request
 * carries an admin operation, and what an answer means as the reply the
 * nng plane gives for the same operation, so a client renders both the
 * same way.  No I/O here (the transport is libcurl, in the programs that
 * link it), so the unit tests and the fuzz build take it as it is.
 */
#ifndef MOM_HTTPAPI_H
#define MOM_HTTPAPI_H

#include <stddef.h>

#include <jansson.h>

/* 1 when a server list (-s, $MOM_URL) starts with http:// or https://. */
int mom_httpapi_is_url(const char *servers);

/* How an answer becomes the nng plane's reply JSON. */
enum mom_httpapi_kind {
	MOM_HTTPAPI_JSON,  /* the JSON body as it is */
	MOM_HTTPAPI_LIST,  /* {"queues":[...]}: the array in member .unwrap */
	MOM_HTTPAPI_TEXT,  /* a text body (Prometheus): {"text":"..."} */
	MOM_HTTPAPI_STATS, /* Prometheus text: its unlabelled mom_ samples as an object */
	MOM_HTTPAPI_PING,  /* /healthz: {"ok":true,...} */
};

struct mom_httpapi_req {
	const char *method; /* "GET", "PUT", "POST", "DELETE" */
	char       *path;   /* owned: percent-encoded, from the leading '/' */
	char       *body;   /* owned JSON text, or NULL for no body */
	int         kind;   /* enum mom_httpapi_kind */
	const char *unwrap; /* MOM_HTTPAPI_LIST: the member holding the array */
};

/*
 * The request for one admin operation, given as the nng plane's request
 * object ({"op":"queue.create","name":"jobs","ack_wait_ms":2000}, and
 * {"op":"ping"}, {"op":"cluster.status"}); op is borrowed.  Returns 0, or
 * MOM_EINVAL with err set when the operation has no HTTP route.  Free
 * with mom_httpapi_req_fini (also after a failure).
 */
int  mom_httpapi_admin(const json_t *op, struct mom_httpapi_req *, char *err, size_t errlen);
void mom_httpapi_req_fini(struct mom_httpapi_req *);

/*
 * An answer (HTTP status, body of len bytes; borrowed) to req as the reply
 * value the nng plane gives (returned owned in *rep), or an error code
 * (see mom_httpapi_error) with the broker's message in err.
 */
int mom_httpapi_reply(const struct mom_httpapi_req *, long status, const char *body, size_t len,
    json_t **rep, char *err, size_t errlen);

/*
 * The error code of a non-2xx answer: the body's "code" when it names a
 * mom error ("not_found", "exists", "full", ...), else one from the
 * status (400 invalid, 401 unauthorized, 403 forbidden, 404 not_found,
 * 409 exists, 413 too_large, 429 busy, 503 unavailable...).  err gets the
 * body's "error" text, or "HTTP STATUS" when the body has none.
 */
int mom_httpapi_error(long status, const char *body, size_t len, char *err, size_t errlen);

/* The unlabelled samples "mom_NAME INTEGER" of Prometheus text, as {"NAME":N,...} in order. */
json_t *mom_httpapi_prom_json(const char *text, size_t len);

/*
 * Percent-encodes one path segment (everything but A-Z a-z 0-9 - . _ ~),
 * so a pattern "a.>" travels as "a.%3E".  Returns the length it needs
 * (as snprintf); dst is NUL-terminated when dstlen > 0.
 */
size_t mom_httpapi_escape(char *dst, size_t dstlen, const char *seg);

#endif

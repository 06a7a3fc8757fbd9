/*
 * rest.h: the broker's HTTP API without the sockets.
 *
 * Everything between the bytes of a request and the bytes of its answer
 * that needs no I/O lives here, so that it can be unit-tested and fuzzed
 * on its own: parsing a request head, routing (with percent-decoded path
 * segments and query parameters), turning a request into the wire frame
 * the nng plane would send for the same thing (PUBLISH, FETCH, ADMIN), and
 * turning the core's reply frame into an HTTP status and a JSON body.
 * http.c does the I/O and hands frames to the core; permissions, owners
 * and limits are the core's, as for the nng plane.
 *
 * Nothing here keeps state between calls and nothing is thread-local:
 * any thread may call anything.
 */
#ifndef BROKER_REST_H
#define BROKER_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "buf.h"
#include "wire.h"

#define REST_HEAD_MAX     (64 * 1024) /* request line and header fields */
#define REST_HDR_MAX      100         /* header fields in one request */
#define REST_WAIT_MAX_MS  20000       /* longest long poll (the core's bound) */
#define REST_FETCH_MAX    10000       /* messages in one receive (the core's bound) */
#define REST_SMALL_BODY   (1u << 20)  /* bodies of requests that carry no payload */

enum rest_method {
	REST_OTHER = 0,
	REST_GET = 1,
	REST_HEAD = 2,
	REST_PUT = 4,
	REST_POST = 8,
	REST_DELETE = 16,
};

struct rest_hdr {
	const char *name, *value;
	size_t      nlen, vlen;
};

/* A parsed request head; its strings point into the parsed buffer. */
struct rest_head {
	int             method;   /* enum rest_method */
	const char     *mname;    /* the method as sent */
	size_t          mlen;
	const char     *target;   /* request-target as sent (not decoded) */
	size_t          tlen;
	int             minor;    /* HTTP/1.minor: 0 or 1 */
	bool            has_length;
	uint64_t        length;   /* Content-Length */
	bool            te;       /* a Transfer-Encoding (chunked or other) */
	int             expect;   /* 0 none, 1 "100-continue", 2 anything else */
	bool            keep_alive;
	size_t          len;      /* bytes of the head, the empty line included */
	size_t          nhdr;
	struct rest_hdr hdr[REST_HDR_MAX]; /* last: only nhdr of them are set */
};

/*
 * Parses the head of a request at the start of buf (borrowed: h points
 * into it).  Returns the head's length (> 0), 0 when more bytes are
 * needed, or a negative HTTP status: -400 malformed, -431 head over
 * REST_HEAD_MAX or more than REST_HDR_MAX fields, -505 not HTTP/1.x.
 */
int rest_parse_head(const char *buf, size_t len, struct rest_head *h);
/* The first field of that name (case-insensitive), or NULL. */
const struct rest_hdr *rest_header(const struct rest_head *, const char *name);

enum rest_route {
	RT_NONE = 0,
	RT_HEALTHZ,    /* /healthz */
	RT_METRICS,    /* /metrics */
	RT_CLUSTER,    /* /v1/cluster */
	RT_CNODES,     /* /v1/cluster/nodes */
	RT_CNODE,      /* /v1/cluster/nodes/ID */
	RT_CTRANSFER,  /* /v1/cluster/transfer */
	RT_CDIGEST,    /* /v1/cluster/digest */
	RT_QUEUES,     /* /v1/queues */
	RT_QUEUE,      /* /v1/queues/Q */
	RT_QPURGE,     /* /v1/queues/Q/purge */
	RT_QMOVE,      /* /v1/queues/Q/move */
	RT_QMSGS,      /* /v1/queues/Q/messages */
	RT_QACK,       /* /v1/queues/Q/ack */
	RT_QNACK,      /* /v1/queues/Q/nack */
	RT_QUPDATE,    /* /v1/queues/Q/update */
	RT_TOPICS,     /* /v1/topics */
	RT_TOPIC,      /* /v1/topics/T */
	RT_TMSGS,      /* /v1/topics/T/messages */
	RT_ALLSUBS,    /* /v1/subscriptions */
	RT_SUBS,       /* /v1/topics/P/subscriptions */
	RT_SUB,        /* /v1/topics/P/subscriptions/S */
	RT_SMSGS,      /* /v1/topics/P/subscriptions/S/messages */
	RT_SACK,       /* /v1/topics/P/subscriptions/S/ack */
	RT_SNACK,      /* /v1/topics/P/subscriptions/S/nack */
};

/* Where a request goes, with its path segments decoded and checked. */
struct rest_target {
	int      route;   /* enum rest_route */
	int      method;  /* enum rest_method; HEAD is answered as GET */
	char     name[MOM_NAME_MAX + 1]; /* queue, topic or topic pattern */
	char     sub[MOM_NAME_MAX + 1];  /* subscription */
	/* Receive parameters (?max=N&wait=D&from=F), defaults filled in. */
	uint64_t max;
	uint64_t wait_ms;
	uint8_t  from;    /* enum mom_from */
	uint64_t from_ms;
	bool     max_set; /* ?max= was given */
	bool     peek;    /* ?peek=1: look, leave them (an admin queue.peek) */
	uint64_t node;    /* RT_CNODE: the node id (a positive integer) */
};

/*
 * Routes a request by its head's method and target (borrowed).  Returns 0
 * with *t filled, or an HTTP status with a one-line reason in err: 404 no
 * such route, 405 method not allowed (*allow: the methods that are, a
 * mask of enum rest_method; err names the method as sent), 400 bad name,
 * bad percent-encoding or bad query parameter.  now_ms resolves from=TIME
 * given as a duration ago.
 */
int rest_route(const struct rest_head *h, int64_t now_ms, struct rest_target *t, int *allow,
    char *err, size_t errlen);
/* "GET, HEAD, PUT" for a mask. */
void rest_allow_text(int allow, char *buf, size_t len);

/* Does this route need a token when the broker checks them?  (/healthz does not.) */
bool rest_needs_auth(const struct rest_target *);
/*
 * The largest body this request may have (bytes).  Raw messages may be
 * max_payload; a JSON batch twice that plus 64 KiB (base64 and escapes);
 * anything else REST_SMALL_BODY.
 */
uint64_t rest_body_limit(const struct rest_target *, const struct rest_head *, size_t max_payload);
/*
 * The token of "Authorization: Bearer TOKEN": 0 with *tok and *len pointing
 * into the head, MOM_ENOENT without an Authorization field, MOM_EAUTH for
 * another scheme or an empty token.
 */
int rest_bearer(const struct rest_head *, const char **tok, size_t *len);

/* What a request becomes, and how its reply is read. */
enum rest_op {
	RO_LOCAL = 0,  /* answered without the core (/healthz) */
	RO_PUBLISH,    /* PUBLISH -> {"stored","duplicates"} */
	RO_FETCH,      /* FETCH -> {"messages":[...]} */
	RO_SETTLE,     /* FETCH carrying acks or nacks -> {"acked"|"nacked": N} */
	RO_ADMIN,      /* ADMIN -> its JSON as it is */
	RO_LIST,       /* ADMIN list -> {"<wrap>": [...]} */
	RO_PROBE,      /* create, step 1: does it exist?  (info or sub.list) */
	RO_CREATE,     /* create, step 2: 201 when the probe found nothing */
	RO_METRICS,    /* ADMIN stats.prom -> Prometheus text */
};

struct rest_call {
	int         op;       /* enum rest_op */
	uint8_t     wire_op;  /* MOM_OP_* of the frame in flight */
	const char *wrap;     /* RO_LIST: the member that holds the array */
	bool        created;  /* RO_CREATE: the probe found nothing */
	bool        nack;     /* RO_SETTLE */
	size_t      count;    /* RO_SETTLE: receipts sent */
	json_t     *next;     /* RO_PROBE: the create request (owned; rest_call_fini) */
	char        pattern[MOM_NAME_MAX + 1]; /* RO_PROBE of a subscription */
	char        sub[MOM_NAME_MAX + 1];
};

void rest_call_fini(struct rest_call *);

/*
 * Builds the wire request frame (header and body) for a routed request
 * in frame (reset first) and describes it in call.  head and body are
 * borrowed; consumer is a non-zero id for a receive or a settle.  Returns
 * 0, RO_LOCAL in call->op when the core is not needed, or a mom error
 * code (MOM_EINVAL, MOM_EBADDATA, MOM_ETOOBIG, MOM_ENOMEM) with a
 * one-line reason in err.
 */
int rest_build(const struct rest_target *, const struct rest_head *, const uint8_t *body,
    size_t blen, size_t max_payload, uint64_t consumer, struct rest_call *call,
    struct mom_buf *frame, char *err, size_t errlen);

/* An answer, before it is written out. */
struct rest_response {
	int            status;
	const char    *ctype;     /* Content-Type */
	char           extra[256]; /* more header lines, each ending in CRLF */
	struct mom_buf body;
	bool           again;     /* RO_PROBE: send the frame rest_reply built */
};

void rest_response_init(struct rest_response *);
void rest_response_fini(struct rest_response *);
/*
 * Reads the core's reply frame (borrowed; NULL when the core could make
 * none) to the request call describes, into r.  After an RO_PROBE, r->again
 * may be set: frame then holds the next request (call changed to
 * RO_CREATE) to hand to the core.
 */
void rest_reply(struct rest_call *, const uint8_t *reply, size_t len, struct rest_response *r,
    struct mom_buf *frame);

/*
 * The client of a receive went away before its answer could be written:
 * builds (in frame) a FETCH that gives every message of that answer back
 * as never seen, so it is redelivered now rather than after the ack wait
 * and without counting a delivery.  0, or -1 when there is nothing to
 * give back.
 */
int  rest_release(const struct rest_target *, const uint8_t *reply, size_t len, uint64_t consumer,
    struct mom_buf *frame);

/* The HTTP status for a mom error code. */
int  rest_status(int err);
/* r becomes the JSON error {"error": msg, "code": mom_err_name(err)} with its status. */
void rest_error(struct rest_response *, int err, const char *msg);
/* The same with an HTTP status of its own (404 route, 405, 411, 413, 417, 431...). */
void rest_http_error(struct rest_response *, int status, const char *code, const char *msg);
/*
 * The whole response (status line, fields, body) in out (appended).
 * Content-Length is always sent; without keep_alive "Connection: close",
 * with it to an HTTP/1.0 client "Connection: keep-alive"; head_only leaves
 * the body out (HEAD).
 */
void rest_render(struct mom_buf *out, const struct rest_response *, bool keep_alive, bool http10,
    bool head_only);
/* The reason phrase of a status ("Not Found"). */
const char *rest_reason(int status);

/* Percent-decodes n bytes into dst (dstlen with the NUL); -1 on bad escapes, %00 or overflow. */
int rest_pct_decode(const char *src, size_t n, bool plus_space, char *dst, size_t dstlen);
/* A receipt as JSON gives it: a decimal string (or a number); 0 or -1. */
int rest_receipt(json_t *, uint64_t *);

#endif

/*
 * wire.h: mom's data-plane protocol, version 1.
 *
 * Every nng message (request or reply) starts with a 4-byte frame header:
 *
 *	'M'  version(1)  op  status/flags
 *
 * A reply has op | 0x80 and a status (enum mom_err); a reply whose status is
 * not 0 carries one string, the error message, and nothing else.  The body
 * of each op is described where its encoder is; integers are varints and
 * strings are length-prefixed (buf.h).  Decoders return borrowed slices
 * into the frame, check every length and never read past the frame.
 *
 * The publish body is also the body of the command the broker logs, so that
 * what a client sent, what is stored and what is replayed are one format.
 */
#ifndef MOM_WIRE_H
#define MOM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define MOM_WIRE_MAGIC   0x4d /* 'M' */
#define MOM_WIRE_VERSION 1
#define MOM_WIRE_REPLY   0x80
#define MOM_WIRE_HDRLEN  4

/* Hard limits every decoder enforces, whatever the broker's settings. */
#define MOM_NAME_MAX      200
#define MOM_ID_MAX        256
#define MOM_HEADERS_MAX   65536          /* encoded header block */
#define MOM_PAYLOAD_LIMIT (64u << 20)    /* absolute max message size */
#define MOM_PAYLOAD_DEFAULT (1u << 20)   /* default max message size */
#define MOM_BATCH_MAX     100000         /* messages in one request */

enum mom_op {
	MOM_OP_PING = 1,
	MOM_OP_PUBLISH = 2,
	MOM_OP_FETCH = 3,
	MOM_OP_ADMIN = 4,
};

enum mom_kind {
	MOM_KIND_QUEUE = 1,
	MOM_KIND_TOPIC = 2,
};

/* Where a new subscription starts in a topic's retained log. */
enum mom_from {
	MOM_FROM_NEW = 0,   /* only messages published from now on */
	MOM_FROM_FIRST = 1, /* every retained message */
	MOM_FROM_LAST = 2,  /* the last retained message of each topic */
	MOM_FROM_TIME = 3,  /* retained messages published at or after a time */
};

/*
 * Request flags (the 4th header byte of a request).  MOM_RF_TOKEN: a bytes
 * field with the client's token (JWT text) follows the header, before the
 * op's body.  The client library adds it to every request; the broker
 * verifies it (cached) and strips it.
 */
#define MOM_RF_TOKEN 0x01


/* Per-message flags in a publish body. */
#define MOM_PF_TARGET  0x01 /* u8 kind + str name: overrides the batch target */
#define MOM_PF_ID      0x02 /* bytes: publisher id (de-duplication) */
#define MOM_PF_TTL     0x04 /* varint ms */
#define MOM_PF_DELAY   0x08 /* varint ms */
#define MOM_PF_HEADERS 0x10 /* bytes: header block */
#define MOM_PF_ALL     0x1f

/* Fetch flags. */
#define MOM_FF_NOACK 0x01 /* at-most-once: what is delivered is settled */
#define MOM_FF_CLOSE 0x02 /* consumer leaves: release its leases */

struct mom_slice {
	const uint8_t *p;
	size_t         n;
};

/* The frame header of a request or reply. */
struct mom_frame {
	uint8_t op;     /* without MOM_WIRE_REPLY */
	bool    reply;
	uint8_t status; /* replies: enum mom_err */
};

/* Checks magic and version; fills *f and leaves rd after the header. */
int  mom_frame_decode(struct mom_rd *, struct mom_frame *);
void mom_frame_encode(struct mom_buf *, uint8_t op, bool reply, uint8_t status);
/*
 * Decodes a reply frame: returns its status (0 or enum mom_err, with the
 * broker's message copied into err), MOM_EPROTO when it is not a reply to
 * op.  On 0, body is positioned after the header.
 */
int  mom_wire_status(const uint8_t *, size_t, uint8_t op, struct mom_rd *body, char *err,
    size_t errlen);
/* A whole error reply: header + message. */
void mom_wire_error(struct mom_buf *, uint8_t op, int err, const char *msg);

/*
 * Copies a request frame into out with a token field added (or without
 * one when tok is NULL).  out is reset first.
 */
void mom_frame_with_token(struct mom_buf *out, const uint8_t *frame, size_t len,
    const char *tok, size_t toklen);
/*
 * Broker side: after mom_frame_decode of a request, reads the token field
 * when the flags say there is one.  *tok is a slice of the frame (n == 0:
 * none).  0 or MOM_EPROTO.
 */
int  mom_frame_token(struct mom_rd *, const struct mom_frame *, struct mom_slice *tok);

/*
 * Header blocks: varint count, then count pairs of (key, value) strings.
 * Keys are 1-64 bytes of [A-Za-z0-9-_]; values any bytes but CR, LF, NUL.
 */
struct mom_hdr_iter {
	struct mom_rd rd;
	uint64_t      left;
};
int  mom_hdr_validate(const uint8_t *, size_t);
void mom_hdr_iter_init(struct mom_hdr_iter *, const uint8_t *, size_t);
/* Returns 1 and fills key/value for each pair, then 0. */
int  mom_hdr_next(struct mom_hdr_iter *, struct mom_slice *key, struct mom_slice *val);
/* Looks a key up (case-insensitive); returns 1 when found. */
int  mom_hdr_get(const uint8_t *, size_t, const char *key, struct mom_slice *val);
/* Builds a block from "Key: value" lines; MOM_EINVAL on a bad line. */
int  mom_hdr_build(struct mom_buf *, const char *const *lines, size_t n);
/* Checks a key for validity. */
int  mom_hdr_key_valid(const char *, size_t);

/*
 * PUBLISH request body:
 *	varint producer	  random id of this publisher process, 0 = none
 *	varint first_seq  producer sequence of the first message
 *	u8 kind, str name default target
 *	varint count
 *	count x message:  varint flags, [target] [id] [ttl] [delay] [headers],
 *			  bytes payload
 * Reply body: varint stored, varint duplicates.
 */
struct mom_pub_batch {
	uint64_t         producer;
	uint64_t         first_seq;
	uint8_t          kind;
	struct mom_slice name;
	uint64_t         count;
};

struct mom_pub_msg {
	uint8_t          kind;
	struct mom_slice name;
	struct mom_slice id;      /* n == 0: none */
	uint64_t         ttl_ms;  /* 0: none */
	uint64_t         delay_ms;
	struct mom_slice headers; /* n == 0: none */
	struct mom_slice payload;
};

void mom_pub_encode_begin(struct mom_buf *, const struct mom_pub_batch *);
void mom_pub_encode_msg(struct mom_buf *, const struct mom_pub_batch *, const struct mom_pub_msg *);
/*
 * The encoder writes count as a fixed 5-byte varint so that it can be
 * patched after the batch was filled; this sets it.
 */
void mom_pub_encode_count(struct mom_buf *, size_t count_off, uint64_t count);
/* Offset of the count field in a batch begun at body offset 'start'. */
size_t mom_pub_count_offset(const struct mom_buf *, size_t start);

int mom_pub_decode_begin(struct mom_rd *, struct mom_pub_batch *);
/*
 * Decodes the next message; validates target name, id, header block and
 * payload size against max_payload.  Returns 0, MOM_EPROTO for a frame
 * that is not well formed, MOM_EINVAL for a bad name, MOM_ETOOBIG.
 */
int mom_pub_decode_msg(struct mom_rd *, const struct mom_pub_batch *, struct mom_pub_msg *,
    size_t max_payload);

/*
 * FETCH request body:
 *	varint consumer, u8 kind, str name (queue or topic pattern),
 *	str durable (subscription name, "" = ephemeral),
 *	u8 from, varint from_time_ms,
 *	varint max_msgs, varint max_bytes, varint wait_ms, varint flags,
 *	varint nacks, nacks x varint receipt,
 *	varint nnacks, nnacks x (varint receipt, varint delay)
 * where delay is (delay_ms << 3 | touch << 2 | dead << 1 | unseen):
 * unseen means the consumer never used the message (prefetched, then not
 * needed), so the delivery does not count against max-deliver; dead asks
 * for it to be dead-lettered now (a poison message: a worker's exit 65),
 * whatever its deliveries; touch gives nothing back but extends the lease
 * by the ack wait (work in progress: a worker's command still runs).
 * dead with unseen (which cannot apply to a message looked at) says that
 * the delay is the consumer's exit status instead (a worker's 65): the
 * dead letter carries it.  A broker of before reads dead first and
 * ignores the rest.
 */
#define MOM_NACK_UNSEEN 1u
#define MOM_NACK_DEAD   2u
#define MOM_NACK_TOUCH  4u
#define MOM_NACK_DELAY(ms) ((uint64_t)(ms) << 3)

/*
 * Request/reply headers: a request names the queue its reply goes to and
 * a correlation id; the reply carries the id back, and the responder's
 * exit status (worker mode).
 */
#define MOM_HDR_REPLY_TO    "Mom-Reply-To"
#define MOM_HDR_CORRELATION "Mom-Correlation-Id"
#define MOM_HDR_EXIT        "Mom-Exit-Status"
struct mom_fetch {
	uint64_t         consumer;
	uint8_t          kind;
	struct mom_slice name;
	struct mom_slice durable;
	uint8_t          from;
	uint64_t         from_time_ms;
	uint64_t         max_msgs;
	uint64_t         max_bytes;
	uint64_t         wait_ms;
	uint64_t         flags;
	uint64_t         nacks;
	const uint64_t  *acks;    /* encode only */
	uint64_t         nnacks;
	const uint64_t  *nack_receipts; /* encode only */
	const uint64_t  *nack_delays;   /* encode only; NULL: each unseen, no delay */
	struct mom_rd    ack_rd;  /* decode: positioned at the ack list */
	struct mom_rd    nack_rd; /* decode: positioned at the nack list */
};

void mom_fetch_encode(struct mom_buf *, const struct mom_fetch *);
/* Validates everything, including every receipt; iterate with the rds. */
int  mom_fetch_decode(struct mom_rd *, struct mom_fetch *);
/*
 * Only the fields before the receipts (consumer to flags), unchecked: for
 * the network plane, which needs wait_ms and leaves the rest to the core.
 */
int  mom_fetch_decode_head(struct mom_rd *, struct mom_fetch *);

/*
 * FETCH reply body:
 *	varint ready (messages still ready after this batch), varint count,
 *	count x delivery
 */
struct mom_delivery {
	uint64_t         receipt;
	uint64_t         seq;     /* broker sequence number */
	uint64_t         time_ms; /* publish time, ms since the epoch */
	uint64_t         deliveries;
	uint8_t          kind;
	struct mom_slice name;    /* queue or topic */
	struct mom_slice id;      /* publisher id, n == 0: none */
	struct mom_slice headers;
	struct mom_slice payload;
};

void mom_delivery_encode(struct mom_buf *, const struct mom_delivery *);
int  mom_delivery_decode(struct mom_rd *, struct mom_delivery *);

/* ADMIN: request and reply bodies are one bytes field holding JSON. */

/* PING reply body: str version, varint max_payload, varint uptime_ms. */

#endif

/*
 * format.h: how mom-sub writes messages and how mom-pub reads them.
 */
#ifndef MOM_FORMAT_H
#define MOM_FORMAT_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "wire.h"

/*
 * -F FORMAT: %p payload, %t queue/topic name, %i id (the publisher id when
 * the message has one, else the broker sequence number), %s broker
 * sequence number, %d delivery count, %T publish time ISO-8601 UTC with
 * milliseconds, %h{Key} header value (empty when absent), %% a percent;
 * escapes \n \t \\ \0.  A compiled format is a list of parts.
 */
struct mom_fmt;

/* Returns 0 or MOM_EINVAL with a one-line reason in err (if non-NULL). */
int  mom_fmt_compile(const char *, struct mom_fmt **, char *err, size_t errlen);
void mom_fmt_free(struct mom_fmt *);
/* Appends the rendering of one delivery to out. */
void mom_fmt_render(const struct mom_fmt *, const struct mom_delivery *, struct mom_buf *out);

/*
 * JSON lines envelope, one per line:
 *   {"queue":"q"|"topic":"t", "payload":"text", "id":"...",
 *    "headers":{"K":"v"}, "seq":N, "delivery":N, "time":"ISO"}
 * "payload" is used when the payload is valid UTF-8 (JSON-escaped, so NUL
 * and newlines survive); otherwise "payload_b64" (standard base64) holds it.
 * mom_jsonl_render writes one envelope for a delivery, with a final '\n'.
 */
void mom_jsonl_render(const struct mom_delivery *, struct mom_buf *out);

/*
 * One parsed input envelope (mom-pub --jsonl).  Strings and the header
 * block are owned by the struct; free with mom_envelope_fini.
 * kind 0 when the envelope names no target.  Unknown members are ignored.
 * ttl and delay may be given as "ttl":"30s" / "delay":"5s".
 */
struct mom_envelope {
	uint8_t        kind;
	char          *name;
	char          *id;          /* NULL: none */
	uint8_t       *payload;
	size_t         payload_len;
	struct mom_buf headers;     /* encoded header block, len 0: none */
	uint64_t       ttl_ms;
	uint64_t       delay_ms;
};

/*
 * Parses one line (without its newline).  Returns 0, or MOM_EBADDATA with
 * a one-line reason in err: not JSON, not an object, both or neither of
 * payload/payload_b64 (neither means an empty payload: allowed), bad
 * base64, both queue and topic, bad name, bad header.
 */
int  mom_envelope_parse(const char *line, size_t len, struct mom_envelope *, char *err, size_t errlen);
void mom_envelope_fini(struct mom_envelope *);

/* Base64 (standard alphabet, padded). */
void mom_b64_encode(const uint8_t *, size_t, struct mom_buf *out);
/* Returns 0 or MOM_EBADDATA; accepts missing padding, rejects junk. */
int  mom_b64_decode(const char *, size_t, struct mom_buf *out);
/* The value of one base64 character (url: the RFC 4648 section 5 alphabet), or -1. */
int  mom_b64_value(unsigned char, bool url);
/* Is the range valid UTF-8 (no overlongs, no surrogates)? */
int  mom_utf8_valid(const uint8_t *, size_t);
/* Appends a JSON string literal (quotes included) for UTF-8 bytes. */
void mom_json_str(struct mom_buf *out, const uint8_t *, size_t);

#endif

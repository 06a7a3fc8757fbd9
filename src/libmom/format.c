/*
 * format.c: the two ways messages leave mom-sub and enter mom-pub: -F
 * templates, and JSON lines envelopes.
 *
 * The JSON lines form carries a promise: `mom-sub --jsonl | mom-pub
 * --jsonl` copies every payload byte for byte.  So the renderer writes a
 * payload as a JSON string only when it is valid UTF-8 (escaping NUL and
 * every control character), and as base64 otherwise; the parser reads
 * strings with JSON_ALLOW_NUL and takes their length from jansson, never
 * from strlen.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "duration.h"
#include "format.h"
#include "mom.h"
#include "names.h"
#include "wire.h"

/* -F templates. */

enum fmt_kind {
	FMT_LIT,     /* bytes of lit */
	FMT_PAYLOAD,
	FMT_NAME,
	FMT_ID,
	FMT_SEQ,
	FMT_DELIVERY,
	FMT_TIME,
	FMT_HEADER,  /* key in lit, NUL-terminated for mom_hdr_get */
};

struct fmt_part {
	enum fmt_kind kind;
	char         *lit;
	size_t        len;
};

struct mom_fmt {
	struct fmt_part *parts;
	size_t           n;
};

/* Appends a part; literal bytes are copied.  Returns 0 or MOM_ENOMEM. */
static int
fmt_add(struct mom_fmt *f, enum fmt_kind kind, const char *lit, size_t len)
{
	struct fmt_part *np, *p;

	/* Adjacent literal bytes merge into one part. */
	if (kind == FMT_LIT && f->n > 0 && f->parts[f->n - 1].kind == FMT_LIT) {
		char *nl;

		p = &f->parts[f->n - 1];
		if ((nl = realloc(p->lit, p->len + len + 1)) == NULL)
			return MOM_ENOMEM;
		memcpy(nl + p->len, lit, len);
		p->lit = nl;
		p->len += len;
		p->lit[p->len] = '\0';
		return 0;
	}
	if ((np = realloc(f->parts, (f->n + 1) * sizeof(*np))) == NULL)
		return MOM_ENOMEM;
	f->parts = np;
	p = &f->parts[f->n];
	p->kind = kind;
	p->lit = NULL;
	p->len = len;
	if (lit != NULL) {
		if ((p->lit = malloc(len + 1)) == NULL)
			return MOM_ENOMEM;
		memcpy(p->lit, lit, len);
		p->lit[len] = '\0';
	}
	f->n++;
	return 0;
}

/* On success *out is owned by the caller (mom_fmt_free); on failure NULL. */
int
mom_fmt_compile(const char *s, struct mom_fmt **out, char *err, size_t errlen)
{
	struct mom_fmt *f;
	const char *p;
	int rc = 0;

	*out = NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		mom_errf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	}
	for (p = s; *p != '\0' && rc == 0; p++) {
		if (*p == '\\') {
			char c;

			switch (p[1]) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case '\\': c = '\\'; break;
			case '0': c = '\0'; break;
			case '\0':
				mom_errf(err, errlen, "format ends with a lone backslash");
				goto fail;
			default:
				mom_errf(err, errlen, "unknown escape \\%c in format", p[1]);
				goto fail;
			}
			rc = fmt_add(f, FMT_LIT, &c, 1);
			p++;
		} else if (*p == '%') {
			const char *k, *end;

			switch (p[1]) {
			case 'p': rc = fmt_add(f, FMT_PAYLOAD, NULL, 0); break;
			case 't': rc = fmt_add(f, FMT_NAME, NULL, 0); break;
			case 'i': rc = fmt_add(f, FMT_ID, NULL, 0); break;
			case 's': rc = fmt_add(f, FMT_SEQ, NULL, 0); break;
			case 'd': rc = fmt_add(f, FMT_DELIVERY, NULL, 0); break;
			case 'T': rc = fmt_add(f, FMT_TIME, NULL, 0); break;
			case '%': rc = fmt_add(f, FMT_LIT, "%", 1); break;
			case 'h':
				if (p[2] != '{') {
					mom_errf(err, errlen, "%%h must be followed by {Key}");
					goto fail;
				}
				k = p + 3;
				if ((end = strchr(k, '}')) == NULL) {
					mom_errf(err, errlen, "unterminated %%h{ in format");
					goto fail;
				}
				if (!mom_hdr_key_valid(k, (size_t)(end - k))) {
					mom_errf(err, errlen, "bad header name in %%h{%.*s}",
					    (int)(end - k), k);
					goto fail;
				}
				rc = fmt_add(f, FMT_HEADER, k, (size_t)(end - k));
				/* The loop's p++ steps over the '}'. */
				p = end - 1;
				break;
			case '\0':
				mom_errf(err, errlen, "format ends with a lone %%");
				goto fail;
			default:
				mom_errf(err, errlen, "unknown directive %%%c in format", p[1]);
				goto fail;
			}
			p++;
		} else {
			rc = fmt_add(f, FMT_LIT, p, 1);
		}
	}
	if (rc != 0) {
		mom_errf(err, errlen, "out of memory");
		mom_fmt_free(f);
		return rc;
	}
	*out = f;
	return 0;
fail:
	mom_fmt_free(f);
	return MOM_EINVAL;
}

void
mom_fmt_free(struct mom_fmt *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		free(f->parts[i].lit);
	free(f->parts);
	free(f);
}

/* mom_buf_put_str writes a length-prefixed string; text wants raw bytes. */
static void
put_lit(struct mom_buf *out, const char *s)
{
	mom_buf_put(out, s, strlen(s));
}

static void
put_u64(struct mom_buf *out, uint64_t v)
{
	char tmp[24];
	int  n;

	n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
	mom_buf_put(out, tmp, (size_t)n);
}

static void
put_time(struct mom_buf *out, uint64_t ms)
{
	char tmp[64];

	mom_time_format((int64_t)ms, tmp, sizeof(tmp));
	mom_buf_put(out, tmp, strlen(tmp));
}

void
mom_fmt_render(const struct mom_fmt *f, const struct mom_delivery *d, struct mom_buf *out)
{
	struct mom_slice v;
	size_t i;

	for (i = 0; i < f->n; i++) {
		const struct fmt_part *p = &f->parts[i];

		switch (p->kind) {
		case FMT_LIT:
			mom_buf_put(out, p->lit, p->len);
			break;
		case FMT_PAYLOAD:
			mom_buf_put(out, d->payload.p, d->payload.n);
			break;
		case FMT_NAME:
			mom_buf_put(out, d->name.p, d->name.n);
			break;
		case FMT_ID:
			if (d->id.n > 0)
				mom_buf_put(out, d->id.p, d->id.n);
			else
				put_u64(out, d->seq);
			break;
		case FMT_SEQ:
			put_u64(out, d->seq);
			break;
		case FMT_DELIVERY:
			put_u64(out, d->deliveries);
			break;
		case FMT_TIME:
			put_time(out, d->time_ms);
			break;
		case FMT_HEADER:
			if (d->headers.n > 0 &&
			    mom_hdr_get(d->headers.p, d->headers.n, p->lit, &v))
				mom_buf_put(out, v.p, v.n);
			break;
		}
	}
}

/* UTF-8 and JSON strings. */

/*
 * Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when it
 * is not one: overlong forms, surrogates and code points past U+10FFFF are
 * all refused, as RFC 3629 asks.
 */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t  len, i;
	uint8_t lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0; /* continuation byte, or overlong 2-byte lead */
	if (c < 0xe0) {
		len = 2;
	} else if (c < 0xf0) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (c < 0xf5) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90; /* overlong */
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

int
mom_utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if ((k = utf8_seq(p + i, n - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

/*
 * Invalid UTF-8 cannot be put in a JSON string; each bad byte becomes
 * U+FFFD so the output stays valid JSON.  Payloads never get here
 * invalid (they go to payload_b64): this is for header values.
 */
void
mom_json_str(struct mom_buf *out, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run = 0, k;

	mom_buf_put_u8(out, '"');
	while (i < n) {
		uint8_t c = p[i];
		char    esc[6];
		size_t  elen = 2;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			i++;
			run++;
			continue;
		}
		if (c >= 0x80 && (k = utf8_seq(p + i, n - i)) != 0) {
			i += k;
			run += k;
			continue;
		}
		/* Flush the plain bytes before this one in one copy. */
		if (run > 0)
			mom_buf_put(out, p + i - run, run);
		run = 0;
		i++;
		if (c >= 0x80) {
			mom_buf_put(out, "\\ufffd", 6);
			continue;
		}
		esc[0] = '\\';
		switch (c) {
		case '"':  esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			elen = 6;
			break;
		}
		mom_buf_put(out, esc, elen);
	}
	if (run > 0)
		mom_buf_put(out, p + i - run, run);
	mom_buf_put_u8(out, '"');
}

/* Base64. */

static const char b64_alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
mom_b64_encode(const uint8_t *p, size_t n, struct mom_buf *out)
{
	size_t i;
	char   q[4];

	if (mom_buf_reserve(out, (n + 2) / 3 * 4) != 0)
		return;
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		q[0] = b64_alpha[v >> 18];
		q[1] = b64_alpha[(v >> 12) & 0x3f];
		q[2] = b64_alpha[(v >> 6) & 0x3f];
		q[3] = b64_alpha[v & 0x3f];
		mom_buf_put(out, q, 4);
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		q[0] = b64_alpha[v >> 18];
		q[1] = b64_alpha[(v >> 12) & 0x3f];
		q[2] = '=';
		q[3] = '=';
		mom_buf_put(out, q, 4);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		q[0] = b64_alpha[v >> 18];
		q[1] = b64_alpha[(v >> 12) & 0x3f];
		q[2] = b64_alpha[(v >> 6) & 0x3f];
		q[3] = '=';
		mom_buf_put(out, q, 4);
	}
}

int
mom_b64_value(unsigned char c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

int
mom_b64_decode(const char *s, size_t n, struct mom_buf *out)
{
	size_t   i, data, pad = 0;
	uint32_t acc = 0;
	int      bits = 0, v;

	/* Padding, when present, only at the end and only to a full quantum. */
	while (pad < n && pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	data = n - pad;
	if (data % 4 == 1 || (pad > 0 && n % 4 != 0))
		return MOM_EBADDATA;
	if (mom_buf_reserve(out, data / 4 * 3 + 2) != 0)
		return out->err;
	for (i = 0; i < data; i++) {
		if ((v = mom_b64_value((unsigned char)s[i], false)) < 0)
			return MOM_EBADDATA;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			mom_buf_put_u8(out, (uint8_t)(acc >> bits));
			acc &= (1u << bits) - 1;
		}
	}
	return out->err;
}

/* JSON lines. */

void
mom_jsonl_render(const struct mom_delivery *d, struct mom_buf *out)
{
	put_lit(out, d->kind == MOM_KIND_TOPIC ? "{\"topic\":" : "{\"queue\":");
	mom_json_str(out, d->name.p, d->name.n);
	if (mom_utf8_valid(d->payload.p, d->payload.n)) {
		put_lit(out, ",\"payload\":");
		mom_json_str(out, d->payload.p, d->payload.n);
	} else {
		put_lit(out, ",\"payload_b64\":\"");
		mom_b64_encode(d->payload.p, d->payload.n, out);
		mom_buf_put_u8(out, '"');
	}
	if (d->id.n > 0) {
		put_lit(out, ",\"id\":");
		mom_json_str(out, d->id.p, d->id.n);
	}
	if (d->headers.n > 0) {
		struct mom_hdr_iter it;
		struct mom_slice    k, v;
		int                 first = 1;

		mom_hdr_iter_init(&it, d->headers.p, d->headers.n);
		while (mom_hdr_next(&it, &k, &v)) {
			put_lit(out, first ? ",\"headers\":{" : ",");
			mom_json_str(out, k.p, k.n);
			mom_buf_put_u8(out, ':');
			mom_json_str(out, v.p, v.n);
			first = 0;
		}
		if (!first)
			mom_buf_put_u8(out, '}');
	}
	put_lit(out, ",\"seq\":");
	put_u64(out, d->seq);
	put_lit(out, ",\"delivery\":");
	put_u64(out, d->deliveries);
	put_lit(out, ",\"time\":\"");
	put_time(out, d->time_ms);
	put_lit(out, "\"}\n");
}

static char *
dup_bytes(const char *p, size_t n)
{
	char *s;

	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static int
id_ok(const char *p, size_t n)
{
	size_t i;

	/* The broker's rule (wire.c): 1-256 printable ASCII bytes. */
	if (n == 0 || n > MOM_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return 0;
	return 1;
}

/* "ttl"/"delay": a duration string ("30s") or an integer of milliseconds. */
static int
env_duration(json_t *v, uint64_t *ms)
{
	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return MOM_EBADDATA;
		return mom_duration_parse(json_string_value(v), ms) ? MOM_EBADDATA : 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ms = (uint64_t)json_integer_value(v);
		return 0;
	}
	return MOM_EBADDATA;
}

static int
env_headers(json_t *obj, struct mom_buf *b, char *err, size_t errlen)
{
	const char *key;
	size_t      klen;
	json_t     *v;

	if (!json_is_object(obj)) {
		mom_errf(err, errlen, "headers is not an object");
		return MOM_EBADDATA;
	}
	if (json_object_size(obj) == 0)
		return 0;
	mom_buf_put_varint(b, json_object_size(obj));
	json_object_keylen_foreach(obj, key, klen, v) {
		const char *s;
		size_t      n;

		if (!mom_hdr_key_valid(key, klen)) {
			mom_errf(err, errlen, "bad header name \"%.*s\"",
			    (int)(klen > 64 ? 64 : klen), key);
			return MOM_EBADDATA;
		}
		if (!json_is_string(v)) {
			mom_errf(err, errlen, "header %.*s is not a string", (int)klen, key);
			return MOM_EBADDATA;
		}
		s = json_string_value(v);
		n = json_string_length(v);
		if (memchr(s, '\r', n) != NULL || memchr(s, '\n', n) != NULL ||
		    memchr(s, '\0', n) != NULL) {
			mom_errf(err, errlen, "header %.*s has CR, LF or NUL in its value",
			    (int)klen, key);
			return MOM_EBADDATA;
		}
		mom_buf_put_bytes(b, key, klen);
		mom_buf_put_bytes(b, s, n);
	}
	if (b->len > MOM_HEADERS_MAX) {
		mom_errf(err, errlen, "headers over %d bytes", MOM_HEADERS_MAX);
		return MOM_EBADDATA;
	}
	return b->err;
}

/*
 * On success e owns its strings and header block (mom_envelope_fini); on
 * failure e holds nothing, so the caller has nothing to free either way
 * but may call mom_envelope_fini regardless.
 */
int
mom_envelope_parse(const char *line, size_t len, struct mom_envelope *e, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v, *q, *t, *pl, *pb;
	struct mom_buf b;
	int rc = MOM_EBADDATA;

	memset(e, 0, sizeof(*e));
	mom_buf_init(&e->headers);
	mom_buf_init(&b);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if ((root = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		mom_errf(err, errlen, "line is not valid JSON: %s", jerr.text);
		return MOM_EBADDATA;
	}
	if (!json_is_object(root)) {
		mom_errf(err, errlen, "line is not a JSON object");
		goto fail;
	}

	q = json_object_get(root, "queue");
	t = json_object_get(root, "topic");
	if (q != NULL && t != NULL) {
		mom_errf(err, errlen, "both queue and topic given");
		goto fail;
	}
	if ((v = q != NULL ? q : t) != NULL) {
		const char *what = q != NULL ? "queue" : "topic";

		if (!json_is_string(v)) {
			mom_errf(err, errlen, "%s is not a string", what);
			goto fail;
		}
		if (!mom_name_valid(json_string_value(v), json_string_length(v))) {
			mom_errf(err, errlen, "bad %s name", what);
			goto fail;
		}
		e->kind = q != NULL ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
		if ((e->name = dup_bytes(json_string_value(v), json_string_length(v))) == NULL)
			goto nomem;
	}

	pl = json_object_get(root, "payload");
	pb = json_object_get(root, "payload_b64");
	if (pl != NULL && pb != NULL) {
		mom_errf(err, errlen, "both payload and payload_b64 given");
		goto fail;
	}
	if (pl != NULL) {
		if (!json_is_string(pl)) {
			mom_errf(err, errlen, "payload is not a string");
			goto fail;
		}
		mom_buf_put(&b, json_string_value(pl), json_string_length(pl));
	} else if (pb != NULL) {
		if (!json_is_string(pb) ||
		    mom_b64_decode(json_string_value(pb), json_string_length(pb), &b) != 0) {
			mom_errf(err, errlen, "bad base64 in payload_b64");
			goto fail;
		}
	}
	if (b.err != 0)
		goto nomem;
	e->payload = mom_buf_steal(&b, &e->payload_len);

	if ((v = json_object_get(root, "id")) != NULL) {
		if (!json_is_string(v) ||
		    !id_ok(json_string_value(v), json_string_length(v))) {
			mom_errf(err, errlen, "id must be 1-%d printable ASCII characters",
			    MOM_ID_MAX);
			goto fail;
		}
		if ((e->id = dup_bytes(json_string_value(v), json_string_length(v))) == NULL)
			goto nomem;
	}
	if ((v = json_object_get(root, "headers")) != NULL &&
	    (rc = env_headers(v, &e->headers, err, errlen)) != 0) {
		if (rc == MOM_ENOMEM)
			goto nomem;
		goto fail;
	}
	if ((v = json_object_get(root, "ttl")) != NULL &&
	    env_duration(v, &e->ttl_ms) != 0) {
		mom_errf(err, errlen, "bad ttl (want a duration like \"30s\" or ms)");
		rc = MOM_EBADDATA;
		goto fail;
	}
	if ((v = json_object_get(root, "delay")) != NULL &&
	    env_duration(v, &e->delay_ms) != 0) {
		mom_errf(err, errlen, "bad delay (want a duration like \"5s\" or ms)");
		rc = MOM_EBADDATA;
		goto fail;
	}
	json_decref(root);
	return 0;
nomem:
	mom_errf(err, errlen, "out of memory");
	rc = MOM_ENOMEM;
fail:
	if (rc == 0)
		rc = MOM_EBADDATA;
	json_decref(root);
	mom_buf_fini(&b);
	mom_envelope_fini(e);
	return rc;
}

void
mom_envelope_fini(struct mom_envelope *e)
{
	if (e == NULL)
		return;
	free(e->name);
	free(e->id);
	free(e->payload);
	mom_buf_fini(&e->headers);
	memset(e, 0, sizeof(*e));
	mom_buf_init(&e->headers);
}

/*
 * wire.c: encoders and decoders of the data-plane protocol (see wire.h).
 *
 * Every decoder works on a struct mom_rd, whose reads are bounds-checked,
 * and validates what it returns (names, ids, header blocks, sizes), so the
 * broker's core only ever sees well-formed requests.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mom.h"
#include "names.h"
#include "wire.h"

int
mom_frame_decode(struct mom_rd *r, struct mom_frame *f)
{
	const uint8_t *h = mom_rd_raw(r, MOM_WIRE_HDRLEN);

	if (h == NULL || h[0] != MOM_WIRE_MAGIC || h[1] != MOM_WIRE_VERSION)
		return MOM_EPROTO;
	f->op = h[2] & (uint8_t)~MOM_WIRE_REPLY;
	f->reply = (h[2] & MOM_WIRE_REPLY) != 0;
	f->status = h[3];
	return 0;
}

void
mom_frame_encode(struct mom_buf *b, uint8_t op, bool reply, uint8_t status)
{
	uint8_t h[MOM_WIRE_HDRLEN] = { MOM_WIRE_MAGIC, MOM_WIRE_VERSION,
		(uint8_t)(op | (reply ? MOM_WIRE_REPLY : 0)), status };

	mom_buf_put(b, h, sizeof(h));
}

void
mom_frame_with_token(struct mom_buf *out, const uint8_t *frame, size_t len, const char *tok,
    size_t toklen)
{
	mom_buf_reset(out);
	if (tok == NULL || len < MOM_WIRE_HDRLEN) {
		mom_buf_put(out, frame, len);
		return;
	}
	mom_buf_put(out, frame, 3);
	mom_buf_put_u8(out, frame[3] | MOM_RF_TOKEN);
	mom_buf_put_bytes(out, tok, toklen);
	mom_buf_put(out, frame + MOM_WIRE_HDRLEN, len - MOM_WIRE_HDRLEN);
}

int
mom_frame_token(struct mom_rd *r, const struct mom_frame *f, struct mom_slice *tok)
{
	tok->p = NULL;
	tok->n = 0;
	if (f->reply || !(f->status & MOM_RF_TOKEN))
		return 0;
	tok->p = mom_rd_bytes(r, &tok->n);
	if (r->err || tok->p == NULL || tok->n == 0)
		return MOM_EPROTO;
	return 0;
}

int
mom_wire_status(const uint8_t *p, size_t len, uint8_t op, struct mom_rd *body, char *err,
    size_t errlen)
{
	struct mom_frame f;
	struct mom_rd    r;

	mom_rd_init(&r, p, len);
	if (mom_frame_decode(&r, &f) != 0 || !f.reply || f.op != op) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "broker sent a malformed reply");
		return MOM_EPROTO;
	}
	if (f.status != 0) {
		size_t         n;
		const uint8_t *msg = mom_rd_bytes(&r, &n);

		if (err != NULL && errlen > 0) {
			if (msg != NULL)
				snprintf(err, errlen, "%.*s", (int)n, (const char *)msg);
			else
				snprintf(err, errlen, "%s", mom_strerror(f.status));
		}
		return f.status < MOM_E_MAX ? f.status : MOM_EPROTO;
	}
	if (body != NULL)
		*body = r;
	return 0;
}

void
mom_wire_error(struct mom_buf *b, uint8_t op, int err, const char *msg)
{
	mom_frame_encode(b, op, true, (uint8_t)err);
	mom_buf_put_str(b, msg ? msg : mom_strerror(err));
}

/* Header blocks. */

int
mom_hdr_key_valid(const char *k, size_t n)
{
	size_t i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)k[i];

		if (!isalnum(c) && c != '-' && c != '_')
			return 0;
	}
	return 1;
}

static int
hdr_value_valid(const uint8_t *v, size_t n)
{
	return memchr(v, '\n', n) == NULL && memchr(v, '\r', n) == NULL &&
	    memchr(v, '\0', n) == NULL;
}

void
mom_hdr_iter_init(struct mom_hdr_iter *it, const uint8_t *p, size_t n)
{
	mom_rd_init(&it->rd, p, n);
	it->left = n ? mom_rd_varint(&it->rd) : 0;
}

int
mom_hdr_next(struct mom_hdr_iter *it, struct mom_slice *k, struct mom_slice *v)
{
	if (it->left == 0 || it->rd.err)
		return 0;
	it->left--;
	k->p = mom_rd_bytes(&it->rd, &k->n);
	v->p = mom_rd_bytes(&it->rd, &v->n);
	return it->rd.err == 0;
}

int
mom_hdr_validate(const uint8_t *p, size_t n)
{
	struct mom_hdr_iter it;
	struct mom_slice    k, v;
	uint64_t            count;

	if (n == 0)
		return 0;
	if (n > MOM_HEADERS_MAX)
		return MOM_EBADDATA;
	mom_hdr_iter_init(&it, p, n);
	count = it.left;
	if (it.rd.err || count == 0 || count > n)
		return MOM_EBADDATA;
	while (mom_hdr_next(&it, &k, &v)) {
		if (!mom_hdr_key_valid((const char *)k.p, k.n) || !hdr_value_valid(v.p, v.n))
			return MOM_EBADDATA;
	}
	if (it.rd.err || it.left != 0 || mom_rd_left(&it.rd) != 0)
		return MOM_EBADDATA;
	return 0;
}

int
mom_hdr_get(const uint8_t *p, size_t n, const char *key, struct mom_slice *val)
{
	struct mom_hdr_iter it;
	struct mom_slice    k, v;
	size_t              klen = strlen(key);

	mom_hdr_iter_init(&it, p, n);
	while (mom_hdr_next(&it, &k, &v)) {
		if (k.n == klen && strncasecmp((const char *)k.p, key, klen) == 0) {
			*val = v;
			return 1;
		}
	}
	return 0;
}

int
mom_hdr_build(struct mom_buf *b, const char *const *lines, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	mom_buf_put_varint(b, n);
	for (i = 0; i < n; i++) {
		const char *colon = strchr(lines[i], ':');
		const char *v;
		size_t      klen, vlen;

		if (colon == NULL)
			return MOM_EINVAL;
		klen = (size_t)(colon - lines[i]);
		while (klen > 0 && isspace((unsigned char)lines[i][klen - 1]))
			klen--;
		v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		vlen = strlen(v);
		while (vlen > 0 && isspace((unsigned char)v[vlen - 1]))
			vlen--;
		if (!mom_hdr_key_valid(lines[i], klen) ||
		    !hdr_value_valid((const uint8_t *)v, vlen))
			return MOM_EINVAL;
		mom_buf_put_bytes(b, lines[i], klen);
		mom_buf_put_bytes(b, v, vlen);
	}
	if (b->len > MOM_HEADERS_MAX)
		return MOM_EINVAL;
	return b->err;
}

/* Publish. */

static void
put_fixed5(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 4; i++) {
		p[i] = (uint8_t)((v & 0x7f) | 0x80);
		v >>= 7;
	}
	p[4] = (uint8_t)(v & 0x7f);
}

void
mom_pub_encode_begin(struct mom_buf *b, const struct mom_pub_batch *batch)
{
	uint8_t count[5];

	mom_buf_put_varint(b, batch->producer);
	mom_buf_put_varint(b, batch->first_seq);
	mom_buf_put_u8(b, batch->kind);
	mom_buf_put_bytes(b, batch->name.p, batch->name.n);
	put_fixed5(count, batch->count);
	mom_buf_put(b, count, sizeof(count));
}

size_t
mom_pub_count_offset(const struct mom_buf *b, size_t start)
{
	struct mom_rd r;
	size_t        n;

	mom_rd_init(&r, b->data + start, b->len - start);
	(void)mom_rd_varint(&r);
	(void)mom_rd_varint(&r);
	(void)mom_rd_u8(&r);
	(void)mom_rd_bytes(&r, &n);
	return start + r.off;
}

void
mom_pub_encode_count(struct mom_buf *b, size_t off, uint64_t count)
{
	if (b->err == 0 && off + 5 <= b->len)
		put_fixed5(b->data + off, count);
}

void
mom_pub_encode_msg(struct mom_buf *b, const struct mom_pub_batch *batch,
    const struct mom_pub_msg *m)
{
	unsigned flags = 0;

	if (m->name.n > 0 && (m->kind != batch->kind || m->name.n != batch->name.n ||
	    memcmp(m->name.p, batch->name.p, m->name.n) != 0))
		flags |= MOM_PF_TARGET;
	if (m->id.n > 0)
		flags |= MOM_PF_ID;
	if (m->ttl_ms > 0)
		flags |= MOM_PF_TTL;
	if (m->delay_ms > 0)
		flags |= MOM_PF_DELAY;
	if (m->headers.n > 0)
		flags |= MOM_PF_HEADERS;
	mom_buf_put_varint(b, flags);
	if (flags & MOM_PF_TARGET) {
		mom_buf_put_u8(b, m->kind);
		mom_buf_put_bytes(b, m->name.p, m->name.n);
	}
	if (flags & MOM_PF_ID)
		mom_buf_put_bytes(b, m->id.p, m->id.n);
	if (flags & MOM_PF_TTL)
		mom_buf_put_varint(b, m->ttl_ms);
	if (flags & MOM_PF_DELAY)
		mom_buf_put_varint(b, m->delay_ms);
	if (flags & MOM_PF_HEADERS)
		mom_buf_put_bytes(b, m->headers.p, m->headers.n);
	mom_buf_put_bytes(b, m->payload.p, m->payload.n);
}

static int
kind_valid(uint8_t k)
{
	return k == MOM_KIND_QUEUE || k == MOM_KIND_TOPIC;
}

int
mom_pub_decode_begin(struct mom_rd *r, struct mom_pub_batch *batch)
{
	batch->producer = mom_rd_varint(r);
	batch->first_seq = mom_rd_varint(r);
	batch->kind = mom_rd_u8(r);
	batch->name.p = mom_rd_bytes(r, &batch->name.n);
	batch->count = mom_rd_varint_max(r, MOM_BATCH_MAX);
	if (r->err)
		return MOM_EPROTO;
	/* An empty default target is allowed when every message names one. */
	if (batch->name.n > 0 && (!kind_valid(batch->kind) ||
	    !mom_name_valid((const char *)batch->name.p, batch->name.n)))
		return MOM_EINVAL;
	if (batch->count == 0)
		return MOM_EPROTO;
	if (batch->producer != 0 && batch->first_seq > UINT64_MAX - batch->count)
		return MOM_EPROTO;
	return 0;
}

/* An id is 1-256 printable ASCII bytes: it is shown by %i and in JSON. */
static int
id_valid(const uint8_t *p, size_t n)
{
	size_t i;

	if (n == 0 || n > MOM_ID_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return 0;
	return 1;
}

int
mom_pub_decode_msg(struct mom_rd *r, const struct mom_pub_batch *batch,
    struct mom_pub_msg *m, size_t max_payload)
{
	uint64_t flags = mom_rd_varint(r);

	memset(m, 0, sizeof(*m));
	if (r->err || (flags & ~(uint64_t)MOM_PF_ALL))
		return MOM_EPROTO;
	if (flags & MOM_PF_TARGET) {
		m->kind = mom_rd_u8(r);
		m->name.p = mom_rd_bytes(r, &m->name.n);
		if (r->err)
			return MOM_EPROTO;
	} else {
		m->kind = batch->kind;
		m->name = batch->name;
	}
	if (flags & MOM_PF_ID) {
		m->id.p = mom_rd_bytes(r, &m->id.n);
		if (r->err)
			return MOM_EPROTO;
		if (!id_valid(m->id.p, m->id.n))
			return MOM_EINVAL;
	}
	if (flags & MOM_PF_TTL)
		m->ttl_ms = mom_rd_varint(r);
	if (flags & MOM_PF_DELAY)
		m->delay_ms = mom_rd_varint(r);
	if (flags & MOM_PF_HEADERS) {
		m->headers.p = mom_rd_bytes(r, &m->headers.n);
		if (r->err)
			return MOM_EPROTO;
		if (m->headers.n == 0 || mom_hdr_validate(m->headers.p, m->headers.n) != 0)
			return MOM_EBADDATA;
	}
	m->payload.p = mom_rd_bytes(r, &m->payload.n);
	if (r->err)
		return MOM_EPROTO;
	if (!kind_valid(m->kind) || !mom_name_valid((const char *)m->name.p, m->name.n))
		return MOM_EINVAL;
	if (m->payload.n > max_payload || m->payload.n > MOM_PAYLOAD_LIMIT)
		return MOM_ETOOBIG;
	return 0;
}

/* Fetch. */

void
mom_fetch_encode(struct mom_buf *b, const struct mom_fetch *f)
{
	uint64_t i;

	mom_buf_put_varint(b, f->consumer);
	mom_buf_put_u8(b, f->kind);
	mom_buf_put_bytes(b, f->name.p, f->name.n);
	mom_buf_put_bytes(b, f->durable.p, f->durable.n);
	mom_buf_put_u8(b, f->from);
	mom_buf_put_varint(b, f->from_time_ms);
	mom_buf_put_varint(b, f->max_msgs);
	mom_buf_put_varint(b, f->max_bytes);
	mom_buf_put_varint(b, f->wait_ms);
	mom_buf_put_varint(b, f->flags);
	mom_buf_put_varint(b, f->nacks);
	for (i = 0; i < f->nacks; i++)
		mom_buf_put_varint(b, f->acks[i]);
	mom_buf_put_varint(b, f->nnacks);
	for (i = 0; i < f->nnacks; i++) {
		mom_buf_put_varint(b, f->nack_receipts[i]);
		mom_buf_put_varint(b, f->nack_delays ? f->nack_delays[i] : MOM_NACK_UNSEEN);
	}
}

int
mom_fetch_decode_head(struct mom_rd *r, struct mom_fetch *f)
{
	memset(f, 0, sizeof(*f));
	f->consumer = mom_rd_varint(r);
	f->kind = mom_rd_u8(r);
	f->name.p = mom_rd_bytes(r, &f->name.n);
	f->durable.p = mom_rd_bytes(r, &f->durable.n);
	f->from = mom_rd_u8(r);
	f->from_time_ms = mom_rd_varint(r);
	f->max_msgs = mom_rd_varint(r);
	f->max_bytes = mom_rd_varint(r);
	f->wait_ms = mom_rd_varint(r);
	f->flags = mom_rd_varint(r);
	return r->err ? MOM_EPROTO : 0;
}

int
mom_fetch_decode(struct mom_rd *r, struct mom_fetch *f)
{
	uint64_t i;

	(void)mom_fetch_decode_head(r, f);
	/* Each receipt takes at least one byte, which bounds the counts. */
	f->nacks = mom_rd_varint_max(r, mom_rd_left(r));
	f->ack_rd = *r;
	for (i = 0; i < f->nacks && r->err == 0; i++)
		(void)mom_rd_varint(r);
	f->nnacks = mom_rd_varint_max(r, mom_rd_left(r));
	f->nack_rd = *r;
	for (i = 0; i < f->nnacks && r->err == 0; i++) {
		(void)mom_rd_varint(r);
		(void)mom_rd_varint(r);
	}
	if (r->err || mom_rd_left(r) != 0)
		return MOM_EPROTO;
	if (f->consumer == 0 || !kind_valid(f->kind) || f->from > MOM_FROM_TIME ||
	    (f->flags & ~(uint64_t)(MOM_FF_NOACK | MOM_FF_CLOSE)))
		return MOM_EPROTO;
	if (f->kind == MOM_KIND_QUEUE) {
		if (!mom_name_valid((const char *)f->name.p, f->name.n))
			return MOM_EINVAL;
	} else if (!mom_pattern_valid((const char *)f->name.p, f->name.n))
		return MOM_EINVAL;
	if (f->durable.n > 0 && !mom_name_valid((const char *)f->durable.p, f->durable.n))
		return MOM_EINVAL;
	return 0;
}

void
mom_delivery_encode(struct mom_buf *b, const struct mom_delivery *d)
{
	mom_buf_put_varint(b, d->receipt);
	mom_buf_put_varint(b, d->seq);
	mom_buf_put_varint(b, d->time_ms);
	mom_buf_put_varint(b, d->deliveries);
	mom_buf_put_u8(b, d->kind);
	mom_buf_put_bytes(b, d->name.p, d->name.n);
	mom_buf_put_bytes(b, d->id.p, d->id.n);
	mom_buf_put_bytes(b, d->headers.p, d->headers.n);
	mom_buf_put_bytes(b, d->payload.p, d->payload.n);
}

int
mom_delivery_decode(struct mom_rd *r, struct mom_delivery *d)
{
	d->receipt = mom_rd_varint(r);
	d->seq = mom_rd_varint(r);
	d->time_ms = mom_rd_varint(r);
	d->deliveries = mom_rd_varint(r);
	d->kind = mom_rd_u8(r);
	d->name.p = mom_rd_bytes(r, &d->name.n);
	d->id.p = mom_rd_bytes(r, &d->id.n);
	d->headers.p = mom_rd_bytes(r, &d->headers.n);
	d->payload.p = mom_rd_bytes(r, &d->payload.n);
	if (r->err)
		return MOM_EPROTO;
	if (!kind_valid(d->kind) || !mom_name_valid((const char *)d->name.p, d->name.n) ||
	    (d->id.n > 0 && !id_valid(d->id.p, d->id.n)) ||
	    mom_hdr_validate(d->headers.p, d->headers.n) != 0)
		return MOM_EPROTO;
	return 0;
}

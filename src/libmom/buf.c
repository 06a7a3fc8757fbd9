/*
 * buf.c: codec primitives (see buf.h).
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mom.h"

void
mom_buf_init(struct mom_buf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = 0;
}

void
mom_buf_fini(struct mom_buf *b)
{
	free(b->data);
	mom_buf_init(b);
}

void
mom_buf_reset(struct mom_buf *b)
{
	b->len = 0;
	b->err = 0;
}

int
mom_buf_reserve(struct mom_buf *b, size_t more)
{
	size_t   cap;
	uint8_t *p;

	if (b->err)
		return b->err;
	if (more <= b->cap - b->len)
		return 0;
	if (more > SIZE_MAX / 2 - b->len) {
		b->err = MOM_ENOMEM;
		return b->err;
	}
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < more)
		cap *= 2;
	if ((p = realloc(b->data, cap)) == NULL) {
		b->err = MOM_ENOMEM;
		return b->err;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void
mom_buf_put(struct mom_buf *b, const void *p, size_t n)
{
	if (n == 0 || mom_buf_reserve(b, n) != 0)
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void
mom_buf_put_u8(struct mom_buf *b, uint8_t v)
{
	if (mom_buf_reserve(b, 1) != 0)
		return;
	b->data[b->len++] = v;
}

size_t
mom_varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

void
mom_buf_put_varint(struct mom_buf *b, uint64_t v)
{
	if (mom_buf_reserve(b, 10) != 0)
		return;
	while (v >= 0x80) {
		b->data[b->len++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b->data[b->len++] = (uint8_t)v;
}

void
mom_buf_put_bytes(struct mom_buf *b, const void *p, size_t n)
{
	mom_buf_put_varint(b, n);
	mom_buf_put(b, p, n);
}

void
mom_buf_put_str(struct mom_buf *b, const char *s)
{
	mom_buf_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

uint8_t *
mom_buf_steal(struct mom_buf *b, size_t *len)
{
	uint8_t *p = b->data;

	if (len != NULL)
		*len = b->len;
	mom_buf_init(b);
	return p;
}

void
mom_rd_init(struct mom_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

size_t
mom_rd_left(const struct mom_rd *r)
{
	return r->err ? 0 : r->len - r->off;
}

uint8_t
mom_rd_u8(struct mom_rd *r)
{
	if (r->err || r->off >= r->len) {
		r->err = MOM_EPROTO;
		return 0;
	}
	return r->p[r->off++];
}

uint64_t
mom_rd_varint(struct mom_rd *r)
{
	uint64_t v = 0;
	unsigned shift;

	if (r->err)
		return 0;
	for (shift = 0; shift < 64; shift += 7) {
		uint8_t c;

		if (r->off >= r->len)
			break;
		c = r->p[r->off++];
		/* The tenth byte may only carry the top bit of a u64. */
		if (shift == 63 && c > 1)
			break;
		v |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0)
			return v;
	}
	r->err = MOM_EPROTO;
	return 0;
}

uint64_t
mom_rd_varint_max(struct mom_rd *r, uint64_t max)
{
	uint64_t v = mom_rd_varint(r);

	if (v > max) {
		r->err = MOM_EPROTO;
		return 0;
	}
	return v;
}

const uint8_t *
mom_rd_raw(struct mom_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		r->err = MOM_EPROTO;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

const uint8_t *
mom_rd_bytes(struct mom_rd *r, size_t *n)
{
	uint64_t len = mom_rd_varint(r);

	if (r->err || len > r->len - r->off) {
		r->err = MOM_EPROTO;
		*n = 0;
		return NULL;
	}
	*n = (size_t)len;
	return mom_rd_raw(r, (size_t)len);
}

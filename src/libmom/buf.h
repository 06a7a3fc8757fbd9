/*
 * buf.h: the primitives of the wire codec.
 *
 * A struct mom_buf is a growable byte buffer that encoders append to.  A
 * struct mom_rd reads a byte range; every read is bounds-checked and a
 * failed read sets a sticky error and returns zero/NULL, so a decoder can
 * read a whole structure and check rd.err once at the end without ever
 * touching memory outside the range it was given.
 *
 * Encoding: integers are unsigned LEB128 varints (at most 10 bytes; a
 * varint that does not fit 64 bits is an error), byte strings are a varint
 * length followed by the bytes.
 */
#ifndef MOM_BUF_H
#define MOM_BUF_H

#include <stddef.h>
#include <stdint.h>

struct mom_buf {
	uint8_t *data;
	size_t   len;
	size_t   cap;
	int      err; /* MOM_ENOMEM after a failed growth; appends then no-op */
};

void mom_buf_init(struct mom_buf *);
void mom_buf_fini(struct mom_buf *);
void mom_buf_reset(struct mom_buf *);          /* len = 0, keeps memory */
int  mom_buf_reserve(struct mom_buf *, size_t more);
void mom_buf_put(struct mom_buf *, const void *, size_t);
void mom_buf_put_u8(struct mom_buf *, uint8_t);
void mom_buf_put_varint(struct mom_buf *, uint64_t);
void mom_buf_put_bytes(struct mom_buf *, const void *, size_t); /* len + data */
void mom_buf_put_str(struct mom_buf *, const char *);           /* NULL = "" */
/* Detaches the data: the caller owns the returned pointer (free()). */
uint8_t *mom_buf_steal(struct mom_buf *, size_t *len);

/* Number of bytes mom_buf_put_varint would write for v. */
size_t mom_varint_len(uint64_t v);

struct mom_rd {
	const uint8_t *p;
	size_t         len;
	size_t         off;
	int            err; /* MOM_EPROTO once any read failed */
};

void           mom_rd_init(struct mom_rd *, const void *, size_t);
uint8_t        mom_rd_u8(struct mom_rd *);
uint64_t       mom_rd_varint(struct mom_rd *);
/* Varint that must be <= max; larger values set err. */
uint64_t       mom_rd_varint_max(struct mom_rd *, uint64_t max);
/* Returns a pointer into the range (borrowed), its length in *n. */
const uint8_t *mom_rd_bytes(struct mom_rd *, size_t *n);
/* Raw n bytes without a length prefix. */
const uint8_t *mom_rd_raw(struct mom_rd *, size_t n);
size_t         mom_rd_left(const struct mom_rd *);

#endif

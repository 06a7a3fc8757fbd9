/*
 * wire_fuzz.c: libFuzzer target for everything that decodes bytes a peer
 * sent: frame headers, publish batches, fetch requests, fetch replies
 * (deliveries), header blocks and mom-pub's JSON lines envelopes.
 *
 * The input is one frame as it arrives from nng.  The op and the reply bit
 * choose the body decoder; the body is then also run through the header
 * block validator and iterator and the envelope parser, so that every input
 * exercises the decoders that take arbitrary bytes.  Sanitizers catch reads
 * out of bounds and leaks; the checks here catch decoders that accept what
 * they promise to refuse.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "format.h"
#include "mom.h"
#include "names.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Touches every byte of a slice so that a bad pointer or length shows. */
static volatile uint8_t sink;

static void
touch(struct mom_slice s)
{
	size_t i;

	for (i = 0; i < s.n; i++)
		sink ^= s.p[i];
}

static void
fuzz_headers(const uint8_t *p, size_t n)
{
	struct mom_hdr_iter it;
	struct mom_slice    k, v;
	int                 valid = mom_hdr_validate(p, n) == 0;
	size_t              pairs = 0;

	mom_hdr_iter_init(&it, p, n);
	while (mom_hdr_next(&it, &k, &v)) {
		touch(k);
		touch(v);
		/* A valid block holds only valid keys and values. */
		if (valid && (!mom_hdr_key_valid((const char *)k.p, k.n) ||
		    memchr(v.p, '\n', v.n) != NULL || memchr(v.p, '\r', v.n) != NULL ||
		    memchr(v.p, '\0', v.n) != NULL))
			abort();
		pairs++;
	}
	if (valid && n > 0 && (it.rd.err || it.left != 0 || pairs == 0))
		abort();
	(void)mom_hdr_get(p, n, "content-type", &v);
}

static void
fuzz_publish(struct mom_rd *r, size_t max_payload)
{
	struct mom_pub_batch b;
	struct mom_pub_msg   m;
	uint64_t             i;

	if (mom_pub_decode_begin(r, &b) != 0)
		return;
	if (b.count == 0 || b.count > MOM_BATCH_MAX)
		abort();
	for (i = 0; i < b.count; i++) {
		if (mom_pub_decode_msg(r, &b, &m, max_payload) != 0)
			return;
		/* What the decoder accepts, the broker stores without checking. */
		if ((m.kind != MOM_KIND_QUEUE && m.kind != MOM_KIND_TOPIC) ||
		    !mom_name_valid((const char *)m.name.p, m.name.n) ||
		    m.name.n > MOM_NAME_MAX || m.id.n > MOM_ID_MAX ||
		    m.payload.n > max_payload ||
		    mom_hdr_validate(m.headers.p, m.headers.n) != 0)
			abort();
		touch(m.name);
		touch(m.id);
		touch(m.payload);
		fuzz_headers(m.headers.p, m.headers.n);
	}
}

static void
fuzz_fetch(struct mom_rd *r)
{
	struct mom_fetch f;
	uint64_t         i;

	if (mom_fetch_decode(r, &f) != 0)
		return;
	if (f.consumer == 0)
		abort();
	touch(f.name);
	touch(f.durable);
	/* The decoder vouched for the lists: walking them must not fail. */
	for (i = 0; i < f.nacks; i++)
		(void)mom_rd_varint(&f.ack_rd);
	for (i = 0; i < f.nnacks; i++) {
		(void)mom_rd_varint(&f.nack_rd);
		(void)mom_rd_varint(&f.nack_rd);
	}
	if (f.ack_rd.err || f.nack_rd.err)
		abort();
}

static void
fuzz_deliveries(struct mom_rd *r)
{
	struct mom_delivery d;
	uint64_t            count, i;

	(void)mom_rd_varint(r); /* ready */
	count = mom_rd_varint(r);
	for (i = 0; i < count && r->err == 0; i++) {
		if (mom_delivery_decode(r, &d) != 0)
			return;
		touch(d.name);
		touch(d.id);
		touch(d.payload);
		fuzz_headers(d.headers.p, d.headers.n);
	}
}

static void
fuzz_envelope(const uint8_t *p, size_t n)
{
	struct mom_envelope e;
	char                err[128];

	if (mom_envelope_parse((const char *)p, n, &e, err, sizeof(err)) == 0) {
		if (e.kind != 0 && (e.name == NULL || !mom_name_ok(e.name)))
			abort();
		if (e.headers.len > 0 && mom_hdr_validate(e.headers.data, e.headers.len) != 0)
			abort();
	}
	mom_envelope_fini(&e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mom_rd    r, body;
	struct mom_frame f;
	size_t           n;
	const uint8_t   *s;

	mom_rd_init(&r, data, size);
	if (mom_frame_decode(&r, &f) != 0) {
		/* Not a frame: still bytes a peer or a file could hold. */
		fuzz_headers(data, size);
		fuzz_envelope(data, size);
		return 0;
	}
	body = r;
	if (f.reply && f.status != 0) {
		s = mom_rd_bytes(&r, &n);
		if (s != NULL)
			sink ^= n ? s[n - 1] : 0;
	} else if (f.op == MOM_OP_PUBLISH && !f.reply) {
		/* The last byte picks a small payload limit now and then. */
		fuzz_publish(&r, size > 0 && (data[size - 1] & 1) ? 16 : MOM_PAYLOAD_DEFAULT);
	} else if (f.op == MOM_OP_PUBLISH) {
		(void)mom_rd_varint(&r);
		(void)mom_rd_varint(&r);
	} else if (f.op == MOM_OP_FETCH && !f.reply) {
		fuzz_fetch(&r);
	} else if (f.op == MOM_OP_FETCH) {
		fuzz_deliveries(&r);
	} else if (f.op == MOM_OP_ADMIN) {
		s = mom_rd_bytes(&r, &n);
		if (s != NULL)
			fuzz_envelope(s, n);
	} else if (f.op == MOM_OP_PING && f.reply) {
		s = mom_rd_bytes(&r, &n);
		(void)s;
		(void)mom_rd_varint(&r);
		(void)mom_rd_varint(&r);
	}
	/* Whatever the op, the body as a header block and as an envelope. */
	fuzz_headers(body.p + body.off, body.len - body.off);
	fuzz_envelope(body.p + body.off, body.len - body.off);
	return 0;
}

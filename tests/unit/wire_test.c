/*
 * wire_test.c: the data-plane protocol: frames, publish batches, fetch
 * requests, deliveries and header blocks, both ways, and what the decoders
 * refuse.  Truncation tests copy each prefix into its own allocation so that
 * valgrind or ASan sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "mom.h"
#include "wire.h"

static struct mom_slice
S(const char *s)
{
	struct mom_slice sl = { (const uint8_t *)s, strlen(s) };

	return sl;
}

static int
slice_eq(struct mom_slice a, const void *p, size_t n)
{
	return a.n == n && (n == 0 || memcmp(a.p, p, n) == 0);
}

/* Frames. */

Test(frame, request_and_reply_headers_round_trip)
{
	struct mom_buf   b;
	struct mom_rd    r;
	struct mom_frame f;

	mom_buf_init(&b);
	mom_frame_encode(&b, MOM_OP_PUBLISH, false, 0);
	mom_frame_encode(&b, MOM_OP_FETCH, true, MOM_EFULL);
	cr_assert_eq(b.len, 2 * MOM_WIRE_HDRLEN);
	cr_assert_eq(b.data[0], 'M');
	cr_assert_eq(b.data[1], MOM_WIRE_VERSION);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_frame_decode(&r, &f), 0);
	cr_assert_eq(f.op, MOM_OP_PUBLISH);
	cr_assert_not(f.reply);
	cr_assert_eq(f.status, 0);
	cr_assert_eq(mom_frame_decode(&r, &f), 0);
	cr_assert_eq(f.op, MOM_OP_FETCH);
	cr_assert(f.reply);
	cr_assert_eq(f.status, MOM_EFULL);
	cr_assert_eq(mom_rd_left(&r), 0);
	mom_buf_fini(&b);
}

Test(frame, wrong_magic_is_not_our_protocol)
{
	const uint8_t p[] = { 'X', MOM_WIRE_VERSION, MOM_OP_PING, 0 };
	struct mom_rd    r;
	struct mom_frame f;

	mom_rd_init(&r, p, sizeof(p));
	cr_assert_eq(mom_frame_decode(&r, &f), MOM_EPROTO);
}

Test(frame, wrong_version_is_not_our_protocol)
{
	const uint8_t p[] = { 'M', 2, MOM_OP_PING, 0 };
	const uint8_t z[] = { 'M', 0, MOM_OP_PING, 0 };
	struct mom_rd    r;
	struct mom_frame f;

	mom_rd_init(&r, p, sizeof(p));
	cr_assert_eq(mom_frame_decode(&r, &f), MOM_EPROTO);
	mom_rd_init(&r, z, sizeof(z));
	cr_assert_eq(mom_frame_decode(&r, &f), MOM_EPROTO);
}

Test(frame, frame_shorter_than_the_header_is_refused)
{
	const uint8_t p[] = { 'M', MOM_WIRE_VERSION, MOM_OP_PING };
	struct mom_rd    r;
	struct mom_frame f;
	size_t           n;

	for (n = 0; n <= sizeof(p); n++) {
		uint8_t *cp = malloc(n ? n : 1);

		memcpy(cp, p, n);
		mom_rd_init(&r, cp, n);
		cr_assert_eq(mom_frame_decode(&r, &f), MOM_EPROTO, "%zu bytes accepted", n);
		free(cp);
	}
}

Test(frame, error_reply_carries_status_and_message)
{
	struct mom_buf   b;
	struct mom_rd    r;
	struct mom_frame f;
	const uint8_t   *p;
	size_t           n;

	mom_buf_init(&b);
	mom_wire_error(&b, MOM_OP_PUBLISH, MOM_ENOENT, "no such queue 'x'");
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_frame_decode(&r, &f), 0);
	cr_assert(f.reply);
	cr_assert_eq(f.op, MOM_OP_PUBLISH);
	cr_assert_eq(f.status, MOM_ENOENT);
	p = mom_rd_bytes(&r, &n);
	cr_assert_eq(n, strlen("no such queue 'x'"));
	cr_assert_eq(memcmp(p, "no such queue 'x'", n), 0);
	cr_assert_eq(mom_rd_left(&r), 0);

	/* Without a message, the standard text for the code. */
	mom_buf_reset(&b);
	mom_wire_error(&b, MOM_OP_FETCH, MOM_EFULL, NULL);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_frame_decode(&r, &f), 0);
	p = mom_rd_bytes(&r, &n);
	cr_assert_eq(n, strlen(mom_strerror(MOM_EFULL)));
	cr_assert_eq(memcmp(p, mom_strerror(MOM_EFULL), n), 0);
	mom_buf_fini(&b);
}

/* Header blocks. */

static void
build_hdr(struct mom_buf *b, const char *const *lines, size_t n)
{
	mom_buf_init(b);
	cr_assert_eq(mom_hdr_build(b, lines, n), 0);
}

Test(headers, build_from_key_value_lines_and_iterate_in_order)
{
	const char *lines[] = { "Content-Type: text/plain", "X-Trace:   abc def  ",
		"Empty:", "under_score:x" };
	struct mom_buf      b;
	struct mom_hdr_iter it;
	struct mom_slice    k, v;

	build_hdr(&b, lines, 4);
	cr_assert_eq(mom_hdr_validate(b.data, b.len), 0);
	mom_hdr_iter_init(&it, b.data, b.len);
	cr_assert_eq(mom_hdr_next(&it, &k, &v), 1);
	cr_assert(slice_eq(k, "Content-Type", 12));
	cr_assert(slice_eq(v, "text/plain", 10));
	cr_assert_eq(mom_hdr_next(&it, &k, &v), 1);
	cr_assert(slice_eq(k, "X-Trace", 7));
	cr_assert(slice_eq(v, "abc def", 7), "value is trimmed at both ends only");
	cr_assert_eq(mom_hdr_next(&it, &k, &v), 1);
	cr_assert(slice_eq(k, "Empty", 5));
	cr_assert_eq(v.n, 0);
	cr_assert_eq(mom_hdr_next(&it, &k, &v), 1);
	cr_assert(slice_eq(k, "under_score", 11));
	cr_assert(slice_eq(v, "x", 1));
	cr_assert_eq(mom_hdr_next(&it, &k, &v), 0);
	mom_buf_fini(&b);
}

Test(headers, no_lines_build_an_empty_block_which_is_valid)
{
	struct mom_buf b;

	mom_buf_init(&b);
	cr_assert_eq(mom_hdr_build(&b, NULL, 0), 0);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(mom_hdr_validate(NULL, 0), 0);
	mom_buf_fini(&b);
}

Test(headers, lookup_is_case_insensitive)
{
	const char *lines[] = { "Content-Type: text/plain", "X-Id: 42" };
	struct mom_buf   b;
	struct mom_slice v;

	build_hdr(&b, lines, 2);
	cr_assert_eq(mom_hdr_get(b.data, b.len, "content-type", &v), 1);
	cr_assert(slice_eq(v, "text/plain", 10));
	cr_assert_eq(mom_hdr_get(b.data, b.len, "CONTENT-TYPE", &v), 1);
	cr_assert_eq(mom_hdr_get(b.data, b.len, "x-id", &v), 1);
	cr_assert(slice_eq(v, "42", 2));
	cr_assert_eq(mom_hdr_get(b.data, b.len, "X-I", &v), 0, "a prefix is not a match");
	cr_assert_eq(mom_hdr_get(b.data, b.len, "X-Idx", &v), 0);
	cr_assert_eq(mom_hdr_get(b.data, b.len, "Missing", &v), 0);
	cr_assert_eq(mom_hdr_get(NULL, 0, "X-Id", &v), 0);
	mom_buf_fini(&b);
}

Test(headers, build_rejects_bad_lines)
{
	const char *bad[] = {
		"NoColon",
		": empty key",
		"Bad Key: v",
		"Ke/y: v",
		"K\xc3\xa9y: v",
		"K: a\rb",
		"K: a\nb",
		"01234567890123456789012345678901234567890123456789012345678901234: too long",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mom_buf b;
		const char    *one[2] = { "Good: yes", bad[i] };

		mom_buf_init(&b);
		cr_assert_eq(mom_hdr_build(&b, one, 2), MOM_EINVAL, "accepted \"%s\"", bad[i]);
		mom_buf_fini(&b);
	}
}

Test(headers, key_of_64_bytes_is_valid_65_is_not)
{
	char k[66];

	memset(k, 'k', sizeof(k));
	cr_assert(mom_hdr_key_valid(k, 64));
	cr_assert_not(mom_hdr_key_valid(k, 65));
	cr_assert_not(mom_hdr_key_valid(k, 0));
	cr_assert(mom_hdr_key_valid("a-_Z9", 5));
	cr_assert_not(mom_hdr_key_valid("a.b", 3));
	cr_assert_not(mom_hdr_key_valid("a\0b", 3));
}

/* A raw block of n pairs; a NULL value pointer means "same as key". */
static void
raw_block(struct mom_buf *b, uint64_t count, const char *k, size_t kn, const char *v, size_t vn)
{
	mom_buf_init(b);
	mom_buf_put_varint(b, count);
	mom_buf_put_bytes(b, k, kn);
	mom_buf_put_bytes(b, v, vn);
}

Test(headers, validate_rejects_cr_lf_nul_in_values)
{
	const char *vals[] = { "a\rb", "a\nb", "a\0b", "\r", "\n", "" };
	size_t      lens[] = { 3, 3, 3, 1, 1, 1 };
	size_t      i;

	for (i = 0; i < 6; i++) {
		struct mom_buf b;

		raw_block(&b, 1, "Key", 3, vals[i], lens[i]);
		cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA, "value %zu accepted", i);
		mom_buf_fini(&b);
	}
	/* Control: a plain value passes. */
	{
		struct mom_buf b;

		raw_block(&b, 1, "Key", 3, "a\tb c", 5);
		cr_assert_eq(mom_hdr_validate(b.data, b.len), 0);
		mom_buf_fini(&b);
	}
}

Test(headers, validate_rejects_bad_keys)
{
	const char *keys[] = { "", "a b", "a:b", "a\nb", "a\0b" };
	size_t      lens[] = { 0, 3, 3, 3, 3 };
	size_t      i;

	for (i = 0; i < 5; i++) {
		struct mom_buf b;

		raw_block(&b, 1, keys[i], lens[i], "v", 1);
		cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA, "key %zu accepted", i);
		mom_buf_fini(&b);
	}
}

Test(headers, validate_rejects_wrong_counts_and_trailing_bytes)
{
	struct mom_buf b;

	raw_block(&b, 0, "K", 1, "v", 1);
	cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA, "count 0 with data");
	mom_buf_fini(&b);

	raw_block(&b, 2, "K", 1, "v", 1);
	cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA, "count says 2, has 1");
	mom_buf_fini(&b);

	raw_block(&b, 1, "K", 1, "v", 1);
	mom_buf_put_u8(&b, 0);
	cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA, "trailing byte");
	mom_buf_fini(&b);

	raw_block(&b, UINT64_MAX, "K", 1, "v", 1);
	cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA, "absurd count");
	mom_buf_fini(&b);
}

Test(headers, validate_rejects_blocks_over_the_limit)
{
	struct mom_buf b;
	char          *v = malloc(MOM_HEADERS_MAX);

	memset(v, 'v', MOM_HEADERS_MAX);
	raw_block(&b, 1, "K", 1, v, MOM_HEADERS_MAX);
	cr_assert_gt(b.len, MOM_HEADERS_MAX);
	cr_assert_eq(mom_hdr_validate(b.data, b.len), MOM_EBADDATA);
	mom_buf_fini(&b);
	free(v);
}

/* Publish. */

struct pubfix {
	struct mom_pub_batch batch;
	struct mom_pub_msg   msgs[6];
	size_t               n;
	struct mom_buf       hdr;
	uint8_t              big[1000];
};

static void
pubfix_init(struct pubfix *px)
{
	const char *lines[] = { "Content-Type: application/json", "X-Trace: t1" };

	memset(px, 0, sizeof(*px));
	build_hdr(&px->hdr, lines, 2);
	memset(px->big, 'z', sizeof(px->big));
	px->batch.producer = 0x1234567890ULL;
	px->batch.first_seq = 1000;
	px->batch.kind = MOM_KIND_QUEUE;
	px->batch.name = S("orders");
	/* 0: plain, to the batch target. */
	px->msgs[0].payload = S("hello");
	/* 1: to a topic instead. */
	px->msgs[1].kind = MOM_KIND_TOPIC;
	px->msgs[1].name = S("events.eu.new");
	px->msgs[1].payload = S("to a topic");
	/* 2: id, ttl, delay, headers. */
	px->msgs[2].kind = MOM_KIND_QUEUE;
	px->msgs[2].name = S("orders");
	px->msgs[2].id = S("order-42");
	px->msgs[2].ttl_ms = 30000;
	px->msgs[2].delay_ms = UINT64_MAX;
	px->msgs[2].headers.p = px->hdr.data;
	px->msgs[2].headers.n = px->hdr.len;
	px->msgs[2].payload = S("{\"n\":42}");
	/* 3: empty payload. */
	px->msgs[3].payload.p = (const uint8_t *)"";
	px->msgs[3].payload.n = 0;
	/* 4: another queue, a larger payload with NULs. */
	px->msgs[4].kind = MOM_KIND_QUEUE;
	px->msgs[4].name = S("audit");
	px->msgs[4].payload.p = px->big;
	px->msgs[4].payload.n = sizeof(px->big);
	/* 5: only a ttl. */
	px->msgs[5].ttl_ms = 1;
	px->msgs[5].payload.p = (const uint8_t *)"\0\1\2";
	px->msgs[5].payload.n = 3;
	px->n = 6;
	px->batch.count = px->n;
}

static void
pubfix_fini(struct pubfix *px)
{
	mom_buf_fini(&px->hdr);
}

static void
pubfix_encode(struct pubfix *px, struct mom_buf *b)
{
	size_t i;

	for (i = 0; i < px->n; i++)
		mom_pub_encode_msg(b, &px->batch, &px->msgs[i]);
}

/* Encodes a whole batch with the count written up front. */
static void
encode_batch(struct pubfix *px, struct mom_buf *b)
{
	mom_buf_init(b);
	mom_pub_encode_begin(b, &px->batch);
	pubfix_encode(px, b);
	cr_assert_eq(b->err, 0);
}

Test(publish, batch_round_trips_with_every_per_message_field)
{
	struct pubfix        px;
	struct mom_buf       b;
	struct mom_rd        r;
	struct mom_pub_batch got;
	struct mom_pub_msg   m;
	size_t               i;

	pubfix_init(&px);
	encode_batch(&px, &b);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), 0);
	cr_assert_eq(got.producer, px.batch.producer);
	cr_assert_eq(got.first_seq, px.batch.first_seq);
	cr_assert_eq(got.kind, MOM_KIND_QUEUE);
	cr_assert(slice_eq(got.name, "orders", 6));
	cr_assert_eq(got.count, px.n);
	for (i = 0; i < px.n; i++) {
		const struct mom_pub_msg *w = &px.msgs[i];

		cr_assert_eq(mom_pub_decode_msg(&r, &got, &m, MOM_PAYLOAD_DEFAULT), 0, "msg %zu", i);
		if (w->name.n) {
			cr_assert_eq(m.kind, w->kind, "msg %zu kind", i);
			cr_assert(slice_eq(m.name, w->name.p, w->name.n), "msg %zu target", i);
		} else {
			cr_assert_eq(m.kind, MOM_KIND_QUEUE, "msg %zu inherits the kind", i);
			cr_assert(slice_eq(m.name, "orders", 6), "msg %zu inherits the target", i);
		}
		cr_assert(slice_eq(m.id, w->id.p, w->id.n), "msg %zu id", i);
		cr_assert_eq(m.ttl_ms, w->ttl_ms, "msg %zu ttl", i);
		cr_assert_eq(m.delay_ms, w->delay_ms, "msg %zu delay", i);
		cr_assert(slice_eq(m.headers, w->headers.p, w->headers.n), "msg %zu headers", i);
		cr_assert(slice_eq(m.payload, w->payload.p, w->payload.n), "msg %zu payload", i);
	}
	cr_assert_eq(mom_rd_left(&r), 0, "the batch is consumed exactly");
	mom_buf_fini(&b);
	pubfix_fini(&px);
}

Test(publish, message_naming_the_batch_target_does_not_repeat_it)
{
	struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 1 };
	struct mom_pub_msg   same, plain;
	struct mom_buf       a, b;

	memset(&same, 0, sizeof(same));
	memset(&plain, 0, sizeof(plain));
	same.kind = MOM_KIND_QUEUE;
	same.name = S("orders");
	same.payload = plain.payload = S("x");
	mom_buf_init(&a);
	mom_buf_init(&b);
	mom_pub_encode_msg(&a, &batch, &same);
	mom_pub_encode_msg(&b, &batch, &plain);
	cr_assert_eq(a.len, b.len);
	cr_assert_eq(memcmp(a.data, b.data, a.len), 0);
	/* Same name, other kind: that is another target. */
	same.kind = MOM_KIND_TOPIC;
	mom_buf_reset(&a);
	mom_pub_encode_msg(&a, &batch, &same);
	cr_assert_gt(a.len, b.len);
	mom_buf_fini(&a);
	mom_buf_fini(&b);
}

Test(publish, count_is_patched_after_the_batch_is_filled)
{
	struct pubfix        px;
	struct mom_buf       b;
	struct mom_rd        r;
	struct mom_frame     f;
	struct mom_pub_batch got;
	struct mom_pub_msg   m;
	size_t               off, before, i;

	pubfix_init(&px);
	mom_buf_init(&b);
	/* Behind a frame header, as a client sends it. */
	mom_frame_encode(&b, MOM_OP_PUBLISH, false, 0);
	px.batch.count = 0;
	mom_pub_encode_begin(&b, &px.batch);
	off = mom_pub_count_offset(&b, MOM_WIRE_HDRLEN);
	cr_assert_eq(off + 5, b.len, "the count is the last 5 bytes of the batch head");
	pubfix_encode(&px, &b);
	before = b.len;
	mom_pub_encode_count(&b, off, px.n);
	cr_assert_eq(b.len, before, "patching does not change the length");

	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_frame_decode(&r, &f), 0);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), 0);
	cr_assert_eq(got.count, px.n);
	for (i = 0; i < got.count; i++)
		cr_assert_eq(mom_pub_decode_msg(&r, &got, &m, MOM_PAYLOAD_DEFAULT), 0);
	cr_assert_eq(mom_rd_left(&r), 0);

	/* Patched to the largest batch, then one more. */
	mom_pub_encode_count(&b, off, MOM_BATCH_MAX);
	mom_rd_init(&r, b.data + MOM_WIRE_HDRLEN, b.len - MOM_WIRE_HDRLEN);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), 0);
	cr_assert_eq(got.count, MOM_BATCH_MAX);
	mom_pub_encode_count(&b, off, MOM_BATCH_MAX + 1);
	mom_rd_init(&r, b.data + MOM_WIRE_HDRLEN, b.len - MOM_WIRE_HDRLEN);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), MOM_EPROTO);
	/* An offset past the end is ignored, not written. */
	mom_pub_encode_count(&b, b.len - 2, 1);
	cr_assert_eq(b.len, before);
	mom_buf_fini(&b);
	pubfix_fini(&px);
}

/* Encodes one message after a one-message batch head and decodes it. */
static int
decode_one(const struct mom_pub_batch *batch, const struct mom_pub_msg *pm, size_t max_payload)
{
	struct mom_buf       b;
	struct mom_rd        r;
	struct mom_pub_batch got;
	struct mom_pub_msg   m;
	int                  rv;

	mom_buf_init(&b);
	mom_pub_encode_begin(&b, batch);
	mom_pub_encode_msg(&b, batch, pm);
	mom_rd_init(&r, b.data, b.len);
	rv = mom_pub_decode_begin(&r, &got);
	if (rv == 0)
		rv = mom_pub_decode_msg(&r, &got, &m, max_payload);
	mom_buf_fini(&b);
	return rv;
}

Test(publish, bad_batch_target_names_are_refused)
{
	const char *bad[] = { "has space", "a..b", "orders.*", "orders.>", ".x" };
	size_t      i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S(bad[i]), 1 };
		struct mom_pub_msg   m;

		memset(&m, 0, sizeof(m));
		m.payload = S("x");
		cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL, "'%s' accepted", bad[i]);
	}
}

Test(publish, bad_per_message_target_is_refused)
{
	struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 1 };
	struct mom_pub_msg   m;

	memset(&m, 0, sizeof(m));
	m.payload = S("x");
	m.kind = MOM_KIND_TOPIC;
	m.name = S("bad name");
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	m.name = S("good");
	m.kind = 7;
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL, "unknown kind");
	m.kind = MOM_KIND_TOPIC;
	cr_assert_eq(decode_one(&batch, &m, 100), 0);
}

Test(publish, unknown_batch_kind_is_refused)
{
	struct mom_pub_batch batch = { 0, 0, 9, S("orders"), 1 };
	struct mom_pub_msg   m;

	memset(&m, 0, sizeof(m));
	m.payload = S("x");
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
}

Test(publish, message_without_any_target_is_refused)
{
	struct mom_pub_batch batch = { 0, 0, 0, { (const uint8_t *)"", 0 }, 1 };
	struct mom_pub_msg   m;

	memset(&m, 0, sizeof(m));
	m.payload = S("x");
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	/* An empty default target is fine when the message names one. */
	m.kind = MOM_KIND_QUEUE;
	m.name = S("q");
	cr_assert_eq(decode_one(&batch, &m, 100), 0);
}

Test(publish, ids_with_spaces_or_control_bytes_or_over_256_bytes_are_refused)
{
	struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 1 };
	struct mom_pub_msg   m;
	char                 id[300];

	memset(&m, 0, sizeof(m));
	m.payload = S("x");
	m.id = S("has space");
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	m.id = S("tab\there");
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	m.id.p = (const uint8_t *)"a\0b";
	m.id.n = 3;
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	m.id = S("caf\xc3\xa9");
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	memset(id, 'i', sizeof(id));
	m.id.p = (const uint8_t *)id;
	m.id.n = MOM_ID_MAX;
	cr_assert_eq(decode_one(&batch, &m, 100), 0, "256 bytes is allowed");
	m.id.n = MOM_ID_MAX + 1;
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EINVAL);
	m.id = S("!~all-printable_ASCII.ok");
	cr_assert_eq(decode_one(&batch, &m, 100), 0);
}

Test(publish, flags_with_unknown_bits_are_refused)
{
	uint64_t flags[] = { 0x20, 0x40, 0x80, 0x100, UINT64_C(1) << 63, MOM_PF_ALL + 1 };
	size_t   i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 1 }, got;
		struct mom_pub_msg   m;
		struct mom_buf       b;
		struct mom_rd        r;

		mom_buf_init(&b);
		mom_pub_encode_begin(&b, &batch);
		mom_buf_put_varint(&b, flags[i]);
		mom_buf_put_str(&b, "payload");
		mom_rd_init(&r, b.data, b.len);
		cr_assert_eq(mom_pub_decode_begin(&r, &got), 0);
		cr_assert_eq(mom_pub_decode_msg(&r, &got, &m, 100), MOM_EPROTO,
		    "flags %#llx accepted", (unsigned long long)flags[i]);
		mom_buf_fini(&b);
	}
}

Test(publish, header_flag_with_a_bad_or_empty_block_is_refused)
{
	struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 1 }, got;
	struct mom_pub_msg   m;
	struct mom_buf       b, h;
	struct mom_rd        r;

	raw_block(&h, 1, "K", 1, "a\nb", 3);
	memset(&m, 0, sizeof(m));
	m.payload = S("x");
	m.headers.p = h.data;
	m.headers.n = h.len;
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_EBADDATA);
	mom_buf_fini(&h);

	/* The flag set with a zero-length block. */
	mom_buf_init(&b);
	mom_pub_encode_begin(&b, &batch);
	mom_buf_put_varint(&b, MOM_PF_HEADERS);
	mom_buf_put_bytes(&b, "", 0);
	mom_buf_put_str(&b, "x");
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), 0);
	cr_assert_eq(mom_pub_decode_msg(&r, &got, &m, 100), MOM_EBADDATA);
	mom_buf_fini(&b);
}

Test(publish, payload_over_max_payload_is_too_big)
{
	struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 1 };
	struct mom_pub_msg   m;
	uint8_t              p[101];

	memset(&m, 0, sizeof(m));
	memset(p, 'p', sizeof(p));
	m.payload.p = p;
	m.payload.n = 100;
	cr_assert_eq(decode_one(&batch, &m, 100), 0, "exactly max_payload fits");
	m.payload.n = 101;
	cr_assert_eq(decode_one(&batch, &m, 100), MOM_ETOOBIG);
	m.payload.n = 1;
	cr_assert_eq(decode_one(&batch, &m, 0), MOM_ETOOBIG);
}

Test(publish, zero_count_and_wrapping_sequence_are_refused)
{
	struct mom_pub_batch batch = { 0, 0, MOM_KIND_QUEUE, S("orders"), 0 }, got;
	struct mom_buf       b;
	struct mom_rd        r;

	mom_buf_init(&b);
	mom_pub_encode_begin(&b, &batch);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), MOM_EPROTO, "empty batch");
	mom_buf_fini(&b);

	batch.count = 2;
	batch.producer = 5;
	batch.first_seq = UINT64_MAX - 1;
	mom_buf_init(&b);
	mom_pub_encode_begin(&b, &batch);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_pub_decode_begin(&r, &got), MOM_EPROTO, "sequence wraps");
	mom_buf_fini(&b);
}

/*
 * Runs the whole decode of a publish body held in exactly n bytes; returns
 * the first error, or 0 when every message decoded.
 */
static int
decode_batch_copy(const uint8_t *p, size_t n)
{
	uint8_t             *cp = malloc(n ? n : 1);
	struct mom_rd        r;
	struct mom_pub_batch got;
	struct mom_pub_msg   m;
	uint64_t             i;
	int                  rv;

	cr_assert_not_null(cp);
	memcpy(cp, p, n);
	mom_rd_init(&r, cp, n);
	rv = mom_pub_decode_begin(&r, &got);
	for (i = 0; rv == 0 && i < got.count; i++)
		rv = mom_pub_decode_msg(&r, &got, &m, MOM_PAYLOAD_DEFAULT);
	free(cp);
	return rv;
}

Test(publish, batch_truncated_at_every_byte_is_an_error)
{
	struct pubfix  px;
	struct mom_buf b;
	size_t         cut;

	pubfix_init(&px);
	encode_batch(&px, &b);
	cr_assert_eq(decode_batch_copy(b.data, b.len), 0);
	for (cut = 0; cut < b.len; cut++)
		cr_assert_neq(decode_batch_copy(b.data, cut), 0, "cut at %zu of %zu decoded",
		    cut, b.len);
	mom_buf_fini(&b);
	pubfix_fini(&px);
}

/* Fetch. */

static const uint64_t acks[] = { 1, 300, UINT64_MAX };
static const uint64_t nack_r[] = { 5, 1u << 20 };
static const uint64_t nack_d[] = { (1000 << 1) | 1, 0 };

static void
fetch_fixture(struct mom_fetch *f)
{
	memset(f, 0, sizeof(*f));
	f->consumer = 0xdeadbeefULL;
	f->kind = MOM_KIND_TOPIC;
	f->name = S("orders.>");
	f->durable = S("billing");
	f->from = MOM_FROM_TIME;
	f->from_time_ms = 1700000000000ULL;
	f->max_msgs = 100;
	f->max_bytes = 1 << 20;
	f->wait_ms = 5000;
	f->flags = MOM_FF_NOACK | MOM_FF_CLOSE;
	f->nacks = 3;
	f->acks = acks;
	f->nnacks = 2;
	f->nack_receipts = nack_r;
	f->nack_delays = nack_d;
}

Test(fetch, request_round_trips_with_ack_and_nack_lists)
{
	struct mom_fetch in, out;
	struct mom_buf   b;
	struct mom_rd    r;
	uint64_t         i;

	fetch_fixture(&in);
	mom_buf_init(&b);
	mom_fetch_encode(&b, &in);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_fetch_decode(&r, &out), 0);
	cr_assert_eq(out.consumer, in.consumer);
	cr_assert_eq(out.kind, MOM_KIND_TOPIC);
	cr_assert(slice_eq(out.name, "orders.>", 8));
	cr_assert(slice_eq(out.durable, "billing", 7));
	cr_assert_eq(out.from, MOM_FROM_TIME);
	cr_assert_eq(out.from_time_ms, in.from_time_ms);
	cr_assert_eq(out.max_msgs, 100);
	cr_assert_eq(out.max_bytes, 1 << 20);
	cr_assert_eq(out.wait_ms, 5000);
	cr_assert_eq(out.flags, MOM_FF_NOACK | MOM_FF_CLOSE);
	cr_assert_eq(out.nacks, 3);
	cr_assert_eq(out.nnacks, 2);
	for (i = 0; i < out.nacks; i++)
		cr_assert_eq(mom_rd_varint(&out.ack_rd), acks[i], "ack %llu", (unsigned long long)i);
	cr_assert_eq(out.ack_rd.err, 0);
	for (i = 0; i < out.nnacks; i++) {
		cr_assert_eq(mom_rd_varint(&out.nack_rd), nack_r[i]);
		cr_assert_eq(mom_rd_varint(&out.nack_rd), nack_d[i]);
	}
	cr_assert_eq(out.nack_rd.err, 0);
	cr_assert_eq(mom_rd_left(&out.nack_rd), 0);
	mom_buf_fini(&b);
}

/* The head is the fields before the receipts, read without touching them. */
Test(fetch, head_reads_up_to_the_flags_and_stops_before_the_receipts)
{
	struct mom_fetch in, full, head;
	struct mom_buf   b;
	struct mom_rd    r;

	fetch_fixture(&in);
	mom_buf_init(&b);
	mom_fetch_encode(&b, &in);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_fetch_decode(&r, &full), 0);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_fetch_decode_head(&r, &head), 0);
	cr_assert_eq(head.consumer, full.consumer);
	cr_assert_eq(head.kind, full.kind);
	cr_assert(slice_eq(head.name, "orders.>", 8));
	cr_assert(slice_eq(head.durable, "billing", 7));
	cr_assert_eq(head.from_time_ms, full.from_time_ms);
	cr_assert_eq(head.max_msgs, full.max_msgs);
	cr_assert_eq(head.max_bytes, full.max_bytes);
	cr_assert_eq(head.wait_ms, 5000);
	cr_assert_eq(head.flags, full.flags);
	cr_assert_eq(head.nacks, 0, "the lists are not read");
	/* Positioned at the ack count: 3 receipts follow. */
	cr_assert_eq(mom_rd_varint(&r), 3);
	/* Cut inside the head: an error. */
	mom_rd_init(&r, b.data, 3);
	cr_assert_eq(mom_fetch_decode_head(&r, &head), MOM_EPROTO);
	mom_buf_fini(&b);
}

Test(fetch, queue_fetch_without_lists_round_trips)
{
	struct mom_fetch in, out;
	struct mom_buf   b;
	struct mom_rd    r;

	memset(&in, 0, sizeof(in));
	in.consumer = 1;
	in.kind = MOM_KIND_QUEUE;
	in.name = S("jobs");
	in.max_msgs = 1;
	mom_buf_init(&b);
	mom_fetch_encode(&b, &in);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_fetch_decode(&r, &out), 0);
	cr_assert(slice_eq(out.name, "jobs", 4));
	cr_assert_eq(out.durable.n, 0);
	cr_assert_eq(out.nacks, 0);
	cr_assert_eq(out.nnacks, 0);
	mom_buf_fini(&b);
}

static int
fetch_decode_of(const struct mom_fetch *in, const void *extra, size_t extra_n)
{
	struct mom_fetch out;
	struct mom_buf   b;
	struct mom_rd    r;
	int              rv;

	mom_buf_init(&b);
	mom_fetch_encode(&b, in);
	mom_buf_put(&b, extra, extra_n);
	mom_rd_init(&r, b.data, b.len);
	rv = mom_fetch_decode(&r, &out);
	mom_buf_fini(&b);
	return rv;
}

Test(fetch, consumer_zero_is_refused)
{
	struct mom_fetch f;

	fetch_fixture(&f);
	f.consumer = 0;
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EPROTO);
}

Test(fetch, trailing_bytes_are_refused)
{
	struct mom_fetch f;

	fetch_fixture(&f);
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), 0);
	cr_assert_eq(fetch_decode_of(&f, "\0", 1), MOM_EPROTO);
}

Test(fetch, bad_kind_from_and_flags_are_refused)
{
	struct mom_fetch f;

	fetch_fixture(&f);
	f.kind = 3;
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EPROTO);
	fetch_fixture(&f);
	f.from = MOM_FROM_TIME + 1;
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EPROTO);
	fetch_fixture(&f);
	f.flags = 0x04;
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EPROTO);
}

Test(fetch, bad_names_are_refused)
{
	struct mom_fetch f;

	fetch_fixture(&f);
	f.kind = MOM_KIND_QUEUE; /* a queue name may not be a pattern */
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EINVAL);
	fetch_fixture(&f);
	f.name = S("orders.>.x");
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EINVAL);
	fetch_fixture(&f);
	f.name = S("");
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EINVAL);
	fetch_fixture(&f);
	f.durable = S("bad name");
	cr_assert_eq(fetch_decode_of(&f, NULL, 0), MOM_EINVAL);
}

Test(fetch, ack_count_larger_than_the_request_is_refused)
{
	struct mom_fetch f;
	struct mom_buf   b;
	struct mom_rd    r;

	fetch_fixture(&f);
	f.nacks = 0;
	f.nnacks = 0;
	mom_buf_init(&b);
	mom_fetch_encode(&b, &f);
	/* The last two bytes are nacks = 0, nnacks = 0: claim a million acks, send three. */
	b.len -= 2;
	mom_buf_put_varint(&b, 1000000);
	mom_buf_put_varint(&b, 1);
	mom_buf_put_varint(&b, 2);
	mom_buf_put_varint(&b, 3);
	mom_buf_put_varint(&b, 0);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_fetch_decode(&r, &f), MOM_EPROTO);
	/* The same with the honest count decodes. */
	b.len -= 4 + mom_varint_len(1000000);
	mom_buf_put_varint(&b, 3);
	mom_buf_put_varint(&b, 1);
	mom_buf_put_varint(&b, 2);
	mom_buf_put_varint(&b, 3);
	mom_buf_put_varint(&b, 0);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_fetch_decode(&r, &f), 0);
	cr_assert_eq(f.nacks, 3);
	mom_buf_fini(&b);
}

Test(fetch, request_truncated_at_every_byte_is_an_error)
{
	struct mom_fetch in, out;
	struct mom_buf   b;
	struct mom_rd    r;
	size_t           cut;

	fetch_fixture(&in);
	mom_buf_init(&b);
	mom_fetch_encode(&b, &in);
	for (cut = 0; cut < b.len; cut++) {
		uint8_t *cp = malloc(cut ? cut : 1);

		memcpy(cp, b.data, cut);
		mom_rd_init(&r, cp, cut);
		cr_assert_neq(mom_fetch_decode(&r, &out), 0, "cut at %zu of %zu decoded", cut, b.len);
		free(cp);
	}
	mom_buf_fini(&b);
}

/* Deliveries. */

static void
delivery_hdr(struct mom_buf *hdr)
{
	const char *lines[] = { "X-Trace: abc" };

	build_hdr(hdr, lines, 1);
}

/* hdr is a block from delivery_hdr, borrowed. */
static void
delivery_fixture(struct mom_delivery *d, const struct mom_buf *hdr)
{
	memset(d, 0, sizeof(*d));
	d->receipt = 77;
	d->seq = 123456789;
	d->time_ms = 1700000000123ULL;
	d->deliveries = 3;
	d->kind = MOM_KIND_TOPIC;
	d->name = S("orders.eu");
	d->id = S("id-1");
	d->headers.p = hdr->data;
	d->headers.n = hdr->len;
	d->payload.p = (const uint8_t *)"pay\0load";
	d->payload.n = 8;
}

Test(delivery, several_deliveries_round_trip_in_one_reply)
{
	struct mom_delivery in[3], out;
	struct mom_buf      b, hdr;
	struct mom_rd       r;
	size_t              i;

	delivery_hdr(&hdr);
	delivery_fixture(&in[0], &hdr);
	in[1] = in[0];
	in[1].receipt = 78;
	in[1].kind = MOM_KIND_QUEUE;
	in[1].name = S("jobs");
	in[1].id.n = 0;
	in[1].headers.n = 0;
	in[1].payload.n = 0;
	in[2] = in[0];
	in[2].receipt = UINT64_MAX;
	in[2].deliveries = 1;
	mom_buf_init(&b);
	mom_buf_put_varint(&b, 5);  /* ready */
	mom_buf_put_varint(&b, 3);  /* count */
	for (i = 0; i < 3; i++)
		mom_delivery_encode(&b, &in[i]);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_rd_varint(&r), 5);
	cr_assert_eq(mom_rd_varint(&r), 3);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(mom_delivery_decode(&r, &out), 0, "delivery %zu", i);
		cr_assert_eq(out.receipt, in[i].receipt);
		cr_assert_eq(out.seq, in[i].seq);
		cr_assert_eq(out.time_ms, in[i].time_ms);
		cr_assert_eq(out.deliveries, in[i].deliveries);
		cr_assert_eq(out.kind, in[i].kind);
		cr_assert(slice_eq(out.name, in[i].name.p, in[i].name.n));
		cr_assert(slice_eq(out.id, in[i].id.p, in[i].id.n));
		cr_assert(slice_eq(out.headers, in[i].headers.p, in[i].headers.n));
		cr_assert(slice_eq(out.payload, in[i].payload.p, in[i].payload.n));
	}
	cr_assert_eq(mom_rd_left(&r), 0);
	mom_buf_fini(&b);
	mom_buf_fini(&hdr);
}

static int
delivery_decode_of(const struct mom_delivery *d)
{
	struct mom_delivery out;
	struct mom_buf      b;
	struct mom_rd       r;
	int                 rv;

	mom_buf_init(&b);
	mom_delivery_encode(&b, d);
	mom_rd_init(&r, b.data, b.len);
	rv = mom_delivery_decode(&r, &out);
	mom_buf_fini(&b);
	return rv;
}

Test(delivery, bad_kind_name_id_or_headers_are_refused)
{
	struct mom_delivery d;
	struct mom_buf      hdr, bad;

	delivery_hdr(&hdr);
	delivery_fixture(&d, &hdr);
	cr_assert_eq(delivery_decode_of(&d), 0);
	d.kind = 0;
	cr_assert_eq(delivery_decode_of(&d), MOM_EPROTO);
	delivery_fixture(&d, &hdr);
	d.name = S("no spaces");
	cr_assert_eq(delivery_decode_of(&d), MOM_EPROTO);
	d.name = S("");
	cr_assert_eq(delivery_decode_of(&d), MOM_EPROTO);
	delivery_fixture(&d, &hdr);
	d.id = S("sp ace");
	cr_assert_eq(delivery_decode_of(&d), MOM_EPROTO);
	raw_block(&bad, 1, "K", 1, "a\rb", 3);
	d.id = S("ok");
	d.headers.p = bad.data;
	d.headers.n = bad.len;
	cr_assert_eq(delivery_decode_of(&d), MOM_EPROTO);
	mom_buf_fini(&bad);
	mom_buf_fini(&hdr);
}

Test(delivery, delivery_truncated_at_every_byte_is_an_error)
{
	struct mom_delivery d, out;
	struct mom_buf      b, hdr;
	struct mom_rd       r;
	size_t              cut;

	delivery_hdr(&hdr);
	delivery_fixture(&d, &hdr);
	mom_buf_init(&b);
	mom_delivery_encode(&b, &d);
	for (cut = 0; cut < b.len; cut++) {
		uint8_t *cp = malloc(cut ? cut : 1);

		memcpy(cp, b.data, cut);
		mom_rd_init(&r, cp, cut);
		cr_assert_neq(mom_delivery_decode(&r, &out), 0, "cut at %zu of %zu decoded",
		    cut, b.len);
		free(cp);
	}
	mom_buf_fini(&b);
	mom_buf_fini(&hdr);
}

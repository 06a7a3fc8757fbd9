/*
 * format_test.c: -F templates, JSON lines envelopes, base64 and UTF-8.
 *
 * The round-trip tests hold the promise that `mom-sub --jsonl | mom-pub
 * --jsonl` copies any payload byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "format.h"
#include "mom.h"
#include "wire.h"

/* 2026-11-23T10:00:00.123Z */
#define T0 1795428000123ULL

static struct mom_delivery
delivery(const char *name, const void *payload, size_t n)
{
	struct mom_delivery d;

	memset(&d, 0, sizeof(d));
	d.kind = MOM_KIND_QUEUE;
	d.name.p = (const uint8_t *)name;
	d.name.n = strlen(name);
	d.payload.p = payload;
	d.payload.n = n;
	d.seq = 42;
	d.deliveries = 1;
	d.time_ms = T0;
	d.receipt = 9;
	return d;
}

/* Renders d with fmt into out (reset first). */
static void
render(const char *fmt, const struct mom_delivery *d, struct mom_buf *out)
{
	struct mom_fmt *f = NULL;
	char err[128];

	cr_assert_eq(mom_fmt_compile(fmt, &f, err, sizeof(err)), 0, "%s: %s", fmt, err);
	cr_assert_not_null(f);
	mom_buf_reset(out);
	mom_fmt_render(f, d, out);
	mom_fmt_free(f);
}

static void
assert_buf(const struct mom_buf *b, const void *want, size_t n)
{
	cr_assert_eq(b->len, n, "length %zu, want %zu", b->len, n);
	cr_assert(n == 0 || memcmp(b->data, want, n) == 0, "got \"%.*s\"",
	    (int)b->len, (const char *)b->data);
}

#define ASSERT_BUF_STR(b, s) assert_buf((b), (s), strlen(s))

/* -F */

Test(fmt, each_directive_renders_its_field)
{
	struct mom_delivery d = delivery("orders.eu", "hello", 5);
	struct mom_buf b;

	mom_buf_init(&b);
	render("%p", &d, &b);
	ASSERT_BUF_STR(&b, "hello");
	render("%t", &d, &b);
	ASSERT_BUF_STR(&b, "orders.eu");
	render("%s", &d, &b);
	ASSERT_BUF_STR(&b, "42");
	render("%d", &d, &b);
	ASSERT_BUF_STR(&b, "1");
	render("%T", &d, &b);
	ASSERT_BUF_STR(&b, "2026-11-23T10:00:00.123Z");
	render("%%", &d, &b);
	ASSERT_BUF_STR(&b, "%");
	render("[%t] #%s x%d %p%%", &d, &b);
	ASSERT_BUF_STR(&b, "[orders.eu] #42 x1 hello%");
	render("", &d, &b);
	cr_assert_eq(b.len, 0);
	mom_buf_fini(&b);
}

Test(fmt, id_is_publisher_id_when_present_else_seq)
{
	struct mom_delivery d = delivery("q", "x", 1);
	struct mom_buf b;

	mom_buf_init(&b);
	render("%i", &d, &b);
	ASSERT_BUF_STR(&b, "42");
	d.seq = UINT64_MAX;
	render("%i %s", &d, &b);
	ASSERT_BUF_STR(&b, "18446744073709551615 18446744073709551615");
	d.id.p = (const uint8_t *)"order-17";
	d.id.n = 8;
	render("%i", &d, &b);
	ASSERT_BUF_STR(&b, "order-17");
	mom_buf_fini(&b);
}

Test(fmt, header_directive_looks_up_case_insensitively)
{
	const char *lines[] = { "Content-Type: text/plain", "X-Trace: abc" };
	struct mom_delivery d = delivery("q", "x", 1);
	struct mom_buf b, h;

	mom_buf_init(&b);
	mom_buf_init(&h);
	cr_assert_eq(mom_hdr_build(&h, lines, 2), 0);
	d.headers.p = h.data;
	d.headers.n = h.len;
	render("%h{Content-Type}|%h{x-trace}|%h{Missing}|", &d, &b);
	ASSERT_BUF_STR(&b, "text/plain|abc||");
	mom_buf_fini(&b);
	mom_buf_fini(&h);
}

Test(fmt, header_directive_is_empty_without_headers)
{
	struct mom_delivery d = delivery("q", "x", 1);
	struct mom_buf b;

	mom_buf_init(&b);
	render("<%h{Key}>", &d, &b);
	ASSERT_BUF_STR(&b, "<>");
	mom_buf_fini(&b);
}

Test(fmt, escapes_emit_their_bytes)
{
	struct mom_delivery d = delivery("q", "p", 1);
	struct mom_buf b;

	mom_buf_init(&b);
	render("%p\\n", &d, &b);
	ASSERT_BUF_STR(&b, "p\n");
	render("a\\tb\\\\c", &d, &b);
	ASSERT_BUF_STR(&b, "a\tb\\c");
	render("%p\\0", &d, &b);
	assert_buf(&b, "p\0", 2);
	render("\\0\\0", &d, &b);
	assert_buf(&b, "\0\0", 2);
	mom_buf_fini(&b);
}

Test(fmt, payload_bytes_are_copied_verbatim)
{
	static const uint8_t p[] = { 'a', 0, '\n', 0xff, 0xc0, '%', '\\', 0 };
	struct mom_delivery d = delivery("q", p, sizeof(p));
	struct mom_buf b;

	mom_buf_init(&b);
	render("%p", &d, &b);
	assert_buf(&b, p, sizeof(p));
	d.payload.n = 0;
	d.payload.p = NULL;
	render("[%p]", &d, &b);
	ASSERT_BUF_STR(&b, "[]");
	mom_buf_fini(&b);
}

Test(fmt, render_appends_to_the_buffer)
{
	struct mom_delivery d = delivery("q", "x", 1);
	struct mom_fmt *f;
	struct mom_buf b;

	mom_buf_init(&b);
	cr_assert_eq(mom_fmt_compile("%p\\n", &f, NULL, 0), 0);
	mom_fmt_render(f, &d, &b);
	mom_fmt_render(f, &d, &b);
	ASSERT_BUF_STR(&b, "x\nx\n");
	mom_fmt_free(f);
	mom_buf_fini(&b);
}

static void
fmt_bad(const char *fmt, const char *reason_part)
{
	struct mom_fmt *f = (struct mom_fmt *)1;
	char err[128] = "";

	cr_assert_eq(mom_fmt_compile(fmt, &f, err, sizeof(err)), MOM_EINVAL,
	    "\"%s\" accepted", fmt);
	cr_assert_null(f);
	cr_assert(strstr(err, reason_part) != NULL, "\"%s\": reason \"%s\"", fmt, err);
}

Test(fmt, bad_formats_are_refused_with_a_reason)
{
	fmt_bad("%x", "unknown directive %x");
	fmt_bad("ok %p %q", "unknown directive %q");
	fmt_bad("%", "lone %");
	fmt_bad("%p%", "lone %");
	fmt_bad("\\", "lone backslash");
	fmt_bad("%p\\", "lone backslash");
	fmt_bad("\\x", "unknown escape \\x");
	fmt_bad("%h{Key", "unterminated %h{");
	fmt_bad("%h{", "unterminated %h{");
	fmt_bad("%hKey", "%h must be followed by {Key}");
	fmt_bad("%h", "%h must be followed by {Key}");
	fmt_bad("%h{}", "bad header name");
	fmt_bad("%h{a b}", "bad header name");
}

Test(fmt, bad_format_without_err_buffer_still_fails)
{
	struct mom_fmt *f;

	cr_assert_eq(mom_fmt_compile("%z", &f, NULL, 0), MOM_EINVAL);
	cr_assert_null(f);
}

Test(fmt, free_of_null_is_a_noop)
{
	mom_fmt_free(NULL);
}

/* UTF-8 */

static int
u8(const char *s)
{
	return mom_utf8_valid((const uint8_t *)s, strlen(s));
}

Test(utf8, valid_sequences_at_every_boundary_pass)
{
	cr_assert(mom_utf8_valid(NULL, 0));
	cr_assert(u8("plain ascii"));
	cr_assert(mom_utf8_valid((const uint8_t *)"a\0b", 3));
	cr_assert(u8("\x7f"));
	cr_assert(u8("\xc2\x80"));         /* U+0080 */
	cr_assert(u8("\xdf\xbf"));         /* U+07FF */
	cr_assert(u8("\xe0\xa0\x80"));     /* U+0800 */
	cr_assert(u8("\xed\x9f\xbf"));     /* U+D7FF */
	cr_assert(u8("\xee\x80\x80"));     /* U+E000 */
	cr_assert(u8("\xef\xbf\xbf"));     /* U+FFFF */
	cr_assert(u8("\xf0\x90\x80\x80")); /* U+10000 */
	cr_assert(u8("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
	cr_assert(u8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
}

Test(utf8, overlongs_are_refused)
{
	cr_assert_not(u8("\xc0\x80"));
	cr_assert_not(u8("\xc1\xbf"));
	cr_assert_not(u8("\xe0\x80\x80"));
	cr_assert_not(u8("\xe0\x9f\xbf"));
	cr_assert_not(u8("\xf0\x80\x80\x80"));
	cr_assert_not(u8("\xf0\x8f\xbf\xbf"));
}

Test(utf8, surrogates_are_refused)
{
	cr_assert_not(u8("\xed\xa0\x80")); /* U+D800 */
	cr_assert_not(u8("\xed\xbf\xbf")); /* U+DFFF */
	cr_assert_not(u8("\xed\xa0\xbd\xed\xb8\x80")); /* CESU-8 pair */
}

Test(utf8, code_points_past_10ffff_are_refused)
{
	cr_assert_not(u8("\xf4\x90\x80\x80"));
	cr_assert_not(u8("\xf5\x80\x80\x80"));
	cr_assert_not(u8("\xf7\xbf\xbf\xbf"));
	cr_assert_not(u8("\xf8\x88\x80\x80\x80"));
	cr_assert_not(u8("\xff"));
	cr_assert_not(u8("\xfe"));
}

Test(utf8, truncated_and_stray_bytes_are_refused)
{
	cr_assert_not(u8("\xc3"));
	cr_assert_not(u8("\xe2\x82"));
	cr_assert_not(u8("\xf0\x9f\x98"));
	cr_assert_not(u8("a\xe2\x82"));
	cr_assert_not(u8("\x80"));
	cr_assert_not(u8("a\xbf" "b"));
	cr_assert_not(u8("\xc3\x28"));
	cr_assert_not(u8("\xe2\x28\xa1"));
	cr_assert_not(u8("\xf0\x9f\x28\x80"));
	/* The length bounds the read even when the next byte would fit. */
	cr_assert_not(mom_utf8_valid((const uint8_t *)"\xc3\xa9", 1));
}

/* JSON strings */

static void
json_is(const void *in, size_t n, const char *want)
{
	struct mom_buf b;

	mom_buf_init(&b);
	mom_json_str(&b, in, n);
	ASSERT_BUF_STR(&b, want);
	mom_buf_fini(&b);
}

Test(json, plain_text_is_quoted)
{
	json_is("", 0, "\"\"");
	json_is(NULL, 0, "\"\"");
	json_is("hello", 5, "\"hello\"");
	json_is("a/b", 3, "\"a/b\"");
}

Test(json, quote_and_backslash_are_escaped)
{
	json_is("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
	json_is("a\\b", 3, "\"a\\\\b\"");
}

Test(json, control_characters_are_escaped)
{
	json_is("\n\t\r\b\f", 5, "\"\\n\\t\\r\\b\\f\"");
	json_is("\0", 1, "\"\\u0000\"");
	json_is("a\0b", 3, "\"a\\u0000b\"");
	json_is("\x01\x1f", 2, "\"\\u0001\\u001f\"");
	json_is("\x7f", 1, "\"\x7f\"");
}

Test(json, valid_utf8_is_left_as_is)
{
	json_is("h\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80", 11,
	    "\"h\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80\"");
}

Test(json, invalid_utf8_becomes_replacement_characters)
{
	json_is("a\xff" "b", 3, "\"a\\ufffdb\"");
	json_is("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	json_is("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");
}

/* base64 */

static void
b64_is(const char *in, const char *want)
{
	struct mom_buf b;

	mom_buf_init(&b);
	mom_b64_encode((const uint8_t *)in, strlen(in), &b);
	ASSERT_BUF_STR(&b, want);
	mom_buf_reset(&b);
	cr_assert_eq(mom_b64_decode(want, strlen(want), &b), 0, "%s", want);
	ASSERT_BUF_STR(&b, in);
	mom_buf_fini(&b);
}

Test(b64, rfc4648_vectors_round_trip)
{
	b64_is("", "");
	b64_is("f", "Zg==");
	b64_is("fo", "Zm8=");
	b64_is("foo", "Zm9v");
	b64_is("foob", "Zm9vYg==");
	b64_is("fooba", "Zm9vYmE=");
	b64_is("foobar", "Zm9vYmFy");
}

Test(b64, all_byte_values_round_trip)
{
	uint8_t in[256];
	struct mom_buf e, d;
	size_t i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	mom_buf_init(&e);
	mom_buf_init(&d);
	mom_b64_encode(in, sizeof(in), &e);
	cr_assert_eq(mom_b64_decode((const char *)e.data, e.len, &d), 0);
	assert_buf(&d, in, sizeof(in));
	cr_assert(memchr(e.data, '+', e.len) != NULL);
	cr_assert(memchr(e.data, '/', e.len) != NULL);
	mom_buf_fini(&e);
	mom_buf_fini(&d);
}

Test(b64, missing_padding_is_accepted)
{
	struct mom_buf b;

	mom_buf_init(&b);
	cr_assert_eq(mom_b64_decode("Zg", 2, &b), 0);
	ASSERT_BUF_STR(&b, "f");
	mom_buf_reset(&b);
	cr_assert_eq(mom_b64_decode("Zm8", 3, &b), 0);
	ASSERT_BUF_STR(&b, "fo");
	mom_buf_fini(&b);
}

Test(b64, junk_is_refused)
{
	const char *bad[] = { "Z", "Zm9vY", "Zg=", "Z===", "Zm9v====", "Zg==Zg==",
	    "Z=g=", "Zm 9v", "Zm9v\n", "Zm-_", "Zm9v!", "=", "==", "Zm8==" };
	struct mom_buf b;
	size_t i;

	mom_buf_init(&b);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mom_buf_reset(&b);
		cr_assert_eq(mom_b64_decode(bad[i], strlen(bad[i]), &b), MOM_EBADDATA,
		    "\"%s\" accepted", bad[i]);
	}
	mom_buf_fini(&b);
}

/* JSON lines rendering */

static char *
jsonl(const struct mom_delivery *d)
{
	struct mom_buf b;
	size_t n;
	char *s;

	mom_buf_init(&b);
	mom_jsonl_render(d, &b);
	mom_buf_put_u8(&b, 0);
	s = (char *)mom_buf_steal(&b, &n);
	return s;
}

Test(jsonl, queue_message_renders_all_fields_in_order)
{
	struct mom_delivery d = delivery("orders", "hi", 2);
	char *s = jsonl(&d);

	cr_assert_str_eq(s, "{\"queue\":\"orders\",\"payload\":\"hi\",\"seq\":42,"
	    "\"delivery\":1,\"time\":\"2026-11-23T10:00:00.123Z\"}\n");
	free(s);
}

Test(jsonl, topic_message_says_topic)
{
	struct mom_delivery d = delivery("news.eu", "", 0);
	char *s;

	d.kind = MOM_KIND_TOPIC;
	d.deliveries = 3;
	s = jsonl(&d);
	cr_assert_str_eq(s, "{\"topic\":\"news.eu\",\"payload\":\"\",\"seq\":42,"
	    "\"delivery\":3,\"time\":\"2026-11-23T10:00:00.123Z\"}\n");
	free(s);
}

Test(jsonl, id_and_headers_appear_only_when_present)
{
	const char *lines[] = { "A: 1", "Content-Type: text/\"x\"" };
	struct mom_delivery d = delivery("q", "x", 1);
	struct mom_buf h;
	char *s;

	mom_buf_init(&h);
	cr_assert_eq(mom_hdr_build(&h, lines, 2), 0);
	d.id.p = (const uint8_t *)"id-1";
	d.id.n = 4;
	d.headers.p = h.data;
	d.headers.n = h.len;
	s = jsonl(&d);
	cr_assert_str_eq(s, "{\"queue\":\"q\",\"payload\":\"x\",\"id\":\"id-1\","
	    "\"headers\":{\"A\":\"1\",\"Content-Type\":\"text/\\\"x\\\"\"},"
	    "\"seq\":42,\"delivery\":1,\"time\":\"2026-11-23T10:00:00.123Z\"}\n");
	free(s);
	mom_buf_fini(&h);
}

Test(jsonl, utf8_payload_with_nul_and_newline_stays_on_one_line)
{
	struct mom_delivery d = delivery("q", "a\0b\nc\"", 6);
	char *s = jsonl(&d);

	cr_assert(strstr(s, "\"payload\":\"a\\u0000b\\nc\\\"\"") != NULL, "%s", s);
	cr_assert_eq(strchr(s, '\n'), s + strlen(s) - 1);
	free(s);
}

Test(jsonl, invalid_utf8_payload_goes_to_payload_b64)
{
	struct mom_delivery d = delivery("q", "\xff\xfe", 2);
	char *s = jsonl(&d);

	cr_assert(strstr(s, "\"payload_b64\":\"//4=\"") != NULL, "%s", s);
	cr_assert(strstr(s, "\"payload\":") == NULL, "%s", s);
	free(s);
}

/* Envelope parsing */

static void
parse_ok(const char *line, struct mom_envelope *e)
{
	char err[128] = "";

	cr_assert_eq(mom_envelope_parse(line, strlen(line), e, err, sizeof(err)), 0,
	    "%s: %s", line, err);
}

static void
parse_bad(const char *line, const char *reason_part)
{
	struct mom_envelope e;
	char err[160] = "";

	cr_assert_eq(mom_envelope_parse(line, strlen(line), &e, err, sizeof(err)),
	    MOM_EBADDATA, "%s accepted", line);
	cr_assert(strstr(err, reason_part) != NULL, "%s: reason \"%s\"", line, err);
	/* A failed parse leaves nothing to free, and fini is still safe. */
	cr_assert_null(e.name);
	cr_assert_null(e.payload);
	mom_envelope_fini(&e);
}

Test(envelope, queue_and_payload_parse)
{
	struct mom_envelope e;

	parse_ok("{\"queue\":\"orders.eu\",\"payload\":\"hello\"}", &e);
	cr_assert_eq(e.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(e.name, "orders.eu");
	cr_assert_eq(e.payload_len, 5);
	cr_assert(memcmp(e.payload, "hello", 5) == 0);
	cr_assert_null(e.id);
	cr_assert_eq(e.headers.len, 0);
	cr_assert_eq(e.ttl_ms, 0);
	cr_assert_eq(e.delay_ms, 0);
	mom_envelope_fini(&e);
}

Test(envelope, topic_sets_kind_topic)
{
	struct mom_envelope e;

	parse_ok("{\"topic\":\"news\",\"payload\":\"x\"}", &e);
	cr_assert_eq(e.kind, MOM_KIND_TOPIC);
	cr_assert_str_eq(e.name, "news");
	mom_envelope_fini(&e);
}

Test(envelope, no_target_means_kind_zero)
{
	struct mom_envelope e;

	parse_ok("{\"payload\":\"x\"}", &e);
	cr_assert_eq(e.kind, 0);
	cr_assert_null(e.name);
	mom_envelope_fini(&e);
}

Test(envelope, no_payload_means_empty_payload)
{
	struct mom_envelope e;

	parse_ok("{\"queue\":\"q\"}", &e);
	cr_assert_eq(e.payload_len, 0);
	mom_envelope_fini(&e);
	parse_ok("{}", &e);
	cr_assert_eq(e.payload_len, 0);
	mom_envelope_fini(&e);
}

Test(envelope, escaped_nul_in_payload_survives)
{
	struct mom_envelope e;

	parse_ok("{\"payload\":\"a\\u0000b\\n\"}", &e);
	cr_assert_eq(e.payload_len, 4);
	cr_assert(memcmp(e.payload, "a\0b\n", 4) == 0);
	mom_envelope_fini(&e);
}

Test(envelope, payload_b64_is_decoded)
{
	struct mom_envelope e;

	parse_ok("{\"queue\":\"q\",\"payload_b64\":\"AP8K\"}", &e);
	cr_assert_eq(e.payload_len, 3);
	cr_assert(memcmp(e.payload, "\x00\xff\n", 3) == 0);
	mom_envelope_fini(&e);
}

Test(envelope, id_headers_ttl_delay_parse)
{
	struct mom_envelope e;
	struct mom_slice v;

	parse_ok("{\"queue\":\"q\",\"payload\":\"x\",\"id\":\"order-1\","
	    "\"headers\":{\"Content-Type\":\"text/plain\",\"X\":\"\"},"
	    "\"ttl\":\"1h30m\",\"delay\":2500}", &e);
	cr_assert_str_eq(e.id, "order-1");
	cr_assert_eq(mom_hdr_validate(e.headers.data, e.headers.len), 0);
	cr_assert(mom_hdr_get(e.headers.data, e.headers.len, "content-type", &v));
	cr_assert_eq(v.n, 10);
	cr_assert(memcmp(v.p, "text/plain", 10) == 0);
	cr_assert(mom_hdr_get(e.headers.data, e.headers.len, "X", &v));
	cr_assert_eq(v.n, 0);
	cr_assert_eq(e.ttl_ms, 5400000);
	cr_assert_eq(e.delay_ms, 2500);
	mom_envelope_fini(&e);
}

Test(envelope, empty_headers_object_means_no_headers)
{
	struct mom_envelope e;

	parse_ok("{\"headers\":{}}", &e);
	cr_assert_eq(e.headers.len, 0);
	mom_envelope_fini(&e);
}

Test(envelope, unknown_members_are_ignored)
{
	struct mom_envelope e;

	parse_ok("{\"queue\":\"q\",\"payload\":\"x\",\"seq\":42,\"delivery\":1,"
	    "\"time\":\"2026-11-23T10:00:00.123Z\",\"extra\":[1,{\"a\":null}]}", &e);
	cr_assert_eq(e.payload_len, 1);
	mom_envelope_fini(&e);
}

Test(envelope, surrounding_whitespace_and_cr_are_accepted)
{
	struct mom_envelope e;

	parse_ok("  {\"payload\":\"x\"} \r", &e);
	cr_assert_eq(e.payload_len, 1);
	mom_envelope_fini(&e);
}

Test(envelope, only_the_given_length_is_read)
{
	struct mom_envelope e;
	const char *line = "{\"payload\":\"x\"}GARBAGE";
	char err[64];

	cr_assert_eq(mom_envelope_parse(line, 15, &e, err, sizeof(err)), 0);
	mom_envelope_fini(&e);
	cr_assert_eq(mom_envelope_parse(line, strlen(line), &e, err, sizeof(err)),
	    MOM_EBADDATA);
}

Test(envelope, not_json_or_not_object_is_refused)
{
	parse_bad("", "not valid JSON");
	parse_bad("hello", "not valid JSON");
	parse_bad("{\"payload\":", "not valid JSON");
	parse_bad("{\"payload\":\"x\"} {}", "not valid JSON");
	parse_bad("\"just a string\"", "not valid JSON");
	parse_bad("[\"payload\"]", "line is not a JSON object");
}

Test(envelope, duplicate_members_are_refused)
{
	parse_bad("{\"payload\":\"a\",\"payload\":\"b\"}", "not valid JSON");
}

Test(envelope, both_payload_forms_are_refused)
{
	parse_bad("{\"payload\":\"a\",\"payload_b64\":\"YQ==\"}",
	    "both payload and payload_b64");
}

Test(envelope, bad_base64_is_refused)
{
	parse_bad("{\"payload_b64\":\"!!!!\"}", "bad base64 in payload_b64");
	parse_bad("{\"payload_b64\":\"Z\"}", "bad base64 in payload_b64");
	parse_bad("{\"payload_b64\":5}", "bad base64 in payload_b64");
}

Test(envelope, payload_must_be_a_string)
{
	parse_bad("{\"payload\":5}", "payload is not a string");
	parse_bad("{\"payload\":null}", "payload is not a string");
}

Test(envelope, queue_and_topic_together_are_refused)
{
	parse_bad("{\"queue\":\"a\",\"topic\":\"b\"}", "both queue and topic");
}

Test(envelope, bad_names_are_refused)
{
	parse_bad("{\"queue\":\"a..b\"}", "bad queue name");
	parse_bad("{\"queue\":\"\"}", "bad queue name");
	parse_bad("{\"topic\":\"a.*\"}", "bad topic name");
	parse_bad("{\"topic\":\"a\\u0000b\"}", "bad topic name");
	parse_bad("{\"queue\":1}", "queue is not a string");
}

Test(envelope, name_of_200_bytes_passes_201_does_not)
{
	struct mom_envelope e;
	char line[300];

	snprintf(line, sizeof(line), "{\"queue\":\"%0200d\"}", 0);
	parse_ok(line, &e);
	cr_assert_eq(strlen(e.name), 200);
	mom_envelope_fini(&e);
	snprintf(line, sizeof(line), "{\"queue\":\"%0201d\"}", 0);
	parse_bad(line, "bad queue name");
}

Test(envelope, bad_ids_are_refused)
{
	struct mom_envelope e;
	char line[400];

	parse_bad("{\"id\":\"\"}", "id must be");
	parse_bad("{\"id\":\"a b\"}", "id must be");
	parse_bad("{\"id\":\"a\\u0000\"}", "id must be");
	parse_bad("{\"id\":7}", "id must be");
	snprintf(line, sizeof(line), "{\"id\":\"%0256d\"}", 0);
	parse_ok(line, &e);
	cr_assert_eq(strlen(e.id), 256);
	mom_envelope_fini(&e);
	snprintf(line, sizeof(line), "{\"id\":\"%0257d\"}", 0);
	parse_bad(line, "id must be");
}

Test(envelope, bad_headers_are_refused)
{
	parse_bad("{\"headers\":[]}", "headers is not an object");
	parse_bad("{\"headers\":{\"a b\":\"x\"}}", "bad header name");
	parse_bad("{\"headers\":{\"\":\"x\"}}", "bad header name");
	/* jansson refuses it before we see it; either way it is refused. */
	parse_bad("{\"headers\":{\"a\\u0000b\":\"x\"}}", "NUL byte in object key");
	parse_bad("{\"headers\":{\"K\":1}}", "header K is not a string");
	parse_bad("{\"headers\":{\"K\":\"a\\nb\"}}", "CR, LF or NUL");
	parse_bad("{\"headers\":{\"K\":\"a\\rb\"}}", "CR, LF or NUL");
	parse_bad("{\"headers\":{\"K\":\"a\\u0000b\"}}", "CR, LF or NUL");
}

Test(envelope, header_key_of_64_bytes_passes_65_does_not)
{
	struct mom_envelope e;
	char line[200];

	snprintf(line, sizeof(line), "{\"headers\":{\"%064d\":\"v\"}}", 0);
	parse_ok(line, &e);
	mom_envelope_fini(&e);
	snprintf(line, sizeof(line), "{\"headers\":{\"%065d\":\"v\"}}", 0);
	parse_bad(line, "bad header name");
}

Test(envelope, bad_ttl_and_delay_are_refused)
{
	parse_bad("{\"ttl\":\"5x\"}", "bad ttl");
	parse_bad("{\"ttl\":-1}", "bad ttl");
	parse_bad("{\"ttl\":1.5}", "bad ttl");
	parse_bad("{\"ttl\":true}", "bad ttl");
	parse_bad("{\"delay\":\"-1s\"}", "bad delay");
	parse_bad("{\"delay\":\"1s\\u0000\"}", "bad delay");
}

Test(envelope, err_buffer_is_optional)
{
	struct mom_envelope e;

	cr_assert_eq(mom_envelope_parse("nope", 4, &e, NULL, 0), MOM_EBADDATA);
	cr_assert_eq(mom_envelope_parse("{}", 2, &e, NULL, 0), 0);
	mom_envelope_fini(&e);
}

Test(envelope, fini_twice_is_safe)
{
	struct mom_envelope e;

	parse_ok("{\"queue\":\"q\",\"id\":\"i\",\"payload\":\"p\",\"headers\":{\"K\":\"v\"}}", &e);
	mom_envelope_fini(&e);
	mom_envelope_fini(&e);
	mom_envelope_fini(NULL);
}

/* Round trips: render then parse gives back the same bytes. */

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Appends one random valid UTF-8 code point (no surrogates). */
static size_t
put_cp(uint8_t *p)
{
	uint32_t c;

	switch (rnd() % 4) {
	case 0:
		p[0] = (uint8_t)(rnd() % 0x80);
		return 1;
	case 1:
		c = 0x80 + (uint32_t)(rnd() % (0x800 - 0x80));
		p[0] = (uint8_t)(0xc0 | c >> 6);
		p[1] = (uint8_t)(0x80 | (c & 0x3f));
		return 2;
	case 2:
		do
			c = 0x800 + (uint32_t)(rnd() % (0x10000 - 0x800));
		while (c >= 0xd800 && c <= 0xdfff);
		p[0] = (uint8_t)(0xe0 | c >> 12);
		p[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		p[2] = (uint8_t)(0x80 | (c & 0x3f));
		return 3;
	default:
		c = 0x10000 + (uint32_t)(rnd() % (0x110000 - 0x10000));
		p[0] = (uint8_t)(0xf0 | c >> 18);
		p[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
		p[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
		p[3] = (uint8_t)(0x80 | (c & 0x3f));
		return 4;
	}
}

/* Renders d, parses the line back and checks every carried field. */
static void
round_trip(const struct mom_delivery *d)
{
	struct mom_envelope e;
	struct mom_buf b;
	char err[128] = "";

	mom_buf_init(&b);
	mom_jsonl_render(d, &b);
	cr_assert(b.len > 0 && b.data[b.len - 1] == '\n');
	/* One line: the only newline is the last byte. */
	cr_assert_null(memchr(b.data, '\n', b.len - 1));
	cr_assert_eq(mom_envelope_parse((const char *)b.data, b.len - 1, &e, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(e.kind, d->kind);
	cr_assert_eq(strlen(e.name), d->name.n);
	cr_assert(memcmp(e.name, d->name.p, d->name.n) == 0);
	cr_assert_eq(e.payload_len, d->payload.n, "payload %zu bytes, got %zu",
	    d->payload.n, e.payload_len);
	cr_assert(d->payload.n == 0 || memcmp(e.payload, d->payload.p, d->payload.n) == 0);
	if (d->id.n > 0) {
		cr_assert_not_null(e.id);
		cr_assert_eq(strlen(e.id), d->id.n);
		cr_assert(memcmp(e.id, d->id.p, d->id.n) == 0);
	} else {
		cr_assert_null(e.id);
	}
	cr_assert_eq(e.headers.len, d->headers.n);
	cr_assert(d->headers.n == 0 || memcmp(e.headers.data, d->headers.p, d->headers.n) == 0);
	mom_envelope_fini(&e);
	mom_buf_fini(&b);
}

Test(round_trip, special_payloads_survive_byte_for_byte)
{
	static const struct {
		const char *p;
		size_t      n;
	} t[] = {
		{ "", 0 }, { "\0", 1 }, { "\0\0\0", 3 }, { "\n", 1 }, { "\r\n", 2 },
		{ "\"\\", 2 }, { "\xff", 1 }, { "a\xc0\x80", 3 }, { "\xed\xa0\x80", 3 },
		{ "\xf4\x90\x80\x80", 4 }, { "\xe2\x82", 2 }, { "\x7f\x1f\x01", 3 },
		{ "\xef\xbb\xbf" "bom", 6 }, { "\xe2\x80\xa8\xe2\x80\xa9", 6 },
		{ "{\"queue\":\"x\"}", 13 }, { "\\u0000", 6 },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct mom_delivery d = delivery("q", t[i].p, t[i].n);

		round_trip(&d);
	}
}

Test(round_trip, random_payloads_survive_byte_for_byte)
{
	uint8_t *p = malloc(4096 + 4);
	int i;

	cr_assert_not_null(p);
	for (i = 0; i < 2000; i++) {
		struct mom_delivery d;
		size_t n = (size_t)(rnd() % 4096), j = 0;

		switch (i % 4) {
		case 0: /* any bytes */
			for (j = 0; j < n; j++)
				p[j] = (uint8_t)rnd();
			break;
		case 1: /* valid UTF-8 */
			while (j < n)
				j += put_cp(p + j);
			n = j;
			break;
		case 2: /* valid UTF-8 spoiled by one bad byte */
			while (j < n)
				j += put_cp(p + j);
			n = j;
			if (n > 0)
				p[rnd() % n] = (uint8_t)(0x80 + rnd() % 0x80);
			break;
		default: /* control characters, NULs, quotes, backslashes */
			for (j = 0; j < n; j++)
				p[j] = (uint8_t)"\0\n\r\t\"\\\x01\x1f" "a"[rnd() % 9];
			break;
		}
		d = delivery(i % 2 ? "orders.eu" : "t", p, n);
		d.kind = i % 3 ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
		round_trip(&d);
	}
	free(p);
}

Test(round_trip, one_mib_payloads_survive_byte_for_byte)
{
	size_t n = 1 << 20, j;
	uint8_t *p = malloc(n + 4);
	struct mom_delivery d;

	cr_assert_not_null(p);
	for (j = 0; j < n; j++)
		p[j] = (uint8_t)rnd();
	d = delivery("big", p, n);
	round_trip(&d);
	j = 0;
	while (j < n - 4)
		j += put_cp(p + j);
	d = delivery("big", p, j);
	round_trip(&d);
	memset(p, 0, n);
	d = delivery("big", p, n);
	round_trip(&d);
	free(p);
}

Test(round_trip, id_and_headers_survive)
{
	const char *lines[] = { "Content-Type: application/json", "X-Q: \"q\" \\ \t",
	    "Utf: h\xc3\xa9" };
	struct mom_delivery d = delivery("orders.eu", "x", 1);
	struct mom_buf h;

	mom_buf_init(&h);
	cr_assert_eq(mom_hdr_build(&h, lines, 3), 0);
	d.id.p = (const uint8_t *)"id-\"1\"\\~";
	d.id.n = 8;
	d.headers.p = h.data;
	d.headers.n = h.len;
	round_trip(&d);
	mom_buf_fini(&h);
}

/*
 * http_fuzz.c: libFuzzer target for the broker's HTTP API (rest.c): what
 * a client sends (a request head, its path and query, its JSON body) and
 * what the core answers (reply frames, read as the answer to every kind of
 * request).
 *
 * An input that starts with 'R' is a reply frame (the rest of the input);
 * any other input is a request: head, then body.  Beyond the sanitizers'
 * findings, the target checks the contract between the two planes: every
 * frame rest_build() makes must pass the decoders the core runs on it
 * (wire.c), so a request the HTTP plane accepts is never one the core
 * calls malformed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "mom.h"
#include "net/rest.h"
#include "wire.h"

#define MAX_PAYLOAD 4096

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_frame(const struct rest_call *call, const struct mom_buf *f)
{
	struct mom_rd    r;
	struct mom_frame fr;

	mom_rd_init(&r, f->data, f->len);
	if (mom_frame_decode(&r, &fr) != 0 || fr.reply || fr.op != call->wire_op)
		abort();
	if (fr.op == MOM_OP_PUBLISH) {
		struct mom_pub_batch b;
		struct mom_pub_msg   m;
		uint64_t             i;

		if (mom_pub_decode_begin(&r, &b) != 0)
			abort();
		for (i = 0; i < b.count; i++)
			if (mom_pub_decode_msg(&r, &b, &m, MAX_PAYLOAD) != 0)
				abort();
		if (mom_rd_left(&r) != 0)
			abort();
	} else if (fr.op == MOM_OP_FETCH) {
		struct mom_fetch fe;

		if (mom_fetch_decode(&r, &fe) != 0)
			abort();
	} else if (fr.op == MOM_OP_ADMIN) {
		const uint8_t *p;
		size_t         n;
		json_t        *o;

		p = mom_rd_bytes(&r, &n);
		if (r.err || (o = json_loadb((const char *)p, n, 0, NULL)) == NULL)
			abort();
		if (!json_is_string(json_object_get(o, "op")))
			abort();
		json_decref(o);
	} else
		abort();
}

static void
fuzz_request(const uint8_t *data, size_t size)
{
	struct rest_head     h;
	struct rest_target   t;
	struct rest_call     call;
	struct rest_response resp;
	struct mom_buf       frame, out;
	const char          *tok;
	size_t               toklen, blen;
	char                 err[512];
	int                  rv, allow;

	rv = rest_parse_head((const char *)data, size, &h);
	if (rv <= 0)
		return;
	if ((size_t)rv != h.len || h.len > size)
		abort();
	(void)rest_bearer(&h, &tok, &toklen);
	if (rest_route(&h, 1795435200000, &t, &allow, err, sizeof(err)) != 0)
		return;
	blen = size - h.len;
	if (h.has_length && h.length < blen)
		blen = (size_t)h.length;
	if (blen > rest_body_limit(&t, &h, MAX_PAYLOAD))
		return;
	mom_buf_init(&frame);
	mom_buf_init(&out);
	rest_response_init(&resp);
	rv = rest_build(&t, &h, data + h.len, blen, MAX_PAYLOAD, 42, &call, &frame, err, sizeof(err));
	if (rv == 0 && call.op != RO_LOCAL) {
		check_frame(&call, &frame);
		/* Pretend the core refused it: every call must render an answer. */
		mom_buf_reset(&out);
		mom_wire_error(&out, call.wire_op, MOM_ENOENT, "no such thing");
		rest_reply(&call, out.data, out.len, &resp, &frame);
		if (resp.again)
			check_frame(&call, &frame);
	} else if (rv != 0) {
		if (rv >= MOM_E_MAX || err[0] == '\0')
			abort();
		rest_error(&resp, rv, err);
	}
	mom_buf_reset(&out);
	rest_render(&out, &resp, h.keep_alive, h.minor == 0, h.method == REST_HEAD);
	rest_call_fini(&call);
	rest_response_fini(&resp);
	mom_buf_fini(&frame);
	mom_buf_fini(&out);
}

static void
fuzz_reply(const uint8_t *data, size_t size)
{
	static const struct {
		int     op;
		uint8_t wire;
		int     sub;
	} calls[] = {
		{ RO_PUBLISH, MOM_OP_PUBLISH, 0 }, { RO_FETCH, MOM_OP_FETCH, 0 },
		{ RO_SETTLE, MOM_OP_FETCH, 0 }, { RO_ADMIN, MOM_OP_ADMIN, 0 },
		{ RO_LIST, MOM_OP_ADMIN, 0 }, { RO_PROBE, MOM_OP_ADMIN, 0 },
		{ RO_PROBE, MOM_OP_ADMIN, 1 }, { RO_CREATE, MOM_OP_ADMIN, 0 },
		{ RO_METRICS, MOM_OP_ADMIN, 0 },
	};
	struct rest_response resp;
	struct rest_target   t;
	struct mom_buf       frame;
	size_t               i;

	mom_buf_init(&frame);
	rest_response_init(&resp);
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		struct rest_call call;

		memset(&call, 0, sizeof(call));
		call.op = calls[i].op;
		call.wire_op = calls[i].wire;
		call.wrap = "queues";
		if (call.op == RO_PROBE) {
			call.next = json_pack("{s:s, s:s}", "op", "queue.create", "name", "q");
			if (calls[i].sub) {
				snprintf(call.pattern, sizeof(call.pattern), "a.>");
				snprintf(call.sub, sizeof(call.sub), "s");
			}
		}
		rest_reply(&call, data, size, &resp, &frame);
		if (resp.status < 200 || resp.status > 599 || resp.ctype == NULL)
			abort();
		if (resp.again)
			check_frame(&call, &frame);
		rest_call_fini(&call);
	}
	memset(&t, 0, sizeof(t));
	t.route = RT_QMSGS;
	snprintf(t.name, sizeof(t.name), "q");
	if (rest_release(&t, data, size, 7, &frame) == 0) {
		struct rest_call call = { .op = RO_SETTLE, .wire_op = MOM_OP_FETCH };

		check_frame(&call, &frame);
	}
	rest_response_fini(&resp);
	mom_buf_fini(&frame);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'R')
		fuzz_reply(data + 1, size - 1);
	else
		fuzz_request(data, size);
	return 0;
}

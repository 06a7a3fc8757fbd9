/*
 * rest_test.c: the HTTP API's pure half (rest.c): request heads, routes,
 * percent-decoding, query parameters, --http addresses, the wire frames
 * requests become and the answers the core's replies become.  Frames
 * built here are decoded with the broker's own decoders (wire.c), so a
 * test fails when the HTTP plane and the core would disagree.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "net/http.h"
#include "mom.h"
#include "net/rest.h"
#include "wire.h"

#define MAXP 1024

static int
parse(const char *s, struct rest_head *h)
{
	return rest_parse_head(s, strlen(s), h);
}

static bool
val_is(const struct rest_hdr *f, const char *v)
{
	return f != NULL && f->vlen == strlen(v) && memcmp(f->value, v, f->vlen) == 0;
}

/* Request heads. */

Test(head, a_simple_get)
{
	struct rest_head h;
	const char      *r = "GET /v1/queues HTTP/1.1\r\nHost: x\r\n\r\n";

	cr_assert_eq(parse(r, &h), (int)strlen(r));
	cr_assert_eq(h.method, REST_GET);
	cr_assert_eq(h.tlen, strlen("/v1/queues"));
	cr_assert_eq(memcmp(h.target, "/v1/queues", h.tlen), 0);
	cr_assert_eq(h.minor, 1);
	cr_assert(h.keep_alive);
	cr_assert_not(h.has_length);
	cr_assert(val_is(rest_header(&h, "HOST"), "x"));
	cr_assert_null(rest_header(&h, "content-type"));
}

Test(head, every_prefix_needs_more_and_the_rest_stays_unread)
{
	const char      *r = "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
	size_t           headlen = strlen(r) - 5, i;
	struct rest_head h;

	for (i = 0; i < headlen; i++) {
		char *p = malloc(i + 1);

		memcpy(p, r, i);
		cr_assert_eq(rest_parse_head(p, i, &h), 0, "prefix %zu", i);
		free(p);
	}
	cr_assert_eq(parse(r, &h), (int)headlen);
	cr_assert(h.has_length);
	cr_assert_eq(h.length, 5);
}

Test(head, bare_lf_lines_and_leading_empty_lines)
{
	struct rest_head h;

	cr_assert_gt(parse("\r\n\nGET / HTTP/1.0\nConnection: keep-alive\n\n", &h), 0);
	cr_assert_eq(h.minor, 0);
	cr_assert(h.keep_alive);
	cr_assert_gt(parse("GET / HTTP/1.0\r\n\r\n", &h), 0);
	cr_assert_not(h.keep_alive, "HTTP/1.0 closes unless told");
	cr_assert_gt(parse("GET / HTTP/1.1\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", &h), 0);
	cr_assert_not(h.keep_alive);
}

Test(head, fields_that_change_how_the_body_is_read)
{
	struct rest_head h;

	cr_assert_gt(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &h), 0);
	cr_assert(h.te);
	cr_assert_gt(parse("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n", &h), 0);
	cr_assert_eq(h.expect, 1);
	cr_assert_gt(parse("POST / HTTP/1.1\r\nExpect: something\r\n\r\n", &h), 0);
	cr_assert_eq(h.expect, 2);
	cr_assert_gt(parse("POST / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n", &h), 0);
	cr_assert_eq(h.length, 7);
}

Test(head, ambiguous_or_malformed_heads_are_400)
{
	static const char *bad[] = {
		"POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 8\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length: 9999999999999999\r\n\r\n",
		"POST / HTTP/1.1\r\nContent-Length : 1\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
		"GET / HTTP/1.1\r\n: empty name\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\001b\r\n\r\n",
		"GET  / HTTP/1.1\r\n\r\n",
		"GET /a b HTTP/1.1\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",
		"GET / FTP/1.1\r\n\r\n",
		"GET /\r\n\r\n",
		"hello\r\n\r\n",
	};
	struct rest_head h;
	size_t           i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(parse(bad[i], &h), -400, "%s", bad[i]);
	cr_assert_eq(parse("GET / HTTP/2.0\r\n\r\n", &h), -505);
	cr_assert_gt(parse("get / HTTP/1.1\r\n\r\n", &h), 0);
	cr_assert_eq(h.method, REST_OTHER, "methods are case-sensitive");
}

Test(head, too_many_fields_or_too_long_is_431)
{
	struct mom_buf   b;
	struct rest_head h;
	int              i;

	mom_buf_init(&b);
	mom_buf_put(&b, "GET / HTTP/1.1\r\n", 16);
	for (i = 0; i <= REST_HDR_MAX; i++) {
		char f[32];

		snprintf(f, sizeof(f), "X-%d: y\r\n", i);
		mom_buf_put(&b, f, strlen(f));
	}
	mom_buf_put(&b, "\r\n", 2);
	cr_assert_eq(rest_parse_head((const char *)b.data, b.len, &h), -431);
	mom_buf_reset(&b);
	mom_buf_put(&b, "GET / HTTP/1.1\r\nX: ", 19);
	for (i = 0; i < REST_HEAD_MAX; i++)
		mom_buf_put_u8(&b, 'a');
	cr_assert_eq(rest_parse_head((const char *)b.data, b.len, &h), -431);
	mom_buf_fini(&b);
}

Test(head, bearer_tokens)
{
	struct rest_head h;
	const char      *tok;
	size_t           n;

	parse("GET / HTTP/1.1\r\nAuthorization: bearer   abc.def.ghi\r\n\r\n", &h);
	cr_assert_eq(rest_bearer(&h, &tok, &n), 0);
	cr_assert_eq(n, 11);
	cr_assert_eq(memcmp(tok, "abc.def.ghi", n), 0);
	parse("GET / HTTP/1.1\r\nAuthorization: Basic eDp5\r\n\r\n", &h);
	cr_assert_eq(rest_bearer(&h, &tok, &n), MOM_EAUTH);
	parse("GET / HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n", &h);
	cr_assert_eq(rest_bearer(&h, &tok, &n), MOM_EAUTH);
	parse("GET / HTTP/1.1\r\n\r\n", &h);
	cr_assert_eq(rest_bearer(&h, &tok, &n), MOM_ENOENT);
}

/* Percent-decoding and routes. */

Test(route, percent_decoding)
{
	char d[16];

	cr_assert_eq(rest_pct_decode("a.%3E", 5, false, d, sizeof(d)), 0);
	cr_assert_str_eq(d, "a.>");
	cr_assert_eq(rest_pct_decode("a+b%2b", 6, true, d, sizeof(d)), 0);
	cr_assert_str_eq(d, "a b+");
	cr_assert_eq(rest_pct_decode("a+b", 3, false, d, sizeof(d)), 0);
	cr_assert_str_eq(d, "a+b");
	cr_assert_eq(rest_pct_decode("%4", 2, false, d, sizeof(d)), -1);
	cr_assert_eq(rest_pct_decode("%zz", 3, false, d, sizeof(d)), -1);
	cr_assert_eq(rest_pct_decode("a%00", 4, false, d, sizeof(d)), -1);
	cr_assert_eq(rest_pct_decode("0123456789abcdef", 16, false, d, sizeof(d)), -1);
}

/* Routes method m (REST_OTHER is sent as PATCH) to target; the reason in err. */
static int
route_err(int m, const char *target, struct rest_target *t, int *allow, char *err, size_t errlen)
{
	struct rest_head h;

	memset(&h, 0, sizeof(h));
	h.method = m;
	h.mname = m == REST_GET ? "GET" : m == REST_HEAD ? "HEAD" : m == REST_PUT ? "PUT" :
	    m == REST_POST ? "POST" : m == REST_DELETE ? "DELETE" : "PATCH";
	h.mlen = strlen(h.mname);
	h.target = target;
	h.tlen = strlen(target);
	return rest_route(&h, 1000000, t, allow, err, errlen);
}

static int
route(int m, const char *target, struct rest_target *t, int *allow)
{
	char err[256];

	return route_err(m, target, t, allow, err, sizeof(err));
}

Test(route, every_route)
{
	static const struct {
		int         m;
		const char *target;
		int         route;
	} tab[] = {
		{ REST_GET, "/healthz", RT_HEALTHZ },
		{ REST_HEAD, "/healthz", RT_HEALTHZ },
		{ REST_GET, "/metrics", RT_METRICS },
		{ REST_GET, "/v1/cluster", RT_CLUSTER },
		{ REST_POST, "/v1/cluster/nodes", RT_CNODES },
		{ REST_DELETE, "/v1/cluster/nodes/7", RT_CNODE },
		{ REST_POST, "/v1/cluster/transfer", RT_CTRANSFER },
		{ REST_GET, "/v1/cluster/digest", RT_CDIGEST },
		{ REST_GET, "/v1/queues", RT_QUEUES },
		{ REST_GET, "/v1/queues/", RT_QUEUES },
		{ REST_PUT, "/v1/queues/jobs", RT_QUEUE },
		{ REST_GET, "/v1/queues/jobs", RT_QUEUE },
		{ REST_DELETE, "/v1/queues/jobs", RT_QUEUE },
		{ REST_POST, "/v1/queues/jobs/purge", RT_QPURGE },
		{ REST_POST, "/v1/queues/jobs/move", RT_QMOVE },
		{ REST_POST, "/v1/queues/jobs/messages", RT_QMSGS },
		{ REST_GET, "/v1/queues/jobs/messages?max=3", RT_QMSGS },
		{ REST_POST, "/v1/queues/jobs/ack", RT_QACK },
		{ REST_POST, "/v1/queues/jobs/nack", RT_QNACK },
		{ REST_GET, "/v1/topics", RT_TOPICS },
		{ REST_PUT, "/v1/topics/orders.eu", RT_TOPIC },
		{ REST_POST, "/v1/topics/orders.eu/messages", RT_TMSGS },
		{ REST_GET, "/v1/subscriptions", RT_ALLSUBS },
		{ REST_GET, "/v1/topics/orders.%2A/subscriptions", RT_SUBS },
		{ REST_PUT, "/v1/topics/orders.%3E/subscriptions/audit", RT_SUB },
		{ REST_GET, "/v1/topics/orders.>/subscriptions/audit/messages", RT_SMSGS },
		{ REST_POST, "/v1/topics/orders.%3E/subscriptions/audit/ack", RT_SACK },
		{ REST_POST, "/v1/topics/orders.%3E/subscriptions/audit/nack", RT_SNACK },
		{ REST_GET, "http://localhost:7421/v1/queues", RT_QUEUES },
		{ REST_GET, "/v1/q%75eues", RT_QUEUES },
	};
	struct rest_target t;
	size_t             i;
	int                allow;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		cr_assert_eq(route(tab[i].m, tab[i].target, &t, &allow), 0, "%s", tab[i].target);
		cr_assert_eq(t.route, tab[i].route, "%s", tab[i].target);
	}
	route(REST_PUT, "/v1/topics/orders.%3E/subscriptions/audit", &t, &allow);
	cr_assert_str_eq(t.name, "orders.>");
	cr_assert_str_eq(t.sub, "audit");
}

Test(route, unknown_paths_are_404)
{
	static const char *tab[] = {
		"/", "/v2/queues", "/v1", "/v1/queues/a/b", "/v1/queues//messages",
		"/v1/topics/t/subscriptions/s/x", "/v1/queues/a/messages/x/y/z/w", "*", "",
		"/healthz/x", "/v1/nothing", "/v1/cluster/x", "/v1/cluster/nodes/2/x",
		"/v1/cluster/transfer/2",
	};
	struct rest_target t;
	size_t             i;
	int                allow;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		cr_assert_eq(route(REST_GET, tab[i], &t, &allow), 404, "%s", tab[i]);
}

Test(route, wrong_method_is_405_with_the_allowed_ones)
{
	struct rest_target t;
	int                allow;
	char               a[64], err[256];

	cr_assert_eq(route(REST_DELETE, "/v1/queues", &t, &allow), 405);
	rest_allow_text(allow, a, sizeof(a));
	cr_assert_str_eq(a, "GET, HEAD");
	cr_assert_eq(route(REST_GET, "/v1/queues/q/ack", &t, &allow), 405);
	cr_assert_eq(allow, REST_POST);
	cr_assert_eq(route(REST_HEAD, "/v1/queues/q/messages", &t, &allow), 405,
	    "HEAD must not lease messages");
	cr_assert_eq(route(REST_OTHER, "/v1/queues/q", &t, &allow), 405);
	rest_allow_text(allow, a, sizeof(a));
	cr_assert_str_eq(a, "GET, HEAD, PUT, DELETE");
	/* The reason names the method as sent, known or not. */
	cr_assert_eq(route_err(REST_OTHER, "/v1/queues/q", &t, &allow, err, sizeof(err)), 405);
	cr_assert_str_eq(err, "method PATCH not allowed here (allowed: GET, HEAD, PUT, DELETE)");
	cr_assert_eq(route_err(REST_DELETE, "/v1/queues", &t, &allow, err, sizeof(err)), 405);
	cr_assert_str_eq(err, "method DELETE not allowed here (allowed: GET, HEAD)");
}

Test(route, bad_names_are_400)
{
	static const char *tab[] = {
		"/v1/queues/bad%20name", "/v1/queues/a..b", "/v1/queues/a%2Fb",
		"/v1/queues/q.%3E", "/v1/topics/t.*/messages", "/v1/topics/a..b/subscriptions",
		"/v1/topics/t/subscriptions/s.*", "/v1/queues/a%zz", "/v1/queues/a%00",
	};
	struct rest_target t;
	size_t             i;
	int                allow;
	char               longname[300];

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		cr_assert(route(REST_GET, tab[i], &t, &allow) == 400 ||
		    route(REST_PUT, tab[i], &t, &allow) == 400 ||
		    route(REST_POST, tab[i], &t, &allow) == 400, "%s", tab[i]);
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "/v1/queues/", 11);
	longname[sizeof(longname) - 1] = '\0';
	cr_assert_eq(route(REST_GET, longname, &t, &allow), 400);
}

Test(route, receive_parameters)
{
	struct rest_target t;
	int                allow;

	cr_assert_eq(route(REST_GET, "/v1/queues/q/messages", &t, &allow), 0);
	cr_assert_eq(t.max, 1);
	cr_assert_eq(t.wait_ms, 0);
	cr_assert_eq(route(REST_GET, "/v1/queues/q/messages?max=50&wait=2.5&x=%zz", &t, &allow), 0);
	cr_assert_eq(t.max, 50);
	cr_assert_eq(t.wait_ms, 2500);
	cr_assert_eq(route(REST_GET, "/v1/queues/q/messages?wait=90s&max=99999999", &t, &allow), 0);
	cr_assert_eq(t.wait_ms, REST_WAIT_MAX_MS, "long polls stop at 20 s");
	cr_assert_eq(t.max, REST_FETCH_MAX);
	cr_assert_eq(route(REST_GET, "/v1/queues/q/messages?max=0", &t, &allow), 400);
	cr_assert_eq(route(REST_GET, "/v1/queues/q/messages?max=-1", &t, &allow), 400);
	cr_assert_eq(route(REST_GET, "/v1/queues/q/messages?wait=soon", &t, &allow), 400);
	cr_assert_eq(route(REST_GET, "/v1/topics/a.%3E/subscriptions/s/messages?from=first", &t,
	    &allow), 0);
	cr_assert_eq(t.from, MOM_FROM_FIRST);
	cr_assert_eq(route(REST_GET, "/v1/topics/a/subscriptions/s/messages?from=10m", &t, &allow), 0);
	cr_assert_eq(t.from, MOM_FROM_TIME);
	cr_assert_eq(t.from_ms, 1000000 - 600000);
	cr_assert_eq(route(REST_GET, "/v1/topics/a/subscriptions/s/messages?from=later", &t,
	    &allow), 400);
}

Test(route, body_limits)
{
	struct rest_target t;
	struct rest_head   h;
	int                allow;

	route(REST_POST, "/v1/queues/q/messages", &t, &allow);
	parse("POST / HTTP/1.1\r\n\r\n", &h);
	cr_assert_eq(rest_body_limit(&t, &h, MAXP), MAXP);
	parse("POST / HTTP/1.1\r\nContent-Type: application/json; charset=utf-8\r\n\r\n", &h);
	cr_assert_eq(rest_body_limit(&t, &h, MAXP), 2 * MAXP + 65536);
	route(REST_PUT, "/v1/queues/q", &t, &allow);
	cr_assert_eq(rest_body_limit(&t, &h, MAXP), REST_SMALL_BODY);
	route(REST_GET, "/healthz", &t, &allow);
	cr_assert_not(rest_needs_auth(&t));
	route(REST_GET, "/metrics", &t, &allow);
	cr_assert(rest_needs_auth(&t));
}

/* Requests as wire frames. */

struct built {
	struct rest_target t;
	struct rest_head   h;
	struct rest_call   call;
	struct mom_buf     frame;
	char               err[512];
	int                rv;
};

static void
build(struct built *b, int m, const char *target, const char *head, const char *body)
{
	int allow;

	memset(b, 0, sizeof(*b));
	mom_buf_init(&b->frame);
	cr_assert_eq(route(m, target, &b->t, &allow), 0, "%s", target);
	cr_assert_gt(parse(head ? head : "X / HTTP/1.1\r\n\r\n", &b->h), 0);
	b->rv = rest_build(&b->t, &b->h, (const uint8_t *)body, body ? strlen(body) : 0, MAXP, 77,
	    &b->call, &b->frame, b->err, sizeof(b->err));
}

static void
unbuild(struct built *b)
{
	rest_call_fini(&b->call);
	mom_buf_fini(&b->frame);
}

/* The frame's header, leaving r at the body. */
static void
frame_op(struct built *b, uint8_t op, struct mom_rd *r)
{
	struct mom_frame f;

	mom_rd_init(r, b->frame.data, b->frame.len);
	cr_assert_eq(mom_frame_decode(r, &f), 0);
	cr_assert_eq(f.op, op);
	cr_assert_not(f.reply);
}

/* The JSON of an ADMIN frame. */
static json_t *
admin_json(struct built *b)
{
	struct mom_rd  r;
	const uint8_t *p;
	size_t         n;
	json_t        *o;

	frame_op(b, MOM_OP_ADMIN, &r);
	p = mom_rd_bytes(&r, &n);
	cr_assert_eq(r.err, 0);
	cr_assert_not_null(o = json_loadb((const char *)p, n, 0, NULL));
	return o;
}

Test(build, raw_publish_with_message_headers_id_ttl_and_delay)
{
	struct built         b;
	struct mom_rd        r;
	struct mom_pub_batch pb;
	struct mom_pub_msg   m;
	struct mom_slice     v;

	build(&b, REST_POST, "/v1/queues/jobs/messages",
	    "POST / HTTP/1.1\r\nMom-H-Color: red\r\nmom-h-size:  XL \r\nMom-Id: order-7\r\n"
	    "Mom-TTL: 1m\r\nMom-Delay: 2s\r\nContent-Type: text/plain\r\n\r\n", "hello");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	cr_assert_eq(b.call.op, RO_PUBLISH);
	frame_op(&b, MOM_OP_PUBLISH, &r);
	cr_assert_eq(mom_pub_decode_begin(&r, &pb), 0);
	cr_assert_eq(pb.count, 1);
	cr_assert_eq(pb.kind, MOM_KIND_QUEUE);
	cr_assert_eq(mom_pub_decode_msg(&r, &pb, &m, MAXP), 0);
	cr_assert_eq(m.payload.n, 5);
	cr_assert_eq(memcmp(m.payload.p, "hello", 5), 0);
	cr_assert_eq(m.id.n, 7);
	cr_assert_eq(m.ttl_ms, 60000);
	cr_assert_eq(m.delay_ms, 2000);
	cr_assert_eq(mom_hdr_get(m.headers.p, m.headers.n, "Color", &v), 1);
	cr_assert_eq(v.n, 3);
	cr_assert_eq(mom_hdr_get(m.headers.p, m.headers.n, "size", &v), 1);
	cr_assert_eq(memcmp(v.p, "XL", 2), 0);
	cr_assert_eq(mom_rd_left(&r), 0);
	unbuild(&b);
}

Test(build, raw_publish_refusals)
{
	struct built b;
	char         big[MAXP + 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	build(&b, REST_POST, "/v1/queues/q/messages", NULL, big);
	cr_assert_eq(b.rv, MOM_ETOOBIG);
	unbuild(&b);
	build(&b, REST_POST, "/v1/queues/q/messages", "POST / HTTP/1.1\r\nMom-Id: a b\r\n\r\n", "x");
	cr_assert_eq(b.rv, MOM_EINVAL);
	unbuild(&b);
	build(&b, REST_POST, "/v1/queues/q/messages", "POST / HTTP/1.1\r\nMom-TTL: soon\r\n\r\n", "x");
	cr_assert_eq(b.rv, MOM_EINVAL);
	unbuild(&b);
	build(&b, REST_POST, "/v1/queues/q/messages", "POST / HTTP/1.1\r\nMom-H-a.b: x\r\n\r\n", "x");
	cr_assert_eq(b.rv, MOM_EINVAL);
	unbuild(&b);
	build(&b, REST_POST, "/v1/queues/q/messages", NULL, NULL);
	cr_assert_eq(b.rv, 0, "an empty message is a message");
	unbuild(&b);
}

#define JSON_HEAD "POST / HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"

Test(build, json_batch_to_a_topic)
{
	struct built         b;
	struct mom_rd        r;
	struct mom_pub_batch pb;
	struct mom_pub_msg   m;
	struct mom_slice     v;

	build(&b, REST_POST, "/v1/topics/t.a/messages", JSON_HEAD,
	    "{\"messages\":[{\"payload\":\"one\",\"id\":\"i1\",\"queue\":\"ignored\"},"
	    "{\"payload_b64\":\"AP8=\",\"headers\":{\"k\":\"v\"},\"ttl\":500,\"delay\":\"1s\"}]}");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	frame_op(&b, MOM_OP_PUBLISH, &r);
	cr_assert_eq(mom_pub_decode_begin(&r, &pb), 0);
	cr_assert_eq(pb.count, 2);
	cr_assert_eq(pb.kind, MOM_KIND_TOPIC);
	cr_assert_eq(mom_pub_decode_msg(&r, &pb, &m, MAXP), 0);
	cr_assert_eq(m.payload.n, 3);
	cr_assert_eq(m.id.n, 2);
	cr_assert_eq(m.name.n, 3, "the path names the target");
	cr_assert_eq(mom_pub_decode_msg(&r, &pb, &m, MAXP), 0);
	cr_assert_eq(m.payload.n, 2);
	cr_assert_eq(m.payload.p[0], 0);
	cr_assert_eq(m.payload.p[1], 0xff);
	cr_assert_eq(m.ttl_ms, 500);
	cr_assert_eq(m.delay_ms, 1000);
	cr_assert_eq(mom_hdr_get(m.headers.p, m.headers.n, "k", &v), 1);
	cr_assert_eq(mom_rd_left(&r), 0);
	unbuild(&b);
}

Test(build, json_that_is_not_a_batch_is_one_message)
{
	struct built         b;
	struct mom_rd        r;
	struct mom_pub_batch pb;
	struct mom_pub_msg   m;

	build(&b, REST_POST, "/v1/queues/q/messages", JSON_HEAD, "{\"order\":1}");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	frame_op(&b, MOM_OP_PUBLISH, &r);
	mom_pub_decode_begin(&r, &pb);
	cr_assert_eq(mom_pub_decode_msg(&r, &pb, &m, MAXP), 0);
	cr_assert_eq(m.payload.n, 11);
	unbuild(&b);
}

Test(build, json_batch_refusals)
{
	static const struct {
		const char *body;
		int         rv;
	} tab[] = {
		{ "{\"messages\":[", MOM_EBADDATA },
		{ "{\"messages\":[]}", MOM_EBADDATA },
		{ "{\"messages\":[1]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"payload\":\"a\",\"payload_b64\":\"YQ==\"}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"payload_b64\":\"!!\"}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"payload\":5}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"id\":\"\"}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"ttl\":\"soon\"}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"delay\":-5}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"headers\":{\"a b\":\"x\"}}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"headers\":{\"k\":\"a\\nb\"}}]}", MOM_EBADDATA },
		{ "{\"messages\":[{\"headers\":[]}]}", MOM_EBADDATA },
	};
	struct built b;
	size_t       i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		build(&b, REST_POST, "/v1/queues/q/messages", JSON_HEAD, tab[i].body);
		cr_assert_eq(b.rv, tab[i].rv, "%s: %d %s", tab[i].body, b.rv, b.err);
		cr_assert_neq(b.err[0], '\0');
		unbuild(&b);
	}
}

Test(build, a_batch_message_over_the_limit_is_413)
{
	struct built   b;
	struct mom_buf body;
	int            i;

	mom_buf_init(&body);
	mom_buf_put(&body, "{\"messages\":[{\"payload\":\"", 25);
	for (i = 0; i <= MAXP; i++)
		mom_buf_put_u8(&body, 'a');
	mom_buf_put(&body, "\"}]}", 5);
	build(&b, REST_POST, "/v1/queues/q/messages", JSON_HEAD, (const char *)body.data);
	cr_assert_eq(b.rv, MOM_ETOOBIG);
	cr_assert_eq(rest_status(b.rv), 413);
	unbuild(&b);
	mom_buf_fini(&body);
}

Test(build, receive_is_a_fetch)
{
	struct built     b;
	struct mom_rd    r;
	struct mom_fetch f;

	build(&b, REST_GET, "/v1/topics/o.%3E/subscriptions/audit/messages?max=7&wait=3&from=last",
	    NULL, NULL);
	cr_assert_eq(b.rv, 0);
	cr_assert_eq(b.call.op, RO_FETCH);
	frame_op(&b, MOM_OP_FETCH, &r);
	cr_assert_eq(mom_fetch_decode(&r, &f), 0);
	cr_assert_eq(f.consumer, 77);
	cr_assert_eq(f.kind, MOM_KIND_TOPIC);
	cr_assert_eq(f.name.n, 3);
	cr_assert_eq(memcmp(f.durable.p, "audit", 5), 0);
	cr_assert_eq(f.max_msgs, 7);
	cr_assert_eq(f.wait_ms, 3000);
	cr_assert_eq(f.from, MOM_FROM_LAST);
	cr_assert_eq(f.flags, 0);
	unbuild(&b);
}

Test(build, ack_and_nack_settle_without_leasing)
{
	struct built     b;
	struct mom_rd    r;
	struct mom_fetch f;

	build(&b, REST_POST, "/v1/queues/q/ack", NULL,
	    "{\"receipts\":[\"12\",\"18446744073709551615\",7]}");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	cr_assert_eq(b.call.count, 3);
	frame_op(&b, MOM_OP_FETCH, &r);
	cr_assert_eq(mom_fetch_decode(&r, &f), 0);
	cr_assert_eq(f.flags, MOM_FF_CLOSE, "a consumer that leaves at once leases nothing");
	cr_assert_eq(f.nacks, 3);
	cr_assert_eq(mom_rd_varint(&f.ack_rd), 12);
	cr_assert_eq(mom_rd_varint(&f.ack_rd), UINT64_MAX);
	cr_assert_eq(mom_rd_varint(&f.ack_rd), 7);
	unbuild(&b);

	build(&b, REST_POST, "/v1/topics/t/subscriptions/s/nack", NULL,
	    "{\"receipts\":[\"5\"],\"delay\":\"2s\"}");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	cr_assert(b.call.nack);
	frame_op(&b, MOM_OP_FETCH, &r);
	cr_assert_eq(mom_fetch_decode(&r, &f), 0);
	cr_assert_eq(f.nnacks, 1);
	cr_assert_eq(mom_rd_varint(&f.nack_rd), 5);
	cr_assert_eq(mom_rd_varint(&f.nack_rd), MOM_NACK_DELAY(2000), "seen: counts as a delivery");
	unbuild(&b);

	build(&b, REST_POST, "/v1/queues/q/nack", NULL, "{\"receipts\":[\"9\"],\"dead\":true}");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	frame_op(&b, MOM_OP_FETCH, &r);
	cr_assert_eq(mom_fetch_decode(&r, &f), 0);
	cr_assert_eq(f.nnacks, 1);
	cr_assert_eq(mom_rd_varint(&f.nack_rd), 9);
	cr_assert_eq(mom_rd_varint(&f.nack_rd), MOM_NACK_DEAD, "dead-letter now");
	unbuild(&b);
	build(&b, REST_POST, "/v1/queues/q/nack", NULL, "{\"receipts\":[\"9\"],\"dead\":1}");
	cr_assert_eq(b.rv, MOM_EINVAL, "dead must be a boolean");
	unbuild(&b);
}

Test(build, settle_refusals)
{
	static const char *tab[] = {
		"", "[]", "{}", "{\"receipts\":\"1\"}", "{\"receipts\":[\"x\"]}",
		"{\"receipts\":[\"0\"]}", "{\"receipts\":[\"18446744073709551616\"]}",
		"{\"receipts\":[-3]}", "{\"receipts\":[\"1\"],\"delay\":\"5s\"}",
		"{\"receipts\":[\"1\"],\"other\":1}",
	};
	struct built b;
	size_t       i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		build(&b, REST_POST, "/v1/queues/q/ack", NULL, tab[i]);
		cr_assert_neq(b.rv, 0, "%s", tab[i]);
		cr_assert_eq(rest_status(b.rv), 400, "%s", tab[i]);
		unbuild(&b);
	}
}

Test(build, put_queue_probes_first_and_keeps_the_create)
{
	struct built b;
	json_t      *o;

	build(&b, REST_PUT, "/v1/queues/jobs", NULL,
	    "{\"ack_wait\":\"30s\",\"max_deliver\":5,\"dead_letter\":\"jobs.dead\",\"ttl\":3600000,"
	    "\"max_len\":10,\"max_bytes\":\"1MiB\"}");
	cr_assert_eq(b.rv, 0, "%s", b.err);
	cr_assert_eq(b.call.op, RO_PROBE);
	o = admin_json(&b);
	cr_assert_str_eq(json_string_value(json_object_get(o, "op")), "queue.info");
	json_decref(o);
	o = b.call.next;
	cr_assert_str_eq(json_string_value(json_object_get(o, "op")), "queue.create");
	cr_assert_eq(json_integer_value(json_object_get(o, "ack_wait_ms")), 30000);
	cr_assert_eq(json_integer_value(json_object_get(o, "max_deliver")), 5);
	cr_assert_eq(json_integer_value(json_object_get(o, "ttl_ms")), 3600000);
	cr_assert_eq(json_integer_value(json_object_get(o, "max_bytes")), 1 << 20);
	cr_assert_str_eq(json_string_value(json_object_get(o, "dead_letter")), "jobs.dead");
	unbuild(&b);

	build(&b, REST_PUT, "/v1/queues/jobs", NULL, "{\"ack_wiat\":\"30s\"}");
	cr_assert_eq(b.rv, MOM_EINVAL, "a typo in an option is an error, not a default");
	unbuild(&b);
	build(&b, REST_PUT, "/v1/topics/t", NULL, "{\"max_len\":3}");
	cr_assert_eq(b.rv, MOM_EINVAL, "queue options are not topic options");
	unbuild(&b);
	build(&b, REST_PUT, "/v1/queues/q", NULL, "{\"ack_wait\":\"-1s\"}");
	cr_assert_eq(b.rv, MOM_EINVAL);
	unbuild(&b);
	build(&b, REST_PUT, "/v1/queues/q", NULL, "[1]");
	cr_assert_eq(b.rv, MOM_EBADDATA);
	unbuild(&b);
}

Test(route, cluster_node_ids)
{
	static const char *bad[] = {
		"/v1/cluster/nodes/0", "/v1/cluster/nodes/-1", "/v1/cluster/nodes/02",
		"/v1/cluster/nodes/x", "/v1/cluster/nodes/9007199254740993",
		"/v1/cluster/nodes/99999999999999999999999",
	};
	struct rest_target t;
	char               err[256];
	size_t             i;
	int                allow;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(route_err(REST_DELETE, bad[i], &t, &allow, err, sizeof(err)), 400,
		    "%s", bad[i]);
		cr_assert_str_eq(err, "bad node id (a positive integer)");
	}
	cr_assert_eq(route(REST_DELETE, "/v1/cluster/nodes/9007199254740992", &t, &allow), 0);
	cr_assert_eq(t.node, UINT64_C(9007199254740992));
	cr_assert_eq(route(REST_GET, "/v1/cluster/nodes/2", &t, &allow), 405);
	cr_assert_eq(allow, REST_DELETE);
	cr_assert_eq(route(REST_GET, "/v1/cluster/transfer", &t, &allow), 405);
	cr_assert_eq(allow, REST_POST);
}

Test(build, cluster_changes)
{
	static const struct {
		const char *target, *body;
		int         rv;
		const char *err;
	} bad[] = {
		{ "/v1/cluster/nodes", NULL, MOM_EBADDATA, "body must be {\"id\":N,\"url\":\"URL\"}" },
		{ "/v1/cluster/nodes", "{\"id\":2}", MOM_EBADDATA,
		    "body must be {\"id\":N,\"url\":\"URL\"}" },
		{ "/v1/cluster/nodes", "{\"id\":0,\"url\":\"tcp://h:1\"}", MOM_EINVAL,
		    "the node id must be a positive integer" },
		{ "/v1/cluster/nodes", "{\"id\":\"2\",\"url\":\"tcp://h:1\"}", MOM_EINVAL,
		    "the node id must be a positive integer" },
		{ "/v1/cluster/nodes", "{\"id\":2,\"url\":7}", MOM_EINVAL, "url must be a string" },
		{ "/v1/cluster/nodes", "{\"id\":2,\"url\":\"tcp://h:1\",\"x\":1}", MOM_EINVAL,
		    "unknown member 'x'" },
		{ "/v1/cluster/transfer", "{\"url\":\"tcp://h:1\"}", MOM_EINVAL, "unknown member 'url'" },
		{ "/v1/cluster/transfer", "{\"id\":-3}", MOM_EINVAL,
		    "the node id must be a positive integer" },
		{ "/v1/cluster/transfer", "[3]", MOM_EBADDATA, "body is not a JSON object" },
	};
	struct built b;
	json_t      *o;
	size_t       i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		build(&b, REST_POST, bad[i].target, NULL, bad[i].body);
		cr_assert_eq(b.rv, bad[i].rv, "case %zu: %d %s", i, b.rv, b.err);
		cr_assert_str_eq(b.err, bad[i].err, "case %zu", i);
		unbuild(&b);
	}
	build(&b, REST_POST, "/v1/cluster/nodes", NULL, "{\"url\":\"tcp://h:1\",\"id\":2}");
	o = admin_json(&b);
	cr_assert_eq(json_integer_value(json_object_get(o, "id")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(o, "url")), "tcp://h:1");
	json_decref(o);
	unbuild(&b);
	build(&b, REST_DELETE, "/v1/cluster/nodes/12", NULL, NULL);
	o = admin_json(&b);
	cr_assert_eq(json_integer_value(json_object_get(o, "id")), 12);
	json_decref(o);
	unbuild(&b);
	build(&b, REST_POST, "/v1/cluster/transfer", NULL, NULL);
	o = admin_json(&b);
	cr_assert_null(json_object_get(o, "id"), "no id: any node");
	json_decref(o);
	unbuild(&b);
}

Test(build, admin_requests)
{
	static const struct {
		int         m;
		const char *target;
		const char *body;
		const char *op;
		int         call;
	} tab[] = {
		{ REST_GET, "/v1/queues", NULL, "queue.list", RO_LIST },
		{ REST_GET, "/v1/queues/q", NULL, "queue.info", RO_ADMIN },
		{ REST_DELETE, "/v1/queues/q", NULL, "queue.delete", RO_ADMIN },
		{ REST_POST, "/v1/queues/q/purge", "{}", "queue.purge", RO_ADMIN },
		{ REST_POST, "/v1/queues/q/move", "{\"to\":\"r\"}", "queue.move", RO_ADMIN },
		{ REST_GET, "/v1/topics", NULL, "topic.list", RO_LIST },
		{ REST_DELETE, "/v1/topics/t", NULL, "topic.delete", RO_ADMIN },
		{ REST_GET, "/v1/subscriptions", NULL, "sub.list", RO_LIST },
		{ REST_GET, "/v1/topics/t/subscriptions", NULL, "sub.list", RO_LIST },
		{ REST_DELETE, "/v1/topics/t/subscriptions/s", NULL, "sub.delete", RO_ADMIN },
		{ REST_GET, "/v1/topics/t/subscriptions/s", NULL, "sub.list", RO_PROBE },
		{ REST_PUT, "/v1/topics/t/subscriptions/s", "{\"from\":\"first\"}", "sub.list", RO_PROBE },
		{ REST_GET, "/metrics", NULL, "stats.prom", RO_METRICS },
		{ REST_GET, "/v1/cluster", NULL, "cluster.status", RO_ADMIN },
		{ REST_POST, "/v1/cluster/nodes", "{\"id\":2,\"url\":\"tcp://h:1\"}", "cluster.add",
		    RO_ADMIN },
		{ REST_DELETE, "/v1/cluster/nodes/2", NULL, "cluster.remove", RO_ADMIN },
		{ REST_POST, "/v1/cluster/transfer", "{\"id\":3}", "cluster.transfer", RO_ADMIN },
		{ REST_POST, "/v1/cluster/transfer", NULL, "cluster.transfer", RO_ADMIN },
		{ REST_POST, "/v1/cluster/transfer", "{}", "cluster.transfer", RO_ADMIN },
	};
	struct built b;
	json_t      *o;
	size_t       i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		build(&b, tab[i].m, tab[i].target, NULL, tab[i].body);
		cr_assert_eq(b.rv, 0, "%s: %s", tab[i].target, b.err);
		cr_assert_eq(b.call.op, tab[i].call, "%s", tab[i].target);
		o = admin_json(&b);
		cr_assert_str_eq(json_string_value(json_object_get(o, "op")), tab[i].op);
		json_decref(o);
		unbuild(&b);
	}
	build(&b, REST_POST, "/v1/queues/q/move", NULL, "{\"to\":\"r\",\"max\":5}");
	o = admin_json(&b);
	cr_assert_str_eq(json_string_value(json_object_get(o, "src")), "q");
	cr_assert_str_eq(json_string_value(json_object_get(o, "dst")), "r");
	cr_assert_eq(json_integer_value(json_object_get(o, "max")), 5);
	json_decref(o);
	unbuild(&b);
	build(&b, REST_POST, "/v1/queues/q/move", NULL, "{}");
	cr_assert_eq(b.rv, MOM_EBADDATA);
	unbuild(&b);
	build(&b, REST_GET, "/healthz", NULL, NULL);
	cr_assert_eq(b.rv, 0);
	cr_assert_eq(b.call.op, RO_LOCAL);
	unbuild(&b);
}

/* Replies as answers. */

static void
reply_admin(struct mom_buf *f, const char *json)
{
	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_ADMIN, true, 0);
	mom_buf_put_str(f, json);
}

static void
reply_error(struct mom_buf *f, uint8_t op, int err, const char *msg)
{
	mom_buf_reset(f);
	mom_wire_error(f, op, err, msg);
}

static json_t *
body_json(struct rest_response *r)
{
	json_t *o = json_loadb((const char *)r->body.data, r->body.len, JSON_ALLOW_NUL, NULL);

	cr_assert_not_null(o, "%.*s", (int)r->body.len, r->body.data);
	return o;
}

Test(reply, publish_and_errors)
{
	struct rest_call     call = { .op = RO_PUBLISH, .wire_op = MOM_OP_PUBLISH };
	struct rest_response r;
	struct mom_buf       f, next;
	json_t              *o;

	mom_buf_init(&f);
	mom_buf_init(&next);
	rest_response_init(&r);
	mom_frame_encode(&f, MOM_OP_PUBLISH, true, 0);
	mom_buf_put_varint(&f, 3);
	mom_buf_put_varint(&f, 1);
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 200);
	o = body_json(&r);
	cr_assert_eq(json_integer_value(json_object_get(o, "stored")), 3);
	cr_assert_eq(json_integer_value(json_object_get(o, "duplicates")), 1);
	json_decref(o);

	reply_error(&f, MOM_OP_PUBLISH, MOM_ENOENT, "no such queue 'x'");
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 404);
	o = body_json(&r);
	cr_assert_str_eq(json_string_value(json_object_get(o, "code")), "not_found");
	cr_assert_str_eq(json_string_value(json_object_get(o, "error")), "no such queue 'x'");
	json_decref(o);

	reply_error(&f, MOM_OP_PUBLISH, MOM_EAUTH, "token expired");
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 401);
	cr_assert_not_null(strstr(r.extra, "WWW-Authenticate: Bearer error=\"invalid_token\""));
	reply_error(&f, MOM_OP_PUBLISH, MOM_EBUSY, "busy");
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 503);
	cr_assert_not_null(strstr(r.extra, "Retry-After:"));

	reply_error(&f, MOM_OP_FETCH, MOM_ENOENT, "wrong op");
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 400, "a reply to another op is malformed");
	rest_reply(&call, NULL, 0, &r, &next);
	cr_assert_eq(r.status, 503);
	rest_response_fini(&r);
	mom_buf_fini(&f);
	mom_buf_fini(&next);
}

Test(reply, status_map)
{
	cr_assert_eq(rest_status(MOM_EINVAL), 400);
	cr_assert_eq(rest_status(MOM_EBADDATA), 400);
	cr_assert_eq(rest_status(MOM_EAUTH), 401);
	cr_assert_eq(rest_status(MOM_EPERM), 403);
	cr_assert_eq(rest_status(MOM_ENOENT), 404);
	cr_assert_eq(rest_status(MOM_EEXIST), 409);
	cr_assert_eq(rest_status(MOM_EFULL), 409);
	cr_assert_eq(rest_status(MOM_ETOOBIG), 413);
	cr_assert_eq(rest_status(MOM_EBUSY), 503);
	cr_assert_eq(rest_status(MOM_EUNAVAIL), 503);
	cr_assert_eq(rest_status(MOM_ECLOSED), 503);
	cr_assert_eq(rest_status(MOM_ENOTLEADER), 503);
	cr_assert_eq(rest_status(MOM_EINTERNAL), 500);
}

static void
delivery(struct mom_buf *f, uint64_t receipt, const char *id, const char *hdr_k,
    const void *payload, size_t n)
{
	struct mom_delivery d = { 0 };
	struct mom_buf      hb;
	const char         *line[1];
	char                l[64];

	mom_buf_init(&hb);
	if (hdr_k != NULL) {
		snprintf(l, sizeof(l), "%s: v", hdr_k);
		line[0] = l;
		mom_hdr_build(&hb, line, 1);
	}
	d.receipt = receipt;
	d.seq = receipt + 100;
	d.time_ms = 1795435200123ull;
	d.deliveries = 2;
	d.kind = MOM_KIND_QUEUE;
	d.name.p = (const uint8_t *)"jobs";
	d.name.n = 4;
	d.id.p = (const uint8_t *)id;
	d.id.n = id ? strlen(id) : 0;
	d.headers.p = hb.data;
	d.headers.n = hb.len;
	d.payload.p = payload;
	d.payload.n = n;
	mom_delivery_encode(f, &d);
	mom_buf_fini(&hb);
}

/* A settle's answer from the core: no delivery, then the stale receipts. */
static void
settle_reply(struct mom_buf *f, const uint64_t *stale, size_t n, bool old_broker)
{
	size_t i;

	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_FETCH, true, 0);
	mom_buf_put_varint(f, 4);
	mom_buf_put_varint(f, 0);
	if (old_broker)
		return;
	mom_buf_put_varint(f, n);
	for (i = 0; i < n; i++)
		mom_buf_put_varint(f, stale[i]);
}

Test(reply, settle_names_stale_receipts_with_409)
{
	struct rest_call     call = { .op = RO_SETTLE, .wire_op = MOM_OP_FETCH, .count = 3 };
	struct rest_response r;
	struct mom_buf       f, next;
	const uint64_t       stale[] = { 18446744073709551615ull, 1099511627777ull };
	json_t              *o, *a;

	mom_buf_init(&f);
	mom_buf_init(&next);
	rest_response_init(&r);
	settle_reply(&f, NULL, 0, false);
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 200);
	o = body_json(&r);
	cr_assert_eq(json_integer_value(json_object_get(o, "acked")), 3);
	cr_assert_eq(json_array_size(json_object_get(o, "stale")), 0);
	json_decref(o);

	/* A broker from before stale receipts were reported: none. */
	settle_reply(&f, NULL, 0, true);
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 200);

	settle_reply(&f, stale, 2, false);
	call.nack = true;
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 409);
	o = body_json(&r);
	cr_assert_str_eq(json_string_value(json_object_get(o, "code")), "stale_receipt");
	cr_assert_not_null(json_string_value(json_object_get(o, "error")));
	cr_assert_eq(json_integer_value(json_object_get(o, "nacked")), 1);
	a = json_object_get(o, "stale");
	cr_assert_eq(json_array_size(a), 2);
	cr_assert_str_eq(json_string_value(json_array_get(a, 0)), "18446744073709551615",
	    "receipts as strings, as they were received");
	cr_assert_str_eq(json_string_value(json_array_get(a, 1)), "1099511627777");
	json_decref(o);

	/* More stale receipts than were sent, or a delivery: malformed. */
	call.count = 1;
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 400);
	rest_response_fini(&r);
	mom_buf_fini(&f);
	mom_buf_fini(&next);
}

Test(reply, receive_with_receipts_as_strings_and_payloads_as_text_or_base64)
{
	struct rest_call     call = { .op = RO_FETCH, .wire_op = MOM_OP_FETCH };
	struct rest_response r;
	struct mom_buf       f, next;
	json_t              *o, *m;
	const uint8_t        bin[] = { 0xff, 0x00, 0x41 };

	mom_buf_init(&f);
	mom_buf_init(&next);
	rest_response_init(&r);
	mom_frame_encode(&f, MOM_OP_FETCH, true, 0);
	mom_buf_put_varint(&f, 0);
	mom_buf_put_varint(&f, 2);
	delivery(&f, 9007199254740993ull, "order-1", "Color", "h\xc3\xa9llo\n\0x", 9);
	delivery(&f, 2, NULL, NULL, bin, sizeof(bin));
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 200);
	o = body_json(&r);
	cr_assert_eq(json_array_size(json_object_get(o, "messages")), 2);
	m = json_array_get(json_object_get(o, "messages"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(m, "receipt")), "9007199254740993",
	    "receipts beyond 2^53 survive JavaScript");
	cr_assert_str_eq(json_string_value(json_object_get(m, "queue")), "jobs");
	cr_assert_str_eq(json_string_value(json_object_get(m, "id")), "order-1");
	cr_assert_str_eq(json_string_value(json_object_get(m, "time")), "2026-11-23T12:00:00.123Z");
	cr_assert_eq(json_integer_value(json_object_get(m, "deliveries")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(m, "headers"), "Color")),
	    "v");
	cr_assert_eq(json_string_length(json_object_get(m, "payload")), 9);
	m = json_array_get(json_object_get(o, "messages"), 1);
	cr_assert_null(json_object_get(m, "payload"));
	cr_assert_str_eq(json_string_value(json_object_get(m, "payload_b64")), "/wBB");
	cr_assert_null(json_object_get(m, "id"));
	json_decref(o);

	/* Nothing after the wait: an empty list, not an error. */
	mom_buf_reset(&f);
	mom_frame_encode(&f, MOM_OP_FETCH, true, 0);
	mom_buf_put_varint(&f, 0);
	mom_buf_put_varint(&f, 0);
	rest_reply(&call, f.data, f.len, &r, &next);
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body.len, strlen("{\"messages\":[]}"));

	/* A vanished client's messages go back, uncounted. */
	mom_buf_reset(&f);
	mom_frame_encode(&f, MOM_OP_FETCH, true, 0);
	mom_buf_put_varint(&f, 0);
	mom_buf_put_varint(&f, 1);
	delivery(&f, 41, NULL, NULL, "x", 1);
	{
		struct rest_target t;
		struct mom_rd      rd;
		struct mom_frame   fr;
		struct mom_fetch   fe;
		int                allow;

		route(REST_GET, "/v1/queues/jobs/messages", &t, &allow);
		cr_assert_eq(rest_release(&t, f.data, f.len, 99, &next), 0);
		mom_rd_init(&rd, next.data, next.len);
		cr_assert_eq(mom_frame_decode(&rd, &fr), 0);
		cr_assert_eq(mom_fetch_decode(&rd, &fe), 0);
		cr_assert_eq(fe.flags, MOM_FF_CLOSE);
		cr_assert_eq(fe.nnacks, 1);
		cr_assert_eq(mom_rd_varint(&fe.nack_rd), 41);
		cr_assert_eq(mom_rd_varint(&fe.nack_rd), 1, "no delay, unseen");
		reply_error(&f, MOM_OP_FETCH, MOM_ENOENT, "gone");
		cr_assert_eq(rest_release(&t, f.data, f.len, 99, &next), -1);
	}
	rest_response_fini(&r);
	mom_buf_fini(&f);
	mom_buf_fini(&next);
}

Test(reply, put_answers_201_after_an_empty_probe_200_after_a_full_one)
{
	struct built         b;
	struct rest_response r;
	struct mom_buf       f;
	json_t              *o;

	mom_buf_init(&f);
	rest_response_init(&r);
	build(&b, REST_PUT, "/v1/queues/jobs", NULL, "{\"max_deliver\":2}");
	reply_error(&f, MOM_OP_ADMIN, MOM_ENOENT, "no such queue");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert(r.again);
	cr_assert_eq(b.call.op, RO_CREATE);
	o = admin_json(&b);
	cr_assert_str_eq(json_string_value(json_object_get(o, "op")), "queue.create");
	cr_assert_eq(json_integer_value(json_object_get(o, "max_deliver")), 2);
	json_decref(o);
	reply_admin(&f, "{\"name\":\"jobs\"}");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_not(r.again);
	cr_assert_eq(r.status, 201);
	unbuild(&b);

	build(&b, REST_PUT, "/v1/topics/t", NULL, NULL);
	reply_admin(&f, "{\"name\":\"t\"}");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert(r.again);
	reply_error(&f, MOM_OP_ADMIN, MOM_EEXIST, "exists with other options");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_eq(r.status, 409);
	unbuild(&b);

	build(&b, REST_PUT, "/v1/queues/q", NULL, NULL);
	reply_error(&f, MOM_OP_ADMIN, MOM_EPERM, "permission denied");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_not(r.again, "a refused probe is the answer");
	cr_assert_eq(r.status, 403);
	unbuild(&b);
	rest_response_fini(&r);
	mom_buf_fini(&f);
}

Test(reply, subscriptions_are_found_in_their_topic_list)
{
	struct built         b;
	struct rest_response r;
	struct mom_buf       f;
	json_t              *o;
	const char          *list = "[{\"topic\":\"o.>\",\"name\":\"other\"},"
	    "{\"topic\":\"o.>\",\"name\":\"audit\",\"durable\":true}]";

	mom_buf_init(&f);
	rest_response_init(&r);
	build(&b, REST_GET, "/v1/topics/o.%3E/subscriptions/audit", NULL, NULL);
	reply_admin(&f, list);
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_eq(r.status, 200);
	o = body_json(&r);
	cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "audit");
	json_decref(o);
	unbuild(&b);

	build(&b, REST_GET, "/v1/topics/o.%3E/subscriptions/nope", NULL, NULL);
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_eq(r.status, 404);
	unbuild(&b);

	build(&b, REST_PUT, "/v1/topics/o.%3E/subscriptions/audit", NULL, NULL);
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_not(r.again, "it exists: nothing to create");
	cr_assert_eq(r.status, 200);
	unbuild(&b);

	build(&b, REST_PUT, "/v1/topics/o.%3E/subscriptions/new1", NULL, "{\"from\":\"first\"}");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert(r.again);
	o = admin_json(&b);
	cr_assert_str_eq(json_string_value(json_object_get(o, "op")), "sub.create");
	cr_assert(json_is_true(json_object_get(o, "durable")));
	cr_assert_eq(json_integer_value(json_object_get(o, "from")), MOM_FROM_FIRST);
	json_decref(o);
	reply_admin(&f, "{\"name\":\"new1\"}");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_eq(r.status, 201);
	unbuild(&b);
	rest_response_fini(&r);
	mom_buf_fini(&f);
}

Test(reply, lists_metrics_and_cluster)
{
	struct built         b;
	struct rest_response r;
	struct mom_buf       f;
	json_t              *o;

	mom_buf_init(&f);
	rest_response_init(&r);
	build(&b, REST_GET, "/v1/queues", NULL, NULL);
	reply_admin(&f, "[{\"name\":\"a\"}]");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	o = body_json(&r);
	cr_assert_eq(json_array_size(json_object_get(o, "queues")), 1);
	json_decref(o);
	unbuild(&b);

	build(&b, REST_GET, "/metrics", NULL, NULL);
	reply_admin(&f, "{\"text\":\"# TYPE mom_x gauge\\nmom_x 1\\n\"}");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	cr_assert_eq(r.status, 200);
	cr_assert_str_eq(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	cr_assert_eq(r.body.len, strlen("# TYPE mom_x gauge\nmom_x 1\n"));
	unbuild(&b);

	build(&b, REST_GET, "/v1/cluster", NULL, NULL);
	/* The core's cluster.status answer, passed on as it is. */
	reply_admin(&f, "{\"leader\":\"self\",\"nodes\":[{\"id\":\"self\"}],\"uptime_ms\":5}");
	rest_reply(&b.call, f.data, f.len, &r, &b.frame);
	o = body_json(&r);
	cr_assert_str_eq(json_string_value(json_object_get(o, "leader")), "self");
	cr_assert_eq(json_array_size(json_object_get(o, "nodes")), 1);
	cr_assert_eq(json_integer_value(json_object_get(o, "uptime_ms")), 5);
	json_decref(o);
	unbuild(&b);
	rest_response_fini(&r);
	mom_buf_fini(&f);
}

Test(render, status_line_length_and_connection)
{
	struct rest_response r;
	struct mom_buf       out;

	rest_response_init(&r);
	mom_buf_init(&out);
	rest_http_error(&r, 405, "method_not_allowed", "no \"way\"");
	snprintf(r.extra, sizeof(r.extra), "Allow: GET\r\n");
	rest_render(&out, &r, true, false, false);
	mom_buf_put_u8(&out, 0);
	cr_assert_str_eq((const char *)out.data,
	    "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n"
	    "Content-Length: 50\r\nAllow: GET\r\n\r\n"
	    "{\"error\":\"no \\\"way\\\"\",\"code\":\"method_not_allowed\"}");
	mom_buf_reset(&out);
	rest_render(&out, &r, false, false, true);
	mom_buf_put_u8(&out, 0);
	cr_assert_not_null(strstr((const char *)out.data, "Connection: close\r\n\r\n"));
	cr_assert_not_null(strstr((const char *)out.data, "Content-Length: 50\r\n"),
	    "HEAD keeps the length of what GET would send");
	cr_assert_null(strstr((const char *)out.data, "error"));
	mom_buf_reset(&out);
	rest_render(&out, &r, true, true, false);
	mom_buf_put_u8(&out, 0);
	cr_assert_not_null(strstr((const char *)out.data, "Connection: keep-alive\r\n"));
	mom_buf_fini(&out);
	rest_response_fini(&r);
}

/* --http values (http.c's only pure function). */

Test(config, http_addresses)
{
	static const struct {
		const char *in, *url;
		bool        tls;
	} ok[] = {
		{ "127.0.0.1:7421", "tcp://127.0.0.1:7421", false },
		{ "http://localhost:8080", "tcp://localhost:8080", false },
		{ "HTTP://127.0.0.1", "tcp://127.0.0.1:7421", false },
		{ "https://mq1.example.com:7443", "tls+tcp://mq1.example.com:7443", true },
		{ "https://0.0.0.0", "tls+tcp://0.0.0.0:7443", true },
		{ "[::1]:9000", "tcp://[::1]:9000", false },
		{ "http://[::1]", "tcp://[::1]:7421", false },
	};
	static const char *bad[] = {
		"", "http://", ":7421", "host:", "host:0", "host:65536", "host:12x", "ftp://host:1",
		"http://host:1/path", "a:b:c", "[::1", "[]:1", "[::1]x", "user@host:1", "host :1",
	};
	char   url[128];
	bool   tls;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(http_url(ok[i].in, url, sizeof(url), &tls), 0, "%s", ok[i].in);
		cr_assert_str_eq(url, ok[i].url);
		cr_assert_eq(tls, ok[i].tls, "%s", ok[i].in);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(http_url(bad[i], url, sizeof(url), &tls), MOM_EINVAL, "%s", bad[i]);
	cr_assert_eq(http_url("127.0.0.1:1", url, 8, &tls), MOM_EINVAL, "too long for the buffer");
}

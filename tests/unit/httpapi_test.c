/*
 * httpapi_test.c: the client side of the HTTP API: which request carries
 * each admin operation, what an answer becomes (the nng plane's reply
 * value), and which error code an HTTP refusal means.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "httpapi.h"
#include "mom.h"

/* Maps op (JSON text) and checks method, path and body (NULL: none). */
static void
route(const char *op, const char *method, const char *path, const char *body)
{
	struct mom_httpapi_req r;
	json_t                *o = json_loads(op, 0, NULL);
	char                   err[128];
	int                    rv;

	cr_assert_not_null(o, "bad test JSON %s", op);
	rv = mom_httpapi_admin(o, &r, err, sizeof(err));
	cr_assert_eq(rv, 0, "%s: %s", op, err);
	cr_assert_str_eq(r.method, method, "%s", op);
	cr_assert_str_eq(r.path, path, "%s", op);
	if (body == NULL)
		cr_assert_null(r.body, "%s has a body %s", op, r.body);
	else {
		cr_assert_not_null(r.body, "%s has no body", op);
		cr_assert_str_eq(r.body, body, "%s", op);
	}
	mom_httpapi_req_fini(&r);
	json_decref(o);
}

Test(httpapi, every_admin_operation_has_its_route)
{
	route("{\"op\":\"ping\"}", "GET", "/healthz", NULL);
	route("{\"op\":\"stats\"}", "GET", "/metrics", NULL);
	route("{\"op\":\"stats.prom\"}", "GET", "/metrics", NULL);
	route("{\"op\":\"cluster.status\"}", "GET", "/v1/cluster", NULL);
	route("{\"op\":\"cluster.add\",\"id\":2,\"url\":\"tcp://h:7422\"}", "POST",
	    "/v1/cluster/nodes", "{\"id\":2,\"url\":\"tcp://h:7422\"}");
	route("{\"op\":\"cluster.remove\",\"id\":2}", "DELETE", "/v1/cluster/nodes/2", NULL);
	route("{\"op\":\"cluster.transfer\",\"id\":3}", "POST", "/v1/cluster/transfer",
	    "{\"id\":3}");
	route("{\"op\":\"cluster.transfer\"}", "POST", "/v1/cluster/transfer", "{}");
	route("{\"op\":\"queue.list\"}", "GET", "/v1/queues", NULL);
	route("{\"op\":\"queue.info\",\"name\":\"jobs\"}", "GET", "/v1/queues/jobs", NULL);
	route("{\"op\":\"queue.delete\",\"name\":\"a.b-c_d\"}", "DELETE", "/v1/queues/a.b-c_d", NULL);
	route("{\"op\":\"queue.purge\",\"name\":\"jobs\"}", "POST", "/v1/queues/jobs/purge", "{}");
	route("{\"op\":\"queue.move\",\"src\":\"jobs.dead\",\"dst\":\"jobs\"}", "POST",
	    "/v1/queues/jobs.dead/move", "{\"to\":\"jobs\"}");
	route("{\"op\":\"queue.create\",\"name\":\"jobs\"}", "PUT", "/v1/queues/jobs", "{}");
	route("{\"op\":\"queue.create\",\"name\":\"jobs\",\"ack_wait_ms\":2000,\"max_deliver\":3,"
	    "\"ttl_ms\":60000,\"max_len\":10,\"max_bytes\":1024,\"dead_letter\":\"dl\"}",
	    "PUT", "/v1/queues/jobs",
	    "{\"ack_wait\":2000,\"max_deliver\":3,\"dead_letter\":\"dl\",\"ttl\":60000,"
	    "\"max_len\":10,\"max_bytes\":1024}");
	route("{\"op\":\"topic.list\"}", "GET", "/v1/topics", NULL);
	route("{\"op\":\"topic.info\",\"name\":\"ev\"}", "GET", "/v1/topics/ev", NULL);
	route("{\"op\":\"topic.delete\",\"name\":\"ev\"}", "DELETE", "/v1/topics/ev", NULL);
	route("{\"op\":\"topic.create\",\"name\":\"ev\",\"retain_ms\":3600000,\"retain_bytes\":5}",
	    "PUT", "/v1/topics/ev", "{\"retain\":3600000,\"retain_bytes\":5}");
	route("{\"op\":\"sub.list\",\"topic\":\"ev\"}", "GET", "/v1/topics/ev/subscriptions", NULL);
	route("{\"op\":\"sub.delete\",\"pattern\":\"ev.>\",\"name\":\"s1\"}", "DELETE",
	    "/v1/topics/ev.%3E/subscriptions/s1", NULL);
	route("{\"op\":\"sub.delete\",\"pattern\":\"a.*.c\",\"name\":\"s1\"}", "DELETE",
	    "/v1/topics/a.%2A.c/subscriptions/s1", NULL);
}

Test(httpapi, unknown_or_incomplete_operations_have_no_route)
{
	static const char *const ops[] = {
		"{}", "{\"op\":\"frobnicate\"}", "{\"op\":\"queue.info\"}",
		"{\"op\":\"topic.purge\",\"name\":\"t\"}", "{\"op\":\"queue.move\",\"src\":\"a\"}",
		"{\"op\":\"sub.delete\",\"pattern\":\"a\"}", "{\"op\":\"queue.explode\",\"name\":\"q\"}",
		"{\"op\":\"cluster.add\",\"id\":2}", "{\"op\":\"cluster.remove\"}",
		"{\"op\":\"cluster.join\"}",
		NULL,
	};
	struct mom_httpapi_req r;
	char                   err[128];
	int                    i;

	for (i = 0; ops[i]; i++) {
		json_t *o = json_loads(ops[i], 0, NULL);

		err[0] = '\0';
		cr_assert_eq(mom_httpapi_admin(o, &r, err, sizeof(err)), MOM_EINVAL, "%s", ops[i]);
		cr_assert_neq(err[0], '\0');
		mom_httpapi_req_fini(&r);
		json_decref(o);
	}
}

Test(httpapi, escape_keeps_unreserved_and_encodes_the_rest)
{
	char   buf[64];
	size_t n;

	n = mom_httpapi_escape(buf, sizeof(buf), "orders.eu-1_x~");
	cr_assert_str_eq(buf, "orders.eu-1_x~");
	cr_assert_eq(n, 14);
	n = mom_httpapi_escape(buf, sizeof(buf), "a.>/ %?\xc3\xa9");
	cr_assert_str_eq(buf, "a.%3E%2F%20%25%3F%C3%A9");
	cr_assert_eq(n, strlen("a.%3E%2F%20%25%3F%C3%A9"));
	/* Truncated output is still a string; the length says what was needed. */
	n = mom_httpapi_escape(buf, 4, ">>");
	cr_assert_eq(n, 6);
	cr_assert_eq(strlen(buf), 3);
	cr_assert_eq(mom_httpapi_escape(NULL, 0, "*"), 3);
}

Test(httpapi, server_lists_starting_with_http_are_recognised)
{
	cr_assert(mom_httpapi_is_url("http://127.0.0.1:7421"));
	cr_assert(mom_httpapi_is_url("HTTPS://b:7421,http://c"));
	cr_assert(mom_httpapi_is_url(" http://x"));
	cr_assert_not(mom_httpapi_is_url("tcp://127.0.0.1:7420"));
	cr_assert_not(mom_httpapi_is_url("tcp://a:1,http://b:2"));
	cr_assert_not(mom_httpapi_is_url("httpx://a"));
	cr_assert_not(mom_httpapi_is_url(""));
	cr_assert_not(mom_httpapi_is_url(NULL));
}

/* The code and message of an answer. */
static int
error_of(long status, const char *body, char *err, size_t errlen)
{
	return mom_httpapi_error(status, body, body ? strlen(body) : 0, err, errlen);
}

Test(httpapi, refusals_map_to_error_codes_and_exit_statuses)
{
	char err[256];

	cr_assert_eq(error_of(404, "{\"error\":\"no such queue 'x'\",\"code\":\"not_found\"}",
	    err, sizeof(err)), MOM_ENOENT);
	cr_assert_str_eq(err, "no such queue 'x'");
	cr_assert_eq(mom_err_exit(MOM_ENOENT), 66);
	cr_assert_eq(error_of(401, "{\"error\":\"token expired\",\"code\":\"unauthorized\"}",
	    err, sizeof(err)), MOM_EAUTH);
	cr_assert_str_eq(err, "token expired");
	cr_assert_eq(mom_err_exit(MOM_EAUTH), 77);
	cr_assert_eq(error_of(403, "{\"error\":\"permission denied\"}", err, sizeof(err)),
	    MOM_EPERM);
	cr_assert_eq(mom_err_exit(MOM_EPERM), 77);
	/* 409 is "exists" (1) or "full" (75), as the code says. */
	cr_assert_eq(error_of(409, "{\"error\":\"e\",\"code\":\"exists\"}", err, sizeof(err)),
	    MOM_EEXIST);
	cr_assert_eq(mom_err_exit(MOM_EEXIST), 1);
	cr_assert_eq(error_of(409, "{\"error\":\"f\",\"code\":\"full\"}", err, sizeof(err)),
	    MOM_EFULL);
	cr_assert_eq(error_of(409, "{\"error\":\"e\"}", err, sizeof(err)), MOM_EEXIST);
	/* 400 is a usage error (64) or bad data (65). */
	cr_assert_eq(error_of(400, "{\"error\":\"bad queue name\",\"code\":\"invalid\"}", err,
	    sizeof(err)), MOM_EINVAL);
	cr_assert_eq(mom_err_exit(MOM_EINVAL), 64);
	cr_assert_eq(error_of(400, "{\"error\":\"malformed JSON\",\"code\":\"bad_data\"}", err,
	    sizeof(err)), MOM_EBADDATA);
	cr_assert_eq(mom_err_exit(MOM_EBADDATA), 65);
	cr_assert_eq(error_of(400, NULL, err, sizeof(err)), MOM_EINVAL);
	cr_assert_eq(error_of(413, "{\"error\":\"body over the limit\"}", err, sizeof(err)),
	    MOM_ETOOBIG);
	cr_assert_eq(mom_err_exit(MOM_ETOOBIG), 65);
	cr_assert_eq(error_of(503, "{\"error\":\"shutting down\",\"code\":\"closed\"}", err,
	    sizeof(err)), MOM_ECLOSED);
	cr_assert_eq(mom_err_exit(MOM_ECLOSED), 69);
	cr_assert_eq(error_of(503, "<html>Service Unavailable</html>", err, sizeof(err)),
	    MOM_EUNAVAIL);
	cr_assert_eq(mom_err_exit(MOM_EUNAVAIL), 69);
	cr_assert_eq(error_of(429, NULL, err, sizeof(err)), MOM_EBUSY);
	cr_assert_eq(error_of(500, "", err, sizeof(err)), MOM_EINTERNAL);
	cr_assert_eq(error_of(302, "", err, sizeof(err)), MOM_EPROTO);
	/* Without an error text: the status, never an empty message. */
	error_of(404, "<html>not found</html>", err, sizeof(err));
	cr_assert(strstr(err, "404") != NULL, "%s", err);
	/* An unknown code falls back to the status. */
	cr_assert_eq(error_of(401, "{\"error\":\"x\",\"code\":\"invalid_token\"}", err,
	    sizeof(err)), MOM_EAUTH);
}

Test(httpapi, error_text_is_one_line)
{
	char err[256];

	error_of(400, "{\"error\":\"two\\nlines\\r\\tand a tab\"}", err, sizeof(err));
	cr_assert_eq(strpbrk(err, "\r\n\t"), NULL, "%s", err);
	cr_assert_str_eq(err, "two lines  and a tab");
}

/* Answers req's op with (status, body); returns the code, *rep as compact JSON text in out. */
static int
answer(const char *op, long status, const char *body, char *out, size_t outlen)
{
	struct mom_httpapi_req r;
	json_t                *o = json_loads(op, 0, NULL), *rep = NULL;
	char                   err[256], *s;
	int                    rv;

	cr_assert_eq(mom_httpapi_admin(o, &r, err, sizeof(err)), 0);
	rv = mom_httpapi_reply(&r, status, body, strlen(body), &rep, err, sizeof(err));
	out[0] = '\0';
	if (rv == 0) {
		cr_assert_not_null(rep);
		s = json_dumps(rep, JSON_COMPACT | JSON_ENCODE_ANY);
		snprintf(out, outlen, "%s", s);
		free(s);
	} else {
		cr_assert_null(rep);
		snprintf(out, outlen, "%s", err);
	}
	json_decref(rep);
	mom_httpapi_req_fini(&r);
	json_decref(o);
	return rv;
}

Test(httpapi, answers_become_the_nng_reply_values)
{
	char out[1024];

	/* Lists come wrapped; the nng plane answers the bare array. */
	cr_assert_eq(answer("{\"op\":\"queue.list\"}", 200,
	    "{\"queues\":[{\"name\":\"a\",\"messages\":1}]}", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "[{\"name\":\"a\",\"messages\":1}]");
	cr_assert_eq(answer("{\"op\":\"topic.list\"}", 200, "[]", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "[]");
	cr_assert_eq(answer("{\"op\":\"sub.list\",\"topic\":\"t\"}", 200,
	    "{\"subscriptions\":[]}", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "[]");
	cr_assert_eq(answer("{\"op\":\"queue.list\"}", 200, "{\"topics\":[]}", out, sizeof(out)),
	    MOM_EPROTO);
	cr_assert_eq(answer("{\"op\":\"queue.list\"}", 200, "not json", out, sizeof(out)),
	    MOM_EPROTO);
	/* Objects as they are; key order kept. */
	cr_assert_eq(answer("{\"op\":\"queue.info\",\"name\":\"a\"}", 200,
	    "{\"name\":\"a\",\"messages\":0,\"ack_wait_ms\":30000}", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "{\"name\":\"a\",\"messages\":0,\"ack_wait_ms\":30000}");
	cr_assert_eq(answer("{\"op\":\"queue.create\",\"name\":\"a\"}", 201,
	    "{\"name\":\"a\"}", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "{\"name\":\"a\"}");
	cr_assert_eq(answer("{\"op\":\"queue.delete\",\"name\":\"a\"}", 204, "", out, sizeof(out)),
	    0);
	cr_assert_str_eq(out, "{}");
	/* Prometheus text passes as {"text":...}. */
	cr_assert_eq(answer("{\"op\":\"stats.prom\"}", 200, "# TYPE mom_x gauge\nmom_x 1\n", out,
	    sizeof(out)), 0);
	cr_assert_str_eq(out, "{\"text\":\"# TYPE mom_x gauge\\nmom_x 1\\n\"}");
	/* Errors carry the broker's text. */
	cr_assert_eq(answer("{\"op\":\"queue.info\",\"name\":\"a\"}", 404,
	    "{\"error\":\"no such queue 'a'\",\"code\":\"not_found\"}", out, sizeof(out)),
	    MOM_ENOENT);
	cr_assert_str_eq(out, "no such queue 'a'");
}

Test(httpapi, ping_reads_healthz)
{
	char out[512];

	cr_assert_eq(answer("{\"op\":\"ping\"}", 200, "{\"status\":\"ok\"}", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "{\"ok\":true}");
	cr_assert_eq(answer("{\"op\":\"ping\"}", 200,
	    "{\"status\":\"ok\",\"uptime_ms\":5,\"version\":\"0.1.0\",\"max_message_size\":9}",
	    out, sizeof(out)), 0);
	cr_assert_str_eq(out,
	    "{\"ok\":true,\"version\":\"0.1.0\",\"max_message_size\":9,\"uptime_ms\":5}");
	cr_assert_eq(answer("{\"op\":\"ping\"}", 200, "ok", out, sizeof(out)), 0);
	cr_assert_eq(answer("{\"op\":\"ping\"}", 503,
	    "{\"error\":\"shutting down\",\"code\":\"closed\"}", out, sizeof(out)), MOM_ECLOSED);
}

Test(httpapi, stats_are_read_back_from_prometheus_text)
{
	static const char text[] =
	    "# TYPE mom_uptime_ms gauge\n"
	    "mom_uptime_ms 1234\n"
	    "# TYPE mom_published counter\n"
	    "mom_published 10\n"
	    "mom_acked_total 4\n"
	    "mom_queue_messages{queue=\"jobs\"} 6\n"
	    "go_goroutines 7\n"
	    "mom_ratio 0.5\n"
	    "mom_bad 12abc\n"
	    "mom_\n"
	    "mom_messages 6 1700000000000\n"
	    "mom_last 3";
	json_t *o = mom_httpapi_prom_json(text, strlen(text));
	char   *s = json_dumps(o, JSON_COMPACT);

	cr_assert_str_eq(s, "{\"uptime_ms\":1234,\"published\":10,\"acked\":4,\"ratio\":0.5,"
	    "\"messages\":6,\"last\":3}");
	free(s);
	json_decref(o);
	/* Today's broker gives seconds: the key stays the nng plane's uptime_ms. */
	o = mom_httpapi_prom_json("mom_uptime_seconds 12.3456\n", 27);
	s = json_dumps(o, JSON_COMPACT);
	cr_assert_str_eq(s, "{\"uptime_ms\":12346}");
	free(s);
	json_decref(o);
	o = mom_httpapi_prom_json("", 0);
	cr_assert_eq(json_object_size(o), 0);
	json_decref(o);
}

/* queue.peek and queue.update (issue 12, items 6 and 7): their HTTP routes. */
Test(httpapi, peek_and_update_have_their_routes)
{
	route("{\"op\":\"queue.peek\",\"name\":\"jobs.dead\"}", "GET",
	    "/v1/queues/jobs.dead/messages?peek=1", NULL);
	route("{\"op\":\"queue.peek\",\"name\":\"jobs.dead\",\"max\":5}", "GET",
	    "/v1/queues/jobs.dead/messages?peek=1&max=5", NULL);
	route("{\"op\":\"queue.update\",\"name\":\"jobs\",\"max_deliver\":3,\"dead_letter\":null}",
	    "POST", "/v1/queues/jobs/update", "{\"max_deliver\":3,\"dead_letter\":null}");
}

/*
 * admin.c: mom-admin's verbs.  Each builds one JSON request, sends it as
 * an ADMIN frame and prints the answer as a table (or as it came, with
 * --json).  State changes print nothing on success (-v says what was done).
 * With http:// servers the same request goes over the broker's HTTP API
 * (rest_client.c), which hands back the same reply value, so the output
 * does not depend on the protocol.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admin.h"
#include "duration.h"
#include "mom.h"
#include "httpapi.h"
#include "rest_client.h"
#include "wire.h"

/* Where requests go: the nng data plane, or the HTTP API. */
struct conn {
	struct mom_client  *c;
	struct rest_client *rc;
};

struct column {
	const char *title;
	const char *key;
	int         duration; /* format an integer of ms as a duration */
};

static const struct column queue_cols[] = {
	{ "NAME", "name", 0 }, { "MESSAGES", "messages", 0 }, { "READY", "ready", 0 },
	{ "IN-FLIGHT", "in_flight", 0 }, { "DELAYED", "delayed", 0 },
	{ "PUBLISHED", "published", 0 }, { "DELIVERED", "delivered", 0 },
	{ "REDELIVERED", "redelivered", 0 }, { "DEAD", "dead_lettered", 0 },
	{ NULL, NULL, 0 },
};
static const struct column topic_cols[] = {
	{ "NAME", "name", 0 }, { "RETAINED", "retained", 0 }, { "BYTES", "bytes", 0 },
	{ "SUBS", "subscriptions", 0 }, { "PUBLISHED", "published", 0 },
	{ "RETAIN", "retain_ms", 1 }, { NULL, NULL, 0 },
};
static const struct column peek_cols[] = {
	{ "SEQ", "seq", 0 }, { "STATE", "state", 0 }, { "DELIVERIES", "deliveries", 0 },
	{ "HEADERS", "headers", 0 }, { "PAYLOAD", "payload", 0 }, { NULL, NULL, 0 },
};
static const struct column cluster_cols[] = {
	{ "ID", "id", 0 }, { "URL", "url", 0 }, { "ROLE", "role", 0 }, { "TERM", "term", 0 },
	{ "COMMIT", "commit", 0 }, { "APPLIED", "applied", 0 }, { "LAG", "lag", 0 },
	{ NULL, NULL, 0 },
};
static const struct column sub_cols[] = {
	{ "TOPIC", "topic", 0 }, { "NAME", "name", 0 }, { "DURABLE", "durable", 0 },
	{ "MESSAGES", "messages", 0 }, { "READY", "ready", 0 }, { "IN-FLIGHT", "in_flight", 0 },
	{ NULL, NULL, 0 },
};

static void
cell(json_t *v, int duration, char *buf, size_t len)
{
	size_t i;

	if (json_is_string(v)) {
		/* A payload: one line, whatever it holds. */
		snprintf(buf, len, "%s", json_string_value(v));
		for (i = 0; buf[i]; i++)
			if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
				buf[i] = ' ';
	}
	else if (json_is_integer(v) && duration)
		mom_duration_format((uint64_t)json_integer_value(v), buf, len);
	else if (json_is_integer(v))
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_array(v) || json_is_object(v)) {
		/* Nested (cluster status's nodes): compact JSON, still one line. */
		char *s = json_dumps(v, JSON_COMPACT);

		snprintf(buf, len, "%s", s ? s : "-");
		free(s);
	} else
		snprintf(buf, len, "-");
}

/* An aligned table, sorted by the order the broker gave. */
static void
print_table(json_t *rows, const struct column *cols)
{
	size_t w[16] = { 0 }, i, j;
	json_t *row;
	char    buf[256];

	for (j = 0; cols[j].title; j++)
		w[j] = strlen(cols[j].title);
	json_array_foreach(rows, i, row) {
		for (j = 0; cols[j].title; j++) {
			cell(json_object_get(row, cols[j].key), cols[j].duration, buf, sizeof(buf));
			if (strlen(buf) > w[j])
				w[j] = strlen(buf);
		}
	}
	for (j = 0; cols[j].title; j++) {
		if (cols[j + 1].title)
			printf("%-*s  ", (int)w[j], cols[j].title);
		else
			printf("%s\n", cols[j].title);
	}
	json_array_foreach(rows, i, row) {
		for (j = 0; cols[j].title; j++) {
			cell(json_object_get(row, cols[j].key), cols[j].duration, buf, sizeof(buf));
			if (cols[j + 1].title)
				printf("%-*s  ", (int)w[j], buf);
			else
				printf("%s\n", buf);
		}
	}
}

/* key: value lines, keys aligned. */
/*
 * Key and value a line each.  A key_ms is a duration, printed as one
 * ("30s") under the key without its unit: "ack_wait 30s", as the option
 * that sets it says (--json keeps ack_wait_ms and milliseconds).
 */
static void
print_object(json_t *o)
{
	const char *k;
	json_t     *v;
	size_t      w = 0, kl;
	char        buf[4096];
	int         dur;

	json_object_foreach(o, k, v) {
		kl = strlen(k);
		if (kl > 3 && strcmp(k + kl - 3, "_ms") == 0)
			kl -= 3;
		if (kl > w)
			w = kl;
	}
	json_object_foreach(o, k, v) {
		kl = strlen(k);
		dur = kl > 3 && strcmp(k + kl - 3, "_ms") == 0;
		cell(v, dur, buf, sizeof(buf));
		printf("%-*.*s  %s\n", (int)w, (int)(dur ? kl - 3 : kl), k, buf);
	}
}

static int
request(struct admin_options *o, struct conn *cn, json_t *req, json_t **rep)
{
	char        *s, *out = NULL;
	json_error_t je;
	int          rv;

	*rep = NULL;
	if (cn->rc != NULL) {
		char err[512];

		rv = rest_client_admin(cn->rc, req, rep, o->wait_ms, err, sizeof(err));
		json_decref(req);
		if (rv != 0)
			mom_cli_err(&o->cli, "%s", err);
		return rv == 0 ? 0 : mom_err_exit(rv);
	}
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (s == NULL)
		return MOM_EXIT_FAIL;
	rv = mom_cli_admin(&o->cli, cn->c, s, &out, o->wait_ms);
	free(s);
	if (rv != 0)
		return mom_err_exit(rv);
	if ((*rep = json_loads(out, JSON_DECODE_ANY, &je)) == NULL) {
		mom_cli_err(&o->cli, "broker sent malformed JSON");
		free(out);
		return MOM_EXIT_FAIL;
	}
	free(out);
	return 0;
}

/* The create options given, under their keys in the command (adminops.h). */
static void
put_opts(json_t *req, const struct admin_options *o)
{
	int k;

	for (k = 0; k < o->nopts; k++) {
		const struct admin_optval *v = &o->opts[k];

		/* An empty name (queue update --dead-letter ''): none. */
		json_object_set_new(req, v->opt->key, v->opt->type != MOM_AOPT_NAME ?
		    json_integer((json_int_t)v->n) : v->s[0] ? json_string(v->s) : json_null());
	}
}

/* ping's answer, {"ok":true,"version":...,"max_message_size":N,"uptime_ms":N}, either way. */
static int
ping_json(struct admin_options *o, struct conn *cn, json_t **rep)
{
	struct mom_ping pi;
	char            err[512];
	int             rv;

	*rep = NULL;
	if (cn->rc != NULL) {
		json_t *req = json_pack("{s:s}", "op", "ping");

		rv = req ? rest_client_admin(cn->rc, req, rep, o->wait_ms, err, sizeof(err)) :
		    MOM_ENOMEM;
		json_decref(req);
	} else if ((rv = mom_cli_ping(cn->c, &pi, o->wait_ms, err, sizeof(err))) == 0)
		*rep = json_pack("{s:b, s:s, s:I, s:I}", "ok", 1, "version", pi.version,
		    "max_message_size", (json_int_t)pi.max_payload,
		    "uptime_ms", (json_int_t)pi.uptime_ms);
	if (rv == 0 && *rep == NULL) {
		rv = MOM_ENOMEM;
		snprintf(err, sizeof(err), "out of memory");
	}
	if (rv != 0) {
		mom_cli_err(&o->cli, "%s", err);
		return rv == MOM_ETIMEDOUT ? MOM_EXIT_UNAVAILABLE : mom_err_exit(rv);
	}
	return 0;
}

static int
do_ping(struct admin_options *o, struct conn *cn)
{
	json_t     *rep, *up;
	const char *ver;
	char        ups[32];
	int         rv;

	if ((rv = ping_json(o, cn, &rep)) != 0)
		return rv;
	if (o->json) {
		char *s = json_dumps(rep, JSON_COMPACT);

		printf("%s\n", s ? s : "{\"ok\":true}");
		free(s);
	} else if (!o->cli.quiet) {
		/* A broker's /healthz may tell less of itself than PING does. */
		ver = json_string_value(json_object_get(rep, "version"));
		up = json_object_get(rep, "uptime_ms");
		if (json_is_integer(up))
			mom_duration_format((uint64_t)json_integer_value(up) / 1000 * 1000, ups,
			    sizeof(ups));
		printf("ok: mom-broker%s%s%s%s\n", ver ? " " : "", ver ? ver : "",
		    json_is_integer(up) ? ", up " : "", json_is_integer(up) ? ups : "");
	}
	json_decref(rep);
	return 0;
}

/* Opens the connection: the HTTP API for http:// servers, else nng.  0 or an exit status. */
static int
conn_open(struct admin_options *o, struct conn *cn)
{
	char err[512];
	int  rv;

	if (!mom_httpapi_is_url(o->cli.servers))
		return mom_cli_connect(&o->cli, &cn->c, 2);
	if ((rv = rest_client_open(&cn->rc, &o->cli, err, sizeof(err))) != 0) {
		mom_cli_err(&o->cli, "%s", err);
		return mom_err_exit(rv);
	}
	return 0;
}

static void
conn_close(struct conn *cn)
{
	mom_client_close(cn->c);
	rest_client_close(cn->rc);
}

/* {"op":"NOUN.VERB","name":NAME}, the request of most verbs. */
static json_t *
named_request(const char *noun, const char *verb, const char *name)
{
	char op[32];

	snprintf(op, sizeof(op), "%s.%s", noun, verb);
	return json_pack("{s:s, s:s}", "op", op, "name", name);
}

static json_t *
queue_request(const struct admin_options *o, const char *verb, char **a,
    const struct column **cols)
{
	json_t *req;

	if (strcmp(verb, "create") == 0 || strcmp(verb, "update") == 0) {
		req = json_pack("{s:s, s:s}", "op", verb[0] == 'c' ? "queue.create" :
		    "queue.update", "name", a[0]);
		put_opts(req, o);
		return req;
	}
	if (strcmp(verb, "peek") == 0) {
		req = json_pack("{s:s, s:s}", "op", "queue.peek", "name", a[0]);
		if (req != NULL && o->count > 0)
			json_object_set_new(req, "max", json_integer(o->count));
		return req;
	}
	if (strcmp(verb, "move") == 0)
		return json_pack("{s:s, s:s, s:s}", "op", "queue.move", "src", a[0], "dst", a[1]);
	if (strcmp(verb, "list") == 0) {
		*cols = queue_cols;
		return json_pack("{s:s}", "op", "queue.list");
	}
	return named_request("queue", verb, a[0]);
}

static json_t *
topic_request(const struct admin_options *o, const char *verb, char **a,
    const struct column **cols)
{
	json_t *req;

	if (strcmp(verb, "create") == 0) {
		req = json_pack("{s:s, s:s}", "op", "topic.create", "name", a[0]);
		put_opts(req, o);
		return req;
	}
	if (strcmp(verb, "list") == 0) {
		*cols = topic_cols;
		return json_pack("{s:s}", "op", "topic.list");
	}
	return named_request("topic", verb, a[0]);
}

/* cluster status | digest | add ID URL | remove ID | transfer [ID] (options.c parsed the id). */
static json_t *
cluster_request(const struct admin_options *o, const char *verb, char **a,
    const struct column **cols)
{
	char    op[32];
	json_t *req;

	snprintf(op, sizeof(op), "cluster.%s", verb);
	if ((req = json_pack("{s:s}", "op", op)) == NULL)
		return NULL;
	if (strcmp(verb, "status") == 0)
		*cols = cluster_cols;
	if (o->node != 0)
		json_object_set_new(req, "id", json_integer((json_int_t)o->node));
	if (strcmp(verb, "add") == 0)
		json_object_set_new(req, "url", json_string(a[1]));
	return req;
}

/*
 * The request of a command that options.c checked (new reference, NULL
 * when out of memory); *cols: the columns of the reply's table, if it is
 * one.
 */
static json_t *
command_request(const struct admin_options *o, const struct column **cols)
{
	const char *noun = o->args[0], *verb = o->nargs > 1 ? o->args[1] : "";
	char      **a = o->args + 2;
	json_t     *req;

	*cols = NULL;
	if (strcmp(noun, "stats") == 0)
		return json_pack("{s:s}", "op", o->prom ? "stats.prom" : "stats");
	if (strcmp(noun, "queue") == 0)
		return queue_request(o, verb, a, cols);
	if (strcmp(noun, "topic") == 0)
		return topic_request(o, verb, a, cols);
	if (strcmp(noun, "cluster") == 0)
		return cluster_request(o, verb, a, cols);
	if (strcmp(verb, "list") == 0) {
		req = json_pack("{s:s}", "op", "sub.list");
		if (o->nargs == 3)
			json_object_set_new(req, "topic", json_string(a[0]));
		*cols = sub_cols;
		return req;
	}
	return json_pack("{s:s, s:s, s:s}", "op", "sub.delete", "pattern", a[0], "name", a[1]);
}

/*
 * queue peek: a table of the messages, a binary payload shown as
 * "base64:...", then how many the queue holds when not all were shown.
 */
static void
print_peek(json_t *rep)
{
	json_t *msgs = json_object_get(rep, "messages"), *m;
	json_int_t count = json_integer_value(json_object_get(rep, "count"));
	size_t  i;

	json_array_foreach(msgs, i, m) {
		json_t *b = json_object_get(m, "payload_b64");

		if (json_is_string(b))
			json_object_set_new(m, "payload", json_sprintf("base64:%s",
			    json_string_value(b)));
	}
	print_table(msgs, peek_cols);
	if ((size_t)count > json_array_size(msgs))
		printf("(%zu of %" JSON_INTEGER_FORMAT " messages)\n", json_array_size(msgs),
		    count);
}

/* The reply as --json, Prometheus text, a table or key: value lines; 0 or an exit status. */
static int
print_reply(const struct admin_options *o, json_t *rep, const struct column *cols)
{
	const char *noun = o->args[0], *verb = o->nargs > 1 ? o->args[1] : "";

	if (o->json) {
		char *s = json_dumps(rep, JSON_COMPACT | JSON_ENCODE_ANY);

		printf("%s\n", s ? s : "null");
		free(s);
	} else if (o->prom)
		fputs(json_string_value(json_object_get(rep, "text")), stdout);
	else if (cols == cluster_cols)
		/* One row per node; --json has the rest (leader, self, elections). */
		print_table(json_object_get(rep, "nodes"), cols);
	else if (cols != NULL)
		print_table(rep, cols);
	else if (strcmp(noun, "queue") == 0 && strcmp(verb, "peek") == 0)
		print_peek(rep);
	else if (strcmp(noun, "queue") == 0 && strcmp(verb, "move") == 0 && !o->cli.quiet) {
		/* What a move did is news (nothing moved is worth knowing). */
		json_int_t n = json_integer_value(json_object_get(rep, "moved"));

		printf("moved %" JSON_INTEGER_FORMAT " message%s\n", n, n == 1 ? "" : "s");
	}
	else if (strcmp(verb, "info") == 0 || strcmp(verb, "status") == 0 ||
	    strcmp(verb, "digest") == 0 ||
	    strcmp(noun, "stats") == 0)
		print_object(rep);
	else if (o->cli.verbose) {
		char *s = json_dumps(rep, JSON_COMPACT);

		mom_cli_info(&o->cli, "%s %s: %s", noun, verb, s ? s : "");
		free(s);
	}
	if (fflush(stdout) != 0) {
		mom_cli_err(&o->cli, "standard output: %s", strerror(errno));
		return MOM_EXIT_IOERR;
	}
	return 0;
}

int
admin_run(struct admin_options *o)
{
	const struct column *cols;
	struct conn          cn = { NULL, NULL };
	json_t              *rep = NULL;
	int                  rv;

	if ((rv = conn_open(o, &cn)) != 0)
		return rv;
	if (strcmp(o->args[0], "ping") == 0)
		rv = do_ping(o, &cn);
	else if ((rv = request(o, &cn, command_request(o, &cols), &rep)) == 0)
		rv = print_reply(o, rep, cols);
	json_decref(rep);
	conn_close(&cn);
	return rv;
}

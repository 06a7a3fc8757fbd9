/*
 * httpapi.c: the broker's HTTP API as a client sees it (see httpapi.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adminops.h"
#include "httpapi.h"
#include "mom.h"

int
mom_httpapi_is_url(const char *servers)
{
	if (servers == NULL)
		return 0;
	while (*servers == ' ' || *servers == '\t')
		servers++;
	return strncasecmp(servers, "http://", 7) == 0 || strncasecmp(servers, "https://", 8) == 0;
}

size_t
mom_httpapi_escape(char *dst, size_t dstlen, const char *seg)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t            n = 0;

	for (; *seg; seg++) {
		unsigned char ch = (unsigned char)*seg;
		int           plain = isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~';

		/* isalnum() follows the locale; a path wants ASCII only. */
		if (ch >= 0x80)
			plain = 0;
		if (plain) {
			if (n + 1 < dstlen)
				dst[n] = (char)ch;
			n++;
		} else {
			if (n + 3 < dstlen) {
				dst[n] = '%';
				dst[n + 1] = hex[ch >> 4];
				dst[n + 2] = hex[ch & 15];
			}
			n += 3;
		}
	}
	if (dstlen > 0)
		dst[n < dstlen ? n : dstlen - 1] = '\0';
	return n;
}

/* "/v1/" PART1 SEG1 PART2 SEG2 PART3, each SEG percent-encoded (NULL: left out). */
static char *
mkpath(const char *p1, const char *s1, const char *p2, const char *s2, const char *p3)
{
	size_t len = strlen(p1) + 1, off;
	char  *path;

	if (s1)
		len += mom_httpapi_escape(NULL, 0, s1);
	if (s2)
		len += mom_httpapi_escape(NULL, 0, s2);
	len += (p2 ? strlen(p2) : 0) + (p3 ? strlen(p3) : 0);
	if ((path = malloc(len)) == NULL)
		return NULL;
	off = (size_t)snprintf(path, len, "%s", p1);
	if (s1)
		off += mom_httpapi_escape(path + off, len - off, s1);
	if (p2)
		off += (size_t)snprintf(path + off, len - off, "%s", p2);
	if (s2)
		off += mom_httpapi_escape(path + off, len - off, s2);
	if (p3)
		snprintf(path + off, len - off, "%s", p3);
	return path;
}

/* Copies op's member from (when present) into body as to. */
static void
copy_opt(json_t *body, const json_t *op, const char *from, const char *to)
{
	json_t *v = json_object_get(op, from);

	if (v != NULL)
		json_object_set(body, to, v);
}

static int
set_body(struct mom_httpapi_req *r, json_t *body)
{
	if (body == NULL)
		return MOM_ENOMEM;
	r->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	return r->body ? 0 : MOM_ENOMEM;
}

/*
 * cluster.status: GET /v1/cluster; cluster.digest: GET /v1/cluster/digest;
 * cluster.add {id,url}: POST
 * /v1/cluster/nodes; cluster.remove {id}:
 * DELETE /v1/cluster/nodes/ID; cluster.transfer {id?}: POST
 * /v1/cluster/transfer.  -1: no route (a missing member).
 */
static int
cluster_route(const json_t *op, const char *verb, struct mom_httpapi_req *r)
{
	json_t *id = json_object_get(op, "id"), *url = json_object_get(op, "url");
	char    seg[32];

	if (strcmp(verb, "status") == 0 || strcmp(verb, "digest") == 0) {
		r->path = mkpath(verb[0] == 's' ? "/v1/cluster" : "/v1/cluster/digest", NULL, NULL,
		    NULL, NULL);
		return 0;
	}
	if (strcmp(verb, "remove") == 0) {
		if (!json_is_integer(id))
			return -1;
		snprintf(seg, sizeof(seg), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
		r->method = "DELETE";
		r->path = mkpath("/v1/cluster/nodes/", seg, NULL, NULL, NULL);
		return 0;
	}
	if (strcmp(verb, "add") == 0 && (!json_is_integer(id) || !json_is_string(url)))
		return -1;
	if (strcmp(verb, "add") != 0 && strcmp(verb, "transfer") != 0)
		return -1;
	r->method = "POST";
	r->path = mkpath(verb[0] == 'a' ? "/v1/cluster/nodes" : "/v1/cluster/transfer", NULL,
	    NULL, NULL, NULL);
	/* Out of memory leaves r->body NULL: the caller's to report. */
	(void)set_body(r, id == NULL ? json_object() : verb[0] == 'a' ?
	    json_pack("{s:O, s:O}", "id", id, "url", url) : json_pack("{s:O}", "id", id));
	return 0;
}

int
mom_httpapi_admin(const json_t *op, struct mom_httpapi_req *r, char *err, size_t errlen)
{
	const char *o = json_string_value(json_object_get(op, "op"));
	const char *name = json_string_value(json_object_get(op, "name"));
	const char *topic = json_string_value(json_object_get(op, "topic"));
	json_t     *body;
	int         q;

	memset(r, 0, sizeof(*r));
	r->method = "GET";
	r->kind = MOM_HTTPAPI_JSON;
	if (o == NULL)
		goto noroute;
	q = strncmp(o, "queue.", 6) == 0;
	if (strcmp(o, "ping") == 0) {
		r->path = mkpath("/healthz", NULL, NULL, NULL, NULL);
		r->kind = MOM_HTTPAPI_PING;
	} else if (strcmp(o, "stats") == 0 || strcmp(o, "stats.prom") == 0) {
		/*
		 * Prometheus text is the one statistics document the API
		 * has; the JSON form is read back from it.
		 */
		r->path = mkpath("/metrics", NULL, NULL, NULL, NULL);
		r->kind = o[5] == '\0' ? MOM_HTTPAPI_STATS : MOM_HTTPAPI_TEXT;
	} else if (strncmp(o, "cluster.", 8) == 0) {
		if ((q = cluster_route(op, o + 8, r)) != 0)
			goto noroute;
		if (r->path != NULL && r->body == NULL && strcmp(r->method, "POST") == 0)
			goto nomem;
	} else if (strcmp(o, "queue.list") == 0 || strcmp(o, "topic.list") == 0) {
		r->path = mkpath(q ? "/v1/queues" : "/v1/topics", NULL, NULL, NULL, NULL);
		r->kind = MOM_HTTPAPI_LIST;
		r->unwrap = q ? "queues" : "topics";
	} else if (strcmp(o, "sub.list") == 0) {
		if (topic != NULL)
			r->path = mkpath("/v1/topics/", topic, "/subscriptions", NULL, NULL);
		else
			r->path = mkpath("/v1/subscriptions", NULL, NULL, NULL, NULL);
		r->kind = MOM_HTTPAPI_LIST;
		r->unwrap = "subscriptions";
	} else if (strcmp(o, "sub.delete") == 0) {
		const char *pattern = json_string_value(json_object_get(op, "pattern"));

		if (pattern == NULL || name == NULL)
			goto noroute;
		r->method = "DELETE";
		r->path = mkpath("/v1/topics/", pattern, "/subscriptions/", name, NULL);
	} else if (strcmp(o, "queue.move") == 0) {
		const char *src = json_string_value(json_object_get(op, "src"));
		const char *dst = json_string_value(json_object_get(op, "dst"));

		if (src == NULL || dst == NULL)
			goto noroute;
		r->method = "POST";
		r->path = mkpath("/v1/queues/", src, "/move", NULL, NULL);
		if (set_body(r, json_pack("{s:s}", "to", dst)) != 0)
			goto nomem;
	} else if (strcmp(o, "queue.peek") == 0) {
		json_t *max = json_object_get(op, "max");
		char    qs[40] = "?peek=1";

		if (name == NULL)
			goto noroute;
		if (json_is_integer(max))
			snprintf(qs, sizeof(qs), "?peek=1&max=%" JSON_INTEGER_FORMAT,
			    json_integer_value(max));
		r->path = mkpath("/v1/queues/", name, "/messages", NULL, qs);
	} else if (strcmp(o, "queue.update") == 0) {
		const struct mom_admin_opt *opt = mom_admin_op(o)->opts;

		if (name == NULL)
			goto noroute;
		r->method = "POST";
		r->path = mkpath("/v1/queues/", name, "/update", NULL, NULL);
		if ((body = json_object()) != NULL)
			for (; opt->key != NULL; opt++)
				copy_opt(body, op, opt->key, opt->api);
		if (set_body(r, body) != 0)
			goto nomem;
	} else if (q || strncmp(o, "topic.", 6) == 0) {
		const char *verb = o + 6;

		if (name == NULL)
			goto noroute;
		if (strcmp(verb, "info") == 0)
			r->method = "GET";
		else if (strcmp(verb, "delete") == 0)
			r->method = "DELETE";
		else if (strcmp(verb, "purge") == 0 && q)
			r->method = "POST";
		else if (strcmp(verb, "create") == 0)
			r->method = "PUT";
		else
			goto noroute;
		r->path = mkpath(q ? "/v1/queues/" : "/v1/topics/", name,
		    strcmp(verb, "purge") == 0 ? "/purge" : NULL, NULL, NULL);
		if (strcmp(verb, "purge") == 0 && set_body(r, json_object()) != 0)
			goto nomem;
		if (strcmp(verb, "create") == 0) {
			const struct mom_admin_opt *opt = mom_admin_op(o)->opts;

			/* Durations as milliseconds: the API takes numbers as ms. */
			if ((body = json_object()) != NULL)
				for (; opt != NULL && opt->key != NULL; opt++)
					if (opt->api != NULL)
						copy_opt(body, op, opt->key, opt->api);
			if (set_body(r, body) != 0)
				goto nomem;
		}
	} else
		goto noroute;
	if (r->path == NULL)
		goto nomem;
	return 0;
noroute:
	snprintf(err, errlen, "'%s' has no HTTP route", o ? o : "(no op)");
	return MOM_EINVAL;
nomem:
	snprintf(err, errlen, "out of memory");
	return MOM_ENOMEM;
}

void
mom_httpapi_req_fini(struct mom_httpapi_req *r)
{
	free(r->path);
	free(r->body);
	r->path = r->body = NULL;
}

/* The broker's message as one printable line. */
static void
one_line(char *dst, size_t dstlen, const char *s)
{
	size_t i;

	snprintf(dst, dstlen, "%s", s);
	for (i = 0; dst[i]; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = ' ';
}

int
mom_httpapi_error(long status, const char *body, size_t len, char *err, size_t errlen)
{
	json_t     *o = body && len ? json_loadb(body, len, 0, NULL) : NULL;
	const char *code = json_string_value(json_object_get(o, "code"));
	const char *msg = json_string_value(json_object_get(o, "error"));
	int         rv = -1, i;

	for (i = 1; code && i < MOM_E_MAX; i++)
		if (strcmp(code, mom_err_name(i)) == 0) {
			rv = i;
			break;
		}
	if (rv < 0) {
		switch (status) {
		case 400:
			rv = MOM_EINVAL;
			break;
		case 401:
			rv = MOM_EAUTH;
			break;
		case 403:
			rv = MOM_EPERM;
			break;
		case 404:
			rv = MOM_ENOENT;
			break;
		case 409:
			rv = MOM_EEXIST;
			break;
		case 411:
			rv = MOM_EBADDATA;
			break;
		case 413:
			rv = MOM_ETOOBIG;
			break;
		case 429:
			rv = MOM_EBUSY;
			break;
		case 503:
			rv = MOM_EUNAVAIL;
			break;
		default:
			rv = status >= 500 && status < 600 ? MOM_EINTERNAL : MOM_EPROTO;
		}
	}
	if (msg != NULL && *msg != '\0')
		one_line(err, errlen, msg);
	else
		snprintf(err, errlen, "broker answered HTTP %ld (%s)", status, mom_strerror(rv));
	json_decref(o);
	return rv;
}

json_t *
mom_httpapi_prom_json(const char *text, size_t len)
{
	json_t     *o = json_object();
	const char *p = text, *end = text + len;

	while (o != NULL && p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *nm, *ne;
		char        key[128], num[64];
		long long   v;
		size_t      kl, nl;
		char       *e;

		if (eol == NULL)
			eol = end;
		nm = p;
		p = eol + 1;
		if (eol - nm < 5 || strncmp(nm, "mom_", 4) != 0)
			continue; /* comments, blank lines, other exporters' samples */
		for (ne = nm; ne < eol && (isalnum((unsigned char)*ne) || *ne == '_' || *ne == ':'); ne++)
			;
		if (ne == eol || *ne != ' ')
			continue; /* labelled (per queue) or malformed */
		kl = (size_t)(ne - nm) - 4;
		/* A counter may carry the conventional suffix; the JSON key does not. */
		if (kl > 6 && strncmp(ne - 6, "_total", 6) == 0)
			kl -= 6;
		if (kl == 0 || kl >= sizeof(key))
			continue;
		memcpy(key, nm + 4, kl);
		key[kl] = '\0';
		while (ne < eol && *ne == ' ')
			ne++;
		for (nl = 0; ne + nl < eol && ne[nl] != ' ' && ne[nl] != '\r'; nl++)
			;
		if (nl == 0 || nl >= sizeof(num))
			continue;
		memcpy(num, ne, nl);
		num[nl] = '\0';
		errno = 0;
		v = strtoll(num, &e, 10);
		/* Seconds in /metrics, milliseconds in the nng plane's stats (uptime_ms). */
		if (kl > 8 && strcmp(key + kl - 8, "_seconds") == 0 && kl - 8 + 3 < sizeof(key)) {
			double d = strtod(num, &e);

			if (*e == '\0') {
				memcpy(key + kl - 8, "_ms", 4);
				json_object_set_new(o, key, json_integer((json_int_t)(d * 1000 + 0.5)));
			}
		} else if (*e == '\0' && errno == 0)
			json_object_set_new(o, key, json_integer(v));
		else {
			double d = strtod(num, &e);

			if (*e == '\0')
				json_object_set_new(o, key, json_real(d));
		}
	}
	return o;
}

/* /healthz: {"status":"ok"} and whatever else the broker tells of itself. */
static json_t *
ping_json(const json_t *h)
{
	static const char *const keep[] = { "version", "max_message_size", "uptime_ms", NULL };
	json_t *o = json_pack("{s:b}", "ok", 1);
	int     i;

	for (i = 0; o && keep[i]; i++) {
		json_t *v = json_object_get(h, keep[i]);

		if (v != NULL)
			json_object_set(o, keep[i], v);
	}
	return o;
}

int
mom_httpapi_reply(const struct mom_httpapi_req *r, long status, const char *body, size_t len,
    json_t **rep, char *err, size_t errlen)
{
	json_error_t je;
	json_t      *v = NULL;

	*rep = NULL;
	if (status < 200 || status > 299)
		return mom_httpapi_error(status, body, len, err, errlen);
	switch (r->kind) {
	case MOM_HTTPAPI_TEXT:
		if ((*rep = json_pack("{s:s%}", "text", len ? body : "", len)) == NULL)
			goto bad;
		return 0;
	case MOM_HTTPAPI_STATS:
		if ((*rep = mom_httpapi_prom_json(len ? body : "", len)) == NULL)
			goto bad;
		return 0;
	default:
		break;
	}
	if (len == 0 && r->kind == MOM_HTTPAPI_JSON) {
		*rep = json_object();
		return 0;
	}
	if (len > 0)
		v = json_loadb(body, len, JSON_DECODE_ANY, &je);
	if (r->kind == MOM_HTTPAPI_PING) {
		/* A healthy answer is a 2xx; its body only adds detail. */
		*rep = ping_json(json_is_object(v) ? v : NULL);
		json_decref(v);
		return *rep ? 0 : MOM_ENOMEM;
	}
	if (v == NULL)
		goto bad;
	if (r->kind == MOM_HTTPAPI_LIST && !json_is_array(v)) {
		json_t *a = json_object_get(v, r->unwrap);

		if (!json_is_array(a)) {
			json_decref(v);
			goto bad;
		}
		json_incref(a);
		json_decref(v);
		v = a;
	}
	*rep = v;
	return 0;
bad:
	snprintf(err, errlen, "broker sent an unexpected answer to %s %s", r->method, r->path);
	return MOM_EPROTO;
}

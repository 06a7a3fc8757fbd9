/*
 * rest.c: the broker's HTTP API without the sockets (see rest.h).
 *
 * The parser is strict where leniency lets requests be read two ways
 * (request smuggling): one Content-Length or several equal ones, no
 * folded lines, no space before a field's colon, no control bytes.  A
 * Transfer-Encoding is never decoded (http.c refuses it with 411), so a
 * body is always exactly Content-Length bytes.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adminops.h"
#include "duration.h"
#include "format.h"
#include "mom.h"
#include "names.h"
#include "net/rest.h"
#include "size.h"

/* Request head. */

static bool
tchar(unsigned char c)
{
	return c != '\0' && (isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
ieq(const char *a, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(a, lit, n) == 0;
}

/* Does a comma-separated field value hold this token (case-insensitive)? */
static bool
has_token(const char *v, size_t n, const char *tok)
{
	size_t i = 0, s, e;

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e > s && ieq(v + s, e - s, tok))
			return true;
	}
	return false;
}

static int
parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;
	size_t   i;

	/* 15 digits: far beyond any limit, far from overflowing. */
	if (n == 0 || n > 15)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

static int
method_of(const char *m, size_t n)
{
	static const struct {
		const char *name;
		int         m;
	} tab[] = {
		{ "GET", REST_GET }, { "HEAD", REST_HEAD }, { "PUT", REST_PUT },
		{ "POST", REST_POST }, { "DELETE", REST_DELETE },
	};
	size_t i;

	/* Methods are case-sensitive (RFC 7230 3.1.1). */
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strlen(tab[i].name) == n && memcmp(tab[i].name, m, n) == 0)
			return tab[i].m;
	return REST_OTHER;
}

/* A field of the head: name, value (trimmed), into h.  0 or -400/-431. */
static int
parse_field(const char *l, size_t n, struct rest_head *h, bool *close, bool *ka)
{
	size_t           i, vs, ve;
	struct rest_hdr *f;

	for (i = 0; i < n && tchar((unsigned char)l[i]); i++)
		;
	/* No empty name, no space before the colon, no folded line. */
	if (i == 0 || i == n || l[i] != ':')
		return -400;
	vs = i + 1;
	while (vs < n && (l[vs] == ' ' || l[vs] == '\t'))
		vs++;
	ve = n;
	while (ve > vs && (l[ve - 1] == ' ' || l[ve - 1] == '\t'))
		ve--;
	for (size_t j = vs; j < ve; j++) {
		unsigned char c = (unsigned char)l[j];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -400;
	}
	if (h->nhdr == REST_HDR_MAX)
		return -431;
	f = &h->hdr[h->nhdr++];
	f->name = l;
	f->nlen = i;
	f->value = l + vs;
	f->vlen = ve - vs;
	if (ieq(f->name, f->nlen, "content-length")) {
		uint64_t v;

		if (parse_length(f->value, f->vlen, &v) != 0 || (h->has_length && v != h->length))
			return -400;
		h->has_length = true;
		h->length = v;
	} else if (ieq(f->name, f->nlen, "transfer-encoding"))
		h->te = true;
	else if (ieq(f->name, f->nlen, "expect")) {
		if (ieq(f->value, f->vlen, "100-continue") && h->expect != 2)
			h->expect = 1;
		else
			h->expect = 2;
	} else if (ieq(f->name, f->nlen, "connection")) {
		if (has_token(f->value, f->vlen, "close"))
			*close = true;
		if (has_token(f->value, f->vlen, "keep-alive"))
			*ka = true;
	}
	return 0;
}

int
rest_parse_head(const char *buf, size_t len, struct rest_head *h)
{
	size_t      scan = len < REST_HEAD_MAX ? len : REST_HEAD_MAX;
	const char *p = buf, *lim = buf + scan, *end = NULL, *q, *l, *eol, *sp1, *sp2;
	bool        close = false, ka = false;
	size_t      n;
	int         rv;

	/* Everything but the field array (3 KiB), which is valid as far as nhdr says. */
	memset(h, 0, offsetof(struct rest_head, hdr));
	/* Empty lines before a request are ignored (RFC 7230 3.5). */
	while (p < lim && (*p == '\n' || (*p == '\r' && p + 1 < lim && p[1] == '\n')))
		p += *p == '\r' ? 2 : 1;
	for (q = p; q < lim; q++) {
		if (*q != '\n')
			continue;
		if (q + 1 < lim && q[1] == '\n') {
			end = q + 2;
			break;
		}
		if (q + 2 < lim && q[1] == '\r' && q[2] == '\n') {
			end = q + 3;
			break;
		}
	}
	if (end == NULL)
		return len >= REST_HEAD_MAX ? -431 : 0;

	/* Request line: METHOD SP target SP HTTP/1.x */
	eol = memchr(p, '\n', (size_t)(end - p));
	n = (size_t)(eol - p);
	if (n > 0 && p[n - 1] == '\r')
		n--;
	if ((sp1 = memchr(p, ' ', n)) == NULL || sp1 == p ||
	    (sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p))) == NULL || sp2 == sp1 + 1)
		return -400;
	for (q = p; q < sp1; q++)
		if (!tchar((unsigned char)*q))
			return -400;
	for (q = sp1 + 1; q < sp2; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return -400;
	h->mname = p;
	h->mlen = (size_t)(sp1 - p);
	h->method = method_of(p, h->mlen);
	h->target = sp1 + 1;
	h->tlen = (size_t)(sp2 - sp1 - 1);
	q = sp2 + 1;
	n -= (size_t)(q - p);
	if (n == 8 && memcmp(q, "HTTP/1.", 7) == 0 && (q[7] == '0' || q[7] == '1'))
		h->minor = q[7] - '0';
	else if (n >= 6 && memcmp(q, "HTTP/", 5) == 0 && isdigit((unsigned char)q[5]))
		return -505;
	else
		return -400;

	for (l = eol + 1; l < end; l = eol + 1) {
		eol = memchr(l, '\n', (size_t)(end - l));
		n = (size_t)(eol - l);
		if (n > 0 && l[n - 1] == '\r')
			n--;
		if (n == 0)
			break; /* the empty line */
		if ((rv = parse_field(l, n, h, &close, &ka)) != 0)
			return rv;
	}
	h->keep_alive = h->minor == 1 ? !close : (ka && !close);
	h->len = (size_t)(end - buf);
	return (int)h->len;
}

const struct rest_hdr *
rest_header(const struct rest_head *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->nhdr; i++)
		if (ieq(h->hdr[i].name, h->hdr[i].nlen, name))
			return &h->hdr[i];
	return NULL;
}

int
rest_bearer(const struct rest_head *h, const char **tok, size_t *len)
{
	const struct rest_hdr *f = rest_header(h, "authorization");
	size_t                 i;

	if (f == NULL)
		return MOM_ENOENT;
	if (f->vlen < 7 || strncasecmp(f->value, "bearer ", 7) != 0)
		return MOM_EAUTH;
	for (i = 7; i < f->vlen && f->value[i] == ' '; i++)
		;
	if (i == f->vlen)
		return MOM_EAUTH;
	*tok = f->value + i;
	*len = f->vlen - i;
	return 0;
}

/* Routing. */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
rest_pct_decode(const char *s, size_t n, bool plus_space, char *dst, size_t dstlen)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			if ((hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0)
				return -1;
			c = hi << 4 | lo;
			i += 2;
			if (c == 0)
				return -1;
		} else if (c == '+' && plus_space)
			c = ' ';
		if (o + 1 >= dstlen)
			return -1;
		dst[o++] = (char)c;
	}
	if (dstlen == 0)
		return -1;
	dst[o] = '\0';
	return 0;
}

#define MAXSEG 7
#define SEGLEN (MOM_NAME_MAX + 2)

static const struct {
	int route;
	int allow;
} allowtab[] = {
	{ RT_HEALTHZ, REST_GET | REST_HEAD },
	{ RT_METRICS, REST_GET | REST_HEAD },
	{ RT_CLUSTER, REST_GET | REST_HEAD },
	{ RT_CNODES, REST_POST },
	{ RT_CNODE, REST_DELETE },
	{ RT_CTRANSFER, REST_POST },
	{ RT_CDIGEST, REST_GET | REST_HEAD },
	{ RT_QUEUES, REST_GET | REST_HEAD },
	{ RT_QUEUE, REST_GET | REST_HEAD | REST_PUT | REST_DELETE },
	{ RT_QPURGE, REST_POST },
	{ RT_QMOVE, REST_POST },
	{ RT_QUPDATE, REST_POST },
	{ RT_QMSGS, REST_GET | REST_POST },
	{ RT_QACK, REST_POST },
	{ RT_QNACK, REST_POST },
	{ RT_TOPICS, REST_GET | REST_HEAD },
	{ RT_TOPIC, REST_GET | REST_HEAD | REST_PUT | REST_DELETE },
	{ RT_TMSGS, REST_POST },
	{ RT_ALLSUBS, REST_GET | REST_HEAD },
	{ RT_SUBS, REST_GET | REST_HEAD },
	{ RT_SUB, REST_GET | REST_HEAD | REST_PUT | REST_DELETE },
	{ RT_SMSGS, REST_GET },
	{ RT_SACK, REST_POST },
	{ RT_SNACK, REST_POST },
};

static int
allowed(int route)
{
	size_t i;

	for (i = 0; i < sizeof(allowtab) / sizeof(allowtab[0]); i++)
		if (allowtab[i].route == route)
			return allowtab[i].allow;
	return 0;
}

void
rest_allow_text(int allow, char *buf, size_t len)
{
	static const struct {
		int         m;
		const char *name;
	} tab[] = {
		{ REST_GET, "GET" }, { REST_HEAD, "HEAD" }, { REST_POST, "POST" },
		{ REST_PUT, "PUT" }, { REST_DELETE, "DELETE" },
	};
	size_t i, off = 0;

	if (len > 0)
		buf[0] = '\0';
	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		if (!(allow & tab[i].m) || off >= len)
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "", tab[i].name);
	}
}

/* The route of decoded segments, or RT_NONE. */
static int
match(char seg[][SEGLEN], int n)
{
	const char *last = seg[n - 1];

	if (n == 1)
		return strcmp(seg[0], "healthz") == 0 ? RT_HEALTHZ :
		    strcmp(seg[0], "metrics") == 0 ? RT_METRICS : RT_NONE;
	if (strcmp(seg[0], "v1") != 0)
		return RT_NONE;
	if (n == 2)
		return strcmp(last, "cluster") == 0 ? RT_CLUSTER :
		    strcmp(last, "queues") == 0 ? RT_QUEUES :
		    strcmp(last, "topics") == 0 ? RT_TOPICS :
		    strcmp(last, "subscriptions") == 0 ? RT_ALLSUBS : RT_NONE;
	if (strcmp(seg[1], "cluster") == 0) {
		if (n == 3)
			return strcmp(last, "nodes") == 0 ? RT_CNODES :
			    strcmp(last, "transfer") == 0 ? RT_CTRANSFER :
			    strcmp(last, "digest") == 0 ? RT_CDIGEST : RT_NONE;
		return n == 4 && strcmp(seg[2], "nodes") == 0 ? RT_CNODE : RT_NONE;
	}
	if (strcmp(seg[1], "queues") == 0) {
		if (n == 3)
			return RT_QUEUE;
		if (n != 4)
			return RT_NONE;
		return strcmp(last, "purge") == 0 ? RT_QPURGE :
		    strcmp(last, "move") == 0 ? RT_QMOVE :
		    strcmp(last, "update") == 0 ? RT_QUPDATE :
		    strcmp(last, "messages") == 0 ? RT_QMSGS :
		    strcmp(last, "ack") == 0 ? RT_QACK :
		    strcmp(last, "nack") == 0 ? RT_QNACK : RT_NONE;
	}
	if (strcmp(seg[1], "topics") != 0)
		return RT_NONE;
	if (n == 3)
		return RT_TOPIC;
	if (n == 4)
		return strcmp(last, "messages") == 0 ? RT_TMSGS :
		    strcmp(last, "subscriptions") == 0 ? RT_SUBS : RT_NONE;
	if (strcmp(seg[3], "subscriptions") != 0)
		return RT_NONE;
	if (n == 5)
		return RT_SUB;
	if (n != 6)
		return RT_NONE;
	return strcmp(last, "messages") == 0 ? RT_SMSGS :
	    strcmp(last, "ack") == 0 ? RT_SACK :
	    strcmp(last, "nack") == 0 ? RT_SNACK : RT_NONE;
}

/* ?max=N&wait=D&from=F of a receive. */
static int
parse_query(const char *q, size_t n, int64_t now_ms, struct rest_target *t, char *err,
    size_t errlen)
{
	const char *p = q, *end = q + n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
		char        key[16], val[64];
		uint64_t    v;

		if (amp == NULL)
			amp = end;
		eq = memchr(p, '=', (size_t)(amp - p));
		if (eq == NULL)
			eq = amp;
		if (rest_pct_decode(p, (size_t)(eq - p), true, key, sizeof(key)) != 0) {
			p = amp + 1;
			continue; /* not one of ours */
		}
		if (rest_pct_decode(eq < amp ? eq + 1 : amp, eq < amp ? (size_t)(amp - eq - 1) : 0,
		    true, val, sizeof(val)) != 0) {
			if (strcmp(key, "max") == 0 || strcmp(key, "wait") == 0 ||
			    strcmp(key, "from") == 0 || strcmp(key, "peek") == 0) {
				snprintf(err, errlen, "bad value for query parameter '%s'", key);
				return 400;
			}
			p = amp + 1;
			continue;
		}
		if (strcmp(key, "max") == 0) {
			char *e;

			if (val[0] < '0' || val[0] > '9' || (v = strtoull(val, &e, 10)) == 0 ||
			    *e != '\0') {
				snprintf(err, errlen, "max must be a number of messages (1 to %d)",
				    REST_FETCH_MAX);
				return 400;
			}
			t->max = v > REST_FETCH_MAX ? REST_FETCH_MAX : v;
			t->max_set = true;
		} else if (strcmp(key, "peek") == 0) {
			if (strcmp(val, "1") != 0 && strcmp(val, "true") != 0 &&
			    strcmp(val, "0") != 0 && strcmp(val, "false") != 0) {
				snprintf(err, errlen, "peek must be 1 or 0");
				return 400;
			}
			t->peek = val[0] == '1' || val[0] == 't';
		} else if (strcmp(key, "wait") == 0) {
			if (mom_duration_parse(val, &v) != 0) {
				snprintf(err, errlen, "wait must be seconds or a duration (\"5\", \"500ms\")");
				return 400;
			}
			t->wait_ms = v > REST_WAIT_MAX_MS ? REST_WAIT_MAX_MS : v;
		} else if (strcmp(key, "from") == 0) {
			int64_t ms;

			if (strcmp(val, "first") == 0)
				t->from = MOM_FROM_FIRST;
			else if (strcmp(val, "last") == 0)
				t->from = MOM_FROM_LAST;
			else if (strcmp(val, "new") == 0)
				t->from = MOM_FROM_NEW;
			else if (mom_time_parse(val, now_ms, &ms) == 0 && ms >= 0) {
				t->from = MOM_FROM_TIME;
				t->from_ms = (uint64_t)ms;
			} else {
				snprintf(err, errlen, "from must be first, last, new or a time");
				return 400;
			}
		}
		p = amp + 1;
	}
	return 0;
}

int
rest_route(const struct rest_head *h, int64_t now_ms, struct rest_target *t, int *allow,
    char *err, size_t errlen)
{
	char        seg[MAXSEG][SEGLEN];
	bool        toolong[MAXSEG];
	const char *p = h->target, *end = h->target + h->tlen, *qs, *s;
	size_t      tlen = h->tlen;
	int         method = h->method, n = 0, route, rv;

	memset(t, 0, sizeof(*t));
	*allow = 0;
	t->method = method;
	t->max = 1;
	t->from = MOM_FROM_NEW;
	/* absolute-form: http://host[:port]/path */
	if (tlen > 7 && (strncasecmp(p, "http://", 7) == 0 || strncasecmp(p, "https://", 8) == 0)) {
		p = memchr(p, ':', tlen) + 3;
		if ((p = memchr(p, '/', (size_t)(end - p))) == NULL)
			p = end;
	}
	if (p == end || *p != '/')
		goto notfound;
	if ((qs = memchr(p, '?', (size_t)(end - p))) == NULL)
		qs = end;
	if ((s = memchr(p, '#', (size_t)(qs - p))) != NULL)
		qs = s;
	/* Segments between slashes; one trailing slash is forgiven. */
	for (p++; p < qs;) {
		const char *slash = memchr(p, '/', (size_t)(qs - p));
		size_t      len;

		if (slash == NULL)
			slash = qs;
		len = (size_t)(slash - p);
		if (len == 0 || n == MAXSEG)
			goto notfound;
		toolong[n] = false;
		if (rest_pct_decode(p, len, false, seg[n], SEGLEN) != 0) {
			/* A bad escape or a segment too long for any name. */
			for (s = p; s < slash; s++)
				if (*s == '%' && (s + 2 >= slash || hexval((unsigned char)s[1]) < 0 ||
				    hexval((unsigned char)s[2]) < 0 || (s[1] == '0' && s[2] == '0'))) {
					snprintf(err, errlen, "bad percent-encoding in the path");
					return 400;
				}
			toolong[n] = true;
			seg[n][0] = '\0';
		}
		n++;
		if (slash == qs)
			break;
		p = slash + 1;
	}
	if (n == 0 || (route = match(seg, n)) == RT_NONE)
		goto notfound;
	*allow = allowed(route);
	if (!(*allow & method)) {
		char a[64];

		rest_allow_text(*allow, a, sizeof(a));
		/* The method as sent: a token (tchar only), nothing to escape. */
		snprintf(err, errlen, "method %.*s not allowed here (allowed: %s)",
		    (int)(h->mlen > 16 ? 16 : h->mlen), h->mname, a);
		return 405;
	}
	t->route = route;
	switch (route) {
	case RT_QUEUE: case RT_QPURGE: case RT_QMOVE: case RT_QMSGS: case RT_QACK: case RT_QNACK:
	case RT_QUPDATE:
		if (toolong[2] || !mom_name_ok(seg[2])) {
			snprintf(err, errlen, "bad queue name");
			return 400;
		}
		break;
	case RT_TOPIC: case RT_TMSGS:
		if (toolong[2] || !mom_name_ok(seg[2])) {
			snprintf(err, errlen, "bad topic name");
			return 400;
		}
		break;
	case RT_SUBS: case RT_SUB: case RT_SMSGS: case RT_SACK: case RT_SNACK:
		if (toolong[2] || !mom_pattern_ok(seg[2])) {
			snprintf(err, errlen, "bad topic name or pattern");
			return 400;
		}
		if (n > 4 && (toolong[4] || !mom_name_ok(seg[4]))) {
			snprintf(err, errlen, "bad subscription name");
			return 400;
		}
		if (n > 4)
			memcpy(t->sub, seg[4], strlen(seg[4]) + 1);
		break;
	case RT_CNODE:
		if (toolong[3] || mom_node_id_parse(seg[3], &t->node) != 0) {
			snprintf(err, errlen, "bad node id (a positive integer)");
			return 400;
		}
		break;
	default:
		break;
	}
	if (n > 2)
		memcpy(t->name, seg[2], strlen(seg[2]) + 1);
	if ((route == RT_QMSGS && method == REST_GET) || route == RT_SMSGS) {
		if (qs < end && *qs == '?' &&
		    (rv = parse_query(qs + 1, (size_t)(end - qs - 1), now_ms, t, err, errlen)) != 0)
			return rv;
	}
	return 0;
notfound:
	snprintf(err, errlen, "no such resource");
	return 404;
}

bool
rest_needs_auth(const struct rest_target *t)
{
	return t->route != RT_HEALTHZ;
}

static bool
is_json(const struct rest_head *h)
{
	const struct rest_hdr *f = h ? rest_header(h, "content-type") : NULL;
	size_t                 n;

	if (f == NULL)
		return false;
	for (n = 0; n < f->vlen && f->value[n] != ';' && f->value[n] != ' '; n++)
		;
	return ieq(f->value, n, "application/json");
}

uint64_t
rest_body_limit(const struct rest_target *t, const struct rest_head *h, size_t max_payload)
{
	if ((t->route == RT_QMSGS && t->method == REST_POST) || t->route == RT_TMSGS)
		return is_json(h) ? 2 * (uint64_t)max_payload + 65536 : max_payload;
	return REST_SMALL_BODY;
}

/* Building requests. */

void
rest_call_fini(struct rest_call *c)
{
	json_decref(c->next);
	c->next = NULL;
}

static int
fail(char *err, size_t errlen, int rv, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
fail(char *err, size_t errlen, int rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rv;
}

/* An ADMIN frame for a JSON request (consumed). */
static int
admin_frame(struct mom_buf *f, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s == NULL)
		return MOM_ENOMEM;
	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_ADMIN, false, 0);
	mom_buf_put_str(f, s);
	free(s);
	return f->err;
}

/* A JSON body (NULL when empty); an object or MOM_EBADDATA. */
static int
body_object(const uint8_t *body, size_t blen, json_t **out, char *err, size_t errlen)
{
	json_error_t je;

	*out = NULL;
	if (blen == 0)
		return 0;
	if ((*out = json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return fail(err, errlen, MOM_EBADDATA, "body is not valid JSON: %s", je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return fail(err, errlen, MOM_EBADDATA, "body is not a JSON object");
	}
	return 0;
}

/* A duration given as "30s" or as a number of milliseconds. */
static int
json_duration(json_t *v, uint64_t *ms)
{
	if (json_is_string(v))
		return strlen(json_string_value(v)) == json_string_length(v) &&
		    mom_duration_parse(json_string_value(v), ms) == 0 ? 0 : -1;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*ms = (uint64_t)json_integer_value(v);
		return 0;
	}
	return -1;
}

/* A count or size given as a number, or a size as "64MiB". */
static int
json_size(json_t *v, uint64_t *n)
{
	if (json_is_string(v))
		return strlen(json_string_value(v)) == json_string_length(v) &&
		    mom_size_parse(json_string_value(v), n) == 0 ? 0 : -1;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*n = (uint64_t)json_integer_value(v);
		return 0;
	}
	return -1;
}

/*
 * PUT options into the create request o.  Each option (adminops.h) has
 * one name as the API documents it and the name the admin reply shows
 * (ack_wait and ack_wait_ms), so that what GET returns can be PUT back.
 */
static int
create_opts(json_t *o, bool queue, const uint8_t *body, size_t blen, char *err, size_t errlen)
{
	const struct mom_admin_op *op = mom_admin_op(queue ?
	    json_string_value(json_object_get(o, "op")) : "topic.create");
	json_t                    *b, *v;
	const char                *k;
	uint64_t                   n;
	int                        rv = 0;

	if ((rv = body_object(body, blen, &b, err, errlen)) != 0 || b == NULL)
		return rv;
	json_object_foreach(b, k, v) {
		const struct mom_admin_opt *opt = mom_admin_opt(op, k);
		bool                        dur;

		if (opt == NULL || opt->api == NULL) {
			rv = fail(err, errlen, MOM_EINVAL, "unknown %s option '%s'",
			    queue ? "queue" : "topic", k);
			break;
		}
		if (opt->type == MOM_AOPT_NAME) {
			/* null: none (an update removes the target) */
			if (json_is_null(v)) {
				if (strcmp(op->name, "queue.update") == 0)
					json_object_set(o, opt->key, v);
				continue;
			}
			if (!json_is_string(v) || !mom_name_ok(json_string_value(v))) {
				rv = fail(err, errlen, MOM_EINVAL, "bad %s queue name", opt->key);
				break;
			}
			json_object_set(o, opt->key, v);
			continue;
		}
		dur = opt->type == MOM_AOPT_DURATION;
		if ((dur ? json_duration(v, &n) : json_size(v, &n)) != 0 ||
		    n > mom_admin_opt_max(opt)) {
			rv = fail(err, errlen, MOM_EINVAL, "bad value for %s (want %s)", k,
			    dur ? "a duration like \"30s\" or milliseconds" : "a number");
			break;
		}
		json_object_set_new(o, opt->key, json_integer((json_int_t)n));
	}
	json_decref(b);
	return rv;
}

static int
sub_opts(json_t *o, const uint8_t *body, size_t blen, char *err, size_t errlen)
{
	json_t     *b, *v;
	const char *k;
	int         rv;

	json_object_set_new(o, "from", json_integer(MOM_FROM_NEW));
	if ((rv = body_object(body, blen, &b, err, errlen)) != 0 || b == NULL)
		return rv;
	json_object_foreach(b, k, v) {
		const char *f = json_string_value(v);
		int64_t     ms;

		if (strcmp(k, "from") != 0) {
			rv = fail(err, errlen, MOM_EINVAL, "unknown subscription option '%s'", k);
			break;
		}
		if (f == NULL)
			rv = fail(err, errlen, MOM_EINVAL, "from must be first, last, new or a time");
		else if (strcmp(f, "first") == 0)
			json_object_set_new(o, "from", json_integer(MOM_FROM_FIRST));
		else if (strcmp(f, "last") == 0)
			json_object_set_new(o, "from", json_integer(MOM_FROM_LAST));
		else if (strcmp(f, "new") == 0)
			json_object_set_new(o, "from", json_integer(MOM_FROM_NEW));
		else if (mom_time_parse(f, mom_now_ms(), &ms) == 0 && ms >= 0) {
			json_object_set_new(o, "from", json_integer(MOM_FROM_TIME));
			json_object_set_new(o, "from_time_ms", json_integer(ms));
		} else
			rv = fail(err, errlen, MOM_EINVAL, "from must be first, last, new or a time");
		if (rv != 0)
			break;
	}
	json_decref(b);
	return rv;
}

static bool
id_ok(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || n > MOM_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e)
			return false;
	return true;
}

/* A field value as a NUL-terminated string (for the duration parser). */
static int
field_duration(const struct rest_hdr *f, uint64_t *ms)
{
	char v[64];

	if (f->vlen == 0 || f->vlen >= sizeof(v))
		return -1;
	memcpy(v, f->value, f->vlen);
	v[f->vlen] = '\0';
	return mom_duration_parse(v, ms) == 0 ? 0 : -1;
}

/*
 * One message from a request body and its Mom-* fields: Mom-H-Key: value
 * becomes the message header Key, Mom-Id its id, Mom-TTL and Mom-Delay
 * durations.
 */
static int
pub_raw(struct mom_buf *f, uint8_t kind, const char *name, const struct rest_head *h,
    const uint8_t *body, size_t blen, size_t max_payload, char *err, size_t errlen)
{
	struct mom_pub_batch b = { 0 };
	struct mom_pub_msg   m = { 0 };
	struct mom_buf       hb;
	size_t               i, nh = 0;
	int                  rv = 0;

	if (blen > max_payload)
		return fail(err, errlen, MOM_ETOOBIG, "message of %zu bytes is over the limit of %zu",
		    blen, max_payload);
	mom_buf_init(&hb);
	for (i = 0; h && i < h->nhdr; i++) {
		const struct rest_hdr *x = &h->hdr[i];

		if (x->nlen > 6 && strncasecmp(x->name, "mom-h-", 6) == 0)
			nh++;
		else if (ieq(x->name, x->nlen, "mom-id")) {
			if (!id_ok(x->value, x->vlen)) {
				rv = fail(err, errlen, MOM_EINVAL,
				    "Mom-Id must be 1-%d printable ASCII characters", MOM_ID_MAX);
				goto out;
			}
			m.id.p = (const uint8_t *)x->value;
			m.id.n = x->vlen;
		} else if (ieq(x->name, x->nlen, "mom-ttl") || ieq(x->name, x->nlen, "mom-delay")) {
			bool ttl = x->nlen == 7;

			if (field_duration(x, ttl ? &m.ttl_ms : &m.delay_ms) != 0) {
				rv = fail(err, errlen, MOM_EINVAL, "bad duration in %s",
				    ttl ? "Mom-TTL" : "Mom-Delay");
				goto out;
			}
		}
	}
	if (nh > 0) {
		mom_buf_put_varint(&hb, nh);
		for (i = 0; i < h->nhdr; i++) {
			const struct rest_hdr *x = &h->hdr[i];

			if (x->nlen <= 6 || strncasecmp(x->name, "mom-h-", 6) != 0)
				continue;
			if (!mom_hdr_key_valid(x->name + 6, x->nlen - 6)) {
				rv = fail(err, errlen, MOM_EINVAL, "bad message header name '%.*s'",
				    (int)(x->nlen - 6 > 64 ? 64 : x->nlen - 6), x->name + 6);
				goto out;
			}
			mom_buf_put_bytes(&hb, x->name + 6, x->nlen - 6);
			mom_buf_put_bytes(&hb, x->value, x->vlen);
		}
		if (hb.len > MOM_HEADERS_MAX) {
			rv = fail(err, errlen, MOM_EINVAL, "message headers over %d bytes", MOM_HEADERS_MAX);
			goto out;
		}
		m.headers.p = hb.data;
		m.headers.n = hb.len;
	}
	b.kind = m.kind = kind;
	b.name.p = m.name.p = (const uint8_t *)name;
	b.name.n = m.name.n = strlen(name);
	b.count = 1;
	m.payload.p = body;
	m.payload.n = blen;
	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_PUBLISH, false, 0);
	mom_pub_encode_begin(f, &b);
	mom_pub_encode_msg(f, &b, &m);
	rv = f->err ? MOM_ENOMEM : hb.err ? MOM_ENOMEM : 0;
out:
	mom_buf_fini(&hb);
	return rv;
}

/* The headers object of a batch message as a header block. */
static int
json_headers(json_t *obj, struct mom_buf *b, size_t idx, char *err, size_t errlen)
{
	const char *key;
	size_t      klen;
	json_t     *v;

	if (!json_is_object(obj))
		return fail(err, errlen, MOM_EBADDATA, "message %zu: headers is not an object", idx);
	if (json_object_size(obj) == 0)
		return 0;
	mom_buf_put_varint(b, json_object_size(obj));
	json_object_keylen_foreach(obj, key, klen, v) {
		const char *s = json_string_value(v);
		size_t      n = json_string_length(v);

		if (!mom_hdr_key_valid(key, klen))
			return fail(err, errlen, MOM_EBADDATA, "message %zu: bad header name \"%.*s\"",
			    idx, (int)(klen > 64 ? 64 : klen), key);
		if (s == NULL || memchr(s, '\r', n) || memchr(s, '\n', n) || memchr(s, '\0', n))
			return fail(err, errlen, MOM_EBADDATA,
			    "message %zu: header %.*s must be a string without CR, LF or NUL", idx,
			    (int)klen, key);
		mom_buf_put_bytes(b, key, klen);
		mom_buf_put_bytes(b, s, n);
	}
	if (b->len > MOM_HEADERS_MAX)
		return fail(err, errlen, MOM_EBADDATA, "message %zu: headers over %d bytes", idx,
		    MOM_HEADERS_MAX);
	return b->err;
}

/*
 * {"messages":[{"payload"|"payload_b64", "headers", "id", "ttl", "delay"}]}
 * as one batch.  Other members of a message (the "queue", "seq", "time"
 * mom-sub --jsonl writes) are ignored: the path names the target.
 */
static int
pub_batch(struct mom_buf *f, uint8_t kind, const char *name, json_t *msgs, size_t max_payload,
    char *err, size_t errlen)
{
	struct mom_pub_batch b = { 0 };
	struct mom_buf       pl, hb;
	size_t               i;
	int                  rv = 0;

	if (json_array_size(msgs) == 0)
		return fail(err, errlen, MOM_EBADDATA, "messages is empty");
	if (json_array_size(msgs) > MOM_BATCH_MAX)
		return fail(err, errlen, MOM_EBADDATA, "more than %d messages", MOM_BATCH_MAX);
	b.kind = kind;
	b.name.p = (const uint8_t *)name;
	b.name.n = strlen(name);
	b.count = json_array_size(msgs);
	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_PUBLISH, false, 0);
	mom_pub_encode_begin(f, &b);
	mom_buf_init(&pl);
	mom_buf_init(&hb);
	for (i = 0; i < b.count; i++) {
		json_t            *o = json_array_get(msgs, i), *v, *p, *p64, *ttl, *delay;
		struct mom_pub_msg m = { 0 };

		mom_buf_reset(&pl);
		mom_buf_reset(&hb);
		if (!json_is_object(o)) {
			rv = fail(err, errlen, MOM_EBADDATA, "message %zu is not an object", i);
			break;
		}
		p = json_object_get(o, "payload");
		p64 = json_object_get(o, "payload_b64");
		if (p != NULL && p64 != NULL) {
			rv = fail(err, errlen, MOM_EBADDATA, "message %zu: both payload and payload_b64", i);
			break;
		}
		if (p != NULL) {
			if (!json_is_string(p)) {
				rv = fail(err, errlen, MOM_EBADDATA, "message %zu: payload is not a string", i);
				break;
			}
			m.payload.p = (const uint8_t *)json_string_value(p);
			m.payload.n = json_string_length(p);
		} else if (p64 != NULL) {
			if (!json_is_string(p64) ||
			    mom_b64_decode(json_string_value(p64), json_string_length(p64), &pl) != 0) {
				rv = fail(err, errlen, MOM_EBADDATA, "message %zu: bad base64 in payload_b64", i);
				break;
			}
			m.payload.p = pl.data;
			m.payload.n = pl.len;
		}
		if (m.payload.n > max_payload) {
			rv = fail(err, errlen, MOM_ETOOBIG,
			    "message %zu: %zu bytes is over the limit of %zu", i, m.payload.n, max_payload);
			break;
		}
		if ((v = json_object_get(o, "id")) != NULL) {
			if (!json_is_string(v) || !id_ok(json_string_value(v), json_string_length(v))) {
				rv = fail(err, errlen, MOM_EBADDATA,
				    "message %zu: id must be 1-%d printable ASCII characters", i, MOM_ID_MAX);
				break;
			}
			m.id.p = (const uint8_t *)json_string_value(v);
			m.id.n = json_string_length(v);
		}
		ttl = json_object_get(o, "ttl");
		delay = json_object_get(o, "delay");
		if ((ttl != NULL && json_duration(ttl, &m.ttl_ms) != 0) ||
		    (delay != NULL && json_duration(delay, &m.delay_ms) != 0)) {
			rv = fail(err, errlen, MOM_EBADDATA, "message %zu: bad %s (want a duration "
			    "like \"30s\" or milliseconds)", i,
			    ttl != NULL && json_duration(ttl, &m.ttl_ms) != 0 ? "ttl" : "delay");
			break;
		}
		if ((v = json_object_get(o, "headers")) != NULL &&
		    (rv = json_headers(v, &hb, i, err, errlen)) != 0)
			break;
		m.headers.p = hb.data;
		m.headers.n = hb.len;
		m.kind = kind;
		m.name = b.name;
		mom_pub_encode_msg(f, &b, &m);
	}
	if (rv == 0 && (f->err || pl.err))
		rv = fail(err, errlen, MOM_ENOMEM, "out of memory");
	mom_buf_fini(&pl);
	mom_buf_fini(&hb);
	return rv;
}

/*
 * A publish: a JSON document {"messages":[...]} sent as application/json
 * is a batch; any other body is one message.  A body that claims to be
 * JSON and is not is refused rather than stored as a surprise.
 */
static int
publish(struct mom_buf *f, uint8_t kind, const char *name, const struct rest_head *h,
    const uint8_t *body, size_t blen, size_t max_payload, char *err, size_t errlen)
{
	json_error_t je;
	json_t      *root, *msgs;
	int          rv;

	if (!is_json(h))
		return pub_raw(f, kind, name, h, body, blen, max_payload, err, errlen);
	if ((root = json_loadb((const char *)body, blen, JSON_ALLOW_NUL | JSON_DECODE_ANY, &je)) ==
	    NULL)
		return fail(err, errlen, MOM_EBADDATA, "body is not valid JSON: %s "
		    "(send a message that is not JSON with another Content-Type)", je.text);
	msgs = json_is_object(root) ? json_object_get(root, "messages") : NULL;
	if (json_is_array(msgs))
		rv = pub_batch(f, kind, name, msgs, max_payload, err, errlen);
	else
		rv = pub_raw(f, kind, name, h, body, blen, max_payload, err, errlen);
	json_decref(root);
	return rv;
}

int
rest_receipt(json_t *v, uint64_t *out)
{
	const char *s;
	uint64_t    x = 0;
	size_t      i, n;

	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if ((s = json_string_value(v)) == NULL || (n = json_string_length(v)) == 0 || n > 20)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x == 0)
		return -1;
	*out = x;
	return 0;
}

/*
 * Acks or nacks: a FETCH of a consumer that holds nothing, leases nothing
 * and leaves at once (MOM_FF_CLOSE releases only its own leases: none), so
 * receipts from any earlier receive can be settled by any request.
 */
static int
settle(struct mom_buf *f, const struct rest_target *t, bool nack, const uint8_t *body,
    size_t blen, uint64_t consumer, size_t *count, char *err, size_t errlen)
{
	struct mom_fetch fe = { 0 };
	json_t          *b, *r, *v;
	uint64_t        *rc = NULL, *delays = NULL, delay = 0;
	bool             dead = false;
	size_t           i, n;
	const char      *k;
	int              rv;

	if ((rv = body_object(body, blen, &b, err, errlen)) != 0)
		return rv;
	if (b == NULL || !json_is_array(r = json_object_get(b, "receipts"))) {
		json_decref(b);
		return fail(err, errlen, MOM_EBADDATA, "body must be {\"receipts\":[...]}");
	}
	json_object_foreach(b, k, v) {
		if (strcmp(k, "receipts") == 0)
			continue;
		if (nack && strcmp(k, "dead") == 0) {
			if (!json_is_boolean(v)) {
				json_decref(b);
				return fail(err, errlen, MOM_EINVAL, "bad dead (want true or false)");
			}
			dead = json_is_true(v);
			continue;
		}
		if (nack && strcmp(k, "delay") == 0) {
			if (json_duration(v, &delay) != 0 || delay > (UINT64_MAX >> 4)) {
				json_decref(b);
				return fail(err, errlen, MOM_EINVAL, "bad delay (want a duration like "
				    "\"5s\" or milliseconds)");
			}
			continue;
		}
		rv = fail(err, errlen, MOM_EINVAL, "unknown member '%s'", k);
		json_decref(b);
		return rv;
	}
	if ((n = json_array_size(r)) > REST_FETCH_MAX) {
		json_decref(b);
		return fail(err, errlen, MOM_EBADDATA, "more than %d receipts", REST_FETCH_MAX);
	}
	if ((rc = calloc(n + 1, sizeof(*rc))) == NULL ||
	    (nack && (delays = calloc(n + 1, sizeof(*delays))) == NULL)) {
		rv = fail(err, errlen, MOM_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (rest_receipt(json_array_get(r, i), &rc[i]) != 0) {
			rv = fail(err, errlen, MOM_EBADDATA, "receipt %zu is not a receipt "
			    "(a decimal string as received)", i);
			goto out;
		}
		if (nack)
			delays[i] = MOM_NACK_DELAY(delay) | (dead ? MOM_NACK_DEAD : 0);
	}
	fe.consumer = consumer;
	fe.kind = t->route == RT_QACK || t->route == RT_QNACK ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
	fe.name.p = (const uint8_t *)t->name;
	fe.name.n = strlen(t->name);
	fe.durable.p = (const uint8_t *)t->sub;
	fe.durable.n = strlen(t->sub);
	fe.flags = MOM_FF_CLOSE;
	if (nack) {
		fe.nnacks = n;
		fe.nack_receipts = rc;
		fe.nack_delays = delays;
	} else {
		fe.nacks = n;
		fe.acks = rc;
	}
	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(f, &fe);
	*count = n;
	rv = f->err ? fail(err, errlen, MOM_ENOMEM, "out of memory") : 0;
out:
	free(rc);
	free(delays);
	json_decref(b);
	return rv;
}

static int
fetch(struct mom_buf *f, const struct rest_target *t, uint64_t consumer)
{
	struct mom_fetch fe = { 0 };

	fe.consumer = consumer;
	fe.kind = t->route == RT_QMSGS ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
	fe.name.p = (const uint8_t *)t->name;
	fe.name.n = strlen(t->name);
	fe.durable.p = (const uint8_t *)t->sub;
	fe.durable.n = strlen(t->sub);
	fe.from = t->from;
	fe.from_time_ms = t->from_ms;
	fe.max_msgs = t->max ? t->max : 1;
	fe.wait_ms = t->wait_ms;
	mom_buf_reset(f);
	mom_frame_encode(f, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(f, &fe);
	return f->err;
}

static int
queue_move(struct mom_buf *f, const struct rest_target *t, const uint8_t *body, size_t blen,
    char *err, size_t errlen)
{
	json_t     *b, *v, *o;
	const char *k, *to = NULL;
	uint64_t    max = 0;
	int         rv;

	if ((rv = body_object(body, blen, &b, err, errlen)) != 0)
		return rv;
	json_object_foreach(b, k, v) {
		if (strcmp(k, "to") == 0 && json_is_string(v) && mom_name_ok(json_string_value(v)))
			to = json_string_value(v);
		else if (strcmp(k, "max") == 0 && json_is_integer(v) && json_integer_value(v) >= 0)
			max = (uint64_t)json_integer_value(v);
		else {
			rv = fail(err, errlen, MOM_EINVAL, strcmp(k, "to") == 0 ?
			    "bad destination queue name" : strcmp(k, "max") == 0 ?
			    "max must be a number of messages" : "unknown member '%s'", k);
			json_decref(b);
			return rv;
		}
	}
	if (to == NULL) {
		json_decref(b);
		return fail(err, errlen, MOM_EBADDATA, "body must be {\"to\":\"QUEUE\"}");
	}
	o = json_pack("{s:s, s:s, s:s}", "op", "queue.move", "src", t->name, "dst", to);
	if (o != NULL && max > 0)
		json_object_set_new(o, "max", json_integer((json_int_t)max));
	json_decref(b);
	return admin_frame(f, o);
}

/*
 * GET /v1/cluster, GET /v1/cluster/digest, DELETE /v1/cluster/nodes/ID,
 * POST /v1/cluster/nodes {"id":N,"url":"tcp://..."} and POST
 * /v1/cluster/transfer {"id":N} or
 * {} (or no body): the core checks the values, this only their types.
 */
static int
cluster_req(struct mom_buf *f, const struct rest_target *t, const uint8_t *body,
    size_t blen, char *err, size_t errlen)
{
	bool        add = t->route == RT_CNODES;
	json_t     *b, *v, *o;
	const char *k;
	int         rv;

	if (t->route == RT_CLUSTER || t->route == RT_CNODE || t->route == RT_CDIGEST) {
		o = t->route == RT_CLUSTER ? json_pack("{s:s}", "op", "cluster.status") :
		    t->route == RT_CDIGEST ? json_pack("{s:s}", "op", "cluster.digest") :
		    json_pack("{s:s, s:I}", "op", "cluster.remove", "id", (json_int_t)t->node);
		return admin_frame(f, o) != 0 ? fail(err, errlen, MOM_ENOMEM, "out of memory") : 0;
	}
	if ((rv = body_object(body, blen, &b, err, errlen)) != 0)
		return rv;
	if ((o = json_pack("{s:s}", "op", add ? "cluster.add" : "cluster.transfer")) == NULL) {
		json_decref(b);
		return fail(err, errlen, MOM_ENOMEM, "out of memory");
	}
	json_object_foreach(b, k, v) {
		if (strcmp(k, "id") == 0 && json_is_integer(v) && json_integer_value(v) > 0)
			json_object_set(o, k, v);
		else if (strcmp(k, "url") == 0 && add && json_is_string(v))
			json_object_set(o, k, v);
		else {
			rv = fail(err, errlen, MOM_EINVAL, strcmp(k, "id") == 0 ?
			    "the node id must be a positive integer" : strcmp(k, "url") == 0 &&
			    add ? "url must be a string" : "unknown member '%s'", k);
			json_decref(b);
			json_decref(o);
			return rv;
		}
	}
	json_decref(b);
	if (add && (json_object_get(o, "id") == NULL || json_object_get(o, "url") == NULL)) {
		json_decref(o);
		return fail(err, errlen, MOM_EBADDATA, "body must be {\"id\":N,\"url\":\"URL\"}");
	}
	if (admin_frame(f, o) != 0)
		return fail(err, errlen, MOM_ENOMEM, "out of memory");
	return 0;
}

/*
 * GET .../messages?peek=1 (a look that leaves them: an admin read,
 * answered as it is) and POST .../update (the options of PUT).
 */
static int
queue_look_or_update(struct mom_buf *f, const struct rest_target *t, const uint8_t *body,
    size_t blen, char *err, size_t errlen)
{
	json_t *o;
	int     rv;

	if ((o = json_pack("{s:s, s:s}", "op", t->route == RT_QUPDATE ? "queue.update" :
	    "queue.peek", "name", t->name)) == NULL)
		return fail(err, errlen, MOM_ENOMEM, "out of memory");
	if (t->route == RT_QUPDATE && (rv = create_opts(o, true, body, blen, err, errlen)) != 0) {
		json_decref(o);
		return rv;
	}
	if (t->route != RT_QUPDATE && t->max_set)
		json_object_set_new(o, "max", json_integer((json_int_t)t->max));
	if (admin_frame(f, o) != 0)
		return fail(err, errlen, MOM_ENOMEM, "out of memory");
	return 0;
}

int
rest_build(const struct rest_target *t, const struct rest_head *h, const uint8_t *body,
    size_t blen, size_t max_payload, uint64_t consumer, struct rest_call *call,
    struct mom_buf *frame, char *err, size_t errlen)
{
	int         m = t->method == REST_HEAD ? REST_GET : t->method;
	bool        q = t->route == RT_QUEUE;
	json_t     *o = NULL;
	int         rv;

	memset(call, 0, sizeof(*call));
	mom_buf_reset(frame);
	call->op = RO_ADMIN;
	call->wire_op = MOM_OP_ADMIN;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	switch (t->route) {
	case RT_HEALTHZ:
		call->op = RO_LOCAL;
		return 0;
	case RT_METRICS:
		call->op = RO_METRICS;
		o = json_pack("{s:s}", "op", "stats.prom");
		break;
	case RT_CLUSTER: case RT_CNODES: case RT_CNODE: case RT_CTRANSFER: case RT_CDIGEST:
		return cluster_req(frame, t, body, blen, err, errlen);
	case RT_QUEUES:
	case RT_TOPICS:
		call->op = RO_LIST;
		call->wrap = t->route == RT_QUEUES ? "queues" : "topics";
		o = json_pack("{s:s}", "op", t->route == RT_QUEUES ? "queue.list" : "topic.list");
		break;
	case RT_ALLSUBS:
	case RT_SUBS:
		call->op = RO_LIST;
		call->wrap = "subscriptions";
		o = json_pack("{s:s}", "op", "sub.list");
		if (o != NULL && t->route == RT_SUBS)
			json_object_set_new(o, "topic", json_string(t->name));
		break;
	case RT_QUEUE:
	case RT_TOPIC:
		if (m != REST_PUT) {
			o = json_pack("{s:s, s:s}", "op", q ? (m == REST_GET ? "queue.info" :
			    "queue.delete") : (m == REST_GET ? "topic.info" : "topic.delete"),
			    "name", t->name);
			break;
		}
		/* PUT: look first, so that the answer can tell 201 from 200. */
		if ((call->next = json_pack("{s:s, s:s}", "op", q ? "queue.create" : "topic.create",
		    "name", t->name)) == NULL)
			return fail(err, errlen, MOM_ENOMEM, "out of memory");
		if ((rv = create_opts(call->next, q, body, blen, err, errlen)) != 0) {
			rest_call_fini(call);
			return rv;
		}
		call->op = RO_PROBE;
		o = json_pack("{s:s, s:s}", "op", q ? "queue.info" : "topic.info", "name", t->name);
		break;
	case RT_SUB:
		if (m == REST_DELETE) {
			o = json_pack("{s:s, s:s, s:s}", "op", "sub.delete", "pattern", t->name,
			    "name", t->sub);
			break;
		}
		if (m == REST_PUT) {
			if ((call->next = json_pack("{s:s, s:s, s:s, s:b}", "op", "sub.create",
			    "pattern", t->name, "name", t->sub, "durable", 1)) == NULL)
				return fail(err, errlen, MOM_ENOMEM, "out of memory");
			if ((rv = sub_opts(call->next, body, blen, err, errlen)) != 0) {
				rest_call_fini(call);
				return rv;
			}
		}
		/* GET and PUT both look for it in the topic's list first. */
		call->op = RO_PROBE;
		memcpy(call->pattern, t->name, sizeof(call->pattern));
		memcpy(call->sub, t->sub, sizeof(call->sub));
		o = json_pack("{s:s, s:s}", "op", "sub.list", "topic", t->name);
		break;
	case RT_QPURGE:
		o = json_pack("{s:s, s:s}", "op", "queue.purge", "name", t->name);
		break;
	case RT_QMOVE:
		return queue_move(frame, t, body, blen, err, errlen);
	case RT_QUPDATE:
	case RT_QMSGS:
	case RT_TMSGS:
		if (t->route == RT_QUPDATE || (m == REST_GET && t->peek && t->route == RT_QMSGS))
			return queue_look_or_update(frame, t, body, blen, err, errlen);
		if (m == REST_GET) {
			call->op = RO_FETCH;
			call->wire_op = MOM_OP_FETCH;
			return fetch(frame, t, consumer) ? fail(err, errlen, MOM_ENOMEM, "out of memory") : 0;
		}
		call->op = RO_PUBLISH;
		call->wire_op = MOM_OP_PUBLISH;
		return publish(frame, t->route == RT_QMSGS ? MOM_KIND_QUEUE : MOM_KIND_TOPIC, t->name,
		    h, body, blen, max_payload, err, errlen);
	case RT_SMSGS:
		call->op = RO_FETCH;
		call->wire_op = MOM_OP_FETCH;
		return fetch(frame, t, consumer) ? fail(err, errlen, MOM_ENOMEM, "out of memory") : 0;
	case RT_QACK:
	case RT_QNACK:
	case RT_SACK:
	case RT_SNACK:
		call->op = RO_SETTLE;
		call->wire_op = MOM_OP_FETCH;
		call->nack = t->route == RT_QNACK || t->route == RT_SNACK;
		return settle(frame, t, call->nack, body, blen, consumer, &call->count, err, errlen);
	default:
		return fail(err, errlen, MOM_EINVAL, "no such resource");
	}
	if (admin_frame(frame, o) != 0) {
		rest_call_fini(call);
		return fail(err, errlen, MOM_ENOMEM, "out of memory");
	}
	return 0;
}

/* Answers. */

void
rest_response_init(struct rest_response *r)
{
	memset(r, 0, sizeof(*r));
	mom_buf_init(&r->body);
	r->status = 200;
	r->ctype = "application/json";
}

void
rest_response_fini(struct rest_response *r)
{
	mom_buf_fini(&r->body);
}

static void
put(struct mom_buf *b, const char *s)
{
	mom_buf_put(b, s, strlen(s));
}

static void
put_u64(struct mom_buf *b, uint64_t v)
{
	char n[24];

	snprintf(n, sizeof(n), "%" PRIu64, v);
	put(b, n);
}

int
rest_status(int err)
{
	switch (err) {
	case MOM_OK:
		return 200;
	case MOM_EINVAL:
	case MOM_EBADDATA:
	case MOM_EPROTO:
		return 400;
	case MOM_EAUTH:
		return 401;
	case MOM_EPERM:
		return 403;
	case MOM_ENOENT:
		return 404;
	case MOM_EEXIST:
	case MOM_EFULL:
		return 409;
	case MOM_ETOOBIG:
		return 413;
	case MOM_ETIMEDOUT:
		return 504;
	case MOM_EBUSY:
	case MOM_EUNAVAIL:
	case MOM_ECLOSED:
	case MOM_ENOTLEADER:
	case MOM_ENOMEM:
		return 503;
	default:
		return 500;
	}
}

void
rest_http_error(struct rest_response *r, int status, const char *code, const char *msg)
{
	r->status = status;
	r->ctype = "application/json";
	mom_buf_reset(&r->body);
	put(&r->body, "{\"error\":");
	mom_json_str(&r->body, (const uint8_t *)msg, strlen(msg));
	put(&r->body, ",\"code\":");
	mom_json_str(&r->body, (const uint8_t *)code, strlen(code));
	put(&r->body, "}");
}

void
rest_error(struct rest_response *r, int err, const char *msg)
{
	rest_http_error(r, rest_status(err), mom_err_name(err),
	    msg != NULL && *msg != '\0' ? msg : mom_strerror(err));
	if (err == MOM_EAUTH)
		snprintf(r->extra, sizeof(r->extra),
		    "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n");
	else if (err == MOM_EBUSY)
		snprintf(r->extra, sizeof(r->extra), "Retry-After: 1\r\n");
}

/*
 * The answer to a settle: {"acked":N,"stale":[...]} with N the receipts
 * that settled.  A receipt that names no lease held now (its ack wait
 * passed, it was settled already, it is from before a restart or a change
 * of leader, or another user's) settled nothing: then 409, code
 * "stale_receipt", with the same members, so that a script notices and a
 * program knows which.  A broker that reports none (older) means none.
 */
static int
settle_json(struct mom_rd *rd, const struct rest_call *call, struct rest_response *r)
{
	uint64_t n, i, nstale = 0;
	size_t   start;

	(void)mom_rd_varint(rd); /* ready */
	if ((n = mom_rd_varint(rd)) != 0 || rd->err)
		return MOM_EPROTO; /* a settle leases nothing */
	if (mom_rd_left(rd) > 0)
		nstale = mom_rd_varint_max(rd, mom_rd_left(rd));
	if (rd->err || nstale > call->count)
		return MOM_EPROTO;
	if (nstale > 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "%" PRIu64 " of %zu receipts are stale: they name no "
		    "delivery held now, and settled nothing", nstale, call->count);
		rest_http_error(r, 409, "stale_receipt", msg);
		r->body.len--; /* reopen the object */
		put(&r->body, ",");
	} else
		put(&r->body, "{");
	put(&r->body, call->nack ? "\"nacked\":" : "\"acked\":");
	put_u64(&r->body, call->count - nstale);
	put(&r->body, ",\"stale\":[");
	start = r->body.len;
	for (i = 0; i < nstale; i++) {
		put(&r->body, r->body.len > start ? ",\"" : "\"");
		put_u64(&r->body, mom_rd_varint(rd));
		put(&r->body, "\"");
	}
	put(&r->body, "]}");
	return rd->err ? MOM_EPROTO : 0;
}

/* {"messages":[...]} from a FETCH reply body. */
static int
fetch_json(struct mom_rd *rd, struct mom_buf *out)
{
	uint64_t            n, i;
	struct mom_delivery d;
	char                tm[40];

	(void)mom_rd_varint(rd); /* ready */
	n = mom_rd_varint(rd);
	if (rd->err)
		return MOM_EPROTO;
	put(out, "{\"messages\":[");
	for (i = 0; i < n; i++) {
		if (mom_delivery_decode(rd, &d) != 0)
			return MOM_EPROTO;
		put(out, i ? ",{\"receipt\":\"" : "{\"receipt\":\"");
		put_u64(out, d.receipt);
		put(out, d.kind == MOM_KIND_TOPIC ? "\",\"topic\":" : "\",\"queue\":");
		mom_json_str(out, d.name.p, d.name.n);
		if (d.id.n > 0) {
			put(out, ",\"id\":");
			mom_json_str(out, d.id.p, d.id.n);
		}
		put(out, ",\"seq\":");
		put_u64(out, d.seq);
		mom_time_format((int64_t)d.time_ms, tm, sizeof(tm));
		put(out, ",\"time\":\"");
		put(out, tm);
		put(out, "\",\"deliveries\":");
		put_u64(out, d.deliveries);
		put(out, ",\"headers\":{");
		if (d.headers.n > 0) {
			struct mom_hdr_iter it;
			struct mom_slice    k, v;
			int                 first = 1;

			mom_hdr_iter_init(&it, d.headers.p, d.headers.n);
			while (mom_hdr_next(&it, &k, &v)) {
				if (!first)
					put(out, ",");
				mom_json_str(out, k.p, k.n);
				put(out, ":");
				mom_json_str(out, v.p, v.n);
				first = 0;
			}
		}
		put(out, "}");
		if (mom_utf8_valid(d.payload.p, d.payload.n)) {
			put(out, ",\"payload\":");
			mom_json_str(out, d.payload.p, d.payload.n);
		} else {
			put(out, ",\"payload_b64\":\"");
			mom_b64_encode(d.payload.p, d.payload.n, out);
			put(out, "\"");
		}
		put(out, "}");
	}
	put(out, "]}");
	return out->err ? MOM_ENOMEM : 0;
}

/* The JSON text of an ADMIN reply body (borrowed from the frame). */
static int
admin_text(struct mom_rd *rd, const char **s, size_t *n)
{
	*s = (const char *)mom_rd_bytes(rd, n);
	return rd->err || *s == NULL ? MOM_EPROTO : 0;
}

/* The subscription pattern/name in a sub.list answer, as an owned object, or NULL. */
static json_t *
find_sub(const char *s, size_t n, const char *pattern, const char *name)
{
	json_t *a = json_loadb(s, n, 0, NULL), *e, *found = NULL;
	size_t  i;

	json_array_foreach(a, i, e) {
		const char *p = json_string_value(json_object_get(e, "topic"));
		const char *nm = json_string_value(json_object_get(e, "name"));

		if (p != NULL && nm != NULL && strcmp(p, pattern) == 0 && strcmp(nm, name) == 0) {
			found = json_incref(e);
			break;
		}
	}
	json_decref(a);
	return found;
}

static void
json_body(struct rest_response *r, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s == NULL) {
		rest_error(r, MOM_ENOMEM, "out of memory");
		return;
	}
	mom_buf_reset(&r->body);
	put(&r->body, s);
	free(s);
}

void
rest_reply(struct rest_call *call, const uint8_t *reply, size_t len, struct rest_response *r,
    struct mom_buf *frame)
{
	struct mom_rd rd;
	char          err[512];
	const char   *s;
	size_t        n;
	int           rv;

	r->again = false;
	r->status = 200;
	r->ctype = "application/json";
	r->extra[0] = '\0';
	mom_buf_reset(&r->body);
	if (reply == NULL) {
		rest_error(r, MOM_ENOMEM, "the broker could not build an answer");
		return;
	}
	rv = mom_wire_status(reply, len, call->wire_op, &rd, err, sizeof(err));
	if (call->op == RO_PROBE && (rv == 0 || rv == MOM_ENOENT)) {
		json_t *found = NULL;

		if (call->pattern[0] != '\0') {
			/* A subscription: the probe was the topic's list. */
			if (rv != 0 || admin_text(&rd, &s, &n) != 0) {
				rest_error(r, rv ? rv : MOM_EPROTO, rv ? err : "malformed answer");
				return;
			}
			found = find_sub(s, n, call->pattern, call->sub);
			if (call->next == NULL || found != NULL) {
				/* GET, or PUT of one that exists: the options only matter at creation. */
				if (found == NULL)
					rest_error(r, MOM_ENOENT, "no such subscription");
				else
					json_body(r, found);
				json_decref(found);
				return;
			}
		}
		call->created = rv == MOM_ENOENT || call->pattern[0] != '\0';
		call->op = RO_CREATE;
		call->wire_op = MOM_OP_ADMIN;
		rv = admin_frame(frame, call->next);
		call->next = NULL;
		if (rv != 0) {
			rest_error(r, MOM_ENOMEM, "out of memory");
			return;
		}
		r->again = true;
		return;
	}
	if (rv != 0) {
		rest_error(r, rv, err);
		return;
	}
	r->status = 200;
	r->ctype = "application/json";
	mom_buf_reset(&r->body);
	switch (call->op) {
	case RO_PUBLISH: {
		uint64_t stored = mom_rd_varint(&rd), dup = mom_rd_varint(&rd);

		if (rd.err)
			break;
		put(&r->body, "{\"stored\":");
		put_u64(&r->body, stored);
		put(&r->body, ",\"duplicates\":");
		put_u64(&r->body, dup);
		put(&r->body, "}");
		return;
	}
	case RO_FETCH:
		if ((rv = fetch_json(&rd, &r->body)) != 0) {
			rest_error(r, rv, rv == MOM_ENOMEM ? "out of memory" : "malformed answer");
			return;
		}
		return;
	case RO_SETTLE:
		if (settle_json(&rd, call, r) != 0)
			break;
		return;
	case RO_ADMIN:
	case RO_CREATE:
		if (admin_text(&rd, &s, &n) != 0)
			break;
		if (call->op == RO_CREATE && call->created)
			r->status = 201;
		mom_buf_put(&r->body, s, n);
		return;
	case RO_LIST:
		if (admin_text(&rd, &s, &n) != 0)
			break;
		put(&r->body, "{\"");
		put(&r->body, call->wrap);
		put(&r->body, "\":");
		mom_buf_put(&r->body, s, n);
		put(&r->body, "}");
		return;
	case RO_METRICS: {
		json_t *o;

		if (admin_text(&rd, &s, &n) != 0 || (o = json_loadb(s, n, 0, NULL)) == NULL)
			break;
		if (!json_is_string(json_object_get(o, "text"))) {
			json_decref(o);
			break;
		}
		r->ctype = "text/plain; version=0.0.4; charset=utf-8";
		mom_buf_put(&r->body, json_string_value(json_object_get(o, "text")),
		    json_string_length(json_object_get(o, "text")));
		json_decref(o);
		return;
	}
	default:
		break;
	}
	rest_error(r, MOM_EPROTO, "the broker sent a malformed answer");
}

int
rest_release(const struct rest_target *t, const uint8_t *reply, size_t len, uint64_t consumer,
    struct mom_buf *frame)
{
	struct mom_fetch    fe = { 0 };
	struct mom_delivery d;
	struct mom_rd       rd;
	uint64_t           *rc, *delays, n, i;
	int                 rv = -1;

	if (reply == NULL || mom_wire_status(reply, len, MOM_OP_FETCH, &rd, NULL, 0) != 0)
		return -1;
	(void)mom_rd_varint(&rd);
	n = mom_rd_varint_max(&rd, mom_rd_left(&rd));
	if (rd.err || n == 0)
		return -1;
	rc = calloc((size_t)n, sizeof(*rc));
	delays = calloc((size_t)n, sizeof(*delays));
	if (rc == NULL || delays == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		if (mom_delivery_decode(&rd, &d) != 0)
			goto out;
		rc[i] = d.receipt;
		delays[i] = MOM_NACK_UNSEEN; /* no delay, unseen */
	}
	fe.consumer = consumer;
	fe.kind = t->route == RT_QMSGS ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
	fe.name.p = (const uint8_t *)t->name;
	fe.name.n = strlen(t->name);
	fe.durable.p = (const uint8_t *)t->sub;
	fe.durable.n = strlen(t->sub);
	fe.flags = MOM_FF_CLOSE;
	fe.nnacks = n;
	fe.nack_receipts = rc;
	fe.nack_delays = delays;
	mom_buf_reset(frame);
	mom_frame_encode(frame, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(frame, &fe);
	rv = frame->err ? -1 : 0;
out:
	free(rc);
	free(delays);
	return rv;
}

const char *
rest_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

void
rest_render(struct mom_buf *out, const struct rest_response *r, bool keep_alive, bool http10,
    bool head_only)
{
	char line[160];

	snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n",
	    r->status, rest_reason(r->status), r->ctype, r->body.len);
	put(out, line);
	put(out, r->extra);
	/* HTTP/1.1 keeps a connection unless told; HTTP/1.0 closes it unless told. */
	if (!keep_alive)
		put(out, "Connection: close\r\n");
	else if (http10)
		put(out, "Connection: keep-alive\r\n");
	put(out, "\r\n");
	if (!head_only)
		mom_buf_put(out, r->body.data, r->body.len);
}

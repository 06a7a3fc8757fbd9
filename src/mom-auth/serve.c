/*
 * serve.c: "mom-auth serve", the HTTP token issuer.
 *
 *	POST /v1/token	HTTP Basic, or JSON {"user","password"[,"ttl"]}
 *			-> 200 {"token","expires_at"}
 *	GET  /v1/keys	-> {"keys":[{"alg":"ES256","pem":"..."}]}
 *	GET  /healthz	-> {"status":"ok"}
 *
 * nng runs handlers on a few shared threads and argon2 takes ~50 ms, so
 * a handler only parses the request and checks the failure limits; the
 * password is verified on our own worker threads, which finish the
 * handler's aio themselves.  An unknown user is verified against a dummy
 * hash with the same parameters, so it costs the same time as a wrong
 * password and the answer (401) is the same.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <openssl/evp.h>

#include "auth.h"
#include "duration.h"
#include "limit.h"
#include "mom.h"
#include "tls.h"

#define SERVE_BODY_MAX  (64 * 1024)
#define SERVE_QUEUE_MAX 64 /* verifications waiting for a worker */
#define SERVE_WORKERS   4

struct job {
	struct job *next;
	nng_aio    *aio;
	int64_t     ttl_ms;
	size_t      pwlen;
	char        user[AUTH_USER_MAX * 2 + 1];
	char        pw[AUTH_PASS_MAX + 1];
	char        ukey[LIMIT_KEY_MAX];
	char        akey[LIMIT_KEY_MAX]; /* "" when the address is unknown */
	char        addr[INET6_ADDRSTRLEN];
};

struct serve {
	const struct auth_options *o;
	nng_http_server        *srv;
	nng_tls_config         *tls;     /* --tls-cert: HTTPS */
	atomic_bool             closing;
	bool                    peer_ok; /* the client address can be read */
	struct limit           *lim;
	char                   *dummy;   /* argon2id hash of a random password */

	pthread_mutex_t kmtx;            /* the keys (SIGHUP replaces them) */
	char           *priv;
	size_t          privlen;
	char           *keys;            /* GET /v1/keys body */

	pthread_mutex_t umtx;            /* the users, read again when the file changes */
	json_t         *users;
	struct stat     ust;
	char            upath[4096];

	pthread_mutex_t qmtx;
	pthread_cond_t  qcv;
	struct job     *head, *tail;
	size_t          njobs;
	size_t          inflight;        /* queued or being verified */
	pthread_cond_t  idlecv;          /* inflight reached 0 */
	bool            stop;
	pthread_t       thr[SERVE_WORKERS];
	int             nthr;
};

/* One line per event on stderr, stamped, as the broker logs. */
static void
slog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
slog(const char *fmt, ...)
{
	va_list ap;
	char    ts[32];

	mom_time_format(mom_now_ms(), ts, sizeof(ts));
	flockfile(stderr);
	fprintf(stderr, "mom-auth: %s ", ts);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/* A user name fit for a log line: attackers choose what they send. */
static const char *
log_user(const char *name)
{
	return users_name_ok(name) ? name : "(invalid)";
}

/* ---- responses ---- */

/* A response with a JSON text body (borrowed) and a newline after it. */
static nng_http_res *
res_text(uint16_t status, const char *text)
{
	nng_http_res *res;
	size_t        n = text != NULL ? strlen(text) : 0;
	char         *body;

	if (nng_http_res_alloc(&res) != 0)
		return NULL;
	nng_http_res_set_status(res, status);
	nng_http_res_set_header(res, "Content-Type", "application/json");
	/* Tokens and refusals are for this request only. */
	nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (text == NULL || (body = malloc(n + 1)) == NULL) {
		nng_http_res_free(res);
		return NULL;
	}
	memcpy(body, text, n);
	body[n] = '\n';
	if (nng_http_res_copy_data(res, body, n + 1) != 0) {
		nng_http_res_free(res);
		res = NULL;
	}
	free(body);
	return res;
}

/* The same from a JSON value (consumed). */
static nng_http_res *
res_json(uint16_t status, json_t *body)
{
	nng_http_res *res;
	char         *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	res = res_text(status, text);
	free(text);
	return res;
}

static nng_http_res *
res_error(uint16_t status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nng_http_res *
res_error(uint16_t status, const char *code, const char *fmt, ...)
{
	va_list ap;
	char    msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return res_json(status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

static void
finish(nng_aio *aio, nng_http_res *res)
{
	if (res == NULL) {
		/* Out of memory: nng answers 500 and drops the connection. */
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static nng_http_res *
res_unauthorized(const char *msg)
{
	nng_http_res *res = res_error(401, "unauthorized", "%s", msg);

	if (res != NULL)
		nng_http_res_set_header(res, "WWW-Authenticate",
		    "Basic realm=\"mom-auth\", charset=\"UTF-8\"");
	return res;
}

static nng_http_res *
res_retry(uint16_t status, const char *code, int64_t wait_ms, const char *msg)
{
	nng_http_res *res;
	char          secs[32];
	long long     s = (long long)((wait_ms + 999) / 1000);

	if (s < 1)
		s = 1;
	res = res_error(status, code, "%s; retry after %lld s", msg, s);
	snprintf(secs, sizeof(secs), "%lld", s);
	if (res != NULL)
		nng_http_res_set_header(res, "Retry-After", secs);
	return res;
}

/* ---- state shared with the workers ---- */

/* The users as the file is now (a new reference), or NULL. */
static json_t *
users_current(struct serve *s)
{
	struct stat st;
	json_t     *root;
	char        err[512];
	bool        changed;

	pthread_mutex_lock(&s->umtx);
	if (stat(s->upath, &st) != 0)
		memset(&st, 0, sizeof(st));
	changed = st.st_ino != s->ust.st_ino || st.st_size != s->ust.st_size ||
	    st.st_mtim.tv_sec != s->ust.st_mtim.tv_sec ||
	    st.st_mtim.tv_nsec != s->ust.st_mtim.tv_nsec;
	if (changed || s->users == NULL) {
		s->ust = st;
		if (users_load(s->o->dir, &root, err, sizeof(err)) != 0) {
			/* Keep serving the users we had; say why once per change. */
			slog("users not reloaded: %s", err);
		} else {
			json_decref(s->users);
			s->users = root;
		}
	}
	root = json_incref(s->users);
	pthread_mutex_unlock(&s->umtx);
	return root;
}

/* Reads the key pair again (start, SIGHUP).  0, or -1 logged. */
static int
keys_reload(struct serve *s)
{
	char    path[4096], err[512], *priv, *text;
	size_t  privlen;
	json_t *keys;

	if (keys_load_private(s->o->dir, &priv, &privlen) != 0)
		return -1;
	if (auth_path(path, sizeof(path), s->o->dir, AUTH_PUB_FILE) != 0 ||
	    (keys = keys_public_json(path, err, sizeof(err))) == NULL) {
		auth_err("%s", err);
		pw_wipe(priv, privlen);
		free(priv);
		return -1;
	}
	keys = json_pack("{s:o}", "keys", keys);
	text = keys != NULL ? json_dumps(keys, JSON_COMPACT) : NULL;
	json_decref(keys);
	if (text == NULL) {
		auth_err("out of memory");
		pw_wipe(priv, privlen);
		free(priv);
		return -1;
	}
	pthread_mutex_lock(&s->kmtx);
	if (s->priv != NULL)
		pw_wipe(s->priv, s->privlen);
	free(s->priv);
	free(s->keys);
	s->priv = priv;
	s->privlen = privlen;
	s->keys = text;
	pthread_mutex_unlock(&s->kmtx);
	return 0;
}

/* ---- the worker threads ---- */

static nng_http_res *
issue(struct serve *s, json_t *user, struct job *j)
{
	struct mom_verify_opts vo;
	struct mom_claims      c;
	char                   err[512], exp[32], *tok = NULL;
	nng_http_res          *res;
	int                    rv;

	if (issue_claims(user, j->user, NULL, (uint64_t)j->ttl_ms, &c, err, sizeof(err)) != 0) {
		slog("refused user=%s addr=%s: %s", j->user, j->addr, err);
		return res_error(500, "internal", "cannot issue a token");
	}
	memset(&vo, 0, sizeof(vo));
	vo.issuer = s->o->issuer;
	vo.audience = s->o->audience;
	err[0] = '\0';
	pthread_mutex_lock(&s->kmtx);
	rv = mom_token_sign(s->priv, s->privlen, &c, &vo, &tok, err, sizeof(err));
	pthread_mutex_unlock(&s->kmtx);
	if (rv != 0) {
		slog("refused user=%s addr=%s: signing failed: %s", j->user, j->addr,
		    err[0] != '\0' ? err : "?");
		mom_claims_free(&c);
		return res_error(500, "internal", "cannot sign a token");
	}
	issue_time(c.exp, exp, sizeof(exp));
	res = res_json(200, json_pack("{s:s, s:s}", "token", tok, "expires_at", exp));
	slog("issued user=%s addr=%s jti=%s expires=%s%s", j->user, j->addr, c.jti, exp,
	    c.admin ? " admin" : "");
	free(tok);
	mom_claims_free(&c);
	return res;
}

static void
work(struct serve *s, struct job *j)
{
	json_t       *root, *user = NULL;
	const char   *hash;
	nng_http_res *res;
	bool          ok;
	int64_t       now;

	root = users_current(s);
	if (users_name_ok(j->user))
		user = users_get(root, j->user);
	hash = user != NULL ? json_string_value(json_object_get(user, "hash")) : s->dummy;
	ok = pw_verify(hash, j->pw, j->pwlen) && user != NULL;
	pw_wipe(j->pw, sizeof(j->pw));

	now = mom_mono_ms();
	limit_end(s->lim, j->ukey, !ok, ok, now);
	if (j->akey[0] != '\0')
		limit_end(s->lim, j->akey, !ok, false, now);
	if (!ok) {
		slog("refused user=%s addr=%s: %s", log_user(j->user), j->addr,
		    user == NULL ? "unknown user" : "wrong password");
		res = res_unauthorized("wrong user or password");
	} else {
		res = issue(s, user, j);
	}
	json_decref(root);
	finish(j->aio, res);
}

static void *
worker(void *arg)
{
	struct serve *s = arg;
	struct job   *j;

	for (;;) {
		pthread_mutex_lock(&s->qmtx);
		while (s->head == NULL && !s->stop)
			pthread_cond_wait(&s->qcv, &s->qmtx);
		if ((j = s->head) == NULL) {
			pthread_mutex_unlock(&s->qmtx);
			return NULL;
		}
		if ((s->head = j->next) == NULL)
			s->tail = NULL;
		s->njobs--;
		pthread_mutex_unlock(&s->qmtx);
		work(s, j);
		free(j);
		pthread_mutex_lock(&s->qmtx);
		if (--s->inflight == 0)
			pthread_cond_broadcast(&s->idlecv);
		pthread_mutex_unlock(&s->qmtx);
	}
}

/* ---- the handler (nng's threads: no waiting here) ---- */

/* The client's IP address: see peer_addr_ok(). */
static bool
peer_addr(struct serve *s, nng_aio *aio, char *buf, size_t len)
{
	nng_http_conn *conn = nng_aio_get_input(aio, 2);
	nng_sockaddr   sa;
	nng_stream    *st;

	if (!s->peer_ok || conn == NULL)
		return false;
	st = *(nng_stream **)(void *)conn;
	if (st == NULL || nng_stream_get_addr(st, NNG_OPT_REMADDR, &sa) != 0)
		return false;
	if (sa.s_family == NNG_AF_INET)
		return inet_ntop(AF_INET, &sa.s_in.sa_addr, buf, (socklen_t)len) != NULL;
	if (sa.s_family == NNG_AF_INET6)
		return inet_ntop(AF_INET6, sa.s_in6.sa_addr, buf, (socklen_t)len) != NULL;
	return false;
}

/*
 * nng 1.5 gives a handler its connection but no way to ask it for the
 * client's address.  In 1.5.x the connection's first member is its
 * nng_stream, which does answer NNG_OPT_REMADDR (verified against
 * Debian's 1.5.2); on any other version the per-address limit is off
 * rather than a guess.
 */
static bool
peer_addr_ok(void)
{
	return strncmp(nng_version(), "1.5.", 4) == 0;
}

/* "Basic base64(user:password)" into the job; false when malformed. */
static bool
basic_auth(const char *h, struct job *j)
{
	unsigned char buf[(AUTH_USER_MAX * 2 + AUTH_PASS_MAX + 8) * 4 / 3 + 8];
	const char   *b64, *colon;
	size_t        n, pad = 0, ulen;
	int           out;

	if (strncasecmp(h, "Basic ", 6) != 0)
		return false;
	for (b64 = h + 6; *b64 == ' '; b64++)
		;
	n = strlen(b64);
	while (n > 0 && b64[n - 1] == ' ')
		n--;
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(buf) - 1)
		return false;
	if (b64[n - 1] == '=')
		pad = b64[n - 2] == '=' ? 2 : 1;
	if ((out = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n)) < 0)
		return false;
	n = (size_t)out - pad;
	buf[n] = '\0';
	if ((colon = memchr(buf, ':', n)) == NULL)
		goto bad;
	ulen = (size_t)(colon - (char *)buf);
	if (ulen == 0 || ulen >= sizeof(j->user) || n - ulen - 1 > AUTH_PASS_MAX)
		goto bad;
	memcpy(j->user, buf, ulen);
	j->user[ulen] = '\0';
	j->pwlen = n - ulen - 1;
	memcpy(j->pw, colon + 1, j->pwlen);
	pw_wipe(buf, sizeof(buf));
	return true;
bad:
	pw_wipe(buf, sizeof(buf));
	return false;
}

/* The JSON body form; an error response, or NULL when j is filled. */
static nng_http_res *
json_auth(const void *body, size_t len, struct job *j)
{
	json_error_t jerr;
	json_t      *b, *ttl;
	const char  *user, *pw;
	size_t       ulen, pwlen;
	uint64_t     ms;
	nng_http_res *res = NULL;

	if ((b = json_loadb(body, len, 0, &jerr)) == NULL)
		return res_error(400, "bad_request", "bad JSON: %s", jerr.text);
	if (!json_is_object(b) || json_unpack(b, "{s:s%, s:s%}", "user", &user, &ulen,
	    "password", &pw, &pwlen) != 0) {
		res = res_error(400, "bad_request", "expected {\"user\":\"...\",\"password\":\"...\"}");
		goto done;
	}
	if (ulen == 0 || ulen >= sizeof(j->user) || pwlen > AUTH_PASS_MAX) {
		res = res_error(400, "bad_request", "user or password too long");
		goto done;
	}
	memcpy(j->user, user, ulen + 1);
	memcpy(j->pw, pw, pwlen);
	j->pwlen = pwlen;
	/* A shorter lifetime may be asked for, never a longer one. */
	if ((ttl = json_object_get(b, "ttl")) != NULL) {
		if (json_is_integer(ttl) && json_integer_value(ttl) > 0)
			ms = (uint64_t)json_integer_value(ttl) * 1000;
		else if (!json_is_string(ttl) || mom_duration_parse(json_string_value(ttl), &ms) != 0 ||
		    ms < 1000) {
			res = res_error(400, "bad_request", "bad \"ttl\" (seconds, or \"10m\")");
			goto done;
		}
		if (ms < (uint64_t)j->ttl_ms)
			j->ttl_ms = (int64_t)ms;
	}
done:
	/* jansson keeps its own copy of the password. */
	if (json_is_string(json_object_get(b, "password")))
		pw_wipe((char *)json_string_value(json_object_get(b, "password")),
		    json_string_length(json_object_get(b, "password")));
	json_decref(b);
	return res;
}

static void
token_request(struct serve *s, nng_aio *aio, nng_http_req *req)
{
	struct job   *j;
	nng_http_res *res = NULL;
	const char   *h;
	void         *body;
	size_t        blen;
	int64_t       wait, now;

	if (atomic_load(&s->closing)) {
		finish(aio, res_error(503, "closed", "shutting down"));
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		finish(aio, NULL);
		return;
	}
	j->aio = aio;
	j->ttl_ms = (int64_t)s->o->token_ttl_ms;
	nng_http_req_get_data(req, &body, &blen);
	if ((h = nng_http_req_get_header(req, "Authorization")) != NULL) {
		if (!basic_auth(h, j))
			res = res_unauthorized("expected HTTP Basic credentials");
	} else if (blen == 0) {
		res = res_unauthorized("credentials required (HTTP Basic, or JSON "
		    "{\"user\",\"password\"})");
	} else {
		res = json_auth(body, blen, j);
	}
	if (res != NULL) {
		pw_wipe(j->pw, sizeof(j->pw));
		free(j);
		finish(aio, res);
		return;
	}

	if (peer_addr(s, aio, j->addr, sizeof(j->addr)))
		snprintf(j->akey, sizeof(j->akey), "a:%s", j->addr);
	else
		snprintf(j->addr, sizeof(j->addr), "?");
	snprintf(j->ukey, sizeof(j->ukey), "u:%s", j->user);
	now = mom_mono_ms();
	if ((wait = limit_begin(s->lim, j->ukey, now)) == 0 && j->akey[0] != '\0' &&
	    (wait = limit_begin(s->lim, j->akey, now)) != 0)
		limit_end(s->lim, j->ukey, false, false, now);
	if (wait != 0) {
		slog("refused user=%s addr=%s: too many failures", log_user(j->user), j->addr);
		pw_wipe(j->pw, sizeof(j->pw));
		free(j);
		finish(aio, res_retry(429, "too_many_requests", wait, "too many failed logins"));
		return;
	}

	pthread_mutex_lock(&s->qmtx);
	if (s->njobs >= SERVE_QUEUE_MAX || s->stop) {
		pthread_mutex_unlock(&s->qmtx);
		limit_end(s->lim, j->ukey, false, false, now);
		if (j->akey[0] != '\0')
			limit_end(s->lim, j->akey, false, false, now);
		pw_wipe(j->pw, sizeof(j->pw));
		free(j);
		finish(aio, res_retry(503, "busy", 1000, "busy"));
		return;
	}
	if (s->tail != NULL)
		s->tail->next = j;
	else
		s->head = j;
	s->tail = j;
	s->njobs++;
	s->inflight++;
	pthread_cond_signal(&s->qcv);
	pthread_mutex_unlock(&s->qmtx);
}

static void
serve_cb(nng_aio *aio)
{
	nng_http_req     *req = nng_aio_get_input(aio, 0);
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	struct serve     *s = nng_http_handler_get_data(h);
	const char       *method = nng_http_req_get_method(req);
	const char       *uri = nng_http_req_get_uri(req);
	nng_http_res     *res;
	size_t            plen = strcspn(uri, "?#");
	bool              get = strcmp(method, "GET") == 0;

	/* Over TLS, Nagle would hold each response's body for 40 ms. */
	mom_tls_http_nodelay(aio);

	if (plen == 9 && strncmp(uri, "/v1/token", plen) == 0) {
		if (strcmp(method, "POST") == 0) {
			token_request(s, aio, req);
			return;
		}
		res = res_error(405, "method_not_allowed", "use POST");
		if (res != NULL)
			nng_http_res_set_header(res, "Allow", "POST");
	} else if (plen == 8 && strncmp(uri, "/v1/keys", plen) == 0) {
		if (get) {
			pthread_mutex_lock(&s->kmtx);
			res = res_text(200, s->keys);
			pthread_mutex_unlock(&s->kmtx);
		} else {
			res = res_error(405, "method_not_allowed", "use GET");
			if (res != NULL)
				nng_http_res_set_header(res, "Allow", "GET");
		}
	} else if (plen == 8 && strncmp(uri, "/healthz", plen) == 0 && get) {
		if (atomic_load(&s->closing))
			res = res_error(503, "closed", "shutting down");
		else
			res = res_json(200, json_pack("{s:s}", "status", "ok"));
	} else {
		res = res_error(404, "not_found", "no such resource");
	}
	finish(aio, res);
}

/* ---- start and stop ---- */

static bool
loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr  a4;

	if (strcmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

/* The listen URL from --listen: ADDR, or a full http:// or https:// URL. */
static int
listen_url(const struct auth_options *o, nng_url **url)
{
	char buf[512];
	int  rv;
	bool tls = o->tls_cert != NULL;

	if (strncmp(o->listen, "http://", 7) == 0 || strncmp(o->listen, "https://", 8) == 0) {
		snprintf(buf, sizeof(buf), "%s", o->listen);
		if ((strncmp(buf, "https://", 8) == 0) != tls) {
			auth_err("%s: https:// goes with --tls-cert and --tls-key, http:// without",
			    o->listen);
			return MOM_EXIT_USAGE;
		}
	} else if (snprintf(buf, sizeof(buf), "%s://%s", tls ? "https" : "http", o->listen) >=
	    (int)sizeof(buf)) {
		auth_err("--listen too long");
		return MOM_EXIT_USAGE;
	}
	if ((rv = nng_url_parse(url, buf)) != 0 || (*url)->u_port == NULL ||
	    *(*url)->u_port == '\0') {
		if (rv == 0)
			nng_url_free(*url);
		*url = NULL;
		auth_err("bad --listen '%s' (HOST:PORT)", o->listen);
		return MOM_EXIT_USAGE;
	}
	if (!tls && !o->insecure_listen && !loopback((*url)->u_hostname)) {
		auth_err("refusing to serve passwords in clear text on '%s': use --tls-cert and "
		    "--tls-key, a loopback address, or --insecure-listen", (*url)->u_hostname);
		nng_url_free(*url);
		*url = NULL;
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* The HTTPS configuration of --tls-cert and --tls-key, checked up front. */
static int
serve_tls(struct serve *s)
{
	const struct auth_options *o = s->o;
	char                    err[512];

	if ((o->tls_cert == NULL) != (o->tls_key == NULL)) {
		auth_err("--tls-cert and --tls-key go together");
		return MOM_EXIT_USAGE;
	}
	if (o->tls_cert == NULL)
		return 0;
	if (mom_tls_server_config(&s->tls, o->tls_cert, o->tls_key, NULL, err, sizeof(err)) != 0) {
		auth_err("%s", err);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/*
 * Lets the verifications under way finish (bounded), so their clients get
 * an answer: nng_http_server_stop() closes connections whose response is
 * not written yet.  New requests already get 503.
 */
static void
serve_drain(struct serve *s)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&s->qmtx);
	while (s->inflight > 0) {
		if (pthread_cond_timedwait(&s->idlecv, &s->qmtx, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&s->qmtx);
	/* The last answers are handed to nng; give it a moment to write them. */
	ts.tv_sec = 0;
	ts.tv_nsec = 100 * 1000 * 1000;
	nanosleep(&ts, NULL);
}

static void
serve_stop_workers(struct serve *s)
{
	struct job *j;
	int         i;

	pthread_mutex_lock(&s->qmtx);
	s->stop = true;
	pthread_cond_broadcast(&s->qcv);
	pthread_mutex_unlock(&s->qmtx);
	/* The workers drain the queue before they return. */
	for (i = 0; i < s->nthr; i++)
		pthread_join(s->thr[i], NULL);
	while ((j = s->head) != NULL) {
		s->head = j->next;
		finish(j->aio, res_error(503, "closed", "shutting down"));
		free(j);
	}
}

static void
serve_init(struct serve *s, const struct auth_options *o)
{
	memset(s, 0, sizeof(*s));
	s->o = o;
	pthread_mutex_init(&s->kmtx, NULL);
	pthread_mutex_init(&s->umtx, NULL);
	pthread_mutex_init(&s->qmtx, NULL);
	pthread_cond_init(&s->qcv, NULL);
	pthread_cond_init(&s->idlecv, NULL);
}

/* Before any thread exists, so that only sigwait() sees them. */
static void
block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * What the issuer needs before it answers: the keys, a users file that
 * loads, the dummy hash (a missing user costs the time of a wrong
 * password) and the failure limiter.  0 or MOM_EXIT_FAIL (reported).
 */
static int
serve_load(struct serve *s)
{
	const struct auth_options *o = s->o;
	json_t                    *users;
	char                       dummy_pw[32];

	if (auth_path(s->upath, sizeof(s->upath), o->dir, AUTH_USERS_FILE) != 0 ||
	    keys_reload(s) != 0)
		return MOM_EXIT_FAIL;
	/* Loaded once now, so that a broken users file stops the start. */
	if ((users = users_current(s)) == NULL)
		return MOM_EXIT_FAIL;
	json_decref(users);
	if (getrandom(dummy_pw, sizeof(dummy_pw), 0) != (ssize_t)sizeof(dummy_pw) ||
	    (s->dummy = pw_hash(dummy_pw, sizeof(dummy_pw))) == NULL) {
		auth_err("cannot make the dummy hash");
		return MOM_EXIT_FAIL;
	}
	if ((s->lim = limit_new(o->max_failures, (int64_t)o->lockout_ms)) == NULL) {
		auth_err("out of memory");
		return MOM_EXIT_FAIL;
	}
	s->peer_ok = peer_addr_ok();
	return 0;
}

/* The verifying threads, one per CPU up to SERVE_WORKERS: 0 or MOM_EXIT_FAIL. */
static int
serve_workers(struct serve *s)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int  i;

	for (i = 0; i < SERVE_WORKERS && i < (ncpu > 1 ? ncpu : 1); i++) {
		if (pthread_create(&s->thr[i], NULL, worker, s) != 0) {
			auth_err("pthread_create: %s", strerror(errno));
			return MOM_EXIT_FAIL;
		}
		s->nthr++;
	}
	return 0;
}

/* The HTTP server on url, one handler for every path: 0 or MOM_EXIT_FAIL. */
static int
serve_http(struct serve *s, nng_url *url)
{
	nng_http_handler *h = NULL;
	nng_sockaddr      sa;
	char              addr[INET6_ADDRSTRLEN + 8];
	int               rv;

	if ((rv = nng_http_server_hold(&s->srv, url)) != 0 ||
	    (s->tls != NULL && (rv = nng_http_server_set_tls(s->srv, s->tls)) != 0) ||
	    (rv = nng_http_handler_alloc(&h, "/", serve_cb)) != 0 ||
	    (rv = nng_http_handler_set_method(h, NULL)) != 0 ||
	    (rv = nng_http_handler_set_tree(h)) != 0 ||
	    (rv = nng_http_handler_collect_body(h, true, SERVE_BODY_MAX)) != 0 ||
	    (rv = nng_http_handler_set_data(h, s, NULL)) != 0 ||
	    (rv = nng_http_server_add_handler(s->srv, h)) != 0) {
		auth_err("HTTP server: %s", nng_strerror(rv));
		if (h != NULL)
			nng_http_handler_free(h);
		return MOM_EXIT_FAIL;
	}
	/* The handler is the server's now. */
	if ((rv = nng_http_server_start(s->srv)) != 0) {
		auth_err("cannot listen on %s: %s", s->o->listen, nng_strerror(rv));
		return MOM_EXIT_FAIL;
	}
	if (nng_http_server_get_addr(s->srv, &sa) == 0 && sa.s_family == NNG_AF_INET) {
		inet_ntop(AF_INET, &sa.s_in.sa_addr, addr, sizeof(addr));
		slog("issuing tokens on %s://%s:%u (%d workers)", url->u_scheme, addr,
		    ntohs(sa.s_in.sa_port), s->nthr);
	} else {
		slog("issuing tokens on %s (%d workers)", url->u_rawurl, s->nthr);
	}
	if (!s->peer_ok)
		slog("nng %s: client addresses unknown, failures limited per user only",
		    nng_version());
	return 0;
}

/* Until SIGTERM or SIGINT; SIGHUP reads the keys again. */
static void
serve_wait(struct serve *s, sigset_t *sigs)
{
	int sig;

	for (;;) {
		if (sigwait(sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			slog("SIGHUP: reading the keys again");
			if (keys_reload(s) != 0)
				slog("keeping the old keys");
			continue;
		}
		slog("%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		return;
	}
}

static void
serve_free(struct serve *s, nng_url *url)
{
	serve_stop_workers(s);
	if (s->srv != NULL)
		nng_http_server_release(s->srv);
	if (url != NULL)
		nng_url_free(url);
	if (s->tls != NULL)
		nng_tls_config_free(s->tls);
	nng_fini();
	limit_free(s->lim);
	json_decref(s->users);
	free(s->dummy);
	if (s->priv != NULL)
		pw_wipe(s->priv, s->privlen);
	free(s->priv);
	free(s->keys);
}

int
serve_run(const struct auth_options *o)
{
	struct serve s;
	nng_url     *url = NULL;
	sigset_t     sigs;
	int          rc;

	serve_init(&s, o);
	block_signals(&sigs);
	if ((rc = serve_tls(&s)) == 0 && (rc = listen_url(o, &url)) == 0 &&
	    (rc = serve_load(&s)) == 0 && (rc = serve_workers(&s)) == 0 &&
	    (rc = serve_http(&s, url)) == 0) {
		serve_wait(&s, &sigs);
		atomic_store(&s.closing, true);
		serve_drain(&s);
		nng_http_server_stop(s.srv);
	}
	serve_free(&s, url);
	return rc;
}

/*
 * login.c: "mom-auth login": a token from a running issuer (mom-auth
 * serve) for a user and password, printed on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "auth.h"
#include "mom.h"

#define LOGIN_REPLY_MAX (64 * 1024)

struct reply {
	char  *buf;
	size_t len;
	int    overflow;
};

static size_t
reply_cb(char *p, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	char         *nb;

	n *= size;
	if (r->len + n > LOGIN_REPLY_MAX) {
		r->overflow = 1;
		return 0;
	}
	if ((nb = realloc(r->buf, r->len + n + 1)) == NULL)
		return 0;
	r->buf = nb;
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

/* The "error" of a JSON error reply, or a short default. */
static const char *
reply_error(json_t *j, const char *dflt)
{
	const char *s = json_string_value(json_object_get(j, "error"));

	return s != NULL ? s : dflt;
}

/* One login's resources, released by login_free. */
struct login {
	CURL              *c;
	struct curl_slist *hdrs;
	struct reply       r;
	json_t            *body; /* {"user","password"} */
	char              *text; /* body as sent */
	json_t            *rep;  /* the JSON reply, if it is JSON */
};

static void
login_free(struct login *l)
{
	json_decref(l->rep);
	/* jansson's copy of the password. */
	if (l->body != NULL)
		pw_wipe((char *)json_string_value(json_object_get(l->body, "password")),
		    json_string_length(json_object_get(l->body, "password")));
	json_decref(l->body);
	free(l->text);
	free(l->r.buf);
	curl_slist_free_all(l->hdrs);
	if (l->c != NULL)
		curl_easy_cleanup(l->c);
	curl_global_cleanup();
}

/* SERVER/v1/token into url, after checking -u and -s: 0 or MOM_EXIT_USAGE. */
static int
login_url(const struct auth_options *o, char *url, size_t len)
{
	size_t slen;

	if (o->user == NULL) {
		auth_err("login: -u USER is required");
		return MOM_EXIT_USAGE;
	}
	if (!users_name_ok(o->user)) {
		auth_err("bad user name '%s'", o->user);
		return MOM_EXIT_USAGE;
	}
	slen = strlen(o->server);
	while (slen > 0 && o->server[slen - 1] == '/')
		slen--;
	if (strncmp(o->server, "http://", 7) != 0 && strncmp(o->server, "https://", 8) != 0) {
		auth_err("bad server URL '%s' (http://HOST:PORT or https://HOST:PORT)", o->server);
		return MOM_EXIT_USAGE;
	}
	if (snprintf(url, len, "%.*s/v1/token", (int)slen, o->server) >= (int)len) {
		auth_err("server URL too long");
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* The request's body, with the password read from its file, stdin or a prompt. */
static int
login_body(const struct auth_options *o, struct login *l)
{
	char pw[AUTH_PASS_MAX + 2];
	int  rc;

	if ((rc = pw_read(o->password_file, false, pw, sizeof(pw))) != 0)
		return rc;
	l->body = json_pack("{s:s, s:s}", "user", o->user, "password", pw);
	pw_wipe(pw, sizeof(pw));
	if (l->body == NULL || (l->text = json_dumps(l->body, JSON_COMPACT)) == NULL) {
		auth_err("out of memory");
		return MOM_EXIT_FAIL;
	}
	return 0;
}

/* What a failed curl_easy_perform means: the exit status, after one line. */
static int
post_failed(const struct auth_options *o, struct login *l, const char *url, CURLcode cc)
{
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
		/* As the other clients: an issuer we cannot trust is refused. */
		auth_err("%s: the issuer's certificate does not verify against %s", url,
		    o->cafile != NULL ? o->cafile : "the system's CAs (see --cafile)");
		return MOM_EXIT_NOPERM;
	case CURLE_SSL_CACERT_BADFILE:
		auth_err("%s: cannot use it as a CA file", o->cafile != NULL ? o->cafile : "CA file");
		return MOM_EXIT_USAGE;
	default:
		if (l->r.overflow)
			auth_err("%s: reply over %d bytes", url, LOGIN_REPLY_MAX);
		else
			auth_err("%s: %s", url, curl_easy_strerror(cc));
		/* Not reachable, or it did not answer: try again later. */
		return l->r.overflow ? MOM_EXIT_FAIL : MOM_EXIT_UNAVAILABLE;
	}
}

/* POSTs the body; 0 with the HTTP status in *status, or an exit status. */
static int
login_post(const struct auth_options *o, struct login *l, const char *url, long *status)
{
	CURLcode cc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (l->c = curl_easy_init()) == NULL) {
		auth_err("cannot initialise libcurl");
		return MOM_EXIT_FAIL;
	}
	l->hdrs = curl_slist_append(l->hdrs, "Content-Type: application/json");
	l->hdrs = curl_slist_append(l->hdrs, "Accept: application/json");
	/* An issuer answers at once; only a hash takes time. */
	curl_easy_setopt(l->c, CURLOPT_URL, url);
	curl_easy_setopt(l->c, CURLOPT_HTTPHEADER, l->hdrs);
	curl_easy_setopt(l->c, CURLOPT_POSTFIELDS, l->text);
	curl_easy_setopt(l->c, CURLOPT_POSTFIELDSIZE, (long)strlen(l->text));
	curl_easy_setopt(l->c, CURLOPT_WRITEFUNCTION, reply_cb);
	curl_easy_setopt(l->c, CURLOPT_WRITEDATA, &l->r);
	curl_easy_setopt(l->c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(l->c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(l->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(l->c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(l->c, CURLOPT_USERAGENT, "mom-auth/" MOM_VERSION);
	if (o->cafile != NULL)
		curl_easy_setopt(l->c, CURLOPT_CAINFO, o->cafile);

	cc = curl_easy_perform(l->c);
	pw_wipe(l->text, strlen(l->text));
	if (cc != CURLE_OK)
		return post_failed(o, l, url, cc);
	curl_easy_getinfo(l->c, CURLINFO_RESPONSE_CODE, status);
	return 0;
}

/* The issuer's answer: the token on stdout, or one line; the exit status. */
static int
login_answer(struct login *l, const char *url, long status)
{
	json_error_t jerr;
	const char  *tok, *retry;

	l->rep = l->r.buf != NULL ? json_loadb(l->r.buf, l->r.len, 0, &jerr) : NULL;
	switch (status) {
	case 200:
		if ((tok = json_string_value(json_object_get(l->rep, "token"))) == NULL) {
			auth_err("%s: the reply has no token", url);
			return MOM_EXIT_FAIL;
		}
		printf("%s\n", tok);
		if (fflush(stdout) != 0) {
			auth_err("standard output: %s", strerror(errno));
			return MOM_EXIT_IOERR;
		}
		return MOM_EXIT_OK;
	case 401:
	case 403:
		auth_err("%s", reply_error(l->rep, "wrong user or password"));
		return MOM_EXIT_NOPERM;
	case 429:
		/* The issuer's message says when; Retry-After when it has none. */
		if (json_is_string(json_object_get(l->rep, "error"))) {
			auth_err("%s", reply_error(l->rep, ""));
		} else {
			struct curl_header *h;

			retry = curl_easy_header(l->c, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
			    CURLHE_OK ? h->value : "?";
			auth_err("too many failed logins; retry after %s s", retry);
		}
		return MOM_EXIT_NOPERM;
	case 502:
	case 503:
	case 504:
		auth_err("%s: %ld %s", url, status, reply_error(l->rep, "unavailable"));
		return MOM_EXIT_UNAVAILABLE;
	default:
		auth_err("%s: %ld %s", url, status, reply_error(l->rep, "unexpected answer"));
		return MOM_EXIT_FAIL;
	}
}

int
login_run(const struct auth_options *o)
{
	struct login l;
	char         url[4096];
	long         status = 0;
	int          rc;

	if ((rc = login_url(o, url, sizeof(url))) != 0)
		return rc;
	memset(&l, 0, sizeof(l));
	if ((rc = login_body(o, &l)) == 0 && (rc = login_post(o, &l, url, &status)) == 0)
		rc = login_answer(&l, url, status);
	login_free(&l);
	return rc;
}

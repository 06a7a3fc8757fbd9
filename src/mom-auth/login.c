/*
 * login.c: "mom-auth login": a token from a running issuer (mom-auth
 * serve) for a user and password, printed on stdout.
 */
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

int
login_run(const struct auth_options *o)
{
	struct curl_slist *hdrs = NULL;
	struct reply       r = { NULL, 0, 0 };
	json_error_t       jerr;
	json_t            *body = NULL, *rep = NULL;
	CURL              *c = NULL;
	CURLcode           cc;
	char               pw[AUTH_PASS_MAX + 2], url[4096], *text = NULL;
	const char        *tok, *retry;
	size_t             slen;
	long               status = 0;
	int                rc;

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
	if (snprintf(url, sizeof(url), "%.*s/v1/token", (int)slen, o->server) >= (int)sizeof(url)) {
		auth_err("server URL too long");
		return MOM_EXIT_USAGE;
	}
	if ((rc = pw_read(o->password_file, false, pw, sizeof(pw))) != 0)
		return rc;
	body = json_pack("{s:s, s:s}", "user", o->user, "password", pw);
	pw_wipe(pw, sizeof(pw));
	rc = MOM_EXIT_FAIL;
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		auth_err("out of memory");
		goto done;
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || (c = curl_easy_init()) == NULL) {
		auth_err("cannot initialise libcurl");
		goto done;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	/* An issuer answers at once; only a hash takes time. */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, reply_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mom-auth/" MOM_VERSION);
	if (o->cafile != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, o->cafile);

	cc = curl_easy_perform(c);
	pw_wipe(text, strlen(text));
	switch (cc) {
	case CURLE_OK:
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		/* As the other clients: an issuer we cannot trust is refused. */
		auth_err("%s: the issuer's certificate does not verify against %s", url,
		    o->cafile != NULL ? o->cafile : "the system's CAs (see --cafile)");
		rc = MOM_EXIT_NOPERM;
		goto done;
	case CURLE_SSL_CACERT_BADFILE:
		auth_err("%s: cannot use it as a CA file", o->cafile != NULL ? o->cafile : "CA file");
		rc = MOM_EXIT_USAGE;
		goto done;
	default:
		if (r.overflow)
			auth_err("%s: reply over %d bytes", url, LOGIN_REPLY_MAX);
		else
			auth_err("%s: %s", url, curl_easy_strerror(cc));
		/* Not reachable, or it did not answer: try again later. */
		rc = r.overflow ? MOM_EXIT_FAIL : MOM_EXIT_UNAVAILABLE;
		goto done;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	rep = r.buf != NULL ? json_loadb(r.buf, r.len, 0, &jerr) : NULL;
	switch (status) {
	case 200:
		if ((tok = json_string_value(json_object_get(rep, "token"))) == NULL) {
			auth_err("%s: the reply has no token", url);
			goto done;
		}
		printf("%s\n", tok);
		rc = fflush(stdout) == 0 ? MOM_EXIT_OK : MOM_EXIT_FAIL;
		break;
	case 401:
	case 403:
		auth_err("%s", reply_error(rep, "wrong user or password"));
		rc = MOM_EXIT_NOPERM;
		break;
	case 429:
		/* The issuer's message says when; Retry-After when it has none. */
		if (json_is_string(json_object_get(rep, "error"))) {
			auth_err("%s", reply_error(rep, ""));
		} else {
			struct curl_header *h;

			retry = curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
			    CURLHE_OK ? h->value : "?";
			auth_err("too many failed logins; retry after %s s", retry);
		}
		rc = MOM_EXIT_NOPERM;
		break;
	case 502:
	case 503:
	case 504:
		auth_err("%s: %ld %s", url, status, reply_error(rep, "unavailable"));
		rc = MOM_EXIT_UNAVAILABLE;
		break;
	default:
		auth_err("%s: %ld %s", url, status, reply_error(rep, "unexpected answer"));
		break;
	}
done:
	json_decref(rep);
	/* jansson's copy of the password. */
	if (body != NULL)
		pw_wipe((char *)json_string_value(json_object_get(body, "password")),
		    json_string_length(json_object_get(body, "password")));
	json_decref(body);
	free(text);
	free(r.buf);
	curl_slist_free_all(hdrs);
	if (c != NULL)
		curl_easy_cleanup(c);
	curl_global_cleanup();
	return rc;
}

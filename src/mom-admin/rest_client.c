/*
 * rest_client.c: mom-admin over the broker's HTTP API, through libcurl.
 *
 * httpapi.c says which request carries an operation and turns the answer
 * back into the reply the nng plane gives, so admin.c prints both alike;
 * this file only moves the bytes: one easy handle (its connection is kept
 * for a second request), the server list walked in order on failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "httpapi.h"
#include "mom.h"
#include "rest_client.h"
#include "tls.h"

/* An answer larger than this is not a broker's (Prometheus text of many queues fits). */
#define REST_MAX_ANSWER (64u << 20)

struct rest_client {
	const struct mom_cli *cli;
	char                **urls; /* base URLs, without a trailing '/' */
	int                   nurls;
	int                   cur;  /* the server that answered last: asked first */
	const char           *ca;   /* the CA file https:// trusts */
	CURL                 *h;
	char                 *auth; /* "Authorization: Bearer ..." or NULL */
	char                  cerr[CURL_ERROR_SIZE];
};

static size_t
write_cb(char *p, size_t size, size_t n, void *arg)
{
	struct mom_buf *b = arg;

	n *= size;
	if (b->len + n > REST_MAX_ANSWER)
		return 0; /* CURLE_WRITE_ERROR */
	mom_buf_put(b, p, n);
	return b->err ? 0 : n;
}

/*
 * With an https:// server, the TLS files are checked as the data plane
 * checks them (tls.c), so that a missing CA file or a key without its
 * certificate is the same usage error (64) with the same words, before
 * anything is sent.
 */
static int
tls_check(struct rest_client *rc, char *err, size_t errlen)
{
	const struct mom_cli  *cli = rc->cli;
	struct mom_tls_client  t = { cli->cafile, cli->cert, cli->key, cli->insecure != 0 };
	nng_tls_config        *cfg;
	int                    i, tls = 0;

	for (i = 0; i < rc->nurls; i++)
		tls |= strncasecmp(rc->urls[i], "https://", 8) == 0;
	if (!tls)
		return 0;
	if (mom_tls_client_config(&cfg, &t, NULL, err, errlen) != 0)
		return -1;
	nng_tls_config_free(cfg);
	rc->ca = cli->cafile ? cli->cafile : mom_tls_default_cafile();
	if (cli->insecure)
		mom_cli_info(cli, "--insecure: the server's TLS certificate is not verified");
	return 0;
}

/* Did the TLS handshake fail (the broker's certificate, or ours)? */
static int
tls_failure(CURLcode cc, const char *why)
{
	switch (cc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CLIENTCERT:
		return 1;
	case CURLE_SSL_CONNECT_ERROR:
		/* Not TLS at all (https:// to a plain listener) is no refusal. */
		return strstr(why, "wrong version number") == NULL;
	default:
		return 0;
	}
}

int
rest_client_open(struct rest_client **rcp, const struct mom_cli *cli, char *err, size_t errlen)
{
	struct rest_client *rc;
	char               *list = NULL, *url, *save = NULL;
	const char         *t;
	size_t              n;

	*rcp = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (rc = calloc(1, sizeof(*rc))) == NULL) {
		snprintf(err, errlen, "cannot initialise libcurl");
		return MOM_ENOMEM;
	}
	rc->cli = cli;
	if ((list = strdup(cli->servers)) == NULL ||
	    (rc->urls = calloc(strlen(list) / 2 + 1, sizeof(*rc->urls))) == NULL ||
	    (rc->h = curl_easy_init()) == NULL)
		goto nomem;
	for (url = strtok_r(list, ",", &save); url; url = strtok_r(NULL, ",", &save)) {
		url += strspn(url, " \t");
		n = strlen(url);
		while (n > 0 && (url[n - 1] == ' ' || url[n - 1] == '\t' || url[n - 1] == '/'))
			url[--n] = '\0';
		if (n == 0)
			continue;
		/* One list speaks one protocol: tables and exit statuses are the same, the failover is not. */
		if (!mom_httpapi_is_url(url) || strpbrk(url, "?#") != NULL) {
			snprintf(err, errlen, "bad server URL '%s': a list that starts with http:// "
			    "has only http:// and https:// URLs, without query", url);
			goto inval;
		}
		if ((rc->urls[rc->nurls] = strdup(url)) == NULL)
			goto nomem;
		rc->nurls++;
	}
	if (rc->nurls == 0) {
		snprintf(err, errlen, "no server given");
		goto inval;
	}
	if (tls_check(rc, err, errlen) != 0)
		goto inval;
	if ((t = cli->token) != NULL) {
		for (n = 0; t[n]; n++)
			if ((unsigned char)t[n] <= ' ' || t[n] == 0x7f) {
				snprintf(err, errlen, "the token has a control character or space in it");
				goto inval;
			}
		n = strlen(t) + sizeof("Authorization: Bearer ");
		if ((rc->auth = malloc(n)) == NULL)
			goto nomem;
		snprintf(rc->auth, n, "Authorization: Bearer %s", t);
	}
	free(list);
	*rcp = rc;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	free(list);
	rest_client_close(rc);
	return MOM_ENOMEM;
inval:
	free(list);
	rest_client_close(rc);
	return MOM_EINVAL;
}

void
rest_client_close(struct rest_client *rc)
{
	int i;

	if (rc == NULL)
		return;
	if (rc->h)
		curl_easy_cleanup(rc->h);
	for (i = 0; i < rc->nurls; i++)
		free(rc->urls[i]);
	free(rc->urls);
	if (rc->auth) {
		/* Do not leave the token in freed memory. */
		explicit_bzero(rc->auth, strlen(rc->auth));
		free(rc->auth);
	}
	free(rc);
	curl_global_cleanup();
}

/* One request to one server.  CURLE_OK: *status and body hold the answer. */
static CURLcode
attempt(struct rest_client *rc, const char *base, const struct mom_httpapi_req *req,
    int64_t timeout_ms, int64_t connect_ms, long *status, struct mom_buf *body)
{
	const struct mom_cli *cli = rc->cli;
	struct curl_slist    *hdrs = NULL, *h;
	size_t                ulen = strlen(base) + strlen(req->path) + 1;
	char                 *url;
	CURL                 *e = rc->h;
	CURLcode              cc;

	*status = 0;
	mom_buf_reset(body);
	rc->cerr[0] = '\0';
	if ((url = malloc(ulen)) == NULL)
		return CURLE_OUT_OF_MEMORY;
	snprintf(url, ulen, "%s%s", base, req->path);
	/* Expect: off, or curl waits a second for a 100 Continue before a body. */
	h = curl_slist_append(hdrs, "Expect:");
	if (h != NULL && (hdrs = h, req->body != NULL))
		h = curl_slist_append(hdrs, "Content-Type: application/json");
	if (h != NULL && (hdrs = h, rc->auth != NULL))
		h = curl_slist_append(hdrs, rc->auth);
	if (h == NULL) {
		curl_slist_free_all(hdrs);
		free(url);
		return CURLE_OUT_OF_MEMORY;
	}
	hdrs = h;

	curl_easy_reset(e); /* keeps the open connection */
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rc->cerr);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "mom-admin/" MOM_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
	if (strcmp(req->method, "GET") != 0) {
		if (strcmp(req->method, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
		if (req->body != NULL || strcmp(req->method, "POST") == 0) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body ? req->body : "");
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)(req->body ? strlen(req->body) : 0));
		}
	}
	if (rc->ca)
		curl_easy_setopt(e, CURLOPT_CAINFO, rc->ca);
	if (cli->cert)
		curl_easy_setopt(e, CURLOPT_SSLCERT, cli->cert);
	if (cli->key)
		curl_easy_setopt(e, CURLOPT_SSLKEY, cli->key);
	if (cli->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	cc = curl_easy_perform(e);
	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
	if (rc->cerr[0] == '\0')
		snprintf(rc->cerr, sizeof(rc->cerr), "%s", curl_easy_strerror(cc));
	/* The options point at these; drop them before the next request can. */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_URL, NULL);
	curl_slist_free_all(hdrs);
	free(url);
	return cc;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

int
rest_client_admin(struct rest_client *rc, const json_t *op, json_t **rep, int64_t timeout_ms,
    char *err, size_t errlen)
{
	struct mom_httpapi_req req;
	struct mom_buf         body;
	char                   last[512] = "", tlserr[512] = "";
	int64_t                deadline, left, cbound, backoff = 50;
	int                    rv, k, i, busy, refused = 0;
	long                   status;
	CURLcode               cc;

	*rep = NULL;
	if ((rv = mom_httpapi_admin(op, &req, err, errlen)) != 0) {
		mom_httpapi_req_fini(&req);
		return rv;
	}
	mom_buf_init(&body);
	deadline = mom_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	for (;;) {
		busy = 0;
		for (k = 0; k < rc->nurls; k++) {
			i = (rc->cur + k) % rc->nurls;
			if ((left = deadline - mom_mono_ms()) <= 0)
				goto timedout;
			/*
			 * A server that does not even accept the connection
			 * gets its share of the time, not all of it, so the
			 * next one in the list is still tried.
			 */
			cbound = left / (rc->nurls - k);
			if (cbound < 1000)
				cbound = left < 1000 ? left : 1000;
			if (rc->cli->connect_ms > 0 && rc->cli->connect_ms < cbound)
				cbound = rc->cli->connect_ms;
			cc = attempt(rc, rc->urls[i], &req, left, cbound, &status, &body);
			if (cc == CURLE_OK)
				mom_cli_info(rc->cli, "%s %s%s: HTTP %ld", req.method, rc->urls[i],
				    req.path, status);
			else
				mom_cli_info(rc->cli, "%s %s%s: %s", req.method, rc->urls[i], req.path,
				    rc->cerr);
			if (cc == CURLE_OK && status != 503 && status != 429) {
				rc->cur = i;
				rv = mom_httpapi_reply(&req, status, (const char *)body.data, body.len,
				    rep, err, errlen);
				goto out;
			}
			if (cc == CURLE_OK) {
				char msg[256];

				/* 503: this one cannot serve now (shutting down, not the leader): the next may. */
				rv = mom_httpapi_error(status, (const char *)body.data, body.len, msg,
				    sizeof(msg));
				busy |= rv == MOM_EBUSY;
				snprintf(last, sizeof(last), "%s: %s", rc->urls[i], msg);
				refused = 0;
				continue;
			}
			switch (cc) {
			case CURLE_OPERATION_TIMEDOUT:
				if (mom_mono_ms() >= deadline)
					goto timedout;
				break;
			case CURLE_URL_MALFORMAT:
			case CURLE_UNSUPPORTED_PROTOCOL:
				snprintf(err, errlen, "bad server URL '%s': %s", rc->urls[i], rc->cerr);
				rv = MOM_EINVAL;
				goto out;
			case CURLE_OUT_OF_MEMORY:
				snprintf(err, errlen, "out of memory");
				rv = MOM_ENOMEM;
				goto out;
			case CURLE_WRITE_ERROR:
				snprintf(err, errlen, "%s sent an answer over %u MiB", rc->urls[i],
				    REST_MAX_ANSWER >> 20);
				rv = MOM_EPROTO;
				goto out;
			default:
				break;
			}
			if (tls_failure(cc, rc->cerr) && (rc->cli->insecure || rc->ca == NULL))
				snprintf(tlserr, sizeof(tlserr), "%s: TLS handshake failed: %s",
				    rc->urls[i], rc->cerr);
			else if (tls_failure(cc, rc->cerr))
				snprintf(tlserr, sizeof(tlserr), "%s: TLS handshake failed: %s "
				    "(trusting %s)", rc->urls[i], rc->cerr, rc->ca);
			snprintf(last, sizeof(last), "%s: %s", rc->urls[i], rc->cerr);
			refused = 1;
		}
		if (!busy)
			break;
		/* Every server is overloaded: back off as the nng client does, within -W. */
		if ((left = deadline - mom_mono_ms()) <= 0)
			goto timedout;
		sleep_ms(backoff < left ? backoff : left);
		if (backoff < 1000)
			backoff *= 2;
	}
	if (*tlserr) {
		/* Nobody answered, and one refused the handshake: that is what to fix (as tls+tcp://). */
		snprintf(err, errlen, "%s", tlserr);
		rv = MOM_EAUTH;
		goto out;
	}
	if (refused)
		snprintf(err, errlen, "no broker reachable (%s)", last);
	else
		snprintf(err, errlen, "broker unavailable (%s)", last);
	rv = MOM_EUNAVAIL;
	goto out;
timedout:
	if (*last)
		snprintf(err, errlen, "timed out waiting for the broker (%s)", last);
	else
		snprintf(err, errlen, "timed out waiting for the broker");
	rv = MOM_ETIMEDOUT;
out:
	mom_buf_fini(&body);
	mom_httpapi_req_fini(&req);
	return rv;
}

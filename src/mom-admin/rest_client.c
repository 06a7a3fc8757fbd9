/*
 * rest_client.c: mom-admin over the broker's HTTP API, through libcurl.
 *
 * httpapi.c says which request carries an operation and turns the answer
 * back into the reply the nng plane gives, so admin.c prints both alike;
 * this file only moves the bytes: one easy handle (its connection is kept
 * for a second request), the server list walked in order on failure.
 * With several servers each attempt has --request-timeout (a cluster
 * change: -W, once a server took it), and a server that did not answer in
 * time, refused the connection or said 503 is set aside (failover.c)
 * while the others are tried, round after round with a back-off, within
 * -W.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "buf.h"
#include "failover.h"
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
	int64_t               request_ms; /* one attempt's bound, with several servers */
	struct mom_node_state *st;  /* each server's set-aside */
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
	rc->request_ms = cli->request_ms > 0 ? cli->request_ms : MOM_CLIENT_REQUEST_MS;
	if ((list = strdup(cli->servers)) == NULL ||
	    (rc->urls = calloc(strlen(list) / 2 + 1, sizeof(*rc->urls))) == NULL ||
	    (rc->st = calloc(strlen(list) / 2 + 1, sizeof(*rc->st))) == NULL ||
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
	free(rc->st);
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

/* Where a call stands between attempts. */
struct call {
	int64_t deadline;   /* -W */
	int64_t refuse_end; /* servers that refuse connections are tried again until then */
	int     busy;       /* this round: a 429 */
	int     again;      /* this round: a 503, or a server silent past the request timeout */
	int     refused;    /* this round: a connection refused or failed */
	int     silent;     /* the last failure: no answer in time (75), else 69 */
	char    last[512];  /* what the last failure was */
	char    tlserr[512];
};

/*
 * The outcome of a failed attempt on server i: 0 to go on to the next
 * server, else an error code (err set) that ends the call.
 */
static int
failed(struct rest_client *rc, struct call *k, int i, CURLcode cc, int64_t tmo, char *err,
    size_t errlen)
{
	int64_t now = mom_mono_ms();

	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		if (now >= k->deadline)
			return MOM_ETIMEDOUT;
		/* Stopped, or a hung host: its TCP connection is up, nothing answers. */
		mom_node_note(&rc->st[i], MOM_NODE_SILENT, now);
		snprintf(k->last, sizeof(k->last), "%s: no answer within %.1f s", rc->urls[i],
		    (double)tmo / 1000);
		k->again = k->silent = 1;
		return 0;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(err, errlen, "bad server URL '%s': %s", rc->urls[i], rc->cerr);
		return MOM_EINVAL;
	case CURLE_OUT_OF_MEMORY:
		snprintf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	case CURLE_WRITE_ERROR:
		snprintf(err, errlen, "%s sent an answer over %u MiB", rc->urls[i],
		    REST_MAX_ANSWER >> 20);
		return MOM_EPROTO;
	default:
		break;
	}
	if (tls_failure(cc, rc->cerr) && (rc->cli->insecure || rc->ca == NULL))
		snprintf(k->tlserr, sizeof(k->tlserr), "%s: TLS handshake failed: %s",
		    rc->urls[i], rc->cerr);
	else if (tls_failure(cc, rc->cerr))
		snprintf(k->tlserr, sizeof(k->tlserr), "%s: TLS handshake failed: %s "
		    "(trusting %s)", rc->urls[i], rc->cerr, rc->ca);
	mom_node_note(&rc->st[i], MOM_NODE_GONE, now);
	snprintf(k->last, sizeof(k->last), "%s: %s", rc->urls[i], rc->cerr);
	k->refused = 1;
	k->silent = 0;
	return 0;
}

/* A change of the cluster (POST /v1/cluster/nodes, DELETE .../ID, POST .../transfer)? */
static int
cluster_change(const struct mom_httpapi_req *req)
{
	return strcmp(req->method, "GET") != 0 && strncmp(req->path, "/v1/cluster/", 12) == 0;
}

/*
 * One round over the servers, from the one that answered last, passing
 * over those set aside while another is not.  0 with *rep filled when one
 * answered, -1 when none did (k says why), else an error code (err set).
 */
static int
round_trip(struct rest_client *rc, struct mom_httpapi_req *req, struct mom_buf *body,
    struct call *k, json_t **rep, char *err, size_t errlen)
{
	int64_t  left, cbound, tmo, now = mom_mono_ms();
	int      j, i, rv, free_one = 0;
	long     status;
	CURLcode cc;

	for (i = 0; i < rc->nurls; i++)
		free_one |= rc->st[i].aside_until <= now;
	for (j = 0; j < rc->nurls; j++) {
		i = (rc->cur + j) % rc->nurls;
		if (free_one && rc->st[i].aside_until > mom_mono_ms())
			continue;
		/* -W passed: after refusals only, the broker is unavailable (69). */
		if ((left = k->deadline - mom_mono_ms()) <= 0)
			return *k->last && !k->silent ? MOM_EUNAVAIL : MOM_ETIMEDOUT;
		/*
		 * With several servers, one that does not answer gets the
		 * request timeout, not -W; but a cluster change waits for the
		 * answer of the server that took it (client.c, answer_wait).
		 */
		tmo = left;
		if (rc->nurls > 1 && tmo > rc->request_ms && !cluster_change(req))
			tmo = rc->request_ms;
		/*
		 * A server that does not even accept the connection gets its
		 * share of the time, not all of it, so the next one in the
		 * list is still tried.
		 */
		cbound = left / (rc->nurls - j);
		if (cbound < 1000)
			cbound = left < 1000 ? left : 1000;
		if (rc->cli->connect_ms > 0 && rc->cli->connect_ms < cbound)
			cbound = rc->cli->connect_ms;
		if (cbound > tmo)
			cbound = tmo;
		cc = attempt(rc, rc->urls[i], req, tmo, cbound, &status, body);
		if (cc == CURLE_OK)
			mom_cli_info(rc->cli, "%s %s%s: HTTP %ld", req->method, rc->urls[i],
			    req->path, status);
		else
			mom_cli_info(rc->cli, "%s %s%s: %s", req->method, rc->urls[i], req->path,
			    rc->cerr);
		if (cc == CURLE_OK && status != 503 && status != 429) {
			rc->cur = i;
			mom_node_note(&rc->st[i], MOM_NODE_ANSWERED, mom_mono_ms());
			return mom_httpapi_reply(req, status, (const char *)body->data, body->len,
			    rep, err, errlen);
		}
		if (cc == CURLE_OK) {
			char msg[256];

			/* 503: this one cannot serve now (shutting down, not the leader): the next may. */
			rv = mom_httpapi_error(status, (const char *)body->data, body->len, msg,
			    sizeof(msg));
			if (rv == MOM_EBUSY)
				k->busy = 1;
			else {
				k->again = 1;
				mom_node_note(&rc->st[i], MOM_NODE_REFUSED, mom_mono_ms());
			}
			snprintf(k->last, sizeof(k->last), "%s: %s", rc->urls[i], msg);
			k->silent = 0;
			continue;
		}
		if ((rv = failed(rc, k, i, cc, tmo, err, errlen)) != 0)
			return rv;
	}
	return -1;
}

int
rest_client_admin(struct rest_client *rc, const json_t *op, json_t **rep, int64_t timeout_ms,
    char *err, size_t errlen)
{
	struct mom_httpapi_req req;
	struct mom_buf         body;
	struct call            k;
	int64_t                left, backoff = 50, retry;
	int                    rv;

	*rep = NULL;
	if ((rv = mom_httpapi_admin(op, &req, err, errlen)) != 0) {
		mom_httpapi_req_fini(&req);
		return rv;
	}
	mom_buf_init(&body);
	memset(&k, 0, sizeof(k));
	k.deadline = mom_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	/* Refused connections are dialled again as over tcp://: --connect-timeout, else -W's. */
	retry = rc->cli->retry_ms >= 0 ? rc->cli->retry_ms : rc->cli->connect_ms;
	k.refuse_end = mom_mono_ms() + (retry > 0 ? retry : 0);
	for (;;) {
		k.busy = k.again = k.refused = 0;
		if ((rv = round_trip(rc, &req, &body, &k, rep, err, errlen)) != -1)
			break;
		/*
		 * Nobody answered.  Overloaded, without a leader, silent: back
		 * off and go round again, within -W; refusing connections:
		 * only while the broker may be (re)starting.
		 */
		if (!k.busy && !k.again && !(k.refused && mom_mono_ms() < k.refuse_end))
			break;
		if ((left = k.deadline - mom_mono_ms()) <= 0) {
			rv = k.silent ? MOM_ETIMEDOUT : MOM_EUNAVAIL;
			break;
		}
		sleep_ms(backoff < left ? backoff : left);
		if (backoff < 1000)
			backoff *= 2;
	}
	if (rv == -1 && *k.tlserr) {
		/* Nobody answered, and one refused the handshake: that is what to fix (as tls+tcp://). */
		snprintf(err, errlen, "%s", k.tlserr);
		rv = MOM_EAUTH;
	} else if (rv == -1 || rv == MOM_EUNAVAIL) {
		if (k.refused)
			snprintf(err, errlen, "no broker reachable (%s)", k.last);
		else
			snprintf(err, errlen, "broker unavailable (%s)", k.last);
		rv = MOM_EUNAVAIL;
	} else if (rv == MOM_ETIMEDOUT) {
		if (*k.last)
			snprintf(err, errlen, "timed out waiting for the broker (%s)", k.last);
		else
			snprintf(err, errlen, "timed out waiting for the broker");
	}
	mom_buf_fini(&body);
	mom_httpapi_req_fini(&req);
	return rv;
}

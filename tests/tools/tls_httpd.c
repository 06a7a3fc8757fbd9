/*
 * tls_httpd: a test-only HTTP(S) server answering GET /healthz, to measure
 * what libmom/tls.c does against nng 1.5.2's Nagle stall (tls.h).
 *
 *   tls_httpd [-n] [-s] URL [CERT KEY]
 *
 * URL is http://HOST:PORT or https://HOST:PORT (then CERT and KEY).  By
 * default nng's HTTP server serves, as mom-auth serve does, and every
 * handler calls mom_tls_http_nodelay().  -s serves from a raw stream
 * listener made by mom_tls_stream_listener(), writing each response's
 * headers and body with two sends (the pattern that stalls), as a
 * hand-written server may.  -n is the control: Nagle is left on (nng's
 * default), so that a test can show its measurement catches the stall.
 * Runs until SIGTERM or SIGINT.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "tls.h"

static const char body[] = "{\"status\":\"ok\"}";
static bool       nagle; /* -n */

static void
healthz_cb(nng_aio *aio)
{
	nng_http_res *res;

	if (!nagle && mom_tls_http_nodelay(aio) != 0)
		fprintf(stderr, "tls_httpd: mom_tls_http_nodelay failed\n");
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_header(res, "Content-Type", "application/json");
	nng_http_res_copy_data(res, body, strlen(body));
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static int
send_all(nng_stream *s, nng_aio *aio, const void *buf, size_t len)
{
	nng_iov iov;

	while (len > 0) {
		iov.iov_buf = (void *)(uintptr_t)buf;
		iov.iov_len = len;
		nng_aio_set_iov(aio, 1, &iov);
		nng_stream_send(s, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			return -1;
		buf = (const char *)buf + nng_aio_count(aio);
		len -= nng_aio_count(aio);
	}
	return 0;
}

/* One connection: GET requests without bodies, answered in two sends each. */
static void *
conn_main(void *arg)
{
	nng_stream *s = arg;
	nng_aio    *aio;
	char        buf[8192], head[256];
	size_t      have = 0;
	char       *end;
	nng_iov     iov;
	int         n;

	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
		goto done;
	nng_aio_set_timeout(aio, 10000);
	if (nagle)
		nng_stream_set_bool(s, NNG_OPT_TCP_NODELAY, false);
	for (;;) {
		while ((end = memmem(buf, have, "\r\n\r\n", 4)) == NULL) {
			if (have == sizeof(buf))
				goto done;
			iov.iov_buf = buf + have;
			iov.iov_len = sizeof(buf) - have;
			nng_aio_set_iov(aio, 1, &iov);
			nng_stream_recv(s, aio);
			nng_aio_wait(aio);
			if (nng_aio_result(aio) != 0)
				goto done;
			have += nng_aio_count(aio);
		}
		n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\n\r\n", strlen(body));
		if (send_all(s, aio, head, (size_t)n) != 0 || send_all(s, aio, body, strlen(body)) != 0)
			goto done;
		end += 4;
		have -= (size_t)(end - buf);
		memmove(buf, end, have);
	}
done:
	if (aio != NULL)
		nng_aio_free(aio);
	nng_stream_free(s);
	return NULL;
}

static void *
accept_main(void *arg)
{
	nng_stream_listener *l = arg;
	nng_aio             *aio;
	pthread_t            t;

	if (nng_aio_alloc(&aio, NULL, NULL) != 0)
		return NULL;
	for (;;) {
		nng_stream_listener_accept(l, aio);
		nng_aio_wait(aio);
		if (nng_aio_result(aio) != 0)
			break;
		if (pthread_create(&t, NULL, conn_main, nng_aio_get_output(aio, 0)) == 0)
			pthread_detach(t);
	}
	nng_aio_free(aio);
	return NULL;
}

int
main(int argc, char **argv)
{
	nng_tls_config      *cfg = NULL;
	nng_http_server     *srv = NULL;
	nng_http_handler    *h;
	nng_stream_listener *l = NULL;
	nng_url             *u;
	pthread_t            t;
	sigset_t             sigs;
	char                 err[512];
	bool                 stream = false;
	int                  ch, rv, sig;

	while ((ch = getopt(argc, argv, "ns")) != -1) {
		switch (ch) {
		case 'n':
			nagle = true;
			break;
		case 's':
			stream = true;
			break;
		default:
			goto usage;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 && argc != 3)
		goto usage;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (argc == 3 && mom_tls_server_config(&cfg, argv[1], argv[2], NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "tls_httpd: %s\n", err);
		return 64;
	}
	if (stream) {
		if (mom_tls_stream_listener(&l, argv[0], cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "tls_httpd: %s\n", err);
			return 69;
		}
		if (pthread_create(&t, NULL, accept_main, l) != 0)
			return 1;
	} else {
		if ((rv = nng_url_parse(&u, argv[0])) != 0 || (rv = nng_http_server_hold(&srv, u)) != 0) {
			fprintf(stderr, "tls_httpd: %s: %s\n", argv[0], nng_strerror(rv));
			return 64;
		}
		nng_url_free(u);
		if ((cfg != NULL && (rv = nng_http_server_set_tls(srv, cfg)) != 0) ||
		    (rv = nng_http_handler_alloc(&h, "/healthz", healthz_cb)) != 0 ||
		    (rv = nng_http_server_add_handler(srv, h)) != 0 ||
		    (rv = nng_http_server_start(srv)) != 0) {
			fprintf(stderr, "tls_httpd: %s: %s\n", argv[0], nng_strerror(rv));
			return 69;
		}
	}
	while (sigwait(&sigs, &sig) != 0)
		;
	if (srv != NULL) {
		nng_http_server_stop(srv);
		nng_http_server_release(srv);
	}
	if (l != NULL) {
		nng_stream_listener_close(l);
		pthread_join(t, NULL);
		nng_stream_listener_free(l);
	}
	if (cfg != NULL)
		nng_tls_config_free(cfg);
	return 0;
usage:
	fprintf(stderr, "usage: tls_httpd [-n] [-s] URL [CERT KEY]\n");
	return 64;
}

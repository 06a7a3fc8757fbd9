/*
 * http-ceiling: the fastest HTTP answer nng 1.5.2's own server gives on
 * this machine, for bench/http: POST /v1/queues/q/messages collects the
 * body (as nng does by default, up to 1 MiB) and answers a fixed JSON
 * body, with its length and a Content-Type, and nothing else.  No broker,
 * no core, no token: what mom-broker's HTTP plane is measured against.
 *
 *	http-ceiling PORT
 *
 * Listens on 127.0.0.1:PORT until SIGTERM or SIGINT.  Each answer also
 * carries "X-Body-Length: N", the body nng handed the handler, which is
 * how bench/http and the notes on nng's limits (chunked bodies arriving
 * empty) were checked.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

static const char answer[] = "{\"stored\":1,\"duplicates\":0}";

static void
handle(nng_aio *aio)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	nng_http_res *res;
	void         *body;
	size_t        len;
	char          n[32];

	nng_http_req_get_data(req, &body, &len);
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	snprintf(n, sizeof(n), "%zu", len);
	if (nng_http_res_copy_data(res, answer, sizeof(answer) - 1) != 0 ||
	    nng_http_res_set_header(res, "Content-Type", "application/json") != 0 ||
	    nng_http_res_set_header(res, "X-Body-Length", n) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

int
main(int argc, char **argv)
{
	nng_http_server  *srv;
	nng_http_handler *h;
	nng_url          *url;
	sigset_t          sigs;
	char              u[64];
	int               rv, sig;

	if (argc != 2 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: http-ceiling PORT\n");
		return 64;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d", atoi(argv[1]));
	if ((rv = nng_url_parse(&url, u)) != 0 || (rv = nng_http_server_hold(&srv, url)) != 0 ||
	    (rv = nng_http_handler_alloc(&h, "/v1/queues/q/messages", handle)) != 0 ||
	    (rv = nng_http_handler_set_method(h, "POST")) != 0 ||
	    (rv = nng_http_server_add_handler(srv, h)) != 0 ||
	    (rv = nng_http_server_start(srv)) != 0) {
		fprintf(stderr, "http-ceiling: %s: %s\n", u, nng_strerror(rv));
		return 69;
	}
	while (sigwait(&sigs, &sig) != 0)
		;
	nng_http_server_stop(srv);
	nng_http_server_release(srv);
	nng_url_free(url);
	nng_fini();
	return 0;
}

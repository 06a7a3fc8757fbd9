/*
 * http.h: the broker's HTTP plane (the REST API of mom-broker(8)).
 *
 * A small HTTP/1.1 server on nng's byte streams (nng_stream_listener):
 * nng's own HTTP server in 1.5.2 cannot list a request's header fields
 * (Mom-H-* message headers), answers an over-limit body with 400 rather
 * than 413, reads a chunked body as empty, never answers "Expect:
 * 100-continue", and writes headers and body in two writes without
 * TCP_NODELAY (44 ms per HTTPS response).  Here a connection reads a
 * request, hands the wire frame rest.c built for it to the core through
 * a struct core_req (core/core.h), and writes the answer in one write when the core
 * replies.  Nothing blocks nng's threads: a long poll is parked in the
 * core and its connection is simply not read from meanwhile (except to
 * notice that the client went away).
 */
#ifndef BROKER_HTTP_H
#define BROKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct auth;
struct core;
struct http;
struct nng_tls_config;

struct http_config {
	const char  *url;         /* nng stream URL: tcp://host:port or tls+tcp://host:port */
	size_t       max_payload; /* the broker's message size limit */
	struct auth *auth;        /* token checks when auth_enabled(); borrowed */
	/*
	 * For tls+tcp:// URLs: the nng_tls_config (server mode, certificate
	 * loaded) that the listener uses; borrowed.  NULL with a tls+tcp://
	 * URL is an error.
	 */
	struct nng_tls_config *tls;
	/*
	 * Against clients that hold connections without finishing requests
	 * (slowloris), 0 for the defaults below: a request head arrives whole
	 * within header_timeout_ms of its first byte (of the connection, for
	 * its first request); a body at body_rate bytes a second at least,
	 * after a start of header_timeout_ms; at max_conns connections, the
	 * one idle or slow for longest is closed to make room for a new one.
	 */
	uint64_t     header_timeout_ms;
	uint64_t     body_rate;
	int          max_conns;
};

#define HTTP_HEADER_TIMEOUT_MS 10000
#define HTTP_BODY_RATE         16384
#define HTTP_MAX_CONNS         4096
#define HTTP_MAX_CONNS_LIMIT   1000000

/*
 * The nng URL for a --http value: "HOST:PORT", "http://HOST:PORT" ->
 * tcp://HOST:PORT; "https://HOST:PORT" -> tls+tcp://HOST:PORT with *tls
 * set.  A missing port is 7421 (http) or 7443 (https).  0, or MOM_EINVAL
 * for anything else (a path, an empty host, a bad port).
 */
int  http_url(const char *addr, char *url, size_t len, bool *tls);

/*
 * Listens and serves; 0, or -1 with err saying why (not logged: whether
 * that stops the broker is the caller's business).  The core must exist.
 */
int  http_start(struct http **, const struct http_config *, struct core *, char *err,
    size_t errlen);
/* /healthz says 503 from now on (the broker is stopping). */
void http_quiesce(struct http *);
/*
 * Closes the listener and every connection and frees h.  Call after
 * core_stop(): a connection whose request is in the core is freed when
 * the core has answered it.
 */
void http_stop(struct http *);

#endif

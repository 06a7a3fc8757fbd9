/*
 * front.h: the nng data plane.  nng's threads receive requests on a pool
 * of rep contexts, check the frame header and hand each request to the
 * core (core/core.h: struct core_req), whose answer comes back through
 * the request's reply callback.  Nothing here touches broker state.
 *
 * net/ is the broker's top layer: the I/O threads of the nng plane
 * (front.c), the HTTP plane (http.c, with rest.c mapping REST to wire
 * frames) and the token cache both share (auth.c).  It hands requests to
 * core/ and reads no state of its own; nothing below includes net/.
 */
#ifndef BROKER_FRONT_H
#define BROKER_FRONT_H

#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

struct core;
struct auth;

struct front_config {
	const char **listen;  /* URLs */
	int          nlisten;
	size_t       max_payload;
	int          contexts; /* per socket; default 1024 */
	struct auth *auth;     /* token checks; NULL or disabled: open broker */
	nng_tls_config *tls;   /* tls+tcp:// listeners' certificate (borrowed; they take a hold) */
};

struct front;

/* Opens and listens; the core must exist.  0 or -1 (logged). */
int  front_start(struct front **, const struct front_config *, struct core *);
/* Closes the sockets and waits for nng's callbacks to finish. */
void front_stop(struct front *);
/* Connected clients now. */
int  front_connections(struct front *);

#endif

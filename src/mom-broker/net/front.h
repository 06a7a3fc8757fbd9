/*
 * front.h: the nng data plane.  It speaks nng's req/rep wire protocol on
 * nng_stream connections itself (so that it can bound what peers make it
 * hold: see front.c), checks each frame's header and hands each request
 * to the core (core/core.h: struct core_req), whose answer comes back
 * through the request's reply callback.  Nothing here touches broker state.
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

#define FRONT_MAX_LISTEN       16
#define FRONT_POLLS_DEFAULT    256         /* long polls per connection */
#define FRONT_FRAME_MS_DEFAULT 30000       /* a frame's first byte to its last */
#define FRONT_BUDGET_DEFAULT   (128u << 20) /* partially received frames, in all */

struct front_config {
	const char **listen;  /* URLs: tcp://, tls+tcp://, ipc:// (abstract://) */
	int          nlisten;
	size_t       max_payload;
	int          max_conns;    /* 0: 1024 (main.c sizes it from the open-file limit) */
	int          max_polls;    /* per connection; 0: the default */
	uint64_t     frame_ms;     /* 0: the default */
	size_t       frame_budget; /* 0: the default; never below one whole frame */
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

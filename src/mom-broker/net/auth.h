/*
 * auth.h: the broker's token check, shared by the nng and HTTP planes.
 *
 * A token is verified once (token.h: pinned algorithm, signature, every
 * claim) and its claims are cached by the token's SHA-256 digest until it
 * expires, so a client that sends its token with every request pays one
 * hash lookup.  Claims are reference counted: a request holds them until
 * it is answered.  auth_reload() (SIGHUP) reads the key file again and
 * empties the cache, so a removed key stops working at once.
 *
 * Thread-safe: called from nng's callback threads and the core.
 */
#ifndef BROKER_AUTH_H
#define BROKER_AUTH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "token.h"

/* Verified claims of one token, shared by the requests that carry it. */
struct bclaims {
	atomic_int        refs;
	struct mom_claims c;
	uint8_t           digest[32];
};

struct auth_config {
	const char *keyfile;  /* PEM public key(s); NULL: auth off (open broker) */
	const char *issuer;   /* NULL: "mom-auth" */
	const char *audience; /* NULL: "mom" */
	int         leeway;   /* seconds, at most 60 */
};

struct auth;

/* 0, or -1 with the reason logged (unreadable or bad key file). */
int  auth_open(struct auth **, const struct auth_config *);
void auth_close(struct auth *);
/* Is a token required? */
bool auth_enabled(const struct auth *);
/* Reads the key file again; on failure keeps the old keys.  0 / -1 (logged). */
int  auth_reload(struct auth *);
/*
 * Checks a token.  On 0, *out holds a reference (bclaims_release).
 * MOM_EAUTH with a reason for the client in err.
 */
int  auth_check(struct auth *, const char *tok, size_t len, struct bclaims **out, char *err,
    size_t errlen);
void bclaims_release(struct bclaims *);
/* Tokens verified / refused / answered from the cache, for /metrics. */
void auth_stats(const struct auth *, uint64_t *verified, uint64_t *refused, uint64_t *cached);

#endif

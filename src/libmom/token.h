/*
 * token.h: mom's JSON Web Tokens (RFC 7519), signed with ES256 (P-256)
 * or RS256 and verified without trusting anything the token says about
 * itself.
 *
 * libjwt 1.10.2 takes the algorithm from the token header and checks no
 * claim, so verification here is: a cheap structural pre-parse (size,
 * three base64url segments, a JSON header whose "alg" equals the key's
 * pinned algorithm and whose "typ", when present, is "JWT"), then the
 * signature through libjwt with the configured public key, then
 * jwt_get_alg() checked again, then every claim: exp (required), nbf,
 * iat, iss, aud, sub, with at most MOM_TOKEN_LEEWAY_MAX seconds of leeway.
 *
 * Claims mom uses:
 *	iss "mom-auth", aud "mom", sub (user), jti, iat, nbf, exp,
 *	"mom.pub": [pattern...], "mom.sub": [pattern...], "mom.admin": bool
 */
#ifndef MOM_TOKEN_H
#define MOM_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOM_TOKEN_MAX          8192  /* bytes of compact serialisation */
#define MOM_TOKEN_LEEWAY_MAX   60    /* seconds */
#define MOM_TOKEN_ISSUER       "mom-auth"
#define MOM_TOKEN_AUDIENCE     "mom"
#define MOM_TOKEN_PATTERNS_MAX 64    /* per list */
#define MOM_TOKEN_SUB_MAX      128   /* bytes of a user name (sub) */

enum mom_token_alg {
	MOM_ALG_NONE = 0,  /* not a usable algorithm: refused */
	MOM_ALG_ES256,
	MOM_ALG_RS256,
};

/* What a verified token grants. */
struct mom_claims {
	char    sub[129];  /* user name */
	char    jti[65];
	int64_t iat, nbf, exp; /* seconds since the epoch; nbf 0: absent */
	char  **pub;       /* mom.pub patterns */
	size_t  npub;
	char  **subs;      /* mom.sub patterns */
	size_t  nsubs;
	bool    admin;     /* mom.admin */
};

/* Is s a valid sub (user name): 1-128 bytes of [A-Za-z0-9_.@-]? */
bool mom_token_sub_ok(const char *s);

void mom_claims_free(struct mom_claims *); /* frees the lists, keeps *c */
/* Deep copy; 0 or MOM_ENOMEM. */
int  mom_claims_copy(struct mom_claims *dst, const struct mom_claims *src);
/* The claims as a JSON object text (malloc'd), for mom-auth verify. */
char *mom_claims_json(const struct mom_claims *);

/*
 * Permissions.  A name is allowed when one pattern of the list matches it
 * (names.h: mom_match); admin allows everything.  A subscription pattern
 * is allowed when one mom.sub pattern covers every name it can match
 * (mom_pattern_covers).
 */
bool mom_claims_can_pub(const struct mom_claims *, const char *name);
bool mom_claims_can_sub(const struct mom_claims *, const char *name_or_pattern);

/*
 * Pre-parse: structure only, no crypto.  Checks length (1..MOM_TOKEN_MAX),
 * exactly three base64url segments (no padding, no other bytes, canonical
 * spelling), that header and payload decode to JSON objects without
 * duplicate members, that "alg" is exactly "ES256" or "RS256" (anything
 * else: "algorithm not allowed"), that "typ" is absent or "JWT" in any
 * case, that there is no "crit", and that the signature is not empty;
 * copies the header's "alg" into alg.  0 or MOM_EAUTH with the reason in
 * err.  Safe on any input (fuzzed).
 */
int mom_token_preparse(const char *tok, size_t len, char *alg, size_t alglen, char *err,
    size_t errlen);

/* Public keys a verifier trusts: one or more PEM blocks of one file. */
struct mom_keyset;

/*
 * Loads every PUBLIC KEY PEM block of a file (EC P-256 -> ES256, RSA
 * -> RS256; anything else is an error).  0 or MOM_EINVAL/MOM_ENOENT with
 * the reason in err.
 */
int  mom_keyset_load(struct mom_keyset **, const char *path, char *err, size_t errlen);
/* The same from memory (PEM text). */
int  mom_keyset_parse(struct mom_keyset **, const char *pem, size_t len, char *err,
    size_t errlen);
void mom_keyset_free(struct mom_keyset *);
size_t mom_keyset_count(const struct mom_keyset *);
/* The PEM text of key i (for GET /v1/keys). */
const char *mom_keyset_pem(const struct mom_keyset *, size_t i);

struct mom_verify_opts {
	const char *issuer;   /* NULL: MOM_TOKEN_ISSUER */
	const char *audience; /* NULL: MOM_TOKEN_AUDIENCE */
	int         leeway;   /* seconds, clamped to 0..MOM_TOKEN_LEEWAY_MAX */
	int64_t     now;      /* seconds since the epoch; 0: time(NULL) */
};

/*
 * Verifies a compact token (len bytes; no NUL needed) against every key of
 * the set whose algorithm the header names; fills *out (free with
 * mom_claims_free; left zeroed on failure).  Returns 0 or MOM_EAUTH with
 * a short reason in err that is safe to show to the client: "token too
 * large", "malformed token", "algorithm not allowed", "token type not
 * allowed", "critical header not supported", "bad signature", "token
 * expired", "token not yet valid", "token issued in the future", "token
 * without expiry", "token without issuer", "wrong issuer", "token without
 * audience", "wrong audience", "token without subject", "bad subject",
 * "bad permission list".  Claims are only judged once the signature holds.
 */
int mom_token_verify(const struct mom_keyset *, const char *tok, size_t len,
    const struct mom_verify_opts *, struct mom_claims *out, char *err, size_t errlen);

/*
 * Signs claims with a private key (PEM: EC P-256 -> ES256, RSA -> RS256).
 * iss/aud are set to opts' values (defaults above); iat and nbf to now;
 * exp to c->exp; a random jti when c->jti is empty.  *out is malloc'd.
 * 0 or MOM_EINVAL with the reason in err.
 */
int mom_token_sign(const char *privkey_pem, size_t pemlen, const struct mom_claims *,
    const struct mom_verify_opts *, char **out, char *err, size_t errlen);

/* SHA-256 of the token text, for caches keyed by digest. */
void mom_token_digest(const char *tok, size_t len, uint8_t out[32]);

/* base64url without padding (RFC 4648 section 5): helpers shared with tests. */
char *mom_b64url_encode(const uint8_t *, size_t);             /* malloc'd */
int   mom_b64url_decode(const char *, size_t, uint8_t **out, size_t *outlen); /* 0 / -1 */

#endif

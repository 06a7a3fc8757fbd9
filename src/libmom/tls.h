/*
 * tls.h: TLS configurations for nng, built from PEM files, shared by the
 * broker's listeners (data plane and HTTPS), the clients' dialers and
 * mom-auth's HTTPS issuer.
 *
 * nng 1.5.2 as Debian ships it does TLS with mbed TLS 2.28: TLS 1.2 only,
 * RSA and ECDSA (P-256) certificates, no Ed25519, and unencrypted keys.
 * The files are checked here first (with OpenSSL, which mom links for
 * JWT anyway), so that a user reads "key.pem: the private key does not
 * match cert.pem" instead of nng's "Cryptographic error".
 *
 * Errors are one line in err, without the program's name; the functions
 * return 0 or MOM_EINVAL.
 */
#ifndef MOM_TLS_H
#define MOM_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/* The CA bundle clients trust when not given one ($SSL_CERT_FILE wins). */
#define MOM_TLS_SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

/* true when url's scheme carries TLS: tls+tcp://, tls+tcp4://, tls+tcp6://, https://, wss://. */
bool mom_tls_url(const char *url);

/*
 * A server configuration (listeners, HTTPS): cert is a PEM file with the
 * certificate (and its chain), key the unencrypted PEM private key (NULL:
 * the key is in cert's file).  With cafile, clients must present a
 * certificate signed by a CA in that PEM file; without it none is asked
 * for.  On success *cfg is returned owned (nng_tls_config_free; a
 * listener or server it is given to takes its own hold).
 */
int mom_tls_server_config(nng_tls_config **cfg, const char *cert, const char *key, const char *cafile,
    char *err, size_t errlen);

/* What a client verifies and presents (strings borrowed). */
struct mom_tls_client {
	const char *cafile;   /* trusted CAs; NULL: $SSL_CERT_FILE, else MOM_TLS_SYSTEM_CA */
	const char *cert;     /* client certificate, or NULL */
	const char *key;      /* its key; NULL: in cert's file */
	bool        insecure; /* verify nothing (tests, first contact) */
};

/*
 * A client configuration for a connection to host (the URL's host: the
 * name the server's certificate must carry).  Verification is on unless
 * insecure.  *cfg is returned owned, as above.
 */
int mom_tls_client_config(nng_tls_config **cfg, const struct mom_tls_client *, const char *host,
    char *err, size_t errlen);

/* The CA file a client configuration without cafile trusts. */
const char *mom_tls_default_cafile(void);

/*
 * A listening stream listener (owned: nng_stream_listener_free) for an
 * HTTP address: "https://HOST:PORT" or "tls+tcp://HOST:PORT" (TLS with
 * cfg, which is required), "http://HOST:PORT", "tcp://HOST:PORT" or a
 * bare "HOST:PORT" (plain).  Every connection it accepts has TCP_NODELAY
 * on from the start, so neither the TLS handshake nor a response written
 * in pieces waits for a delayed ACK.  0, or MOM_EINVAL (bad address,
 * https without cfg) or MOM_EUNAVAIL (cannot listen) with err set.
 */
int mom_tls_stream_listener(nng_stream_listener **, const char *addr, nng_tls_config *cfg,
    char *err, size_t errlen);

/*
 * Turns Nagle's algorithm off on the connection an nng HTTP handler is
 * serving; call it first thing in every handler.  nng 1.5.2 accepts every
 * HTTP connection with TCP_NODELAY off and offers no option to change
 * that, and over TLS it writes a response's headers and body as two
 * records, so the body waits for the client's delayed ACK: 40 ms per
 * response.  See tls.c for how the connection is reached.  Returns 0, or
 * NNG_ENOTSUP on an nng version where this is not known to be safe (then
 * nothing is done; mom_tls_http_nodelay_ok() says so up front).
 */
int  mom_tls_http_nodelay(nng_aio *handler_aio);
bool mom_tls_http_nodelay_ok(void);

#endif

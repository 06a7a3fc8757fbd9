/*
 * jws.h: a JWS forger for tests only (token_test.c, mkjwt.c).
 *
 * It signs whatever header and payload text it is given, with whatever
 * key it is given, straight through OpenSSL: an ES256 signature in the
 * JOSE form (r || s), RS256 (PKCS #1 v1.5), HMAC-SHA256 with any bytes as
 * the secret (the key confusion attack), or no signature at all.  Nothing
 * here checks anything: that is the point.  Header-only so that the unit
 * tests need no extra object; the functions are static.
 */
#ifndef MOM_TESTS_JWS_H
#define MOM_TESTS_JWS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "token.h" /* mom_b64url_encode */

#define JWS_UNUSED __attribute__((unused))

/*
 * Signs n bytes of input: with key when not NULL (EC -> ES256 r || s, RSA
 * -> RS256), else with HMAC-SHA256 and secret.  *sig is malloc'd.  0 / -1.
 */
static JWS_UNUSED int
jws_sign(EVP_PKEY *key, const uint8_t *secret, size_t secretlen, const char *input, size_t n,
    uint8_t **sig, size_t *siglen)
{
	EVP_MD_CTX *md;
	uint8_t    *der = NULL;
	size_t      derlen = 0;
	int         ok;

	*sig = NULL;
	*siglen = 0;
	if (key == NULL) {
		unsigned int len = EVP_MAX_MD_SIZE;

		if ((*sig = malloc(EVP_MAX_MD_SIZE)) == NULL ||
		    HMAC(EVP_sha256(), secret, (int)secretlen, (const uint8_t *)input, n, *sig,
		    &len) == NULL)
			return -1;
		*siglen = len;
		return 0;
	}
	if ((md = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestSign(md, NULL, &derlen, (const uint8_t *)input, n) == 1 &&
	    (der = malloc(derlen)) != NULL &&
	    EVP_DigestSign(md, der, &derlen, (const uint8_t *)input, n) == 1;
	EVP_MD_CTX_free(md);
	if (!ok) {
		free(der);
		return -1;
	}
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
		const uint8_t *p = der;
		ECDSA_SIG     *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
		const BIGNUM  *r, *s;

		free(der);
		if (es == NULL || (*sig = malloc(64)) == NULL) {
			ECDSA_SIG_free(es);
			return -1;
		}
		ECDSA_SIG_get0(es, &r, &s);
		BN_bn2binpad(r, *sig, 32);
		BN_bn2binpad(s, *sig + 32, 32);
		ECDSA_SIG_free(es);
		*siglen = 64;
		return 0;
	}
	*sig = der;
	*siglen = derlen;
	return 0;
}

/* "b64(a).b64(b)": the signing input, or a token missing its signature. */
static JWS_UNUSED char *
jws_join(const char *a, size_t an, const char *b, size_t bn)
{
	char  *ea = mom_b64url_encode((const uint8_t *)a, an);
	char  *eb = mom_b64url_encode((const uint8_t *)b, bn);
	char  *out = NULL;
	size_t n;

	if (ea != NULL && eb != NULL) {
		n = strlen(ea) + strlen(eb) + 2;
		if ((out = malloc(n)) != NULL)
			snprintf(out, n, "%s.%s", ea, eb);
	}
	free(ea);
	free(eb);
	return out;
}

/* input + "." + b64(sig): the compact token. */
static JWS_UNUSED char *
jws_append_sig(const char *input, const uint8_t *sig, size_t siglen)
{
	char  *es = mom_b64url_encode(sig, siglen);
	char  *out = NULL;
	size_t n;

	if (es != NULL) {
		n = strlen(input) + strlen(es) + 2;
		if ((out = malloc(n)) != NULL)
			snprintf(out, n, "%s.%s", input, es);
	}
	free(es);
	return out;
}

/*
 * A compact token from header and payload text (any bytes, JSON or not),
 * signed as jws_sign does; unsigned (empty signature) when both key and
 * secret are NULL.  malloc'd; NULL on failure.
 */
static JWS_UNUSED char *
jws_forge(const char *header, const char *payload, EVP_PKEY *key, const uint8_t *secret,
    size_t secretlen)
{
	char    *input, *tok;
	uint8_t *sig = NULL;
	size_t   siglen = 0;

	if ((input = jws_join(header, strlen(header), payload, strlen(payload))) == NULL)
		return NULL;
	if ((key != NULL || secret != NULL) &&
	    jws_sign(key, secret, secretlen, input, strlen(input), &sig, &siglen) != 0) {
		free(input);
		return NULL;
	}
	tok = jws_append_sig(input, sig, siglen);
	free(sig);
	free(input);
	return tok;
}

#endif

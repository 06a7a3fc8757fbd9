/*
 * token_fuzz.c: libFuzzer target for the token verifier, which reads what
 * any client sends before anything about that client is known.
 *
 * The input is a token as it arrives.  It goes through mom_token_preparse
 * and mom_token_verify with a fixed keyset (one ES256, one RS256 key) and
 * a fixed clock, so that the seeds (tests/fuzz/corpus/token_fuzz/, made
 * with build/tools/mkjwt and the private keys tests/fuzz/token_fuzz_*.pem,
 * exp after 1800000000) stay valid and the fuzzer can mutate tokens that
 * reach the claims check.  Sanitizers catch bad reads and leaks; the
 * checks here catch a verifier that accepts what it promises to refuse.
 * The input is also run through the base64url decoder (whatever it
 * accepts must encode back to the same text: one spelling per byte
 * string) and, split at its first newline, the pattern coverage check.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mom.h"
#include "names.h"
#include "token.h"

#define FUZZ_NOW 1800000000

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char keys_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEI8Mczcs/nGmrkCxR/PrFyTk6e9Ye\n"
	"5L1+nVJKWrVs6nYu8Wu5hLKUPELZocmW5TeCjIXG/dcTejMshKQamHX/aQ==\n"
	"-----END PUBLIC KEY-----\n"
	"-----BEGIN PUBLIC KEY-----\n"
	"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt8h5V18wwPGVwIy5jIHj\n"
	"Q+TATFJAfDbrSfyIglWwT6yvZE9v+lZamUwx9zX7ebU2RodlrhU7IqTuIAV5uJr2\n"
	"fgWmsVwbhb8+hcca/TCa9x9Drk5FLB8FgrFCRPn82FtcmTBBElhrkTXFe/K/UyBZ\n"
	"9sZPc7d2bBwGCPL8/AkeMh4q62xzJuOuiJOKa5xyWfN4De3JqOxU3/Av9ryTPSq1\n"
	"agASh3kFjn8CNHf1zAbDoYY104I1OM69Ubr8agIhWAU6ACYFEfd202/QKOqjhfwP\n"
	"n9asn/+M49mvvfFWab3jPUxDudCO1Cy7iTUzlQ/cigILxBe4gQwG8F28dev7862+\n"
	"BQIDAQAB\n"
	"-----END PUBLIC KEY-----\n"
;

static struct mom_keyset *keys;

static void
check_claims(const struct mom_claims *c)
{
	size_t i;

	if (!mom_token_sub_ok(c->sub) || c->exp + 60 <= FUZZ_NOW ||
	    c->npub > MOM_TOKEN_PATTERNS_MAX || c->nsubs > MOM_TOKEN_PATTERNS_MAX ||
	    strlen(c->jti) >= sizeof(c->jti))
		abort();
	for (i = 0; i < c->npub; i++)
		if (!mom_pattern_ok(c->pub[i]))
			abort();
	for (i = 0; i < c->nsubs; i++)
		if (!mom_pattern_ok(c->subs[i]))
			abort();
}

static void
fuzz_b64(const uint8_t *data, size_t size)
{
	uint8_t *out;
	size_t   n;
	char    *again;

	if (mom_b64url_decode((const char *)data, size, &out, &n) != 0)
		return;
	again = mom_b64url_encode(out, n);
	if (again == NULL || strlen(again) != size || memcmp(again, data, size) != 0)
		abort();
	free(again);
	free(out);
}

static void
fuzz_covers(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char          *a, *b;

	if (nl == NULL)
		return;
	a = strndup((const char *)data, (size_t)(nl - data));
	b = strndup((const char *)nl + 1, size - (size_t)(nl - data) - 1);
	if (a == NULL || b == NULL)
		abort();
	/* A name covered is a name matched, and nothing covers an invalid pattern. */
	if (mom_pattern_covers(a, b) &&
	    (!mom_pattern_ok(b) || (mom_name_ok(b) && !mom_match(a, b))))
		abort();
	if (mom_pattern_ok(a) && mom_pattern_ok(b) && mom_pattern_covers(a, b) &&
	    mom_pattern_covers(b, a) && strcmp(a, b) != 0)
		abort();
	free(a);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mom_verify_opts o = { .leeway = 60, .now = FUZZ_NOW };
	struct mom_claims      c;
	char                   alg[16], err[128];
	const char            *tok = (const char *)data;
	int                    pre, rc;

	if (keys == NULL &&
	    mom_keyset_parse(&keys, keys_pem, strlen(keys_pem), err, sizeof(err)) != 0)
		abort();
	pre = mom_token_preparse(tok, size, alg, sizeof(alg), err, sizeof(err));
	if (pre != 0 && (pre != MOM_EAUTH || err[0] == '\0'))
		abort();
	if (pre == 0 && strcmp(alg, "ES256") != 0 && strcmp(alg, "RS256") != 0)
		abort();
	rc = mom_token_verify(keys, tok, size, &o, &c, err, sizeof(err));
	if (rc == 0) {
		/* Accepted: the structure must have passed too, and the claims hold. */
		if (pre != 0 || size > MOM_TOKEN_MAX)
			abort();
		check_claims(&c);
		mom_claims_free(&c);
	} else if (rc != MOM_EAUTH || err[0] == '\0' || c.pub != NULL || c.subs != NULL) {
		abort();
	}
	fuzz_b64(data, size);
	fuzz_covers(data, size);
	return 0;
}

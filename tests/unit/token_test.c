/*
 * token_test.c: tokens are accepted only when signed by a trusted key with
 * its pinned algorithm and every claim holds; every known JWT attack is
 * refused with MOM_EAUTH and a short reason.
 *
 * Good tokens come from mom_token_sign (the real signer); attack tokens
 * from tests/tools/jws.h, which signs any header and payload with any key.
 * Each attack has a control next to it: the same forger with an honest
 * header or claims makes a token that is accepted, so a refusal is caused
 * by the attack and not by a broken forger.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../tools/jws.h"
#include "mom.h"
#include "names.h"
#include "token.h"

/* A test-only RSA 2048 key (generating one per test is slow under valgrind). */
static const char rsa_priv_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC3yHlXXzDA8ZXA\n"
	"jLmMgeND5MBMUkB8NutJ/IiCVbBPrK9kT2/6VlqZTDH3Nft5tTZGh2WuFTsipO4g\n"
	"BXm4mvZ+BaaxXBuFvz6Fxxr9MJr3H0OuTkUsHwWCsUJE+fzYW1yZMEESWGuRNcV7\n"
	"8r9TIFn2xk9zt3ZsHAYI8vz8CR4yHirrbHMm466Ik4prnHJZ83gN7cmo7FTf8C/2\n"
	"vJM9KrVqABKHeQWOfwI0d/XMBsOhhjXTgjU4zr1RuvxqAiFYBToAJgUR93bTb9Ao\n"
	"6qOF/A+f1qyf/4zj2a+98VZpveM9TEO50I7ULLuJNTOVD9yKAgvEF7iBDAbwXbx1\n"
	"6/vzrb4FAgMBAAECggEAMFr3jkUWA1YtND3yniUYwmbgL9SecfBTRSLEWiKoorYJ\n"
	"aee6y0/IQ7h4FxblhVboInOCjeS5K/rgSp2WMrvXKj5bZyQYe77fePxzvfV5eJcJ\n"
	"zEV8zsiUvxfbm2F5JQYY3ZeEL4sDNnBC90NeEsWa1iLEiepWJsjSz6z7YmcVwlKa\n"
	"DngbWJdy9XrfyYg8XYsrnbIqWFZ33c6Tt/Dp7ybGauAoztIeh7n6JCKjdCsra2RJ\n"
	"Cg/Q4IBW61Ln2jcPEne76W99WAH5NHuB2a+k0qgLSX7MLmgUORjunkSgBS3i7yif\n"
	"Q36ZqOOUEkOJXkbw6jni8jkgjMItEeVWdC0Dr821awKBgQDuCX0ZAJwdoe384EsX\n"
	"S00w2Ty0fzN32AYTTD/B1rZH0m1L48pQRPvKexmQhJ29llhgPHR699Q1Vd5D13f2\n"
	"UTYj4pCh5guuPaLd3VdZIHP0h9Zj3fXC84zDUZTxTGlQ0EkidXEV0+9s9V1gNhj+\n"
	"GuwolGgTLTmUYhONVTaXE7QbrwKBgQDFpuHDYjlZnWfTcuU/U+284tF9wvtg72HN\n"
	"K/8HN3TEvosc0lwizWBNKvAUbfbEIhdQT5Bjv3UYTvlCmHMm+SNzmXJWvs/RTtUs\n"
	"eXjuXFgG/7YlsDJapEdBqsNg7GYU05dNp8jx7FWri+2vSF0mFD6lIpNrT26Bbjz+\n"
	"2QoE7ygqiwKBgQDK/L54JsP6pQ78uQxv9eACiw4wYdSzGz27ESfBleblgnV/5OWu\n"
	"49TQS392dRDLDr2Ye5VdE6AcR3h94+3B2GlR2rA5z6IgWSFdD5agQ4N+gKP7j9k3\n"
	"AVgFa7mWt/GLX8MuJnZkBdJD2U1icV+Iuc6voDbMO6HBfo1r1cHyvXO2swKBgHpg\n"
	"Hg48BagvpjYsQDZaf6rggLat/7h/3n0LDYbpVhnuo/E/aZ5+rG569FSh1RSQywCF\n"
	"kq+/vf9D/l62Ry3NOZ78VefRkphUh/ZWa4KhmDsVHjDti+/FIP1OflPHaljgvSBu\n"
	"jyMCofRp2csaMdo+1J6n7sCVWKU4nPlpZiOx85uLAoGAF7sWytszW/drtn3l7Vt2\n"
	"3IOQhii2yazggTg3TtjJFT0xlFR58zfsOXNhDfOX59uVmvnDqtctKA9XxySaygrH\n"
	"zSe2bK9BD6JWfIML2SvutYoKbYP/WJ/bYmCYu7u32ivGXUOJ5NnSCLKSRydMOoAK\n"
	"JFDMkP6NOI75duU2zHVIpnA=\n"
	"-----END PRIVATE KEY-----\n";

static EVP_PKEY          *ec_key, *ec_other, *rsa_key;
static char              *ec_priv, *ec_pub, *other_pub, *rsa_pub;
static struct mom_keyset *ks_ec, *ks_rsa, *ks_both;
static int64_t            NOW;

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char H_ES[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
static const char H_RS[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";

static char *
pem_of(EVP_PKEY *k, int priv)
{
	BIO  *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long  n;

	cr_assert_not_null(b);
	if (priv)
		cr_assert_eq(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	else
		cr_assert_eq(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)n);
	BIO_free(b);
	return out;
}

static struct mom_keyset *
keyset(const char *pem)
{
	struct mom_keyset *ks;
	char               err[256];

	cr_assert_eq(mom_keyset_parse(&ks, pem, strlen(pem), err, sizeof(err)), 0, "%s", err);
	return ks;
}

static void
keys_init(void)
{
	BIO  *b;
	char *both;

	NOW = (int64_t)time(NULL);
	cr_assert_not_null(ec_key = EVP_EC_gen("P-256"));
	cr_assert_not_null(ec_other = EVP_EC_gen("P-256"));
	b = BIO_new_mem_buf(rsa_priv_pem, -1);
	cr_assert_not_null(rsa_key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL));
	BIO_free(b);
	ec_priv = pem_of(ec_key, 1);
	ec_pub = pem_of(ec_key, 0);
	other_pub = pem_of(ec_other, 0);
	rsa_pub = pem_of(rsa_key, 0);
	ks_ec = keyset(ec_pub);
	ks_rsa = keyset(rsa_pub);
	cr_assert_geq(asprintf(&both, "%s%s", rsa_pub, ec_pub), 0);
	ks_both = keyset(both);
	free(both);
}

static void
keys_fini(void)
{
	mom_keyset_free(ks_ec);
	mom_keyset_free(ks_rsa);
	mom_keyset_free(ks_both);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(ec_other);
	EVP_PKEY_free(rsa_key);
	free(ec_priv);
	free(ec_pub);
	free(other_pub);
	free(rsa_pub);
}

TestSuite(token, .init = keys_init, .fini = keys_fini);
TestSuite(attack, .init = keys_init, .fini = keys_fini);
TestSuite(keyset, .init = keys_init, .fini = keys_fini);
TestSuite(sign, .init = keys_init, .fini = keys_fini);

/* Honest claims, valid for five minutes around NOW. */
static json_t *
claims(void)
{
	json_t *c = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:[s], s:[s], s:b}",
	    "iss", "mom-auth", "aud", "mom", "sub", "alice", "jti", "j-1",
	    "iat", (json_int_t)NOW, "nbf", (json_int_t)NOW, "exp", (json_int_t)(NOW + 300),
	    "mom.pub", "orders.>", "mom.sub", "orders.*", "mom.admin", 0);

	cr_assert_not_null(c);
	return c;
}

/* claims() with one member set (v consumed) or, with v NULL, removed. */
static json_t *
claims_with(const char *k, json_t *v)
{
	json_t *c = claims();

	if (v == NULL)
		json_object_del(c, k);
	else
		json_object_set_new(c, k, v);
	return c;
}

/* A token of header text and claims (consumed), signed by key. */
static char *
forge(const char *header, json_t *c, EVP_PKEY *key)
{
	char *payload = json_dumps(c, JSON_COMPACT);
	char *tok;

	json_decref(c);
	cr_assert_not_null(payload);
	tok = jws_forge(header, payload, key, NULL, 0);
	free(payload);
	cr_assert_not_null(tok);
	return tok;
}

static char *
es(json_t *c)
{
	return forge(H_ES, c, ec_key);
}

static int
verify(const struct mom_keyset *ks, const char *tok, size_t len, struct mom_claims *out,
    char *err, size_t errlen)
{
	struct mom_verify_opts o = { .leeway = 60, .now = NOW };

	return mom_token_verify(ks, tok, len, &o, out, err, errlen);
}

/* Accepted by ks; tok freed. */
static void
accepted_by(const struct mom_keyset *ks, char *tok)
{
	struct mom_claims c;
	char              err[128] = "";

	cr_assert_eq(verify(ks, tok, strlen(tok), &c, err, sizeof(err)), 0,
	    "refused (%s): %s", err, tok);
	cr_assert_str_eq(c.sub, "alice");
	mom_claims_free(&c);
	free(tok);
}

/*
 * Refused by ks with MOM_EAUTH and, when why is not NULL, that reason; the
 * claims are left empty and the reason is short and does not echo the
 * token.  tok freed.
 */
static void
refused_by(const struct mom_keyset *ks, char *tok, size_t len, const char *why)
{
	struct mom_claims c;
	char              err[128] = "";

	cr_assert_eq(verify(ks, tok, len, &c, err, sizeof(err)), MOM_EAUTH,
	    "not refused: %.*s", (int)(len > 300 ? 300 : len), tok);
	cr_assert(err[0] != '\0' && strlen(err) < 48 && strchr(err, '.') == NULL,
	    "reason '%s'", err);
	if (why != NULL)
		cr_assert_str_eq(err, why, "reason '%s', expected '%s'", err, why);
	cr_assert(c.pub == NULL && c.subs == NULL && c.npub == 0 && c.nsubs == 0 &&
	    c.sub[0] == '\0' && !c.admin);
	mom_claims_free(&c);
	free(tok);
}

#define accepted(tok)        accepted_by(ks_ec, (tok))
#define refused(tok, why)    do { char *t_ = (tok); refused_by(ks_ec, t_, strlen(t_), (why)); } while (0)

/* tok with segment i (0 header, 1 payload, 2 signature) replaced; tok freed. */
static char *
with_segment(char *tok, int i, const char *seg)
{
	char  *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
	char  *out;
	int    rc = -1;

	*d1 = *d2 = '\0';
	if (i == 0)
		rc = asprintf(&out, "%s.%s.%s", seg, d1 + 1, d2 + 1);
	else if (i == 1)
		rc = asprintf(&out, "%s.%s.%s", tok, seg, d2 + 1);
	else
		rc = asprintf(&out, "%s.%s.%s", tok, d1 + 1, seg);
	cr_assert_geq(rc, 0);
	free(tok);
	return out;
}

/* A segment: the base64url of text. */
static char *
seg(const char *text)
{
	char *s = mom_b64url_encode((const uint8_t *)text, strlen(text));

	cr_assert_not_null(s);
	return s;
}

static char *
with_text_segment(char *tok, int i, const char *text)
{
	char *s = seg(text), *out;

	out = with_segment(tok, i, s);
	free(s);
	return out;
}

/* Segment i of tok, malloc'd. */
static char *
segment_of(const char *tok, int i)
{
	const char *p = tok, *e;

	while (i-- > 0)
		p = strchr(p, '.') + 1;
	e = strchr(p, '.');
	return e == NULL ? strdup(p) : strndup(p, (size_t)(e - p));
}

/* Positive controls. */

Test(token, es256_token_from_the_signer_is_accepted_with_its_claims)
{
	struct mom_claims c = { .exp = NOW + 600 }, got;
	char             *pub[] = { "orders.>", "audit" }, *subs[] = { "orders.*" };
	char             *tok, err[128], alg[16];
	struct mom_verify_opts o = { .now = NOW };

	snprintf(c.sub, sizeof(c.sub), "alice");
	c.pub = pub;
	c.npub = 2;
	c.subs = subs;
	c.nsubs = 1;
	cr_assert_eq(mom_token_sign(ec_priv, strlen(ec_priv), &c, &o, &tok, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(mom_token_preparse(tok, strlen(tok), alg, sizeof(alg), err, sizeof(err)), 0);
	cr_assert_str_eq(alg, "ES256");
	cr_assert_eq(verify(ks_ec, tok, strlen(tok), &got, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(got.sub, "alice");
	cr_assert_eq(strlen(got.jti), 32); /* random, 16 bytes in hex */
	cr_assert_eq(got.iat, NOW);
	cr_assert_eq(got.nbf, NOW);
	cr_assert_eq(got.exp, NOW + 600);
	cr_assert_eq(got.npub, 2);
	cr_assert_str_eq(got.pub[0], "orders.>");
	cr_assert_str_eq(got.pub[1], "audit");
	cr_assert_eq(got.nsubs, 1);
	cr_assert_str_eq(got.subs[0], "orders.*");
	cr_assert_not(got.admin);
	mom_claims_free(&got);
	/* Both key kinds in one file: the ES256 key is found among them. */
	cr_assert_eq(verify(ks_both, tok, strlen(tok), &got, err, sizeof(err)), 0, "%s", err);
	mom_claims_free(&got);
	free(tok);
}

Test(token, rs256_token_is_accepted_with_an_rsa_keyset)
{
	struct mom_claims c = { .exp = NOW + 60, .admin = true }, got;
	char             *tok, err[128], alg[16];
	struct mom_verify_opts o = { .now = NOW };

	snprintf(c.sub, sizeof(c.sub), "ops@example.org");
	snprintf(c.jti, sizeof(c.jti), "cron-1");
	cr_assert_eq(mom_token_sign(rsa_priv_pem, strlen(rsa_priv_pem), &c, &o, &tok, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(mom_token_preparse(tok, strlen(tok), alg, sizeof(alg), err, sizeof(err)), 0);
	cr_assert_str_eq(alg, "RS256");
	cr_assert_eq(verify(ks_rsa, tok, strlen(tok), &got, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(got.sub, "ops@example.org");
	cr_assert_str_eq(got.jti, "cron-1");
	cr_assert(got.admin);
	cr_assert_eq(got.npub, 0);
	mom_claims_free(&got);
	cr_assert_eq(verify(ks_both, tok, strlen(tok), &got, err, sizeof(err)), 0, "%s", err);
	mom_claims_free(&got);
	/* An EC-only verifier does not take RS256 at all. */
	refused_by(ks_ec, tok, strlen(tok), "algorithm not allowed");
}

Test(token, the_forger_makes_tokens_that_are_accepted)
{
	/* The control for every attack below. */
	accepted(es(claims()));
	accepted_by(ks_rsa, forge(H_RS, claims(), rsa_key));
}

Test(token, times_30_s_inside_the_leeway_are_accepted)
{
	accepted(es(claims_with("exp", json_integer(NOW - 30))));
	accepted(es(claims_with("nbf", json_integer(NOW + 30))));
	accepted(es(claims_with("iat", json_integer(NOW + 30))));
	accepted(es(claims_with("exp", json_integer(NOW - 59))));
}

Test(token, nbf_iat_jti_admin_and_lists_are_optional)
{
	json_t *c = claims();

	json_object_del(c, "nbf");
	json_object_del(c, "iat");
	json_object_del(c, "jti");
	json_object_del(c, "mom.pub");
	json_object_del(c, "mom.sub");
	json_object_del(c, "mom.admin");
	accepted(es(c));
}

Test(token, typ_jwt_in_any_case_or_absent_is_accepted)
{
	accepted(forge("{\"alg\":\"ES256\",\"typ\":\"jwt\"}", claims(), ec_key));
	accepted(forge("{\"alg\":\"ES256\",\"typ\":\"Jwt\"}", claims(), ec_key));
	accepted(forge("{\"alg\":\"ES256\"}", claims(), ec_key));
	accepted(forge("{\"alg\":\"ES256\",\"kid\":\"k1\"}", claims(), ec_key));
}

Test(token, audience_array_containing_mom_is_accepted)
{
	accepted(es(claims_with("aud", json_pack("[s,s]", "other", "mom"))));
	accepted(es(claims_with("aud", json_pack("[s]", "mom"))));
}

Test(token, issuer_and_audience_can_be_configured)
{
	struct mom_verify_opts o = { .issuer = "corp-idp", .audience = "mom-prod", .now = NOW };
	struct mom_claims      c;
	char                  *tok, err[128];
	json_t                *cl = claims();

	json_object_set_new(cl, "iss", json_string("corp-idp"));
	json_object_set_new(cl, "aud", json_string("mom-prod"));
	tok = es(cl);
	cr_assert_eq(mom_token_verify(ks_ec, tok, strlen(tok), &o, &c, err, sizeof(err)), 0,
	    "%s", err);
	mom_claims_free(&c);
	/* The defaults no longer do. */
	cr_assert_eq(verify(ks_ec, tok, strlen(tok), &c, err, sizeof(err)), MOM_EAUTH);
	cr_assert_str_eq(err, "wrong issuer");
	free(tok);
}

Test(token, leeway_is_clamped_to_60_s)
{
	struct mom_verify_opts o = { .leeway = 3600, .now = NOW };
	struct mom_claims      c;
	char                  *tok, err[128];

	tok = es(claims_with("exp", json_integer(NOW - 61)));
	cr_assert_eq(mom_token_verify(ks_ec, tok, strlen(tok), &o, &c, err, sizeof(err)),
	    MOM_EAUTH);
	cr_assert_str_eq(err, "token expired");
	/* Without leeway, a token is expired at its exp second. */
	o.leeway = 0;
	free(tok);
	tok = es(claims_with("exp", json_integer(NOW)));
	cr_assert_eq(mom_token_verify(ks_ec, tok, strlen(tok), &o, &c, err, sizeof(err)),
	    MOM_EAUTH);
	free(tok);
	tok = es(claims_with("exp", json_integer(NOW + 1)));
	cr_assert_eq(mom_token_verify(ks_ec, tok, strlen(tok), &o, &c, err, sizeof(err)), 0);
	mom_claims_free(&c);
	free(tok);
}

Test(token, verify_uses_the_clock_when_now_is_zero)
{
	struct mom_verify_opts o = { 0 };
	struct mom_claims      c;
	char                  *tok, err[128];

	tok = es(claims_with("exp", json_integer((json_int_t)time(NULL) + 100)));
	cr_assert_eq(mom_token_verify(ks_ec, tok, strlen(tok), &o, &c, err, sizeof(err)), 0,
	    "%s", err);
	mom_claims_free(&c);
	free(tok);
	tok = es(claims_with("exp", json_integer((json_int_t)time(NULL) - 100)));
	cr_assert_eq(mom_token_verify(ks_ec, tok, strlen(tok), NULL, &c, err, sizeof(err)),
	    MOM_EAUTH);
	free(tok);
}

/* Algorithm attacks. */

Test(attack, alg_none_in_every_letter_case_is_refused)
{
	const char *names[] = { "none", "None", "NONE", "nOnE" };
	const char *sigs[] = { "", "c2ln", NULL };
	size_t      i, j;

	for (i = 0; i < 4; i++)
		for (j = 0; j < 3; j++) {
			char hdr[64], *tok;

			snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", names[i]);
			if (sigs[j] != NULL) {
				tok = forge(hdr, claims(), NULL);
				tok = with_segment(tok, 2, sigs[j]);
			} else {
				/* A real ES256 signature under an alg none header. */
				tok = forge(hdr, claims(), ec_key);
			}
			refused(tok, "algorithm not allowed");
		}
}

Test(attack, hs256_signed_with_the_public_key_pem_is_refused)
{
	const char *pems[] = { ec_pub, rsa_pub };
	const struct mom_keyset *sets[] = { ks_ec, ks_rsa };
	const char *hs[] = { "HS256", "HS384", "HS512", "hs256" };
	size_t      i, j;

	for (i = 0; i < 2; i++) {
		const char *pem = mom_keyset_pem(sets[i], 0);
		char       *payload, *tok;
		jwt_t      *jwt = NULL;
		json_t     *c = claims();

		payload = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		tok = jws_forge("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload,
		    NULL, (const uint8_t *)pem, strlen(pem));
		/* The attack is real: libjwt alone takes the public key as HMAC secret. */
		cr_assert_eq(jwt_decode(&jwt, tok, (const unsigned char *)pem, (int)strlen(pem)), 0);
		cr_assert_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
		jwt_free(jwt);
		refused_by(sets[i], tok, strlen(tok), "algorithm not allowed");
		/* The PEM as the test made it (not the keyset's copy), into both keys. */
		tok = jws_forge("{\"alg\":\"HS256\"}", payload, NULL, (const uint8_t *)pems[i],
		    strlen(pems[i]));
		refused_by(ks_both, tok, strlen(tok), "algorithm not allowed");
		for (j = 0; j < 4; j++) {
			char hdr[64];

			snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", hs[j]);
			tok = jws_forge(hdr, payload, NULL, (const uint8_t *)pem, strlen(pem));
			refused_by(sets[i], tok, strlen(tok), "algorithm not allowed");
		}
		free(payload);
	}
}

Test(attack, rs256_token_relabelled_hs256_is_refused)
{
	char *tok = forge(H_RS, claims(), rsa_key);

	tok = with_text_segment(tok, 0, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	refused_by(ks_rsa, tok, strlen(tok), "algorithm not allowed");
}

Test(attack, es256_token_relabelled_rs256_is_refused)
{
	char *tok = es(claims());

	tok = with_text_segment(tok, 0, H_RS);
	refused_by(ks_both, tok, strlen(tok), "bad signature");
	/* And an RS256 signature presented as ES256. */
	tok = forge(H_RS, claims(), rsa_key);
	tok = with_text_segment(tok, 0, H_ES);
	refused_by(ks_both, tok, strlen(tok), "bad signature");
}

Test(attack, other_algorithm_names_are_refused)
{
	const char *names[] = { "es256", "Es256", "ES384", "ES512", "RS384", "RS512", "PS256",
	    "EdDSA", "ES256 ", " ES256", "", "ES2560" };
	size_t      i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char hdr[64];

		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", names[i]);
		refused(forge(hdr, claims(), ec_key), "algorithm not allowed");
	}
	refused(forge("{\"alg\":256}", claims(), ec_key), "malformed token");
	refused(forge("{\"alg\":null}", claims(), ec_key), "malformed token");
	refused(forge("{\"alg\":[\"ES256\"]}", claims(), ec_key), "malformed token");
	refused(forge("{\"typ\":\"JWT\"}", claims(), ec_key), "malformed token");
}

Test(attack, duplicate_header_members_are_refused)
{
	refused(forge("{\"alg\":\"none\",\"alg\":\"ES256\"}", claims(), ec_key), "malformed token");
	refused(forge("{\"alg\":\"ES256\",\"alg\":\"ES256\"}", claims(), ec_key), "malformed token");
}

/* Signature attacks. */

Test(attack, token_signed_by_another_key_is_refused)
{
	refused(forge(H_ES, claims(), ec_other), "bad signature");
	/* ... unless that key is trusted too. */
	{
		char              *pems, *tok;
		struct mom_keyset *two;

		cr_assert_geq(asprintf(&pems, "%s%s", other_pub, ec_pub), 0);
		two = keyset(pems);
		free(pems);
		cr_assert_eq(mom_keyset_count(two), 2);
		tok = forge(H_ES, claims(), ec_other);
		accepted_by(two, tok);
		accepted_by(two, es(claims()));
		mom_keyset_free(two);
	}
}

Test(attack, empty_signature_is_refused)
{
	char *tok = es(claims());

	tok = with_segment(tok, 2, "");
	refused(tok, "bad signature");
	tok = forge(H_RS, claims(), rsa_key);
	tok = with_segment(tok, 2, "");
	refused_by(ks_rsa, tok, strlen(tok), "bad signature");
}

Test(attack, signature_of_another_token_is_refused)
{
	char *a = es(claims()), *b = es(claims_with("mom.admin", json_true()));
	char *sig = segment_of(a, 2);

	b = with_segment(b, 2, sig);
	refused(b, "bad signature");
	free(sig);
	free(a);
}

Test(attack, tampered_header_is_refused)
{
	char *tok = es(claims());

	tok = with_text_segment(tok, 0, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"x\"}");
	refused(tok, "bad signature");
	tok = es(claims());
	tok = with_text_segment(tok, 0, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}");
	refused(tok, "bad signature");
}

Test(attack, tampered_payload_is_refused)
{
	char *tok = es(claims()), *payload;
	json_t *c = claims();

	json_object_set_new(c, "mom.admin", json_true());
	payload = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	tok = with_text_segment(tok, 1, payload);
	free(payload);
	refused(tok, "bad signature");

	tok = es(claims());
	c = claims_with("exp", json_integer(NOW + 86400 * 365));
	payload = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	tok = with_text_segment(tok, 1, payload);
	free(payload);
	refused(tok, "bad signature");
}

Test(attack, flipped_signature_bits_are_refused)
{
	int bit;

	for (bit = 0; bit < 6; bit++) {
		char *tok = es(claims()), *sig = strrchr(tok, '.') + 1;
		char *p = strchr(b64url, sig[3]);

		sig[3] = b64url[(p - b64url) ^ (1 << bit)];
		refused(tok, "bad signature");
	}
}

Test(attack, truncated_or_extended_signature_is_refused)
{
	char *tok = es(claims()), *sig = segment_of(tok, 2), *s2;

	s2 = strndup(sig, 84); /* 63 bytes */
	refused(with_segment(strdup(tok), 2, s2), "bad signature");
	free(s2);
	cr_assert_geq(asprintf(&s2, "%sAAAA", sig), 0); /* 67 bytes */
	refused(with_segment(strdup(tok), 2, s2), "bad signature");
	free(s2);
	free(sig);
	free(tok);
}

Test(attack, non_canonical_signature_spelling_is_refused)
{
	/* 64 bytes are 86 characters whose last one carries 4 unused bits. */
	char *tok = es(claims());
	char *last = tok + strlen(tok) - 1;

	cr_assert_eq(strlen(strrchr(tok, '.') + 1), 86);
	*last = b64url[(strchr(b64url, *last) - b64url) | 1];
	refused(tok, "malformed token");
}

/* Claims. */

Test(attack, expired_61_s_ago_is_refused)
{
	refused(es(claims_with("exp", json_integer(NOW - 61))), "token expired");
	refused(es(claims_with("exp", json_integer(NOW - 60))), "token expired");
	refused(es(claims_with("exp", json_integer(0))), "token expired");
}

Test(attack, not_before_61_s_ahead_is_refused)
{
	refused(es(claims_with("nbf", json_integer(NOW + 61))), "token not yet valid");
}

Test(attack, issued_61_s_in_the_future_is_refused)
{
	refused(es(claims_with("iat", json_integer(NOW + 61))), "token issued in the future");
}

Test(attack, missing_or_malformed_expiry_is_refused)
{
	refused(es(claims_with("exp", NULL)), "token without expiry");
	refused(es(claims_with("exp", json_string("9999999999"))), "malformed token");
	refused(es(claims_with("exp", json_real((double)NOW + 300.5))), "malformed token");
	refused(es(claims_with("exp", json_null())), "malformed token");
	refused(es(claims_with("exp", json_integer(-1))), "malformed token");
	refused(es(claims_with("exp", json_integer(INT64_MAX))), "malformed token");
	refused(es(claims_with("nbf", json_string("0"))), "malformed token");
	refused(es(claims_with("iat", json_true())), "malformed token");
}

Test(attack, wrong_or_missing_issuer_is_refused)
{
	refused(es(claims_with("iss", json_string("evil"))), "wrong issuer");
	refused(es(claims_with("iss", json_string("MOM-AUTH"))), "wrong issuer");
	refused(es(claims_with("iss", json_string(""))), "wrong issuer");
	refused(es(claims_with("iss", json_pack("[s]", "mom-auth"))), "wrong issuer");
	refused(es(claims_with("iss", NULL)), "token without issuer");
}

Test(attack, wrong_or_missing_audience_is_refused)
{
	refused(es(claims_with("aud", json_string("other"))), "wrong audience");
	refused(es(claims_with("aud", json_string("mom "))), "wrong audience");
	refused(es(claims_with("aud", json_pack("[s]", "other"))), "wrong audience");
	refused(es(claims_with("aud", json_array())), "wrong audience");
	refused(es(claims_with("aud", json_pack("[s,i]", "mom", 1))), "wrong audience");
	refused(es(claims_with("aud", json_integer(1))), "wrong audience");
	refused(es(claims_with("aud", NULL)), "token without audience");
}

Test(attack, missing_or_bad_subject_is_refused)
{
	char long_sub[200];

	refused(es(claims_with("sub", NULL)), "token without subject");
	refused(es(claims_with("sub", json_string(""))), "token without subject");
	refused(es(claims_with("sub", json_integer(7))), "token without subject");
	refused(es(claims_with("sub", json_string("al ice"))), "bad subject");
	refused(es(claims_with("sub", json_string("alice\n"))), "bad subject");
	memset(long_sub, 'a', 129);
	long_sub[129] = '\0';
	refused(es(claims_with("sub", json_string(long_sub))), "bad subject");
	long_sub[128] = '\0';
	accepted(es(claims_with("sub", json_string("alice"))));
}

Test(attack, bad_jti_is_refused)
{
	char long_jti[80];

	memset(long_jti, 'j', 65);
	long_jti[65] = '\0';
	refused(es(claims_with("jti", json_string(long_jti))), "malformed token");
	refused(es(claims_with("jti", json_integer(1))), "malformed token");
	refused(es(claims_with("jti", json_string("a b"))), "malformed token");
}

Test(attack, bad_permission_lists_are_refused)
{
	json_t *many = json_array();
	int     i;

	refused(es(claims_with("mom.pub", json_string("orders.>"))), "bad permission list");
	refused(es(claims_with("mom.pub", json_pack("[s]", "a*"))), "bad permission list");
	refused(es(claims_with("mom.pub", json_pack("[s]", ""))), "bad permission list");
	refused(es(claims_with("mom.pub", json_pack("[s]", ">.a"))), "bad permission list");
	refused(es(claims_with("mom.pub", json_pack("[s,i]", "a", 1))), "bad permission list");
	refused(es(claims_with("mom.pub", json_pack("[[s]]", "a"))), "bad permission list");
	refused(es(claims_with("mom.sub", json_pack("{s:s}", "a", "b"))), "bad permission list");
	refused(es(claims_with("mom.sub", json_pack("[s]", "a b"))), "bad permission list");
	refused(es(claims_with("mom.admin", json_string("true"))), "malformed token");
	refused(es(claims_with("mom.admin", json_integer(1))), "malformed token");
	for (i = 0; i < MOM_TOKEN_PATTERNS_MAX; i++)
		json_array_append_new(many, json_sprintf("q%d", i));
	accepted(es(claims_with("mom.pub", json_copy(many))));
	json_array_append_new(many, json_string("one.more"));
	refused(es(claims_with("mom.sub", many)), "bad permission list");
}

/* Structure. */

Test(attack, typ_other_than_jwt_is_refused)
{
	const char *typs[] = { "\"JWS\"", "\"garbage\"", "\"\"", "\"JWT \"", "\"at+jwt\"",
	    "1", "null", "[\"JWT\"]" };
	size_t      i;

	for (i = 0; i < sizeof(typs) / sizeof(typs[0]); i++) {
		char hdr[64];

		snprintf(hdr, sizeof(hdr), "{\"alg\":\"ES256\",\"typ\":%s}", typs[i]);
		refused(forge(hdr, claims(), ec_key), "token type not allowed");
	}
}

Test(attack, critical_header_is_refused)
{
	refused(forge("{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}", claims(), ec_key),
	    "critical header not supported");
	refused(forge("{\"alg\":\"ES256\",\"crit\":[]}", claims(), ec_key),
	    "critical header not supported");
}

Test(attack, token_over_8_kib_is_refused_before_parsing)
{
	json_t *c;
	char   *pad, *tok;
	size_t  n, base, start;
	bool    seen_max = false;

	/* Validly signed tokens around the limit: up to 8192 bytes they pass. */
	tok = es(claims_with("pad", json_string("")));
	base = strlen(tok);
	free(tok);
	start = (MOM_TOKEN_MAX - base) * 3 / 4 - 12;
	for (n = start; n < start + 24; n++) {
		size_t len;

		pad = malloc(n + 1);
		memset(pad, 'x', n);
		pad[n] = '\0';
		c = claims_with("pad", json_string(pad));
		free(pad);
		tok = es(c);
		len = strlen(tok);
		if (len <= MOM_TOKEN_MAX) {
			seen_max |= len == MOM_TOKEN_MAX;
			accepted(tok);
		} else {
			refused(tok, "token too large");
		}
	}
	cr_assert(seen_max, "no token of exactly 8192 bytes was tried");
	/* Garbage over the limit is refused as too large, not as malformed. */
	pad = malloc(MOM_TOKEN_MAX + 2);
	memset(pad, '.', MOM_TOKEN_MAX + 1);
	pad[MOM_TOKEN_MAX + 1] = '\0';
	refused(pad, "token too large");
}

Test(attack, bad_base64_is_refused)
{
	char *tok = es(claims()), *t;

	/* Padding, standard alphabet, other bytes, whitespace. */
	cr_assert_geq(asprintf(&t, "%s=", tok), 0);
	refused(t, "malformed token");
	t = strdup(tok);
	*strchr(t, '.') = '\0';
	{
		char *u;

		cr_assert_geq(asprintf(&u, "%s==.%s", t, strchr(tok, '.') + 1), 0);
		refused(u, "malformed token");
	}
	free(t);
	{
		const char bad[] = { '+', '/', '!', ' ', '\n', '%', '~', '\x80', '\0' };
		size_t     i;

		for (i = 0; i < sizeof(bad); i++) {
			t = strdup(tok);
			t[5] = bad[i];
			refused_by(ks_ec, t, strlen(tok), "malformed token");
			t = strdup(tok);
			t[strlen(t) - 5] = bad[i];
			refused_by(ks_ec, t, strlen(tok), "malformed token");
		}
	}
	/* A segment of 4k+1 characters cannot be base64. */
	t = strdup(tok);
	t[strlen(t) - 1] = '\0';
	refused(with_segment(t, 2, "AAAAA"), "malformed token");
	free(tok);
}

Test(attack, wrong_number_of_segments_is_refused)
{
	char *tok = es(claims()), *t;

	t = strndup(tok, (size_t)(strrchr(tok, '.') - tok));
	refused(t, "malformed token");                       /* 2 */
	cr_assert_geq(asprintf(&t, "%s.c2ln", tok), 0);
	refused(t, "malformed token");                       /* 4 */
	cr_assert_geq(asprintf(&t, "%s.", tok), 0);
	refused(t, "malformed token");                       /* 4, last empty */
	cr_assert_geq(asprintf(&t, "%s.e30.c2ln", tok), 0);
	refused(t, "malformed token");                       /* 5 */
	cr_assert_geq(asprintf(&t, ".%s", tok), 0);
	refused(t, "malformed token");
	refused(strdup("abc"), "malformed token");
	refused(strdup(".."), "malformed token");
	refused(strdup("..."), "malformed token");
	refused(with_segment(strdup(tok), 0, ""), "malformed token");
	refused(with_segment(strdup(tok), 1, ""), "malformed token");
	refused_by(ks_ec, strdup(""), 0, "malformed token");
	free(tok);
}

Test(attack, non_json_or_non_object_segments_are_refused)
{
	const char *bad[] = { "not json", "[1]", "\"str\"", "123", "null", "{", "{}x",
	    "{\"alg\":\"ES256\"}{}", "" };
	size_t      i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *payload;
		json_t *c = claims();

		refused(with_text_segment(es(claims()), 0, bad[i]), "malformed token");
		payload = json_dumps(c, JSON_COMPACT);
		json_decref(c);
		refused(jws_forge(H_ES, bad[i], ec_key, NULL, 0), "malformed token");
		free(payload);
	}
	/* A NUL inside the JSON text, where a C-string parser would stop. */
	{
		uint8_t raw[] = "{\"alg\":\"ES256\"}\0{\"alg\":\"none\"}";
		char   *s = mom_b64url_encode(raw, sizeof(raw) - 1);

		refused(with_segment(es(claims()), 0, s), "malformed token");
		free(s);
	}
	/* Duplicate claims: which exp would count? */
	{
		char buf[256];

		snprintf(buf, sizeof(buf), "{\"iss\":\"mom-auth\",\"aud\":\"mom\",\"sub\":\"a\","
		    "\"exp\":%lld,\"exp\":%lld}", (long long)NOW - 1000, (long long)NOW + 100);
		refused(jws_forge(H_ES, buf, ec_key, NULL, 0), "malformed token");
	}
}

Test(attack, random_bytes_are_refused_and_do_not_crash)
{
	unsigned seed = 7;
	int      i;

	for (i = 0; i < 2000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 200), k;
		char  *t = malloc(n + 1);

		for (k = 0; k < n; k++)
			t[k] = (char)(rand_r(&seed) % 3 == 0 ? '.' : b64url[rand_r(&seed) % 64]);
		t[n] = '\0';
		refused_by(ks_ec, t, n, NULL);
	}
}

/* Preparse. */

Test(token, preparse_copies_the_algorithm_and_refuses_others)
{
	char  alg[16], err[64];
	char *tok = forge(H_RS, claims(), rsa_key);

	cr_assert_eq(mom_token_preparse(tok, strlen(tok), alg, sizeof(alg), err, sizeof(err)), 0);
	cr_assert_str_eq(alg, "RS256");
	free(tok);
	tok = forge("{\"alg\":\"none\"}", claims(), NULL);
	tok = with_segment(tok, 2, "c2ln");
	cr_assert_eq(mom_token_preparse(tok, strlen(tok), alg, sizeof(alg), err, sizeof(err)),
	    MOM_EAUTH);
	cr_assert_str_eq(alg, "");
	cr_assert_str_eq(err, "algorithm not allowed");
	free(tok);
	cr_assert_eq(mom_token_preparse(NULL, 0, NULL, 0, NULL, 0), MOM_EAUTH);
}

Test(token, length_bounds_the_token_not_a_nul)
{
	char *tok = es(claims()), *longer;
	struct mom_claims c;
	char err[64];

	/* Bytes after len are not read: the same token followed by junk. */
	cr_assert_geq(asprintf(&longer, "%s.junk", tok), 0);
	cr_assert_eq(verify(ks_ec, longer, strlen(tok), &c, err, sizeof(err)), 0, "%s", err);
	mom_claims_free(&c);
	free(longer);
	free(tok);
}

/* Keysets. */

Test(keyset, keys_are_classified_and_written_back_as_pem)
{
	cr_assert_eq(mom_keyset_count(ks_both), 2);
	cr_assert_str_eq(mom_keyset_pem(ks_both, 0), rsa_pub);
	cr_assert_str_eq(mom_keyset_pem(ks_both, 1), ec_pub);
	cr_assert_null(mom_keyset_pem(ks_both, 2));
	cr_assert_eq(mom_keyset_count(NULL), 0);
	mom_keyset_free(NULL);
}

Test(keyset, text_around_the_blocks_is_ignored)
{
	struct mom_keyset *ks;
	char              *pem, err[256];

	cr_assert_geq(asprintf(&pem, "# mom keys\n%s\nrotated 2024:\n%s", ec_pub, other_pub), 0);
	cr_assert_eq(mom_keyset_parse(&ks, pem, strlen(pem), err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mom_keyset_count(ks), 2);
	mom_keyset_free(ks);
	free(pem);
}

static void
keyset_refused(const char *pem, const char *why_part)
{
	struct mom_keyset *ks = (struct mom_keyset *)1;
	char               err[256] = "";

	cr_assert_eq(mom_keyset_parse(&ks, pem, strlen(pem), err, sizeof(err)), MOM_EINVAL,
	    "accepted: %s", pem);
	cr_assert_null(ks);
	cr_assert(strstr(err, why_part) != NULL, "reason '%s', expected '%s'", err, why_part);
}

Test(keyset, private_keys_and_other_blocks_are_refused)
{
	char *both;

	keyset_refused(ec_priv, "PUBLIC KEY block was expected (openssl pkey -pubout");
	keyset_refused(rsa_priv_pem, "PRIVATE KEY");
	/* A private key next to a public one is not skipped silently. */
	cr_assert_geq(asprintf(&both, "%s%s", ec_pub, ec_priv), 0);
	keyset_refused(both, "PRIVATE KEY");
	free(both);
	keyset_refused("", "no PUBLIC KEY block");
	keyset_refused("hello\n", "no PUBLIC KEY block");
	keyset_refused("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	    "unreadable PUBLIC KEY");
	keyset_refused("-----BEGIN PUBLIC KEY-----\nAAA\n", "unreadable PEM");
}

Test(keyset, weak_or_unknown_key_types_are_refused)
{
	EVP_PKEY *k;
	char     *pem;

	cr_assert_not_null(k = EVP_EC_gen("P-384"));
	pem = pem_of(k, 0);
	keyset_refused(pem, "P-256");
	free(pem);
	EVP_PKEY_free(k);
	cr_assert_not_null(k = EVP_RSA_gen(1024));
	pem = pem_of(k, 0);
	keyset_refused(pem, "2048");
	free(pem);
	EVP_PKEY_free(k);
	cr_assert_not_null(k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
	pem = pem_of(k, 0);
	keyset_refused(pem, "neither");
	free(pem);
	EVP_PKEY_free(k);
}

Test(keyset, load_reads_a_file_and_reports_a_missing_one)
{
	struct mom_keyset *ks;
	char               path[] = "/tmp/mom-token-test-XXXXXX", err[256];
	int                fd;

	cr_assert_eq(mom_keyset_load(&ks, "/nonexistent/k.pem", err, sizeof(err)), MOM_ENOENT);
	cr_assert(strstr(err, "/nonexistent/k.pem") != NULL, "%s", err);
	cr_assert_eq(mom_keyset_load(&ks, "/tmp", err, sizeof(err)), MOM_EINVAL);
	cr_assert_geq(fd = mkstemp(path), 0);
	cr_assert_eq(write(fd, ec_priv, strlen(ec_priv)), (ssize_t)strlen(ec_priv));
	cr_assert_eq(mom_keyset_load(&ks, path, err, sizeof(err)), MOM_EINVAL);
	cr_assert(strncmp(err, path, strlen(path)) == 0, "%s", err);
	cr_assert_eq(ftruncate(fd, 0), 0);
	cr_assert_eq(pwrite(fd, ec_pub, strlen(ec_pub), 0), (ssize_t)strlen(ec_pub));
	close(fd);
	cr_assert_eq(mom_keyset_load(&ks, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(mom_keyset_count(ks), 1);
	mom_keyset_free(ks);
	unlink(path);
}

/* Signing. */

Test(sign, es256_signatures_are_always_64_bytes_and_verify)
{
	/* r or s with leading zero bytes must still be padded to 32 bytes. */
	struct mom_claims      c = { .exp = NOW + 60 };
	struct mom_verify_opts o = { .now = NOW };
	int                    i;

	snprintf(c.sub, sizeof(c.sub), "alice");
	for (i = 0; i < 300; i++) {
		char *tok, err[128], *sig;
		struct mom_claims got;

		cr_assert_eq(mom_token_sign(ec_priv, strlen(ec_priv), &c, &o, &tok, err,
		    sizeof(err)), 0, "%s", err);
		sig = strrchr(tok, '.') + 1;
		cr_assert_eq(strlen(sig), 86, "signature %s", sig);
		cr_assert_eq(verify(ks_ec, tok, strlen(tok), &got, err, sizeof(err)), 0, "%s", err);
		mom_claims_free(&got);
		free(tok);
	}
}

Test(sign, header_is_es256_jwt_and_claims_carry_issuer_and_audience)
{
	struct mom_claims      c = { .exp = NOW + 60 };
	struct mom_verify_opts o = { .now = NOW, .issuer = "idp", .audience = "aud1" };
	char                  *tok, err[128], *h, *p;
	uint8_t               *raw;
	size_t                 n;
	json_t                *j;

	snprintf(c.sub, sizeof(c.sub), "bob");
	cr_assert_eq(mom_token_sign(ec_priv, strlen(ec_priv), &c, &o, &tok, err, sizeof(err)), 0);
	h = segment_of(tok, 0);
	cr_assert_eq(mom_b64url_decode(h, strlen(h), &raw, &n), 0);
	j = json_loadb((char *)raw, n, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(j, "alg")), "ES256");
	cr_assert_str_eq(json_string_value(json_object_get(j, "typ")), "JWT");
	json_decref(j);
	free(raw);
	p = segment_of(tok, 1);
	cr_assert_eq(mom_b64url_decode(p, strlen(p), &raw, &n), 0);
	j = json_loadb((char *)raw, n, 0, NULL);
	cr_assert_str_eq(json_string_value(json_object_get(j, "iss")), "idp");
	cr_assert_str_eq(json_string_value(json_object_get(j, "aud")), "aud1");
	cr_assert_eq(json_integer_value(json_object_get(j, "exp")), NOW + 60);
	cr_assert(json_is_false(json_object_get(j, "mom.admin")));
	json_decref(j);
	free(raw);
	free(h);
	free(p);
	free(tok);
}

static void
sign_refused(const char *pem, const struct mom_claims *c, const char *why_part)
{
	struct mom_verify_opts o = { .now = NOW };
	char                  *tok = (char *)1, err[256] = "";

	cr_assert_eq(mom_token_sign(pem, strlen(pem), c, &o, &tok, err, sizeof(err)), MOM_EINVAL);
	cr_assert_null(tok);
	cr_assert(strstr(err, why_part) != NULL, "reason '%s', expected '%s'", err, why_part);
}

Test(sign, bad_keys_and_claims_are_refused)
{
	struct mom_claims c = { .exp = NOW + 60 }, bad;
	char             *badpat[] = { "a*" };
	EVP_PKEY         *k;
	char             *pem;

	snprintf(c.sub, sizeof(c.sub), "alice");
	sign_refused(ec_pub, &c, "unreadable private key");
	sign_refused("garbage", &c, "unreadable private key");
	cr_assert_not_null(k = EVP_EC_gen("P-384"));
	pem = pem_of(k, 1);
	sign_refused(pem, &c, "P-256");
	free(pem);
	EVP_PKEY_free(k);
	bad = c;
	bad.exp = NOW;
	sign_refused(ec_priv, &bad, "expiry");
	bad = c;
	bad.sub[0] = '\0';
	sign_refused(ec_priv, &bad, "subject");
	bad = c;
	snprintf(bad.sub, sizeof(bad.sub), "a b");
	sign_refused(ec_priv, &bad, "subject");
	bad = c;
	bad.pub = badpat;
	bad.npub = 1;
	sign_refused(ec_priv, &bad, "publish pattern");
	bad = c;
	bad.subs = badpat;
	bad.nsubs = 1;
	sign_refused(ec_priv, &bad, "subscribe pattern");
	bad = c;
	bad.npub = MOM_TOKEN_PATTERNS_MAX + 1;
	sign_refused(ec_priv, &bad, "too many");
}

Test(sign, encrypted_private_key_is_refused_without_a_prompt)
{
	struct mom_claims c = { .exp = NOW + 60 };
	BIO              *b = BIO_new(BIO_s_mem());
	char             *data, *pem;
	long              n;

	snprintf(c.sub, sizeof(c.sub), "alice");
	cr_assert_eq(PEM_write_bio_PrivateKey(b, ec_key, EVP_aes_128_cbc(),
	    (unsigned char *)"secret", 6, NULL, NULL), 1);
	n = BIO_get_mem_data(b, &data);
	pem = strndup(data, (size_t)n);
	BIO_free(b);
	sign_refused(pem, &c, "unreadable private key");
	free(pem);
}

/* Claims helpers and permissions. */

Test(claims, json_copy_and_free)
{
	char             *pub[] = { "a.>" }, *subs[] = { "b.*", "c" };
	struct mom_claims c = { .exp = 100, .iat = 40, .pub = pub, .npub = 1, .subs = subs,
	    .nsubs = 2 }, d;
	char             *j;

	snprintf(c.sub, sizeof(c.sub), "alice");
	snprintf(c.jti, sizeof(c.jti), "x1");
	j = mom_claims_json(&c);
	cr_assert_str_eq(j, "{\"sub\":\"alice\",\"jti\":\"x1\",\"iat\":40,\"exp\":100,"
	    "\"mom.pub\":[\"a.>\"],\"mom.sub\":[\"b.*\",\"c\"],\"mom.admin\":false}");
	free(j);
	cr_assert_eq(mom_claims_copy(&d, &c), 0);
	cr_assert_neq(d.pub, c.pub);
	cr_assert_neq(d.subs[1], c.subs[1]);
	cr_assert_str_eq(d.subs[1], "c");
	cr_assert_eq(d.nsubs, 2);
	mom_claims_free(&d);
	cr_assert_null(d.pub);
	cr_assert_eq(d.npub, 0);
	mom_claims_free(&d); /* twice is harmless */
	mom_claims_free(NULL);
}

Test(perm, publish_needs_a_matching_pattern)
{
	char             *pub[] = { "orders.>", "audit" };
	struct mom_claims c = { .pub = pub, .npub = 2 };

	cr_assert(mom_claims_can_pub(&c, "orders.eu"));
	cr_assert(mom_claims_can_pub(&c, "orders.eu.new"));
	cr_assert(mom_claims_can_pub(&c, "audit"));
	cr_assert_not(mom_claims_can_pub(&c, "orders"));
	cr_assert_not(mom_claims_can_pub(&c, "audit.x"));
	cr_assert_not(mom_claims_can_pub(&c, "invoices"));
	cr_assert_not(mom_claims_can_pub(&c, "orders.*")); /* a pattern is not a target */
	cr_assert_not(mom_claims_can_pub(&c, ""));
	cr_assert_not(mom_claims_can_pub(NULL, "orders.eu"));
}

Test(perm, subscribe_needs_a_covering_pattern)
{
	char             *subs[] = { "orders.>", "metrics.*" };
	struct mom_claims c = { .subs = subs, .nsubs = 2 };

	cr_assert(mom_claims_can_sub(&c, "orders.eu"));
	cr_assert(mom_claims_can_sub(&c, "orders.*"));
	cr_assert(mom_claims_can_sub(&c, "orders.eu.>"));
	cr_assert(mom_claims_can_sub(&c, "metrics.cpu"));
	cr_assert(mom_claims_can_sub(&c, "metrics.*"));
	cr_assert_not(mom_claims_can_sub(&c, "metrics.>"));
	cr_assert_not(mom_claims_can_sub(&c, "metrics"));
	cr_assert_not(mom_claims_can_sub(&c, "orders"));
	cr_assert_not(mom_claims_can_sub(&c, ">"));
	cr_assert_not(mom_claims_can_sub(&c, "*.eu"));
	cr_assert_not(mom_claims_can_sub(&c, "a*"));
	/* Publish rights do not grant subscribing, nor the reverse. */
	cr_assert_not(mom_claims_can_pub(&c, "orders.eu"));
}

Test(perm, admin_may_do_anything_and_empty_lists_nothing)
{
	struct mom_claims admin = { .admin = true }, none = { 0 };

	cr_assert(mom_claims_can_pub(&admin, "anything.at.all"));
	cr_assert(mom_claims_can_sub(&admin, ">"));
	cr_assert_not(mom_claims_can_pub(&admin, "bad name"));
	cr_assert_not(mom_claims_can_pub(&none, "a"));
	cr_assert_not(mom_claims_can_sub(&none, "a"));
}

Test(perm, sub_names)
{
	cr_assert(mom_token_sub_ok("alice"));
	cr_assert(mom_token_sub_ok("ops@example.org"));
	cr_assert(mom_token_sub_ok("svc-1_a.b"));
	cr_assert_not(mom_token_sub_ok(""));
	cr_assert_not(mom_token_sub_ok(NULL));
	cr_assert_not(mom_token_sub_ok("a b"));
	cr_assert_not(mom_token_sub_ok("a/b"));
	cr_assert_not(mom_token_sub_ok("\xc3\xa9"));
}

/* base64url and digest. */

Test(b64url, round_trips_every_length)
{
	uint8_t in[70], *out;
	size_t  n, i, outlen;

	for (n = 0; n < sizeof(in); n++) {
		char *s;

		for (i = 0; i < n; i++)
			in[i] = (uint8_t)(i * 37 + n);
		s = mom_b64url_encode(in, n);
		cr_assert_not_null(s);
		cr_assert_eq(strlen(s), (n * 4 + 2) / 3);
		cr_assert_null(strpbrk(s, "=+/"));
		cr_assert_eq(mom_b64url_decode(s, strlen(s), &out, &outlen), 0);
		cr_assert_eq(outlen, n);
		cr_assert_arr_eq(out, in, n);
		free(out);
		free(s);
	}
}

Test(b64url, known_values_and_strictness)
{
	uint8_t *out;
	size_t   n;
	char    *s = mom_b64url_encode((const uint8_t *)"\xfb\xff", 2);

	cr_assert_str_eq(s, "-_8");
	free(s);
	cr_assert_eq(mom_b64url_decode("-_8", 3, &out, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(out[0], 0xfb);
	free(out);
	cr_assert_eq(mom_b64url_decode("+/8", 3, &out, &n), -1);
	cr_assert_null(out);
	cr_assert_eq(mom_b64url_decode("-_8=", 4, &out, &n), -1);
	cr_assert_eq(mom_b64url_decode("-_9", 3, &out, &n), -1); /* unused bits set */
	cr_assert_eq(mom_b64url_decode("QQ", 2, &out, &n), 0);
	free(out);
	cr_assert_eq(mom_b64url_decode("QR", 2, &out, &n), -1);
	cr_assert_eq(mom_b64url_decode("QUJDR", 5, &out, &n), -1);
	cr_assert_eq(mom_b64url_decode("QU JD", 5, &out, &n), -1);
	cr_assert_eq(mom_b64url_decode("", 0, &out, &n), 0);
	cr_assert_eq(n, 0);
	free(out);
}

Test(digest, is_sha256)
{
	uint8_t d[32];
	const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41,
	    0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
	    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };

	mom_token_digest("abc", 3, d);
	cr_assert_arr_eq(d, abc, 32);
}

/*
 * mkjwt.c: forges JSON Web Tokens for the attack tests (test-only tool,
 * built into build/tools/mkjwt).  It signs what it is told with what it is
 * given and checks nothing.
 *
 *	mkjwt (--key PRIVATE.pem | --hmac-secret-file FILE | --alg-none)
 *	      [--alg LABEL | --header JSON] [--std] --claims JSON
 *	      [--tamper header|payload|sig] [--empty-sig | --sig TEXT |
 *	      --splice-sig TOKEN]
 *
 * --key signs ES256 (EC key, JOSE r || s) or RS256 (RSA key); --hmac-secret-
 * file signs HMAC-SHA256 with the file's bytes as the secret (give it the
 * public key PEM for the key confusion attack); --alg-none leaves the
 * signature empty.  The header is {"alg":LABEL,"typ":"JWT"}, LABEL from
 * --alg or the key (ES256, RS256, HS256, none); --header puts the given
 * text there byte for byte instead.  In --claims, "exp", "nbf" and "iat"
 * may be strings "+N" / "-N": N seconds from now.  --std starts from valid
 * claims (iss mom-auth, aud mom, sub mallory, iat and nbf now, exp in five
 * minutes, mom.pub and mom.sub [">"]) that --claims overrides; a member
 * set to null there is removed.  After signing, --tamper changes the header
 * (a space appended to its JSON), the payload (mom.admin flipped) or the
 * signature (one bit); --empty-sig, --sig and --splice-sig (the signature
 * of another token) replace the signature segment.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>

#include "jws.h"
#include "token.h"

static void
usage(void)
{
	fprintf(stderr, "usage: mkjwt (--key PEM | --hmac-secret-file FILE | --alg-none) "
	    "[--alg LABEL | --header JSON] [--std] --claims JSON\n"
	    "             [--tamper header|payload|sig] [--empty-sig | --sig TEXT | "
	    "--splice-sig TOKEN]\n");
	exit(64);
}

static void
die(const char *msg, const char *arg)
{
	fprintf(stderr, "mkjwt: %s%s%s\n", msg, arg != NULL ? ": " : "", arg != NULL ? arg : "");
	exit(1);
}

static char *
slurp(const char *path, size_t *len)
{
	FILE  *f = fopen(path, "rb");
	char  *buf;
	size_t n;

	if (f == NULL)
		die("cannot open", path);
	if ((buf = malloc(1 << 20)) == NULL)
		die("out of memory", NULL);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static json_t *
json_arg(const char *text, const char *what)
{
	json_error_t e;
	json_t      *j = json_loads(text, 0, &e);

	if (j == NULL || !json_is_object(j))
		die("not a JSON object", what);
	return j;
}

/* "+N"/"-N" strings in exp, nbf, iat become now + N. */
static void
relative_times(json_t *c)
{
	const char *names[] = { "exp", "nbf", "iat" };
	size_t      i;

	for (i = 0; i < 3; i++) {
		const char *s = json_string_value(json_object_get(c, names[i]));
		char       *end;
		long long   d;

		if (s == NULL || (s[0] != '+' && s[0] != '-'))
			continue;
		d = strtoll(s, &end, 10);
		if (*end != '\0')
			die("bad relative time", s);
		json_object_set_new(c, names[i], json_integer((json_int_t)time(NULL) + d));
	}
}

static json_t *
std_claims(void)
{
	json_int_t now = (json_int_t)time(NULL);

	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:[s], s:[s]}", "iss", "mom-auth",
	    "aud", "mom", "sub", "mallory", "iat", now, "nbf", now, "exp", now + 300,
	    "mom.pub", ">", "mom.sub", ">");
}

/* Replaces segment i (0 header, 1 payload, 2 signature) of tok. */
static char *
put_segment(char *tok, int i, const char *seg)
{
	char  *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.'), *out;
	size_t n = strlen(tok) + strlen(seg) + 3;

	if ((out = malloc(n)) == NULL)
		die("out of memory", NULL);
	*d1 = *d2 = '\0';
	snprintf(out, n, "%s.%s.%s", i == 0 ? seg : tok, i == 1 ? seg : d1 + 1,
	    i == 2 ? seg : d2 + 1);
	free(tok);
	return out;
}

static char *
text_segment(const char *text)
{
	char *s = mom_b64url_encode((const uint8_t *)text, strlen(text));

	if (s == NULL)
		die("out of memory", NULL);
	return s;
}

static char *
tamper(char *tok, const char *what, const char *header, json_t *claims)
{
	char *seg, *text;

	if (strcmp(what, "header") == 0) {
		/* Same meaning, other bytes: only the signature can tell. */
		if (asprintf(&text, "%s ", header) < 0)
			die("out of memory", NULL);
		seg = text_segment(text);
		free(text);
		tok = put_segment(tok, 0, seg);
	} else if (strcmp(what, "payload") == 0) {
		json_object_set_new(claims, "mom.admin",
		    json_boolean(!json_is_true(json_object_get(claims, "mom.admin"))));
		text = json_dumps(claims, JSON_COMPACT);
		seg = text_segment(text);
		free(text);
		tok = put_segment(tok, 1, seg);
	} else if (strcmp(what, "sig") == 0) {
		uint8_t *sig;
		size_t   n;
		char    *s = strrchr(tok, '.') + 1;

		if (mom_b64url_decode(s, strlen(s), &sig, &n) != 0 || n == 0)
			die("no signature to tamper with", NULL);
		sig[0] ^= 1;
		seg = mom_b64url_encode(sig, n);
		free(sig);
		tok = put_segment(tok, 2, seg);
	} else {
		usage();
	}
	free(seg);
	return tok;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key", required_argument, NULL, 'k' },
		{ "hmac-secret-file", required_argument, NULL, 'H' },
		{ "alg-none", no_argument, NULL, 'n' },
		{ "alg", required_argument, NULL, 'a' },
		{ "header", required_argument, NULL, 'h' },
		{ "std", no_argument, NULL, 'S' },
		{ "claims", required_argument, NULL, 'c' },
		{ "tamper", required_argument, NULL, 't' },
		{ "empty-sig", no_argument, NULL, 'e' },
		{ "sig", required_argument, NULL, 's' },
		{ "splice-sig", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	const char *keyfile = NULL, *secretfile = NULL, *alg = NULL, *header = NULL;
	const char *claims_arg = NULL, *tamper_what = NULL, *sig = NULL, *splice = NULL;
	bool        none = false, std = false;
	EVP_PKEY   *key = NULL;
	char       *secret = NULL, *payload, *tok, hdr[256];
	size_t      secretlen = 0;
	json_t     *claims;
	int         ch, signers;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'k': keyfile = optarg; break;
		case 'H': secretfile = optarg; break;
		case 'n': none = true; break;
		case 'a': alg = optarg; break;
		case 'h': header = optarg; break;
		case 'S': std = true; break;
		case 'c': claims_arg = optarg; break;
		case 't': tamper_what = optarg; break;
		case 'e': sig = ""; break;
		case 's': sig = optarg; break;
		case 'p': splice = optarg; break;
		default: usage();
		}
	}
	signers = (keyfile != NULL) + (secretfile != NULL) + none;
	if (optind != argc || signers != 1 || claims_arg == NULL || (alg && header) ||
	    (sig && splice))
		usage();

	if (keyfile != NULL) {
		size_t n;
		char  *pem = slurp(keyfile, &n);
		BIO   *b = BIO_new_mem_buf(pem, (int)n);

		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
		free(pem);
		if (key == NULL)
			die("not a private key", keyfile);
	} else if (secretfile != NULL) {
		secret = slurp(secretfile, &secretlen);
	}
	if (header == NULL) {
		if (alg == NULL)
			alg = key == NULL ? (none ? "none" : "HS256") :
			    EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? "ES256" : "RS256";
		snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
		header = hdr;
	}

	if (std) {
		json_t     *over = json_arg(claims_arg, "--claims"), *v;
		const char *k;

		claims = std_claims();
		json_object_foreach(over, k, v) {
			if (json_is_null(v))
				json_object_del(claims, k);
			else
				json_object_set(claims, k, v);
		}
		json_decref(over);
	} else {
		claims = json_arg(claims_arg, "--claims");
	}
	relative_times(claims);
	if ((payload = json_dumps(claims, JSON_COMPACT)) == NULL)
		die("out of memory", NULL);

	if ((tok = jws_forge(header, payload, key, (const uint8_t *)secret, secretlen)) == NULL)
		die("signing failed", NULL);
	if (tamper_what != NULL)
		tok = tamper(tok, tamper_what, header, claims);
	if (sig != NULL)
		tok = put_segment(tok, 2, sig);
	if (splice != NULL) {
		const char *s = strrchr(splice, '.');

		if (s == NULL)
			die("not a token", splice);
		tok = put_segment(tok, 2, s + 1);
	}
	printf("%s\n", tok);
	free(tok);
	free(payload);
	free(secret);
	json_decref(claims);
	EVP_PKEY_free(key);
	return fflush(stdout) == 0 ? 0 : 1;
}

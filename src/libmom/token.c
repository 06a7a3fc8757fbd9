/*
 * token.c: mom's JSON Web Tokens (see token.h).
 *
 * libjwt 1.10.2 is used for one thing only: checking a signature with a
 * key whose algorithm we chose.  It takes the algorithm from the token
 * header (so "HS256" with the public key PEM as HMAC secret verifies, and
 * "none" passes when no key is given), accepts any letter case, and checks
 * no claim.  So everything a token says about itself is checked here
 * first: the structure and header by a strict pre-parse, the algorithm
 * against the key's pinned one before libjwt sees the token and again
 * after, and the claims by our own jansson parse of the very payload bytes
 * that the signature covers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "format.h"
#include "mom.h"
#include "names.h"
#include "token.h"

#define KEYFILE_MAX  (1024 * 1024) /* bytes of a key file */
#define KEYSET_MAX   64            /* keys in one file */
#define RSA_BITS_MIN 2048
#define ES256_SIGLEN 64            /* JOSE form: r || s, 32 bytes each */
/* Times beyond the year 9999 are not NumericDates anyone issues. */
#define TIME_MAX     INT64_C(253402300799)

struct mom_key {
	enum mom_token_alg alg;
	char              *pem;    /* SubjectPublicKeyInfo PEM, NUL-terminated */
	size_t             pemlen;
	size_t             siglen; /* bytes of a valid signature */
};

struct mom_keyset {
	struct mom_key *keys;
	size_t          n;
};

static void
seterr(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

/* Refuses a passphrase prompt: keys given to mom are never encrypted. */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static const char *
alg_name(enum mom_token_alg alg)
{
	switch (alg) {
	case MOM_ALG_ES256:
		return "ES256";
	case MOM_ALG_RS256:
		return "RS256";
	default:
		return "none";
	}
}

static jwt_alg_t
alg_jwt(enum mom_token_alg alg)
{
	switch (alg) {
	case MOM_ALG_ES256:
		return JWT_ALG_ES256;
	case MOM_ALG_RS256:
		return JWT_ALG_RS256;
	default:
		return JWT_ALG_INVAL;
	}
}

/* Exactly "ES256" or "RS256": no other spelling names an algorithm here. */
static enum mom_token_alg
alg_parse(const char *s)
{
	if (strcmp(s, "ES256") == 0)
		return MOM_ALG_ES256;
	if (strcmp(s, "RS256") == 0)
		return MOM_ALG_RS256;
	return MOM_ALG_NONE;
}

/*
 * The algorithm a key can sign for: EC on P-256 -> ES256, RSA of at least
 * 2048 bits -> RS256.  MOM_ALG_NONE with the reason in why otherwise.
 */
static enum mom_token_alg
key_alg(EVP_PKEY *pk, const char **why)
{
	char group[64];

	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) != 1 ||
		    strcmp(group, "prime256v1") != 0) {
			*why = "EC key is not on curve P-256 (prime256v1)";
			return MOM_ALG_NONE;
		}
		return MOM_ALG_ES256;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < RSA_BITS_MIN) {
			*why = "RSA key shorter than 2048 bits";
			return MOM_ALG_NONE;
		}
		return MOM_ALG_RS256;
	default:
		*why = "key is neither EC P-256 nor RSA";
		return MOM_ALG_NONE;
	}
}

/* base64url (RFC 4648 section 5), never padded. */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
mom_b64url_encode(const uint8_t *p, size_t n)
{
	char  *out, *o;
	size_t i;

	if (n > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	if ((out = malloc((n + 2) / 3 * 4 + 1)) == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < n; i += 3) {
		*o++ = b64url[p[i] >> 2];
		*o++ = b64url[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64url[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = b64url[p[i + 2] & 63];
	}
	if (n - i == 1) {
		*o++ = b64url[p[i] >> 2];
		*o++ = b64url[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		*o++ = b64url[p[i] >> 2];
		*o++ = b64url[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = b64url[(p[i + 1] & 15) << 2];
	}
	*o = '\0';
	return out;
}

/*
 * Strict: only the 64 characters, no padding, no whitespace, and the
 * unused low bits of the last character zero, so that every byte string
 * has exactly one encoding (a signature cannot be re-spelt).  The output
 * is NUL-terminated (not counted in outlen) for the JSON parser's sake.
 */
int
mom_b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *buf;
	size_t   i, o = 0;
	uint32_t acc = 0;
	int      bits = 0;

	*out = NULL;
	*outlen = 0;
	if (s == NULL || n % 4 == 1 || n > SIZE_MAX / 3)
		return -1;
	if ((buf = malloc(n / 4 * 3 + 3)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		int v = mom_b64_value((unsigned char)s[i], true);

		if (v < 0)
			goto fail;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0) /* non-zero leftover bits: a second spelling */
		goto fail;
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
fail:
	free(buf);
	return -1;
}

void
mom_token_digest(const char *tok, size_t len, uint8_t out[32])
{
	unsigned int n = 32;

	if (EVP_Digest(tok, len, out, &n, EVP_sha256(), NULL) != 1)
		memset(out, 0, 32);
}

/* Claims. */

static void
strlist_free(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
mom_claims_free(struct mom_claims *c)
{
	if (c == NULL)
		return;
	strlist_free(c->pub, c->npub);
	strlist_free(c->subs, c->nsubs);
	c->pub = c->subs = NULL;
	c->npub = c->nsubs = 0;
}

static int
strlist_copy(char ***dst, char *const *src, size_t n)
{
	size_t i;

	*dst = NULL;
	if (n == 0)
		return 0;
	if ((*dst = calloc(n, sizeof(**dst))) == NULL)
		return MOM_ENOMEM;
	for (i = 0; i < n; i++)
		if (((*dst)[i] = strdup(src[i])) == NULL) {
			strlist_free(*dst, i);
			*dst = NULL;
			return MOM_ENOMEM;
		}
	return 0;
}

int
mom_claims_copy(struct mom_claims *dst, const struct mom_claims *src)
{
	*dst = *src;
	dst->pub = dst->subs = NULL;
	dst->npub = dst->nsubs = 0;
	if (strlist_copy(&dst->pub, src->pub, src->npub) != 0)
		return MOM_ENOMEM;
	dst->npub = src->npub;
	if (strlist_copy(&dst->subs, src->subs, src->nsubs) != 0) {
		mom_claims_free(dst);
		return MOM_ENOMEM;
	}
	dst->nsubs = src->nsubs;
	return 0;
}

static json_t *
strlist_json(char *const *v, size_t n)
{
	json_t *a;
	size_t  i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (json_array_append_new(a, json_string(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The mom claims of c as a JSON object (without iss and aud). */
static json_t *
claims_object(const struct mom_claims *c)
{
	json_t *o;
	int     bad = 0;

	if ((o = json_object()) == NULL)
		return NULL;
	bad |= json_object_set_new(o, "sub", json_string(c->sub));
	if (c->jti[0] != '\0')
		bad |= json_object_set_new(o, "jti", json_string(c->jti));
	if (c->iat != 0)
		bad |= json_object_set_new(o, "iat", json_integer(c->iat));
	if (c->nbf != 0)
		bad |= json_object_set_new(o, "nbf", json_integer(c->nbf));
	bad |= json_object_set_new(o, "exp", json_integer(c->exp));
	bad |= json_object_set_new(o, "mom.pub", strlist_json(c->pub, c->npub));
	bad |= json_object_set_new(o, "mom.sub", strlist_json(c->subs, c->nsubs));
	bad |= json_object_set_new(o, "mom.admin", json_boolean(c->admin));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

char *
mom_claims_json(const struct mom_claims *c)
{
	json_t *o;
	char   *s;

	if ((o = claims_object(c)) == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

bool
mom_claims_can_pub(const struct mom_claims *c, const char *name)
{
	size_t i;

	if (c == NULL || !mom_name_ok(name))
		return false;
	if (c->admin)
		return true;
	for (i = 0; i < c->npub; i++)
		if (mom_match(c->pub[i], name))
			return true;
	return false;
}

bool
mom_claims_can_sub(const struct mom_claims *c, const char *name_or_pattern)
{
	size_t i;

	if (c == NULL || !mom_pattern_ok(name_or_pattern))
		return false;
	if (c->admin)
		return true;
	/* A name is a pattern without wildcards: covering it is matching it. */
	for (i = 0; i < c->nsubs; i++)
		if (mom_pattern_covers(c->subs[i], name_or_pattern))
			return true;
	return false;
}

bool
mom_token_sub_ok(const char *s)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > MOM_TOKEN_SUB_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '_' && c != '-' && c != '.' && c != '@')
			return false;
	}
	return true;
}

/* A jti is an opaque id: 1-64 printable ASCII bytes, no space. */
static bool
jti_ok(const char *s)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > sizeof(((struct mom_claims *)0)->jti) - 1)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return false;
	return true;
}

/* Pre-parse. */

/* The decoded parts of a structurally valid token. */
struct parts {
	json_t            *header;
	json_t            *payload;
	size_t             siglen;
	enum mom_token_alg alg;
};

static void
parts_fini(struct parts *p)
{
	json_decref(p->header);
	json_decref(p->payload);
	p->header = p->payload = NULL;
}

/*
 * One segment as a JSON object.  Duplicate member names are refused: a
 * parser that takes the first of two "alg" and one that takes the last
 * would otherwise read two different tokens from the same bytes.
 */
static json_t *
segment_json(const char *s, size_t n)
{
	uint8_t *raw;
	size_t   rawlen;
	json_t  *j;

	if (n == 0 || mom_b64url_decode(s, n, &raw, &rawlen) != 0)
		return NULL;
	j = NULL;
	if (memchr(raw, '\0', rawlen) == NULL)
		j = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
	free(raw);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int
token_split(const char *tok, size_t len, struct parts *p, char *err, size_t errlen)
{
	const char *d1, *d2;
	const char *alg, *typ;
	json_t     *v;
	uint8_t    *sig;

	memset(p, 0, sizeof(*p));
	if (tok == NULL || len == 0) {
		seterr(err, errlen, "malformed token");
		return MOM_EAUTH;
	}
	if (len > MOM_TOKEN_MAX) {
		seterr(err, errlen, "token too large");
		return MOM_EAUTH;
	}
	if ((d1 = memchr(tok, '.', len)) == NULL ||
	    (d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok))) == NULL ||
	    memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok)) != NULL)
		goto malformed;
	if ((p->header = segment_json(tok, (size_t)(d1 - tok))) == NULL)
		goto malformed;
	v = json_object_get(p->header, "alg");
	if ((alg = json_string_value(v)) == NULL)
		goto malformed;
	if ((p->alg = alg_parse(alg)) == MOM_ALG_NONE) {
		seterr(err, errlen, "algorithm not allowed");
		goto fail;
	}
	/* RFC 7519 section 5.1: "JWT", compared without regard to case. */
	if ((v = json_object_get(p->header, "typ")) != NULL &&
	    ((typ = json_string_value(v)) == NULL || strcasecmp(typ, "JWT") != 0)) {
		seterr(err, errlen, "token type not allowed");
		goto fail;
	}
	/* RFC 7515 section 4.1.11: extensions we do not know must be refused. */
	if (json_object_get(p->header, "crit") != NULL) {
		seterr(err, errlen, "critical header not supported");
		goto fail;
	}
	if ((p->payload = segment_json(d1 + 1, (size_t)(d2 - d1 - 1))) == NULL)
		goto malformed;
	if (mom_b64url_decode(d2 + 1, len - (size_t)(d2 + 1 - tok), &sig, &p->siglen) != 0)
		goto malformed;
	free(sig);
	if (p->siglen == 0) {
		seterr(err, errlen, "bad signature");
		goto fail;
	}
	return 0;
malformed:
	seterr(err, errlen, "malformed token");
fail:
	parts_fini(p);
	return MOM_EAUTH;
}

int
mom_token_preparse(const char *tok, size_t len, char *alg, size_t alglen, char *err,
    size_t errlen)
{
	struct parts p;
	int          rc;

	if (alg != NULL && alglen > 0)
		alg[0] = '\0';
	if ((rc = token_split(tok, len, &p, err, errlen)) != 0)
		return rc;
	if (alg != NULL && alglen > 0)
		snprintf(alg, alglen, "%s", alg_name(p.alg));
	parts_fini(&p);
	return 0;
}

/* Keys. */

void
mom_keyset_free(struct mom_keyset *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++)
		free(ks->keys[i].pem);
	free(ks->keys);
	free(ks);
}

size_t
mom_keyset_count(const struct mom_keyset *ks)
{
	return ks == NULL ? 0 : ks->n;
}

const char *
mom_keyset_pem(const struct mom_keyset *ks, size_t i)
{
	if (ks == NULL || i >= ks->n)
		return NULL;
	return ks->keys[i].pem;
}

/* Adds one public key, written back as PEM so every key reads the same. */
static int
keyset_add(struct mom_keyset *ks, EVP_PKEY *pk, char *err, size_t errlen)
{
	struct mom_key     *k;
	enum mom_token_alg  alg;
	const char         *why = NULL;
	BIO                *b;
	char               *data;
	long                n;

	if ((alg = key_alg(pk, &why)) == MOM_ALG_NONE) {
		seterr(err, errlen, why);
		return MOM_EINVAL;
	}
	if (ks->n == KEYSET_MAX) {
		seterr(err, errlen, "too many keys (at most 64)");
		return MOM_EINVAL;
	}
	if ((k = realloc(ks->keys, (ks->n + 1) * sizeof(*k))) == NULL)
		return MOM_ENOMEM;
	ks->keys = k;
	k = &ks->keys[ks->n];
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return MOM_ENOMEM;
	if (PEM_write_bio_PUBKEY(b, pk) != 1 || (n = BIO_get_mem_data(b, &data)) <= 0 ||
	    (k->pem = malloc((size_t)n + 1)) == NULL) {
		BIO_free(b);
		return MOM_ENOMEM;
	}
	memcpy(k->pem, data, (size_t)n);
	k->pem[n] = '\0';
	k->pemlen = (size_t)n;
	BIO_free(b);
	k->alg = alg;
	/* EVP_PKEY_get_size is the DER size for EC; JOSE uses r || s. */
	k->siglen = alg == MOM_ALG_ES256 ? ES256_SIGLEN : (size_t)EVP_PKEY_get_size(pk);
	ks->n++;
	return 0;
}

/*
 * Block by block, so that a block of another kind (a private key given by
 * mistake, a certificate) is an error rather than silently skipped, as
 * PEM_read_bio_PUBKEY would skip it.
 */
int
mom_keyset_parse(struct mom_keyset **out, const char *pem, size_t len, char *err,
    size_t errlen)
{
	struct mom_keyset *ks;
	BIO               *b = NULL;
	char              *name = NULL, *hdr = NULL;
	unsigned char     *data = NULL;
	long               n;
	int                rc = MOM_EINVAL;

	*out = NULL;
	if (len > INT32_MAX) {
		seterr(err, errlen, "key file too large");
		return MOM_EINVAL;
	}
	if ((ks = calloc(1, sizeof(*ks))) == NULL)
		return MOM_ENOMEM;
	if ((b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		rc = MOM_ENOMEM;
		goto fail;
	}
	for (;;) {
		const unsigned char *p;
		EVP_PKEY            *pk;
		unsigned long        e;

		ERR_clear_error();
		if (PEM_read_bio(b, &name, &hdr, &data, &n) != 1) {
			e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
				break; /* no further block */
			seterr(err, errlen, "unreadable PEM block");
			goto fail;
		}
		if (strcmp(name, PEM_STRING_PUBLIC) != 0) {
			if (err != NULL && errlen > 0)
				snprintf(err, errlen, "'%s' block: a PUBLIC KEY block was expected%s",
				    name, strstr(name, "PRIVATE") != NULL ?
				    " (openssl pkey -pubout writes the public key)" : "");
			goto fail;
		}
		p = data;
		pk = d2i_PUBKEY(NULL, &p, n);
		if (pk == NULL || p != data + n) {
			EVP_PKEY_free(pk);
			seterr(err, errlen, "unreadable PUBLIC KEY block");
			goto fail;
		}
		rc = keyset_add(ks, pk, err, errlen);
		EVP_PKEY_free(pk);
		if (rc != 0)
			goto fail;
		rc = MOM_EINVAL;
		OPENSSL_free(name);
		OPENSSL_free(hdr);
		OPENSSL_free(data);
		name = hdr = NULL;
		data = NULL;
	}
	if (ks->n == 0) {
		seterr(err, errlen, "no PUBLIC KEY block");
		goto fail;
	}
	ERR_clear_error();
	BIO_free(b);
	*out = ks;
	return 0;
fail:
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(data);
	BIO_free(b);
	mom_keyset_free(ks);
	return rc;
}

int
mom_keyset_load(struct mom_keyset **out, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char       *buf = NULL;
	char        why[200];
	size_t      got = 0;
	ssize_t     r;
	int         fd, rc;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = errno == ENOENT ? MOM_ENOENT : MOM_EINVAL;
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size > KEYFILE_MAX) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s: not a regular file of at most 1 MiB", path);
		close(fd);
		return MOM_EINVAL;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return MOM_ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if ((rc = mom_keyset_parse(out, buf, got, why, sizeof(why))) != 0 && err != NULL &&
	    errlen > 0)
		snprintf(err, errlen, "%s: %s", path, why);
	free(buf);
	return rc;
}

/* Verification. */

static bool
time_claim(json_t *o, const char *name, int64_t *v, bool *bad)
{
	json_t *j = json_object_get(o, name);

	*v = 0;
	if (j == NULL)
		return false;
	if (!json_is_integer(j) || json_integer_value(j) < 0 ||
	    json_integer_value(j) > TIME_MAX) {
		*bad = true;
		return false;
	}
	*v = json_integer_value(j);
	return true;
}

/* A permission list: absent is empty; anything but valid patterns is refused. */
static int
pattern_claim(json_t *o, const char *name, char ***out, size_t *n)
{
	json_t *a, *v;
	size_t  i;

	*out = NULL;
	*n = 0;
	if ((a = json_object_get(o, name)) == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > MOM_TOKEN_PATTERNS_MAX)
		return -1;
	if (json_array_size(a) == 0)
		return 0;
	if ((*out = calloc(json_array_size(a), sizeof(**out))) == NULL)
		return -1;
	json_array_foreach(a, i, v) {
		const char *s = json_string_value(v);

		if (s == NULL || strlen(s) != json_string_length(v) || !mom_pattern_ok(s) ||
		    ((*out)[i] = strdup(s)) == NULL) {
			strlist_free(*out, i);
			*out = NULL;
			return -1;
		}
		*n = i + 1;
	}
	return 0;
}

static bool
audience_ok(json_t *aud, const char *want)
{
	json_t *v;
	size_t  i;
	bool    found = false;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (!json_is_array(aud))
		return false;
	json_array_foreach(aud, i, v) {
		if (!json_is_string(v))
			return false;
		if (strcmp(json_string_value(v), want) == 0)
			found = true;
	}
	return found;
}

/* Every claim of a payload whose signature has been checked. */
static int
claims_check(json_t *p, const struct mom_verify_opts *o, struct mom_claims *c, char *err,
    size_t errlen)
{
	const char *issuer = MOM_TOKEN_ISSUER, *audience = MOM_TOKEN_AUDIENCE;
	const char *why = "malformed token";
	const char *s;
	json_t     *v;
	int64_t     now, leeway = 0;
	bool        bad = false;

	if (o != NULL) {
		if (o->issuer != NULL)
			issuer = o->issuer;
		if (o->audience != NULL)
			audience = o->audience;
		leeway = o->leeway < 0 ? 0 :
		    o->leeway > MOM_TOKEN_LEEWAY_MAX ? MOM_TOKEN_LEEWAY_MAX : o->leeway;
	}
	now = o != NULL && o->now != 0 ? o->now : (int64_t)time(NULL);

	if (!time_claim(p, "exp", &c->exp, &bad)) {
		why = bad ? "malformed token" : "token without expiry";
		goto fail;
	}
	(void)time_claim(p, "nbf", &c->nbf, &bad);
	(void)time_claim(p, "iat", &c->iat, &bad);
	if (bad)
		goto fail;
	if (c->exp + leeway <= now) {
		why = "token expired";
		goto fail;
	}
	if (json_object_get(p, "nbf") != NULL && c->nbf > now + leeway) {
		why = "token not yet valid";
		goto fail;
	}
	if (json_object_get(p, "iat") != NULL && c->iat > now + leeway) {
		why = "token issued in the future";
		goto fail;
	}
	if ((v = json_object_get(p, "iss")) == NULL) {
		why = "token without issuer";
		goto fail;
	}
	if (!json_is_string(v) || strcmp(json_string_value(v), issuer) != 0) {
		why = "wrong issuer";
		goto fail;
	}
	if ((v = json_object_get(p, "aud")) == NULL) {
		why = "token without audience";
		goto fail;
	}
	if (!audience_ok(v, audience)) {
		why = "wrong audience";
		goto fail;
	}
	if ((s = json_string_value(json_object_get(p, "sub"))) == NULL || s[0] == '\0') {
		why = "token without subject";
		goto fail;
	}
	if (!mom_token_sub_ok(s)) {
		why = "bad subject";
		goto fail;
	}
	snprintf(c->sub, sizeof(c->sub), "%s", s);
	if ((v = json_object_get(p, "jti")) != NULL) {
		if (!jti_ok(s = json_string_value(v)))
			goto fail;
		snprintf(c->jti, sizeof(c->jti), "%s", s);
	}
	if (pattern_claim(p, "mom.pub", &c->pub, &c->npub) != 0 ||
	    pattern_claim(p, "mom.sub", &c->subs, &c->nsubs) != 0) {
		why = "bad permission list";
		goto fail;
	}
	if ((v = json_object_get(p, "mom.admin")) != NULL) {
		if (!json_is_boolean(v))
			goto fail;
		c->admin = json_is_true(v);
	}
	return 0;
fail:
	mom_claims_free(c);
	memset(c, 0, sizeof(*c));
	seterr(err, errlen, why);
	return MOM_EAUTH;
}

/* Does one key's libjwt check pass, with the algorithm we pinned? */
static bool
signature_ok(const struct mom_key *k, const char *tok)
{
	jwt_t *j = NULL;
	bool   ok;

	ok = jwt_decode(&j, tok, (const unsigned char *)k->pem, (int)k->pemlen) == 0 &&
	    j != NULL && jwt_get_alg(j) == alg_jwt(k->alg);
	if (j != NULL)
		jwt_free(j);
	ERR_clear_error();
	return ok;
}

int
mom_token_verify(const struct mom_keyset *ks, const char *tok, size_t len,
    const struct mom_verify_opts *o, struct mom_claims *out, char *err, size_t errlen)
{
	struct parts p;
	char        *copy;
	size_t       i;
	bool         haskey = false, ok = false;
	int          rc;

	memset(out, 0, sizeof(*out));
	if ((rc = token_split(tok, len, &p, err, errlen)) != 0)
		return rc;
	rc = MOM_EAUTH;
	for (i = 0; ks != NULL && i < ks->n; i++)
		if (ks->keys[i].alg == p.alg)
			haskey = true;
	if (!haskey) {
		seterr(err, errlen, "algorithm not allowed");
		goto done;
	}
	/* libjwt wants a C string; tok was checked to hold no NUL. */
	if ((copy = malloc(len + 1)) == NULL) {
		seterr(err, errlen, "out of memory");
		goto done;
	}
	memcpy(copy, tok, len);
	copy[len] = '\0';
	for (i = 0; !ok && i < ks->n; i++)
		if (ks->keys[i].alg == p.alg && ks->keys[i].siglen == p.siglen)
			ok = signature_ok(&ks->keys[i], copy);
	free(copy);
	if (!ok) {
		seterr(err, errlen, "bad signature");
		goto done;
	}
	rc = claims_check(p.payload, o, out, err, errlen);
done:
	parts_fini(&p);
	return rc;
}

/* Signing. */

static int
sign_check(const struct mom_claims *c, int64_t now, char *err, size_t errlen)
{
	size_t i;

	if (!mom_token_sub_ok(c->sub)) {
		seterr(err, errlen, "bad subject (1-128 bytes of A-Z a-z 0-9 _ - . @)");
		return MOM_EINVAL;
	}
	if (c->jti[0] != '\0' && !jti_ok(c->jti)) {
		seterr(err, errlen, "bad token id");
		return MOM_EINVAL;
	}
	if (c->exp <= now || c->exp > TIME_MAX) {
		seterr(err, errlen, "expiry not in the future");
		return MOM_EINVAL;
	}
	if (c->npub > MOM_TOKEN_PATTERNS_MAX || c->nsubs > MOM_TOKEN_PATTERNS_MAX) {
		seterr(err, errlen, "too many patterns (at most 64 per list)");
		return MOM_EINVAL;
	}
	for (i = 0; i < c->npub; i++)
		if (!mom_pattern_ok(c->pub[i])) {
			seterr(err, errlen, "bad publish pattern");
			return MOM_EINVAL;
		}
	for (i = 0; i < c->nsubs; i++)
		if (!mom_pattern_ok(c->subs[i])) {
			seterr(err, errlen, "bad subscribe pattern");
			return MOM_EINVAL;
		}
	return 0;
}

/* The private key's algorithm, refusing keys mom does not sign with. */
static int
privkey_alg(const char *pem, size_t len, enum mom_token_alg *alg, char *err, size_t errlen)
{
	BIO        *b;
	EVP_PKEY   *pk = NULL;
	const char *why = "unreadable private key (PEM, not encrypted)";

	*alg = MOM_ALG_NONE;
	if (len > INT32_MAX || (b = BIO_new_mem_buf(pem, (int)len)) == NULL) {
		seterr(err, errlen, why);
		return MOM_EINVAL;
	}
	pk = PEM_read_bio_PrivateKey(b, NULL, no_passphrase_cb, NULL);
	BIO_free(b);
	if (pk != NULL)
		*alg = key_alg(pk, &why);
	EVP_PKEY_free(pk);
	ERR_clear_error();
	if (*alg == MOM_ALG_NONE) {
		seterr(err, errlen, why);
		return MOM_EINVAL;
	}
	return 0;
}

int
mom_token_sign(const char *pem, size_t pemlen, const struct mom_claims *c,
    const struct mom_verify_opts *o, char **out, char *err, size_t errlen)
{
	struct mom_claims  cc;
	enum mom_token_alg alg;
	json_t            *obj = NULL;
	jwt_t             *j = NULL;
	char              *grants = NULL, *tok = NULL;
	int64_t            now;
	int                rc;

	*out = NULL;
	now = o != NULL && o->now != 0 ? o->now : (int64_t)time(NULL);
	if ((rc = sign_check(c, now, err, errlen)) != 0)
		return rc;
	if ((rc = privkey_alg(pem, pemlen, &alg, err, errlen)) != 0)
		return rc;
	cc = *c;
	cc.iat = cc.nbf = now;
	if (cc.jti[0] == '\0') {
		uint8_t rnd[16];
		size_t  i;

		if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
			seterr(err, errlen, "no random bytes for the token id");
			return MOM_EINVAL;
		}
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(cc.jti + 2 * i, 3, "%02x", rnd[i]);
	}
	rc = MOM_EINVAL;
	if ((obj = claims_object(&cc)) == NULL ||
	    json_object_set_new(obj, "iss", json_string(o != NULL && o->issuer != NULL ?
	    o->issuer : MOM_TOKEN_ISSUER)) != 0 ||
	    json_object_set_new(obj, "aud", json_string(o != NULL && o->audience != NULL ?
	    o->audience : MOM_TOKEN_AUDIENCE)) != 0 ||
	    (grants = json_dumps(obj, JSON_COMPACT)) == NULL) {
		seterr(err, errlen, "out of memory");
		goto done;
	}
	if (jwt_new(&j) != 0 ||
	    jwt_set_alg(j, alg_jwt(alg), (const unsigned char *)pem, (int)pemlen) != 0 ||
	    jwt_add_header(j, "typ", "JWT") != 0 ||
	    jwt_add_grants_json(j, grants) != 0 ||
	    (tok = jwt_encode_str(j)) == NULL) {
		seterr(err, errlen, "signing failed");
		goto done;
	}
	if (strlen(tok) > MOM_TOKEN_MAX) {
		seterr(err, errlen, "token too large (too many or too long patterns)");
		free(tok);
		goto done;
	}
	*out = tok;
	rc = 0;
done:
	ERR_clear_error();
	if (j != NULL)
		jwt_free(j);
	free(grants);
	json_decref(obj);
	return rc;
}

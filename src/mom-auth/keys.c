/*
 * keys.c: the signing key pair: keygen, loading the private key, and the
 * public keys as GET /v1/keys shows them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth.h"
#include "keyfile.h"
#include "mom.h"

#define KEY_FILE_MAX (64 * 1024)
#define RSA_BITS     3072 /* NIST's choice for use beyond 2030 */

static void
ssl_err(const char *what)
{
	char buf[256];

	ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
	auth_err("%s: %s", what, buf);
}

/* The PEM text of a BIO (malloc'd, NUL-terminated); NULL on ENOMEM. */
static char *
bio_text(BIO *b, size_t *len)
{
	char *p, *s;
	long  n = BIO_get_mem_data(b, &p);

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	return s;
}

/* Writes path via path.tmp and rename(2), so a reader sees old or new. */
static int
replace_file(const char *path, int mode, const char *buf, size_t len)
{
	char tmp[4096];

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		auth_err("%s: path too long", path);
		return -1;
	}
	/* Left over from a crash: ours to remove, the directory is 0700. */
	if (unlink(tmp) == -1 && errno != ENOENT) {
		auth_err("%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (auth_write_new(tmp, mode, buf, len) != 0) {
		auth_err("%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (rename(tmp, path) == -1) {
		auth_err("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
keys_keygen(const struct auth_options *o)
{
	EVP_PKEY *pk = NULL;
	BIO      *bpriv = NULL, *bpub = NULL;
	char      kpath[4096], ppath[4096], *priv = NULL, *pub = NULL;
	size_t    privlen = 0, publen = 0;
	int       rc = MOM_EXIT_FAIL;

	if (auth_path(kpath, sizeof(kpath), o->dir, AUTH_KEY_FILE) != 0 ||
	    auth_path(ppath, sizeof(ppath), o->dir, AUTH_PUB_FILE) != 0)
		return MOM_EXIT_USAGE;
	if (!o->force) {
		if (access(kpath, F_OK) == 0 || access(ppath, F_OK) == 0) {
			auth_err("%s exists: not replacing a key pair without --force",
			    access(kpath, F_OK) == 0 ? kpath : ppath);
			return MOM_EXIT_FAIL;
		}
	}
	if (auth_mkdir(o->dir) != 0)
		return MOM_EXIT_FAIL;

	pk = o->rsa ? EVP_RSA_gen(RSA_BITS) : EVP_EC_gen("P-256");
	if (pk == NULL) {
		ssl_err("key generation");
		goto done;
	}
	if ((bpriv = BIO_new(BIO_s_mem())) == NULL || (bpub = BIO_new(BIO_s_mem())) == NULL) {
		auth_err("out of memory");
		goto done;
	}
	/* PKCS#8 "PRIVATE KEY" and SubjectPublicKeyInfo "PUBLIC KEY". */
	if (PEM_write_bio_PrivateKey(bpriv, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(bpub, pk) != 1) {
		ssl_err("PEM encoding");
		goto done;
	}
	if ((priv = bio_text(bpriv, &privlen)) == NULL || (pub = bio_text(bpub, &publen)) == NULL) {
		auth_err("out of memory");
		goto done;
	}
	/* The private key first: a public key alone would verify nothing. */
	if (replace_file(kpath, 0600, priv, privlen) != 0 ||
	    replace_file(ppath, 0644, pub, publen) != 0)
		goto done;
	if (auth_fsync_dir(o->dir) != 0) {
		auth_err("%s: %s", o->dir, strerror(errno));
		goto done;
	}
	rc = MOM_EXIT_OK;
done:
	if (priv != NULL)
		pw_wipe(priv, privlen);
	free(priv);
	free(pub);
	BIO_free(bpriv);
	BIO_free(bpub);
	EVP_PKEY_free(pk);
	return rc;
}

int
keys_load_private(const char *dir, char **pem, size_t *len)
{
	struct stat st;
	char        path[4096];

	if (auth_path(path, sizeof(path), dir, AUTH_KEY_FILE) != 0)
		return MOM_EXIT_USAGE;
	if (auth_read_file(path, KEY_FILE_MAX, pem, len) != 0) {
		if (errno == ENOENT)
			auth_err("%s: no such file (create a key pair with mom-auth keygen)", path);
		else
			auth_err("%s: %s", path, strerror(errno));
		return MOM_EXIT_FAIL;
	}
	/* Like ssh: a private key others can read is no longer private. */
	if (stat(path, &st) == 0 && (st.st_mode & 0077) != 0)
		auth_err("warning: %s is readable by others (mode %03o): chmod 600 it",
		    path, (unsigned)(st.st_mode & 0777));
	return MOM_EXIT_OK;
}

json_t *
keys_public_json(const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pk;
	BIO      *in = NULL, *out = NULL;
	json_t   *keys = NULL;
	char     *text = NULL, *pem, group[64];
	size_t    len, pemlen;
	const char *alg;

	if (auth_read_file(path, KEY_FILE_MAX, &text, &len) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if ((in = BIO_new_mem_buf(text, (int)len)) == NULL || (keys = json_array()) == NULL)
		goto nomem;
	while ((pk = PEM_read_bio_PUBKEY(in, NULL, NULL, NULL)) != NULL) {
		alg = NULL;
		if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA)
			alg = "RS256";
		else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
		    EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) == 1 &&
		    strcmp(group, "prime256v1") == 0)
			alg = "ES256";
		if (alg == NULL) {
			EVP_PKEY_free(pk);
			snprintf(err, errlen, "%s: key %zu is neither RSA nor EC P-256", path,
			    json_array_size(keys) + 1);
			goto fail;
		}
		if ((out = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(out, pk) != 1 ||
		    (pem = bio_text(out, &pemlen)) == NULL) {
			EVP_PKEY_free(pk);
			goto nomem;
		}
		EVP_PKEY_free(pk);
		BIO_free(out);
		out = NULL;
		json_array_append_new(keys, json_pack("{s:s, s:s}", "alg", alg, "pem", pem));
		free(pem);
	}
	/* The loop ends at the end of the file or at a block it cannot read. */
	ERR_clear_error();
	if (json_array_size(keys) == 0) {
		snprintf(err, errlen, "%s: no PUBLIC KEY in the file", path);
		goto fail;
	}
	BIO_free(in);
	free(text);
	return keys;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	BIO_free(in);
	BIO_free(out);
	json_decref(keys);
	free(text);
	return NULL;
}

/*
 * cluster-key FILE: a new cluster key (keyfile.h) for mom-broker
 * --cluster-key; every node of the cluster gets a copy of the same file.
 */
int
keys_cluster_key(const struct auth_options *o)
{
	char err[4200];
	int  rv;

	if ((rv = mom_keyfile_generate(o->args[0], o->force, err, sizeof(err))) == 0)
		return MOM_EXIT_OK;
	if (rv == MOM_EEXIST)
		auth_err("%s: not replacing a cluster key without --force", err);
	else
		auth_err("%s", err);
	return MOM_EXIT_FAIL;
}

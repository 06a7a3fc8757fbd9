/*
 * tls.c: TLS configurations for nng from PEM files (see tls.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "mom.h"
#include "tls.h"

/*
 * OpenSSL checks the PEM files (each mistake gets its own message before
 * nng's mbed TLS sees them), but loading libcrypto costs about a
 * millisecond at every start of a process that links it, and most runs of
 * mom-pub or mom-sub never touch a TLS file.  So the few functions used
 * here are looked up on first use instead (dlopen), and the clients do not
 * link libcrypto.
 */
static struct {
	__typeof__(BIO_new_mem_buf)         *BIO_new_mem_buf;
	__typeof__(BIO_free)                *BIO_free;
	__typeof__(PEM_read_bio_X509)       *PEM_read_bio_X509;
	__typeof__(PEM_read_bio_PrivateKey) *PEM_read_bio_PrivateKey;
	__typeof__(X509_free)               *X509_free;
	__typeof__(X509_check_private_key)  *X509_check_private_key;
	__typeof__(EVP_PKEY_get_base_id)    *EVP_PKEY_get_base_id;
	__typeof__(EVP_PKEY_free)           *EVP_PKEY_free;
	__typeof__(OBJ_nid2sn)              *OBJ_nid2sn;
	__typeof__(ERR_clear_error)         *ERR_clear_error;
	__typeof__(OPENSSL_cleanse)         *OPENSSL_cleanse;
} ossl;
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;
static bool           ossl_ok;

static void
ossl_load(void)
{
	void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);

	if (h == NULL)
		return;
#define SYM(f) (*(void **)&ossl.f = dlsym(h, #f)) != NULL
	ossl_ok = SYM(BIO_new_mem_buf) && SYM(BIO_free) && SYM(PEM_read_bio_X509) &&
	    SYM(PEM_read_bio_PrivateKey) && SYM(X509_free) && SYM(X509_check_private_key) &&
	    SYM(EVP_PKEY_get_base_id) && SYM(EVP_PKEY_free) && SYM(OBJ_nid2sn) &&
	    SYM(ERR_clear_error) && SYM(OPENSSL_cleanse);
#undef SYM
}

/* 0, or MOM_EINVAL with err set when libcrypto cannot be loaded. */
static int
ossl_need(char *err, size_t errlen);

#define BIO_new_mem_buf         ossl.BIO_new_mem_buf
#define BIO_free                ossl.BIO_free
#define PEM_read_bio_X509       ossl.PEM_read_bio_X509
#define PEM_read_bio_PrivateKey ossl.PEM_read_bio_PrivateKey
#define X509_free               ossl.X509_free
#define X509_check_private_key  ossl.X509_check_private_key
#undef EVP_PKEY_base_id
#define EVP_PKEY_base_id        ossl.EVP_PKEY_get_base_id
#define EVP_PKEY_free           ossl.EVP_PKEY_free
#define OBJ_nid2sn              ossl.OBJ_nid2sn
#define ERR_clear_error         ossl.ERR_clear_error
#define OPENSSL_cleanse         ossl.OPENSSL_cleanse

/* A CA bundle is ~200 KiB; anything much larger is not a PEM file. */
#define PEM_MAX (8u << 20)

bool
mom_tls_url(const char *url)
{
	return url != NULL && (strncmp(url, "tls+", 4) == 0 || strncmp(url, "https://", 8) == 0 ||
	    strncmp(url, "wss://", 6) == 0);
}

const char *
mom_tls_default_cafile(void)
{
	const char *f = getenv("SSL_CERT_FILE");

	return f != NULL && *f != '\0' ? f : MOM_TLS_SYSTEM_CA;
}

/* The whole file as a NUL-terminated string (malloc'd), or NULL with err set. */
static char *
read_pem(const char *path, const char *what, char *err, size_t errlen)
{
	FILE  *f;
	char  *buf = NULL, *nb;
	size_t len = 0, cap = 0, n;

	if ((f = fopen(path, "r")) == NULL) {
		mom_errf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			if (cap >= PEM_MAX) {
				mom_errf(err, errlen, "%s %s: too large for a PEM file", what, path);
				goto fail;
			}
			cap = cap ? cap * 2 : 16384;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				mom_errf(err, errlen, "out of memory reading %s", path);
				goto fail;
			}
			buf = nb;
		}
		if ((n = fread(buf + len, 1, cap - len, f)) == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		mom_errf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		goto fail;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

static int
ossl_need(char *err, size_t errlen)
{
	pthread_once(&ossl_once, ossl_load);
	if (ossl_ok)
		return 0;
	mom_errf(err, errlen, "cannot load libcrypto.so.3 (OpenSSL 3) to check the TLS files: %s",
	    dlerror() ? dlerror() : "symbols missing");
	return MOM_EINVAL;
}

/* Counts the PEM certificates in pem; the first one is returned in *first when asked. */
static int
count_certs(const char *pem, X509 **first)
{
	BIO  *b = BIO_new_mem_buf(pem, -1);
	X509 *x;
	int   n = 0;

	if (first != NULL)
		*first = NULL;
	if (b == NULL)
		return 0;
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (n++ == 0 && first != NULL)
			*first = x;
		else
			X509_free(x);
	}
	BIO_free(b);
	ERR_clear_error(); /* the end of the file is reported as an error */
	return n;
}

/* PEM passphrase callback: mom takes no passphrases; note that one was wanted. */
static int
no_pass_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	*(int *)u = 1;
	return -1;
}

/*
 * Checks a certificate and its key the way mbed TLS will need them, so
 * that each mistake gets its own message.  certpem and keypem may be the
 * same text (both in one file).
 */
static int
check_pair(const char *certpem, const char *certpath, const char *keypem, const char *keypath,
    char *err, size_t errlen)
{
	X509     *x = NULL;
	EVP_PKEY *pk = NULL;
	BIO      *b;
	int       asked = 0, rv = MOM_EINVAL, id;

	if (count_certs(certpem, &x) == 0) {
		mom_errf(err, errlen, "certificate %s: no PEM certificate in it", certpath);
		goto done;
	}
	if ((b = BIO_new_mem_buf(keypem, -1)) == NULL) {
		mom_errf(err, errlen, "out of memory");
		goto done;
	}
	pk = PEM_read_bio_PrivateKey(b, NULL, no_pass_cb, &asked);
	BIO_free(b);
	ERR_clear_error();
	if (pk == NULL) {
		if (asked)
			mom_errf(err, errlen, "private key %s is encrypted: mom needs it without a "
			    "passphrase (openssl pkey -in KEY -out PLAIN)", keypath);
		else if (keypath == certpath)
			mom_errf(err, errlen, "certificate %s: no private key in it (give the key file too)",
			    certpath);
		else
			mom_errf(err, errlen, "private key %s: no PEM private key in it", keypath);
		goto done;
	}
	id = EVP_PKEY_base_id(pk);
	if (id != EVP_PKEY_RSA && id != EVP_PKEY_EC) {
		mom_errf(err, errlen, "private key %s: a %s key; nng's TLS (mbed TLS 2.28) takes RSA "
		    "or ECDSA P-256 keys", keypath, OBJ_nid2sn(id));
		goto done;
	}
	if (X509_check_private_key(x, pk) != 1) {
		ERR_clear_error();
		mom_errf(err, errlen, "private key %s does not match the certificate in %s", keypath,
		    certpath);
		goto done;
	}
	rv = 0;
done:
	X509_free(x);
	EVP_PKEY_free(pk);
	return rv;
}

/* Loads cert (and key, or the key from cert's file) into cfg. */
static int
own_cert(nng_tls_config *cfg, const char *cert, const char *key, char *err, size_t errlen)
{
	char *certpem = NULL, *keypem = NULL;
	int   rv = MOM_EINVAL, nrv;

	if (ossl_need(err, errlen) != 0)
		return MOM_EINVAL;
	if ((certpem = read_pem(cert, "certificate", err, errlen)) == NULL)
		goto done;
	if (key != NULL && (keypem = read_pem(key, "private key", err, errlen)) == NULL)
		goto done;
	if (check_pair(certpem, cert, keypem ? keypem : certpem, key ? key : cert, err, errlen) != 0)
		goto done;
	if ((nrv = nng_tls_config_own_cert(cfg, certpem, keypem ? keypem : certpem, NULL)) != 0) {
		mom_errf(err, errlen, "certificate %s: nng's TLS refused it: %s", cert, nng_strerror(nrv));
		goto done;
	}
	rv = 0;
done:
	free(certpem);
	if (keypem != NULL) {
		/* The key is a secret: do not leave it in freed memory. */
		OPENSSL_cleanse(keypem, strlen(keypem));
		free(keypem);
	}
	return rv;
}

static int
ca_chain(nng_tls_config *cfg, const char *cafile, char *err, size_t errlen)
{
	char *pem;
	int   nrv;

	if (ossl_need(err, errlen) != 0)
		return MOM_EINVAL;

	if ((pem = read_pem(cafile, "CA file", err, errlen)) == NULL)
		return MOM_EINVAL;
	if (count_certs(pem, NULL) == 0) {
		mom_errf(err, errlen, "CA file %s: no PEM certificate in it", cafile);
		free(pem);
		return MOM_EINVAL;
	}
	nrv = nng_tls_config_ca_chain(cfg, pem, NULL);
	free(pem);
	if (nrv != 0) {
		mom_errf(err, errlen, "CA file %s: nng's TLS refused it: %s", cafile, nng_strerror(nrv));
		return MOM_EINVAL;
	}
	return 0;
}

int
mom_tls_server_config(nng_tls_config **cfgp, const char *cert, const char *key, const char *cafile,
    char *err, size_t errlen)
{
	nng_tls_config *cfg;
	int             nrv;

	*cfgp = NULL;
	if (cert == NULL) {
		mom_errf(err, errlen, "a TLS server needs a certificate and its key");
		return MOM_EINVAL;
	}
	if ((nrv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER)) != 0) {
		mom_errf(err, errlen, "cannot set up TLS: %s", nng_strerror(nrv));
		return MOM_EINVAL;
	}
	if (own_cert(cfg, cert, key, err, errlen) != 0)
		goto fail;
	if (cafile != NULL) {
		if (ca_chain(cfg, cafile, err, errlen) != 0)
			goto fail;
		nrv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	} else
		nrv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	if (nrv != 0) {
		mom_errf(err, errlen, "cannot set up TLS: %s", nng_strerror(nrv));
		goto fail;
	}
	*cfgp = cfg;
	return 0;
fail:
	nng_tls_config_free(cfg);
	return MOM_EINVAL;
}

int
mom_tls_client_config(nng_tls_config **cfgp, const struct mom_tls_client *o, const char *host,
    char *err, size_t errlen)
{
	nng_tls_config *cfg;
	int             nrv;

	*cfgp = NULL;
	if (o->key != NULL && o->cert == NULL) {
		mom_errf(err, errlen, "--key needs --cert (the client certificate)");
		return MOM_EINVAL;
	}
	if ((nrv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0) {
		mom_errf(err, errlen, "cannot set up TLS: %s", nng_strerror(nrv));
		return MOM_EINVAL;
	}
	if (o->cert != NULL && own_cert(cfg, o->cert, o->key, err, errlen) != 0)
		goto fail;
	if (o->insecure)
		nrv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
	else {
		if (ca_chain(cfg, o->cafile ? o->cafile : mom_tls_default_cafile(), err, errlen) != 0)
			goto fail;
		/*
		 * mbed TLS matches this name against the certificate's DNS
		 * names and CN.  (2.28 ignores IP address entries: a URL with
		 * an address needs the address as a DNS name in the
		 * certificate; see mom_client.)
		 */
		if (host != NULL && *host != '\0' && (nrv = nng_tls_config_server_name(cfg, host)) != 0) {
			mom_errf(err, errlen, "cannot set up TLS for %s: %s", host, nng_strerror(nrv));
			goto fail;
		}
		nrv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	}
	if (nrv != 0) {
		mom_errf(err, errlen, "cannot set up TLS: %s", nng_strerror(nrv));
		goto fail;
	}
	*cfgp = cfg;
	return 0;
fail:
	nng_tls_config_free(cfg);
	return MOM_EINVAL;
}

int
mom_tls_stream_listener(nng_stream_listener **lp, const char *addr, nng_tls_config *cfg, char *err,
    size_t errlen)
{
	nng_stream_listener *l;
	const char          *rest = addr;
	char                 url[512];
	bool                 tls = false;
	int                  rv;

	*lp = NULL;
	if (strncmp(addr, "https://", 8) == 0 || strncmp(addr, "tls+tcp://", 10) == 0) {
		tls = true;
		rest = strstr(addr, "://") + 3;
	} else if (strncmp(addr, "http://", 7) == 0 || strncmp(addr, "tcp://", 6) == 0)
		rest = strstr(addr, "://") + 3;
	else if (strstr(addr, "://") != NULL) {
		mom_errf(err, errlen, "bad address '%s' (HOST:PORT, http://HOST:PORT or https://HOST:PORT)",
		    addr);
		return MOM_EINVAL;
	}
	if (tls && cfg == NULL) {
		mom_errf(err, errlen, "%s needs a certificate: --tls-cert FILE and --tls-key FILE", addr);
		return MOM_EINVAL;
	}
	/* nng has no https:// stream; a trailing '/' is not part of an address. */
	if ((size_t)snprintf(url, sizeof(url), "%s://%.*s", tls ? "tls+tcp" : "tcp",
	    (int)strcspn(rest, "/"), rest) >= sizeof(url)) {
		mom_errf(err, errlen, "address too long: %s", addr);
		return MOM_EINVAL;
	}
	if ((rv = nng_stream_listener_alloc(&l, url)) != 0) {
		mom_errf(err, errlen, "bad address '%s': %s", addr, nng_strerror(rv));
		return MOM_EINVAL;
	}
	/*
	 * nng leaves Nagle on for what a stream listener accepts unless told;
	 * over TLS every record is a write of its own, and the second one
	 * would wait for the peer's delayed ACK (40 ms).
	 */
	if ((rv = nng_stream_listener_set_bool(l, NNG_OPT_TCP_NODELAY, true)) != 0 ||
	    (tls && (rv = nng_stream_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) != 0)) {
		mom_errf(err, errlen, "cannot set up %s: %s", addr, nng_strerror(rv));
		nng_stream_listener_free(l);
		return MOM_EINVAL;
	}
	if ((rv = nng_stream_listener_listen(l)) != 0) {
		mom_errf(err, errlen, "cannot listen on %s: %s", addr, nng_strerror(rv));
		nng_stream_listener_free(l);
		return MOM_EUNAVAIL;
	}
	*lp = l;
	return 0;
}

/*
 * How mom_tls_http_nodelay reaches the socket.  nng 1.5.2 never sets
 * TCP_NODELAY on what its HTTP server accepts (posix_tcplisten.c starts
 * each connection with the listener's nodelay, false, and the server
 * allocates that listener itself, out of reach), and nni_http_write_res
 * hands the header and the body to the stream as two buffers.  Plain TCP
 * sends both with one sendmsg, but the TLS stream encrypts one buffer per
 * record and sends each record on its own: the body's small segment then
 * waits (Nagle) for the ACK of the headers, which the client delays by
 * 40 ms.  Responses over 16 KiB are several records, so writing each
 * response in one piece would not be enough; the socket option is the
 * fix.  The TLS stream passes NNG_OPT_TCP_NODELAY down to TCP, but the
 * only handle on it is the nng_http_conn a handler is given, whose first
 * member in nng 1.5 (http_conn.c: "nng_stream *sock;") is that stream.
 * That layout is private, so this is done only on the 1.5 releases it was
 * read from and measured on; elsewhere it is skipped, never guessed.
 */
bool
mom_tls_http_nodelay_ok(void)
{
	return strncmp(nng_version(), "1.5.", 4) == 0;
}

int
mom_tls_http_nodelay(nng_aio *aio)
{
	nng_http_conn *conn;
	nng_stream    *s;

	if (!mom_tls_http_nodelay_ok())
		return NNG_ENOTSUP;
	if ((conn = nng_aio_get_input(aio, 2)) == NULL)
		return NNG_EINVAL;
	/* The handler runs before the server can free the connection. */
	s = *(nng_stream **)(void *)conn;
	return s != NULL ? nng_stream_set_bool(s, NNG_OPT_TCP_NODELAY, true) : NNG_EINVAL;
}

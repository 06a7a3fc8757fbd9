/*
 * tls_test.c: TLS configurations from PEM files (libmom/tls.c), with
 * certificates and keys made here with OpenSSL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "mom.h"
#include "tls.h"

static char dir[64];
static char err[512];

static char *
path(const char *name)
{
	static char p[4][160];
	static int  i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static EVP_PKEY *
keygen(int type)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(type, NULL);
	EVP_PKEY     *k = NULL;

	cr_assert_not_null(c);
	cr_assert_eq(EVP_PKEY_keygen_init(c), 1);
	if (type == EVP_PKEY_EC)
		cr_assert_eq(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(c, NID_X9_62_prime256v1), 1);
	cr_assert_eq(EVP_PKEY_keygen(c, &k), 1);
	EVP_PKEY_CTX_free(c);
	return k;
}

/* A self-signed certificate for k, named CN=localhost. */
static X509 *
selfsign(EVP_PKEY *k)
{
	X509 *x = X509_new();

	cr_assert_not_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	cr_assert_gt(X509_sign(x, k, EVP_sha256()), 0);
	return x;
}

static void
write_key(const char *name, EVP_PKEY *k, const char *pass)
{
	FILE *f = fopen(path(name), "w");

	cr_assert_not_null(f);
	cr_assert_eq(PEM_write_PrivateKey(f, k, pass ? EVP_aes_256_cbc() : NULL,
	    (unsigned char *)(uintptr_t)pass, pass ? (int)strlen(pass) : 0, NULL, NULL), 1);
	fclose(f);
}

static void
write_cert(const char *name, X509 *x, EVP_PKEY *k_too)
{
	FILE *f = fopen(path(name), "w");

	cr_assert_not_null(f);
	cr_assert_eq(PEM_write_X509(f, x), 1);
	if (k_too != NULL)
		cr_assert_eq(PEM_write_PrivateKey(f, k_too, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static void
write_text(const char *name, const char *text)
{
	FILE *f = fopen(path(name), "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void
setup(void)
{
	EVP_PKEY *k = keygen(EVP_PKEY_EC), *other = keygen(EVP_PKEY_EC), *ed = keygen(EVP_PKEY_ED25519);
	X509     *x = selfsign(k);

	snprintf(dir, sizeof(dir), "/tmp/mom-tls-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_key("server.key", k, NULL);
	write_key("other.key", other, NULL);
	write_key("ed.key", ed, NULL);
	write_key("enc.key", k, "secret");
	write_cert("server.crt", x, NULL);
	write_cert("both.pem", x, k);
	write_text("empty.pem", "not a PEM file\n");
	X509_free(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	EVP_PKEY_free(ed);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
}

TestSuite(tls, .init = setup, .fini = teardown);

Test(tls, urls_that_carry_tls)
{
	cr_expect(mom_tls_url("tls+tcp://h:1"));
	cr_expect(mom_tls_url("tls+tcp6://[::1]:1"));
	cr_expect(mom_tls_url("https://h"));
	cr_expect(mom_tls_url("wss://h/x"));
	cr_expect(!mom_tls_url("tcp://h:1"));
	cr_expect(!mom_tls_url("ipc:///tmp/x"));
	cr_expect(!mom_tls_url("http://h"));
	cr_expect(!mom_tls_url(NULL));
}

/* Builds a server configuration; returns the status, err holds the message. */
static int
server(const char *cert, const char *key, const char *ca)
{
	nng_tls_config *cfg = NULL;
	int             rv;

	err[0] = '\0';
	rv = mom_tls_server_config(&cfg, cert ? path(cert) : NULL, key ? path(key) : NULL,
	    ca ? path(ca) : NULL, err, sizeof(err));
	cr_assert_eq(rv == 0, cfg != NULL);
	if (cfg != NULL)
		nng_tls_config_free(cfg);
	return rv;
}

Test(tls, server_certificate_and_key)
{
	cr_expect_eq(server("server.crt", "server.key", NULL), 0, "%s", err);
	cr_expect_eq(server("both.pem", NULL, NULL), 0, "%s", err);
	cr_expect_eq(server("server.crt", "server.key", "server.crt"), 0, "%s", err);
}

Test(tls, server_file_problems_are_named)
{
	cr_expect_eq(server(NULL, NULL, NULL), MOM_EINVAL);
	cr_expect_eq(server("missing.crt", "server.key", NULL), MOM_EINVAL);
	cr_expect(strstr(err, "cannot read certificate") && strstr(err, "missing.crt"), "%s", err);
	cr_expect_eq(server("server.crt", NULL, NULL), MOM_EINVAL);
	cr_expect(strstr(err, "no private key"), "%s", err);
	cr_expect_eq(server("server.crt", "other.key", NULL), MOM_EINVAL);
	cr_expect(strstr(err, "does not match"), "%s", err);
	cr_expect_eq(server("server.crt", "enc.key", NULL), MOM_EINVAL);
	cr_expect(strstr(err, "encrypted"), "%s", err);
	cr_expect_eq(server("server.crt", "ed.key", NULL), MOM_EINVAL);
	cr_expect(strstr(err, "ED25519") && strstr(err, "P-256"), "%s", err);
	cr_expect_eq(server("server.key", "server.key", NULL), MOM_EINVAL);
	cr_expect(strstr(err, "no PEM certificate"), "%s", err);
	cr_expect_eq(server("server.crt", "empty.pem", NULL), MOM_EINVAL);
	cr_expect(strstr(err, "no PEM private key"), "%s", err);
	cr_expect_eq(server("server.crt", "server.key", "empty.pem"), MOM_EINVAL);
	cr_expect(strstr(err, "CA file") && strstr(err, "no PEM certificate"), "%s", err);
}

static int
client(const char *ca, const char *cert, const char *key, bool insecure)
{
	struct mom_tls_client o = {
		.cafile = ca ? path(ca) : NULL,
		.cert = cert ? path(cert) : NULL,
		.key = key ? path(key) : NULL,
		.insecure = insecure,
	};
	nng_tls_config *cfg = NULL;
	int             rv;

	err[0] = '\0';
	rv = mom_tls_client_config(&cfg, &o, "localhost", err, sizeof(err));
	cr_assert_eq(rv == 0, cfg != NULL);
	if (cfg != NULL)
		nng_tls_config_free(cfg);
	return rv;
}

Test(tls, client_configurations)
{
	cr_expect_eq(client("server.crt", NULL, NULL, false), 0, "%s", err);
	cr_expect_eq(client(NULL, NULL, NULL, true), 0, "%s", err);
	cr_expect_eq(client("server.crt", "server.crt", "server.key", false), 0, "%s", err);
	cr_expect_eq(client("server.crt", "both.pem", NULL, false), 0, "%s", err);
	cr_expect_eq(client("missing.crt", NULL, NULL, false), MOM_EINVAL);
	cr_expect(strstr(err, "cannot read CA file"), "%s", err);
	cr_expect_eq(client("server.crt", NULL, "server.key", false), MOM_EINVAL);
	cr_expect(strstr(err, "--key needs --cert"), "%s", err);
	cr_expect_eq(client("server.crt", "server.crt", "other.key", false), MOM_EINVAL);
	cr_expect(strstr(err, "does not match"), "%s", err);
}

Test(tls, client_default_cafile_follows_ssl_cert_file)
{
	unsetenv("SSL_CERT_FILE");
	cr_expect_str_eq(mom_tls_default_cafile(), MOM_TLS_SYSTEM_CA);
	setenv("SSL_CERT_FILE", path("server.crt"), 1);
	cr_expect_str_eq(mom_tls_default_cafile(), path("server.crt"));
	cr_expect_eq(client(NULL, NULL, NULL, false), 0, "%s", err);
	setenv("SSL_CERT_FILE", path("empty.pem"), 1);
	cr_expect_eq(client(NULL, NULL, NULL, false), MOM_EINVAL);
	unsetenv("SSL_CERT_FILE");
}

Test(tls, stream_listener_addresses)
{
	nng_stream_listener *l;
	nng_tls_config      *cfg;

	cr_expect_eq(mom_tls_stream_listener(&l, "ftp://127.0.0.1:0", NULL, err, sizeof(err)), MOM_EINVAL);
	cr_expect_null(l);
	cr_expect_eq(mom_tls_stream_listener(&l, "https://127.0.0.1:0", NULL, err, sizeof(err)),
	    MOM_EINVAL);
	cr_expect(strstr(err, "--tls-cert"), "%s", err);
	cr_assert_eq(mom_tls_stream_listener(&l, "127.0.0.1:0", NULL, err, sizeof(err)), 0, "%s", err);
	nng_stream_listener_free(l);
	cr_assert_eq(mom_tls_stream_listener(&l, "http://127.0.0.1:0/", NULL, err, sizeof(err)), 0, "%s",
	    err);
	nng_stream_listener_free(l);
	cr_assert_eq(mom_tls_server_config(&cfg, path("both.pem"), NULL, NULL, err, sizeof(err)), 0);
	cr_assert_eq(mom_tls_stream_listener(&l, "https://127.0.0.1:0", cfg, err, sizeof(err)), 0, "%s",
	    err);
	nng_stream_listener_free(l);
	nng_tls_config_free(cfg);
}

Test(tls, http_nodelay_is_known_for_nng_1_5)
{
	cr_expect_eq(mom_tls_http_nodelay_ok(), strncmp(nng_version(), "1.5.", 4) == 0);
}

/*
 * auth.h: mom-auth's verbs and the modules they share.
 *
 * Files in the directory (-d, $MOM_AUTH_DIR, ./mom-auth):
 *	mom-auth.key	private signing key, PEM, mode 0600
 *	mom-auth.pub	public key(s), PEM SubjectPublicKeyInfo, mode 0644
 *	users.json	users: argon2id hash and permissions, mode 0600
 */
#ifndef AUTH_H
#define AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "options.h"
#include "token.h"

#define AUTH_KEY_FILE   "mom-auth.key"
#define AUTH_PUB_FILE   "mom-auth.pub"
#define AUTH_USERS_FILE "users.json"
#define AUTH_USER_MAX   64   /* bytes of a user name */
#define AUTH_PASS_MAX   1024 /* bytes of a password */

/* Verbs: each returns the exit status (SPEC.md). */
int keys_keygen(const struct auth_options *);
int users_add(const struct auth_options *);
int users_delete(const struct auth_options *);
int users_list(const struct auth_options *);
int issue_token(const struct auth_options *);
int serve_run(const struct auth_options *);
int login_run(const struct auth_options *);
int verify_run(const struct auth_options *);
int keys_cluster_key(const struct auth_options *);

/* "mom-auth: ..." on stderr. */
void auth_err(const char *, ...) __attribute__((format(printf, 1, 2)));

/* dir/name into buf; -1 (reported) when it does not fit. */
int auth_path(char *buf, size_t len, const char *dir, const char *name);

/*
 * Reads a whole small file (at most max bytes) into a malloc'd,
 * NUL-terminated buffer.  0, or -1 with errno set (EFBIG when larger).
 */
int auth_read_file(const char *path, size_t max, char **out, size_t *outlen);

/*
 * Creates path with mode (O_EXCL: never an existing file), writes the
 * bytes, fsyncs and closes.  A crash leaves either no file or a whole
 * one only together with rename: callers write a temporary name and
 * rename it.  0, or -1 with errno set.
 */
int auth_write_new(const char *path, int mode, const void *buf, size_t len);
/* fsync of a directory, so that a rename in it is durable. */
int auth_fsync_dir(const char *dir);
/* Creates dir (and missing parents) with mode 0700. 0 or -1 reported. */
int auth_mkdir(const char *dir);

/* keys.c: the private key's PEM text (malloc'd); 0 or an exit status. */
int keys_load_private(const char *dir, char **pem, size_t *len);
/*
 * The public keys of a PEM file as [{"alg":"ES256","pem":"..."}...]
 * (new reference); NULL with the reason in err.
 */
json_t *keys_public_json(const char *path, char *err, size_t errlen);

/* password.c */
/*
 * Reads a password: from file (first line; "-" is stdin) when given,
 * else from stdin when it is not a terminal (first line), else from a
 * prompt on /dev/tty with echo off (twice when confirm is set).  The
 * newline is stripped.  0, or an exit status after reporting.
 */
int  pw_read(const char *file, bool confirm, char *buf, size_t len);
/* The argon2id encoded hash of pw (malloc'd); NULL after reporting. */
char *pw_hash(const char *pw, size_t len);
/* True when pw matches the encoded argon2id hash. */
bool pw_verify(const char *hash, const char *pw, size_t len);
/* Overwrites a secret so it does not linger in memory. */
void pw_wipe(void *, size_t);

/* users.c: the users file as JSON {"users":{"NAME":{...}}}. */
/* True for a valid user name: a mom name (names.h) of at most 64 bytes. */
bool users_name_ok(const char *);
/*
 * Loads DIR/users.json (a missing file is an empty set) and checks every
 * entry.  New reference in *root; 0 or MOM_EINVAL with the reason in err.
 */
int  users_load(const char *dir, json_t **root, char *err, size_t errlen);
/* The user object in root, or NULL (borrowed). */
json_t *users_get(json_t *root, const char *name);

/* issue.c */
/*
 * Claims for a user: the user's own permissions, or (when want is not
 * NULL and asks for anything) exactly the requested ones, each of which
 * must be covered by one of the user's.  Returns 0, or MOM_EPERM with the
 * reason in err.  Free *c with mom_claims_free.
 */
struct issue_want {
	struct auth_list pub, sub;
	bool             admin;
};
int issue_claims(json_t *user, const char *name, const struct issue_want *want,
    uint64_t ttl_ms, struct mom_claims *c, char *err, size_t errlen);
/* "2026-11-23T10:00:00Z" */
void issue_time(int64_t secs, char *buf, size_t len);

#endif

/*
 * options.h: mom-auth's options, verb and operands, from its config file,
 * $MOM_AUTH_DIR and the command line.
 */
#ifndef AUTH_OPTIONS_H
#define AUTH_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "opt.h"

enum auth_verb {
	V_KEYGEN = 1 << 0,
	V_USERADD = 1 << 1,
	V_USERDEL = 1 << 2,
	V_USERLIST = 1 << 3,
	V_TOKEN = 1 << 4,
	V_SERVE = 1 << 5,
	V_LOGIN = 1 << 6,
	V_VERIFY = 1 << 7,
	V_CLUSTERKEY = 1 << 8,
};

/* Pattern lists of --pub / --sub (the array owned, its strings borrowed). */
struct auth_list {
	const char **v;
	size_t       n;
};

/* The strings point into argv or into cfgv. */
struct auth_options {
	const char  *dir;
	int          verb;
	char       **args;  /* operands after the verb words */
	int          nargs;
	/* keygen */
	int          rsa;
	int          force; /* also user add, cluster-key: replace */
	/* user add, token */
	struct auth_list pub, sub;
	int          admin;
	int          json;
	const char  *password_file;
	const char  *user;
	uint64_t     ttl_ms;
	const char  *issuer;   /* NULL: token.h default */
	const char  *audience;
	/* serve */
	const char  *listen;
	uint64_t     token_ttl_ms;
	const char  *tls_cert, *tls_key;
	int          insecure_listen;
	int          max_failures;
	uint64_t     lockout_ms;
	/* login */
	const char  *server;
	const char  *cafile;
	/* verify */
	const char  *key;
	const char  *token_file;
	enum mom_action action;
	int          usage;  /* after an error: the usage text follows the message */
	char       **cfgv;   /* the config file's options (owned) */
};

/*
 * Fills *o: defaults, then $XDG_CONFIG_HOME/mom/mom-auth (defaults for
 * every verb; -h and --version there are ignored), then $MOM_AUTH_DIR,
 * then argv, whose options must belong to the verb.  Prints nothing.
 * Returns 0 (then see o->action), MOM_EXIT_USAGE with one line in err, or
 * MOM_EXIT_FAIL (out of memory).  argv is permuted (getopt_long) and must
 * outlive *o; call auth_options_fini afterwards, whatever this returned.
 */
int  auth_options_parse(struct auth_options *o, int argc, char **argv, char *err, size_t errlen);
void auth_options_fini(struct auth_options *o);

#endif

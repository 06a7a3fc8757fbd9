/*
 * mom-auth: keys, users and tokens for mom; an HTTP token issuer.
 */
#include <stdarg.h>
#include <stdio.h>

#include "auth.h"
#include "mom.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-auth [-d DIR] keygen [--rsa] [--force]\n"
	    "       mom-auth [-d DIR] user add NAME [--pub PATTERN]... [--sub PATTERN]... [--admin]\n"
	    "                         [--force] [--password-file FILE]\n"
	    "       mom-auth [-d DIR] user delete NAME\n"
	    "       mom-auth [-d DIR] user list [--json]\n"
	    "       mom-auth [-d DIR] token -u NAME [--ttl D] [--pub PATTERN]... [--sub PATTERN]...\n"
	    "                         [--admin] [--issuer S] [--audience S]\n"
	    "       mom-auth [-d DIR] serve [--listen ADDR] [--token-ttl D] [--tls-cert FILE --tls-key FILE]\n"
	    "                         [--insecure-listen] [--max-failures N] [--lockout D]\n"
	    "                         [--issuer S] [--audience S]\n"
	    "       mom-auth login [-s URL] -u USER [--password-file FILE] [--cafile FILE]\n"
	    "       mom-auth [-d DIR] verify [--key FILE] [--token-file FILE] [--issuer S]\n"
	    "                         [--audience S] [TOKEN]\n"
	    "       mom-auth cluster-key FILE [--force]\n"
	    "       mom-auth -h | --version\n");
}

/* -h: the usage, then every option, one line each (the man page says more). */
static void
help(void)
{
	usage(stdout);
	printf("\nOptions (each for the verbs named):\n"
	    "  -d, --dir DIR              the directory of the keys and users ($MOM_AUTH_DIR)\n"
	    "  --rsa                      keygen: an RSA key (RS256) instead of P-256 (ES256)\n"
	    "  --force                    keygen, user add, cluster-key: replace what exists\n"
	    "  --pub PATTERN              user add, token: names it may publish to (repeatable)\n"
	    "  --sub PATTERN              user add, token: names it may consume from (repeatable)\n"
	    "  --admin                    user add, token: an administrator\n"
	    "  --password-file FILE       user add, login: the password is FILE's first line\n"
	    "  --json                     user list: print JSON\n"
	    "  -u, --user NAME            token, login: the user\n"
	    "  --ttl D                    token: its lifetime (default 1h)\n"
	    "  --issuer S                 token, serve, verify: the issuer (default mom-auth)\n"
	    "  --audience S               token, serve, verify: the audience (default mom)\n"
	    "  --listen ADDR              serve: the address to listen on\n"
	    "  --token-ttl D              serve: the lifetime of the tokens issued (default 1h)\n"
	    "  --tls-cert FILE            serve: HTTPS with this certificate\n"
	    "  --tls-key FILE             serve: the private key of --tls-cert\n"
	    "  --insecure-listen          serve: plain HTTP on an address other than loopback\n"
	    "  --max-failures N           serve: failed logins that lock a name or address (5)\n"
	    "  --lockout D                serve: how long failures count and a lock lasts (1m)\n"
	    "  -s, --server URL           login: the issuer\n"
	    "  --cafile FILE              login: check an https:// issuer against these CAs\n"
	    "  --key FILE                 verify: the PEM public key(s) to verify with\n"
	    "  --token-file FILE          verify: read the token from FILE\n"
	    "  -h, --help                 print this help and exit 0\n"
	    "  --version                  print the version and exit 0\n");
}

void
auth_err(const char *fmt, ...)
{
	va_list ap;

	fputs("mom-auth: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The verb's code; returns the exit status. */
static int
run(const struct auth_options *o)
{
	switch (o->verb) {
	case V_KEYGEN:
		return keys_keygen(o);
	case V_USERADD:
		return users_add(o);
	case V_USERDEL:
		return users_delete(o);
	case V_USERLIST:
		return users_list(o);
	case V_TOKEN:
		return issue_token(o);
	case V_SERVE:
		return serve_run(o);
	case V_LOGIN:
		return login_run(o);
	case V_CLUSTERKEY:
		return keys_cluster_key(o);
	default:
		return verify_run(o);
	}
}

int
main(int argc, char **argv)
{
	struct auth_options o;
	char                err[512];
	int                 rv;

	if ((rv = auth_options_parse(&o, argc, argv, err, sizeof(err))) != 0) {
		auth_err("%s", err);
		if (o.usage)
			usage(stderr);
	} else if (o.action == MOM_ACTION_HELP)
		help();
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-auth %s\n", MOM_VERSION);
	else
		rv = run(&o);
	auth_options_fini(&o);
	return mom_stdout_finish("mom-auth", rv, 0);
}

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
	    "       mom-auth -h | --version\n");
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
		usage(stdout);
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-auth %s\n", MOM_VERSION);
	else
		rv = run(&o);
	auth_options_fini(&o);
	return mom_stdout_finish("mom-auth", rv, 0);
}

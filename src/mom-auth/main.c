/*
 * mom-auth: keys, users and tokens for mom; an HTTP token issuer.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "duration.h"
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

enum {
	OPT_ADMIN = 256, OPT_AUDIENCE, OPT_CAFILE, OPT_FORCE, OPT_INSECURE_LISTEN, OPT_ISSUER,
	OPT_JSON, OPT_KEY, OPT_LISTEN, OPT_LOCKOUT, OPT_MAX_FAILURES, OPT_PASSWORD_FILE, OPT_PUB,
	OPT_RSA, OPT_SUB, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TOKEN_FILE, OPT_TOKEN_TTL, OPT_TTL,
	OPT_VERSION,
};

static const struct option longopts[] = {
	{ "admin", no_argument, NULL, OPT_ADMIN },
	{ "audience", required_argument, NULL, OPT_AUDIENCE },
	{ "cafile", required_argument, NULL, OPT_CAFILE },
	{ "dir", required_argument, NULL, 'd' },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "help", no_argument, NULL, 'h' },
	{ "insecure-listen", no_argument, NULL, OPT_INSECURE_LISTEN },
	{ "issuer", required_argument, NULL, OPT_ISSUER },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "lockout", required_argument, NULL, OPT_LOCKOUT },
	{ "max-failures", required_argument, NULL, OPT_MAX_FAILURES },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ "pub", required_argument, NULL, OPT_PUB },
	{ "rsa", no_argument, NULL, OPT_RSA },
	{ "server", required_argument, NULL, 's' },
	{ "sub", required_argument, NULL, OPT_SUB },
	{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
	{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "token-ttl", required_argument, NULL, OPT_TOKEN_TTL },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "user", required_argument, NULL, 'u' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Which verbs each option belongs to (-d, -h and --version: all). */
static const struct {
	int         val;
	int         verbs;
	const char *name;
} optverbs[] = {
	{ OPT_ADMIN, V_USERADD | V_TOKEN, "--admin" },
	{ OPT_AUDIENCE, V_TOKEN | V_SERVE | V_VERIFY, "--audience" },
	{ OPT_CAFILE, V_LOGIN, "--cafile" },
	{ OPT_FORCE, V_KEYGEN | V_USERADD, "--force" },
	{ OPT_INSECURE_LISTEN, V_SERVE, "--insecure-listen" },
	{ OPT_ISSUER, V_TOKEN | V_SERVE | V_VERIFY, "--issuer" },
	{ OPT_JSON, V_USERLIST, "--json" },
	{ OPT_KEY, V_VERIFY, "--key" },
	{ OPT_LISTEN, V_SERVE, "--listen" },
	{ OPT_LOCKOUT, V_SERVE, "--lockout" },
	{ OPT_MAX_FAILURES, V_SERVE, "--max-failures" },
	{ OPT_PASSWORD_FILE, V_USERADD | V_LOGIN, "--password-file" },
	{ OPT_PUB, V_USERADD | V_TOKEN, "--pub" },
	{ OPT_RSA, V_KEYGEN, "--rsa" },
	{ 's', V_LOGIN, "-s/--server" },
	{ OPT_SUB, V_USERADD | V_TOKEN, "--sub" },
	{ OPT_TLS_CERT, V_SERVE, "--tls-cert" },
	{ OPT_TLS_KEY, V_SERVE, "--tls-key" },
	{ OPT_TOKEN_FILE, V_VERIFY, "--token-file" },
	{ OPT_TOKEN_TTL, V_SERVE, "--token-ttl" },
	{ OPT_TTL, V_TOKEN, "--ttl" },
	{ 'u', V_TOKEN | V_LOGIN, "-u/--user" },
};

static const struct {
	const char *word, *word2;
	int         verb;
	int         minargs, maxargs;
	const char *name;
} verbs[] = {
	{ "keygen", NULL, V_KEYGEN, 0, 0, "keygen" },
	{ "user", "add", V_USERADD, 1, 1, "user add" },
	{ "user", "delete", V_USERDEL, 1, 1, "user delete" },
	{ "user", "list", V_USERLIST, 0, 0, "user list" },
	{ "token", NULL, V_TOKEN, 0, 0, "token" },
	{ "serve", NULL, V_SERVE, 0, 0, "serve" },
	{ "login", NULL, V_LOGIN, 0, 0, "login" },
	{ "verify", NULL, V_VERIFY, 0, 1, "verify" },
};

static int
list_add(struct auth_list *l, const char *s)
{
	const char **nv;

	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL) {
		auth_err("out of memory");
		return -1;
	}
	l->v = nv;
	l->v[l->n++] = s;
	return 0;
}

static int
duration_opt(const char *name, const char *arg, uint64_t *out)
{
	if (mom_duration_parse(arg, out) != 0) {
		auth_err("bad %s '%s' (a duration like 30s, 10m, 1h, 7d)", name, arg);
		return -1;
	}
	if (*out < 1000) {
		auth_err("%s must be at least 1s", name);
		return -1;
	}
	return 0;
}

/*
 * One getopt_long pass.  The config file's pass (seen == NULL) sets
 * defaults for every verb and ignores -h and --version; the command
 * line's pass records each option in seen[] so that main can refuse one
 * that the verb does not take.  Returns 0, 1 after -h/--version (exit 0)
 * or -1 after an error was reported (exit 64).
 */
static int
parse(int argc, char **argv, struct auth_opts *o, int *seen, int *nseen)
{
	char *end;
	long  n;
	int   ch;

	optind = 0; /* GNU: reinitialise, the config pass ran first */
	opterr = 0; /* our own messages: "mom-auth: ...", whatever argv[0] is */
	while ((ch = getopt_long(argc, argv, ":d:hs:u:", longopts, NULL)) != -1) {
		if (seen != NULL && ch != '?' && ch != ':')
			seen[(*nseen)++] = ch;
		switch (ch) {
		case ':':
			auth_err("option %s needs a value", argv[optind - 1]);
			return -1;
		case '?':
			if (optopt != 0)
				auth_err("unknown option -%c", optopt);
			else
				auth_err("unknown option %s", argv[optind - 1]);
			return -1;
		case 'd':
			o->dir = optarg;
			break;
		case 'h':
			if (seen == NULL)
				break;
			usage(stdout);
			return 1;
		case OPT_VERSION:
			if (seen == NULL)
				break;
			printf("mom-auth %s\n", MOM_VERSION);
			return 1;
		case 's':
			o->server = optarg;
			break;
		case 'u':
			o->user = optarg;
			break;
		case OPT_ADMIN:
			o->admin = 1;
			break;
		case OPT_AUDIENCE:
			o->audience = optarg;
			break;
		case OPT_CAFILE:
			o->cafile = optarg;
			break;
		case OPT_FORCE:
			o->force = 1;
			break;
		case OPT_INSECURE_LISTEN:
			o->insecure_listen = 1;
			break;
		case OPT_ISSUER:
			o->issuer = optarg;
			break;
		case OPT_JSON:
			o->json = 1;
			break;
		case OPT_KEY:
			o->key = optarg;
			break;
		case OPT_LISTEN:
			o->listen = optarg;
			break;
		case OPT_LOCKOUT:
			if (duration_opt("--lockout", optarg, &o->lockout_ms) != 0)
				return -1;
			break;
		case OPT_MAX_FAILURES:
			n = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || n < 1 || n > 1000000) {
				auth_err("bad --max-failures '%s' (1 or more)", optarg);
				return -1;
			}
			o->max_failures = (int)n;
			break;
		case OPT_PASSWORD_FILE:
			o->password_file = optarg;
			break;
		case OPT_PUB:
			if (list_add(&o->pub, optarg) != 0)
				return -1;
			break;
		case OPT_RSA:
			o->rsa = 1;
			break;
		case OPT_SUB:
			if (list_add(&o->sub, optarg) != 0)
				return -1;
			break;
		case OPT_TLS_CERT:
			o->tls_cert = optarg;
			break;
		case OPT_TLS_KEY:
			o->tls_key = optarg;
			break;
		case OPT_TOKEN_FILE:
			o->token_file = optarg;
			break;
		case OPT_TOKEN_TTL:
			if (duration_opt("--token-ttl", optarg, &o->token_ttl_ms) != 0)
				return -1;
			break;
		case OPT_TTL:
			if (duration_opt("--ttl", optarg, &o->ttl_ms) != 0)
				return -1;
			break;
		}
	}
	return 0;
}

/*
 * Everything before the verb runs: options from the config file, the
 * environment and argv, the verb and its operands.  Returns -1 when the
 * verb is to run, else the exit status.
 */
static int
setup(int argc, char **argv, struct auth_opts *o, int *seen)
{
	char      **cargv = argv;
	const char *env;
	int         nseen = 0, cargc = 1, i, j;
	size_t      v;
	char        err[512];

	/* Defaults from the config file, then the environment, then argv. */
	if (mom_config_argv("mom-auth", &cargc, &cargv, err, sizeof(err)) != 0) {
		auth_err("%s", err);
		return MOM_EXIT_USAGE;
	}
	if (cargc > 1 && parse(cargc, cargv, o, NULL, NULL) != 0)
		return MOM_EXIT_USAGE;
	if ((env = getenv("MOM_AUTH_DIR")) != NULL && *env != '\0')
		o->dir = env;
	switch (parse(argc, argv, o, seen, &nseen)) {
	case 1:
		return MOM_EXIT_OK;
	case -1:
		usage(stderr);
		return MOM_EXIT_USAGE;
	}

	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs == 0) {
		auth_err("no verb given");
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		if (strcmp(o->args[0], verbs[v].word) != 0)
			continue;
		if (verbs[v].word2 == NULL)
			break;
		if (o->nargs > 1 && strcmp(o->args[1], verbs[v].word2) == 0)
			break;
	}
	if (v == sizeof(verbs) / sizeof(verbs[0])) {
		if (strcmp(o->args[0], "user") == 0)
			auth_err("user: expected add, delete or list");
		else
			auth_err("unknown verb '%s'", o->args[0]);
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	o->verb = verbs[v].verb;
	o->args += verbs[v].word2 != NULL ? 2 : 1;
	o->nargs -= verbs[v].word2 != NULL ? 2 : 1;
	if (o->nargs < verbs[v].minargs || o->nargs > verbs[v].maxargs) {
		auth_err("%s: %s", verbs[v].name,
		    o->nargs < verbs[v].minargs ? "missing NAME" : "too many arguments");
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	for (i = 0; i < nseen; i++) {
		for (j = 0; j < (int)(sizeof(optverbs) / sizeof(optverbs[0])); j++) {
			if (optverbs[j].val == seen[i] && !(optverbs[j].verbs & o->verb)) {
				auth_err("%s does not apply to %s", optverbs[j].name,
				    verbs[v].name);
				return MOM_EXIT_USAGE;
			}
		}
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct auth_opts o;
	int             *seen, rv;

	memset(&o, 0, sizeof(o));
	o.dir = "mom-auth";
	o.ttl_ms = o.token_ttl_ms = 3600 * 1000;
	o.listen = "127.0.0.1:7423";
	o.server = "http://127.0.0.1:7423";
	o.max_failures = 5;
	o.lockout_ms = 60 * 1000;

	if ((seen = calloc((size_t)argc + 1, sizeof(*seen))) == NULL) {
		auth_err("out of memory");
		return MOM_EXIT_FAIL;
	}
	rv = setup(argc, argv, &o, seen);
	free(seen);
	if (rv >= 0)
		goto out;

	switch (o.verb) {
	case V_KEYGEN:
		rv = keys_keygen(&o);
		break;
	case V_USERADD:
		rv = users_add(&o);
		break;
	case V_USERDEL:
		rv = users_delete(&o);
		break;
	case V_USERLIST:
		rv = users_list(&o);
		break;
	case V_TOKEN:
		rv = issue_token(&o);
		break;
	case V_SERVE:
		rv = serve_run(&o);
		break;
	case V_LOGIN:
		rv = login_run(&o);
		break;
	default:
		rv = verify_run(&o);
		break;
	}
out:
	free(o.pub.v);
	free(o.sub.v);
	return rv;
}

/*
 * options.c: mom-auth's config file, $MOM_AUTH_DIR and command line into
 * struct auth_options (see options.h and opt.h): options, verb, operands.
 */
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "mom.h"
#include "options.h"

enum {
	OPT_ADMIN = 256, OPT_AUDIENCE, OPT_CAFILE, OPT_FORCE, OPT_INSECURE_LISTEN, OPT_ISSUER,
	OPT_JSON, OPT_KEY, OPT_LISTEN, OPT_LOCKOUT, OPT_MAX_FAILURES, OPT_PASSWORD_FILE, OPT_PUB,
	OPT_RSA, OPT_SUB, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TOKEN_FILE, OPT_TOKEN_TTL, OPT_TTL,
	OPT_VERSION,
};

static const char optstring[] = ":d:hs:u:";

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
	{ OPT_FORCE, V_KEYGEN | V_USERADD | V_CLUSTERKEY, "--force" },
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
	const char *operand; /* what a missing one is called */
} verbs[] = {
	{ "keygen", NULL, V_KEYGEN, 0, 0, "keygen", NULL },
	{ "user", "add", V_USERADD, 1, 1, "user add", "NAME" },
	{ "user", "delete", V_USERDEL, 1, 1, "user delete", "NAME" },
	{ "user", "list", V_USERLIST, 0, 0, "user list", NULL },
	{ "token", NULL, V_TOKEN, 0, 0, "token", NULL },
	{ "serve", NULL, V_SERVE, 0, 0, "serve", NULL },
	{ "login", NULL, V_LOGIN, 0, 0, "login", NULL },
	{ "verify", NULL, V_VERIFY, 0, 1, "verify", NULL },
	{ "cluster-key", NULL, V_CLUSTERKEY, 1, 1, "cluster-key", "FILE" },
};

static int
list_add(struct auth_list *l, const char *s, char *err, size_t errlen)
{
	const char **nv;

	if ((nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL) {
		mom_errf(err, errlen, "out of memory");
		return -1;
	}
	l->v = nv;
	l->v[l->n++] = s;
	return 0;
}

static int
duration_opt(const char *name, const char *arg, uint64_t *out, char *err, size_t errlen)
{
	if (mom_duration_parse(arg, out) != 0) {
		mom_errf(err, errlen, "bad %s '%s' (a duration like 30s, 10m, 1h, 7d)", name, arg);
		return -1;
	}
	if (*out < 1000) {
		mom_errf(err, errlen, "%s must be at least 1s", name);
		return -1;
	}
	return 0;
}

static int
max_failures_opt(const char *arg, int *out, char *err, size_t errlen)
{
	char *end;
	long  n;

	n = strtol(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || n < 1 || n > 1000000) {
		mom_errf(err, errlen, "bad --max-failures '%s' (1 or more)", arg);
		return -1;
	}
	*out = (int)n;
	return 0;
}

/* An option that takes a value with nothing to check: where it goes. */
static const char **
string_opt(struct auth_options *o, int ch)
{
	switch (ch) {
	case 'd':
		return &o->dir;
	case 's':
		return &o->server;
	case 'u':
		return &o->user;
	case OPT_AUDIENCE:
		return &o->audience;
	case OPT_CAFILE:
		return &o->cafile;
	case OPT_ISSUER:
		return &o->issuer;
	case OPT_KEY:
		return &o->key;
	case OPT_LISTEN:
		return &o->listen;
	case OPT_PASSWORD_FILE:
		return &o->password_file;
	case OPT_TLS_CERT:
		return &o->tls_cert;
	case OPT_TLS_KEY:
		return &o->tls_key;
	case OPT_TOKEN_FILE:
		return &o->token_file;
	default:
		return NULL;
	}
}

/* One option other than -h and --version; 0 or -1 (err set). */
static int
option(struct auth_options *o, int ch, const char *arg, char *err, size_t errlen)
{
	const char **s;

	if ((s = string_opt(o, ch)) != NULL) {
		*s = arg;
		return 0;
	}
	switch (ch) {
	case OPT_ADMIN:
		o->admin = 1;
		return 0;
	case OPT_FORCE:
		o->force = 1;
		return 0;
	case OPT_INSECURE_LISTEN:
		o->insecure_listen = 1;
		return 0;
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_RSA:
		o->rsa = 1;
		return 0;
	case OPT_LOCKOUT:
		return duration_opt("--lockout", arg, &o->lockout_ms, err, errlen);
	case OPT_TOKEN_TTL:
		return duration_opt("--token-ttl", arg, &o->token_ttl_ms, err, errlen);
	case OPT_TTL:
		return duration_opt("--ttl", arg, &o->ttl_ms, err, errlen);
	case OPT_MAX_FAILURES:
		return max_failures_opt(arg, &o->max_failures, err, errlen);
	case OPT_PUB:
		return list_add(&o->pub, arg, err, errlen);
	case OPT_SUB:
		return list_add(&o->sub, arg, err, errlen);
	default:
		mom_errf(err, errlen, "unhandled option %d", ch);
		return -1;
	}
}

/*
 * One getopt_long pass.  The config file's pass (seen == NULL) sets
 * defaults for every verb and ignores -h and --version; the command
 * line's pass records each option in seen[] so that the verb's check can
 * refuse one that the verb does not take.  Returns 0 (o->action set by
 * -h and --version) or -1 with the reason in err.
 */
static int
parse_pass(struct auth_options *o, int argc, char **argv, int *seen, int *nseen, char *err,
    size_t errlen)
{
	int ch;

	optind = 0; /* GNU: reinitialise, the config pass ran first */
	opterr = 0; /* our own messages: "mom-auth: ...", whatever argv[0] is */
	while ((ch = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if (seen != NULL && ch != '?' && ch != ':')
			seen[(*nseen)++] = ch;
		if (ch != '?' && ch != ':' && mom_opt_secret(ch, argv, longopts, err, errlen) != 0)
			return -1;
		switch (ch) {
		case ':':
			mom_errf(err, errlen, "option %s needs a value", argv[optind - 1]);
			return -1;
		case '?':
			if (optopt != 0)
				mom_errf(err, errlen, "unknown option -%c", optopt);
			else
				/* Up to '=' only: what follows may be a secret. */
				mom_errf(err, errlen, "unknown option %.*s",
				    (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
			return -1;
		case 'h':
		case OPT_VERSION:
			if (seen == NULL)
				break;
			o->action = ch == 'h' ? MOM_ACTION_HELP : MOM_ACTION_VERSION;
			return 0;
		default:
			if (option(o, ch, optarg, err, errlen) != 0)
				return -1;
			break;
		}
	}
	return 0;
}

/* The verb in o->args (with its second word, if any): its index in verbs[], or -1. */
static int
find_verb(const struct auth_options *o, char *err, size_t errlen)
{
	size_t v;

	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++) {
		if (strcmp(o->args[0], verbs[v].word) != 0)
			continue;
		if (verbs[v].word2 == NULL)
			return (int)v;
		if (o->nargs > 1 && strcmp(o->args[1], verbs[v].word2) == 0)
			return (int)v;
	}
	if (strcmp(o->args[0], "user") == 0)
		mom_errf(err, errlen, "user: expected add, delete or list");
	else
		mom_errf(err, errlen, "unknown verb '%s'", o->args[0]);
	return -1;
}

/*
 * The verb and its operands, from what the command line's pass left in
 * argv; then that every option of the command line belongs to the verb.
 */
static int
check_verb(struct auth_options *o, const int *seen, int nseen, char *err, size_t errlen)
{
	int v, i, j;

	if (o->nargs == 0) {
		mom_errf(err, errlen, "no verb given");
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	if ((v = find_verb(o, err, errlen)) < 0) {
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	o->verb = verbs[v].verb;
	o->args += verbs[v].word2 != NULL ? 2 : 1;
	o->nargs -= verbs[v].word2 != NULL ? 2 : 1;
	if (o->nargs < verbs[v].minargs || o->nargs > verbs[v].maxargs) {
		if (o->nargs < verbs[v].minargs)
			mom_errf(err, errlen, "%s: missing %s", verbs[v].name, verbs[v].operand);
		else
			mom_errf(err, errlen, "%s: too many arguments", verbs[v].name);
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	for (i = 0; i < nseen; i++) {
		for (j = 0; j < (int)(sizeof(optverbs) / sizeof(optverbs[0])); j++) {
			if (optverbs[j].val == seen[i] && !(optverbs[j].verbs & o->verb)) {
				mom_errf(err, errlen, "%s does not apply to %s", optverbs[j].name,
				    verbs[v].name);
				return MOM_EXIT_USAGE;
			}
		}
	}
	return 0;
}

static void
defaults(struct auth_options *o)
{
	memset(o, 0, sizeof(*o));
	o->dir = "mom-auth";
	o->ttl_ms = o->token_ttl_ms = 3600 * 1000;
	o->listen = "127.0.0.1:7423";
	o->server = "http://127.0.0.1:7423";
	o->max_failures = 5;
	o->lockout_ms = 60 * 1000;
}

int
auth_options_parse(struct auth_options *o, int argc, char **argv, char *err, size_t errlen)
{
	const char *env;
	int        *seen, nseen = 0, cfgc, rv;

	defaults(o);
	/* Defaults from the config file, then the environment, then argv. */
	if (mom_opt_config("mom-auth", NULL, argv[0], &cfgc, &o->cfgv, err, errlen) != 0)
		return MOM_EXIT_USAGE;
	if (o->cfgv != NULL && parse_pass(o, cfgc, o->cfgv, NULL, NULL, err, errlen) != 0) {
		/* A file's mistake: its file and line, no usage text. */
		mom_opt_blame(o->cfgv, optind - 1, err, errlen);
		o->usage = 0;
		return MOM_EXIT_USAGE;
	}
	if ((env = getenv("MOM_AUTH_DIR")) != NULL && *env != '\0')
		o->dir = env;
	if ((seen = calloc((size_t)argc + 1, sizeof(*seen))) == NULL) {
		mom_errf(err, errlen, "out of memory");
		return MOM_EXIT_FAIL;
	}
	if (parse_pass(o, argc, argv, seen, &nseen, err, errlen) != 0) {
		o->usage = 1;
		rv = MOM_EXIT_USAGE;
	} else if (o->action != MOM_ACTION_RUN)
		rv = 0;
	else {
		o->args = argv + optind;
		o->nargs = argc - optind;
		rv = check_verb(o, seen, nseen, err, errlen);
	}
	free(seen);
	return rv;
}

void
auth_options_fini(struct auth_options *o)
{
	free(o->pub.v);
	free(o->sub.v);
	o->pub.v = o->sub.v = NULL;
	o->pub.n = o->sub.n = 0;
	free(o->cfgv);
	o->cfgv = NULL;
}

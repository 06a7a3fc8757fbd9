/*
 * opt.c: what the option parsers share (see opt.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "mom.h"
#include "opt.h"

int
mom_opt_config(const char *program, const char *path, char *argv0, int *cfgc, char ***cfgv,
    char *err, size_t errlen)
{
	char *one[] = { argv0, NULL };
	char **v = one;
	int   n = 1, rv;

	*cfgc = 0;
	*cfgv = NULL;
	if (path != NULL)
		rv = mom_config_argv_file(path, &n, &v, err, errlen);
	else
		rv = mom_config_argv(program, &n, &v, err, errlen);
	if (rv != 0)
		return rv;
	/* Given argv0 alone, the vector is a new one exactly when there are options. */
	if (v != one) {
		*cfgc = n;
		*cfgv = v;
	}
	return 0;
}

void
mom_opt_blame(char *const *cfgv, int idx, char *err, size_t errlen)
{
	static const char unrec[] = "unrecognized option '--", unk[] = "unknown option --";
	const char       *path;
	char              msg[512];
	int               line;

	if (cfgv == NULL || errlen == 0)
		return;
	/* The file says "sever", not "--sever" (getopt's words, or mom-auth's). */
	if (strncmp(err, unrec, sizeof(unrec) - 1) == 0)
		snprintf(msg, sizeof(msg), "unknown option '%s", err + sizeof(unrec) - 1);
	else if (strncmp(err, unk, sizeof(unk) - 1) == 0)
		snprintf(msg, sizeof(msg), "unknown option '%s'", err + sizeof(unk) - 1);
	else
		snprintf(msg, sizeof(msg), "%s", err);
	if (mom_config_origin(cfgv, idx, &path, &line) == 0)
		snprintf(err, errlen, "%s:%d: %s", path, line, msg);
	else if (mom_config_origin(cfgv, 1, &path, &line) == 0)
		snprintf(err, errlen, "%s: %s", path, msg);
}

int
mom_opt_once(int *from, int layer)
{
	if (*from == layer)
		return -1;
	*from = layer;
	return 0;
}

/*
 * The long option that the typed name (up to '=') abbreviates or spells
 * out and whose value is val and argument has_arg; NULL when none.
 */
static const struct option *
opt_long(const struct option *lo, const char *typed, int val, int has_arg)
{
	size_t n = strcspn(typed, "=");

	for (; lo->name != NULL; lo++)
		if (strncmp(lo->name, typed, n) == 0 && lo->val == val && lo->has_arg == has_arg)
			return lo;
	return NULL;
}

/* "option '--js' is ambiguous; possibilities: '--json' '--jsonl'", or 0 when not ambiguous. */
static int
opt_ambiguous(char *err, size_t errlen, const char *arg, const struct option *lo)
{
	size_t n = strcspn(arg + 2, "="), off;
	int    matches = 0, w;

	w = snprintf(err, errlen, "option '%.*s' is ambiguous; possibilities:", (int)(n + 2), arg);
	off = w > 0 ? (size_t)w : 0;
	for (; lo->name != NULL; lo++) {
		if (strncmp(lo->name, arg + 2, n) != 0)
			continue;
		matches++;
		if (off < errlen && (w = snprintf(err + off, errlen - off, " '--%s'", lo->name)) > 0)
			off += (size_t)w;
	}
	return matches > 1;
}

void
mom_opt_error(char *err, size_t errlen, int ch, char *const *argv,
    const struct option *longopts)
{
	/*
	 * getopt has moved past the element it complains of, except in the
	 * middle of a cluster of short options ("-xv"), where it is a short
	 * one: the element before optind is a long option's only when it
	 * is the one that failed.
	 */
	const char          *arg = optind > 0 ? argv[optind - 1] : "";
	int                  islong = strncmp(arg, "--", 2) == 0 && arg[2] != '\0';
	const struct option *lo;

	if (errlen == 0)
		return;
	if (ch == ':') {
		if (islong && (lo = opt_long(longopts, arg + 2, optopt, required_argument)) != NULL)
			snprintf(err, errlen, "option '--%s' requires an argument", lo->name);
		else
			snprintf(err, errlen, "option requires an argument -- '%c'", optopt);
		return;
	}
	if (islong && optopt == 0) {
		/* Up to '=' only: what follows may be a secret. */
		if (!opt_ambiguous(err, errlen, arg, longopts))
			snprintf(err, errlen, "unrecognized option '%.*s'", (int)strcspn(arg, "="),
			    arg);
		return;
	}
	if (islong && strchr(arg, '=') != NULL &&
	    (lo = opt_long(longopts, arg + 2, optopt, no_argument)) != NULL) {
		snprintf(err, errlen, "option '--%s' doesn't allow an argument", lo->name);
		return;
	}
	snprintf(err, errlen, "invalid option -- '%c'", optopt);
}

/* The options whose value names a secret's file, and where the secret comes from. */
static const struct {
	const char *name;
	const char *from;
} secrets[] = {
	{ "token-file", "a token comes from a file (--token-file FILE, MOM_TOKEN_FILE) or "
	    "MOM_TOKEN" },
	{ "password-file", "a password comes from a file (--password-file FILE) or stdin" },
};

int
mom_opt_secret(int ch, char *const *argv, const struct option *longopts, char *err,
    size_t errlen)
{
	const struct option *lo;
	const char          *typed;
	size_t               i, n;

	if (optind < 1)
		return 0;
	/* The option's own element: before its value when that was separate. */
	typed = argv[optind - 1];
	if (optarg != NULL && optarg == argv[optind - 1] && optind >= 2)
		typed = argv[optind - 2];
	if (strncmp(typed, "--", 2) != 0)
		return 0;
	n = strcspn(typed + 2, "=");
	for (lo = longopts; lo->name != NULL; lo++) {
		if (lo->val != ch || lo->flag != NULL)
			continue;
		for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
			if (strcmp(lo->name, secrets[i].name) == 0 &&
			    (n != strlen(lo->name) || strncmp(typed + 2, lo->name, n) != 0)) {
				snprintf(err, errlen, "--%.*s is not an option: %s", (int)n, typed + 2,
				    secrets[i].from);
				return -1;
			}
	}
	return 0;
}

int
mom_opt_client_pass(struct mom_cli *cli, int64_t *wait_ms, int argc, char **argv,
    const char *optstring, const struct option *longopts, mom_opt_fn fn, void *arg,
    enum mom_action *action, int *usage, char *err, size_t errlen)
{
	int ch;

	optind = 0; /* GNU: start afresh, also after an earlier pass */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if (ch == '?' || ch == ':') {
			mom_opt_error(err, errlen, ch, argv, longopts);
			*usage = 1;
			return MOM_EXIT_USAGE;
		}
		if (mom_opt_secret(ch, argv, longopts, err, errlen) != 0)
			return MOM_EXIT_USAGE;
		switch (mom_cli_option(cli, ch, optarg, wait_ms, err, errlen)) {
		case -1:
			return MOM_EXIT_USAGE;
		case 1:
			continue;
		case 2:
			*action = MOM_ACTION_VERSION;
			return 0;
		}
		if (ch == 'h') {
			*action = MOM_ACTION_HELP;
			return 0;
		}
		if (fn(arg, ch, optarg) != 0)
			return MOM_EXIT_USAGE;
	}
	return 0;
}

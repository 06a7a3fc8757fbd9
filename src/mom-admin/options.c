/*
 * options.c: mom-admin's command line and config file into struct
 * admin_options (see options.h and opt.h), and the check of the command.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "mom.h"
#include "names.h"
#include "options.h"
#include "size.h"

enum { OPT_JSON = 256, OPT_PROM, OPT_TABLE = 512 };

static const char optstring[] = ":hn:s:vW:";

/* mom-admin's own options; the create options come from adminops.c's table. */
static const struct option fixed_longopts[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "count", required_argument, NULL, 'n' },
	{ "prom", no_argument, NULL, OPT_PROM },
	{ "server", required_argument, NULL, 's' },
	{ "verbose", no_argument, NULL, 'v' },
	MOM_CLI_LONGOPTS,
	{ "wait", required_argument, NULL, 'W' },
};

#define NFIXED     (sizeof(fixed_longopts) / sizeof(fixed_longopts[0]))
#define TABLE_MAX  32

/* The table's options that have a flag: getopt's val is OPT_TABLE + index here. */
static struct {
	const struct mom_admin_op  *op;
	const struct mom_admin_opt *opt;
} flags[TABLE_MAX];
static struct option longopts[NFIXED + TABLE_MAX + 1];

/* Builds longopts: the fixed options, then every flag of the table. */
static void
longopts_build(void)
{
	const struct mom_admin_op  *op;
	const struct mom_admin_opt *opt;
	size_t                      n = 0;

	memcpy(longopts, fixed_longopts, sizeof(fixed_longopts));
	for (op = mom_admin_ops(); op->name != NULL; op++)
		for (opt = op->opts; opt != NULL && opt->key != NULL; opt++) {
			if (opt->flag == NULL || n == TABLE_MAX)
				continue;
			flags[n].op = op;
			flags[n].opt = opt;
			longopts[NFIXED + n] = (struct option){ opt->flag, required_argument, NULL,
				OPT_TABLE + (int)n };
			n++;
		}
	longopts[NFIXED + n] = (struct option){ NULL, 0, NULL, 0 };
}

/* A value of the table's type; 0 or MOM_EXIT_USAGE. */
static int
table_value(const struct mom_admin_opt *opt, const char *arg, uint64_t *v, char *err,
    size_t errlen)
{
	char *end;

	switch (opt->type) {
	case MOM_AOPT_DURATION:
		if (mom_duration_parse(arg, v) != 0 || *v > mom_admin_opt_max(opt)) {
			mom_errf(err, errlen, "bad duration '%s'", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	case MOM_AOPT_SIZE:
		if (mom_size_parse(arg, v) != 0 || *v > mom_admin_opt_max(opt)) {
			mom_errf(err, errlen, "bad size '%s'", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	default:
		*v = strtoull(arg, &end, 10);
		if (*arg == '\0' || *arg == '-' || *end != '\0' || *v > mom_admin_opt_max(opt)) {
			mom_errf(err, errlen, "bad number '%s'", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	}
}

/* A create option: kept (the last of the same flag wins); 0 or MOM_EXIT_USAGE. */
static int
table_option(struct admin_options *o, int i, const char *arg, char *err, size_t errlen)
{
	struct admin_optval v = { flags[i].op, flags[i].opt, 0, NULL };
	int                 k;

	if (v.opt->type == MOM_AOPT_NAME)
		v.s = arg;
	else if (table_value(v.opt, arg, &v.n, err, errlen) != 0)
		return MOM_EXIT_USAGE;
	for (k = 0; k < o->nopts && o->opts[k].opt != v.opt; k++)
		;
	if (k == ADMIN_MAX_OPTS) {
		mom_errf(err, errlen, "too many options");
		return MOM_EXIT_USAGE;
	}
	o->opts[k] = v;
	if (k == o->nopts)
		o->nopts++;
	return 0;
}

const struct admin_optval *
admin_options_get(const struct admin_options *o, const char *key)
{
	int k;

	for (k = 0; k < o->nopts; k++)
		if (strcmp(o->opts[k].opt->key, key) == 0)
			return &o->opts[k];
	return NULL;
}

/* One option other than the clients' common ones; 0 or MOM_EXIT_USAGE. */
static int
option(struct admin_options *o, int ch, const char *arg, char *err, size_t errlen)
{
	switch (ch) {
	case OPT_JSON:
		o->json = 1;
		return 0;
	case OPT_PROM:
		o->prom = 1;
		return 0;
	case 'n': {
		char *end;

		o->count = strtol(arg, &end, 10);
		if (*arg < '0' || *arg > '9' || *end != '\0' || o->count < 1 ||
		    o->count > ADMIN_PEEK_MAX) {
			mom_errf(err, errlen, "bad count '%s' (1 to %d)", arg, ADMIN_PEEK_MAX);
			return MOM_EXIT_USAGE;
		}
		return 0;
	}
	default:
		if (ch >= OPT_TABLE && ch < OPT_TABLE + TABLE_MAX && flags[ch - OPT_TABLE].opt)
			return table_option(o, ch - OPT_TABLE, arg, err, errlen);
		mom_errf(err, errlen, "unhandled option %d", ch);
		return MOM_EXIT_USAGE;
	}
}

/* option() as mom_opt_client_pass calls it. */
struct pass_arg {
	struct admin_options *o;
	char                 *err;
	size_t                errlen;
};

static int
option_cb(void *arg, int ch, char *optarg_)
{
	struct pass_arg *pa = arg;

	return option(pa->o, ch, optarg_, pa->err, pa->errlen);
}

/* Parses one vector; stops early at -h and --version (o->action). */
static int
parse_pass(struct admin_options *o, int argc, char **argv, char *err, size_t errlen)
{
	struct pass_arg pa = { o, err, errlen };
	int             rv;

	if ((rv = mom_opt_client_pass(&o->cli, &o->wait_ms, argc, argv, optstring, longopts,
	    option_cb, &pa, &o->action, &o->usage, err, errlen)) != 0 ||
	    o->action != MOM_ACTION_RUN)
		return rv;
	o->nargs = argc - optind;
	o->args = argv + optind;
	return 0;
}

static int
usage_err(char *err, size_t errlen, const char *msg)
{
	mom_errf(err, errlen, "%s (mom-admin -h for usage)", msg);
	return MOM_EXIT_USAGE;
}

static int
bad_name(const char *what, const char *name, char *err, size_t errlen)
{
	if (mom_name_ok(name))
		return 0;
	mom_errf(err, errlen, "bad %s name '%s'", what, name);
	return MOM_EXIT_USAGE;
}

static int
check_queue(const char *verb, char **a, int na, char *err, size_t errlen)
{
	int want = strcmp(verb, "list") == 0 ? 0 : strcmp(verb, "move") == 0 ? 2 : 1;

	if (strcmp(verb, "create") && strcmp(verb, "delete") && strcmp(verb, "list") &&
	    strcmp(verb, "info") && strcmp(verb, "purge") && strcmp(verb, "move") &&
	    strcmp(verb, "update") && strcmp(verb, "peek"))
		return usage_err(err, errlen, "queue verbs: create update delete list info peek "
		    "purge move");
	if (na != want)
		return usage_err(err, errlen, "wrong number of arguments");
	if ((na > 0 && bad_name("queue", a[0], err, errlen)) ||
	    (na > 1 && bad_name("queue", a[1], err, errlen)))
		return MOM_EXIT_USAGE;
	return 0;
}

static int
check_topic(const char *verb, char **a, int na, char *err, size_t errlen)
{
	int want = strcmp(verb, "list") == 0 ? 0 : 1;

	if (strcmp(verb, "create") && strcmp(verb, "delete") && strcmp(verb, "list") &&
	    strcmp(verb, "info"))
		return usage_err(err, errlen, "topic verbs: create delete list info");
	if (na != want)
		return usage_err(err, errlen, "wrong number of arguments");
	if (na > 0 && bad_name("topic", a[0], err, errlen))
		return MOM_EXIT_USAGE;
	return 0;
}

static int
check_sub(const char *verb, char **a, int na, char *err, size_t errlen)
{
	if (strcmp(verb, "list") == 0) {
		if (na > 1)
			return usage_err(err, errlen, "wrong number of arguments");
		if (na == 1 && !mom_pattern_ok(a[0]))
			return usage_err(err, errlen, "bad topic");
	} else if (strcmp(verb, "delete") == 0) {
		if (na != 2)
			return usage_err(err, errlen, "sub delete TOPIC NAME");
		if (!mom_pattern_ok(a[0]) || !mom_name_ok(a[1]))
			return usage_err(err, errlen, "bad topic or subscription name");
	} else
		return usage_err(err, errlen, "sub verbs: list delete");
	return 0;
}

/* A cluster URL: a scheme ("tcp", "tls+tcp", "ipc"), "://" and something after it. */
static bool
cluster_url_ok(const char *u)
{
	const char *p = strstr(u, "://");
	const char *c;

	if (p == NULL || p == u || p[3] == '\0')
		return false;
	for (c = u; c < p; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (c > u && ((*c >= '0' && *c <= '9') || *c == '+' || *c == '-' || *c == '.'))))
			return false;
	return true;
}

/* cluster status | digest | add ID URL | remove ID | transfer [ID]; the id into o->node. */
static int
check_cluster(struct admin_options *o, const char *verb, char **a, int na, char *err,
    size_t errlen)
{
	int want = strcmp(verb, "add") == 0 ? 2 : strcmp(verb, "remove") == 0 ? 1 : 0;

	if (strcmp(verb, "status") != 0 && strcmp(verb, "digest") != 0 && want == 0 &&
	    strcmp(verb, "transfer") != 0)
		return usage_err(err, errlen, "cluster verbs: status digest add remove transfer");
	if (strcmp(verb, "transfer") == 0 ? na > 1 : na != want)
		return usage_err(err, errlen, want == 2 ? "cluster add ID URL" : want == 1 ?
		    "cluster remove ID" : strcmp(verb, "transfer") == 0 ?
		    "cluster transfer [ID]" : "unexpected argument");
	if (na > 0 && mom_node_id_parse(a[0], &o->node) != 0) {
		mom_errf(err, errlen, "bad node id '%s' (a positive integer)", a[0]);
		return MOM_EXIT_USAGE;
	}
	if (na > 1 && !cluster_url_ok(a[1])) {
		mom_errf(err, errlen, "bad cluster URL '%s' (SCHEME://ADDRESS, e.g. "
		    "tcp://10.0.0.2:7422)", a[1]);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/*
 * Each create option belongs to the operation it was given with (queue
 * options with queue create...), and a queue it names is a queue name.
 */
static int
check_opts(const struct admin_options *o, const char *noun, const char *verb, char *err,
    size_t errlen)
{
	char op[64], what[64];
	int  k;

	snprintf(op, sizeof(op), "%s.%s", noun, verb);
	for (k = 0; k < o->nopts; k++) {
		const struct admin_optval *v = &o->opts[k];
		/* queue update takes queue create's flags (adminops.c: one flag, one option). */
		bool update = strcmp(op, "queue.update") == 0 &&
		    mom_admin_opt(mom_admin_op(op), v->opt->key) != NULL;

		if (strcmp(v->op->name, op) != 0 && !update) {
			snprintf(what, sizeof(what), "%s options go with %s create",
			    v->op->object, v->op->object);
			return usage_err(err, errlen, what);
		}
		/* An empty dead-letter queue: the update removes it. */
		if (v->opt->type == MOM_AOPT_NAME && update && v->s[0] == '\0')
			continue;
		if (v->opt->type == MOM_AOPT_NAME) {
			snprintf(what, sizeof(what), "%s queue", v->opt->flag);
			if (bad_name(what, v->s, err, errlen) != 0)
				return MOM_EXIT_USAGE;
		}
	}
	return 0;
}

/* The whole command, before anything is sent. */
static int
check_command(struct admin_options *o, char *err, size_t errlen)
{
	const char *noun = o->args[0], *verb = o->nargs > 1 ? o->args[1] : "";
	char      **a = o->args + 2;
	int         na = o->nargs - 2, rv;
	if (strcmp(noun, "ping") == 0 || strcmp(noun, "stats") == 0) {
		if (o->nargs != 1)
			return usage_err(err, errlen, "unexpected argument");
		if (o->prom && strcmp(noun, "stats") != 0)
			return usage_err(err, errlen, "--prom goes with stats");
	} else if (strcmp(noun, "queue") == 0) {
		if ((rv = check_queue(verb, a, na, err, errlen)) != 0)
			return rv;
	} else if (strcmp(noun, "topic") == 0) {
		if ((rv = check_topic(verb, a, na, err, errlen)) != 0)
			return rv;
	} else if (strcmp(noun, "sub") == 0) {
		if ((rv = check_sub(verb, a, na, err, errlen)) != 0)
			return rv;
	} else if (strcmp(noun, "cluster") == 0) {
		if ((rv = check_cluster(o, verb, a, na, err, errlen)) != 0)
			return rv;
	} else
		return usage_err(err, errlen, "unknown noun (queue, topic, sub, cluster, ping, "
		    "stats)");
	if ((rv = check_opts(o, noun, verb, err, errlen)) != 0)
		return rv;
	if (o->count != 0 && (strcmp(noun, "queue") != 0 || strcmp(verb, "peek") != 0))
		return usage_err(err, errlen, "-n goes with queue peek");
	if (strcmp(noun, "queue") == 0 && strcmp(verb, "update") == 0 && o->nopts == 0)
		return usage_err(err, errlen, "queue update: nothing to change");
	if (o->prom && strcmp(noun, "stats") != 0)
		return usage_err(err, errlen, "--prom goes with stats");
	return 0;
}

int
admin_options_parse(struct admin_options *o, int argc, char **argv, char *err, size_t errlen)
{
	int cfgc, rv;

	memset(o, 0, sizeof(*o));
	mom_cli_init(&o->cli, "mom-admin");
	o->wait_ms = 10000;
	longopts_build();
	if (errlen > 0)
		err[0] = '\0';
	if (mom_opt_config("mom-admin", NULL, argv[0], &cfgc, &o->cfgv, err, errlen) != 0)
		return MOM_EXIT_USAGE;
	if (o->cfgv != NULL && (rv = parse_pass(o, cfgc, o->cfgv, err, errlen)) != 0) {
		/* A file's mistake: its file and line, no usage text. */
		mom_opt_blame(o->cfgv, optind - 1, err, errlen);
		o->usage = 0;
		return rv;
	}
	if (o->cfgv != NULL && o->action != MOM_ACTION_RUN)
		return 0;
	/* The file has no operands: they are the command line's. */
	if ((rv = parse_pass(o, argc, argv, err, errlen)) != 0 || o->action != MOM_ACTION_RUN)
		return rv;
	if (o->nargs == 0) {
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	return check_command(o, err, errlen);
}

void
admin_options_fini(struct admin_options *o)
{
	mom_cli_fini(&o->cli);
	free(o->cfgv);
	o->cfgv = NULL;
}

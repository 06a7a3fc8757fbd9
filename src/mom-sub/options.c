/*
 * options.c: mom-sub's command line and config file into struct
 * sub_options (see options.h and opt.h).
 */
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "mom.h"
#include "names.h"
#include "options.h"
#include "wire.h"

enum { OPT_FROM = 256, OPT_JSONL, OPT_NOACK, OPT_CREATE, OPT_NEWLINE, OPT_PROGRESS };

static const char optstring[] = ":0C:d:eF:hNp:P:q:s:t:vW:";

static const struct option longopts[] = {
	{ "count", required_argument, NULL, 'C' },
	{ "create", no_argument, NULL, OPT_CREATE },
	{ "drain", no_argument, NULL, 'e' },
	{ "durable", required_argument, NULL, 'd' },
	{ "format", required_argument, NULL, 'F' },
	{ "from", required_argument, NULL, OPT_FROM },
	{ "help", no_argument, NULL, 'h' },
	{ "jsonl", no_argument, NULL, OPT_JSONL },
	{ "newline", no_argument, NULL, OPT_NEWLINE },
	{ "no-ack", no_argument, NULL, OPT_NOACK },
	{ "null", no_argument, NULL, '0' },
	{ "parallel", required_argument, NULL, 'P' },
	{ "prefetch", required_argument, NULL, 'p' },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "queue", required_argument, NULL, 'q' },
	{ "server", required_argument, NULL, 's' },
	{ "topic", required_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	MOM_CLI_LONGOPTS,
	{ "wait", required_argument, NULL, 'W' },
	{ NULL, 0, NULL, 0 },
};

/* One pass (the config file's, then the command line's) and where the groups were set. */
struct pass {
	int    layer;
	int    kind_from; /* -q or -t */
	int    out_from;  /* -0, -N, -F, --jsonl */
	char  *err;
	size_t errlen;
};

static int
set_out(struct sub_options *o, struct pass *p, enum sub_output out)
{
	/* The same form twice is no conflict: -F a -F b writes b. */
	if (p->out_from == p->layer && o->out != out) {
		mom_errf(p->err, p->errlen, "give one of -0, -N, -F, --jsonl");
		return MOM_EXIT_USAGE;
	}
	if (p->out_from != p->layer) {
		mom_fmt_free(o->fmt);
		o->fmt = NULL;
	}
	p->out_from = p->layer;
	o->out = out;
	return 0;
}

static int
set_format(struct sub_options *o, struct pass *p, const char *arg)
{
	char why[256];

	if (set_out(o, p, OUT_FORMAT) != 0)
		return MOM_EXIT_USAGE;
	mom_fmt_free(o->fmt);
	o->fmt = NULL;
	if (mom_fmt_compile(arg, &o->fmt, why, sizeof(why)) != 0) {
		mom_errf(p->err, p->errlen, "bad -F format: %s", why);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

static int
set_target(struct sub_options *o, struct pass *p, int ch, const char *name)
{
	if (mom_opt_once(&p->kind_from, p->layer) != 0) {
		mom_errf(p->err, p->errlen, "give one of -q and -t, once");
		return MOM_EXIT_USAGE;
	}
	o->kind = ch == 'q' ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
	o->name = name;
	if (ch == 'q' ? !mom_name_ok(name) : !mom_pattern_ok(name)) {
		mom_errf(p->err, p->errlen, "bad %s '%s'", ch == 'q' ? "queue name" :
		    "topic pattern", name);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* -C, -p, -P: a positive number (-p at most 10000, -P at most 1000). */
static int
set_number(struct sub_options *o, struct pass *p, int ch, const char *arg)
{
	unsigned long long v;
	char              *end;

	v = strtoull(arg, &end, 10);
	if (*arg == '\0' || *arg == '-' || *end != '\0' || v == 0 ||
	    (ch != 'C' && v > 10000) || (ch == 'P' && v > 1000)) {
		mom_errf(p->err, p->errlen, "bad -%c '%s'", ch, arg);
		return MOM_EXIT_USAGE;
	}
	if (ch == 'C')
		o->count = v;
	else if (ch == 'p')
		o->prefetch = (uint32_t)v;
	else
		o->parallel = (uint32_t)v;
	return 0;
}

static int
set_from(struct sub_options *o, struct pass *p, const char *arg)
{
	if (strcmp(arg, "first") == 0)
		o->from = MOM_FROM_FIRST;
	else if (strcmp(arg, "last") == 0)
		o->from = MOM_FROM_LAST;
	else if (strcmp(arg, "new") == 0)
		o->from = MOM_FROM_NEW;
	else if (mom_time_parse(arg, mom_now_ms(), &o->from_time_ms) == 0)
		o->from = MOM_FROM_TIME;
	else {
		mom_errf(p->err, p->errlen, "bad --from '%s' (first, last, new, an ISO-8601 time "
		    "or a duration ago)", arg);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* One option other than the clients' common ones; 0 or MOM_EXIT_USAGE. */
static int
option(struct sub_options *o, struct pass *p, int ch, char *arg)
{
	switch (ch) {
	case '0':
		return set_out(o, p, OUT_NUL);
	case 'C':
	case 'p':
	case 'P':
		return set_number(o, p, ch, arg);
	case 'd':
		if (!mom_name_ok(arg)) {
			mom_errf(p->err, p->errlen, "bad subscription name '%s'", arg);
			return MOM_EXIT_USAGE;
		}
		o->durable = arg;
		return 0;
	case 'e':
		o->drain = 1;
		return 0;
	case 'F':
		return set_format(o, p, arg);
	case 'N':
		return set_out(o, p, OUT_NONE);
	case 'q':
	case 't':
		return set_target(o, p, ch, arg);
	case OPT_CREATE:
		o->create = 1;
		return 0;
	case OPT_FROM:
		return set_from(o, p, arg);
	case OPT_JSONL:
		return set_out(o, p, OUT_JSONL);
	case OPT_NOACK:
		o->noack = 1;
		return 0;
	case OPT_NEWLINE:
		o->newline = 1;
		return 0;
	case OPT_PROGRESS:
		o->progress = 1;
		return 0;
	default:
		mom_errf(p->err, p->errlen, "unhandled option %d", ch);
		return MOM_EXIT_USAGE;
	}
}

/* option() as mom_opt_client_pass calls it. */
struct pass_arg {
	struct sub_options *o;
	struct pass       *p;
};

static int
option_cb(void *arg, int ch, char *optarg_)
{
	struct pass_arg *pa = arg;

	return option(pa->o, pa->p, ch, optarg_);
}

/*
 * Parses one vector; stops early at -h and --version (o->action).  On the
 * command line, '--' starts worker mode's command.
 */
static int
parse_pass(struct sub_options *o, struct pass *p, int argc, char **argv)
{
	struct pass_arg pa = { o, p };
	int             rv;

	if ((rv = mom_opt_client_pass(&o->cli, &o->wait_ms, argc, argv, optstring, longopts,
	    option_cb, &pa, &o->action, &o->usage, p->err, p->errlen)) != 0 ||
	    o->action != MOM_ACTION_RUN)
		return rv;
	if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
		if (optind == argc) {
			mom_errf(p->err, p->errlen, "give a command after '--'");
			o->usage = 1;
			return MOM_EXIT_USAGE;
		}
		o->argv = argv + optind;
		optind = argc;
	}
	if (optind != argc) {
		mom_errf(p->err, p->errlen, "unexpected argument '%s'", argv[optind]);
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* The options together, once both passes are done. */
static int
check(struct sub_options *o, char *err, size_t errlen)
{
	if (o->kind == 0) {
		mom_errf(err, errlen, "give a queue (-q) or a topic pattern (-t)");
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	if (o->kind == MOM_KIND_QUEUE && (o->durable || o->from)) {
		mom_errf(err, errlen, "-d and --from are for topics (-t)");
		return MOM_EXIT_USAGE;
	}
	if (o->create && o->kind != MOM_KIND_QUEUE) {
		mom_errf(err, errlen, "--create is for queues (-q)");
		return MOM_EXIT_USAGE;
	}
	if (o->argv && (o->out != OUT_LINES || o->noack)) {
		mom_errf(err, errlen, "-0, -N, -F, --jsonl and --no-ack are not for worker mode "
		    "('-- COMMAND')");
		return MOM_EXIT_USAGE;
	}
	if (o->argv && o->progress) {
		mom_errf(err, errlen, "--progress is not for worker mode ('-- COMMAND')");
		return MOM_EXIT_USAGE;
	}
	if (!o->argv && o->newline) {
		mom_errf(err, errlen, "--newline is for worker mode ('-- COMMAND')");
		return MOM_EXIT_USAGE;
	}
	if (!o->argv && o->parallel) {
		mom_errf(err, errlen, "-P is for worker mode ('-- COMMAND')");
		return MOM_EXIT_USAGE;
	}
	if (!o->argv) {
		if (o->prefetch == 0)
			o->prefetch = SUB_PREFETCH;
		return 0;
	}
	/*
	 * Worker mode: -p is how many messages it holds at once, running or
	 * waiting for a slot.  By default only what it can start now, so that
	 * the rest stays with the broker for other workers (fair dispatch);
	 * less than -P would leave slots idle.
	 */
	if (o->parallel == 0)
		o->parallel = 1;
	if (o->prefetch < o->parallel)
		o->prefetch = o->parallel;
	return 0;
}

int
sub_options_parse(struct sub_options *o, int argc, char **argv, char *err, size_t errlen)
{
	struct pass p = { MOM_LAYER_FILE, MOM_LAYER_NONE, MOM_LAYER_NONE, err, errlen };
	int         cfgc, rv;

	memset(o, 0, sizeof(*o));
	mom_cli_init(&o->cli, "mom-sub");
	o->wait_ms = -1;
	if (mom_opt_config("mom-sub", NULL, argv[0], &cfgc, &o->cfgv, err, errlen) != 0)
		return MOM_EXIT_USAGE;
	if (o->cfgv != NULL && (rv = parse_pass(o, &p, cfgc, o->cfgv)) != 0) {
		/* A file's mistake: its file and line, no usage text. */
		mom_opt_blame(o->cfgv, optind - 1, err, errlen);
		o->usage = 0;
		return rv;
	}
	if (o->cfgv != NULL && o->action != MOM_ACTION_RUN)
		return 0;
	p.layer = MOM_LAYER_ARGS;
	if ((rv = parse_pass(o, &p, argc, argv)) != 0 || o->action != MOM_ACTION_RUN)
		return rv;
	return check(o, err, errlen);
}

void
sub_options_fini(struct sub_options *o)
{
	mom_fmt_free(o->fmt);
	o->fmt = NULL;
	mom_cli_fini(&o->cli);
	free(o->cfgv);
	o->cfgv = NULL;
}

/*
 * options.c: mom-admin's command line and config file into struct
 * admin_options (see options.h and opt.h), and the check of the command.
 */
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "mom.h"
#include "names.h"
#include "options.h"
#include "size.h"

enum { OPT_JSON = 256, OPT_PROM, OPT_ACKWAIT, OPT_MAXDELIVER, OPT_DEADLETTER, OPT_TTL,
    OPT_MAXLEN, OPT_MAXBYTES, OPT_RETAIN, OPT_RETAINBYTES };

static const char optstring[] = ":hs:vW:";

static const struct option longopts[] = {
	{ "ack-wait", required_argument, NULL, OPT_ACKWAIT },
	{ "dead-letter", required_argument, NULL, OPT_DEADLETTER },
	{ "help", no_argument, NULL, 'h' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "max-bytes", required_argument, NULL, OPT_MAXBYTES },
	{ "max-deliver", required_argument, NULL, OPT_MAXDELIVER },
	{ "max-len", required_argument, NULL, OPT_MAXLEN },
	{ "prom", no_argument, NULL, OPT_PROM },
	{ "retain", required_argument, NULL, OPT_RETAIN },
	{ "retain-bytes", required_argument, NULL, OPT_RETAINBYTES },
	{ "server", required_argument, NULL, 's' },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "verbose", no_argument, NULL, 'v' },
	MOM_CLI_LONGOPTS,
	{ "wait", required_argument, NULL, 'W' },
	{ NULL, 0, NULL, 0 },
};

static int
duration_opt(const char *arg, int64_t *out, char *err, size_t errlen)
{
	uint64_t ms;

	if (mom_duration_parse(arg, &ms) != 0 || ms > INT64_MAX) {
		mom_errf(err, errlen, "bad duration '%s'", arg);
		return MOM_EXIT_USAGE;
	}
	*out = (int64_t)ms;
	return 0;
}

/* A count, or with sizes a size such as 64MiB. */
static int
count_opt(const char *arg, int64_t *out, int sizes, char *err, size_t errlen)
{
	uint64_t v;
	char    *end;

	if (sizes) {
		if (mom_size_parse(arg, &v) != 0 || v > INT64_MAX) {
			mom_errf(err, errlen, "bad size '%s'", arg);
			return MOM_EXIT_USAGE;
		}
	} else {
		v = strtoull(arg, &end, 10);
		if (*arg == '\0' || *arg == '-' || *end != '\0' || v > INT64_MAX) {
			mom_errf(err, errlen, "bad number '%s'", arg);
			return MOM_EXIT_USAGE;
		}
	}
	*out = (int64_t)v;
	return 0;
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
	case OPT_ACKWAIT:
		return duration_opt(arg, &o->ack_wait_ms, err, errlen);
	case OPT_TTL:
		return duration_opt(arg, &o->ttl_ms, err, errlen);
	case OPT_RETAIN:
		return duration_opt(arg, &o->retain_ms, err, errlen);
	case OPT_MAXDELIVER:
		return count_opt(arg, &o->max_deliver, 0, err, errlen);
	case OPT_MAXLEN:
		return count_opt(arg, &o->max_len, 0, err, errlen);
	case OPT_MAXBYTES:
		return count_opt(arg, &o->max_bytes, 1, err, errlen);
	case OPT_RETAINBYTES:
		return count_opt(arg, &o->retain_bytes, 1, err, errlen);
	case OPT_DEADLETTER:
		o->dead_letter = arg;
		return 0;
	default:
		mom_errf(err, errlen, "unhandled option %d", ch);
		return MOM_EXIT_USAGE;
	}
}

/* Parses one vector; stops early at -h and --version (o->action). */
static int
parse_pass(struct admin_options *o, int argc, char **argv, char *err, size_t errlen)
{
	int ch;

	optind = 0; /* GNU: start afresh, also after an earlier pass */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if (ch == '?' || ch == ':') {
			mom_opt_error(err, errlen, ch, argv, longopts);
			o->usage = 1;
			return MOM_EXIT_USAGE;
		}
		switch (mom_cli_option(&o->cli, ch, optarg, &o->wait_ms, err, errlen)) {
		case -1:
			return MOM_EXIT_USAGE;
		case 1:
			continue;
		case 2:
			o->action = MOM_ACTION_VERSION;
			return 0;
		}
		if (ch == 'h') {
			o->action = MOM_ACTION_HELP;
			return 0;
		}
		if (option(o, ch, optarg, err, errlen) != 0)
			return MOM_EXIT_USAGE;
	}
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
check_queue(const struct admin_options *o, const char *verb, char **a, int na, int queue_opts,
    char *err, size_t errlen)
{
	int want = strcmp(verb, "list") == 0 ? 0 : strcmp(verb, "move") == 0 ? 2 : 1;

	if (strcmp(verb, "create") && strcmp(verb, "delete") && strcmp(verb, "list") &&
	    strcmp(verb, "info") && strcmp(verb, "purge") && strcmp(verb, "move"))
		return usage_err(err, errlen, "queue verbs: create delete list info purge move");
	if (na != want)
		return usage_err(err, errlen, "wrong number of arguments");
	if (queue_opts && strcmp(verb, "create") != 0)
		return usage_err(err, errlen, "queue options go with queue create");
	if ((na > 0 && bad_name("queue", a[0], err, errlen)) ||
	    (na > 1 && bad_name("queue", a[1], err, errlen)) ||
	    (o->dead_letter && bad_name("dead-letter queue", o->dead_letter, err, errlen)))
		return MOM_EXIT_USAGE;
	return 0;
}

static int
check_topic(const char *verb, char **a, int na, int topic_opts, char *err, size_t errlen)
{
	int want = strcmp(verb, "list") == 0 ? 0 : 1;

	if (strcmp(verb, "create") && strcmp(verb, "delete") && strcmp(verb, "list") &&
	    strcmp(verb, "info"))
		return usage_err(err, errlen, "topic verbs: create delete list info");
	if (na != want)
		return usage_err(err, errlen, "wrong number of arguments");
	if (topic_opts && strcmp(verb, "create") != 0)
		return usage_err(err, errlen, "topic options go with topic create");
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

/* The whole command, before anything is sent. */
static int
check_command(const struct admin_options *o, char *err, size_t errlen)
{
	const char *noun = o->args[0], *verb = o->nargs > 1 ? o->args[1] : "";
	char      **a = o->args + 2;
	int         na = o->nargs - 2, rv;
	int         queue_opts, topic_opts;

	queue_opts = o->ack_wait_ms >= 0 || o->max_deliver >= 0 || o->ttl_ms >= 0 ||
	    o->max_len >= 0 || o->max_bytes >= 0 || o->dead_letter != NULL;
	topic_opts = o->retain_ms >= 0 || o->retain_bytes >= 0;
	if (strcmp(noun, "ping") == 0 || strcmp(noun, "stats") == 0) {
		if (o->nargs != 1)
			return usage_err(err, errlen, "unexpected argument");
		if (o->prom && strcmp(noun, "stats") != 0)
			return usage_err(err, errlen, "--prom goes with stats");
	} else if (strcmp(noun, "queue") == 0) {
		if ((rv = check_queue(o, verb, a, na, queue_opts, err, errlen)) != 0)
			return rv;
	} else if (strcmp(noun, "topic") == 0) {
		if ((rv = check_topic(verb, a, na, topic_opts, err, errlen)) != 0)
			return rv;
	} else if (strcmp(noun, "sub") == 0) {
		if ((rv = check_sub(verb, a, na, err, errlen)) != 0)
			return rv;
	} else if (strcmp(noun, "cluster") == 0) {
		if (strcmp(verb, "status") != 0)
			return usage_err(err, errlen, "cluster verbs: status");
		if (na != 0)
			return usage_err(err, errlen, "unexpected argument");
	} else
		return usage_err(err, errlen, "unknown noun (queue, topic, sub, cluster, ping, "
		    "stats)");
	if (strcmp(noun, "queue") && strcmp(noun, "topic") && queue_opts)
		return usage_err(err, errlen, "queue options go with queue create");
	if (strcmp(noun, "topic") && topic_opts)
		return usage_err(err, errlen, "topic options go with topic create");
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
	o->ack_wait_ms = o->max_deliver = o->ttl_ms = o->max_len = o->max_bytes = -1;
	o->retain_ms = o->retain_bytes = -1;
	if (errlen > 0)
		err[0] = '\0';
	if (mom_opt_config("mom-admin", NULL, argv[0], &cfgc, &o->cfgv, err, errlen) != 0)
		return MOM_EXIT_USAGE;
	if (o->cfgv != NULL && ((rv = parse_pass(o, cfgc, o->cfgv, err, errlen)) != 0 ||
	    o->action != MOM_ACTION_RUN))
		return rv;
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

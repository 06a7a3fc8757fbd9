/*
 * mom-admin: manage queues, topics and subscriptions; look at a broker.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "duration.h"
#include "mom.h"
#include "size.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-admin [-v] [--quiet] [-s URL[,URL...]] [--json] [-W SECONDS] NOUN VERB [ARGS]\n"
	    "  queue create NAME [--ack-wait D] [--max-deliver N] [--dead-letter QUEUE]\n"
	    "                    [--ttl D] [--max-len N] [--max-bytes N]\n"
	    "  queue delete NAME | queue list | queue info NAME | queue purge NAME\n"
	    "  queue move SRC DST\n"
	    "  topic create NAME [--retain D] [--retain-bytes N]\n"
	    "  topic delete NAME | topic list | topic info NAME\n"
	    "  sub list [TOPIC] | sub delete TOPIC NAME\n"
	    "  cluster status | ping | stats [--prom]\n"
	    "       mom-admin -h | --version\n");
}

static int
duration_opt(const char *arg, int64_t *out)
{
	uint64_t ms;

	if (mom_duration_parse(arg, &ms) != 0 || ms > INT64_MAX) {
		fprintf(stderr, "mom-admin: bad duration '%s'\n", arg);
		return -1;
	}
	*out = (int64_t)ms;
	return 0;
}

static int
count_opt(const char *arg, int64_t *out, int sizes)
{
	uint64_t v;
	char    *end;

	if (sizes) {
		if (mom_size_parse(arg, &v) != 0 || v > INT64_MAX) {
			fprintf(stderr, "mom-admin: bad size '%s'\n", arg);
			return -1;
		}
	} else {
		v = strtoull(arg, &end, 10);
		if (*arg == '\0' || *arg == '-' || *end != '\0' || v > INT64_MAX) {
			fprintf(stderr, "mom-admin: bad number '%s'\n", arg);
			return -1;
		}
	}
	*out = (int64_t)v;
	return 0;
}

int
main(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_PROM, OPT_ACKWAIT, OPT_MAXDELIVER, OPT_DEADLETTER, OPT_TTL,
	    OPT_MAXLEN, OPT_MAXBYTES, OPT_RETAIN, OPT_RETAINBYTES };
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
	struct admin_opts o;
	int               ch, rv;
	char              cerr[512];

	memset(&o, 0, sizeof(o));
	mom_cli_init(&o.cli, "mom-admin");
	o.wait_ms = 10000;
	o.ack_wait_ms = o.max_deliver = o.ttl_ms = o.max_len = o.max_bytes = -1;
	o.retain_ms = o.retain_bytes = -1;
	if (mom_config_argv("mom-admin", &argc, &argv, cerr, sizeof(cerr)) != 0) {
		fprintf(stderr, "mom-admin: %s\n", cerr);
		return MOM_EXIT_USAGE;
	}
	while ((ch = getopt_long(argc, argv, "hs:vW:", longopts, NULL)) != -1) {
		switch (mom_cli_option(&o.cli, ch, optarg, &o.wait_ms, cerr, sizeof(cerr))) {
		case -1:
			mom_cli_err(&o.cli, "%s", cerr);
			return MOM_EXIT_USAGE;
		case 1:
			continue;
		case 2:
			printf("%s %s\n", o.cli.prog, MOM_VERSION);
			return 0;
		}
		switch (ch) {
		case 'h':
			usage(stdout);
			return 0;
		case OPT_JSON:
			o.json = 1;
			break;
		case OPT_PROM:
			o.prom = 1;
			break;
		case OPT_ACKWAIT:
			if (duration_opt(optarg, &o.ack_wait_ms) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_TTL:
			if (duration_opt(optarg, &o.ttl_ms) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_RETAIN:
			if (duration_opt(optarg, &o.retain_ms) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_MAXDELIVER:
			if (count_opt(optarg, &o.max_deliver, 0) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_MAXLEN:
			if (count_opt(optarg, &o.max_len, 0) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_MAXBYTES:
			if (count_opt(optarg, &o.max_bytes, 1) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_RETAINBYTES:
			if (count_opt(optarg, &o.retain_bytes, 1) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_DEADLETTER:
			o.dead_letter = optarg;
			break;
		default:
			usage(stderr);
			return MOM_EXIT_USAGE;
		}
	}
	o.nargs = argc - optind;
	o.args = argv + optind;
	if (o.nargs == 0) {
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	if ((rv = mom_cli_load_token(&o.cli)) != 0)
		return rv;
	rv = admin_run(&o);
	mom_cli_fini(&o.cli);
	return rv;
}

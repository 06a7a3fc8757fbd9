/*
 * mom-sub: consume from a queue or subscribe to topics, to stdout.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "duration.h"
#include "mom.h"
#include "names.h"
#include "sub.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-sub [-v] [--quiet] [-s URL[,URL...]]\n"
	    "               (-q QUEUE | -t PATTERN [-d NAME] [--from first|last|new|TIME])\n"
	    "               [-C COUNT] [-W SECONDS] [-e] [-0 | -N | -F FORMAT | --jsonl]\n"
	    "               [-p PREFETCH] [--no-ack] [--create]\n"
	    "       mom-sub [options] (-q QUEUE | -t PATTERN ...) [-P N] [-C COUNT] [-W SECONDS] [-e]\n"
	    "               -- COMMAND [ARG...]\n"
	    "       mom-sub -h | --version\n");
}

static int
set_out(struct sub_opts *o, enum sub_output out)
{
	if (o->out != OUT_LINES && o->out != out) {
		fprintf(stderr, "mom-sub: give one of -0, -N, -F, --jsonl\n");
		return -1;
	}
	o->out = out;
	return 0;
}

int
main(int argc, char **argv)
{
	enum { OPT_FROM = 256, OPT_JSONL, OPT_NOACK, OPT_CREATE };
	static const struct option longopts[] = {
		{ "count", required_argument, NULL, 'C' },
		{ "create", no_argument, NULL, OPT_CREATE },
		{ "drain", no_argument, NULL, 'e' },
		{ "durable", required_argument, NULL, 'd' },
		{ "format", required_argument, NULL, 'F' },
		{ "from", required_argument, NULL, OPT_FROM },
		{ "help", no_argument, NULL, 'h' },
		{ "jsonl", no_argument, NULL, OPT_JSONL },
		{ "no-ack", no_argument, NULL, OPT_NOACK },
		{ "null", no_argument, NULL, '0' },
		{ "parallel", required_argument, NULL, 'P' },
		{ "prefetch", required_argument, NULL, 'p' },
		{ "queue", required_argument, NULL, 'q' },
		{ "server", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		MOM_CLI_LONGOPTS,
		{ "wait", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	struct sub_opts o;
	char            err[256], *end, cerr[512];
	unsigned long long v;
	int             ch, rv;

	memset(&o, 0, sizeof(o));
	mom_cli_init(&o.cli, "mom-sub");
	o.wait_ms = -1;
	o.prefetch = 256;
	if (mom_config_argv("mom-sub", &argc, &argv, cerr, sizeof(cerr)) != 0) {
		fprintf(stderr, "mom-sub: %s\n", cerr);
		return MOM_EXIT_USAGE;
	}
	while ((ch = getopt_long(argc, argv, "0C:d:eF:hNp:P:q:s:t:vW:", longopts, NULL)) != -1) {
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
		case '0':
			if (set_out(&o, OUT_NUL) != 0)
				return MOM_EXIT_USAGE;
			break;
		case 'C':
		case 'p':
		case 'P':
			v = strtoull(optarg, &end, 10);
			if (*optarg == '\0' || *optarg == '-' || *end != '\0' || v == 0 ||
			    (ch != 'C' && v > 10000) || (ch == 'P' && v > 1000)) {
				fprintf(stderr, "mom-sub: bad -%c '%s'\n", ch, optarg);
				return MOM_EXIT_USAGE;
			}
			if (ch == 'C')
				o.count = v;
			else if (ch == 'p')
				o.prefetch = (uint32_t)v;
			else
				o.parallel = (uint32_t)v;
			break;
		case 'd':
			if (!mom_name_ok(optarg)) {
				fprintf(stderr, "mom-sub: bad subscription name '%s'\n", optarg);
				return MOM_EXIT_USAGE;
			}
			o.durable = optarg;
			break;
		case 'e':
			o.drain = 1;
			break;
		case 'F':
			if (set_out(&o, OUT_FORMAT) != 0)
				return MOM_EXIT_USAGE;
			if (mom_fmt_compile(optarg, &o.fmt, err, sizeof(err)) != 0) {
				fprintf(stderr, "mom-sub: bad -F format: %s\n", err);
				return MOM_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'N':
			if (set_out(&o, OUT_NONE) != 0)
				return MOM_EXIT_USAGE;
			break;
		case 'q':
		case 't':
			if (o.kind != 0) {
				fprintf(stderr, "mom-sub: give one of -q and -t, once\n");
				return MOM_EXIT_USAGE;
			}
			o.kind = ch == 'q' ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
			o.name = optarg;
			if (ch == 'q' ? !mom_name_ok(optarg) : !mom_pattern_ok(optarg)) {
				fprintf(stderr, "mom-sub: bad %s '%s'\n",
				    ch == 'q' ? "queue name" : "topic pattern", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_CREATE:
			o.create = 1;
			break;
		case OPT_FROM:
			if (strcmp(optarg, "first") == 0)
				o.from = MOM_FROM_FIRST;
			else if (strcmp(optarg, "last") == 0)
				o.from = MOM_FROM_LAST;
			else if (strcmp(optarg, "new") == 0)
				o.from = MOM_FROM_NEW;
			else if (mom_time_parse(optarg, mom_now_ms(), &o.from_time_ms) == 0)
				o.from = MOM_FROM_TIME;
			else {
				fprintf(stderr, "mom-sub: bad --from '%s' (first, last, new, "
				    "an ISO-8601 time or a duration ago)\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_JSONL:
			if (set_out(&o, OUT_JSONL) != 0)
				return MOM_EXIT_USAGE;
			break;
		case OPT_NOACK:
			o.noack = 1;
			break;
		default:
			usage(stderr);
			return MOM_EXIT_USAGE;
		}
	}
	if (optind > 1 && strcmp(argv[optind - 1], "--") == 0) {
		if (optind == argc) {
			fprintf(stderr, "mom-sub: give a command after '--'\n");
			usage(stderr);
			return MOM_EXIT_USAGE;
		}
		o.argv = argv + optind;
		optind = argc;
	}
	if (optind != argc) {
		fprintf(stderr, "mom-sub: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	if (o.kind == 0) {
		fprintf(stderr, "mom-sub: give a queue (-q) or a topic pattern (-t)\n");
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	if (o.kind == MOM_KIND_QUEUE && (o.durable || o.from)) {
		fprintf(stderr, "mom-sub: -d and --from are for topics (-t)\n");
		return MOM_EXIT_USAGE;
	}
	if (o.create && o.kind != MOM_KIND_QUEUE) {
		fprintf(stderr, "mom-sub: --create is for queues (-q)\n");
		return MOM_EXIT_USAGE;
	}
	if (o.argv && (o.out != OUT_LINES || o.noack)) {
		fprintf(stderr, "mom-sub: -0, -N, -F, --jsonl and --no-ack are not for worker mode "
		    "('-- COMMAND')\n");
		return MOM_EXIT_USAGE;
	}
	if (!o.argv && o.parallel) {
		fprintf(stderr, "mom-sub: -P is for worker mode ('-- COMMAND')\n");
		return MOM_EXIT_USAGE;
	}
	if ((rv = mom_cli_load_token(&o.cli)) != 0) {
		mom_fmt_free(o.fmt);
		return rv;
	}
	rv = o.argv ? worker_run(&o) : sub_run(&o);
	mom_fmt_free(o.fmt);
	mom_cli_fini(&o.cli);
	return rv;
}

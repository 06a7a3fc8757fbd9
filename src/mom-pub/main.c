/*
 * mom-pub: publish messages to a queue or topic.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "duration.h"
#include "mom.h"
#include "names.h"
#include "pub.h"
#include "wire.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-pub [-v] [--quiet] [-s URL[,URL...]] (-q QUEUE | -t TOPIC)\n"
	    "               [-m MSG | -f FILE | -l | -0 | --jsonl | -n]\n"
	    "               [-H 'Key: value']... [--id ID] [--ttl DURATION]\n"
	    "               [--delay DURATION] [-W SECONDS] [--create]\n"
	    "       mom-pub -r [options] (-q QUEUE | -t TOPIC) [-m MSG | -f FILE | -n]\n"
	    "               [-H 'Key: value']... [-W SECONDS]   (request/reply)\n"
	    "       mom-pub -h | --version\n");
}

static int
set_source(struct pub_opts *o, enum pub_source s)
{
	if (o->src != SRC_NONE && o->src != s) {
		fprintf(stderr, "mom-pub: give one of -m, -f, -l, -0, --jsonl, -n\n");
		return -1;
	}
	o->src = s;
	return 0;
}

int
main(int argc, char **argv)
{
	enum { OPT_ID = 256, OPT_TTL, OPT_DELAY, OPT_JSONL, OPT_CREATE };
	static const struct option longopts[] = {
		{ "create", no_argument, NULL, OPT_CREATE },
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "empty", no_argument, NULL, 'n' },
		{ "file", required_argument, NULL, 'f' },
		{ "header", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ "id", required_argument, NULL, OPT_ID },
		{ "jsonl", no_argument, NULL, OPT_JSONL },
		{ "lines", no_argument, NULL, 'l' },
		{ "message", required_argument, NULL, 'm' },
		{ "null", no_argument, NULL, '0' },
		{ "queue", required_argument, NULL, 'q' },
		{ "request", no_argument, NULL, 'r' },
		{ "server", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "verbose", no_argument, NULL, 'v' },
		MOM_CLI_LONGOPTS,
		{ "wait", required_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	struct pub_opts o;
	int             ch, rv;

	memset(&o, 0, sizeof(o));
	mom_cli_init(&o.cli, "mom-pub");
	o.wait_ms = -1;
	if (mom_config_argv("mom-pub", &argc, &argv) != 0)
		return MOM_EXIT_USAGE;
	while ((ch = getopt_long(argc, argv, "0f:hH:lm:nq:rs:t:vW:", longopts, NULL)) != -1) {
		switch (mom_cli_option(&o.cli, ch, optarg, &o.wait_ms)) {
		case -1:
			return MOM_EXIT_USAGE;
		case 1:
			continue;
		case 2:
			return 0;
		}
		switch (ch) {
		case '0':
			if (set_source(&o, SRC_NUL) != 0)
				return MOM_EXIT_USAGE;
			break;
		case 'f':
			if (set_source(&o, SRC_FILE) != 0)
				return MOM_EXIT_USAGE;
			o.file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'H':
			if (o.nheaders == PUB_MAX_HEADERS) {
				fprintf(stderr, "mom-pub: at most %d headers\n", PUB_MAX_HEADERS);
				return MOM_EXIT_USAGE;
			}
			o.headers[o.nheaders++] = optarg;
			break;
		case 'l':
			if (set_source(&o, SRC_LINES) != 0)
				return MOM_EXIT_USAGE;
			break;
		case 'm':
			if (set_source(&o, SRC_MSG) != 0)
				return MOM_EXIT_USAGE;
			o.msg = optarg;
			break;
		case 'n':
			if (set_source(&o, SRC_EMPTY) != 0)
				return MOM_EXIT_USAGE;
			break;
		case 'q':
		case 't':
			if (o.kind != 0) {
				fprintf(stderr, "mom-pub: give one of -q and -t, once\n");
				return MOM_EXIT_USAGE;
			}
			o.kind = ch == 'q' ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
			o.name = optarg;
			if (!mom_name_ok(optarg)) {
				fprintf(stderr, "mom-pub: bad %s name '%s'\n",
				    ch == 'q' ? "queue" : "topic", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case 'r':
			o.request = 1;
			break;
		case OPT_CREATE:
			o.create = 1;
			break;
		case OPT_DELAY:
		case OPT_TTL:
			if (mom_duration_parse(optarg, ch == OPT_TTL ? &o.ttl_ms : &o.delay_ms) != 0) {
				fprintf(stderr, "mom-pub: bad duration '%s'\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_ID:
			o.id = optarg;
			break;
		case OPT_JSONL:
			if (set_source(&o, SRC_JSONL) != 0)
				return MOM_EXIT_USAGE;
			break;
		default:
			usage(stderr);
			return MOM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mom-pub: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	if (o.kind == 0 && o.src != SRC_JSONL) {
		fprintf(stderr, "mom-pub: give a queue (-q) or a topic (-t)\n");
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	if (o.request && (o.src == SRC_LINES || o.src == SRC_NUL || o.src == SRC_JSONL)) {
		fprintf(stderr, "mom-pub: -r sends one message (-m, -f, -n or stdin), not -l, -0 or --jsonl\n");
		return MOM_EXIT_USAGE;
	}
	if (o.request) {
		int i;

		for (i = 0; i < o.nheaders; i++) {
			size_t k = strcspn(o.headers[i], ":");

			while (k > 0 && o.headers[i][k - 1] == ' ')
				k--;
			if ((k == strlen(MOM_HDR_REPLY_TO) &&
			    strncasecmp(o.headers[i], MOM_HDR_REPLY_TO, k) == 0) ||
			    (k == strlen(MOM_HDR_CORRELATION) &&
			    strncasecmp(o.headers[i], MOM_HDR_CORRELATION, k) == 0)) {
				fprintf(stderr, "mom-pub: -r sets %s and %s itself\n", MOM_HDR_REPLY_TO,
				    MOM_HDR_CORRELATION);
				return MOM_EXIT_USAGE;
			}
		}
	}
	if (o.src == SRC_NONE) {
		if (isatty(STDIN_FILENO)) {
			fprintf(stderr, "mom-pub: nothing to publish (-m, -f, -l, -0, --jsonl, -n or stdin)\n");
			return MOM_EXIT_USAGE;
		}
		o.src = SRC_STDIN;
	}
	if (o.id != NULL && (o.src == SRC_LINES || o.src == SRC_NUL || o.src == SRC_JSONL)) {
		fprintf(stderr, "mom-pub: --id names one message; with --jsonl give \"id\" per line\n");
		return MOM_EXIT_USAGE;
	}
	if (o.id != NULL && (strlen(o.id) == 0 || strlen(o.id) > 256 ||
	    strspn(o.id, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") != strlen(o.id))) {
		fprintf(stderr, "mom-pub: bad --id (1-256 printable characters, no spaces)\n");
		return MOM_EXIT_USAGE;
	}
	if (o.create && o.kind == 0) {
		fprintf(stderr, "mom-pub: --create needs -q or -t\n");
		return MOM_EXIT_USAGE;
	}
	if ((rv = mom_cli_load_token(&o.cli)) != 0)
		return rv;
	rv = pub_run(&o);
	mom_cli_fini(&o.cli);
	return rv;
}

/*
 * mom-sub: consume from a queue or subscribe to topics, to stdout.
 */
#include <stdio.h>

#include "cli.h"
#include "mom.h"
#include "options.h"
#include "sub.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-sub [-v] [--quiet] [-s URL[,URL...]]\n"
	    "               (-q QUEUE | -t PATTERN [-d NAME] [--from first|last|new|TIME])\n"
	    "               [-C COUNT] [-W SECONDS] [-e] [-0 | -N | -F FORMAT | --jsonl]\n"
	    "               [-p PREFETCH] [--no-ack] [--create] [--progress]\n"
	    "               [--connect-timeout DURATION] [--reconnect-window DURATION]\n"
	    "               [--request-timeout DURATION]\n"
	    "       mom-sub [options] (-q QUEUE | -t PATTERN ...) [-P N] [-p N] [-C COUNT] [-W SECONDS] [-e]\n"
	    "               [--newline] -- COMMAND [ARG...]\n"
	    "       mom-sub -h | --version\n");
}

/* -h: the usage, then every option, one line each (the man page says more). */
static void
help(void)
{
	usage(stdout);
	printf("\nFrom where:\n"
	    "  -q, --queue QUEUE          consume from the queue QUEUE\n"
	    "  -t, --topic PATTERN        subscribe to the topics matching PATTERN (* and >)\n"
	    "  -d, --durable NAME         with -t: the durable subscription NAME\n"
	    "  --from first|last|new|TIME  with -t: where a new subscription starts\n"
	    "  --create                   with -q: create the queue if it does not exist\n"
	    "\nHow many, how long:\n"
	    "  -C, --count COUNT          exit 0 after COUNT messages\n"
	    "  -e, --drain                exit 0 as soon as no message is ready\n"
	    "  -p, --prefetch PREFETCH    ask for up to PREFETCH messages a request (default 256)\n"
	    "  --no-ack                   at most once: the broker settles each message as it sends it\n"
	    "  -P, --parallel N           worker mode (-- COMMAND): run up to N commands at once\n"
	    "  --newline                  worker mode: end the command's stdin with a newline\n"
	    "  --progress                 count, rate and time left on stderr (on a terminal: always)\n"
	    "\nOutput (default: each payload and a newline):\n"
	    "  -0, --null                 each payload followed by a NUL byte\n"
	    "  -N                         write nothing (the messages are still acknowledged)\n"
	    "  -F, --format FORMAT        each message as FORMAT (%%p payload, %%i id, %%d deliveries...)\n"
	    "  --jsonl                    one JSON envelope a line, as mom-pub --jsonl reads\n"
	    "\n");
	mom_cli_help(stdout, "exit 75 when no message came for this long, connecting included");
}

int
main(int argc, char **argv)
{
	struct sub_options o;
	char               err[512];
	int                rv;

	if ((rv = sub_options_parse(&o, argc, argv, err, sizeof(err))) != 0) {
		mom_cli_err(&o.cli, "%s", err);
		if (o.usage)
			usage(stderr);
	} else if (o.action == MOM_ACTION_HELP)
		help();
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-sub %s\n", MOM_VERSION);
	else if ((rv = mom_cli_load_token(&o.cli)) == 0)
		rv = o.argv ? worker_run(&o) : sub_run(&o);
	sub_options_fini(&o);
	return mom_stdout_finish("mom-sub", rv, 1);
}

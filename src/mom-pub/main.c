/*
 * mom-pub: publish messages to a queue or topic.
 */
#include <stdio.h>

#include "cli.h"
#include "mom.h"
#include "options.h"
#include "pub.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-pub [-v] [--quiet] [-s URL[,URL...]] (-q QUEUE | -t TOPIC)\n"
	    "               [-m MSG | -f FILE | -l | -0 | --jsonl | -n]\n"
	    "               [-H 'Key: value']... [--id ID] [--ttl DURATION]\n"
	    "               [--delay DURATION] [-W SECONDS] [--create] [--progress]\n"
	    "               [--connect-timeout DURATION] [--reconnect-window DURATION]\n"
	    "               [--request-timeout DURATION]\n"
	    "       mom-pub -r [options] (-q QUEUE | -t TOPIC) [-m MSG | -f FILE | -n]\n"
	    "               [-H 'Key: value']... [-W SECONDS] [--reply-expire DURATION]\n"
	    "               (request/reply)\n"
	    "       mom-pub -h | --version\n");
}

/* -h: the usage, then every option, one line each (the man page says more). */
static void
help(void)
{
	usage(stdout);
	printf("\nWhat to publish (one of them; default: standard input as one message):\n"
	    "  -m, --message MSG          MSG is the message\n"
	    "  -f, --file FILE            FILE's contents are the message\n"
	    "  -l, --lines                each line of standard input is a message\n"
	    "  -0, --null                 each NUL-terminated record of standard input is a message\n"
	    "  --jsonl                    each line of standard input is a JSON envelope\n"
	    "  -n, --empty                publish one empty message\n"
	    "\nWhere, and how:\n"
	    "  -q, --queue QUEUE          publish to the queue QUEUE\n"
	    "  -t, --topic TOPIC          publish to the topic TOPIC\n"
	    "  --create                   create the queue or topic first if it does not exist\n"
	    "  --progress                 count, rate and time left on stderr (on a terminal: always)\n"
	    "  -H, --header HEADER        add the header 'Key: value' to every message (64 at most)\n"
	    "  --id ID                    publisher id: a retry within the dedupe window is stored once\n"
	    "  --ttl DURATION             drop the message if not delivered within DURATION\n"
	    "  --delay DURATION           deliver the message no earlier than DURATION from now\n"
	    "  -r, --request              send one request, print the reply, exit with its status\n"
	    "  --reply-expire DURATION    with -r: the reply queue's idle expiry (default 5m)\n"
	    "\n");
	mom_cli_help(stdout, "give up (75) when the broker confirms nothing this long");
}

int
main(int argc, char **argv)
{
	struct pub_options o;
	char               err[512];
	int                rv;

	if ((rv = pub_options_parse(&o, argc, argv, err, sizeof(err))) != 0) {
		mom_cli_err(&o.cli, "%s", err);
		if (o.usage)
			usage(stderr);
	} else if (o.action == MOM_ACTION_HELP)
		help();
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-pub %s\n", MOM_VERSION);
	else if ((rv = mom_cli_load_token(&o.cli)) == 0)
		rv = pub_run(&o);
	pub_options_fini(&o);
	return mom_stdout_finish("mom-pub", rv, 0);
}

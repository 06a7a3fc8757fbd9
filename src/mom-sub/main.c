/*
 * mom-sub: consume from a queue or subscribe to topics, to stdout.
 */
#include <stdio.h>

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
	    "               [-p PREFETCH] [--no-ack] [--create]\n"
	    "       mom-sub [options] (-q QUEUE | -t PATTERN ...) [-P N] [-p N] [-C COUNT] [-W SECONDS] [-e]\n"
	    "               -- COMMAND [ARG...]\n"
	    "       mom-sub -h | --version\n");
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
		usage(stdout);
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-sub %s\n", MOM_VERSION);
	else if ((rv = mom_cli_load_token(&o.cli)) == 0)
		rv = o.argv ? worker_run(&o) : sub_run(&o);
	sub_options_fini(&o);
	return mom_stdout_finish("mom-sub", rv, 1);
}

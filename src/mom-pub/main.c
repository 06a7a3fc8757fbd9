/*
 * mom-pub: publish messages to a queue or topic.
 */
#include <stdio.h>

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
	    "       mom-pub -r [options] (-q QUEUE | -t TOPIC) [-m MSG | -f FILE | -n]\n"
	    "               [-H 'Key: value']... [-W SECONDS] [--reply-expire DURATION]\n"
	    "               (request/reply)\n"
	    "       mom-pub -h | --version\n");
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
		usage(stdout);
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-pub %s\n", MOM_VERSION);
	else if ((rv = mom_cli_load_token(&o.cli)) == 0)
		rv = pub_run(&o);
	pub_options_fini(&o);
	return mom_stdout_finish("mom-pub", rv, 0);
}

/*
 * mom-admin: manage queues, topics and subscriptions; look at a broker.
 */
#include <stdio.h>

#include "admin.h"
#include "cli.h"
#include "mom.h"
#include "options.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-admin [-v] [--quiet] [-s URL[,URL...]] [--json] [-W SECONDS] NOUN VERB [ARGS]\n"
	    "                 [--connect-timeout DURATION] [--reconnect-window DURATION]\n"
	    "                 [--request-timeout DURATION]\n"
	    "  queue create NAME [--ack-wait D] [--max-deliver N] [--dead-letter QUEUE]\n"
	    "                    [--ttl D] [--max-len N] [--max-bytes N] [--idle-expire D]\n"
	    "  queue update NAME [the create options to change; --dead-letter '' removes it]\n"
	    "  queue delete NAME | queue list | queue info NAME | queue purge NAME\n"
	    "  queue peek NAME [-n N] | queue move SRC DST\n"
	    "  topic create NAME [--retain D] [--retain-bytes N]\n"
	    "  topic delete NAME | topic list | topic info NAME\n"
	    "  sub list [TOPIC] | sub delete TOPIC NAME\n"
	    "  cluster status | cluster digest | cluster add ID URL | cluster remove ID |\n"
	    "  cluster transfer [ID]\n"
	    "  ping | stats [--prom]\n"
	    "       mom-admin -h | --version\n");
}

/* -h: the usage, then every option, one line each (the man page says more). */
static void
help(void)
{
	usage(stdout);
	printf("\nQueue options (queue create):\n"
	    "  --ack-wait D               redeliver a message not settled within D (default 30s)\n"
	    "  --max-deliver N            dead-letter (or drop) after N deliveries (default 20)\n"
	    "  --dead-letter QUEUE        where messages go after --max-deliver deliveries\n"
	    "  --ttl D                    drop messages not delivered within D (default: never)\n"
	    "  --max-len N                refuse publishes beyond N messages (75; default: no limit)\n"
	    "  --max-bytes N              refuse publishes beyond N payload bytes (default: no limit)\n"
	    "  --idle-expire D            delete the queue when nobody fetched from it for D\n"
	    "\nTopic options (topic create):\n"
	    "  --retain D                 keep messages this long (default: the broker's --retain)\n"
	    "  --retain-bytes N           keep at most N bytes (default: the broker's --retain-bytes)\n"
	    "\nOutput:\n"
	    "  -n, --count N              with queue peek: show the oldest N messages (default 10)\n"
	    "  --json                     print the broker's answer as JSON\n"
	    "  --prom                     with stats: the Prometheus text of /metrics\n"
	    "\n");
	mom_cli_help(stdout, "wait this long for the broker's answer (default 10), then exit 75");
}

int
main(int argc, char **argv)
{
	struct admin_options o;
	char                 err[512];
	int                  rv;

	/* One answer, written at exit: a write error keeps its errno. */
	(void)mom_stdout_capture();
	if ((rv = admin_options_parse(&o, argc, argv, err, sizeof(err))) != 0) {
		if (err[0] != '\0')
			mom_cli_err(&o.cli, "%s", err);
		if (o.usage)
			usage(stderr);
	} else if (o.action == MOM_ACTION_HELP)
		help();
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-admin %s\n", MOM_VERSION);
	else if ((rv = mom_cli_load_token(&o.cli)) == 0)
		rv = admin_run(&o);
	admin_options_fini(&o);
	return mom_stdout_finish("mom-admin", rv, 0);
}

/*
 * admin_options_test.c: mom-admin's command line, config file and the
 * check of its command (src/mom-admin/options.c).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mom-admin/options.h"
#include "mom.h"
#include "optfixture.h"

static struct admin_options o;
static char                 err[512];

static void
setup(void)
{
	optfix_setup();
	err[0] = '\0';
}

static void
teardown(void)
{
	admin_options_fini(&o);
	optfix_teardown();
}

TestSuite(admin_options, .init = setup, .fini = teardown);

static int
parse(char **argv)
{
	return admin_options_parse(&o, optfix_argc(argv), argv, err, sizeof(err));
}

/* A usage error with this message, and nothing printed. */
static void
assert_usage(int rv, const char *msg, int usage)
{
	cr_assert_eq(rv, MOM_EXIT_USAGE, "rv %d, err '%s'", rv, err);
	cr_assert_str_eq(err, msg);
	cr_assert_eq(o.usage, usage, "usage %d, want %d", o.usage, usage);
	cr_assert_eq(optfix_stderr_bytes(), 0);
}

/* A create option's value, -1 when it was not given. */
static int64_t
num(const char *key)
{
	const struct admin_optval *v = admin_options_get(&o, key);

	return v != NULL ? (int64_t)v->n : -1;
}

Test(admin_options, good_command_line_fills_the_struct)
{
	char *argv[] = { "mom-admin", "-s", "http://h:1", "--json", "-W", "30s", "queue",
		"create", "jobs", "--ack-wait", "1m", "--max-deliver", "5", "--dead-letter",
		"jobs.dead", "--ttl", "1h", "--max-len", "1000", "--max-bytes", "64MiB", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.action, MOM_ACTION_RUN);
	cr_assert_str_eq(o.cli.servers, "http://h:1");
	cr_assert_eq(o.json, 1);
	cr_assert_eq(o.wait_ms, 30000);
	cr_assert_eq(num("ack_wait_ms"), 60000);
	cr_assert_eq(num("max_deliver"), 5);
	cr_assert_str_eq(admin_options_get(&o, "dead_letter")->s, "jobs.dead");
	cr_assert_eq(num("ttl_ms"), 3600000);
	cr_assert_eq(num("max_len"), 1000);
	cr_assert_eq(num("max_bytes"), 64 << 20);
	cr_assert_eq(num("retain_ms"), -1);
	cr_assert_eq(num("retain_bytes"), -1);
	cr_assert_eq(o.nopts, 6);
	/* Options and operands mix (getopt_long permutes). */
	cr_assert_eq(o.nargs, 3);
	cr_assert_str_eq(o.args[0], "queue");
	cr_assert_str_eq(o.args[1], "create");
	cr_assert_str_eq(o.args[2], "jobs");
}

Test(admin_options, defaults)
{
	char *argv[] = { "mom-admin", "ping", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.wait_ms, 10000);
	cr_assert_eq(o.json, 0);
	cr_assert_eq(num("ack_wait_ms"), -1);
	cr_assert_eq(num("max_bytes"), -1);
	cr_assert_null(admin_options_get(&o, "dead_letter"));
	cr_assert_eq(o.nopts, 0);
	cr_assert_str_eq(o.cli.servers, "tcp://127.0.0.1:7420");
}

Test(admin_options, every_command_of_the_usage_text_passes)
{
	static const char *const cmds[][5] = {
		{ "queue", "create", "q" }, { "queue", "delete", "q" }, { "queue", "list" },
		{ "queue", "info", "q" }, { "queue", "purge", "q" }, { "queue", "move", "a", "b" },
		{ "topic", "create", "t" }, { "topic", "delete", "t" }, { "topic", "list" },
		{ "topic", "info", "t" }, { "sub", "list" }, { "sub", "list", "orders.>" },
		{ "sub", "delete", "orders.*", "audit" }, { "cluster", "status" }, { "cluster", "digest" }, { "ping" },
		{ "stats" }, { "cluster", "add", "2", "tcp://10.0.0.2:7422" },
		{ "cluster", "remove", "2" }, { "cluster", "transfer" }, { "cluster", "transfer", "3" },
	};
	size_t i, j;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *argv[6] = { "mom-admin" };

		for (j = 0; j < 4 && cmds[i][j] != NULL; j++)
			argv[j + 1] = (char *)cmds[i][j];
		cr_assert_eq(parse(argv), 0, "%s %s: %s", cmds[i][0], cmds[i][1] ? cmds[i][1] : "",
		    err);
		admin_options_fini(&o);
	}
}

Test(admin_options, help_and_version_stop_the_parse)
{
	char *help[] = { "mom-admin", "-h", "frobnicate", NULL };
	char *version[] = { "mom-admin", "--version", NULL };

	cr_assert_eq(parse(help), 0);
	cr_assert_eq(o.action, MOM_ACTION_HELP);
	admin_options_fini(&o);
	cr_assert_eq(parse(version), 0);
	cr_assert_eq(o.action, MOM_ACTION_VERSION);
}

Test(admin_options, unknown_option_is_a_usage_error_with_the_usage_text)
{
	char *argv[] = { "mom-admin", "--bogus", "ping", NULL };

	assert_usage(parse(argv), "unrecognized option '--bogus'", 1);
}

Test(admin_options, no_command_is_the_usage_text_alone)
{
	char *argv[] = { "mom-admin", "-v", NULL };

	assert_usage(parse(argv), "", 1);
}

Test(admin_options, bad_values)
{
	char *dur[] = { "mom-admin", "queue", "create", "q", "--ack-wait", "soon", NULL };
	char *num[] = { "mom-admin", "queue", "create", "q", "--max-len", "-1", NULL };
	char *size[] = { "mom-admin", "topic", "create", "t", "--retain-bytes", "lots", NULL };

	assert_usage(parse(dur), "bad duration 'soon'", 0);
	admin_options_fini(&o);
	assert_usage(parse(num), "bad number '-1'", 0);
	admin_options_fini(&o);
	assert_usage(parse(size), "bad size 'lots'", 0);
}

Test(admin_options, bad_commands)
{
	static const struct {
		const char *a[5];
		const char *msg;
	} cases[] = {
		{ { "frobnicate" }, "unknown noun (queue, topic, sub, cluster, ping, stats)" },
		{ { "queue", "explode", "x" }, "queue verbs: create update delete list info peek purge move" },
		{ { "queue", "info" }, "wrong number of arguments" },
		{ { "queue", "move", "a" }, "wrong number of arguments" },
		{ { "topic", "list", "x" }, "wrong number of arguments" },
		{ { "topic", "purge", "t" }, "topic verbs: create delete list info" },
		{ { "sub", "delete", "t" }, "sub delete TOPIC NAME" },
		{ { "sub", "list", "a..b" }, "bad topic" },
		{ { "sub", "show" }, "sub verbs: list delete" },
		{ { "cluster", "join" }, "cluster verbs: status digest add remove transfer" },
		{ { "cluster", "status", "x" }, "unexpected argument" },
		{ { "cluster", "digest", "2" }, "unexpected argument" },
		{ { "cluster", "add", "2" }, "cluster add ID URL" },
		{ { "cluster", "add", "2", "tcp://a:1", "x" }, "cluster add ID URL" },
		{ { "cluster", "remove" }, "cluster remove ID" },
		{ { "cluster", "transfer", "2", "3" }, "cluster transfer [ID]" },
		{ { "ping", "now" }, "unexpected argument" },
		{ { "queue", "info", "--prom", "q" }, "--prom goes with stats" },
		{ { "ping", "--prom" }, "--prom goes with stats" },
		{ { "queue", "list", "--ttl", "1h" }, "queue options go with queue create" },
		{ { "queue", "create", "q", "--retain", "1d" }, "topic options go with topic create" },
		{ { "topic", "info", "t", "--retain", "1d" }, "topic options go with topic create" },
		/* Was accepted and the option silently dropped. */
		{ { "topic", "create", "t", "--max-len", "3" }, "queue options go with queue create" },
		{ { "stats", "--dead-letter", "d" }, "queue options go with queue create" },
	};
	size_t i, j;
	char   want[256];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[7] = { "mom-admin" };

		for (j = 0; j < 5 && cases[i].a[j] != NULL; j++)
			argv[j + 1] = (char *)cases[i].a[j];
		snprintf(want, sizeof(want), "%s (mom-admin -h for usage)", cases[i].msg);
		cr_assert_eq(parse(argv), MOM_EXIT_USAGE, "case %zu accepted", i);
		cr_assert_str_eq(err, want);
		cr_assert_eq(o.usage, 0);
		admin_options_fini(&o);
	}
}

Test(admin_options, bad_names)
{
	char *queue[] = { "mom-admin", "queue", "info", "a b", NULL };
	char *dst[] = { "mom-admin", "queue", "move", "a", "b*", NULL };
	char *dead[] = { "mom-admin", "queue", "create", "a", "--dead-letter", ".x", NULL };
	char *topic[] = { "mom-admin", "topic", "create", "t.>", NULL };

	assert_usage(parse(queue), "bad queue name 'a b'", 0);
	admin_options_fini(&o);
	assert_usage(parse(dst), "bad queue name 'b*'", 0);
	admin_options_fini(&o);
	assert_usage(parse(dead), "bad dead-letter queue name '.x'", 0);
	admin_options_fini(&o);
	assert_usage(parse(topic), "bad topic name 't.>'", 0);
}

Test(admin_options, command_line_wins_over_the_config_file)
{
	char *argv[] = { "mom-admin", "-W", "2s", "queue", "list", NULL };

	optfix_write("mom/mom-admin", "server tcp://cfg:1\nwait 30s\njson\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.wait_ms, 2000);
	cr_assert_str_eq(o.cli.servers, "tcp://cfg:1");
	cr_assert_eq(o.json, 1);
	cr_assert_eq(o.nargs, 2);
}

/* What the file sets is checked with the command: queue options go with queue create. */
Test(admin_options, config_queue_option_with_another_command_is_a_usage_error)
{
	char *argv[] = { "mom-admin", "queue", "list", NULL };

	optfix_write("mom/mom-admin", "ack-wait 30s\n");
	assert_usage(parse(argv), "queue options go with queue create (mom-admin -h for usage)", 0);
}

/* The create options come from adminops.c's table: each flag, its type, its limit. */
Test(admin_options, every_create_flag_of_the_table_is_an_option)
{
	const struct mom_admin_op  *op;
	const struct mom_admin_opt *opt;

	for (op = mom_admin_ops(); op->name != NULL; op++)
		for (opt = op->opts; opt != NULL && opt->key != NULL; opt++) {
			char  flag[64], noun[32];
			char *argv[] = { "mom-admin", noun, "create", "x", flag,
				opt->type == MOM_AOPT_NAME ? "dead" : "1", NULL };

			if (opt->flag == NULL)
				continue;
			snprintf(flag, sizeof(flag), "--%s", opt->flag);
			snprintf(noun, sizeof(noun), "%s", op->object);
			cr_assert_eq(parse(argv), 0, "%s %s: %s", op->name, flag, err);
			cr_assert_not_null(admin_options_get(&o, opt->key), "%s", opt->key);
			admin_options_fini(&o);
		}
}

Test(admin_options, a_flag_given_twice_counts_once_the_last_wins)
{
	char *argv[] = { "mom-admin", "queue", "create", "q", "--max-len", "5", "--max-len", "7",
		NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.nopts, 1);
	cr_assert_eq(num("max_len"), 7);
}

Test(admin_options, values_over_the_tables_limit_are_refused)
{
	char *big[] = { "mom-admin", "queue", "create", "q", "--max-deliver", "4294967296", NULL };
	char *ok[] = { "mom-admin", "queue", "create", "q", "--max-deliver", "4294967295", NULL };

	assert_usage(parse(big), "bad number '4294967296'", 0);
	admin_options_fini(&o);
	cr_assert_eq(parse(ok), 0, "err: %s", err);
	cr_assert_eq(num("max_deliver"), 4294967295LL);
}

Test(admin_options, connect_timeout_from_the_config_file_and_the_command_line)
{
	char *argv[] = { "mom-admin", "--connect-timeout", "5s", "ping", NULL };
	char *cfg[] = { "mom-admin", "ping", NULL };

	optfix_write("mom/mom-admin", "connect-timeout 20s\nreconnect-window 3s\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.cli.retry_ms, 5000);
	cr_assert_eq(o.cli.reconnect_ms, 3000);
	admin_options_fini(&o);
	cr_assert_eq(parse(cfg), 0, "err: %s", err);
	cr_assert_eq(o.cli.retry_ms, 20000);
}

Test(admin_options, request_timeout_from_the_config_file_and_the_command_line)
{
	char *argv[] = { "mom-admin", "--request-timeout", "750ms", "ping", NULL };
	char *cfg[] = { "mom-admin", "ping", NULL };

	optfix_write("mom/mom-admin", "request-timeout 4s\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.cli.request_ms, 750);
	admin_options_fini(&o);
	cr_assert_eq(parse(cfg), 0, "err: %s", err);
	cr_assert_eq(o.cli.request_ms, 4000);
}

/* queue update takes queue create's flags; peek takes -n (issue 12, items 6 and 7). */
Test(admin_options, queue_update_and_peek)
{
	char *up[] = { "mom-admin", "queue", "update", "q", "--max-deliver", "3",
		"--dead-letter", "", NULL };
	char *none[] = { "mom-admin", "queue", "update", "q", NULL };
	char *peek[] = { "mom-admin", "queue", "peek", "q", "-n", "5", NULL };
	char *bad[] = { "mom-admin", "queue", "peek", "q", "-n", "0", NULL };
	char *misplaced[] = { "mom-admin", "queue", "info", "q", "-n", "5", NULL };
	char *tupd[] = { "mom-admin", "topic", "create", "t", "--max-len", "3", NULL };

	cr_assert_eq(parse(up), 0, "%s", err);
	cr_assert_eq(admin_options_get(&o, "max_deliver")->n, 3);
	cr_assert_str_eq(admin_options_get(&o, "dead_letter")->s, "");
	admin_options_fini(&o);
	assert_usage(parse(none), "queue update: nothing to change (mom-admin -h for usage)", 0);
	cr_assert_eq(parse(peek), 0, "%s", err);
	cr_assert_eq(o.count, 5);
	admin_options_fini(&o);
	assert_usage(parse(bad), "bad count '0' (1 to 1000)", 0);
	assert_usage(parse(misplaced), "-n goes with queue peek (mom-admin -h for usage)", 0);
	assert_usage(parse(tupd), "queue options go with queue create (mom-admin -h for usage)",
	    0);
}

Test(admin_options, cluster_node_ids_and_urls)
{
	static const struct {
		const char *a[5];
		const char *msg;
	} bad[] = {
		{ { "cluster", "remove", "0" }, "bad node id '0' (a positive integer)" },
		{ { "cluster", "remove", "1.5" }, "bad node id '1.5' (a positive integer)" },
		{ { "cluster", "remove", "02" }, "bad node id '02' (a positive integer)" },
		{ { "cluster", "remove", "2x" }, "bad node id '2x' (a positive integer)" },
		{ { "cluster", "transfer", "one" }, "bad node id 'one' (a positive integer)" },
		/* Past 2^53 a JSON number is no longer exact. */
		{ { "cluster", "remove", "9007199254740993" },
		    "bad node id '9007199254740993' (a positive integer)" },
		{ { "cluster", "add", "2", "10.0.0.2:7422" },
		    "bad cluster URL '10.0.0.2:7422' (SCHEME://ADDRESS, e.g. tcp://10.0.0.2:7422)" },
		{ { "cluster", "add", "2", "://x" },
		    "bad cluster URL '://x' (SCHEME://ADDRESS, e.g. tcp://10.0.0.2:7422)" },
		{ { "cluster", "add", "2", "tcp://" },
		    "bad cluster URL 'tcp://' (SCHEME://ADDRESS, e.g. tcp://10.0.0.2:7422)" },
		{ { "cluster", "add", "2", "1tcp://x" },
		    "bad cluster URL '1tcp://x' (SCHEME://ADDRESS, e.g. tcp://10.0.0.2:7422)" },
	};
	char  *add[] = { "mom-admin", "cluster", "add", "9007199254740992", "tls+tcp://h:7422",
		NULL };
	char  *tr[] = { "mom-admin", "cluster", "transfer", NULL };
	size_t i, j;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[7] = { "mom-admin" };

		for (j = 0; j < 5 && bad[i].a[j] != NULL; j++)
			argv[j + 1] = (char *)bad[i].a[j];
		cr_assert_eq(parse(argv), MOM_EXIT_USAGE, "case %zu accepted", i);
		cr_assert_str_eq(err, bad[i].msg);
		admin_options_fini(&o);
	}
	cr_assert_eq(parse(add), 0, "%s", err);
	cr_assert_eq(o.node, UINT64_C(9007199254740992));
	admin_options_fini(&o);
	cr_assert_eq(parse(tr), 0, "%s", err);
	cr_assert_eq(o.node, 0, "transfer without an id: any node");
}

/*
 * sub_options_test.c: mom-sub's command line and config file
 * (src/mom-sub/options.c).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mom-sub/options.h"
#include "mom.h"
#include "optfixture.h"
#include "wire.h"

static struct sub_options o;
static char               err[512];

static void
setup(void)
{
	optfix_setup();
	err[0] = '\0';
}

static void
teardown(void)
{
	sub_options_fini(&o);
	optfix_teardown();
}

TestSuite(sub_options, .init = setup, .fini = teardown);

static int
parse(char **argv)
{
	return sub_options_parse(&o, optfix_argc(argv), argv, err, sizeof(err));
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

Test(sub_options, good_command_line_fills_the_struct)
{
	char *argv[] = { "mom-sub", "-s", "tcp://h:1", "-t", "orders.*", "-d", "audit",
		"--from", "first", "-C", "10", "-W", "3s", "-e", "-F", "%t %p\\n", "-p", "32",
		"--no-ack", "-v", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.action, MOM_ACTION_RUN);
	cr_assert_str_eq(o.cli.servers, "tcp://h:1");
	cr_assert_eq(o.kind, MOM_KIND_TOPIC);
	cr_assert_str_eq(o.name, "orders.*");
	cr_assert_str_eq(o.durable, "audit");
	cr_assert_eq(o.from, MOM_FROM_FIRST);
	cr_assert_eq(o.count, 10);
	cr_assert_eq(o.wait_ms, 3000);
	cr_assert_eq(o.drain, 1);
	cr_assert_eq(o.out, OUT_FORMAT);
	cr_assert_not_null(o.fmt);
	cr_assert_eq(o.prefetch, 32);
	cr_assert_eq(o.noack, 1);
	cr_assert_eq(o.cli.verbose, 1);
	cr_assert_null(o.argv);
}

Test(sub_options, defaults)
{
	char *argv[] = { "mom-sub", "-q", "jobs", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_eq(o.out, OUT_LINES);
	cr_assert_eq(o.prefetch, 256);
	cr_assert_eq(o.wait_ms, -1);
	cr_assert_eq(o.count, 0);
	cr_assert_eq(o.parallel, 0);
	cr_assert_null(o.fmt);
}

Test(sub_options, worker_mode_takes_the_command_after_the_double_dash)
{
	char *argv[] = { "mom-sub", "-q", "jobs", "-P", "4", "--", "sh", "-c", "cat -n", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_not_null(o.argv);
	cr_assert_str_eq(o.argv[0], "sh");
	cr_assert_str_eq(o.argv[1], "-c");
	cr_assert_str_eq(o.argv[2], "cat -n");
	cr_assert_null(o.argv[3]);
	cr_assert_eq(o.parallel, 4);
}

/* Issue 12, item 3: fair dispatch unless -p asks for read-ahead. */
Test(sub_options, worker_mode_holds_only_what_it_can_start_by_default)
{
	char *one[] = { "mom-sub", "-q", "jobs", "--", "true", NULL };
	char *four[] = { "mom-sub", "-q", "jobs", "-P", "4", "--", "true", NULL };

	cr_assert_eq(parse(one), 0, "err: %s", err);
	cr_assert_eq(o.prefetch, 1, "held at once: %u", o.prefetch);
	sub_options_fini(&o);
	cr_assert_eq(parse(four), 0, "err: %s", err);
	cr_assert_eq(o.prefetch, 4, "held at once: %u", o.prefetch);
}

Test(sub_options, worker_mode_p_is_how_many_it_holds_at_least_P)
{
	char *ahead[] = { "mom-sub", "-q", "jobs", "-P", "2", "-p", "10", "--", "true", NULL };
	char *less[] = { "mom-sub", "-q", "jobs", "-p", "1", "-P", "3", "--", "true", NULL };

	cr_assert_eq(parse(ahead), 0, "err: %s", err);
	cr_assert_eq(o.prefetch, 10);
	cr_assert_eq(o.parallel, 2);
	sub_options_fini(&o);
	cr_assert_eq(parse(less), 0, "err: %s", err);
	cr_assert_eq(o.prefetch, 3, "a worker holds at least what it runs: %u", o.prefetch);
}

Test(sub_options, from_a_time)
{
	char *argv[] = { "mom-sub", "-t", "news", "--from", "2025-01-02T03:04:05Z", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.from, MOM_FROM_TIME);
	cr_assert_eq(o.from_time_ms, 1735787045000LL);
}

Test(sub_options, help_and_version_stop_the_parse)
{
	char *help[] = { "mom-sub", "--help", "-C", "0", NULL };
	char *version[] = { "mom-sub", "--version", NULL };

	cr_assert_eq(parse(help), 0);
	cr_assert_eq(o.action, MOM_ACTION_HELP);
	sub_options_fini(&o);
	cr_assert_eq(parse(version), 0);
	cr_assert_eq(o.action, MOM_ACTION_VERSION);
}

Test(sub_options, unknown_option_is_a_usage_error_with_the_usage_text)
{
	char *argv[] = { "mom-sub", "--bogus", "-q", "jobs", NULL };
	char *missing[] = { "mom-sub", "-q", "jobs", "-C", NULL };

	assert_usage(parse(argv), "unrecognized option '--bogus'", 1);
	sub_options_fini(&o);
	assert_usage(parse(missing), "option requires an argument -- 'C'", 1);
}

Test(sub_options, bad_values_are_usage_errors)
{
	static const struct {
		const char *a, *b, *msg;
	} cases[] = {
		{ "-C", "0", "bad -C '0'" },
		{ "-C", "-1", "bad -C '-1'" },
		{ "-p", "10001", "bad -p '10001'" },
		{ "-P", "1001", "bad -P '1001'" },
		{ "-F", "%h{unclosed", NULL },
		{ "-d", "a b", "bad subscription name 'a b'" },
		{ "-W", "soon", "bad -W 'soon' (seconds, or a duration like 500ms, 2m)" },
		{ "--from", "yesterdayish", "bad --from 'yesterdayish' (first, last, new, an "
		    "ISO-8601 time or a duration ago)" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "mom-sub", "-t", "news", (char *)cases[i].a, (char *)cases[i].b,
			NULL };

		if (cases[i].msg != NULL)
			assert_usage(parse(argv), cases[i].msg, 0);
		else {
			cr_assert_eq(parse(argv), MOM_EXIT_USAGE);
			cr_assert(strncmp(err, "bad -F format: ", 15) == 0, "err: %s", err);
		}
		sub_options_fini(&o);
	}
}

Test(sub_options, bad_queue_name_or_topic_pattern)
{
	char *queue[] = { "mom-sub", "-q", "jobs.*", NULL };
	char *topic[] = { "mom-sub", "-t", "a..b", NULL };

	assert_usage(parse(queue), "bad queue name 'jobs.*'", 0);
	sub_options_fini(&o);
	assert_usage(parse(topic), "bad topic pattern 'a..b'", 0);
}

Test(sub_options, output_forms_conflict)
{
	char *argv[] = { "mom-sub", "-q", "jobs", "-0", "-N", NULL };

	assert_usage(parse(argv), "give one of -0, -N, -F, --jsonl", 0);
}

Test(sub_options, the_last_format_counts)
{
	char *argv[] = { "mom-sub", "-q", "jobs", "-F", "%p", "-F", "%i", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.out, OUT_FORMAT);
	cr_assert_not_null(o.fmt);
}

Test(sub_options, queue_and_topic_conflict)
{
	char *argv[] = { "mom-sub", "-q", "jobs", "-t", "news", NULL };

	assert_usage(parse(argv), "give one of -q and -t, once", 0);
}

Test(sub_options, options_that_go_with_something_else)
{
	char *durable[] = { "mom-sub", "-q", "jobs", "-d", "name", NULL };
	char *create[] = { "mom-sub", "-t", "news", "--create", NULL };
	char *worker[] = { "mom-sub", "-q", "jobs", "-0", "--", "true", NULL };
	char *noack[] = { "mom-sub", "-q", "jobs", "--no-ack", "--", "true", NULL };
	char *parallel[] = { "mom-sub", "-q", "jobs", "-P", "2", NULL };

	assert_usage(parse(durable), "-d and --from are for topics (-t)", 0);
	sub_options_fini(&o);
	assert_usage(parse(create), "--create is for queues (-q)", 0);
	sub_options_fini(&o);
	assert_usage(parse(worker), "-0, -N, -F, --jsonl and --no-ack are not for worker mode "
	    "('-- COMMAND')", 0);
	sub_options_fini(&o);
	assert_usage(parse(noack), "-0, -N, -F, --jsonl and --no-ack are not for worker mode "
	    "('-- COMMAND')", 0);
	sub_options_fini(&o);
	assert_usage(parse(parallel), "-P is for worker mode ('-- COMMAND')", 0);
}

Test(sub_options, missing_target_and_command_are_usage_errors_with_the_usage_text)
{
	char *target[] = { "mom-sub", "-C", "1", NULL };
	char *command[] = { "mom-sub", "-q", "jobs", "--", NULL };
	char *extra[] = { "mom-sub", "-q", "jobs", "extra", NULL };

	assert_usage(parse(target), "give a queue (-q) or a topic pattern (-t)", 1);
	sub_options_fini(&o);
	assert_usage(parse(command), "give a command after '--'", 1);
	sub_options_fini(&o);
	assert_usage(parse(extra), "unexpected argument 'extra'", 1);
}

Test(sub_options, command_line_wins_over_the_config_file)
{
	char *argv[] = { "mom-sub", "-p", "8", "-q", "jobs", NULL };

	optfix_write("mom/mom-sub", "# defaults\nserver tcp://cfg:1\nprefetch 64\nwait 1m\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.prefetch, 8);
	cr_assert_str_eq(o.cli.servers, "tcp://cfg:1");
	cr_assert_eq(o.wait_ms, 60000);
}

Test(sub_options, config_file_errors_name_the_file_and_line)
{
	char *argv[] = { "mom-sub", "-q", "jobs", NULL };
	char  want[256];

	snprintf(want, sizeof(want), "%s:1: bad character in option name",
	    optfix_write("mom/mom-sub", "pre!fetch 3\n"));
	assert_usage(parse(argv), want, 0);
}

/*
 * The file holds defaults: a queue or topic, or an output form, given
 * again on the command line is the command line's, not a conflict.
 */
Test(sub_options, config_queue_and_command_line_queue_mean_the_command_lines)
{
	char *argv[] = { "mom-sub", "-q", "y", NULL };

	optfix_write("mom/mom-sub", "queue x\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(o.name, "y");
}

Test(sub_options, config_topic_and_command_line_queue_mean_the_queue)
{
	char *argv[] = { "mom-sub", "-q", "jobs", NULL };

	optfix_write("mom/mom-sub", "topic orders.>\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(o.name, "jobs");
}

Test(sub_options, config_queue_and_command_line_topic_mean_the_topic)
{
	char *argv[] = { "mom-sub", "-t", "orders.*", "-d", "audit", NULL };

	optfix_write("mom/mom-sub", "queue jobs\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_TOPIC);
	cr_assert_str_eq(o.name, "orders.*");
	cr_assert_str_eq(o.durable, "audit");
}

Test(sub_options, config_output_and_command_line_output_mean_the_command_lines)
{
	char *null[] = { "mom-sub", "-q", "jobs", "-0", NULL };
	char *format[] = { "mom-sub", "-q", "jobs", "-F", "%i", NULL };

	optfix_write("mom/mom-sub", "format %t: %p\\n\n");
	cr_assert_eq(parse(null), 0, "err: %s", err);
	cr_assert_eq(o.out, OUT_NUL);
	cr_assert_null(o.fmt);
	sub_options_fini(&o);
	optfix_write("mom/mom-sub", "jsonl\n");
	cr_assert_eq(parse(format), 0, "err: %s", err);
	cr_assert_eq(o.out, OUT_FORMAT);
	cr_assert_not_null(o.fmt);
}

Test(sub_options, conflicts_within_one_layer_are_still_usage_errors)
{
	char *args[] = { "mom-sub", "-q", "a", "-t", "b", NULL };
	char *none[] = { "mom-sub", NULL };
	char  want[400];

	optfix_write("mom/mom-sub", "topic x\n");
	assert_usage(parse(args), "give one of -q and -t, once", 0);
	sub_options_fini(&o);
	snprintf(want, sizeof(want), "%s:3: give one of -0, -N, -F, --jsonl",
	    optfix_write("mom/mom-sub", "queue x\nnull\njsonl\n"));
	assert_usage(parse(none), want, 0);
}

/* What the file sets that does not go with the command line's target is still an error. */
Test(sub_options, config_durable_with_a_command_line_queue_is_a_usage_error)
{
	char *argv[] = { "mom-sub", "-q", "jobs", NULL };

	optfix_write("mom/mom-sub", "topic orders.>\ndurable audit\n");
	assert_usage(parse(argv), "-d and --from are for topics (-t)", 0);
}

Test(sub_options, connect_timeout_and_reconnect_window)
{
	char *argv[] = { "mom-sub", "-q", "a", "--connect-timeout", "1.5", "--reconnect-window",
		"10s", NULL };
	char *bad[] = { "mom-sub", "-q", "a", "--reconnect-window", "-1", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.cli.retry_ms, 1500);
	cr_assert_eq(o.cli.reconnect_ms, 10000);
	sub_options_fini(&o);
	assert_usage(parse(bad), "bad --reconnect-window '-1' (a duration over 0: seconds, or "
	    "like 500ms, 2m)", 0);
}

Test(sub_options, request_timeout)
{
	char *argv[] = { "mom-sub", "-q", "a", "--request-timeout", "3", NULL };
	char *bad[] = { "mom-sub", "-q", "a", "--request-timeout", "-1", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.cli.request_ms, 3000);
	sub_options_fini(&o);
	assert_usage(parse(bad), "bad --request-timeout '-1' (a duration over 0: seconds, or "
	    "like 500ms, 2m)", 0);
}

/* --newline (worker mode's stdin) and --progress (plain mode's stderr) are flags. */
Test(sub_options, newline_is_for_workers_and_progress_for_plain_mode)
{
	char *worker[] = { "mom-sub", "-q", "calc", "--newline", "--", "bc", NULL };
	char *plain[] = { "mom-sub", "-q", "jobs", "-C", "5", "--progress", NULL };
	char *nl_plain[] = { "mom-sub", "-q", "jobs", "--newline", NULL };
	char *pr_worker[] = { "mom-sub", "-q", "jobs", "--progress", "--", "true", NULL };

	cr_assert_eq(parse(worker), 0, "err: %s", err);
	cr_assert_eq(o.newline, 1);
	cr_assert_eq(o.progress, 0);
	sub_options_fini(&o);
	cr_assert_eq(parse(plain), 0, "err: %s", err);
	cr_assert_eq(o.progress, 1);
	cr_assert_eq(o.newline, 0);
	sub_options_fini(&o);
	assert_usage(parse(nl_plain), "--newline is for worker mode ('-- COMMAND')", 0);
	sub_options_fini(&o);
	assert_usage(parse(pr_worker), "--progress is not for worker mode ('-- COMMAND')", 0);
}

/*
 * pub_options_test.c: mom-pub's command line and config file
 * (src/mom-pub/options.c).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "mom-pub/options.h"
#include "mom.h"
#include "optfixture.h"
#include "wire.h"

static struct pub_options o;
static char               err[512];

static void
setup(void)
{
	optfix_setup();
	err[0] = '\0';
	/* Not a terminal: without a source, stdin is the message. */
	cr_redirect_stdin();
}

static void
teardown(void)
{
	pub_options_fini(&o);
	optfix_teardown();
}

TestSuite(pub_options, .init = setup, .fini = teardown);

static int
parse(char **argv)
{
	return pub_options_parse(&o, optfix_argc(argv), argv, err, sizeof(err));
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

Test(pub_options, good_command_line_fills_the_struct)
{
	char *argv[] = { "mom-pub", "-s", "tcp://h:1", "-q", "jobs", "-m", "hello", "-H", "A: 1",
		"--header=B: 2", "--id", "job-1", "--ttl", "1m", "--delay", "500ms", "-W", "2s",
		"--create", "-v", "--quiet", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.action, MOM_ACTION_RUN);
	cr_assert_str_eq(o.cli.servers, "tcp://h:1");
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(o.name, "jobs");
	cr_assert_eq(o.src, SRC_MSG);
	cr_assert_str_eq(o.msg, "hello");
	cr_assert_eq(o.nheaders, 2);
	cr_assert_str_eq(o.headers[0], "A: 1");
	cr_assert_str_eq(o.headers[1], "B: 2");
	cr_assert_str_eq(o.id, "job-1");
	cr_assert_eq(o.ttl_ms, 60000);
	cr_assert_eq(o.delay_ms, 500);
	cr_assert_eq(o.wait_ms, 2000);
	cr_assert_eq(o.cli.connect_ms, 2000);
	cr_assert_eq(o.create, 1);
	cr_assert_eq(o.cli.verbose, 1);
	cr_assert_eq(o.cli.quiet, 1);
	cr_assert_eq(o.request, 0);
}

Test(pub_options, defaults)
{
	char *argv[] = { "mom-pub", "-t", "news", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.cli.servers, "tcp://127.0.0.1:7420");
	cr_assert_eq(o.kind, MOM_KIND_TOPIC);
	cr_assert_eq(o.src, SRC_STDIN);
	cr_assert_eq(o.wait_ms, -1);
	cr_assert_eq(o.nheaders, 0);
	cr_assert_null(o.id);
}

Test(pub_options, mom_url_is_the_default_server)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "-n", NULL };

	setenv("MOM_URL", "tcp://env:9", 1);
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.cli.servers, "tcp://env:9");
	cr_assert_eq(o.src, SRC_EMPTY);
}

Test(pub_options, help_and_version_stop_the_parse)
{
	char *help[] = { "mom-pub", "-h", "--bogus", NULL };
	char *version[] = { "mom-pub", "--version", "-q", "bad name", NULL };

	cr_assert_eq(parse(help), 0);
	cr_assert_eq(o.action, MOM_ACTION_HELP);
	pub_options_fini(&o);
	cr_assert_eq(parse(version), 0);
	cr_assert_eq(o.action, MOM_ACTION_VERSION);
}

Test(pub_options, unknown_option_is_a_usage_error_with_getopts_message)
{
	char *argv[] = { "mom-pub", "--bogus", "-q", "jobs", "-m", "x", NULL };

	assert_usage(parse(argv), "unrecognized option '--bogus'", 1);
}

Test(pub_options, getopt_messages_are_glibcs)
{
	static const struct {
		const char *arg, *msg;
	} cases[] = {
		{ "-x", "invalid option -- 'x'" },
		{ "-vx", "invalid option -- 'x'" },
		{ "-q", "option requires an argument -- 'q'" },
		{ "--queue", "option '--queue' requires an argument" },
		{ "--que", "option '--queue' requires an argument" },
		{ "--create=yes", "option '--create' doesn't allow an argument" },
		{ "--verbose=2", "option '--verbose' doesn't allow an argument" },
		{ "--bogus=1", "unrecognized option '--bogus'" }, /* never the value: it may be a secret */
		{ "--t", "option '--t' is ambiguous; possibilities: '--topic' '--ttl' '--token-file'" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "mom-pub", (char *)cases[i].arg, NULL };

		assert_usage(parse(argv), cases[i].msg, 1);
		pub_options_fini(&o);
	}
}

Test(pub_options, bad_values_are_usage_errors_without_the_usage_text)
{
	char *name[] = { "mom-pub", "-q", "a..b", "-m", "x", NULL };
	char *ttl[] = { "mom-pub", "-q", "a", "-m", "x", "--ttl", "forever", NULL };
	char *wait[] = { "mom-pub", "-q", "a", "-m", "x", "-W", "soon", NULL };
	char *id[] = { "mom-pub", "-q", "a", "-m", "x", "--id", "has space", NULL };

	assert_usage(parse(name), "bad queue name 'a..b'", 0);
	pub_options_fini(&o);
	assert_usage(parse(ttl), "bad duration 'forever'", 0);
	pub_options_fini(&o);
	assert_usage(parse(wait), "bad -W 'soon' (seconds, or a duration like 500ms, 2m)", 0);
	pub_options_fini(&o);
	assert_usage(parse(id), "bad --id (1-256 printable characters, no spaces)", 0);
}

Test(pub_options, two_sources_conflict)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "-m", "x", "-n", NULL };

	assert_usage(parse(argv), "give one of -m, -f, -l, -0, --jsonl, -n", 0);
}

Test(pub_options, the_same_source_twice_is_the_last)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "-m", "x", "-m", "y", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.msg, "y");
}

Test(pub_options, queue_and_topic_conflict)
{
	char *both[] = { "mom-pub", "-q", "jobs", "-t", "news", "-m", "x", NULL };
	char *twice[] = { "mom-pub", "-q", "jobs", "-q", "jobs", "-m", "x", NULL };

	assert_usage(parse(both), "give one of -q and -t, once", 0);
	pub_options_fini(&o);
	assert_usage(parse(twice), "give one of -q and -t, once", 0);
}

Test(pub_options, request_conflicts)
{
	char *lines[] = { "mom-pub", "-r", "-q", "calc", "-l", NULL };
	char *hdr[] = { "mom-pub", "-r", "-q", "calc", "-m", "x", "-H", "mom-reply-to : q", NULL };

	assert_usage(parse(lines), "-r sends one message (-m, -f, -n or stdin), not -l, -0 or "
	    "--jsonl", 0);
	pub_options_fini(&o);
	assert_usage(parse(hdr), "-r sets " MOM_HDR_REPLY_TO " and " MOM_HDR_CORRELATION
	    " itself", 0);
}

Test(pub_options, id_names_one_message)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "-l", "--id", "one", NULL };

	assert_usage(parse(argv), "--id names one message; with --jsonl give \"id\" per line", 0);
}

Test(pub_options, missing_target_is_a_usage_error_with_the_usage_text)
{
	char *argv[] = { "mom-pub", "-m", "x", NULL };

	assert_usage(parse(argv), "give a queue (-q) or a topic (-t)", 1);
}

Test(pub_options, jsonl_needs_no_target_but_create_does)
{
	char *jsonl[] = { "mom-pub", "--jsonl", NULL };
	char *create[] = { "mom-pub", "--jsonl", "--create", NULL };

	cr_assert_eq(parse(jsonl), 0, "err: %s", err);
	cr_assert_eq(o.kind, 0);
	cr_assert_eq(o.src, SRC_JSONL);
	pub_options_fini(&o);
	assert_usage(parse(create), "--create needs -q or -t", 0);
}

Test(pub_options, unexpected_argument)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "hello", NULL };

	assert_usage(parse(argv), "unexpected argument 'hello'", 1);
}

Test(pub_options, nothing_to_publish_from_a_terminal)
{
	char *argv[] = { "mom-pub", "-q", "jobs", NULL };
	int   m, s;

	/* stdin a terminal: the pseudo-terminal's slave side. */
	cr_assert((m = posix_openpt(O_RDWR | O_NOCTTY)) >= 0);
	cr_assert(grantpt(m) == 0 && unlockpt(m) == 0);
	cr_assert((s = open(ptsname(m), O_RDWR | O_NOCTTY)) >= 0);
	cr_assert_eq(dup2(s, STDIN_FILENO), STDIN_FILENO);
	assert_usage(parse(argv), "nothing to publish (-m, -f, -l, -0, --jsonl, -n or stdin)", 0);
	close(s);
	close(m);
}

Test(pub_options, command_line_wins_over_the_config_file)
{
	char *argv[] = { "mom-pub", "-s", "tcp://cli:2", "--ttl", "2s", "-q", "jobs", "-m", "x",
		NULL };

	optfix_write("mom/mom-pub", "server tcp://cfg:1\nttl 1s\nwait=5s\nheader A: 1\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.cli.servers, "tcp://cli:2");
	cr_assert_eq(o.ttl_ms, 2000);
	/* Not on the command line: the file's. */
	cr_assert_eq(o.wait_ms, 5000);
	cr_assert_eq(o.nheaders, 1);
	cr_assert_str_eq(o.headers[0], "A: 1");
}

Test(pub_options, config_file_target_is_used_without_one_on_the_command_line)
{
	char *argv[] = { "mom-pub", "-m", "x", NULL };

	optfix_write("mom/mom-pub", "queue from-file\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(o.name, "from-file");
}

Test(pub_options, config_file_errors_name_the_file_and_line)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "-m", "x", NULL };
	char  want[256];

	snprintf(want, sizeof(want), "%s:2: expected an option name",
	    optfix_write("mom/mom-pub", "quiet\n-q x\n"));
	assert_usage(parse(argv), want, 0);
}

Test(pub_options, unknown_option_in_the_config_file)
{
	char *argv[] = { "mom-pub", "-q", "jobs", "-m", "x", NULL };

	char  want[400];

	/* The file and line, the name as the file spells it, and no usage text. */
	snprintf(want, sizeof(want), "%s:1: unknown option 'bogus'",
	    optfix_write("mom/mom-pub", "bogus 1\n"));
	assert_usage(parse(argv), want, 0);
}

/*
 * The file holds defaults: a queue or topic, or a source, given again on
 * the command line is the command line's, not a conflict.
 */
Test(pub_options, config_queue_and_command_line_queue_mean_the_command_lines)
{
	char *argv[] = { "mom-pub", "-q", "y", "-m", "x", NULL };

	optfix_write("mom/mom-pub", "queue x\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(o.name, "y");
}

Test(pub_options, config_topic_and_command_line_queue_mean_the_queue)
{
	char *argv[] = { "mom-pub", "-q", "y", "-m", "x", NULL };

	optfix_write("mom/mom-pub", "topic news\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_QUEUE);
	cr_assert_str_eq(o.name, "y");
}

Test(pub_options, config_queue_and_command_line_topic_mean_the_topic)
{
	char *argv[] = { "mom-pub", "-t", "news", "-m", "x", NULL };

	optfix_write("mom/mom-pub", "queue x\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.kind, MOM_KIND_TOPIC);
	cr_assert_str_eq(o.name, "news");
}

Test(pub_options, config_source_and_command_line_source_mean_the_command_lines)
{
	char *msg[] = { "mom-pub", "-q", "y", "-m", "x", NULL };
	char *lines[] = { "mom-pub", "-q", "y", "-l", NULL };

	optfix_write("mom/mom-pub", "file /etc/motd\n");
	cr_assert_eq(parse(msg), 0, "err: %s", err);
	cr_assert_eq(o.src, SRC_MSG);
	cr_assert_str_eq(o.msg, "x");
	cr_assert_null(o.file);
	pub_options_fini(&o);
	optfix_write("mom/mom-pub", "lines\n");
	cr_assert_eq(parse(lines), 0, "err: %s", err);
	cr_assert_eq(o.src, SRC_LINES);
}

Test(pub_options, conflicts_within_the_config_file_are_still_usage_errors)
{
	char *argv[] = { "mom-pub", "-m", "x", NULL };
	char  want[400];

	/* The line of the second. */
	snprintf(want, sizeof(want), "%s:2: give one of -q and -t, once",
	    optfix_write("mom/mom-pub", "queue x\ntopic y\n"));
	assert_usage(parse(argv), want, 0);
}

Test(pub_options, conflicts_within_the_command_line_are_still_usage_errors)
{
	char *argv[] = { "mom-pub", "-q", "a", "-t", "b", "-m", "x", NULL };

	optfix_write("mom/mom-pub", "queue x\n");
	assert_usage(parse(argv), "give one of -q and -t, once", 0);
}

/* Secrets: never taken from an abbreviation, never printed back. */
Test(pub_options, an_abbreviated_token_file_option_is_refused_without_its_value)
{
	char *sep[] = { "mom-pub", "--token", "eyJhbGciOi.SECRET.sig", "-q", "q", "-m", "x", NULL };
	char *eq[] = { "mom-pub", "--tok=eyJhbGciOi.SECRET.sig", "-q", "q", "-m", "x", NULL };
	char *full[] = { "mom-pub", "--token-file", "/some/file", "-q", "q", "-m", "x", NULL };
	char *fulleq[] = { "mom-pub", "--token-file=/some/file", "-q", "q", "-m", "x", NULL };

	assert_usage(parse(sep), "--token is not an option: a token comes from a file "
	    "(--token-file FILE, MOM_TOKEN_FILE) or MOM_TOKEN", 0);
	pub_options_fini(&o);
	assert_usage(parse(eq), "--tok is not an option: a token comes from a file "
	    "(--token-file FILE, MOM_TOKEN_FILE) or MOM_TOKEN", 0);
	pub_options_fini(&o);
	cr_assert_eq(parse(full), 0, "err: %s", err);
	cr_assert_str_eq(o.cli.token_file, "/some/file");
	pub_options_fini(&o);
	cr_assert_eq(parse(fulleq), 0, "err: %s", err);
	cr_assert_str_eq(o.cli.token_file, "/some/file");
}

Test(pub_options, an_unknown_option_is_printed_up_to_its_value)
{
	char *argv[] = { "mom-pub", "--passwd=hunter2", "-q", "q", NULL };

	assert_usage(parse(argv), "unrecognized option '--passwd'", 1);
}

Test(pub_options, reply_expire_is_a_duration_of_a_second_or_more)
{
	char *dflt[] = { "mom-pub", "-q", "calc", "-r", "-m", "x", NULL };
	char *good[] = { "mom-pub", "-q", "calc", "-r", "--reply-expire", "2s", "-m", "x", NULL };
	char *small[] = { "mom-pub", "-q", "calc", "-r", "--reply-expire", "500ms", "-m", "x",
		NULL };
	char *bad[] = { "mom-pub", "-q", "calc", "-r", "--reply-expire", "soon", "-m", "x", NULL };

	cr_assert_eq(parse(dflt), 0, "err: %s", err);
	cr_assert_eq(o.reply_expire_ms, PUB_REPLY_EXPIRE_MS);
	cr_assert_eq(o.reply_expire_ms, 300000);
	pub_options_fini(&o);
	cr_assert_eq(parse(good), 0, "err: %s", err);
	cr_assert_eq(o.reply_expire_ms, 2000);
	pub_options_fini(&o);
	assert_usage(parse(small), "bad --reply-expire '500ms' (a duration of 1s or more)", 0);
	pub_options_fini(&o);
	assert_usage(parse(bad), "bad --reply-expire 'soon' (a duration of 1s or more)", 0);
}

/* Issue 12, item 8: a cron publisher waits for a broker that is (re)starting. */
Test(pub_options, connect_timeout_and_reconnect_window)
{
	char *argv[] = { "mom-pub", "-q", "a", "-m", "x", "--connect-timeout", "30s",
		"--reconnect-window", "2m", NULL };
	char *none[] = { "mom-pub", "-q", "a", "-m", "x", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.cli.retry_ms, 30000);
	cr_assert_eq(o.cli.reconnect_ms, 120000);
	cr_assert_eq(mom_cli_reconnect_ms(&o.cli), 120000);
	pub_options_fini(&o);
	/* Unset: -W's time (none here) and the 60 s window. */
	cr_assert_eq(parse(none), 0, "err: %s", err);
	cr_assert_eq(o.cli.retry_ms, -1);
	cr_assert_eq(o.cli.reconnect_ms, 0);
	cr_assert_eq(mom_cli_reconnect_ms(&o.cli), 60000);
}

Test(pub_options, connect_timeout_zero_is_at_once_a_zero_window_is_refused)
{
	char *zero[] = { "mom-pub", "-q", "a", "-m", "x", "--connect-timeout", "0", NULL };
	char *bad[] = { "mom-pub", "-q", "a", "-m", "x", "--connect-timeout", "soon", NULL };
	char *win[] = { "mom-pub", "-q", "a", "-m", "x", "--reconnect-window", "0", NULL };

	cr_assert_eq(parse(zero), 0, "err: %s", err);
	cr_assert_eq(o.cli.retry_ms, 0);
	pub_options_fini(&o);
	assert_usage(parse(bad), "bad --connect-timeout 'soon' (seconds, or a duration like "
	    "500ms, 2m)", 0);
	pub_options_fini(&o);
	assert_usage(parse(win), "bad --reconnect-window '0' (a duration over 0: seconds, or "
	    "like 500ms, 2m)", 0);
}

/* Issue 13: with several brokers, one silent this long is passed over. */
Test(pub_options, request_timeout)
{
	char *argv[] = { "mom-pub", "-q", "a", "-m", "x", "--request-timeout", "500ms", NULL };
	char *none[] = { "mom-pub", "-q", "a", "-m", "x", NULL };
	char *zero[] = { "mom-pub", "-q", "a", "-m", "x", "--request-timeout", "0", NULL };
	char *bad[] = { "mom-pub", "-q", "a", "-m", "x", "--request-timeout", "soon", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.cli.request_ms, 500);
	pub_options_fini(&o);
	/* unset: the client's default */
	cr_assert_eq(parse(none), 0, "err: %s", err);
	cr_assert_eq(o.cli.request_ms, 0);
	cr_assert_eq(MOM_CLIENT_REQUEST_MS, 2000);
	pub_options_fini(&o);
	assert_usage(parse(zero), "bad --request-timeout '0' (a duration over 0: seconds, or "
	    "like 500ms, 2m)", 0);
	pub_options_fini(&o);
	assert_usage(parse(bad), "bad --request-timeout 'soon' (a duration over 0: seconds, or "
	    "like 500ms, 2m)", 0);
}

Test(pub_options, progress_is_a_flag_off_by_default)
{
	char *on[] = { "mom-pub", "-q", "jobs", "-l", "--progress", NULL };
	char *off[] = { "mom-pub", "-q", "jobs", "-l", NULL };

	cr_assert_eq(parse(on), 0, "err: %s", err);
	cr_assert_eq(o.progress, 1);
	pub_options_fini(&o);
	cr_assert_eq(parse(off), 0, "err: %s", err);
	cr_assert_eq(o.progress, 0);
}

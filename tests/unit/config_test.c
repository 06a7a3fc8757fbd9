/*
 * config_test.c: option defaults read from $XDG_CONFIG_HOME/mom/<program>.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "config.h"
#include "mom.h"
#include "opt.h"

static char tmpdir[64];
static char momdir[128];
static char err[512]; /* the functions' error message */

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mom-config-test.XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	snprintf(momdir, sizeof(momdir), "%s/mom", tmpdir);
	cr_assert_eq(mkdir(momdir, 0700), 0);
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	err[0] = '\0';
	/* They report in err, never on stderr. */
	cr_redirect_stderr();
}

static void
teardown(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", tmpdir);
}

TestSuite(config, .init = setup, .fini = teardown);

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
}

/* Writes the config file of "mom-test" under $XDG_CONFIG_HOME. */
static void
write_config(const char *text)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/mom-test", momdir);
	write_file(path, text);
}

/* Nothing was written to stderr. */
static void
assert_stderr_empty(void)
{
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}

static void
assert_argv(int argc, char **argv, const char *const *want, int nwant)
{
	int i;

	cr_assert_eq(argc, nwant, "argc %d, want %d", argc, nwant);
	for (i = 0; i < nwant; i++)
		cr_assert_str_eq(argv[i], want[i], "argv[%d]", i);
	cr_assert_null(argv[argc]);
}

Test(config, missing_file_leaves_arguments_alone)
{
	char *args[] = { "mom-test", "-q", "x", NULL };
	char **argv = args;
	int argc = 3;

	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	cr_assert_eq(argc, 3);
	cr_assert_eq(argv, args);
}

Test(config, file_options_go_between_argv0_and_the_arguments)
{
	const char *want[] = { "mom-test", "--server=tcp://h:7420", "--quiet", "-q", "x" };
	char *args[] = { "mom-test", "-q", "x", NULL };
	char **argv = args;
	int argc = 3;

	write_config("server tcp://h:7420\nquiet\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 5);
	/* The original strings are shared, not copied. */
	cr_assert_eq(argv[0], args[0]);
	cr_assert_eq(argv[3], args[1]);
	free(argv);
}

Test(config, every_spelling_of_an_option_is_accepted)
{
	const char *want[] = { "prog", "--server=a", "--server=b", "--server=c",
	    "--server=d", "--server=e", "--quiet", "--verbose", "--format=",
	    "--max-len=10" };
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;

	write_config("server a\nserver=b\n--server=c\n--server d\n"
	    "server = e\nquiet\n--verbose\nformat=\nmax-len\t10\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 10);
	free(argv);
}

Test(config, whitespace_comments_and_blank_lines_are_skipped)
{
	const char *want[] = { "prog", "--server=tcp://h:1", "--quiet", "--tag=a#b" };
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;

	write_config("# defaults for mom-test\n\n   \n\t server   tcp://h:1  \r\n"
	    "  # indented comment\n  quiet\r\ntag a#b\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 4);
	free(argv);
}

Test(config, value_keeps_inner_spaces)
{
	const char *want[] = { "prog", "--format=%t: %p\\n", "--header=K: v" };
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;

	write_config("format %t: %p\\n\nheader=K: v");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 3);
	free(argv);
}

Test(config, file_with_only_comments_leaves_arguments_alone)
{
	char *args[] = { "prog", "x", NULL };
	char **argv = args;
	int argc = 2;

	write_config("# nothing yet\n\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	cr_assert_eq(argc, 2);
	cr_assert_eq(argv, args);
}

Test(config, line_without_option_name_is_an_error_with_file_and_line)
{
	const char *bad[] = { "-q\n", "=value\n", "--\n", "--=x\n", "na!me value\n",
	    "-- server x\n", "\"server\" x\n" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *args[] = { "prog", "x", NULL };
		char **argv = args;
		int argc = 2;

		write_config(bad[i]);
		cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), MOM_EINVAL,
		    "line %s accepted", bad[i]);
		cr_assert_eq(argc, 2);
		cr_assert_eq(argv, args);
	}
}

Test(config, error_message_names_file_and_line)
{
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;
	char want[256];

	write_config("server x\n\n-bad\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), MOM_EINVAL);
	snprintf(want, sizeof(want), "%s/mom-test:3: expected an option name", momdir);
	cr_assert_str_eq(err, want);
	assert_stderr_empty();
}

Test(config, unreadable_file_is_an_error)
{
	char path[192];
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;

	/* A directory opens but cannot be read, even by root. */
	snprintf(path, sizeof(path), "%s/mom-test", momdir);
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), MOM_EINVAL);
	cr_assert_eq(argv, args);
	cr_assert(strncmp(err, path, strlen(path)) == 0, "err: %s", err);
	assert_stderr_empty();
}

Test(config, home_dot_config_is_used_without_xdg_config_home)
{
	const char *want[] = { "prog", "--quiet" };
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;
	char dir[192];

	snprintf(dir, sizeof(dir), "%s/.config", tmpdir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/.config/mom", tmpdir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/.config/mom/mom-test", tmpdir);
	write_file(dir, "quiet\n");
	unsetenv("XDG_CONFIG_HOME");
	setenv("HOME", tmpdir, 1);
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 2);
	free(argv);
}

Test(config, empty_xdg_config_home_falls_back_to_home)
{
	const char *want[] = { "prog", "--verbose" };
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;
	char dir[192];

	snprintf(dir, sizeof(dir), "%s/.config", tmpdir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/.config/mom", tmpdir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	snprintf(dir, sizeof(dir), "%s/.config/mom/mom-test", tmpdir);
	write_file(dir, "verbose\n");
	setenv("XDG_CONFIG_HOME", "", 1);
	setenv("HOME", tmpdir, 1);
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 2);
	free(argv);
}

Test(config, no_xdg_and_no_home_reads_nothing)
{
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;

	write_config("quiet\n");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("HOME");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	cr_assert_eq(argv, args);
}

Test(config, each_program_reads_its_own_file)
{
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;

	write_config("quiet\n");
	cr_assert_eq(mom_config_argv("mom-other", &argc, &argv, err, sizeof(err)), 0);
	cr_assert_eq(argv, args);
}

Test(config, explicit_path_is_read)
{
	const char *want[] = { "mom-broker", "--data-dir=/var/lib/mom", "--listen=tcp://0:1", "-v" };
	char *args[] = { "mom-broker", "-v", NULL };
	char **argv = args;
	int argc = 2;
	char path[192];

	snprintf(path, sizeof(path), "%s/broker.conf", tmpdir);
	write_file(path, "data-dir /var/lib/mom\nlisten=tcp://0:1\n");
	cr_assert_eq(mom_config_argv_file(path, &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 4);
	free(argv);
}

Test(config, explicit_missing_path_is_not_an_error)
{
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;
	char path[192];

	snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
	cr_assert_eq(mom_config_argv_file(path, &argc, &argv, err, sizeof(err)), 0);
	cr_assert_eq(argv, args);
}

Test(config, empty_argv_gets_the_program_name_as_argv0)
{
	const char *want[] = { "mom-test", "--quiet" };
	char *args[] = { NULL };
	char **argv = args;
	int argc = 0;

	write_config("quiet\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	assert_argv(argc, argv, want, 2);
	free(argv);
}

Test(config, long_lines_are_read_whole)
{
	char *args[] = { "prog", NULL };
	char **argv = args;
	int argc = 1;
	char *text = malloc(10000);

	cr_assert_not_null(text);
	memcpy(text, "tag ", 4);
	memset(text + 4, 'v', 9000);
	text[9004] = '\0';
	write_config(text);
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	cr_assert_eq(argc, 2);
	cr_assert_eq(strlen(argv[1]), 6 + 9000);
	free(argv);
	free(text);
}

Test(config, each_option_knows_its_file_and_line)
{
	char        *args[] = { "mom-test", "-q", "x", NULL };
	char       **argv = args;
	int          argc = 3, line;
	const char  *path;
	char         want[256];

	write_config("# comment\n\nserver tcp://h:7420\n   \nquiet\n");
	cr_assert_eq(mom_config_argv("mom-test", &argc, &argv, err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s/mom-test", momdir);
	cr_assert_eq(mom_config_origin(argv, 1, &path, &line), 0);
	cr_assert_str_eq(path, want);
	cr_assert_eq(line, 3);
	cr_assert_eq(mom_config_origin(argv, 2, &path, &line), 0);
	cr_assert_eq(line, 5);
	/* argv[0] and the command line's are no file's. */
	cr_assert_eq(mom_config_origin(argv, 0, &path, &line), -1);
	cr_assert_eq(mom_config_origin(argv, 3, &path, &line), -1);
	cr_assert_eq(mom_config_origin(argv, 9, &path, &line), -1);
	/* mom_opt_blame: the line before the message, the name as the file spells it. */
	snprintf(err, sizeof(err), "unrecognized option '--quiet'");
	mom_opt_blame(argv, 2, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/mom-test:5: unknown option 'quiet'", momdir);
	cr_assert_str_eq(err, want);
	snprintf(err, sizeof(err), "bad value");
	mom_opt_blame(argv, 4, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/mom-test: bad value", momdir);
	cr_assert_str_eq(err, want);
	free(argv);
}

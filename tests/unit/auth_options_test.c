/*
 * auth_options_test.c: mom-auth's config file, $MOM_AUTH_DIR, command
 * line and verbs (src/mom-auth/options.c).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mom-auth/options.h"
#include "mom.h"
#include "optfixture.h"

static struct auth_options o;
static char                err[512];

static void
setup(void)
{
	optfix_setup();
	err[0] = '\0';
}

static void
teardown(void)
{
	auth_options_fini(&o);
	optfix_teardown();
}

TestSuite(auth_options, .init = setup, .fini = teardown);

static int
parse(char **argv)
{
	return auth_options_parse(&o, optfix_argc(argv), argv, err, sizeof(err));
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

Test(auth_options, good_command_line_fills_the_struct)
{
	char *argv[] = { "mom-auth", "-d", "/srv/auth", "token", "-u", "alice", "--ttl", "2h",
		"--pub", "orders.>", "--pub", "audit", "--sub", "jobs", "--admin", "--issuer", "me",
		"--audience", "you", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.action, MOM_ACTION_RUN);
	cr_assert_eq(o.verb, V_TOKEN);
	cr_assert_eq(o.nargs, 0);
	cr_assert_str_eq(o.dir, "/srv/auth");
	cr_assert_str_eq(o.user, "alice");
	cr_assert_eq(o.ttl_ms, 2 * 3600 * 1000);
	cr_assert_eq(o.pub.n, 2);
	cr_assert_str_eq(o.pub.v[0], "orders.>");
	cr_assert_str_eq(o.pub.v[1], "audit");
	cr_assert_eq(o.sub.n, 1);
	cr_assert_str_eq(o.sub.v[0], "jobs");
	cr_assert_eq(o.admin, 1);
	cr_assert_str_eq(o.issuer, "me");
	cr_assert_str_eq(o.audience, "you");
}

Test(auth_options, defaults)
{
	char *argv[] = { "mom-auth", "serve", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.verb, V_SERVE);
	cr_assert_str_eq(o.dir, "mom-auth");
	cr_assert_str_eq(o.listen, "127.0.0.1:7423");
	cr_assert_str_eq(o.server, "http://127.0.0.1:7423");
	cr_assert_eq(o.token_ttl_ms, 3600 * 1000);
	cr_assert_eq(o.max_failures, 5);
	cr_assert_eq(o.lockout_ms, 60 * 1000);
}

Test(auth_options, verbs_and_their_operands)
{
	char *add[] = { "mom-auth", "user", "add", "bob", "--sub", "x", NULL };
	char *del[] = { "mom-auth", "user", "delete", "bob", NULL };
	char *verify[] = { "mom-auth", "verify", "TOKEN", NULL };

	cr_assert_eq(parse(add), 0, "err: %s", err);
	cr_assert_eq(o.verb, V_USERADD);
	cr_assert_eq(o.nargs, 1);
	cr_assert_str_eq(o.args[0], "bob");
	auth_options_fini(&o);
	cr_assert_eq(parse(del), 0, "err: %s", err);
	cr_assert_eq(o.verb, V_USERDEL);
	auth_options_fini(&o);
	cr_assert_eq(parse(verify), 0, "err: %s", err);
	cr_assert_eq(o.verb, V_VERIFY);
	cr_assert_str_eq(o.args[0], "TOKEN");
}

Test(auth_options, cluster_key_takes_a_file_and_force)
{
	char *key[] = { "mom-auth", "cluster-key", "/etc/mom/cluster.key", "--force", NULL };
	char *none[] = { "mom-auth", "cluster-key", NULL };
	char *two[] = { "mom-auth", "cluster-key", "a", "b", NULL };
	char *rsa[] = { "mom-auth", "cluster-key", "a", "--rsa", NULL };

	cr_assert_eq(parse(key), 0, "err: %s", err);
	cr_assert_eq(o.verb, V_CLUSTERKEY);
	cr_assert_eq(o.nargs, 1);
	cr_assert_str_eq(o.args[0], "/etc/mom/cluster.key");
	cr_assert(o.force);
	auth_options_fini(&o);
	assert_usage(parse(none), "cluster-key: missing FILE", 1);
	auth_options_fini(&o);
	assert_usage(parse(two), "cluster-key: too many arguments", 1);
	auth_options_fini(&o);
	assert_usage(parse(rsa), "--rsa does not apply to cluster-key", 0);
}

Test(auth_options, help_and_version_stop_the_parse)
{
	char *help[] = { "mom-auth", "-h", NULL };
	char *version[] = { "mom-auth", "--version", "frobnicate", NULL };

	cr_assert_eq(parse(help), 0);
	cr_assert_eq(o.action, MOM_ACTION_HELP);
	auth_options_fini(&o);
	cr_assert_eq(parse(version), 0);
	cr_assert_eq(o.action, MOM_ACTION_VERSION);
}

Test(auth_options, bad_option_is_a_usage_error_with_the_usage_text)
{
	char *bogus[] = { "mom-auth", "--bogus", "keygen", NULL };
	char *shortopt[] = { "mom-auth", "-p", "secret", "login", NULL };
	char *value[] = { "mom-auth", "token", "--ttl", NULL };

	assert_usage(parse(bogus), "unknown option --bogus", 1);
	auth_options_fini(&o);
	assert_usage(parse(shortopt), "unknown option -p", 1);
	auth_options_fini(&o);
	assert_usage(parse(value), "option --ttl needs a value", 1);
}

Test(auth_options, bad_values)
{
	char *ttl[] = { "mom-auth", "token", "-u", "a", "--ttl", "soon", NULL };
	char *short_ttl[] = { "mom-auth", "serve", "--lockout", "10ms", NULL };
	char *fails[] = { "mom-auth", "serve", "--max-failures", "0", NULL };

	assert_usage(parse(ttl), "bad --ttl 'soon' (a duration like 30s, 10m, 1h, 7d)", 1);
	auth_options_fini(&o);
	assert_usage(parse(short_ttl), "--lockout must be at least 1s", 1);
	auth_options_fini(&o);
	assert_usage(parse(fails), "bad --max-failures '0' (1 or more)", 1);
}

Test(auth_options, an_option_of_another_verb_is_a_usage_error)
{
	char *ttl[] = { "mom-auth", "user", "list", "--ttl", "1h", NULL };
	char *listen[] = { "mom-auth", "keygen", "--listen", "127.0.0.1:1", NULL };

	assert_usage(parse(ttl), "--ttl does not apply to user list", 0);
	auth_options_fini(&o);
	assert_usage(parse(listen), "--listen does not apply to keygen", 0);
}

Test(auth_options, missing_or_wrong_verb_and_operands)
{
	char *none[] = { "mom-auth", NULL };
	char *unknown[] = { "mom-auth", "frobnicate", NULL };
	char *user[] = { "mom-auth", "user", NULL };
	char *add[] = { "mom-auth", "user", "add", NULL };
	char *many[] = { "mom-auth", "keygen", "now", NULL };

	assert_usage(parse(none), "no verb given", 1);
	auth_options_fini(&o);
	assert_usage(parse(unknown), "unknown verb 'frobnicate'", 1);
	auth_options_fini(&o);
	assert_usage(parse(user), "user: expected add, delete or list", 1);
	auth_options_fini(&o);
	assert_usage(parse(add), "user add: missing NAME", 1);
	auth_options_fini(&o);
	assert_usage(parse(many), "keygen: too many arguments", 1);
}

Test(auth_options, command_line_wins_over_environment_over_config_file)
{
	char *plain[] = { "mom-auth", "token", "-u", "a", NULL };
	char *dir[] = { "mom-auth", "-d", "/cli", "token", "-u", "a", "--ttl", "5m", NULL };

	optfix_write("mom/mom-auth", "dir /cfg\nttl 10m\n");
	cr_assert_eq(parse(plain), 0, "err: %s", err);
	cr_assert_str_eq(o.dir, "/cfg");
	cr_assert_eq(o.ttl_ms, 600000);
	auth_options_fini(&o);
	setenv("MOM_AUTH_DIR", "/env", 1);
	cr_assert_eq(parse(plain), 0, "err: %s", err);
	cr_assert_str_eq(o.dir, "/env");
	auth_options_fini(&o);
	cr_assert_eq(parse(dir), 0, "err: %s", err);
	cr_assert_str_eq(o.dir, "/cli");
	cr_assert_eq(o.ttl_ms, 300000);
}

/* The file sets defaults for every verb: its options need not belong to the verb. */
Test(auth_options, config_file_options_apply_to_every_verb)
{
	char *argv[] = { "mom-auth", "keygen", NULL };

	optfix_write("mom/mom-auth", "listen 0.0.0.0:7423\nhelp\nversion\npub a.>\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.action, MOM_ACTION_RUN);
	cr_assert_eq(o.verb, V_KEYGEN);
	cr_assert_str_eq(o.listen, "0.0.0.0:7423");
	cr_assert_eq(o.pub.n, 1);
}

Test(auth_options, config_file_errors_have_no_usage_text)
{
	char *argv[] = { "mom-auth", "keygen", NULL };
	char  want[256];

	/* The file and line, and the name as the file spells it. */
	snprintf(want, sizeof(want), "%s:1: unknown option 'bogus'",
	    optfix_write("mom/mom-auth", "bogus\n"));
	assert_usage(parse(argv), want, 0);
	auth_options_fini(&o);
	snprintf(want, sizeof(want), "%s:1: expected an option name",
	    optfix_write("mom/mom-auth", "=x\n"));
	assert_usage(parse(argv), want, 0);
}

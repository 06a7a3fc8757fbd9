/*
 * broker_options_test.c: mom-broker's config file (-c) and command line,
 * and their checks (src/mom-broker/options.c).
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mom-broker/options.h"
#include "mom.h"
#include "optfixture.h"
#include "storage/rio.h"

static struct broker_options o;
static char                  err[600];

static void
setup(void)
{
	optfix_setup();
	err[0] = '\0';
}

static void
teardown(void)
{
	broker_options_fini(&o);
	optfix_teardown();
}

TestSuite(broker_options, .init = setup, .fini = teardown);

static int
parse(char **argv)
{
	return broker_options_parse(&o, optfix_argc(argv), argv, err, sizeof(err));
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

Test(broker_options, good_command_line_fills_the_struct)
{
	char *argv[] = { "mom-broker", "-D", "/var/lib/mom", "-l", "tcp://127.0.0.1:1", "-l",
		"ipc:///tmp/mom.sock", "-v", "-v", "--max-msg-size", "2MiB", "--dedupe-window", "5m",
		"--retain", "1d", "--retain-bytes", "1G", "--http", "localhost:9", "--fsync",
		"interval", "--fsync-interval", "50ms", "--snapshot-after", "1MiB",
		"--http-header-timeout", "2s", "--http-body-rate", "1KiB", "--http-max-conns", "40",
		NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.action, MOM_ACTION_RUN);
	cr_assert_str_eq(o.datadir, "/var/lib/mom");
	cr_assert_eq(o.nlisten, 2);
	cr_assert_str_eq(o.listen[0], "tcp://127.0.0.1:1");
	cr_assert_str_eq(o.listen[1], "ipc:///tmp/mom.sock");
	cr_assert_eq(o.verbose, 2);
	cr_assert_eq(o.max_payload, 2 << 20);
	cr_assert_eq(o.dedupe_window_ms, 300000);
	cr_assert_eq(o.retain_ms, 86400000);
	cr_assert_eq(o.retain_bytes, 1ULL << 30);
	cr_assert_str_eq(o.http, "localhost:9");
	cr_assert_str_eq(o.http_url, "tcp://localhost:9");
	cr_assert_not(o.http_default);
	cr_assert_eq(o.fsync, RIO_FSYNC_INTERVAL);
	cr_assert_eq(o.fsync_interval_ms, 50);
	cr_assert_eq(o.snapshot_bytes, 1 << 20);
	cr_assert_eq(o.http_header_timeout_ms, 2000);
	cr_assert_eq(o.http_body_rate, 1024);
	cr_assert_eq(o.http_max_conns, 40);
}

Test(broker_options, defaults)
{
	char *argv[] = { "mom-broker", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.datadir, "./mom-data");
	cr_assert_eq(o.nlisten, 1);
	cr_assert_str_eq(o.listen[0], "tcp://127.0.0.1:7420");
	cr_assert_str_eq(o.http, "127.0.0.1:7421");
	cr_assert_str_eq(o.http_url, "tcp://127.0.0.1:7421");
	cr_assert(o.http_default);
	cr_assert_eq(o.fsync, RIO_FSYNC_ALWAYS);
	cr_assert_eq(o.max_payload, 1 << 20);
	cr_assert_not(o.noauth);
	cr_assert_null(o.auth_key);
	cr_assert_eq(o.http_header_timeout_ms, 10000);
	cr_assert_eq(o.http_body_rate, 16384);
	cr_assert_eq(o.http_max_conns, 4096);
}

Test(broker_options, help_and_version_stop_the_parse)
{
	char *help[] = { "mom-broker", "-h", "--bogus", NULL };
	char *version[] = { "mom-broker", "--version", NULL };

	cr_assert_eq(parse(help), 0);
	cr_assert_eq(o.action, MOM_ACTION_HELP);
	broker_options_fini(&o);
	cr_assert_eq(parse(version), 0);
	cr_assert_eq(o.action, MOM_ACTION_VERSION);
}

Test(broker_options, bad_option_is_a_usage_error_with_the_usage_text)
{
	char *bogus[] = { "mom-broker", "--bogus", NULL };
	char *missing[] = { "mom-broker", "-D", "d", "-l", NULL };
	char *extra[] = { "mom-broker", "start", NULL };

	assert_usage(parse(bogus), "unrecognized option '--bogus'", 1);
	broker_options_fini(&o);
	assert_usage(parse(missing), "option requires an argument -- 'l'", 1);
	broker_options_fini(&o);
	assert_usage(parse(extra), "unexpected argument 'start'", 1);
}

Test(broker_options, bad_values)
{
	static const struct {
		const char *a, *b, *msg;
	} cases[] = {
		{ "--max-msg-size", "0", "bad --max-msg-size '0' (1 to 64MiB)" },
		{ "--max-msg-size", "65M", "bad --max-msg-size '65M' (1 to 64MiB)" },
		{ "--dedupe-window", "0", "bad duration '0'" },
		{ "--retain", "forever", "bad duration 'forever'" },
		{ "--retain-bytes", "lots", "bad size 'lots'" },
		{ "--fsync", "bogus", "bad --fsync 'bogus' (always, interval or never)" },
		{ "--fsync-interval", "2m", "bad --fsync-interval '2m' (1ms to 1m)" },
		{ "--snapshot-after", "1k", "bad --snapshot-after '1k' (a size, at least 4KiB)" },
		{ "--disk-reserve", "lots", "bad --disk-reserve 'lots' (a size, 0 to 1TiB)" },
		{ "--disk-reserve", "2TiB", "bad --disk-reserve '2TiB' (a size, 0 to 1TiB)" },
		{ "--http", "/path", "bad --http '/path' (HOST:PORT, http://HOST:PORT, "
		    "https://HOST:PORT or off)" },
		{ "--http-header-timeout", "0", "bad --http-header-timeout '0' (100ms to 1h)" },
		{ "--http-header-timeout", "50ms", "bad --http-header-timeout '50ms' (100ms to 1h)" },
		{ "--http-header-timeout", "2h", "bad --http-header-timeout '2h' (100ms to 1h)" },
		{ "--http-body-rate", "0", "bad --http-body-rate '0' (1 to 1GiB bytes a second)" },
		{ "--http-body-rate", "2G", "bad --http-body-rate '2G' (1 to 1GiB bytes a second)" },
		{ "--http-max-conns", "0", "bad --http-max-conns '0' (1 to 1000000)" },
		{ "--http-max-conns", "-5", "bad --http-max-conns '-5' (1 to 1000000)" },
		{ "--http-max-conns", "12x", "bad --http-max-conns '12x' (1 to 1000000)" },
		{ "--http-max-conns", "1000001", "bad --http-max-conns '1000001' (1 to 1000000)" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "mom-broker", (char *)cases[i].a, (char *)cases[i].b, NULL };

		assert_usage(parse(argv), cases[i].msg, 0);
		broker_options_fini(&o);
	}
}

Test(broker_options, disk_reserve_and_repair)
{
	char *def[] = { "mom-broker", NULL };
	char *set[] = { "mom-broker", "--disk-reserve", "1MiB", "--repair", NULL };
	char *none[] = { "mom-broker", "--disk-reserve", "0", NULL };

	cr_assert_eq(parse(def), 0);
	cr_assert_eq(o.reserve_bytes, 64u << 20);
	cr_assert(!o.repair);
	broker_options_fini(&o);
	cr_assert_eq(parse(set), 0);
	cr_assert_eq(o.reserve_bytes, 1u << 20);
	cr_assert(o.repair);
	broker_options_fini(&o);
	cr_assert_eq(parse(none), 0);
	cr_assert_eq(o.reserve_bytes, 0);
	broker_options_fini(&o);
}

Test(broker_options, at_most_16_listeners)
{
	char *argv[2 + 2 * 17];
	int   i;

	argv[0] = "mom-broker";
	for (i = 0; i < 17; i++) {
		argv[1 + 2 * i] = "-l";
		argv[2 + 2 * i] = "ipc:///tmp/x";
	}
	argv[1 + 2 * 17] = NULL;
	assert_usage(parse(argv), "at most 16 listeners", 0);
}

Test(broker_options, auth_key_and_no_auth_conflict)
{
	char *argv[] = { "mom-broker", "--auth-key", "/no/such/key.pub", "--no-auth", NULL };

	assert_usage(parse(argv), "--auth-key and --no-auth contradict each other", 0);
}

Test(broker_options, auth_key_must_be_readable)
{
	char *argv[] = { "mom-broker", "--auth-key", "/no/such/key.pub", NULL };

	assert_usage(parse(argv), "cannot read --auth-key /no/such/key.pub: No such file or "
	    "directory", 0);
}

Test(broker_options, no_authentication_means_loopback_only)
{
	char *listen[] = { "mom-broker", "-l", "tcp://0.0.0.0:7420", NULL };
	char *named[] = { "mom-broker", "-l", "tcp://127.evil.example:7420", NULL };
	char *http[] = { "mom-broker", "--http", "0.0.0.0:7421", NULL };
	char *noauth[] = { "mom-broker", "--no-auth", "-l", "tcp://0.0.0.0:7420", "--http",
		"[::]:7421", NULL };
	char *loop[] = { "mom-broker", "-l", "tcp://[::1]:1", "-l", "tcp://localhost:2", "-l",
		"tcp://127.1.2.3:3", "--http", "off", NULL };

	assert_usage(parse(listen), "refusing to listen on tcp://0.0.0.0:7420 without "
	    "authentication (--auth-key PUBKEY, or --no-auth to allow it)", 0);
	broker_options_fini(&o);
	assert_usage(parse(named), "refusing to listen on tcp://127.evil.example:7420 without "
	    "authentication (--auth-key PUBKEY, or --no-auth to allow it)", 0);
	broker_options_fini(&o);
	assert_usage(parse(http), "refusing to serve HTTP on 0.0.0.0:7421 without "
	    "authentication (--auth-key PUBKEY, or --no-auth to allow it)", 0);
	broker_options_fini(&o);
	cr_assert_eq(parse(noauth), 0, "err: %s", err);
	broker_options_fini(&o);
	cr_assert_eq(parse(loop), 0, "err: %s", err);
	cr_assert_null(o.http);
}

Test(broker_options, tls_needs_a_certificate)
{
	char *listen[] = { "mom-broker", "-l", "tls+tcp://127.0.0.1:1", NULL };
	char *http[] = { "mom-broker", "--http", "https://127.0.0.1:1", NULL };
	char *key[] = { "mom-broker", "--tls-key", "k.pem", NULL };
	char *cert[] = { "mom-broker", "--tls-cert", "c.pem", "-l", "tls+tcp://127.0.0.1:1",
		"--http", "https://127.0.0.1:2", NULL };

	assert_usage(parse(listen), "tls+tcp://127.0.0.1:1 needs a server certificate: "
	    "--tls-cert FILE and --tls-key FILE", 0);
	broker_options_fini(&o);
	assert_usage(parse(http), "--http https://127.0.0.1:1 needs a server certificate: "
	    "--tls-cert FILE and --tls-key FILE", 0);
	broker_options_fini(&o);
	assert_usage(parse(key), "--tls-key and --tls-cafile need --tls-cert", 0);
	broker_options_fini(&o);
	cr_assert_eq(parse(cert), 0, "err: %s", err);
	cr_assert(o.http_tls);
	cr_assert_str_eq(o.http_url, "tls+tcp://127.0.0.1:2");
}

Test(broker_options, command_line_wins_over_the_config_file)
{
	char *argv[] = { "mom-broker", "-c", NULL, "-D", "/cli", "-l", "tcp://127.0.0.1:2",
		"--retain", "2h", NULL };

	argv[2] = (char *)optfix_write("broker.conf", "data-dir /cfg\nfsync never\n"
	    "listen tcp://127.0.0.1:1\nretain 1h\nconfig ignored\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.datadir, "/cli");
	cr_assert_eq(o.retain_ms, 7200000);
	cr_assert_eq(o.fsync, RIO_FSYNC_NEVER);
	/* Listeners add up: the file's, then the command line's. */
	cr_assert_eq(o.nlisten, 2);
	cr_assert_str_eq(o.listen[0], "tcp://127.0.0.1:1");
	cr_assert_str_eq(o.listen[1], "tcp://127.0.0.1:2");
}

Test(broker_options, every_spelling_of_the_config_option_reads_the_file)
{
	char  arg[300];
	char *eq[] = { "mom-broker", arg, NULL };
	char *glued[] = { "mom-broker", arg, NULL };
	char *twoargs[] = { "mom-broker", "--config", NULL, NULL };
	const char *path = optfix_write("broker.conf", "data-dir /cfg\n");

	snprintf(arg, sizeof(arg), "--config=%s", path);
	cr_assert_eq(parse(eq), 0, "err: %s", err);
	cr_assert_str_eq(o.datadir, "/cfg");
	broker_options_fini(&o);
	snprintf(arg, sizeof(arg), "-c%s", path);
	cr_assert_eq(parse(glued), 0, "err: %s", err);
	cr_assert_str_eq(o.datadir, "/cfg");
	broker_options_fini(&o);
	twoargs[2] = (char *)path;
	cr_assert_eq(parse(twoargs), 0, "err: %s", err);
	cr_assert_str_eq(o.datadir, "/cfg");
}

Test(broker_options, config_file_errors)
{
	char  want[400];
	char *missing[] = { "mom-broker", "-c", "/no/such.conf", NULL };
	char *bad[] = { "mom-broker", "-c", NULL, NULL };
	char *value[] = { "mom-broker", "-c", NULL, NULL };

	assert_usage(parse(missing), "cannot read /no/such.conf: No such file or directory", 0);
	broker_options_fini(&o);
	bad[2] = (char *)optfix_write("bad.conf", "data-dir /d\n-v\n");
	snprintf(want, sizeof(want), "%s:2: expected an option name", bad[2]);
	assert_usage(parse(bad), want, 0);
	broker_options_fini(&o);
	value[2] = (char *)optfix_write("value.conf", "fsync sometimes\n");
	/* A bad value names its line too. */
	snprintf(want, sizeof(want), "%s:1: bad --fsync 'sometimes' (always, interval or never)",
	    value[2]);
	assert_usage(parse(value), want, 0);
}

/*
 * --auth-key and --no-auth are one choice: the command line's replaces
 * the file's, as for an option with one value.
 */
Test(broker_options, config_auth_key_and_command_line_no_auth_mean_no_auth)
{
	char *argv[] = { "mom-broker", "-c", NULL, "--no-auth", "-l", "tcp://0.0.0.0:1", NULL };
	char  conf[300];

	snprintf(conf, sizeof(conf), "auth-key %s\n", optfix_write("key.pub", "not a key\n"));
	argv[2] = (char *)optfix_write("broker.conf", conf);
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert(o.noauth);
	cr_assert_null(o.auth_key);
}

Test(broker_options, config_no_auth_and_command_line_auth_key_mean_the_key)
{
	char *argv[] = { "mom-broker", "-c", NULL, "--auth-key", NULL, NULL };

	argv[2] = (char *)optfix_write("broker.conf", "no-auth\n");
	argv[4] = (char *)optfix_write("key.pub", "not a key\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_not(o.noauth);
	cr_assert_str_eq(o.auth_key, argv[4]);
}

Test(broker_options, auth_key_and_no_auth_in_one_file_conflict)
{
	char *argv[] = { "mom-broker", "-c", NULL, NULL };

	argv[2] = (char *)optfix_write("broker.conf", "no-auth\nauth-key /k.pub\n");
	assert_usage(parse(argv), "--auth-key and --no-auth contradict each other", 0);
}

Test(broker_options, nng_plane_limits)
{
	char *argv[] = { "mom-broker", "--max-connections", "100", "--max-polls", "7",
		"--frame-timeout", "5s", "--frame-budget", "64MiB", NULL };
	char *none[] = { "mom-broker", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.max_conns, 100);
	cr_assert_eq(o.max_polls, 7);
	cr_assert_eq(o.frame_ms, 5000);
	cr_assert_eq(o.frame_budget, 64 << 20);
	broker_options_fini(&o);
	/* 0: the plane's own defaults (net/front.h). */
	cr_assert_eq(parse(none), 0, "err: %s", err);
	cr_assert_eq(o.max_conns, 0);
	cr_assert_eq(o.max_polls, 0);
	cr_assert_eq(o.frame_ms, 0);
	cr_assert_eq(o.frame_budget, 0);
}

Test(broker_options, nng_plane_limits_bad_values)
{
	static const struct {
		const char *a, *b, *msg;
	} cases[] = {
		{ "--max-connections", "0", "bad --max-connections '0' (1 to 1000000)" },
		{ "--max-connections", "1e3", "bad --max-connections '1e3' (1 to 1000000)" },
		{ "--max-polls", "-1", "bad --max-polls '-1' (1 to 1000000)" },
		{ "--max-polls", "1000001", "bad --max-polls '1000001' (1 to 1000000)" },
		{ "--frame-timeout", "50ms", "bad --frame-timeout '50ms' (100ms to 1h)" },
		{ "--frame-timeout", "2h", "bad --frame-timeout '2h' (100ms to 1h)" },
		{ "--frame-budget", "512KiB", "bad --frame-budget '512KiB' (a size, 1MiB to 1TiB)" },
		{ "-l", "inproc://x", "cannot listen on 'inproc://x' (tcp://HOST:PORT, "
		    "tls+tcp://HOST:PORT or ipc:///PATH)" },
		{ "-l", "ws://127.0.0.1:1", "cannot listen on 'ws://127.0.0.1:1' (tcp://HOST:PORT, "
		    "tls+tcp://HOST:PORT or ipc:///PATH)" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "mom-broker", (char *)cases[i].a, (char *)cases[i].b, NULL };

		assert_usage(parse(argv), cases[i].msg, 0);
		broker_options_fini(&o);
	}
}

/* Cluster mode (SPEC "Cluster"). */

Test(broker_options, cluster_options_fill_the_struct)
{
	char *argv[] = { "mom-broker", "--node-id", "2", "--cluster", "tcp://127.0.0.1:7522",
		"--peer", "1=tcp://127.0.0.1:7422", "--peer", "3=tls+tcp://10.0.0.3:7422",
		"--cluster-key", "/dev/null", "--bootstrap", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.node_id, 2);
	cr_assert_str_eq(o.cluster_url, "tcp://127.0.0.1:7522");
	cr_assert_eq(o.npeers, 2);
	cr_assert_eq(o.peers[0].id, 1);
	cr_assert_str_eq(o.peers[0].url, "tcp://127.0.0.1:7422");
	cr_assert_eq(o.peers[1].id, 3);
	cr_assert_str_eq(o.peers[1].url, "tls+tcp://10.0.0.3:7422");
	cr_assert(o.bootstrap);
	cr_assert(!o.convert);
}

Test(broker_options, no_node_id_is_a_single_broker)
{
	char *argv[] = { "mom-broker", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.node_id, 0);
	cr_assert_null(o.cluster_url);
}

Test(broker_options, cluster_listener_defaults_to_7422)
{
	char *argv[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_str_eq(o.cluster_url, "tcp://127.0.0.1:7422");
}

Test(broker_options, election_timeout_is_a_duration_of_100ms_to_a_minute_for_a_cluster_node)
{
	char *ok[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null",
		"--election-timeout", "1500ms", NULL };
	char *none[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null", NULL };
	char *single[] = { "mom-broker", "--election-timeout", "1s", NULL };
	const char *bad[] = { "99ms", "61s", "0", "soon", "-1s" };

	cr_assert_eq(parse(ok), 0, "err: %s", err);
	cr_assert_eq(o.election_timeout_ms, 1500);
	cr_assert_eq(parse(none), 0, "err: %s", err);
	cr_assert_eq(o.election_timeout_ms, 0, "0: the replica's default");
	assert_usage(parse(single), "--election-timeout needs --node-id", 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null",
			"--election-timeout", (char *)bad[i], NULL };
		char  want[96];

		snprintf(want, sizeof(want), "bad --election-timeout '%s' (100ms to 1m)", bad[i]);
		assert_usage(parse(argv), want, 0);
	}
}

Test(broker_options, cluster_options_need_a_node_id)
{
	char *argv[] = { "mom-broker", "--peer", "2=tcp://127.0.0.1:1", NULL };

	assert_usage(parse(argv), "--peer, --cluster, --cluster-key, --bootstrap and "
	    "--convert-to-cluster need --node-id", 0);
}

Test(broker_options, cluster_mode_needs_a_key)
{
	char *argv[] = { "mom-broker", "--node-id", "1", "--peer", "2=tcp://127.0.0.1:1", NULL };

	assert_usage(parse(argv), "cluster mode (--node-id) needs --cluster-key FILE (make one "
	    "with: mom-auth cluster-key FILE)", 0);
}

Test(broker_options, an_unreadable_key_is_refused)
{
	char *argv[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/nonexistent/k",
		NULL };

	assert_usage(parse(argv), "cannot read --cluster-key /nonexistent/k: No such file or "
	    "directory", 0);
}

Test(broker_options, bad_node_ids_are_refused)
{
	char *bad[] = { "0", "-1", "x", "1x", "", "01", "9007199254740993" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "mom-broker", "--node-id", bad[i], NULL };
		char  want[128];

		broker_options_fini(&o);
		snprintf(want, sizeof(want), "bad --node-id '%s' (a positive integer)", bad[i]);
		assert_usage(parse(argv), want, 0);
	}
}

Test(broker_options, node_ids_go_up_to_2_to_the_53)
{
	char *argv[] = { "mom-broker", "--node-id", "9007199254740992", "--cluster-key",
		"/dev/null", "--peer", "9007199254740991=tcp://h:1", NULL };

	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.node_id, UINT64_C(9007199254740992));
	cr_assert_eq(o.peers[0].id, UINT64_C(9007199254740991));
}

Test(broker_options, bad_peers_are_refused)
{
	char *bad[] = { "2", "2=", "=tcp://h:1", "0=tcp://h:1", "2=http://h:1", "2=ipc:///x",
		"2=tcp://" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null",
			"--peer", bad[i], NULL };

		broker_options_fini(&o);
		cr_assert_eq(parse(argv), MOM_EXIT_USAGE, "%s accepted", bad[i]);
		cr_assert(strncmp(err, "bad --peer '", 12) == 0, "%s: %s", bad[i], err);
	}
}

Test(broker_options, a_peer_twice_or_self_is_refused)
{
	char *twice[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null", "--peer",
		"2=tcp://h:1", "--peer", "2=tcp://h:2", NULL };
	char *self[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null", "--peer",
		"1=tcp://h:1", NULL };

	assert_usage(parse(twice), "--peer 2 is given twice", 0);
	broker_options_fini(&o);
	assert_usage(parse(self), "--peer 1 is this node (--node-id): list the other members "
	    "only", 0);
}

Test(broker_options, bad_cluster_listener_is_refused)
{
	char *argv[] = { "mom-broker", "--node-id", "1", "--cluster", "ipc:///tmp/x", NULL };

	assert_usage(parse(argv), "bad --cluster 'ipc:///tmp/x' (tcp://HOST:PORT or "
	    "tls+tcp://HOST:PORT)", 0);
}

Test(broker_options, bootstrap_needs_peers_and_convert_is_alone)
{
	char *boot[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null",
		"--bootstrap", NULL };
	char *conv[] = { "mom-broker", "--node-id", "1", "--cluster-key", "/dev/null",
		"--convert-to-cluster", "--peer", "2=tcp://h:1", NULL };

	assert_usage(parse(boot), "--bootstrap needs the other members (--peer ID=URL); a "
	    "cluster of one is --convert-to-cluster", 0);
	broker_options_fini(&o);
	assert_usage(parse(conv), "--convert-to-cluster makes a cluster of this node alone: add "
	    "the others later (mom-admin cluster add)", 0);
}

Test(broker_options, the_command_lines_peers_replace_the_files)
{
	char *argv[] = { "mom-broker", "-c", NULL, "--node-id", "1", "--cluster-key", "/dev/null",
		"--peer", "3=tcp://127.0.0.1:3", NULL };

	argv[2] = (char *)optfix_write("c.conf", "peer 2=tcp://127.0.0.1:2\npeer 4=tcp://127.0.0.1:4\n");
	cr_assert_eq(parse(argv), 0, "err: %s", err);
	cr_assert_eq(o.npeers, 1);
	cr_assert_eq(o.peers[0].id, 3);
}

Test(broker_options, convert_is_not_for_a_file)
{
	char *argv[] = { "mom-broker", "-c", NULL, "--node-id", "1", "--cluster-key", "/dev/null",
		NULL };

	argv[2] = (char *)optfix_write("c.conf", "convert-to-cluster\n");
	cr_assert_eq(parse(argv), MOM_EXIT_USAGE);
	cr_assert(strstr(err, "--convert-to-cluster is for the command line") != NULL, "%s", err);
}

/*
 * mom-broker: the daemon.  Parses options (options.c), starts the core
 * and the front, and waits for signals.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>

#include "net/auth.h"
#include "core/core.h"
#include "net/front.h"
#include "state/fsm.h"
#include "net/http.h"
#include "replica/link.h"
#include "replica/replica.h"
#include "keyfile.h"
#include "log.h"
#include "mom.h"
#include "options.h"
#include "sdnotify.h"
#include "tls.h"
#include "token.h"

/* What runs, and what main holds besides the threads. */
struct broker {
	struct fsm     *fsm;
	struct core    *core;
	struct front   *front;
	struct http    *http;
	struct auth    *auth;
	nng_tls_config *tls;
	int             lockfd;
	rlim_t          nofile; /* the open-file limit */
	uint8_t         key[BROKER_KEY_MAX]; /* cluster mode: --cluster-key's bytes */
	size_t          keylen;
	struct replica_peer peers[BROKER_MAX_PEERS];
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-broker [-v] [-c FILE] [-D DATADIR] [-l URL]...\n"
	    "                  [--auth-key PUBKEY [--auth-issuer S] [--auth-audience S] | --no-auth]\n"
	    "                  [--node-id ID --cluster-key FILE [--cluster URL]\n"
	    "                   [--peer ID=URL]... [--bootstrap | --convert-to-cluster]\n"
	    "                   [--election-timeout DURATION]]\n"
	    "                  [--max-msg-size SIZE] [--dedupe-window DURATION]\n"
	    "                  [--retain DURATION] [--retain-bytes SIZE]\n"
	    "                  [--tls-cert FILE [--tls-key FILE] [--tls-cafile FILE]]\n"
	    "                  [--http ADDR | --http off] [--http-header-timeout DURATION]\n"
	    "                  [--http-body-rate SIZE] [--http-max-conns N]\n"
	    "                  [--fsync always|interval|never] [--fsync-interval DURATION]\n"
	    "                  [--snapshot-after SIZE] [--disk-reserve SIZE]\n"
	    "                  [--max-connections N] [--max-polls N]\n"
	    "                  [--frame-timeout DURATION] [--frame-budget SIZE]\n"
	    "       mom-broker --repair [-D DATADIR]\n"
	    "       mom-broker -h | --version\n");
}

/* -h: the usage, then every option, one line each (the man page says more). */
static void
help(void)
{
	usage(stdout);
	printf("\nOptions:\n"
	    "  -c, --config FILE          read options from FILE first (mom-broker.conf(5))\n"
	    "  -D, --data-dir DATADIR     the data directory (default ./mom-data)\n"
	    "  -l, --listen URL           listen on tcp://, ipc:// or tls+tcp:// (repeatable)\n"
	    "  --http ADDR|off            the HTTP API's address (default 127.0.0.1:7421)\n"
	    "  --http-header-timeout DURATION  time a request head has to arrive (default 10s)\n"
	    "  --http-body-rate SIZE      the slowest a request body may come, a second (16KiB)\n"
	    "  --http-max-conns N         HTTP connections at once (default 4096)\n"
	    "  --auth-key PUBKEY          require tokens signed by the key(s) in this PEM file\n"
	    "  --auth-issuer NAME         the issuer tokens must name (default mom-auth)\n"
	    "  --auth-audience NAME       the audience tokens must name (default mom)\n"
	    "  --no-auth                  serve without tokens (undoes a file's auth-key)\n"
	    "  --tls-cert FILE            the server certificate for tls+tcp:// and https://\n"
	    "  --tls-key FILE             the private key of --tls-cert\n"
	    "  --tls-cafile FILE          require client certificates signed by these CAs\n"
	    "  --max-msg-size SIZE        the largest payload accepted (default 1MiB)\n"
	    "  --dedupe-window DURATION   how long publisher ids are remembered (default 2m)\n"
	    "  --retain DURATION          topics' default retention time (default 24h)\n"
	    "  --retain-bytes SIZE        topics' default retention size (default 64MiB)\n"
	    "  --fsync always|interval|never  when a change is synced before it is confirmed\n"
	    "  --fsync-interval DURATION  with --fsync interval: how often (default 100ms)\n"
	    "  --snapshot-after SIZE      snapshot the state after this much log\n"
	    "  --disk-reserve SIZE        room kept for acks and deletes on a full disk (64MiB)\n"
	    "  --node-id ID               cluster mode: this node's id (a positive integer)\n"
	    "  --cluster URL              the cluster listener (default tcp://127.0.0.1:7422)\n"
	    "  --peer ID=URL              another member and its cluster URL (repeatable)\n"
	    "  --cluster-key FILE         the shared key of the cluster's links (0600)\n"
	    "  --bootstrap                form a new cluster with the peers (empty directories)\n"
	    "  --convert-to-cluster       make a single broker's data node ID of a new cluster\n"
	    "  --election-timeout DURATION  silence from the leader before an election (800ms)\n"
	    "  --max-connections N        nng connections at once (default: from the file limit)\n"
	    "  --max-polls N              long polls an nng connection may have waiting (256)\n"
	    "  --frame-timeout DURATION   time a request has from first to last byte (30s)\n"
	    "  --frame-budget SIZE        memory for requests not yet whole (default 128MiB)\n"
	    "  --repair                   cut a damaged log at its damage, say what went, exit\n"
	    "  -v, --verbose              log debug lines as well\n"
	    "  -h, --help                 print this help and exit 0\n"
	    "  --version                  print the version and exit 0\n");
}

static int
lock_datadir(const char *dir)
{
	char path[4096];
	int  fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_fatal("cannot create data directory %s", dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		log_fatal("cannot open %s", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_fatalx("data directory %s is in use by another broker", dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* For stats: the nng plane's connected clients. */
static int
connections_of(void *front)
{
	return front_connections(front);
}

/* What main holds besides the threads, given back in order. */
static void
release(struct broker *b)
{
	fsm_free(b->fsm);
	auth_close(b->auth);
	/*
	 * nng 1.5.2 finishes the accept a TLS stream listener had pending when
	 * it was closed on a task thread of its own, later: the aio stopped by
	 * its owner does not wait for it.  nng_fini would shut the aio
	 * subsystem down under it ("panic: pthread_mutex_lock: Invalid
	 * argument", exit 134, one stop in five right after a client left).
	 * With TLS the process exits with nng's threads still up instead.
	 */
	if (b->tls != NULL)
		nng_tls_config_free(b->tls);
	else if (!link_close_stuck())
		nng_fini(); /* not with a cluster link socket nng could not close (link.h) */
	close(b->lockfd);
}

/*
 * Signals are taken synchronously by main's thread (sigwait): blocked
 * before any other thread exists, so that every thread inherits the mask.
 */
static void
block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	sigaddset(sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Every connection takes a descriptor, and the common soft limit of 1,024
 * would hold a fraction of --http-max-conns: the soft limit goes up to the
 * hard one (on Linux "unlimited" is capped by fs.nr_open, 1,048,576 by
 * default, so that is asked for then), and what it got is logged.
 */
static rlim_t
raise_nofile(void)
{
	struct rlimit rl;
	rlim_t        was;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit");
		return RLIM_INFINITY;
	}
	was = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max != RLIM_INFINITY ? rl.rlim_max : 1048576;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = was;
	}
	if (rl.rlim_cur != was)
		log_info("open files: %llu (was %llu)", (unsigned long long)rl.rlim_cur,
		    (unsigned long long)was);
	else
		log_info("open files: %llu", (unsigned long long)rl.rlim_cur);
	return rl.rlim_cur;
}

/*
 * The HTTP plane's cap, within the open-file limit: a connection over it
 * could not even be accepted, so none would be closed to make room for it.
 * NOFILE_SPARE descriptors stay for the data directory and the nng plane.
 */
#define NOFILE_SPARE 256

static int
http_cap(const struct broker_options *o, rlim_t nofile)
{
	int cap = o->http_max_conns;

	if (nofile != RLIM_INFINITY && nofile < (rlim_t)cap + NOFILE_SPARE) {
		cap = nofile > NOFILE_SPARE + 16 ? (int)(nofile - NOFILE_SPARE) : 16;
		log_warnx("http: at most %d connections, not %d (--http-max-conns): the open-file "
		    "limit is %llu", cap, o->http_max_conns, (unsigned long long)nofile);
	}
	return cap;
}

/*
 * The nng plane's default cap: what the open-file limit leaves after the
 * spare and the HTTP plane's share, at least 16, at most 16384.
 */
static int
nng_cap(const struct broker_options *o, rlim_t nofile)
{
	rlim_t http = o->http != NULL ? (rlim_t)o->http_max_conns : 0;

	if (nofile == RLIM_INFINITY || nofile > 16384 + http + NOFILE_SPARE)
		return 16384;
	return nofile > http + NOFILE_SPARE + 16 ? (int)(nofile - http - NOFILE_SPARE) : 16;
}

/* TLS, keys and the data directory's lock: 0 or an exit status. */
static int
open_resources(struct broker *b, const struct broker_options *o)
{
	struct auth_config acfg;
	char               err[512];

	/* After the signal mask: nng starts its threads here. */
	if (o->tls_cert != NULL && mom_tls_server_config(&b->tls, o->tls_cert, o->tls_key,
	    o->tls_ca, err, sizeof(err)) != 0) {
		fprintf(stderr, "mom-broker: %s\n", err);
		return MOM_EXIT_USAGE;
	}
	memset(&acfg, 0, sizeof(acfg));
	acfg.keyfile = o->auth_key;
	acfg.issuer = o->auth_issuer;
	acfg.audience = o->auth_audience;
	acfg.leeway = MOM_TOKEN_LEEWAY_MAX;
	if (auth_open(&b->auth, &acfg) != 0)
		return MOM_EXIT_USAGE;
	if ((b->lockfd = lock_datadir(o->datadir)) < 0) {
		auth_close(b->auth);
		return MOM_EXIT_FAIL;
	}
	return 0;
}

/* The cluster key (--cluster-key, libmom/keyfile.h).  0 or -1 (err). */
static int
load_cluster_key(const char *path, uint8_t *key, size_t *len, char *err, size_t errlen)
{
	char why[512];

	if (mom_keyfile_load(path, key, len, BROKER_KEY_MAX, why, sizeof(why)) != 0) {
		mom_errf(err, errlen, "--cluster-key: %s", why);
		return -1;
	}
	return 0;
}

/* The state machine and the core thread: 0 or an exit status (all released). */
static int
start_core(struct broker *b, const struct broker_options *o)
{
	struct fsm_config  fcfg;
	struct core_config ccfg;
	char               err[600];
	int                rv;

	memset(&fcfg, 0, sizeof(fcfg));
	fcfg.max_payload = o->max_payload;
	fcfg.dedupe_window_ms = o->dedupe_window_ms;
	fcfg.retain_ms = o->retain_ms;
	fcfg.retain_bytes = o->retain_bytes;
	if ((b->fsm = fsm_new(&fcfg)) == NULL)
		fatalx("out of memory");
	memset(&ccfg, 0, sizeof(ccfg));
	ccfg.max_payload = o->max_payload;
	ccfg.dir = o->datadir;
	ccfg.fsync = o->fsync;
	ccfg.fsync_interval_ms = o->fsync_interval_ms;
	ccfg.snapshot_bytes = o->snapshot_bytes;
	ccfg.reserve = o->reserve_bytes;
	if (o->node_id != 0) {
		size_t i;

		if (load_cluster_key(o->cluster_key, b->key, &b->keylen, err, sizeof(err)) != 0) {
			log_fatalx("%s", err);
			release(b);
			return MOM_EXIT_FAIL;
		}
		for (i = 0; i < (size_t)o->npeers; i++) {
			b->peers[i].id = o->peers[i].id;
			b->peers[i].url = o->peers[i].url;
		}
		ccfg.node_id = o->node_id;
		ccfg.cluster_url = o->cluster_url;
		ccfg.peers = b->peers;
		ccfg.npeers = (size_t)o->npeers;
		ccfg.key = b->key;
		ccfg.keylen = b->keylen;
		ccfg.bootstrap = o->bootstrap;
		ccfg.election_timeout_ms = o->election_timeout_ms;
	}
	if ((rv = core_start(&b->core, b->fsm, &ccfg, err, sizeof(err))) != 0) {
		log_fatalx("cannot start: %s%s", err, rv == MOM_EBADDATA ? " (mom-broker --repair "
		    "cuts the log there, dropping what follows: see mom-broker(8))" : "");
		release(b);
		return rv == MOM_EBADDATA ? MOM_EXIT_DATAERR : MOM_EXIT_FAIL;
	}
	return 0;
}

/* The nng listeners and the HTTP API: 0 or an exit status (all stopped and released). */
static int
start_planes(struct broker *b, struct broker_options *o)
{
	struct front_config frcfg;
	struct http_config  hcfg;
	char                err[600];

	/* Here, once nothing but listening can fail: a usage error stays one line. */
	b->nofile = raise_nofile();
	memset(&frcfg, 0, sizeof(frcfg));
	frcfg.listen = o->listen;
	frcfg.nlisten = o->nlisten;
	frcfg.max_payload = o->max_payload;
	frcfg.max_conns = o->max_conns > 0 ? o->max_conns : nng_cap(o, b->nofile);
	frcfg.max_polls = o->max_polls;
	frcfg.frame_ms = o->frame_ms;
	frcfg.frame_budget = o->frame_budget;
	frcfg.auth = b->auth;
	frcfg.tls = b->tls;
	if (front_start(&b->front, &frcfg, b->core) != 0) {
		core_stop(b->core);
		core_free(b->core);
		release(b);
		return MOM_EXIT_UNAVAILABLE;
	}
	core_set_connections(b->core, connections_of, b->front);
	if (o->http == NULL)
		return 0;
	memset(&hcfg, 0, sizeof(hcfg));
	hcfg.url = o->http_url;
	hcfg.max_payload = o->max_payload;
	hcfg.auth = b->auth;
	hcfg.tls = o->http_tls ? b->tls : NULL;
	hcfg.header_timeout_ms = o->http_header_timeout_ms;
	hcfg.body_rate = o->http_body_rate;
	hcfg.max_conns = http_cap(o, b->nofile);
	/*
	 * Several brokers on one machine (tests, a second data directory)
	 * would all want the default port: without an explicit --http that
	 * is a warning, not a reason to stop.
	 */
	if (http_start(&b->http, &hcfg, b->core, err, sizeof(err)) != 0 && o->http_default)
		log_warnx("no HTTP API (the default address %s is not available: %s; "
		    "--http ADDR chooses another, --http off says so)", o->http, err);
	else if (b->http == NULL) {
		log_fatalx("cannot serve HTTP on %s: %s", o->http, err);
		core_stop(b->core);
		front_stop(b->front);
		core_free(b->core);
		release(b);
		return MOM_EXIT_UNAVAILABLE;
	}
	return 0;
}

/*
 * Tells systemd (a Type=notify unit) where the broker is; a socket that
 * takes nothing is logged once and never stops the broker.
 */
static void
notify(const char *state)
{
	static int warned;

	if (mom_sd_notify(state) < 0 && !warned) {
		warned = 1;
		log_warn("NOTIFY_SOCKET %s: cannot send %s", getenv("NOTIFY_SOCKET"), state);
	}
}

/* Until SIGTERM or SIGINT; SIGHUP reloads the keys. */
static void
wait_signals(struct broker *b, sigset_t *sigs)
{
	int sig;

	for (;;) {
		if (sigwait(sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			notify("RELOADING=1");
			if (auth_enabled(b->auth))
				auth_reload(b->auth);
			else
				log_info("SIGHUP: no keys to reload");
			notify("READY=1");
			continue;
		}
		log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		notify("STOPPING=1");
		return;
	}
}

static void
stop(struct broker *b)
{
	http_quiesce(b->http);
	core_stop(b->core);
	http_stop(b->http);
	front_stop(b->front);
	core_free(b->core);
	release(b);
}

/* --repair: cuts the log at its first damage and says what went; the exit status. */
static int
repair(const struct broker_options *o)
{
	char report[1024], err[600];
	int  fd, rv;

	log_init(o->verbose);
	if ((fd = lock_datadir(o->datadir)) < 0)
		return MOM_EXIT_FAIL;
	rv = replica_repair(o->datadir, report, sizeof(report), err, sizeof(err));
	close(fd);
	if (rv != 0) {
		fprintf(stderr, "mom-broker: cannot repair: %s\n", err);
		return rv == MOM_EBADDATA ? MOM_EXIT_DATAERR : MOM_EXIT_FAIL;
	}
	printf("%s\n", report);
	return 0;
}

/* --convert-to-cluster: a single broker's data becomes node N of a new cluster, alone. */
static int
convert(const struct broker_options *o)
{
	uint8_t key[BROKER_KEY_MAX];
	size_t  keylen;
	char    err[600];
	int     fd, rv;

	log_init(o->verbose);
	if (load_cluster_key(o->cluster_key, key, &keylen, err, sizeof(err)) != 0) {
		fprintf(stderr, "mom-broker: %s\n", err);
		return MOM_EXIT_FAIL;
	}
	if ((fd = lock_datadir(o->datadir)) < 0)
		return MOM_EXIT_FAIL;
	rv = replica_convert(o->datadir, o->node_id, o->cluster_url, key, keylen, err,
	    sizeof(err));
	close(fd);
	explicit_bzero(key, sizeof(key));
	if (rv != 0) {
		fprintf(stderr, "mom-broker: cannot convert %s: %s\n", o->datadir, err);
		return MOM_EXIT_FAIL;
	}
	printf("%s is node %" PRIu64 " of a new cluster, alone; start it with --node-id %" PRIu64
	    " --cluster %s --cluster-key %s, then add the others (mom-admin cluster add)\n",
	    o->datadir, o->node_id, o->node_id, o->cluster_url, o->cluster_key);
	return 0;
}

/* Starts everything, serves until a signal says stop; the exit status. */
static int
serve(struct broker_options *o)
{
	struct broker b;
	sigset_t      sigs;
	int           rv;

	memset(&b, 0, sizeof(b));
	log_init(o->verbose);
	block_signals(&sigs);
	if ((rv = open_resources(&b, o)) != 0 || (rv = start_core(&b, o)) != 0 ||
	    (rv = start_planes(&b, o)) != 0)
		return rv;
	log_info("ready (version %s, data directory %s, max message size %zu)",
	    MOM_VERSION, o->datadir, o->max_payload);
	notify("READY=1");
	wait_signals(&b, &sigs);
	stop(&b);
	log_info("stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	struct broker_options o;
	char                  err[600];
	int                   rv;

	if ((rv = broker_options_parse(&o, argc, argv, err, sizeof(err))) != 0) {
		fprintf(stderr, "mom-broker: %s\n", err);
		if (o.usage)
			usage(stderr);
	} else if (o.action == MOM_ACTION_HELP)
		help();
	else if (o.action == MOM_ACTION_VERSION)
		printf("mom-broker %s\n", MOM_VERSION);
	else if (o.repair)
		rv = repair(&o);
	else if (o.convert)
		rv = convert(&o);
	else
		rv = serve(&o);
	broker_options_fini(&o);
	rv = mom_stdout_finish("mom-broker", rv, 0);
	if (link_close_stuck())
		_exit(rv); /* nng's atexit(nng_fini) would wait for that socket forever */
	return rv;
}

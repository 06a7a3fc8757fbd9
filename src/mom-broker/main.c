/*
 * mom-broker: the daemon.  Parses options, starts the core and the front,
 * and waits for signals.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>

#include "net/auth.h"
#include "config.h"
#include "core/core.h"
#include "duration.h"
#include "net/front.h"
#include "state/fsm.h"
#include "net/http.h"
#include "log.h"
#include "mom.h"
#include "storage/rio.h"
#include "size.h"
#include "tls.h"
#include "wire.h"

#define MAX_LISTEN 16

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: mom-broker [-v] [-c FILE] [-D DATADIR] [-l URL]...\n"
	    "                  [--auth-key PUBKEY [--auth-issuer S] [--auth-audience S] | --no-auth]\n"
	    "                  [--max-msg-size SIZE] [--dedupe-window DURATION]\n"
	    "                  [--retain DURATION] [--retain-bytes SIZE]\n"
	    "                  [--tls-cert FILE [--tls-key FILE] [--tls-cafile FILE]]\n"
	    "                  [--http ADDR | --http off]\n"
	    "                  [--fsync always|interval|never] [--fsync-interval DURATION]\n"
	    "                  [--snapshot-after SIZE]\n"
	    "       mom-broker -h | --version\n");
}

/*
 * Is this listener reachable only from this machine?  Without
 * authentication the broker listens on nothing else.
 */
static bool
loopback_only(const char *url)
{
	const char     *h, *end;
	char            host[64];
	struct in_addr  a4;
	struct in6_addr a6;
	size_t          n;

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return true;
	if ((h = strstr(url, "://")) == NULL)
		return false;
	h += 3;
	if (*h == '[') {
		if ((end = strchr(++h, ']')) == NULL)
			return false;
	} else if ((end = strrchr(h, ':')) == NULL)
		end = h + strlen(h);
	if ((n = (size_t)(end - h)) == 0 || n >= sizeof(host))
		return false;
	memcpy(host, h, n);
	host[n] = '\0';
	if (strcmp(host, "localhost") == 0)
		return true;
	/* Addresses only, by value: "127.evil.example" is not loopback. */
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static int
lock_datadir(const char *dir)
{
	char path[4096];
	int  fd;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_warn("cannot create data directory %s", dir);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		log_warn("cannot open %s", path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		log_warnx("data directory %s is in use by another broker", dir);
		close(fd);
		return -1;
	}
	return fd;
}

/* What main holds besides the threads, given back in order. */
static void
release(struct fsm *fsm, struct auth *auth, nng_tls_config *tls, int lockfd)
{
	fsm_free(fsm);
	auth_close(auth);
	if (tls != NULL)
		nng_tls_config_free(tls);
	nng_fini();
	close(lockfd);
}

int
main(int argc, char **argv)
{
	enum { OPT_NOAUTH = 256, OPT_MAXMSG, OPT_DEDUPE, OPT_RETAIN, OPT_RETAINB, OPT_VERSION,
	    OPT_AUTHKEY, OPT_AUTHISS, OPT_AUTHAUD };
	enum { OPT_TLSCERT = 400, OPT_TLSKEY, OPT_TLSCA };
	enum { OPT_HTTP = 500, OPT_FSYNC, OPT_FSYNCIV, OPT_SNAPAFTER };
	static const struct option longopts[] = {
		{ "auth-audience", required_argument, NULL, OPT_AUTHAUD },
		{ "auth-issuer", required_argument, NULL, OPT_AUTHISS },
		{ "auth-key", required_argument, NULL, OPT_AUTHKEY },
		{ "config", required_argument, NULL, 'c' },
		{ "data-dir", required_argument, NULL, 'D' },
		{ "dedupe-window", required_argument, NULL, OPT_DEDUPE },
		{ "fsync", required_argument, NULL, OPT_FSYNC },
		{ "fsync-interval", required_argument, NULL, OPT_FSYNCIV },
		{ "help", no_argument, NULL, 'h' },
		{ "http", required_argument, NULL, OPT_HTTP },
		{ "listen", required_argument, NULL, 'l' },
		{ "max-msg-size", required_argument, NULL, OPT_MAXMSG },
		{ "no-auth", no_argument, NULL, OPT_NOAUTH },
		{ "retain", required_argument, NULL, OPT_RETAIN },
		{ "retain-bytes", required_argument, NULL, OPT_RETAINB },
		{ "snapshot-after", required_argument, NULL, OPT_SNAPAFTER },
		{ "tls-cafile", required_argument, NULL, OPT_TLSCA },
		{ "tls-cert", required_argument, NULL, OPT_TLSCERT },
		{ "tls-key", required_argument, NULL, OPT_TLSKEY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char         *listen[MAX_LISTEN];
	const char         *datadir = "./mom-data";
	int                 nlisten = 0, verbose = 0, ch, i, lockfd, sig;
	bool                noauth = false;
	struct fsm_config   fcfg;
	struct core_config  ccfg;
	struct front_config frcfg;
	struct fsm         *fsm;
	struct core        *core;
	struct front       *front;
	struct auth_config  acfg;
	struct auth        *auth;
	uint64_t            v;
	sigset_t            sigs;
	const char         *tlscert = NULL, *tlskey = NULL, *tlsca = NULL;
	nng_tls_config     *tls = NULL;
	char                tlserr[512];
	const char         *httpaddr = "127.0.0.1:7421";
	char                httpurl[320];
	bool                httptls = false, httpdefault = true;
	struct http_config  hcfg;
	struct http        *http = NULL;
	int                 fsync_mode = RIO_FSYNC_ALWAYS;
	uint64_t            fsync_iv = 0, snap_after = 0;
	char                err[600];

	memset(&fcfg, 0, sizeof(fcfg));
	fcfg.max_payload = MOM_PAYLOAD_DEFAULT;
	memset(&acfg, 0, sizeof(acfg));
	acfg.leeway = MOM_TOKEN_LEEWAY_MAX;
	/* -c FILE: options from a file, before the command line's. */
	for (i = 1; i < argc; i++) {
		const char *file = NULL;

		if (strcmp(argv[i], "--") == 0)
			break;
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			file = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
		else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0')
			file = argv[i] + 2;
		if (file == NULL)
			continue;
		if (access(file, R_OK) != 0) {
			fprintf(stderr, "mom-broker: cannot read %s: %s\n", file, strerror(errno));
			return MOM_EXIT_USAGE;
		}
		if (mom_config_argv_file(file, &argc, &argv, err, sizeof(err)) != 0) {
			fprintf(stderr, "mom-broker: %s\n", err);
			return MOM_EXIT_USAGE;
		}
		break;
	}
	while ((ch = getopt_long(argc, argv, "c:D:hl:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			break;
		case 'D':
			datadir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'l':
			if (nlisten == MAX_LISTEN) {
				fprintf(stderr, "mom-broker: at most %d listeners\n", MAX_LISTEN);
				return MOM_EXIT_USAGE;
			}
			listen[nlisten++] = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_NOAUTH:
			noauth = true;
			break;
		case OPT_AUTHKEY:
			acfg.keyfile = optarg;
			break;
		case OPT_AUTHISS:
			acfg.issuer = optarg;
			break;
		case OPT_AUTHAUD:
			acfg.audience = optarg;
			break;
		case OPT_MAXMSG:
			if (mom_size_parse(optarg, &v) != 0 || v == 0 || v > MOM_PAYLOAD_LIMIT) {
				fprintf(stderr, "mom-broker: bad --max-msg-size '%s' (1 to 64MiB)\n", optarg);
				return MOM_EXIT_USAGE;
			}
			fcfg.max_payload = (size_t)v;
			break;
		case OPT_DEDUPE:
			if (mom_duration_parse(optarg, &fcfg.dedupe_window_ms) != 0 ||
			    fcfg.dedupe_window_ms == 0) {
				fprintf(stderr, "mom-broker: bad duration '%s'\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_RETAIN:
			if (mom_duration_parse(optarg, &fcfg.retain_ms) != 0) {
				fprintf(stderr, "mom-broker: bad duration '%s'\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_RETAINB:
			if (mom_size_parse(optarg, &fcfg.retain_bytes) != 0) {
				fprintf(stderr, "mom-broker: bad size '%s'\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_TLSCERT:
			tlscert = optarg;
			break;
		case OPT_TLSKEY:
			tlskey = optarg;
			break;
		case OPT_TLSCA:
			tlsca = optarg;
			break;
		case OPT_HTTP:
			httpaddr = optarg;
			httpdefault = false;
			break;
		case OPT_FSYNC:
			if (strcmp(optarg, "always") == 0)
				fsync_mode = RIO_FSYNC_ALWAYS;
			else if (strcmp(optarg, "interval") == 0)
				fsync_mode = RIO_FSYNC_INTERVAL;
			else if (strcmp(optarg, "never") == 0)
				fsync_mode = RIO_FSYNC_NEVER;
			else {
				fprintf(stderr, "mom-broker: bad --fsync '%s' (always, interval or "
				    "never)\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_FSYNCIV:
			if (mom_duration_parse(optarg, &fsync_iv) != 0 || fsync_iv == 0 ||
			    fsync_iv > 60000) {
				fprintf(stderr, "mom-broker: bad --fsync-interval '%s' (1ms to 1m)\n",
				    optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_SNAPAFTER:
			if (mom_size_parse(optarg, &snap_after) != 0 || snap_after < 4096) {
				fprintf(stderr, "mom-broker: bad --snapshot-after '%s' (a size, at "
				    "least 4KiB)\n", optarg);
				return MOM_EXIT_USAGE;
			}
			break;
		case OPT_VERSION:
			printf("mom-broker %s\n", MOM_VERSION);
			return 0;
		default:
			usage(stderr);
			return MOM_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mom-broker: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return MOM_EXIT_USAGE;
	}
	if (nlisten == 0)
		listen[nlisten++] = "tcp://127.0.0.1:7420";
	if (noauth && acfg.keyfile != NULL) {
		fprintf(stderr, "mom-broker: --auth-key and --no-auth contradict each other\n");
		return MOM_EXIT_USAGE;
	}
	if (acfg.keyfile != NULL && access(acfg.keyfile, R_OK) != 0) {
		fprintf(stderr, "mom-broker: cannot read --auth-key %s: %s\n", acfg.keyfile,
		    strerror(errno));
		return MOM_EXIT_USAGE;
	}
	for (i = 0; i < nlisten; i++) {
		if (!noauth && acfg.keyfile == NULL && !loopback_only(listen[i])) {
			fprintf(stderr, "mom-broker: refusing to listen on %s without "
			    "authentication (--auth-key PUBKEY, or --no-auth to allow it)\n", listen[i]);
			return MOM_EXIT_USAGE;
		}
		if (mom_tls_url(listen[i]) && tlscert == NULL) {
			fprintf(stderr, "mom-broker: %s needs a server certificate: --tls-cert FILE "
			    "and --tls-key FILE\n", listen[i]);
			return MOM_EXIT_USAGE;
		}
	}
	/* --http off: no HTTP plane.  Same rules as the data plane's listeners. */
	if (strcmp(httpaddr, "off") == 0)
		httpaddr = NULL;
	else if (http_url(httpaddr, httpurl, sizeof(httpurl), &httptls) != 0) {
		fprintf(stderr, "mom-broker: bad --http '%s' (HOST:PORT, http://HOST:PORT, "
		    "https://HOST:PORT or off)\n", httpaddr);
		return MOM_EXIT_USAGE;
	} else if (!noauth && acfg.keyfile == NULL && !loopback_only(httpurl)) {
		fprintf(stderr, "mom-broker: refusing to serve HTTP on %s without "
		    "authentication (--auth-key PUBKEY, or --no-auth to allow it)\n", httpaddr);
		return MOM_EXIT_USAGE;
	} else if (httptls && tlscert == NULL) {
		fprintf(stderr, "mom-broker: --http %s needs a server certificate: --tls-cert FILE "
		    "and --tls-key FILE\n", httpaddr);
		return MOM_EXIT_USAGE;
	}
	if (tlscert == NULL && (tlskey != NULL || tlsca != NULL)) {
		fprintf(stderr, "mom-broker: --tls-key and --tls-cafile need --tls-cert\n");
		return MOM_EXIT_USAGE;
	}
	log_init(verbose);

	/*
	 * Signals are taken synchronously by this thread; block them before
	 * any other thread exists so that every thread inherits the mask.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* After the signal mask: nng starts its threads here. */
	if (tlscert != NULL &&
	    mom_tls_server_config(&tls, tlscert, tlskey, tlsca, tlserr, sizeof(tlserr)) != 0) {
		fprintf(stderr, "mom-broker: %s\n", tlserr);
		return MOM_EXIT_USAGE;
	}
	if (auth_open(&auth, &acfg) != 0)
		return MOM_EXIT_USAGE;
	if ((lockfd = lock_datadir(datadir)) < 0) {
		auth_close(auth);
		return MOM_EXIT_FAIL;
	}
	if ((fsm = fsm_new(&fcfg)) == NULL)
		fatalx("out of memory");
	memset(&ccfg, 0, sizeof(ccfg));
	ccfg.max_payload = fcfg.max_payload;
	ccfg.dir = datadir;
	ccfg.fsync = fsync_mode;
	ccfg.fsync_interval_ms = fsync_iv;
	ccfg.snapshot_bytes = snap_after;
	if (core_start(&core, fsm, &ccfg, err, sizeof(err)) != 0) {
		log_warnx("cannot start: %s", err);
		release(fsm, auth, tls, lockfd);
		return MOM_EXIT_FAIL;
	}
	memset(&frcfg, 0, sizeof(frcfg));
	frcfg.listen = listen;
	frcfg.nlisten = nlisten;
	frcfg.max_payload = fcfg.max_payload;
	frcfg.auth = auth;
	frcfg.tls = tls;
	if (front_start(&front, &frcfg, core) != 0) {
		core_stop(core);
		core_free(core);
		release(fsm, auth, tls, lockfd);
		return MOM_EXIT_UNAVAILABLE;
	}
	core_set_front(core, front);
	if (httpaddr != NULL) {
		memset(&hcfg, 0, sizeof(hcfg));
		hcfg.url = httpurl;
		hcfg.max_payload = fcfg.max_payload;
		hcfg.auth = auth;
		hcfg.tls = httptls ? tls : NULL;
		/*
		 * Several brokers on one machine (tests, a second data
		 * directory) would all want the default port: without an
		 * explicit --http that is a warning, not a reason to stop.
		 */
		if (http_start(&http, &hcfg, core) != 0 && httpdefault)
			log_warnx("no HTTP API (the default address %s is not available; "
			    "--http ADDR chooses another, --http off says so)", httpaddr);
		else if (http == NULL) {
			core_stop(core);
			front_stop(front);
			core_free(core);
			release(fsm, auth, tls, lockfd);
			return MOM_EXIT_UNAVAILABLE;
		}
	}
	log_info("ready (version %s, data directory %s, max message size %zu)",
	    MOM_VERSION, datadir, fcfg.max_payload);

	for (;;) {
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			if (auth_enabled(auth))
				auth_reload(auth);
			else
				log_info("SIGHUP: no keys to reload");
			continue;
		}
		log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		break;
	}
	http_quiesce(http);
	core_stop(core);
	http_stop(http);
	front_stop(front);
	core_free(core);
	release(fsm, auth, tls, lockfd);
	log_info("stopped");
	return 0;
}

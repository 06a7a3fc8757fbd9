/*
 * options.c: mom-broker's config file and command line into struct
 * broker_options (see options.h and opt.h), and their checks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "mom.h"
#include "names.h"
#include "net/http.h"
#include "options.h"
#include "size.h"
#include "storage/rio.h"
#include "tls.h"
#include "wire.h"

enum { OPT_NOAUTH = 256, OPT_MAXMSG, OPT_DEDUPE, OPT_RETAIN, OPT_RETAINB, OPT_VERSION,
    OPT_AUTHKEY, OPT_AUTHISS, OPT_AUTHAUD };
enum { OPT_TLSCERT = 400, OPT_TLSKEY, OPT_TLSCA };
enum { OPT_HTTP = 500, OPT_FSYNC, OPT_FSYNCIV, OPT_SNAPAFTER, OPT_RESERVE, OPT_REPAIR,
    OPT_HTTPHDR, OPT_HTTPRATE, OPT_HTTPCONNS };
enum { OPT_MAXCONN = 600, OPT_MAXPOLLS, OPT_FRAMETO, OPT_FRAMEBUDGET };
enum { OPT_NODEID = 700, OPT_CLUSTER, OPT_CLUSTERKEY, OPT_PEER, OPT_BOOTSTRAP, OPT_CONVERT,
    OPT_ELECTION };

static const char optstring[] = ":c:D:hl:v";

static const struct option longopts[] = {
	{ "auth-audience", required_argument, NULL, OPT_AUTHAUD },
	{ "bootstrap", no_argument, NULL, OPT_BOOTSTRAP },
	{ "cluster", required_argument, NULL, OPT_CLUSTER },
	{ "cluster-key", required_argument, NULL, OPT_CLUSTERKEY },
	{ "convert-to-cluster", no_argument, NULL, OPT_CONVERT },
	{ "auth-issuer", required_argument, NULL, OPT_AUTHISS },
	{ "auth-key", required_argument, NULL, OPT_AUTHKEY },
	{ "config", required_argument, NULL, 'c' },
	{ "data-dir", required_argument, NULL, 'D' },
	{ "dedupe-window", required_argument, NULL, OPT_DEDUPE },
	{ "election-timeout", required_argument, NULL, OPT_ELECTION },
	{ "disk-reserve", required_argument, NULL, OPT_RESERVE },
	{ "frame-budget", required_argument, NULL, OPT_FRAMEBUDGET },
	{ "frame-timeout", required_argument, NULL, OPT_FRAMETO },
	{ "fsync", required_argument, NULL, OPT_FSYNC },
	{ "fsync-interval", required_argument, NULL, OPT_FSYNCIV },
	{ "help", no_argument, NULL, 'h' },
	{ "http", required_argument, NULL, OPT_HTTP },
	{ "http-body-rate", required_argument, NULL, OPT_HTTPRATE },
	{ "http-header-timeout", required_argument, NULL, OPT_HTTPHDR },
	{ "http-max-conns", required_argument, NULL, OPT_HTTPCONNS },
	{ "listen", required_argument, NULL, 'l' },
	{ "max-connections", required_argument, NULL, OPT_MAXCONN },
	{ "max-msg-size", required_argument, NULL, OPT_MAXMSG },
	{ "max-polls", required_argument, NULL, OPT_MAXPOLLS },
	{ "no-auth", no_argument, NULL, OPT_NOAUTH },
	{ "node-id", required_argument, NULL, OPT_NODEID },
	{ "peer", required_argument, NULL, OPT_PEER },
	{ "repair", no_argument, NULL, OPT_REPAIR },
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

/* One pass (the file's, then the command line's) and where --auth-key and --no-auth were set. */
struct pass {
	int    layer;
	int    key_from, noauth_from;
	int    peers_from; /* the layer whose --peer options count */
	char  *err;
	size_t errlen;
};

/* The transports the nng plane serves (net/front.c frames them itself). */
static bool
listen_scheme(const char *url)
{
	static const char *const ok[] = { "tcp://", "tcp4://", "tcp6://", "tls+tcp://",
	    "tls+tcp4://", "tls+tcp6://", "ipc://", "abstract://" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(url, ok[i], strlen(ok[i])) == 0)
			return true;
	return false;
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

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "abstract://", 11) == 0)
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

/*
 * The file of -c, found before getopt runs so that its options can be
 * read first: "-c FILE", "--config FILE", "--config=FILE" or "-cFILE",
 * the first of them before any "--".  NULL: none.
 */
static const char *
config_file(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0')
			return argv[i] + 2;
	}
	return NULL;
}

static int
fsync_opt(struct broker_options *o, struct pass *p, const char *arg)
{
	if (strcmp(arg, "always") == 0)
		o->fsync = RIO_FSYNC_ALWAYS;
	else if (strcmp(arg, "interval") == 0)
		o->fsync = RIO_FSYNC_INTERVAL;
	else if (strcmp(arg, "never") == 0)
		o->fsync = RIO_FSYNC_NEVER;
	else {
		mom_errf(p->err, p->errlen, "bad --fsync '%s' (always, interval or never)", arg);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* The HTTP plane's limits; 0 or MOM_EXIT_USAGE. */
static int
http_limit_opt(struct broker_options *o, struct pass *p, int ch, const char *arg)
{
	uint64_t v;
	char    *e;

	switch (ch) {
	case OPT_HTTPHDR:
		if (mom_duration_parse(arg, &v) != 0 || v < 100 || v > 3600000) {
			mom_errf(p->err, p->errlen, "bad --http-header-timeout '%s' (100ms to 1h)",
			    arg);
			return MOM_EXIT_USAGE;
		}
		o->http_header_timeout_ms = v;
		return 0;
	case OPT_HTTPRATE:
		if (mom_size_parse(arg, &v) != 0 || v < 1 || v > (1ULL << 30)) {
			mom_errf(p->err, p->errlen, "bad --http-body-rate '%s' (1 to 1GiB bytes a "
			    "second)", arg);
			return MOM_EXIT_USAGE;
		}
		o->http_body_rate = v;
		return 0;
	default: /* OPT_HTTPCONNS */
		errno = 0;
		v = strtoull(arg, &e, 10);
		if (*arg < '0' || *arg > '9' || *e != '\0' || errno != 0 || v < 1 ||
		    v > HTTP_MAX_CONNS_LIMIT) {
			mom_errf(p->err, p->errlen, "bad --http-max-conns '%s' (1 to %d)", arg,
			    HTTP_MAX_CONNS_LIMIT);
			return MOM_EXIT_USAGE;
		}
		o->http_max_conns = (int)v;
		return 0;
	}
}

/* The options with a size or a duration; 0 or MOM_EXIT_USAGE. */
static int
number_opt(struct broker_options *o, struct pass *p, int ch, const char *arg)
{
	uint64_t v;

	switch (ch) {
	case OPT_MAXMSG:
		if (mom_size_parse(arg, &v) != 0 || v == 0 || v > MOM_PAYLOAD_LIMIT) {
			mom_errf(p->err, p->errlen, "bad --max-msg-size '%s' (1 to 64MiB)", arg);
			return MOM_EXIT_USAGE;
		}
		o->max_payload = (size_t)v;
		return 0;
	case OPT_DEDUPE:
		if (mom_duration_parse(arg, &o->dedupe_window_ms) != 0 || o->dedupe_window_ms == 0)
			break;
		return 0;
	case OPT_RETAIN:
		if (mom_duration_parse(arg, &o->retain_ms) != 0)
			break;
		return 0;
	case OPT_RETAINB:
		if (mom_size_parse(arg, &o->retain_bytes) != 0) {
			mom_errf(p->err, p->errlen, "bad size '%s'", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	case OPT_FSYNCIV:
		if (mom_duration_parse(arg, &o->fsync_interval_ms) != 0 ||
		    o->fsync_interval_ms == 0 || o->fsync_interval_ms > 60000) {
			mom_errf(p->err, p->errlen, "bad --fsync-interval '%s' (1ms to 1m)", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	case OPT_RESERVE:
		if (mom_size_parse(arg, &o->reserve_bytes) != 0 ||
		    o->reserve_bytes > ((uint64_t)1 << 40)) {
			mom_errf(p->err, p->errlen, "bad --disk-reserve '%s' (a size, 0 to 1TiB)",
			    arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	default: /* OPT_SNAPAFTER */
		if (mom_size_parse(arg, &o->snapshot_bytes) != 0 || o->snapshot_bytes < 4096) {
			mom_errf(p->err, p->errlen, "bad --snapshot-after '%s' (a size, at least "
			    "4KiB)", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	}
	mom_errf(p->err, p->errlen, "bad duration '%s'", arg);
	return MOM_EXIT_USAGE;
}

/* The nng plane's limits (front.h); 0 or MOM_EXIT_USAGE. */
static int
limit_opt(struct broker_options *o, struct pass *p, int ch, const char *arg)
{
	uint64_t v;
	char    *end;

	switch (ch) {
	case OPT_MAXCONN:
	case OPT_MAXPOLLS:
		v = strtoull(arg, &end, 10);
		if (*arg < '0' || *arg > '9' || *end != '\0' || v == 0 || v > 1000000) {
			mom_errf(p->err, p->errlen, "bad --%s '%s' (1 to 1000000)",
			    ch == OPT_MAXCONN ? "max-connections" : "max-polls", arg);
			return MOM_EXIT_USAGE;
		}
		*(ch == OPT_MAXCONN ? &o->max_conns : &o->max_polls) = (int)v;
		return 0;
	case OPT_FRAMETO:
		if (mom_duration_parse(arg, &o->frame_ms) != 0 || o->frame_ms < 100 ||
		    o->frame_ms > 3600000) {
			mom_errf(p->err, p->errlen, "bad --frame-timeout '%s' (100ms to 1h)", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	default: /* OPT_FRAMEBUDGET */
		if (mom_size_parse(arg, &v) != 0 || v < (1u << 20) || v > ((uint64_t)1 << 40)) {
			mom_errf(p->err, p->errlen, "bad --frame-budget '%s' (a size, 1MiB to 1TiB)",
			    arg);
			return MOM_EXIT_USAGE;
		}
		o->frame_budget = (size_t)v;
		return 0;
	}
}

/* A cluster listener or peer: tcp or tls+tcp (the links are nng). */
static bool
cluster_scheme(const char *url)
{
	static const char *const ok[] = { "tcp://", "tcp4://", "tcp6://", "tls+tcp://",
	    "tls+tcp4://", "tls+tcp6://" };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncmp(url, ok[i], strlen(ok[i])) == 0 && url[strlen(ok[i])] != '\0')
			return true;
	return false;
}

/* --peer ID=URL; the command line's peers replace the file's. */
static int
peer_opt(struct broker_options *o, struct pass *p, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char        id_s[24];
	uint64_t    id;
	int         i;

	if (p->layer != p->peers_from) {
		o->npeers = 0;
		p->peers_from = p->layer;
	}
	if (eq != NULL && (size_t)(eq - arg) < sizeof(id_s)) {
		memcpy(id_s, arg, (size_t)(eq - arg));
		id_s[eq - arg] = '\0';
	} else
		id_s[0] = '\0';
	if (mom_node_id_parse(id_s, &id) != 0 || !cluster_scheme(eq + 1)) {
		mom_errf(p->err, p->errlen, "bad --peer '%s' (ID=URL: a positive integer and "
		    "tcp://HOST:PORT or tls+tcp://HOST:PORT)", arg);
		return MOM_EXIT_USAGE;
	}
	for (i = 0; i < o->npeers; i++)
		if (o->peers[i].id == id) {
			mom_errf(p->err, p->errlen, "--peer %" PRIu64 " is given twice", id);
			return MOM_EXIT_USAGE;
		}
	if (o->npeers == BROKER_MAX_PEERS) {
		mom_errf(p->err, p->errlen, "at most %d --peer (a cluster of %d)",
		    BROKER_MAX_PEERS, BROKER_MAX_PEERS + 1);
		return MOM_EXIT_USAGE;
	}
	o->peers[o->npeers].id = id;
	o->peers[o->npeers++].url = eq + 1;
	return 0;
}

/* The cluster's options; 0 or MOM_EXIT_USAGE. */
static int
cluster_opt(struct broker_options *o, struct pass *p, int ch, char *arg)
{
	switch (ch) {
	case OPT_NODEID:
		if (mom_node_id_parse(arg, &o->node_id) != 0) {
			mom_errf(p->err, p->errlen, "bad --node-id '%s' (a positive integer)", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	case OPT_CLUSTER:
		if (!cluster_scheme(arg)) {
			mom_errf(p->err, p->errlen, "bad --cluster '%s' (tcp://HOST:PORT or "
			    "tls+tcp://HOST:PORT)", arg);
			return MOM_EXIT_USAGE;
		}
		o->cluster_url = arg;
		return 0;
	case OPT_CLUSTERKEY:
		o->cluster_key = arg;
		return 0;
	case OPT_PEER:
		return peer_opt(o, p, arg);
	case OPT_BOOTSTRAP:
		o->bootstrap = true;
		return 0;
	case OPT_ELECTION:
		if (mom_duration_parse(arg, &o->election_timeout_ms) != 0 ||
		    o->election_timeout_ms < 100 || o->election_timeout_ms > 60000) {
			mom_errf(p->err, p->errlen, "bad --election-timeout '%s' (100ms to 1m)", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	default: /* OPT_CONVERT */
		/* A one-off act on a data directory, never a standing setting. */
		if (p->layer == MOM_LAYER_FILE) {
			mom_errf(p->err, p->errlen, "--convert-to-cluster is for the command line, "
			    "not a configuration file");
			return MOM_EXIT_USAGE;
		}
		o->convert = true;
		return 0;
	}
}

/* One option other than -c, -h and --version; 0 or MOM_EXIT_USAGE. */
static int
option(struct broker_options *o, struct pass *p, int ch, char *arg)
{
	switch (ch) {
	case 'D':
		o->datadir = arg;
		return 0;
	case 'l':
		if (o->nlisten == BROKER_MAX_LISTEN) {
			mom_errf(p->err, p->errlen, "at most %d listeners", BROKER_MAX_LISTEN);
			return MOM_EXIT_USAGE;
		}
		o->listen[o->nlisten++] = arg;
		return 0;
	case 'v':
		o->verbose++;
		return 0;
	case OPT_NOAUTH:
		o->noauth = true;
		p->noauth_from = p->layer;
		return 0;
	case OPT_AUTHKEY:
		o->auth_key = arg;
		p->key_from = p->layer;
		return 0;
	case OPT_AUTHISS:
		o->auth_issuer = arg;
		return 0;
	case OPT_AUTHAUD:
		o->auth_audience = arg;
		return 0;
	case OPT_TLSCERT:
		o->tls_cert = arg;
		return 0;
	case OPT_TLSKEY:
		o->tls_key = arg;
		return 0;
	case OPT_TLSCA:
		o->tls_ca = arg;
		return 0;
	case OPT_HTTP:
		o->http = arg;
		o->http_default = false;
		return 0;
	case OPT_FSYNC:
		return fsync_opt(o, p, arg);
	case OPT_MAXCONN:
	case OPT_MAXPOLLS:
	case OPT_FRAMETO:
	case OPT_FRAMEBUDGET:
		return limit_opt(o, p, ch, arg);
	case OPT_REPAIR:
		/* A one-off act on a damaged log, never a standing setting. */
		if (p->layer == MOM_LAYER_FILE) {
			mom_errf(p->err, p->errlen, "--repair is for the command line, not a "
			    "configuration file");
			return MOM_EXIT_USAGE;
		}
		o->repair = true;
		return 0;
	case OPT_HTTPHDR: case OPT_HTTPRATE: case OPT_HTTPCONNS:
		return http_limit_opt(o, p, ch, arg);
	case OPT_NODEID: case OPT_CLUSTER: case OPT_CLUSTERKEY: case OPT_PEER:
	case OPT_BOOTSTRAP: case OPT_CONVERT: case OPT_ELECTION:
		return cluster_opt(o, p, ch, arg);
	default:
		return number_opt(o, p, ch, arg);
	}
}

/* Parses one vector; stops early at -h and --version (o->action). */
static int
parse_pass(struct broker_options *o, struct pass *p, int argc, char **argv)
{
	int ch;

	optind = 0; /* GNU: start afresh, also after an earlier pass */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
		if (ch == '?' || ch == ':') {
			mom_opt_error(p->err, p->errlen, ch, argv, longopts);
			o->usage = 1;
			return MOM_EXIT_USAGE;
		}
		if (ch == 'c')
			continue; /* read before the passes; ignored in a file */
		if (ch == 'h' || ch == OPT_VERSION) {
			o->action = ch == 'h' ? MOM_ACTION_HELP : MOM_ACTION_VERSION;
			return 0;
		}
		if (option(o, p, ch, optarg) != 0)
			return MOM_EXIT_USAGE;
	}
	if (optind != argc) {
		mom_errf(p->err, p->errlen, "unexpected argument '%s'", argv[optind]);
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* --auth-key or --no-auth, and what listens without authentication. */
static int
check_auth(struct broker_options *o, struct pass *p)
{
	int i;

	/* One choice, as an option with one value: the command line's replaces the file's. */
	if (o->noauth && o->auth_key != NULL) {
		if (p->noauth_from == p->key_from) {
			mom_errf(p->err, p->errlen, "--auth-key and --no-auth contradict each other");
			return MOM_EXIT_USAGE;
		}
		if (p->noauth_from == MOM_LAYER_ARGS)
			o->auth_key = NULL;
		else
			o->noauth = false;
	}
	if (o->auth_key != NULL && access(o->auth_key, R_OK) != 0) {
		mom_errf(p->err, p->errlen, "cannot read --auth-key %s: %s", o->auth_key,
		    strerror(errno));
		return MOM_EXIT_USAGE;
	}
	for (i = 0; i < o->nlisten; i++) {
		if (!listen_scheme(o->listen[i])) {
			mom_errf(p->err, p->errlen, "cannot listen on '%s' (tcp://HOST:PORT, "
			    "tls+tcp://HOST:PORT or ipc:///PATH)", o->listen[i]);
			return MOM_EXIT_USAGE;
		}
		if (!o->noauth && o->auth_key == NULL && !loopback_only(o->listen[i])) {
			mom_errf(p->err, p->errlen, "refusing to listen on %s without "
			    "authentication (--auth-key PUBKEY, or --no-auth to allow it)",
			    o->listen[i]);
			return MOM_EXIT_USAGE;
		}
		if (mom_tls_url(o->listen[i]) && o->tls_cert == NULL) {
			mom_errf(p->err, p->errlen, "%s needs a server certificate: --tls-cert FILE "
			    "and --tls-key FILE", o->listen[i]);
			return MOM_EXIT_USAGE;
		}
	}
	return 0;
}

/* --http off: no HTTP plane.  Same rules as the data plane's listeners. */
static int
check_http(struct broker_options *o, struct pass *p)
{
	if (strcmp(o->http, "off") == 0) {
		o->http = NULL;
		return 0;
	}
	if (http_url(o->http, o->http_url, sizeof(o->http_url), &o->http_tls) != 0) {
		mom_errf(p->err, p->errlen, "bad --http '%s' (HOST:PORT, http://HOST:PORT, "
		    "https://HOST:PORT or off)", o->http);
		return MOM_EXIT_USAGE;
	}
	if (!o->noauth && o->auth_key == NULL && !loopback_only(o->http_url)) {
		mom_errf(p->err, p->errlen, "refusing to serve HTTP on %s without authentication "
		    "(--auth-key PUBKEY, or --no-auth to allow it)", o->http);
		return MOM_EXIT_USAGE;
	}
	if (o->http_tls && o->tls_cert == NULL) {
		mom_errf(p->err, p->errlen, "--http %s needs a server certificate: --tls-cert FILE "
		    "and --tls-key FILE", o->http);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* Cluster mode: --node-id and a readable --cluster-key; the rest needs them. */
static int
check_cluster(struct broker_options *o, struct pass *p)
{
	int i;

	if (o->node_id == 0) {
		if (o->npeers > 0 || o->bootstrap || o->cluster_key != NULL ||
		    o->cluster_url != NULL || o->convert) {
			mom_errf(p->err, p->errlen, "--peer, --cluster, --cluster-key, --bootstrap "
			    "and --convert-to-cluster need --node-id");
			return MOM_EXIT_USAGE;
		}
		if (o->election_timeout_ms != 0) {
			mom_errf(p->err, p->errlen, "--election-timeout needs --node-id");
			return MOM_EXIT_USAGE;
		}
		return 0;
	}
	if (o->cluster_url == NULL)
		o->cluster_url = BROKER_CLUSTER_DEFAULT;
	if (o->cluster_key == NULL) {
		mom_errf(p->err, p->errlen, "cluster mode (--node-id) needs --cluster-key FILE "
		    "(make one with: mom-auth cluster-key FILE)");
		return MOM_EXIT_USAGE;
	}
	if (access(o->cluster_key, R_OK) != 0) {
		mom_errf(p->err, p->errlen, "cannot read --cluster-key %s: %s", o->cluster_key,
		    strerror(errno));
		return MOM_EXIT_USAGE;
	}
	for (i = 0; i < o->npeers; i++)
		if (o->peers[i].id == o->node_id) {
			mom_errf(p->err, p->errlen, "--peer %" PRIu64 " is this node (--node-id): "
			    "list the other members only", o->node_id);
			return MOM_EXIT_USAGE;
		}
	if (o->bootstrap && o->npeers == 0) {
		mom_errf(p->err, p->errlen, "--bootstrap needs the other members (--peer ID=URL); "
		    "a cluster of one is --convert-to-cluster");
		return MOM_EXIT_USAGE;
	}
	if (o->convert && (o->bootstrap || o->npeers > 0)) {
		mom_errf(p->err, p->errlen, "--convert-to-cluster makes a cluster of this node "
		    "alone: add the others later (mom-admin cluster add)");
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* The options together, once both passes are done. */
static int
check(struct broker_options *o, struct pass *p)
{
	int rv;

	if (o->nlisten == 0)
		o->listen[o->nlisten++] = "tcp://127.0.0.1:7420";
	if ((rv = check_auth(o, p)) != 0 || (rv = check_http(o, p)) != 0 ||
	    (rv = check_cluster(o, p)) != 0)
		return rv;
	if (o->tls_cert == NULL && (o->tls_key != NULL || o->tls_ca != NULL)) {
		mom_errf(p->err, p->errlen, "--tls-key and --tls-cafile need --tls-cert");
		return MOM_EXIT_USAGE;
	}
	return 0;
}

static void
defaults(struct broker_options *o)
{
	memset(o, 0, sizeof(*o));
	o->datadir = "./mom-data";
	o->max_payload = MOM_PAYLOAD_DEFAULT;
	o->http = "127.0.0.1:7421";
	o->http_default = true;
	o->http_header_timeout_ms = HTTP_HEADER_TIMEOUT_MS;
	o->http_body_rate = HTTP_BODY_RATE;
	o->http_max_conns = HTTP_MAX_CONNS;
	o->fsync = RIO_FSYNC_ALWAYS;
	o->reserve_bytes = BROKER_RESERVE_DEFAULT;
}

int
broker_options_parse(struct broker_options *o, int argc, char **argv, char *err, size_t errlen)
{
	struct pass p = { MOM_LAYER_FILE, MOM_LAYER_NONE, MOM_LAYER_NONE, MOM_LAYER_NONE, err,
	    errlen };
	const char *file;
	int         cfgc = 0, rv;

	defaults(o);
	if ((file = config_file(argc, argv)) != NULL) {
		if (access(file, R_OK) != 0) {
			mom_errf(err, errlen, "cannot read %s: %s", file, strerror(errno));
			return MOM_EXIT_USAGE;
		}
		if (mom_opt_config(NULL, file, argv[0], &cfgc, &o->cfgv, err, errlen) != 0)
			return MOM_EXIT_USAGE;
	}
	if (o->cfgv != NULL && (rv = parse_pass(o, &p, cfgc, o->cfgv)) != 0) {
		/* A file's mistake: its file and line, no usage text. */
		mom_opt_blame(o->cfgv, optind - 1, err, errlen);
		o->usage = 0;
		return rv;
	}
	if (o->cfgv != NULL && o->action != MOM_ACTION_RUN)
		return 0;
	p.layer = MOM_LAYER_ARGS;
	if ((rv = parse_pass(o, &p, argc, argv)) != 0 || o->action != MOM_ACTION_RUN)
		return rv;
	return check(o, &p);
}

void
broker_options_fini(struct broker_options *o)
{
	free(o->cfgv);
	o->cfgv = NULL;
}

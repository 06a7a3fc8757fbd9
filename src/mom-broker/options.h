/*
 * options.h: mom-broker's options, from the file of -c and the command
 * line, checked together before anything starts.
 */
#ifndef BROKER_OPTIONS_H
#define BROKER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "opt.h"

#define BROKER_MAX_LISTEN 16
#define BROKER_RESERVE_DEFAULT ((uint64_t)64 << 20) /* --disk-reserve */
#define BROKER_KEY_MAX 4096                         /* --cluster-key: 32 to this many bytes */
#define BROKER_MAX_PEERS 15                         /* --peer: a cluster of at most 16 */
#define BROKER_CLUSTER_DEFAULT "tcp://127.0.0.1:7422" /* --cluster */

/* A cluster member other than this node (--peer ID=URL). */
struct broker_peer {
	uint64_t    id;
	const char *url;
};

/* The strings point into argv or into cfgv. */
struct broker_options {
	const char     *datadir;  /* -D; default ./mom-data */
	const char     *listen[BROKER_MAX_LISTEN]; /* -l, the file's first */
	int             nlisten;  /* at least 1: tcp://127.0.0.1:7420 when none is given */
	int             verbose;
	bool            noauth;
	const char     *auth_key; /* --auth-key; NULL: none */
	const char     *auth_issuer, *auth_audience;
	size_t          max_payload;      /* --max-msg-size */
	uint64_t        dedupe_window_ms; /* 0: the state machine's default, as below */
	uint64_t        retain_ms, retain_bytes;
	const char     *tls_cert, *tls_key, *tls_ca;
	const char     *http;          /* --http ADDR; NULL: --http off */
	char            http_url[320]; /* its nng URL */
	bool            http_tls;      /* https:// */
	bool            http_default;  /* no --http: its address may be taken */
	int             max_conns, max_polls; /* 0: front.h's defaults */
	uint64_t        frame_ms;      /* --frame-timeout; 0: the default */
	size_t          frame_budget;  /* 0: the default */
	uint64_t        http_header_timeout_ms; /* --http-header-timeout */
	uint64_t        http_body_rate;         /* --http-body-rate, bytes a second */
	int             http_max_conns;         /* --http-max-conns */
	int             fsync;         /* RIO_FSYNC_* */
	uint64_t        fsync_interval_ms, snapshot_bytes;
	uint64_t        election_timeout_ms; /* --election-timeout; 0: the default */
	uint64_t        reserve_bytes; /* --disk-reserve; default 64 MiB, 0: none */
	bool            repair;        /* --repair: cut the log at damage, report, exit */
	/* Cluster mode: node_id != 0 (options.c checks the rest). */
	uint64_t        node_id;       /* --node-id (mom_node_id_parse: 1 to 2^53) */
	const char     *cluster_url;   /* --cluster; default BROKER_CLUSTER_DEFAULT */
	const char     *cluster_key;   /* --cluster-key FILE */
	struct broker_peer peers[BROKER_MAX_PEERS]; /* --peer */
	int             npeers;
	bool            bootstrap;     /* --bootstrap */
	bool            convert;       /* --convert-to-cluster: a one-off, then exit */
	enum mom_action action;
	int             usage;  /* after an error: the usage text follows the message */
	char          **cfgv;   /* the options of -c FILE (owned) */
};

/*
 * Fills *o from the file of -c FILE (--config FILE, --config=FILE,
 * -cFILE), then argv (the command line wins: an option with one value
 * replaces the file's, -l adds to the file's listeners), and checks them
 * together: authentication or loopback listeners only, certificates for
 * TLS, a readable --auth-key.  Prints nothing.  Returns 0 (then see
 * o->action) or MOM_EXIT_USAGE with one line in err.  argv is permuted
 * (getopt_long) and must outlive *o; call broker_options_fini afterwards,
 * whatever this returned.
 */
int  broker_options_parse(struct broker_options *o, int argc, char **argv, char *err,
    size_t errlen);
void broker_options_fini(struct broker_options *o);

#endif

/*
 * cli.h: what the client programs (mom-pub, mom-sub, mom-admin) share:
 * the common options, error reporting and connecting.
 */
#ifndef MOM_CLI_H
#define MOM_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "client.h"

struct mom_cli {
	const char *prog;
	const char *servers; /* -s, else $MOM_URL, else the default */
	int         verbose;
	int         quiet;
	int64_t     connect_ms; /* bound on connecting (-W); 0: default */
	int64_t     retry_ms;   /* --connect-timeout: dial refusing servers again this long; -1: -W's */
	int64_t     reconnect_ms; /* --reconnect-window; 0: the default (MOM_CLI_RECONNECT_MS) */
	int64_t     request_ms; /* --request-timeout; 0: the default (MOM_CLIENT_REQUEST_MS) */
	char       *token;      /* --token-file, $MOM_TOKEN, $MOM_TOKEN_FILE (malloc'd) */
	const char *token_file;
	const char *cafile;     /* TLS: --cafile, --cert, --key, --insecure */
	const char *cert;
	const char *key;
	int         insecure;
};

/* Long-option values shared by the clients (after 'z' + 1000). */
enum {
	MOM_OPT_QUIET = 1000,
	MOM_OPT_VERSION,
	MOM_OPT_TOKEN_FILE,
	MOM_OPT_CAFILE,
	MOM_OPT_CERT,
	MOM_OPT_KEY,
	MOM_OPT_INSECURE,
	MOM_OPT_CONNECT_TIMEOUT,
	MOM_OPT_RECONNECT_WINDOW,
	MOM_OPT_REQUEST_TIMEOUT,
};

/* The default reconnect window: how long a client goes without a broker. */
#define MOM_CLI_RECONNECT_MS 60000

/* The shared long options, for each program's getopt_long table. */
#define MOM_CLI_LONGOPTS \
	{ "quiet", no_argument, NULL, MOM_OPT_QUIET }, \
	{ "version", no_argument, NULL, MOM_OPT_VERSION }, \
	{ "token-file", required_argument, NULL, MOM_OPT_TOKEN_FILE }, \
	{ "cafile", required_argument, NULL, MOM_OPT_CAFILE }, \
	{ "cert", required_argument, NULL, MOM_OPT_CERT }, \
	{ "key", required_argument, NULL, MOM_OPT_KEY }, \
	{ "insecure", no_argument, NULL, MOM_OPT_INSECURE }, \
	{ "connect-timeout", required_argument, NULL, MOM_OPT_CONNECT_TIMEOUT }, \
	{ "reconnect-window", required_argument, NULL, MOM_OPT_RECONNECT_WINDOW }, \
	{ "request-timeout", required_argument, NULL, MOM_OPT_REQUEST_TIMEOUT }

void mom_cli_init(struct mom_cli *, const char *prog);
/*
 * --help's lines for the options every client shares (MOM_CLI_LONGOPTS,
 * -s, -v, -W, -h), one each; wait says what -W means to the program.
 */
void mom_cli_help(FILE *f, const char *wait);
/*
 * The options every client shares: -s, -v, -W (into *wait_ms, which also
 * bounds connecting and, without --connect-timeout, dials a broker that
 * refuses again until then), --connect-timeout, --reconnect-window and
 * --request-timeout (durations over 0), --quiet, --version, the token and TLS files.
 * Returns 0 when ch is none of them, 1 when it was handled, 2 for
 * --version (print it, exit 0), -1 for a bad value, with the reason in err
 * (exit 64).  Prints nothing.
 */
int  mom_cli_option(struct mom_cli *, int ch, const char *arg, int64_t *wait_ms, char *err,
    size_t errlen);
/*
 * Loads the token: --token-file, else $MOM_TOKEN, else $MOM_TOKEN_FILE
 * (surrounding white space dropped).  Returns 0 (also when there is none)
 * or an exit status after printing why (64: unreadable, empty or too big).
 */
int  mom_cli_load_token(struct mom_cli *);
/* Frees what the options loaded. */
void mom_cli_fini(struct mom_cli *);
/* "PROG: message" on stderr (errors are printed even with --quiet). */
void mom_cli_err(const struct mom_cli *, const char *, ...) __attribute__((format(printf, 2, 3)));
/* Same, only with -v. */
void mom_cli_info(const struct mom_cli *, const char *, ...) __attribute__((format(printf, 2, 3)));
/*
 * Connects; on failure prints why and returns the exit status (64 bad
 * URL, 69 unreachable), on success 0.
 */
int  mom_cli_connect(const struct mom_cli *, struct mom_client **, int window);
/* The reconnect window in ms (--reconnect-window, else the default). */
int64_t mom_cli_reconnect_ms(const struct mom_cli *);
/* -W: a duration, bare numbers in seconds ("5", "0.5", "2m"). -1 on error. */
int64_t mom_cli_wait(const char *);
/* A random, non-zero 64-bit number (producer and consumer ids). */
uint64_t mom_cli_random(void);
/*
 * Sends one admin request (JSON object text) and returns the reply's JSON
 * text (malloc'd) in *out.  Returns 0 or an error code, with the broker's
 * message printed.
 */
int  mom_cli_admin(const struct mom_cli *, struct mom_client *, const char *json, char **out,
    int64_t timeout_ms);

/*
 * --create: declares a queue or topic (kind) unless it exists already
 * (with whatever options).  0 or an error code, the broker's message
 * printed.
 */
int  mom_cli_ensure(const struct mom_cli *, struct mom_client *, int kind, const char *name,
    int64_t timeout_ms);

/* What a broker says of itself (PING). */
struct mom_ping {
	char     version[32];
	uint64_t max_payload;
	uint64_t uptime_ms;
};

/* 0, or an error code with the reason in err. */
int mom_cli_ping(struct mom_client *, struct mom_ping *, int64_t timeout_ms, char *err, size_t errlen);

#endif

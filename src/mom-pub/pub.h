/*
 * pub.h: mom-pub's options and its one entry point.
 */
#ifndef PUB_H
#define PUB_H

#include <stdint.h>

#include "cli.h"

#define PUB_MAX_HEADERS 64

enum pub_source {
	SRC_NONE,
	SRC_MSG,   /* -m */
	SRC_FILE,  /* -f */
	SRC_LINES, /* -l */
	SRC_NUL,   /* -0 */
	SRC_JSONL, /* --jsonl */
	SRC_EMPTY, /* -n */
	SRC_STDIN, /* all of stdin, one message */
};

struct pub_opts {
	struct mom_cli  cli;
	uint8_t         kind; /* 0: none given */
	const char     *name;
	enum pub_source src;
	const char     *msg;
	const char     *file;
	const char     *headers[PUB_MAX_HEADERS];
	int             nheaders;
	const char     *id;
	uint64_t        ttl_ms, delay_ms;
	int64_t         wait_ms; /* -W; -1: none */
	int             create;
};

/* Publishes; returns the exit status. */
int pub_run(struct pub_opts *);

#endif

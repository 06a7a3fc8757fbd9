/*
 * options.h: mom-pub's options, from its config file and command line.
 */
#ifndef PUB_OPTIONS_H
#define PUB_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "opt.h"

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

/* --reply-expire's default: -r's queue goes after 5 minutes unused. */
#define PUB_REPLY_EXPIRE_MS (300 * 1000)

/* The strings point into argv or into cfgv. */
struct pub_options {
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
	uint64_t        reply_expire_ms; /* --reply-expire: -r's queue goes when unused */
	int             create;
	int             request; /* -r */
	int             progress; /* --progress: progress lines on stderr (also on a terminal) */
	enum mom_action action;
	int             usage;   /* after an error: the usage text follows the message */
	char          **cfgv;    /* the config file's options (owned) */
};

/*
 * Fills *o from $XDG_CONFIG_HOME/mom/mom-pub, then argv (the command line
 * wins: -q on the command line replaces a queue or topic from the file, a
 * source such as -m replaces the file's source).  Without a source and
 * with stdin not a terminal, the source is all of stdin.  Prints nothing.
 * Returns 0 (then see o->action) or MOM_EXIT_USAGE with one line in err.
 * argv is permuted (getopt_long) and must outlive *o; call
 * pub_options_fini afterwards, whatever this returned.
 */
int  pub_options_parse(struct pub_options *o, int argc, char **argv, char *err, size_t errlen);
void pub_options_fini(struct pub_options *o);

#endif

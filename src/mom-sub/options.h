/*
 * options.h: mom-sub's options, from its config file and command line.
 */
#ifndef SUB_OPTIONS_H
#define SUB_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "format.h"
#include "opt.h"

#define SUB_PREFETCH 256 /* plain mode's -p */

enum sub_output { OUT_LINES, OUT_NUL, OUT_NONE, OUT_FORMAT, OUT_JSONL };

/* The strings point into argv or into cfgv. */
struct sub_options {
	struct mom_cli  cli;
	uint8_t         kind;
	const char     *name;    /* queue or topic pattern */
	const char     *durable; /* -d */
	uint8_t         from;
	int64_t         from_time_ms;
	uint64_t        count;   /* -C; 0: no limit */
	int64_t         wait_ms; /* -W; -1: none */
	int             drain;   /* -e */
	enum sub_output out;
	struct mom_fmt *fmt;     /* -F (owned) */
	uint32_t        prefetch; /* -p: plain mode, the batch; worker mode, messages held */
	int             noack;
	int             create;
	char          **argv;     /* worker mode: COMMAND [ARG...]; NULL: none */
	uint32_t        parallel; /* -P: commands at once */
	int             newline;  /* --newline: a command's stdin ends in a newline */
	int             progress; /* --progress: progress lines on stderr (also on a terminal) */
	enum mom_action action;
	int             usage;    /* after an error: the usage text follows the message */
	char          **cfgv;     /* the config file's options (owned) */
};

/*
 * Fills *o from $XDG_CONFIG_HOME/mom/mom-sub, then argv (the command line
 * wins: -q or -t on the command line replaces the file's queue or topic,
 * an output form such as -0 replaces the file's).  Prints nothing.
 * Returns 0 (then see o->action) or MOM_EXIT_USAGE with one line in err.
 * argv is permuted (getopt_long) and must outlive *o; call
 * sub_options_fini afterwards, whatever this returned.
 */
int  sub_options_parse(struct sub_options *o, int argc, char **argv, char *err, size_t errlen);
void sub_options_fini(struct sub_options *o);

#endif

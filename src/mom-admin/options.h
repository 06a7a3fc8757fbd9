/*
 * options.h: mom-admin's options and command (NOUN VERB ARGS), from its
 * config file and command line.
 */
#ifndef ADMIN_OPTIONS_H
#define ADMIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "opt.h"

/* The strings point into argv or into cfgv. */
struct admin_options {
	struct mom_cli  cli;
	int             json;
	int             prom;
	int64_t         wait_ms;
	/* queue create / topic create options; -1 = not given */
	int64_t         ack_wait_ms, max_deliver, ttl_ms, max_len, max_bytes;
	int64_t         retain_ms, retain_bytes;
	const char     *dead_letter;
	int             nargs;
	char          **args;   /* NOUN VERB ARGS */
	enum mom_action action;
	int             usage;  /* after an error: the usage text follows the message */
	char          **cfgv;   /* the config file's options (owned) */
};

/*
 * Fills *o from $XDG_CONFIG_HOME/mom/mom-admin, then argv, and checks the
 * whole command (nouns, verbs, their arguments and options) before anything
 * is sent.  Prints nothing.  Returns 0 (then see o->action) or
 * MOM_EXIT_USAGE with one line in err (empty when only the usage text
 * is to be printed).  argv is permuted (getopt_long) and must outlive
 * *o; call admin_options_fini afterwards, whatever this returned.
 */
int  admin_options_parse(struct admin_options *o, int argc, char **argv, char *err,
    size_t errlen);
void admin_options_fini(struct admin_options *o);

#endif

/*
 * options.h: mom-admin's options and command (NOUN VERB ARGS), from its
 * config file and command line.
 */
#ifndef ADMIN_OPTIONS_H
#define ADMIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "adminops.h"
#include "cli.h"
#include "opt.h"

#define ADMIN_MAX_OPTS 16
#define ADMIN_PEEK_MAX 1000 /* the broker's limit too */

/* A create option given (adminops.h names it: its op, key, type). */
struct admin_optval {
	const struct mom_admin_op  *op;
	const struct mom_admin_opt *opt;
	uint64_t                    n; /* durations in ms, counts, sizes in bytes */
	const char                 *s; /* MOM_AOPT_NAME */
};

/* The strings point into argv or into cfgv. */
struct admin_options {
	struct mom_cli  cli;
	int             json;
	int             prom;
	long            count;  /* queue peek -n: messages to show (0: the broker's default) */
	uint64_t        node;   /* cluster add, remove, transfer: the node id (0: none given) */
	int64_t         wait_ms;
	/* The create options given (--ack-wait, --retain, ...), each once. */
	struct admin_optval opts[ADMIN_MAX_OPTS];
	int             nopts;
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
/* The option with this key (adminops.h) if it was given, else NULL. */
const struct admin_optval *admin_options_get(const struct admin_options *o, const char *key);

#endif

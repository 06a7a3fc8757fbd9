/*
 * opt.h: what the programs' option parsers (each one's options.c) share.
 *
 * A parser fills a struct and prints nothing: it returns 0 or an exit
 * status with one line in err, and main reports it.  The parsers read
 * their config file (config.h) in a getopt_long pass of its own before
 * the command line's, so that they know where an option came from: an
 * option of which only one may be given (-q or -t) can be set in the file
 * and given again on the command line, whose value then replaces the
 * file's.  getopt_long is reset (optind = 0) before each pass and prints
 * nothing (opterr = 0; optstring starts with ':').
 */
#ifndef MOM_OPT_H
#define MOM_OPT_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

struct mom_cli;

/* What main does after a parse that returned 0. */
enum mom_action {
	MOM_ACTION_RUN,
	MOM_ACTION_HELP,    /* -h: the usage text on stdout, exit 0 */
	MOM_ACTION_VERSION, /* --version: "PROGRAM VERSION" on stdout, exit 0 */
};

/* Where an option was given; later layers win. */
enum mom_opt_layer {
	MOM_LAYER_NONE,
	MOM_LAYER_FILE, /* the config file */
	MOM_LAYER_ARGS, /* the command line */
};

/*
 * The options of a config file as an argument vector of their own,
 * argv0 then "--name[=value]"..., for the pass before the command line's.
 * path NULL: $XDG_CONFIG_HOME/mom/<program> (config.h).  *cfgv is NULL
 * when the file is missing or has no options, else returned owned
 * (free(*cfgv) once nothing points into its strings).  Returns 0, or an
 * error code with one line in err.
 */
int mom_opt_config(const char *program, const char *path, char *argv0, int *cfgc, char ***cfgv,
    char *err, size_t errlen);

/*
 * After a failed pass over a config file's vector cfgv (mom_opt_config):
 * puts the file and the line of element idx (getopt's optind - 1) before
 * the message in err ("FILE:LINE: ..."), and says "unknown option 'NAME'"
 * for getopt's "unrecognized option '--NAME'", as the file spells it.
 * Just "FILE: ..." when idx is no element of the file.
 */
void mom_opt_blame(char *const *cfgv, int idx, char *err, size_t errlen);

/*
 * For an option of a group that takes one value, given in layer: 0 when
 * it may be set (the group is unset, or was set by an earlier layer: the
 * later wins), and *from records the layer; -1 when this layer set the
 * group already.
 */
int mom_opt_once(int *from, int layer);

/*
 * getopt_long's own message for the '?' or ':' it returned (read after
 * that call: optind and optopt), as glibc would have printed it without
 * the program name: "unrecognized option '--bogus'", "option requires an
 * argument -- 'q'", ...  argv and longopts are those of the call.
 */
void mom_opt_error(char *err, size_t errlen, int ch, char *const *argv,
    const struct option *longopts);

/* A program's own options, after the clients' common ones: 0 or an exit status. */
typedef int (*mom_opt_fn)(void *arg, int ch, char *optarg);

/*
 * One getopt_long pass of a client program over argv (its config file's
 * vector or the command line): getopt's errors, secrets typed
 * abbreviated (mom_opt_secret), the clients' common options
 * (mom_cli_option), -h and --version, then fn for the rest.  Stops early
 * at -h and --version (*action).  Returns 0, leaving optind at the first
 * operand, or MOM_EXIT_USAGE with err set (*usage set when the usage
 * text should follow).
 */
int mom_opt_client_pass(struct mom_cli *cli, int64_t *wait_ms, int argc, char **argv,
    const char *optstring, const struct option *longopts, mom_opt_fn fn, void *arg,
    enum mom_action *action, int *usage, char *err, size_t errlen);

/*
 * Secrets never travel on the command line, and an error never prints
 * one.  Call right after getopt_long returned ch: when ch is the value of
 * a long option that takes a secret's file (token-file, password-file)
 * and the user typed it abbreviated ("--token JWT", "--password PW"),
 * which most likely means the secret itself follows, returns -1 with
 * err naming what was typed (never its value) and where the secret
 * should come from instead; else 0.
 */
int mom_opt_secret(int ch, char *const *argv, const struct option *longopts, char *err,
    size_t errlen);

#endif

/*
 * config.h: option defaults from $XDG_CONFIG_HOME/mom/<program>.
 *
 * The file holds one long option per line: "server tcp://host:7420",
 * "server=tcp://host:7420" or "--server=tcp://host:7420"; a flag alone on a
 * line ("quiet"); blank lines and lines starting with '#' are ignored.
 * The options are inserted before the command-line arguments, so the
 * command line wins.  ($HOME/.config when XDG_CONFIG_HOME is unset.)
 * Called with *argc 1, the functions give the file's options alone, for a
 * parser that reads the file in a pass of its own (see opt.h).
 */
#ifndef MOM_CONFIG_H
#define MOM_CONFIG_H

#include <stddef.h>

/*
 * Rewrites *argc and *argv to argv[0], the file's options, then argv[1..].
 * The strings of argv are shared, not copied.  When the file has options
 * the new vector (and the option strings: one allocation) is returned
 * owned: free(*argv) once nothing points into it.  A missing file, or one
 * without options, leaves *argc and *argv alone.  Returns 0, or MOM_EINVAL
 * (an unreadable file, a line that does not start with an option name) or
 * MOM_ENOMEM, with one line in err ("FILE:LINE: ...").
 */
int mom_config_argv(const char *program, int *argc, char ***argv, char *err, size_t errlen);

/* Same, from an explicit path (used by tests and by mom-broker -c). */
int mom_config_argv_file(const char *path, int *argc, char ***argv, char *err, size_t errlen);

/*
 * Where element idx of a vector those functions returned owned came from:
 * 0 with the file and its line, -1 for an element of the command line.
 */
int mom_config_origin(char *const *v, int idx, const char **path, int *line);

#endif

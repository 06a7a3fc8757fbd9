/*
 * config.h: option defaults from $XDG_CONFIG_HOME/mom/<program>.
 *
 * The file holds one long option per line: "server tcp://host:7420",
 * "server=tcp://host:7420" or "--server=tcp://host:7420"; a flag alone on a
 * line ("quiet"); blank lines and lines starting with '#' are ignored.
 * The options are inserted before the command-line arguments, so the
 * command line wins.  ($HOME/.config when XDG_CONFIG_HOME is unset.)
 */
#ifndef MOM_CONFIG_H
#define MOM_CONFIG_H

/*
 * Rewrites *argc and *argv to argv[0], the file's options, then argv[1..].
 * The new vector is allocated (never freed: it lives as long as the
 * process).  A missing file is not an error.  Returns 0, or MOM_EINVAL
 * with a message on stderr ("PROGRAM: FILE:LINE: ...") for an unreadable
 * file or a line that does not start with an option name.
 */
int mom_config_argv(const char *program, int *argc, char ***argv);

/* Same, from an explicit path (used by tests and by mom-broker -c). */
int mom_config_argv_file(const char *path, int *argc, char ***argv);

#endif

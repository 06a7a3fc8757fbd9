/*
 * optfixture.h: for the tests of the programs' option parsers
 * (tests/unit/PROGRAM_options_test.c): a config directory of their own
 * ($XDG_CONFIG_HOME), config files in it, and argument vectors.
 */
#ifndef TESTS_OPTFIXTURE_H
#define TESTS_OPTFIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

static char optfix_dir[64];
static int  optfix_saved_stderr = -1;

/*
 * A fresh $XDG_CONFIG_HOME with an empty mom/ in it, no MOM_* variables,
 * and stderr going to a file in it (see optfix_stderr_bytes).
 */
static inline void
optfix_setup(void)
{
	char mom[96];
	int  fd;

	snprintf(optfix_dir, sizeof(optfix_dir), "/tmp/mom-options-test.XXXXXX");
	cr_assert_not_null(mkdtemp(optfix_dir));
	snprintf(mom, sizeof(mom), "%s/mom", optfix_dir);
	cr_assert_eq(mkdir(mom, 0700), 0);
	setenv("XDG_CONFIG_HOME", optfix_dir, 1);
	unsetenv("MOM_URL");
	unsetenv("MOM_TOKEN");
	unsetenv("MOM_TOKEN_FILE");
	unsetenv("MOM_AUTH_DIR");
	snprintf(mom, sizeof(mom), "%s/stderr", optfix_dir);
	cr_assert((fd = open(mom, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
	fflush(stderr);
	optfix_saved_stderr = dup(STDERR_FILENO);
	cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

/* How much was written to stderr since optfix_setup: the parsers print nothing. */
static inline long
optfix_stderr_bytes(void)
{
	struct stat st;

	fflush(stderr);
	cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
	return (long)st.st_size;
}

/* Gives stderr back (criterion reports there when it runs the tests unforked). */
static inline void
optfix_teardown(void)
{
	char cmd[128];

	fflush(stderr);
	if (optfix_saved_stderr >= 0) {
		dup2(optfix_saved_stderr, STDERR_FILENO);
		close(optfix_saved_stderr);
		optfix_saved_stderr = -1;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", optfix_dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", optfix_dir);
}

/*
 * Writes path (relative to the config directory, as "mom/mom-pub") and
 * returns its full name, valid until the fourth call after this one.
 */
static inline const char *
optfix_write(const char *path, const char *text)
{
	static char names[4][256];
	static int  next;
	char       *full = names[next++ % 4];
	FILE       *fp;

	snprintf(full, sizeof(names[0]), "%s/%s", optfix_dir, path);
	fp = fopen(full, "w");
	cr_assert_not_null(fp, "%s: %s", full, strerror(errno));
	fputs(text, fp);
	cr_assert_eq(fclose(fp), 0);
	return full;
}

/* The number of arguments of a NULL-terminated vector. */
static inline int
optfix_argc(char **argv)
{
	int n = 0;

	while (argv[n] != NULL)
		n++;
	return n;
}

#endif

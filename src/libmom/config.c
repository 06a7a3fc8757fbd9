/*
 * config.c: option defaults read from $XDG_CONFIG_HOME/mom/<program>.
 *
 * Rather than a second configuration language, the file holds long
 * options, which are spliced in front of the command-line arguments (or,
 * given only argv[0], make an argument vector of their own).  The
 * program's own getopt_long parses them, so every option is configurable
 * and the file cannot mean anything the command line cannot; the command
 * line wins because it is parsed after the file.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "mom.h"

struct cfg_opts {
	char  **v;     /* each "--name" or "--name=value", malloc'd */
	int    *lines; /* the line each came from */
	size_t  n;
	size_t  bytes; /* sum of strlen + 1 */
};

static void
cfg_opts_free(struct cfg_opts *o)
{
	size_t i;

	for (i = 0; i < o->n; i++)
		free(o->v[i]);
	free(o->v);
	free(o->lines);
}

static int
opt_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_';
}

/*
 * Turns one trimmed line into "--name" or "--name=value".  Returns the
 * malloc'd argument, or NULL with *why set when the line does not start
 * with an option name.
 */
static char *
cfg_line(char *s, const char **why)
{
	char  *name, *val = NULL, *arg;
	size_t nlen, alen;

	if (s[0] == '-' && s[1] == '-')
		s += 2;
	name = s;
	if (!isalnum((unsigned char)*s)) {
		*why = "expected an option name";
		return NULL;
	}
	while (opt_char((unsigned char)*s))
		s++;
	nlen = (size_t)(s - name);
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '=') {
		s++;
		while (*s == ' ' || *s == '\t')
			s++;
		val = s;
	} else if (*s != '\0') {
		/* Only whitespace may separate a name from its value. */
		if (s == name + nlen) {
			*why = "bad character in option name";
			return NULL;
		}
		val = s;
	}
	alen = 2 + nlen + (val != NULL ? 1 + strlen(val) : 0) + 1;
	if ((arg = malloc(alen)) == NULL) {
		*why = strerror(ENOMEM);
		return NULL;
	}
	if (val != NULL)
		snprintf(arg, alen, "--%.*s=%s", (int)nlen, name, val);
	else
		snprintf(arg, alen, "--%.*s", (int)nlen, name);
	return arg;
}

static char *
cfg_trim(char *s)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int
cfg_read(const char *path, struct cfg_opts *o, char *err, size_t errlen)
{
	FILE   *fp;
	char   *line = NULL, *s, *arg, **nv;
	size_t  cap = 0;
	ssize_t n;
	int     lineno = 0, rc = 0, *nl;
	const char *why;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		mom_errf(err, errlen, "%s: %s", path, strerror(errno));
		return MOM_EINVAL;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			mom_errf(err, errlen, "%s:%d: NUL byte in line", path, lineno);
			rc = MOM_EINVAL;
			break;
		}
		s = cfg_trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		why = NULL;
		if ((arg = cfg_line(s, &why)) == NULL) {
			mom_errf(err, errlen, "%s:%d: %s", path, lineno, why);
			rc = MOM_EINVAL;
			break;
		}
		if ((nv = realloc(o->v, (o->n + 1) * sizeof(*nv))) != NULL)
			o->v = nv;
		if (nv == NULL || (nl = realloc(o->lines, (o->n + 1) * sizeof(*nl))) == NULL) {
			free(arg);
			mom_errf(err, errlen, "%s", strerror(ENOMEM));
			rc = MOM_ENOMEM;
			break;
		}
		o->lines = nl;
		o->lines[o->n] = lineno;
		o->v[o->n++] = arg;
		o->bytes += strlen(arg) + 1;
	}
	/* A directory opens fine on Linux and fails only when read. */
	if (rc == 0 && ferror(fp)) {
		mom_errf(err, errlen, "%s: %s", path, strerror(errno));
		rc = MOM_EINVAL;
	}
	free(line);
	fclose(fp);
	return rc;
}

/*
 * Splices the options in.  The vector, where each element came from and
 * the strings are one allocation, released with free(*argv):
 *
 *	char *v[nargs + 1]	argv[0], the file's options, argv[1..], NULL
 *	int   lines[nargs]	the file's line of each element, 0: not the file's
 *	char  path[]		the file
 *	char  options[]		the file's options' strings
 */
static int
cfg_splice(const char *prog, const char *path, int *argc, char ***argv, char *err,
    size_t errlen)
{
	struct cfg_opts o = { NULL, NULL, 0, 0 };
	char **nv, *sp;
	int   *lines;
	size_t i, nargs, off, plen = strlen(path) + 1;
	int rc;

	if ((rc = cfg_read(path, &o, err, errlen)) != 0 || o.n == 0)
		goto done;
	/* With argc 0 there is no argv[0]; the program name stands in. */
	nargs = (size_t)(*argc > 0 ? *argc : 1) + o.n;
	if ((nv = malloc((nargs + 1) * sizeof(*nv) + nargs * sizeof(int) + plen + o.bytes)) ==
	    NULL) {
		mom_errf(err, errlen, "%s", strerror(ENOMEM));
		rc = MOM_ENOMEM;
		goto done;
	}
	lines = (int *)(nv + nargs + 1);
	memset(lines, 0, nargs * sizeof(int));
	sp = (char *)(lines + nargs);
	memcpy(sp, path, plen);
	off = plen;
	nv[0] = *argc > 0 ? (*argv)[0] : (char *)prog;
	for (i = 0; i < o.n; i++) {
		size_t len = strlen(o.v[i]) + 1;

		memcpy(sp + off, o.v[i], len);
		nv[1 + i] = sp + off;
		lines[1 + i] = o.lines[i];
		off += len;
	}
	for (i = 1; i < (size_t)*argc; i++)
		nv[o.n + i] = (*argv)[i];
	nv[nargs] = NULL;
	*argc = (int)nargs;
	*argv = nv;
done:
	cfg_opts_free(&o);
	return rc;
}

int
mom_config_origin(char *const *v, int idx, const char **path, int *line)
{
	const int *lines;
	size_t     nargs;

	for (nargs = 0; v[nargs] != NULL; nargs++)
		;
	lines = (const int *)(v + nargs + 1);
	if (idx < 1 || (size_t)idx >= nargs || lines[idx] <= 0)
		return -1;
	*line = lines[idx];
	*path = (const char *)(lines + nargs);
	return 0;
}

int
mom_config_argv(const char *program, int *argc, char ***argv, char *err, size_t errlen)
{
	const char *dir, *home;
	char path[4096];
	int n;

	if ((dir = getenv("XDG_CONFIG_HOME")) != NULL && *dir != '\0')
		n = snprintf(path, sizeof(path), "%s/mom/%s", dir, program);
	else if ((home = getenv("HOME")) != NULL && *home != '\0')
		n = snprintf(path, sizeof(path), "%s/.config/mom/%s", home, program);
	else
		return 0;
	if (n < 0 || (size_t)n >= sizeof(path)) {
		mom_errf(err, errlen, "config path too long");
		return MOM_EINVAL;
	}
	return cfg_splice(program, path, argc, argv, err, errlen);
}

int
mom_config_argv_file(const char *path, int *argc, char ***argv, char *err, size_t errlen)
{
	return cfg_splice(program_invocation_short_name, path, argc, argv, err, errlen);
}

/*
 * verify.c: "mom-auth verify": is this token good, and what does it grant?
 *
 * The token comes from the argument ("-": stdin), --token-file, stdin when
 * it is not a terminal and not empty, $MOM_TOKEN or, last, $MOM_TOKEN_FILE.  A token is
 * short-lived and not a password, so the argument is allowed; the other
 * ways keep it out of ps(1) all the same.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "mom.h"

/* Room for a token over the limit, so that it is refused as such. */
#define TOKEN_READ_MAX (MOM_TOKEN_MAX + 4096)

static int
read_stdin(char **out, size_t *len)
{
	char   *buf;
	size_t  n = 0;
	ssize_t r;

	if ((buf = malloc(TOKEN_READ_MAX + 1)) == NULL)
		return -1;
	while (n < TOKEN_READ_MAX) {
		r = read(STDIN_FILENO, buf + n, TOKEN_READ_MAX - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Has buf (len bytes) anything but blanks? */
static int
blank(const char *buf, size_t len)
{
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	return len == 0;
}

/*
 * The token text (malloc'd) from the first source that has one: the
 * argument, --token-file, stdin when it is not a terminal and holds a
 * token (the one given to this command), then $MOM_TOKEN, $MOM_TOKEN_FILE
 * (the ones a client would use).
 */
static int
token_text(const struct auth_options *o, char **tok, size_t *len, const char **from)
{
	const char *env, *file = NULL;

	if (o->nargs == 1 && strcmp(o->args[0], "-") != 0) {
		*from = "the argument";
		if ((*tok = strdup(o->args[0])) == NULL)
			return MOM_EXIT_FAIL;
		*len = strlen(*tok);
		return 0;
	}
	if (o->nargs == 0 && o->token_file != NULL)
		file = o->token_file;
	else if (o->nargs == 1 || !isatty(STDIN_FILENO)) {
		*from = "stdin";
		if (read_stdin(tok, len) != 0) {
			auth_err("stdin: %s", strerror(errno));
			return MOM_EXIT_FAIL;
		}
		if (o->nargs == 1 || !blank(*tok, *len))
			return 0;
		/* Nothing on stdin (</dev/null): the environment's token. */
		free(*tok);
		*tok = NULL;
	}
	if (file == NULL && (env = getenv("MOM_TOKEN")) != NULL && *env != '\0') {
		*from = "$MOM_TOKEN";
		if ((*tok = strdup(env)) == NULL)
			return MOM_EXIT_FAIL;
		*len = strlen(*tok);
		return 0;
	}
	if (file == NULL && (env = getenv("MOM_TOKEN_FILE")) != NULL && *env != '\0')
		file = env;
	if (file != NULL) {
		*from = file;
		if (auth_read_file(file, TOKEN_READ_MAX, tok, len) != 0) {
			auth_err("%s: %s", file, errno == EFBIG ? "too large for a token" :
			    strerror(errno));
			return errno == ENOENT ? MOM_EXIT_NOINPUT : MOM_EXIT_FAIL;
		}
		return 0;
	}
	auth_err("verify: no token (give it as an argument, on stdin, with --token-file, "
	    "$MOM_TOKEN or $MOM_TOKEN_FILE)");
	return MOM_EXIT_USAGE;
}

int
verify_run(const struct auth_options *o)
{
	struct mom_verify_opts vo;
	struct mom_claims      c;
	struct mom_keyset     *ks = NULL;
	const char            *from = "", *keyfile = o->key;
	char                   path[4096], err[512], *tok = NULL, *s, *json;
	size_t                 len = 0;
	int                    rc;

	if (keyfile == NULL) {
		if (auth_path(path, sizeof(path), o->dir, AUTH_PUB_FILE) != 0)
			return MOM_EXIT_USAGE;
		keyfile = path;
	}
	if ((rc = token_text(o, &tok, &len, &from)) != 0)
		return rc;
	/* Files and pipes end in a newline; a token has no blanks. */
	s = tok;
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	if (len == 0) {
		auth_err("no token in %s", from);
		free(tok);
		return MOM_EXIT_USAGE;
	}

	err[0] = '\0';
	if (mom_keyset_load(&ks, keyfile, err, sizeof(err)) != 0) {
		auth_err("%s", err[0] != '\0' ? err : keyfile);
		free(tok);
		return MOM_EXIT_FAIL;
	}
	memset(&vo, 0, sizeof(vo));
	vo.issuer = o->issuer;
	vo.audience = o->audience;
	vo.leeway = MOM_TOKEN_LEEWAY_MAX;
	memset(&c, 0, sizeof(c));
	err[0] = '\0';
	if (mom_token_verify(ks, s, len, &vo, &c, err, sizeof(err)) != 0) {
		auth_err("invalid token: %s", err[0] != '\0' ? err : "refused");
		rc = MOM_EXIT_NOPERM;
		goto done;
	}
	if ((json = mom_claims_json(&c)) == NULL) {
		auth_err("out of memory");
		rc = MOM_EXIT_FAIL;
		goto done;
	}
	printf("%s\n", json);
	free(json);
	rc = MOM_EXIT_OK;
	if (fflush(stdout) != 0) {
		auth_err("standard output: %s", strerror(errno));
		rc = MOM_EXIT_IOERR;
	}
done:
	mom_claims_free(&c);
	mom_keyset_free(ks);
	free(tok);
	return rc;
}

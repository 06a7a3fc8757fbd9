/*
 * issue.c: what a token for a user may say, and the offline "token" verb.
 *
 * A token carries the user's permissions, or fewer: asking for
 * --pub/--sub/--admin gives a token with exactly what was asked, each
 * pattern covered by one of the user's own (names.h: mom_pattern_covers),
 * so a cron job's token can be narrower than its user, never wider.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth.h"
#include "mom.h"
#include "names.h"

void
issue_time(int64_t secs, char *buf, size_t len)
{
	struct tm tm;
	time_t    t = (time_t)secs;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* Copies n strings into a malloc'd vector of strdup'd ones (mom_claims_free). */
static int
dup_list(const char *const *v, size_t n, char ***out, size_t *outn)
{
	char **l;
	size_t i;

	*out = NULL;
	*outn = 0;
	if (n == 0)
		return 0;
	if ((l = calloc(n, sizeof(*l))) == NULL)
		return MOM_ENOMEM;
	*out = l;
	for (i = 0; i < n; i++) {
		if ((l[i] = strdup(v[i])) == NULL)
			return MOM_ENOMEM;
		*outn = i + 1;
	}
	return 0;
}

/* The strings of a JSON array (borrowed) into v, at most max. */
static size_t
json_strings(json_t *a, const char **v, size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < json_array_size(a) && n < max; i++)
		v[n++] = json_string_value(json_array_get(a, i));
	return n;
}

/* Is the requested pattern covered by one of the user's? */
static bool
covered(json_t *mine, const char *want)
{
	size_t i;

	for (i = 0; i < json_array_size(mine); i++) {
		if (mom_pattern_covers(json_string_value(json_array_get(mine, i)), want))
			return true;
	}
	return false;
}

static int
narrow(json_t *mine, bool admin, const struct auth_list *want, const char *user,
    const char *what, char *err, size_t errlen)
{
	size_t i;

	if (want->n > MOM_TOKEN_PATTERNS_MAX) {
		snprintf(err, errlen, "at most %d %s patterns", MOM_TOKEN_PATTERNS_MAX, what);
		return MOM_EINVAL;
	}
	for (i = 0; i < want->n; i++) {
		if (!mom_pattern_ok(want->v[i])) {
			snprintf(err, errlen, "bad %s pattern '%s'", what, want->v[i]);
			return MOM_EINVAL;
		}
		if (!admin && !covered(mine, want->v[i])) {
			snprintf(err, errlen, "user '%s' may not %s '%s': a token cannot be wider "
			    "than its user", user, strcmp(what, "pub") == 0 ? "publish to" :
			    "subscribe to", want->v[i]);
			return MOM_EPERM;
		}
	}
	return 0;
}

int
issue_claims(json_t *user, const char *name, const struct issue_want *want, uint64_t ttl_ms,
    struct mom_claims *c, char *err, size_t errlen)
{
	const char *v[MOM_TOKEN_PATTERNS_MAX];
	json_t     *mypub = json_object_get(user, "pub"), *mysub = json_object_get(user, "sub");
	bool        admin = json_is_true(json_object_get(user, "admin"));
	uint64_t    ttl = (ttl_ms + 999) / 1000;
	uint8_t     rnd[16];
	size_t      i;
	int         rv;

	memset(c, 0, sizeof(*c));
	snprintf(c->sub, sizeof(c->sub), "%s", name);
	/* Our own jti, so that the issuer's log can name the token. */
	if (getrandom(rnd, sizeof(rnd), 0) == (ssize_t)sizeof(rnd)) {
		for (i = 0; i < sizeof(rnd); i++)
			snprintf(c->jti + 2 * i, sizeof(c->jti) - 2 * i, "%02x", rnd[i]);
	}
	c->exp = (int64_t)time(NULL) + (int64_t)ttl;
	if (want != NULL && (want->pub.n > 0 || want->sub.n > 0 || want->admin)) {
		if ((rv = narrow(mypub, admin, &want->pub, name, "pub", err, errlen)) != 0 ||
		    (rv = narrow(mysub, admin, &want->sub, name, "sub", err, errlen)) != 0)
			return rv;
		if (want->admin && !admin) {
			snprintf(err, errlen, "user '%s' is not an admin", name);
			return MOM_EPERM;
		}
		c->admin = want->admin;
		if (dup_list(want->pub.v, want->pub.n, &c->pub, &c->npub) != 0 ||
		    dup_list(want->sub.v, want->sub.n, &c->subs, &c->nsubs) != 0)
			goto nomem;
		return 0;
	}
	c->admin = admin;
	if (dup_list(v, json_strings(mypub, v, MOM_TOKEN_PATTERNS_MAX), &c->pub, &c->npub) != 0 ||
	    dup_list(v, json_strings(mysub, v, MOM_TOKEN_PATTERNS_MAX), &c->subs, &c->nsubs) != 0)
		goto nomem;
	return 0;
nomem:
	mom_claims_free(c);
	snprintf(err, errlen, "out of memory");
	return MOM_ENOMEM;
}

int
issue_token(const struct auth_options *o)
{
	struct issue_want      want;
	struct mom_verify_opts vo;
	struct mom_claims      c;
	json_t                *root = NULL, *user;
	char                   err[512], *pem = NULL, *tok = NULL;
	size_t                 pemlen = 0;
	int                    rc, rv;

	if (o->user == NULL) {
		auth_err("token: -u NAME is required");
		return MOM_EXIT_USAGE;
	}
	if (!users_name_ok(o->user)) {
		auth_err("bad user name '%s'", o->user);
		return MOM_EXIT_USAGE;
	}
	if (users_load(o->dir, &root, err, sizeof(err)) != 0) {
		auth_err("%s", err);
		return MOM_EXIT_DATAERR;
	}
	if ((user = users_get(root, o->user)) == NULL) {
		auth_err("no such user '%s'", o->user);
		json_decref(root);
		return MOM_EXIT_NOINPUT;
	}
	memset(&want, 0, sizeof(want));
	want.pub = o->pub;
	want.sub = o->sub;
	want.admin = o->admin;
	if ((rv = issue_claims(user, o->user, &want, o->ttl_ms, &c, err, sizeof(err))) != 0) {
		auth_err("%s", err);
		json_decref(root);
		return rv == MOM_EPERM ? MOM_EXIT_NOPERM : rv == MOM_EINVAL ? MOM_EXIT_USAGE :
		    MOM_EXIT_FAIL;
	}
	json_decref(root);
	if ((rc = keys_load_private(o->dir, &pem, &pemlen)) != 0)
		goto done;
	memset(&vo, 0, sizeof(vo));
	vo.issuer = o->issuer;
	vo.audience = o->audience;
	rc = MOM_EXIT_FAIL;
	err[0] = '\0';
	if (mom_token_sign(pem, pemlen, &c, &vo, &tok, err, sizeof(err)) != 0) {
		auth_err("signing: %s", err[0] != '\0' ? err : "failed");
		goto done;
	}
	printf("%s\n", tok);
	if (fflush(stdout) != 0) {
		auth_err("standard output: %s", strerror(errno));
		rc = MOM_EXIT_IOERR;
		goto done;
	}
	rc = MOM_EXIT_OK;
done:
	if (pem != NULL)
		pw_wipe(pem, pemlen);
	free(pem);
	free(tok);
	mom_claims_free(&c);
	return rc;
}

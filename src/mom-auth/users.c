/*
 * users.c: the users file, DIR/users.json, and the user verbs.
 *
 *	{"users": {"alice": {"hash": "$argon2id$v=19$m=19456,t=2,p=1$...",
 *	    "pub": ["orders.>"], "sub": ["orders.>"], "admin": false,
 *	    "created": "2026-11-23T10:00:00Z"}}}
 *
 * Changes hold an flock(2) on the directory, so two "user add" at once
 * cannot lose one of them, and replace the file by rename(2) after an
 * fsync, so a crash leaves the old file or the new one, never half.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "mom.h"
#include "names.h"

#define USERS_FILE_MAX (16 * 1024 * 1024)

bool
users_name_ok(const char *name)
{
	return strlen(name) <= AUTH_USER_MAX && mom_name_ok(name);
}

static bool
patterns_ok(json_t *list, const char *user, const char *key, char *err, size_t errlen)
{
	json_t *p;
	size_t  i;

	if (list == NULL)
		return true;
	if (!json_is_array(list) || json_array_size(list) > MOM_TOKEN_PATTERNS_MAX) {
		snprintf(err, errlen, "user '%s': \"%s\" is not a list of at most %d patterns",
		    user, key, MOM_TOKEN_PATTERNS_MAX);
		return false;
	}
	json_array_foreach(list, i, p) {
		if (!json_is_string(p) || !mom_pattern_ok(json_string_value(p))) {
			snprintf(err, errlen, "user '%s': bad pattern in \"%s\"", user, key);
			return false;
		}
	}
	return true;
}

int
users_load(const char *dir, json_t **root, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t      *r, *users, *u, *h, *a;
	const char  *name;
	char         path[4096], *text;
	size_t       len;

	*root = NULL;
	if (snprintf(path, sizeof(path), "%s/%s", dir, AUTH_USERS_FILE) >= (int)sizeof(path)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return MOM_EINVAL;
	}
	if (auth_read_file(path, USERS_FILE_MAX, &text, &len) != 0) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			return MOM_EINVAL;
		}
		*root = json_pack("{s:{}}", "users");
		return *root != NULL ? 0 : MOM_ENOMEM;
	}
	r = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (r == NULL) {
		snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
		return MOM_EINVAL;
	}
	if (!json_is_object(users = json_object_get(r, "users"))) {
		snprintf(err, errlen, "%s: no \"users\" object", path);
		goto fail;
	}
	/* Checked once here, so the rest can trust every entry. */
	json_object_foreach(users, name, u) {
		if (!users_name_ok(name)) {
			snprintf(err, errlen, "%s: bad user name '%.64s'", path, name);
			goto fail;
		}
		h = json_object_get(u, "hash");
		if (!json_is_string(h) || strncmp(json_string_value(h), "$argon2id$", 10) != 0) {
			snprintf(err, errlen, "%s: user '%s' has no argon2id hash", path, name);
			goto fail;
		}
		a = json_object_get(u, "admin");
		if (a != NULL && !json_is_boolean(a)) {
			snprintf(err, errlen, "%s: user '%s': \"admin\" is not true or false", path,
			    name);
			goto fail;
		}
		if (!patterns_ok(json_object_get(u, "pub"), name, "pub", err, errlen) ||
		    !patterns_ok(json_object_get(u, "sub"), name, "sub", err, errlen))
			goto fail;
	}
	*root = r;
	return 0;
fail:
	json_decref(r);
	return MOM_EINVAL;
}

json_t *
users_get(json_t *root, const char *name)
{
	return json_object_get(json_object_get(root, "users"), name);
}

/* Exclusive lock on the directory: an fd to close, or -1 reported. */
static int
users_lock(const char *dir)
{
	int fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		auth_err("%s: %s", dir, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) == -1) {
		if (errno != EINTR) {
			auth_err("%s: lock: %s", dir, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int
users_save(const char *dir, json_t *root)
{
	char  path[4096], tmp[4096], *text;
	int   rv;

	if (auth_path(path, sizeof(path), dir, AUTH_USERS_FILE) != 0 ||
	    auth_path(tmp, sizeof(tmp), dir, AUTH_USERS_FILE ".tmp") != 0)
		return -1;
	if ((text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS)) == NULL) {
		auth_err("out of memory");
		return -1;
	}
	/* A stale temporary file of a crashed run: we hold the lock. */
	if (unlink(tmp) == -1 && errno != ENOENT) {
		auth_err("%s: %s", tmp, strerror(errno));
		free(text);
		return -1;
	}
	rv = auth_write_new(tmp, 0600, text, strlen(text));
	free(text);
	if (rv != 0) {
		auth_err("%s: %s", tmp, strerror(errno));
		return -1;
	}
	if (rename(tmp, path) == -1) {
		auth_err("%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (auth_fsync_dir(dir) != 0) {
		auth_err("%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static json_t *
pattern_array(const struct auth_list *l)
{
	json_t *a = json_array();
	size_t  i;

	for (i = 0; a != NULL && i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static int
check_patterns(const struct auth_list *l, const char *opt)
{
	size_t i;

	if (l->n > MOM_TOKEN_PATTERNS_MAX) {
		auth_err("at most %d %s patterns", MOM_TOKEN_PATTERNS_MAX, opt);
		return -1;
	}
	for (i = 0; i < l->n; i++) {
		if (!mom_pattern_ok(l->v[i])) {
			auth_err("bad %s pattern '%s' (names of [A-Za-z0-9_-] segments, "
			    "'*' one segment, '>' the rest)", opt, l->v[i]);
			return -1;
		}
	}
	return 0;
}

/* Loads under the caller's lock; reports; 0 or an exit status. */
static int
load_or_report(const char *dir, json_t **root)
{
	char err[512];

	if (users_load(dir, root, err, sizeof(err)) != 0) {
		auth_err("%s", err);
		return MOM_EXIT_DATAERR;
	}
	return 0;
}

int
users_add(const struct auth_options *o)
{
	const char *name = o->args[0];
	json_t     *root = NULL, *u = NULL;
	char        pw[AUTH_PASS_MAX + 2], *hash = NULL, created[32];
	int         lockfd = -1, rc;

	if (!users_name_ok(name)) {
		auth_err("bad user name '%s' (1-%d bytes of [A-Za-z0-9_.-], dot-separated)", name,
		    AUTH_USER_MAX);
		return MOM_EXIT_USAGE;
	}
	if (check_patterns(&o->pub, "--pub") != 0 || check_patterns(&o->sub, "--sub") != 0)
		return MOM_EXIT_USAGE;
	/* Before asking for a password that could not be used. */
	if ((rc = load_or_report(o->dir, &root)) != 0)
		return rc;
	if (users_get(root, name) != NULL && !o->force) {
		auth_err("user '%s' exists (--force replaces it)", name);
		json_decref(root);
		return MOM_EXIT_FAIL;
	}
	json_decref(root);
	root = NULL;

	/* Hashing takes a while: done before the lock is taken. */
	if ((rc = pw_read(o->password_file, true, pw, sizeof(pw))) != 0)
		return rc;
	hash = pw_hash(pw, strlen(pw));
	pw_wipe(pw, sizeof(pw));
	if (hash == NULL)
		return MOM_EXIT_FAIL;

	rc = MOM_EXIT_FAIL;
	if (auth_mkdir(o->dir) != 0 || (lockfd = users_lock(o->dir)) == -1)
		goto done;
	/* Again under the lock: another process may have changed the file. */
	if ((rc = load_or_report(o->dir, &root)) != 0)
		goto done;
	rc = MOM_EXIT_FAIL;
	if (users_get(root, name) != NULL && !o->force) {
		auth_err("user '%s' exists (--force replaces it)", name);
		goto done;
	}
	issue_time(time(NULL), created, sizeof(created));
	u = json_pack("{s:s, s:o, s:o, s:b, s:s}", "hash", hash, "pub", pattern_array(&o->pub),
	    "sub", pattern_array(&o->sub), "admin", o->admin, "created", created);
	if (u == NULL || json_object_set_new(json_object_get(root, "users"), name, u) != 0) {
		auth_err("out of memory");
		goto done;
	}
	if (users_save(o->dir, root) != 0)
		goto done;
	rc = MOM_EXIT_OK;
done:
	if (lockfd != -1)
		close(lockfd);
	json_decref(root);
	free(hash);
	return rc;
}

int
users_delete(const struct auth_options *o)
{
	const char *name = o->args[0];
	json_t     *root = NULL;
	int         lockfd, rc;

	if (!users_name_ok(name)) {
		auth_err("bad user name '%s'", name);
		return MOM_EXIT_USAGE;
	}
	if (access(o->dir, F_OK) != 0) {
		auth_err("no such user '%s'", name);
		return MOM_EXIT_NOINPUT;
	}
	if ((lockfd = users_lock(o->dir)) == -1)
		return MOM_EXIT_FAIL;
	if ((rc = load_or_report(o->dir, &root)) != 0)
		goto done;
	if (users_get(root, name) == NULL) {
		auth_err("no such user '%s'", name);
		rc = MOM_EXIT_NOINPUT;
		goto done;
	}
	json_object_del(json_object_get(root, "users"), name);
	rc = users_save(o->dir, root) == 0 ? MOM_EXIT_OK : MOM_EXIT_FAIL;
done:
	close(lockfd);
	json_decref(root);
	return rc;
}

/* "a,b" or "-" into buf. */
static void
join_patterns(json_t *list, char *buf, size_t len)
{
	json_t *p;
	size_t  i, off = 0;
	int     n;

	buf[0] = '\0';
	json_array_foreach(list, i, p) {
		n = snprintf(buf + off, len - off, "%s%s", i > 0 ? "," : "", json_string_value(p));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(buf, len, "-");
}

/* A new reference to list, or a new empty array when it is absent. */
static json_t *
list_or_empty(json_t *list)
{
	return list != NULL ? json_incref(list) : json_array();
}

int
users_list(const struct auth_options *o)
{
	json_t     *root, *u, *out, *list;
	const char *name;
	size_t      w = 4;
	char        pub[4096], sub[4096];
	int         rc;

	if ((rc = load_or_report(o->dir, &root)) != 0)
		return rc;
	if (o->json) {
		/* Never the hashes. */
		list = json_array();
		json_object_foreach(json_object_get(root, "users"), name, u) {
			json_t *e = json_pack("{s:s, s:b, s:o, s:o}", "name", name, "admin",
			    json_is_true(json_object_get(u, "admin")),
			    "pub", list_or_empty(json_object_get(u, "pub")),
			    "sub", list_or_empty(json_object_get(u, "sub")));
			if (json_is_string(json_object_get(u, "created")))
				json_object_set(e, "created", json_object_get(u, "created"));
			json_array_append_new(list, e);
		}
		out = json_pack("{s:o}", "users", list);
		json_dumpf(out, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(out);
	} else {
		json_object_foreach(json_object_get(root, "users"), name, u) {
			if (strlen(name) > w)
				w = strlen(name);
		}
		printf("%-*s  %-5s  %-24s  %s\n", (int)w, "NAME", "ADMIN", "PUB", "SUB");
		json_object_foreach(json_object_get(root, "users"), name, u) {
			join_patterns(json_object_get(u, "pub"), pub, sizeof(pub));
			join_patterns(json_object_get(u, "sub"), sub, sizeof(sub));
			printf("%-*s  %-5s  %-24s  %s\n", (int)w, name,
			    json_is_true(json_object_get(u, "admin")) ? "yes" : "no", pub, sub);
		}
	}
	json_decref(root);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		auth_err("standard output: %s", strerror(errno));
		return MOM_EXIT_IOERR;
	}
	return MOM_EXIT_OK;
}

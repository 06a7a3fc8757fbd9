/*
 * keyfile.c: the cluster key file (see keyfile.h).
 */
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyfile.h"
#include "mom.h"

/*
 * Reads up to n bytes into p, *got of them, and checks that no byte
 * follows (a file that grew since fstat is not read as a prefix: got is
 * then n + 1).  0 or an errno.
 */
static int
read_all(int fd, uint8_t *p, size_t n, size_t *got)
{
	uint8_t extra;
	ssize_t r;

	*got = 0;
	while (*got <= n) {
		r = *got < n ? read(fd, p + *got, n - *got) : read(fd, &extra, 1);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return errno;
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

int
mom_keyfile_load(const char *path, uint8_t *key, size_t *len, size_t max, char *err,
    size_t errlen)
{
	struct stat st;
	size_t      got = 0, most = max < MOM_KEYFILE_MAX ? max : MOM_KEYFILE_MAX;
	int         fd, rv;

	/* O_NONBLOCK: a FIFO planted under the name must not hang the start. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)) == -1) {
		mom_errf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? MOM_ENOENT : errno == EACCES ? MOM_EPERM : MOM_EINTERNAL;
	}
	if (fstat(fd, &st) == -1) {
		mom_errf(err, errlen, "%s: %s", path, strerror(errno));
		rv = MOM_EINTERNAL;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		mom_errf(err, errlen, "%s: not a regular file", path);
		rv = MOM_EBADDATA;
		goto fail;
	}
	/* As ssh does with private keys: a secret others can read is not one. */
	if ((st.st_mode & 077) != 0) {
		mom_errf(err, errlen, "%s: mode %04o: the cluster key must not be readable by "
		    "others (chmod 600)", path, (unsigned)(st.st_mode & 07777));
		rv = MOM_EPERM;
		goto fail;
	}
	if (st.st_size < MOM_KEYFILE_MIN || (uintmax_t)st.st_size > most) {
		mom_errf(err, errlen, "%s: %jd bytes: a cluster key has %d to %zu bytes", path,
		    (intmax_t)st.st_size, MOM_KEYFILE_MIN, most);
		rv = MOM_EBADDATA;
		goto fail;
	}
	if ((rv = read_all(fd, key, (size_t)st.st_size, &got)) != 0 || got != (size_t)st.st_size) {
		mom_errf(err, errlen, "%s: %s", path, rv ? strerror(rv) : "changed while read");
		rv = rv ? MOM_EINTERNAL : MOM_EBADDATA;
		goto fail;
	}
	close(fd);
	*len = got;
	return 0;
fail:
	close(fd);
	return rv;
}

/* Creates path (O_EXCL, 0600) with the n bytes at p, fsynced.  0 or an errno. */
static int
write_new(const char *path, const void *p, size_t n)
{
	size_t  done = 0;
	ssize_t w;
	int     fd, e;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
		return errno;
	while (done < n) {
		if ((w = write(fd, (const uint8_t *)p + done, n - done)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		done += (size_t)w;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		e = errno;
		unlink(path);
		return e;
	}
	return 0;
fail:
	e = errno;
	close(fd);
	unlink(path);
	return e;
}

/* fsync of the directory that holds path, so that a new name in it lasts. */
static int
sync_dir(const char *path)
{
	char d[4096];
	int  fd, rv = 0;

	if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d))
		return ENAMETOOLONG;
	if ((fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return errno;
	if (fsync(fd) == -1)
		rv = errno;
	close(fd);
	return rv;
}

int
mom_keyfile_generate(const char *path, bool force, char *err, size_t errlen)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t           raw[32];
	char              text[2 * sizeof(raw) + 1], tmp[4096];
	size_t            got = 0;
	ssize_t           r;
	int               e;

	while (got < sizeof(raw)) {
		if ((r = getrandom(raw + got, sizeof(raw) - got, 0)) == -1) {
			if (errno == EINTR)
				continue;
			mom_errf(err, errlen, "getrandom: %s", strerror(errno));
			return MOM_EINTERNAL;
		}
		got += (size_t)r;
	}
	for (size_t i = 0; i < sizeof(raw); i++) {
		text[2 * i] = hex[raw[i] >> 4];
		text[2 * i + 1] = hex[raw[i] & 15];
	}
	text[sizeof(text) - 1] = '\n';
	explicit_bzero(raw, sizeof(raw));
	if (!force) {
		e = write_new(path, text, sizeof(text));
		explicit_bzero(text, sizeof(text));
		if (e == EEXIST) {
			mom_errf(err, errlen, "%s: exists already", path);
			return MOM_EEXIST;
		}
		if (e == 0)
			e = sync_dir(path);
		goto done;
	}
	/* Replaced whole: a new file renamed over the old one. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		explicit_bzero(text, sizeof(text));
		mom_errf(err, errlen, "%s: path too long", path);
		return MOM_EINTERNAL;
	}
	/* Left over from a crash: ours to replace. */
	if (unlink(tmp) == -1 && errno != ENOENT)
		e = errno;
	else if ((e = write_new(tmp, text, sizeof(text))) == 0 && rename(tmp, path) == -1) {
		e = errno;
		unlink(tmp);
	} else if (e == 0)
		e = sync_dir(path);
	explicit_bzero(text, sizeof(text));
done:
	if (e != 0) {
		mom_errf(err, errlen, "%s: %s", path, strerror(e));
		return MOM_EINTERNAL;
	}
	return 0;
}

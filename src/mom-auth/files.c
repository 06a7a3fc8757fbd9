/*
 * files.c: the few file operations mom-auth needs, done so that a secret
 * is never readable by others, not even for a moment, and a crash never
 * leaves half a file behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"

int
auth_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= len) {
		auth_err("%s: path too long", dir);
		return -1;
	}
	return 0;
}

int
auth_read_file(const char *path, size_t max, char **out, size_t *outlen)
{
	char   *buf = NULL;
	size_t  len = 0;
	ssize_t n;
	int     fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	/* One byte more than allowed tells "too large" from "exactly max". */
	if ((buf = malloc(max + 2)) == NULL)
		goto fail;
	for (;;) {
		n = read(fd, buf + len, max + 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			errno = EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	if (outlen != NULL)
		*outlen = len;
	return 0;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return -1;
}

int
auth_write_new(const char *path, int mode, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t     n;
	int         fd, saved;

	/*
	 * O_EXCL with the final mode: the file never exists with a wider
	 * mode than asked (the umask can only narrow it), and a planted
	 * symlink or file is refused rather than followed.
	 */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)) == -1)
		return -1;
	/* A public file must be readable whatever the umask was. */
	if ((mode & 0077) != 0 && fchmod(fd, (mode_t)mode) == -1)
		goto fail;
	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) == -1)
		goto fail;
	if (close(fd) == -1) {
		saved = errno;
		unlink(path);
		errno = saved;
		return -1;
	}
	return 0;
fail:
	saved = errno;
	close(fd);
	unlink(path);
	errno = saved;
	return -1;
}

int
auth_fsync_dir(const char *dir)
{
	int fd, rv, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	rv = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rv;
}

int
auth_mkdir(const char *dir)
{
	char        path[PATH_MAX];
	struct stat st;
	size_t      i, len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		auth_err("bad directory '%s'", dir);
		return -1;
	}
	memcpy(path, dir, len + 1);
	/* Each missing component, parents first, like mkdir -p -m 0700. */
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST) {
			auth_err("%s: %s", path, strerror(errno));
			return -1;
		}
		path[i] = i < len ? '/' : '\0';
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		auth_err("%s: not a directory", dir);
		return -1;
	}
	return 0;
}

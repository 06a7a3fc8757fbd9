/*
 * keyfile_test.c: the cluster key file: what mom_keyfile_load accepts and
 * refuses (size, mode, kind of file) and what mom_keyfile_generate writes.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "keyfile.h"
#include "mom.h"
#include "tmpdir.h"

static char dir[] = "/tmp/keyfile_test.XXXXXX";
static char path[256];

static void
setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/cluster.key", dir);
}

static void
teardown(void)
{
	char sub[300];

	snprintf(sub, sizeof(sub), "%s/sub", dir);
	rmdir(sub);
	rm_dir(dir);
}

TestSuite(keyfile, .init = setup, .fini = teardown);

/* path with n bytes (byte i is i * 7) and mode. */
static void
write_key(size_t n, mode_t mode)
{
	FILE *f;

	unlink(path);
	cr_assert_not_null((f = fopen(path, "w")));
	for (size_t i = 0; i < n; i++)
		fputc((int)(uint8_t)(i * 7), f);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

static int
load(size_t max, uint8_t *key, size_t *len, char *err)
{
	return mom_keyfile_load(path, key, len, max, err, 256);
}

Test(keyfile, a_key_of_32_to_4096_bytes_mode_600_is_its_bytes_as_they_are)
{
	static uint8_t key[MOM_KEYFILE_MAX + 10];
	size_t         sizes[] = { 32, 33, 65, 4096 }, len;
	char           err[256];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		write_key(sizes[s], 0600);
		len = 0;
		cr_assert_eq(load(sizeof(key), key, &len, err), 0, "%zu bytes: %s", sizes[s], err);
		cr_assert_eq(len, sizes[s]);
		for (size_t i = 0; i < len; i++)
			cr_assert_eq(key[i], (uint8_t)(i * 7));
	}
	write_key(40, 0400);
	cr_assert_eq(load(sizeof(key), key, &len, err), 0);
}

Test(keyfile, a_short_or_long_key_is_refused)
{
	static uint8_t key[MOM_KEYFILE_MAX + 10];
	size_t         len = 0;
	char           err[256];

	write_key(31, 0600);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EBADDATA);
	cr_assert_str_eq(strstr(err, ": 31 bytes"), ": 31 bytes: a cluster key has 32 to 4096 bytes");
	write_key(0, 0600);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EBADDATA);
	write_key(4097, 0600);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EBADDATA);
	cr_assert_not_null(strstr(err, "4097 bytes"));
	/* And longer than the caller's buffer. */
	write_key(64, 0600);
	cr_assert_eq(load(63, key, &len, err), MOM_EBADDATA);
	cr_assert_eq(len, 0);
}

Test(keyfile, a_key_others_may_read_is_refused)
{
	uint8_t key[128];
	size_t  len = 0;
	char    err[256], want[400];

	write_key(64, 0644);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EPERM);
	snprintf(want, sizeof(want), "%s: mode 0644: the cluster key must not be readable by "
	    "others (chmod 600)", path);
	cr_assert_str_eq(err, want);
	write_key(64, 0640);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EPERM);
	write_key(64, 0604);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EPERM);
	write_key(64, 0620);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EPERM);
	cr_assert_eq(len, 0);
}

Test(keyfile, a_directory_a_fifo_or_a_missing_file_is_refused)
{
	uint8_t key[128];
	size_t  len = 0;
	char    err[256];

	cr_assert_eq(mom_keyfile_load(dir, key, &len, sizeof(key), err, sizeof(err)), MOM_EBADDATA);
	cr_assert_not_null(strstr(err, "not a regular file"));
	cr_assert_eq(mom_keyfile_load("/nonexistent/cluster.key", key, &len, sizeof(key), err,
	    sizeof(err)), MOM_ENOENT);
	cr_assert_str_eq(err, "/nonexistent/cluster.key: No such file or directory");
	/* A FIFO must not hang the start waiting for a writer. */
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(load(sizeof(key), key, &len, err), MOM_EBADDATA);
	cr_assert_eq(len, 0);
}

Test(keyfile, generate_writes_64_hex_digits_and_a_newline_mode_600)
{
	uint8_t     key[128], key2[128];
	size_t      len, len2;
	struct stat st;
	char        err[256];
	mode_t      old = umask(0);

	cr_assert_eq(mom_keyfile_generate(path, false, err, sizeof(err)), 0, "%s", err);
	umask(old);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(load(sizeof(key), key, &len, err), 0, "%s", err);
	cr_assert_eq(len, 65);
	for (size_t i = 0; i < 64; i++)
		cr_assert(strchr("0123456789abcdef", key[i]) && key[i], "byte %zu", i);
	cr_assert_eq(key[64], '\n');
	/* Another one is another key. */
	cr_assert_eq(mom_keyfile_generate(path, true, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(load(sizeof(key2), key2, &len2, err), 0);
	cr_assert_eq(len2, 65);
	cr_assert_neq(memcmp(key, key2, 64), 0);
}

Test(keyfile, generate_never_replaces_a_file_without_force)
{
	uint8_t     key[128];
	size_t      len;
	struct stat st;
	char        err[256], want[300], tmp[300];

	write_key(40, 0644);
	cr_assert_eq(mom_keyfile_generate(path, false, err, sizeof(err)), MOM_EEXIST);
	snprintf(want, sizeof(want), "%s: exists already", path);
	cr_assert_str_eq(err, want);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 40);
	cr_assert_eq(st.st_mode & 07777, 0644);
	/* --force: replaced whole, with the mode a key must have. */
	cr_assert_eq(mom_keyfile_generate(path, true, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	cr_assert_eq(load(sizeof(key), key, &len, err), 0, "%s", err);
	cr_assert_eq(len, 65);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	cr_assert_eq(access(tmp, F_OK), -1, "no temporary file left");
}

Test(keyfile, generate_in_a_missing_directory_says_so)
{
	char err[256], p[300];

	snprintf(p, sizeof(p), "%s/sub/cluster.key", dir);
	cr_assert_eq(mom_keyfile_generate(p, false, err, sizeof(err)), MOM_EINTERNAL);
	cr_assert_not_null(strstr(err, "No such file or directory"));
	cr_assert_eq(mom_keyfile_generate(p, true, err, sizeof(err)), MOM_EINTERNAL);
}

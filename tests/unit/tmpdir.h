/*
 * tmpdir.h: for the unit tests that work in a directory of their own.
 */
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Removes a directory and the files in it (one level: all the tests make). */
static inline void
rm_dir(const char *d)
{
	struct dirent *de;
	char           p[512];
	DIR           *dd;

	if (!(dd = opendir(d)))
		return;
	while ((de = readdir(dd)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		unlink(p);
	}
	closedir(dd);
	rmdir(d);
}

#endif

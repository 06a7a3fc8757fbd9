/*
 * keyfile.h: the cluster key file, the shared secret under which cluster
 * nodes authenticate their frames (mom-broker --cluster-key).
 *
 * The key is the file's bytes as they are, 32 to 4096 of them: a file
 * that mom-auth cluster-key made (64 random hex digits and a newline) or
 * any other secret the operator chose.  Every node of a cluster needs the
 * same file.
 */
#ifndef MOM_KEYFILE_H
#define MOM_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOM_KEYFILE_MIN 32
#define MOM_KEYFILE_MAX 4096

/*
 * Reads the key in path into key (at most max bytes, and at most
 * MOM_KEYFILE_MAX), its length in *len.  The file must be a regular file
 * (symbolic links are followed) whose mode gives nothing to group or
 * others, of MOM_KEYFILE_MIN to MOM_KEYFILE_MAX bytes.  0, or with one line
 * in err naming the file: MOM_ENOENT (no such file), MOM_EPERM (a mode
 * that lets others read or write it, or the file cannot be read),
 * MOM_EBADDATA (not a regular file, too short or too long), MOM_EINTERNAL
 * (a read error).
 */
int mom_keyfile_load(const char *path, uint8_t *key, size_t *len, size_t max, char *err,
    size_t errlen);

/*
 * Writes a new key to path: 64 hex digits of 32 bytes from getrandom(2)
 * and a newline, mode 0600, fsynced.  Without force an existing path is
 * never touched (O_EXCL): MOM_EEXIST.  With force an existing file is
 * replaced whole (a new file renamed over it, so that a reader sees the
 * old key or the new one, and the mode is 0600 whatever the old one was).
 * 0, or MOM_EEXIST or MOM_EINTERNAL with one line in err naming the file.
 */
int mom_keyfile_generate(const char *path, bool force, char *err, size_t errlen);

#endif

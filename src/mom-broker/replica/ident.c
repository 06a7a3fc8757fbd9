/*
 * ident.c: the node and cluster ids of a data directory (see ident.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "buf.h"
#include "mom.h"
#include "replica/ident.h"

#define IDENT_FILE  "cluster"
#define IDENT_MAGIC "mom-cluster 1"

int
ident_load(const char *dir, struct ident *id, char *err, size_t errlen)
{
	char  path[4096], line[128];
	FILE *fp;
	int   seen = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, IDENT_FILE);
	memset(id, 0, sizeof(*id));
	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return MOM_ENOENT;
		mom_errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return MOM_EBADDATA;
	}
	if (fgets(line, sizeof(line), fp) == NULL || strcmp(line, IDENT_MAGIC "\n") != 0)
		goto bad;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "node-id %" SCNu64 "\n", &id->node) == 1)
			seen |= 1;
		else if (sscanf(line, "cluster-id %" SCNx64 "\n", &id->cluster) == 1)
			seen |= 2;
		else
			goto bad;
	}
	fclose(fp);
	if (seen != 3 || id->node == 0)
		goto bad_closed;
	return 0;
bad:
	fclose(fp);
bad_closed:
	mom_errf(err, errlen, "%s is damaged (want \"%s\", \"node-id N\", \"cluster-id HEX\")",
	    path, IDENT_MAGIC);
	return MOM_EBADDATA;
}

int
ident_save(const char *dir, const struct ident *id, char *err, size_t errlen)
{
	char path[4096], tmp[4096], text[128];
	int  fd, dfd, n;

	snprintf(path, sizeof(path), "%s/%s", dir, IDENT_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.new", dir, IDENT_FILE);
	n = snprintf(text, sizeof(text), IDENT_MAGIC "\nnode-id %" PRIu64 "\ncluster-id %016"
	    PRIx64 "\n", id->node, id->cluster);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		goto fail;
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		close(fd);
		goto fail;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0)
		goto fail;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	mom_errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	(void)unlink(tmp);
	return MOM_EINTERNAL;
}

static int
member_cmp(const void *a, const void *b)
{
	const struct ident_member *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

uint64_t
ident_derive(const uint8_t *key, size_t keylen, const struct ident_member *m, size_t n,
    const char *salt)
{
	struct ident_member sorted[64];
	struct mom_buf      msg;
	unsigned char       md[EVP_MAX_MD_SIZE];
	unsigned            mdlen = 0;
	char                line[512];
	uint64_t            v = 0;
	size_t              i;
	int                 k;

	if (n > sizeof(sorted) / sizeof(sorted[0]))
		n = sizeof(sorted) / sizeof(sorted[0]);
	memcpy(sorted, m, n * sizeof(*m));
	qsort(sorted, n, sizeof(*sorted), member_cmp);
	mom_buf_init(&msg);
	mom_buf_put(&msg, "mom-cluster-id\n", 15);
	for (i = 0; i < n; i++) {
		k = snprintf(line, sizeof(line), "%" PRIu64 " %s\n", sorted[i].id, sorted[i].url);
		mom_buf_put(&msg, line, (size_t)k);
	}
	if (salt != NULL)
		mom_buf_put(&msg, salt, strlen(salt));
	if (msg.err || HMAC(EVP_sha256(), key, (int)keylen, msg.data, msg.len, md,
	    &mdlen) == NULL)
		mdlen = 0;
	mom_buf_fini(&msg);
	for (k = 0; k < 8 && (unsigned)k < mdlen; k++)
		v = v << 8 | md[k];
	return v != 0 ? v : 1;
}

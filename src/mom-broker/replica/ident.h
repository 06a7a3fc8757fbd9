/*
 * ident.h: who a data directory belongs to in a cluster.
 *
 * A cluster node keeps its node id and its cluster's id in DIR/cluster
 * (text: "mom-cluster 1", "node-id N", "cluster-id HEX", one a line),
 * written new, fsynced and renamed.  A single broker's directory has no
 * such file.  mom-broker compares it with --node-id at every start: a
 * directory of another node refuses to start.
 *
 * The cluster id is derived where a cluster is formed: the nodes that
 * bootstrap together derive the same id from the cluster key and the
 * member set (ident_derive), each on its own; a node converted from a
 * single broker derives it from the key, its id and its URL and the
 * time.  A node added later learns it from the first authenticated frame
 * of its cluster.  Every frame carries it (replica/frame.h).
 */
#ifndef BROKER_IDENT_H
#define BROKER_IDENT_H

#include <stddef.h>
#include <stdint.h>

struct ident {
	uint64_t node;
	uint64_t cluster; /* 0: not known yet (a node waiting to be added) */
};

struct ident_member {
	uint64_t    id;
	const char *url;
};

/*
 * Reads DIR/cluster into *id: 0, MOM_ENOENT (no file: a single broker's
 * directory, or a new one), or MOM_EBADDATA (err says what is wrong).
 */
int ident_load(const char *dir, struct ident *id, char *err, size_t errlen);
/* Writes DIR/cluster durably (new file, fsync, rename, fsync of DIR). */
int ident_save(const char *dir, const struct ident *id, char *err, size_t errlen);
/*
 * The cluster id of n members formed with key: the first 8 bytes of
 * HMAC-SHA256(key, "mom-cluster-id\n" + "ID URL\n" for each member in id
 * order), never 0.  salt (may be NULL) is mixed in after the members.
 */
uint64_t ident_derive(const uint8_t *key, size_t keylen, const struct ident_member *m,
    size_t n, const char *salt);

#endif

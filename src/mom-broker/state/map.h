/*
 * map.h: hash maps for the core thread (no locking).
 *
 * struct smap maps byte-string keys to pointers (names of queues, topics,
 * subscriptions; publisher ids); struct umap maps u64 keys to pointers
 * (receipts, producers).  Both use open addressing with linear probing and
 * tombstone-free backward-shift deletion, so lookups stay short whatever
 * the history of inserts and deletes.  Keys of an smap are borrowed: they
 * must live as long as their entry (they usually point into the value).
 */
#ifndef BROKER_MAP_H
#define BROKER_MAP_H

#include <stddef.h>
#include <stdint.h>

struct smap_ent {
	const char *key;
	size_t      klen;
	uint64_t    hash;
	void       *val;
};

struct smap {
	struct smap_ent *ents;
	size_t           cap; /* power of two, or 0 */
	size_t           len;
};

void  smap_init(struct smap *);
void  smap_fini(struct smap *);
void *smap_get(const struct smap *, const char *key, size_t klen);
/* Inserts or replaces; returns 0 or MOM_ENOMEM. */
int   smap_put(struct smap *, const char *key, size_t klen, void *val);
void *smap_del(struct smap *, const char *key, size_t klen);
/* Iteration: for (i = 0; smap_next(m, &i, &val);) ... (no changes meanwhile). */
int   smap_next(const struct smap *, size_t *iter, void **val);

struct umap_ent {
	uint64_t key; /* 0 = empty slot: key 0 is not allowed */
	void    *val;
};

struct umap {
	struct umap_ent *ents;
	size_t           cap;
	size_t           len;
};

void  umap_init(struct umap *);
void  umap_fini(struct umap *);
void *umap_get(const struct umap *, uint64_t key);
int   umap_put(struct umap *, uint64_t key, void *val);
void *umap_del(struct umap *, uint64_t key);
int   umap_next(const struct umap *, size_t *iter, uint64_t *key, void **val);

uint64_t map_hash(const void *, size_t);

#endif

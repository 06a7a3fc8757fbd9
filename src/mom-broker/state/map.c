/*
 * map.c: open-addressing hash maps (see map.h).
 */
#include <stdlib.h>
#include <string.h>

#include "state/map.h"
#include "mom.h"

/* FNV-1a, then a final mix so that low bits depend on every byte. */
uint64_t
map_hash(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t       h = 1469598103934665603ULL;
	size_t         i;

	for (i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
u64_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

void
smap_init(struct smap *m)
{
	memset(m, 0, sizeof(*m));
}

void
smap_fini(struct smap *m)
{
	free(m->ents);
	smap_init(m);
}

static struct smap_ent *
smap_find(const struct smap *m, const char *key, size_t klen, uint64_t h)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct smap_ent *e = &m->ents[i];

		if (e->key == NULL)
			return NULL;
		if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	}
}

void *
smap_get(const struct smap *m, const char *key, size_t klen)
{
	struct smap_ent *e = smap_find(m, key, klen, map_hash(key, klen));

	return e ? e->val : NULL;
}

static void
smap_insert(struct smap *m, const struct smap_ent *ne)
{
	size_t i;

	for (i = ne->hash & (m->cap - 1); m->ents[i].key; i = (i + 1) & (m->cap - 1))
		;
	m->ents[i] = *ne;
	m->len++;
}

static int
smap_grow(struct smap *m)
{
	struct smap     old = *m;
	size_t          i;

	m->cap = old.cap ? old.cap * 2 : 16;
	m->len = 0;
	if ((m->ents = calloc(m->cap, sizeof(*m->ents))) == NULL) {
		*m = old;
		return MOM_ENOMEM;
	}
	for (i = 0; i < old.cap; i++)
		if (old.ents[i].key)
			smap_insert(m, &old.ents[i]);
	free(old.ents);
	return 0;
}

int
smap_put(struct smap *m, const char *key, size_t klen, void *val)
{
	uint64_t         h = map_hash(key, klen);
	struct smap_ent *e = smap_find(m, key, klen, h), ne;

	if (e != NULL) {
		e->key = key;
		e->val = val;
		return 0;
	}
	if ((m->len + 1) * 4 > m->cap * 3 && smap_grow(m) != 0)
		return MOM_ENOMEM;
	ne.key = key;
	ne.klen = klen;
	ne.hash = h;
	ne.val = val;
	smap_insert(m, &ne);
	return 0;
}

void *
smap_del(struct smap *m, const char *key, size_t klen)
{
	struct smap_ent *e = smap_find(m, key, klen, map_hash(key, klen));
	size_t           i, j, k;
	void            *val;

	if (e == NULL)
		return NULL;
	val = e->val;
	/* Backward-shift deletion keeps every probe chain unbroken. */
	i = (size_t)(e - m->ents);
	for (j = (i + 1) & (m->cap - 1); m->ents[j].key; j = (j + 1) & (m->cap - 1)) {
		k = m->ents[j].hash & (m->cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			m->ents[i] = m->ents[j];
			i = j;
		}
	}
	memset(&m->ents[i], 0, sizeof(m->ents[i]));
	m->len--;
	return val;
}

int
smap_next(const struct smap *m, size_t *it, void **val)
{
	for (; *it < m->cap; (*it)++) {
		if (m->ents[*it].key) {
			*val = m->ents[(*it)++].val;
			return 1;
		}
	}
	return 0;
}

void
umap_init(struct umap *m)
{
	memset(m, 0, sizeof(*m));
}

void
umap_fini(struct umap *m)
{
	free(m->ents);
	umap_init(m);
}

static struct umap_ent *
umap_find(const struct umap *m, uint64_t key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = u64_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->ents[i].key == key)
			return &m->ents[i];
		if (m->ents[i].key == 0)
			return NULL;
	}
}

void *
umap_get(const struct umap *m, uint64_t key)
{
	struct umap_ent *e = key ? umap_find(m, key) : NULL;

	return e ? e->val : NULL;
}

static void
umap_insert(struct umap *m, uint64_t key, void *val)
{
	size_t i;

	for (i = u64_hash(key) & (m->cap - 1); m->ents[i].key; i = (i + 1) & (m->cap - 1))
		;
	m->ents[i].key = key;
	m->ents[i].val = val;
	m->len++;
}

int
umap_put(struct umap *m, uint64_t key, void *val)
{
	struct umap_ent *e;

	if (key == 0)
		return MOM_EINVAL;
	if ((e = umap_find(m, key)) != NULL) {
		e->val = val;
		return 0;
	}
	if ((m->len + 1) * 4 > m->cap * 3) {
		struct umap old = *m;
		size_t      i;

		m->cap = old.cap ? old.cap * 2 : 16;
		m->len = 0;
		if ((m->ents = calloc(m->cap, sizeof(*m->ents))) == NULL) {
			*m = old;
			return MOM_ENOMEM;
		}
		for (i = 0; i < old.cap; i++)
			if (old.ents[i].key)
				umap_insert(m, old.ents[i].key, old.ents[i].val);
		free(old.ents);
	}
	umap_insert(m, key, val);
	return 0;
}

void *
umap_del(struct umap *m, uint64_t key)
{
	struct umap_ent *e = key ? umap_find(m, key) : NULL;
	size_t           i, j, k;
	void            *val;

	if (e == NULL)
		return NULL;
	val = e->val;
	i = (size_t)(e - m->ents);
	for (j = (i + 1) & (m->cap - 1); m->ents[j].key; j = (j + 1) & (m->cap - 1)) {
		k = u64_hash(m->ents[j].key) & (m->cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			m->ents[i] = m->ents[j];
			i = j;
		}
	}
	m->ents[i].key = 0;
	m->ents[i].val = NULL;
	m->len--;
	return val;
}

int
umap_next(const struct umap *m, size_t *it, uint64_t *key, void **val)
{
	for (; *it < m->cap; (*it)++) {
		if (m->ents[*it].key) {
			*key = m->ents[*it].key;
			*val = m->ents[(*it)++].val;
			return 1;
		}
	}
	return 0;
}

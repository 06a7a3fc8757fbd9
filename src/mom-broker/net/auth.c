/*
 * auth.c: the broker's token check (see auth.h).
 *
 * Verification itself (an ECDSA or RSA signature) costs tens to hundreds
 * of microseconds; a client sends its token with every request, so the
 * result is cached by the token's SHA-256.  The cache is a chained hash
 * table under one mutex; signatures are checked outside it, against a
 * key set that is reference counted so that a SIGHUP reload never frees
 * keys under a verification in progress.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/auth.h"
#include "log.h"
#include "mom.h"

#define NBUCKETS    1024
#define CACHE_MAX   8192   /* entries; beyond, the cache starts over */

struct keys {
	int                refs;   /* under auth->mu */
	struct mom_keyset *set;
};

struct centry {
	struct centry  *next;
	struct bclaims *bc;     /* one reference held by the cache */
	int64_t         until;  /* seconds: exp + leeway */
};

struct auth {
	struct auth_config cfg;
	char              *keyfile, *issuer, *audience;
	pthread_mutex_t    mu;
	struct keys       *keys;
	struct centry     *buckets[NBUCKETS];
	size_t             nentries;
	uint64_t           gen;    /* key reloads */
	uint64_t           verified, refused, cached;
};

static void
keys_unref(struct auth *a, struct keys *k)
{
	int last;

	pthread_mutex_lock(&a->mu);
	last = --k->refs == 0;
	pthread_mutex_unlock(&a->mu);
	if (last) {
		mom_keyset_free(k->set);
		free(k);
	}
}

/* At start a key file that cannot be used stops the broker (fatal); at SIGHUP it does not. */
static struct keys *
keys_load(const char *file, bool starting)
{
	struct keys *k;
	char         err[256];

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	if (mom_keyset_load(&k->set, file, err, sizeof(err)) != 0) {
		if (starting)
			log_fatalx("auth key %s: %s", file, err);
		else
			log_warnx("auth key %s: %s", file, err);
		free(k);
		return NULL;
	}
	k->refs = 1;
	return k;
}

/* Empties the cache; a->mu held. */
static void
cache_clear(struct auth *a)
{
	size_t i;

	for (i = 0; i < NBUCKETS; i++) {
		while (a->buckets[i] != NULL) {
			struct centry *e = a->buckets[i];

			a->buckets[i] = e->next;
			bclaims_release(e->bc);
			free(e);
		}
	}
	a->nentries = 0;
}

int
auth_open(struct auth **ap, const struct auth_config *cfg)
{
	struct auth *a;

	*ap = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -1;
	pthread_mutex_init(&a->mu, NULL);
	a->cfg = *cfg;
	if (a->cfg.leeway < 0 || a->cfg.leeway > MOM_TOKEN_LEEWAY_MAX)
		a->cfg.leeway = MOM_TOKEN_LEEWAY_MAX;
	if ((cfg->keyfile && (a->keyfile = strdup(cfg->keyfile)) == NULL) ||
	    (cfg->issuer && (a->issuer = strdup(cfg->issuer)) == NULL) ||
	    (cfg->audience && (a->audience = strdup(cfg->audience)) == NULL)) {
		auth_close(a);
		return -1;
	}
	if (a->keyfile != NULL) {
		if ((a->keys = keys_load(a->keyfile, true)) == NULL) {
			auth_close(a);
			return -1;
		}
		log_info("tokens required: %zu key(s) from %s", mom_keyset_count(a->keys->set),
		    a->keyfile);
	}
	*ap = a;
	return 0;
}

void
auth_close(struct auth *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	cache_clear(a);
	pthread_mutex_unlock(&a->mu);
	if (a->keys != NULL)
		keys_unref(a, a->keys);
	pthread_mutex_destroy(&a->mu);
	free(a->keyfile);
	free(a->issuer);
	free(a->audience);
	free(a);
}

bool
auth_enabled(const struct auth *a)
{
	return a != NULL && a->keyfile != NULL;
}

int
auth_reload(struct auth *a)
{
	struct keys *k, *old;

	if (!auth_enabled(a))
		return 0;
	if ((k = keys_load(a->keyfile, false)) == NULL) {
		log_warnx("keeping the previous keys");
		return -1;
	}
	pthread_mutex_lock(&a->mu);
	old = a->keys;
	a->keys = k;
	a->gen++;
	/* A token signed by a key that is gone must stop working now. */
	cache_clear(a);
	pthread_mutex_unlock(&a->mu);
	keys_unref(a, old);
	log_info("reloaded %zu key(s) from %s", mom_keyset_count(k->set), a->keyfile);
	return 0;
}

void
bclaims_release(struct bclaims *bc)
{
	if (bc != NULL && atomic_fetch_sub(&bc->refs, 1) == 1) {
		mom_claims_free(&bc->c);
		free(bc);
	}
}

static size_t
bucket_of(const uint8_t d[32])
{
	size_t h;

	memcpy(&h, d, sizeof(h));
	return h % NBUCKETS;
}

int
auth_check(struct auth *a, const char *tok, size_t len, struct bclaims **out, char *err,
    size_t errlen)
{
	struct mom_verify_opts o;
	struct bclaims        *bc;
	struct centry         *e, **pp;
	struct keys           *k;
	uint8_t                d[32];
	int64_t                now = (int64_t)time(NULL);
	size_t                 b;
	uint64_t               gen;
	int                    rv;

	*out = NULL;
	if (len == 0 || len > MOM_TOKEN_MAX) {
		snprintf(err, errlen, len ? "token too large" : "token required");
		pthread_mutex_lock(&a->mu);
		a->refused++;
		pthread_mutex_unlock(&a->mu);
		return MOM_EAUTH;
	}
	mom_token_digest(tok, len, d);
	b = bucket_of(d);
	pthread_mutex_lock(&a->mu);
	for (pp = &a->buckets[b]; (e = *pp) != NULL; pp = &e->next) {
		if (memcmp(e->bc->digest, d, sizeof(d)) != 0)
			continue;
		if (e->until > now) {
			atomic_fetch_add(&e->bc->refs, 1);
			a->cached++;
			*out = e->bc;
			pthread_mutex_unlock(&a->mu);
			return 0;
		}
		/* Expired: forget it and let verification say so. */
		*pp = e->next;
		bclaims_release(e->bc);
		free(e);
		a->nentries--;
		break;
	}
	k = a->keys;
	k->refs++;
	gen = a->gen;
	pthread_mutex_unlock(&a->mu);

	memset(&o, 0, sizeof(o));
	o.issuer = a->issuer;
	o.audience = a->audience;
	o.leeway = a->cfg.leeway;
	o.now = now;
	if ((bc = calloc(1, sizeof(*bc))) == NULL) {
		keys_unref(a, k);
		snprintf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	}
	rv = mom_token_verify(k->set, tok, len, &o, &bc->c, err, errlen);
	keys_unref(a, k);
	if (rv != 0) {
		free(bc);
		pthread_mutex_lock(&a->mu);
		a->refused++;
		pthread_mutex_unlock(&a->mu);
		return MOM_EAUTH;
	}
	memcpy(bc->digest, d, sizeof(d));
	atomic_init(&bc->refs, 1);
	*out = bc;

	pthread_mutex_lock(&a->mu);
	a->verified++;
	/* Cache it, unless the keys were reloaded meanwhile. */
	if (a->gen == gen && (e = calloc(1, sizeof(*e))) != NULL) {
		if (a->nentries >= CACHE_MAX)
			cache_clear(a);
		atomic_fetch_add(&bc->refs, 1);
		e->bc = bc;
		e->until = bc->c.exp + o.leeway;
		e->next = a->buckets[b];
		a->buckets[b] = e;
		a->nentries++;
	}
	pthread_mutex_unlock(&a->mu);
	return 0;
}

void
auth_stats(const struct auth *a, uint64_t *verified, uint64_t *refused, uint64_t *cached)
{
	struct auth *m = (struct auth *)a;

	*verified = *refused = *cached = 0;
	if (a == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	*verified = a->verified;
	*refused = a->refused;
	*cached = a->cached;
	pthread_mutex_unlock(&m->mu);
}

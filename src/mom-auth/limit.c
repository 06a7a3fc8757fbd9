/*
 * limit.c: failed-login limits (limit.h).
 *
 * A chained hash table of small entries under one mutex: an attempt takes
 * the lock twice for a few hundred nanoseconds, next to ~50 ms of argon2.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limit.h"

#define LIMIT_BUCKETS 4096

struct lent {
	struct lent *next;
	int64_t      start;  /* of the period the failures count in */
	int64_t      until;  /* locked until then */
	int64_t      last;   /* last use, for eviction */
	int          failures;
	int          pending;
	char         key[LIMIT_KEY_MAX];
};

struct limit {
	pthread_mutex_t mtx;
	int             max;
	int64_t         period;
	size_t          n;
	struct lent    *b[LIMIT_BUCKETS];
};

/* FNV-1a */
static size_t
lhash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	while (*s != '\0')
		h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
	return (size_t)(h % LIMIT_BUCKETS);
}

struct limit *
limit_new(int max_failures, int64_t period_ms)
{
	struct limit *l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return NULL;
	pthread_mutex_init(&l->mtx, NULL);
	l->max = max_failures;
	l->period = period_ms;
	return l;
}

void
limit_free(struct limit *l)
{
	struct lent *e, *next;
	size_t       i;

	if (l == NULL)
		return;
	for (i = 0; i < LIMIT_BUCKETS; i++) {
		for (e = l->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&l->mtx);
	free(l);
}

static bool
idle(const struct limit *l, const struct lent *e, int64_t now)
{
	return e->pending == 0 && now >= e->until && (e->failures == 0 || now - e->start >= l->period);
}

static void
unlink_entry(struct limit *l, struct lent **pp)
{
	struct lent *e = *pp;

	*pp = e->next;
	free(e);
	l->n--;
}

/*
 * Makes room for one more entry: every idle entry goes, or else the
 * least recently used one that is not being verified.  A flood of
 * failures from many addresses can push out an old lock this way, but
 * not the flooding addresses' own.
 */
static void
make_room(struct limit *l, int64_t now)
{
	struct lent **pp, **oldest = NULL;
	size_t        i;

	for (i = 0; i < LIMIT_BUCKETS; i++) {
		for (pp = &l->b[i]; *pp != NULL;) {
			if (idle(l, *pp, now)) {
				unlink_entry(l, pp);
				continue;
			}
			if ((*pp)->pending == 0 && (oldest == NULL || (*pp)->last < (*oldest)->last))
				oldest = pp;
			pp = &(*pp)->next;
		}
	}
	if (l->n >= LIMIT_KEYS && oldest != NULL)
		unlink_entry(l, oldest);
}

static struct lent **
lookup(struct limit *l, const char *key)
{
	struct lent **pp;

	for (pp = &l->b[lhash(key)]; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->key, key) == 0)
			break;
	}
	return pp;
}

int64_t
limit_begin(struct limit *l, const char *key, int64_t now)
{
	struct lent **pp, *e;
	int64_t       wait = 0;

	pthread_mutex_lock(&l->mtx);
	pp = lookup(l, key);
	if ((e = *pp) == NULL) {
		if (l->n >= LIMIT_KEYS) {
			make_room(l, now);
			pp = lookup(l, key);
		}
		/* Still full of attempts in flight: too busy to count this one. */
		if (l->n >= LIMIT_KEYS || (e = calloc(1, sizeof(*e))) == NULL) {
			pthread_mutex_unlock(&l->mtx);
			return 1000;
		}
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->start = now;
		e->next = l->b[lhash(key)];
		l->b[lhash(key)] = e;
		l->n++;
	}
	e->last = now;
	if (now < e->until) {
		wait = e->until - now;
	} else {
		if (now - e->start >= l->period) {
			e->start = now;
			e->failures = 0;
		}
		/* The attempts in flight may all fail: wait for them. */
		if (e->failures + e->pending >= l->max)
			wait = 1000;
		else
			e->pending++;
	}
	pthread_mutex_unlock(&l->mtx);
	return wait;
}

void
limit_end(struct limit *l, const char *key, bool failed, bool clear, int64_t now)
{
	struct lent **pp, *e;

	pthread_mutex_lock(&l->mtx);
	pp = lookup(l, key);
	if ((e = *pp) == NULL) {
		pthread_mutex_unlock(&l->mtx);
		return;
	}
	if (e->pending > 0)
		e->pending--;
	e->last = now;
	if (failed) {
		if (now - e->start >= l->period) {
			e->start = now;
			e->failures = 0;
		}
		if (++e->failures >= l->max) {
			e->until = now + l->period;
			e->start = now;
			e->failures = 0;
		}
	} else if (clear) {
		e->failures = 0;
	}
	if (idle(l, e, now))
		unlink_entry(l, pp);
	pthread_mutex_unlock(&l->mtx);
}

/*
 * map_test.c: the broker's hash maps against a plain array model: inserts,
 * replaces and backward-shift deletes in a long random sequence (fixed
 * seed), every lookup checked, iteration visiting each entry once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "state/map.h"
#include "mom.h"

/* xorshift64*: a fixed, portable sequence. */
static uint64_t rng_state;

static uint64_t
rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

#define POOL 300

/* Values are distinct non-NULL pointers: &vals[i][generation % 4]. */
static char vals[POOL][4];

static char  skeys[POOL][24];
static void *smodel[POOL];

static void
smap_check_all(const struct smap *m)
{
	size_t i, n = 0, it;
	void  *v;
	int    seen[POOL];

	for (i = 0; i < POOL; i++) {
		void *got = smap_get(m, skeys[i], strlen(skeys[i]));

		cr_assert_eq(got, smodel[i], "key %s: got %p want %p", skeys[i], got, smodel[i]);
		if (smodel[i])
			n++;
	}
	cr_assert_eq(m->len, n);
	memset(seen, 0, sizeof(seen));
	for (it = 0; smap_next(m, &it, &v);) {
		size_t k = (size_t)((char *)v - &vals[0][0]) / 4;

		cr_assert_lt(k, POOL);
		cr_assert_eq(smodel[k], v, "iteration returned a stale value");
		cr_assert_eq(seen[k], 0, "iteration visited %s twice", skeys[k]);
		seen[k] = 1;
		n--;
	}
	cr_assert_eq(n, 0, "iteration missed %zu entries", n);
}

Test(smap, random_inserts_replaces_and_deletes_match_a_model)
{
	struct smap m;
	size_t      i, step;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < POOL; i++) {
		snprintf(skeys[i], sizeof(skeys[i]), "queue.%zu", i * 7919);
		smodel[i] = NULL;
	}
	smap_init(&m);
	for (step = 0; step < 60000; step++) {
		uint64_t r = rng();
		size_t   k = (size_t)(r % POOL);
		void    *want;

		/* Bias towards inserts early, deletes late: the table grows and drains. */
		if ((r >> 32) % 100 < (step < 30000 ? 65u : 35u)) {
			want = &vals[k][(r >> 20) % 4];
			cr_assert_eq(smap_put(&m, skeys[k], strlen(skeys[k]), want), 0);
			smodel[k] = want;
		} else {
			want = smodel[k];
			cr_assert_eq(smap_del(&m, skeys[k], strlen(skeys[k])), want,
			    "delete of %s returned the wrong value", skeys[k]);
			smodel[k] = NULL;
		}
		cr_assert_eq(smap_get(&m, skeys[k], strlen(skeys[k])), smodel[k]);
		if (step % 97 == 0)
			smap_check_all(&m);
	}
	smap_check_all(&m);
	/* Drain completely: every delete finds its key. */
	for (i = 0; i < POOL; i++) {
		cr_assert_eq(smap_del(&m, skeys[i], strlen(skeys[i])), smodel[i]);
		smodel[i] = NULL;
		if (i % 10 == 0)
			smap_check_all(&m);
	}
	cr_assert_eq(m.len, 0);
	smap_fini(&m);
}

Test(smap, empty_map_finds_nothing)
{
	struct smap m;
	size_t      it = 0;
	void       *v;

	smap_init(&m);
	cr_assert_null(smap_get(&m, "x", 1));
	cr_assert_null(smap_del(&m, "x", 1));
	cr_assert_eq(smap_next(&m, &it, &v), 0);
	smap_fini(&m);
}

Test(smap, replace_keeps_one_entry_and_adopts_the_new_key_storage)
{
	struct smap m;
	char       *k1 = strdup("orders"), *k2 = strdup("orders");
	int         a, b;

	smap_init(&m);
	cr_assert_eq(smap_put(&m, k1, 6, &a), 0);
	cr_assert_eq(smap_put(&m, k2, 6, &b), 0);
	cr_assert_eq(m.len, 1);
	/* The first key's storage goes away with its value: the map must not use it. */
	free(k1);
	cr_assert_eq(smap_get(&m, "orders", 6), &b);
	cr_assert_eq(smap_del(&m, "orders", 6), &b);
	cr_assert_eq(m.len, 0);
	smap_fini(&m);
	free(k2);
}

Test(smap, keys_are_bytes_not_c_strings)
{
	struct smap m;
	int         a, b, c;

	smap_init(&m);
	cr_assert_eq(smap_put(&m, "ab\0x", 4, &a), 0);
	cr_assert_eq(smap_put(&m, "ab\0y", 4, &b), 0);
	cr_assert_eq(smap_put(&m, "ab", 2, &c), 0);
	cr_assert_eq(m.len, 3);
	cr_assert_eq(smap_get(&m, "ab\0x", 4), &a);
	cr_assert_eq(smap_get(&m, "ab\0y", 4), &b);
	cr_assert_eq(smap_get(&m, "ab", 2), &c);
	cr_assert_null(smap_get(&m, "ab\0", 3));
	smap_fini(&m);
}

/*
 * A probe chain that wraps from the last slot of a 16-slot table to the
 * first: deleting from its middle must shift the rest back across the wrap.
 */
Test(smap, delete_inside_a_chain_that_wraps_around_the_table)
{
	static char keys[4][32];
	struct smap m;
	int         v[4];
	size_t      found = 0, i;
	unsigned    n;

	/* Find four keys whose home slot in 16 is 15. */
	for (n = 0; found < 4 && n < 1000000; n++) {
		char k[32];

		snprintf(k, sizeof(k), "k%u", n);
		if ((map_hash(k, strlen(k)) & 15) == 15)
			memcpy(keys[found++], k, sizeof(k));
	}
	cr_assert_eq(found, 4);
	smap_init(&m);
	for (i = 0; i < 4; i++)
		cr_assert_eq(smap_put(&m, keys[i], strlen(keys[i]), &v[i]), 0);
	cr_assert_eq(m.cap, 16, "the test assumes the initial capacity");
	/* Slots 15, 0, 1, 2 hold keys 0..3; delete 0, then 2, checking all. */
	cr_assert_eq(smap_del(&m, keys[0], strlen(keys[0])), &v[0]);
	for (i = 1; i < 4; i++)
		cr_assert_eq(smap_get(&m, keys[i], strlen(keys[i])), &v[i], "key %zu lost", i);
	cr_assert_eq(smap_del(&m, keys[2], strlen(keys[2])), &v[2]);
	cr_assert_eq(smap_get(&m, keys[1], strlen(keys[1])), &v[1]);
	cr_assert_eq(smap_get(&m, keys[3], strlen(keys[3])), &v[3]);
	cr_assert_null(smap_get(&m, keys[0], strlen(keys[0])));
	cr_assert_null(smap_get(&m, keys[2], strlen(keys[2])));
	cr_assert_eq(m.len, 2);
	smap_fini(&m);
}

/* umap */

static uint64_t ukeys[POOL];
static void    *umodel[POOL];

static void
umap_check_all(const struct umap *m)
{
	size_t   i, n = 0, it;
	uint64_t k;
	void    *v;
	int      seen[POOL];

	for (i = 0; i < POOL; i++) {
		cr_assert_eq(umap_get(m, ukeys[i]), umodel[i], "key %llu",
		    (unsigned long long)ukeys[i]);
		if (umodel[i])
			n++;
	}
	cr_assert_eq(m->len, n);
	memset(seen, 0, sizeof(seen));
	for (it = 0; umap_next(m, &it, &k, &v);) {
		size_t idx = (size_t)((char *)v - &vals[0][0]) / 4;

		cr_assert_lt(idx, POOL);
		cr_assert_eq(ukeys[idx], k, "iteration paired a key with another's value");
		cr_assert_eq(umodel[idx], v);
		cr_assert_eq(seen[idx], 0, "iteration visited %llu twice", (unsigned long long)k);
		seen[idx] = 1;
		n--;
	}
	cr_assert_eq(n, 0, "iteration missed %zu entries", n);
}

Test(umap, random_inserts_replaces_and_deletes_match_a_model)
{
	struct umap m;
	size_t      i, step;

	rng_state = 0xdeadbeefcafef00dULL;
	for (i = 0; i < POOL; i++) {
		/* Small sequential receipts and a few huge ids, as the broker sees. */
		ukeys[i] = i < POOL / 2 ? i + 1 : rng() | 1;
		umodel[i] = NULL;
	}
	ukeys[POOL - 1] = UINT64_MAX;
	umap_init(&m);
	for (step = 0; step < 60000; step++) {
		uint64_t r = rng();
		size_t   k = (size_t)(r % POOL);
		void    *want;

		if ((r >> 32) % 100 < (step < 30000 ? 65u : 35u)) {
			want = &vals[k][(r >> 20) % 4];
			cr_assert_eq(umap_put(&m, ukeys[k], want), 0);
			umodel[k] = want;
		} else {
			want = umodel[k];
			cr_assert_eq(umap_del(&m, ukeys[k]), want);
			umodel[k] = NULL;
		}
		cr_assert_eq(umap_get(&m, ukeys[k]), umodel[k]);
		if (step % 97 == 0)
			umap_check_all(&m);
	}
	umap_check_all(&m);
	for (i = 0; i < POOL; i++) {
		cr_assert_eq(umap_del(&m, ukeys[i]), umodel[i]);
		umodel[i] = NULL;
		if (i % 10 == 0)
			umap_check_all(&m);
	}
	cr_assert_eq(m.len, 0);
	umap_fini(&m);
}

Test(umap, key_zero_is_refused_and_never_found)
{
	struct umap m;
	int         a;

	umap_init(&m);
	cr_assert_eq(umap_put(&m, 0, &a), MOM_EINVAL);
	cr_assert_eq(m.len, 0);
	cr_assert_null(umap_get(&m, 0));
	/* Also on a table with empty (key 0) slots in it. */
	cr_assert_eq(umap_put(&m, 5, &a), 0);
	cr_assert_null(umap_get(&m, 0));
	cr_assert_null(umap_del(&m, 0));
	cr_assert_eq(m.len, 1);
	cr_assert_eq(umap_get(&m, 5), &a);
	umap_fini(&m);
}

Test(umap, replace_keeps_one_entry)
{
	struct umap m;
	int         a, b;

	umap_init(&m);
	cr_assert_eq(umap_put(&m, 42, &a), 0);
	cr_assert_eq(umap_put(&m, 42, &b), 0);
	cr_assert_eq(m.len, 1);
	cr_assert_eq(umap_get(&m, 42), &b);
	cr_assert_eq(umap_del(&m, 42), &b);
	cr_assert_null(umap_del(&m, 42));
	cr_assert_eq(m.len, 0);
	umap_fini(&m);
}

Test(umap, many_sequential_receipts_survive_growth_and_interleaved_deletes)
{
	struct umap m;
	uint64_t    k;

	umap_init(&m);
	/* A sliding window of 1000 live receipts over 100k, like leases. */
	for (k = 1; k <= 100000; k++) {
		cr_assert_eq(umap_put(&m, k, (void *)(uintptr_t)k), 0);
		if (k > 1000)
			cr_assert_eq(umap_del(&m, k - 1000), (void *)(uintptr_t)(k - 1000));
	}
	cr_assert_eq(m.len, 1000);
	for (k = 1; k <= 100000; k++) {
		void *want = k > 99000 ? (void *)(uintptr_t)k : NULL;

		cr_assert_eq(umap_get(&m, k), want, "receipt %llu", (unsigned long long)k);
	}
	umap_fini(&m);
}

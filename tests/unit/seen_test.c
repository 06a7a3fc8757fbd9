/*
 * seen_test.c: the bounded set of handled sequence numbers (libmom/seen.h)
 * against a plain model, through its evictions.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "seen.h"
#include "xorshift.h"

Test(seen, an_empty_set_has_nothing_and_allocates_nothing)
{
	struct mom_seen s;

	mom_seen_init(&s, 0);
	cr_assert_eq(s.cap, MOM_SEEN_CAP);
	cr_assert_not(mom_seen_has(&s, 1));
	mom_seen_add(&s, 0);
	cr_assert_null(s.tab, "0 is no sequence number");
	mom_seen_add(&s, 7);
	cr_assert(mom_seen_has(&s, 7));
	cr_assert_not(mom_seen_has(&s, 8));
	mom_seen_add(&s, 7);
	cr_assert_eq(s.n, 1, "a repeat is one number");
	mom_seen_fini(&s);
	cr_assert_not(mom_seen_has(&s, 7));
}

Test(seen, the_oldest_goes_first_when_full)
{
	struct mom_seen s;
	uint64_t        i;

	mom_seen_init(&s, 8);
	for (i = 1; i <= 20; i++)
		mom_seen_add(&s, i * 1000);
	for (i = 1; i <= 20; i++)
		cr_assert_eq(mom_seen_has(&s, i * 1000), i > 12, "seq %llu", (unsigned long long)i);
	mom_seen_fini(&s);
}

/* Random adds from a small range (repeats, collisions, wrap-around) against a FIFO model. */
Test(seen, agrees_with_a_model_through_many_evictions)
{
	enum { CAP = 64, RANGE = 300, STEPS = 5000 };
	struct mom_seen s;
	uint64_t        fifo[CAP], x = 42, q;
	bool            in[RANGE + 1] = { false };
	size_t          n = 0, head = 0, step;

	mom_seen_init(&s, CAP);
	for (step = 0; step < STEPS; step++) {
		uint64_t v = rnd(&x) % RANGE + 1;

		if (!in[v]) {
			if (n < CAP)
				fifo[n++] = v;
			else {
				in[fifo[head]] = false;
				fifo[head] = v;
				head = (head + 1) % CAP;
			}
			in[v] = true;
		}
		mom_seen_add(&s, v);
		for (q = 1; q <= RANGE; q++)
			cr_assert_eq(mom_seen_has(&s, q), in[q], "step %zu: %llu", step,
			    (unsigned long long)q);
	}
	cr_assert_eq(s.n, CAP);
	mom_seen_fini(&s);
}

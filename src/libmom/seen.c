/*
 * seen.c: a bounded set of sequence numbers (see seen.h).
 */
#include <stdlib.h>

#include "seen.h"

static size_t
slot_of(const struct mom_seen *s, uint64_t seq)
{
	/* Fibonacci hashing: sequence numbers are dense, the table's mask is not. */
	return (size_t)((seq * 0x9e3779b97f4a7c15ULL) >> 17) & s->tmask;
}

void
mom_seen_init(struct mom_seen *s, size_t cap)
{
	s->ring = s->tab = NULL;
	s->cap = cap ? cap : MOM_SEEN_CAP;
	s->n = s->head = s->tmask = 0;
	s->oom = 0;
}

void
mom_seen_fini(struct mom_seen *s)
{
	free(s->ring);
	free(s->tab);
	mom_seen_init(s, s->cap);
}

bool
mom_seen_has(const struct mom_seen *s, uint64_t seq)
{
	size_t i;

	if (s->tab == NULL || seq == 0)
		return false;
	for (i = slot_of(s, seq); s->tab[i] != 0; i = (i + 1) & s->tmask)
		if (s->tab[i] == seq)
			return true;
	return false;
}

/* Takes seq out of the table, moving back what probed past its slot. */
static void
tab_del(struct mom_seen *s, uint64_t seq)
{
	size_t i, j, k;

	for (i = slot_of(s, seq); s->tab[i] != seq; i = (i + 1) & s->tmask)
		if (s->tab[i] == 0)
			return;
	for (j = (i + 1) & s->tmask; s->tab[j] != 0; j = (j + 1) & s->tmask) {
		k = slot_of(s, s->tab[j]);
		/* tab[j] may move to i when its home k is not in (i, j], cyclically. */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			s->tab[i] = s->tab[j];
			i = j;
		}
	}
	s->tab[i] = 0;
}

void
mom_seen_add(struct mom_seen *s, uint64_t seq)
{
	size_t i;

	if (seq == 0 || s->oom || mom_seen_has(s, seq))
		return;
	if (s->tab == NULL) {
		s->ring = malloc(s->cap * sizeof(*s->ring));
		s->tab = calloc(2 * s->cap, sizeof(*s->tab));
		if (s->ring == NULL || s->tab == NULL) {
			free(s->ring);
			free(s->tab);
			s->ring = s->tab = NULL;
			s->oom = 1;
			return;
		}
		s->tmask = 2 * s->cap - 1;
	}
	if (s->n == s->cap) {
		tab_del(s, s->ring[s->head]);
		s->ring[s->head] = seq;
		s->head = (s->head + 1) % s->cap;
	} else
		s->ring[s->n++] = seq;
	for (i = slot_of(s, seq); s->tab[i] != 0; i = (i + 1) & s->tmask)
		;
	s->tab[i] = seq;
}

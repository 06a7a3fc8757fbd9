/*
 * guard.c: the figure-8 guard's predicate (see guard.h).
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "storage/guard.h"

#ifdef MOM_FAULT_INJECTION
/* MOM_FAULT_NO_GUARD, read once: -1 not yet, 0 guard on, 1 off. */
static int no_guard = -1;

static bool
guard_off(void)
{
	const char *v;

	if (no_guard < 0) {
		v = getenv("MOM_FAULT_NO_GUARD");
		no_guard = v != NULL && *v != '\0' && strcmp(v, "0") != 0;
		if (no_guard)
			log_warnx("fault injection: MOM_FAULT_NO_GUARD: the figure-8 guard is "
			    "off: a new leader may commit an earlier term's entry by counting "
			    "replicas");
	}
	return no_guard;
}
#endif

bool
replica_guard_drop(int raft_state, uint64_t current_term, uint64_t last_stored_term,
    unsigned msg_type)
{
	if (raft_state != RAFT_LEADER || msg_type != RAFT_IO_APPEND_ENTRIES_RESULT ||
	    last_stored_term >= current_term)
		return false;
#ifdef MOM_FAULT_INJECTION
	if (guard_off())
		return false;
#endif
	return true;
}

/* The term of entry i in libraft's log or snapshot (its logTermOf); 0 when in neither. */
static uint64_t
term_of(const struct raft *raft, raft_index i)
{
	const struct raft_log *l = &raft->log;
	size_t                 n;

	if (i == 0)
		return 0;
	if (i == l->snapshot.last_index)
		return l->snapshot.last_term;
	/* The circular buffer [front, back) holds offset+1 onwards. */
	n = l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
	if (i <= l->offset || i > l->offset + n)
		return 0;
	return l->entries[(l->front + (size_t)(i - 1 - l->offset)) % l->size].term;
}

uint64_t
replica_guard_stored_term(const struct raft *raft)
{
	return term_of(raft, raft->last_stored);
}

bool
replica_guard_covered(const struct raft *raft, struct raft_message *m)
{
	struct raft_append_entries *ae = &m->append_entries;
	raft_index                  snap = raft->log.snapshot.last_index;
	raft_index                  skip;

	if (m->type != RAFT_IO_APPEND_ENTRIES || ae->prev_log_index == 0 ||
	    ae->prev_log_index >= snap || term_of(raft, ae->prev_log_index) != 0)
		return false;
	/* Installing one (0.15: last_stored is 0 meanwhile): not yet its own. */
	if (raft->last_stored == 0)
		return false;
	skip = snap - ae->prev_log_index;
	if (skip <= ae->n_entries) {
		if (ae->entries[skip - 1].term != raft->log.snapshot.last_term)
			return false;
		ae->n_entries -= (unsigned)skip;
		if (ae->n_entries > 0)
			memmove(ae->entries, ae->entries + skip,
			    ae->n_entries * sizeof(*ae->entries));
	} else
		ae->n_entries = 0;
	if (ae->n_entries == 0 && ae->entries != NULL) {
		raft_free(ae->entries[0].batch);
		raft_free(ae->entries);
		ae->entries = NULL;
	}
	ae->prev_log_index = snap;
	ae->prev_log_term = raft->log.snapshot.last_term;
	return true;
}

uint64_t
replica_guard_vouch(struct raft_message *m)
{
	struct raft_append_entries *ae = &m->append_entries;
	raft_index                  last;

	if (m->type != RAFT_IO_APPEND_ENTRIES)
		return 0;
	last = ae->prev_log_index + ae->n_entries;
	if (ae->leader_commit > last)
		ae->leader_commit = last;
	return last + 1;
}

void
replica_guard_cap_result(struct raft_message *m, uint64_t vouch)
{
	struct raft_append_entries_result *res = &m->append_entries_result;

	if (vouch == 0 || m->type != RAFT_IO_APPEND_ENTRIES_RESULT || res->rejected != 0)
		return;
	if (res->last_log_index > vouch - 1)
		res->last_log_index = vouch - 1;
}

/*
 * seen.h: the messages a consumer has already handled, by the broker's
 * sequence number, so that it can tell a redelivery of one of them.
 *
 * A broker redelivers what it has no acknowledgement for: after a restart
 * or a change of leader (leases are not kept), or when an acknowledgement
 * was lost with the leader that took it.  At-least-once allows that, but a
 * mom-sub that wrote a message (or whose command ran it to the end) would
 * write or run it again; with this set it acknowledges the copy instead.
 *
 * A bounded set: the last cap sequence numbers added (the oldest goes
 * first), looked up by hash.  Sequence numbers are never 0.  The memory
 * (24 bytes a number) is taken at the first add.
 */
#ifndef MOM_SEEN_H
#define MOM_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MOM_SEEN_CAP 65536

struct mom_seen {
	uint64_t *ring; /* in the order added; ring[head] is the oldest when full */
	uint64_t *tab;  /* open addressing, 0 empty; tmask + 1 slots */
	size_t    cap, n, head, tmask;
	int       oom;  /* the first add found no memory: the set stays empty */
};

/* An empty set of at most cap numbers (a power of two; 0: MOM_SEEN_CAP). */
void mom_seen_init(struct mom_seen *, size_t cap);
void mom_seen_fini(struct mom_seen *);
bool mom_seen_has(const struct mom_seen *, uint64_t seq);
/* Adds seq (0 and repeats are ignored), dropping the oldest when full. */
void mom_seen_add(struct mom_seen *, uint64_t seq);

#endif

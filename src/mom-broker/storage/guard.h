/*
 * guard.h: the figure-8 guard against libraft 0.15.0's commit of an
 * earlier term's entry by counting replicas.
 *
 * 0.15.0 appends no entry when a node becomes leader, and on every
 * AppendEntries result it commits up to its last stored index as soon as
 * a majority has it, whatever that entry's term (replicationQuorum; fixed
 * upstream only in 0.17.1).  So a new leader whose log ends with an entry
 * of an older term can commit that entry by counting copies, and a later
 * leader can overwrite it (the Raft paper's figure 8): a confirmed entry
 * is lost and the nodes diverge.  The workaround: a barrier on every
 * transition to leader (replica.c) and, until the leader has stored an
 * entry of its own term, no AppendEntries result reaches libraft (it is
 * dropped; the follower answers the next heartbeat again).  A dropped
 * result is no contact either: a leader that stores no entry of its term
 * within an election timeout steps down, hence the barrier at once.
 *
 * The predicate is pure and is the one used by rio_recv (storage/rio.c)
 * and by the raft_fixture test (tests/unit/cluster_test.c), which has an
 * io of its own.  It lives in storage/ because rio calls it and storage
 * may include nothing above it.  replica_guard_drop is its name in the
 * cluster's interfaces.
 *
 * The fault-injection build (-DMOM_FAULT_INJECTION) reads
 * MOM_FAULT_NO_GUARD (set unless empty or "0") at the first call: the
 * guard then never drops (one line is logged), so that a test shows what
 * it prevents.  Not in the normal build.
 */
#ifndef BROKER_GUARD_H
#define BROKER_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>

/*
 * True when a message must not reach libraft: an AppendEntries result
 * (msg_type RAFT_IO_APPEND_ENTRIES_RESULT) while this node leads
 * (raft_state RAFT_LEADER) and its last stored entry's term is below the
 * current term.
 */
bool     replica_guard_drop(int raft_state, uint64_t current_term, uint64_t last_stored_term,
    unsigned msg_type);

/*
 * The term of libraft's last stored entry (raft->last_stored: the index
 * 0.15.0 counts replicas of), from its in-memory log or its snapshot;
 * 0 when that entry is in neither (nothing stored: the guard drops).
 */
uint64_t replica_guard_stored_term(const struct raft *raft);

#endif

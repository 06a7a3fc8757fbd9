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

/*
 * The stale-tail guard, against a second fault of libraft 0.15.0 (still
 * in 0.18): a follower that accepts an AppendEntries which adds nothing to
 * its log (a heartbeat, or entries it has already) answers with its last
 * stored index, and sets its commit index to min(leader_commit, last
 * stored).  Its entries past the request's are not vouched for by the
 * request: left from an earlier term, they may differ from the leader's.
 * The leader then counts the follower as storing its own entries at
 * those indexes and commits them on a false majority; the follower may
 * commit and apply its stale ones.  Seen in a restart of a chaos run's
 * data: a leader of term 7 committed its barrier with a follower that had
 * another entry of term 6 there; the next leader overwrote it, and libraft
 * stopped the first node ("conflicts with one it committed").  Raft's
 * rule (figure 2) is min(leaderCommit, index of last new entry).
 *
 * replica_guard_vouch: for an AppendEntries (0 for any other message),
 * caps m's leader_commit at the last index the request vouches for,
 * prev_log_index + n_entries, and returns that index plus one.  While
 * libraft handles m, replica_guard_cap_result caps the last_log_index of
 * an accepted AppendEntries result at the same index (vouch is what
 * replica_guard_vouch returned; 0 leaves m alone).  An append that adds
 * entries is answered when it is stored, with the end of what it
 * appended: the request's own last index, already right.
 */
uint64_t replica_guard_vouch(struct raft_message *m);
void     replica_guard_cap_result(struct raft_message *m, uint64_t vouch);

/*
 * The snapshot-gap fix, against a third fault of libraft 0.15.0: a
 * follower refuses an AppendEntries whose previous entry (prev_log_index)
 * it no longer has in its log because its own snapshot covers it ("no
 * entry at index"), although every entry a snapshot covers is committed,
 * so the leader's is the same.  The leader then steps back one entry at a
 * time, and once below its own log sends its snapshot; when that is older
 * than the follower's, the follower takes it for a no-op and answers with
 * its index, the leader probes right after it, and the follower refuses
 * again: a loop that never ends.  Seen in a chaos run: the leader sent
 * 131 snapshots of about 2 MB in 70 s and the follower applied nothing.
 * (A fresh leader starts it: libraft 0.15 puts a follower back to probe
 * at its match index plus one on any failed send, and a leader that has
 * not heard from it yet in its term has 0: it sends its snapshot.)
 *
 * replica_guard_covered: when m is an AppendEntries whose prev_log_index
 * is below raft's snapshot index S and not in its log (and raft is not
 * installing a snapshot), moves m's previous entry to S: the entries up
 * to S are dropped, and prev_log_term becomes the snapshot's term; when m
 * has an entry at S its term must be that one, else m is left alone (the
 * logs differ where they cannot: libraft's own check refuses it).  m's
 * entries must share one batch (raft_message decoding and raft_fixture
 * both do so); dropping them all frees the batch and the array.  Returns
 * true when m was changed.
 */
bool     replica_guard_covered(const struct raft *raft, struct raft_message *m);

#endif

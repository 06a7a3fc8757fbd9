/*
 * raftmsg.h: libraft 0.15's six messages (RequestVote and its result,
 * AppendEntries and its result, InstallSnapshot, TimeoutNow) as bytes for
 * the cluster links, with the sender's id and address.
 *
 * The encoding is ours, not libraft's uv encoding.  Integers are
 * little-endian and of fixed width, so that a message has exactly one
 * encoding (the fuzz target checks that decoding then encoding gives the
 * input back).  The leading byte is the type and the version at once:
 * RAFTMSG_V1 + the RAFT_IO_* code; a later incompatible layout takes new
 * values, which this decoder refuses.
 *
 *   type u8, from u64, address length u16, address bytes (no NUL)
 *   RequestVote:        term u64, candidate u64, last index u64,
 *                       last term u64, flags u8 (1 disrupt leader, 2 pre-vote)
 *   RequestVoteResult:  term u64, granted u8 (0/1), pre-vote u8 (raft_tribool)
 *   AppendEntries:      term, prev index, prev term, leader commit (u64 each),
 *                       count u32, count x (term u64, type u8, length u32),
 *                       then the entries' data back to back
 *   AppendEntriesResult: term, rejected, last log index (u64 each)
 *   InstallSnapshot:    term, last index, last term, conf index (u64 each),
 *                       servers u32, servers x (id u64, role u8, length u16,
 *                       address), data length u64, data
 *   TimeoutNow:         term, last log index, last log term (u64 each)
 *
 * Frames are authenticated before they get here, yet the decoder trusts
 * nothing: every length is checked against what remains, the message must
 * end exactly where its last field does, and the sizes it accepts are
 * bounded by the constants below.
 */
#ifndef BROKER_RAFTMSG_H
#define BROKER_RAFTMSG_H

#include <stddef.h>
#include <stdint.h>

#include <raft.h>

struct mom_buf;

/* The first type byte of version 1 (the RAFT_IO_* code is added to it). */
#define RAFTMSG_V1          0x10
/* An address (the sender's or a server's in a configuration), in bytes. */
#define RAFTMSG_MAX_ADDR    255
/*
 * Entries in one AppendEntries.  libraft 0.15 sends everything from a
 * follower's next index, so a sender that lets it must cut the message
 * (raftmsg_entries_fit); a bound here keeps a hostile count from costing
 * more than the 40 bytes per entry that the wire's 13 already bound.
 */
#define RAFTMSG_MAX_ENTRIES (1u << 20)
/* Servers in an InstallSnapshot's configuration (a cluster has 3-7). */
#define RAFTMSG_MAX_SERVERS 256
/* An AppendEntries' data in all, and an InstallSnapshot's data. */
#define RAFTMSG_MAX_DATA    ((uint64_t)4 << 30)

/*
 * Appends m's encoding to out, sent by from_id at from_address (borrowed;
 * NULL is "").  Borrows m.  0, MOM_EINVAL (a type that is not one of the
 * six, from_id 0, an address or a count or a size over the bounds above)
 * or MOM_ENOMEM; out may then hold a part of the message.
 */
int  raftmsg_encode(struct mom_buf *out, const struct raft_message *m, uint64_t from_id,
    const char *from_address);

/*
 * Decodes the n bytes at p into *m.  m->server_id is the sender's id and
 * m->server_address points into addr (addrlen bytes, NUL-terminated by
 * decode), so addr must live as long as *m is used; libraft copies what
 * it keeps of it.  What libraft owns once the message is handed to its
 * recv_cb is allocated with raft_malloc: an AppendEntries' entries array
 * and one batch that holds every entry's data (0.15 frees only the first
 * entry's batch on some paths), an InstallSnapshot's data and its
 * configuration (raft_configuration_add).  0, or MOM_EBADDATA (malformed,
 * over a bound, or an address longer than addrlen - 1) or MOM_ENOMEM;
 * on failure nothing is left allocated and *m is zeroed.
 */
int  raftmsg_decode(const void *p, size_t n, struct raft_message *m, char *addr,
    size_t addrlen);

/*
 * Frees what raftmsg_decode allocated for a message that is not handed to
 * libraft, and zeroes those fields (a second call does nothing).
 */
void raftmsg_release(struct raft_message *m);

/*
 * For a sender that must bound its messages: how many of an
 * AppendEntries' first entries fit in an encoding of at most max bytes
 * (with from_address); m->append_entries.n_entries when all do.  Sending a
 * prefix is valid Raft: the follower's reply says how far it got.  For
 * other types: 0.
 */
unsigned raftmsg_entries_fit(const struct raft_message *m, const char *from_address,
    size_t max);

#endif

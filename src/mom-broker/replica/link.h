/*
 * link.h: the cluster transport.  Frames (frame.h: MAC under the cluster
 * key) over nng bus0 between the nodes of a cluster.
 *
 * Bus0 broadcasts and has no per-peer addressing, so each node listens on
 * one bus0 socket that only receives, and sends to each peer on a bus0
 * socket of its own that dials that peer and only sends.  Bus0 drops a frame
 * silently when a connection's queue is full: the per-link sequence number
 * of each frame lets the receiver count those gaps.
 *
 * A message of at most FRAME_CHUNK bytes goes as one frame and is never
 * resent (raft retries what is lost).  One-frame messages that wait for
 * room in the window go packed: the frame that the window lets go next
 * carries every one that waited, as many as fit in FRAME_CHUNK bytes
 * (frame.h, FRAME_F_PACKED), so that a burst (a follower forwarding many
 * clients' requests) goes at the link's byte rate, not at one message an
 * acknowledgement; a message that finds room goes at once, alone.  The
 * receiver takes each packed message as if it came alone.  A larger one
 * is chunked and a chunk
 * not acknowledged in time is resent.  The receiver acknowledges every data
 * frame, and the sender keeps at most LINK_WINDOW frames unacknowledged per
 * peer: that paces it below what bus0 drops (sent flat out, 10 % of 64 KiB
 * and 76 % of 1 KiB frames were lost on loopback; paced by the window, none:
 * bench/README.md).  One-frame messages go before the chunks of large ones,
 * which leave them LINK_WINDOW_SMALL slots, so that a long transfer never
 * holds up a heartbeat or a vote.  A transfer that makes no progress for
 * LINK_STALL_MS is abandoned (raft will send again).  The receiver
 * reassembles and hands only whole, verified messages to link_recv, within
 * a memory budget (2 x max_msg) for reassembly and unread messages: beyond
 * it, it acknowledges nothing, which holds the sender back, and refuses new
 * transfers.
 *
 * Threads: a receiving thread (the listening socket) and a sending thread
 * (queues, resends, timeouts); every call here may come from any thread.
 * cfg->wake is called from the receiving thread when a message is ready; it
 * must not call back into link_stop.
 *
 * The fault-injection build (make fault: -DMOM_FAULT_INJECTION) reads
 * MOM_FAULT_LINK=FILE, re-read when its mtime changes (at most every
 * 100 ms), lines of
 *	PEER drop FRACTION	drop that fraction of frames both ways
 *	PEER delay MS		hold frames sent to PEER that long
 *	PEER partition out|in|both	drop everything sent / received / both
 * where PEER is a node id or `*' (every peer); a later line overrides an
 * earlier one for the same setting, a peer's own line overrides `*'.
 */
#ifndef MOM_REPLICA_LINK_H
#define MOM_REPLICA_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "replica/frame.h"

enum link_kind {
	LINK_RAFT = 1,		/* a raftmsg (raftmsg.h) */
	LINK_FWD = 2,		/* a client request forwarded to the leader */
	LINK_FWD_REPLY = 3,
	LINK_FWD_CANCEL = 4,
	LINK_STATUS = 5,	/* a node's term, commit and applied index (transport.c) */
	LINK_NOT_MEMBER = 6,	/* "you are not in the configuration" (transport.c) */
};

/* Frames sent and not yet acknowledged, per peer; chunks of large messages
 * leave LINK_WINDOW_SMALL of them to one-frame messages. */
#define LINK_WINDOW		8
#define LINK_WINDOW_SMALL	2
/* A chunked transfer with no chunk acknowledged for that long is abandoned. */
#define LINK_STALL_MS		5000
#define LINK_MAX_MSG_DEFAULT	((size_t)1 << 30)	/* 1 GiB */
#define LINK_INFLIGHT_DEFAULT	LINK_MAX_MSG_DEFAULT

struct link;

struct link_config {
	uint64_t	 self;		/* our node id (> 0) */
	uint64_t	 cluster;	/* the cluster id */
	const char	*listen;	/* nng URL to listen on */
	const uint8_t	*key;		/* the cluster key, >= FRAME_KEY_MIN */
	size_t		 keylen;
	size_t		 max_inflight;	/* bytes per peer, 0: LINK_INFLIGHT_DEFAULT */
	size_t		 max_msg;	/* largest message, 0: LINK_MAX_MSG_DEFAULT;
					 * the receiver holds at most twice this in
					 * reassembly and messages not yet read */
	void		(*wake)(void *arg); /* a message is ready (any thread) */
	void		*arg;
};

/* cfg and its strings and key are copied.  0 or a MOM_E* code, err set. */
int	link_start(struct link **, const struct link_config *, char *err,
	    size_t errlen);
/*
 * Stops both threads, closes every socket, frees every queue.  NULL: no-op.
 * Takes about 50 ms (the sending sockets drain); a socket that nng 1.5.2
 * fails to close within 2 s is left to a thread of its own, with a warning.
 */
void	link_stop(struct link *);
/*
 * True once any link's socket failed to close in time (link_stop).  nng
 * registers nng_fini with atexit(3), which closes every socket again and
 * then never returns: a program that sees this true ends with _exit(2).
 */
bool	link_close_stuck(void);
/*
 * From now on l sends nothing (not even acknowledgements); it still
 * receives.  link_stop does it first.  nng 1.5.2 can leave a socket that
 * never closes, and wedge every later close in the process (nng issue
 * 1543: a close racing with a frame that arrives); links in one process
 * (the tests) that all go quiet before any stops give it nothing to race.
 */
void	link_quiesce(struct link *);
/* The TCP port the link listens on (for a URL with port 0), or -1. */
int	link_port(struct link *);

/* Allows frames from id and dials url; the same url again is a no-op, another
 * one replaces it.  0, MOM_EINVAL (id 0 or self, bad url), MOM_ENOMEM. */
int	link_peer_add(struct link *, uint64_t id, const char *url);
/* Forgets id: its queued messages and transfers are dropped. */
void	link_peer_remove(struct link *, uint64_t id);
/* True while this node's connection to peer id is up (its socket has a pipe). */
bool	link_connected(struct link *, uint64_t id);

/*
 * Queues a copy of msg for peer `to'; never blocks.  0, MOM_EUNAVAIL
 * (unknown peer, not connected, the peer's bytes in flight would pass
 * max_inflight, the link stopping), MOM_ETOOBIG (len > max_msg), MOM_ENOMEM.
 * A message counts as in flight until all its frames are acknowledged, or
 * it is given up (a one-frame message after the resend timeout, a transfer
 * after LINK_STALL_MS without progress).
 */
int	link_send(struct link *, uint64_t to, uint32_t group, uint8_t kind,
	    const void *msg, size_t len);
/*
 * The same, taking b's bytes instead of copying them (a big message: an
 * install of a snapshot is the whole state); b is left empty, whatever
 * the outcome.
 */
struct mom_buf;
int	link_send_buf(struct link *, uint64_t to, uint32_t group, uint8_t kind,
	    struct mom_buf *b);

struct link_msg {
	uint64_t	 from;
	uint32_t	 group;
	uint8_t		 kind;
	size_t		 len;
	uint8_t		*data;
};

/*
 * The cluster id the link speaks.  A link started with cluster 0 (a node
 * waiting to be added) takes the id of the first frame from an allowed
 * peer whose MAC verifies, and speaks it from then on.
 */
uint64_t link_cluster(struct link *);

/* The next verified whole message, owned by the caller, or NULL. */
struct link_msg *link_recv(struct link *);
void	link_msg_free(struct link_msg *);

/*
 * Sets peers[id] (an object, created when missing) for every peer: frames
 * and bytes sent and received, gaps, resent chunks, bad MAC, foreign
 * cluster, transfers completed/abandoned/refused, bytes in flight.  Bad
 * frames are counted under the peer they claim to come from when it is one.
 */
void	link_stats_json(struct link *, json_t *peers);
/* Counters of frames that named no known peer: set in obj. */
void	link_stats_other_json(struct link *, json_t *obj);

#endif

/*
 * frame.h: the envelope of every frame on a cluster link (pure: no I/O, no
 * threads, no clock).
 *
 * A frame is a fixed header, the payload and an HMAC-SHA256 over both under
 * the cluster key.  All integers are little-endian:
 *
 *	off size
 *	  0   1  version (FRAME_VERSION)
 *	  1   1  type: FRAME_DATA (a chunk of a message), FRAME_ACK (chunk
 *	         received), FRAME_NACK (transfer refused: the sender gives up)
 *	  2   1  kind: what the whole message is (link.h LINK_RAFT, ...)
 *	  3   1  flags: FRAME_F_PACKED or zero
 *	  4   4  raft group (always 0 for now)
 *	  8   8  cluster id
 *	 16   8  from (node id of the sender)
 *	 24   8  to (node id of the receiver)
 *	 32   8  per-link sequence number: the receiver counts gaps as drops
 *	 40   8  message (transfer) id, unique per sender
 *	 48   4  chunk index
 *	 52   4  chunk count
 *	 56   8  total length of the message
 *	 64   4  payload length
 *	 68   n  payload
 *	68+n 32  HMAC-SHA256(key, bytes 0 .. 68+n)
 *
 * A message of at most FRAME_CHUNK bytes is one frame (index 0, count 1);
 * a larger one is count chunks of FRAME_CHUNK bytes, the last one shorter.
 * An ACK or NACK names the message and chunk in its header and has no
 * payload.
 *
 * A packed frame (FRAME_F_PACKED: a DATA frame of one chunk, kind 0)
 * carries several one-frame messages, its payload a sequence of parts:
 *
 *	  0   1  kind
 *	  1   4  raft group
 *	  5   4  length n
 *	  9   n  the message
 */
#ifndef MOM_REPLICA_FRAME_H
#define MOM_REPLICA_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_VERSION	1
#define FRAME_HDR	68
#define FRAME_MACLEN	32
#define FRAME_OVERHEAD	(FRAME_HDR + FRAME_MACLEN)
/* Payload of one chunk: the largest message that goes as a single frame. */
#define FRAME_CHUNK	(64u * 1024)
/* The largest frame there is: NNG_OPT_RECVMAXSZ of a link. */
#define FRAME_MAX	(FRAME_CHUNK + FRAME_OVERHEAD)
/* The shortest key frame_seal and frame_open accept. */
#define FRAME_KEY_MIN	16

/* Flags (byte 3). */
#define FRAME_F_PACKED	0x01
/* Bytes of a part's header in a packed frame. */
#define FRAME_PART_HDR	9

enum frame_type {
	FRAME_DATA = 1,
	FRAME_ACK = 2,
	FRAME_NACK = 3,
};

/* What frame_open found wrong, so that the link can count each reason. */
enum frame_err {
	FRAME_OK = 0,
	FRAME_ESHORT,	/* truncated, or the payload length does not match */
	FRAME_EVERSION,	/* a version we do not speak */
	FRAME_EMAC,	/* the MAC does not verify under our key */
	FRAME_ECLUSTER,	/* a valid MAC, but another cluster's id */
	FRAME_ETO,	/* a valid MAC, but addressed to another node */
	FRAME_EBAD,	/* a valid MAC over fields that contradict each other */
	FRAME_EKEY,	/* the key is too short (a caller's error) */
};

struct frame {
	uint8_t		 type;
	uint8_t		 kind;
	uint8_t		 flags;
	uint32_t	 group;
	uint64_t	 cluster;
	uint64_t	 from;
	uint64_t	 to;
	uint64_t	 seq;
	uint64_t	 xfer;
	uint32_t	 index;
	uint32_t	 count;
	uint64_t	 total;
	const uint8_t	*payload;	/* borrowed: points into the frame */
	uint32_t	 len;
};

/* Bytes of a frame with a payload of len bytes. */
size_t	frame_size(size_t len);

/*
 * Writes f (header, f->len bytes of f->payload, MAC) to out, which has room
 * for frame_size(f->len) bytes.  Returns FRAME_OK, or FRAME_EKEY for a key
 * under FRAME_KEY_MIN bytes, FRAME_EBAD for a payload over FRAME_CHUNK or
 * too little room.  f and key are borrowed.
 */
int	frame_seal(uint8_t *out, size_t outlen, const struct frame *f,
	    const uint8_t *key, size_t keylen);

/*
 * Checks the n bytes at p, in this order: length, version, MAC, cluster id,
 * `to`, then the consistency of the fields, and fills *f (f->payload points
 * into p).  Returns FRAME_OK or the first enum frame_err that applies.  On
 * FRAME_EMAC and later errors *f is filled too, but nothing in it can be
 * trusted: it is only for counting (say, by the claimed sender).
 */
int	frame_open(const uint8_t *p, size_t n, uint64_t cluster, uint64_t to,
	    const uint8_t *key, size_t keylen, struct frame *f);

/* One message of a packed frame's payload. */
struct frame_part {
	uint8_t		 kind;
	uint32_t	 group;
	const uint8_t	*data;		/* borrowed: points into the payload */
	uint32_t	 len;
};

/* Writes a part of len bytes at out, which has room for FRAME_PART_HDR +
 * len; returns the bytes written. */
size_t	frame_part_put(uint8_t *out, uint8_t kind, uint32_t group,
	    const void *data, uint32_t len);
/*
 * The part at *off of a packed payload of n bytes: 1 (filled in, *off moved
 * past it), 0 at the end, -1 when the payload is malformed (a part's header
 * or data runs past the end).
 */
int	frame_part_next(const uint8_t *p, size_t n, size_t *off,
	    struct frame_part *part);

/* A short name for an enum frame_err, for logs and counters. */
const char *frame_strerror(int);

#endif

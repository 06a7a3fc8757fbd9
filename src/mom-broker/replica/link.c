/*
 * link.c: the cluster transport over nng bus0 (see link.h).
 *
 * One mutex guards everything but the sockets' own machinery; frames are
 * sealed and handed to nng under it (nng_sendmsg on bus0 never blocks: a
 * full connection queue drops), and opened (the MAC) outside it.  The
 * sending thread owns the queues of outgoing messages, the resends and the
 * timeouts; the receiving thread verifies frames, acknowledges chunks,
 * reassembles and queues whole messages for link_recv.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/bus0/bus.h>
#include <nng/transport/tcp/tcp.h>

#include "buf.h"
#include "le.h"
#include "log.h"
#include "mom.h"
#include "nngclose.h"
#include "replica/frame.h"
#include "replica/link.h"

/* Frames the listening socket may hold before bus0 drops: far more than all
 * peers' windows, so that a receiver busy for a moment loses nothing. */
#define LINK_RECVBUF	1024
/* Frames nng may hold for a peer before its connection's own queue (16
 * frames in bus0, which drops beyond): room for a window of chunks, the
 * acknowledgements of the peer's chunks and raft's small messages. */
#define LINK_SENDBUF	64
/* The longest link_stop waits for nng to close a socket (see sock_close). */
#define LINK_CLOSE_MS		2000
#define LINK_DRAIN_MS		50
/* Resend timeout bounds; between them it follows the measured round trip. */
#define LINK_RTO_MIN_US	50000
#define LINK_RTO_MAX_US	1000000
/* A reassembly that received nothing for this long is dropped. */
#define LINK_EXPIRE_US	(2 * LINK_STALL_MS * 1000ull)
/* The sending thread looks at timeouts at least this often. */
#define LINK_TICK_US	100000
/* Incoming transfers remembered after completion, to acknowledge resends. */
#define LINK_DONE_RING	16
#define LINK_KEY_MAX	256

struct counters {
	uint64_t	frames_sent, bytes_sent, frames_recv, bytes_recv;
	uint64_t	msgs_sent, msgs_recv, send_failed;
	uint64_t	gaps, resent;
	uint64_t	short_frames, bad_version, bad_mac, foreign_cluster;
	uint64_t	wrong_to, malformed, unknown_sender;
	uint64_t	xfer_sent, xfer_abandoned, xfer_received, xfer_refused;
	uint64_t	xfer_expired, fault_dropped, unacknowledged, refused_full;
	uint64_t	packed_sent, packed_recv;
};

/* An outgoing message.  A chunk's state: 0 not sent, CHUNK_SENT, CHUNK_RESENT
 * (sent more than once: no round-trip sample), CHUNK_ACKED. */
enum { CHUNK_SENT = 1, CHUNK_RESENT = 2, CHUNK_ACKED = 3 };
struct out_msg {
	struct out_msg	*next;
	uint64_t	 xfer;
	uint32_t	 group;
	uint8_t		 kind;
	uint8_t		 flags;		/* FRAME_F_PACKED: several messages */
	uint8_t		*data;
	size_t		 len;
	uint32_t	 nmsgs;		/* messages it carries */
	uint32_t	 count, next_chunk, low, acked, outstanding;
	uint8_t		*state;		/* per chunk */
	uint64_t	*sent_us;	/* per chunk: last time sent */
	uint64_t	 progress_us;	/* started, or last chunk acknowledged */
};

/* Outgoing messages of a peer in the order given: one queue of one-frame
 * messages, one of chunked ones. */
struct outq {
	struct out_msg	*head, **tail;
};
enum { Q_SMALL, Q_BIG };

struct in_xfer {
	struct in_xfer	*next;
	uint64_t	 xfer, total, last_us;
	uint32_t	 group, count, got;
	uint8_t		 kind;
	uint8_t		*have;
	uint8_t		*data;
};

struct delayed {
	struct delayed	*next;
	nng_msg		*m;
	uint64_t	 due_us;
};

struct peer {
	uint64_t	 id;
	char		*url;
	nng_socket	 sock;
	atomic_int	 pipes;		/* connections up on sock */
	uint64_t	 seq_out, seq_in;
	struct outq	 q[2];
	size_t		 inflight;	/* bytes of queued messages */
	unsigned	 unacked;	/* chunks sent, not acknowledged */
	unsigned	 unsent;	/* queued messages with a chunk not yet sent */
	uint64_t	 srtt_us;
	struct in_xfer	*in;
	uint64_t	 done[LINK_DONE_RING];
	unsigned	 done_pos;
	struct delayed	*delayed, **delayed_tail;
	struct counters	 c;
};

struct rmsg {
	struct link_msg	 m;		/* first: link_msg_free casts back */
	struct rmsg	*next;
};

#ifdef MOM_FAULT_INJECTION
#define FAULT_RULES	64
enum { PART_OUT = 1, PART_IN = 2 };
struct fault_rule {
	uint64_t	 peer;		/* 0: `*' */
	int		 what;		/* 'd' drop, 'l' delay, 'p' partition */
	double		 drop;
	unsigned	 delay_ms;
	int		 part;
};
struct fault {
	char		*path;
	uint64_t	 checked_us;
	struct timespec	 mtime;
	bool		 present;
	struct fault_rule rules[FAULT_RULES];
	int		 n;
};
#endif

struct link {
	uint64_t	 self, cluster; /* cluster: 0 until learned (under mu) */
	bool		 learned;
	uint8_t		 key[LINK_KEY_MAX];
	size_t		 keylen;
	size_t		 max_inflight, max_msg;
	void		(*wake)(void *);
	void		*arg;
	nng_socket	 lsock;
	nng_listener	 listener;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	pthread_t	 rx, tx;
	/* Serialises link_peer_add and link_peer_remove (the core thread and
	 * rio's worker both add): mu is not held across nng_dial. */
	pthread_mutex_t	 pmu;
	bool		 rx_started, tx_started;
	atomic_bool	 stopping;
	atomic_bool	 quiet;      /* link_quiesce: nothing more is sent */
	int		 recvfd, stopfd[2];
	struct peer	**peers;
	size_t		 npeers, cappeers;
	struct rmsg	*rq, **rq_tail;
	size_t		 budget, budget_used; /* reassembly and unread bytes */
	uint64_t	 next_xfer;
	uint64_t	 rng;
	struct counters	 other;
#ifdef MOM_FAULT_INJECTION
	struct fault	 fault;
#endif
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct peer *
peer_find(struct link *l, uint64_t id)
{
	size_t i;

	for (i = 0; i < l->npeers; i++)
		if (l->peers[i]->id == id)
			return l->peers[i];
	return NULL;
}

#ifdef MOM_FAULT_INJECTION
static uint64_t
rng_next(struct link *l)
{
	uint64_t x = l->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return l->rng = x;
}
#endif

#ifdef MOM_FAULT_INJECTION
/* One line of MOM_FAULT_LINK (link.h); 0, or -1 for a line to ignore. */
static int
fault_parse_line(const char *line, struct fault_rule *r)
{
	char who[32], what[16], val[32], *end;

	memset(r, 0, sizeof(*r));
	if (sscanf(line, "%31s %15s %31s", who, what, val) != 3 || who[0] == '#')
		return -1;
	if (strcmp(who, "*") != 0) {
		errno = 0;
		r->peer = strtoull(who, &end, 10);
		if (errno || *end || r->peer == 0)
			return -1;
	}
	if (strcmp(what, "drop") == 0) {
		r->what = 'd';
		r->drop = strtod(val, &end);
		return *end || r->drop < 0 || r->drop > 1 ? -1 : 0;
	}
	if (strcmp(what, "delay") == 0) {
		r->what = 'l';
		r->delay_ms = (unsigned)strtoul(val, &end, 10);
		return *end ? -1 : 0;
	}
	if (strcmp(what, "partition") == 0) {
		r->what = 'p';
		if (strcmp(val, "out") == 0)
			r->part = PART_OUT;
		else if (strcmp(val, "in") == 0)
			r->part = PART_IN;
		else if (strcmp(val, "both") == 0)
			r->part = PART_OUT | PART_IN;
		else if (strcmp(val, "none") == 0)
			r->part = 0;
		else
			return -1;
		return 0;
	}
	return -1;
}

/* Re-reads the fault file when its mtime changed, at most every 100 ms. */
static void
fault_reload(struct link *l, uint64_t now)
{
	struct fault *f = &l->fault;
	struct stat st;
	char line[256];
	FILE *fp;

	if (!f->path || now - f->checked_us < 100000)
		return;
	f->checked_us = now;
	if (stat(f->path, &st) != 0) {
		f->present = false;
		f->n = 0;
		return;
	}
	if (f->present && st.st_mtim.tv_sec == f->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == f->mtime.tv_nsec)
		return;
	f->present = true;
	f->mtime = st.st_mtim;
	f->n = 0;
	if (!(fp = fopen(f->path, "r")))
		return;
	while (fgets(line, sizeof(line), fp) && f->n < FAULT_RULES)
		if (fault_parse_line(line, &f->rules[f->n]) == 0)
			f->n++;
	fclose(fp);
}

/* The rules in effect for peer id: `*' lines, then the peer's own. */
static void
fault_for(struct link *l, uint64_t id, double *drop, unsigned *delay_ms, int *part)
{
	int pass, i;

	*drop = 0;
	*delay_ms = 0;
	*part = 0;
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < l->fault.n; i++) {
			struct fault_rule *r = &l->fault.rules[i];

			if (r->peer != (pass ? id : 0))
				continue;
			if (r->what == 'd')
				*drop = r->drop;
			else if (r->what == 'l')
				*delay_ms = r->delay_ms;
			else
				*part = r->part;
		}
}

static bool
fault_lose(struct link *l, double drop)
{
	return drop > 0 && (double)(rng_next(l) >> 11) / 9007199254740992.0 < drop;
}

/* True when a frame received from p is to be lost. */
static bool
fault_in(struct link *l, struct peer *p)
{
	double drop;
	unsigned delay;
	int part;

	fault_reload(l, now_us());
	fault_for(l, p->id, &drop, &delay, &part);
	return (part & PART_IN) || fault_lose(l, drop);
}

/* 1: m was consumed here (lost, or held back for later); 0: send it now. */
static int
fault_out(struct link *l, struct peer *p, nng_msg *m)
{
	struct delayed *d;
	double drop;
	unsigned delay;
	int part;

	fault_reload(l, now_us());
	fault_for(l, p->id, &drop, &delay, &part);
	if ((part & PART_OUT) || fault_lose(l, drop)) {
		p->c.fault_dropped++;
		nng_msg_free(m);
		return 1;
	}
	if (delay == 0 || !(d = calloc(1, sizeof(*d))))
		return 0;
	d->m = m;
	d->due_us = now_us() + delay * 1000ull;
	*p->delayed_tail = d;
	p->delayed_tail = &d->next;
	pthread_cond_signal(&l->cv); /* the sender's wait ends by the due time */
	return 1;
}
#endif /* MOM_FAULT_INJECTION */

/* Hands a sealed frame to nng; consumes m. */
static int
peer_put(struct peer *p, nng_msg *m)
{
	size_t n = nng_msg_len(m);

	if (nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK) != 0) {
		nng_msg_free(m);
		p->c.send_failed++;
		return -1;
	}
	p->c.frames_sent++;
	p->c.bytes_sent += n;
	return 0;
}

/*
 * Seals f for p (filling cluster, from, to and the next link sequence
 * number) and sends it.  Under l->mu.  A lost frame is not an error here:
 * bus0 loses frames silently too, and resends or raft cover both.
 */
static int
peer_send(struct link *l, struct peer *p, struct frame *f)
{
	size_t n = frame_size(f->len);
	nng_msg *m;

	if (atomic_load(&l->quiet))
		return MOM_EUNAVAIL;
	f->cluster = l->cluster;
	f->from = l->self;
	f->to = p->id;
	f->seq = ++p->seq_out;
	if (nng_msg_alloc(&m, n) != 0) {
		p->c.send_failed++;
		return MOM_ENOMEM;
	}
	if (frame_seal(nng_msg_body(m), n, f, l->key, l->keylen) != FRAME_OK) {
		nng_msg_free(m);
		p->c.send_failed++;
		return MOM_EINTERNAL;
	}
#ifdef MOM_FAULT_INJECTION
	if (fault_out(l, p, m))
		return 0;
#endif
	return peer_put(p, m) ? MOM_EUNAVAIL : 0;
}

static void
out_free(struct out_msg *m)
{
	if (!m)
		return;
	free(m->data);
	free(m->state);
	free(m->sent_us);
	free(m);
}

static struct outq *
out_q(struct peer *p, const struct out_msg *m)
{
	return &p->q[m->count == 1 ? Q_SMALL : Q_BIG];
}

/* Takes m off its queue (prev: its predecessor or NULL) and frees it. */
static void
out_finish(struct peer *p, struct out_msg *prev, struct out_msg *m)
{
	struct outq *q = out_q(p, m);

	if (prev)
		prev->next = m->next;
	else
		q->head = m->next;
	if (q->tail == &m->next)
		q->tail = prev ? &prev->next : &q->head;
	p->inflight -= m->len;
	p->unacked -= m->outstanding;
	if (m->next_chunk < m->count)
		p->unsent--;
	out_free(m);
}

static struct out_msg *
out_find(struct peer *p, uint64_t xfer, struct out_msg **prev)
{
	struct out_msg *m;
	int i;

	/* An acknowledged one-frame message is among the first few. */
	for (i = 0; i < 2; i++) {
		*prev = NULL;
		for (m = p->q[i].head; m; *prev = m, m = m->next)
			if (m->xfer == xfer)
				return m;
	}
	return NULL;
}

static int
chunk_send(struct link *l, struct peer *p, struct out_msg *m, uint32_t i)
{
	size_t off = (size_t)i * FRAME_CHUNK;
	struct frame f = {
		.type = FRAME_DATA, .kind = m->kind, .flags = m->flags, .group = m->group,
		.xfer = m->xfer, .index = i, .count = m->count, .total = m->len,
		.payload = m->data + off,
		.len = (uint32_t)(m->len - off < FRAME_CHUNK ? m->len - off : FRAME_CHUNK),
	};

	return peer_send(l, p, &f);
}

static uint64_t
peer_rto(struct peer *p)
{
	uint64_t rto = p->srtt_us ? 4 * p->srtt_us : LINK_RTO_MIN_US;

	if (rto < LINK_RTO_MIN_US)
		rto = LINK_RTO_MIN_US;
	return rto > LINK_RTO_MAX_US ? LINK_RTO_MAX_US : rto;
}

/*
 * Resends m's chunks that were not acknowledged within the resend timeout
 * (a one-frame message is not resent: raft sends again; it only gives its
 * window slot back) and sends new ones while the peer's window allows.
 * Lowers *next to the next deadline.  Returns 1 when m is finished.
 */
static int
out_pump(struct link *l, struct peer *p, struct out_msg *m, uint64_t now,
    uint64_t *next, bool up)
{
	unsigned window = m->count == 1 ? LINK_WINDOW : LINK_WINDOW - LINK_WINDOW_SMALL;
	uint64_t rto = peer_rto(p);
	uint32_t i;

	while (m->low < m->next_chunk && m->state[m->low] == CHUNK_ACKED)
		m->low++;
	for (i = m->low; i < m->next_chunk; i++) {
		if (m->state[i] == CHUNK_ACKED)
			continue;
		if (now - m->sent_us[i] >= rto) {
			if (m->count == 1) {
				p->c.unacknowledged++;
				return 1;
			}
			if (!up)
				continue;
			chunk_send(l, p, m, i);
			m->state[i] = CHUNK_RESENT;
			m->sent_us[i] = now;
			p->c.resent++;
		}
		if (m->sent_us[i] + rto < *next)
			*next = m->sent_us[i] + rto;
	}
	while (up && p->unacked < window && m->next_chunk < m->count) {
		i = m->next_chunk++;
		if (m->next_chunk == m->count)
			p->unsent--;
		chunk_send(l, p, m, i);
		m->state[i] = CHUNK_SENT;
		m->sent_us[i] = now;
		m->outstanding++;
		p->unacked++;
		if (now + rto < *next)
			*next = now + rto;
	}
	return 0;
}

/*
 * Packs the unsent one-frame messages that wait behind m, the first one
 * to go, into m, as many as fit in one frame (frame.h, FRAME_F_PACKED):
 * when the window holds one-frame messages back, each frame that it lets
 * go carries everything that waited, instead of one message an
 * acknowledgement.  Nothing waits to be packed: a message that finds room
 * goes at once, alone.  Under l->mu, from the sending thread.
 */
static void
out_pack(struct peer *p, struct out_msg *m)
{
	struct out_msg *n;
	size_t size = FRAME_PART_HDR + m->len, off = 0;
	uint32_t k = 1;
	uint8_t *d;

	for (n = m->next; n && n->next_chunk == 0 && !n->flags &&
	    size + FRAME_PART_HDR + n->len <= FRAME_CHUNK; n = n->next, k++)
		size += FRAME_PART_HDR + n->len;
	if (k == 1 || m->flags || !(d = malloc(size)))
		return;
	off += frame_part_put(d, m->kind, m->group, m->data, (uint32_t)m->len);
	while (--k > 0) {
		n = m->next;
		off += frame_part_put(d + off, n->kind, n->group, n->data, (uint32_t)n->len);
		m->nmsgs++;
		out_finish(p, m, n);
	}
	p->inflight += size - m->len;
	p->c.packed_sent += m->nmsgs;
	free(m->data);
	m->data = d;
	m->len = size;
	m->kind = 0;
	m->group = 0;
	m->flags = FRAME_F_PACKED;
}

/*
 * Sends what p's queue holds and the window allows, one-frame messages
 * (votes, heartbeats, small appends) before the chunks of large ones, so
 * that a long transfer never holds up a heartbeat; abandons stalled
 * transfers.
 */
static void
peer_pump(struct link *l, struct peer *p, uint64_t now, uint64_t *next)
{
	struct out_msg *m, *prev, *after;
	bool up = atomic_load(&p->pipes) > 0;
	int pass;

#ifdef MOM_FAULT_INJECTION
	while (p->delayed && p->delayed->due_us <= now) {
		struct delayed *d = p->delayed;

		if (!(p->delayed = d->next))
			p->delayed_tail = &p->delayed;
		if (atomic_load(&l->quiet))
			nng_msg_free(d->m);
		else
			peer_put(p, d->m);
		free(d);
	}
	if (p->delayed && p->delayed->due_us < *next)
		*next = p->delayed->due_us;
#endif
	for (pass = Q_SMALL; pass <= Q_BIG; pass++)
		for (prev = NULL, m = p->q[pass].head; m; m = after) {
			after = m->next;
			/* Those behind an unsent one-frame message wait too
			 * (a long queue costs nothing here), unless it waited
			 * too long for the link. */
			if (pass == Q_SMALL && m->next_chunk == 0) {
				if (now - m->progress_us >= LINK_STALL_MS * 1000ull) {
					p->c.unacknowledged++;
					out_finish(p, prev, m);
					continue;
				}
				if (!up || p->unacked >= LINK_WINDOW)
					break;
				out_pack(p, m);
				after = m->next;
			}
			if (m->count > 1 && now - m->progress_us >= LINK_STALL_MS * 1000ull) {
				p->c.xfer_abandoned++;
				out_finish(p, prev, m);
				continue;
			}
			if (out_pump(l, p, m, now, next, up)) {
				out_finish(p, prev, m);
				continue;
			}
			if (m->count > 1 && m->progress_us + LINK_STALL_MS * 1000ull < *next)
				*next = m->progress_us + LINK_STALL_MS * 1000ull;
			prev = m;
		}
#ifdef MOM_FAULT_INJECTION
	/* What this pump delayed is due before the next tick, too. */
	if (p->delayed && p->delayed->due_us < *next)
		*next = p->delayed->due_us;
#endif
}

/* Queues a whole message for link_recv; consumes data. */
static int
rq_push(struct link *l, struct peer *p, uint32_t group, uint8_t kind,
    uint8_t *data, size_t len)
{
	struct rmsg *r;

	if (!(r = calloc(1, sizeof(*r)))) {
		free(data);
		return -1;
	}
	r->m.from = p->id;
	r->m.group = group;
	r->m.kind = kind;
	r->m.len = len;
	r->m.data = data;
	l->budget_used += len;
	*l->rq_tail = r;
	l->rq_tail = &r->next;
	p->c.msgs_recv++;
	return 0;
}

static void
in_free(struct link *l, struct in_xfer *x)
{
	l->budget_used -= x->total;
	free(x->have);
	free(x->data);
	free(x);
}

static void
reply(struct link *l, struct peer *p, const struct frame *f, uint8_t type)
{
	struct frame a = {
		.type = type, .kind = f->kind, .group = f->group, .xfer = f->xfer,
		.index = f->index, .count = f->count, .total = f->total,
	};

	peer_send(l, p, &a);
}

/* The reassembly of f's transfer: found, or begun within the budget. */
static struct in_xfer *
in_get(struct link *l, struct peer *p, const struct frame *f)
{
	struct in_xfer *x, **pp;

	for (pp = &p->in; (x = *pp); pp = &x->next) {
		if (x->xfer != f->xfer)
			continue;
		if (x->total == f->total && x->kind == f->kind && x->group == f->group)
			return x;
		/* The same id for another message: the peer restarted. */
		*pp = x->next;
		in_free(l, x);
		break;
	}
	if (f->total > l->max_msg || l->budget_used + f->total > l->budget)
		return NULL;
	if (!(x = calloc(1, sizeof(*x))))
		return NULL;
	x->xfer = f->xfer;
	x->total = f->total;
	x->kind = f->kind;
	x->group = f->group;
	x->count = f->count;
	if (!(x->have = calloc(f->count, 1)) || !(x->data = malloc(f->total))) {
		free(x->have);
		free(x);
		return NULL;
	}
	l->budget_used += x->total;
	x->next = p->in;
	p->in = x;
	return x;
}

/*
 * The messages of a packed frame from p, each taken as if it had come
 * alone: those that find the reader too far behind are refused, and so
 * is the rest of the frame; the frame is acknowledged when one was taken.
 * Returns 1 when one was queued.
 */
static int
rx_packed(struct link *l, struct peer *p, const struct frame *f)
{
	struct frame_part pt;
	size_t off = 0;
	uint8_t *d;
	int rc, queued = 0;

	while ((rc = frame_part_next(f->payload, f->len, &off, &pt)) == 1) {
		if (l->budget_used + pt.len > l->budget) {
			p->c.refused_full++;
			rc = 0;
			break;
		}
		if (!(d = malloc(pt.len ? pt.len : 1)))
			break;
		memcpy(d, pt.data, pt.len);
		if (rq_push(l, p, pt.group, pt.kind, d, pt.len) == 0) {
			queued = 1;
			p->c.packed_recv++;
		}
	}
	if (rc < 0)
		p->c.malformed++; /* a peer with the key, but a bug: the rest is lost */
	if (queued)
		reply(l, p, f, FRAME_ACK);
	return queued;
}

/* A data frame from p; returns 1 when a whole message was queued. */
static int
rx_data(struct link *l, struct peer *p, const struct frame *f, uint64_t now)
{
	struct in_xfer *x, **pp;
	uint8_t *d;
	unsigned i;

	if (f->count == 1) {
		if (f->flags & FRAME_F_PACKED)
			return rx_packed(l, p, f);
		/* Not taken while the reader is that far behind: no
		 * acknowledgement holds the sender back. */
		if (l->budget_used + f->len > l->budget) {
			p->c.refused_full++;
			return 0;
		}
		/* Acknowledged only to pace the sender: it never resends. */
		reply(l, p, f, FRAME_ACK);
		if (!(d = malloc(f->len ? f->len : 1)))
			return 0;
		memcpy(d, f->payload, f->len);
		return rq_push(l, p, f->group, f->kind, d, f->len) == 0;
	}
	for (i = 0; i < LINK_DONE_RING; i++)
		if (p->done[i] == f->xfer) {
			/* Our acknowledgement was lost: say it again. */
			reply(l, p, f, FRAME_ACK);
			return 0;
		}
	if (!(x = in_get(l, p, f))) {
		p->c.xfer_refused++;
		reply(l, p, f, FRAME_NACK);
		return 0;
	}
	if (!x->have[f->index]) {
		memcpy(x->data + (size_t)f->index * FRAME_CHUNK, f->payload, f->len);
		x->have[f->index] = 1;
		x->got++;
	}
	x->last_us = now;
	reply(l, p, f, FRAME_ACK);
	if (x->got < x->count)
		return 0;
	for (pp = &p->in; *pp != x; pp = &(*pp)->next)
		;
	*pp = x->next;
	p->done[p->done_pos++ % LINK_DONE_RING] = x->xfer;
	p->c.xfer_received++;
	d = x->data;
	x->data = NULL;
	rq_push(l, p, x->group, x->kind, d, x->total);
	in_free(l, x);
	return 1;
}

/* An acknowledgement (or refusal) of one of our chunks. */
static void
rx_ack(struct link *l, struct peer *p, const struct frame *f, uint64_t now)
{
	struct out_msg *m, *prev;
	uint64_t rtt;

	if (!(m = out_find(p, f->xfer, &prev)) || m->count != f->count ||
	    f->index >= m->next_chunk)
		return;
	if (f->type == FRAME_NACK) {
		p->c.xfer_abandoned++;
		out_finish(p, prev, m);
		pthread_cond_signal(&l->cv);
		return;
	}
	if (m->state[f->index] == CHUNK_ACKED)
		return;
	if (m->state[f->index] == CHUNK_SENT) {
		/* Only chunks sent once are round-trip samples (Karn). */
		rtt = now - m->sent_us[f->index];
		p->srtt_us = p->srtt_us ? (7 * p->srtt_us + rtt) / 8 : rtt;
	}
	m->state[f->index] = CHUNK_ACKED;
	m->acked++;
	m->outstanding--;
	p->unacked--;
	m->progress_us = now;
	if (m->acked == m->count) {
		if (m->count > 1)
			p->c.xfer_sent++;
		p->c.msgs_sent += m->nmsgs;
		out_finish(p, prev, m);
	}
	/* The sending thread has work only if a frame waited for this room
	 * (its timeouts it keeps by itself): a waking for every acknowledged
	 * frame cost more than the frame on a busy 2-core machine. */
	if (p->unsent > 0)
		pthread_cond_signal(&l->cv);
}

static void
count_bad(struct counters *c, int rc)
{
	switch (rc) {
	case FRAME_ESHORT:
		c->short_frames++;
		break;
	case FRAME_EVERSION:
		c->bad_version++;
		break;
	case FRAME_EMAC:
		c->bad_mac++;
		break;
	case FRAME_ECLUSTER:
		c->foreign_cluster++;
		break;
	case FRAME_ETO:
		c->wrong_to++;
		break;
	default:
		c->malformed++;
		break;
	}
}

uint64_t
link_cluster(struct link *l)
{
	uint64_t c;

	pthread_mutex_lock(&l->mu);
	c = l->cluster;
	pthread_mutex_unlock(&l->mu);
	return c;
}

/* One frame off the listening socket; returns 1 when a message was queued. */
static int
rx_frame(struct link *l, const uint8_t *b, size_t n)
{
	struct frame f;
	struct peer *p;
	uint64_t now = now_us(), cluster;
	int rc, woke = 0;

	pthread_mutex_lock(&l->mu);
	cluster = l->cluster;
	pthread_mutex_unlock(&l->mu);
	/* A node waiting to be added takes its cluster's id from the first good frame. */
	if (cluster == 0 && n >= 16)
		cluster = mom_le_get64(b + 8); /* frame.h: the cluster id at 8 */
	rc = frame_open(b, n, cluster, l->self, l->key, l->keylen, &f);
	pthread_mutex_lock(&l->mu);
	if (rc == FRAME_OK && l->cluster == 0 && peer_find(l, f.from) != NULL) {
		l->cluster = cluster;
		l->learned = true;
	}
	p = rc == FRAME_OK || rc >= FRAME_EMAC ? peer_find(l, f.from) : NULL;
	if (rc != FRAME_OK) {
		count_bad(p ? &p->c : &l->other, rc);
		goto out;
	}
	if (!p) {
		l->other.unknown_sender++;
		goto out;
	}
#ifdef MOM_FAULT_INJECTION
	if (fault_in(l, p)) {
		p->c.fault_dropped++;
		goto out;
	}
#endif
	/* A lower number than expected: the peer restarted its count. */
	if (f.seq > p->seq_in + 1 && p->seq_in != 0)
		p->c.gaps += f.seq - p->seq_in - 1;
	p->seq_in = f.seq;
	p->c.frames_recv++;
	p->c.bytes_recv += n;
	if (f.type == FRAME_DATA)
		woke = rx_data(l, p, &f, now);
	else
		rx_ack(l, p, &f, now);
out:
	pthread_mutex_unlock(&l->mu);
	return woke;
}

static void *
rx_main(void *arg)
{
	struct link *l = arg;
	nng_msg *m;
	int rv;

	struct pollfd pfd[2] = {
		{ .fd = l->recvfd, .events = POLLIN },
		{ .fd = l->stopfd[0], .events = POLLIN },
	};

	/* Never a blocking nng_recvmsg: nng 1.5.2 loses track of one that
	 * races nng_close or its own timeout, and the socket then never
	 * closes.  The socket's pollable descriptor says when a frame is
	 * there; our own pipe says when to stop. */
	while (!atomic_load(&l->stopping)) {
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		while ((rv = nng_recvmsg(l->lsock, &m, NNG_FLAG_NONBLOCK)) == 0) {
			rv = rx_frame(l, nng_msg_body(m), nng_msg_len(m));
			nng_msg_free(m);
			if (rv && l->wake)
				l->wake(l->arg);
		}
		if (rv == NNG_ECLOSED)
			break;
	}
	return NULL;
}

/* Drops reassemblies that received nothing for LINK_EXPIRE_US. */
static void
in_expire(struct link *l, struct peer *p, uint64_t now)
{
	struct in_xfer *x, **pp = &p->in;

	while ((x = *pp)) {
		if (now - x->last_us >= LINK_EXPIRE_US) {
			*pp = x->next;
			p->c.xfer_expired++;
			in_free(l, x);
		} else
			pp = &x->next;
	}
}

static void *
tx_main(void *arg)
{
	struct link *l = arg;
	struct timespec ts;
	uint64_t now, next;
	size_t i;

	pthread_mutex_lock(&l->mu);
	while (!atomic_load(&l->stopping)) {
		now = now_us();
		next = now + LINK_TICK_US;
#ifdef MOM_FAULT_INJECTION
		fault_reload(l, now);
#endif
		for (i = 0; i < l->npeers; i++) {
			peer_pump(l, l->peers[i], now, &next);
			in_expire(l, l->peers[i], now);
		}
		if (next <= now)
			continue;
		ts.tv_sec = (time_t)(next / 1000000u);
		ts.tv_nsec = (long)(next % 1000000u) * 1000;
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* Set once any socket failed to close in time (see link_close_stuck). */
static atomic_bool close_stuck;

/*
 * nng_close, but never for longer than LINK_CLOSE_MS.  nng 1.5.2's close
 * of a socket sometimes never returns when the peer closes its end at the
 * same moment (a stress loop of two links stopped together hung within 40
 * rounds; with 300 ms between the two stops, never): a node that stops
 * must not hang on it.  The close goes on in a thread of its own, which is
 * left behind when it does not finish.  Returns false then: nng may still
 * call the socket's pipe callbacks.
 */
static bool
sock_close(nng_socket s, const char *what, uint64_t id)
{
	if (mom_nng_close_within(s, LINK_CLOSE_MS))
		return true;
	atomic_store(&close_stuck, true);
	log_warnx("cluster link: closing the %s socket%s%.0llu took over %d ms "
	    "(nng); left to finish on its own", what, id ? " to node " : "",
	    (unsigned long long)id, LINK_CLOSE_MS);
	return false;
}

static void
pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct peer *p = arg;

	if (ev == NNG_PIPE_EV_ADD_POST)
		atomic_fetch_add(&p->pipes, 1);
	else if (ev == NNG_PIPE_EV_REM_POST)
		atomic_fetch_sub(&p->pipes, 1);
}

/* Frees a peer already taken out of l->peers (its socket closed here). */
static void
peer_free(struct link *l, struct peer *p)
{
	struct out_msg *m;
	struct in_xfer *x;
	bool closed;
	int i;

	closed = sock_close(p->sock, "sending", p->id);
	for (i = 0; i < 2; i++)
		while ((m = p->q[i].head)) {
			p->q[i].head = m->next;
			out_free(m);
		}
	pthread_mutex_lock(&l->mu);
	while ((x = p->in)) {
		p->in = x->next;
		in_free(l, x);
	}
	pthread_mutex_unlock(&l->mu);
	while (p->delayed) {
		struct delayed *d = p->delayed;

		p->delayed = d->next;
		nng_msg_free(d->m);
		free(d);
	}
	free(p->url);
	p->url = NULL;
	/* pipe_cb may still come for a socket whose close did not finish:
	 * the peer is left to it (a few hundred bytes). */
	if (closed)
		free(p);
}

int
link_start(struct link **lp, const struct link_config *cfg, char *err, size_t errlen)
{
	struct link *l;
	pthread_condattr_t ca;
	int rv;

	*lp = NULL;
	if (cfg->self == 0 || !cfg->listen || cfg->keylen < FRAME_KEY_MIN ||
	    cfg->keylen > LINK_KEY_MAX) {
		snprintf(err, errlen, "cluster link: bad configuration (node id, URL or key length)");
		return MOM_EINVAL;
	}
	if (!(l = calloc(1, sizeof(*l)))) {
		snprintf(err, errlen, "cluster link: out of memory");
		return MOM_ENOMEM;
	}
	l->self = cfg->self;
	l->cluster = cfg->cluster;
	memcpy(l->key, cfg->key, cfg->keylen);
	l->keylen = cfg->keylen;
	l->max_msg = cfg->max_msg ? cfg->max_msg : LINK_MAX_MSG_DEFAULT;
	l->budget = 2 * l->max_msg;
	l->max_inflight = cfg->max_inflight ? cfg->max_inflight : LINK_INFLIGHT_DEFAULT;
	l->wake = cfg->wake;
	l->arg = cfg->arg;
	l->rq_tail = &l->rq;
	l->stopfd[0] = l->stopfd[1] = -1;
	if (getrandom(&l->next_xfer, sizeof(l->next_xfer), 0) != sizeof(l->next_xfer))
		l->next_xfer = now_us();
	l->next_xfer &= (1ull << 62) - 1;	/* room before it wraps */
	l->rng = l->next_xfer | 1;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->pmu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
#ifdef MOM_FAULT_INJECTION
	if (getenv("MOM_FAULT_LINK") && *getenv("MOM_FAULT_LINK")) {
		l->fault.path = strdup(getenv("MOM_FAULT_LINK"));
		log_warnx("fault injection: MOM_FAULT_LINK: %s: cluster frames dropped, "
		    "delayed or cut as it says", l->fault.path);
	}
#endif
	if ((rv = nng_bus0_open(&l->lsock)) != 0) {
		snprintf(err, errlen, "cluster link: %s", nng_strerror(rv));
		goto fail_nosock;
	}
	/* A frame is at most FRAME_MAX bytes: a larger one closes the
	 * connection (nng's default of 1 MiB would be too lax, and too
	 * strict for nothing). */
	nng_socket_set_size(l->lsock, NNG_OPT_RECVMAXSZ, FRAME_MAX);
	nng_socket_set_int(l->lsock, NNG_OPT_RECVBUF, LINK_RECVBUF);
	if ((rv = nng_socket_get_int(l->lsock, NNG_OPT_RECVFD, &l->recvfd)) != 0 ||
	    pipe2(l->stopfd, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "cluster link: %s", rv ? nng_strerror(rv) : strerror(errno));
		goto fail;
	}
	if ((rv = nng_listen(l->lsock, cfg->listen, &l->listener, 0)) != 0) {
		snprintf(err, errlen, "cluster link: listen on %s: %s", cfg->listen,
		    nng_strerror(rv));
		goto fail;
	}
	if (pthread_create(&l->rx, NULL, rx_main, l) != 0)
		goto fail_thread;
	l->rx_started = true;
	if (pthread_create(&l->tx, NULL, tx_main, l) != 0)
		goto fail_thread;
	l->tx_started = true;
	*lp = l;
	return 0;
fail_thread:
	snprintf(err, errlen, "cluster link: cannot start a thread");
fail:
	link_stop(l);
	return MOM_EUNAVAIL;
fail_nosock:
#ifdef MOM_FAULT_INJECTION
	free(l->fault.path);
#endif
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->pmu);
	pthread_cond_destroy(&l->cv);
	free(l);
	return MOM_EUNAVAIL;
}

void
link_stop(struct link *l)
{
	struct rmsg *r;
	size_t i;

	if (!l)
		return;
	link_quiesce(l);
	pthread_mutex_lock(&l->mu);
	atomic_store(&l->stopping, true);
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (l->stopfd[1] >= 0 && write(l->stopfd[1], "", 1) < 0)
		log_warn("cluster link: stop");
	/* The receiving thread stops on our pipe (see rx_main), and the
	 * socket is closed only once nobody uses it. */
	if (l->rx_started)
		pthread_join(l->rx, NULL);
	sock_close(l->lsock, "listening", 0);
	if (l->tx_started)
		pthread_join(l->tx, NULL);
	usleep(LINK_DRAIN_MS * 1000);
	for (i = 0; i < l->npeers; i++)
		peer_free(l, l->peers[i]);
	free(l->peers);
	while ((r = l->rq)) {
		l->rq = r->next;
		link_msg_free(&r->m);
	}
#ifdef MOM_FAULT_INJECTION
	free(l->fault.path);
#endif
	for (i = 0; i < 2; i++)
		if (l->stopfd[i] >= 0)
			close(l->stopfd[i]);
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->pmu);
	pthread_cond_destroy(&l->cv);
	explicit_bzero(l->key, sizeof(l->key));
	free(l);
}

void
link_quiesce(struct link *l)
{
	atomic_store(&l->quiet, true);
}

bool
link_close_stuck(void)
{
	return atomic_load(&close_stuck);
}

int
link_port(struct link *l)
{
	int port;

	if (nng_listener_get_int(l->listener, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return -1;
	return port;
}

static struct peer *
peer_new(uint64_t id, const char *url)
{
	struct peer *p;

	if (!(p = calloc(1, sizeof(*p))))
		return NULL;
	if (!(p->url = strdup(url))) {
		free(p);
		return NULL;
	}
	p->id = id;
	p->q[Q_SMALL].tail = &p->q[Q_SMALL].head;
	p->q[Q_BIG].tail = &p->q[Q_BIG].head;
	p->delayed_tail = &p->delayed;
	atomic_init(&p->pipes, 0);
	if (nng_bus0_open(&p->sock) != 0) {
		free(p->url);
		free(p);
		return NULL;
	}
	/*
	 * A peer that went away is dialled again soon, but not in a loop: at
	 * most 400 ms apart, so that a restarted node is heard again well
	 * within an election timeout (800 ms by default), not after it.
	 */
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMINT, 100);
	nng_socket_set_ms(p->sock, NNG_OPT_RECONNMAXT, 400);
	/* This socket only sends; the peer's listener never sends back. */
	nng_socket_set_size(p->sock, NNG_OPT_RECVMAXSZ, FRAME_MAX);
	/* nng 1.5.2's socket send queue holds nothing by default: a
	 * non-blocking send fails while bus0 is still moving the previous
	 * frame to the connection's queue.  The window, not this queue,
	 * bounds what is in flight. */
	nng_socket_set_int(p->sock, NNG_OPT_SENDBUF, LINK_SENDBUF);
	nng_pipe_notify(p->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, p);
	nng_pipe_notify(p->sock, NNG_PIPE_EV_REM_POST, pipe_cb, p);
	return p;
}

static void peer_remove(struct link *l, uint64_t id);

/* link_peer_add with pmu held. */
static int
peer_add(struct link *l, uint64_t id, const char *url)
{
	struct peer *p, **np;
	int rv;

	pthread_mutex_lock(&l->mu);
	p = peer_find(l, id);
	rv = p && strcmp(p->url, url) == 0;
	pthread_mutex_unlock(&l->mu);
	if (rv)
		return 0;
	if (p)
		peer_remove(l, id);
	if (!(p = peer_new(id, url)))
		return MOM_ENOMEM;
	if ((rv = nng_dial(p->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
		peer_free(l, p);
		return rv == NNG_ENOMEM ? MOM_ENOMEM : MOM_EINVAL;
	}
	pthread_mutex_lock(&l->mu);
	if (l->npeers == l->cappeers) {
		size_t cap = l->cappeers ? 2 * l->cappeers : 8;

		if (!(np = realloc(l->peers, cap * sizeof(*np)))) {
			pthread_mutex_unlock(&l->mu);
			peer_free(l, p);
			return MOM_ENOMEM;
		}
		l->peers = np;
		l->cappeers = cap;
	}
	l->peers[l->npeers++] = p;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

int
link_peer_add(struct link *l, uint64_t id, const char *url)
{
	int rv;

	if (id == 0 || id == l->self || !url)
		return MOM_EINVAL;
	pthread_mutex_lock(&l->pmu);
	rv = peer_add(l, id, url);
	pthread_mutex_unlock(&l->pmu);
	return rv;
}

void
link_peer_remove(struct link *l, uint64_t id)
{
	pthread_mutex_lock(&l->pmu);
	peer_remove(l, id);
	pthread_mutex_unlock(&l->pmu);
}

/* link_peer_remove with pmu held. */
static void
peer_remove(struct link *l, uint64_t id)
{
	struct peer *p = NULL;
	size_t i;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->npeers; i++)
		if (l->peers[i]->id == id) {
			p = l->peers[i];
			l->peers[i] = l->peers[--l->npeers];
			break;
		}
	pthread_mutex_unlock(&l->mu);
	if (p)
		peer_free(l, p);
}

/* A message to send, of data (taken: freed whatever happens) or a copy of msg. */
static struct out_msg *
out_new(struct link *l, uint32_t group, uint8_t kind, const void *msg, uint8_t *data,
    size_t len)
{
	struct out_msg *m;

	if (!(m = calloc(1, sizeof(*m)))) {
		free(data);
		return NULL;
	}
	if (data != NULL)
		m->data = data;
	else if (!(m->data = malloc(len ? len : 1)))
		goto fail;
	else if (len)
		memcpy(m->data, msg, len);
	m->len = len;
	m->group = group;
	m->kind = kind;
	m->nmsgs = 1;
	m->count = len ? (uint32_t)((len + FRAME_CHUNK - 1) / FRAME_CHUNK) : 1;
	if (!(m->state = calloc(m->count, 1)) ||
	    !(m->sent_us = calloc(m->count, sizeof(*m->sent_us))))
		goto fail;
	return m;
fail:
	out_free(m);
	return NULL;
}

static int
send_msg(struct link *l, uint64_t to, uint32_t group, uint8_t kind, const void *msg,
    uint8_t *data, size_t len)
{
	struct out_msg *m;
	struct peer *p;

	if (len > l->max_msg || len > (size_t)UINT32_MAX * FRAME_CHUNK) {
		free(data);
		return MOM_ETOOBIG;
	}
	/* Copied before taking the lock: a large copy must not hold up the
	 * threads. */
	if (!(m = out_new(l, group, kind, msg, data, len)))
		return MOM_ENOMEM;
	pthread_mutex_lock(&l->mu);
	p = peer_find(l, to);
	if (atomic_load(&l->stopping) || !p || atomic_load(&p->pipes) == 0 ||
	    p->inflight + len > l->max_inflight) {
		pthread_mutex_unlock(&l->mu);
		out_free(m);
		return MOM_EUNAVAIL;
	}
	m->xfer = ++l->next_xfer;
	m->progress_us = now_us();
	p->inflight += len;
	p->unsent++;
	*out_q(p, m)->tail = m;
	out_q(p, m)->tail = &m->next;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

int
link_send(struct link *l, uint64_t to, uint32_t group, uint8_t kind,
    const void *msg, size_t len)
{
	return send_msg(l, to, group, kind, msg, NULL, len);
}

int
link_send_buf(struct link *l, uint64_t to, uint32_t group, uint8_t kind, struct mom_buf *b)
{
	size_t   len;
	uint8_t *data;

	if (b->err != 0) {
		mom_buf_fini(b);
		return MOM_ENOMEM;
	}
	data = mom_buf_steal(b, &len);
	if (data == NULL) /* empty */
		return send_msg(l, to, group, kind, "", NULL, 0);
	return send_msg(l, to, group, kind, NULL, data, len);
}

struct link_msg *
link_recv(struct link *l)
{
	struct rmsg *r;

	pthread_mutex_lock(&l->mu);
	if ((r = l->rq) && !(l->rq = r->next))
		l->rq_tail = &l->rq;
	if (r)
		l->budget_used -= r->m.len;
	pthread_mutex_unlock(&l->mu);
	return r ? &r->m : NULL;
}

void
link_msg_free(struct link_msg *m)
{
	if (!m)
		return;
	free(m->data);
	free((struct rmsg *)m);
}

static void
counters_json(const struct counters *c, json_t *o)
{
#define C(name, v) json_object_set_new(o, name, json_integer((json_int_t)(v)))
	C("frames_sent", c->frames_sent);
	C("bytes_sent", c->bytes_sent);
	C("frames_received", c->frames_recv);
	C("bytes_received", c->bytes_recv);
	C("messages_sent", c->msgs_sent);
	C("messages_received", c->msgs_recv);
	C("send_failed", c->send_failed);
	C("gaps", c->gaps);
	C("resent", c->resent);
	C("short_frames", c->short_frames);
	C("bad_version", c->bad_version);
	C("bad_mac", c->bad_mac);
	C("foreign_cluster", c->foreign_cluster);
	C("wrong_receiver", c->wrong_to);
	C("malformed", c->malformed);
	C("transfers_sent", c->xfer_sent);
	C("transfers_abandoned", c->xfer_abandoned);
	C("transfers_received", c->xfer_received);
	C("transfers_refused", c->xfer_refused);
	C("transfers_expired", c->xfer_expired);
	C("fault_dropped", c->fault_dropped);
	C("unacknowledged", c->unacknowledged);
	C("refused_full", c->refused_full);
	C("packed_sent", c->packed_sent);
	C("packed_received", c->packed_recv);
#undef C
}

bool
link_connected(struct link *l, uint64_t id)
{
	struct peer *p;
	bool         up;

	pthread_mutex_lock(&l->mu);
	p = peer_find(l, id);
	up = p != NULL && atomic_load(&p->pipes) > 0;
	pthread_mutex_unlock(&l->mu);
	return up;
}

void
link_stats_json(struct link *l, json_t *peers)
{
	char id[24];
	json_t *o;
	size_t i;

	pthread_mutex_lock(&l->mu);
	for (i = 0; i < l->npeers; i++) {
		struct peer *p = l->peers[i];

		snprintf(id, sizeof(id), "%llu", (unsigned long long)p->id);
		if (!(o = json_object_get(peers, id))) {
			o = json_object();
			json_object_set_new(peers, id, o);
		}
		if (!o)
			continue;
		counters_json(&p->c, o);
		json_object_set_new(o, "connected", json_boolean(atomic_load(&p->pipes) > 0));
		json_object_set_new(o, "bytes_in_flight", json_integer((json_int_t)p->inflight));
		json_object_set_new(o, "rtt_us", json_integer((json_int_t)p->srtt_us));
	}
	pthread_mutex_unlock(&l->mu);
}

void
link_stats_other_json(struct link *l, json_t *obj)
{
	pthread_mutex_lock(&l->mu);
	counters_json(&l->other, obj);
	json_object_set_new(obj, "unknown_sender",
	    json_integer((json_int_t)l->other.unknown_sender));
	json_object_set_new(obj, "buffered_bytes", json_integer((json_int_t)l->budget_used));
	pthread_mutex_unlock(&l->mu);
}

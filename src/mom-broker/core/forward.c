/*
 * forward.c: a node that does not lead forwards its clients' requests to
 * the leader over the cluster links and hands back the leader's reply, so
 * that clients never need to know who leads (SPEC "Cluster").
 *
 * Follower side: a request that needs the leader (publish, fetch, admin
 * other than status and stats) is sent to it as LINK_FWD with an id of
 * this node's, the connection it came on and the claims its token
 * carried (checked here: every node has the same --auth-key); the
 * request waits in a table until LINK_FWD_REPLY with that id comes back,
 * whose frame goes to the client as it is.  The links are lossy (bus0
 * drops when a queue is full), so a forward not answered within
 * FWD_RESEND_MS (a long poll: its wait on top) is sent again with the
 * same id, to whoever leads then, at most FWD_TRIES times; resending is
 * safe: a publish carries its producer id and sequence (stored once), a
 * fetch is at-least-once, acks are idempotent.  With no leader the
 * client hears "not the leader" and asks again (its -W).  A client that
 * goes away is answered at once and the leader told (LINK_FWD_CANCEL), so
 * that its long polls end there too.
 *
 * Leader side: a LINK_FWD becomes a request of the core as if a client
 * of its own had sent it, on a connection id made of the sending node's
 * id and its connection id; its reply goes back as LINK_FWD_REPLY.  A
 * resend of a request still in progress is dropped.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "core/core_int.h"
#include "log.h"
#include "mom.h"
#include "replica/link.h"
#include "replica/replica.h"
#include "token.h"
#include "wire.h"

#define FWD_VERSION   1
#define FWD_RESEND_MS 3000
#define FWD_TRIES     4
#define FWD_MAX       65536 /* forwards waiting on this node, at most */

/* A client's request waiting for the leader's reply (follower side). */
struct fwd_out {
	struct creq *cr;
	uint64_t     id, to, conn;
	int64_t      deadline, wait_ms;
	int          tries;
	struct mom_buf msg;  /* the LINK_FWD, for resending */
	TAILQ_ENTRY(fwd_out) link;
};

/* A forwarded request being served (leader side). */
struct fwd_in {
	struct core_req   req;   /* what the core serves */
	struct core      *c;
	struct mom_claims claims;
	uint64_t          from, id;
	uint8_t          *body;
};

/* A connection id of the leader's for a connection of node from. */
static uint64_t
fwd_conn(uint64_t from, uint64_t conn)
{
	return (uint64_t)3 << 62 | (from & 0xffff) << 44 | (conn >> 62) << 42 |
	    (conn & (((uint64_t)1 << 42) - 1));
}

static uint64_t
fwd_key(uint64_t from, uint64_t id)
{
	return from << 48 ^ id;
}

static void
put_claims(struct mom_buf *b, const struct mom_claims *cl)
{
	size_t i;

	if (cl == NULL) {
		mom_buf_put_u8(b, 0);
		return;
	}
	mom_buf_put_u8(b, 1);
	mom_buf_put_str(b, cl->sub);
	mom_buf_put_str(b, cl->jti);
	mom_buf_put_varint(b, (uint64_t)cl->iat);
	mom_buf_put_varint(b, (uint64_t)cl->nbf);
	mom_buf_put_varint(b, (uint64_t)cl->exp);
	mom_buf_put_varint(b, cl->npub);
	for (i = 0; i < cl->npub; i++)
		mom_buf_put_str(b, cl->pub[i]);
	mom_buf_put_varint(b, cl->nsubs);
	for (i = 0; i < cl->nsubs; i++)
		mom_buf_put_str(b, cl->subs[i]);
	mom_buf_put_u8(b, cl->admin);
}

/* A string of at most max bytes into a char array; false when malformed. */
static bool
rd_str(struct mom_rd *r, char *dst, size_t max)
{
	size_t         n;
	const uint8_t *p = mom_rd_bytes(r, &n);

	if (r->err || n >= max)
		return false;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return true;
}

static char **
rd_list(struct mom_rd *r, size_t *np)
{
	uint64_t n = mom_rd_varint_max(r, 1024), i;
	char   **v;

	*np = 0;
	if (r->err || (v = calloc(n + 1, sizeof(*v))) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t         len;
		const uint8_t *p = mom_rd_bytes(r, &len);

		if (r->err || (v[i] = malloc(len + 1)) == NULL)
			break;
		memcpy(v[i], p, len);
		v[i][len] = '\0';
		(*np)++;
	}
	return v;
}

/* The claims of a LINK_FWD; 0 (none: *has false), or -1 when malformed. */
static int
get_claims(struct mom_rd *r, struct mom_claims *cl, bool *has)
{
	memset(cl, 0, sizeof(*cl));
	*has = mom_rd_u8(r) == 1;
	if (!*has)
		return r->err ? -1 : 0;
	if (!rd_str(r, cl->sub, sizeof(cl->sub)) || !rd_str(r, cl->jti, sizeof(cl->jti)))
		return -1;
	cl->iat = (int64_t)mom_rd_varint(r);
	cl->nbf = (int64_t)mom_rd_varint(r);
	cl->exp = (int64_t)mom_rd_varint(r);
	cl->pub = rd_list(r, &cl->npub);
	cl->subs = rd_list(r, &cl->nsubs);
	cl->admin = mom_rd_u8(r) != 0;
	return r->err ? -1 : 0;
}

/* Follower side. */

static void
out_free(struct core *c, struct fwd_out *fo)
{
	TAILQ_REMOVE(&c->fwd_outs, fo, link);
	umap_del(&c->fwd_ids, fo->id);
	mom_buf_fini(&fo->msg);
	free(fo);
}

/* The wait of a fetch (a long poll), so that its forward is not resent early. */
static int64_t
fetch_wait(const struct core_req *req)
{
	struct mom_rd    r;
	struct mom_fetch f;

	if (req->op != MOM_OP_FETCH)
		return 0;
	mom_rd_init(&r, req->body, req->len);
	if (mom_fetch_decode_head(&r, &f) != 0)
		return 0;
	return (int64_t)f.wait_ms;
}

static void
out_send(struct core *c, struct fwd_out *fo, uint64_t to, int64_t now)
{
	fo->to = to;
	fo->tries++;
	fo->deadline = now + FWD_RESEND_MS + fo->wait_ms;
	if (replica_send(c->rep, to, LINK_FWD, fo->msg.data, fo->msg.len) != 0)
		fo->deadline = now + 200; /* no room in the link now: soon again */
	if (fo->deadline < c->fwd_due)
		c->fwd_due = fo->deadline;
	c->fwd_sent++;
}

void
forward_request(struct core *c, struct creq *cr, int64_t now)
{
	const struct core_req *req = cr->req;
	struct fwd_out        *fo;
	uint64_t               leader = replica_leader(c->rep, NULL);

	if (leader == 0 || leader == c->cfg.node_id) {
		core_not_leader(c, cr);
		return;
	}
	/*
	 * The connection to the leader dropped (its process or machine died,
	 * most likely): nothing sent now would reach it.  The client hears so
	 * at once and asks again, elsewhere, rather than wait for an answer
	 * that comes only after the election and a resend.
	 */
	if (!replica_link_up(c->rep, leader)) {
		creq_error(c, cr, MOM_ENOTLEADER, "node %" PRIu64 " cannot reach the leader, "
		    "node %" PRIu64 ": it may have stopped, and an election follow",
		    c->cfg.node_id, leader);
		return;
	}
	if (c->fwd_n >= FWD_MAX || (fo = calloc(1, sizeof(*fo))) == NULL) {
		creq_error(c, cr, MOM_EBUSY, "too many requests waiting for the leader");
		return;
	}
	fo->cr = cr;
	fo->id = ++c->fwd_next;
	fo->conn = req->conn;
	fo->wait_ms = fetch_wait(req);
	mom_buf_init(&fo->msg);
	mom_buf_put_u8(&fo->msg, FWD_VERSION);
	mom_buf_put_varint(&fo->msg, fo->id);
	mom_buf_put_varint(&fo->msg, req->conn);
	mom_buf_put_u8(&fo->msg, req->op);
	put_claims(&fo->msg, req->claims);
	mom_buf_put_bytes(&fo->msg, req->body, req->len);
	if (fo->msg.err || umap_put(&c->fwd_ids, fo->id, fo) != 0) {
		mom_buf_fini(&fo->msg);
		free(fo);
		creq_error(c, cr, MOM_ENOMEM, "out of memory");
		return;
	}
	TAILQ_INSERT_TAIL(&c->fwd_outs, fo, link);
	c->fwd_n++;
	out_send(c, fo, leader, now);
}

/* The leader's reply to a forward of ours. */
static void
got_reply(struct core *c, uint64_t from, const uint8_t *p, size_t n)
{
	struct mom_rd   r;
	struct fwd_out *fo;
	const uint8_t  *frame;
	size_t          len;
	uint64_t        id;
	struct mom_buf  b;

	mom_rd_init(&r, p, n);
	if (mom_rd_u8(&r) != FWD_VERSION)
		return;
	id = mom_rd_varint(&r);
	frame = mom_rd_bytes(&r, &len);
	if (r.err || (fo = umap_get(&c->fwd_ids, id)) == NULL || fo->to != from)
		return; /* answered already (a resend's second reply), or not ours */
	mom_buf_init(&b);
	mom_buf_put(&b, frame, len);
	creq_reply(c, fo->cr, &b);
	mom_buf_fini(&b);
	c->fwd_n--;
	out_free(c, fo);
}

/* A client went away: its forwards are answered (to nobody) and the leader told. */
void
forward_conn_closed(struct core *c, uint64_t conn)
{
	struct fwd_out *fo, *next;
	struct mom_buf  b;
	uint64_t        told = 0;

	for (fo = TAILQ_FIRST(&c->fwd_outs); fo != NULL; fo = next) {
		next = TAILQ_NEXT(fo, link);
		if (fo->conn != conn)
			continue;
		if (fo->to != told) {
			mom_buf_init(&b);
			mom_buf_put_u8(&b, FWD_VERSION);
			mom_buf_put_varint(&b, conn);
			(void)replica_send(c->rep, fo->to, LINK_FWD_CANCEL, b.data, b.len);
			mom_buf_fini(&b);
			told = fo->to;
		}
		creq_error(c, fo->cr, MOM_ECLOSED, "the client went away");
		c->fwd_n--;
		out_free(c, fo);
	}
}

/*
 * Forwards not answered in time go again, to whoever leads now; a new
 * leader gets them at once.  The next deadline lowers *next.
 */
void
forward_tick(struct core *c, int64_t now, int64_t *next)
{
	struct fwd_out *fo, *nx;
	uint64_t        leader = replica_leader(c->rep, NULL);
	bool            moved;

	/* Nothing due and the same leader: no walk over every waiting forward. */
	if (now < c->fwd_due && leader == c->fwd_leader) {
		if (c->fwd_due < *next)
			*next = c->fwd_due;
		return;
	}
	c->fwd_leader = leader;
	c->fwd_due = INT64_MAX;
	for (fo = TAILQ_FIRST(&c->fwd_outs); fo != NULL; fo = nx) {
		nx = TAILQ_NEXT(fo, link);
		moved = leader != 0 && leader != fo->to && leader != c->cfg.node_id;
		if (!moved && now < fo->deadline) {
			if (fo->deadline < c->fwd_due)
				c->fwd_due = fo->deadline;
			continue;
		}
		if (fo->tries >= FWD_TRIES || leader == c->cfg.node_id || leader == 0) {
			if (leader == c->cfg.node_id)
				creq_error(c, fo->cr, MOM_ENOTLEADER, "the leader changed while "
				    "this request was forwarded: send it again");
			else
				creq_error(c, fo->cr, MOM_ENOTLEADER, "node %" PRIu64 " forwarded "
				    "this request to the leader, which did not answer", c->cfg.node_id);
			c->fwd_n--;
			out_free(c, fo);
			continue;
		}
		out_send(c, fo, leader, now);
		c->fwd_resent++;
	}
	if (c->fwd_due < *next)
		*next = c->fwd_due;
}

/* Leader side. */

static void
in_free(struct fwd_in *fi)
{
	mom_claims_free(&fi->claims);
	free(fi->body);
	free(fi);
}

/* The core's reply to a forwarded request: back to the node that forwarded it. */
static void
in_reply(struct core_req *req, const uint8_t *frame, size_t len)
{
	struct fwd_in *fi = req->arg;
	struct core   *c = fi->c;
	struct mom_buf b;

	umap_del(&c->fwd_ins, fwd_key(fi->from, fi->id));
	mom_buf_init(&b);
	mom_buf_put_u8(&b, FWD_VERSION);
	mom_buf_put_varint(&b, fi->id);
	mom_buf_put_bytes(&b, frame, frame != NULL ? len : 0);
	/* No replica: stopping; the forwarding node hears the link go and answers itself. */
	if (!b.err && frame != NULL && c->rep != NULL)
		(void)replica_send(c->rep, fi->from, LINK_FWD_REPLY, b.data, b.len);
	mom_buf_fini(&b);
	in_free(fi);
}

static void
got_request(struct core *c, uint64_t from, const uint8_t *p, size_t n, int64_t now)
{
	struct mom_rd  r;
	struct fwd_in *fi;
	struct creq   *cr;
	const uint8_t *body;
	size_t         len;
	uint64_t       id, conn;
	uint8_t        op;
	bool           has;

	mom_rd_init(&r, p, n);
	if (mom_rd_u8(&r) != FWD_VERSION)
		return;
	id = mom_rd_varint(&r);
	conn = mom_rd_varint(&r);
	op = mom_rd_u8(&r);
	if (r.err || umap_get(&c->fwd_ins, fwd_key(from, id)) != NULL)
		return; /* a resend of one in progress */
	if ((fi = calloc(1, sizeof(*fi))) == NULL)
		return;
	if (get_claims(&r, &fi->claims, &has) != 0 || (body = mom_rd_bytes(&r, &len),
	    r.err) || (fi->body = malloc(len ? len : 1)) == NULL) {
		log_debug("a malformed forward from node %" PRIu64, from);
		in_free(fi);
		return;
	}
	memcpy(fi->body, body, len);
	fi->c = c;
	fi->from = from;
	fi->id = id;
	fi->req.op = op;
	fi->req.body = fi->body;
	fi->req.len = len;
	fi->req.claims = has ? &fi->claims : NULL;
	fi->req.conn = fwd_conn(from, conn);
	fi->req.reply = in_reply;
	fi->req.arg = fi;
	if (umap_put(&c->fwd_ins, fwd_key(from, id), fi) != 0 ||
	    (cr = creq_get(c, &fi->req)) == NULL) {
		umap_del(&c->fwd_ins, fwd_key(from, id));
		in_free(fi);
		return;
	}
	c->fwd_served++;
	core_handle(c, cr, now);
}

static void
got_cancel(struct core *c, uint64_t from, const uint8_t *p, size_t n, int64_t now)
{
	struct mom_rd r;
	uint64_t      conn;

	mom_rd_init(&r, p, n);
	if (mom_rd_u8(&r) != FWD_VERSION)
		return;
	conn = mom_rd_varint(&r);
	if (!r.err)
		fetch_conn_closed(c, fwd_conn(from, conn), now);
}

/* replica_config.deliver: what the links brought that is not raft's. */
void
forward_deliver(void *arg, uint64_t from, uint8_t kind, const uint8_t *p, size_t n)
{
	struct core *c = arg;
	int64_t      now = core_now(c);

	switch (kind) {
	case LINK_FWD:
		got_request(c, from, p, n, now);
		break;
	case LINK_FWD_REPLY:
		got_reply(c, from, p, n);
		break;
	case LINK_FWD_CANCEL:
		got_cancel(c, from, p, n, now);
		break;
	default:
		log_debug("a message of unknown kind %u from node %" PRIu64, kind, from);
	}
}

/* At stop: every forward waiting is answered. */
void
forward_release_all(struct core *c)
{
	struct fwd_out *fo;

	while ((fo = TAILQ_FIRST(&c->fwd_outs)) != NULL) {
		creq_error(c, fo->cr, MOM_ECLOSED, "shutting down");
		c->fwd_n--;
		out_free(c, fo);
	}
}

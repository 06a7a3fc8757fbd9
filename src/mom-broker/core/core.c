/*
 * core.c: the core thread (see core.h): its input queue, its loop, the
 * dispatch of each request and the timers.
 *
 * The loop takes every queued request at once and handles them in order,
 * then serves long polls whose queues got messages and runs the timers.
 * Reads are answered at once.  A state change is encoded as a command
 * and handed to the replica (replica/replica.h), which proposes every
 * command of the turn as one log entry and gives each result back once
 * it is on disk and applied: a reply is sent only then.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core_int.h"
#include "log.h"
#include "mom.h"
#include "names.h"
#include "token.h"
#include "wire.h"

/* Requests and replies. */

void
core_set_connections(struct core *c, int (*fn)(void *), void *arg)
{
	c->connections = fn;
	c->connections_arg = arg;
}

void
core_reply_error(struct core_req *req, int err, const char *msg)
{
	struct mom_buf b;

	mom_buf_init(&b);
	mom_wire_error(&b, req->op, err, msg);
	req->reply(req, b.err ? NULL : b.data, b.err ? 0 : b.len);
	mom_buf_fini(&b);
}

void
core_submit(struct core *c, struct core_req *req)
{
	pthread_mutex_lock(&c->mu);
	if (c->stop || c->qlen >= c->cfg.queue_max) {
		bool stopping = c->stop;

		c->busy_replies++;
		pthread_mutex_unlock(&c->mu);
		core_reply_error(req, stopping ? MOM_ECLOSED : MOM_EBUSY,
		    stopping ? "broker shutting down" : "broker busy, retry");
		return;
	}
	req->qnext = NULL;
	req->cr = NULL;
	if (c->qtail)
		c->qtail->qnext = req;
	else
		c->qhead = req;
	c->qtail = req;
	/* Only the first request of a batch needs to wake the core. */
	if (c->qlen++ == 0)
		pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

void
core_conn_closed(struct core *c, uint64_t conn)
{
	pthread_mutex_lock(&c->mu);
	if (conn != 0 && !c->stop) {
		if (c->nclosed == c->closed_cap) {
			size_t    cap = c->closed_cap ? c->closed_cap * 2 : 16;
			uint64_t *n = realloc(c->closed, cap * sizeof(*n));

			if (n == NULL) {
				/* The polls end at their deadline instead. */
				pthread_mutex_unlock(&c->mu);
				return;
			}
			c->closed = n;
			c->closed_cap = cap;
		}
		c->closed[c->nclosed++] = conn;
		pthread_cond_signal(&c->cv);
	}
	pthread_mutex_unlock(&c->mu);
}

/*
 * The connections that closed, after this turn's requests: a poll that
 * came in the same turn as its connection's end is parked first, then
 * dropped.  conns were taken with the turn's requests (wait_turn): a
 * front end tells of a close only after it submitted that connection's
 * request, so the request is in this turn or an earlier one.  Taken
 * later, a close that came while this turn ran would be handled before
 * its request, which then parked and waited out its time.
 */
static void
closed_conns(struct core *c, uint64_t *conns, size_t n, int64_t now)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fetch_conn_closed(c, conns[i], now);
		forward_conn_closed(c, conns[i]);
		admin_conn_closed(c, conns[i]);
	}
	free(conns);
}

struct creq *
creq_get(struct core *c, struct core_req *req)
{
	struct creq *cr = c->free;

	if (cr != NULL)
		c->free = cr->free_next;
	else if ((cr = malloc(sizeof(*cr))) == NULL)
		return NULL;
	memset(cr, 0, sizeof(*cr));
	cr->req = req;
	req->cr = cr;
	return cr;
}

/* Sends a reply frame and recycles cr: the request is answered. */
void
creq_reply(struct core *c, struct creq *cr, const struct mom_buf *b)
{
	struct core_req *req = cr->req;

	req->cr = NULL;
	free(cr->w.stale);
	cr->w.stale = NULL;
	cr->free_next = c->free;
	c->free = cr;
	req->reply(req, b->err ? NULL : b->data, b->err ? 0 : b->len);
}

void
creq_error(struct core *c, struct creq *cr, int err, const char *fmt, ...)
{
	char    msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mom_buf_reset(&c->reply);
	mom_wire_error(&c->reply, cr->req->op, err, msg);
	creq_reply(c, cr, &c->reply);
}

void
creq_json(struct core *c, struct creq *cr, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_ADMIN, true, 0);
	mom_buf_put_str(&c->reply, s ? s : "{}");
	free(s);
	creq_reply(c, cr, &c->reply);
}

void
core_set_owner(const struct creq *cr, json_t *o)
{
	json_object_del(o, "owner");
	if (cr != NULL && cr->req->claims != NULL)
		json_object_set_new(o, "owner", json_string(cr->req->claims->sub));
}

/* Commands. */

int
core_propose(struct core *c, struct creq *cr, int want)
{
	struct replica_waiter w = { cr, want };

	/* On a full disk, what adds data waits for room; the rest drains it. */
	if (cr != NULL && replica_full(c->rep) && fsm_cmd_grows(c->cmd.data, c->cmd.len))
		return MOM_EFULL;
	return replica_add(c->rep, c->cmd.data, c->cmd.len, &w);
}

void
core_refuse(struct core *c, struct creq *cr, int rv)
{
	if (rv == MOM_EFULL)
		creq_error(c, cr, MOM_EFULL, "not stored: the broker's disk is full");
	else
		creq_error(c, cr, MOM_ENOMEM, "out of memory");
}

int
core_admin_cmd(struct core *c, json_t *o, int64_t now, struct creq *cr, int want)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s == NULL)
		return MOM_ENOMEM;
	mom_buf_reset(&c->cmd);
	fsm_cmd_encode(&c->cmd, CMD_ADMIN, now, s, strlen(s));
	free(s);
	return core_propose(c, cr, want);
}

/* A command's result reaches whoever waits for it (replica callback). */
static void
core_result(void *arg, const struct replica_waiter *w, struct fsm_result *res)
{
	struct core *c = arg;
	struct creq *cr = w->who;

	switch (w->want) {
	case W_PUBLISH:
		publish_reply(c, cr, res);
		return;
	case W_SETTLE:
		fetch_settle_done(c, (uintptr_t)w->who, res->status, res->err);
		return;
	case W_ADMIN:
		if (res->status != 0)
			creq_error(c, cr, res->status, "%s", res->err);
		else if (res->json == NULL) {
			json_t *e = json_object();

			creq_json(c, cr, e);
			json_decref(e);
		} else
			creq_json(c, cr, res->json);
		return;
	case W_FETCH:
		if (res->status != 0 && res->status != MOM_EEXIST) {
			creq_error(c, cr, res->status, "%s", res->err);
			return;
		}
		cr->resumed = true;
		core_handle(c, cr, core_now(c));
		return;
	case W_TICK:
		c->tick_inflight = false;
		break;
	}
	if (res->status != 0)
		log_debug("command refused: %s", res->err);
}

/* A command will never be applied (replica callback). */
static void
core_failed(void *arg, const struct replica_waiter *w, int err, const char *msg)
{
	struct core *c = arg;

	if (w->want == W_TICK)
		c->tick_inflight = false;
	if (w->want == W_SETTLE)
		fetch_settle_done(c, (uintptr_t)w->who, err, msg);
	else if (w->who != NULL)
		creq_error(c, w->who, err, "%s", msg);
}

/*
 * A queue's message goes to its dead-letter queue: the settlement carries
 * why, as headers, since only this node knows (the lease's deliveries, the
 * consumer's exit status).  A message past its TTL goes there too when the
 * queue has a dead-letter queue.  False: an ordinary settlement.
 */
static bool
settle_dead(struct core *c, const struct queue *q, uint64_t seq, int how)
{
	static const char *const reasons[] = { "unknown", "max-deliveries", "rejected",
		"expired" };
	struct mq_why_info wi;
	char               l[4][MOM_NAME_MAX + 32];
	const char        *lines[4];
	size_t             n = 0, i;
	struct mom_buf     h;

	if (how == MQ_EXPIRE && (q->dead_letter == NULL ||
	    fsm_queue(c->fsm, q->dead_letter, strlen(q->dead_letter)) == NULL))
		return false;
	if ((how != MQ_DEAD && how != MQ_EXPIRE) || !mq_settling_why(&q->mq, seq, &wi))
		return false;
	snprintf(l[n++], sizeof(l[0]), "%s: %s", FSM_HDR_DEAD_QUEUE, q->name);
	snprintf(l[n++], sizeof(l[0]), "%s: %s", FSM_HDR_DEAD_REASON,
	    reasons[wi.why >= 0 && wi.why <= MQ_WHY_EXPIRED ? wi.why : 0]);
	snprintf(l[n++], sizeof(l[0]), "%s: %" PRIu32, FSM_HDR_DEAD_DELIVERY, wi.deliveries);
	if (wi.status >= 0)
		snprintf(l[n++], sizeof(l[0]), "%s: %d", FSM_HDR_DEAD_EXIT, wi.status);
	for (i = 0; i < n; i++)
		lines[i] = l[i];
	mom_buf_init(&h);
	if (mom_hdr_build(&h, lines, n) == 0 && !h.err)
		fsm_settle_put_dead(&c->settles, q, seq, h.data, h.len);
	else
		fsm_settle_put(&c->settles, q, NULL, seq, how);
	mom_buf_fini(&h);
	return true;
}

/* A message should leave an mq: the settlement joins this turn's CMD_SETTLE. */
static void
core_settle(void *arg, const struct queue *q, const struct sub *s, uint64_t seq, int how)
{
	struct core *c = arg;

	/*
	 * While the log is replayed at start the leader's own settlements
	 * follow in the log; a settling lease asked for here is asked again
	 * after its ack wait.
	 */
	if (!c->ready || !replica_is_leader(c->rep))
		return;
	if (q == NULL || !settle_dead(c, q, seq, how))
		fsm_settle_put(&c->settles, q, s, seq, how);
	c->nsettles++;
}

/*
 * This turn's settlements as one CMD_SETTLE command, of generation
 * c->settle_gen: the fetches that made them wait for its result
 * (fetch_settle_done).  A settlement of no fetch (an ack wait that
 * passed, a TTL) has nobody waiting, and the generation goes by all the
 * same.
 */
static void
settles_flush(struct core *c, int64_t now)
{
	struct replica_waiter w = { (void *)(uintptr_t)c->settle_gen, W_SETTLE };
	struct mom_buf        e;

	if (c->nsettles == 0)
		return;
	mom_buf_init(&e);
	mom_buf_put_varint(&e, c->nsettles);
	mom_buf_put(&e, c->settles.data, c->settles.len);
	mom_buf_reset(&c->cmd);
	fsm_cmd_encode(&c->cmd, CMD_SETTLE, now, e.data, e.len);
	mom_buf_fini(&e);
	if (replica_add(c->rep, c->cmd.data, c->cmd.len, &w) != 0)
		return; /* the settling leases ask again later, their fetches wait */
	mom_buf_reset(&c->settles);
	c->nsettles = 0;
	c->settle_gen++;
}

/* Serves the long polls of every mq that got messages. */
static void
serve_touched(struct core *c, int64_t now)
{
	struct mq *q;

	while ((q = fsm_touched_pop(c->fsm)) != NULL)
		fetch_serve_waiters(c, q, now);
}

/*
 * Proposes what this turn built and drives the replica until nothing is
 * due now: with --fsync always, one step syncs every append of the turn
 * and applies them (the replies go out from core_result).  Applying may
 * build more commands (a receive that needed its subscription, acks): a
 * few rounds, bounded.
 */
static void
pump(struct core *c)
{
	const char *why;
	int         i;

	for (i = 0; i < 16; i++) {
		settles_flush(c, core_now(c));
		replica_flush(c->rep);
		if (replica_drive(c->rep, &why) != 0) {
			/*
			 * A failed fsync (what reached the disk is unknown), a
			 * broken invariant, or libraft gone unavailable.
			 * Nothing unconfirmed was confirmed; exit so that a
			 * restart recovers from what the disk holds (the
			 * PostgreSQL rule after fsyncgate).
			 */
			log_warnx("stopping: %s; a restart recovers what was confirmed", why);
			_exit(MOM_EXIT_FAIL);
		}
		serve_touched(c, core_now(c));
		if (replica_pending(c->rep) == 0 && c->nsettles == 0)
			break;
	}
	replica_trim(c->rep);
}

/* Dispatch. */

static void
do_ping(struct core *c, struct creq *cr, int64_t now)
{
	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_PING, true, 0);
	mom_buf_put_str(&c->reply, MOM_VERSION);
	mom_buf_put_varint(&c->reply, c->cfg.max_payload);
	mom_buf_put_varint(&c->reply, (uint64_t)(now - c->started));
	creq_reply(c, cr, &c->reply);
}

/* A node that does not lead: where the leader is, for the client to go there. */
void
core_not_leader(struct core *c, struct creq *cr)
{
	const char *url = NULL;
	uint64_t    id = replica_leader(c->rep, &url), conf, by = replica_removed_by(c->rep, &conf);

	if (by != 0)
		creq_error(c, cr, MOM_ENOTLEADER, "node %" PRIu64 " is not in the cluster: node %"
		    PRIu64 " says it was removed (configuration %" PRIu64 "); ask another node",
		    c->cfg.node_id, by, conf);
	else if (id == 0 || id == c->cfg.node_id)
		creq_error(c, cr, MOM_ENOTLEADER, "node %" PRIu64 " does not lead and knows no "
		    "leader: the cluster is electing one, or has lost its majority",
		    c->cfg.node_id);
	else
		creq_error(c, cr, MOM_ENOTLEADER, "node %" PRIu64 " does not lead: node %" PRIu64
		    " (%s) does", c->cfg.node_id, id, url != NULL ? url : "?");
}

void
core_elsewhere(struct core *c, struct creq *cr, int64_t now)
{
	uint64_t conf;

	/* A removed node (and one told so) serves nothing, not even as a relay. */
	if (c->cfg.node_id == 0 || CORE_CONN_FORWARDED(cr->req->conn) ||
	    replica_removed_by(c->rep, &conf) != 0)
		core_not_leader(c, cr);
	else
		forward_request(c, cr, now);
}

void
core_handle(struct core *c, struct creq *cr, int64_t now)
{
	const struct core_req *req = cr->req;

	c->requests++;
	if ((req->op == MOM_OP_PUBLISH || req->op == MOM_OP_FETCH) &&
	    !replica_is_leader(c->rep)) {
		core_elsewhere(c, cr, now);
		return;
	}
	switch (req->op) {
	case MOM_OP_PING:
		do_ping(c, cr, now);
		break;
	case MOM_OP_PUBLISH:
		publish_handle(c, cr, req->body, req->len, now);
		break;
	case MOM_OP_FETCH:
		fetch_handle(c, cr, req->body, req->len, now);
		break;
	case MOM_OP_ADMIN:
		admin_handle(c, cr, req->body, req->len, now);
		break;
	default:
		creq_error(c, cr, MOM_EPROTO, "unknown request");
	}
}

/* Idle ephemeral subscriptions: their consumer is gone. */
static void
drop_idle_subs(struct core *c, int64_t now)
{
	size_t      it;
	struct sub *s;

	for (it = 0; (s = fsm_sub_next(c->fsm, &it)) != NULL;) {
		if (s->durable || now - s->last_seen < EPHEMERAL_IDLE_MS)
			continue;
		log_debug("dropping idle ephemeral subscription %s on %s", s->name, s->pattern);
		s->last_seen = now; /* asked once; again only if this one fails */
		(void)core_admin_cmd(c, json_pack("{s:s, s:s, s:s}", "op", "sub.delete",
		    "pattern", s->pattern, "name", s->name), now, NULL, W_NONE);
	}
}

/*
 * Queues with an idle expiry that nobody fetched from for that long (a
 * reply queue whose requester died) are deleted through the log, like
 * any delete.  A parked long poll is use.  The clock is the core's own:
 * after a restart every queue has its whole expiry again.
 */
static void
expire_idle_queues(struct core *c, int64_t now)
{
	size_t        it;
	struct queue *q;

	for (it = 0; (q = fsm_queue_next(c->fsm, &it)) != NULL;) {
		if (q->idle_expire_ms == 0)
			continue;
		if (fetch_has_waiters(c, &q->mq))
			q->last_used = now;
		if (q->last_used > now || (uint64_t)(now - q->last_used) < q->idle_expire_ms)
			continue;
		log_debug("deleting queue %s: unused for %" PRIu64 " ms", q->name,
		    (uint64_t)(now - q->last_used));
		q->last_used = now; /* asked once; again only if this one fails */
		(void)core_admin_cmd(c, json_pack("{s:s, s:s, s:b}", "op", "queue.delete",
		    "name", q->name, "idle_expired", 1), now, NULL, W_NONE);
	}
}

/* Timers: leases, delays, retention, long-poll deadlines, idle subs and queues. */
static int64_t
tick(struct core *c, int64_t now)
{
	int64_t       next = now + TICK_MAX_MS, t;
	size_t        it;
	struct queue *q;
	struct sub   *s;

	/* Retention and the de-duplication window expire through the log. */
	if (!c->tick_inflight && fsm_due(c->fsm, now)) {
		mom_buf_reset(&c->cmd);
		fsm_cmd_encode(&c->cmd, CMD_TICK, now, NULL, 0);
		if (core_propose(c, NULL, W_TICK) == 0)
			c->tick_inflight = true;
	}
	publish_tick(c, now, &next);
	for (it = 0; (q = fsm_queue_next(c->fsm, &it)) != NULL;) {
		if ((t = mq_tick(&q->mq, now)) < next)
			next = t;
		fetch_serve_waiters(c, &q->mq, now);
	}
	for (it = 0; (s = fsm_sub_next(c->fsm, &it)) != NULL;) {
		if ((t = mq_tick(&s->mq, now)) < next)
			next = t;
		fetch_serve_waiters(c, &s->mq, now);
		if (fetch_has_waiters(c, &s->mq))
			s->last_seen = now;
	}
	drop_idle_subs(c, now);
	expire_idle_queues(c, now);
	fetch_tick(c, now, &next);
	return next;
}

/* The loop. */

/* rio's sync thread: a sync finished, the replica has work. */
static void
core_wake(void *arg)
{
	struct core *c = arg;

	pthread_mutex_lock(&c->mu);
	c->io_wake = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/*
 * The broker's time never goes back: when the last applied command was
 * stamped later than this node's clock says (a leader or a restart whose
 * clock is behind), the core's clock continues from that stamp.
 */
static void
core_clock_follow(struct core *c)
{
	int64_t local = core_now(c) - c->clock_offset, off;

	off = c->fsm->last_time > local ? c->fsm->last_time - local : 0;
	if (off == c->clock_offset)
		return;
	if (off > 1000)
		log_warnx("this machine's clock is %lld ms behind the time of the last "
		    "command applied: the broker's clock continues from that time",
		    (long long)off);
	c->started += off - c->clock_offset;
	c->clock_offset = off;
}

/*
 * Cluster mode: this node began or stopped leading.  Leases and long
 * polls are the leader's alone: a node that steps down gives back what it
 * leased (the next leader delivers it again) and answers its long polls
 * at once, so that their clients ask again, elsewhere.  A new leader's
 * idle clocks start now: it did not see who fetched while it followed,
 * and its clock continues the cluster's (core_clock_follow).
 */
static void
core_role(void *arg, bool leading)
{
	struct core  *c = arg;
	int64_t       now;
	struct queue *q;
	struct sub   *s;
	size_t        it;

	if (leading)
		core_clock_follow(c);
	now = core_now(c);
	if (!leading) {
		fetch_release_all(c, now);
		fsm_release_all(c->fsm);
		mom_buf_reset(&c->settles);
		c->nsettles = 0;
		fetch_settle_drop(c, MOM_ENOTLEADER, "not stored: this node no longer leads");
		c->tick_inflight = false;
		return;
	}
	for (it = 0; (q = fsm_queue_next(c->fsm, &it)) != NULL;)
		q->last_used = now;
	for (it = 0; (s = fsm_sub_next(c->fsm, &it)) != NULL;)
		s->last_seen = now;
}

static int
replica_open(struct core *c)
{
	struct replica_config rc;
	struct queue         *q;
	size_t                it;
	int64_t               now;

	memset(&rc, 0, sizeof(rc));
	rc.dir = c->cfg.dir;
	rc.fsync = c->cfg.fsync;
	rc.fsync_interval_ms = c->cfg.fsync_interval_ms;
	rc.snapshot_bytes = c->cfg.snapshot_bytes;
	rc.reserve = c->cfg.reserve;
	rc.node_id = c->cfg.node_id;
	rc.election_timeout_ms = c->cfg.election_timeout_ms;
	rc.cluster_url = c->cfg.cluster_url;
	rc.peers = c->cfg.peers;
	rc.npeers = c->cfg.npeers;
	rc.key = c->cfg.key;
	rc.keylen = c->cfg.keylen;
	rc.bootstrap = c->cfg.bootstrap;
	rc.role = core_role;
	rc.deliver = forward_deliver;
	rc.wake = core_wake;
	rc.result = core_result;
	rc.fail = core_failed;
	rc.arg = c;
	if ((c->start_code = replica_start(&c->rep, c->fsm, &rc, c->start_msg,
	    sizeof(c->start_msg))) != 0)
		return -1;
	core_clock_follow(c);
	/* Nobody could fetch while the broker was down: idle expiry starts now. */
	now = core_now(c);
	for (it = 0; (q = fsm_queue_next(c->fsm, &it)) != NULL;)
		q->last_used = now;
	c->ready = true;
	return 0;
}

/* Waits for requests, a sync or the next timer; takes the queued requests. */
static struct core_req *
wait_turn(struct core *c, int64_t wake, bool *stop, uint64_t **closed, size_t *nclosed)
{
	struct core_req *batch;
	struct timespec  ts;

	pthread_mutex_lock(&c->mu);
	while (c->qhead == NULL && !c->stop && !c->io_wake && c->nclosed == 0) {
		int64_t wait = wake - core_now(c);

		if (wait <= 0)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	batch = c->qhead;
	c->qhead = c->qtail = NULL;
	c->qlen = 0;
	*closed = c->closed;
	*nclosed = c->nclosed;
	c->closed = NULL;
	c->nclosed = c->closed_cap = 0;
	*stop = c->stop;
	c->io_wake = false;
	pthread_mutex_unlock(&c->mu);
	return batch;
}

/*
 * At stop: what waits for an earlier batch is applied, and what was
 * proposed is finished (confirmed or refused) before the log closes,
 * with the settlements and fetches that applying brings (for at most
 * STOP_DRAIN_MS).
 */
static void
core_drain(struct core *c)
{
	int64_t deadline = core_now(c) + STOP_DRAIN_MS, w;

	publish_drain_all(c, core_now(c));
	pump(c);
	while (replica_inflight(c->rep) && core_now(c) < deadline) {
		if ((w = replica_poll(c->rep)) != 0)
			usleep(w < 0 || w > 10 ? 1000 : (useconds_t)w * 1000);
		pump(c);
	}
}

/*
 * One turn of the loop that lasts CORE_STALL_MS: every client of this
 * node waits meanwhile, and in a cluster the others stop hearing it.
 * Said, with the core thread's stack (watchdog.h), and said again when
 * the turn ends.
 */
#define CORE_STALL_MS 1000

static void
stall_report(void *arg, int64_t ms, bool over)
{
	(void)arg;
	if (over)
		log_warnx("the core thread turned again after about %lld ms", (long long)ms);
	else
		log_warnx("the core thread has been in one turn for %lld ms: clients and the "
		    "cluster wait; its stack follows (addr2line -e mom-broker resolves +0x "
		    "offsets)", (long long)ms);
}

static void *
core_main(void *arg)
{
	struct core *c = arg;
	int64_t      next_tick = core_now(c);
	int          rv;

	rv = replica_open(c);
	pthread_mutex_lock(&c->mu);
	c->started_up = true;
	c->start_ok = rv == 0;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (rv != 0)
		return NULL;
	c->started = core_now(c);
	if (watchdog_start(&c->wd, CORE_STALL_MS, STDERR_FILENO, stall_report, c) != 0)
		log_warn("the core thread's watchdog");
	for (;;) {
		struct core_req *batch, *req, *next;
		int64_t          now, wake = next_tick, w;
		uint64_t        *closed;
		size_t           nclosed;
		bool             stop;

		if ((w = replica_poll(c->rep)) >= 0 && core_now(c) + w < wake)
			wake = core_now(c) + w;
		watchdog_idle(&c->wd);
		batch = wait_turn(c, wake, &stop, &closed, &nclosed);
		watchdog_busy(&c->wd, mom_mono_ms());
		now = core_now(c);
#ifdef MOM_FAULT_INJECTION
		if (c->stall_ms > 0 && c->ready) {
			int64_t end = mom_mono_ms() + c->stall_ms;

			c->stall_ms = 0;
			while (mom_mono_ms() < end) /* the watchdog's signal wakes a sleep */
				usleep(10000);
		}
#endif
		for (req = batch; req != NULL; req = next) {
			struct creq *cr;

			next = req->qnext;
			if ((cr = creq_get(c, req)) == NULL) {
				core_reply_error(req, MOM_ENOMEM, "out of memory");
				continue;
			}
			core_handle(c, cr, now);
		}
		closed_conns(c, closed, nclosed, now);
		serve_touched(c, now);
		if (!TAILQ_EMPTY(&c->fwd_outs)) {
			int64_t fnext = next_tick;

			forward_tick(c, now, &fnext);
			if (fnext < next_tick)
				next_tick = fnext;
		}
		if ((now >= next_tick || stop) && replica_is_leader(c->rep))
			next_tick = tick(c, now);
		else if (now >= next_tick)
			next_tick = now + TICK_MAX_MS;
		pump(c);
		if (stop)
			break;
	}
	watchdog_stop(&c->wd);
	core_drain(c);
	forward_release_all(c);
	/* Whatever the replica still owes, its clients learn now. */
	admin_release_all(c);
	/*
	 * Answer every long poll (empty) so that clients move on: while the
	 * links are up, so that the polls forwarded to this node are answered
	 * to their nodes too (after replica_stop there is no one to send them).
	 */
	fetch_release_all(c, core_now(c));
	replica_stop(c->rep);
	c->rep = NULL;
	/* What replica_stop did not answer was never proposed. */
	fetch_settle_done(c, UINT64_MAX, MOM_ECLOSED, "not stored: broker shutting down");
	return NULL;
}

int
core_start(struct core **cp, struct fsm *fsm, const struct core_config *cfg, char *err,
    size_t errlen)
{
	struct core *c;
	bool         ok;
	int          rv;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return MOM_ENOMEM;
	c->fsm = fsm;
	c->cfg = *cfg;
	if (c->cfg.queue_max == 0)
		c->cfg.queue_max = 65536;
	if (c->cfg.snapshot_bytes == 0)
		c->cfg.snapshot_bytes = 64u << 20;
#ifdef MOM_FAULT_INJECTION
	/*
	 * The fault build's switches: MOM_FAULT_CONFIRM_BEFORE_COMMIT (the
	 * chaos checker's negative control), MOM_FAULT_CORE_STALL_MS (one
	 * turn of the loop that long, once it serves: the watchdog's test),
	 * MOM_FAULT_CLOCK_SKEW_MS (this node's clock off by that much).
	 */
	{
		const char *v = getenv("MOM_FAULT_CONFIRM_BEFORE_COMMIT");

		if ((c->confirm_before_commit = v && *v && strcmp(v, "0") != 0))
			log_warnx("fault injection: MOM_FAULT_CONFIRM_BEFORE_COMMIT: publishes "
			    "are confirmed when proposed, before they are committed");
		if ((v = getenv("MOM_FAULT_CORE_STALL_MS")) && *v) {
			c->stall_ms = strtoll(v, NULL, 10);
			log_warnx("fault injection: MOM_FAULT_CORE_STALL_MS: one turn of the core "
			    "thread takes %lld ms once it serves", (long long)c->stall_ms);
		}
		if ((v = getenv("MOM_FAULT_CLOCK_SKEW_MS")) && *v) {
			c->clock_skew = strtoll(v, NULL, 10);
			log_warnx("fault injection: MOM_FAULT_CLOCK_SKEW_MS: the core's clock "
			    "is %lld ms off", (long long)c->clock_skew);
		}
	}
#endif
	c->started = core_now(c);
	TAILQ_INIT(&c->waiters);
	TAILQ_INIT(&c->settling);
	TAILQ_INIT(&c->cluster_calls);
	mom_buf_init(&c->scratch);
	mom_buf_init(&c->reply);
	mom_buf_init(&c->cmd);
	mom_buf_init(&c->settles);
	umap_init(&c->porders);
	umap_init(&c->fwd_ids);
	umap_init(&c->fwd_ins);
	TAILQ_INIT(&c->fwd_outs);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	fsm_set_gone(fsm, fetch_gone, c);
	fsm_set_settle(fsm, core_settle, c);
	if (pthread_create(&c->thread, NULL, core_main, c) != 0) {
		mom_errf(err, errlen, "cannot start the core thread");
		core_free(c);
		return MOM_ENOMEM;
	}
	/* The log is replayed before anyone is served. */
	pthread_mutex_lock(&c->mu);
	while (!c->started_up)
		pthread_cond_wait(&c->cv, &c->mu);
	ok = c->start_ok;
	pthread_mutex_unlock(&c->mu);
	if (!ok) {
		pthread_join(c->thread, NULL);
		mom_errf(err, errlen, "%s", c->start_msg);
		rv = c->start_code ? c->start_code : MOM_EINTERNAL;
		core_free(c);
		return rv;
	}
	*cp = c;
	return 0;
}

void
core_stop(struct core *c)
{
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
}

void
core_free(struct core *c)
{
	struct creq         *cr;
	struct cluster_call *cc;

	if (c == NULL)
		return;
	fsm_set_gone(c->fsm, NULL, NULL);
	fsm_set_settle(c->fsm, NULL, NULL);
	/* Left by a replica that never answered: it is gone, so is the obligation. */
	while ((cc = TAILQ_FIRST(&c->cluster_calls)) != NULL) {
		TAILQ_REMOVE(&c->cluster_calls, cc, link);
		free(cc);
	}
	while ((cr = c->free) != NULL) {
		c->free = cr->free_next;
		free(cr);
	}
	umap_fini(&c->porders);
	umap_fini(&c->fwd_ids);
	umap_fini(&c->fwd_ins);
	free(c->closed);
	mom_buf_fini(&c->scratch);
	mom_buf_fini(&c->reply);
	mom_buf_fini(&c->cmd);
	mom_buf_fini(&c->settles);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

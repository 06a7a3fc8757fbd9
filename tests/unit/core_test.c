/*
 * core_test.c: the core thread driven in-process.  A test starts the core
 * on a temporary data directory, submits requests as a network plane
 * would (struct core_req with a reply callback: an in-memory front) and
 * reads the reply frames: publish, fetch, long polls, acks, lease expiry,
 * admin changes and their permissions, and a restart on the same log.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "core/core.h"
#include "mom.h"
#include "state/fsm.h"
#include "storage/rio.h"
#include "tmpdir.h"
#include "token.h"
#include "wire.h"

/* A request in flight and its mailbox. */
struct treq {
	struct core_req req;
	struct mom_buf  body;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            done;
	struct mom_buf  reply;
};

static char         dir[64];
static struct fsm  *fsm;
static struct core *core;

static void
reply_cb(struct core_req *req, const uint8_t *frame, size_t len)
{
	struct treq *t = req->arg;

	pthread_mutex_lock(&t->mu);
	mom_buf_reset(&t->reply);
	if (frame != NULL)
		mom_buf_put(&t->reply, frame, len);
	t->done = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static void
core_open(void)
{
	struct fsm_config  fc;
	struct core_config cc;
	char               err[512];

	memset(&fc, 0, sizeof(fc));
	fc.max_payload = MOM_PAYLOAD_DEFAULT;
	fc.dedupe_window_ms = 120000;
	fc.retain_ms = 86400000;
	fc.retain_bytes = 64u << 20;
	cr_assert_not_null(fsm = fsm_new(&fc));
	memset(&cc, 0, sizeof(cc));
	cc.max_payload = MOM_PAYLOAD_DEFAULT;
	cc.dir = dir;
	cc.fsync = RIO_FSYNC_ALWAYS;
	cr_assert_eq(core_start(&core, fsm, &cc, err, sizeof(err)), 0, "%s", err);
}

static void
core_close(void)
{
	core_stop(core);
	core_free(core);
	fsm_free(fsm);
	core = NULL;
	fsm = NULL;
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mom-core-test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	core_open();
}

static void
teardown(void)
{
	if (core != NULL)
		core_close();
	rm_dir(dir);
}

static struct treq *
treq_new(uint8_t op, const struct mom_claims *claims)
{
	struct treq *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	mom_buf_init(&t->body);
	mom_buf_init(&t->reply);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->req.op = op;
	t->req.claims = claims;
	t->req.reply = reply_cb;
	t->req.arg = t;
	return t;
}

static void
treq_free(struct treq *t)
{
	mom_buf_fini(&t->body);
	mom_buf_fini(&t->reply);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}

static void
submit(struct treq *t)
{
	t->req.body = t->body.data;
	t->req.len = t->body.len;
	core_submit(core, &t->req);
}

/* Waits up to ms for the reply; true when it came. */
static bool
wait_reply(struct treq *t, int ms)
{
	struct timespec ts;
	bool            done;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&t->mu);
	while (!t->done)
		if (pthread_cond_timedwait(&t->cv, &t->mu, &ts) != 0)
			break;
	done = t->done;
	pthread_mutex_unlock(&t->mu);
	return done;
}

/* The reply's status (0 or MOM_E*), err its message; body after the header. */
static int
status_of(struct treq *t, struct mom_rd *body, char *err, size_t errlen)
{
	cr_assert(wait_reply(t, 5000), "no reply within 5 s");
	cr_assert_gt(t->reply.len, 0, "an empty reply");
	return mom_wire_status(t->reply.data, t->reply.len, t->req.op, body, err, errlen);
}

/* An admin request; returns its status and, on 0, the answer (owned) in *out. */
static int
admin(const struct mom_claims *cl, const char *json, json_t **out, char *err, size_t errlen)
{
	struct treq  *t = treq_new(MOM_OP_ADMIN, cl);
	struct mom_rd body;
	const uint8_t *p;
	size_t        n;
	int           st;

	mom_buf_put_str(&t->body, json);
	submit(t);
	st = status_of(t, &body, err, errlen);
	if (st == 0 && out != NULL) {
		p = mom_rd_bytes(&body, &n);
		cr_assert_not_null(*out = json_loadb((const char *)p, n, 0, NULL));
	}
	treq_free(t);
	return st;
}

static void
admin_ok(const char *json)
{
	char err[256] = "";

	cr_assert_eq(admin(NULL, json, NULL, err, sizeof(err)), 0, "%s: %s", json, err);
}

static int
publish(const struct mom_claims *cl, const char *queue, const char *payload)
{
	struct treq         *t = treq_new(MOM_OP_PUBLISH, cl);
	struct mom_pub_batch b;
	struct mom_pub_msg   m;
	struct mom_rd        body;
	char                 err[256];
	size_t               off;
	int                  st;

	memset(&b, 0, sizeof(b));
	b.kind = MOM_KIND_QUEUE;
	b.name.p = (const uint8_t *)queue;
	b.name.n = strlen(queue);
	mom_pub_encode_begin(&t->body, &b);
	off = mom_pub_count_offset(&t->body, 0);
	memset(&m, 0, sizeof(m));
	m.kind = MOM_KIND_QUEUE;
	m.name = b.name;
	m.payload.p = (const uint8_t *)payload;
	m.payload.n = strlen(payload);
	mom_pub_encode_msg(&t->body, &b, &m);
	mom_pub_encode_count(&t->body, off, 1);
	submit(t);
	st = status_of(t, &body, err, sizeof(err));
	if (st == 0)
		cr_assert_eq(mom_rd_varint(&body), 1, "one message stored");
	treq_free(t);
	return st;
}

/* A fetch request on connection conn with flags (MOM_FF_*), submitted (not waited for). */
static struct treq *
fetch_submit(const char *queue, uint64_t consumer, uint64_t wait_ms, const uint64_t *acks,
    uint64_t nacks, uint64_t conn, uint64_t flags)
{
	struct treq     *t = treq_new(MOM_OP_FETCH, NULL);
	struct mom_fetch f;

	memset(&f, 0, sizeof(f));
	f.consumer = consumer;
	f.kind = MOM_KIND_QUEUE;
	f.name.p = (const uint8_t *)queue;
	f.name.n = strlen(queue);
	f.max_msgs = 10;
	f.wait_ms = wait_ms;
	f.acks = acks;
	f.nacks = nacks;
	f.flags = flags;
	mom_fetch_encode(&t->body, &f);
	t->req.conn = conn;
	submit(t);
	return t;
}


static struct treq *
fetch_start(const char *queue, uint64_t consumer, uint64_t wait_ms, const uint64_t *acks,
    uint64_t nacks)
{
	return fetch_submit(queue, consumer, wait_ms, acks, nacks, 0, 0);
}

static struct treq *
fetch_start_conn(const char *queue, uint64_t consumer, uint64_t wait_ms, uint64_t conn)
{
	return fetch_submit(queue, consumer, wait_ms, NULL, 0, conn, 0);
}

struct got {
	int      status;
	uint64_t ready, count;
	uint64_t receipt;     /* of the first message */
	uint32_t deliveries;  /* of the first message */
	char     payload[64]; /* of the first message */
};

static struct got
fetch_end(struct treq *t)
{
	struct got          g;
	struct mom_rd       body;
	struct mom_delivery d;
	char                err[256];

	memset(&g, 0, sizeof(g));
	g.status = status_of(t, &body, err, sizeof(err));
	if (g.status == 0) {
		g.ready = mom_rd_varint(&body);
		g.count = mom_rd_varint(&body);
		if (g.count > 0) {
			cr_assert_eq(mom_delivery_decode(&body, &d), 0);
			g.receipt = d.receipt;
			g.deliveries = d.deliveries;
			snprintf(g.payload, sizeof(g.payload), "%.*s", (int)d.payload.n, d.payload.p);
		}
	}
	treq_free(t);
	return g;
}

static struct got
fetch(const char *queue, uint64_t consumer, const uint64_t *acks, uint64_t nacks)
{
	return fetch_end(fetch_start(queue, consumer, 0, acks, nacks));
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 30);

Test(core, ping_answers_with_the_version)
{
	struct treq  *t = treq_new(MOM_OP_PING, NULL);
	struct mom_rd body;
	const uint8_t *v;
	size_t        n;
	char          err[64];

	submit(t);
	cr_assert_eq(status_of(t, &body, err, sizeof(err)), 0);
	v = mom_rd_bytes(&body, &n);
	cr_assert_eq(n, strlen(MOM_VERSION));
	cr_assert_eq(memcmp(v, MOM_VERSION, n), 0);
	treq_free(t);
}

Test(core, a_published_message_is_fetched_once)
{
	struct got g;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"jobs\"}");
	cr_assert_eq(publish(NULL, "jobs", "hello"), 0);
	g = fetch("jobs", 1, NULL, 0);
	cr_assert_eq(g.status, 0);
	cr_assert_eq(g.count, 1);
	cr_assert_str_eq(g.payload, "hello");
	cr_assert_eq(g.deliveries, 1);
	/* Leased to consumer 1: nothing for consumer 2. */
	g = fetch("jobs", 2, NULL, 0);
	cr_assert_eq(g.count, 0);
}

Test(core, publish_to_a_missing_queue_is_refused)
{
	cr_assert_eq(publish(NULL, "nowhere", "x"), MOM_ENOENT);
}

Test(core, a_long_poll_waits_and_gets_the_next_message)
{
	struct treq *t;
	struct got   g;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"lp\"}");
	t = fetch_start("lp", 7, 5000, NULL, 0);
	/* Parked: no answer while the queue is empty. */
	cr_assert_not(wait_reply(t, 200), "a long poll on an empty queue answered at once");
	cr_assert_eq(publish(NULL, "lp", "late"), 0);
	g = fetch_end(t);
	cr_assert_eq(g.status, 0);
	cr_assert_eq(g.count, 1);
	cr_assert_str_eq(g.payload, "late");
}

Test(core, a_long_poll_ends_empty_at_its_deadline)
{
	struct got g;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"lp\"}");
	g = fetch_end(fetch_start("lp", 7, 300, NULL, 0));
	cr_assert_eq(g.status, 0);
	cr_assert_eq(g.count, 0);
}

Test(core, a_long_poll_learns_that_its_queue_was_deleted)
{
	struct treq *t;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"gone\"}");
	t = fetch_start("gone", 7, 5000, NULL, 0);
	cr_assert_not(wait_reply(t, 100));
	admin_ok("{\"op\":\"queue.delete\",\"name\":\"gone\"}");
	cr_assert_eq(fetch_end(t).status, MOM_ENOENT);
}

Test(core, an_ack_removes_the_message)
{
	struct got g;
	json_t    *info;
	char       err[256];
	uint64_t   receipt;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"acks\"}");
	cr_assert_eq(publish(NULL, "acks", "one"), 0);
	g = fetch("acks", 1, NULL, 0);
	cr_assert_eq(g.count, 1);
	receipt = g.receipt;
	g = fetch("acks", 1, &receipt, 1);
	cr_assert_eq(g.count, 0);
	cr_assert_eq(g.ready, 0);
	/* The settlement goes through the log: wait for it to be applied. */
	for (int i = 0; i < 100; i++) {
		cr_assert_eq(admin(NULL, "{\"op\":\"queue.info\",\"name\":\"acks\"}", &info, err,
		    sizeof(err)), 0);
		if (json_integer_value(json_object_get(info, "messages")) == 0) {
			json_decref(info);
			return;
		}
		json_decref(info);
		usleep(10000);
	}
	cr_assert_fail("the acked message is still in the queue");
}

/* A consumer's close (MOM_FF_CLOSE) with acks; its answer, waited for. */
static struct got
fetch_close(const char *queue, uint64_t consumer, const uint64_t *acks, uint64_t nacks)
{
	return fetch_end(fetch_submit(queue, consumer, 0, acks, nacks, 0, MOM_FF_CLOSE));
}

/* One message published to queue and leased to consumer: its receipt. */
static uint64_t
lease_one(const char *queue, uint64_t consumer)
{
	struct got g;

	cr_assert_eq(publish(NULL, queue, "one"), 0);
	g = fetch(queue, consumer, NULL, 0);
	cr_assert_eq(g.count, 1);
	return g.receipt;
}

static int64_t
queue_messages(const char *queue)
{
	json_t *info;
	char    err[256], req[128];
	int64_t n;

	snprintf(req, sizeof(req), "{\"op\":\"queue.info\",\"name\":\"%s\"}", queue);
	cr_assert_eq(admin(NULL, req, &info, err, sizeof(err)), 0, "%s", err);
	n = json_integer_value(json_object_get(info, "messages"));
	json_decref(info);
	return n;
}

/* Unlike an ordinary fetch's, a close's answer comes once its acks are applied. */
Test(core, a_close_is_answered_once_its_acks_are_stored)
{
	struct got g;
	uint64_t   receipt;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"closing\"}");
	for (int i = 0; i < 20; i++) {
		receipt = lease_one("closing", 7);
		g = fetch_close("closing", 7, &receipt, 1);
		cr_assert_eq(g.status, 0);
		cr_assert_eq(queue_messages("closing"), 0, "round %d: the close was answered before "
		    "its ack was applied", i);
	}
}

/* A close without acks waits for those an earlier fetch carried. */
Test(core, a_close_waits_for_the_acks_of_earlier_fetches)
{
	struct got g;
	uint64_t   receipt;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"closing2\"}");
	for (int i = 0; i < 20; i++) {
		receipt = lease_one("closing2", 8);
		g = fetch("closing2", 8, &receipt, 1); /* answered at once */
		cr_assert_eq(g.status, 0);
		g = fetch_close("closing2", 8, NULL, 0);
		cr_assert_eq(g.status, 0);
		cr_assert_eq(queue_messages("closing2"), 0, "round %d: the close was answered before "
		    "the earlier ack was applied", i);
	}
}

Test(core, an_expired_lease_is_delivered_again)
{
	struct got g;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"lease\",\"ack_wait_ms\":200}");
	cr_assert_eq(publish(NULL, "lease", "again"), 0);
	g = fetch("lease", 1, NULL, 0);
	cr_assert_eq(g.count, 1);
	cr_assert_eq(g.deliveries, 1);
	/* Consumer 2 long-polls: the lease expires and the message comes to it. */
	g = fetch_end(fetch_start("lease", 2, 5000, NULL, 0));
	cr_assert_eq(g.count, 1);
	cr_assert_str_eq(g.payload, "again");
	cr_assert_eq(g.deliveries, 2);
}

Test(core, admin_changes_are_listed_and_survive_a_restart)
{
	json_t *list;
	char    err[256];

	admin_ok("{\"op\":\"queue.create\",\"name\":\"a\",\"max_deliver\":3}");
	admin_ok("{\"op\":\"queue.create\",\"name\":\"b\"}");
	admin_ok("{\"op\":\"queue.delete\",\"name\":\"b\"}");
	cr_assert_eq(publish(NULL, "a", "kept"), 0);
	core_close();
	core_open();
	cr_assert_eq(admin(NULL, "{\"op\":\"queue.list\"}", &list, err, sizeof(err)), 0);
	cr_assert_eq(json_array_size(list), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "name")), "a");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(list, 0), "max_deliver")), 3);
	json_decref(list);
	cr_assert_str_eq(fetch("a", 1, NULL, 0).payload, "kept");
}

Test(core, unknown_and_malformed_admin_requests_are_refused)
{
	char err[256];

	cr_assert_eq(admin(NULL, "{\"op\":\"queue.frobnicate\",\"name\":\"x\"}", NULL, err,
	    sizeof(err)), MOM_EINVAL);
	cr_assert_eq(admin(NULL, "{\"op\":\"nothing\"}", NULL, err, sizeof(err)), MOM_EINVAL);
	cr_assert_eq(admin(NULL, "[1,2]", NULL, err, sizeof(err)), MOM_EBADDATA);
	cr_assert_eq(admin(NULL, "{\"name\":\"x\"}", NULL, err, sizeof(err)), MOM_EBADDATA);
}

/* A token's claims: may publish and consume jobs.> only. */
static void
claims_jobs(struct mom_claims *cl, const char *sub)
{
	static char *pats[] = { "jobs.>" };

	memset(cl, 0, sizeof(*cl));
	snprintf(cl->sub, sizeof(cl->sub), "%s", sub);
	cl->pub = pats;
	cl->npub = 1;
	cl->subs = pats;
	cl->nsubs = 1;
}

Test(core, permissions_are_checked_and_the_creator_recorded)
{
	struct mom_claims alice, bob;
	json_t           *info;
	char              err[256];

	claims_jobs(&alice, "alice");
	claims_jobs(&bob, "bob");
	cr_assert_eq(admin(&alice, "{\"op\":\"queue.create\",\"name\":\"jobs.a\","
	    "\"owner\":\"mallory\"}", NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(admin(&alice, "{\"op\":\"queue.create\",\"name\":\"payroll\"}", NULL, err,
	    sizeof(err)), MOM_EPERM);
	cr_assert_eq(admin(NULL, "{\"op\":\"queue.info\",\"name\":\"jobs.a\"}", &info, err,
	    sizeof(err)), 0);
	/* The owner is the token's subject, never what the request says. */
	cr_assert_str_eq(json_string_value(json_object_get(info, "owner")), "alice");
	json_decref(info);
	cr_assert_eq(admin(&bob, "{\"op\":\"queue.delete\",\"name\":\"jobs.a\"}", NULL, err,
	    sizeof(err)), MOM_EPERM);
	cr_assert_eq(admin(&bob, "{\"op\":\"stats\"}", NULL, err, sizeof(err)), 0);
	cr_assert_eq(admin(&bob, "{\"op\":\"queue.purge\",\"name\":\"jobs.a\"}", NULL, err,
	    sizeof(err)), MOM_EPERM);
	cr_assert_eq(publish(&bob, "jobs.a", "ok"), 0);
	admin_ok("{\"op\":\"queue.create\",\"name\":\"payroll\"}");
	cr_assert_eq(publish(&bob, "payroll", "no"), MOM_EPERM);
	cr_assert_eq(admin(&alice, "{\"op\":\"queue.delete\",\"name\":\"jobs.a\"}", NULL, err,
	    sizeof(err)), 0, "%s", err);
}

/* publish.check answers what a publish would meet: permission first, then the target. */
Test(core, publish_check_answers_as_a_publish_would)
{
	struct mom_claims bob;
	char              err[256];

	claims_jobs(&bob, "bob");
	admin_ok("{\"op\":\"queue.create\",\"name\":\"jobs.q\"}");
	admin_ok("{\"op\":\"topic.create\",\"name\":\"jobs.t\"}");
	admin_ok("{\"op\":\"queue.create\",\"name\":\"payroll\"}");
	cr_assert_eq(admin(&bob, "{\"op\":\"publish.check\",\"kind\":\"queue\",\"name\":\"jobs.q\"}",
	    NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(admin(&bob, "{\"op\":\"publish.check\",\"kind\":\"topic\",\"name\":\"jobs.t\"}",
	    NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(admin(&bob, "{\"op\":\"publish.check\",\"kind\":\"queue\",\"name\":\"jobs.no\"}",
	    NULL, err, sizeof(err)), MOM_ENOENT);
	cr_assert_str_eq(err, "no such queue 'jobs.no'");
	cr_assert_eq(admin(&bob, "{\"op\":\"publish.check\",\"kind\":\"topic\",\"name\":\"jobs.q\"}",
	    NULL, err, sizeof(err)), MOM_ENOENT);
	/* Not allowed: refused whether or not it exists, as a publish is. */
	cr_assert_eq(admin(&bob, "{\"op\":\"publish.check\",\"kind\":\"queue\",\"name\":\"payroll\"}",
	    NULL, err, sizeof(err)), MOM_EPERM);
	cr_assert_str_eq(err, "permission denied: publish to queue 'payroll'");
	cr_assert_eq(admin(&bob, "{\"op\":\"publish.check\",\"kind\":\"queue\",\"name\":\"nowhere\"}",
	    NULL, err, sizeof(err)), MOM_EPERM);
	cr_assert_eq(admin(NULL, "{\"op\":\"publish.check\",\"kind\":\"queue\",\"name\":\"payroll\"}",
	    NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(admin(NULL, "{\"op\":\"publish.check\",\"kind\":\"box\",\"name\":\"payroll\"}",
	    NULL, err, sizeof(err)), MOM_EINVAL);
	cr_assert_eq(admin(NULL, "{\"op\":\"publish.check\",\"kind\":\"queue\"}", NULL, err,
	    sizeof(err)), MOM_EINVAL);
}

Test(core, stats_count_what_happened)
{
	json_t *st;
	char    err[256];

	admin_ok("{\"op\":\"queue.create\",\"name\":\"s\"}");
	cr_assert_eq(publish(NULL, "s", "1"), 0);
	cr_assert_eq(publish(NULL, "s", "2"), 0);
	cr_assert_eq(admin(NULL, "{\"op\":\"stats\"}", &st, err, sizeof(err)), 0);
	cr_assert_eq(json_integer_value(json_object_get(st, "queues")), 1);
	cr_assert_eq(json_integer_value(json_object_get(st, "published")), 2);
	cr_assert_eq(json_integer_value(json_object_get(st, "messages")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(st, "fsync")), "always");
	cr_assert_geq(json_integer_value(json_object_get(st, "log_entries")), 3);
	json_decref(st);
}

Test(core, stop_answers_parked_polls_empty)
{
	struct treq *t;
	struct got   g;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"idle\"}");
	t = fetch_start("idle", 9, 15000, NULL, 0);
	cr_assert_not(wait_reply(t, 100));
	core_close();
	/* Answered at stop, not after its 15 s: the client moves on. */
	cr_assert(wait_reply(t, 0), "a parked poll was left unanswered by core_stop");
	g = fetch_end(t);
	cr_assert_eq(g.status, 0);
	cr_assert_eq(g.count, 0);
}

Test(core, requests_after_stop_are_refused_as_shutting_down)
{
	struct treq  *t;
	struct mom_rd body;
	char          err[128];

	core_stop(core);
	t = treq_new(MOM_OP_PING, NULL);
	submit(t);
	cr_assert_eq(status_of(t, &body, err, sizeof(err)), MOM_ECLOSED);
	cr_assert_str_eq(err, "broker shutting down");
	treq_free(t);
	core_free(core);
	fsm_free(fsm);
	core = NULL;
	fsm = NULL;
}

Test(core, a_closed_connection_s_polls_end_and_get_nothing)
{
	struct treq *dead, *live;
	struct got   g;

	admin_ok("{\"op\":\"queue.create\",\"name\":\"cc\"}");
	dead = fetch_start_conn("cc", 1, 5000, 41);
	live = fetch_start_conn("cc", 2, 5000, 42);
	cr_assert_not(wait_reply(dead, 100));
	core_conn_closed(core, 41);
	/* Answered at once, empty; the other connection's poll stays. */
	g = fetch_end(dead);
	cr_assert_eq(g.status, 0);
	cr_assert_eq(g.count, 0);
	cr_assert_not(wait_reply(live, 100));
	cr_assert_eq(publish(NULL, "cc", "for the living"), 0);
	g = fetch_end(live);
	cr_assert_eq(g.count, 1);
	cr_assert_str_eq(g.payload, "for the living");
	cr_assert_eq(g.deliveries, 1);
}

/* A broker without --node-id: node 1 alone, leading, its numbers the log's. */
Test(core, cluster_status_is_a_cluster_of_one)
{
	json_t *cl, *n, *st;
	char    err[256];

	admin_ok("{\"op\":\"queue.create\",\"name\":\"c\"}");
	cr_assert_eq(admin(NULL, "{\"op\":\"cluster.status\"}", &cl, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(json_integer_value(json_object_get(cl, "leader")), 1);
	cr_assert_eq(json_integer_value(json_object_get(cl, "self")), 1);
	cr_assert_eq(json_array_size(json_object_get(cl, "nodes")), 1);
	n = json_array_get(json_object_get(cl, "nodes"), 0);
	cr_assert_eq(json_integer_value(json_object_get(n, "id")), 1);
	cr_assert(json_is_null(json_object_get(n, "url")));
	cr_assert_str_eq(json_string_value(json_object_get(n, "role")), "leader");
	cr_assert_eq(json_integer_value(json_object_get(n, "lag")), 0);
	cr_assert_geq(json_integer_value(json_object_get(cl, "applied")), 2);
	cr_assert_eq(json_integer_value(json_object_get(n, "applied")),
	    json_integer_value(json_object_get(cl, "applied")));
	/* stats carries the same numbers under raft_*. */
	cr_assert_eq(admin(NULL, "{\"op\":\"stats\"}", &st, err, sizeof(err)), 0);
	cr_assert_str_eq(json_string_value(json_object_get(st, "raft_role")), "leader");
	cr_assert_eq(json_integer_value(json_object_get(st, "raft_term")),
	    json_integer_value(json_object_get(cl, "term")));
	cr_assert_geq(json_integer_value(json_object_get(st, "raft_applied_index")),
	    json_integer_value(json_object_get(cl, "applied")));
	cr_assert_eq(json_integer_value(json_object_get(st, "raft_elections")), 0);
	json_decref(st);
	json_decref(cl);
}

/* Changes: arguments checked, admin only, then the replica's own refusal. */
Test(core, cluster_changes_are_checked_then_refused_by_a_broker_alone)
{
	static const char not_clustered[] = "this broker is not in a cluster: start it with "
	    "--node-id, --peer and --cluster-key (mom-broker(8))";
	static const struct {
		const char *json;
		int         st;
		const char *err;
	} tab[] = {
		{ "{\"op\":\"cluster.add\",\"id\":2,\"url\":\"tcp://h:7422\"}", MOM_EINVAL, NULL },
		{ "{\"op\":\"cluster.remove\",\"id\":2}", MOM_EINVAL, NULL },
		{ "{\"op\":\"cluster.transfer\"}", MOM_EINVAL, NULL },
		{ "{\"op\":\"cluster.transfer\",\"id\":null}", MOM_EINVAL, NULL },
		{ "{\"op\":\"cluster.transfer\",\"id\":3}", MOM_EINVAL, NULL },
		{ "{\"op\":\"cluster.add\",\"id\":0,\"url\":\"tcp://h:7422\"}", MOM_EINVAL,
		    "cluster.add: the node id must be a positive integer" },
		{ "{\"op\":\"cluster.remove\",\"id\":\"2\"}", MOM_EINVAL,
		    "cluster.remove: the node id must be a positive integer" },
		{ "{\"op\":\"cluster.remove\"}", MOM_EINVAL,
		    "cluster.remove: the node id must be a positive integer" },
		{ "{\"op\":\"cluster.transfer\",\"id\":-1}", MOM_EINVAL,
		    "cluster.transfer: the node id must be a positive integer" },
		{ "{\"op\":\"cluster.add\",\"id\":2}", MOM_EINVAL,
		    "cluster.add: the node's cluster URL must have a scheme (tcp://HOST:PORT)" },
		{ "{\"op\":\"cluster.add\",\"id\":2,\"url\":\"h:7422\"}", MOM_EINVAL,
		    "cluster.add: the node's cluster URL must have a scheme (tcp://HOST:PORT)" },
	};
	struct mom_claims bob, root;
	char              err[512];
	size_t            i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		cr_assert_eq(admin(NULL, tab[i].json, NULL, err, sizeof(err)), tab[i].st, "%s: %s",
		    tab[i].json, err);
		cr_assert_str_eq(err, tab[i].err != NULL ? tab[i].err : not_clustered, "%s",
		    tab[i].json);
	}
	claims_jobs(&bob, "bob");
	cr_assert_eq(admin(&bob, "{\"op\":\"cluster.transfer\"}", NULL, err, sizeof(err)),
	    MOM_EPERM);
	cr_assert_str_eq(err, "permission denied: cluster.transfer needs an admin token");
	claims_jobs(&root, "root");
	root.admin = true;
	cr_assert_eq(admin(&root, "{\"op\":\"cluster.remove\",\"id\":4}", NULL, err,
	    sizeof(err)), MOM_EINVAL);
	cr_assert_str_eq(err, not_clustered);
	/* Nothing changed: the core still serves. */
	admin_ok("{\"op\":\"cluster.status\"}");
}

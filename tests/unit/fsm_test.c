/*
 * fsm_test.c: the broker's state machine driven by encoded commands, as the
 * log replays them: queues, topics, subscriptions, publish with its checks
 * and de-duplication, retention, admin operations, dead letters, and
 * determinism (two machines fed the same commands end up equal).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "adminops.h"
#include "buf.h"
#include "state/fsm.h"
#include "mom.h"
#include "state/mq.h"
#include "wire.h"

static struct fsm *
new_fsm(void)
{
	struct fsm_config cfg;
	struct fsm       *f;

	memset(&cfg, 0, sizeof(cfg));
	f = fsm_new(&cfg);
	cr_assert_not_null(f);
	return f;
}

/* Applies an admin command; returns its status, the result JSON in *out if asked. */
static int
admin_json(struct fsm *f, int64_t t, json_t **out, const char *fmt, ...)
{
	char              json[1024];
	struct mom_buf    cmd;
	struct fsm_result res;
	va_list           ap;

	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, CMD_ADMIN, t, json, strlen(json));
	fsm_apply(f, cmd.data, cmd.len, &res);
	mom_buf_fini(&cmd);
	if (out != NULL)
		*out = res.json;
	else
		json_decref(res.json);
	return res.status;
}

#define admin(f, t, ...) admin_json((f), (t), NULL, __VA_ARGS__)

/* A publish batch being built. */
struct pub {
	struct mom_buf       body;
	struct mom_pub_batch batch;
	size_t               count_off;
};

static void
pub_begin(struct pub *p, uint64_t producer, uint64_t first_seq, uint8_t kind, const char *name)
{
	memset(p, 0, sizeof(*p));
	mom_buf_init(&p->body);
	p->batch.producer = producer;
	p->batch.first_seq = first_seq;
	p->batch.kind = kind;
	p->batch.name.p = (const uint8_t *)name;
	p->batch.name.n = strlen(name);
	mom_pub_encode_begin(&p->body, &p->batch);
	p->count_off = mom_pub_count_offset(&p->body, 0);
}

/* kind 0 / name NULL: the batch target. */
static void
pub_add(struct pub *p, uint8_t kind, const char *name, const char *id, const char *payload,
    uint64_t ttl_ms)
{
	struct mom_pub_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = kind;
	if (name != NULL) {
		m.name.p = (const uint8_t *)name;
		m.name.n = strlen(name);
	}
	if (id != NULL) {
		m.id.p = (const uint8_t *)id;
		m.id.n = strlen(id);
	}
	m.payload.p = (const uint8_t *)payload;
	m.payload.n = strlen(payload);
	m.ttl_ms = ttl_ms;
	mom_pub_encode_msg(&p->body, &p->batch, &m);
	p->batch.count++;
}

/* Applies the batch (it can be applied again) and returns the result. */
static struct fsm_result
pub_apply(struct fsm *f, struct pub *p, int64_t t)
{
	struct mom_buf    cmd;
	struct fsm_result res;

	mom_pub_encode_count(&p->body, p->count_off, p->batch.count);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, CMD_PUBLISH, t, p->body.data, p->body.len);
	fsm_apply(f, cmd.data, cmd.len, &res);
	mom_buf_fini(&cmd);
	json_decref(res.json);
	return res;
}

static void
pub_end(struct pub *p)
{
	mom_buf_fini(&p->body);
}

/* One message to a queue or topic, no producer. */
static struct fsm_result
publish1(struct fsm *f, int64_t t, uint8_t kind, const char *name, const char *id,
    const char *payload)
{
	struct pub        p;
	struct fsm_result res;

	pub_begin(&p, 0, 0, kind, name);
	pub_add(&p, 0, NULL, id, payload, 0);
	res = pub_apply(f, &p, t);
	pub_end(&p);
	return res;
}

static struct queue *
queue(struct fsm *f, const char *name)
{
	return fsm_queue(f, name, strlen(name));
}

static struct sub *
sub(struct fsm *f, const char *pat, const char *name)
{
	return fsm_sub(f, pat, strlen(pat), name, strlen(name));
}

/* Leases everything ready and records seqs, payloads and receipts. */
#define MAXGOT 64
struct got {
	size_t   n;
	uint64_t seq[MAXGOT];
	uint64_t receipt[MAXGOT];
	char     payload[MAXGOT][32];
};

static void
emit_cb(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	struct got *g = arg;

	(void)deliveries;
	cr_assert_lt(g->n, MAXGOT);
	g->seq[g->n] = m->seq;
	g->receipt[g->n] = receipt;
	snprintf(g->payload[g->n], sizeof(g->payload[0]), "%.*s", (int)m->len, msg_payload(m));
	g->n++;
}

static struct mq_receipts next_receipt;

static size_t
drain(struct mq *q, int64_t now, struct got *g)
{
	memset(g, 0, sizeof(*g));
	return mq_lease(q, 1, 0, MAXGOT, SIZE_MAX, false, now, &next_receipt, emit_cb, g);
}

/* Queues. */

Test(fsm_queue, create_makes_a_queue_with_its_options)
{
	struct fsm   *f = new_fsm();
	json_t       *j;
	struct queue *q;

	cr_assert_eq(admin_json(f, 1000, &j, "{\"op\":\"queue.create\",\"name\":\"jobs\","
	    "\"max_len\":10,\"ack_wait_ms\":5000,\"max_deliver\":3}"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "jobs");
	cr_assert_eq(json_integer_value(json_object_get(j, "max_len")), 10);
	json_decref(j);
	q = queue(f, "jobs");
	cr_assert_not_null(q);
	cr_assert_eq(q->mq.cfg.max_len, 10);
	cr_assert_eq(q->mq.cfg.ack_wait_ms, 5000);
	cr_assert_eq(q->mq.cfg.max_deliver, 3);
	cr_assert_eq(q->created_ms, 1000);
	fsm_free(f);
}

/* adminops.c's table and the fsm agree: every write has its handler, and a read none. */
Test(fsm_admin, every_write_of_the_table_has_a_handler)
{
	const struct mom_admin_op *op;
	struct fsm                *f = new_fsm();

	for (op = mom_admin_ops(); op->name != NULL; op++) {
		cr_assert_eq(fsm_admin_known(op->name), op->write, "%s", op->name);
	}
	cr_assert_eq(admin(f, 1, "{\"op\":\"queue.frobnicate\"}"), MOM_EINVAL);
	cr_assert_not(fsm_admin_known("queue.frobnicate"));
	fsm_free(f);
}

/* Options left out take the table's defaults, which replay must keep. */
Test(fsm_admin, a_queue_without_options_gets_the_table_defaults)
{
	struct fsm *f = new_fsm();

	cr_assert_eq(admin(f, 1, "{\"op\":\"queue.create\",\"name\":\"d\"}"), 0);
	cr_assert_eq(queue(f, "d")->mq.cfg.ack_wait_ms,
	    mom_admin_default("queue.create", "ack_wait_ms"));
	cr_assert_eq(queue(f, "d")->mq.cfg.ack_wait_ms, 30000);
	cr_assert_eq(queue(f, "d")->mq.cfg.max_deliver, 20);
	cr_assert_eq(queue(f, "d")->mq.cfg.ttl_ms, 0);
	fsm_free(f);
}

Test(fsm_queue, bad_queue_names_are_refused)
{
	struct fsm *f = new_fsm();

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"bad name\"}"), MOM_EINVAL);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q.*\"}"), MOM_EINVAL);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\"}"), MOM_EINVAL);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"dead_letter\":\"a b\"}"),
	    MOM_EINVAL);
	cr_assert_eq(f->queues.len, 0);
	fsm_free(f);
}

Test(fsm_queue, create_again_same_options_ok_other_options_exist_ensure_ok)
{
	struct fsm *f = new_fsm();

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_len\":5}"), 0);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_len\":5}"), 0);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_len\":6}"),
	    MOM_EEXIST);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), MOM_EEXIST,
	    "leaving an option out is another option");
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_len\":5,"
	    "\"dead_letter\":\"dlq\"}"), MOM_EEXIST);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_len\":6,"
	    "\"ensure\":true}"), 0);
	cr_assert_eq(queue(f, "q")->mq.cfg.max_len, 5, "ensure does not change the queue");
	cr_assert_eq(f->queues.len, 1);
	fsm_free(f);
}

Test(fsm_publish, publish_to_a_missing_queue_is_enoent_and_stores_nothing)
{
	struct fsm       *f = new_fsm();
	struct pub        p;
	struct fsm_result res;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	res = publish1(f, 0, MOM_KIND_QUEUE, "nope", NULL, "x");
	cr_assert_eq(res.status, MOM_ENOENT);
	cr_assert_eq(res.stored, 0);
	/* A batch whose second message has no target stores none of it. */
	pub_begin(&p, 0, 0, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, NULL, "first", 0);
	pub_add(&p, MOM_KIND_QUEUE, "nope", NULL, "second", 0);
	pub_add(&p, 0, NULL, NULL, "third", 0);
	res = pub_apply(f, &p, 0);
	cr_assert_eq(res.status, MOM_ENOENT);
	cr_assert_eq(res.stored, 0);
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 0);
	cr_assert_eq(f->published, 0);
	pub_end(&p);
	res = publish1(f, 0, MOM_KIND_TOPIC, "no.topic", NULL, "x");
	cr_assert_eq(res.status, MOM_ENOENT);
	fsm_free(f);
}

Test(fsm_publish, batch_that_does_not_fit_max_len_is_refused_whole)
{
	struct fsm       *f = new_fsm();
	struct pub        p;
	struct fsm_result res;
	struct queue     *q;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_len\":3}"), 0);
	q = queue(f, "q");
	pub_begin(&p, 0, 0, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, NULL, "a", 0);
	pub_add(&p, 0, NULL, NULL, "b", 0);
	res = pub_apply(f, &p, 0);
	cr_assert_eq(res.status, 0);
	cr_assert_eq(res.stored, 2);
	/* Two more do not fit in 3: neither is stored. */
	res = pub_apply(f, &p, 0);
	cr_assert_eq(res.status, MOM_EFULL);
	cr_assert_eq(res.stored, 0);
	cr_assert_eq(mq_count(&q->mq), 2);
	cr_assert_eq(q->pend_n, 0, "the refused batch leaves no scratch behind");
	pub_end(&p);
	/* One still fits, then the queue is full. */
	cr_assert_eq(publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "c").status, 0);
	cr_assert_eq(publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "d").status, MOM_EFULL);
	cr_assert_eq(mq_count(&q->mq), 3);
	fsm_free(f);
}

Test(fsm_publish, batch_over_max_bytes_is_refused_whole)
{
	struct fsm       *f = new_fsm();
	struct pub        p;
	struct fsm_result res;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\",\"max_bytes\":10}"), 0);
	pub_begin(&p, 0, 0, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, NULL, "123456", 0);
	pub_add(&p, 0, NULL, NULL, "12345", 0);
	res = pub_apply(f, &p, 0);
	cr_assert_eq(res.status, MOM_EFULL);
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 0);
	pub_end(&p);
	cr_assert_eq(publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "1234567890").status, 0);
	fsm_free(f);
}

Test(fsm_publish, payload_over_the_configured_limit_is_too_big)
{
	struct fsm_config cfg = { .max_payload = 4 };
	struct fsm       *f = fsm_new(&cfg);

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	cr_assert_eq(publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "1234").status, 0);
	cr_assert_eq(publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "12345").status, MOM_ETOOBIG);
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 1);
	fsm_free(f);
}

Test(fsm_publish, same_producer_batch_twice_is_stored_once)
{
	struct fsm       *f = new_fsm();
	struct pub        p, q2;
	struct fsm_result res;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	pub_begin(&p, 77, 1, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, NULL, "a", 0);
	pub_add(&p, 0, NULL, NULL, "b", 0);
	pub_add(&p, 0, NULL, NULL, "c", 0);
	res = pub_apply(f, &p, 0);
	cr_assert_eq(res.stored, 3);
	cr_assert_eq(res.duplicates, 0);
	res = pub_apply(f, &p, 10); /* the client retried */
	cr_assert_eq(res.status, 0);
	cr_assert_eq(res.stored, 0);
	cr_assert_eq(res.duplicates, 3);
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 3);
	cr_assert_eq(f->duplicates, 3);
	/* Overlapping retry: seqs 3..4, only 4 is new. */
	pub_begin(&q2, 77, 3, MOM_KIND_QUEUE, "q");
	pub_add(&q2, 0, NULL, NULL, "c", 0);
	pub_add(&q2, 0, NULL, NULL, "d", 0);
	res = pub_apply(f, &q2, 20);
	cr_assert_eq(res.stored, 1);
	cr_assert_eq(res.duplicates, 1);
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 4);
	pub_end(&q2);
	/* Another producer with the same sequence numbers is not a duplicate. */
	pub_end(&p);
	pub_begin(&p, 78, 1, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, NULL, "a", 0);
	cr_assert_eq(pub_apply(f, &p, 30).stored, 1);
	pub_end(&p);
	fsm_free(f);
}

Test(fsm_publish, out_of_order_batches_from_one_producer_are_both_stored)
{
	struct fsm       *f = new_fsm();
	struct pub        late, early;
	struct fsm_result res;
	struct got        g;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	pub_begin(&late, 5, 10, MOM_KIND_QUEUE, "q");
	pub_add(&late, 0, NULL, NULL, "ten", 0);
	pub_add(&late, 0, NULL, NULL, "eleven", 0);
	pub_begin(&early, 5, 1, MOM_KIND_QUEUE, "q");
	pub_add(&early, 0, NULL, NULL, "one", 0);
	res = pub_apply(f, &late, 0);
	cr_assert_eq(res.stored, 2);
	res = pub_apply(f, &early, 0);
	cr_assert_eq(res.stored, 1, "an earlier sequence number after a later one is new");
	cr_assert_eq(res.duplicates, 0);
	/* Both are remembered. */
	cr_assert_eq(pub_apply(f, &late, 0).duplicates, 2);
	cr_assert_eq(pub_apply(f, &early, 0).duplicates, 1);
	cr_assert_eq(drain(&queue(f, "q")->mq, 0, &g), 3);
	cr_assert_str_eq(g.payload[0], "ten");
	cr_assert_str_eq(g.payload[2], "one");
	pub_end(&late);
	pub_end(&early);
	fsm_free(f);
}

/* One message from producer at seq, to queue q, at time t. */
static void
producer_publish(struct fsm *f, uint64_t producer, uint64_t seq, int64_t t)
{
	struct pub p;

	pub_begin(&p, producer, seq, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, NULL, "x", 0);
	cr_assert_eq(pub_apply(f, &p, t).stored, 1);
	pub_end(&p);
}

/* The idle producers of the fixture below, checked at each tick (window 120 s). */
static void
check_producer_expiry(struct fsm *f)
{
	/* 1 was first heard at 1000 but again at 50000: 2 (2000) is the oldest. */
	cr_assert_not(fsm_due(f, 121500), "producer 1's refresh must count");
	cr_assert(fsm_due(f, 122001));
	fsm_tick(f, 122001);
	cr_assert_eq(fsm_producer_next(f, 2), 1, "producer 2 expired");
	cr_assert_eq(fsm_producer_next(f, 1), 3);
	cr_assert_eq(fsm_producer_next(f, 3), 2);
	cr_assert_not(fsm_due(f, 123000));
	fsm_tick(f, 123001);
	cr_assert_eq(fsm_producer_next(f, 3), 1, "producer 3 expired");
	cr_assert_eq(fsm_producer_next(f, 1), 3);
	fsm_tick(f, 170000);
	cr_assert_eq(fsm_producer_next(f, 1), 3, "producer 1 until 50000 + 120000");
	cr_assert(fsm_due(f, 170001));
	fsm_tick(f, 170001);
	cr_assert_eq(fsm_producer_next(f, 1), 1);
	cr_assert_not(fsm_due(f, 1 << 30), "nothing left to expire");
}

Test(fsm_publish, idle_producers_expire_by_when_each_was_last_heard)
{
	struct fsm    *f = new_fsm(), *g = new_fsm();
	struct mom_buf snap;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	producer_publish(f, 1, 1, 1000);
	producer_publish(f, 2, 1, 2000);
	producer_publish(f, 3, 1, 3000);
	producer_publish(f, 1, 2, 50000);
	/* A replica restored from a snapshot expires them in the same order. */
	mom_buf_init(&snap);
	cr_assert_eq(fsm_snapshot(f, &snap), 0);
	cr_assert_eq(fsm_restore(g, snap.data, snap.len), 0);
	mom_buf_fini(&snap);
	check_producer_expiry(f);
	check_producer_expiry(g);
	fsm_free(f);
	fsm_free(g);
}

Test(fsm_publish, a_tick_expires_many_idle_producers_at_once)
{
	struct fsm *f = new_fsm();
	uint64_t    i, n = 10000;

	/* Like a shell loop of one-message mom-pubs: a producer each. */
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	for (i = 1; i <= n; i++)
		producer_publish(f, i * 0x9e3779b97f4a7c15ULL, 1, (int64_t)i);
	producer_publish(f, 7, 1, 200000);
	cr_assert(fsm_due(f, 120000 + (int64_t)n + 1));
	fsm_tick(f, 120000 + (int64_t)n + 1);
	for (i = 1; i <= n; i++)
		cr_assert_eq(fsm_producer_next(f, i * 0x9e3779b97f4a7c15ULL), 1, "producer %llu",
		    (unsigned long long)i);
	cr_assert_eq(fsm_producer_next(f, 7), 2, "the one heard later stays");
	cr_assert_eq(f->producers.len, 1);
	cr_assert_not(fsm_due(f, 320000));
	fsm_free(f);
}

Test(fsm_publish, user_id_is_deduplicated_within_the_window_then_forgotten)
{
	struct fsm       *f = new_fsm(); /* window: 120 s */
	struct fsm_result res;
	struct pub        p;

	cr_assert_eq(admin(f, 1000, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	cr_assert_eq(admin(f, 1000, "{\"op\":\"queue.create\",\"name\":\"other\"}"), 0);
	res = publish1(f, 1000, MOM_KIND_QUEUE, "q", "order-1", "x");
	cr_assert_eq(res.stored, 1);
	res = publish1(f, 60000, MOM_KIND_QUEUE, "q", "order-1", "x");
	cr_assert_eq(res.stored, 0);
	cr_assert_eq(res.duplicates, 1);
	res = publish1(f, 60000, MOM_KIND_QUEUE, "other", "order-1", "x");
	cr_assert_eq(res.stored, 1, "ids are per target");
	/* Twice in one batch: the second is the duplicate. */
	pub_begin(&p, 0, 0, MOM_KIND_QUEUE, "q");
	pub_add(&p, 0, NULL, "order-2", "x", 0);
	pub_add(&p, 0, NULL, "order-2", "x", 0);
	res = pub_apply(f, &p, 60000);
	cr_assert_eq(res.stored, 1);
	cr_assert_eq(res.duplicates, 1);
	pub_end(&p);
	/* The window ends 120 s after the first publish. */
	fsm_tick(f, 120999);
	cr_assert_eq(publish1(f, 120999, MOM_KIND_QUEUE, "q", "order-1", "x").stored, 0);
	fsm_tick(f, 121000);
	res = publish1(f, 121000, MOM_KIND_QUEUE, "q", "order-1", "x");
	cr_assert_eq(res.stored, 1, "stored again after the window");
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 3);
	fsm_free(f);
}

Test(fsm_publish, id_window_is_decided_by_command_time_not_by_when_tick_ran)
{
	struct fsm *f = new_fsm(), *g = new_fsm(); /* window: 120 s */

	/* Two replicas: one ticks, the other never does; both must agree. */
	cr_assert_eq(admin(f, 1000, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	cr_assert_eq(admin(g, 1000, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	cr_assert_eq(publish1(f, 1000, MOM_KIND_QUEUE, "q", "id-1", "x").stored, 1);
	cr_assert_eq(publish1(g, 1000, MOM_KIND_QUEUE, "q", "id-1", "x").stored, 1);
	fsm_tick(f, 200000);
	cr_assert_eq(publish1(f, 121000, MOM_KIND_QUEUE, "q", "id-1", "x").stored, 1);
	cr_assert_eq(publish1(g, 121000, MOM_KIND_QUEUE, "q", "id-1", "x").stored, 1,
	    "without a tick the expired id is not a duplicate either");
	/* A re-added id survives the expiry of its old record. */
	fsm_tick(g, 121500);
	cr_assert_eq(publish1(g, 122000, MOM_KIND_QUEUE, "q", "id-1", "x").stored, 0);
	fsm_free(f);
	fsm_free(g);
}

/* Topics and subscriptions. */

static void
mk_topic(struct fsm *f, const char *name)
{
	cr_assert_eq(admin(f, 0, "{\"op\":\"topic.create\",\"name\":\"%s\"}", name), 0);
}

static void
mk_sub(struct fsm *f, int64_t t, const char *pat, const char *name, int from)
{
	cr_assert_eq(admin(f, t, "{\"op\":\"sub.create\",\"pattern\":\"%s\",\"name\":\"%s\","
	    "\"durable\":true,\"from\":%d}", pat, name, from), 0);
	cr_assert_not_null(sub(f, pat, name));
}

Test(fsm_topic, a_subscription_nobody_reads_keeps_at_most_retain_bytes)
{
	struct fsm_config cfg;
	struct fsm       *f;
	struct sub       *s;
	int               i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.retain_bytes = 10;
	f = fsm_new(&cfg);
	mk_topic(f, "news");
	mk_sub(f, 0, "news", "idle", MOM_FROM_NEW);
	for (i = 0; i < 100; i++)
		cr_assert_eq(publish1(f, i, MOM_KIND_TOPIC, "news", NULL, "12345").stored, 1);
	s = sub(f, "news", "idle");
	cr_assert_eq(mq_count(&s->mq), 2, "10 bytes hold two 5-byte messages");
	cr_assert_eq(s->mq.st.dropped, 98);
	fsm_free(f);
}

Test(fsm_topic, topic_message_reaches_every_subscription)
{
	struct fsm   *f = new_fsm();
	struct got    g;
	struct topic *t;

	mk_topic(f, "news");
	mk_sub(f, 0, "news", "a", MOM_FROM_NEW);
	mk_sub(f, 0, "news", "b", MOM_FROM_NEW);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "news", NULL, "hello").stored, 1);
	t = fsm_topic(f, "news", 4);
	cr_assert_eq(t->llen, 1);
	cr_assert_eq(t->nsubs, 2);
	cr_assert_eq(drain(&sub(f, "news", "a")->mq, 0, &g), 1);
	cr_assert_str_eq(g.payload[0], "hello");
	cr_assert_eq(drain(&sub(f, "news", "b")->mq, 0, &g), 1);
	cr_assert_str_eq(g.payload[0], "hello");
	fsm_free(f);
}

Test(fsm_topic, star_matches_one_segment_and_gt_matches_the_rest)
{
	struct fsm *f = new_fsm();
	struct got  g;

	mk_sub(f, 0, "orders.*", "star", MOM_FROM_NEW);
	mk_sub(f, 0, "orders.>", "rest", MOM_FROM_NEW);
	/* Topics created after the subscriptions are linked to them. */
	mk_topic(f, "orders");
	mk_topic(f, "orders.eu");
	mk_topic(f, "orders.eu.new");
	mk_topic(f, "billing.eu");
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "orders", NULL, "o").stored, 1);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "orders.eu", NULL, "oe").stored, 1);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "orders.eu.new", NULL, "oen").stored, 1);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "billing.eu", NULL, "be").stored, 1);
	cr_assert_eq(drain(&sub(f, "orders.*", "star")->mq, 0, &g), 1);
	cr_assert_str_eq(g.payload[0], "oe");
	cr_assert_eq(drain(&sub(f, "orders.>", "rest")->mq, 0, &g), 2);
	cr_assert_str_eq(g.payload[0], "oe");
	cr_assert_str_eq(g.payload[1], "oen");
	fsm_free(f);
}

/* Two topics with interleaved messages at times 100, 200, ..., 600. */
static struct fsm *
retained_fixture(void)
{
	struct fsm *f = new_fsm();

	mk_topic(f, "a.x");
	mk_topic(f, "a.y");
	mk_topic(f, "b.z");
	cr_assert_eq(publish1(f, 100, MOM_KIND_TOPIC, "a.x", NULL, "x1").stored, 1);
	cr_assert_eq(publish1(f, 200, MOM_KIND_TOPIC, "a.y", NULL, "y1").stored, 1);
	cr_assert_eq(publish1(f, 300, MOM_KIND_TOPIC, "b.z", NULL, "z1").stored, 1);
	cr_assert_eq(publish1(f, 400, MOM_KIND_TOPIC, "a.x", NULL, "x2").stored, 1);
	cr_assert_eq(publish1(f, 500, MOM_KIND_TOPIC, "a.y", NULL, "y2").stored, 1);
	cr_assert_eq(publish1(f, 600, MOM_KIND_TOPIC, "a.x", NULL, "x3").stored, 1);
	return f;
}

static void
expect_payloads(struct fsm *f, const char *pat, const char *name, const char *const *want, size_t n)
{
	struct got g;
	size_t     i;

	cr_assert_eq(drain(&sub(f, pat, name)->mq, 1000, &g), n, "%s got %zu messages", name, g.n);
	for (i = 0; i < n; i++) {
		cr_assert_str_eq(g.payload[i], want[i], "%s[%zu]", name, i);
		if (i > 0)
			cr_assert_lt(g.seq[i - 1], g.seq[i], "in sequence order");
	}
}

Test(fsm_topic, from_first_backfills_every_retained_message_in_seq_order)
{
	struct fsm *f = retained_fixture();
	const char *want[] = { "x1", "y1", "x2", "y2", "x3" };

	mk_sub(f, 700, "a.*", "s", MOM_FROM_FIRST);
	expect_payloads(f, "a.*", "s", want, 5);
	fsm_free(f);
}

Test(fsm_topic, from_last_backfills_the_last_message_of_each_topic)
{
	struct fsm *f = retained_fixture();
	const char *want[] = { "y2", "x3" };
	const char *one[] = { "z1" };

	mk_sub(f, 700, "a.*", "s", MOM_FROM_LAST);
	expect_payloads(f, "a.*", "s", want, 2);
	mk_sub(f, 700, "b.>", "t", MOM_FROM_LAST);
	expect_payloads(f, "b.>", "t", one, 1);
	fsm_free(f);
}

Test(fsm_topic, from_time_backfills_messages_at_or_after_the_time)
{
	struct fsm *f = retained_fixture();
	const char *want[] = { "x2", "y2", "x3" };

	cr_assert_eq(admin(f, 700, "{\"op\":\"sub.create\",\"pattern\":\"a.*\",\"name\":\"s\","
	    "\"durable\":true,\"from\":%d,\"from_time_ms\":400}", MOM_FROM_TIME), 0);
	expect_payloads(f, "a.*", "s", want, 3);
	fsm_free(f);
}

Test(fsm_topic, from_new_backfills_nothing)
{
	struct fsm *f = retained_fixture();

	mk_sub(f, 700, "a.*", "s", MOM_FROM_NEW);
	expect_payloads(f, "a.*", "s", NULL, 0);
	/* FIRST on a pattern with nothing retained: an empty backfill. */
	mk_sub(f, 700, "c.*", "s", MOM_FROM_FIRST);
	expect_payloads(f, "c.*", "s", NULL, 0);
	fsm_free(f);
}

Test(fsm_topic, retention_by_bytes_trims_the_log_but_not_subscriptions)
{
	struct fsm   *f = new_fsm();
	struct topic *t;
	struct got    g;

	cr_assert_eq(admin(f, 0, "{\"op\":\"topic.create\",\"name\":\"t\",\"retain_bytes\":10}"), 0);
	mk_sub(f, 0, "t", "s", MOM_FROM_NEW);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "aaaa").stored, 1);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "bbbb").stored, 1);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "cccc").stored, 1);
	t = fsm_topic(f, "t", 1);
	cr_assert_eq(t->llen, 2, "12 bytes over a 10-byte limit: the oldest goes");
	cr_assert_eq(t->bytes, 8);
	cr_assert_eq(t->published, 3);
	cr_assert_eq(drain(&sub(f, "t", "s")->mq, 0, &g), 3);
	cr_assert_str_eq(g.payload[0], "aaaa");
	/* A new FIRST subscription sees only what is retained. */
	mk_sub(f, 0, "t", "late", MOM_FROM_FIRST);
	cr_assert_eq(drain(&sub(f, "t", "late")->mq, 0, &g), 2);
	cr_assert_str_eq(g.payload[0], "bbbb");
	fsm_free(f);
}

Test(fsm_topic, retention_by_age_trims_at_tick_but_not_subscriptions)
{
	struct fsm   *f = new_fsm();
	struct topic *t;
	struct got    g;

	cr_assert_eq(admin(f, 0, "{\"op\":\"topic.create\",\"name\":\"t\",\"retain_ms\":1000}"), 0);
	mk_sub(f, 0, "t", "s", MOM_FROM_NEW);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "old").stored, 1);
	cr_assert_eq(publish1(f, 500, MOM_KIND_TOPIC, "t", NULL, "new").stored, 1);
	t = fsm_topic(f, "t", 1);
	fsm_tick(f, 999);
	cr_assert_eq(t->llen, 2);
	fsm_tick(f, 1000);
	cr_assert_eq(t->llen, 1);
	cr_assert_eq(t->bytes, 3);
	fsm_tick(f, 1500);
	cr_assert_eq(t->llen, 0);
	cr_assert_eq(t->bytes, 0);
	cr_assert_eq(drain(&sub(f, "t", "s")->mq, 2000, &g), 2, "the subscription keeps both");
	fsm_free(f);
}

Test(fsm_topic, topic_delete_removes_it_and_subscriptions_keep_their_messages)
{
	struct fsm *f = new_fsm();
	struct got  g;
	json_t     *j;

	mk_topic(f, "t");
	mk_sub(f, 0, "t", "s", MOM_FROM_NEW);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "m").stored, 1);
	cr_assert_eq(admin_json(f, 0, &j, "{\"op\":\"topic.delete\",\"name\":\"t\"}"), 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "retained")), 1);
	json_decref(j);
	cr_assert_null(fsm_topic(f, "t", 1));
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "m").status, MOM_ENOENT);
	cr_assert_eq(admin(f, 0, "{\"op\":\"topic.delete\",\"name\":\"t\"}"), MOM_ENOENT);
	cr_assert_eq(drain(&sub(f, "t", "s")->mq, 0, &g), 1);
	/* Created again, the subscription is linked again. */
	mk_topic(f, "t");
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "again").stored, 1);
	cr_assert_eq(drain(&sub(f, "t", "s")->mq, 0, &g), 1);
	cr_assert_str_eq(g.payload[0], "again");
	fsm_free(f);
}

Test(fsm_topic, sub_delete_removes_the_subscription)
{
	struct fsm *f = new_fsm();

	mk_topic(f, "t");
	mk_sub(f, 0, "t", "s", MOM_FROM_NEW);
	mk_sub(f, 0, "t", "keep", MOM_FROM_NEW);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "m").stored, 1);
	cr_assert_eq(admin(f, 0, "{\"op\":\"sub.delete\",\"pattern\":\"t\",\"name\":\"s\"}"), 0);
	cr_assert_null(sub(f, "t", "s"));
	cr_assert_eq(fsm_topic(f, "t", 1)->nsubs, 1);
	cr_assert_eq(admin(f, 0, "{\"op\":\"sub.delete\",\"pattern\":\"t\",\"name\":\"s\"}"),
	    MOM_ENOENT);
	cr_assert_eq(publish1(f, 0, MOM_KIND_TOPIC, "t", NULL, "m2").stored, 1);
	cr_assert_eq(mq_count(&sub(f, "t", "keep")->mq), 2);
	fsm_free(f);
}

/* Queue administration. */

Test(fsm_admin, purge_empties_the_queue)
{
	struct fsm *f = new_fsm();
	json_t     *j;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "a");
	publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "b");
	cr_assert_eq(admin_json(f, 0, &j, "{\"op\":\"queue.purge\",\"name\":\"q\"}"), 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "messages")), 2);
	json_decref(j);
	cr_assert_eq(mq_count(&queue(f, "q")->mq), 0);
	cr_assert_eq(queue(f, "q")->mq.bytes, 0);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.purge\",\"name\":\"x\"}"), MOM_ENOENT);
	fsm_free(f);
}

Test(fsm_admin, move_takes_the_oldest_messages_leased_or_not)
{
	struct fsm *f = new_fsm();
	struct got  g;
	json_t     *j;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"src\"}"), 0);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"dst\"}"), 0);
	publish1(f, 0, MOM_KIND_QUEUE, "src", NULL, "leased");
	publish1(f, 0, MOM_KIND_QUEUE, "src", NULL, "a");
	publish1(f, 0, MOM_KIND_QUEUE, "src", NULL, "b");
	publish1(f, 0, MOM_KIND_QUEUE, "src", NULL, "c");
	memset(&g, 0, sizeof(g));
	cr_assert_eq(mq_lease(&queue(f, "src")->mq, 1, 0, 1, SIZE_MAX, false, 0, &next_receipt,
	    emit_cb, &g), 1);
	/* Leases are leader-local: which messages move must not depend on them. */
	cr_assert_eq(admin_json(f, 0, &j, "{\"op\":\"queue.move\",\"src\":\"src\",\"dst\":\"dst\","
	    "\"max\":2}"), 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "moved")), 2);
	json_decref(j);
	cr_assert_eq(mq_count(&queue(f, "src")->mq), 2);
	cr_assert_eq(queue(f, "src")->mq.bytes, 2);
	cr_assert_eq(admin_json(f, 0, &j, "{\"op\":\"queue.move\",\"src\":\"src\",\"dst\":\"dst\"}"), 0);
	cr_assert_eq(json_integer_value(json_object_get(j, "moved")), 2);
	json_decref(j);
	cr_assert_eq(mq_count(&queue(f, "src")->mq), 0);
	cr_assert_eq(queue(f, "src")->mq.bytes, 0);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(drain(&queue(f, "dst")->mq, 0, &g), 4);
	cr_assert_str_eq(g.payload[0], "leased");
	cr_assert_str_eq(g.payload[1], "a");
	cr_assert_str_eq(g.payload[2], "b");
	cr_assert_str_eq(g.payload[3], "c");
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.move\",\"src\":\"src\",\"dst\":\"src\"}"),
	    MOM_EINVAL);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.move\",\"src\":\"src\",\"dst\":\"nope\"}"),
	    MOM_ENOENT);
	fsm_free(f);
}

Test(fsm_admin, queue_delete_removes_the_queue_and_its_messages)
{
	struct fsm *f = new_fsm();

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "a");
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.delete\",\"name\":\"q\"}"), 0);
	cr_assert_null(queue(f, "q"));
	cr_assert_eq(publish1(f, 0, MOM_KIND_QUEUE, "q", NULL, "a").status, MOM_ENOENT);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.delete\",\"name\":\"q\"}"), MOM_ENOENT);
	fsm_free(f);
}

Test(fsm_admin, malformed_and_unknown_commands_are_refused)
{
	struct fsm       *f = new_fsm();
	struct mom_buf    cmd;
	struct fsm_result res;

	cr_assert_eq(admin(f, 0, "not json"), MOM_EBADDATA);
	cr_assert_eq(admin(f, 0, "[1,2]"), MOM_EBADDATA);
	cr_assert_eq(admin(f, 0, "{\"name\":\"q\"}"), MOM_EBADDATA);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.explode\"}"), MOM_EINVAL);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, 9, 0, "{}", 2);
	fsm_apply(f, cmd.data, cmd.len, &res);
	cr_assert_eq(res.status, MOM_EPROTO);
	fsm_apply(f, cmd.data, 1, &res); /* type, no time */
	cr_assert_eq(res.status, MOM_EPROTO);
	mom_buf_reset(&cmd);
	fsm_cmd_encode(&cmd, CMD_PUBLISH, 0, "\x01", 1);
	fsm_apply(f, cmd.data, cmd.len, &res);
	cr_assert_eq(res.status, MOM_EPROTO);
	mom_buf_fini(&cmd);
	fsm_free(f);
}

Test(fsm_admin, time_never_runs_backwards_in_the_state_machine)
{
	struct fsm *f = new_fsm();
	struct got  g;

	cr_assert_eq(admin(f, 5000, "{\"op\":\"queue.create\",\"name\":\"q\"}"), 0);
	publish1(f, 1000, MOM_KIND_QUEUE, "q", NULL, "a");
	cr_assert_eq(f->last_time, 5000);
	cr_assert_eq(drain(&queue(f, "q")->mq, 5000, &g), 1);
	cr_assert_eq(queue(f, "q")->mq.lhead->e.m->time_ms, 5000);
	fsm_free(f);
}

/* Dead letters. */

/* Leases the one message of q and lets the lease expire, twice. */
static void
expire_twice(struct queue *q, int64_t *now)
{
	struct got g;
	int        i;

	for (i = 0; i < 2; i++) {
		cr_assert_eq(drain(&q->mq, *now, &g), 1, "round %d", i);
		*now += 1000;
		mq_tick(&q->mq, *now);
	}
}

Test(fsm_dead, message_over_max_deliver_lands_in_the_dead_letter_queue)
{
	struct fsm   *f = new_fsm();
	struct queue *q, *dlq;
	struct got    g;
	int64_t       now = 100;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"dlq\"}"), 0);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"work\","
	    "\"dead_letter\":\"dlq\",\"max_deliver\":2,\"ack_wait_ms\":1000}"), 0);
	cr_assert_eq(publish1(f, 100, MOM_KIND_QUEUE, "work", NULL, "poison").stored, 1);
	q = queue(f, "work");
	dlq = queue(f, "dlq");
	expire_twice(q, &now);
	cr_assert_eq(mq_count(&q->mq), 0);
	cr_assert_eq(q->mq.bytes, 0);
	cr_assert_eq(q->mq.st.dead_lettered, 1);
	cr_assert_eq(mq_count(&dlq->mq), 1);
	cr_assert_eq(dlq->mq.bytes, 6);
	cr_assert_eq(f->dead_dropped, 0);
	cr_assert_eq(drain(&dlq->mq, now, &g), 1);
	cr_assert_str_eq(g.payload[0], "poison");
	fsm_free(f);
}

Test(fsm_dead, without_a_dead_letter_queue_the_message_is_dropped_a_missing_one_is_created)
{
	struct fsm *f = new_fsm();
	int64_t     now = 100;

	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"work\","
	    "\"max_deliver\":2,\"ack_wait_ms\":1000}"), 0);
	cr_assert_eq(admin(f, 0, "{\"op\":\"queue.create\",\"name\":\"orphan\","
	    "\"dead_letter\":\"missing\",\"max_deliver\":2,\"ack_wait_ms\":1000}"), 0);
	publish1(f, 100, MOM_KIND_QUEUE, "work", NULL, "x");
	publish1(f, 100, MOM_KIND_QUEUE, "orphan", NULL, "y");
	expire_twice(queue(f, "work"), &now);
	cr_assert_eq(f->dead_dropped, 1);
	cr_assert_eq(mq_count(&queue(f, "work")->mq), 0);
	/* A dead-letter queue that does not exist is created: nothing is dropped. */
	cr_assert_null(fsm_queue(f, "missing", 7));
	expire_twice(queue(f, "orphan"), &now);
	cr_assert_eq(f->dead_dropped, 1);
	cr_assert_not_null(fsm_queue(f, "missing", 7));
	cr_assert_eq(mq_count(&queue(f, "missing")->mq), 1);
	fsm_free(f);
}

/* Determinism. */

static void
run_script(struct fsm *f)
{
	struct pub p;

	cr_assert_eq(admin(f, 1000, "{\"op\":\"queue.create\",\"name\":\"jobs\",\"max_len\":100}"), 0);
	cr_assert_eq(admin(f, 1000, "{\"op\":\"queue.create\",\"name\":\"archive\"}"), 0);
	cr_assert_eq(admin(f, 1000, "{\"op\":\"topic.create\",\"name\":\"ev.a\",\"retain_bytes\":20}"), 0);
	cr_assert_eq(admin(f, 1000, "{\"op\":\"topic.create\",\"name\":\"ev.b\"}"), 0);
	mk_sub(f, 1000, "ev.*", "all", MOM_FROM_NEW);
	pub_begin(&p, 42, 1, MOM_KIND_QUEUE, "jobs");
	pub_add(&p, 0, NULL, "j1", "job one", 0);
	pub_add(&p, 0, NULL, NULL, "job two", 5000);
	pub_add(&p, MOM_KIND_TOPIC, "ev.a", NULL, "event a1", 0);
	pub_add(&p, MOM_KIND_TOPIC, "ev.b", NULL, "event b1", 0);
	pub_add(&p, MOM_KIND_TOPIC, "ev.a", NULL, "event a2", 0);
	cr_assert_eq(pub_apply(f, &p, 2000).stored, 5);
	cr_assert_eq(pub_apply(f, &p, 2500).duplicates, 5);
	pub_end(&p);
	publish1(f, 3000, MOM_KIND_QUEUE, "jobs", "j1", "dup by id");
	publish1(f, 3000, MOM_KIND_QUEUE, "jobs", NULL, "job three");
	mk_sub(f, 3500, "ev.>", "late", MOM_FROM_FIRST);
	cr_assert_eq(admin(f, 4000, "{\"op\":\"queue.move\",\"src\":\"jobs\",\"dst\":\"archive\","
	    "\"max\":1}"), 0);
	publish1(f, 4500, MOM_KIND_TOPIC, "ev.b", NULL, "event b2");
	cr_assert_eq(admin(f, 5000, "{\"op\":\"queue.purge\",\"name\":\"archive\"}"), 0);
	cr_assert_eq(admin(f, 5000, "{\"op\":\"queue.create\",\"name\":\"tmp\"}"), 0);
	cr_assert_eq(admin(f, 5000, "{\"op\":\"queue.delete\",\"name\":\"tmp\"}"), 0);
	cr_assert_eq(admin(f, 6000, "{\"op\":\"queue.create\",\"name\":\"jobs\",\"max_len\":1}"),
	    MOM_EEXIST);
}

/* Every object of one map of a, as JSON, equal to the same-named one in b. */
static void
same_objects(struct fsm *a, struct fsm *b, int kind)
{
	struct smap *ma = kind == 0 ? &a->queues : kind == 1 ? &a->topics : &a->subs;
	struct smap *mb = kind == 0 ? &b->queues : kind == 1 ? &b->topics : &b->subs;
	size_t       it;
	void        *v;

	cr_assert_eq(ma->len, mb->len);
	for (it = 0; smap_next(ma, &it, &v);) {
		json_t *ja, *jb;
		char   *sa, *sb;

		if (kind == 0) {
			struct queue *q = v;

			ja = fsm_queue_json(q);
			jb = fsm_queue_json(queue(b, q->name));
		} else if (kind == 1) {
			struct topic *t = v;

			ja = fsm_topic_json(t);
			jb = fsm_topic_json(fsm_topic(b, t->name, t->nlen));
		} else {
			struct sub *s = v;

			ja = fsm_sub_json(s);
			jb = fsm_sub_json(sub(b, s->pattern, s->name));
		}
		sa = json_dumps(ja, JSON_SORT_KEYS);
		sb = json_dumps(jb, JSON_SORT_KEYS);
		cr_assert_str_eq(sa, sb);
		free(sa);
		free(sb);
		json_decref(ja);
		json_decref(jb);
	}
}

Test(fsm_determinism, same_commands_give_the_same_state)
{
	struct fsm *a = new_fsm(), *b = new_fsm();
	struct got  ga, gb;
	size_t      i;

	run_script(a);
	run_script(b);
	same_objects(a, b, 0);
	same_objects(a, b, 1);
	same_objects(a, b, 2);
	cr_assert_eq(a->next_seq, b->next_seq);
	cr_assert_eq(a->published, b->published);
	cr_assert_eq(a->duplicates, b->duplicates);
	cr_assert_eq(a->published, 7);
	cr_assert_eq(a->duplicates, 6);
	/* And the same messages in the same order. */
	cr_assert_eq(drain(&queue(a, "jobs")->mq, 6000, &ga), drain(&queue(b, "jobs")->mq, 6000, &gb));
	for (i = 0; i < ga.n; i++) {
		cr_assert_eq(ga.seq[i], gb.seq[i]);
		cr_assert_str_eq(ga.payload[i], gb.payload[i]);
	}
	cr_assert_eq(drain(&sub(a, "ev.>", "late")->mq, 6000, &ga),
	    drain(&sub(b, "ev.>", "late")->mq, 6000, &gb));
	for (i = 0; i < ga.n; i++)
		cr_assert_eq(ga.seq[i], gb.seq[i]);
	fsm_free(a);
	fsm_free(b);
}

static uint64_t
digest_of(struct fsm *f, struct fsm_digest *d)
{
	cr_assert_eq(fsm_digest(f, d), 0);
	return d->digest;
}

/* mom-admin cluster digest: equal on nodes that applied the same commands. */
Test(fsm_digest, same_commands_give_the_same_digest_and_leases_do_not_count)
{
	struct fsm        *a = new_fsm(), *b = new_fsm();
	struct fsm_digest  da, db;
	struct got         g;

	run_script(a);
	run_script(b);
	cr_assert_eq(digest_of(a, &da), digest_of(b, &db));
	cr_assert_eq(da.queues, 2);
	cr_assert_eq(da.topics, 2);
	cr_assert_eq(da.subs, 2);
	/* jobs 2 (one moved, archive purged); topics ev.a 2, ev.b 2; subs all 4, late 4. */
	cr_assert_eq(da.messages, 2 + 2 + 2 + 4 + 4, "messages %llu", (unsigned long long)da.messages);
	/* A lease is the leader's alone: the digest stays. */
	cr_assert_eq(drain(&queue(a, "jobs")->mq, 6000, &g), 2);
	cr_assert_eq(digest_of(a, &da), db.digest);
	/* So is giving it back (it goes to the front of the ready list). */
	cr_assert_eq(mq_nack(&queue(a, "jobs")->mq, g.receipt[1], 0, 0, false, 6000), 0);
	cr_assert_eq(digest_of(a, &da), db.digest);
	/* An ack is replicated state: the digest changes. */
	cr_assert_eq(mq_ack(&queue(a, "jobs")->mq, g.receipt[0], 0, 6000), 0);
	cr_assert_neq(digest_of(a, &da), db.digest);
	cr_assert_eq(da.messages, db.messages - 1);
	fsm_free(a);
	fsm_free(b);
}

Test(fsm_digest, a_different_payload_name_or_setting_gives_another_digest)
{
	struct fsm        *f[4];
	struct fsm_digest  d;
	uint64_t           h[4];
	int                i, j;

	for (i = 0; i < 4; i++) {
		f[i] = new_fsm();
		cr_assert_eq(admin(f[i], 1, "{\"op\":\"queue.create\",\"name\":\"%s\",\"max_len\":%d}",
		    i == 1 ? "q2" : "q", i == 2 ? 5 : 4), 0);
		cr_assert_eq(publish1(f[i], 2, MOM_KIND_QUEUE, i == 1 ? "q2" : "q", NULL,
		    i == 3 ? "payload B" : "payload A").stored, 1);
		h[i] = digest_of(f[i], &d);
		cr_assert_eq(d.messages, 1);
	}
	for (i = 0; i < 4; i++)
		for (j = i + 1; j < 4; j++)
			cr_assert_neq(h[i], h[j], "fsm %d and %d", i, j);
	for (i = 0; i < 4; i++)
		fsm_free(f[i]);
}

/* queue.update (issue 12, item 7): what is given changes, the rest and the messages stay. */
Test(fsm_admin, queue_update_changes_what_is_given)
{
	struct fsm *f = new_fsm();

	cr_assert_eq(admin(f, 1, "{\"op\":\"queue.create\",\"name\":\"u\",\"max_len\":4}"), 0);
	publish1(f, 2, MOM_KIND_QUEUE, "u", NULL, "x");
	cr_assert_eq(admin(f, 3, "{\"op\":\"queue.update\",\"name\":\"u\",\"max_deliver\":3,"
	    "\"dead_letter\":\"u.dead\",\"ack_wait_ms\":5000}"), 0);
	cr_assert_eq(queue(f, "u")->mq.cfg.max_deliver, 3);
	cr_assert_eq(queue(f, "u")->mq.cfg.ack_wait_ms, 5000);
	cr_assert_eq(queue(f, "u")->mq.cfg.max_len, 4);
	cr_assert_str_eq(queue(f, "u")->dead_letter, "u.dead");
	cr_assert_eq(mq_count(&queue(f, "u")->mq), 1);
	cr_assert_eq(admin(f, 4, "{\"op\":\"queue.update\",\"name\":\"u\",\"dead_letter\":null}"), 0);
	cr_assert_null(queue(f, "u")->dead_letter);
	cr_assert_eq(admin(f, 5, "{\"op\":\"queue.update\",\"name\":\"u\",\"dead_letter\":\"a b\"}"),
	    MOM_EINVAL);
	cr_assert_eq(admin(f, 5, "{\"op\":\"queue.update\",\"name\":\"nope\",\"max_len\":1}"),
	    MOM_ENOENT);
	fsm_free(f);
}

/*
 * A dead-letter settlement carries the headers the leader made; applying
 * it copies them onto the dead letter (replacing those of an earlier
 * death), keeps the publisher's, and computes nothing.
 */
Test(fsm_settle, dead_letter_headers_come_from_the_command)
{
	struct fsm        *f = new_fsm();
	struct mom_buf     body, cmd, h;
	struct fsm_result  res;
	const char        *lines[] = { "Mom-Dead-Queue: w", "Mom-Dead-Reason: rejected" };
	struct mq_peek     p[2];
	struct mom_slice   v;
	uint64_t           seq;

	cr_assert_eq(admin(f, 1, "{\"op\":\"queue.create\",\"name\":\"w.dead\"}"), 0);
	cr_assert_eq(admin(f, 1, "{\"op\":\"queue.create\",\"name\":\"w\","
	    "\"dead_letter\":\"w.dead\"}"), 0);
	publish1(f, 2, MOM_KIND_QUEUE, "w", NULL, "job");
	cr_assert_eq(mq_peek(&queue(f, "w")->mq, p, 2), 1);
	seq = p[0].m->seq;
	mom_buf_init(&h);
	cr_assert_eq(mom_hdr_build(&h, lines, 2), 0);
	mom_buf_init(&body);
	mom_buf_put_varint(&body, 1);
	fsm_settle_put_dead(&body, queue(f, "w"), seq, h.data, h.len);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, CMD_SETTLE, 3, body.data, body.len);
	fsm_apply(f, cmd.data, cmd.len, &res);
	cr_assert_eq(res.status, 0);
	cr_assert_eq(mq_count(&queue(f, "w")->mq), 0);
	cr_assert_eq(mq_peek(&queue(f, "w.dead")->mq, p, 2), 1);
	cr_assert_eq(p[0].m->seq, seq);
	cr_assert(mom_hdr_get(msg_hdr(p[0].m), p[0].m->hdr_len, "Mom-Dead-Reason", &v));
	cr_assert_eq(v.n, 8);
	cr_assert(memcmp(v.p, "rejected", 8) == 0);
	cr_assert_eq(queue(f, "w")->mq.st.dead_lettered, 1);
	mom_buf_fini(&h);
	mom_buf_fini(&body);
	mom_buf_fini(&cmd);
	fsm_free(f);
}

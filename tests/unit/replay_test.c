/*
 * replay_test.c: the log is the truth.  A "leader" fsm runs random
 * commands together with the leader-local life of its messages (leases,
 * acks, nacks, deliveries without ack, lease and TTL expiry, releases),
 * which reach the state only as logged CMD_SETTLE and CMD_TICK commands,
 * the way the core does it.  A "replica" applies the same log and never
 * leases anything (a restart's replay, a follower).  After every step
 * both must hold the same messages (seq by seq, bytes, counts) and every
 * command must have had the same result on both: otherwise a restart
 * could refuse a publish the leader confirmed (max-len), or keep a
 * message the leader acked.  A snapshot of the leader taken midway,
 * restored and fed the rest of the log, must end the same as well.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "state/fsm.h"
#include "mom.h"
#include "state/mq.h"
#include "wire.h"
#include "xorshift.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const QUEUES[] = { "q1", "q2", "dlq" };
static const char *const TOPICS[] = { "t.a", "t.b" };
static const char *const PATTERNS[] = { "t.a", "t.*" };

struct world {
	struct fsm    *leader, *replica, *restored;
	struct mom_buf log;      /* commands: varint length + command */
	size_t         restored_at; /* log offset the restored copy starts from */
	struct mom_buf settles;
	uint64_t       nsettles;
	int64_t        now;
	struct mq_receipts receipt;
	uint64_t       counter;
	uint64_t       leases[256];
	size_t         nleases;
	uint64_t       seed;
};


#define R(w, n) ((size_t)(rnd(&(w)->seed) % (n)))

static struct fsm *
new_fsm(void)
{
	struct fsm_config cfg;
	struct fsm       *f;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dedupe_window_ms = 3000;
	cfg.retain_ms = 4000;
	cfg.retain_bytes = 400;
	f = fsm_new(&cfg);
	cr_assert_not_null(f);
	return f;
}

/* A replica never asks for settlements: the leader's are in the log. */
static void
replica_settle(void *arg, const struct queue *q, const struct sub *s, uint64_t seq, int how)
{
	(void)arg;
	(void)q;
	(void)s;
	(void)seq;
	(void)how;
}

static void
leader_settle(void *arg, const struct queue *q, const struct sub *s, uint64_t seq, int how)
{
	struct world *w = arg;

	fsm_settle_put(&w->settles, q, s, seq, how);
	w->nsettles++;
}

/* Logs a command and applies it to the leader and the replica: same result. */
static void
run(struct world *w, const struct mom_buf *cmd)
{
	struct fsm_result a, b;

	mom_buf_put_bytes(&w->log, cmd->data, cmd->len);
	fsm_apply(w->leader, cmd->data, cmd->len, &a);
	fsm_apply(w->replica, cmd->data, cmd->len, &b);
	cr_assert_eq(a.status, b.status, "seed %llu: status %d vs %d (%s | %s)",
	    (unsigned long long)w->seed, a.status, b.status, a.err, b.err);
	cr_assert_eq(a.stored, b.stored, "stored %llu vs %llu", (unsigned long long)a.stored,
	    (unsigned long long)b.stored);
	cr_assert_eq(a.duplicates, b.duplicates);
	json_decref(a.json);
	json_decref(b.json);
}

static void
admin(struct world *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
admin(struct world *w, const char *fmt, ...)
{
	char           json[512];
	struct mom_buf cmd;
	va_list        ap;

	va_start(ap, fmt);
	vsnprintf(json, sizeof(json), fmt, ap);
	va_end(ap);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, CMD_ADMIN, w->now, json, strlen(json));
	run(w, &cmd);
	mom_buf_fini(&cmd);
}

static void
publish(struct world *w)
{
	struct mom_buf       body, cmd;
	struct mom_pub_batch b;
	size_t               i, n = 1 + R(w, 4), count_off;
	bool                 topic = R(w, 3) == 0;
	const char          *name = topic ? TOPICS[R(w, N(TOPICS))] : QUEUES[R(w, N(QUEUES))];
	char                 pay[64], id[16];

	mom_buf_init(&body);
	memset(&b, 0, sizeof(b));
	b.producer = R(w, 3);
	b.first_seq = 1 + R(w, 30);
	b.kind = topic ? MOM_KIND_TOPIC : MOM_KIND_QUEUE;
	b.name.p = (const uint8_t *)name;
	b.name.n = strlen(name);
	mom_pub_encode_begin(&body, &b);
	count_off = mom_pub_count_offset(&body, 0);
	for (i = 0; i < n; i++) {
		struct mom_pub_msg m;

		memset(&m, 0, sizeof(m));
		snprintf(pay, sizeof(pay), "payload-%llu-%zu", (unsigned long long)w->counter++,
		    R(w, 100000));
		m.payload.p = (const uint8_t *)pay;
		m.payload.n = R(w, strlen(pay)) + 1;
		if (R(w, 3) == 0) {
			snprintf(id, sizeof(id), "id%zu", R(w, 12));
			m.id.p = (const uint8_t *)id;
			m.id.n = strlen(id);
		}
		m.ttl_ms = R(w, 4) == 0 ? 200 + R(w, 3000) : 0;
		m.delay_ms = R(w, 6) == 0 ? 100 + R(w, 2000) : 0;
		mom_pub_encode_msg(&body, &b, &m);
		b.count++;
	}
	mom_pub_encode_count(&body, count_off, b.count);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, CMD_PUBLISH, w->now, body.data, body.len);
	run(w, &cmd);
	mom_buf_fini(&cmd);
	mom_buf_fini(&body);
}

static size_t
leader_mqs(struct fsm *f, struct mq **out)
{
	size_t n = 0, i;

	for (i = 0; i < N(QUEUES); i++) {
		struct queue *q = fsm_queue(f, QUEUES[i], strlen(QUEUES[i]));

		if (q != NULL)
			out[n++] = &q->mq;
	}
	for (i = 0; i < N(PATTERNS); i++) {
		struct sub *s = fsm_sub(f, PATTERNS[i], strlen(PATTERNS[i]), "s", 1);

		if (s != NULL)
			out[n++] = &s->mq;
	}
	return n;
}

static void
emit(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	struct world *w = arg;

	(void)m;
	(void)deliveries;
	if (w->nleases < N(w->leases))
		w->leases[w->nleases++] = receipt;
}

/* The core's flush: this step's settlements as one logged command. */
static void
flush(struct world *w)
{
	struct mom_buf body, cmd;

	if (w->nsettles == 0)
		return;
	mom_buf_init(&body);
	mom_buf_init(&cmd);
	mom_buf_put_varint(&body, w->nsettles);
	mom_buf_put(&body, w->settles.data, w->settles.len);
	mom_buf_reset(&w->settles);
	w->nsettles = 0;
	fsm_cmd_encode(&cmd, CMD_SETTLE, w->now, body.data, body.len);
	run(w, &cmd);
	mom_buf_fini(&cmd);
	mom_buf_fini(&body);
}

static void
step(struct world *w)
{
	size_t     op = R(w, 100), i, n;
	struct mq *mqs[8];

	n = leader_mqs(w->leader, mqs);
	if (op < 35) {
		publish(w);
	} else if (op < 50 && n > 0) {
		/* Deliveries: leader-local. */
		(void)mq_lease(mqs[R(w, n)], 1 + R(w, 2), 0, 1 + R(w, 4), SIZE_MAX, R(w, 6) == 0,
		    w->now, &w->receipt, emit, w);
	} else if (op < 65 && w->nleases > 0) {
		size_t   k = R(w, w->nleases);
		uint64_t r = w->leases[k];
		int      how = (int)R(w, 3);

		for (i = 0; i < n; i++) {
			int rv = how == 0 ? mq_ack(mqs[i], r, 0, w->now) :
			    how == 1 ? mq_nack(mqs[i], r, 0, R(w, 2) ? 0 : R(w, 1500), R(w, 4) == 0,
			    w->now) : mq_touch(mqs[i], r, 0, w->now);

			if (rv == 0)
				break;
		}
		if (how != 2)
			w->leases[k] = w->leases[--w->nleases];
	} else if (op < 67 && n > 0) {
		mq_release(mqs[R(w, n)], 1 + R(w, 2), w->now);
	} else if (op < 72) {
		admin(w, "{\"op\":\"queue.create\",\"name\":\"%s\",\"max_deliver\":%zu,"
		    "\"ack_wait_ms\":%zu,\"ttl_ms\":%zu,\"max_len\":%zu,\"max_bytes\":%zu%s}",
		    QUEUES[R(w, N(QUEUES))], R(w, 4), 300 + R(w, 2000),
		    R(w, 3) == 0 ? 500 + R(w, 3000) : 0, R(w, 2) ? 3 + R(w, 8) : 0,
		    R(w, 3) == 0 ? 30 + R(w, 100) : 0,
		    R(w, 2) ? ",\"dead_letter\":\"dlq\"" : "");
	} else if (op < 75) {
		admin(w, "{\"op\":\"topic.create\",\"name\":\"%s\"}", TOPICS[R(w, N(TOPICS))]);
	} else if (op < 79) {
		admin(w, "{\"op\":\"sub.create\",\"pattern\":\"%s\",\"name\":\"s\",\"durable\":true,"
		    "\"from\":%zu,\"from_time_ms\":%lld}", PATTERNS[R(w, N(PATTERNS))], R(w, 4),
		    (long long)(w->now - (int64_t)R(w, 3000)));
	} else if (op < 81) {
		admin(w, "{\"op\":\"queue.delete\",\"name\":\"%s\"}", QUEUES[R(w, N(QUEUES))]);
	} else if (op < 82) {
		admin(w, "{\"op\":\"sub.delete\",\"pattern\":\"%s\",\"name\":\"s\"}",
		    PATTERNS[R(w, N(PATTERNS))]);
	} else if (op < 84) {
		admin(w, "{\"op\":\"queue.purge\",\"name\":\"%s\"}", QUEUES[R(w, N(QUEUES))]);
	} else if (op < 87) {
		admin(w, "{\"op\":\"queue.move\",\"src\":\"%s\",\"dst\":\"%s\",\"max\":%zu}",
		    QUEUES[R(w, N(QUEUES))], QUEUES[R(w, N(QUEUES))], R(w, 4));
	} else {
		/* Time passes: the core's timers. */
		w->now += (int64_t)R(w, 1200);
		for (i = 0; i < n; i++)
			(void)mq_tick(mqs[i], w->now);
		if (fsm_due(w->leader, w->now)) {
			struct mom_buf cmd;

			mom_buf_init(&cmd);
			fsm_cmd_encode(&cmd, CMD_TICK, w->now, NULL, 0);
			run(w, &cmd);
			mom_buf_fini(&cmd);
		}
	}
	flush(w);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* An mq's messages as a sorted seq list, with its counts. */
static void
mq_content(const struct mq *q, struct mom_buf *out)
{
	uint64_t           *seqs;
	size_t              n = 0, i;
	const struct lease *l;

	seqs = calloc(mq_count(q) + 1, sizeof(*seqs));
	cr_assert_not_null(seqs);
	for (i = 0; i < q->rlen; i++)
		seqs[n++] = q->ring[(q->rhead + i) & (q->rcap - 1)].m->seq;
	for (i = 0; i < q->dlen; i++)
		seqs[n++] = q->delayed[i].e.m->seq;
	for (l = q->lhead; l; l = l->next)
		seqs[n++] = l->e.m->seq;
	cr_assert_eq(n, mq_count(q));
	qsort(seqs, n, sizeof(*seqs), cmp_u64);
	mom_buf_put_varint(out, n);
	mom_buf_put_varint(out, q->bytes);
	for (i = 0; i < n; i++)
		mom_buf_put_varint(out, seqs[i]);
	free(seqs);
}

/* What the log decides: every queue's, topic's and subscription's messages. */
static void
content(struct fsm *f, struct mom_buf *out)
{
	size_t i;

	mom_buf_reset(out);
	mom_buf_put_varint(out, f->next_seq);
	mom_buf_put_varint(out, f->ids.len);
	mom_buf_put_varint(out, f->producers.len);
	for (i = 0; i < N(QUEUES); i++) {
		struct queue *q = fsm_queue(f, QUEUES[i], strlen(QUEUES[i]));

		mom_buf_put_u8(out, q != NULL);
		if (q != NULL)
			mq_content(&q->mq, out);
	}
	for (i = 0; i < N(TOPICS); i++) {
		struct topic *t = fsm_topic(f, TOPICS[i], strlen(TOPICS[i]));
		size_t        k;

		mom_buf_put_u8(out, t != NULL);
		if (t == NULL)
			continue;
		mom_buf_put_varint(out, t->llen);
		mom_buf_put_varint(out, t->bytes);
		for (k = 0; k < t->llen; k++)
			mom_buf_put_varint(out, t->log[(t->lhead + k) & (t->lcap - 1)]->seq);
	}
	for (i = 0; i < N(PATTERNS); i++) {
		struct sub *s = fsm_sub(f, PATTERNS[i], strlen(PATTERNS[i]), "s", 1);

		mom_buf_put_u8(out, s != NULL);
		if (s != NULL)
			mq_content(&s->mq, out);
	}
}

static void
same_content(struct world *w, struct fsm *a, struct fsm *b, const char *what, int stepno)
{
	struct mom_buf x, y;

	mom_buf_init(&x);
	mom_buf_init(&y);
	content(a, &x);
	content(b, &y);
	if (getenv("MOM_REPLAY_DEBUG") && (x.len != y.len || memcmp(x.data, y.data, x.len) != 0)) {
		size_t k;

		for (k = 0; k < x.len; k++)
			fprintf(stderr, "%u%s", x.data[k], k + 1 < x.len ? "," : "\n");
		for (k = 0; k < y.len; k++)
			fprintf(stderr, "%u%s", y.data[k], k + 1 < y.len ? "," : "\n");
	}
	cr_assert(x.len == y.len && memcmp(x.data, y.data, x.len) == 0,
	    "seed %llu step %d: %s differs from the leader", (unsigned long long)w->seed,
	    stepno, what);
	mom_buf_fini(&x);
	mom_buf_fini(&y);
}

/* Applies the log from off to its end to f. */
static void
replay(struct world *w, struct fsm *f, size_t off)
{
	struct mom_rd r;

	mom_rd_init(&r, w->log.data, w->log.len);
	r.off = off;
	while (r.off < r.len) {
		struct fsm_result res;
		size_t            len;
		const uint8_t    *cmd = mom_rd_bytes(&r, &len);

		cr_assert(!r.err);
		fsm_apply(f, cmd, len, &res);
		json_decref(res.json);
	}
}

static void
world_run(uint64_t seed, int steps)
{
	struct world   w;
	struct mom_buf snap;
	int            i;

	memset(&w, 0, sizeof(w));
	w.seed = seed;
	w.now = 1000000;
	w.receipt = (struct mq_receipts){ 0 };
	w.leader = new_fsm();
	w.replica = new_fsm();
	mom_buf_init(&w.log);
	mom_buf_init(&w.settles);
	mom_buf_init(&snap);
	fsm_set_settle(w.leader, leader_settle, &w);
	fsm_set_settle(w.replica, replica_settle, NULL);
	for (i = 0; i < steps; i++) {
		step(&w);
		same_content(&w, w.leader, w.replica, "the replica", i);
		if (i == steps / 2) {
			cr_assert_eq(fsm_snapshot(w.leader, &snap), 0);
			w.restored_at = w.log.len;
		}
	}
	/* A restart: the leader's snapshot, then the log after it. */
	w.restored = new_fsm();
	fsm_set_settle(w.restored, replica_settle, NULL);
	cr_assert_eq(fsm_restore(w.restored, snap.data, snap.len), 0);
	replay(&w, w.restored, w.restored_at);
	same_content(&w, w.leader, w.restored, "snapshot + log", steps);
	/* And the whole log from nothing. */
	fsm_free(w.restored);
	w.restored = new_fsm();
	fsm_set_settle(w.restored, replica_settle, NULL);
	replay(&w, w.restored, 0);
	same_content(&w, w.leader, w.restored, "the whole log", steps);
	fsm_free(w.restored);
	fsm_free(w.leader);
	fsm_free(w.replica);
	mom_buf_fini(&w.log);
	mom_buf_fini(&w.settles);
	mom_buf_fini(&snap);
}

Test(replay, leader_and_replica_agree_on_every_message, .timeout = 60)
{
	uint64_t seed;

	for (seed = 1; seed <= 300; seed++)
		world_run(seed * 0x9e3779b97f4a7c15ull, 400);
}

Test(replay, an_ack_is_a_logged_command)
{
	struct world w;

	/* Direct: lease, ack, and nothing leaves until the settle is applied. */
	memset(&w, 0, sizeof(w));
	w.seed = 7;
	w.now = 1000;
	w.receipt = (struct mq_receipts){ 0 };
	w.leader = new_fsm();
	w.replica = new_fsm();
	mom_buf_init(&w.log);
	mom_buf_init(&w.settles);
	fsm_set_settle(w.leader, leader_settle, &w);
	admin(&w, "{\"op\":\"queue.create\",\"name\":\"q1\"}");
	while (fsm_queue(w.leader, "q1", 2)->mq.rlen == 0)
		publish(&w);
	{
		struct mq *q = &fsm_queue(w.leader, "q1", 2)->mq;
		size_t     before = mq_count(q);

		cr_assert_eq(mq_lease(q, 1, 0, 1, SIZE_MAX, false, w.now, &w.receipt, emit, &w), 1);
		cr_assert_eq(mq_ack(q, w.leases[0], 0, w.now), 0);
		cr_assert_eq(w.nsettles, 1, "the ack asks the log");
		cr_assert_eq(mq_count(q), before, "and nothing left yet");
		cr_assert_eq(mq_ack(q, w.leases[0], 0, w.now), 0, "a second ack is harmless");
		cr_assert_eq(w.nsettles, 1, "and not asked twice");
		cr_assert_eq(mq_nack(q, w.leases[0], 0, 0, false, w.now), MOM_ENOENT,
		    "a nack after the ack is too late");
		flush(&w);
		cr_assert_eq(mq_count(q), before - 1, "applied: gone");
		cr_assert_eq(mq_ack(q, w.leases[0], 0, w.now), MOM_ENOENT, "and its receipt is stale");
	}
	same_content(&w, w.leader, w.replica, "the replica", 0);
	fsm_free(w.leader);
	fsm_free(w.replica);
	mom_buf_fini(&w.log);
	mom_buf_fini(&w.settles);
}

/* Debugging aid: MOM_REPLAY_DEBUG=1 prints both contents on a mismatch. */

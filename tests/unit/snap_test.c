/*
 * snap_test.c: fsm snapshots.  Random command sequences (creates, deletes,
 * publishes with ids, producers, ttl, delay and headers, fetches, acks,
 * nacks, releases, retention, subscriptions, moves, purges, timers): a
 * snapshot restores to the same state (the same bytes again), and the
 * restored machine then follows the original step for step; the
 * de-duplication window survives; leases come back as ready with their
 * delivery counts; every truncation and bit flip of a snapshot is refused
 * and leaves the target unchanged.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "buf.h"
#include "state/fsm.h"
#include "crc32c.h"
#include "mom.h"
#include "state/mq.h"
#include "storage/store.h"
#include "wire.h"
#include "xorshift.h"

static struct fsm *
new_fsm(void)
{
	struct fsm_config cfg;
	struct fsm       *f;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dedupe_window_ms = 10000;
	f = fsm_new(&cfg);
	cr_assert_not_null(f);
	return f;
}


#define R(s, n) ((size_t)(rnd(s) % (n)))

static int
admin(struct fsm *f, int64_t t, struct mom_buf *trace, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
admin(struct fsm *f, int64_t t, struct mom_buf *trace, const char *fmt, ...)
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
	if (trace != NULL)
		mom_buf_put_varint(trace, (uint64_t)res.status);
	json_decref(res.json);
	return res.status;
}

/* One publish message. */
struct pm {
	uint8_t     kind;    /* 0: the batch target */
	const char *name;
	const char *id;
	const char *payload;
	uint64_t    ttl_ms, delay_ms;
	bool        headers;
};

static struct fsm_result
publish(struct fsm *f, int64_t t, uint64_t producer, uint64_t first_seq, uint8_t kind,
    const char *name, const struct pm *msgs, size_t n, struct mom_buf *trace)
{
	struct mom_buf       body, hdr, cmd;
	struct mom_pub_batch b;
	struct fsm_result    res;
	size_t               i, count_off;

	mom_buf_init(&body);
	mom_buf_init(&hdr);
	mom_buf_put_varint(&hdr, 2);
	mom_buf_put_bytes(&hdr, "trace-id", 8);
	mom_buf_put_bytes(&hdr, "abc", 3);
	mom_buf_put_bytes(&hdr, "Content-Type", 12);
	mom_buf_put_bytes(&hdr, "text/plain", 10);
	memset(&b, 0, sizeof(b));
	b.producer = producer;
	b.first_seq = first_seq;
	b.kind = kind;
	b.name.p = (const uint8_t *)name;
	b.name.n = strlen(name);
	mom_pub_encode_begin(&body, &b);
	count_off = mom_pub_count_offset(&body, 0);
	for (i = 0; i < n; i++) {
		struct mom_pub_msg m;

		memset(&m, 0, sizeof(m));
		m.kind = msgs[i].kind;
		if (msgs[i].name != NULL) {
			m.name.p = (const uint8_t *)msgs[i].name;
			m.name.n = strlen(msgs[i].name);
		}
		if (msgs[i].id != NULL) {
			m.id.p = (const uint8_t *)msgs[i].id;
			m.id.n = strlen(msgs[i].id);
		}
		m.payload.p = (const uint8_t *)msgs[i].payload;
		m.payload.n = strlen(msgs[i].payload);
		m.ttl_ms = msgs[i].ttl_ms;
		m.delay_ms = msgs[i].delay_ms;
		if (msgs[i].headers) {
			m.headers.p = hdr.data;
			m.headers.n = hdr.len;
		}
		mom_pub_encode_msg(&body, &b, &m);
		b.count++;
	}
	mom_pub_encode_count(&body, count_off, b.count);
	mom_buf_init(&cmd);
	fsm_cmd_encode(&cmd, CMD_PUBLISH, t, body.data, body.len);
	fsm_apply(f, cmd.data, cmd.len, &res);
	json_decref(res.json);
	res.json = NULL;
	if (trace != NULL) {
		mom_buf_put_varint(trace, (uint64_t)res.status);
		mom_buf_put_varint(trace, res.stored);
		mom_buf_put_varint(trace, res.duplicates);
	}
	mom_buf_fini(&cmd);
	mom_buf_fini(&body);
	mom_buf_fini(&hdr);
	return res;
}

static struct mom_buf
snap(const struct fsm *f)
{
	struct mom_buf b;

	mom_buf_init(&b);
	cr_assert_eq(fsm_snapshot(f, &b), 0);
	return b;
}

static void
assert_same_bytes(const struct mom_buf *a, const struct mom_buf *b, const char *what)
{
	cr_assert_eq(a->len, b->len, "%s: %zu vs %zu bytes", what, a->len, b->len);
	cr_assert(memcmp(a->data, b->data, a->len) == 0, "%s: bytes differ", what);
}

/* The world a random script runs in: one fsm, its clock, receipts, leases. */
#define MAXLEASES 512
struct world {
	struct fsm    *f;
	int64_t        now;
	struct mq_receipts receipt;
	uint64_t       leases[MAXLEASES];
	size_t         nleases;
	unsigned       counter;
	struct mom_buf trace; /* everything observable, to compare two worlds */
};

static const char *const QUEUES[] = { "q0", "q1", "q2", "q3" };
static const char *const TOPICS[] = { "t.a", "t.b", "u.c" };
static const char *const PATTERNS[] = { "t.*", "t.a", ">", "u.>" };
static const char *const SUBNAMES[] = { "s0", "s1" };
static const char *const IDS[] = { "i0", "i1", "i2", "i3", "i4", "i5" };
#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Every mq, in a fixed order (never the maps' order: it depends on history). */
static size_t
all_mqs(struct fsm *f, struct mq **out)
{
	size_t i, j, n = 0;

	for (i = 0; i < N(QUEUES); i++) {
		struct queue *q = fsm_queue(f, QUEUES[i], strlen(QUEUES[i]));

		if (q != NULL)
			out[n++] = &q->mq;
	}
	for (i = 0; i < N(PATTERNS); i++)
		for (j = 0; j < N(SUBNAMES); j++) {
			struct sub *s = fsm_sub(f, PATTERNS[i], strlen(PATTERNS[i]), SUBNAMES[j],
			    strlen(SUBNAMES[j]));

			if (s != NULL)
				out[n++] = &s->mq;
		}
	return n;
}

static void
emit(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	struct world *w = arg;

	mom_buf_put_varint(&w->trace, m->seq);
	mom_buf_put_varint(&w->trace, receipt);
	mom_buf_put_varint(&w->trace, deliveries);
	mom_buf_put_bytes(&w->trace, msg_payload(m), m->len);
	mom_buf_put_bytes(&w->trace, msg_id(m), m->id_len);
	mom_buf_put_bytes(&w->trace, msg_hdr(m), m->hdr_len);
	mom_buf_put_varint(&w->trace, (uint64_t)m->expires_ms);
	if (w->nleases < MAXLEASES)
		w->leases[w->nleases++] = receipt;
}

/* Acks/nacks/touches a receipt wherever it is leased. */
static void
settle(struct world *w, uint64_t receipt, int how, uint64_t delay, bool unseen)
{
	struct mq *mqs[16];
	size_t     i, n = all_mqs(w->f, mqs);

	for (i = 0; i < n; i++) {
		int rv = how == 0 ? mq_ack(mqs[i], receipt, 0, w->now) :
		    how == 1 ? mq_nack(mqs[i], receipt, 0, delay, unseen, w->now) :
		    mq_touch(mqs[i], receipt, 0, w->now);

		if (rv == 0) {
			mom_buf_put_varint(&w->trace, i);
			return;
		}
	}
}

/* Gives back every lease (as a consumer leaving does): a snapshot without leases. */
static void
release_all(struct world *w)
{
	struct mq *mqs[16];
	size_t     i, c, n = all_mqs(w->f, mqs);

	for (i = 0; i < n; i++)
		for (c = 1; c <= 3; c++)
			mq_release(mqs[i], c, w->now);
	w->nleases = 0;
}

static void
step(struct world *w, uint64_t *s)
{
	struct fsm *f = w->f;
	size_t      op = R(s, 100), i;
	char        pay[64][32];
	struct pm   msgs[6];

	if (op < 35) {
		size_t      n = 1 + R(s, 5);
		uint64_t    producer = R(s, 3);
		uint64_t    first = 1 + R(s, 20);
		bool        topic = R(s, 2);
		const char *target = topic ? TOPICS[R(s, N(TOPICS))] : QUEUES[R(s, N(QUEUES))];

		for (i = 0; i < n; i++) {
			memset(&msgs[i], 0, sizeof(msgs[i]));
			if (R(s, 4) == 0) {
				bool t2 = R(s, 2);

				msgs[i].kind = t2 ? MOM_KIND_TOPIC : MOM_KIND_QUEUE;
				msgs[i].name = t2 ? TOPICS[R(s, N(TOPICS))] : QUEUES[R(s, N(QUEUES))];
			}
			msgs[i].id = R(s, 2) ? IDS[R(s, N(IDS))] : NULL;
			msgs[i].ttl_ms = R(s, 4) == 0 ? 500 + R(s, 5000) : 0;
			msgs[i].delay_ms = R(s, 5) == 0 ? 100 + R(s, 3000) : 0;
			msgs[i].headers = R(s, 3) == 0;
			snprintf(pay[i], sizeof(pay[i]), "p%u-%zu", w->counter++, R(s, 1000));
			msgs[i].payload = pay[i];
		}
		publish(f, w->now, producer, first, topic ? MOM_KIND_TOPIC : MOM_KIND_QUEUE, target,
		    msgs, n, &w->trace);
	} else if (op < 50) {
		struct mq *mqs[16];
		size_t     n = all_mqs(f, mqs);

		if (n > 0) {
			struct mq *q = mqs[R(s, n)];
			uint64_t   consumer = 1 + R(s, 3);
			size_t     max = 1 + R(s, 5);
			bool       noack = R(s, 6) == 0;

			mom_buf_put_varint(&w->trace, mq_lease(q, consumer, 0, max, SIZE_MAX, noack, w->now,
			    &w->receipt, emit, w));
		}
	} else if (op < 62) {
		if (w->nleases > 0) {
			size_t   k = R(s, w->nleases);
			uint64_t receipt = w->leases[k];
			int      how = (int)R(s, 3);

			settle(w, receipt, how, R(s, 2) ? 0 : R(s, 2000), R(s, 4) == 0);
			if (how != 2)
				w->leases[k] = w->leases[--w->nleases];
		}
	} else if (op < 64) {
		struct mq *mqs[16];
		size_t     n = all_mqs(f, mqs);

		if (n > 0)
			mq_release(mqs[R(s, n)], 1 + R(s, 3), w->now);
	} else if (op < 70) {
		const char *dl = R(s, 2) ? QUEUES[R(s, N(QUEUES))] : NULL;
		char        dlq[64] = "";

		if (dl != NULL)
			snprintf(dlq, sizeof(dlq), ",\"dead_letter\":\"%s\"", dl);
		admin(f, w->now, &w->trace, "{\"op\":\"queue.create\",\"name\":\"%s\","
		    "\"max_deliver\":%zu,\"ack_wait_ms\":%zu,\"ttl_ms\":%zu,\"max_len\":%zu%s,"
		    "\"owner\":\"u%zu\"}",
		    QUEUES[R(s, N(QUEUES))], R(s, 4), 500 + R(s, 3000),
		    R(s, 3) == 0 ? 1000 + R(s, 5000) : 0, R(s, 3) == 0 ? 3 + R(s, 10) : 0, dlq,
		    R(s, 3));
	} else if (op < 74) {
		admin(f, w->now, &w->trace, "{\"op\":\"topic.create\",\"name\":\"%s\","
		    "\"retain_ms\":%zu,\"retain_bytes\":%zu,\"owner\":\"o\"}",
		    TOPICS[R(s, N(TOPICS))], 1000 + R(s, 10000), 20 + R(s, 200));
	} else if (op < 79) {
		admin(f, w->now, &w->trace, "{\"op\":\"sub.create\",\"pattern\":\"%s\",\"name\":\"%s\","
		    "\"durable\":%s,\"from\":%zu,\"from_time_ms\":%lld,\"consumer\":%zu}",
		    PATTERNS[R(s, N(PATTERNS))], SUBNAMES[R(s, N(SUBNAMES))],
		    R(s, 2) ? "true" : "false", R(s, 4), (long long)(w->now - (int64_t)R(s, 3000)),
		    R(s, 4));
	} else if (op < 81) {
		admin(f, w->now, &w->trace, "{\"op\":\"queue.delete\",\"name\":\"%s\"}",
		    QUEUES[R(s, N(QUEUES))]);
	} else if (op < 82) {
		admin(f, w->now, &w->trace, "{\"op\":\"topic.delete\",\"name\":\"%s\"}",
		    TOPICS[R(s, N(TOPICS))]);
	} else if (op < 84) {
		admin(f, w->now, &w->trace, "{\"op\":\"sub.delete\",\"pattern\":\"%s\",\"name\":\"%s\"}",
		    PATTERNS[R(s, N(PATTERNS))], SUBNAMES[R(s, N(SUBNAMES))]);
	} else if (op < 85) {
		admin(f, w->now, &w->trace, "{\"op\":\"queue.purge\",\"name\":\"%s\"}",
		    QUEUES[R(s, N(QUEUES))]);
	} else if (op < 88) {
		admin(f, w->now, &w->trace, "{\"op\":\"queue.move\",\"src\":\"%s\",\"dst\":\"%s\","
		    "\"max\":%zu}", QUEUES[R(s, N(QUEUES))], QUEUES[R(s, N(QUEUES))], R(s, 4));
	} else {
		struct mq *mqs[16];
		size_t     n;

		w->now += (int64_t)R(s, 2500);
		mom_buf_put_varint(&w->trace, (uint64_t)fsm_tick(f, w->now));
		n = all_mqs(f, mqs);
		for (i = 0; i < n; i++)
			mom_buf_put_varint(&w->trace, (uint64_t)mq_tick(mqs[i], w->now));
	}
}

static void
world_init(struct world *w, struct fsm *f, int64_t now, struct mq_receipts receipt)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->now = now;
	w->receipt = receipt;
	mom_buf_init(&w->trace);
}

static void
world_fini(struct world *w)
{
	fsm_free(w->f);
	mom_buf_fini(&w->trace);
}

/* Every queue, topic and subscription of a equal, as JSON, to b's. */
static void
same_json(struct fsm *a, struct fsm *b)
{
	struct smap *ma[3] = { &a->queues, &a->topics, &a->subs };
	struct smap *mb[3] = { &b->queues, &b->topics, &b->subs };
	int          kind;

	for (kind = 0; kind < 3; kind++) {
		size_t it;
		void  *v;

		cr_assert_eq(ma[kind]->len, mb[kind]->len);
		for (it = 0; smap_next(ma[kind], &it, &v);) {
			json_t *ja, *jb;
			char   *sa, *sb;

			if (kind == 0) {
				struct queue *q = v;

				ja = fsm_queue_json(q);
				jb = fsm_queue_json(fsm_queue(b, q->name, q->nlen));
			} else if (kind == 1) {
				struct topic *t = v;

				ja = fsm_topic_json(t);
				jb = fsm_topic_json(fsm_topic(b, t->name, t->nlen));
			} else {
				struct sub *s = v;

				ja = fsm_sub_json(s);
				jb = fsm_sub_json(fsm_sub(b, s->pattern, strlen(s->pattern), s->name,
				    strlen(s->name)));
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
}

/* What a state holds: leased, delayed, ready, retained, sub backlog, producers, ids. */
static void
coverage(struct fsm *f, size_t *cov)
{
	size_t it;
	void  *v;

	for (it = 0; smap_next(&f->queues, &it, &v);) {
		struct queue *q = v;

		cov[0] += q->mq.nleased;
		cov[1] += q->mq.dlen;
		cov[2] += q->mq.rlen;
	}
	for (it = 0; smap_next(&f->topics, &it, &v);)
		cov[3] += ((struct topic *)v)->llen;
	for (it = 0; smap_next(&f->subs, &it, &v);)
		cov[4] += mq_count(&((struct sub *)v)->mq);
	cov[5] += f->producers.len;
	cov[6] += f->ids.len;
}

#define SEEDS  24
#define PREFIX 200
#define SUFFIX 150

Test(snap, restored_state_is_the_same_and_follows_the_original_step_for_step)
{
	uint64_t seed;
	size_t   total_msgs = 0, cov[7] = { 0 };

	for (seed = 1; seed <= SEEDS; seed++) {
		uint64_t       s = seed * 0x9E3779B97F4A7C15ULL, s1, s2;
		struct world   a, b;
		struct mom_buf sa, sb;
		size_t         i;

		world_init(&a, new_fsm(), 1000, (struct mq_receipts){ 0 });
		for (i = 0; i < PREFIX; i++)
			step(&a, &s);
		coverage(a.f, cov);
		/* With leases outstanding: the bytes are still a fixed point. */
		sa = snap(a.f);
		world_init(&b, new_fsm(), a.now, a.receipt);
		b.counter = a.counter;
		cr_assert_eq(fsm_restore(b.f, sa.data, sa.len), 0, "seed %llu",
		    (unsigned long long)seed);
		sb = snap(b.f);
		assert_same_bytes(&sa, &sb, "snapshot(restore(snapshot(S)))");
		mom_buf_fini(&sa);
		mom_buf_fini(&sb);
		fsm_free(b.f);

		/* Without leases, the restored machine is the same machine. */
		release_all(&a);
		sa = snap(a.f);
		b.f = new_fsm();
		if (seed % 2) {
			/* In two halves, as a follower installs one (the parse off its thread). */
			struct fsm *n;

			cr_assert_eq(fsm_restore_parse(&b.f->cfg, sa.data, sa.len, &n), 0);
			fsm_restore_swap(b.f, n);
		} else
			cr_assert_eq(fsm_restore(b.f, sa.data, sa.len), 0);
		total_msgs += a.f->published;
		same_json(a.f, b.f);
		cr_assert_eq(a.f->next_seq, b.f->next_seq);
		cr_assert_eq(a.f->published, b.f->published);
		cr_assert_eq(a.f->duplicates, b.f->duplicates);
		cr_assert_eq(a.f->dead_dropped, b.f->dead_dropped);
		cr_assert_eq(a.f->last_time, b.f->last_time);
		mom_buf_fini(&sa);
		mom_buf_reset(&a.trace);
		for (i = 0; i < SUFFIX; i++) {
			s1 = s2 = s;
			step(&a, &s1);
			step(&b, &s2);
			cr_assert_eq(s1, s2, "seed %llu step %zu: the worlds diverged",
			    (unsigned long long)seed, i);
			s = s1;
			cr_assert_eq(a.trace.len, b.trace.len, "seed %llu step %zu",
			    (unsigned long long)seed, i);
			cr_assert(a.trace.len == 0 || memcmp(a.trace.data, b.trace.data, a.trace.len) == 0,
			    "seed %llu step %zu: different results or deliveries",
			    (unsigned long long)seed, i);
			if (i % 25 == 24 || i == SUFFIX - 1) {
				sa = snap(a.f);
				sb = snap(b.f);
				assert_same_bytes(&sa, &sb, "after the same steps");
				mom_buf_fini(&sa);
				mom_buf_fini(&sb);
			}
		}
		same_json(a.f, b.f);
		world_fini(&a);
		world_fini(&b);
	}
	cr_assert_gt(total_msgs, 1000, "the scripts publish (%zu)", total_msgs);
	cr_log_info("at snapshot time, over all seeds: %zu leased, %zu delayed, %zu ready in queues, "
	    "%zu retained, %zu in subscriptions, %zu producers, %zu ids",
	    cov[0], cov[1], cov[2], cov[3], cov[4], cov[5], cov[6]);
	for (seed = 0; seed < 7; seed++)
		cr_assert_gt(cov[seed], 0, "the scripts reach every kind of state (%llu)",
		    (unsigned long long)seed);
}

/*
 * A snapshot taken in two halves (fsm_snap_begin, then the state moves on:
 * more steps, every queue purged, every topic deleted, so that messages it
 * holds are dropped by the state; then fsm_snap_write) has the bytes of a
 * whole snapshot taken at begin.  Under valgrind this also shows that the
 * messages it holds outlive the state's references.
 */
Test(snap, a_snapshot_begun_then_written_later_has_the_bytes_of_its_beginning)
{
	for (uint64_t seed = 1; seed <= 8; seed++) {
		uint64_t         s = seed * 0x9E3779B97F4A7C15ULL;
		struct world     a;
		struct fsm_snap *h;
		struct mom_buf   sa, sb;
		size_t           i;

		world_init(&a, new_fsm(), 1000, (struct mq_receipts){ 0 });
		for (i = 0; i < PREFIX; i++)
			step(&a, &s);
		sa = snap(a.f);
		cr_assert_eq(fsm_snap_begin(a.f, &h), 0);
		cr_assert_geq(fsm_snap_size(h), sa.len, "the size bounds the snapshot");
		for (i = 0; i < SUFFIX; i++)
			step(&a, &s);
		for (i = 0; i < sizeof(QUEUES) / sizeof(QUEUES[0]); i++) {
			(void)admin(a.f, a.now, NULL, "{\"op\":\"queue.purge\",\"name\":\"%s\"}",
			    QUEUES[i]);
		}
		for (i = 0; i < sizeof(TOPICS) / sizeof(TOPICS[0]); i++) {
			(void)admin(a.f, a.now, NULL, "{\"op\":\"topic.delete\",\"name\":\"%s\"}",
			    TOPICS[i]);
		}
		mom_buf_init(&sb);
		cr_assert_eq(fsm_snap_write(h, &sb), 0);
		fsm_snap_end(h);
		assert_same_bytes(&sa, &sb, "written after the state moved on");
		mom_buf_fini(&sb);
		/* And the state did move on. */
		sb = snap(a.f);
		cr_assert(sb.len != sa.len || memcmp(sb.data, sa.data, sa.len) != 0, "seed %llu",
		    (unsigned long long)seed);
		mom_buf_fini(&sa);
		mom_buf_fini(&sb);
		world_fini(&a);
	}
}

Test(snap, empty_fsm_round_trips)
{
	struct fsm    *a = new_fsm(), *b = new_fsm();
	struct mom_buf sa = snap(a), sb;

	cr_assert_eq(sa.len, 16 + 4 + 6 + 5, "header, trailer, counters and 6 empty lists");
	cr_assert_eq(fsm_restore(b, sa.data, sa.len), 0);
	sb = snap(b);
	assert_same_bytes(&sa, &sb, "empty");
	mom_buf_fini(&sa);
	mom_buf_fini(&sb);
	fsm_free(a);
	fsm_free(b);
}

static void
count_emit(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	uint32_t *d = arg;

	(void)receipt;
	d[m->seq] = deliveries;
}

Test(snap, leased_messages_come_back_ready_with_their_delivery_counts)
{
	struct fsm    *a = new_fsm(), *b = new_fsm();
	struct pm      m[3] = { { .payload = "one" }, { .payload = "two" }, { .payload = "three" } };
	struct mom_buf sa, sb;
	struct mq_receipts receipt = { 0 };
	uint32_t       d[8] = { 0 };
	struct queue  *q;

	cr_assert_eq(admin(a, 0, NULL, "{\"op\":\"queue.create\",\"name\":\"work\"}"), 0);
	cr_assert_eq(publish(a, 0, 0, 0, MOM_KIND_QUEUE, "work", m, 3, NULL).stored, 3);
	q = fsm_queue(a, "work", 4);
	/* "one" twice (leased, expired, leased again), "two" once; "three" stays ready. */
	cr_assert_eq(mq_lease(&q->mq, 1, 0, 1, SIZE_MAX, false, 0, &receipt, count_emit, d), 1);
	mq_tick(&q->mq, 60000);
	cr_assert_eq(mq_lease(&q->mq, 1, 0, 2, SIZE_MAX, false, 60000, &receipt, count_emit, d), 2);
	cr_assert_eq(d[1], 2);
	cr_assert_eq(d[2], 1);
	cr_assert_eq(q->mq.nleased, 2);
	sa = snap(a);
	cr_assert_eq(fsm_restore(b, sa.data, sa.len), 0);
	q = fsm_queue(b, "work", 4);
	cr_assert_eq(q->mq.nleased, 0);
	cr_assert_eq(q->mq.rlen, 3);
	cr_assert_eq(q->mq.bytes, 11);
	cr_assert_eq(q->mq.st.delivered, 3, "stats as they were");
	memset(d, 0, sizeof(d));
	cr_assert_eq(mq_lease(&q->mq, 1, 0, 3, SIZE_MAX, false, 70000, &receipt, count_emit, d), 3);
	cr_assert_eq(d[1], 3, "delivered again, counted");
	cr_assert_eq(d[2], 2);
	cr_assert_eq(d[3], 1);
	sb = snap(b);
	cr_assert_gt(sb.len, 0);
	mom_buf_fini(&sa);
	mom_buf_fini(&sb);
	fsm_free(a);
	fsm_free(b);
}

/* Records the seqs in the order they are handed out. */
static void
seq_emit(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	uint64_t *order = arg;

	(void)receipt;
	(void)deliveries;
	order[++order[0]] = m->seq;
}

/* Issue 12, item 4: what a restart gives back comes back in sequence order. */
Test(snap, leased_messages_come_back_in_sequence_order_before_newer_ones)
{
	struct fsm        *a = new_fsm(), *b = new_fsm();
	struct pm          m[5] = { { .payload = "1" }, { .payload = "2" }, { .payload = "3" },
		{ .payload = "4" }, { .payload = "5" } };
	struct mom_buf     sa;
	struct mq_receipts receipt = { 0 };
	uint64_t           order[8] = { 0 }, r1;
	struct queue      *q;
	size_t             i;

	cr_assert_eq(admin(a, 0, NULL, "{\"op\":\"queue.create\",\"name\":\"work\"}"), 0);
	cr_assert_eq(publish(a, 0, 0, 0, MOM_KIND_QUEUE, "work", m, 5, NULL).stored, 5);
	q = fsm_queue(a, "work", 4);
	cr_assert_eq(mq_lease(&q->mq, 1, 0, 3, SIZE_MAX, false, 0, &receipt, seq_emit, order), 3);
	/* A touch puts the first lease last: lease order 2, 3, 1. */
	r1 = receipt.epoch << MQ_RECEIPT_BITS | 1;
	cr_assert_eq(mq_touch(&q->mq, r1, 0, 10), 0);
	sa = snap(a);
	cr_assert_eq(fsm_restore(b, sa.data, sa.len), 0);
	q = fsm_queue(b, "work", 4);
	memset(order, 0, sizeof(order));
	cr_assert_eq(mq_lease(&q->mq, 1, 0, 5, SIZE_MAX, false, 20, &receipt, seq_emit, order), 5);
	for (i = 1; i <= 5; i++)
		cr_assert_eq(order[i], order[1] + i - 1, "position %zu holds seq %llu", i,
		    (unsigned long long)order[i]);
	mom_buf_fini(&sa);
	fsm_free(a);
	fsm_free(b);
}

Test(snap, deduplication_survives_a_restore)
{
	struct fsm       *a = new_fsm(), *b = new_fsm();
	struct pm         m[3] = { { .id = "x", .payload = "1" }, { .payload = "2" },
	                           { .payload = "3", .delay_ms = 5000, .headers = true } };
	struct pm         dup = { .id = "x", .payload = "again" };
	struct mom_buf    sa;
	struct fsm_result res;
	struct queue     *q;

	cr_assert_eq(admin(a, 1000, NULL, "{\"op\":\"queue.create\",\"name\":\"work\"}"), 0);
	cr_assert_eq(publish(a, 1000, 7, 1, MOM_KIND_QUEUE, "work", m, 3, NULL).stored, 3);
	sa = snap(a);
	cr_assert_eq(fsm_restore(b, sa.data, sa.len), 0);
	mom_buf_fini(&sa);
	/* The same batch again (a client resending): all duplicates by producer range. */
	res = publish(b, 2000, 7, 1, MOM_KIND_QUEUE, "work", m, 3, NULL);
	cr_assert_eq(res.status, 0);
	cr_assert_eq(res.stored, 0);
	cr_assert_eq(res.duplicates, 3);
	/* The id alone, without a producer: a duplicate by the id window. */
	res = publish(b, 2000, 0, 0, MOM_KIND_QUEUE, "work", &dup, 1, NULL);
	cr_assert_eq(res.duplicates, 1);
	cr_assert_eq(res.stored, 0);
	q = fsm_queue(b, "work", 4);
	cr_assert_eq(mq_count(&q->mq), 3);
	cr_assert_eq(q->mq.dlen, 1, "the delayed message is still delayed");
	cr_assert_eq(q->mq.delayed[0].at, 6000);
	/* After the window (10 s here), the id is new again. */
	res = publish(b, 11001, 0, 0, MOM_KIND_QUEUE, "work", &dup, 1, NULL);
	cr_assert_eq(res.stored, 1);
	fsm_free(a);
	fsm_free(b);
}

/* A state with something of everything, for the damage tests. */
static struct fsm *
rich_fsm(void)
{
	struct world w;
	uint64_t     s = 42;
	size_t       i;
	struct fsm  *f;

	world_init(&w, new_fsm(), 1000, (struct mq_receipts){ 0 });
	for (i = 0; i < 300; i++)
		step(&w, &s);
	f = w.f;
	w.f = NULL;
	world_fini(&w);
	cr_assert_gt(f->queues.len + f->topics.len + f->subs.len, 0);
	return f;
}

/* fsm_restore refuses b and leaves f as it was (its snapshot is ref). */
static void
refused(struct fsm *f, const uint8_t *b, size_t n, const struct mom_buf *ref, const char *what,
    size_t arg)
{
	struct mom_buf now;
	int            rv = fsm_restore(f, b, n);

	cr_assert(rv == MOM_EBADDATA, "%s %zu: restore said %d", what, arg, rv);
	now = snap(f);
	cr_assert(now.len == ref->len && memcmp(now.data, ref->data, now.len) == 0,
	    "%s %zu: the target changed", what, arg);
	mom_buf_fini(&now);
}

Test(snap, every_truncation_is_refused_and_changes_nothing)
{
	struct fsm    *a = rich_fsm(), *b = new_fsm();
	struct mom_buf sa = snap(a), sb;
	size_t         n;

	/* b holds a state of its own that a refused restore must not touch. */
	cr_assert_eq(admin(b, 0, NULL, "{\"op\":\"queue.create\",\"name\":\"mine\"}"), 0);
	sb = snap(b);
	cr_assert_gt(sa.len, 200);
	for (n = 0; n < sa.len; n++) {
		struct fsm *p = (struct fsm *)&n; /* not NULL: the parse must set it */

		refused(b, sa.data, n, &sb, "length", n);
		cr_assert_neq(fsm_restore_parse(&b->cfg, sa.data, n, &p), 0, "length %zu", n);
		cr_assert_null(p);
	}
	/* And one byte too many. */
	cr_assert_eq(mom_buf_reserve(&sa, 1), 0);
	sa.data[sa.len] = 0;
	refused(b, sa.data, sa.len + 1, &sb, "length", sa.len + 1);
	mom_buf_fini(&sa);
	mom_buf_fini(&sb);
	fsm_free(a);
	fsm_free(b);
}

Test(snap, bit_flips_are_refused_and_change_nothing)
{
	struct fsm    *a = rich_fsm(), *b = new_fsm();
	struct mom_buf sa = snap(a), sb = snap(b);
	uint8_t       *copy = malloc(sa.len);
	uint64_t       s = 7;
	size_t         i, bit;

	cr_assert_not_null(copy);
	/* Every single-bit flip of the first 512 bytes and the last 64, then random ones. */
	for (bit = 0; bit < 8 * sa.len; bit++) {
		if (bit >= 8 * 512 && bit < 8 * (sa.len - 64))
			continue;
		memcpy(copy, sa.data, sa.len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		refused(b, copy, sa.len, &sb, "bit", bit);
	}
	for (i = 0; i < 2000; i++) {
		size_t k, flips = 1 + R(&s, 4);

		memcpy(copy, sa.data, sa.len);
		for (k = 0; k < flips; k++)
			copy[R(&s, sa.len)] ^= (uint8_t)(1u << R(&s, 8));
		if (memcmp(copy, sa.data, sa.len) == 0)
			continue; /* two flips of the same bit */
		refused(b, copy, sa.len, &sb, "random flips", i);
	}
	free(copy);
	mom_buf_fini(&sa);
	mom_buf_fini(&sb);
	fsm_free(a);
	fsm_free(b);
}

/* Damage behind a valid CRC (a bug, or a crafted file): the parser itself must hold. */
static void
fix_crc(uint8_t *b, size_t n)
{
	uint32_t c = mom_crc32c(0, b, n - 4);

	b[n - 4] = (uint8_t)c;
	b[n - 3] = (uint8_t)(c >> 8);
	b[n - 2] = (uint8_t)(c >> 16);
	b[n - 1] = (uint8_t)(c >> 24);
}

Test(snap, damage_behind_a_valid_crc_is_refused_or_gives_a_sound_state)
{
	struct fsm    *a = rich_fsm();
	struct mom_buf sa = snap(a);
	uint8_t       *copy = malloc(sa.len);
	uint64_t       s = 99;
	size_t         i, accepted = 0, refusedn = 0;

	cr_assert_not_null(copy);
	for (i = 0; i < 3000; i++) {
		struct fsm *b = new_fsm();
		size_t      k, flips = 1 + R(&s, 3);
		int         rv;

		memcpy(copy, sa.data, sa.len);
		for (k = 0; k < flips; k++)
			copy[16 + R(&s, sa.len - 20)] ^= (uint8_t)(1u << R(&s, 8));
		fix_crc(copy, sa.len);
		rv = fsm_restore(b, copy, sa.len);
		cr_assert(rv == 0 || rv == MOM_EBADDATA, "flip %zu: %d", i, rv);
		if (rv == 0) {
			/* Whatever was accepted can be snapshotted, restored and used. */
			struct mom_buf again = snap(b);
			struct fsm    *c = new_fsm();

			cr_assert_eq(fsm_restore(c, again.data, again.len), 0);
			fsm_tick(c, 1 << 30);
			mom_buf_fini(&again);
			fsm_free(c);
			accepted++;
		} else
			refusedn++;
		fsm_free(b);
	}
	cr_assert_gt(refusedn, 100);
	cr_log_info("behind a valid CRC: %zu accepted, %zu refused", accepted, refusedn);
	free(copy);
	mom_buf_fini(&sa);
	fsm_free(a);
}

Test(snap, wrong_magic_version_or_length_is_refused)
{
	struct fsm    *a = rich_fsm(), *b = new_fsm();
	struct mom_buf sa = snap(a), sb = snap(b);
	uint8_t       *copy = malloc(sa.len);

	cr_assert_not_null(copy);
	memcpy(copy, sa.data, sa.len);
	copy[0] = 'X';
	fix_crc(copy, sa.len);
	refused(b, copy, sa.len, &sb, "magic", 0);
	memcpy(copy, sa.data, sa.len);
	copy[4] = 3; /* a broker of after this one */
	fix_crc(copy, sa.len);
	refused(b, copy, sa.len, &sb, "version", 3);
	memcpy(copy, sa.data, sa.len);
	copy[4] = 0;
	fix_crc(copy, sa.len);
	refused(b, copy, sa.len, &sb, "version", 0);
	/* Version 1 (no idle_expire_ms) is read: this version 2 body is not one. */
	memcpy(copy, sa.data, sa.len);
	copy[4] = 1;
	fix_crc(copy, sa.len);
	refused(b, copy, sa.len, &sb, "version", 1);
	memcpy(copy, sa.data, sa.len);
	copy[8]++;
	fix_crc(copy, sa.len);
	refused(b, copy, sa.len, &sb, "body length", 0);
	free(copy);
	mom_buf_fini(&sa);
	mom_buf_fini(&sb);
	fsm_free(a);
	fsm_free(b);
}

static size_t gone_calls;

static void
count_gone(void *arg, struct mq *q)
{
	(void)arg;
	(void)q;
	gone_calls++;
}

Test(snap, restore_replaces_the_old_state_and_tells_the_core)
{
	struct fsm    *a = new_fsm(), *b = new_fsm();
	struct mom_buf sa, sb;

	cr_assert_eq(admin(a, 5, NULL, "{\"op\":\"queue.create\",\"name\":\"theirs\"}"), 0);
	cr_assert_eq(admin(b, 5, NULL, "{\"op\":\"queue.create\",\"name\":\"mine\"}"), 0);
	cr_assert_eq(admin(b, 5, NULL, "{\"op\":\"sub.create\",\"pattern\":\"x.>\",\"name\":\"s\"}"), 0);
	b->gone = count_gone;
	sa = snap(a);
	cr_assert_eq(fsm_restore(b, sa.data, sa.len), 0);
	cr_assert_eq(gone_calls, 2, "one per mq that went");
	cr_assert_null(fsm_queue(b, "mine", 4));
	cr_assert_not_null(fsm_queue(b, "theirs", 6));
	cr_assert_eq(fsm_queue(b, "theirs", 6)->fsm, b);
	sb = snap(b);
	assert_same_bytes(&sa, &sb, "replaced");
	mom_buf_fini(&sa);
	mom_buf_fini(&sb);
	fsm_free(a);
	fsm_free(b);
}

/*
 * The fuzz corpus (tests/fuzz/corpus/snap_fuzz/) is made of real snapshots:
 * MOM_SNAP_CORPUS=dir build/tests/snap_test --filter 'snap/corpus' writes
 * them again.  Without the variable this only checks that they restore.
 */
Test(snap, corpus)
{
	const char *dir = getenv("MOM_SNAP_CORPUS");
	size_t      steps[] = { 0, 10, 40, 80, 150 };
	size_t      i, k;

	for (i = 0; i < N(steps); i++) {
		struct world   w;
		uint64_t       s = 1000 + i;
		struct mom_buf b;
		struct fsm    *g = new_fsm();

		world_init(&w, new_fsm(), 1000, (struct mq_receipts){ 0 });
		for (k = 0; k < steps[i]; k++)
			step(&w, &s);
		b = snap(w.f);
		cr_assert_eq(fsm_restore(g, b.data, b.len), 0);
		if (dir != NULL) {
			char  path[4096];
			FILE *fp;

			snprintf(path, sizeof(path), "%s/steps-%zu.snap", dir, steps[i]);
			cr_assert_not_null(fp = fopen(path, "wb"));
			cr_assert_eq(fwrite(b.data, 1, b.len, fp), b.len);
			fclose(fp);
		}
		mom_buf_fini(&b);
		fsm_free(g);
		world_fini(&w);
	}
}

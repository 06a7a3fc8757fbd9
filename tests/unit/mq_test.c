/*
 * mq_test.c: the delivery engine: order, leases, acks, nacks, delays,
 * expiry, max-deliver and dead letters, limits, TTLs, purge and take.
 * Every test ends with mq_fini and its own references released, so
 * valgrind shows any message the engine loses or frees twice; tests that
 * care about a message's life also check its reference count directly.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "mom.h"
#include "state/mq.h"
#include "state/msg.h"
#include "wire.h"

/* A queue message with a payload, a TTL and a delay as a publisher sets them. */
static struct msg *
mk_full(uint64_t seq, const char *payload, int64_t now, uint64_t ttl_ms, uint64_t delay_ms)
{
	struct mom_pub_msg pm;
	struct msg        *m;

	memset(&pm, 0, sizeof(pm));
	pm.kind = MOM_KIND_QUEUE;
	pm.name.p = (const uint8_t *)"q";
	pm.name.n = 1;
	pm.payload.p = (const uint8_t *)payload;
	pm.payload.n = strlen(payload);
	pm.ttl_ms = ttl_ms;
	pm.delay_ms = delay_ms;
	m = msg_new(&pm, seq, now);
	cr_assert_not_null(m);
	return m;
}

static struct msg *
mk(uint64_t seq, const char *payload)
{
	return mk_full(seq, payload, 0, 0, 0);
}

/* What emit saw. */
#define MAXGOT 256
struct got {
	size_t   n;
	uint64_t seq[MAXGOT];
	uint64_t receipt[MAXGOT];
	uint32_t deliveries[MAXGOT];
};

static void
emit_cb(void *arg, struct msg *m, uint64_t receipt, uint32_t deliveries)
{
	struct got *g = arg;

	cr_assert_lt(g->n, MAXGOT);
	g->seq[g->n] = m->seq;
	g->receipt[g->n] = receipt;
	g->deliveries[g->n] = deliveries;
	g->n++;
}

static struct mq_receipts next_receipt;

static size_t
lease(struct mq *q, uint64_t consumer, size_t max, size_t max_bytes, int64_t now, struct got *g)
{
	memset(g, 0, sizeof(*g));
	return mq_lease(q, consumer, 0, max, max_bytes, false, now, &next_receipt, emit_cb, g);
}

/* What the dead-letter callback saw; it owns the message it is given. */
struct dead {
	size_t   calls;
	uint64_t seq;
	uint32_t deliveries;
	uint64_t bytes_after; /* the queue's bytes when the callback ran */
};

static void
dead_cb(void *arg, struct mq *q, struct msg *m, uint32_t deliveries)
{
	struct dead *d = arg;

	d->calls++;
	d->seq = m->seq;
	d->deliveries = deliveries;
	d->bytes_after = q->bytes;
	msg_unref(m);
}

static void
init_q(struct mq *q, uint64_t ack_wait, uint32_t max_deliver, struct dead *d)
{
	struct mq_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.ack_wait_ms = ack_wait;
	cfg.max_deliver = max_deliver;
	mq_init(q, &cfg, d ? dead_cb : NULL, d);
	next_receipt = (struct mq_receipts){ 0 };
}

static void
push(struct mq *q, uint64_t seq, const char *payload, int64_t now)
{
	cr_assert_eq(mq_push(q, mk(seq, payload), now), 0);
}

Test(mq, messages_are_delivered_in_publish_order)
{
	struct mq  q;
	struct got g;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 100; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(mq_ready(&q), 100);
	cr_assert_eq(lease(&q, 1, 1000, SIZE_MAX, 0, &g), 100);
	for (s = 0; s < 100; s++) {
		cr_assert_eq(g.seq[s], s + 1, "position %llu", (unsigned long long)s);
		cr_assert_eq(g.deliveries[s], 1);
		if (s > 0)
			cr_assert_neq(g.receipt[s], g.receipt[s - 1]);
	}
	cr_assert_eq(mq_ready(&q), 0);
	cr_assert_eq(mq_count(&q), 100, "leased messages still count");
	cr_assert_eq(q.nleased, 100);
	cr_assert_eq(q.st.delivered, 100);
	mq_fini(&q);
}

Test(mq, lease_stops_at_max_messages)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	push(&q, 3, "c", 0);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 2);
	cr_assert_eq(g.seq[0], 1);
	cr_assert_eq(g.seq[1], 2);
	cr_assert_eq(mq_ready(&q), 1);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(g.seq[0], 3);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 0, "nothing left");
	mq_fini(&q);
}

Test(mq, lease_stops_at_max_bytes_but_returns_at_least_one)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "0123456789", 0);
	push(&q, 2, "0123456789", 0);
	push(&q, 3, "0123456789", 0);
	push(&q, 4, "0123456789", 0);
	cr_assert_eq(lease(&q, 1, 10, 25, 0, &g), 2, "two 10-byte messages fit in 25");
	cr_assert_eq(lease(&q, 1, 10, 20, 0, &g), 2, "exactly the limit fits");
	cr_assert_eq(g.seq[0], 3);
	push(&q, 5, "0123456789", 0);
	cr_assert_eq(lease(&q, 1, 10, 3, 0, &g), 1, "a message over the limit still goes alone");
	cr_assert_eq(g.seq[0], 5);
	mq_fini(&q);
}

Test(mq, ack_settles_the_message_and_frees_it)
{
	struct mq   q;
	struct got  g;
	struct msg *m = mk(1, "payload");

	init_q(&q, 1000, 0, NULL);
	msg_ref(m); /* the test's own look at it */
	cr_assert_eq(mq_push(&q, m, 0), 0);
	cr_assert_eq(q.bytes, 7);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(m->refs, 2);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), 0);
	cr_assert_eq(m->refs, 1, "the queue let go of the message");
	cr_assert_eq(mq_count(&q), 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(q.st.acked, 1);
	msg_unref(m);
	mq_fini(&q);
}

Test(mq, ack_of_unknown_or_stale_receipt_is_enoent)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "x", 0);
	cr_assert_eq(mq_ack(&q, 12345, 0, 0), MOM_ENOENT);
	cr_assert_eq(mq_ack(&q, 0, 0, 0), MOM_ENOENT);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), 0);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), MOM_ENOENT, "second ack of one receipt");
	cr_assert_eq(mq_nack(&q, g.receipt[0], 0, 0, false, 0), MOM_ENOENT);
	cr_assert_eq(mq_touch(&q, g.receipt[0], 0, 0), MOM_ENOENT);
	mq_fini(&q);
}

Test(mq, receipt_of_an_expired_lease_is_stale)
{
	struct mq  q;
	struct got g;
	uint64_t   old;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "x", 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	old = g.receipt[0];
	mq_tick(&q, 1000);
	cr_assert_eq(lease(&q, 2, 1, SIZE_MAX, 1000, &g), 1);
	cr_assert_neq(g.receipt[0], old, "a redelivery gets a new receipt");
	cr_assert_eq(mq_ack(&q, old, 0, 0), MOM_ENOENT, "the first consumer's ack is too late");
	cr_assert_eq(mq_count(&q), 1);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), 0);
	mq_fini(&q);
}

Test(mq, nack_puts_the_message_back_at_the_front)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	push(&q, 3, "c", 0);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 2);
	cr_assert_eq(mq_nack(&q, g.receipt[1], 0, 0, false, 0), 0); /* seq 2 */
	cr_assert_eq(q.st.redelivered, 1);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, 0, &g), 2);
	cr_assert_eq(g.seq[0], 2, "the nacked message comes before older ready ones");
	cr_assert_eq(g.deliveries[0], 2);
	cr_assert_eq(g.seq[1], 3);
	cr_assert_eq(g.deliveries[1], 1);
	mq_fini(&q);
}

Test(mq, nack_with_delay_waits_in_the_delayed_heap_until_tick)
{
	struct mq  q;
	struct got g;

	init_q(&q, 100000, 0, NULL);
	push(&q, 1, "a", 1000);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 1000, &g), 1);
	cr_assert_eq(mq_nack(&q, g.receipt[0], 0, 5000, false, 1000), 0);
	cr_assert_eq(mq_ready(&q), 0);
	cr_assert_eq(q.dlen, 1);
	cr_assert_eq(mq_count(&q), 1);
	cr_assert_eq(mq_tick(&q, 1001), 6000, "tick says when the message is due");
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 5999, &g), 0);
	mq_tick(&q, 5999);
	cr_assert_eq(mq_ready(&q), 0, "not before its time");
	cr_assert_eq(mq_tick(&q, 6000), INT64_MAX, "nothing else pending");
	cr_assert_eq(mq_ready(&q), 1);
	cr_assert_eq(q.dlen, 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 6000, &g), 1);
	cr_assert_eq(g.seq[0], 1);
	cr_assert_eq(g.deliveries[0], 2);
	mq_fini(&q);
}

Test(mq, nack_with_a_huge_delay_stays_delayed)
{
	struct mq  q;
	struct got g;
	int64_t    now = 1700000000000LL;

	/* A client can ask for any delay up to 2^63 ms: it must not wrap. */
	init_q(&q, 100000, 0, NULL);
	push(&q, 1, "a", now);
	push(&q, 2, "b", now);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, now, &g), 2);
	cr_assert_eq(mq_nack(&q, g.receipt[0], 0, (uint64_t)INT64_MAX, false, now), 0);
	cr_assert_eq(mq_nack(&q, g.receipt[1], 0, UINT64_C(1) << 62, false, now), 0);
	cr_assert_eq(mq_ready(&q), 0);
	cr_assert_eq(q.dlen, 2, "both wait");
	mq_tick(&q, now + 1000);
	cr_assert_eq(mq_ready(&q), 0, "a huge delay is not in the past");
	mq_fini(&q);
}

Test(mq, delayed_messages_become_ready_in_time_order)
{
	struct mq  q;
	struct got g;
	int64_t    delays[] = { 300, 100, 500, 200, 400, 100 };
	uint64_t   s;

	init_q(&q, 100000000, 0, NULL);
	for (s = 0; s < 6; s++)
		cr_assert_eq(mq_push(&q, mk_full(s + 1, "d", 0, 0, (uint64_t)delays[s]), 0), 0);
	cr_assert_eq(mq_ready(&q), 0);
	cr_assert_eq(q.dlen, 6);
	cr_assert_eq(mq_tick(&q, 0), 100);
	cr_assert_eq(mq_tick(&q, 250), 300);
	cr_assert_eq(mq_ready(&q), 3);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, 250, &g), 3);
	cr_assert(g.seq[0] == 2 || g.seq[0] == 6);
	cr_assert(g.seq[1] == 2 || g.seq[1] == 6);
	cr_assert_eq(g.seq[2], 4);
	mq_tick(&q, 1000000);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, 1000000, &g), 3);
	cr_assert_eq(g.seq[0], 1);
	cr_assert_eq(g.seq[1], 5);
	cr_assert_eq(g.seq[2], 3);
	mq_fini(&q);
}

Test(mq, unseen_nack_does_not_count_a_delivery)
{
	struct mq   q;
	struct got  g;
	struct dead d = { 0 };
	int         i;

	/* max_deliver 1: a counted nack would dead-letter at once. */
	init_q(&q, 1000, 1, &d);
	push(&q, 1, "a", 0);
	for (i = 0; i < 5; i++) {
		cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
		cr_assert_eq(g.deliveries[0], 1, "round %d", i);
		cr_assert_eq(mq_nack(&q, g.receipt[0], 0, 0, true, 0), 0);
	}
	cr_assert_eq(d.calls, 0);
	cr_assert_eq(q.st.delivered, 0, "unseen deliveries are taken back");
	cr_assert_eq(q.st.redelivered, 0);
	cr_assert_eq(mq_ready(&q), 1);
	/* A seen nack counts, and with max_deliver 1 that is the end. */
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(mq_nack(&q, g.receipt[0], 0, 0, false, 0), 0);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.deliveries, 1);
	cr_assert_eq(mq_count(&q), 0);
	mq_fini(&q);
}

Test(mq, expired_lease_is_requeued_and_counts_a_delivery)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(mq_tick(&q, 999), 1000, "next due is the lease deadline");
	cr_assert_eq(q.nleased, 1);
	mq_tick(&q, 1000);
	cr_assert_eq(q.nleased, 0);
	cr_assert_eq(mq_ready(&q), 2);
	cr_assert_eq(q.st.redelivered, 1);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 1000, &g), 1);
	cr_assert_eq(g.seq[0], 1, "the expired message goes first");
	cr_assert_eq(g.deliveries[0], 2);
	mq_fini(&q);
}

Test(mq, leases_that_expire_together_come_back_in_their_order)
{
	struct mq  q;
	struct got g;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 5; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(lease(&q, 1, 3, SIZE_MAX, 0, &g), 3);
	mq_tick(&q, 1000);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, 1000, &g), 5);
	for (s = 0; s < 5; s++)
		cr_assert_eq(g.seq[s], s + 1, "position %llu holds seq %llu",
		    (unsigned long long)s, (unsigned long long)g.seq[s]);
	mq_fini(&q);
}

Test(mq, touch_extends_a_lease)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "a", 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(mq_touch(&q, g.receipt[0], 0, 800), 0);
	mq_tick(&q, 1500);
	cr_assert_eq(q.nleased, 1, "touched at 800, due at 1800");
	mq_tick(&q, 1800);
	cr_assert_eq(q.nleased, 0);
	cr_assert_eq(mq_ready(&q), 1);
	mq_fini(&q);
}

Test(mq, max_deliver_hands_the_message_to_the_dead_letter_callback_once)
{
	struct mq   q;
	struct got  g;
	struct dead d = { 0 };
	struct msg *m = mk(7, "0123456789");

	init_q(&q, 1000, 2, &d);
	msg_ref(m);
	cr_assert_eq(mq_push(&q, m, 0), 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	mq_tick(&q, 1000);
	cr_assert_eq(d.calls, 0, "one delivery of two");
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 1000, &g), 1);
	cr_assert_eq(g.deliveries[0], 2);
	mq_tick(&q, 2000);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.seq, 7);
	cr_assert_eq(d.deliveries, 2);
	cr_assert_eq(d.bytes_after, 0, "bytes are given back before the callback");
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(mq_count(&q), 0);
	cr_assert_eq(q.st.dead_lettered, 1);
	cr_assert_eq(m->refs, 1, "the callback got the queue's reference");
	mq_tick(&q, 100000);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 100000, &g), 0);
	cr_assert_eq(d.calls, 1, "called exactly once");
	msg_unref(m);
	mq_fini(&q);
}

Test(mq, max_deliver_without_a_callback_drops_the_message)
{
	struct mq   q;
	struct got  g;
	struct msg *m = mk(7, "abc");

	init_q(&q, 1000, 1, NULL);
	msg_ref(m);
	cr_assert_eq(mq_push(&q, m, 0), 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	mq_tick(&q, 1000);
	cr_assert_eq(m->refs, 1);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(mq_count(&q), 0);
	msg_unref(m);
	mq_fini(&q);
}

Test(mq, release_gives_back_only_that_consumers_leases)
{
	struct mq  q;
	struct got a, b;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	push(&q, 3, "c", 0);
	push(&q, 4, "d", 0);
	cr_assert_eq(lease(&q, 10, 2, SIZE_MAX, 0, &a), 2); /* 1, 2 */
	cr_assert_eq(lease(&q, 20, 1, SIZE_MAX, 0, &b), 1); /* 3 */
	mq_release(&q, 10, 0);
	cr_assert_eq(q.nleased, 1);
	cr_assert_eq(mq_ready(&q), 3);
	cr_assert_eq(mq_ack(&q, a.receipt[0], 0, 0), MOM_ENOENT);
	cr_assert_eq(mq_ack(&q, a.receipt[1], 0, 0), MOM_ENOENT);
	cr_assert_eq(mq_ack(&q, b.receipt[0], 0, 0), 0, "the other consumer keeps its lease");
	cr_assert_eq(lease(&q, 30, 10, SIZE_MAX, 0, &a), 3);
	cr_assert_eq(a.seq[0], 1, "released messages keep their order");
	cr_assert_eq(a.seq[1], 2);
	cr_assert_eq(a.seq[2], 4);
	mq_release(&q, 99, 0); /* a consumer with nothing leased */
	cr_assert_eq(q.nleased, 3);
	mq_fini(&q);
}

Test(mq, release_all_gives_back_every_lease_in_order_and_counts_the_delivery)
{
	struct mq  q;
	struct got a, b;

	/* A leader that steps down: every consumer's leases come back. */
	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	push(&q, 3, "c", 0);
	cr_assert_eq(lease(&q, 10, 1, SIZE_MAX, 0, &a), 1); /* 1 */
	cr_assert_eq(lease(&q, 20, 1, SIZE_MAX, 0, &b), 1); /* 2 */
	mq_release_all(&q);
	cr_assert_eq(q.nleased, 0);
	cr_assert_eq(mq_ready(&q), 3);
	cr_assert_eq(mq_ack(&q, a.receipt[0], 0, 0), MOM_ENOENT, "its leases are gone");
	cr_assert_eq(lease(&q, 30, 10, SIZE_MAX, 0, &a), 3);
	cr_assert_eq(a.seq[0], 1, "given back in order, before the ready one");
	cr_assert_eq(a.seq[1], 2);
	cr_assert_eq(a.seq[2], 3);
	cr_assert_eq(a.deliveries[0], 2, "the first delivery counts");
	cr_assert_eq(a.deliveries[2], 1);
	mq_release_all(&q);
	mq_release_all(&q); /* nothing leased: nothing to do */
	cr_assert_eq(mq_ready(&q), 3);
	mq_fini(&q);
}

Test(mq, release_does_not_count_the_delivery_so_max_deliver_is_not_used_up)
{
	struct mq  q;
	struct got a;
	int        i;

	/* max-deliver 1: a counted release would dead-letter the message. */
	init_q(&q, 1000, 1, NULL);
	push(&q, 1, "a", 0);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(lease(&q, 10, 1, SIZE_MAX, 0, &a), 1);
		cr_assert_eq(a.deliveries[0], 1, "a released lease was never seen");
		mq_release(&q, 10, 0);
		cr_assert_eq(mq_ready(&q), 1, "released message is ready again");
	}
	cr_assert_eq(q.st.dead_lettered, 0);
	cr_assert_eq(q.st.redelivered, 0);
	mq_fini(&q);
}

Test(mq, drop_head_makes_room_by_dropping_the_oldest_ready_messages)
{
	struct mq        q;
	struct mq_config cfg = { .ack_wait_ms = 1000, .max_bytes = 3, .drop_head = true };
	struct got       g;

	mq_init(&q, &cfg, NULL, NULL);
	next_receipt = (struct mq_receipts){ 0 };
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	cr_assert_eq(lease(&q, 10, 1, SIZE_MAX, 0, &g), 1); /* "a" leased: not droppable */
	push(&q, 3, "c", 0);
	push(&q, 4, "d", 0); /* full: "b", the oldest ready, goes */
	cr_assert_eq(q.st.dropped, 1);
	cr_assert_eq(q.bytes, 3);
	cr_assert_eq(lease(&q, 10, 10, SIZE_MAX, 0, &g), 2);
	cr_assert_eq(g.seq[0], 3, "the newest messages stay, in order");
	cr_assert_eq(g.seq[1], 4);
	mq_fini(&q);
}

Test(mq, fits_checks_max_len_counting_every_held_message)
{
	struct mq        q;
	struct mq_config cfg = { .ack_wait_ms = 1000, .max_len = 3 };
	struct got       g;

	mq_init(&q, &cfg, NULL, NULL);
	next_receipt = (struct mq_receipts){ 0 };
	cr_assert(mq_fits(&q, 3, 0));
	cr_assert_not(mq_fits(&q, 4, 0));
	push(&q, 1, "a", 0);
	cr_assert_eq(mq_push(&q, mk_full(2, "b", 0, 0, 1000), 0), 0); /* delayed */
	cr_assert(mq_fits(&q, 1, 0));
	cr_assert_not(mq_fits(&q, 2, 0));
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_not(mq_fits(&q, 2, 0), "a leased message still takes room");
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), 0);
	cr_assert(mq_fits(&q, 2, 0));
	mq_fini(&q);
}

Test(mq, fits_checks_max_bytes)
{
	struct mq        q;
	struct mq_config cfg = { .ack_wait_ms = 1000, .max_bytes = 100 };

	mq_init(&q, &cfg, NULL, NULL);
	cr_assert(mq_fits(&q, 1, 100));
	cr_assert_not(mq_fits(&q, 1, 101));
	push(&q, 1, "0123456789012345678901234567890123456789012345678901234567890", 0);
	cr_assert_eq(q.bytes, 61);
	cr_assert(mq_fits(&q, 1, 39));
	cr_assert_not(mq_fits(&q, 1, 40));
	cr_assert(mq_fits(&q, 1000, 0), "no max-len: only bytes count");
	mq_fini(&q);
}

Test(mq, message_ttl_drops_it_at_lease_time)
{
	struct mq   q;
	struct got  g;
	struct msg *m = mk_full(1, "old", 0, 100, 0);

	init_q(&q, 1000, 0, NULL);
	msg_ref(m);
	cr_assert_eq(mq_push(&q, m, 0), 0);
	push(&q, 2, "fresh", 50);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, 100, &g), 1);
	cr_assert_eq(g.seq[0], 2, "the expired message is not delivered");
	cr_assert_eq(q.st.expired, 1);
	cr_assert_eq(m->refs, 1, "and the queue let go of it");
	cr_assert_eq(q.bytes, 5);
	msg_unref(m);
	mq_fini(&q);
}

Test(mq, message_ttl_drops_it_at_tick)
{
	struct mq   q;
	struct msg *m = mk_full(1, "old", 0, 100, 0);

	init_q(&q, 1000, 0, NULL);
	msg_ref(m);
	cr_assert_eq(mq_push(&q, m, 0), 0);
	mq_tick(&q, 99);
	cr_assert_eq(mq_ready(&q), 1);
	mq_tick(&q, 100);
	cr_assert_eq(mq_ready(&q), 0);
	cr_assert_eq(mq_count(&q), 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(q.st.expired, 1);
	cr_assert_eq(m->refs, 1);
	msg_unref(m);
	mq_fini(&q);
}

Test(mq, queue_ttl_drops_old_messages_at_lease_and_tick)
{
	struct mq        q;
	struct mq_config cfg = { .ack_wait_ms = 1000, .ttl_ms = 500 };
	struct got       g;

	mq_init(&q, &cfg, NULL, NULL);
	next_receipt = (struct mq_receipts){ 0 };
	cr_assert_eq(mq_push(&q, mk_full(1, "a", 0, 0, 0), 0), 0);
	cr_assert_eq(mq_push(&q, mk_full(2, "b", 400, 0, 0), 400), 0);
	cr_assert_eq(mq_push(&q, mk_full(3, "c", 600, 0, 0), 600), 0);
	mq_tick(&q, 500);
	cr_assert_eq(mq_ready(&q), 2, "published at 0, gone at 500");
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, 900, &g), 1);
	cr_assert_eq(g.seq[0], 3, "published at 400, gone at 900");
	cr_assert_eq(q.st.expired, 2);
	cr_assert_eq(q.bytes, 1);
	mq_fini(&q);
}

Test(mq, message_with_a_huge_ttl_does_not_expire)
{
	struct mq  q;
	struct got g;
	int64_t    now = 1700000000000LL;

	/* The TTL comes from the wire as any u64: it must not wrap into the past. */
	init_q(&q, 1000, 0, NULL);
	cr_assert_eq(mq_push(&q, mk_full(1, "a", now, UINT64_MAX, 0), now), 0);
	cr_assert_eq(mq_push(&q, mk_full(2, "b", now, UINT64_C(1) << 63, 0), now), 0);
	cr_assert_eq(mq_push(&q, mk_full(3, "c", now, (uint64_t)INT64_MAX, 0), now), 0);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, now + 1, &g), 3);
	cr_assert_eq(q.st.expired, 0);
	mq_fini(&q);
}

Test(mq, message_with_a_huge_delay_is_not_delivered_now)
{
	struct mq  q;
	struct got g;
	int64_t    now = 1700000000000LL;

	init_q(&q, 1000, 0, NULL);
	cr_assert_eq(mq_push(&q, mk_full(1, "a", now, 0, UINT64_MAX), now), 0);
	cr_assert_eq(mq_push(&q, mk_full(2, "b", now, 0, UINT64_C(1) << 63), now), 0);
	mq_tick(&q, now + 1);
	cr_assert_eq(lease(&q, 1, 10, SIZE_MAX, now + 1, &g), 0);
	cr_assert_eq(q.dlen, 2);
	mq_fini(&q);
}

Test(mq, noack_lease_settles_as_it_delivers)
{
	struct mq   q;
	struct got  g;
	struct msg *m = mk(1, "abc");

	init_q(&q, 1000, 0, NULL);
	msg_ref(m);
	cr_assert_eq(mq_push(&q, m, 0), 0);
	push(&q, 2, "de", 0);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(mq_lease(&q, 1, 0, 10, SIZE_MAX, true, 0, &next_receipt, emit_cb, &g), 2);
	cr_assert_eq(g.seq[0], 1);
	cr_assert_eq(g.seq[1], 2);
	cr_assert_eq(mq_count(&q), 0);
	cr_assert_eq(q.nleased, 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(q.st.acked, 2);
	cr_assert_eq(m->refs, 1);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), MOM_ENOENT, "nothing to ack");
	msg_unref(m);
	mq_fini(&q);
}

Test(mq, purge_drops_every_message_leased_ones_too)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	push(&q, 1, "aa", 0);
	push(&q, 2, "bbb", 0);
	push(&q, 3, "cccc", 0);
	cr_assert_eq(mq_push(&q, mk_full(4, "ddddd", 0, 0, 5000), 0), 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	/* Leases are not replicated: what a purge drops must not depend on them. */
	cr_assert_eq(mq_purge(&q), 4);
	cr_assert_eq(mq_ready(&q), 0);
	cr_assert_eq(q.dlen, 0);
	cr_assert_eq(q.nleased, 0);
	cr_assert_eq(mq_count(&q), 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), MOM_ENOENT, "the purged lease's ack is stale");
	cr_assert_eq(mq_purge(&q), 0);
	mq_fini(&q);
}

Test(mq, take_all_removes_the_oldest_first_whatever_their_state)
{
	struct mq    q;
	struct got   g;
	struct msg **ms;
	long         n;

	init_q(&q, 1000, 0, NULL);
	cr_assert_eq(mq_push(&q, mk_full(1, "expired", 0, 10, 0), 0), 0);
	push(&q, 2, "aa", 0);
	push(&q, 3, "bbb", 0);
	push(&q, 4, "c", 0);
	cr_assert_eq(mq_push(&q, mk_full(5, "delayed", 0, 0, 5000), 0), 0);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 2); /* seq 1 and 2, leased */
	/* Three at time 100: seq 1 is past its TTL (dropped), then 2 (leased), 3, 4. */
	n = mq_take_all(&q, 3, 100, &ms);
	cr_assert_eq(n, 2, "took %ld", n);
	cr_assert_eq(ms[0]->seq, 2, "a leased message is taken too");
	cr_assert_eq(ms[1]->seq, 3);
	cr_assert_eq(ms[0]->refs, 1, "the caller owns what it took");
	msg_unref(ms[0]);
	msg_unref(ms[1]);
	free(ms);
	cr_assert_eq(q.st.expired, 1);
	cr_assert_eq(mq_count(&q), 2);
	cr_assert_eq(q.bytes, 1 + 7);
	cr_assert_eq(mq_ack(&q, g.receipt[1], 0, 100), MOM_ENOENT, "its lease went with it");
	/* The rest, delayed one included. */
	n = mq_take_all(&q, 0, 100, &ms);
	cr_assert_eq(n, 2);
	cr_assert_eq(ms[0]->seq, 4);
	cr_assert_eq(ms[1]->seq, 5);
	msg_unref(ms[0]);
	msg_unref(ms[1]);
	free(ms);
	cr_assert_eq(mq_count(&q), 0);
	cr_assert_eq(q.bytes, 0);
	cr_assert_eq(mq_take_all(&q, 0, 100, &ms), 0);
	cr_assert_null(ms);
	mq_fini(&q);
}

Test(mq, fini_releases_every_message_wherever_it_is)
{
	struct mq   q;
	struct got  g;
	struct msg *ms[4];
	int         i;

	init_q(&q, 1000, 0, NULL);
	for (i = 0; i < 4; i++) {
		ms[i] = mk_full((uint64_t)i + 1, "x", 0, 0, i == 3 ? 1000 : 0);
		msg_ref(ms[i]);
		cr_assert_eq(mq_push(&q, ms[i], 0), 0);
	}
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 2); /* leased: 1, 2; ready: 3; delayed: 4 */
	mq_fini(&q);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(ms[i]->refs, 1, "message %d still referenced by the queue", i + 1);
		msg_unref(ms[i]);
	}
}

Test(mq, ring_wraps_with_requeues_at_the_front)
{
	struct mq  q;
	struct got g;
	uint64_t   s, want;

	/* Push and lease past the ring's first capacity while nacking to the front. */
	init_q(&q, 1000, 0, NULL);
	want = 1;
	for (s = 1; s <= 200; s++) {
		push(&q, s, "m", 0);
		if (s % 3 == 0) {
			cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
			cr_assert_eq(g.seq[0], want);
			if (s % 2 == 0) {
				cr_assert_eq(mq_nack(&q, g.receipt[0], 0, 0, false, 0), 0);
			} else {
				cr_assert_eq(mq_ack(&q, g.receipt[0], 0, 0), 0);
				want++;
			}
		}
	}
	cr_assert_eq(lease(&q, 1, MAXGOT, SIZE_MAX, 0, &g), 200 - (want - 1));
	for (s = 0; s < g.n; s++)
		cr_assert_eq(g.seq[s], want + s);
	mq_fini(&q);
}

Test(mq, dead_letters_a_lease_now_whatever_its_deliveries)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 10, NULL);
	push(&q, 1, "poison", 0);
	push(&q, 2, "fine", 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	cr_assert_eq(mq_dead(&q, g.receipt[0], 0, -1, 0), 0);
	cr_assert_eq(q.st.dead_lettered, 1, "1 delivery of 10 allowed, dead at once");
	cr_assert_eq(mq_count(&q), 1);
	cr_assert_eq(mq_dead(&q, g.receipt[0], 0, -1, 0), MOM_ENOENT, "stale receipt");
	mq_fini(&q);
}

Test(mq, receipts_of_a_new_epoch_never_repeat_an_earlier_one)
{
	struct mq_receipts rc = { 0 };
	uint64_t           before[3], r;
	size_t             i, k;

	mq_receipts_epoch(&rc, 1);
	for (i = 0; i < 3; i++)
		before[i] = mq_receipt_next(&rc);
	cr_assert_eq(before[0], (UINT64_C(1) << MQ_RECEIPT_BITS) | 1);
	/* The same epoch again (every serve asks) changes nothing. */
	mq_receipts_epoch(&rc, 1);
	cr_assert_eq(mq_receipt_next(&rc), before[2] + 1);
	/* A restart: a new term, the counter starts over, the numbers do not. */
	mq_receipts_epoch(&rc, 2);
	for (i = 0; i < 100; i++) {
		r = mq_receipt_next(&rc);
		cr_assert_neq(r, 0);
		for (k = 0; k < 3; k++)
			cr_assert_neq(r, before[k], "receipt %llu of epoch 1 handed out again",
			    (unsigned long long)r);
	}
	cr_assert_eq(r >> MQ_RECEIPT_BITS, 2);
}

Test(mq, receipt_counter_wraps_within_its_epoch_and_is_never_zero)
{
	struct mq_receipts rc = { 0 };

	mq_receipts_epoch(&rc, 0);
	rc.n = MQ_RECEIPT_COUNT - 1;
	cr_assert_eq(mq_receipt_next(&rc), MQ_RECEIPT_COUNT);
	cr_assert_eq(mq_receipt_next(&rc), 1, "epoch 0 wraps to 1, not 0 (no receipt)");
	mq_receipts_epoch(&rc, 7);
	rc.n = MQ_RECEIPT_COUNT;
	cr_assert_eq(mq_receipt_next(&rc), (UINT64_C(7) << MQ_RECEIPT_BITS) | 1,
	    "the counter never spills into the epoch");
}

Test(mq, a_restarted_counter_does_not_settle_a_lease_by_an_old_number)
{
	struct mq  q;
	struct got g;
	uint64_t   old;

	init_q(&q, 30000, 0, NULL);
	mq_receipts_epoch(&next_receipt, 1);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	cr_assert_eq(lease(&q, 1, 1, SIZE_MAX, 0, &g), 1);
	old = g.receipt[0];
	/* What a restart does: the leases are gone, the term moves on. */
	mq_release(&q, 1, 0);
	mq_receipts_epoch(&next_receipt, 2);
	cr_assert_eq(lease(&q, 2, 2, SIZE_MAX, 0, &g), 2);
	cr_assert_neq(g.receipt[0], old);
	cr_assert_neq(g.receipt[1], old);
	cr_assert_eq(mq_ack(&q, old, 0, 0), MOM_ENOENT);
	cr_assert_eq(mq_count(&q), 2, "the old ack took a message");
	mq_fini(&q);
}

Test(mq, only_the_holder_or_anyone_with_holder_0_settles_a_lease)
{
	struct mq  q;
	struct got g;

	init_q(&q, 30000, 0, NULL);
	push(&q, 1, "a", 0);
	push(&q, 2, "b", 0);
	memset(&g, 0, sizeof(g));
	cr_assert_eq(mq_lease(&q, 1, 111, 2, SIZE_MAX, false, 0, &next_receipt, emit_cb, &g), 2);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 222, 0), MOM_ENOENT, "another user's ack");
	cr_assert_eq(mq_nack(&q, g.receipt[0], 222, 0, false, 0), MOM_ENOENT);
	cr_assert_eq(mq_touch(&q, g.receipt[0], 222, 0), MOM_ENOENT);
	cr_assert_eq(mq_dead(&q, g.receipt[0], 222, -1, 0), MOM_ENOENT);
	cr_assert_eq(mq_count(&q), 2);
	cr_assert_eq(q.nleased, 2);
	cr_assert_eq(mq_ack(&q, g.receipt[0], 111, 0), 0, "the holder's ack");
	cr_assert_eq(mq_ack(&q, g.receipt[1], 0, 0), 0, "an admin's (holder 0)");
	cr_assert_eq(mq_count(&q), 0);
	mq_fini(&q);
}

/* The next n messages leased are seq first, first + 1, ... (issue 12, item 4). */
static void
assert_next_in_order(struct mq *q, uint64_t first, size_t n, int64_t now)
{
	struct got g;
	size_t     i;

	cr_assert_eq(lease(q, 77, n, SIZE_MAX, now, &g), n);
	for (i = 0; i < n; i++)
		cr_assert_eq(g.seq[i], first + i, "position %zu holds seq %llu, not %llu", i,
		    (unsigned long long)g.seq[i], (unsigned long long)(first + i));
}

Test(mq, nacked_messages_come_back_in_sequence_order_before_newer_ones)
{
	struct mq  q;
	struct got g;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 6; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(lease(&q, 1, 4, SIZE_MAX, 0, &g), 4);
	/* Given back one by one, oldest first (a consumer's nack list). */
	for (s = 0; s < 4; s++)
		cr_assert_eq(mq_nack(&q, g.receipt[s], 0, 0, false, 0), 0);
	assert_next_in_order(&q, 1, 6, 0);
	mq_fini(&q);
}

Test(mq, nacks_of_two_consumers_interleave_by_sequence)
{
	struct mq  q;
	struct got a, b;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 6; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &a), 2); /* 1, 2 */
	cr_assert_eq(lease(&q, 2, 2, SIZE_MAX, 0, &b), 2); /* 3, 4 */
	cr_assert_eq(mq_nack(&q, b.receipt[1], 0, 0, true, 0), 0); /* 4 */
	cr_assert_eq(mq_nack(&q, a.receipt[1], 0, 0, true, 0), 0); /* 2 */
	cr_assert_eq(mq_nack(&q, b.receipt[0], 0, 0, true, 0), 0); /* 3 */
	cr_assert_eq(mq_nack(&q, a.receipt[0], 0, 0, true, 0), 0); /* 1 */
	assert_next_in_order(&q, 1, 6, 0);
	mq_fini(&q);
}

Test(mq, release_gives_back_in_sequence_order_whatever_the_lease_order)
{
	struct mq  q;
	struct got g;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 5; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(lease(&q, 10, 3, SIZE_MAX, 0, &g), 3);
	/* A touch moves seq 1 to the end of the lease list: 2, 3, 1. */
	cr_assert_eq(mq_touch(&q, g.receipt[0], 0, 10), 0);
	mq_release(&q, 10, 20);
	assert_next_in_order(&q, 1, 5, 20);
	mq_fini(&q);
}

Test(mq, leases_expiring_together_come_back_in_sequence_order)
{
	struct mq  q;
	struct got g;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 5; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(lease(&q, 1, 3, SIZE_MAX, 0, &g), 3);
	cr_assert_eq(mq_touch(&q, g.receipt[0], 0, 500), 0); /* deadlines: 2, 3 at 1000; 1 at 1500 */
	mq_tick(&q, 1500);
	assert_next_in_order(&q, 1, 5, 1500);
	mq_fini(&q);
}

Test(mq, a_delayed_nack_comes_back_before_newer_messages)
{
	struct mq  q;
	struct got g;
	uint64_t   s;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 5; s++)
		push(&q, s, "m", 0);
	cr_assert_eq(lease(&q, 1, 2, SIZE_MAX, 0, &g), 2);
	cr_assert_eq(mq_nack(&q, g.receipt[1], 0, 300, false, 0), 0); /* 2, due at 300 */
	cr_assert_eq(mq_nack(&q, g.receipt[0], 0, 100, false, 0), 0); /* 1, due at 100 */
	mq_tick(&q, 300);
	assert_next_in_order(&q, 1, 5, 300);
	mq_fini(&q);
}

Test(mq, a_scheduled_message_joins_the_back_when_due)
{
	struct mq  q;
	struct got g;

	init_q(&q, 1000, 0, NULL);
	cr_assert_eq(mq_push(&q, mk_full(1, "later", 0, 0, 100), 0), 0);
	push(&q, 2, "a", 0);
	push(&q, 3, "b", 0);
	mq_tick(&q, 100);
	cr_assert_eq(lease(&q, 1, 3, SIZE_MAX, 100, &g), 3);
	cr_assert_eq(g.seq[0], 2, "a message published with a delay is new when it is due");
	cr_assert_eq(g.seq[1], 3);
	cr_assert_eq(g.seq[2], 1);
	mq_fini(&q);
}

Test(mq, a_big_release_keeps_sequence_order_and_every_message)
{
	struct mq  q;
	struct got g;
	uint64_t   s;
	size_t     i;

	init_q(&q, 1000, 0, NULL);
	for (s = 1; s <= 1000; s++)
		push(&q, s, "m", 0);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(lease(&q, 10 + i % 2, 200, SIZE_MAX, 0, &g), 200);
	}
	mq_release(&q, 11, 0); /* 201-400 and 601-800 */
	mq_release(&q, 10, 0); /* 1-200 and 401-600 */
	cr_assert_eq(mq_ready(&q), 1000);
	for (s = 1; s <= 1000; s += MAXGOT) {
		size_t n = 1000 - s + 1 < MAXGOT ? 1000 - s + 1 : MAXGOT;

		assert_next_in_order(&q, s, n, 0);
	}
	mq_fini(&q);
}

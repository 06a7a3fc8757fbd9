/*
 * failover_test.c: which broker of a client's list gets the next request
 * (src/libmom/failover.c): the decisions client.c takes on a timeout, a
 * lost connection and a "not leader" or "unavailable" reply.
 */
#include <criterion/criterion.h>

#include "failover.h"
#include "mom.h"

static struct mom_node_state st[3];

static void
all_up(void)
{
	int i;

	for (i = 0; i < 3; i++)
		st[i] = (struct mom_node_state){ .connected = 1 };
}

TestSuite(failover, .init = all_up);

Test(failover, requests_stay_on_the_current_broker_while_it_answers)
{
	cr_assert_eq(mom_node_pick(st, 3, 0, 1000), 0);
	mom_node_note(&st[0], MOM_NODE_ANSWERED, 1000);
	cr_assert_eq(mom_node_pick(st, 3, 0, 1001), 0);
	cr_assert_eq(mom_node_pick(st, 3, 2, 1001), 2);
}

Test(failover, a_not_leader_reply_sends_the_retry_to_the_next_broker)
{
	/* The same for "unavailable" and "shutting down": all are retried elsewhere. */
	cr_assert(mom_node_retry_status(MOM_ENOTLEADER));
	cr_assert(mom_node_retry_status(MOM_EUNAVAIL));
	cr_assert(mom_node_retry_status(MOM_ECLOSED));
	cr_assert_not(mom_node_retry_status(0));
	cr_assert_not(mom_node_retry_status(MOM_ENOENT));
	cr_assert_not(mom_node_retry_status(MOM_EAUTH));
	cr_assert_not(mom_node_retry_status(MOM_EBUSY));

	mom_node_note(&st[0], MOM_NODE_REFUSED, 1000);
	cr_assert_eq(mom_node_pick(st, 3, 0, 1000), 1);
	/* briefly: a new leader may be elected there */
	cr_assert_eq(mom_node_pick(st, 3, 0, 1000 + MOM_NODE_REFUSED_MS), 0);
}

Test(failover, a_broker_that_keeps_saying_not_leader_is_not_asked_first_again)
{
	int64_t now = 1000;
	int     cur = 0, i, node;

	/* the retries come after back-offs longer than the set-aside */
	for (i = 0; i < 4; i++) {
		node = mom_node_pick(st, 3, cur, now);
		if (node == 1)
			break;
		cr_assert_eq(node, 0, "round %d asked %d", i, node);
		mom_node_note(&st[0], MOM_NODE_REFUSED, now);
		cur = mom_node_after(cur, 0, 3, MOM_NODE_REFUSED);
		now += 1000;
	}
	cr_assert_eq(node, 1, "still asking broker 0 after %d refusals", i);
	/* an answer makes a broker the current one */
	cr_assert_eq(mom_node_after(1, 2, 3, MOM_NODE_ANSWERED), 2);
	/* a failure elsewhere leaves the current one */
	cr_assert_eq(mom_node_after(1, 2, 3, MOM_NODE_SILENT), 1);
	cr_assert_eq(mom_node_after(0, 0, 1, MOM_NODE_GONE), 0);
}

Test(failover, every_broker_refusing_goes_round_the_list)
{
	int64_t now = 1000;
	int     cur = 0, i, seen[3] = { 0 };

	for (i = 0; i < 3; i++) {
		cur = mom_node_pick(st, 3, cur, now);
		seen[cur]++;
		mom_node_note(&st[cur], MOM_NODE_REFUSED, now);
		now += 10;
	}
	cr_assert(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
	/* all set aside: the one free first */
	cr_assert_eq(mom_node_pick(st, 3, cur, now), 0);
}

Test(failover, a_silent_broker_is_set_aside_with_a_growing_back_off)
{
	mom_node_note(&st[0], MOM_NODE_SILENT, 1000);
	cr_assert_eq(st[0].aside_until, 1000 + MOM_NODE_SILENT_MIN_MS);
	cr_assert_eq(mom_node_pick(st, 3, 0, 1500), 1);
	/* tried again after its back-off, silent again: twice as long */
	cr_assert_eq(mom_node_pick(st, 3, 0, 2000), 0);
	mom_node_note(&st[0], MOM_NODE_SILENT, 4000);
	cr_assert_eq(st[0].aside_until, 4000 + 2 * MOM_NODE_SILENT_MIN_MS);
	for (int i = 0; i < 20; i++)
		mom_node_note(&st[0], MOM_NODE_SILENT, 10000);
	cr_assert_eq(st[0].aside_until, 10000 + MOM_NODE_SILENT_MAX_MS);
	/* an answer starts it over */
	mom_node_note(&st[0], MOM_NODE_ANSWERED, 50000);
	cr_assert_eq(mom_node_pick(st, 3, 0, 50000), 0);
	mom_node_note(&st[0], MOM_NODE_SILENT, 50000);
	cr_assert_eq(st[0].aside_until, 50000 + MOM_NODE_SILENT_MIN_MS);
}

Test(failover, connected_brokers_come_before_ones_still_dialling)
{
	st[0].connected = 0;
	cr_assert_eq(mom_node_pick(st, 3, 0, 1000), 1);
	st[1].connected = 0;
	st[2].connected = 0;
	/* none connected: the current one, where nng connects when it can */
	cr_assert_eq(mom_node_pick(st, 3, 0, 1000), 0);
	mom_node_note(&st[0], MOM_NODE_GONE, 1000);
	cr_assert_eq(mom_node_pick(st, 3, 0, 1000), 1);
}

Test(failover, a_lost_connection_does_not_shorten_a_longer_set_aside)
{
	mom_node_note(&st[1], MOM_NODE_SILENT, 1000);
	mom_node_note(&st[1], MOM_NODE_SILENT, 1000);
	cr_assert_eq(st[1].aside_until, 1000 + 2 * MOM_NODE_SILENT_MIN_MS);
	mom_node_note(&st[1], MOM_NODE_GONE, 1000);
	cr_assert_eq(st[1].aside_until, 1000 + 2 * MOM_NODE_SILENT_MIN_MS);
	mom_node_note(&st[1], MOM_NODE_REFUSED, 1000);
	cr_assert_eq(st[1].aside_until, 1000 + 2 * MOM_NODE_SILENT_MIN_MS);
}

Test(failover, one_broker_is_always_the_one)
{
	mom_node_note(&st[0], MOM_NODE_SILENT, 1000);
	cr_assert_eq(mom_node_pick(st, 1, 0, 1000), 0);
}

Test(failover, the_pause_before_sending_again_grows_with_the_absence_and_stays_short_during_an_election)
{
	/* Half the time away, at least 50 ms. */
	cr_assert_eq(mom_node_again_pause(MOM_ECLOSED, 0), 50);
	cr_assert_eq(mom_node_again_pause(MOM_ECLOSED, 300), 150);
	cr_assert_eq(mom_node_again_pause(MOM_EUNAVAIL, 1600), 800);
	/* A restart: at most a second. */
	cr_assert_eq(mom_node_again_pause(MOM_ECLOSED, 60000), 1000);
	/* An election takes about a second: a pause never outlasts it by much. */
	cr_assert_eq(mom_node_again_pause(MOM_ENOTLEADER, 60), 50);
	cr_assert_eq(mom_node_again_pause(MOM_ENOTLEADER, 300), 150);
	cr_assert_eq(mom_node_again_pause(MOM_ENOTLEADER, 1500), 200);
	cr_assert_eq(mom_node_again_pause(MOM_ENOTLEADER, 60000), 200);
}

/*
 * acl_test.c: the permission rules (core/acl.h): token patterns, the
 * creator rule, admin tokens, and every case that denies.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "adminops.h"
#include "buf.h"
#include "core/acl.h"
#include "token.h"
#include "wire.h"

static char *pub_pats[] = { "jobs.>", "logs.*" };
static char *sub_pats[] = { "jobs.>", "events.>" };

/* alice: publish jobs.> and logs.*, consume jobs.> and events.>. */
static struct mom_claims
user(const char *name)
{
	struct mom_claims cl;

	memset(&cl, 0, sizeof(cl));
	snprintf(cl.sub, sizeof(cl.sub), "%s", name);
	cl.pub = pub_pats;
	cl.npub = 2;
	cl.subs = sub_pats;
	cl.nsubs = 2;
	return cl;
}

static struct mom_claims
admin(void)
{
	struct mom_claims cl;

	memset(&cl, 0, sizeof(cl));
	snprintf(cl.sub, sizeof(cl.sub), "root");
	cl.admin = true;
	return cl;
}

/* An operation that is not in the table: an admin's, as mom_aop_perm says. */
static const struct mom_admin_op join_op = { "cluster.join", true, MOM_AP_ADMIN, NULL, NULL,
	NULL, false };
static const struct acl_change join = { .op = &join_op, .name = NULL, .pattern = NULL, .dst = NULL, .exists = false, .owner = NULL };

static bool
change(const struct mom_claims *cl, const char *op, const char *name, const char *owner,
    char *denied, size_t dlen)
{
	struct acl_change ch;

	memset(&ch, 0, sizeof(ch));
	cr_assert_not_null(ch.op = mom_admin_op(op), "%s is in the table", op);
	ch.name = name;
	ch.exists = owner != NULL;
	ch.owner = owner;
	return acl_change(cl, &ch, denied, dlen);
}

Test(acl, an_open_broker_allows_everything)
{
	char denied[128];

	cr_assert(acl_may(NULL, "payroll", 7, true));
	cr_assert(acl_may(NULL, "payroll", 7, false));
	cr_assert(acl_owns(NULL, "someone"));
	cr_assert(change(NULL, "queue.delete", "payroll", "bob", denied, sizeof(denied)));
	cr_assert(acl_change(NULL, &join, denied, sizeof(denied)));
}

Test(acl, patterns_decide_publish_and_consume)
{
	struct mom_claims a = user("alice");

	cr_assert(acl_may(&a, "jobs.x.y", 8, true));
	cr_assert(acl_may(&a, "logs.web", 8, true));
	cr_assert_not(acl_may(&a, "logs.web.1", 10, true), "* matches one token only");
	cr_assert_not(acl_may(&a, "payroll", 7, true));
	cr_assert(acl_may(&a, "events.a", 8, false));
	cr_assert_not(acl_may(&a, "events.a", 8, true), "consume rights do not publish");
	cr_assert_not(acl_may(&a, "logs.web", 8, false), "publish rights do not consume");
	/* Only the first n bytes count: "jobs.a" inside a longer buffer. */
	cr_assert(acl_may(&a, "jobs.aXXXX", 6, true));
	cr_assert_not(acl_may(&a, "payrollXXX", 7, true));
}

Test(acl, an_overlong_name_is_denied)
{
	struct mom_claims a = user("alice");
	char              name[400];

	memset(name, 'j', sizeof(name));
	cr_assert_not(acl_may(&a, name, sizeof(name), true));
}

Test(acl, an_admin_token_is_unrestricted)
{
	struct mom_claims r = admin();
	char              denied[128];

	cr_assert_not(acl_restricted(&r));
	cr_assert(acl_may(&r, "payroll", 7, true));
	cr_assert(acl_owns(&r, "alice"));
	cr_assert(change(&r, "queue.delete", "payroll", "alice", denied, sizeof(denied)));
	cr_assert(acl_change(&r, &join, denied, sizeof(denied)));
}

Test(acl, creating_needs_a_pattern_for_the_name)
{
	struct mom_claims a = user("alice");
	char              denied[128] = "";

	cr_assert(change(&a, "queue.create", "jobs.new", NULL, denied, sizeof(denied)));
	cr_assert(change(&a, "topic.create", "events.x", NULL, denied, sizeof(denied)),
	    "consume rights are enough to create");
	cr_assert_not(change(&a, "queue.create", "payroll", NULL, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: create queue 'payroll'");
	cr_assert_not(change(&a, "topic.create", "secret", NULL, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: create topic 'secret'");
}

Test(acl, only_the_creator_deletes_or_purges)
{
	struct mom_claims a = user("alice"), b = user("bob");
	char              denied[160] = "";

	cr_assert(change(&a, "queue.delete", "jobs.a", "alice", denied, sizeof(denied)));
	cr_assert(change(&a, "queue.purge", "jobs.a", "alice", denied, sizeof(denied)));
	cr_assert_not(change(&b, "queue.delete", "jobs.a", "alice", denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: only the creator of queue 'jobs.a' or an "
	    "admin may delete it");
	cr_assert_not(change(&b, "queue.purge", "jobs.a", "alice", denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: only the creator of queue 'jobs.a' or an "
	    "admin may purge it");
	cr_assert_not(change(&b, "topic.delete", "events.a", "alice", denied, sizeof(denied)));
	/* Made by nobody (an open broker earlier): only an admin. */
	{
		struct acl_change ch = { .op = mom_admin_op("queue.delete"), .name = "jobs.old", .pattern = NULL, .dst = NULL, .exists = true, .owner = NULL };

		cr_assert_not(acl_change(&a, &ch, denied, sizeof(denied)));
	}
	/* A missing object: the fsm answers "no such queue". */
	cr_assert(change(&b, "queue.delete", "jobs.none", NULL, denied, sizeof(denied)));
}

Test(acl, a_subscription_is_deleted_by_its_creator)
{
	struct mom_claims a = user("alice"), b = user("bob");
	struct acl_change ch = { .op = mom_admin_op("sub.delete"), .name = "audit", .pattern = "events.>", .dst = NULL, .exists = true, .owner = "alice" };
	char              denied[160] = "";

	cr_assert(acl_change(&a, &ch, denied, sizeof(denied)));
	cr_assert_not(acl_change(&b, &ch, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: only the creator of subscription 'audit' "
	    "or an admin may delete it");
}

Test(acl, creating_a_subscription_needs_consume_rights)
{
	struct mom_claims a = user("alice");
	struct acl_change ok = { .op = mom_admin_op("sub.create"), .name = "s", .pattern = "events.>", .dst = NULL, .exists = false, .owner = NULL };
	struct acl_change no = { .op = mom_admin_op("sub.create"), .name = "s", .pattern = "payroll.>", .dst = NULL, .exists = false, .owner = NULL };
	char              denied[160] = "";

	cr_assert(acl_change(&a, &ok, denied, sizeof(denied)));
	cr_assert_not(acl_change(&a, &no, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: subscribe to 'payroll.>'");
}

Test(acl, moving_needs_the_source_and_publish_rights_on_the_target)
{
	struct mom_claims a = user("alice"), b = user("bob");
	struct acl_change ch = { .op = mom_admin_op("queue.move"), .name = "jobs.dead", .pattern = NULL, .dst = "jobs.retry", .exists = true, .owner = "alice" };
	char              denied[160] = "";

	cr_assert(acl_change(&a, &ch, denied, sizeof(denied)));
	cr_assert_not(acl_change(&b, &ch, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: only the creator of queue 'jobs.dead' or "
	    "an admin may move its messages");
	ch.dst = "payroll";
	cr_assert_not(acl_change(&a, &ch, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: publish to queue 'payroll'");
}

Test(acl, an_admin_operation_needs_an_admin)
{
	struct mom_claims a = user("alice");
	char              denied[128] = "";

	cr_assert_not(acl_change(&a, &join, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: cluster.join needs an admin token");
}

Test(acl, reads_are_open_to_every_client)
{
	struct mom_claims a = user("alice");
	char              denied[128] = "";

	cr_assert(change(&a, "queue.info", "payroll", "bob", denied, sizeof(denied)));
	cr_assert(change(&a, "stats", NULL, NULL, denied, sizeof(denied)));
}

Test(acl, every_change_in_the_table_denies_a_stranger)
{
	struct mom_claims          a = user("alice");
	const struct mom_admin_op *op;
	char                       denied[160];

	/* On objects alice cannot name and bob created, every change is refused. */
	for (op = mom_admin_ops(); op->name != NULL; op++) {
		struct acl_change ch = { .op = op, .name = "payroll", .pattern = "payroll.>", .dst = "payroll", .exists = true, .owner = "bob" };

		if (!op->write)
			continue;
		denied[0] = '\0';
		cr_assert_not(acl_change(&a, &ch, denied, sizeof(denied)), "%s allowed", op->name);
		cr_assert(strncmp(denied, "permission denied: ", 19) == 0, "%s: %s", op->name,
		    denied);
	}
}

/* A publish batch of messages to the given queues. */
static void
batch(struct mom_buf *b, const char *const *names, size_t n)
{
	struct mom_pub_batch pb;
	struct mom_pub_msg   m;
	size_t               off, i;

	memset(&pb, 0, sizeof(pb));
	pb.kind = MOM_KIND_QUEUE;
	pb.name.p = (const uint8_t *)names[0];
	pb.name.n = strlen(names[0]);
	mom_pub_encode_begin(b, &pb);
	off = mom_pub_count_offset(b, 0);
	for (i = 0; i < n; i++) {
		memset(&m, 0, sizeof(m));
		m.kind = MOM_KIND_QUEUE;
		m.name.p = (const uint8_t *)names[i];
		m.name.n = strlen(names[i]);
		m.payload.p = (const uint8_t *)"x";
		m.payload.n = 1;
		mom_pub_encode_msg(b, &pb, &m);
	}
	mom_pub_encode_count(b, off, n);
}

Test(acl, every_target_of_a_publish_batch_is_checked)
{
	static const char *const good[] = { "jobs.a", "jobs.a", "logs.web" };
	static const char *const bad[] = { "jobs.a", "jobs.b", "payroll" };
	struct mom_claims        a = user("alice");
	struct mom_buf           b;
	char                     denied[128] = "";

	mom_buf_init(&b);
	batch(&b, good, 3);
	cr_assert(acl_publish(&a, b.data, b.len, 1 << 20, denied, sizeof(denied)));
	mom_buf_reset(&b);
	batch(&b, bad, 3);
	cr_assert_not(acl_publish(&a, b.data, b.len, 1 << 20, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: publish to queue 'payroll'");
	cr_assert(acl_publish(NULL, b.data, b.len, 1 << 20, denied, sizeof(denied)));
	mom_buf_fini(&b);
}

Test(acl, a_dead_letter_queue_needs_publish_rights)
{
	struct mom_claims a = user("alice");
	struct acl_change ch = { .op = mom_admin_op("queue.create"), .name = "jobs.trojan" };
	char              denied[160] = "";

	ch.targets[0] = "payroll";
	ch.target_opts[0] = mom_admin_opt(ch.op, "dead_letter");
	ch.ntargets = 1;
	cr_assert_not(acl_change(&a, &ch, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: dead-letter queue 'payroll' needs publish "
	    "rights on it");
	ch.targets[0] = "jobs.dead";
	cr_assert(acl_change(&a, &ch, denied, sizeof(denied)));
	ch.targets[0] = "payroll";
	cr_assert(acl_change(NULL, &ch, denied, sizeof(denied)), "an open broker allows it");
}

Test(acl, a_lease_is_held_by_its_user_and_settled_by_that_user_or_an_admin)
{
	struct mom_claims alice = user("alice"), alice2 = user("alice"), bob = user("bob");
	struct mom_claims root = admin();

	/* An open broker: nobody holds, anybody settles. */
	cr_assert_eq(acl_holder(NULL, false), 0);
	cr_assert_eq(acl_holder(NULL, true), 0);
	/* A user holds what it receives, and settles with the same mark (a new token too). */
	cr_assert_neq(acl_holder(&alice, false), 0);
	cr_assert_eq(acl_holder(&alice, true), acl_holder(&alice, false));
	cr_assert_eq(acl_holder(&alice2, true), acl_holder(&alice, false));
	cr_assert_neq(acl_holder(&bob, true), acl_holder(&alice, false));
	/* An admin's receive is marked as its own; its settlements go for any lease. */
	cr_assert_neq(acl_holder(&root, false), 0);
	cr_assert_eq(acl_holder(&root, true), 0);
}

Test(acl, a_reply_queue_is_its_creators_and_the_admins)
{
	struct mom_claims a = user("alice"), b = user("bob"), r = admin();
	char              denied[160] = "";

	cr_assert(acl_sees_queue(&a, "_reply.0011223344556677", "alice"));
	cr_assert(acl_sees_queue(&r, "_reply.0011223344556677", "alice"));
	cr_assert_not(acl_sees_queue(&b, "_reply.0011223344556677", "alice"));
	cr_assert_not(acl_sees_queue(&b, "_reply.0011223344556677", NULL),
	    "made on an open broker: only an admin");
	cr_assert(acl_sees_queue(NULL, "_reply.0011223344556677", "alice"),
	    "an open broker: the name is the only protection");
	/* Any other queue, and "_reply." itself or a look-alike, are not private. */
	cr_assert(acl_sees_queue(&b, "jobs.a", "alice"));
	cr_assert(acl_sees_queue(&b, "_reply.", "alice"));
	cr_assert(acl_sees_queue(&b, "_replyx.1", "alice"));
	/* Declaring someone else's reply queue again would show it. */
	{
		struct acl_change ch = { .op = mom_admin_op("queue.create"),
			.name = "_reply.0011223344556677", .exists = true, .owner = "alice" };

		cr_assert_not(acl_change(&b, &ch, denied, sizeof(denied)));
		cr_assert_str_eq(denied, "permission denied: queue '_reply.0011223344556677' is "
		    "private to its creator");
		cr_assert(acl_change(&r, &ch, denied, sizeof(denied)));
	}
}

/* queue.peek (issue 12, item 6): looking needs the right to consume, not to publish. */
Test(acl, peek_needs_consume_rights)
{
	struct mom_claims a = user("alice");
	char              denied[160];

	cr_assert(change(&a, "queue.peek", "jobs.dead", "bob", denied, sizeof(denied)));
	cr_assert(change(&a, "queue.peek", "events.x", NULL, denied, sizeof(denied)));
	/* logs.* she may publish to, not consume from. */
	cr_assert_not(change(&a, "queue.peek", "logs.x", NULL, denied, sizeof(denied)));
	cr_assert_str_eq(denied, "permission denied: consume from queue 'logs.x'");
	/* Another's reply queue stays private. */
	cr_assert_not(change(&a, "queue.peek", "_reply.x", "bob", denied, sizeof(denied)));
}

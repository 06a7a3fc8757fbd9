/*
 * adminops_test.c: the admin vocabulary (adminops.h).  Operation names,
 * option keys and defaults are in every broker's log, so this test holds
 * the frozen list: adding to the table is fine, renaming or changing a
 * default fails here.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "adminops.h"

/* Version 1 of the log: every operation and whether it changes state. */
static const struct {
	const char *name;
	bool        write;
} frozen_ops[] = {
	{ "queue.list", false }, { "queue.info", false }, { "topic.list", false },
	{ "topic.info", false }, { "sub.list", false }, { "stats", false },
	{ "stats.prom", false }, { "cluster.status", false },
	{ "queue.create", true }, { "queue.delete", true }, { "queue.purge", true },
	{ "queue.move", true }, { "topic.create", true }, { "topic.delete", true },
	{ "sub.create", true }, { "sub.delete", true },
	/* Cluster changes go to the replica, not into the log as commands of ours. */
	{ "cluster.add", false }, { "cluster.remove", false }, { "cluster.transfer", false },
};

/* Version 1: option keys and the defaults replay applies. */
static const struct {
	const char *op, *key;
	uint64_t    dflt;
} frozen_opts[] = {
	{ "queue.create", "ack_wait_ms", 30000 },
	{ "queue.create", "max_deliver", 20 },
	{ "queue.create", "dead_letter", 0 },
	{ "queue.create", "ttl_ms", 0 },
	{ "queue.create", "max_len", 0 },
	{ "queue.create", "max_bytes", 0 },
	{ "topic.create", "retain_ms", 0 },
	{ "topic.create", "retain_bytes", 0 },
	{ "sub.create", "ack_wait_ms", 30000 },
};

Test(adminops, every_frozen_operation_is_still_there)
{
	size_t i;

	for (i = 0; i < sizeof(frozen_ops) / sizeof(frozen_ops[0]); i++) {
		const struct mom_admin_op *op = mom_admin_op(frozen_ops[i].name);

		cr_assert_not_null(op, "%s is gone from the table", frozen_ops[i].name);
		cr_assert_eq(op->write, frozen_ops[i].write, "%s changed kind", op->name);
	}
}

Test(adminops, every_frozen_option_keeps_its_key_and_default)
{
	size_t i;

	for (i = 0; i < sizeof(frozen_opts) / sizeof(frozen_opts[0]); i++) {
		const struct mom_admin_opt *o = mom_admin_opt(mom_admin_op(frozen_opts[i].op),
		    frozen_opts[i].key);

		cr_assert_not_null(o, "%s %s is gone", frozen_opts[i].op, frozen_opts[i].key);
		cr_assert_str_eq(o->key, frozen_opts[i].key);
		cr_assert_eq(o->dflt, frozen_opts[i].dflt, "%s default changed", o->key);
		cr_assert_eq(mom_admin_default(frozen_opts[i].op, frozen_opts[i].key),
		    frozen_opts[i].dflt);
	}
}

Test(adminops, options_are_found_by_key_or_api_name)
{
	const struct mom_admin_op *q = mom_admin_op("queue.create");

	cr_assert_str_eq(mom_admin_opt(q, "ack_wait")->key, "ack_wait_ms");
	cr_assert_str_eq(mom_admin_opt(q, "ack_wait_ms")->key, "ack_wait_ms");
	cr_assert_str_eq(mom_admin_opt(q, "ttl")->key, "ttl_ms");
	cr_assert_null(mom_admin_opt(q, "retain"), "a topic option is no queue option");
	cr_assert_null(mom_admin_opt(mom_admin_op("queue.delete"), "ack_wait"));
	cr_assert_null(mom_admin_opt(NULL, "ack_wait"));
	cr_assert_null(mom_admin_op("queue.frobnicate"));
	cr_assert_null(mom_admin_op(NULL));
	cr_assert_eq(mom_admin_default("queue.frobnicate", "ack_wait_ms"), 0);
}

Test(adminops, limits)
{
	const struct mom_admin_op *q = mom_admin_op("queue.create");

	cr_assert_eq(mom_admin_opt_max(mom_admin_opt(q, "max_deliver")), UINT32_MAX);
	cr_assert_eq(mom_admin_opt_max(mom_admin_opt(q, "max_len")), (uint64_t)INT64_MAX);
}

Test(adminops, names_are_unique_and_changes_name_their_object)
{
	const struct mom_admin_op *a, *b;
	const struct mom_admin_opt *o, *p;

	for (a = mom_admin_ops(); a->name != NULL; a++) {
		for (b = a + 1; b->name != NULL; b++)
			cr_assert_str_neq(a->name, b->name);
		if (a->write)
			cr_assert_not_null(a->object, "%s names no object", a->name);
		for (o = a->opts; o != NULL && o->key != NULL; o++)
			for (p = o + 1; p->key != NULL; p++) {
				cr_assert_str_neq(o->key, p->key);
				if (o->flag != NULL && p->flag != NULL)
					cr_assert_str_neq(o->flag, p->flag);
			}
	}
}

/* mom-admin builds its getopt options from the flags: one flag, one option. */
Test(adminops, flags_are_unique_across_the_table)
{
	const struct mom_admin_op  *a, *b;
	const struct mom_admin_opt *o, *p;

	for (a = mom_admin_ops(); a->name != NULL; a++)
		for (o = a->opts; o != NULL && o->key != NULL; o++)
			for (b = a; b->name != NULL; b++)
				for (p = b == a ? o + 1 : b->opts; p != NULL && p->key != NULL; p++)
					if (o->flag != NULL && p->flag != NULL)
						cr_assert_str_neq(o->flag, p->flag, "%s and %s", a->name,
						    b->name);
}

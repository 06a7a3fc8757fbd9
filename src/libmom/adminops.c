/*
 * adminops.c: the table of admin operations and their options (see
 * adminops.h).  Names, keys and defaults here are in every broker's log:
 * add rows, never rename or change one.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "adminops.h"

#define NONE 0

static const struct mom_admin_opt queue_opts[] = {
	{ "ack_wait_ms", "ack_wait", "ack-wait", MOM_AOPT_DURATION, 30000, 0, false },
	{ "max_deliver", "max_deliver", "max-deliver", MOM_AOPT_COUNT, 20, UINT32_MAX, false },
	{ "dead_letter", "dead_letter", "dead-letter", MOM_AOPT_NAME, NONE, 0, false },
	{ "ttl_ms", "ttl", "ttl", MOM_AOPT_DURATION, 0, 0, false },
	{ "max_len", "max_len", "max-len", MOM_AOPT_COUNT, 0, 0, false },
	{ "max_bytes", "max_bytes", "max-bytes", MOM_AOPT_SIZE, 0, 0, false },
	/* Deleted once nobody fetched from it this long (0: never; a log of before has none). */
	{ "idle_expire_ms", "idle_expire", "idle-expire", MOM_AOPT_DURATION, 0, 0, false },
	{ NULL, NULL, NULL, 0, 0, 0, false },
};

/*
 * queue.update: the same options, each changed only when given (no
 * defaults: an absent one keeps its value; "dead_letter" null removes the
 * target).  mom-admin takes them by queue.create's flags (one flag, one
 * option: see mom-admin/options.c).
 */
static const struct mom_admin_opt queue_update_opts[] = {
	{ "ack_wait_ms", "ack_wait", NULL, MOM_AOPT_DURATION, NONE, 0, false },
	{ "max_deliver", "max_deliver", NULL, MOM_AOPT_COUNT, NONE, UINT32_MAX, false },
	{ "dead_letter", "dead_letter", NULL, MOM_AOPT_NAME, NONE, 0, false },
	{ "ttl_ms", "ttl", NULL, MOM_AOPT_DURATION, NONE, 0, false },
	{ "max_len", "max_len", NULL, MOM_AOPT_COUNT, NONE, 0, false },
	{ "max_bytes", "max_bytes", NULL, MOM_AOPT_SIZE, NONE, 0, false },
	{ "idle_expire_ms", "idle_expire", NULL, MOM_AOPT_DURATION, NONE, 0, false },
	{ NULL, NULL, NULL, 0, 0, 0, false },
};

static const struct mom_admin_opt topic_opts[] = {
	/* Without them, the broker's --retain and --retain-bytes. */
	{ "retain_ms", "retain", "retain", MOM_AOPT_DURATION, 0, 0, true },
	{ "retain_bytes", "retain_bytes", "retain-bytes", MOM_AOPT_SIZE, 0, 0, true },
	{ NULL, NULL, NULL, 0, 0, 0, false },
};

/* Made by a receive (or an HTTP PUT, which takes only "from"): no API or flag names. */
static const struct mom_admin_opt sub_opts[] = {
	{ "ack_wait_ms", NULL, NULL, MOM_AOPT_DURATION, 30000, 0, false },
	{ NULL, NULL, NULL, 0, 0, 0, false },
};

static const struct mom_admin_op ops[] = {
	/* Reads: answered from the state at once (the last four by any node, for itself). */
	{ "queue.list", false, MOM_AP_READ, NULL, NULL, NULL, false },
	{ "queue.info", false, MOM_AP_READ, "queue", NULL, NULL, false },
	{ "topic.list", false, MOM_AP_READ, NULL, NULL, NULL, false },
	{ "topic.info", false, MOM_AP_READ, "topic", NULL, NULL, false },
	{ "sub.list", false, MOM_AP_READ, NULL, NULL, NULL, false },
	{ "stats", false, MOM_AP_READ, NULL, NULL, NULL, true },
	{ "stats.prom", false, MOM_AP_READ, NULL, NULL, NULL, true },
	{ "cluster.status", false, MOM_AP_READ, NULL, NULL, NULL, true },
	{ "cluster.digest", false, MOM_AP_READ, NULL, NULL, NULL, true },
	/* The oldest messages, left where they are: for those who may consume them. */
	{ "queue.peek", false, MOM_AP_CONSUME, "queue", "look at its messages", NULL, false },
	{ "publish.check", false, MOM_AP_READ, NULL, NULL, NULL, false },
	/* Cluster changes: admin only, answered by the replica (not log commands of ours). */
	{ "cluster.add", false, MOM_AP_ADMIN, NULL, NULL, NULL, false },
	{ "cluster.remove", false, MOM_AP_ADMIN, NULL, NULL, NULL, false },
	{ "cluster.transfer", false, MOM_AP_ADMIN, NULL, NULL, NULL, false },
	/* Changes: commands through the log. */
	{ "queue.create", true, MOM_AP_CREATE, "queue", NULL, queue_opts, false },
	{ "queue.delete", true, MOM_AP_OWNER, "queue", "delete it", NULL, false },
	{ "queue.purge", true, MOM_AP_OWNER, "queue", "purge it", NULL, false },
	{ "queue.move", true, MOM_AP_MOVE, "queue", "move its messages", NULL, false },
	{ "queue.update", true, MOM_AP_OWNER, "queue", "update it", queue_update_opts, false },
	{ "topic.create", true, MOM_AP_CREATE, "topic", NULL, topic_opts, false },
	{ "topic.delete", true, MOM_AP_OWNER, "topic", "delete it", NULL, false },
	{ "sub.create", true, MOM_AP_SUBSCRIBE, "subscription", NULL, sub_opts, false },
	{ "sub.delete", true, MOM_AP_OWNER, "subscription", "delete it", NULL, false },
	{ NULL, false, 0, NULL, NULL, NULL, false },
};

const struct mom_admin_op *
mom_admin_ops(void)
{
	return ops;
}

const struct mom_admin_op *
mom_admin_op(const char *name)
{
	const struct mom_admin_op *op;

	if (name == NULL)
		return NULL;
	for (op = ops; op->name != NULL; op++)
		if (strcmp(op->name, name) == 0)
			return op;
	return NULL;
}

const struct mom_admin_opt *
mom_admin_opt(const struct mom_admin_op *op, const char *name)
{
	const struct mom_admin_opt *o;

	if (op == NULL || op->opts == NULL || name == NULL)
		return NULL;
	for (o = op->opts; o->key != NULL; o++)
		if (strcmp(o->key, name) == 0 || (o->api != NULL && strcmp(o->api, name) == 0))
			return o;
	return NULL;
}

uint64_t
mom_admin_default(const char *opname, const char *key)
{
	const struct mom_admin_opt *o = mom_admin_opt(mom_admin_op(opname), key);

	return o != NULL ? o->dflt : 0;
}

uint64_t
mom_admin_opt_max(const struct mom_admin_opt *o)
{
	return o->max != 0 ? o->max : (uint64_t)INT64_MAX;
}

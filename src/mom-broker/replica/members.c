/*
 * members.c: cluster administration as the replica offers it (see
 * replica.h): the status of every node, and membership and leadership
 * changes.  This broker is a cluster of one, node 1, with no cluster
 * listener: the status describes it, and every change is refused through
 * its done callback, so that callers are written for the asynchronous
 * answers a real cluster gives.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mom.h"
#include "replica/replica.h"
#include "replica/replica_int.h"

#define SELF_ID 1 /* the id a broker without --node-id has */

static const char not_clustered[] = "this broker is not in a cluster: start it with "
    "--node-id, --peer and --cluster-key (mom-broker(8))";

#ifdef MOM_FAULT_INJECTION
/*
 * MOM_FAULT_CLUSTER_HOLD (set unless empty or "0"): a change's answer is
 * held until the next change comes (which is held in its turn), as a
 * cluster's would be until a majority agreed, so that a test can make a
 * client wait and go away.
 * Fault build only: one broker per process, hence a plain static list.
 */
#define HOLD_MAX 16
static struct {
	replica_done_fn done;
	void           *arg;
} held[HOLD_MAX];
static size_t nheld;

static bool
hold(replica_done_fn done, void *arg)
{
	const char *v = getenv("MOM_FAULT_CLUSTER_HOLD");

	if (v == NULL || *v == '\0' || strcmp(v, "0") == 0 || nheld == HOLD_MAX)
		return false;
	held[nheld].done = done;
	held[nheld++].arg = arg;
	return true;
}

static void
release_held(void)
{
	size_t i, n = nheld;

	nheld = 0;
	for (i = 0; i < n; i++)
		held[i].done(held[i].arg, MOM_EINVAL, not_clustered);
}
#else
static bool
hold(replica_done_fn done, void *arg)
{
	(void)done;
	(void)arg;
	return false;
}

static void
release_held(void)
{
}
#endif

/* The answer of a change: now, or (fault build) when the next one comes. */
static int
refuse(replica_done_fn done, void *arg)
{
	release_held();
	if (!hold(done, arg))
		done(arg, MOM_EINVAL, not_clustered);
	return 0;
}

json_t *
replica_cluster_json(struct replica *r)
{
	if (r->cfg.node_id != 0)
		return cluster_json(r);
	uint64_t term, commit, applied;
	bool     lead = replica_is_leader(r);
	json_t  *o, *node;

	replica_status(r, &term, &commit, &applied);
	node = json_pack("{s:I, s:n, s:s, s:I, s:I, s:I, s:I}",
	    "id", (json_int_t)SELF_ID,
	    "url",
	    "role", lead ? "leader" : "follower",
	    "term", (json_int_t)term,
	    "commit", (json_int_t)commit,
	    "applied", (json_int_t)applied,
	    "lag", (json_int_t)0);
	if (node == NULL)
		return NULL;
	o = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:[o]}",
	    "leader", lead ? json_integer(SELF_ID) : json_null(),
	    "self", (json_int_t)SELF_ID,
	    "term", (json_int_t)term,
	    "commit", (json_int_t)commit,
	    "applied", (json_int_t)applied,
	    "elections", (json_int_t)0,
	    "nodes", node);
	return o;
}

int
replica_member_add(struct replica *r, uint64_t id, const char *url, replica_done_fn done,
    void *arg)
{
	if (r->cfg.node_id != 0)
		return cluster_member_add(r, id, url, done, arg);
	(void)r;
	(void)id;
	(void)url;
	return refuse(done, arg);
}

int
replica_member_remove(struct replica *r, uint64_t id, replica_done_fn done, void *arg)
{
	if (r->cfg.node_id != 0)
		return cluster_member_remove(r, id, done, arg);
	(void)r;
	(void)id;
	return refuse(done, arg);
}

int
replica_transfer(struct replica *r, uint64_t id, replica_done_fn done, void *arg)
{
	if (r->cfg.node_id != 0)
		return cluster_transfer(r, id, done, arg);
	(void)r;
	(void)id;
	return refuse(done, arg);
}

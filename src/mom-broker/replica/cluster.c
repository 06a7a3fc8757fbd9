/*
 * cluster.c: a replica that is a node of a cluster (replica.h, cluster
 * mode): whose data directory it is, forming a cluster, and who leads.
 *
 * Forming is explicit (SPEC "Cluster"): nodes started with --bootstrap
 * and the same members on empty data directories each write the same
 * configuration as entry 1 and derive the same cluster id; a node with
 * an empty directory and no --bootstrap waits to be added; a directory
 * that holds a cluster uses its stored membership, whatever --peer and
 * --bootstrap say.  A single broker's data becomes a cluster only
 * through --convert-to-cluster (replica_convert).
 *
 * Leading: libraft 0.15 appends nothing when a node becomes leader and
 * commits entries of earlier terms by counting copies (DEPENDENCY-NOTES,
 * figure 8).  So a new leader proposes a barrier of its own term at once
 * and serves only once it is applied: then everything committed before
 * is applied too, and reads see every confirmed write.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <raft.h>

#include "log.h"
#include "mom.h"
#include "replica/ident.h"
#include "replica/replica.h"
#include "replica/replica_int.h"
#include "storage/rio.h"
#include "storage/store.h"

static size_t bootstrap_members(const struct replica *, struct ident_member *, size_t);

/* Nothing on disk yet: no entry, no snapshot, no term. */
static bool
dir_empty(struct replica *r)
{
	struct store_meta m;
	struct store     *s = rio_store(&r->io);
	uint64_t          snap = 0;
	char              err[256];

	if (s == NULL || store_last(s) != 0)
		return false;
	if (rio_snapshot_index(r->cfg.dir, &snap, err, sizeof(err)) != 0 || snap != 0)
		return false;
	return store_meta_load(s, &m) == 0 && m.term == 0;
}

/*
 * Before raft_init: the directory's owner against --node-id.  0, or -1
 * with r->errmsg.
 */
int
cluster_check_dir(struct replica *r)
{
	struct ident *id = &r->node.ident;
	char          err[512];
	int           rv;

	rv = ident_load(r->cfg.dir, id, err, sizeof(err));
	if (rv == MOM_ENOENT) {
		struct ident_member m[REPLICA_MAX_NODES];
		size_t              n;

		memset(id, 0, sizeof(*id));
		/* Forming: the links speak the new cluster's id from the start. */
		if (r->cfg.node_id != 0 && r->cfg.bootstrap) {
			n = bootstrap_members(r, m, REPLICA_MAX_NODES);
			r->node.boot_cluster = ident_derive(r->cfg.key, r->cfg.keylen, m, n, NULL);
		}
		return 0;
	}
	if (rv != 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", err);
		return -1;
	}
	if (r->cfg.node_id == 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s belongs to node %" PRIu64 " of cluster "
		    "%016" PRIx64 ": start it with --node-id %" PRIu64 " and --cluster-key",
		    r->cfg.dir, id->node, id->cluster, id->node);
		return -1;
	}
	if (id->node != r->cfg.node_id) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s belongs to node %" PRIu64 ", not to "
		    "--node-id %" PRIu64 ": give each node its own data directory", r->cfg.dir,
		    id->node, r->cfg.node_id);
		return -1;
	}
	return 0;
}

/* A node waiting to be added heard from its cluster: the id is this directory's now. */
void
cluster_learned(struct replica *r, uint64_t cluster)
{
	char err[512];

	r->node.ident.cluster = cluster;
	if (ident_save(r->cfg.dir, &r->node.ident, err, sizeof(err)) != 0)
		log_warnx("%s", err);
	else
		log_info("node %" PRIu64 " joined cluster %016" PRIx64, r->cfg.node_id, cluster);
}

/* The members of --bootstrap and their cluster id. */
static size_t
bootstrap_members(const struct replica *r, struct ident_member *m, size_t max)
{
	size_t i, n = 0;

	m[n].id = r->cfg.node_id;
	m[n++].url = r->cfg.cluster_url;
	for (i = 0; i < r->cfg.npeers && n < max; i++) {
		m[n].id = r->cfg.peers[i].id;
		m[n++].url = r->cfg.peers[i].url;
	}
	return n;
}

/* The members of --bootstrap: this node and its peers, all voters. */
static int
bootstrap_new(struct replica *r)
{
	struct raft_configuration conf;
	struct ident_member       m[REPLICA_MAX_NODES];
	size_t                    i, n = bootstrap_members(r, m, REPLICA_MAX_NODES);
	char                      err[512];
	int                       rv = 0;

	raft_configuration_init(&conf);
	for (i = 0; rv == 0 && i < n; i++)
		rv = raft_configuration_add(&conf, m[i].id, m[i].url, RAFT_VOTER);
	if (rv == 0)
		rv = raft_bootstrap(&r->raft, &conf);
	raft_configuration_close(&conf);
	if (rv != 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "cannot form the cluster: %s",
		    raft_errmsg(&r->raft));
		return -1;
	}
	r->node.ident.node = r->cfg.node_id;
	r->node.ident.cluster = r->node.boot_cluster;
	if (ident_save(r->cfg.dir, &r->node.ident, err, sizeof(err)) != 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", err);
		return -1;
	}
	log_info("formed cluster %016" PRIx64 " of %zu nodes", r->node.ident.cluster, n);
	return 0;
}

/*
 * After raft_init, before raft_start: form the cluster (--bootstrap on
 * an empty directory), wait to be added, or go on with what the
 * directory holds.  *alone: the configuration may be this node alone
 * (then the caller checks after raft_start).  0, or -1 with r->errmsg.
 */
int
cluster_bootstrap(struct replica *r, bool *alone)
{
	struct ident *id = &r->node.ident;
	char          err[512];

	*alone = false;
	if (id->node != 0) {
		if (r->cfg.bootstrap)
			log_info("%s holds node %" PRIu64 " of cluster %016" PRIx64 ": --bootstrap "
			    "and --peer are not used, the stored membership is", r->cfg.dir,
			    id->node, id->cluster);
		*alone = true;
		return 0;
	}
	if (!dir_empty(r)) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s holds a single broker's data: make it "
		    "a cluster of this node alone first (mom-broker -D %s --node-id %" PRIu64
		    " --cluster URL --cluster-key FILE --convert-to-cluster), then add the "
		    "others", r->cfg.dir, r->cfg.dir, r->cfg.node_id);
		return -1;
	}
	if (r->cfg.bootstrap)
		return bootstrap_new(r);
	/* Waiting to be added: the node id is this directory's from now on. */
	id->node = r->cfg.node_id;
	id->cluster = 0;
	if (ident_save(r->cfg.dir, id, err, sizeof(err)) != 0) {
		snprintf(r->errmsg, sizeof(r->errmsg), "%s", err);
		return -1;
	}
	log_info("an empty node: waiting to be added to a cluster (mom-admin cluster add %"
	    PRIu64 " %s)", r->cfg.node_id, r->cfg.cluster_url);
	return 0;
}

static void
lead_barrier_cb(struct raft_barrier *req, int status)
{
	struct replica *r = req->data;

	r->node.barrier_out = false;
	if (status != 0 || raft_state(&r->raft) != RAFT_LEADER ||
	    r->raft.current_term != r->node.lead_term)
		return; /* lost the leadership meanwhile: the next leader's turn */
	r->node.leading = true;
	r->node.elections++;
	log_info("node %" PRIu64 " leads (term %" PRIu64 ")", r->cfg.node_id,
	    (uint64_t)r->raft.current_term);
	/* The entries committed with the barrier are still stashed: the core
	 * takes up the cluster's clock from the last one applied. */
	replica_call_role(r, true);
}

#ifdef MOM_FAULT_INJECTION
/*
 * MOM_FAULT_LATE_BARRIER=FILE: a new leader proposes its barrier only the
 * number of milliseconds FILE holds (none or unreadable: at once) after
 * it won, so that a test can open the window the figure-8 guard covers
 * (storage/guard.h, tests/chaos).  FILE is read at every drive until the
 * barrier goes, so that a test can also end the wait early by writing 0.
 */
static bool
barrier_late(struct replica *r)
{
	struct replica_node *n = &r->node;
	const char          *path = getenv("MOM_FAULT_LATE_BARRIER");
	FILE                *f;
	long                 ms = 0;

	if (path == NULL || *path == '\0')
		return false;
	if (n->won_term != r->raft.current_term) {
		n->won_term = r->raft.current_term;
		n->won_ms = mom_mono_ms();
	}
	if ((f = fopen(path, "r")) != NULL) {
		if (fscanf(f, "%ld", &ms) != 1)
			ms = 0;
		fclose(f);
	}
	return mom_mono_ms() - n->won_ms < ms;
}
#else
static bool
barrier_late(struct replica *r)
{
	(void)r;
	return false;
}
#endif

/*
 * Each drive: a new leadership proposes its barrier; a lost one stops
 * serving at once (the core gives back leases and long polls).
 */
void
cluster_watch(struct replica *r)
{
	struct replica_node *n = &r->node;
	bool                 leader = raft_state(&r->raft) == RAFT_LEADER;

	membership_drive(r);
	if (n->leading && (!leader || r->raft.current_term != n->lead_term)) {
		n->leading = false;
		log_info("node %" PRIu64 " no longer leads (term %" PRIu64 ")", r->cfg.node_id,
		    (uint64_t)r->raft.current_term);
		replica_call_role(r, false);
	}
	if (!leader || n->leading || (n->barrier_out && n->lead_term == r->raft.current_term))
		return;
	if (n->barrier_out)
		return; /* an older term's barrier is still out: its callback comes first */
	if (barrier_late(r))
		return;
	memset(&n->barrier, 0, sizeof(n->barrier));
	n->barrier.data = r;
	n->lead_term = r->raft.current_term;
	if (raft_barrier(&r->raft, &n->barrier, lead_barrier_cb) == 0) {
		n->barrier_out = true;
		n->barriers++;
	}
}

/*
 * core.h: the core thread.  It alone owns the broker's state (the fsm and
 * every lease); other threads hand it requests through a bounded queue.
 * This is the Redis rule: one writer, no locks around queues and topics.
 */
#ifndef BROKER_CORE_H
#define BROKER_CORE_H

#include <stddef.h>
#include <stdint.h>

struct fsm;
struct fctx;
struct core;
struct front;

struct core_config {
	size_t      max_payload;
	size_t      queue_max;      /* requests waiting for the core; beyond: "busy" */
	const char *dir;            /* the data directory (the log) */
	int         fsync;          /* enum rio_fsync */
	uint64_t    fsync_interval_ms;
	uint64_t    snapshot_bytes; /* log written between snapshots, at least; 0: 64 MiB */
};

/*
 * Starts the core thread, which opens the log in cfg->dir and replays it
 * (snapshot, then the entries after it) before returning.  0, or an error
 * with err saying why (a damaged data directory names the file and
 * offset).
 */
int  core_start(struct core **, struct fsm *, const struct core_config *, char *err,
    size_t errlen);
/* Hands a request to the core (any thread).  Replies "busy" when full. */
void core_submit(struct core *, struct fctx *);
/*
 * Stops the thread after it answered everything queued; later requests
 * are answered "shutting down".  Free only after the front is stopped.
 */
void core_stop(struct core *);
void core_free(struct core *);
void core_set_front(struct core *, struct front *);

#endif

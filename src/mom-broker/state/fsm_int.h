/*
 * fsm_int.h: what fsm.c, fsm_admin.c and fsm_snap.c share about the state
 * machine's objects.  Private to state/: no other layer includes it.
 */
#ifndef BROKER_FSM_INT_H
#define BROKER_FSM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "state/fsm.h"
#include "state/mq.h"
#include "state/msg.h"

/*
 * De-duplication state of one streaming publisher: seen sequence ranges.
 * Every producer is also on the fsm's list from the least to the most
 * recently heard (prod_head .. prod_tail), so that a tick expires idle
 * ones from the head, never walking the table.
 */
#define PRODUCER_RANGES 16
struct producer {
	struct producer *prev, *next;
	uint64_t         id;
	int64_t          last_ms;
	size_t           n;
	uint64_t         lo[PRODUCER_RANGES], hi[PRODUCER_RANGES]; /* sorted, [lo, hi) */
};

/* p goes to the list's tail (the most recently heard); it may be on it already. */
void fsm_producer_touch(struct fsm *, struct producer *p);

/* A publisher id seen within the de-duplication window. */
struct idrec {
	struct idrec *next;
	int64_t       expires;
	size_t        klen;
	char          key[];  /* kind, target name, NUL, id */
};

/* Sets res's status and message. */
void fsm_fail(struct fsm_result *, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees every object (telling the core through gone), leaves the maps finalised. */
void fsm_clear(struct fsm *);

/* q got messages: the core wakes its waiters after the command. */
void fsm_touch(struct fsm *, struct mq *q);

/*
 * Appends a record of key[0..klen) expiring at expires to the window (its
 * map and its list, oldest first).  0 or MOM_ENOMEM (nothing kept).
 */
int fsm_id_append(struct fsm *, const void *key, size_t klen, int64_t expires);

/*
 * The objects.  The _free functions leave the object's own map alone: the
 * caller deletes it from there first (or is finalising the map).
 */
void fsm_queue_free(struct fsm *, struct queue *);
void fsm_topic_free(struct fsm *, struct topic *);
void fsm_sub_free(struct fsm *, struct sub *);
/* Sets s's key, pattern and name (one allocation).  0 or MOM_ENOMEM. */
int  fsm_sub_key(struct sub *s, const char *pat, size_t plen, const char *name, size_t nlen);

/* A topic's retained log takes a reference to m.  0 or MOM_ENOMEM. */
int  fsm_topic_append(struct topic *, struct msg *m);
/* s serves t from now on (t's list borrows s).  0 or MOM_ENOMEM. */
int  fsm_topic_link(struct topic *, struct sub *s);

/* A queue's mq_dead_fn (arg: the queue): on to its dead-letter queue. */
void fsm_dead_letter(void *arg, struct mq *from, struct msg *m, uint32_t deliveries);
/* Creates a missing dead-letter queue (fsm_admin.c); NULL: out of memory or a bad name. */
struct queue *fsm_queue_implicit(struct fsm *, const char *name, const char *owner, int64_t now);

/* Routes an object's settlements as fsm_set_settle says (see fsm.h). */
void fsm_attach_queue(struct fsm *, struct queue *);
void fsm_attach_sub(struct fsm *, struct sub *);
void fsm_attach_all(struct fsm *);

/* CMD_ADMIN (fsm_admin.c): body is the JSON command. */
void fsm_apply_admin(struct fsm *, const uint8_t *body, size_t len, int64_t now,
    struct fsm_result *);

#endif

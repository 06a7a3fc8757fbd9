/*
 * pub.h: mom-pub's entry point and its request/reply side.
 */
#ifndef PUB_H
#define PUB_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "names.h"
#include "options.h"

/* Publishes; returns the exit status. */
int pub_run(struct pub_options *);

/* request.c: -r, the requester's side of request/reply. */
#define REQ_PREFIX MOM_REPLY_PREFIX /* names.h: private to its creator */
#define REQ_TTL_MS (3600 * 1000) /* replies expire: without -W, after an hour */
/*
 * A reply queue nobody fetched from for this long goes (its requester
 * died): with -W, the wait (at least REQ_EXPIRE_MIN_MS, so that it
 * outlives sending the request), at most --reply-expire.
 */
#define REQ_EXPIRE_MIN_MS 5000
/* A new reply queue name and correlation id. */
void req_names(char *queue, size_t qlen, char *corr, size_t clen);
/* Creates the reply queue; 0 or an error code with the broker's message in err. */
int  req_create(struct mom_client *, const char *queue, uint64_t ttl_ms, uint64_t expire_ms,
    int64_t timeout_ms, char *err, size_t errlen);
/* Deletes it, best effort and silently. */
void req_delete(struct mom_client *, const char *queue, int64_t timeout_ms);
/*
 * Waits for the reply whose correlation id is corr until deadline (a
 * mom_mono_ms time; < 0: forever), writes its payload to stdout and
 * returns its exit status (0-255); or prints one line and returns 75 (-W
 * expired), 69 (broker lost), ...
 */
int  req_wait(const struct mom_cli *, struct mom_client *, const char *queue, const char *corr,
    int64_t deadline);

#endif

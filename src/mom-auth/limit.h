/*
 * limit.h: failed-login limits of mom-auth serve, per key (a user name or
 * a client address).
 *
 * max failures within one period lock the key for one period.  Attempts
 * still being verified count against the limit too, so a burst of
 * parallel guesses cannot slip past it while argon2 runs.  Only keys with
 * recent failures are kept, at most LIMIT_KEYS of them (the oldest idle
 * one goes first).  Thread-safe.
 */
#ifndef LIMIT_H
#define LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define LIMIT_KEYS     10000
#define LIMIT_KEY_MAX  160

struct limit;

/* NULL on ENOMEM. */
struct limit *limit_new(int max_failures, int64_t period_ms);
void          limit_free(struct limit *);
/*
 * Starts an attempt for key at now (ms, monotonic).  Returns 0 when it
 * may go on (then limit_end must follow), else the ms until it may.
 */
int64_t limit_begin(struct limit *, const char *key, int64_t now);
/* Ends an attempt: a failure counts; a success with clear forgets the key. */
void    limit_end(struct limit *, const char *key, bool failed, bool clear, int64_t now);

#endif

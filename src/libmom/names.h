/*
 * names.h: queue/topic names and subscription/permission patterns.
 *
 * A name is 1-200 bytes of [A-Za-z0-9_.-] made of dot-separated non-empty
 * segments ("orders.eu.new").  A pattern is a name whose segments may also
 * be "*" (exactly one segment) or, as the last segment only, ">" (one or
 * more trailing segments).
 */
#ifndef MOM_NAMES_H
#define MOM_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length-explicit forms take bytes that need not be NUL-terminated. */
bool mom_name_valid(const char *, size_t);
bool mom_pattern_valid(const char *, size_t);
/* True when the pattern has no wildcard segment. */
bool mom_pattern_literal(const char *, size_t);
/* Does a valid pattern match a valid name? */
bool mom_pattern_match(const char *pat, size_t plen, const char *name, size_t nlen);
/* NUL-terminated conveniences. */
bool mom_name_ok(const char *);
bool mom_pattern_ok(const char *);
bool mom_match(const char *pat, const char *name);
/*
 * Does the permission pattern perm cover the pattern pattern, that is,
 * does perm match every name pattern can match?  "orders.>" covers
 * "orders.*" and "orders.eu.>"; "orders.*" covers "orders.eu" but not
 * "orders.>".  False when either is not a valid pattern.
 */
bool mom_pattern_covers(const char *perm, const char *pattern);

/*
 * A cluster node id (mom-admin cluster, /v1/cluster/nodes/ID): a positive
 * decimal integer without leading zeros, at most 2^53 so that JSON
 * carries it exactly.  0 with *id set, or -1.
 */
int  mom_node_id_parse(const char *s, uint64_t *id);

/*
 * Reply queues (mom-pub -r makes them): a queue whose name begins with
 * MOM_REPLY_PREFIX is private to its creator.  On a broker with tokens
 * only that token's subject and admins may consume from it, see it in a
 * listing or its info; anyone allowed may publish to it (the reply).
 */
#define MOM_REPLY_PREFIX "_reply."
bool mom_name_private(const char *name, size_t n);

#endif

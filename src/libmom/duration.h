/*
 * duration.h: durations and times as users write them.
 */
#ifndef MOM_DURATION_H
#define MOM_DURATION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parses "500ms", "30s", "10m", "2h", "1d", a bare number of seconds
 * ("30", "0.5"), or a sum of those ("1h30m").  Result in milliseconds.
 * Returns 0 or MOM_EINVAL (empty, negative, unknown unit, overflow past
 * 100 years).
 */
int mom_duration_parse(const char *, uint64_t *ms);

/* Formats ms as the shortest of "250ms", "30s", "1h30m", "2d"... */
void mom_duration_format(uint64_t ms, char *buf, size_t len);

/*
 * Parses a point in time for --from: an ISO-8601 UTC or offset time
 * ("2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5+01:00",
 * "2026-11-23 10:00:00" taken as UTC, "2026-11-23" midnight UTC), or a
 * duration meaning that long before now_ms ("10m").  Result in ms since
 * the epoch.  0 or MOM_EINVAL.
 */
int mom_time_parse(const char *, int64_t now_ms, int64_t *ms);

/* Formats ms since the epoch as "2026-11-23T10:00:00.123Z" (24 bytes + NUL). */
void mom_time_format(int64_t ms, char *buf, size_t len);

#endif

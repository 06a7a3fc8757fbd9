/*
 * duration.c: durations ("1h30m", "0.5") and points in time ("2026-11-23",
 * "10m" ago) as users type them on command lines and in config files.
 *
 * All arithmetic is exact integer arithmetic on milliseconds: a duration
 * that does not come out as a whole number of milliseconds is refused
 * rather than rounded, so what the user wrote is what the broker gets.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "mom.h"

#define MS_SEC  1000ULL
#define MS_MIN  (60 * MS_SEC)
#define MS_HOUR (60 * MS_MIN)
#define MS_DAY  (24 * MS_HOUR)
/* Longer than any TTL anyone means; past it, a typo is more likely. */
#define DURATION_MAX (100 * 365 * MS_DAY)

/* Significant fractional digits; more can never give whole milliseconds. */
#define FRAC_MAX 9

static const uint64_t pow10_tab[FRAC_MAX + 1] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
	1000000000,
};

/*
 * Reads one "<number>[unit]" term at *sp and adds it to *total.  A term
 * without a unit is seconds and only allowed when it is the whole input
 * (*bare tells the caller one was seen), since "1h30" reads as a typo.
 */
static int
duration_term(const char **sp, uint64_t *total, bool *bare)
{
	const char *s = *sp;
	uint64_t whole = 0, frac = 0, unit, v;
	int nfrac = 0;

	if (!isdigit((unsigned char)*s))
		return MOM_EINVAL;
	while (isdigit((unsigned char)*s)) {
		/* Anything this long is over the cap whatever the unit. */
		if (whole > DURATION_MAX)
			return MOM_EINVAL;
		whole = whole * 10 + (uint64_t)(*s - '0');
		s++;
	}
	if (*s == '.') {
		const char *f = ++s, *last;

		if (!isdigit((unsigned char)*s))
			return MOM_EINVAL;
		while (isdigit((unsigned char)*s))
			s++;
		/* Trailing zeros carry no value: "1.500s" is fine. */
		last = s;
		while (last > f && last[-1] == '0')
			last--;
		if (last - f > FRAC_MAX)
			return MOM_EINVAL;
		for (; f < last; f++) {
			frac = frac * 10 + (uint64_t)(*f - '0');
			nfrac++;
		}
	}
	*bare = false;
	if (s[0] == 'm' && s[1] == 's') {
		unit = 1;
		s += 2;
	} else if (*s == 's') {
		unit = MS_SEC;
		s++;
	} else if (*s == 'm') {
		unit = MS_MIN;
		s++;
	} else if (*s == 'h') {
		unit = MS_HOUR;
		s++;
	} else if (*s == 'd') {
		unit = MS_DAY;
		s++;
	} else {
		unit = MS_SEC;
		*bare = true;
	}
	if (whole > DURATION_MAX / unit)
		return MOM_EINVAL;
	v = whole * unit;
	/* frac < 10^9 and unit <= 8.64e7: the product fits in 64 bits. */
	if (nfrac > 0) {
		if ((frac * unit) % pow10_tab[nfrac] != 0)
			return MOM_EINVAL;
		v += frac * unit / pow10_tab[nfrac];
	}
	if (v > DURATION_MAX - *total)
		return MOM_EINVAL;
	*total += v;
	*sp = s;
	return 0;
}

int
mom_duration_parse(const char *s, uint64_t *ms)
{
	const char *p = s;
	uint64_t total = 0;
	bool bare;
	int first = 1, rc;

	if (s == NULL || *s == '\0')
		return MOM_EINVAL;
	while (*p != '\0') {
		if ((rc = duration_term(&p, &total, &bare)) != 0)
			return rc;
		if (bare && !(first && *p == '\0'))
			return MOM_EINVAL;
		first = 0;
	}
	*ms = total;
	return 0;
}

void
mom_duration_format(uint64_t ms, char *buf, size_t len)
{
	static const struct {
		uint64_t ms;
		char     unit;
	} units[] = {
		{ MS_DAY, 'd' }, { MS_HOUR, 'h' }, { MS_MIN, 'm' }, { MS_SEC, 's' },
	};
	size_t i, off = 0;
	int n;

	if (len == 0)
		return;
	buf[0] = '\0';
	/* Sub-second values stay in ms: "1500ms" is exact, "1.5s" invites doubt. */
	if (ms % MS_SEC != 0) {
		snprintf(buf, len, "%" PRIu64 "ms", ms);
		return;
	}
	if (ms == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t q = ms / units[i].ms;

		if (q == 0)
			continue;
		ms -= q * units[i].ms;
		n = snprintf(buf + off, len - off, "%" PRIu64 "%c", q, units[i].unit);
		if (n < 0 || (size_t)n >= len - off)
			return;
		off += (size_t)n;
	}
}

/* Reads exactly n digits at *sp. */
static int
digits(const char **sp, int n, int *out)
{
	const char *s = *sp;
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*sp = s + n;
	*out = v;
	return 0;
}

static int
days_in_month(int y, int m)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return mdays[m - 1];
}

/* ISO-8601 in the forms duration.h lists; -1 when s is not one of them. */
static int
time_iso(const char *s, int64_t *out)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0, msec = 0, off = 0;
	time_t t;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) ||
	    *s++ != '-' || digits(&s, 2, &d))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -1;
	if (*s == 'T' || *s == 't' || *s == ' ') {
		s++;
		if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
			return -1;
		if (*s == ':') {
			s++;
			if (digits(&s, 2, &sec))
				return -1;
			if (*s == '.' || *s == ',') {
				int scale = 100;

				s++;
				if (!isdigit((unsigned char)*s))
					return -1;
				/* Beyond milliseconds is below our resolution: dropped. */
				for (; isdigit((unsigned char)*s); s++) {
					msec += (*s - '0') * scale;
					scale /= 10;
				}
			}
		}
		if (h > 23 || mi > 59 || sec > 59)
			return -1;
		if (*s == 'Z' || *s == 'z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			int sign = *s++ == '-' ? -1 : 1, oh, om;

			if (digits(&s, 2, &oh))
				return -1;
			if (*s == ':')
				s++;
			if (digits(&s, 2, &om) || oh > 23 || om > 59)
				return -1;
			off = sign * (oh * 60 + om);
		}
	}
	if (*s != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* An offset east of UTC means the instant came earlier in UTC. */
	*out = ((int64_t)t - (int64_t)off * 60) * 1000 + msec;
	return 0;
}

int
mom_time_parse(const char *s, int64_t now_ms, int64_t *ms)
{
	uint64_t ago;

	if (s == NULL || *s == '\0')
		return MOM_EINVAL;
	if (time_iso(s, ms) == 0)
		return 0;
	if (mom_duration_parse(s, &ago) != 0)
		return MOM_EINVAL;
	*ms = now_ms - (int64_t)ago;
	return 0;
}

void
mom_time_format(int64_t ms, char *buf, size_t len)
{
	struct tm tm;
	time_t t;
	int64_t sec, rem;

	if (len == 0)
		return;
	/* Floor division, so times before 1970 keep a positive ms field. */
	sec = ms / 1000;
	rem = ms % 1000;
	if (rem < 0) {
		rem += 1000;
		sec--;
	}
	t = (time_t)sec;
	if (gmtime_r(&t, &tm) == NULL) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)rem);
}

/*
 * names.c: queue/topic names and the patterns that select them.
 *
 * Names and patterns are checked segment by segment, so a single pass can
 * tell a wildcard segment ("*", ">") from a wildcard character inside a
 * segment ("a*"), which is refused: the matcher only ever compares whole
 * segments.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "names.h"
#include "wire.h"

static bool
name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/*
 * Walks the segments of s.  With wild set, "*" segments and a final ">"
 * segment are allowed; *haswild reports whether any was seen.
 */
static bool
names_check(const char *s, size_t len, bool wild, bool *haswild)
{
	size_t i, start;

	if (haswild != NULL)
		*haswild = false;
	if (s == NULL || len == 0 || len > MOM_NAME_MAX)
		return false;
	start = 0;
	for (i = 0; i <= len; i++) {
		size_t n;

		if (i < len && s[i] != '.')
			continue;
		n = i - start;
		if (n == 0)
			return false;
		if (n == 1 && (s[start] == '*' || s[start] == '>')) {
			if (!wild)
				return false;
			/* ">" swallows the rest, so nothing may follow it. */
			if (s[start] == '>' && i != len)
				return false;
			if (haswild != NULL)
				*haswild = true;
		} else {
			size_t j;

			for (j = start; j < i; j++)
				if (!name_char((unsigned char)s[j]))
					return false;
		}
		start = i + 1;
	}
	return true;
}

bool
mom_name_valid(const char *s, size_t len)
{
	return names_check(s, len, false, NULL);
}

bool
mom_pattern_valid(const char *s, size_t len)
{
	return names_check(s, len, true, NULL);
}

bool
mom_pattern_literal(const char *s, size_t len)
{
	bool wild;

	if (!names_check(s, len, true, &wild))
		return false;
	return !wild;
}

/* Length of the segment starting at s[off], up to the next dot or the end. */
static size_t
seg_len(const char *s, size_t len, size_t off)
{
	const char *dot;

	dot = memchr(s + off, '.', len - off);
	return dot == NULL ? len - off : (size_t)(dot - (s + off));
}

bool
mom_pattern_match(const char *pat, size_t plen, const char *name, size_t nlen)
{
	size_t pi = 0, ni = 0;

	if (pat == NULL || name == NULL || plen == 0 || nlen == 0)
		return false;
	for (;;) {
		size_t pn, nn;

		pn = seg_len(pat, plen, pi);
		nn = seg_len(name, nlen, ni);
		/* ">" is last and needs at least this one segment: it is here. */
		if (pn == 1 && pat[pi] == '>')
			return true;
		if (!(pn == 1 && pat[pi] == '*') &&
		    (pn != nn || memcmp(pat + pi, name + ni, pn) != 0))
			return false;
		pi += pn;
		ni += nn;
		if (pi == plen || ni == nlen)
			return pi == plen && ni == nlen;
		pi++;
		ni++;
	}
}

bool
mom_name_ok(const char *s)
{
	return s != NULL && mom_name_valid(s, strlen(s));
}

bool
mom_pattern_ok(const char *s)
{
	return s != NULL && mom_pattern_valid(s, strlen(s));
}

bool
mom_match(const char *pat, const char *name)
{
	if (pat == NULL || name == NULL)
		return false;
	return mom_pattern_match(pat, strlen(pat), name, strlen(name));
}

/*
 * Segment by segment: a ">" in perm takes whatever remains of pattern (one
 * segment or more, which is all a rest of pattern can stand for); a "*"
 * in perm takes one segment, literal or "*"; a literal in perm only the
 * same literal.  A ">" in pattern can stand for any number of segments, so
 * only a ">" in perm covers it, and both must run out together otherwise.
 */
bool
mom_pattern_covers(const char *perm, const char *pattern)
{
	size_t plen, qlen, pi = 0, qi = 0;

	if (!mom_pattern_ok(perm) || !mom_pattern_ok(pattern))
		return false;
	plen = strlen(perm);
	qlen = strlen(pattern);
	for (;;) {
		size_t pn, qn;

		pn = seg_len(perm, plen, pi);
		qn = seg_len(pattern, qlen, qi);
		if (pn == 1 && perm[pi] == '>')
			return true;
		if (qn == 1 && pattern[qi] == '>')
			return false;
		if (!(pn == 1 && perm[pi] == '*') &&
		    (pn != qn || memcmp(perm + pi, pattern + qi, pn) != 0))
			return false;
		pi += pn;
		qi += qn;
		if (pi == plen || qi == qlen)
			return pi == plen && qi == qlen;
		pi++;
		qi++;
	}
}

bool
mom_name_private(const char *name, size_t n)
{
	size_t k = sizeof(MOM_REPLY_PREFIX) - 1;

	return name != NULL && n > k && memcmp(name, MOM_REPLY_PREFIX, k) == 0;
}

int
mom_node_id_parse(const char *s, uint64_t *id)
{
	const uint64_t max = UINT64_C(1) << 53;
	uint64_t       v = 0;

	if (*s < '1' || *s > '9')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > max / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -1;
	*id = v;
	return 0;
}

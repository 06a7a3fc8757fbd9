/*
 * size.c: byte sizes (see size.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>

#include "mom.h"
#include "size.h"

int
mom_size_parse(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned    shift;
	} units[] = {
		{ "", 0 }, { "b", 0 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
		{ "t", 40 }, { "tb", 40 }, { "tib", 40 },
	};
	unsigned long long v;
	char              *end;
	size_t             i;

	if (s == NULL || !isdigit((unsigned char)*s))
		return MOM_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return MOM_EINVAL;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) == 0) {
			if (units[i].shift && v > (UINT64_MAX >> units[i].shift))
				return MOM_EINVAL;
			*out = (uint64_t)v << units[i].shift;
			return 0;
		}
	}
	return MOM_EINVAL;
}

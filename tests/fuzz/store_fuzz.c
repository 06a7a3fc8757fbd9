/*
 * store_fuzz.c: libFuzzer target for the store's recovery reader.
 *
 * The input is a segment file image whose name says it starts at index 1.
 * It is read both as an older segment and as the last one (the only one
 * allowed a torn tail).  Sanitizers catch reads out of bounds and leaks;
 * the checks here catch a reader that contradicts itself: the prefix it
 * keeps must read back whole and unchanged, a tail it calls torn must hold
 * nothing valid, and an older segment must never be cut.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mom.h"
#include "storage/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *b, size_t n)
{
	struct store_scan old, last, again;
	uint64_t          i;

	if (store_scan(b, n, 1, false, true, &old) != 0)
		return 0;
	if (store_scan(b, n, 1, true, false, &last) != 0) {
		free(old.off);
		return 0;
	}
	/* An older segment is whole or corrupt, never torn. */
	if (old.status == STORE_SCAN_TORN)
		abort();
	if (old.status == STORE_SCAN_OK && (last.status != STORE_SCAN_OK || old.end != n))
		abort();
	/* Both readings agree on the valid prefix. */
	if (last.n != old.n || last.end > n || old.end > n)
		abort();
	if (last.status == STORE_SCAN_CORRUPT && (old.status != STORE_SCAN_CORRUPT ||
	    last.bad != old.bad))
		abort();
	/* Offsets start at 0 and grow by whole records. */
	for (i = 0; i < old.n; i++)
		if ((i == 0 && old.off[i] != 0) || (i > 0 && old.off[i] <= old.off[i - 1]) ||
		    old.off[i] >= n)
			abort();
	/* What recovery keeps reads back whole, with the same records. */
	if (store_scan(b, last.end, 1, true, false, &again) != 0) {
		free(old.off);
		return 0;
	}
	if (again.status != STORE_SCAN_OK || again.n != last.n)
		abort();
	free(old.off);
	return 0;
}

/*
 * frame_fuzz.c: libFuzzer target for the cluster frame envelope
 * (replica/frame.c), which reads bytes from anyone who can reach the
 * cluster port.
 *
 * The first input byte chooses: even, the rest is a frame as it arrives and
 * is opened; a frame that opens must seal back to the same bytes, and a
 * packed one's parts must stay inside its payload.  Odd, the
 * rest gives the fields and payload of a frame that is sealed and must open
 * to the same fields, and must be refused once any byte of it is changed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"
#include "replica/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const uint8_t key[32] = "frame_fuzz key, 32 bytes long..";
#define CLUSTER	0x6d6f6d2d66757a7aull	/* "mom-fuzz" */
#define SELF	3

/* A packed frame's parts stay inside its payload, and the walk ends. */
static void
walk_parts(const struct frame *f)
{
	struct frame_part pt;
	size_t off = 0;
	int rc;

	if (!(f->flags & FRAME_F_PACKED))
		return;
	while ((rc = frame_part_next(f->payload, f->len, &off, &pt)) == 1)
		if (pt.data < f->payload || pt.data + pt.len > f->payload + f->len ||
		    off > f->len)
			abort();
	if (rc != 0 && rc != -1)
		abort();
}

static void
fuzz_open(const uint8_t *p, size_t n)
{
	struct frame f;
	uint8_t *q;

	if (frame_open(p, n, CLUSTER, SELF, key, sizeof(key), &f) != FRAME_OK)
		return;
	if (f.payload < p || f.payload + f.len > p + n)
		abort();
	walk_parts(&f);
	if (!(q = malloc(frame_size(f.len))))
		return;
	if (frame_seal(q, frame_size(f.len), &f, key, sizeof(key)) != FRAME_OK ||
	    frame_size(f.len) != n || memcmp(p, q, n) != 0)
		abort();
	free(q);
}

static void
fuzz_seal(const uint8_t *p, size_t n)
{
	struct frame f, g;
	uint8_t *q;
	size_t m, i;

	if (n < 24)
		return;
	memset(&f, 0, sizeof(f));
	f.type = p[0] % 4;
	f.kind = p[1];
	f.flags = p[0] & 0x80 ? FRAME_F_PACKED : 0;
	f.group = mom_le_get32(p + 2);
	f.cluster = (p[6] & 1) ? CLUSTER : mom_le_get64(p + 6);
	f.from = p[7];
	f.to = (p[6] & 2) ? SELF : p[8];
	f.seq = mom_le_get64(p + 8);
	f.xfer = mom_le_get32(p + 12);
	f.index = p[16] % 4;
	f.count = p[17] % 4;
	f.total = mom_le_get32(p + 18) % (4 * FRAME_CHUNK);
	f.payload = p + 24;
	f.len = (uint32_t)(n - 24);
	m = frame_size(f.len);
	if (!(q = malloc(m)))
		return;
	if (frame_seal(q, m, &f, key, sizeof(key)) != FRAME_OK)
		abort();
	if (frame_open(q, m, CLUSTER, SELF, key, sizeof(key), &g) == FRAME_OK) {
		if (g.type != f.type || g.kind != f.kind || g.flags != f.flags ||
		    g.group != f.group ||
		    g.from != f.from || g.seq != f.seq || g.xfer != f.xfer ||
		    g.index != f.index || g.count != f.count || g.total != f.total ||
		    g.len != f.len || memcmp(g.payload, f.payload, f.len) != 0)
			abort();
		walk_parts(&g);
		/* Any changed byte must be refused. */
		i = mom_le_get32(p + 2) % m;
		q[i] ^= 0x40;
		if (frame_open(q, m, CLUSTER, SELF, key, sizeof(key), &g) == FRAME_OK)
			abort();
	}
	free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (p[0] & 1)
		fuzz_seal(p + 1, n - 1);
	else
		fuzz_open(p + 1, n - 1);
	return 0;
}

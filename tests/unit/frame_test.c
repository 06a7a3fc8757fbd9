/*
 * frame_test.c: the cluster frame envelope: round trips, every truncation
 * and every flipped bit refused, and each reason for refusing told apart.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "le.h"
#include "replica/frame.h"

static const uint8_t key[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t other[32] = "fedcba9876543210fedcba9876543210";

#define CLUSTER	0x1122334455667788ull

static struct frame
sample(const uint8_t *payload, uint32_t len)
{
	struct frame f = {
		.type = FRAME_DATA, .kind = 1, .group = 0, .cluster = CLUSTER,
		.from = 2, .to = 3, .seq = 77, .xfer = 9, .index = 0, .count = 1,
		.total = len, .payload = payload, .len = len,
	};
	return f;
}

/* A sealed frame in a fresh allocation of exactly its size. */
static uint8_t *
seal(const struct frame *f, const uint8_t *k, size_t *n)
{
	uint8_t *p;

	*n = frame_size(f->len);
	cr_assert_not_null(p = malloc(*n));
	cr_assert_eq(frame_seal(p, *n, f, k, 32), FRAME_OK);
	return p;
}

static int
open3(const uint8_t *p, size_t n, struct frame *f)
{
	return frame_open(p, n, CLUSTER, 3, key, sizeof(key), f);
}

Test(frame, round_trips_every_field_and_the_payload)
{
	uint8_t pl[1000], *p;
	struct frame f = sample(pl, sizeof(pl)), g;
	size_t n, i;

	for (i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 7);
	f.group = 5;
	f.seq = UINT64_MAX;
	f.xfer = 1ull << 40;
	p = seal(&f, key, &n);
	cr_assert_eq(n, FRAME_OVERHEAD + sizeof(pl));
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	cr_assert_eq(g.type, FRAME_DATA);
	cr_assert_eq(g.kind, 1);
	cr_assert_eq(g.group, 5);
	cr_assert_eq(g.cluster, CLUSTER);
	cr_assert_eq(g.from, 2);
	cr_assert_eq(g.to, 3);
	cr_assert_eq(g.seq, UINT64_MAX);
	cr_assert_eq(g.xfer, 1ull << 40);
	cr_assert_eq(g.index, 0);
	cr_assert_eq(g.count, 1);
	cr_assert_eq(g.total, sizeof(pl));
	cr_assert_eq(g.len, sizeof(pl));
	cr_assert(g.payload == p + FRAME_HDR);
	cr_assert_eq(memcmp(g.payload, pl, sizeof(pl)), 0);
	free(p);
}

Test(frame, round_trips_chunks_acks_and_an_empty_message)
{
	static uint8_t pl[FRAME_CHUNK];
	struct frame f, g;
	uint8_t *p;
	size_t n;

	/* The middle chunk of a message of two and a half chunks. */
	f = sample(pl, FRAME_CHUNK);
	f.index = 1;
	f.count = 3;
	f.total = 2 * FRAME_CHUNK + 100;
	p = seal(&f, key, &n);
	cr_assert_eq(n, FRAME_MAX);
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	cr_assert_eq(g.index, 1);
	free(p);
	/* Its last chunk. */
	f.index = 2;
	f.len = 100;
	p = seal(&f, key, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	free(p);
	/* An ack of it. */
	f.type = FRAME_ACK;
	f.len = 0;
	p = seal(&f, key, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	cr_assert_eq(g.type, FRAME_ACK);
	cr_assert_eq(g.len, 0);
	free(p);
	f = sample(NULL, 0);
	p = seal(&f, key, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	cr_assert_eq(g.total, 0);
	free(p);
}

Test(frame, every_truncation_and_extension_is_refused)
{
	uint8_t pl[300], *p, *q;
	struct frame f = sample(pl, sizeof(pl)), g;
	size_t n, i;

	memset(pl, 0xa5, sizeof(pl));
	p = seal(&f, key, &n);
	for (i = 0; i < n; i++) {
		/* A copy of exactly i bytes, so that ASan sees any overread. */
		cr_assert_not_null(q = malloc(i ? i : 1));
		memcpy(q, p, i);
		cr_assert_eq(open3(q, i, &g), FRAME_ESHORT, "%zu of %zu bytes", i, n);
		free(q);
	}
	cr_assert_not_null(q = malloc(n + 1));
	memcpy(q, p, n);
	q[n] = 0;
	cr_assert_eq(open3(q, n + 1, &g), FRAME_ESHORT);
	free(q);
	free(p);
}

Test(frame, a_flipped_bit_anywhere_is_refused)
{
	uint8_t pl[200], *p;
	struct frame f = sample(pl, sizeof(pl)), g;
	size_t n, i;
	int b, rc;

	memset(pl, 0x3c, sizeof(pl));
	p = seal(&f, key, &n);
	for (i = 0; i < n; i++)
		for (b = 0; b < 8; b++) {
			p[i] ^= (uint8_t)(1u << b);
			rc = open3(p, n, &g);
			cr_assert_neq(rc, FRAME_OK, "bit %d of byte %zu", b, i);
			/* Only the length and version are read before the MAC. */
			if (i >= 64 && i < 68)
				cr_assert_eq(rc, FRAME_ESHORT);
			else if (i == 0)
				cr_assert_eq(rc, FRAME_EVERSION);
			else
				cr_assert_eq(rc, FRAME_EMAC, "bit %d of byte %zu: %s", b, i,
				    frame_strerror(rc));
			p[i] ^= (uint8_t)(1u << b);
		}
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	free(p);
}

Test(frame, each_reason_to_refuse_is_told_apart)
{
	uint8_t pl[10] = "0123456789", *p;
	struct frame f = sample(pl, sizeof(pl)), g;
	size_t n;

	/* Another key. */
	p = seal(&f, other, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_EMAC);
	free(p);
	/* Our key, another cluster: the claimed sender is there to count. */
	f.cluster = CLUSTER + 1;
	p = seal(&f, key, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_ECLUSTER);
	cr_assert_eq(g.from, 2);
	free(p);
	/* Our cluster, another receiver. */
	f.cluster = CLUSTER;
	f.to = 4;
	p = seal(&f, key, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_ETO);
	free(p);
	/* Another version, sealed with our key: refused for the version. */
	f.to = 3;
	p = seal(&f, key, &n);
	p[0] = 2;
	cr_assert_eq(open3(p, n, &g), FRAME_EVERSION);
	free(p);
	/* A key under the minimum. */
	p = seal(&f, key, &n);
	cr_assert_eq(frame_open(p, n, CLUSTER, 3, key, 8, &g), FRAME_EKEY);
	cr_assert_eq(frame_seal(p, n, &f, key, 8), FRAME_EKEY);
	free(p);
}

/* Fields that the MAC covers but that contradict the chunking rule. */
Test(frame, inconsistent_fields_under_a_valid_mac_are_refused)
{
	static uint8_t pl[FRAME_CHUNK];
	struct frame f, g;
	uint8_t *p;
	size_t n;
	int i;
	struct {
		uint8_t type;
		uint32_t index, count, len;
		uint64_t total;
	} bad[] = {
		{ FRAME_DATA, 0, 0, 10, 10 },		/* no chunks */
		{ FRAME_DATA, 1, 1, 10, 10 },		/* index past count */
		{ FRAME_DATA, 0, 1, 10, 11 },		/* total is not len */
		{ FRAME_DATA, 0, 2, 10, FRAME_CHUNK + 10 }, /* short first chunk */
		{ FRAME_DATA, 0, 3, FRAME_CHUNK, FRAME_CHUNK + 10 }, /* count */
		{ FRAME_DATA, 1, 2, 11, FRAME_CHUNK + 10 }, /* last chunk length */
		{ FRAME_ACK, 0, 1, 1, 1 },		/* an ack with a payload */
		{ FRAME_ACK, 2, 1, 0, 1 },		/* an ack past count */
		{ 9, 0, 1, 10, 10 },			/* no such type */
	};

	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		f = sample(pl, bad[i].len);
		f.type = bad[i].type;
		f.index = bad[i].index;
		f.count = bad[i].count;
		f.total = bad[i].total;
		p = seal(&f, key, &n);
		cr_assert_eq(open3(p, n, &g), FRAME_EBAD, "case %d: %s", i,
		    frame_strerror(open3(p, n, &g)));
		free(p);
	}
}

Test(frame, seal_refuses_an_oversized_payload_or_too_little_room)
{
	static uint8_t pl[FRAME_CHUNK + 1], out[FRAME_MAX + 1];
	struct frame f = sample(pl, FRAME_CHUNK + 1);

	cr_assert_eq(frame_seal(out, sizeof(out), &f, key, 32), FRAME_EBAD);
	f.len = 10;
	cr_assert_eq(frame_seal(out, frame_size(10) - 1, &f, key, 32), FRAME_EBAD);
}

/* Flags: only FRAME_F_PACKED exists, and only on a one-chunk DATA frame of kind 0. */
Test(frame, a_packed_frame_round_trips_and_bad_flags_are_refused)
{
	static uint8_t pl[64];
	struct frame f, g;
	uint8_t *p;
	size_t n;
	int i;
	struct {
		uint8_t flags, type, kind;
		uint32_t count;
		uint64_t total;
	} bad[] = {
		{ 0x02, FRAME_DATA, 0, 1, 64 },			/* an unknown flag */
		{ 0x80 | FRAME_F_PACKED, FRAME_DATA, 0, 1, 64 },
		{ FRAME_F_PACKED, FRAME_ACK, 0, 1, 64 },	/* only data is packed */
		{ FRAME_F_PACKED, FRAME_DATA, 1, 1, 64 },	/* a kind of its own */
		{ FRAME_F_PACKED, FRAME_DATA, 0, 2, FRAME_CHUNK + 64 }, /* chunked */
	};

	f = sample(pl, sizeof(pl));
	f.kind = 0;
	f.flags = FRAME_F_PACKED;
	p = seal(&f, key, &n);
	cr_assert_eq(open3(p, n, &g), FRAME_OK);
	cr_assert_eq(g.flags, FRAME_F_PACKED);
	cr_assert_eq(p[3], FRAME_F_PACKED);
	free(p);
	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++) {
		f = sample(pl, bad[i].type == FRAME_ACK ? 0 : sizeof(pl));
		f.flags = bad[i].flags;
		f.type = bad[i].type;
		f.kind = bad[i].kind;
		f.count = bad[i].count;
		f.total = bad[i].type == FRAME_ACK ? 1 : bad[i].total;
		if (bad[i].count == 2) {
			static uint8_t chunk[FRAME_CHUNK];

			f.payload = chunk;
			f.len = FRAME_CHUNK;
		}
		p = seal(&f, key, &n);
		cr_assert_eq(open3(p, n, &g), FRAME_EBAD, "case %d: %s", i,
		    frame_strerror(open3(p, n, &g)));
		free(p);
	}
}

Test(frame, parts_of_a_packed_payload_round_trip_in_order)
{
	uint8_t buf[256];
	struct frame_part pt;
	size_t n = 0, off = 0;

	n += frame_part_put(buf + n, 2, 0, "hello", 5);
	n += frame_part_put(buf + n, 3, 7, "", 0);
	n += frame_part_put(buf + n, 4, 0xffffffffu, "world!", 6);
	cr_assert_eq(n, 3 * FRAME_PART_HDR + 11);
	cr_assert_eq(frame_part_next(buf, n, &off, &pt), 1);
	cr_assert(pt.kind == 2 && pt.group == 0 && pt.len == 5);
	cr_assert_eq(memcmp(pt.data, "hello", 5), 0);
	cr_assert_eq(frame_part_next(buf, n, &off, &pt), 1);
	cr_assert(pt.kind == 3 && pt.group == 7 && pt.len == 0);
	cr_assert_eq(frame_part_next(buf, n, &off, &pt), 1);
	cr_assert(pt.kind == 4 && pt.group == 0xffffffffu && pt.len == 6);
	cr_assert_eq(memcmp(pt.data, "world!", 6), 0);
	cr_assert_eq(off, n);
	cr_assert_eq(frame_part_next(buf, n, &off, &pt), 0);
	cr_assert_eq(frame_part_next(buf, 0, &(size_t){ 0 }, &pt), 0);
}

/* A payload cut anywhere but between parts is malformed, never read past. */
Test(frame, a_packed_payload_cut_at_any_byte_is_malformed_within_bounds)
{
	uint8_t full[64], *cut;
	struct frame_part pt;
	size_t n = 0, len, off, ends[3];
	int rc, parts;

	n += frame_part_put(full + n, 1, 0, "abc", 3);
	ends[0] = n;
	n += frame_part_put(full + n, 2, 0, "defgh", 5);
	ends[1] = n;
	n += frame_part_put(full + n, 3, 1, "i", 1);
	ends[2] = n;
	for (len = 0; len < n; len++) {
		/* An allocation of exactly len bytes: ASan sees a read past it. */
		cr_assert_not_null(cut = malloc(len ? len : 1));
		memcpy(cut, full, len);
		off = 0;
		parts = 0;
		while ((rc = frame_part_next(cut, len, &off, &pt)) == 1) {
			cr_assert_leq(pt.data + pt.len, cut + len);
			parts++;
		}
		if (len == 0 || len == ends[0] || len == ends[1])
			cr_assert_eq(rc, 0, "cut at %zu", len);
		else
			cr_assert_eq(rc, -1, "cut at %zu", len);
		cr_assert_eq(parts, (len >= ends[0]) + (len >= ends[1]) + (len >= ends[2]));
		free(cut);
	}
	/* A length that claims more than there is. */
	mom_le_put32(full + 5, 1000);
	off = 0;
	cr_assert_eq(frame_part_next(full, n, &off, &pt), -1);
}

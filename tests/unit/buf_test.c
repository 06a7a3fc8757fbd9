/*
 * buf_test.c: the codec primitives: varints, byte strings, bounds checks,
 * the sticky read error and buffer growth.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "buf.h"
#include "mom.h"

/* Encodes v, checks the length, decodes it back from exactly those bytes. */
static void
round_trip(uint64_t v, size_t want_len)
{
	struct mom_buf b;
	struct mom_rd  r;
	uint64_t       got;

	mom_buf_init(&b);
	mom_buf_put_varint(&b, v);
	cr_assert_eq(b.err, 0);
	cr_assert_eq(b.len, want_len, "%llu encoded in %zu bytes, want %zu",
	    (unsigned long long)v, b.len, want_len);
	cr_assert_eq(mom_varint_len(v), want_len);
	mom_rd_init(&r, b.data, b.len);
	got = mom_rd_varint(&r);
	cr_assert_eq(r.err, 0, "%llu did not decode", (unsigned long long)v);
	cr_assert_eq(got, v, "%llu decoded as %llu", (unsigned long long)v,
	    (unsigned long long)got);
	cr_assert_eq(mom_rd_left(&r), 0);
	mom_buf_fini(&b);
}

Test(varint, every_length_boundary_round_trips)
{
	int i;

	round_trip(0, 1);
	round_trip(1, 1);
	round_trip(127, 1);
	round_trip(128, 2);
	round_trip(16383, 2);
	round_trip(16384, 3);
	/* 2^(7k) - 1 is the last value of k bytes, 2^(7k) the first of k+1. */
	for (i = 1; i <= 9; i++) {
		round_trip((UINT64_C(1) << (7 * i)) - 1, (size_t)i);
		round_trip(UINT64_C(1) << (7 * i), (size_t)i + 1);
	}
	round_trip(UINT64_C(1) << 63, 10);
	round_trip((UINT64_C(1) << 63) - 1, 9);
	round_trip(UINT64_MAX, 10);
	round_trip(UINT64_MAX - 1, 10);
}

Test(varint, single_byte_values_encode_as_themselves)
{
	struct mom_buf b;

	mom_buf_init(&b);
	mom_buf_put_varint(&b, 0);
	mom_buf_put_varint(&b, 127);
	mom_buf_put_varint(&b, 128);
	cr_assert_eq(b.len, 4);
	cr_assert_eq(b.data[0], 0x00);
	cr_assert_eq(b.data[1], 0x7f);
	cr_assert_eq(b.data[2], 0x80);
	cr_assert_eq(b.data[3], 0x01);
	mom_buf_fini(&b);
}

Test(varint, truncated_varint_is_an_error)
{
	const uint8_t two[] = { 0x80 };            /* continuation, then nothing */
	const uint8_t max9[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct mom_rd r;

	mom_rd_init(&r, two, sizeof(two));
	cr_assert_eq(mom_rd_varint(&r), 0);
	cr_assert_eq(r.err, MOM_EPROTO);

	mom_rd_init(&r, max9, sizeof(max9));
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO);

	mom_rd_init(&r, two, 0);
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO, "an empty range holds no varint");
}

Test(varint, ten_byte_varint_past_64_bits_is_rejected)
{
	/* Nine full groups then a tenth byte carrying bit 64 (0x02). */
	uint8_t       p[10];
	struct mom_rd r;

	memset(p, 0xff, 9);
	p[9] = 0x02;
	mom_rd_init(&r, p, sizeof(p));
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO);

	p[9] = 0x7f;
	mom_rd_init(&r, p, sizeof(p));
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO);

	/* 0x01 is the top bit of a u64: that one is UINT64_MAX. */
	p[9] = 0x01;
	mom_rd_init(&r, p, sizeof(p));
	cr_assert_eq(mom_rd_varint(&r), UINT64_MAX);
	cr_assert_eq(r.err, 0);
}

Test(varint, eleven_byte_varint_is_rejected)
{
	/* Ten continuation bytes then a terminator: longer than any u64. */
	uint8_t       p[11];
	struct mom_rd r;

	memset(p, 0x80, 10);
	p[10] = 0x00;
	mom_rd_init(&r, p, sizeof(p));
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO);

	/* Same with the tenth byte a bare continuation (0x81 carries bit 63). */
	memset(p, 0x80, 10);
	p[9] = 0x81;
	p[10] = 0x00;
	mom_rd_init(&r, p, sizeof(p));
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO);
}

Test(varint, padded_varint_decodes_because_the_batch_count_uses_it)
{
	/* The publish count is a fixed 5-byte varint; 3 padded to 5 bytes. */
	const uint8_t p[] = { 0x83, 0x80, 0x80, 0x80, 0x00, 0x2a };
	struct mom_rd r;

	mom_rd_init(&r, p, sizeof(p));
	cr_assert_eq(mom_rd_varint(&r), 3);
	cr_assert_eq(mom_rd_u8(&r), 0x2a);
	cr_assert_eq(r.err, 0);
}

Test(varint, varint_max_rejects_values_above_the_limit)
{
	struct mom_buf b;
	struct mom_rd  r;

	mom_buf_init(&b);
	mom_buf_put_varint(&b, 100);
	mom_buf_put_varint(&b, 101);
	mom_rd_init(&r, b.data, b.len);
	cr_assert_eq(mom_rd_varint_max(&r, 100), 100);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(mom_rd_varint_max(&r, 100), 0);
	cr_assert_eq(r.err, MOM_EPROTO);
	mom_buf_fini(&b);
}

Test(bytes, byte_string_round_trips_and_points_into_the_range)
{
	struct mom_buf b;
	struct mom_rd  r;
	const uint8_t *p;
	size_t         n;

	mom_buf_init(&b);
	mom_buf_put_bytes(&b, "hello", 5);
	mom_buf_put_str(&b, "");
	mom_buf_put_str(&b, NULL);
	mom_buf_put_str(&b, "x");
	mom_rd_init(&r, b.data, b.len);
	p = mom_rd_bytes(&r, &n);
	cr_assert_eq(n, 5);
	cr_assert(p == b.data + 1, "the slice is borrowed from the range");
	cr_assert_eq(memcmp(p, "hello", 5), 0);
	p = mom_rd_bytes(&r, &n);
	cr_assert_not_null(p);
	cr_assert_eq(n, 0);
	(void)mom_rd_bytes(&r, &n);
	cr_assert_eq(n, 0, "NULL string encodes as empty");
	p = mom_rd_bytes(&r, &n);
	cr_assert_eq(n, 1);
	cr_assert_eq(p[0], 'x');
	cr_assert_eq(r.err, 0);
	cr_assert_eq(mom_rd_left(&r), 0);
	mom_buf_fini(&b);
}

Test(bytes, length_past_the_end_sets_err_and_returns_null)
{
	const uint8_t p[] = { 0x05, 'a', 'b', 'c', 'd' }; /* says 5, has 4 */
	struct mom_rd r;
	size_t        n = 99;

	mom_rd_init(&r, p, sizeof(p));
	cr_assert_null(mom_rd_bytes(&r, &n));
	cr_assert_eq(n, 0);
	cr_assert_eq(r.err, MOM_EPROTO);
	cr_assert_eq(mom_rd_left(&r), 0);
}

Test(bytes, huge_length_does_not_wrap_the_bounds_check)
{
	/* Length UINT64_MAX: off + len would wrap if added naively. */
	uint8_t       p[12];
	struct mom_rd r;
	size_t        n;

	memset(p, 0xff, 9);
	p[9] = 0x01;
	p[10] = 'a';
	p[11] = 'b';
	mom_rd_init(&r, p, sizeof(p));
	cr_assert_null(mom_rd_bytes(&r, &n));
	cr_assert_eq(r.err, MOM_EPROTO);
}

Test(bytes, raw_reads_are_bounds_checked)
{
	const uint8_t p[] = { 1, 2, 3 };
	struct mom_rd r;

	mom_rd_init(&r, p, sizeof(p));
	cr_assert(mom_rd_raw(&r, 2) == p);
	cr_assert_eq(mom_rd_left(&r), 1);
	cr_assert_null(mom_rd_raw(&r, 2));
	cr_assert_eq(r.err, MOM_EPROTO);
	cr_assert_null(mom_rd_raw(&r, SIZE_MAX));
}

Test(rd, u8_past_the_end_is_an_error)
{
	const uint8_t p[] = { 7 };
	struct mom_rd r;

	mom_rd_init(&r, p, sizeof(p));
	cr_assert_eq(mom_rd_u8(&r), 7);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(mom_rd_u8(&r), 0);
	cr_assert_eq(r.err, MOM_EPROTO);
}

Test(rd, error_is_sticky_and_later_reads_return_nothing)
{
	/* A bad read, then bytes that would be fine on their own. */
	const uint8_t p[] = { 0x80, 0x05, 0x01, 'a', 0x2a };
	struct mom_rd r;
	size_t        n;

	mom_rd_init(&r, p, 1);
	(void)mom_rd_varint(&r);
	cr_assert_eq(r.err, MOM_EPROTO);
	/* Widen the range: the reader must still refuse. */
	r.len = sizeof(p);
	cr_assert_eq(mom_rd_varint(&r), 0);
	cr_assert_eq(mom_rd_u8(&r), 0);
	cr_assert_null(mom_rd_bytes(&r, &n));
	cr_assert_null(mom_rd_raw(&r, 1));
	cr_assert_eq(mom_rd_varint_max(&r, 10), 0);
	cr_assert_eq(mom_rd_left(&r), 0);
	cr_assert_eq(r.err, MOM_EPROTO);
}

Test(buf, grows_across_many_appends_and_keeps_every_byte)
{
	struct mom_buf b;
	size_t         i, prev_cap = 0, grows = 0;

	mom_buf_init(&b);
	cr_assert_null(b.data);
	for (i = 0; i < 100000; i++) {
		mom_buf_put_u8(&b, (uint8_t)(i * 31));
		if (b.cap != prev_cap) {
			grows++;
			prev_cap = b.cap;
		}
	}
	cr_assert_eq(b.err, 0);
	cr_assert_eq(b.len, 100000);
	cr_assert_geq(b.cap, b.len);
	cr_assert_leq(grows, 20, "capacity grows geometrically (%zu reallocs)", grows);
	for (i = 0; i < b.len; i++)
		cr_assert_eq(b.data[i], (uint8_t)(i * 31), "byte %zu", i);
	mom_buf_fini(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, 0);
}

Test(buf, one_large_put_reserves_enough)
{
	struct mom_buf b;
	uint8_t       *big = malloc(70000);

	cr_assert_not_null(big);
	memset(big, 0xab, 70000);
	mom_buf_init(&b);
	mom_buf_put_u8(&b, 1);
	mom_buf_put(&b, big, 70000);
	cr_assert_eq(b.err, 0);
	cr_assert_eq(b.len, 70001);
	cr_assert_eq(memcmp(b.data + 1, big, 70000), 0);
	mom_buf_fini(&b);
	free(big);
}

Test(buf, impossible_reservation_sets_enomem_and_appends_become_noops)
{
	struct mom_buf b;

	mom_buf_init(&b);
	mom_buf_put_u8(&b, 1);
	cr_assert_eq(mom_buf_reserve(&b, SIZE_MAX - 8), MOM_ENOMEM);
	cr_assert_eq(b.err, MOM_ENOMEM);
	mom_buf_put_u8(&b, 2);
	mom_buf_put_varint(&b, 300);
	mom_buf_put_str(&b, "abc");
	cr_assert_eq(b.len, 1, "appends after a failed growth do nothing");
	cr_assert_eq(mom_buf_reserve(&b, 1), MOM_ENOMEM);
	/* reset clears the error and keeps the memory. */
	mom_buf_reset(&b);
	cr_assert_eq(b.err, 0);
	cr_assert_eq(b.len, 0);
	mom_buf_put_u8(&b, 3);
	cr_assert_eq(b.len, 1);
	cr_assert_eq(b.data[0], 3);
	mom_buf_fini(&b);
}

Test(buf, steal_hands_over_the_data_and_leaves_an_empty_buffer)
{
	struct mom_buf b;
	uint8_t       *p;
	size_t         n;

	mom_buf_init(&b);
	mom_buf_put(&b, "abc", 3);
	p = mom_buf_steal(&b, &n);
	cr_assert_eq(n, 3);
	cr_assert_eq(memcmp(p, "abc", 3), 0);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	free(p);
	mom_buf_fini(&b);
}

Test(buf, reset_keeps_capacity)
{
	struct mom_buf b;
	size_t         cap;

	mom_buf_init(&b);
	mom_buf_put(&b, "0123456789", 10);
	cap = b.cap;
	mom_buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(b.cap, cap);
	cr_assert_not_null(b.data);
	mom_buf_fini(&b);
}

/*
 * names_test.c: which names and patterns mom accepts, and what matches.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "names.h"

static char *
repeat(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

Test(names, simple_and_dotted_names_are_valid)
{
	cr_assert(mom_name_ok("orders"));
	cr_assert(mom_name_ok("orders.eu.new"));
	cr_assert(mom_name_ok("a"));
	cr_assert(mom_name_ok("A-Z_0.9-x"));
	cr_assert(mom_name_ok("-"));
	cr_assert(mom_name_ok("_._"));
}

Test(names, empty_name_is_invalid)
{
	cr_assert_not(mom_name_ok(""));
	cr_assert_not(mom_name_valid("x", 0));
	cr_assert_not(mom_name_ok(NULL));
}

Test(names, name_of_200_bytes_is_valid_201_is_not)
{
	char buf[256];

	cr_assert(mom_name_ok(repeat(buf, 'a', 200)));
	cr_assert_not(mom_name_ok(repeat(buf, 'a', 201)));
	repeat(buf, 'a', 200);
	buf[100] = '.';
	cr_assert(mom_name_ok(buf));
}

Test(names, empty_segments_are_invalid)
{
	cr_assert_not(mom_name_ok("."));
	cr_assert_not(mom_name_ok(".orders"));
	cr_assert_not(mom_name_ok("orders."));
	cr_assert_not(mom_name_ok("orders..eu"));
}

Test(names, characters_outside_the_set_are_invalid)
{
	const char *bad[] = { "a b", "a/b", "a:b", "a\tb", "é", "a+b", "a@b",
	    "a,b", "a\"b", "a\\b", "a\nb" };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(mom_name_ok(bad[i]), "%s accepted", bad[i]);
}

Test(names, wildcards_are_not_valid_in_names)
{
	cr_assert_not(mom_name_ok("*"));
	cr_assert_not(mom_name_ok(">"));
	cr_assert_not(mom_name_ok("orders.*"));
	cr_assert_not(mom_name_ok("orders.>"));
}

Test(names, length_form_reads_only_the_given_bytes)
{
	cr_assert(mom_name_valid("orders.eu GARBAGE", 9));
	cr_assert(mom_name_valid("orders..", 6));
	cr_assert_not(mom_name_valid("orders.", 7));
	/* A NUL inside the range is a bad character, not an end. */
	cr_assert_not(mom_name_valid("ab\0cd", 5));
}

Test(patterns, literal_and_wildcard_patterns_are_valid)
{
	cr_assert(mom_pattern_ok("orders"));
	cr_assert(mom_pattern_ok("orders.*"));
	cr_assert(mom_pattern_ok("*.eu"));
	cr_assert(mom_pattern_ok("*"));
	cr_assert(mom_pattern_ok(">"));
	cr_assert(mom_pattern_ok("orders.>"));
	cr_assert(mom_pattern_ok("*.*.>"));
}

Test(patterns, gt_is_only_valid_as_last_segment)
{
	cr_assert_not(mom_pattern_ok(">.orders"));
	cr_assert_not(mom_pattern_ok("orders.>.eu"));
	cr_assert_not(mom_pattern_ok(">.>"));
}

Test(patterns, wildcard_must_be_a_whole_segment)
{
	cr_assert_not(mom_pattern_ok("a*"));
	cr_assert_not(mom_pattern_ok("orders.eu*"));
	cr_assert_not(mom_pattern_ok("*a"));
	cr_assert_not(mom_pattern_ok("a>"));
	cr_assert_not(mom_pattern_ok("orders.>x"));
	cr_assert_not(mom_pattern_ok("**"));
}

Test(patterns, empty_segments_and_bad_chars_are_invalid)
{
	cr_assert_not(mom_pattern_ok(""));
	cr_assert_not(mom_pattern_ok("orders."));
	cr_assert_not(mom_pattern_ok(".*"));
	cr_assert_not(mom_pattern_ok("*..>"));
	cr_assert_not(mom_pattern_ok("a b.*"));
	cr_assert_not(mom_pattern_ok(NULL));
}

Test(patterns, pattern_of_200_bytes_is_valid_201_is_not)
{
	char buf[256];

	repeat(buf, 'a', 200);
	buf[198] = '.';
	buf[199] = '>';
	cr_assert(mom_pattern_ok(buf));
	repeat(buf, 'a', 201);
	buf[199] = '.';
	buf[200] = '>';
	cr_assert_not(mom_pattern_ok(buf));
}

Test(patterns, literal_means_no_wildcard_segment)
{
	cr_assert(mom_pattern_literal("orders.eu", 9));
	cr_assert_not(mom_pattern_literal("orders.*", 8));
	cr_assert_not(mom_pattern_literal("orders.>", 8));
	cr_assert_not(mom_pattern_literal(">", 1));
	cr_assert_not(mom_pattern_literal("a*", 2)); /* not even valid */
	cr_assert_not(mom_pattern_literal("", 0));
}

Test(match, star_matches_exactly_one_segment)
{
	cr_assert(mom_match("orders.*", "orders.eu"));
	cr_assert(mom_match("orders.*", "orders.us"));
	cr_assert_not(mom_match("orders.*", "orders"));
	cr_assert_not(mom_match("orders.*", "orders.eu.new"));
	cr_assert_not(mom_match("orders.*", "invoices.eu"));
	cr_assert(mom_match("*.eu", "orders.eu"));
	cr_assert_not(mom_match("*.eu", "orders.us"));
	cr_assert(mom_match("orders.*.new", "orders.eu.new"));
	cr_assert_not(mom_match("orders.*.new", "orders.eu.old"));
	cr_assert_not(mom_match("orders.*.new", "orders.new"));
	cr_assert(mom_match("*", "orders"));
	cr_assert_not(mom_match("*", "orders.eu"));
	cr_assert(mom_match("*.*", "a.b"));
	cr_assert_not(mom_match("*.*", "a"));
}

Test(match, gt_matches_one_or_more_trailing_segments)
{
	cr_assert(mom_match("orders.>", "orders.eu"));
	cr_assert(mom_match("orders.>", "orders.eu.new"));
	cr_assert(mom_match("orders.>", "orders.a.b.c.d"));
	cr_assert_not(mom_match("orders.>", "orders"));
	cr_assert_not(mom_match("orders.>", "ordersx.eu"));
	cr_assert_not(mom_match("orders.>", "invoices.eu"));
	cr_assert(mom_match("*.>", "a.b"));
	cr_assert_not(mom_match("*.>", "a"));
}

Test(match, lone_gt_matches_everything)
{
	cr_assert(mom_match(">", "a"));
	cr_assert(mom_match(">", "orders"));
	cr_assert(mom_match(">", "orders.eu.new"));
}

Test(match, literal_pattern_matches_only_the_equal_name)
{
	cr_assert(mom_match("orders.eu", "orders.eu"));
	cr_assert_not(mom_match("orders.eu", "orders.eux"));
	cr_assert_not(mom_match("orders.eu", "orders.e"));
	cr_assert_not(mom_match("orders.eu", "orders"));
	cr_assert_not(mom_match("orders", "orders.eu"));
	cr_assert_not(mom_match("orders.eu", "Orders.eu"));
}

Test(match, segment_prefixes_do_not_match)
{
	cr_assert_not(mom_match("ord.*", "orders.eu"));
	cr_assert_not(mom_match("orders.e", "orders.eu"));
	cr_assert_not(mom_match("orders.eu.*", "orders.eux.a"));
}

Test(match, length_form_ignores_bytes_past_the_lengths)
{
	cr_assert(mom_pattern_match("orders.*XX", 8, "orders.euYY", 9));
	cr_assert_not(mom_pattern_match("orders.*", 8, "orders.eu.new", 13));
	cr_assert(mom_pattern_match("orders.*", 8, "orders.eu.new", 9));
	cr_assert(mom_pattern_match("a.>", 3, "a.b.c", 3));
	cr_assert_not(mom_pattern_match("a.>", 3, "a.b.c", 1));
}

Test(covers, gt_covers_star_and_deeper_gt)
{
	cr_assert(mom_pattern_covers("orders.>", "orders.*"));
	cr_assert(mom_pattern_covers("orders.>", "orders.eu.>"));
	cr_assert(mom_pattern_covers("orders.>", "orders.>"));
	cr_assert(mom_pattern_covers("orders.>", "orders.*.new"));
	cr_assert(mom_pattern_covers("orders.>", "orders.eu"));
	cr_assert(mom_pattern_covers(">", ">"));
	cr_assert(mom_pattern_covers(">", "*.*.>"));
	cr_assert(mom_pattern_covers(">", "a"));
}

Test(covers, gt_needs_at_least_one_more_segment)
{
	cr_assert_not(mom_pattern_covers("orders.>", "orders"));
	cr_assert_not(mom_pattern_covers("orders.>", ">"));
	cr_assert_not(mom_pattern_covers("orders.>", "*.eu"));
	cr_assert_not(mom_pattern_covers("orders.>", "invoices.>"));
	cr_assert_not(mom_pattern_covers("a.b.>", "a.>"));
}

Test(covers, star_covers_one_segment_only)
{
	cr_assert(mom_pattern_covers("orders.*", "orders.eu"));
	cr_assert(mom_pattern_covers("orders.*", "orders.*"));
	cr_assert(mom_pattern_covers("*.*", "a.*"));
	cr_assert(mom_pattern_covers("*", "*"));
	cr_assert_not(mom_pattern_covers("orders.*", "orders.>"));
	cr_assert_not(mom_pattern_covers("orders.*", "orders.eu.new"));
	cr_assert_not(mom_pattern_covers("orders.*", "orders"));
	cr_assert_not(mom_pattern_covers("*", "a.b"));
	cr_assert_not(mom_pattern_covers("*", ">"));
	cr_assert_not(mom_pattern_covers("*.eu", "*.*"));
}

Test(covers, literal_covers_only_itself)
{
	cr_assert(mom_pattern_covers("orders.eu", "orders.eu"));
	cr_assert_not(mom_pattern_covers("orders.eu", "orders.*"));
	cr_assert_not(mom_pattern_covers("orders.eu", "orders.>"));
	cr_assert_not(mom_pattern_covers("orders.eu", "orders.eux"));
	cr_assert_not(mom_pattern_covers("orders", "orders.eu"));
	cr_assert_not(mom_pattern_covers("orders.eu", "orders"));
}

Test(covers, invalid_patterns_cover_nothing)
{
	cr_assert_not(mom_pattern_covers("a*", "a*"));
	cr_assert_not(mom_pattern_covers(">", ""));
	cr_assert_not(mom_pattern_covers(">", "a..b"));
	cr_assert_not(mom_pattern_covers(NULL, "a"));
	cr_assert_not(mom_pattern_covers("a", NULL));
	cr_assert_not(mom_pattern_covers(">.a", "b"));
}

/*
 * Covering is exactly "matches a superset": checked against every name of
 * one to four segments over {a,b,c,d}, which is deep and wide enough for
 * a counterexample to any wrong answer about these patterns.
 */
Test(covers, agrees_with_match_on_every_small_name)
{
	const char *pats[] = { "a", "b", "*", ">", "a.b", "a.*", "a.>", "*.b", "*.*", "*.>",
	    "a.b.c", "a.*.c", "a.b.>", "*.*.*", "a.b.*", "b.>", "*.>", "*.*.>" };
	static char names[4 + 16 + 64 + 256][8];
	const char  al[] = "abcd";
	size_t      np = sizeof(pats) / sizeof(pats[0]), nn = 0, i, j, k, d;

	for (d = 1; d <= 4; d++) {
		size_t count = 1, x;

		for (k = 0; k < d; k++)
			count *= 4;
		for (x = 0; x < count; x++) {
			char  *p = names[nn++];
			size_t v = x;

			for (k = 0; k < d; k++, v /= 4) {
				*p++ = al[v % 4];
				*p++ = k + 1 < d ? '.' : '\0';
			}
		}
	}
	for (i = 0; i < np; i++)
		for (j = 0; j < np; j++) {
			bool superset = true;

			for (k = 0; k < nn; k++)
				if (mom_match(pats[j], names[k]) && !mom_match(pats[i], names[k]))
					superset = false;
			cr_assert_eq(mom_pattern_covers(pats[i], pats[j]), superset,
			    "covers(%s, %s) is %d", pats[i], pats[j], !superset);
		}
}

Test(names, node_ids_are_positive_decimal_integers_json_carries_exactly)
{
	static const char *const bad[] = {
		"", "0", "00", "01", "-1", "+1", "1.5", "1e3", " 1", "1 ", "x", "0x10",
		"9007199254740993", "18446744073709551616", "99999999999999999999999",
	};
	uint64_t id = 7;
	size_t   i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(mom_node_id_parse(bad[i], &id), -1, "'%s' accepted", bad[i]);
	cr_assert_eq(id, 7, "a refusal leaves *id alone");
	cr_assert_eq(mom_node_id_parse("1", &id), 0);
	cr_assert_eq(id, 1);
	cr_assert_eq(mom_node_id_parse("9007199254740992", &id), 0);
	cr_assert_eq(id, UINT64_C(9007199254740992));
}

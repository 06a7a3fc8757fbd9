/*
 * duration_test.c: durations and times as users write them.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "duration.h"
#include "mom.h"

#define SEC  1000ULL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define CAP  (100 * 365 * DAY)

static uint64_t
dur(const char *s)
{
	uint64_t ms = 12345;
	int rc = mom_duration_parse(s, &ms);

	cr_assert_eq(rc, 0, "\"%s\" refused", s);
	return ms;
}

static void
dur_bad(const char *s)
{
	uint64_t ms = 777;

	cr_assert_eq(mom_duration_parse(s, &ms), MOM_EINVAL, "\"%s\" accepted", s);
	cr_assert_eq(ms, 777, "\"%s\" wrote a result on failure", s);
}

Test(duration, each_unit_parses)
{
	cr_assert_eq(dur("500ms"), 500);
	cr_assert_eq(dur("30s"), 30 * SEC);
	cr_assert_eq(dur("10m"), 10 * MIN);
	cr_assert_eq(dur("2h"), 2 * HOUR);
	cr_assert_eq(dur("1d"), DAY);
	cr_assert_eq(dur("0s"), 0);
	cr_assert_eq(dur("0ms"), 0);
}

Test(duration, bare_number_is_seconds)
{
	cr_assert_eq(dur("30"), 30 * SEC);
	cr_assert_eq(dur("0"), 0);
	cr_assert_eq(dur("0.5"), 500);
	cr_assert_eq(dur("1.25"), 1250);
}

Test(duration, fractions_of_units_are_exact)
{
	cr_assert_eq(dur("1.5s"), 1500);
	cr_assert_eq(dur("1.5h"), 90 * MIN);
	cr_assert_eq(dur("0.5d"), 12 * HOUR);
	cr_assert_eq(dur("0.001s"), 1);
	cr_assert_eq(dur("1.500s"), 1500);
	cr_assert_eq(dur("2.0ms"), 2);
}

Test(duration, fractions_below_a_millisecond_are_refused)
{
	dur_bad("1.5ms");
	dur_bad("0.0005s");
	dur_bad("0.1234");
}

Test(duration, sums_add_up)
{
	cr_assert_eq(dur("1h30m"), 90 * MIN);
	cr_assert_eq(dur("1d2h3m4s5ms"), DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5);
	cr_assert_eq(dur("1m30s"), 90 * SEC);
	cr_assert_eq(dur("1s500ms"), 1500);
}

Test(duration, malformed_input_is_refused)
{
	dur_bad("");
	dur_bad("-1s");
	dur_bad("+1s");
	dur_bad("5x");
	dur_bad("s");
	dur_bad("ms");
	dur_bad("1 s");
	dur_bad(" 1s");
	dur_bad("1s ");
	dur_bad("1S");
	dur_bad(".5s");
	dur_bad("5.s");
	dur_bad("1.2.3s");
	dur_bad("1h30");   /* a bare number only stands alone */
	dur_bad("30 ");
	dur_bad("1e3");
	dur_bad("0x10");
	cr_assert_eq(mom_duration_parse(NULL, &(uint64_t){0}), MOM_EINVAL);
}

Test(duration, hundred_years_is_the_cap)
{
	cr_assert_eq(dur("36500d"), CAP);
	dur_bad("36501d");
	dur_bad("36500d1ms");
	dur_bad("99999999999999999999999s");
	dur_bad("18446744073709551616ms");
	dur_bad("18446744073709551615ms");
	dur_bad("9999999999999999999d");
}

Test(duration, format_picks_exact_short_forms)
{
	struct {
		uint64_t    ms;
		const char *s;
	} t[] = {
		{ 0, "0s" }, { 1, "1ms" }, { 250, "250ms" }, { 1000, "1s" },
		{ 1500, "1500ms" }, { 30000, "30s" }, { 60000, "1m" },
		{ 90000, "1m30s" }, { 5400000, "1h30m" }, { 3600000, "1h" },
		{ 86400000, "1d" }, { 172800000, "2d" },
		{ DAY + HOUR + MIN + SEC, "1d1h1m1s" },
		{ DAY + 1, "86400001ms" },
	};
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		mom_duration_format(t[i].ms, buf, sizeof(buf));
		cr_assert_str_eq(buf, t[i].s);
	}
}

Test(duration, format_then_parse_gives_the_same_value)
{
	uint64_t v[] = { 0, 1, 999, 1000, 1001, 59999, 61000, 5400000, 86399999,
	    DAY * 7 + 3, CAP, CAP - 1 };
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		mom_duration_format(v[i], buf, sizeof(buf));
		cr_assert_eq(dur(buf), v[i], "%s", buf);
	}
}

Test(duration, format_truncates_to_the_buffer)
{
	char buf[4];

	mom_duration_format(5400000, buf, sizeof(buf));
	cr_assert_eq(strlen(buf), 3);
	mom_duration_format(123456, buf, sizeof(buf));
	cr_assert_eq(strlen(buf), 3);
}

/* 2026-11-23T10:00:00Z */
#define T0 1795428000000LL

static int64_t
tp(const char *s)
{
	int64_t ms = 0;

	cr_assert_eq(mom_time_parse(s, 0, &ms), 0, "\"%s\" refused", s);
	return ms;
}

static void
tp_bad(const char *s)
{
	int64_t ms = 42;

	cr_assert_eq(mom_time_parse(s, T0, &ms), MOM_EINVAL, "\"%s\" accepted", s);
	cr_assert_eq(ms, 42);
}

Test(time, utc_forms_parse)
{
	cr_assert_eq(tp("2026-11-23T10:00:00Z"), T0);
	cr_assert_eq(tp("2026-11-23T10:00:00z"), T0);
	cr_assert_eq(tp("2026-11-23T10:00:00"), T0);
	cr_assert_eq(tp("2026-11-23 10:00:00"), T0);
	cr_assert_eq(tp("2026-11-23T10:00Z"), T0);
	cr_assert_eq(tp("1970-01-01T00:00:00Z"), 0);
}

Test(time, date_alone_is_midnight_utc)
{
	cr_assert_eq(tp("2026-11-23"), T0 - 10 * 3600000LL);
	cr_assert_eq(tp("1970-01-02"), 86400000LL);
}

Test(time, fractional_seconds_give_milliseconds)
{
	cr_assert_eq(tp("2026-11-23T10:00:00.5Z"), T0 + 500);
	cr_assert_eq(tp("2026-11-23T10:00:00.123Z"), T0 + 123);
	cr_assert_eq(tp("2026-11-23T10:00:00.123999Z"), T0 + 123);
	cr_assert_eq(tp("2026-11-23T10:00:00.05"), T0 + 50);
}

Test(time, offsets_convert_to_utc)
{
	cr_assert_eq(tp("2026-11-23T10:00:00.5+01:00"), T0 - 3600000 + 500);
	cr_assert_eq(tp("2026-11-23T10:00:00-02:30"), T0 + 150 * 60000LL);
	cr_assert_eq(tp("2026-11-23T10:00:00+0100"), T0 - 3600000);
	cr_assert_eq(tp("2026-11-23T10:00:00+00:00"), T0);
}

Test(time, leap_days_are_checked)
{
	cr_assert_eq(tp("2024-02-29"), tp("2024-03-01") - 86400000LL);
	tp_bad("2026-02-29");
	tp_bad("1900-02-29");
	cr_assert_eq(tp("2000-02-29"), 951782400000LL);
}

Test(time, duration_means_that_long_ago)
{
	int64_t ms;

	cr_assert_eq(mom_time_parse("10m", T0, &ms), 0);
	cr_assert_eq(ms, T0 - 600000);
	cr_assert_eq(mom_time_parse("1h30m", T0, &ms), 0);
	cr_assert_eq(ms, T0 - 5400000);
	cr_assert_eq(mom_time_parse("0s", T0, &ms), 0);
	cr_assert_eq(ms, T0);
}

Test(time, malformed_times_are_refused)
{
	tp_bad("");
	tp_bad("2026-13-01");
	tp_bad("2026-00-01");
	tp_bad("2026-11-31");
	tp_bad("2026-11-00");
	tp_bad("2026-11-23T24:00:00Z");
	tp_bad("2026-11-23T10:60:00Z");
	tp_bad("2026-11-23T10:00:60Z");
	tp_bad("2026-11-23T10");
	tp_bad("2026-11-23T10:00:00.Z");
	tp_bad("2026-11-23T10:00:00+1");
	tp_bad("2026-11-23T10:00:00+24:00");
	tp_bad("2026-11-23T10:00:00Zjunk");
	tp_bad("26-11-23");
	tp_bad("2026/11/23");
	tp_bad("yesterday");
	tp_bad("-10m");
}

Test(time, format_is_iso_with_milliseconds)
{
	char buf[32];

	mom_time_format(T0 + 123, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2026-11-23T10:00:00.123Z");
	cr_assert_eq(strlen(buf), 24);
	mom_time_format(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01T00:00:00.000Z");
	mom_time_format(-1, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
}

Test(time, format_then_parse_gives_the_same_instant)
{
	int64_t v[] = { 0, 1, T0, T0 + 999, 951782400123LL, 4102444799999LL };
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		mom_time_format(v[i], buf, sizeof(buf));
		cr_assert_eq(tp(buf), v[i], "%s", buf);
	}
}

/*
 * progress_test.c: the progress line of mom-pub -l and mom-sub -C
 * (src/libmom/progress.c).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "progress.h"

static char line[256];

Test(progress, a_known_total_gives_share_rate_and_eta)
{
	mom_progress_format(line, sizeof(line), "messages", 250, 1000, 0, 0, 5000);
	cr_assert_str_eq(line, "250/1000 messages (25%), 50/s, ETA 15s");
}

Test(progress, bytes_give_the_share_when_the_count_is_unknown)
{
	mom_progress_format(line, sizeof(line), "messages confirmed", 300, 0, 500, 1000, 2000);
	cr_assert_str_eq(line, "300 messages confirmed (50%), 150/s, ETA 2s");
}

Test(progress, no_total_no_share_and_done_no_eta)
{
	mom_progress_format(line, sizeof(line), "messages", 42, 0, 0, 0, 1000);
	cr_assert_str_eq(line, "42 messages, 42/s");
	mom_progress_format(line, sizeof(line), "messages", 10, 10, 0, 0, 0);
	cr_assert_str_eq(line, "10/10 messages (100%), 0/s");
}

Test(progress, a_short_buffer_is_cut_not_overrun)
{
	char small[8];

	memset(small, 'x', sizeof(small));
	mom_progress_format(small, sizeof(small), "messages", 123456, 1000000, 0, 0, 1000);
	cr_assert_eq(strlen(small), 7);
}

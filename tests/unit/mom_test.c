/*
 * mom_test.c: the small helpers every part shares (mom.h, le.h):
 * saturating time arithmetic, error formatting, writing it all, and
 * little-endian fields.
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <time.h>

#include <criterion/criterion.h>

#include "le.h"
#include "mom.h"

Test(mom, time_add_saturates_instead_of_overflowing)
{
	cr_assert_eq(mom_time_add(1000, 500), 1500);
	cr_assert_eq(mom_time_add(-1000, 500), -500);
	cr_assert_eq(mom_time_add(INT64_MAX - 10, 10), INT64_MAX);
	cr_assert_eq(mom_time_add(INT64_MAX - 10, 11), INT64_MAX);
	cr_assert_eq(mom_time_add(1, UINT64_MAX), INT64_MAX);
	cr_assert_eq(mom_time_add(0, (uint64_t)INT64_MAX + 1), INT64_MAX);
}

Test(mom, errf_formats_and_tolerates_no_buffer)
{
	char err[8];

	mom_errf(err, sizeof(err), "%s %d", "abc", 12345);
	cr_assert_str_eq(err, "abc 123", "cut to the buffer, NUL-terminated");
	mom_errf(NULL, 0, "%s", "nothing happens");
	err[0] = 'x';
	mom_errf(err, 0, "%s", "nothing either");
	cr_assert_eq(err[0], 'x');
}

Test(mom, write_all_writes_everything_through_a_small_pipe)
{
	static uint8_t big[1 << 20];
	static uint8_t back[1 << 20];
	int            fds[2];
	size_t         got = 0;
	ssize_t        n;
	pid_t          pid;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	cr_assert_eq(pipe(fds), 0);
	/* 1 MiB through a 64 KiB pipe: short writes until the reader drains it. */
	if ((pid = fork()) == 0) {
		close(fds[0]);
		_exit(mom_write_all(fds[1], big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(fds[1]);
	while ((n = read(fds[0], back + got, sizeof(back) - got)) > 0)
		got += (size_t)n;
	close(fds[0]);
	cr_assert_eq(got, sizeof(big));
	cr_assert_eq(memcmp(big, back, sizeof(big)), 0);
}

Test(mom, write_all_reports_a_closed_reader)
{
	int fds[2];

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe(fds), 0);
	close(fds[0]);
	cr_assert_eq(mom_write_all(fds[1], "x", 1), -1);
	cr_assert_eq(errno, EPIPE);
	close(fds[1]);
}

Test(mom, little_endian_fields_round_trip)
{
	uint8_t b[8];

	mom_le_put32(b, 0x11223344u);
	cr_assert_eq(b[0], 0x44);
	cr_assert_eq(b[3], 0x11);
	cr_assert_eq(mom_le_get32(b), 0x11223344u);
	mom_le_put64(b, 0x0102030405060708ull);
	cr_assert_eq(b[0], 0x08);
	cr_assert_eq(b[7], 0x01);
	cr_assert_eq(mom_le_get64(b), 0x0102030405060708ull);
	mom_le_put(b, 0xabcdef, 3);
	cr_assert_eq(mom_le_get(b, 3), 0xabcdef);
	cr_assert_eq(b[3], 0x05, "bytes beyond n are left alone");
}

Test(mom, stdout_close_reports_what_stdio_kept_in_its_buffer)
{
	int fd = open("/dev/full", O_WRONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	/* Buffered: printf succeeds, only the flush at exit sees ENOSPC. */
	cr_assert_gt(printf("a line for a full disk\n"), 0);
	cr_assert_eq(mom_stdout_close(), ENOSPC);
}

/* Output larger than stdio's buffer fails mid-way; captured, the errno is still the disk's. */
Test(mom, stdout_capture_keeps_the_errno_of_a_write_that_failed_mid_output)
{
	int    fd = open("/dev/full", O_WRONLY), i;
	char   line[128];

	cr_assert(fd >= 0);
	cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	cr_assert_eq(mom_stdout_capture(), 0);
	memset(line, 'x', sizeof(line) - 2);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	for (i = 0; i < 1000; i++)
		cr_assert_gt(fputs(line, stdout), -1);
	cr_assert_eq(mom_stdout_close(), ENOSPC);
}

Test(mom, stdout_capture_writes_everything_at_close)
{
	int  p[2];
	char buf[64] = "";

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	close(p[1]);
	cr_assert_eq(mom_stdout_capture(), 0);
	printf("captured %d\n", 42);
	cr_assert_eq(mom_stdout_close(), 0);
	cr_assert_eq(read(p[0], buf, sizeof(buf) - 1), 12);
	cr_assert_str_eq(buf, "captured 42\n");
	close(p[0]);
}

Test(mom, stdout_close_accepts_a_closed_stdout_nothing_was_written_to)
{
	close(STDOUT_FILENO);
	cr_assert_eq(mom_stdout_close(), 0);
}

Test(mom, stdout_finish_keeps_an_earlier_status_and_lets_epipe_pass_when_asked)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	close(p[0]);
	cr_assert_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	close(p[1]);
	signal(SIGPIPE, SIG_IGN);
	cr_assert_gt(printf("nobody reads this\n"), 0);
	cr_assert_eq(mom_stdout_finish("mom-test", 0, 1), 0);
}

Test(mom, stdout_finish_turns_a_write_error_into_74)
{
	int fd = open("/dev/full", O_WRONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	cr_assert_gt(printf("x\n"), 0);
	fd = open("/dev/null", O_WRONLY); /* its one line is not for the test's log */
	cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	cr_assert_eq(mom_stdout_finish("mom-test", 0, 0), MOM_EXIT_IOERR);
}

Test(mom, stdout_finish_keeps_an_earlier_failure)
{
	int fd = open("/dev/full", O_WRONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);
	cr_assert_gt(printf("x\n"), 0);
	cr_assert_eq(mom_stdout_finish("mom-test", MOM_EXIT_NOINPUT, 0), MOM_EXIT_NOINPUT);
}

/* A deadline ms from now on a clock, its nanoseconds kept under a second. */
Test(mom, a_timespec_ms_from_now_is_normalised)
{
	struct timespec now, ts;
	int64_t         d;

	for (int64_t ms = 0; ms < 3000; ms += 137) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		mom_timespec_in(&ts, CLOCK_MONOTONIC, ms);
		cr_assert(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
		d = (int64_t)(ts.tv_sec - now.tv_sec) * 1000 + (ts.tv_nsec - now.tv_nsec) / 1000000;
		cr_assert(d >= ms && d <= ms + 1000, "%lld ms for %lld", (long long)d, (long long)ms);
	}
}

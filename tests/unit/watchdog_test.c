/*
 * watchdog_test.c: the watchdog reports a turn that lasts, once, with the
 * watched thread's stack, and its end; never a thread that waits.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "mom.h"
#include "watchdog.h"

static _Atomic int     began, ended;
static _Atomic int64_t began_ms, ended_ms;

static void
report(void *arg, int64_t ms, bool over)
{
	(void)arg;
	if (over) {
		atomic_store(&ended_ms, ms);
		atomic_fetch_add(&ended, 1);
	} else {
		atomic_store(&began_ms, ms);
		atomic_fetch_add(&began, 1);
	}
}

static void
turn(struct watchdog *w, int ms)
{
	int64_t end = mom_mono_ms() + ms;

	watchdog_busy(w, mom_mono_ms());
	/* The stack's signal ends a sleep early (EINTR): sleep on. */
	while (mom_mono_ms() < end)
		usleep(10 * 1000);
	watchdog_idle(w);
}

Test(watchdog, a_long_turn_is_reported_once_with_the_stack_and_its_end)
{
	struct watchdog w;
	int             p[2];
	char            buf[8192];
	ssize_t         n;
	uint64_t        stalls;
	int64_t         longest;

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	cr_assert_eq(watchdog_start(&w, 100, p[1], report, NULL), 0);
	turn(&w, 1000);
	usleep(200 * 1000);
	watchdog_counts(&w, &stalls, &longest);
	watchdog_stop(&w);
	cr_assert_eq(atomic_load(&began), 1);
	cr_assert_geq(atomic_load(&began_ms), 100);
	cr_assert_lt(atomic_load(&began_ms), 1000);
	cr_assert_eq(atomic_load(&ended), 1);
	cr_assert_geq(atomic_load(&ended_ms), 990, "ended after %lld ms", (long long)ended_ms);
	cr_assert_eq(stalls, 1);
	cr_assert_eq(longest, atomic_load(&ended_ms));
	/* The watched thread's stack, taken while it slept. */
	n = read(p[0], buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0, "no stack written");
	buf[n] = '\0';
	cr_assert_not_null(strstr(buf, "sleep"), "%s", buf);
	cr_assert_not_null(strstr(buf, "usleep"), "%s", buf);
	cr_assert_not_null(strstr(buf, "(+0x"), "%s", buf); /* our own frames, by offset */
	close(p[0]);
	close(p[1]);
}

Test(watchdog, waiting_and_short_turns_are_not_stalls)
{
	struct watchdog w;
	uint64_t        stalls;
	int64_t         longest;

	cr_assert_eq(watchdog_start(&w, 100, -1, report, NULL), 0);
	usleep(400 * 1000); /* waiting: idle */
	for (int i = 0; i < 8; i++)
		turn(&w, 30);
	watchdog_counts(&w, &stalls, &longest);
	watchdog_stop(&w);
	cr_assert_eq(atomic_load(&began), 0);
	cr_assert_eq(atomic_load(&ended), 0);
	cr_assert_eq(stalls, 0);
	cr_assert_eq(longest, 0);
	/* Stopped twice: nothing. */
	watchdog_stop(&w);
}

/*
 * The whole process stopped (SIGSTOP) stops the watchdog with the watched
 * thread: a pause here is the watchdog kept from looking (its lock held)
 * while a turn is on.
 */
static void
paused_turn(struct watchdog *w, int pause_ms, int after_ms)
{
	watchdog_busy(w, mom_mono_ms());
	pthread_mutex_lock(&w->mu);
	usleep((useconds_t)pause_ms * 1000);
	pthread_mutex_unlock(&w->mu);
	usleep((useconds_t)after_ms * 1000);
	watchdog_idle(w);
}

/* The stalls counted after a paused turn (pause_ms, then after_ms of work). */
static uint64_t
stalls_after_pause(int pause_ms, int after_ms)
{
	struct watchdog w;
	uint64_t        stalls;
	int64_t         longest;

	cr_assert_eq(watchdog_start(&w, 100, -1, report, NULL), 0);
	paused_turn(&w, pause_ms, after_ms);
	usleep(200 * 1000);
	watchdog_counts(&w, &stalls, &longest);
	watchdog_stop(&w);
	return stalls;
}

Test(watchdog, a_pause_of_the_whole_process_is_no_stall)
{
	uint64_t stalls = stalls_after_pause(600, 40);

	cr_assert_eq(atomic_load(&began), 0, "a pause of 600 ms reported as a stall of %lld ms",
	    (long long)atomic_load(&began_ms));
	cr_assert_eq(stalls, 0);
}

Test(watchdog, a_turn_that_lasts_past_a_pause_is_still_a_stall)
{
	uint64_t stalls = stalls_after_pause(600, 400);

	cr_assert_eq(atomic_load(&began), 1);
	cr_assert_eq(stalls, 1);
}

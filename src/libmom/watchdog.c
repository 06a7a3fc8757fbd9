/*
 * watchdog.c: a thread that says when another spends too long in one
 * turn of its loop (see watchdog.h).
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mom.h"
#include "watchdog.h"

#define FRAMES 48

/* Where the handler writes: one watchdog a process. */
static volatile sig_atomic_t stack_fd = -1;

static void
stack_handler(int sig)
{
	void *pc[FRAMES];
	int   n, saved = errno;

	(void)sig;
	if (stack_fd >= 0) {
		n = backtrace(pc, FRAMES);
		/* Frame 0 is this handler, 1 the signal trampoline. */
		backtrace_symbols_fd(pc, n, stack_fd);
	}
	errno = saved;
}

static void
wait_ms(struct watchdog *w, int ms)
{
	struct timespec ts;

	mom_timespec_in(&ts, CLOCK_MONOTONIC, ms);
	(void)pthread_cond_timedwait(&w->cv, &w->mu, &ts);
}

/*
 * A look that comes a whole stall late means the process was stopped
 * (SIGSTOP, a debugger) or not run, the watched thread with it: that
 * pause is not its turn's, and is taken off the turn (paused_ms).
 */
static void *
watch_main(void *arg)
{
	struct watchdog *w = arg;
	int64_t          reported = 0, since, now, ended, began, last = mom_mono_ms();
	int64_t          paused_turn = 0, paused_ms = 0;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		wait_ms(w, w->stall_ms / 4);
		if (w->stop)
			break;
		since = atomic_load_explicit(&w->busy_since, memory_order_relaxed);
		now = mom_mono_ms();
		if (since != paused_turn) {
			paused_turn = since;
			paused_ms = 0;
		}
		if (since != 0 && now - last > w->stall_ms)
			paused_ms += now - (since > last ? since : last);
		last = now;
		ended = began = 0;
		if (reported != 0 && since != reported) {
			/* That turn ended within the last look. */
			ended = now - reported;
			if (ended > w->longest_ms)
				w->longest_ms = ended;
			reported = 0;
		}
		if (reported == 0 && since != 0 && now - since - paused_ms >= w->stall_ms) {
			reported = since;
			began = now - since;
			w->stalls++;
		}
		pthread_mutex_unlock(&w->mu);
		if (ended)
			w->report(w->arg, ended, true);
		if (began) {
			w->report(w->arg, began, false);
			if (w->fd >= 0)
				(void)pthread_kill(w->watched, SIGURG);
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

void
watchdog_counts(struct watchdog *w, uint64_t *stalls, int64_t *longest_ms)
{
	*stalls = 0;
	*longest_ms = 0;
	if (!w->up)
		return;
	pthread_mutex_lock(&w->mu);
	*stalls = w->stalls;
	*longest_ms = w->longest_ms;
	pthread_mutex_unlock(&w->mu);
}

int
watchdog_start(struct watchdog *w, int stall_ms, int fd, watchdog_report_fn report, void *arg)
{
	struct sigaction sa;
	pthread_condattr_t ca;
	void *warm[1];

	memset(w, 0, sizeof(*w));
	w->stall_ms = stall_ms < 4 ? 4 : stall_ms;
	w->fd = fd;
	w->report = report;
	w->arg = arg;
	w->watched = pthread_self();
	if (fd >= 0) {
		/* backtrace's first call loads libgcc (it allocates): not in the handler. */
		(void)backtrace(warm, 1);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = stack_handler;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(SIGURG, &sa, NULL) != 0)
			return -1;
		stack_fd = fd;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((errno = pthread_create(&w->thread, NULL, watch_main, w)) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		stack_fd = -1;
		return -1;
	}
	w->up = true;
	return 0;
}

void
watchdog_stop(struct watchdog *w)
{
	if (!w->up)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	stack_fd = -1;
	w->up = false;
}

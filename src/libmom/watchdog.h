/*
 * watchdog.h: says when a thread spends too long in one turn of its loop,
 * and where it is meanwhile.
 *
 * The watched thread calls watchdog_busy when a turn begins (after its
 * wait) and watchdog_idle before it waits again.  A thread of the
 * watchdog's own looks every stall_ms / 4: a turn that has lasted
 * stall_ms is a stall, reported once (report(arg, ms, false)), and the
 * watched thread is sent SIGURG, whose handler writes that thread's
 * stack (backtrace_symbols_fd, one frame a line: "binary(+offset)" for
 * our static functions, which addr2line -e BINARY resolves) to the fd
 * given; when the turn ends, report(arg, ms, true) with its length.
 * Nothing is reported for a thread that waits, however long, nor for
 * the time the whole process was stopped (SIGSTOP, a debugger): the
 * watchdog, stopped too, looks late and takes that pause off the turn.
 *
 * The handler only reads the stack and writes to the fd, so it is safe
 * wherever the thread is (backtrace is loaded at start: its first call
 * allocates).  It is installed with SA_RESTART, but a sleep, poll or
 * timed wait the signal interrupts returns early (EINTR): the watched
 * thread must take that as it takes a spurious wakeup.  SIGURG is
 * otherwise unused here; its default action is to be ignored, so a stray
 * one does no harm.
 */
#ifndef MOM_WATCHDOG_H
#define MOM_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*watchdog_report_fn)(void *arg, int64_t ms, bool over);

struct watchdog {
	_Atomic int64_t     busy_since; /* mom_mono_ms the turn began; 0: waiting */
	pthread_t           watched, thread;
	int                 stall_ms, fd;
	watchdog_report_fn  report;
	void               *arg;
	pthread_mutex_t     mu;
	pthread_cond_t      cv;
	bool                stop, up;
	uint64_t            stalls;     /* stalls seen (mu) */
	int64_t             longest_ms; /* the longest that ended (mu) */
};

/*
 * Starts watching the calling thread (it must be the watched one):
 * stall_ms at least 4; fd where the stack goes (-1: none).  0, or -1
 * (errno: the thread or the handler could not be set).
 */
int  watchdog_start(struct watchdog *w, int stall_ms, int fd, watchdog_report_fn report,
    void *arg);
void watchdog_stop(struct watchdog *w);
/* The stalls seen so far and the longest that ended (ms), for stats. */
void watchdog_counts(struct watchdog *w, uint64_t *stalls, int64_t *longest_ms);

static inline void
watchdog_busy(struct watchdog *w, int64_t now_ms)
{
	atomic_store_explicit(&w->busy_since, now_ms ? now_ms : 1, memory_order_relaxed);
}

static inline void
watchdog_idle(struct watchdog *w)
{
	atomic_store_explicit(&w->busy_since, 0, memory_order_relaxed);
}

#endif

/*
 * progress.h: a progress line on stderr for long runs (mom-pub -l of a
 * large input, mom-sub -C N): the count, the rate and, where the end is
 * known, the share done and the time left.  On a terminal the line is
 * rewritten in place; elsewhere (--progress into a file or a pipe) a line
 * is printed every interval.
 */
#ifndef MOM_PROGRESS_H
#define MOM_PROGRESS_H

#include <stdint.h>

#define MOM_PROGRESS_MS 1000 /* a line at most this often */

struct mom_progress {
	const char *prog;
	const char *what;     /* "messages confirmed" */
	int         on, tty, forced;
	int64_t     start, last;
	int         shown;    /* a line was printed (on a terminal: is open) */
};

/*
 * On with force (--progress), or when stderr is a terminal and auto_ok
 * (the caller's own conditions: not --quiet, the output not on the same
 * terminal).
 */
void mom_progress_init(struct mom_progress *, const char *prog, const char *what, int force,
    int auto_ok);
/*
 * n done of total (0: unknown); done_b of total_b bytes (0: unknown) when
 * the share comes from bytes.  Prints at most every MOM_PROGRESS_MS
 * unless last is set (the final line, always printed when on).
 */
void mom_progress(struct mom_progress *, uint64_t n, uint64_t total, uint64_t done_b,
    uint64_t total_b, int last);
/*
 * The line itself (for tests): "N[/TOTAL] WHAT[ (P%)], R/s[, ETA Ts]"
 * for elapsed ms.
 */
void mom_progress_format(char *buf, size_t len, const char *what, uint64_t n, uint64_t total,
    uint64_t done_b, uint64_t total_b, int64_t elapsed_ms);

#endif

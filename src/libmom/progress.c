/*
 * progress.c: progress lines on stderr (see progress.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mom.h"
#include "progress.h"

void
mom_progress_init(struct mom_progress *p, const char *prog, const char *what, int force,
    int auto_ok)
{
	memset(p, 0, sizeof(*p));
	p->prog = prog;
	p->what = what;
	p->tty = isatty(STDERR_FILENO);
	p->on = force || (auto_ok && p->tty);
	p->forced = force;
	p->start = p->last = mom_mono_ms();
}

void
mom_progress_format(char *buf, size_t len, const char *what, uint64_t n, uint64_t total,
    uint64_t done_b, uint64_t total_b, int64_t elapsed_ms)
{
	double   share = -1, rate;
	uint64_t left;
	int      k;

	if (total > 0)
		share = (double)n / (double)total;
	else if (total_b > 0)
		share = (double)done_b / (double)total_b;
	if (share > 1)
		share = 1;
	rate = elapsed_ms > 0 ? (double)n * 1000.0 / (double)elapsed_ms : 0;
	if (total > 0)
		k = snprintf(buf, len, "%" PRIu64 "/%" PRIu64 " %s", n, total, what);
	else
		k = snprintf(buf, len, "%" PRIu64 " %s", n, what);
	if (k < 0 || (size_t)k >= len)
		return;
	if (share >= 0)
		k += snprintf(buf + k, len - (size_t)k, " (%d%%)", (int)(share * 100));
	if (k < 0 || (size_t)k >= len)
		return;
	k += snprintf(buf + k, len - (size_t)k, ", %.0f/s", rate);
	if (k < 0 || (size_t)k >= len)
		return;
	/* The time left, from the rate so far, while there is some left. */
	if (share > 0 && share < 1 && elapsed_ms > 0) {
		left = (uint64_t)((double)elapsed_ms * (1 - share) / share / 1000.0 + 0.5);
		snprintf(buf + k, len - (size_t)k, ", ETA %" PRIu64 "s", left);
	}
}

void
mom_progress(struct mom_progress *p, uint64_t n, uint64_t total, uint64_t done_b,
    uint64_t total_b, int last)
{
	char    line[256];
	int64_t now;

	if (!p->on)
		return;
	now = mom_mono_ms();
	if (!last && now - p->last < MOM_PROGRESS_MS)
		return;
	/* A short run on its own terminal ends without a line. */
	if (last && !p->shown && !p->forced)
		return;
	p->last = now;
	mom_progress_format(line, sizeof(line), p->what, n, total, done_b, total_b,
	    now - p->start);
	/* On a terminal the line is rewritten: carriage return, then clear to its end. */
	if (p->tty)
		fprintf(stderr, "\r%s: %s\033[K%s", p->prog, line, last ? "\n" : "");
	else
		fprintf(stderr, "%s: %s\n", p->prog, line);
	fflush(stderr);
	p->shown = 1;
}

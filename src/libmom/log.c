/*
 * log.c: timestamped lines on stderr; -v adds debug lines.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

int log_verbose;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void
log_init(int verbose)
{
	log_verbose = verbose;
}

static void
vlog(const char *level, const char *fmt, va_list ap, const char *suffix)
{
	struct timespec ts;
	struct tm       tm;
	char            when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One lock so that lines from nng's threads never interleave. */
	pthread_mutex_lock(&log_mu);
	fprintf(stderr, "%s.%03ldZ mom-broker %s: ", when, ts.tv_nsec / 1000000, level);
	vfprintf(stderr, fmt, ap);
	if (suffix)
		fprintf(stderr, ": %s", suffix);
	fputc('\n', stderr);
	pthread_mutex_unlock(&log_mu);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	char   *e = strerror(errno);

	va_start(ap, fmt);
	vlog("warning", fmt, ap, e);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning", fmt, ap, NULL);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("info", fmt, ap, NULL);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog("debug", fmt, ap, NULL);
	va_end(ap);
}

void
log_fatal(const char *fmt, ...)
{
	va_list ap;
	char   *e = strerror(errno);

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, e);
	va_end(ap);
}

void
log_fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, NULL);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	char   *e = strerror(errno);

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, e);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("fatal", fmt, ap, NULL);
	va_end(ap);
	exit(1);
}

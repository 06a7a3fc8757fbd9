/*
 * mom.c: error names, exit statuses, clocks, and the few helpers every
 * part shares (time arithmetic, error formatting, writing it all).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mom.h"

static const struct {
	const char *text;
	const char *name;
	int         exit;
} errtab[MOM_E_MAX] = {
	[MOM_OK] = { "success", "ok", MOM_EXIT_OK },
	[MOM_EINVAL] = { "invalid argument", "invalid", MOM_EXIT_USAGE },
	[MOM_EBADDATA] = { "malformed data", "bad_data", MOM_EXIT_DATAERR },
	[MOM_ENOENT] = { "no such queue, topic or subscription", "not_found", MOM_EXIT_NOINPUT },
	[MOM_EEXIST] = { "exists already with other options", "exists", MOM_EXIT_FAIL },
	[MOM_EFULL] = { "full", "full", MOM_EXIT_TEMPFAIL },
	[MOM_ETOOBIG] = { "message too large", "too_large", MOM_EXIT_DATAERR },
	[MOM_EBUSY] = { "broker busy", "busy", MOM_EXIT_TEMPFAIL },
	[MOM_ETIMEDOUT] = { "timed out", "timeout", MOM_EXIT_TEMPFAIL },
	[MOM_EUNAVAIL] = { "broker unavailable", "unavailable", MOM_EXIT_UNAVAILABLE },
	[MOM_EAUTH] = { "authentication failed", "unauthorized", MOM_EXIT_NOPERM },
	[MOM_EPERM] = { "permission denied", "forbidden", MOM_EXIT_NOPERM },
	[MOM_ENOMEM] = { "out of memory", "no_memory", MOM_EXIT_FAIL },
	[MOM_EPROTO] = { "protocol error", "protocol", MOM_EXIT_DATAERR },
	[MOM_EINTERNAL] = { "internal error", "internal", MOM_EXIT_FAIL },
	[MOM_ECLOSED] = { "shutting down", "closed", MOM_EXIT_UNAVAILABLE },
	[MOM_ENOTLEADER] = { "not the leader", "not_leader", MOM_EXIT_UNAVAILABLE },
};

const char *
mom_strerror(int err)
{
	if (err < 0 || err >= MOM_E_MAX || errtab[err].text == NULL)
		return "unknown error";
	return errtab[err].text;
}

const char *
mom_err_name(int err)
{
	if (err < 0 || err >= MOM_E_MAX || errtab[err].name == NULL)
		return "unknown";
	return errtab[err].name;
}

int
mom_err_exit(int err)
{
	if (err < 0 || err >= MOM_E_MAX || errtab[err].text == NULL)
		return MOM_EXIT_FAIL;
	return errtab[err].exit;
}

int64_t
mom_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mom_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
mom_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mom_time_add(int64_t t, uint64_t ms)
{
	if (ms > (uint64_t)INT64_MAX || (t > 0 && (int64_t)ms > INT64_MAX - t))
		return INT64_MAX;
	return t + (int64_t)ms;
}

void
mom_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
mom_write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	ssize_t        k;

	while (n > 0) {
		k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = EIO;
			return -1;
		}
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* mom_stdout_capture: the real standard output while stdout is a memory stream. */
static FILE  *real_stdout;
static char  *cap_buf;
static size_t cap_len;

int
mom_stdout_capture(void)
{
	FILE *m = open_memstream(&cap_buf, &cap_len);

	if (m == NULL)
		return -1;
	real_stdout = stdout;
	stdout = m;
	return 0;
}

int
mom_stdout_close(void)
{
	int err = 0;

	if (real_stdout != NULL) {
		/* One write of everything: its errno is the one to report. */
		if (fclose(stdout) != 0)
			err = ENOMEM;
		stdout = real_stdout;
		real_stdout = NULL;
		if (err == 0 && cap_len > 0 && mom_write_all(fileno(stdout), cap_buf, cap_len) != 0)
			err = errno;
		free(cap_buf);
		cap_buf = NULL;
		if (err != 0) {
			(void)fclose(stdout);
			return err;
		}
	}
	errno = 0;
	if (fflush(stdout) != 0)
		err = errno != 0 ? errno : EIO;
	else if (ferror(stdout))
		err = EIO; /* a write failed earlier; its errno is gone */
	errno = 0;
	if (fclose(stdout) != 0 && err == 0 && errno != EBADF)
		err = errno != 0 ? errno : EIO;
	return err;
}

int
mom_stdout_finish(const char *prog, int status, int epipe_ok)
{
	int err = mom_stdout_close();

	if (err == 0 || status != 0 || (err == EPIPE && epipe_ok))
		return status;
	fprintf(stderr, "%s: standard output: %s\n", prog, strerror(err));
	return MOM_EXIT_IOERR;
}

void
mom_timespec_in(struct timespec *ts, int clock, int64_t ms)
{
	clock_gettime((clockid_t)clock, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

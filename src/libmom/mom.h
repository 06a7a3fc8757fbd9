/*
 * mom.h: what every part of mom shares: error codes and their exit statuses.
 */
#ifndef MOM_H
#define MOM_H

#include <stddef.h>
#include <stdint.h>

#define MOM_VERSION "0.1.0"

/*
 * Error codes.  Functions return 0 or one of these; the same numbers travel
 * on the wire as a reply status, so never renumber them.
 */
enum mom_err {
	MOM_OK = 0,
	MOM_EINVAL = 1,    /* bad argument: name, option, duration (usage) */
	MOM_EBADDATA = 2,  /* malformed input data (jsonl, frame, headers) */
	MOM_ENOENT = 3,    /* no such queue, topic or subscription */
	MOM_EEXIST = 4,    /* exists already with other options */
	MOM_EFULL = 5,     /* max-len / max-bytes reached: refused */
	MOM_ETOOBIG = 6,   /* message over the size limit */
	MOM_EBUSY = 7,     /* broker overloaded: back off and retry */
	MOM_ETIMEDOUT = 8, /* -W expired */
	MOM_EUNAVAIL = 9,  /* no broker reachable */
	MOM_EAUTH = 10,    /* authentication failed */
	MOM_EPERM = 11,    /* permission denied */
	MOM_ENOMEM = 12,
	MOM_EPROTO = 13,   /* peer spoke something that is not our protocol */
	MOM_EINTERNAL = 14,
	MOM_ECLOSED = 15,  /* shutting down */
	MOM_ENOTLEADER = 16,
	MOM_E_MAX
};

/* Exit statuses from SPEC.md (sysexits.h values). */
enum mom_exit {
	MOM_EXIT_OK = 0,
	MOM_EXIT_FAIL = 1,
	MOM_EXIT_USAGE = 64,
	MOM_EXIT_DATAERR = 65,
	MOM_EXIT_NOINPUT = 66,
	MOM_EXIT_UNAVAILABLE = 69,
	MOM_EXIT_IOERR = 74,
	MOM_EXIT_TEMPFAIL = 75,
	MOM_EXIT_NOPERM = 77,
};

/* Short English text for an error code; never NULL. */
const char *mom_strerror(int err);

/* The documented exit status for an error code. */
int mom_err_exit(int err);

/* Stable machine name ("not_found", "full", ...) for JSON and HTTP. */
const char *mom_err_name(int err);

/* Wall clock and monotonic clock in milliseconds. */
int64_t mom_now_ms(void);
int64_t mom_mono_ms(void);
int64_t mom_mono_us(void); /* monotonic, in microseconds */
/* *ts = clock's now + ms, for the timed waits (pthread_cond_timedwait). */
struct timespec;
void    mom_timespec_in(struct timespec *ts, int clock, int64_t ms);

/*
 * t + ms, saturating at INT64_MAX: times and delays come from commands,
 * snapshots and the wire as any u64, so the sum must not overflow.
 */
int64_t mom_time_add(int64_t t, uint64_t ms);

/* Formats an error message into err[errlen] (nothing when err is NULL). */
void mom_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes all n bytes to fd, again after EINTR and short writes.  0, or -1 (errno). */
int mom_write_all(int fd, const void *p, size_t n);

/*
 * At exit: flushes and closes stdout, so that a write error stdio kept in
 * its buffer, or one only close(2) reports, is seen.  Returns 0 or the
 * errno (EBADF of a stdout that was never open and never written is none).
 */
int mom_stdout_close(void);
/*
 * For programs whose output is one answer (mom-admin, mom-auth): stdout
 * becomes a memory stream, written out by mom_stdout_close in one write,
 * so that a write error is reported with its own errno (stdio forgets it
 * when a buffer flushes in the middle of output: a full disk then read as
 * "Input/output error").  0, or -1 (stdout unchanged).
 */
int mom_stdout_capture(void);

/*
 * The exit status after mom_stdout_close(): status when it is not 0 (its
 * error was printed already) or stdout was fine; with epipe_ok also for a
 * reader that went away (EPIPE); else "PROG: standard output: ERROR" on
 * stderr and 74 (EX_IOERR).
 */
int mom_stdout_finish(const char *prog, int status, int epipe_ok);

#endif

/*
 * log.h: the broker's one way to speak: lines on stderr, OpenBSD style.
 */
#ifndef MOM_LOG_H
#define MOM_LOG_H

#define PRINTFLIKE(a, b) __attribute__((format(printf, a, b)))

void log_init(int verbose);
void log_warn(const char *, ...) PRINTFLIKE(1, 2);  /* appends strerror(errno) */
void log_warnx(const char *, ...) PRINTFLIKE(1, 2);
void log_info(const char *, ...) PRINTFLIKE(1, 2);
void log_debug(const char *, ...) PRINTFLIKE(1, 2);
/*
 * The broker cannot go on: level "fatal", without exiting, for a caller
 * that stops with an exit status of its own (mom-broker(8), EXIT STATUS).
 */
void log_fatal(const char *, ...) PRINTFLIKE(1, 2); /* appends strerror(errno) */
void log_fatalx(const char *, ...) PRINTFLIKE(1, 2);
/* The same, then exit(1). */
void fatal(const char *, ...) PRINTFLIKE(1, 2) __attribute__((noreturn));
void fatalx(const char *, ...) PRINTFLIKE(1, 2) __attribute__((noreturn));
extern int log_verbose;

#endif

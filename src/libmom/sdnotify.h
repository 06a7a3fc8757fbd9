/*
 * sdnotify.h: systemd's service notification (sd_notify(3)) without
 * libsystemd: one datagram to the AF_UNIX socket named by NOTIFY_SOCKET
 * (a path, or "@name" in the abstract namespace), so that a Type=notify
 * unit knows when the broker serves (READY=1), reloads (RELOADING=1) and
 * stops (STOPPING=1).
 */
#ifndef MOM_SDNOTIFY_H
#define MOM_SDNOTIFY_H

/*
 * Sends state ("READY=1", lines separated by '\n').  Returns 1 when sent,
 * 0 when NOTIFY_SOCKET is unset or empty (not under systemd), -1 with
 * errno set when it could not be sent.
 */
int mom_sd_notify(const char *state);

#endif

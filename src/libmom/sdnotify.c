/*
 * sdnotify.c: the NOTIFY_SOCKET datagram (sdnotify.h).  The protocol is
 * small and stable (systemd documents it as an interface to implement
 * without the library): no dependency for one sendto(2).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

int
mom_sd_notify(const char *state)
{
	const char        *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t             len, n = strlen(state);
	ssize_t            sent;
	int                fd, e;

	if (name == NULL || *name == '\0')
		return 0;
	len = strlen(name);
	if ((name[0] != '/' && name[0] != '@') || len >= sizeof(sa.sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	sent = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	e = errno;
	close(fd);
	errno = e;
	if (sent != (ssize_t)n) {
		if (sent >= 0)
			errno = EMSGSIZE;
		return -1;
	}
	return 1;
}

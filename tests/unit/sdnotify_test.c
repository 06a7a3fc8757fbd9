/*
 * sdnotify_test.c: systemd's readiness datagram without libsystemd
 * (sdnotify.h): sent to the path or abstract name in NOTIFY_SOCKET,
 * nothing without it, an error for a name that cannot be one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "sdnotify.h"

/* A datagram socket bound to name (a leading '@': abstract); its fd. */
static int
listener(const char *name)
{
	struct sockaddr_un sa;
	size_t             len = strlen(name);
	int                fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	cr_assert_geq(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa,
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
	return fd;
}

static void
expect(int fd, const char *want)
{
	char   buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	cr_assert_gt(n, 0, "no datagram");
	buf[n] = '\0';
	cr_assert_str_eq(buf, want);
}

Test(sdnotify, sends_to_a_path)
{
	char path[64];
	int  fd;

	snprintf(path, sizeof(path), "/tmp/mom-sdnotify-%d", (int)getpid());
	unlink(path);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	cr_assert_eq(mom_sd_notify("READY=1"), 1);
	expect(fd, "READY=1");
	cr_assert_eq(mom_sd_notify("STOPPING=1"), 1);
	expect(fd, "STOPPING=1");
	close(fd);
	unlink(path);
}

Test(sdnotify, sends_to_an_abstract_name)
{
	char name[64];
	int  fd;

	snprintf(name, sizeof(name), "@mom-sdnotify-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	cr_assert_eq(mom_sd_notify("READY=1"), 1);
	expect(fd, "READY=1");
	close(fd);
}

Test(sdnotify, nothing_without_the_variable_and_an_error_for_a_bad_one)
{
	unsetenv("NOTIFY_SOCKET");
	cr_assert_eq(mom_sd_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	cr_assert_eq(mom_sd_notify("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	cr_assert_eq(mom_sd_notify("READY=1"), -1);
	setenv("NOTIFY_SOCKET", "/tmp/mom-sdnotify-nobody-listens-here", 1);
	cr_assert_eq(mom_sd_notify("READY=1"), -1);
}

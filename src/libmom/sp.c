/*
 * sp.c: a single SP request over TCP without nng (see sp.h).
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "mom.h"
#include "sp.h"
#include "wire.h"

#define SP_PROTO_REQ0 0x30
#define SP_PROTO_REP0 0x31

static void
be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t
get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	int      i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* Reads exactly n bytes before the deadline (monotonic ms); -2: too late. */
static int
read_full(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		int64_t       left = deadline - mom_mono_ms();
		ssize_t       r;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return -2;
		if (pfd.revents == 0)
			return -1;
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int
write_full(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int
dial(const char *url)
{
	char             host[256], *port;
	const char      *h;
	struct addrinfo  hints, *ai = NULL, *a;
	size_t           n;
	int              fd = -1, one = 1;

	if (strncmp(url, "tcp://", 6) != 0)
		return -1;
	h = url + 6;
	if ((n = strcspn(h, ",")) == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	if ((port = strrchr(host, ':')) == NULL)
		return -1;
	*port++ = '\0';
	if (host[0] == '[') { /* [::1] */
		size_t hl = strlen(host);

		if (hl < 2 || host[hl - 1] != ']')
			return -1;
		host[hl - 1] = '\0';
		memmove(host, host + 1, hl - 1);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0)
		return -1;
	for (a = ai; a; a = a->ai_next) {
		if ((fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol)) < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int sp_call(const char *, const uint8_t *, size_t, int64_t, uint8_t **, size_t *);

int
mom_sp_call(const char *url, const char *token, const uint8_t *req, size_t len,
    int64_t timeout_ms, uint8_t **rep, size_t *replen)
{
	struct mom_buf tb;
	int            rv;

	if (token == NULL)
		return sp_call(url, req, len, timeout_ms, rep, replen);
	mom_buf_init(&tb);
	mom_frame_with_token(&tb, req, len, token, strlen(token));
	rv = tb.err ? -1 : sp_call(url, tb.data, tb.len, timeout_ms, rep, replen);
	mom_buf_fini(&tb);
	return rv;
}

static int
sp_call(const char *url, const uint8_t *req, size_t len, int64_t timeout_ms,
    uint8_t **rep, size_t *replen)
{
	uint8_t      hs[8] = { 0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0 }, peer[8];
	uint8_t      hdr[12], rhdr[12];
	struct iovec iov[3];
	uint32_t     id = 0;
	uint64_t     n;
	int64_t      deadline = mom_mono_ms() + (timeout_ms >= 0 ? timeout_ms : 10000);
	int          fd, rv = -1;

	*rep = NULL;
	if ((fd = dial(url)) < 0)
		return -1;
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint32_t)mom_mono_ms();
	id |= 0x80000000u;
	be64(hdr, len + 4);
	hdr[8] = (uint8_t)(id >> 24);
	hdr[9] = (uint8_t)(id >> 16);
	hdr[10] = (uint8_t)(id >> 8);
	hdr[11] = (uint8_t)id;
	/* Handshake and request in one write: one segment on the wire. */
	iov[0].iov_base = hs;
	iov[0].iov_len = sizeof(hs);
	iov[1].iov_base = hdr;
	iov[1].iov_len = sizeof(hdr);
	iov[2].iov_base = (void *)(uintptr_t)req;
	iov[2].iov_len = len;
	if (write_full(fd, iov, 3) != 0 || (rv = read_full(fd, peer, sizeof(peer), deadline)) != 0)
		goto fail;
	rv = -1;
	if (memcmp(peer, "\0SP\0", 4) != 0 || peer[4] != 0 || peer[5] != SP_PROTO_REP0 ||
	    (rv = read_full(fd, rhdr, sizeof(rhdr), deadline)) != 0)
		goto fail;
	rv = -1;
	n = get_be64(rhdr);
	if (n < 4 || n - 4 > (uint64_t)MOM_PAYLOAD_LIMIT * 2 ||
	    memcmp(rhdr + 8, hdr + 8, 4) != 0)
		goto fail;
	n -= 4;
	if ((*rep = malloc(n ? n : 1)) == NULL || (rv = read_full(fd, *rep, n, deadline)) != 0)
		goto fail;
	*replen = n;
	close(fd);
	return 0;
fail:
	free(*rep);
	*rep = NULL;
	close(fd);
	return rv < 0 ? rv : -1;
}

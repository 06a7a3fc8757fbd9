#!/usr/bin/env python3
"""slowhttp.py: misbehaving HTTP clients for tests/e2e/attack-http.bats.

  slowhttp.py trickle PORT HEAD BODY CHUNK INTERVAL MAX
      One connection: sends HEAD (with \\r\\n written as such) at once,
      then BODY, CHUNK bytes every INTERVAL seconds.  Prints how many
      seconds passed until the server closed the connection and exits 0,
      or prints "held" and exits 1 when it was still open after MAX
      seconds (a BODY sent in full is followed by nothing: waiting on).

  slowhttp.py hold PORT N SECONDS READY
      Slowloris: N connections, each sending a request head one byte at a
      time, a byte every 5 seconds (spread over the connections), for
      SECONDS.  A connection the server closes (or refuses) is opened
      again a second later.  Writes READY once every connection was tried
      the first time.  Prints one JSON line: n, the most held at once
      ("peak"), "held" at the end, "closed" by the server, "refused".
      Raises its own open-file limit to the hard limit first; when that
      is short of N + 64, N is cut down and "cut" says so.

  slowhttp.py halfclose PORT REQUEST [TIMEOUT]
      Sends REQUEST (\\r\\n written as such), shuts down its sending side
      (shutdown(SHUT_WR)) and prints whatever comes back until the server
      closes the connection or TIMEOUT seconds (default 10) pass.  Exits 0
      when the server closed it, 1 on the timeout.

Every loop is bounded in time.
"""
import json
import os
import resource
import select
import socket
import sys
import time


def unescape(s):
    return s.encode().decode("unicode_escape").encode("latin-1")


def closed_by_peer(s):
    """True when the server closed (EOF or reset); drains what it sent."""
    try:
        while True:
            b = s.recv(65536)
            if not b:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def trickle(port, head, body, chunk, interval, limit):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setblocking(False)
    t0 = time.monotonic()
    try:
        s.sendall(head)
    except OSError:
        pass
    off = 0
    next_send = t0 + interval
    while time.monotonic() - t0 < limit:
        r, _, _ = select.select([s], [], [], max(0.0, min(0.05, next_send - time.monotonic())))
        if r and closed_by_peer(s):
            print("%.2f" % (time.monotonic() - t0))
            return 0
        if time.monotonic() >= next_send and off < len(body):
            try:
                s.send(body[off:off + chunk])
            except OSError:
                print("%.2f" % (time.monotonic() - t0))
                return 0
            off += chunk
            next_send += interval
    print("held")
    return 1


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 64


class Slow:
    def __init__(self):
        self.s = None
        self.sent = 0
        self.due = 0.0


def slow_open(c, port, now):
    c.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.s.setblocking(False)
    c.sent = 0
    try:
        c.s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    except OSError:
        c.s.close()
        c.s = None
        c.due = now + 1.0
        return False
    return True


def hold(port, n, seconds, ready):
    limit = raise_nofile(n + 64)
    cut = None
    if limit < n + 64:
        cut = n
        n = max(1, limit - 64)
    ep = select.epoll()
    conns = [Slow() for _ in range(n)]
    byfd = {}
    t0 = time.monotonic()
    closed = refused = peak = 0
    for i, c in enumerate(conns):
        # A byte every 5 s per connection, the first ones spread over those 5 s.
        if slow_open(c, port, t0):
            byfd[c.s.fileno()] = c
            ep.register(c.s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        else:
            refused += 1
        c.due = t0 + 5.0 * i / n
    with open(ready, "w") as f:
        f.write("%d\n" % n)
    while time.monotonic() - t0 < seconds:
        for fd, _ in ep.poll(0.05):
            c = byfd.get(fd)
            if c is None or not closed_by_peer(c.s):
                continue
            ep.unregister(fd)
            del byfd[fd]
            c.s.close()
            c.s = None
            c.due = time.monotonic() + 1.0
            closed += 1
        now = time.monotonic()
        for c in conns:
            if c.due > now:
                continue
            if c.s is None:
                if slow_open(c, port, now):
                    byfd[c.s.fileno()] = c
                    ep.register(c.s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
                    c.due = now + 5.0
                else:
                    refused += 1
                continue
            try:
                c.s.send(HEAD[c.sent % len(HEAD):c.sent % len(HEAD) + 1])
                c.sent += 1
            except BlockingIOError:
                pass
            except OSError:
                pass  # the poll sees it closed
            c.due = now + 5.0
        peak = max(peak, len(byfd))
    out = {"n": n, "peak": peak, "held": len(byfd), "closed": closed, "refused": refused}
    if cut is not None:
        out["cut"] = cut
    print(json.dumps(out))
    return 0


def halfclose(port, request, timeout):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(request)
    s.shutdown(socket.SHUT_WR)
    t0 = time.monotonic()
    out = b""
    rv = 1
    while time.monotonic() - t0 < timeout:
        s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            rv = 0
            break
        if not b:
            rv = 0
            break
        out += b
    sys.stdout.buffer.write(out)
    return rv


def main(a):
    if len(a) == 7 and a[0] == "trickle":
        return trickle(int(a[1]), unescape(a[2]), unescape(a[3]), int(a[4]), float(a[5]),
                       float(a[6]))
    if len(a) == 5 and a[0] == "hold":
        return hold(int(a[1]), int(a[2]), float(a[3]), a[4])
    if len(a) in (3, 4) and a[0] == "halfclose":
        return halfclose(int(a[1]), unescape(a[2]), float(a[3]) if len(a) == 4 else 10.0)
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

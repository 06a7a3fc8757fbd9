#!/usr/bin/env python3
"""spflood.py: hostile nng (SP req0) peers for attack-nng.bats.

  spflood.py partial PORT N LEN SEND   N connections, each announcing a
      frame of LEN bytes and sending SEND of them, then holding still;
      prints "held K" (connections still open) after HOLD seconds
      (env HOLD, default 3) and keeps them until stdin closes.
  spflood.py stall PORT SEND      one connection that sends SEND bytes of a
      frame and waits: prints the seconds until the broker closed it.
  spflood.py silent PORT          connects and sends nothing: prints the
      seconds until the broker closed it.
  spflood.py conns PORT N         opens N connections with a handshake;
      prints how many the broker closed at once, then holds the rest
      until stdin closes.
  spflood.py pollbad PORT QUEUE   a long poll, then a malformed frame on
      the same connection: prints "closed" when the broker dropped it.
  spflood.py polls PORT CONNS N QUEUE WAITMS   pipelines N long-poll
      fetches spread over CONNS connections, then reads replies for 5 s:
      prints "busy B other O" (replies with status busy, and others).
"""
import os
import select
import socket
import struct
import sys
import time

HELLO = b"\x00SP\x00\x00\x30\x00\x00"  # req0


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(HELLO)
    return s


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def vbytes(b):
    return varint(len(b)) + b


def fetch_frame(reqid, queue, wait_ms):
    body = (b"M\x01\x03\x00" + varint(reqid) + b"\x01" + vbytes(queue) + vbytes(b"")
            + b"\x00" + varint(0) + varint(1) + varint(0) + varint(wait_ms)
            + varint(0) + varint(0) + varint(0))
    msg = struct.pack(">I", 0x80000000 | reqid) + body
    return struct.pack(">Q", len(msg)) + msg


def closed_within(s, limit):
    t0 = time.time()
    s.settimeout(limit)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return None
    return time.time() - t0


def still_open(s):
    """Reads what the broker sent (its handshake): False on EOF or error."""
    s.setblocking(False)
    try:
        while True:
            if s.recv(1 << 16) == b"":
                return False
    except BlockingIOError:
        return True
    except OSError:
        return False


def partial(port, n, length, send):
    socks = []
    chunk = b"\x80\x00\x00\x01" + b"x" * (send - 4)
    for _ in range(n):
        try:
            s = connect(port)
            s.sendall(struct.pack(">Q", length) + chunk)
            socks.append(s)
        except OSError:
            pass
    time.sleep(float(os.environ.get("HOLD", "3")))
    held = sum(1 for s in socks if still_open(s))
    print("held %d" % held, flush=True)
    sys.stdin.read()


def stall(port, send):
    s = connect(port)
    s.sendall(struct.pack(">Q", 1 << 20) + b"\x80\x00\x00\x01" + b"y" * (send - 4))
    t = closed_within(s, 60)
    print("never" if t is None else "%.1f" % t)


def silent(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = closed_within(s, 60)
    print("never" if t is None else "%.1f" % t)


def conns(port, n):
    socks = [connect(port) for _ in range(n)]
    time.sleep(1)
    shut = sum(1 for s in socks if not still_open(s))
    print("closed %d" % shut, flush=True)
    sys.stdin.read()


def polls(port, nconn, n, queue, wait_ms):
    socks = [connect(port) for _ in range(nconn)]
    for s in socks:
        hello = b""
        while len(hello) < 8:
            hello += s.recv(8 - len(hello))
    per = n // nconn
    for i, s in enumerate(socks):
        data = b"".join(fetch_frame(i * per + k + 1, queue, wait_ms) for k in range(per))
        s.setblocking(True)
        s.sendall(data)
    busy = other = 0
    bufs = {s: b"" for s in socks}
    end = time.time() + 5
    while time.time() < end:
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            d = s.recv(1 << 20)
            if not d:
                socks.remove(s)
                continue
            bufs[s] += d
            b = bufs[s]
            while len(b) >= 8:
                (ln,) = struct.unpack(">Q", b[:8])
                if len(b) < 8 + ln:
                    break
                frame = b[8 + 4:8 + ln]
                if frame[3] == 7:
                    busy += 1
                else:
                    other += 1
                b = b[8 + ln:]
            bufs[s] = b
    print("busy %d other %d" % (busy, other), flush=True)
    sys.stdin.read()


def pollbad(port, queue):
    """A long poll, then a malformed frame on the same connection."""
    s = connect(port)
    s.sendall(fetch_frame(1, queue, 20000))
    time.sleep(0.5)
    bad = struct.pack(">I", 0x80000002) + b"XX\x01\x03garbage"
    s.sendall(struct.pack(">Q", len(bad)) + bad)
    t = closed_within(s, 10)
    print("never" if t is None else "closed", flush=True)


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    a = [int(x) if x.isdigit() else x for x in sys.argv[3:]]
    if cmd == "partial":
        partial(port, *a)
    elif cmd == "stall":
        stall(port, *a)
    elif cmd == "silent":
        silent(port)
    elif cmd == "conns":
        conns(port, *a)
    elif cmd == "pollbad":
        pollbad(port, a[0].encode())
    elif cmd == "polls":
        polls(port, a[0], a[1], a[2].encode(), a[3])
    else:
        sys.exit("spflood.py: unknown command " + cmd)


if __name__ == "__main__":
    main()

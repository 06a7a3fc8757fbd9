#!/usr/bin/env python3
"""fake-nng-broker.py: a broker's nng port (SP over TCP, rep0) that answers
every request with one error status and no message, for what a real single
broker does not say on demand: "not leader" (16), "unavailable" (9).

usage: fake-nng-broker.py PORTFILE LOGFILE STATUS

Binds 127.0.0.1 on a free port and writes the port to PORTFILE (whole,
then renamed).  Each request's op is logged to LOGFILE, one line each.
The SP TCP mapping: an 8-byte handshake "\\0SP\\0" + protocol (rep0 0x31)
+ 2 zero bytes, then messages as a 64-bit big-endian length and a body;
a req0 body starts with the 32-bit request id, which the reply echoes.
"""
import os
import socket
import struct
import sys
import threading

portfile, logfile, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
lock = threading.Lock()


def read_full(c, n):
    b = b""
    while len(b) < n:
        chunk = c.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


def serve(c):
    try:
        c.sendall(b"\0SP\0\0\x31\0\0")
        read_full(c, 8)
        while True:
            (n,) = struct.unpack(">Q", read_full(c, 8))
            if n > (64 << 20):
                return
            body = read_full(c, n)
            if len(body) < 8:
                return
            rid, op = body[:4], body[6] & 0x7F
            with lock, open(logfile, "a") as f:
                f.write("%d\n" % op)
            rep = rid + bytes([0x4D, 1, op | 0x80, status])
            c.sendall(struct.pack(">Q", len(rep)) + rep)
    except (EOFError, OSError):
        pass
    finally:
        c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()

#!/usr/bin/env python3
"""fake-http-broker.py: an HTTP server that answers every request with one
canned answer, for the client cases a real broker does not produce on
demand (an expired token, 413, 503, 429, a server that never answers).

usage: fake-http-broker.py PORTFILE LOGFILE STATUS [BODY] [--sleep SECONDS] [--busy N]

Binds 127.0.0.1 on a free port and writes the port to PORTFILE (written
whole, then renamed, so a reader never sees half of it).  Every request is
logged to LOGFILE as one JSON line {"method","path","authorization","body"}.
--sleep: wait that long before answering.  --busy N: the first N requests
get 429 {"code":"busy"} before the canned answer.
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
sleep = 0.0
busy = 0
if "--sleep" in args:
    i = args.index("--sleep")
    sleep = float(args[i + 1])
    del args[i:i + 2]
if "--busy" in args:
    i = args.index("--busy")
    busy = int(args[i + 1])
    del args[i:i + 2]
portfile, logfile, status = args[0], args[1], int(args[2])
body = args[3] if len(args) > 3 else ""
lock = threading.Lock()
count = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        got = self.rfile.read(n).decode("utf-8", "replace") if n else ""
        with lock:
            count[0] += 1
            k = count[0]
            with open(logfile, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path,
                                    "authorization": self.headers.get("Authorization"),
                                    "body": got}) + "\n")
        if sleep:
            time.sleep(sleep)
        st, b = status, body
        if k <= busy:
            st, b = 429, '{"error":"broker busy","code":"busy"}'
        data = b.encode()
        self.send_response(st)
        ctype = "application/json" if b.startswith(("{", "[")) else "text/plain"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = answer


srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()

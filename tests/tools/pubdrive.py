#!/usr/bin/env python3
"""pubdrive.py: one publishing stream for the durability tests.

Feeds numbered messages (NAME-0000001, NAME-0000002, ...) to one mom-pub
(-l, or --jsonl with the payload as the message's publisher id) while
the test kills and restarts the broker, and writes down what it sent and
what mom-pub said about it:

  DIR/NAME.sent     the payloads, one a line, in the order sent
  DIR/NAME.stderr   mom-pub's standard error, every run
  DIR/NAME.result   one JSON object: name, mode, kind, target, sent,
                    runs, statuses, status, confirmed

mom-pub exits 0 only when the broker confirmed every message, and says
nothing about which messages were confirmed when it fails ("lost the
broker: N messages confirmed, more unconfirmed" gives a count, not which
ones; batches are answered in any order).  So "confirmed" is all or
nothing: every payload of DIR/NAME.sent when the last run exited 0, none
otherwise.

A --jsonl stream carries an id per message, so when mom-pub gives up with
69 (no broker for 60 s, or none at the start of a run) the stream is
started again with everything sent so far: the broker stores an id it has
already seen (within --dedupe-window) once.  A -l stream has no ids (only
mom-pub's producer sequence numbers, which die with the process), so it
is never restarted: its failure is the result.

Every wait is bounded: --time for the whole stream, --end-wait for
mom-pub to finish once its input is closed.
"""
import argparse
import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time

RESTART_STATUSES = {69}
MAX_RUNS = 40


def die_with_parent():
    # The driver may be killed with SIGKILL by the test's teardown: its
    # mom-pub must not outlive it (waiting up to 60 s for a broker).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Stream:
    def __init__(self, a):
        self.a = a
        self.sent = []          # payloads whose line was started
        self.statuses = []
        self.proc = None
        self.pending = b""      # bytes of the current line not yet written
        self.errf = open(os.path.join(a.out, a.name + ".stderr"), "ab")
        self.sentf = open(os.path.join(a.out, a.name + ".sent"), "w")

    def line(self, payload):
        if self.a.mode == "lines":
            return (payload + "\n").encode()
        env = {"payload": payload, "id": payload}
        env["queue" if self.a.queue else "topic"] = self.a.queue or self.a.topic
        return (json.dumps(env) + "\n").encode()

    def start(self):
        cmd = [self.a.pub, "-q" if self.a.queue else "-t", self.a.queue or self.a.topic,
               "-l" if self.a.mode == "lines" else "--jsonl"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=self.errf, preexec_fn=die_with_parent)
        os.set_blocking(self.proc.stdin.fileno(), False)

    def write(self, data, deadline):
        """Writes data to mom-pub; False when mom-pub has gone."""
        fd = self.proc.stdin.fileno()
        while data:
            if time.monotonic() > deadline:
                return True  # the caller notices the deadline
            try:
                _, w, _ = select.select([], [fd], [], 0.1)
                if not w:
                    if self.proc.poll() is not None:
                        return False
                    continue
                n = os.write(fd, data)
                data = data[n:]
            except (BrokenPipeError, OSError):
                return False
        return True

    def finish(self, end_wait):
        """Closes mom-pub's input and waits for its status."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            st = self.proc.wait(timeout=end_wait)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            st = "hung"
        self.statuses.append(st)
        return st

    def restartable(self, st):
        return (self.a.mode == "jsonl" and st in RESTART_STATUSES
                and len(self.statuses) < MAX_RUNS)

    def restart(self, deadline):
        """A new mom-pub that is sent everything sent so far (ids dedupe)."""
        time.sleep(0.2)
        self.start()
        data = b"".join(self.line(p) for p in self.sent)
        return self.write(data, deadline)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--mode", choices=["lines", "jsonl"], required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--queue")
    g.add_argument("--topic")
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop", required=True, help="stop sending once this file exists")
    ap.add_argument("--rate", type=float, default=500, help="messages a second; 0: as fast as mom-pub takes them")
    ap.add_argument("--max", type=int, default=1000000)
    ap.add_argument("--time", type=float, default=150, help="seconds, at most, of sending")
    ap.add_argument("--end-wait", type=float, default=90)
    ap.add_argument("--pub", default="mom-pub")
    a = ap.parse_args()

    s = Stream(a)
    t0 = time.monotonic()
    deadline = t0 + a.time
    s.start()
    n = 0
    alive = True
    while n < a.max and not os.path.exists(a.stop) and time.monotonic() < deadline:
        if a.rate > 0:
            due = min(a.max, int((time.monotonic() - t0) * a.rate) + 1)
        else:
            due = min(a.max, n + 200)
        chunk = []
        while n < due:
            n += 1
            p = "%s-%07d" % (a.name, n)
            s.sent.append(p)
            s.sentf.write(p + "\n")
            chunk.append(s.line(p))
        s.sentf.flush()
        if chunk and not s.write(b"".join(chunk), deadline):
            st = s.finish(5)
            if not s.restartable(st):
                alive = False
                break
            while not s.restart(deadline):
                st = s.finish(5)
                if not s.restartable(st) or time.monotonic() > deadline:
                    alive = False
                    break
            if not alive:
                break
        if a.rate > 0:
            time.sleep(0.02)
    if alive:
        st = s.finish(a.end_wait)
        while s.restartable(st) and time.monotonic() < deadline + a.end_wait:
            s.restart(deadline + a.end_wait)
            st = s.finish(a.end_wait)
    st = s.statuses[-1]
    res = {
        "name": a.name, "mode": a.mode,
        "kind": "queue" if a.queue else "topic", "target": a.queue or a.topic,
        "sent": len(s.sent), "runs": len(s.statuses), "statuses": s.statuses,
        "status": st, "confirmed": st == 0,
    }
    with open(os.path.join(a.out, a.name + ".result"), "w") as f:
        json.dump(res, f)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

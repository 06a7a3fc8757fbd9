#!/usr/bin/env python3
"""durcheck.py: did the broker keep what it confirmed, exactly once?

usage: durcheck.py --out DIR --got TARGET FILE [--got TARGET FILE]...

DIR holds what pubdrive.py wrote (NAME.sent, NAME.result, NAME.stderr).
Each --got names a file of payloads, one a line, read back from TARGET
(a queue drained with mom-sub, or a topic read through a subscription);
FILE.status and FILE.err, when present, hold the exit status and
standard error of the mom-sub that read it.  Each file is checked on its
own against the publishers of its target:

  LOSS       a confirmed message (its publisher's mom-pub exited 0) is
             not there
  DUPLICATE  a message is there more than once
  UNKNOWN    a payload no publisher of this target sent
  ORDER      a publisher's messages are out of the order it sent them
             (only for a publisher whose mom-pub ran once: a restarted
             --jsonl stream resends)
  PUBLISHER  a publisher's mom-pub did not exit 0 (nothing of it counts
             as confirmed then), or sent nothing
  READ       the mom-sub that read a target failed

Prints a summary line per publisher and target, then one line per
problem (at most 20 payloads each), and exits 0 when there is none, 1
otherwise.
"""
import argparse
import collections
import glob
import json
import os
import sys

SHOW = 20


def show(xs):
    xs = sorted(xs)
    s = " ".join(xs[:SHOW])
    return s + (" ... (%d in all)" % len(xs) if len(xs) > SHOW else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--got", nargs=2, action="append", metavar=("TARGET", "FILE"), default=[])
    a = ap.parse_args()

    pubs = []
    for rf in sorted(glob.glob(os.path.join(a.out, "*.result"))):
        with open(rf) as f:
            r = json.load(f)
        with open(os.path.join(a.out, r["name"] + ".sent")) as f:
            r["lines"] = f.read().splitlines()
        try:
            with open(os.path.join(a.out, r["name"] + ".stderr"), errors="replace") as f:
                r["err"] = f.read().strip().splitlines()
        except OSError:
            r["err"] = []
        pubs.append(r)

    problems = []
    if not pubs:
        problems.append("PUBLISHER no publisher left a result in %s" % a.out)
    for r in pubs:
        if not r["confirmed"]:
            # mom-pub's own lines first (a sanitizer's report comes after them)
            own = [l for l in r["err"] if l.startswith("mom-pub:") or "runtime error" in l]
            last = " | ".join(own[-3:] or r["err"][-3:]) if r["err"] else "(nothing on stderr)"
            problems.append("PUBLISHER %s: mom-pub exited %s (runs: %s), so none of its %d messages "
                            "counts as confirmed; its last words: %s"
                            % (r["name"], r["status"], r["statuses"], r["sent"], last))
        elif r["sent"] == 0:
            problems.append("PUBLISHER %s sent nothing: the test proves nothing" % r["name"])

    for target, path in a.got:
        label = "%s (%s)" % (target, os.path.basename(path))
        try:
            with open(path, errors="surrogateescape") as f:
                got = f.read().splitlines()
        except OSError as e:
            problems.append("READ %s: %s" % (label, e))
            continue
        if os.path.exists(path + ".status"):
            with open(path + ".status") as f:
                st = f.read().strip()
            if st != "0":
                err = ""
                if os.path.exists(path + ".err"):
                    with open(path + ".err", errors="replace") as f:
                        err = f.read().strip().replace("\n", " | ")
                problems.append("READ %s: mom-sub exited %s: %s" % (label, st, err))
        counts = collections.Counter(got)
        mine = [r for r in pubs if r["target"] == target]
        known = set()
        for r in mine:
            sent = set(r["lines"])
            known |= sent
            found = [p for p in sent if counts[p] > 0]
            dups = [p for p in sent if counts[p] > 1]
            missing = [p for p in r["lines"] if counts[p] == 0] if r["confirmed"] else []
            print("%s -> %s: sent %d, mom-pub %s, found %d, missing %s, duplicated %d"
                  % (r["name"], label, r["sent"],
                     "confirmed all" if r["confirmed"] else "exited %s" % r["status"],
                     len(found), len(missing) if r["confirmed"] else "(unknown)", len(dups)))
            if missing:
                problems.append("LOSS %s: %d confirmed messages of %s missing: %s"
                                % (label, len(missing), r["name"], show(missing)))
            if dups:
                problems.append("DUPLICATE %s: %d messages of %s more than once: %s"
                                % (label, len(dups), r["name"],
                                   show("%s(x%d)" % (p, counts[p]) for p in dups)))
            if r["runs"] == 1:
                seen, last, bad = set(), "", []
                for p in got:
                    if p in sent and p not in seen:
                        seen.add(p)
                        if p < last:
                            bad.append("%s-after-%s" % (p, last))
                        last = max(last, p)
                if bad:
                    problems.append("ORDER %s: %d messages of %s out of order: %s"
                                    % (label, len(bad), r["name"], show(bad)))
        strangers = [p for p in counts if p not in known]
        if strangers:
            problems.append("UNKNOWN %s: %d payloads nobody sent: %s"
                            % (label, len(strangers), show(repr(p) for p in strangers)))

    for p in problems:
        print(p)
    if not problems:
        print("ok: every confirmed message is there exactly once")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""log-inventory.py: what a mom-broker data directory holds, decoded
independently of the broker's C code.

usage: log-inventory.py [--require] DATADIR

Reads DATADIR/snap (the libraft snapshot file written by rio.c, which
wraps the fsm snapshot of fsm.c) and DATADIR/seg-*.log (store.h: records
of u32 length, u32 CRC-32C, u64 index, u64 term, u8 type, payload), and
prints:

  - the snapshot: its index and a count of what the fsm snapshot holds
    (messages with ids, headers, TTLs, delays; queues with a dead-letter
    queue, options; topics; subscriptions; producers; publisher ids);
  - the log entries the snapshot does not cover (index > snapshot index),
    with the command kinds (CMD_PUBLISH, CMD_ADMIN, CMD_SETTLE, CMD_TICK of
    src/mom-broker/state/fsm.h), the admin ops ("op" of CMD_ADMIN, as
    apply_admin in fsm.c dispatches them) and the settlement kinds
    (enum mq_how of mq.h) they hold.

With --require it exits 1 unless there is a snapshot and the log after it
holds every command kind, every admin op and every settlement kind: the
check make-v1-datadir.sh makes of the fixture it wrote.

CRCs are not checked here (the broker does that); this only reads.
"""
import glob
import json
import os
import struct
import sys

CMD = {1: "publish", 2: "admin", 3: "settle", 4: "tick"}
ADMIN_OPS = ["queue.create", "queue.delete", "queue.purge", "queue.move",
             "topic.create", "topic.delete", "sub.create", "sub.delete"]
HOW = {1: "ack", 2: "dead", 3: "expire", 4: "drop"}
PF_TARGET, PF_ID, PF_TTL, PF_DELAY, PF_HEADERS = 1, 2, 4, 8, 16


class Rd:
    def __init__(self, b, off=0):
        self.b, self.off = b, off

    def u8(self):
        v = self.b[self.off]
        self.off += 1
        return v

    def le(self, n):
        v = int.from_bytes(self.b[self.off:self.off + n], "little")
        self.off += n
        return v

    def varint(self):
        v = shift = 0
        while True:
            c = self.u8()
            v |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return v

    def bytes(self):
        n = self.varint()
        v = self.b[self.off:self.off + n]
        if len(v) != n:
            raise ValueError("cut short")
        self.off += n
        return v

    def opt(self):
        return self.bytes() if self.u8() else None

    def done(self):
        return self.off >= len(self.b)


def read_snap(path):
    """The snapshot file: (index, summary dict) or (0, None)."""
    if not os.path.exists(path):
        return 0, None
    b = open(path, "rb").read()
    if b[:8] != b"MOMSNAP1":
        raise ValueError(f"{path}: bad magic")
    r = Rd(b, 8)
    index, _term, _cidx = r.le(8), r.le(8), r.le(8)
    for _ in range(r.le(4)):
        r.le(8), r.le(4)
        alen = r.le(4)
        r.off += alen
    dlen = r.le(8)
    data = b[r.off:r.off + dlen]
    if data[:4] != b"MSNP":
        raise ValueError(f"{path}: bad fsm snapshot magic")
    ver = int.from_bytes(data[4:8], "little")
    blen = int.from_bytes(data[8:16], "little")
    f = Rd(data[16:16 + blen])
    s = {"index": index, "fsm_version": ver, "fsm_bytes": len(data)}
    s["next_seq"], s["last_time"] = f.varint(), f.varint()
    s["published"], s["duplicates"], s["dead_dropped"] = f.varint(), f.varint(), f.varint()
    m = {"n": 0, "queue": 0, "topic": 0, "id": 0, "headers": 0, "expires": 0, "delayed": 0}
    for _ in range(f.varint()):
        f.varint()
        f.varint()
        exp, nb = f.varint(), f.varint()
        kind = f.u8()
        f.bytes()
        mid, hdr = f.bytes(), f.bytes()
        f.bytes()
        m["n"] += 1
        m["queue" if kind == 1 else "topic"] += 1
        m["id"] += bool(mid)
        m["headers"] += bool(hdr)
        m["expires"] += bool(exp)
        m["delayed"] += bool(nb)
    s["messages"] = m

    def mq():
        cfg = [f.varint() for _ in range(5)] + [f.u8()]
        st = [f.varint() for _ in range(7)]
        ready = [(f.varint(), f.varint()) for _ in range(f.varint())]
        delayed = [(f.varint(), f.varint(), f.varint()) for _ in range(f.varint())]
        return {"ack_wait_ms": cfg[0], "max_deliver": cfg[1], "ttl_ms": cfg[2],
                "max_len": cfg[3], "max_bytes": cfg[4], "drop_head": cfg[5],
                "published": st[0], "delivered": st[1], "acked": st[2],
                "redelivered": st[3], "dead_lettered": st[4], "expired": st[5],
                "dropped": st[6], "ready": len(ready),
                "ready_redelivery": sum(1 for _, d in ready if d > 0),
                "delayed": len(delayed)}
    s["queues"] = {}
    for _ in range(f.varint()):
        name = f.bytes().decode()
        dl, _owner = f.opt(), f.opt()
        f.varint()
        q = mq()
        q["dead_letter"] = dl.decode() if dl is not None else None
        s["queues"][name] = q
    s["topics"] = {}
    for _ in range(f.varint()):
        name = f.bytes().decode()
        f.opt()
        f.varint()
        t = {"retain_ms": f.varint(), "retain_bytes": f.varint(), "published": f.varint()}
        t["retained"] = len([f.varint() for _ in range(f.varint())])
        s["topics"][name] = t
    s["subs"] = {}
    for _ in range(f.varint()):
        pat, name = f.bytes().decode(), f.bytes().decode()
        durable = f.u8()
        f.opt()
        f.varint(), f.varint(), f.varint()
        q = mq()
        q["durable"] = durable
        s["subs"][f"{pat} {name}"] = q
    nprod = f.varint()
    for _ in range(nprod):
        f.varint(), f.varint()
        for _ in range(f.varint()):
            f.varint(), f.varint()
    s["producers"] = nprod
    nids = f.varint()
    for _ in range(nids):
        f.varint()
        f.bytes()
    s["ids"] = nids
    if not f.done():
        raise ValueError(f"{path}: {len(f.b) - f.off} bytes left after the fsm snapshot")
    return index, s


def read_log(d):
    """Every record of the segments: (index, type, payload), in order."""
    out = []
    for seg in sorted(glob.glob(os.path.join(d, "seg-*.log"))):
        b = open(seg, "rb").read()
        off = 0
        while off + 8 <= len(b):
            n = int.from_bytes(b[off:off + 4], "little")
            body = b[off + 8:off + 8 + n]
            if len(body) != n:
                break
            index, _term, typ = struct.unpack_from("<QQB", body)
            out.append((index, typ, body[17:]))
            off += 8 + n
    return out


def tally(entries):
    t = {"entries": len(entries), "commands": {}, "admin": {},
         "settle": {}, "publish_msgs": 0, "publish_ids": 0, "publish_headers": 0,
         "publish_ttl": 0, "publish_delay": 0, "publish_multi_target": 0,
         "raft_types": {}}
    for _index, typ, payload in entries:
        t["raft_types"][typ] = t["raft_types"].get(typ, 0) + 1
        if typ != 1:  # RAFT_COMMAND; barriers and configuration changes carry no command
            continue
        r = Rd(payload)
        for _ in range(r.varint()):
            c = Rd(r.bytes())
            kind = c.u8()
            c.varint()  # time
            body = c.b[c.off:]
            name = CMD.get(kind, f"unknown-{kind}")
            t["commands"][name] = t["commands"].get(name, 0) + 1
            if kind == 2:
                op = json.loads(body).get("op", "?")
                t["admin"][op] = t["admin"].get(op, 0) + 1
            elif kind == 3:
                s = Rd(body)
                for _ in range(s.varint()):
                    k = s.u8()
                    s.bytes()
                    if k == 2:
                        s.bytes()
                    s.varint()
                    how = HOW.get(s.u8(), "?")
                    t["settle"][how] = t["settle"].get(how, 0) + 1
            elif kind == 1:
                p = Rd(body)
                p.varint(), p.varint(), p.u8(), p.bytes()
                for _ in range(p.varint()):
                    fl = p.varint()
                    if fl & PF_TARGET:
                        p.u8()
                        p.bytes()
                        t["publish_multi_target"] += 1
                    if fl & PF_ID:
                        p.bytes()
                        t["publish_ids"] += 1
                    if fl & PF_TTL:
                        p.varint()
                        t["publish_ttl"] += 1
                    if fl & PF_DELAY:
                        p.varint()
                        t["publish_delay"] += 1
                    if fl & PF_HEADERS:
                        p.bytes()
                        t["publish_headers"] += 1
                    p.bytes()
                    t["publish_msgs"] += 1
    return t


def main():
    args = sys.argv[1:]
    require = "--require" in args
    args = [a for a in args if a != "--require"]
    if len(args) != 1:
        sys.exit("usage: log-inventory.py [--require] DATADIR")
    d = args[0]
    sidx, snap = read_snap(os.path.join(d, "snap"))
    entries = read_log(d)
    before = [e for e in entries if e[0] <= sidx]
    after = [e for e in entries if e[0] > sidx]
    rep = {"snapshot": snap,
           "log": {"first_index": entries[0][0] if entries else None,
                   "last_index": entries[-1][0] if entries else None,
                   "covered_by_snapshot": len(before)},
           "after_snapshot": tally(after)}
    print(json.dumps(rep, indent=1, sort_keys=True))
    if require:
        missing = []
        if snap is None:
            missing.append("a snapshot")
        a = rep["after_snapshot"]
        missing += [f"command {c}" for c in CMD.values() if c not in a["commands"]]
        missing += [f"admin op {o}" for o in ADMIN_OPS if o not in a["admin"]]
        missing += [f"settlement {h}" for h in HOW.values() if h not in a["settle"]]
        missing += [f"published message with {k}" for k in
                    ("ids", "headers", "ttl", "delay")
                    if not a["publish_" + k]]
        if missing:
            print("log-inventory: missing after the snapshot: " + ", ".join(missing),
                  file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()

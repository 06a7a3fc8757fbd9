#!/usr/bin/env python3
"""doc-examples.py: run the examples of mom's documents (use-examples.bats).

    doc-examples.py --root DIR --table FILE --work DIR --url URL --http HOST:PORT DOC...
    doc-examples.py --list DOC...

Examples are read from the documents when the test runs, so that a new
example is run without touching the test: in Markdown, ```sh fenced blocks
and indented blocks (an indented block whose commands start with "$ " is a
transcript: what follows a command up to the next one is its output); in
mdoc, the .Bd -literal blocks under .Sh EXAMPLES.  The default addresses
(tcp://127.0.0.1:7420, 127.0.0.1:7421, localhost:7421) become the test
broker's.  Each block runs in a fresh bash in the document's work directory
(blocks of one document share it and the broker, as a reader following the
text does); a crontab line runs its command.

What a block is checked for: every command exits 0 (commands that bash
treats as conditions excepted; curl fails on an HTTP error), unless a trailing comment says otherwise
("exits 65", "exit 77", "prints 2.5", ': "moved 1 message"'); a
transcript's output is compared with the text (blanks collapsed, hex ids of
8 digits or more and the order of lines of stdout and stderr aside).

The table (FILE) says what cannot run here and why; its lines are
    DOC :: SCOPE :: WHAT :: WHY
with SCOPE block (skip each block with a command matching the regex WHAT),
line (skip the commands matching WHAT), forever (commands matching WHAT run
until interrupted: run them FOREVER_S seconds, a timeout is their success)
and given (run the shell command WHAT before the document's blocks: what
the document takes for granted).  DOC is a path relative to --root.

Output: one line per block ("ok", "skip" with the reason), and for each
failure "FAIL DOC:LINE: what" followed by the command's output, indented.
Exit status 1 when something failed, 2 on a usage or table error.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

BLOCK_S = int(os.environ.get("MOM_DOCX_BLOCK_S", "90"))  # a block still running then failed
FOREVER_S = 4       # how long a "forever" command runs
BROKER_WAIT_S = 15  # a broker an example starts must answer by then


def unescape_mdoc(s):
    s = s.replace("\\e", "\\").replace("\\&", "").replace("\\(aq", "'")
    s = s.replace("\\-", "-").replace("\\(dq", '"').replace("\\ ", " ")
    return s


def blocks_mdoc(path, text):
    out, sect, cur = [], None, None
    for n, line in enumerate(text.split("\n"), 1):
        if cur is not None:
            if line.startswith(".Ed"):
                out.append(cur)
                cur = None
            elif not line.startswith(".") or line.startswith(".\\\""):
                if not line.startswith(".\\\""):
                    cur["lines"].append((n, unescape_mdoc(line)))
            continue
        if line.startswith(".Sh "):
            sect = line[4:].strip().strip('"')
        elif sect == "EXAMPLES" and line.startswith(".Bd") and "-literal" in line:
            cur = {"doc": path, "line": n + 1, "kind": "sh", "lines": []}
    return out


def blocks_md(path, text):
    out, fence, ind = [], None, None
    lines = text.split("\n")
    prev_blank = True
    for n, line in enumerate(lines, 1):
        if fence is not None:
            if line.startswith("```"):
                if fence["kind"] == "sh":
                    out.append(fence)
                fence = None
            else:
                fence["lines"].append((n, line))
            continue
        if line.startswith("```"):
            lang = line[3:].strip()
            fence = {"doc": path, "line": n + 1,
                     "kind": "sh" if lang in ("sh", "shell", "bash", "console") else "other",
                     "lines": []}
            ind = None
            continue
        if line.startswith("    ") and (ind is not None or prev_blank):
            if ind is None:
                ind = {"doc": path, "line": n, "kind": "sh", "lines": []}
                out.append(ind)
            ind["lines"].append((n, line[4:]))
        elif line.strip() == "" and ind is not None:
            ind["lines"].append((n, ""))
        else:
            ind = None
        prev_blank = line.strip() == ""
    res = []
    for b in out:
        while b["lines"] and b["lines"][-1][1] == "":
            b["lines"].pop()
        first = next((i for i, (_, t) in enumerate(b["lines"]) if t.startswith("$ ")), None)
        if first is None:
            res.append(b)
            continue
        # Commands before the first "$ " are run as they are (a setup).
        if any(t.strip() for _, t in b["lines"][:first]):
            res.append({"doc": path, "line": b["line"], "kind": "sh", "lines": b["lines"][:first]})
        res.append({"doc": path, "line": b["lines"][first][0], "kind": "transcript",
                    "lines": b["lines"][first:]})
    return [b for b in res if b["lines"]]


def extract(root, doc):
    with open(os.path.join(root, doc), encoding="utf-8") as f:
        text = f.read()
    if doc.endswith(".md"):
        return blocks_md(doc, text)
    return blocks_mdoc(doc, text)


def complete(text):
    """True when text is one or more complete shell commands."""
    s = text.rstrip()
    if s.endswith("\\") or s.endswith("|") or s.endswith("&&") or s.endswith("||"):
        return False
    r = subprocess.run(["bash", "-n"], input=text + "\n", text=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def units(block):
    """The block's commands: (first line, text), a command spanning lines
    with its continuations, pipelines and compound statements."""
    out, acc, first = [], [], None
    for n, t in block["lines"]:
        if not acc and (t.strip() == "" or t.lstrip().startswith("#")):
            continue
        if not acc:
            first = n
        acc.append(t)
        if complete("\n".join(acc)):
            out.append((first, "\n".join(acc)))
            acc = []
    if acc:
        out.append((first, "\n".join(acc)))
    return out


def split_comment(t):
    """A single-line command and its trailing comment ("" when none)."""
    q = None
    for i, c in enumerate(t):
        if q:
            if c == q:
                q = None
            elif c == "\\" and q == '"':
                continue
        elif c in "'\"":
            q = c
        elif c == "#" and i > 0 and t[i - 1] in " \t":
            return t[:i].rstrip(), t[i + 1:].strip()
    return t, ""


def expectations(comment):
    e = {}
    m = re.search(r"\bexits? (\d+)\b", comment)
    if m:
        e["status"] = int(m.group(1))
    m = re.search(r"\bprints (\S+?)[,;]?(\s|$)", comment)
    if m:
        e["prints"] = m.group(1)
    m = re.search(r':\s*"([^"]+)"\s*$', comment)
    if m:
        e["contains"] = m.group(1)
    return e


CRON = re.compile(r"^\s*(@\w+|([0-9*/,-]+\s+){5})(?=\S)")


def load_table(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            p = [x.strip() for x in line.split(" :: ")]
            if len(p) != 4 or p[1] not in ("block", "line", "forever", "given"):
                sys.exit("doc-examples: %s:%d: want DOC :: block|line|forever|given :: WHAT :: WHY" % (path, n))
            if p[1] != "given":
                try:
                    re.compile(p[2])
                except re.error as ex:
                    sys.exit("doc-examples: %s:%d: %s" % (path, n, ex))
            rows.append({"doc": p[0], "scope": p[1], "what": p[2], "why": p[3], "used": False})
    return rows


def rows_for(table, doc, scope):
    return [r for r in table if r["doc"] == doc and r["scope"] == scope]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def kill_tree(pid):
    """Stop a block's shell and everything it started, by PID."""
    kids, todo, seen = children_map(), [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in seen:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.time() + 3
        while time.time() < deadline and any(os.path.exists("/proc/%d" % p) and
                                             not zombie(p) for p in seen):
            time.sleep(0.05)


def zombie(p):
    try:
        with open("/proc/%d/stat" % p) as f:
            st = f.read()
        return st[st.rindex(")") + 2] == "Z"
    except OSError:
        return True


def heredoc(text):
    return "$(cat <<'__MOM_UNIT__'\n%s\n__MOM_UNIT__\n)" % text


class Runner:
    def __init__(self, a):
        self.a = a
        self.table = load_table(a["table"])
        self.shells = []
        self.fails = 0
        self.seq = 0

    def rewrite(self, t):
        t = t.replace("tcp://127.0.0.1:7420", self.a["url"])
        t = t.replace("127.0.0.1:7421", self.a["http"]).replace("localhost:7421", self.a["http"])
        return t

    def prologue(self, out, env):
        return "\n".join([
            "cd %s || exit 1" % sq(self.a["work"]),
            "export PATH=%s/bin:$PATH" % sq(self.a["root"]),
        ] + ["export %s=%s" % (k, sq(v)) for k, v in env.items()] + [
            "__O=%s" % sq(out),
            "__mom_err() { printf '%s %s\\n' \"$__L\" \"$1\" >>\"$__O.err\"; }",
            "trap '__mom_err $?' ERR",
            # A reader sees an HTTP error in curl's output; curl exits 0.
            "curl() { command curl -sS --fail-with-body \"$@\"; }",
            "__mom_wait_broker() { local i; for ((i = 0; i < %d; i++)); do"
            " timeout 2 mom-admin -W 1s --quiet ping >/dev/null 2>&1 && return 0; sleep 0.1; done;"
            " echo 'no broker answers' >&2; return 1; }" % (BROKER_WAIT_S * 10),
            ""])

    def unit_script(self, doc, n, t, kind):
        """The script text of one command, and what to check afterwards."""
        self.seq += 1
        k = self.seq
        # The marker starts a line even after output without a newline.
        mark = "__L=%d; printf '\\n@@ %d\\n'\n" % (n, n)
        if kind == "transcript":
            return mark + ("trap - ERR; eval \"%s\" >\"$__O.%d.out\" 2>&1 </dev/null;"
                           " echo $? >\"$__O.%d.st\"; trap '__mom_err $?' ERR\n"
                           % (heredoc(t), k, k)), k
        if matches(rows_for(self.table, doc, "line"), t):
            return mark + ": skipped\n", None
        if CRON.match(t):
            t = CRON.sub("", t).replace("\\%", "%")
        if matches(rows_for(self.table, doc, "forever"), t):
            return mark + ("trap - ERR; timeout %d bash -c \"%s\" </dev/null; __st=$?;"
                           " trap '__mom_err $?' ERR; [ $__st = 0 ] || [ $__st = 124 ] ||"
                           " __mom_err $__st\n" % (FOREVER_S, heredoc(t))), None
        if re.search(r"(^|[\s/])mom-broker\s", t) and t.rstrip().endswith("&"):
            t = re.sub(r"mom-broker(\s)", "mom-broker -l \"$MOM_URL\" --http \"$__MOM_HTTP\"\\1", t, count=1)
            return mark + t + "\n__mom_wait_broker\n", None
        cmd, comment = split_comment(t) if "\n" not in t else (t, "")
        exp = expectations(comment)
        if not exp:
            return mark + t + "\n", None
        self.expect[k] = exp
        return mark + ("trap - ERR; eval \"%s\" >\"$__O.%d.out\" 2>\"$__O.%d.errout\";"
                       " echo $? >\"$__O.%d.st\"; trap '__mom_err $?' ERR;"
                       " cat \"$__O.%d.out\" \"$__O.%d.errout\"\n"
                       % (heredoc(cmd), k, k, k, k, k)), k

    def run_block(self, b, label=None):
        doc = b["doc"]
        label = label or "%s:%d" % (doc, b["line"])
        for r in rows_for(self.table, doc, "block"):
            if any(matches([r], self.rewrite(t)) for _, t in units(b)):
                print("skip %s: %s" % (label, r["why"]))
                return
        self.seq += 1
        out = os.path.join(self.a["tmp"], "b%d" % self.seq)
        env = {}
        self.expect, checks = {}, []
        body = ""
        for n, t in units(b):
            t = self.rewrite(t)
            if re.search(r"(^|[\s/])mom-broker\s", t) and not any(
                    re.search(r["what"], t) for r in rows_for(self.table, doc, "line")) \
                    and t.rstrip().endswith("&"):
                if "MOM_URL" not in env:
                    env["MOM_URL"] = "tcp://127.0.0.1:%d" % free_port()
                    env["__MOM_HTTP"] = "127.0.0.1:%d" % free_port()
            s, k = self.unit_script(doc, n, t, "sh")
            body += s
            if k is not None:
                checks.append((n, t, k))
        script = self.prologue(out, env) + body + "echo $? >\"$__O.done\"\nwait\n"
        self.exec_block(label, doc, script, out, checks)

    def run_transcript(self, b):
        doc = b["doc"]
        label = "%s:%d" % (doc, b["line"])
        self.seq += 1
        out = os.path.join(self.a["tmp"], "b%d" % self.seq)
        cmds = []
        for n, t in b["lines"]:
            if t.startswith("$ "):
                cmds.append([n, t[2:], []])
            elif cmds:
                cmds[-1][2].append(t)
        body, self.expect, checks = "", {}, []
        for n, t, want in cmds:
            s, k = self.unit_script(doc, n, self.rewrite(t), "transcript")
            body += s
            self.expect[k] = {"transcript": want}
            checks.append((n, t, k))
        script = self.prologue(out, {}) + body + "echo $? >\"$__O.done\"\nwait\n"
        self.exec_block(label, doc, script, out, checks)

    def exec_block(self, label, doc, script, out, checks):
        with open(out + ".sh", "w") as f:
            f.write(script)
        log = open(out + ".log", "w")
        p = subprocess.Popen(["bash", out + ".sh"], stdin=subprocess.DEVNULL,
                             stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.shells.append(p)
        deadline = time.time() + BLOCK_S
        while not os.path.exists(out + ".done") and p.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        text = read(out + ".log")
        bad = []
        if not os.path.exists(out + ".done"):
            cur = re.findall(r"^@@ (\d+)$", text, re.M)
            at = cur[-1] if cur else "?"
            why = "did not finish within %d s" % BLOCK_S if p.poll() is None else \
                "the shell ended early (status %s)" % p.returncode
            bad.append((at, why, unit_output(text, at)))
            kill_tree(p.pid)
        for ln in read(out + ".err").splitlines():
            n, st = ln.split(" ", 1)
            bad.append((n, "exit status %s" % st, unit_output(text, n)))
        for n, t, k in checks:
            e = self.expect[k]
            st = read("%s.%d.st" % (out, k)).strip()
            got = read("%s.%d.out" % (out, k))
            err = read("%s.%d.errout" % (out, k))
            if st == "":
                continue    # not reached: reported above
            if "transcript" in e:
                want = e["transcript"]
                if not same_output(want, got.rstrip("\n").split("\n") if got else []):
                    bad.append((str(n), "$ %s: output differs from the document's:\n%s" %
                                (t, indent("\n".join(want))), got))
                continue
            if "status" in e and int(st) != e["status"]:
                bad.append((str(n), "exit status %s, the document says %d" % (st, e["status"]), got + err))
            elif "status" not in e and st != "0":
                bad.append((str(n), "exit status %s" % st, got + err))
            if "prints" in e and got.strip() != e["prints"]:
                bad.append((str(n), "printed %r, the document says %r" % (got.strip(), e["prints"]), got + err))
            if "contains" in e and e["contains"] not in got + err:
                bad.append((str(n), "no %r in the output" % e["contains"], got + err))
        if not bad:
            print("ok %s" % label)
            return
        for n, why, o in bad:
            self.fails += 1
            print("FAIL %s:%s: %s" % (doc, n, why))
            print(indent(o.rstrip("\n")[-3000:] or "(no output)"))

    def run_given(self, doc):
        rows = rows_for(self.table, doc, "given")
        if not rows:
            return
        lines = [(0, r["what"]) for r in rows]
        self.run_block({"doc": doc, "line": 0, "kind": "sh", "lines": lines},
                       label="%s (given)" % doc)

    def run(self, docs):
        for doc in docs:
            bl = extract(self.a["root"], doc)
            if not bl:
                self.fails += 1
                print("FAIL %s:1: no examples found" % doc)
                continue
            self.run_given(doc)
            for b in bl:
                if b["kind"] == "transcript":
                    self.run_transcript(b)
                else:
                    self.run_block(b)
            for r in self.table:
                if r["doc"] == doc and r["scope"] != "given" and not r["used"]:
                    print("note %s: no example matches %r (%s): stale entry?" % (doc, r["what"], r["scope"]))
        for p in self.shells:
            kill_tree(p.pid)
            p.wait()
        return 1 if self.fails else 0


def matches(rows, t):
    """Whether a row's regex matches t; a row that matched is in use."""
    hit = False
    for r in rows:
        if re.search(r["what"], t):
            r["used"] = hit = True
    return hit


def norm(lines):
    out = []
    for ln in lines:
        ln = re.sub(r"[0-9a-f]{8,}", "<hex>", ln)
        out.append(" ".join(ln.split()))
    while out and out[-1] == "":
        out.pop()
    return out


def same_output(want, got):
    w, g = norm(want), norm(got)
    # stdout and stderr share the file: their order is the stdio buffers'.
    return w == g or sorted(w) == sorted(g)


def unit_output(text, n):
    m = re.search(r"^@@ %s\n(.*?)(?=^@@ \d+$|\Z)" % re.escape(str(n)), text, re.M | re.S)
    return m.group(1) if m else text[-2000:]


def indent(s):
    return "\n".join("    " + x for x in s.split("\n"))


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def sq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main(argv):
    a, docs, i = {}, [], 0
    while i < len(argv):
        if argv[i] in ("--root", "--table", "--work", "--url", "--http", "--tmp"):
            a[argv[i][2:]] = argv[i + 1]
            i += 2
        elif argv[i] == "--list":
            a["list"] = True
            i += 1
        else:
            docs.append(argv[i])
            i += 1
    if a.get("list"):
        root = a.get("root", ".")
        for d in docs:
            for b in extract(root, d):
                print("%s:%d %s" % (d, b["line"], b["kind"]))
                for n, t in units(b):
                    print("  %d: %s" % (n, t.replace("\n", "\n     ")))
        return 0
    for k in ("root", "table", "work", "url", "http"):
        if k not in a:
            print("usage: doc-examples.py --root DIR --table FILE --work DIR --url URL --http HOST:PORT DOC...",
                  file=sys.stderr)
            return 2
    a.setdefault("tmp", a["work"] + ".run")
    os.makedirs(a["tmp"], exist_ok=True)
    os.makedirs(a["work"], exist_ok=True)
    return Runner(a).run(docs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

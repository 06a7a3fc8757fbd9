# helpers.bash: shared setup for mom's end-to-end tests.
#
# Each test gets its own temporary directory ($T) and, through
# start_broker, its own broker on a free loopback port, stopped by PID in
# teardown.  Background processes close fd 3 (3>&-) or bats waits for them.
# Every wait is a bounded poll; every client that could hang runs under
# timeout(1).

bats_load_library bats-support
bats_load_library bats-assert

E2E_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$E2E_ROOT/bin:$PATH"
# No user configuration leaks into the tests.
export XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/xdg-none"
unset MOM_TOKEN MOM_TOKEN_FILE

# Seconds a client command may take before the test calls it hung.
TMO=${MOM_E2E_TIMEOUT:-20}

BROKER_PID=
BG_PIDS=()

# free_port: a TCP port the kernel just handed out, now free again.
free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

setup() {
	T="$BATS_TEST_TMPDIR"
	cd "$T" || return 1
}

# start_broker [BROKER OPTIONS...]: a broker on a free port with its own
# data dir; exports MOM_URL and PORT; waits for ping (see wait_ping).
start_broker() {
	PORT=$(free_port)
	export PORT
	export MOM_URL="tcp://127.0.0.1:$PORT"
	mom-broker -D "$T/data" -l "$MOM_URL" "$@" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL"
}

# wait_ping URL: poll mom-admin ping until it answers, for at most
# MOM_E2E_START seconds (default 10: a loaded CI machine is slow to start
# processes); shows the broker log when it never does.
wait_ping() {
	local deadline=$(($(ms_now) + ${MOM_E2E_START:-10} * 1000)) i
	for ((i = 0; i < 400; i++)); do
		if timeout 2 mom-admin -s "$1" -W 1s --quiet ping >/dev/null 2>&1; then
			return 0
		fi
		if [ -n "$BROKER_PID" ] && ! kill -0 "$BROKER_PID" 2>/dev/null; then
			break
		fi
		(($(ms_now) < deadline)) || break
		sleep 0.05
	done
	echo "# no broker answers on $1; broker log:" >&3
	sed 's/^/# /' "$T/broker.log" >&3 2>/dev/null || true
	return 1
}

# stop_pid PID [SIGNAL]: signal a process we started and reap it (bounded).
stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null || return 0
	kill -"$sig" "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 250; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	return 0
}

# bg PROGRAM ARGS...: start a background process that teardown kills by
# PID.  PROGRAM must be a program, not a wrapper such as pub or timeout:
# kill -9 would hit the wrapper and orphan the client.
bg() {
	"$@" 3>&- &
	BG_PIDS+=($!)
}

# tmp_release: a test that passed leaves nothing behind.  bats keeps every
# test's directory until the end of the run, and brokers' data directories
# (each with its 64 MiB reserve) made the suite need tens of GB of /tmp at
# its end: a CI run on a disk with less ran out in its last file.  A failed
# test's directory stays for a look.  Called at the end of every teardown.
tmp_release() {
	if [ "${BATS_TEST_COMPLETED:-}" = 1 ] && [ -n "${BATS_TEST_TMPDIR:-}" ]; then
		cd / && rm -rf "${BATS_TEST_TMPDIR:?}"
	fi
	return 0
}

teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		stop_pid "$p" KILL
	done
	BG_PIDS=()
	if [ -n "$BROKER_PID" ]; then
		stop_pid "$BROKER_PID" TERM
		BROKER_PID=
	fi
	# A broker that crashed or asserted shows up here.
	if [ -f "$T/broker.log" ] && grep -qiE 'assert|sanitizer|segfault|panic' "$T/broker.log"; then
		echo "# broker log shows a crash:" >&3
		sed 's/^/# /' "$T/broker.log" >&3
		return 1
	fi
	tmp_release
}

# Client wrappers with a time limit.
pub() { timeout "$TMO" mom-pub "$@"; }
sub() { timeout "$TMO" mom-sub "$@"; }
admin() { timeout "$TMO" mom-admin "$@"; }

# qcreate NAME [OPTIONS]: create a queue, failing loudly.
qcreate() { admin queue create "$@"; }
tcreate() { admin topic create "$@"; }

# qfield QUEUE KEY: one field of `mom-admin --json queue info`.
qfield() {
	admin --json queue info "$1" | jq -r ".$2"
}

# wait_for SECONDS CMD...: poll CMD every 0.05 s until it succeeds.
wait_for() {
	local limit=$1 i n
	shift
	n=$((limit * 20))
	for ((i = 0; i < n; i++)); do
		if "$@"; then return 0; fi
		sleep 0.05
	done
	return 1
}

# qfield_is QUEUE KEY VALUE: for wait_for.
qfield_is() { [ "$(qfield "$1" "$2" 2>/dev/null)" = "$3" ]; }

# ms_now: milliseconds, monotonic enough for bounds.
ms_now() { date +%s%3N; }

# no_assertion: $output and $stderr carry no C assertion or sanitizer text.
refute_crash_text() {
	refute_output --regexp 'Assertion|assert\(|AddressSanitizer|runtime error|Segmentation|core dumped'
}

# one_error_line PROGRAM: $output is exactly one line "PROGRAM: ...".
assert_one_error_line() {
	local prog=$1
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^$prog: .+"
	refute_crash_text
}

# randbytes N [FILE]: N random bytes with no NUL.
randbytes_nonul() {
	head -c $(($1 * 2 + 4096)) /dev/urandom | tr -d '\000' | head -c "$1"
}

# assert_usage_error PROG: after `run --separate-stderr`, exit 64, stdout
# empty, and stderr is one error line "PROG: ..." (followed, at most, by
# the usage text), never an assertion.
assert_usage_error() {
	local prog=$1
	assert_equal "$status" 64
	assert_equal "$output" ""
	[[ "${stderr_lines[0]}" =~ ^$prog:\ .+ ]] || fail "first stderr line is not '$prog: ...': ${stderr_lines[0]}"
	if ((${#stderr_lines[@]} > 1)); then
		[[ "${stderr_lines[1]}" == usage:* ]] || fail "stderr has more than one error line: $stderr"
	fi
	[[ ! "$stderr" =~ Assertion|assert\(|Sanitizer|runtime\ error|Segmentation ]] || fail "crash text: $stderr"
}

# assert_one_line_error PROG STATUS: exit STATUS, stderr exactly one line
# "PROG: ...".
assert_one_line_error() {
	local prog=$1 want=$2
	assert_equal "$status" "$want"
	assert_equal "${#stderr_lines[@]}" 1
	[[ "${stderr_lines[0]}" =~ ^$prog:\ .+ ]] || fail "stderr is not '$prog: ...': $stderr"
}

# sp_garbage PORT MODE: speak to the broker's port like a broken nng peer.
# MODE raw: random bytes; req: a REQ handshake, then frames of garbage and
# mom-looking frames with random bodies and lengths.
sp_garbage() {
	timeout 20 python3 - "$1" "$2" <<'PY'
import os, random, socket, struct, sys
port, mode = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(int.from_bytes(os.urandom(4), "big"))
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.settimeout(0.3)
    return s
def send(s, b):
    try:
        s.sendall(b)
    except OSError:
        pass
for round in range(25):
    s = conn()
    if mode == "raw":
        send(s, os.urandom(rnd.randrange(1, 20000)))
    else:
        # nng SP handshake as a REQ (0x30) peer
        send(s, b"\x00SP\x00\x00\x30\x00\x00")
        try:
            s.recv(8)
        except OSError:
            pass
        for k in range(rnd.randrange(1, 6)):
            kind = rnd.randrange(5)
            rid = struct.pack(">I", 0x80000000 | rnd.randrange(1 << 31))
            if kind == 0:    # random body
                body = rid + os.urandom(rnd.randrange(0, 4000))
            elif kind == 1:  # mom header, any op, random rest
                body = rid + bytes([0x4d, 1, rnd.randrange(256), rnd.randrange(256)]) + os.urandom(rnd.randrange(0, 300))
            elif kind == 2:  # mom header, known op, short random rest
                body = rid + bytes([0x4d, 1, rnd.choice([1, 2, 3, 4]), 0]) + os.urandom(rnd.randrange(0, 64))
            elif kind == 3:  # varints claiming huge lengths
                body = rid + bytes([0x4d, 1, rnd.choice([2, 3, 4]), 0]) + b"\xff" * rnd.randrange(1, 12) + b"\x01"
            else:            # no request id at all
                body = os.urandom(rnd.randrange(0, 4))
            length = len(body)
            if rnd.random() < 0.15:
                length = rnd.choice([0xffffffffffffffff, 1 << 40, length + 1000])
            send(s, struct.pack(">Q", length) + body)
        try:
            s.recv(65536)
        except OSError:
            pass
    s.close()
PY
}

FLOOD="$E2E_ROOT/tests/tools/spflood.py"

# held_flood NAME ARGS...: spflood.py in the background, its stdin a fifo
# kept open (it holds its connections until the fifo closes); its output
# in $T/NAME.out.
held_flood() {
	local name=$1
	shift
	mkfifo "$T/$name.in"
	python3 "$FLOOD" "$@" <"$T/$name.in" >"$T/$name.out" 2>&1 3>&- &
	BG_PIDS+=($!)
	exec {HOLD_FD}>"$T/$name.in"
}

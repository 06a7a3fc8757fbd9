#!/usr/bin/env bats
# Attacks on the data directory (issue 11, items 8 and 9): a flipped bit
# in the last record after a clean stop and after a crash, a torn tail
# after a crash, mom-broker --repair, and a broker with a snapshot that
# restarts on a full disk (the fault-injection build's
# MOM_FAULT_ENOSPC_FILE: store writes fail with ENOSPC while the file
# exists, except for what giving up the reserve frees).

bats_require_minimum_version 1.5.0
load helpers

FAULT_BIN="$E2E_ROOT/build-fault/bin"
BROKER_BIN=mom-broker
BROKER_ENV=()

# up [BROKER OPTIONS...]: a broker on $MOM_URL (chosen once) and $T/data.
up() {
	if [ -z "${PORT:-}" ]; then
		PORT=$(free_port)
		export PORT MOM_URL="tcp://127.0.0.1:$PORT"
	fi
	env "${BROKER_ENV[@]}" "$BROKER_BIN" -D "$T/data" -l "$MOM_URL" --http off "$@" \
		>>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL"
}

# down TERM|KILL: a clean stop (which must exit 0) or a crash.
down() {
	local st=0
	if [ "$1" = TERM ]; then
		kill -TERM "$BROKER_PID"
		wait "$BROKER_PID" || st=$?
		((st == 0)) || fail "the broker exited $st on SIGTERM"
	else
		{ stop_pid "$BROKER_PID" KILL; } 2>/dev/null
	fi
	BROKER_PID=
}

# thousand: 1,000 confirmed messages in ten batches of 100 (ten log entries).
thousand() {
	qcreate jobs
	local i
	for ((i = 0; i < 10; i++)); do
		seq $((i * 100 + 1)) $((i * 100 + 100)) | pub -q jobs -l
	done
}

# last_record SEGMENT: the byte offset and length of its last record.
last_record() {
	python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], 'rb').read()
p = last = 0
while p + 8 <= len(b):
    (n,) = struct.unpack_from('<I', b, p)
    last = p
    p += 8 + n
print(last, p - last)
PY
}

# flip SEGMENT OFFSET: one bit of one byte.
flip() {
	python3 - "$1" "$2" <<'PY'
import sys
p, at = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[at] ^= 0x10
open(p, 'wb').write(bytes(b))
PY
}

# drain QUEUE: every ready message's payload, one a line, acknowledged.
drain() { sub -q "$1" -e -F '%p\n'; }

lastseg() { find "$T/data" -name 'seg-*.log' | sort | tail -n 1; }

# refused: the broker must refuse $T/data with exit 65, one line naming the
# file and the offset.
refused() {
	local seg=$1 off=$2
	run --separate-stderr timeout 20 mom-broker -D "$T/data" -l "$MOM_URL" --http off
	assert_equal "$status" 65
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == *"$(basename "$seg"): byte $off:"* ]] ||
		fail "the error does not name $(basename "$seg") and byte $off: $stderr"
	[[ "$stderr" == *--repair* ]] || fail "the error does not say how out: $stderr"
}

@test "a clean stop, then a flipped bit in the last record: refused (65, file and offset), not cut" {
	up
	thousand
	down TERM
	[ -f "$T/data/clean" ] || fail "no clean-stop record: $(ls "$T/data")"
	local seg off len
	seg=$(lastseg)
	read -r off len < <(last_record "$seg")
	# in the last batch of 100 messages, well inside its payload
	flip "$seg" $((off + len / 2))
	refused "$seg" "$off"
	# refused again: nothing was cut on the way
	refused "$seg" "$off"
	# the operator's way out: --repair cuts there and says what it drops
	run --separate-stderr timeout 20 mom-broker -D "$T/data" --repair
	assert_success
	[[ "$output" == *"cut at byte $off"* ]] || fail "$output"
	[[ "$output" =~ ([0-9]+)\ entries\ dropped ]] || fail "no entry count: $output"
	assert_equal "${BASH_REMATCH[1]}" 1
	up
	run -0 drain jobs
	assert_output "$(seq 1 900)"
}

@test "a crash, then a torn tail (the last record short, or zero-filled): cut, the rest served" {
	up
	thousand
	down KILL
	[ ! -f "$T/data/clean" ] || fail "a kill left a clean-stop record"
	local seg off len size
	seg=$(lastseg)
	read -r off len < <(last_record "$seg")
	size=$(stat -c %s "$seg")
	# the file ends inside the last record, as if the size update came late
	truncate -s $((size - 7)) "$seg"
	up
	grep -q "torn last record" "$T/broker.log" || fail "nothing logged: $(cat "$T/broker.log")"
	run -0 drain jobs
	assert_output "$(seq 1 900)"
	# and again with the last record's unwritten sectors read back as zeros
	seq 2001 2100 | pub -q jobs -l
	down KILL
	seg=$(lastseg)
	read -r off len < <(last_record "$seg")
	size=$(stat -c %s "$seg")
	python3 - "$seg" "$off" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
z = (off // 512 + 1) * 512  # from the first sector boundary inside the record
b[z:] = bytes(len(b) - z)
open(p, 'wb').write(bytes(b))
PY
	assert_equal "$(stat -c %s "$seg")" "$size"
	up
	run -0 drain jobs
	assert_output ""
}

@test "a crash, then a flipped bit in a whole last record: refused (65), not taken for a torn write" {
	up
	thousand
	down KILL
	local seg off len
	seg=$(lastseg)
	read -r off len < <(last_record "$seg")
	flip "$seg" $((off + len - 3))
	refused "$seg" "$off"
	run -0 timeout 20 mom-broker -D "$T/data" --repair
	[[ "$output" == *"with 0 messages"* ]] || fail "$output"
	run -0 timeout 20 mom-broker -D "$T/data" --repair
	assert_output --partial "nothing to repair"
}

@test "--repair with nothing to repair says so; in a configuration file it is refused (64)" {
	up
	thousand
	down TERM
	run -0 timeout 20 mom-broker -D "$T/data" --repair
	assert_output --partial "nothing to repair"
	printf 'data-dir %s\nrepair\n' "$T/data" >"$T/r.conf"
	run --separate-stderr timeout 5 mom-broker -c "$T/r.conf"
	assert_equal "$status" 64
	[[ "$stderr" == *--repair* ]] || fail "$stderr"
	# a clean stop's record went at the start: the data is served whole
	up
	assert_equal "$(qfield jobs messages)" 1000
}

@test "a full disk (fault build): a broker with a snapshot restarts, refuses publishes, drains, resumes" {
	[ -x "$FAULT_BIN/mom-broker" ] || skip "no fault-injection build: make fault"
	BROKER_BIN="$FAULT_BIN/mom-broker"
	BROKER_ENV=(MOM_FAULT_ENOSPC_FILE="$T/enospc")
	up --snapshot-after 4KiB --disk-reserve 1MiB
	thousand
	run -0 sub -q jobs -C 100 -F '%p\n'
	[ -f "$T/data/snap" ] || fail "no snapshot: $(ls "$T/data")"
	assert_equal "$(stat -c %s "$T/data/reserve")" 1048576
	down TERM
	touch "$T/enospc"
	# the start-up barrier is a write: it takes its place in the reserve
	up --snapshot-after 4KiB --disk-reserve 1MiB ||
		fail "no start on a full disk: $(cat "$T/broker.log")"
	grep -q "reserve" "$T/broker.log" || fail "the reserve's use is not logged: $(cat "$T/broker.log")"
	assert_equal "$(stat -c %s "$T/data/reserve")" 0
	run --separate-stderr pub -q jobs -m refused
	assert_equal "$status" 75
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == *"disk is full"* ]] || fail "$stderr"
	run --separate-stderr admin queue create more
	assert_equal "$status" 75
	# consumers drain: their acks are written into the reserve
	run -0 sub -q jobs -C 400 -F '%p\n'
	assert_output "$(seq 101 500)"
	assert_equal "$(qfield jobs messages)" 500
	# room again: the reserve comes back and publishes are taken
	rm "$T/enospc"
	run -0 pub -q jobs -m after
	grep -q "writes resume" "$T/broker.log" || fail "$(cat "$T/broker.log")"
	assert_equal "$(stat -c %s "$T/data/reserve")" 1048576
	down KILL
	up --snapshot-after 4KiB --disk-reserve 1MiB
	run -0 drain jobs
	assert_output "$(seq 501 1000; echo after)"
}

@test "mom-broker --disk-reserve: a bad size is a usage error (64); 0 keeps no reserve" {
	run --separate-stderr timeout 5 mom-broker -D "$T/data" --disk-reserve lots
	assert_equal "$status" 64
	[[ "$stderr" == *"--disk-reserve 'lots'"* ]] || fail "$stderr"
	up --disk-reserve 0
	[ ! -e "$T/data/reserve" ] || fail "a reserve with --disk-reserve 0"
	down TERM
	up
	assert_equal "$(stat -c %s "$T/data/reserve")" $((64 << 20))
}

#!/usr/bin/env bats
# mom-broker: options, listeners, data directory lock, signals, hostile input.

bats_require_minimum_version 1.5.0
load helpers

# wait_exit PID SECONDS: wait for a process we started to exit, bounded;
# sets $exit_status (or fails).
wait_exit() {
	local pid=$1 n=$(($2 * 50)) i
	for ((i = 0; i < n; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$pid" 2>/dev/null; then
		fail "process $pid still running after $2 s"
	fi
	exit_status=0
	wait "$pid" || exit_status=$?
}

@test "mom-broker -h prints usage on stdout and exits 0" {
	run --separate-stderr mom-broker -h
	assert_success
	assert_output --partial "usage: mom-broker"
	assert_equal "$stderr" ""
}

@test "mom-broker --version prints its version" {
	run --separate-stderr mom-broker --version
	assert_success
	assert_output --regexp '^mom-broker [0-9]+\.[0-9]+'
}

@test "mom-broker with an unknown option exits 64 with a 'mom-broker:' error" {
	run --separate-stderr timeout 5 mom-broker --bogus
	assert_usage_error mom-broker
}

@test "mom-broker with a bad --max-msg-size exits 64" {
	run --separate-stderr timeout 5 mom-broker -D "$T/data" --max-msg-size 0
	assert_one_line_error mom-broker 64
	run --separate-stderr timeout 5 mom-broker -D "$T/data" --max-msg-size 65M
	assert_one_line_error mom-broker 64
}

@test "mom-broker refuses a non-loopback listen address without --no-auth" {
	local port
	port=$(free_port)
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "tcp://0.0.0.0:$port"
	assert_one_line_error mom-broker 64
	assert_equal "${stderr_lines[0]}" "mom-broker: refusing to listen on tcp://0.0.0.0:$port without authentication (--auth-key PUBKEY, or --no-auth to allow it)"
	[ ! -e "$T/data" ] || [ -z "$(ls -A "$T/data")" ]
}

@test "mom-broker judges loopback by address, not by the look of the name" {
	local port
	port=$(free_port)
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "tcp://127.evil.example:$port"
	assert_one_line_error mom-broker 64
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "tcp://10.0.0.1:$port"
	assert_one_line_error mom-broker 64
}

@test "mom-broker listens on [::1] without --no-auth" {
	local port
	port=$(free_port)
	mom-broker -D "$T/data" -l "tcp://[::1]:$port" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "tcp://[::1]:$port"
}

@test "mom-broker starts, answers ping, and SIGTERM stops it with exit 0" {
	start_broker
	qcreate jobs
	pub -q jobs -m hello
	kill -TERM "$BROKER_PID"
	wait_exit "$BROKER_PID" 5
	BROKER_PID=
	assert_equal "$exit_status" 0
	grep -q 'stopped' "$T/broker.log"
}

@test "mom-broker SIGINT stops it with exit 0 while a consumer long-polls" {
	start_broker
	qcreate jobs
	bg mom-sub -q jobs -W 30 >/dev/null 2>&1
	wait_for 5 bash -c '[ "$(mom-admin --json stats | jq .waiting_consumers)" -ge 1 ]'
	kill -INT "$BROKER_PID"
	wait_exit "$BROKER_PID" 5
	BROKER_PID=
	assert_equal "$exit_status" 0
}

@test "mom-broker SIGHUP does not stop it" {
	start_broker
	kill -HUP "$BROKER_PID"
	sleep 0.2
	run admin ping
	assert_success
}

@test "a second broker on the same data directory fails while the first runs" {
	start_broker
	local port2
	port2=$(free_port)
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "tcp://127.0.0.1:$port2"
	assert_equal "$status" 1
	[[ "$stderr" =~ in\ use ]] || fail "no 'in use' in: $stderr"
	# What stops the broker is logged at level fatal (mom-broker(8), Logging).
	[[ "$stderr" =~ mom-broker\ fatal:\ data\ directory\ .*\ is\ in\ use ]] || fail "not fatal: $stderr"
	# The first one is unharmed.
	run admin ping
	assert_success
}

@test "mom-broker listens on an ipc:// URL" {
	local url="ipc://$T/broker.sock"
	# sun_path holds 107 bytes.
	((${#url} - 6 < 100)) || skip "temporary directory path too long for ipc://"
	mom-broker -D "$T/data" -l "$url" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$url"
	run timeout "$TMO" mom-pub -s "$url" --create -q jobs -m 'over ipc'
	assert_success
	run timeout "$TMO" mom-sub -s "$url" -q jobs -C 1
	assert_success
	assert_output 'over ipc'
}

@test "mom-broker listens on two URLs at once" {
	local port2
	port2=$(free_port)
	start_broker -l "tcp://127.0.0.1:$port2"
	qcreate jobs
	run timeout "$TMO" mom-pub -s "tcp://127.0.0.1:$port2" -q jobs -m two
	assert_success
	run sub -q jobs -C 1
	assert_output two
}

@test "mom-broker reads its options from a config file given with -c" {
	local port
	port=$(free_port)
	cat >"$T/broker.conf" <<-EOF
	# a comment, then long options without dashes
	listen tcp://127.0.0.1:$port
	data-dir = $T/confdata
	max-msg-size 2k
	EOF
	mom-broker -c "$T/broker.conf" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	export MOM_URL="tcp://127.0.0.1:$port"
	wait_ping "$MOM_URL"
	run admin --json ping
	assert_success
	echo "$output" | jq -e '.max_message_size == 2048' >/dev/null
	[ -e "$T/confdata/LOCK" ]
}

@test "mom-broker reads a config file given as --config=FILE" {
	local port
	port=$(free_port)
	printf 'listen tcp://127.0.0.1:%s\ndata-dir %s\n' "$port" "$T/confdata" >"$T/broker.conf"
	mom-broker --config="$T/broker.conf" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "tcp://127.0.0.1:$port"
	[ -e "$T/confdata/LOCK" ]
}

@test "mom-broker -c with a missing file exits 64" {
	run --separate-stderr timeout 5 mom-broker -c "$T/nonexistent.conf"
	assert_one_line_error mom-broker 64
}

@test "mom-broker -c with a malformed line exits 64" {
	printf 'listen tcp://127.0.0.1:1\n!!! what\n' >"$T/bad.conf"
	run --separate-stderr timeout 5 mom-broker -c "$T/bad.conf"
	assert_equal "$status" 64
	[[ "${stderr_lines[0]}" =~ ^mom-broker:\ .*bad.conf:2: ]] || fail "stderr: $stderr"
}

@test "random bytes sent to the broker port leave it serving" {
	start_broker
	local i
	for ((i = 0; i < 5; i++)); do
		timeout 5 bash -c "head -c 100000 /dev/urandom > /dev/tcp/127.0.0.1/$PORT" 2>/dev/null || true
	done
	sp_garbage "$PORT" raw
	run admin ping
	assert_success
	kill -0 "$BROKER_PID"
	run pub --create -q jobs -m survived
	assert_success
	run sub -q jobs -C 1 -W 5
	assert_success
	assert_output survived
}

@test "garbage after a valid nng handshake leaves the broker serving" {
	start_broker
	qcreate jobs
	sp_garbage "$PORT" req
	sp_garbage "$PORT" req
	run admin ping
	assert_success
	kill -0 "$BROKER_PID"
	run pub -q jobs -m survived
	assert_success
	run sub -q jobs -C 1 -W 5
	assert_success
	assert_output survived
}

@test "a client killed mid-request does not hurt the broker" {
	start_broker
	qcreate jobs
	local i
	for ((i = 0; i < 5; i++)); do
		head -c 900000 /dev/urandom | base64 -w0 | head -c 900000 >"$T/big"
		mom-pub -q jobs -f "$T/big" 3>&- &
		sleep 0.0$i
		kill -9 $! 2>/dev/null || true
		wait $! 2>/dev/null || true
	done
	run admin ping
	assert_success
	run pub -q jobs -m after
	assert_success
}

@test "messages survive a broker restart" {
	start_broker
	qcreate jobs
	seq 1 10 | pub -q jobs -l
	stop_pid "$BROKER_PID"
	BROKER_PID=
	start_broker
	run sub -q jobs -C 10 -W 5
	assert_success
	assert_output "$(seq 1 10)"
}

@test "a turn of the core loop that lasts a second is logged with the core thread's stack, and its end" {
	local fb="$E2E_ROOT/build-fault/bin/mom-broker"
	[ -x "$fb" ] && grep -qaF MOM_FAULT_CORE_STALL_MS "$fb" ||
		skip "no fault-injection build with MOM_FAULT_CORE_STALL_MS: 'make fault'"
	PORT=$(free_port)
	export MOM_URL="tcp://127.0.0.1:$PORT"
	# Its first turn once it serves takes 1.5 s.
	MOM_FAULT_CORE_STALL_MS=1500 "$fb" -D "$T/data" -l "$MOM_URL" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL"
	wait_for 10 grep -q "the core thread turned again after about" "$T/broker.log" ||
		fail "$(cat "$T/broker.log")"
	grep -qE "the core thread has been in one turn for 1[0-9]{3} ms" "$T/broker.log" ||
		fail "$(cat "$T/broker.log")"
	# The stack, taken while it slept: libc's frames by name, ours by offset.
	grep -q "usleep" "$T/broker.log" || fail "$(cat "$T/broker.log")"
	grep -q "mom-broker(+0x" "$T/broker.log" || fail "$(cat "$T/broker.log")"
	run -0 timeout 10 mom-admin --json stats
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["core_stalls"] == 1, d["core_stalls"]
assert d["core_stall_longest_ms"] >= 1400, d["core_stall_longest_ms"]' "$output"
	# Turns that do not last are not stalls.
	for i in 1 2 3; do run -0 timeout 10 mom-admin ping; done
	run -0 timeout 10 mom-admin --json stats
	[[ $output == *'"core_stalls": 1'* || $output == *'"core_stalls":1'* ]]
}

#!/usr/bin/env bats
# mom-pub: sources, headers, ids, ttl, delay, limits, exit statuses.

bats_require_minimum_version 1.5.0
load helpers

@test "mom-pub -h prints usage on stdout and exits 0" {
	run --separate-stderr mom-pub -h
	assert_success
	assert_output --partial "usage: mom-pub"
	assert_equal "$stderr" ""
}

@test "mom-pub --version prints its version" {
	run --separate-stderr mom-pub --version
	assert_success
	assert_output --regexp '^mom-pub [0-9]+\.[0-9]+'
}

@test "mom-pub with an unknown option exits 64 with a 'mom-pub:' error" {
	run --separate-stderr timeout 5 mom-pub --bogus -q jobs -m x
	assert_usage_error mom-pub
}

@test "mom-pub without a queue or topic exits 64" {
	run --separate-stderr timeout 5 mom-pub -m x
	assert_usage_error mom-pub
}

@test "mom-pub with two sources exits 64" {
	run --separate-stderr timeout 5 mom-pub -q jobs -m x -n
	assert_one_line_error mom-pub 64
}

@test "mom-pub with a bad queue or topic name exits 64" {
	local name
	for name in 'has space' '.lead' 'trail.' 'a..b' 'star.*' 'x>' '' "$(printf 'n%.0s' {1..201})"; do
		run --separate-stderr timeout 5 mom-pub -s tcp://127.0.0.1:1 -q "$name" -m x
		assert_one_line_error mom-pub 64
		run --separate-stderr timeout 5 mom-pub -s tcp://127.0.0.1:1 -t "$name" -m x
		assert_one_line_error mom-pub 64
	done
}

@test "mom-pub with a bad duration, header or id exits 64" {
	start_broker
	qcreate jobs
	run --separate-stderr pub -q jobs -m x --ttl forever
	assert_one_line_error mom-pub 64
	run --separate-stderr pub -q jobs -m x --delay -1s
	assert_one_line_error mom-pub 64
	run --separate-stderr pub -q jobs -m x -H 'no colon'
	assert_one_line_error mom-pub 64
	run --separate-stderr pub -q jobs -m x --id 'has space'
	assert_one_line_error mom-pub 64
	run --separate-stderr pub -q jobs -l --id one </dev/null
	assert_one_line_error mom-pub 64
	assert_equal "$(qfield jobs messages)" 0
}

@test "mom-pub -m publishes one message" {
	start_broker
	qcreate jobs
	run --separate-stderr pub -q jobs -m 'hello, world'
	assert_success
	assert_output ""
	assert_equal "$stderr" ""
	run sub -q jobs -C 1
	assert_success
	assert_output 'hello, world'
}

@test "a queue in the config file and -q on the command line: the command line's queue" {
	start_broker
	qcreate x
	qcreate y
	mkdir -p "$XDG_CONFIG_HOME/mom"
	printf 'queue x\nlines\n' >"$XDG_CONFIG_HOME/mom/mom-pub"
	run --separate-stderr pub -q y -m one
	assert_success
	assert_equal "$stderr" ""
	assert_equal "$(qfield y messages)" 1
	assert_equal "$(qfield x messages)" 0
	# Without -q the file's queue (and its source) hold.
	run --separate-stderr pub <<<"two"
	assert_success
	assert_equal "$(qfield x messages)" 1
}

@test "mom-pub -f FILE publishes the whole file as one message" {
	start_broker
	qcreate jobs
	printf 'line one\nline two\n\ttabbed\n' >"$T/in"
	run pub -q jobs -f "$T/in"
	assert_success
	assert_equal "$(qfield jobs messages)" 1
	sub -q jobs -C 1 -F '%p' >"$T/out"
	cmp "$T/in" "$T/out"
}

@test "mom-pub -f with a missing file exits 66" {
	start_broker
	qcreate jobs
	run --separate-stderr pub -q jobs -f "$T/nonexistent"
	assert_one_line_error mom-pub 66
}

@test "mom-pub -f - reads the message from stdin" {
	start_broker
	qcreate jobs
	printf 'from\nstdin' | pub -q jobs -f -
	sub -q jobs -C 1 -F '%p' >"$T/out"
	assert_equal "$(cat "$T/out")" "$(printf 'from\nstdin')"
}

@test "mom-pub with no source reads all of stdin as one message" {
	start_broker
	qcreate jobs
	printf 'a\nb\nc\n' | pub -q jobs
	assert_equal "$(qfield jobs messages)" 1
	sub -q jobs -C 1 -F '%p' >"$T/out"
	printf 'a\nb\nc\n' | cmp - "$T/out"
}

@test "mom-pub -n publishes an empty message" {
	start_broker
	qcreate jobs
	run pub -q jobs -n
	assert_success
	run sub -q jobs -C 1 -F '[%p]\n'
	assert_success
	assert_output '[]'
}

@test "mom-pub -l publishes each line in order, empty lines included" {
	start_broker
	qcreate jobs
	printf 'first\n\nthird\n\n\nsixth\nno newline at the end' | pub -q jobs -l
	assert_equal "$(qfield jobs messages)" 7
	run sub -q jobs -C 7 -F '<%p>\n'
	assert_success
	assert_output "$(printf '<first>\n<>\n<third>\n<>\n<>\n<sixth>\n<no newline at the end>')"
}

@test "mom-pub -l keeps the order of 20000 lines" {
	start_broker
	qcreate jobs
	seq 1 20000 | pub -q jobs -l
	sub -q jobs -C 20000 >"$T/out"
	seq 1 20000 | cmp - "$T/out"
}

@test "mom-pub -H headers reach the consumer's %h{Key}" {
	start_broker
	qcreate jobs
	pub -q jobs -H 'Content-Type: text/plain' -H 'X-Trace: abc 123' -m body
	run sub -q jobs -C 1 -F '%h{Content-Type}|%h{X-Trace}|%h{Missing}|%p\n'
	assert_success
	assert_output 'text/plain|abc 123||body'
}

@test "mom-pub -F fields %p %t %i %d %T %% come out right" {
	start_broker
	qcreate jobs
	pub -q jobs --id order-42 -m payload
	run sub -q jobs -C 1 -F '%p|%t|%i|%d|%T|%%\n'
	assert_success
	assert_output --regexp '^payload\|jobs\|order-42\|1\|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z\|%$'
}

@test "mom-pub --id twice stores the message once" {
	start_broker
	qcreate jobs
	run pub -q jobs --id same-1 -m first
	assert_success
	run pub -q jobs --id same-1 -m first
	assert_success
	assert_equal "$(qfield jobs messages)" 1
	run sub -q jobs -e
	assert_output first
}

@test "mom-pub --ttl: an expired message is never delivered" {
	start_broker
	qcreate jobs
	pub -q jobs --ttl 200ms -m short-lived
	pub -q jobs -m keeper
	sleep 0.4
	run sub -q jobs -e
	assert_success
	assert_output keeper
	wait_for 5 qfield_is jobs expired 1
}

@test "mom-pub --delay: not delivered before the delay, delivered after" {
	start_broker
	qcreate jobs
	local t0 t1
	t0=$(ms_now)
	pub -q jobs --delay 1500ms -m later
	run sub -q jobs -e
	assert_success
	assert_output ""
	assert_equal "$(qfield jobs delayed)" 1
	run sub -q jobs -C 1 -W 10
	t1=$(ms_now)
	assert_success
	assert_output later
	((t1 - t0 >= 1400)) || fail "delivered after $((t1 - t0)) ms"
}

@test "mom-pub to a missing queue or topic exits 66" {
	start_broker
	run --separate-stderr pub -q nosuch -m x
	assert_one_line_error mom-pub 66
	run --separate-stderr pub -t nosuch -m x
	assert_one_line_error mom-pub 66
}

@test "mom-pub --create creates the queue or topic first" {
	start_broker
	run pub --create -q fresh -m x
	assert_success
	assert_equal "$(qfield fresh messages)" 1
	run pub --create -t fresh.topic -m y
	assert_success
	run admin --json topic info fresh.topic
	echo "$output" | jq -e '.published == 1' >/dev/null
}

@test "mom-pub exits 69 within 5 s when no broker listens" {
	local port t0 t1
	port=$(free_port)
	t0=$(ms_now)
	run --separate-stderr timeout 10 mom-pub -s "tcp://127.0.0.1:$port" -q jobs -m x
	t1=$(ms_now)
	assert_one_line_error mom-pub 69
	((t1 - t0 < 5000)) || fail "took $((t1 - t0)) ms"
}

@test "mom-pub to a full queue exits 75 saying it is full" {
	start_broker
	qcreate small --max-len 3
	seq 1 3 | pub -q small -l
	run --separate-stderr pub -q small -m four
	assert_equal "$status" 75
	[[ "$stderr" == *full* ]] || fail "stderr: $stderr"
	assert_equal "$(qfield small messages)" 3
}

@test "mom-pub -W: no confirmation in time exits 75" {
	start_broker
	qcreate jobs
	mkfifo "$T/in"
	timeout "$TMO" mom-pub -q jobs -l -W 1 <"$T/in" >"$T/out" 2>"$T/err" 3>&- &
	local pid=$! rc=0 t0 t1
	BG_PIDS+=("$pid")
	exec 5>"$T/in"
	# Once mom-pub is connected, freeze the broker.
	wait_for 5 bash -c '[ "$(mom-admin --json stats | jq .connections)" -ge 2 ]'
	kill -STOP "$BROKER_PID"
	t0=$(ms_now)
	echo unconfirmed >&5
	exec 5>&-
	wait "$pid" || rc=$?
	t1=$(ms_now)
	kill -CONT "$BROKER_PID"
	assert_equal "$rc" 75
	((t1 - t0 < 5000)) || fail "took $((t1 - t0)) ms"
	grep -q '^mom-pub: .*timed out' "$T/err"
}

@test "mom-pub -W bounds connecting to a broker that does not answer" {
	start_broker
	kill -STOP "$BROKER_PID"
	local t0 t1
	t0=$(ms_now)
	run --separate-stderr timeout 20 mom-pub -q jobs -m x -W 1
	t1=$(ms_now)
	kill -CONT "$BROKER_PID"
	assert_equal "$status" 75
	((t1 - t0 < 3000)) || fail "took $((t1 - t0)) ms"
}

@test "mom-pub of a message over the broker's limit exits 65" {
	start_broker --max-msg-size 1k
	qcreate jobs
	head -c 1024 /dev/zero >"$T/fits"
	head -c 1025 /dev/zero >"$T/over"
	run pub -q jobs -f "$T/fits"
	assert_success
	run --separate-stderr pub -q jobs -f "$T/over"
	assert_one_line_error mom-pub 65
	assert_equal "$(qfield jobs messages)" 1
	# The broker still serves.
	run admin ping
	assert_success
}

@test "mom-pub of a message over 1 MiB to a default broker exits 65" {
	start_broker
	qcreate jobs
	head -c $((1024 * 1024 + 1)) /dev/urandom >"$T/over"
	run --separate-stderr pub -q jobs -f "$T/over"
	assert_one_line_error mom-pub 65
	assert_equal "$(qfield jobs messages)" 0
}

@test "mom-pub of a 1 MiB message round-trips byte for byte" {
	start_broker
	qcreate jobs
	head -c $((1024 * 1024)) /dev/urandom >"$T/big"
	run pub -q jobs -f "$T/big"
	assert_success
	sub -q jobs -C 1 -F '%p' >"$T/out"
	cmp "$T/big" "$T/out"
}

@test "mom-pub --jsonl publishes to the targets each line names" {
	start_broker
	qcreate a
	qcreate b
	tcreate t
	sub -t t -d keep -e
	cat >"$T/in" <<-'EOF'
	{"queue":"a","payload":"to a","headers":{"K":"v"}}
	{"queue":"b","payload_b64":"AAEC/w=="}

	{"topic":"t","payload":"to t","id":"t-1"}
	EOF
	run pub --jsonl <"$T/in"
	assert_success
	run sub -q a -C 1 -F '%p %h{K}\n'
	assert_output 'to a v'
	sub -q b -C 1 -F '%p' | od -An -tx1 >"$T/b.hex"
	assert_equal "$(tr -d ' \n' <"$T/b.hex")" "000102ff"
	run sub -t t -d keep -C 1 -F '%i %p\n'
	assert_output 't-1 to t'
}

@test "mom-pub --jsonl stops at a malformed line with 65, keeping the lines before it" {
	start_broker
	qcreate jobs
	printf '%s\n' '{"payload":"one"}' '{"payload":"two"}' '{not json' '{"payload":"never"}' >"$T/in"
	run --separate-stderr pub -q jobs --jsonl <"$T/in"
	assert_one_line_error mom-pub 65
	[[ "$stderr" == *"line 3"* ]] || fail "stderr: $stderr"
	run sub -q jobs -e
	assert_output "$(printf 'one\ntwo')"
}

@test "mom-pub -l stops at a line over 1 MiB with 65, keeping the lines before it" {
	start_broker
	qcreate jobs
	{ echo one; echo two; head -c $((1024 * 1024 + 10)) /dev/zero | tr '\0' x; echo; echo never; } >"$T/in"
	run --separate-stderr pub -q jobs -l <"$T/in"
	assert_one_line_error mom-pub 65
	run sub -q jobs -e
	assert_output "$(printf 'one\ntwo')"
}

@test "mom-pub -l stops at a line over a small broker limit with 65, keeping the lines before it" {
	start_broker --max-msg-size 1k
	qcreate jobs
	{ echo one; echo two; head -c 2000 /dev/zero | tr '\0' x; echo; echo never; } >"$T/in"
	run --separate-stderr pub -q jobs -l <"$T/in"
	assert_one_line_error mom-pub 65
	run sub -q jobs -e
	assert_output "$(printf 'one\ntwo')"
}

@test "mom-pub -0 publishes NUL-terminated records" {
	start_broker
	qcreate jobs
	printf 'a\nb\0\0c c\0last' | pub -q jobs -0
	assert_equal "$(qfield jobs messages)" 4
	run sub -q jobs -C 4 -F '<%p>'
	assert_output "$(printf '<a\nb><><c c><last>')"
}

@test "200 concurrent clients: 100 publishers and 100 consumers, each message received once" {
	start_broker
	qcreate jobs
	local i pids=()
	for ((i = 1; i <= 100; i++)); do
		timeout 30 mom-sub -q jobs -C 1 -W 25 >"$T/got.$i" 2>"$T/suberr.$i" 3>&- &
		pids+=($!)
	done
	for ((i = 1; i <= 100; i++)); do
		timeout 30 mom-pub -q jobs -m "msg-$i" 2>"$T/puberr.$i" 3>&- &
		pids+=($!)
	done
	local failed=0 p
	for p in "${pids[@]}"; do
		wait "$p" || failed=$((failed + 1))
	done
	cat "$T"/suberr.* "$T"/puberr.* >&2 || true
	assert_equal "$failed" 0
	cat "$T"/got.* | sort >"$T/all"
	assert_equal "$(wc -l <"$T/all")" 100
	assert_equal "$(uniq -d "$T/all")" ""
	for ((i = 1; i <= 100; i++)); do echo "msg-$i"; done | sort | cmp - "$T/all"
	assert_equal "$(qfield jobs messages)" 0
}

@test "mom-pub fails over to the next server in -s when the first refuses" {
	start_broker
	qcreate jobs
	local dead
	dead="tcp://127.0.0.1:$(free_port)"
	run --separate-stderr pub -s "$dead,$MOM_URL" -q jobs -m one
	assert_success
	printf 'two\nthree\n' | pub -s "$dead,$MOM_URL" -q jobs -l
	run sub -q jobs -e
	assert_output "$(printf 'one\ntwo\nthree')"
}

@test "mom-pub -m over ipc:// takes the full client path and works" {
	local sock="$T/b.sock"
	((${#sock} < 100)) || skip "temporary directory path too long for ipc://"
	start_broker -l "ipc://$sock"
	qcreate jobs
	run pub -s "ipc://$sock" -q jobs -m over-ipc
	assert_success
	run sub -s "ipc://$sock" -q jobs -C 1
	assert_output over-ipc
}

@test "a one-shot mom-pub waits out a broker that pauses, and the message is stored once" {
	start_broker
	qcreate jobs
	# A broker that stops answering for a while: mom-pub waits for it.
	pub -q jobs -m before
	kill -STOP "$BROKER_PID"
	(sleep 1.5; kill -CONT "$BROKER_PID") 3>&- &
	run --separate-stderr pub -q jobs -m once
	assert_success
	run sub -q jobs -e
	assert_output "$(printf 'before\nonce')"
}

@test "the broker puts a producer's batches back in order when a later one arrives first" {
	start_broker
	qcreate ord
	# Two connections of one producer: batch 2 (seq 3-4) is sent first and
	# must wait in the core until batch 1 (seq 1-2) fills the gap.
	run -0 timeout 20 python3 - "$PORT" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)
def s(b):
    return varint(len(b)) + b
def batch(first, payloads):
    body = b"M\x01\x02\x00" + varint(77) + varint(first) + b"\x01" + s(b"ord") + varint(len(payloads))
    for p in payloads:
        body += varint(0) + s(p)
    return body
def conn():
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    c.recv(8)
    return c
def send(c, rid, body):
    c.sendall(struct.pack(">QI", len(body) + 4, 0x80000000 | rid) + body)
def reply(c):
    hdr = b""
    while len(hdr) < 12:
        hdr += c.recv(12 - len(hdr))
    n = struct.unpack(">Q", hdr[:8])[0] - 4
    body = b""
    while len(body) < n:
        body += c.recv(n - len(body))
    return body
a, b = conn(), conn()
send(a, 1, batch(3, [b"3", b"4"]))
time.sleep(0.3)
send(b, 2, batch(1, [b"1", b"2"]))
for c in (b, a):
    r = reply(c)
    assert r[:4] == b"M\x01\x82\x00", r
PY
	run -0 sub -q ord -C 4 -W 5
	assert_equal "$(echo $output)" "1 2 3 4"
}

@test "a long -l stream (many batches in flight at once) is stored in publish order" {
	start_broker
	qcreate big
	seq 1 100000 | pub -q big -l
	run -0 sub -q big -C 100000 -W 20
	assert_equal "${#lines[@]}" 100000
	diff <(printf '%s\n' "${lines[@]}") <(seq 1 100000) >"$T/order.diff" ||
		fail "out of order: $(head -c 400 "$T/order.diff")"
}

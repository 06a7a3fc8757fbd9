#!/usr/bin/env bats
# mom-sub: output formats, counts, waits, acks and redelivery, topics.

bats_require_minimum_version 1.5.0
load helpers

# hold_unacked QUEUE DELIVERED: a consumer takes the (big) message at the
# head of QUEUE, cannot write it (stdout is a FIFO nobody reads, so it
# never acks), and is killed -9 once the broker counts DELIVERED deliveries
# with one in flight.
hold_unacked() {
	local q=$1 n=$2 pid
	rm -f "$T/fifo"
	mkfifo "$T/fifo"
	exec 5<>"$T/fifo"
	# Not under timeout(1): kill -9 must hit mom-sub itself.  It must not
	# inherit fd 5 either, or it would hold the FIFO open after the kill.
	mom-sub -q "$q" -p 1 >"$T/fifo" 2>/dev/null 3>&- 5>&- &
	pid=$!
	BG_PIDS+=("$pid")
	wait_for 10 bash -c "[ \"\$(mom-admin --json queue info $q | jq -r '\"\\(.in_flight) \\(.delivered)\"')\" = '1 $n' ]" ||
		fail "no consumer holds delivery $n: $(mom-admin --json queue info "$q")"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	exec 5>&-
}

# bigmsg FILE: a 200 KB text payload, more than a pipe holds.
bigmsg() {
	head -c 150000 /dev/urandom | base64 -w0 >"$1"
}

@test "mom-sub -h prints usage on stdout and exits 0" {
	run --separate-stderr mom-sub -h
	assert_success
	assert_output --partial "usage: mom-sub"
	assert_equal "$stderr" ""
}

@test "mom-sub --version prints its version" {
	run --separate-stderr mom-sub --version
	assert_success
	assert_output --regexp '^mom-sub [0-9]+\.[0-9]+'
}

@test "mom-sub with an unknown option exits 64 with a 'mom-sub:' error" {
	run --separate-stderr timeout 5 mom-sub --bogus -q jobs
	assert_usage_error mom-sub
}

@test "mom-sub usage errors exit 64: no target, bad count, bad format, -d with a queue" {
	run --separate-stderr timeout 5 mom-sub -C 1
	assert_usage_error mom-sub
	run --separate-stderr timeout 5 mom-sub -q jobs -C 0
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -C -1
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -F '%h{unclosed'
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -d name
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -0 -N
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -W soon
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -t events --from yesterdayish
	assert_one_line_error mom-sub 64
}

@test "mom-sub with a bad queue name or topic pattern exits 64" {
	local name
	for name in 'has space' 'a..b' '.x' 'x.' '' "$(printf 'n%.0s' {1..201})"; do
		run --separate-stderr timeout 5 mom-sub -s tcp://127.0.0.1:1 -q "$name"
		assert_one_line_error mom-sub 64
	done
	for name in 'a.>.b' 'a*' '>x' 'a..*'; do
		run --separate-stderr timeout 5 mom-sub -s tcp://127.0.0.1:1 -t "$name"
		assert_one_line_error mom-sub 64
	done
	run --separate-stderr timeout 5 mom-sub -s tcp://127.0.0.1:1 -q 'orders.*'
	assert_one_line_error mom-sub 64
}

@test "mom-sub from a missing queue exits 66" {
	start_broker
	run --separate-stderr sub -q nosuch -C 1
	assert_one_line_error mom-sub 66
}

@test "mom-sub from a topic name that is no topic exits 66, a wildcard pattern waits" {
	start_broker
	run --separate-stderr sub -t nosuch.topic -e
	assert_one_line_error mom-sub 66
	run sub -t 'nosuch.*' -e
	assert_success
	assert_output ""
}

@test "mom-sub exits 69 within 5 s when no broker listens" {
	local port t0 t1
	port=$(free_port)
	t0=$(ms_now)
	run --separate-stderr timeout 10 mom-sub -s "tcp://127.0.0.1:$port" -q jobs
	t1=$(ms_now)
	assert_one_line_error mom-sub 69
	((t1 - t0 < 5000)) || fail "took $((t1 - t0)) ms"
}

@test "mom-sub -C N exits 0 after N messages and leaves the rest" {
	start_broker
	qcreate jobs
	seq 1 10 | pub -q jobs -l
	run sub -q jobs -C 3
	assert_success
	assert_output "$(seq 1 3)"
	# What it prefetched and did not print is given back at once.
	assert_equal "$(qfield jobs ready)" 7
	assert_equal "$(qfield jobs in_flight)" 0
	run sub -q jobs -C 7
	assert_output "$(seq 4 10)"
}

@test "mom-sub -W exits 75 when no message comes in time" {
	start_broker
	qcreate jobs
	local t0 t1
	t0=$(ms_now)
	run --separate-stderr sub -q jobs -W 1
	t1=$(ms_now)
	assert_equal "$status" 75
	assert_output ""
	((t1 - t0 >= 900 && t1 - t0 < 5000)) || fail "took $((t1 - t0)) ms"
}

@test "mom-sub -W is reset by each message" {
	start_broker
	qcreate jobs
	(sleep 0.6; mom-pub -q jobs -m one; sleep 0.6; mom-pub -q jobs -m two) 3>&- &
	BG_PIDS+=($!)
	run --separate-stderr sub -q jobs -W 1
	assert_equal "$status" 75
	assert_output "$(printf 'one\ntwo')"
}

@test "mom-sub -e on an empty queue exits 0 and prints nothing" {
	start_broker
	qcreate jobs
	run --separate-stderr sub -q jobs -e
	assert_success
	assert_output ""
	assert_equal "$stderr" ""
}

@test "mom-sub -e prints everything queued, then exits 0" {
	start_broker
	qcreate jobs
	seq 1 1000 | pub -q jobs -l
	run sub -q jobs -e
	assert_success
	assert_output "$(seq 1 1000)"
	assert_equal "$(qfield jobs messages)" 0
}

@test "mom-sub -N prints nothing and consumes" {
	start_broker
	qcreate jobs
	seq 1 5 | pub -q jobs -l
	run sub -q jobs -N -C 5
	assert_success
	assert_output ""
	assert_equal "$(qfield jobs messages)" 0
}

@test "mom-sub -0 ends each payload with NUL" {
	start_broker
	qcreate jobs
	printf 'a\nb\nc\n' | pub -q jobs -l
	sub -q jobs -0 -C 3 | od -An -c | tr -s ' \n' ' ' >"$T/out"
	assert_equal "$(cat "$T/out")" " a \0 b \0 c \0 "
}

@test "mom-sub --jsonl writes one JSON envelope per message" {
	start_broker
	qcreate jobs
	pub -q jobs -H 'K: v' --id id-1 -m 'text "quoted"'
	printf '\377\376' | pub -q jobs
	sub -q jobs -C 2 --jsonl >"$T/out"
	assert_equal "$(wc -l <"$T/out")" 2
	jq -e -s '.[0].queue == "jobs" and .[0].payload == "text \"quoted\"" and .[0].id == "id-1" and
	    .[0].headers.K == "v" and .[0].delivery == 1 and (.[0].time | test("Z$")) and
	    .[1].payload_b64 == "//4="' "$T/out" >/dev/null
}

@test "mom-sub -0 | mom-pub -0 copies random payloads byte for byte" {
	start_broker
	qcreate a
	qcreate b
	local i
	: >"$T/stream"
	for ((i = 0; i < 50; i++)); do
		# Random bytes without NUL: newlines, invalid UTF-8, anything else.
		randbytes_nonul $((RANDOM % 3000 + 1)) >>"$T/stream"
		printf '\0' >>"$T/stream"
	done
	printf 'line\nbreaks\n\0\0\xff\xfe\0' >>"$T/stream"
	pub -q a -0 <"$T/stream"
	assert_equal "$(qfield a messages)" 53
	sub -q a -0 -C 53 | pub -q b -0
	assert_equal "$(qfield b messages)" 53
	sub -q b -0 -C 53 >"$T/out"
	cmp "$T/stream" "$T/out"
}

@test "mom-sub --jsonl | mom-pub --jsonl copies any payload byte for byte" {
	start_broker
	qcreate a
	qcreate b
	printf 'NUL\0inside\0' >"$T/p.nul"
	printf 'new\nlines\r\n\n' >"$T/p.nl"
	printf 'bad utf-8 \xc3\x28 \xff\xfe \xed\xa0\x80' >"$T/p.badutf8"
	printf 'ok utf-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "q" \\ \t \x01 \x7f' >"$T/p.utf8"
	: >"$T/p.empty"
	head -c $((1024 * 1024)) /dev/urandom >"$T/p.1mib"
	head -c 5000 /dev/urandom >"$T/p.rand"
	local f
	for f in "$T"/p.*; do
		pub -q a -f "$f"
		sub -q a -C 1 --jsonl | pub -q b --jsonl
		sub -q b -C 1 -F '%p' >"$T/out"
		cmp "$f" "$T/out" || fail "payload $(basename "$f") changed"
	done
}

@test "an unacked message is redelivered after the ack wait when its consumer is killed" {
	start_broker
	qcreate jobs --ack-wait 1s
	bigmsg "$T/big"
	pub -q jobs -f "$T/big"
	hold_unacked jobs 1
	run sub -q jobs -C 1 -W 10 -F '%d\n'
	assert_success
	assert_output 2
	sub -q jobs -e >"$T/rest"
	[ ! -s "$T/rest" ]
	assert_equal "$(qfield jobs messages)" 0
}

@test "mom-sub --no-ack takes a message without acking and it is not redelivered" {
	start_broker
	qcreate jobs --ack-wait 1s
	pub -q jobs -m once
	run sub -q jobs --no-ack -C 1
	assert_success
	assert_output once
	run sub -q jobs -W 2
	assert_equal "$status" 75
	assert_output ""
}

@test "a message never acked goes to the dead-letter queue after max deliveries, and queue move replays it" {
	start_broker
	qcreate dlq
	qcreate jobs --max-deliver 2 --dead-letter dlq --ack-wait 1s
	bigmsg "$T/big"
	pub -q jobs -f "$T/big"
	hold_unacked jobs 1
	hold_unacked jobs 2
	wait_for 10 qfield_is dlq messages 1 || fail "dlq: $(admin --json queue info dlq)"
	assert_equal "$(qfield jobs messages)" 0
	assert_equal "$(qfield jobs dead_lettered)" 1
	run admin queue move dlq jobs
	assert_success
	assert_equal "$(qfield dlq messages)" 0
	sub -q jobs -C 1 -W 5 -F '%p' >"$T/out"
	cmp "$T/big" "$T/out"
}

@test "three competing consumers get disjoint sets covering all 3000 messages" {
	start_broker
	qcreate jobs
	seq 1 3000 | pub -q jobs -l
	local i pids=() rc=0
	for i in 1 2 3; do
		timeout "$TMO" mom-sub -q jobs -p 20 -e >"$T/c.$i" 3>&- &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || rc=$?; done
	assert_equal "$rc" 0
	cat "$T"/c.* | sort -n >"$T/all"
	assert_equal "$(sort "$T/all" | uniq -d)" ""
	seq 1 3000 | cmp - "$T/all"
	assert_equal "$(qfield jobs messages)" 0
}

@test "three durable subscriptions on a topic each get all 100 messages in order" {
	start_broker
	tcreate events
	local s
	for s in s1 s2 s3; do sub -t events -d "$s" -e; done
	seq 1 100 | pub -t events -l
	for s in s1 s2 s3; do
		run sub -t events -d "$s" -C 100
		assert_success
		assert_output "$(seq 1 100)"
	done
}

@test "pattern subscriptions: 'orders.*' gets one level, 'orders.>' every level below" {
	start_broker
	local t
	for t in orders orders.eu orders.us orders.eu.new other.eu; do tcreate "$t"; done
	sub -t 'orders.*' -d star -e
	sub -t 'orders.>' -d deep -e
	for t in orders orders.eu orders.us orders.eu.new other.eu; do pub -t "$t" -m "to $t"; done
	run sub -t 'orders.*' -d star -e -F '%t %p\n'
	assert_success
	assert_equal "$(sort <<<"$output")" "$(printf 'orders.eu to orders.eu\norders.us to orders.us')"
	run sub -t 'orders.>' -d deep -e -F '%t\n'
	assert_success
	assert_equal "$(sort <<<"$output")" "$(printf 'orders.eu\norders.eu.new\norders.us')"
}

@test "an ephemeral pattern subscription gets messages published while it runs" {
	start_broker
	tcreate orders.eu
	tcreate orders.us
	tcreate other
	timeout "$TMO" mom-sub -t 'orders.*' -C 2 -F '%t %p\n' >"$T/out" 3>&- &
	local pid=$! rc=0
	BG_PIDS+=("$pid")
	wait_for 5 bash -c '[ "$(mom-admin --json sub list | jq length)" -ge 1 ]'
	pub -t other -m no
	pub -t orders.eu -m one
	pub -t orders.us -m two
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	assert_equal "$(cat "$T/out")" "$(printf 'orders.eu one\norders.us two')"
	# The ephemeral subscription is gone when its consumer leaves.
	assert_equal "$(admin --json sub list | jq length)" 0
}

@test "mom-sub --from first replays the retained log, --from last only its last message" {
	start_broker
	tcreate events
	seq 1 5 | pub -t events -l
	run sub -t events --from first -C 5
	assert_success
	assert_output "$(seq 1 5)"
	run sub -t events --from last -e
	assert_success
	assert_output 5
	# A new subscription starts after the retained log by default.
	run sub -t events -e
	assert_success
	assert_output ""
}

@test "a durable subscription resumes where it left off" {
	start_broker
	tcreate events
	sub -t events -d s1 -e
	seq 1 10 | pub -t events -l
	run sub -t events -d s1 -C 5
	assert_success
	assert_output "$(seq 1 5)"
	run sub -t events -d s1 -C 5
	assert_success
	assert_output "$(seq 6 10)"
	run sub -t events -d s1 -e
	assert_success
	assert_output ""
}

@test "mom-sub --create creates the queue it consumes from" {
	start_broker
	run sub --create -q fresh -e
	assert_success
	assert_equal "$(qfield fresh messages)" 0
}

@test "mom-sub worker mode runs a command per message" {
	start_broker
	qcreate jobs
	pub -q jobs -m hello
	run sub -q jobs -C 1 -- sh -c 'cat; echo " $MOM_QUEUE $MOM_DELIVERY"'
	assert_success
	assert_output 'hello jobs 1'
}

@test "a durable subscription nobody reads keeps only the newest --retain-bytes of messages" {
	start_broker --retain-bytes 1k
	tcreate news
	sub -t news -d idle -e
	local i
	for i in $(seq 1 100); do printf '%099d\n' "$i"; done | pub -t news -l
	run admin --json sub list news
	assert_success
	[ "$(echo "$output" | jq '.[0].dropped')" -eq 90 ]
	run sub -t news -d idle -e -F '%p\n'
	assert_success
	assert_equal "${#lines[@]}" 10
	assert_equal "${lines[0]}" "$(printf '%099d' 91)"
	assert_equal "${lines[9]}" "$(printf '%099d' 100)"
}

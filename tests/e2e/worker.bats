#!/usr/bin/env bats
# mom-sub worker mode: `mom-sub -q QUEUE [-P N] -- COMMAND [ARG...]`.

bats_require_minimum_version 1.5.0
load helpers

# wait_gone PID SECONDS: poll until the process is gone, then reap it and
# set $wstatus to its exit status.
wait_gone() {
	local pid=$1 i
	for ((i = 0; i < $2 * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	! kill -0 "$pid" 2>/dev/null || fail "process $pid still runs after $2 s"
	wstatus=0
	wait "$pid" || wstatus=$?
}

@test "worker: usage errors exit 64 (no command after --, -P without a command, -F with one)" {
	run --separate-stderr timeout 5 mom-sub -q jobs --
	assert_usage_error mom-sub
	run --separate-stderr timeout 5 mom-sub -q jobs -P 2
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -P 0 -- true
	assert_one_line_error mom-sub 64
	run --separate-stderr timeout 5 mom-sub -q jobs -F '%p' -- true
	assert_one_line_error mom-sub 64
}

@test "worker: the payload is on stdin, metadata and headers in the environment" {
	start_broker
	qcreate jobs
	pub -q jobs --id id-1 -H 'X-Trace-Id: t1' -m hello
	run --separate-stderr sub -q jobs -C 1 -- sh -c \
	    'echo "$MOM_QUEUE $MOM_DELIVERY $(cat) $MOM_ID $MOM_H_X_TRACE_ID ${MOM_TOPIC-none} ${MOM_REPLY_TO-none}"; echo to-stderr >&2'
	assert_success
	assert_output 'jobs 1 hello id-1 t1 none none'
	assert_equal "$stderr" to-stderr
}

@test "worker: a big payload reaches the command whole" {
	start_broker
	qcreate jobs
	head -c 600000 /dev/urandom | base64 -w0 >"$T/big"
	pub -q jobs -f "$T/big"
	run sub -q jobs -C 1 -- sh -c 'cat >"$0/got"' "$T"
	assert_success
	cmp "$T/big" "$T/got"
}

@test "worker: exit 0 acks each message; -e stops when the queue is drained" {
	start_broker
	qcreate jobs
	seq 1 5 | pub -q jobs -l
	run sub -q jobs -e -- sh -c 'cat >>"$0/log"; echo >>"$0/log"' "$T"
	assert_success
	assert_equal "$(cat "$T/log")" "$(seq 1 5)"
	assert_equal "$(qfield jobs messages)" 0
	assert_equal "$(qfield jobs acked)" 5
}

@test "worker: exit 75 requeues with a back-off" {
	start_broker
	qcreate jobs
	pub -q jobs -m m
	run sub -q jobs -C 2 -- sh -c \
	    'echo "$MOM_DELIVERY $(date +%s%3N)" >>"$0/log"; [ "$MOM_DELIVERY" -ge 2 ] || exit 75' "$T"
	assert_success
	assert_equal "$(cut -d' ' -f1 "$T/log" | tr '\n' ' ')" "1 2 "
	local t1 t2
	t1=$(sed -n 1p "$T/log" | cut -d' ' -f2)
	t2=$(sed -n 2p "$T/log" | cut -d' ' -f2)
	# Back-off 1 s for the first retry: not at once, not much later.
	((t2 - t1 >= 900)) || fail "retried after $((t2 - t1)) ms"
	((t2 - t1 < 8000)) || fail "retried after $((t2 - t1)) ms"
	assert_equal "$(qfield jobs messages)" 0
}

@test "worker: exit 65 dead-letters the message at once" {
	start_broker
	qcreate dlq
	qcreate jobs --max-deliver 5 --dead-letter dlq
	pub -q jobs -m poison
	run sub -q jobs -C 1 -- sh -c 'cat >/dev/null; exit 65'
	assert_success
	wait_for 5 qfield_is dlq messages 1 || fail "nothing in dlq: $(admin --json queue info dlq)"
	assert_equal "$(qfield jobs messages)" 0
	run sub -q dlq -C 1
	assert_output poison
}

@test "worker: other exit statuses and signals are redelivered, then dead-lettered" {
	start_broker
	qcreate dlq
	qcreate jobs --max-deliver 3 --dead-letter dlq
	pub -q jobs -m bad
	run sub -q jobs -C 3 -- sh -c 'echo "$MOM_DELIVERY" >>"$0/log"; [ "$MOM_DELIVERY" != 2 ] || kill -KILL $$; exit 3' "$T"
	assert_success
	assert_equal "$(tr '\n' ' ' <"$T/log")" "1 2 3 "
	wait_for 5 qfield_is dlq messages 1 || fail "nothing in dlq: $(admin --json queue info dlq)"
	assert_equal "$(qfield jobs messages)" 0
}

@test "worker: with Mom-Reply-To the command's stdout is published as the reply" {
	start_broker
	qcreate jobs
	qcreate r1
	pub -q jobs -H 'Mom-Reply-To: r1' -H 'Mom-Correlation-Id: c1' -m req1
	pub -q jobs -H 'Mom-Reply-To: r1' -H 'Mom-Correlation-Id: c2' -m req2
	run --separate-stderr sub -q jobs -C 2 -- sh -c \
	    'echo "to=$MOM_REPLY_TO in=$(cat)"; echo not-in-reply >&2; [ "$MOM_H_MOM_CORRELATION_ID" = c1 ] || exit 65'
	assert_success
	# stdout went to the reply, not to mom-sub's stdout.
	assert_output ""
	run sub -q r1 -C 2 -F '%h{Mom-Exit-Status} %h{Mom-Correlation-Id} %p'
	assert_success
	assert_line --index 0 '0 c1 to=r1 in=req1'
	assert_line --index 1 '65 c2 to=r1 in=req2'
	assert_equal "$(qfield jobs messages)" 0
}

@test "worker: -P 2 runs two commands at once" {
	start_broker
	qcreate jobs
	pub -q jobs -m a
	pub -q jobs -m b
	# Each command waits (bounded) until both have started: with one slot
	# the first would give up and exit 1.
	run sub -q jobs -P 2 -C 2 -- sh -c '
		touch "$0/started.$MOM_SEQ"
		i=0
		while [ "$(ls "$0" | grep -c "^started\.")" -lt 2 ]; do
			i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1
		done
		echo ok' "$T"
	assert_success
	assert_output "$(printf 'ok\nok')"
	assert_equal "$(qfield jobs acked)" 2
	assert_equal "$(qfield jobs redelivered)" 0
}

@test "worker: a running command's lease is extended past the ack wait" {
	start_broker
	qcreate jobs --ack-wait 2s
	pub -q jobs -m long
	bg mom-sub -q jobs -C 1 -- sh -c 'echo A >>"$0/log"; sleep 5' "$T"
	local a=${BG_PIDS[-1]}
	wait_for 10 qfield_is jobs in_flight 1 || fail "not taken"
	# A second worker gets nothing while the first works, 6 s > ack wait.
	run sub -q jobs -W 6 -- sh -c 'echo B >>"$0/log"' "$T"
	assert_failure 75
	wait_gone "$a" 10
	assert_equal "$wstatus" 0
	assert_equal "$(cat "$T/log")" A
	assert_equal "$(qfield jobs messages)" 0
	assert_equal "$(qfield jobs redelivered)" 0
}

@test "worker: SIGTERM lets the running command finish and acks it; the rest stays queued" {
	start_broker
	qcreate jobs
	pub -q jobs -m one
	pub -q jobs -m two
	bg mom-sub -q jobs -- sh -c 'echo "start $(cat)" >>"$0/log"; sleep 2; echo end >>"$0/log"' "$T"
	local a=${BG_PIDS[-1]}
	wait_for 10 grep -q start "$T/log" || fail "no command started"
	kill -TERM "$a"
	wait_gone "$a" 15
	assert_equal "$wstatus" 0
	assert_equal "$(cat "$T/log")" "$(printf 'start one\nend')"
	assert_equal "$(qfield jobs messages)" 1
	assert_equal "$(qfield jobs ready)" 1
	assert_equal "$(qfield jobs acked)" 1
	assert_equal "$(qfield jobs redelivered)" 0
	run sub -q jobs -C 1
	assert_output two
}

@test "worker: after kill -9 of mom-sub another worker gets the message after the ack wait" {
	start_broker
	qcreate jobs --ack-wait 2s
	pub -q jobs -m held
	bg mom-sub -q jobs -- sh -c 'echo "A $MOM_DELIVERY" >>"$0/log"; sleep 4' "$T"
	local a=${BG_PIDS[-1]}
	wait_for 10 grep -q A "$T/log" || fail "no command started"
	kill -9 "$a"
	local t0 t1
	t0=$(ms_now)
	run sub -q jobs -C 1 -W 15 -- sh -c 'echo "B $MOM_DELIVERY $(cat)" >>"$0/log"' "$T"
	t1=$(ms_now)
	assert_success
	assert_equal "$(cat "$T/log")" "$(printf 'A 1\nB 2 held')"
	((t1 - t0 >= 1000)) || fail "redelivered after $((t1 - t0)) ms, before the ack wait"
	assert_equal "$(qfield jobs messages)" 0
}

@test "worker: -t runs the command for topic messages with MOM_TOPIC set" {
	start_broker
	tcreate events
	bg mom-sub -t events -C 2 -P 2 -- sh -c 'echo "$MOM_TOPIC $(cat)" >>"$0/log"' "$T"
	local a=${BG_PIDS[-1]}
	wait_for 10 bash -c '[ "$(mom-admin --json sub list events | jq length)" = 1 ]' || fail "no subscription"
	pub -t events -m e1
	pub -t events -m e2
	wait_gone "$a" 10
	assert_equal "$wstatus" 0
	assert_equal "$(sort "$T/log")" "$(printf 'events e1\nevents e2')"
}

@test "worker: a command that cannot be run exits 127 and gives the message back uncounted" {
	start_broker
	qcreate jobs
	pub -q jobs -m m
	run -127 --separate-stderr sub -q jobs -C 1 -- /nonexistent/cmd
	assert_equal "$status" 127
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == "mom-sub: cannot run '/nonexistent/cmd': "* ]] || fail "stderr: $stderr"
	assert_equal "$(qfield jobs ready)" 1
	run sub -q jobs -C 1 -F '%d %p'
	assert_output '1 m'
}

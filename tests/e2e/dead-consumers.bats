#!/usr/bin/env bats
# Consumers that die while parked in a long poll (kill -9: no goodbye) are
# forgotten when their connection closes: the next message goes to a live
# consumer at once, not to a dead one and back only after the ack wait.

bats_require_minimum_version 1.5.0
load helpers

waiting_is() { [ "$(admin --json stats | jq -r .waiting_consumers)" = "$1" ]; }

# N consumers, parked in long polls, then killed with SIGKILL.
dead_consumers() {
	local pids=() i
	for ((i = 0; i < $1; i++)); do
		mom-sub -q q -C 1 -W 60 >/dev/null 2>&1 3>&- &
		pids+=($!)
	done
	wait_for 10 waiting_is "$1" || fail "the consumers never parked"
	kill -KILL "${pids[@]}"
	wait "${pids[@]}" 2>/dev/null || true
}

@test "nng: consumers killed in a long poll get no message; a live one gets it at once" {
	start_broker
	qcreate q --ack-wait 60s
	dead_consumers 3
	# Their polls are dropped as their connections close (mom-sub's own
	# polls last about 10 s: well before they would end by themselves).
	wait_for 3 waiting_is 0 || fail "dead consumers still parked: $(admin --json stats | jq .waiting_consumers)"
	bg mom-sub -q q -C 1 -W 20 >"$T/live.out"
	wait_for 10 waiting_is 1
	run -0 pub -q q -m hello
	wait_for 5 grep -qx hello "$T/live.out" || fail "the live consumer did not get the message within 5 s"
	assert_equal "$(qfield q delivered)" 1
	assert_equal "$(qfield q redelivered)" 0
}

@test "http: a long poll whose client vanished gets no message; a live one gets it at once" {
	local hport
	hport=$(free_port)
	start_broker --http "127.0.0.1:$hport"
	qcreate q --ack-wait 60s
	curl -sS -m 60 "http://127.0.0.1:$hport/v1/queues/q/messages?wait=50" >/dev/null 2>&1 3>&- &
	local pid=$!
	wait_for 10 waiting_is 1 || fail "the HTTP poll never parked"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	wait_for 3 waiting_is 0 || fail "the vanished HTTP poll is still parked"
	timeout 20 curl -sS "http://127.0.0.1:$hport/v1/queues/q/messages?wait=15" >"$T/live.json" 3>&- &
	BG_PIDS+=($!)
	wait_for 10 waiting_is 1
	run -0 pub -q q -m hello
	wait_for 5 grep -q '"payload":"hello"' "$T/live.json" || fail "the live poll did not get the message within 5 s"
	assert_equal "$(qfield q redelivered)" 0
}

#!/usr/bin/env bats
# use-deadletters.bats: dead letters as a user meets them (issue 12, items 6
# and 7): looking at a dead-letter queue leaves its messages there, each
# dead letter says why it died, queue move says what it did, and queue
# update changes a queue in place (the calculator README's steps).

bats_require_minimum_version 1.5.0
load helpers

# start_both: a broker with the HTTP API too; H is its base URL.
start_both() {
	local hp
	hp=$(free_port)
	H="http://127.0.0.1:$hp"
	start_broker --http "127.0.0.1:$hp" "$@" || return 1
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

# hc ARGS...: curl with a time limit.
hc() { timeout "$TMO" curl -sS "$@"; }

@test "queue peek shows dead letters and leaves them for queue move" {
	start_broker
	qcreate work.dead
	qcreate work --max-deliver 2 --dead-letter work.dead
	pub -q work -m 'poison' -H 'X-Job: 7'
	pub -q work -m 'flaky'
	# poison is rejected at once (exit 65), flaky fails twice (exit 3).
	run sub -q work -C 3 -W 10 -- sh -c 'read -r p; [ "$p" = poison ] && exit 65; exit 3'
	assert_success
	wait_for 10 qfield_is work.dead messages 2

	run admin queue peek work.dead
	assert_success
	assert_line --partial 'poison'
	assert_line --partial 'flaky'
	run admin --json queue peek work.dead
	assert_success
	# Looking took nothing: both still there, nothing delivered.
	assert_equal "$(qfield work.dead messages)" 2
	assert_equal "$(qfield work.dead delivered)" 0
	# Why each died, as headers; the publisher's own stay.
	p='.messages[] | select(.payload == "poison") | .headers'
	assert_equal "$(jq -r "$p"'["Mom-Dead-Queue"]' <<<"$output")" work
	assert_equal "$(jq -r "$p"'["Mom-Dead-Reason"]' <<<"$output")" rejected
	assert_equal "$(jq -r "$p"'["Mom-Dead-Exit-Status"]' <<<"$output")" 65
	assert_equal "$(jq -r "$p"'["Mom-Dead-Deliveries"]' <<<"$output")" 1
	assert_equal "$(jq -r "$p"'["X-Job"]' <<<"$output")" 7
	f='.messages[] | select(.payload == "flaky") | .headers'
	assert_equal "$(jq -r "$f"'["Mom-Dead-Reason"]' <<<"$output")" max-deliveries
	assert_equal "$(jq -r "$f"'["Mom-Dead-Deliveries"]' <<<"$output")" 2
	# -n: the oldest first.
	run admin --json queue peek work.dead -n 1
	assert_success
	assert_equal "$(jq -r '.messages | length' <<<"$output")" 1
	assert_equal "$(jq -r '.messages[0].payload' <<<"$output")" poison

	# The headers travel with the message: mom-sub -F shows them.
	run admin queue move work.dead work
	assert_success
	assert_output 'moved 2 messages'
	run admin queue move work.dead work
	assert_output 'moved 0 messages'
	run admin --quiet queue move work.dead work
	assert_output ''
	run sub -q work -C 2 -F '%p %h{Mom-Dead-Reason}\n'
	assert_success
	assert_line 'poison rejected'
	assert_line 'flaky max-deliveries'
}

@test "a worker that keeps running runs again a dead letter moved back to its queue" {
	start_broker
	qcreate jobs.dead
	qcreate jobs --dead-letter jobs.dead
	pub -q jobs -m job1
	# Exit 65 until the fix is in ($T/fixed), then the job is done.
	bg sub -q jobs -- sh -c "if [ -e '$T/fixed' ]; then cat >>'$T/ran'; else exit 65; fi"
	local pid=${BG_PIDS[-1]}
	wait_for 10 qfield_is jobs.dead messages 1 || fail "not dead-lettered"
	touch "$T/fixed"
	run admin queue move jobs.dead jobs
	assert_success
	wait_for 10 test -s "$T/ran" || fail "the worker did not run the moved message"
	assert_equal "$(cat "$T/ran")" job1
	stop_pid "$pid" TERM
}

@test "dead-letter headers survive a restart, and expired messages die with a reason" {
	start_broker
	qcreate ttl.dead
	qcreate ttl --ttl 1s --dead-letter ttl.dead
	pub -q ttl -m old
	wait_for 10 qfield_is ttl.dead messages 1
	stop_pid "$BROKER_PID" TERM
	start_broker
	run admin --json queue peek ttl.dead
	assert_success
	assert_equal "$(jq -r '.messages[0].payload' <<<"$output")" old
	assert_equal "$(jq -r '.messages[0].headers["Mom-Dead-Reason"]' <<<"$output")" expired
	assert_equal "$(jq -r '.messages[0].headers["Mom-Dead-Queue"]' <<<"$output")" ttl
	assert_equal "$(qfield ttl expired)" 0
	assert_equal "$(qfield ttl dead_lettered)" 1
}

@test "peek over HTTP: GET .../messages?peek=1 and mom-admin -s http://" {
	start_both
	qcreate h
	pub -q h -m one
	pub -q h -m two
	run hc "$H/v1/queues/h/messages?peek=1&max=1"
	assert_success
	assert_equal "$(jq -r '.messages | length' <<<"$output")" 1
	assert_equal "$(jq -r '.messages[0].payload' <<<"$output")" one
	assert_equal "$(jq -r '.messages[0].receipt' <<<"$output")" null
	run admin -s "$H" --json queue peek h
	assert_success
	assert_equal "$(jq -r '[.messages[].payload] | join(" ")' <<<"$output")" 'one two'
	assert_equal "$(qfield h ready)" 2
	run hc -o /dev/null -w '%{http_code}' "$H/v1/queues/nope/messages?peek=1"
	assert_output 404
	run hc -o /dev/null -w '%{http_code}' "$H/v1/queues/h/messages?peek=maybe"
	assert_output 400
}

@test "queue update changes a queue in place, over nng and HTTP, and replays" {
	start_both
	qcreate calc.dead
	qcreate calc
	pub -q calc -m 'div 1 0'
	run admin queue update calc --max-deliver 3 --dead-letter calc.dead --ack-wait 5s
	assert_success
	assert_equal "$(qfield calc max_deliver)" 3
	assert_equal "$(qfield calc dead_letter)" calc.dead
	assert_equal "$(qfield calc ack_wait_ms)" 5000
	# What it held stays.
	assert_equal "$(qfield calc messages)" 1
	# What is not given is kept; an empty dead-letter queue removes it.
	run admin queue update calc --dead-letter ''
	assert_success
	assert_equal "$(qfield calc dead_letter)" null
	assert_equal "$(qfield calc max_deliver)" 3
	run admin -s "$H" queue update calc --max-len 10 --dead-letter calc.dead
	assert_success
	assert_equal "$(qfield calc max_len)" 10
	run hc -X POST --data '{"ttl":"1h"}' "$H/v1/queues/calc/update"
	assert_success
	assert_equal "$(jq -r .ttl_ms <<<"$output")" 3600000
	# Declaring it again with other options is still refused: update is the way.
	run admin queue create calc --max-deliver 5
	assert_failure
	assert_output --partial 'exists with other options'
	stop_pid "$BROKER_PID" TERM
	start_broker
	assert_equal "$(qfield calc max_deliver)" 3
	assert_equal "$(qfield calc max_len)" 10
	assert_equal "$(qfield calc ttl_ms)" 3600000
	assert_equal "$(qfield calc dead_letter)" calc.dead
	run admin queue update nope --max-len 1
	assert_equal "$status" 66
	run admin queue update calc
	assert_equal "$status" 64
}

@test "peek needs consume rights; update needs the creator and publish rights on the dead-letter queue" {
	mom-auth -d "$T/auth" keygen >/dev/null
	echo pw | mom-auth -d "$T/auth" user add alice --pub 'a.>' --sub 'a.>' >/dev/null
	echo pw | mom-auth -d "$T/auth" user add pubonly --pub 'a.>' >/dev/null
	mom-auth -d "$T/auth" token --user alice --ttl 1h >"$T/alice.jwt"
	mom-auth -d "$T/auth" token --user pubonly --ttl 1h >"$T/pubonly.jwt"
	start_broker --auth-key "$T/auth/mom-auth.pub"
	admin --token-file "$T/alice.jwt" queue create a.q
	pub --token-file "$T/alice.jwt" -q a.q -m hi
	run admin --token-file "$T/alice.jwt" queue peek a.q
	assert_success
	assert_line --partial hi
	run admin --token-file "$T/pubonly.jwt" queue peek a.q
	assert_equal "$status" 77
	run admin --token-file "$T/pubonly.jwt" queue update a.q --max-len 5
	assert_equal "$status" 77
	run admin --token-file "$T/alice.jwt" queue update a.q --dead-letter other.dead
	assert_equal "$status" 77
	assert_output --partial 'needs publish rights'
	run admin --token-file "$T/alice.jwt" queue update a.q --dead-letter a.dead
	assert_success
}

@test "a dead-letter queue that does not exist yet is created when the first message dies: nothing is lost" {
	start_broker
	qcreate calc --max-deliver 2 --dead-letter calc.dead
	pub -q calc -m 'div 1 0'
	run sub -q calc -C 1 -W 10 -- sh -c 'exit 65'
	assert_success
	wait_for 10 qfield_is calc.dead messages 1 || fail "the dead letter is gone: $(admin queue list)"
	run admin --json queue peek calc.dead
	assert_success
	assert_equal "$(jq -r '.messages[0].payload' <<<"$output")" 'div 1 0'
	assert_equal "$(jq -r '.messages[0].headers["Mom-Dead-Reason"]' <<<"$output")" rejected
	# It is a queue like any other, and it stays across a restart.
	stop_pid "$BROKER_PID"
	BROKER_PID=
	start_broker
	assert_equal "$(qfield calc.dead messages)" 1
}

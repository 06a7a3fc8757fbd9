#!/usr/bin/env bats
# Reply queues (issue 11, item 12): a requester's _reply.<hex> queue is
# private to the user that created it (and admins): another user allowed
# mom.sub on '_reply.>' can neither consume from it nor see it listed;
# and a reply queue nobody polls goes after its idle expiry (a requester
# killed with kill -9, one with -r -W N soon after its deadline).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	export A="$BATS_FILE_TMPDIR/auth"
	mom-auth -d "$A" keygen >/dev/null
	# alice asks, worker answers, mallory may read every reply queue by her patterns.
	echo pw-a | mom-auth -d "$A" user add alice --pub 'calc' --pub '_reply.>' \
	    --sub '_reply.>' >/dev/null
	echo pw-w | mom-auth -d "$A" user add worker --sub 'calc' --pub '_reply.>' >/dev/null
	echo pw-m | mom-auth -d "$A" user add mallory --pub '_reply.>' --sub '_reply.>' >/dev/null
	echo pw-r | mom-auth -d "$A" user add root --admin >/dev/null
	for u in alice worker mallory root; do
		mom-auth -d "$A" token --user "$u" --ttl 1h >"$A/$u.jwt"
	done
}

# as USER COMMAND...: a client with USER's token.
as() {
	local u=$1
	shift
	MOM_TOKEN_FILE="$A/$u.jwt" timeout "$TMO" "$@"
}

RQ=_reply.00112233445566aa

# A reply queue of alice's with one reply in it (from the worker).
alice_reply_queue() {
	as alice mom-admin queue create "$RQ"
	as worker mom-pub -q "$RQ" -H 'Mom-Correlation-Id: c1' -m 'the reply'
}

# reply_queues USER: the _reply.* queues USER's queue list shows ("-": no token).
reply_queues() {
	if [ "$1" = - ]; then
		admin queue list
	else
		as "$1" mom-admin queue list
	fi | awk '$1 ~ /^_reply\./ { print $1 }'
}

# For wait_for (which runs a command again, not a $(...) expanded once).
has_reply_queue() { [ -n "$(reply_queues "$1")" ]; }
no_reply_queue() { [ -z "$(reply_queues "$1")" ]; }

@test "another user with mom.sub on '_reply.>' cannot consume from a reply queue, see it or declare it (77)" {
	start_broker --auth-key "$A/mom-auth.pub"
	alice_reply_queue
	run -77 --separate-stderr as mallory mom-sub -q "$RQ" -C 1 -W 2
	assert_output ""
	assert_equal "$stderr" "mom-sub: permission denied: consume from queue '$RQ': it is private to its creator"
	run -0 reply_queues mallory
	assert_output ""
	run -77 --separate-stderr as mallory mom-admin queue info "$RQ"
	assert_equal "${#stderr_lines[@]}" 1
	run -77 --separate-stderr as mallory mom-admin queue create "$RQ"
	assert_equal "${#stderr_lines[@]}" 1
	run -0 as mallory mom-admin stats --prom
	refute_output --partial _reply.
	# Nothing was taken: the reply is still there for alice.
	assert_equal "$(as root mom-admin --json queue info "$RQ" | jq -r .messages)" 1
}

@test "the creator and an admin see and consume a reply queue" {
	start_broker --auth-key "$A/mom-auth.pub"
	alice_reply_queue
	run -0 reply_queues alice
	assert_output "$RQ"
	run -0 reply_queues root
	assert_output "$RQ"
	run -0 as root mom-admin --json queue info "$RQ"
	assert_output --partial '"owner":"alice"'
	run -0 as root mom-admin stats --prom
	assert_output --partial "$RQ"
	run -0 as alice mom-sub -q "$RQ" -C 1 -W 5
	assert_output 'the reply'
	# Publishing to it stays open to the patterns: that is how replies come.
	run -0 as mallory mom-pub -q "$RQ" -m 'another reply'
	run -0 as root mom-sub -q "$RQ" -C 1 -W 5
	assert_output 'another reply'
}

@test "over HTTP: another user gets 403 on a reply queue's messages and info, and no listing of it" {
	local hp H
	hp=$(free_port)
	H="http://127.0.0.1:$hp"
	start_broker --auth-key "$A/mom-auth.pub" --http "127.0.0.1:$hp"
	alice_reply_queue
	local tm ta
	tm=$(cat "$A/mallory.jwt")
	ta=$(cat "$A/alice.jwt")
	run -0 timeout "$TMO" curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tm" \
	    "$H/v1/queues/$RQ/messages?max=1"
	assert_output 403
	run -0 timeout "$TMO" curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tm" \
	    "$H/v1/queues/$RQ"
	assert_output 403
	run -0 timeout "$TMO" curl -sS -H "Authorization: Bearer $tm" "$H/v1/queues"
	refute_output --partial _reply.
	run -0 timeout "$TMO" curl -sS -H "Authorization: Bearer $ta" "$H/v1/queues"
	assert_output --partial "$RQ"
	run -0 timeout "$TMO" curl -sS -H "Authorization: Bearer $ta" "$H/v1/queues/$RQ/messages?max=1"
	assert_output --partial 'the reply'
}

@test "a requester killed with kill -9 leaves a reply queue that goes after its idle expiry" {
	start_broker --auth-key "$A/mom-auth.pub"
	as root mom-admin queue create calc
	MOM_TOKEN_FILE="$A/alice.jwt" bg mom-pub -q calc -r --reply-expire 2s -m 'no one answers'
	local pid=${BG_PIDS[-1]}
	wait_for 10 has_reply_queue root || fail "no reply queue"
	run -0 as root mom-admin --json queue info "$(reply_queues root)"
	assert_output --partial '"idle_expire_ms":2000'
	stop_pid "$pid" KILL
	wait_for 15 no_reply_queue root || fail "the reply queue is still there: $(reply_queues root)"
	# The request itself stays: only the requester's own queue went.
	assert_equal "$(as root mom-admin --json queue info calc | jq -r .messages)" 1
}

@test "-r -W 2: a killed requester's reply queue is gone soon after the deadline" {
	start_broker
	qcreate calc
	bg mom-pub -q calc -r -W 2 -m 'no one answers'
	local pid=${BG_PIDS[-1]} t0
	wait_for 10 has_reply_queue - || fail "no reply queue"
	stop_pid "$pid" KILL
	t0=$(ms_now)
	# The expiry is the wait, at least 5 s (the request must get out first).
	wait_for 15 no_reply_queue - || fail "the reply queue is still there"
	(($(ms_now) - t0 < 12000)) || fail "gone only after $(($(ms_now) - t0)) ms"
}

@test "-r -W 8: the reply queue's idle expiry is the wait; without -W, --reply-expire's 5 minutes" {
	start_broker
	qcreate calc
	bg mom-pub -q calc -r -W 8 -m 'no one answers'
	wait_for 10 has_reply_queue - || fail "no reply queue"
	assert_equal "$(admin --json queue info "$(reply_queues -)" | jq -r .idle_expire_ms)" 8000
	stop_pid "${BG_PIDS[-1]}" KILL
	admin queue delete "$(reply_queues -)"
	bg mom-pub -q calc -r -m 'no one answers'
	wait_for 10 has_reply_queue - || fail "no reply queue"
	assert_equal "$(admin --json queue info "$(reply_queues -)" | jq -r .idle_expire_ms)" 300000
}

@test "a requester that waits longer than its reply queue's idle expiry keeps it: a parked poll is use" {
	start_broker
	qcreate calc
	mom-pub -q calc -r --reply-expire 1s -W 20 -m 'late answer' >"$T/out" 2>"$T/err" 3>&- &
	local rpid=$!
	wait_for 10 has_reply_queue - || fail "no reply queue"
	sleep 3 # three expiries of waiting
	run -0 sub -q calc -C 1 -- echo answered
	wait "$rpid" || fail "the requester failed: $(cat "$T/err")"
	assert_equal "$(cat "$T/out")" answered
}

@test "a queue's idle expiry holds over a restart and a snapshot, and counts from the restart" {
	start_broker --snapshot-after 4096
	admin queue create idle --idle-expire 4s
	admin queue create keep
	# enough log for a snapshot to hold the queues
	head -c 30000 /dev/zero | tr '\0' x | fold -w 100 | pub -q keep -l
	stop_pid "$BROKER_PID" TERM
	mom-broker -D "$T/data" -l "$MOM_URL" >>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL"
	assert_equal "$(qfield idle idle_expire_ms)" 4000
	assert_equal "$(qfield keep idle_expire_ms)" 0
	wait_for 15 bash -c '! mom-admin queue info idle >/dev/null 2>&1' || fail "idle queue still there"
	assert_equal "$(qfield keep name)" keep
	# declaring it again with another expiry is "exists with other options"
	admin queue create keep2 --idle-expire 1m
	run -1 admin queue create keep2 --idle-expire 2m
}

@test "on a broker without authentication anyone may read a reply queue: the name is its only protection" {
	start_broker
	admin queue create "$RQ"
	pub -q "$RQ" -m r
	run -0 sub -q "$RQ" -C 1
	assert_output r
}

#!/usr/bin/env bats
# mom-pub -r: request/reply against a fake responder made of mom-sub and
# mom-pub (reads one request, answers on its Mom-Reply-To queue with its
# Mom-Correlation-Id and a Mom-Exit-Status).

bats_require_minimum_version 1.5.0
load helpers

# The broker is (re)started the way durability.bats does it, so that a
# test can kill -9 it and bring it back on the same port and data dir.
broker_up() {
	mom-broker -D "$T/data" -l "$MOM_URL" --http off >>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
}

dstart() {
	PORT=$(free_port)
	export PORT MOM_URL="tcp://127.0.0.1:$PORT"
	broker_up
	wait_ping "$MOM_URL"
}

restart_kill() {
	{ stop_pid "$BROKER_PID" KILL; } 2>/dev/null
	broker_up
	wait_ping "$MOM_URL" || fail "the broker did not come back after kill -9"
}

# responder.sh QUEUE STATUS ANSWER [FOREIGN]: answers one request; with
# FOREIGN, first puts a reply with a wrong correlation id into the reply
# queue.  STATUS "-" sends no Mom-Exit-Status.  Writes the request's
# reply address, correlation id, X-Trace header and payload to
# $T/request.seen.
write_responder() {
	cat >"$T/responder.sh" <<'SH'
#!/bin/bash
q=$1 st=$2 answer=$3 foreign=$4
line=$(timeout 20 mom-sub -q "$q" -C 1 -F '%h{Mom-Reply-To} %h{Mom-Correlation-Id} %h{X-Trace} %p') || exit 1
printf '%s\n' "$line" >"$T/request.seen.tmp"
mv "$T/request.seen.tmp" "$T/request.seen"
read -r rt corr _ <<<"$line"
if [ -n "$foreign" ]; then
	timeout 20 mom-pub -q "$rt" -H "Mom-Correlation-Id: 0123456789abcdef0123456789abcdef" \
		-H 'Mom-Exit-Status: 9' -m 'STALE REPLY' || exit 1
fi
if [ "$st" = - ]; then
	timeout 20 mom-pub -q "$rt" -H "Mom-Correlation-Id: $corr" -m "$answer"
else
	timeout 20 mom-pub -q "$rt" -H "Mom-Correlation-Id: $corr" -H "Mom-Exit-Status: $st" -m "$answer"
fi
SH
	chmod +x "$T/responder.sh"
	export T
}

# no_reply_queues: mom-admin queue list shows no _reply.* queue.
no_reply_queues() {
	! admin queue list | grep -q '^_reply\.'
}

@test "mom-pub -r prints the reply's payload (raw) and exits with its Mom-Exit-Status; the request carries the headers" {
	start_broker
	qcreate calc
	write_responder
	bg "$T/responder.sh" calc 3 answer
	local st=0
	pub -r -q calc -H 'X-Trace: t1' -m '1+2' >"$T/out" 2>"$T/err" || st=$?
	assert_equal "$st" 3
	printf 'answer' | cmp - "$T/out"
	assert_equal "$(cat "$T/err")" ""
	run cat "$T/request.seen"
	assert_output --regexp '^_reply\.[0-9a-f]{16} [0-9a-f]{32} t1 1\+2$'
	wait_for 5 no_reply_queues || fail "the reply queue is still there: $(admin queue list)"
}

@test "mom-pub -r: a reply without Mom-Exit-Status, or with a bad one, exits 0; the payload is byte for byte" {
	start_broker
	qcreate calc
	write_responder
	bg "$T/responder.sh" calc - 'two
lines'
	run --separate-stderr pub -r -q calc -H 'X-Trace: t' -m x
	assert_success
	assert_output $'two\nlines'
	bg "$T/responder.sh" calc 300 big
	run --separate-stderr pub -r -q calc -H 'X-Trace: t' -m x
	assert_success
	assert_output big
	bg "$T/responder.sh" calc abc nan
	run --separate-stderr pub -r -q calc -H 'X-Trace: t' -m x
	assert_success
	assert_output nan
}

@test "mom-pub -r never prints a reply whose correlation id is not its own" {
	start_broker
	qcreate calc
	write_responder
	bg "$T/responder.sh" calc 4 'the real answer' foreign
	run --separate-stderr pub -r -q calc -H 'X-Trace: t' -m q
	assert_equal "$status" 4
	assert_output 'the real answer'
	refute_output --partial STALE
	assert_equal "$stderr" ""
	wait_for 5 no_reply_queues || fail "the reply queue is still there: $(admin queue list)"
}

@test "mom-pub -r -W 1 without a responder exits 75 in time with one stderr line and removes its reply queue" {
	start_broker
	qcreate calc
	local t0 t1
	t0=$(ms_now)
	run --separate-stderr pub -r -W 1 -q calc -m 'nobody home'
	t1=$(ms_now)
	assert_one_line_error mom-pub 75
	assert_output ""
	((t1 - t0 >= 900 && t1 - t0 < 3000)) || fail "took $((t1 - t0)) ms"
	no_reply_queues || fail "the reply queue is still there: $(admin queue list)"
	# the request itself was published (and confirmed)
	assert_equal "$(qfield calc messages)" 1
}

@test "mom-pub -r stdin and -f are one message each" {
	start_broker
	qcreate calc
	write_responder
	bg "$T/responder.sh" calc 0 ok
	run --separate-stderr pub -r -q calc -H 'X-Trace: s' <<<'from stdin'
	assert_success
	assert_output ok
	run cat "$T/request.seen"
	assert_output --regexp ' s from stdin$'
	printf 'from a file' >"$T/in"
	bg "$T/responder.sh" calc 0 ok2
	run --separate-stderr pub -r -q calc -H 'X-Trace: f' -f "$T/in"
	assert_success
	assert_output ok2
	run cat "$T/request.seen"
	assert_output --regexp ' f from a file$'
}

@test "mom-pub -r with -l, -0 or --jsonl, or with its own headers in -H, is a usage error" {
	run --separate-stderr timeout 5 mom-pub -r -q calc -l </dev/null
	assert_one_line_error mom-pub 64
	run --separate-stderr timeout 5 mom-pub -r -q calc -0 </dev/null
	assert_one_line_error mom-pub 64
	run --separate-stderr timeout 5 mom-pub -r --jsonl </dev/null
	assert_one_line_error mom-pub 64
	run --separate-stderr timeout 5 mom-pub -r -q calc -m x -H 'Mom-Reply-To: elsewhere'
	assert_one_line_error mom-pub 64
	run --separate-stderr timeout 5 mom-pub --request -q calc -m x -H 'mom-correlation-id : 1'
	assert_one_line_error mom-pub 64
	run --separate-stderr mom-pub -h
	assert_output --partial 'mom-pub -r'
}

@test "mom-pub -r to a missing queue exits 66 and leaves no reply queue" {
	start_broker
	run --separate-stderr pub -r -W 5 -q nosuch -m x
	assert_one_line_error mom-pub 66
	no_reply_queues || fail "the reply queue is still there: $(admin queue list)"
}

@test "mom-pub -r survives a broker restart (kill -9) while it waits, and gets the reply" {
	dstart
	qcreate calc
	write_responder
	bg mom-pub -r -q calc -H 'X-Trace: r' -m 'survive' >"$T/out" 2>"$T/err"
	local pid=${BG_PIDS[-1]} i st=0
	# the request is confirmed (stored) before the broker dies
	wait_for 10 qfield_is calc messages 1 || fail "the request never arrived"
	sleep 0.3
	restart_kill
	timeout 30 "$T/responder.sh" calc 5 'after the restart' || fail "the responder failed"
	# the fetch it had in flight is sent again at once on the new
	# connection (not after nng's 30 s resend time)
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "mom-pub -r still waits 5 s after the reply: $(cat "$T/err")"
	wait "$pid" || st=$?
	assert_equal "$st" 5
	printf 'after the restart' | cmp - "$T/out"
	run cat "$T/request.seen"
	assert_output --regexp ' r survive$'
	wait_for 5 no_reply_queues || fail "the reply queue is still there: $(admin queue list)"
}

@test "mom-pub -r with tokens: mom.sub on _reply.> for the requester, mom.pub on it for the responder" {
	A="$T/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw | mom-auth -d "$A" user add req --pub calc --sub '_reply.>' >/dev/null
	echo pw | mom-auth -d "$A" user add worker --sub calc --pub '_reply.>' >/dev/null
	echo pw | mom-auth -d "$A" user add plain --pub calc >/dev/null
	echo pw | mom-auth -d "$A" user add root --admin >/dev/null
	for u in req worker plain root; do
		mom-auth -d "$A" token --user "$u" --ttl 1h >"$A/$u.jwt"
	done
	start_broker --auth-key "$A/mom-auth.pub"
	MOM_TOKEN_FILE="$A/root.jwt" admin queue create calc
	write_responder
	MOM_TOKEN_FILE="$A/worker.jwt" bg "$T/responder.sh" calc 6 'with tokens'
	run --separate-stderr env MOM_TOKEN_FILE="$A/req.jwt" timeout "$TMO" mom-pub -r -q calc -H 'X-Trace: a' -m x
	assert_equal "$status" 6
	assert_output 'with tokens'
	assert_equal "$stderr" ""
	# without rights on _reply.> nothing is published
	run --separate-stderr env MOM_TOKEN_FILE="$A/plain.jwt" timeout "$TMO" mom-pub -r -W 5 -q calc -m y
	assert_one_line_error mom-pub 77
	assert_equal "$(MOM_TOKEN_FILE="$A/root.jwt" qfield calc messages)" 0
	run -0 env MOM_TOKEN_FILE="$A/root.jwt" timeout "$TMO" mom-admin queue list
	refute_output --partial _reply.
}

@test "mom-pub -r stopped by SIGTERM while it waits removes its reply queue" {
	start_broker
	qcreate calc
	bg mom-pub -r -q calc -m 'never answered' 2>"$T/err"
	local pid=${BG_PIDS[-1]} i st=0
	wait_for 10 qfield_is calc messages 1 || fail "the request never arrived"
	admin queue list | grep -q '^_reply\.' || fail "no reply queue while waiting"
	kill -TERM "$pid"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && fail "mom-pub -r still runs 10 s after SIGTERM"
	wait "$pid" || st=$?
	assert_equal "$st" 143
	no_reply_queues || fail "the reply queue is still there: $(admin queue list)"
}

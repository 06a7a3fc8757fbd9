#!/usr/bin/env bats
# Stale receipts (issue 11, item 5).  A receipt names one delivery: an ack
# with a receipt from before a restart, or of a lease that expired and
# went to another consumer, must be refused, never applied to whatever
# message holds that number now.  Reported: a consumer held receipt 2 for
# "a", the broker was killed and restarted, a new consumer got receipt 2
# for "b", the old consumer's ack deleted "b".
#
# Over nng, receipts are kept and settled with build/tools/rawfetch
# (mom-sub settles its own); over HTTP with curl.

bats_require_minimum_version 1.5.0
load helpers

RAW="$E2E_ROOT/build/tools/rawfetch"

# raw fetch|ack|nack ARGS...: rawfetch against this broker, bounded.
raw() { timeout "$TMO" "$RAW" "$MOM_URL" "$@"; }

# broker_on: (re)start the broker on PORT (and HPORT for HTTP) and $T/data.
broker_on() {
	mom-broker -D "$T/data" -l "$MOM_URL" --http "127.0.0.1:$HPORT" >>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL" || fail "the broker did not start"
	H="http://127.0.0.1:$HPORT"
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

setup() {
	T="$BATS_TEST_TMPDIR"
	cd "$T" || return 1
	[ -x "$RAW" ] || skip "build/tools/rawfetch is missing (make tools)"
	PORT=$(free_port)
	HPORT=$(free_port)
	export MOM_URL="tcp://127.0.0.1:$PORT"
}

kill9_restart() {
	{ stop_pid "$BROKER_PID" KILL; } 2>/dev/null
	BROKER_PID=
	broker_on
}

# receipt_of PAYLOAD: the receipt rawfetch printed for PAYLOAD ($output).
receipt_of() { awk -v p="$1" '$2 == p { print $1 }' <<<"$output"; }

# http_get QUEUE: one message over HTTP; sets R (its receipt) and P (payload).
http_get() {
	run -0 timeout "$TMO" curl -sS "$H/v1/queues/$1/messages?max=1"
	R=$(jq -r '.messages[0].receipt' <<<"$output")
	P=$(jq -r '.messages[0].payload' <<<"$output")
	[ "$R" != null ] || fail "no message: $output"
}

# http_settle ack|nack QUEUE RECEIPT...: sets status (HTTP) and output (body).
http_settle() {
	local verb=$1 q=$2 body
	shift 2
	body=$(printf '%s\n' "$@" | jq -R . | jq -cs '{receipts: .}')
	run -0 timeout "$TMO" curl -sS -o "$T/settle.json" -w '%{http_code}' -d "$body" \
		"$H/v1/queues/$q/$verb"
	status=$output
	output=$(cat "$T/settle.json")
}

@test "nng: an ack from before kill -9 is refused and does not delete the message that now has its number" {
	broker_on
	qcreate q --ack-wait 60s
	run -0 pub -q q -m x
	run -0 pub -q q -m a
	# The old consumer takes x and acks it, then holds a.
	run -0 raw fetch q 101 1
	rx=$(receipt_of x)
	run -0 raw ack q 101 "$rx"
	run -0 raw fetch q 101 1
	ra=$(receipt_of a)
	[ -n "$ra" ] || fail "no a: $output"
	kill9_restart
	# a is back (its lease died with the broker); b comes after it.
	run -0 pub -q q -m b
	run -0 raw fetch q 202 1
	ra2=$(receipt_of a)
	[ -n "$ra2" ] || fail "a was not redelivered: $output"
	run -0 raw ack q 202 "$ra2"
	run -0 raw fetch q 202 1
	rb=$(receipt_of b)
	[ -n "$rb" ] || fail "no b: $output"
	echo "# receipts: a $ra before the restart; a $ra2 and b $rb after" >&3
	# The old consumer's ack: b stays, and the ack is refused.
	run -0 raw ack q 101 "$ra"
	assert_equal "$(qfield q messages)" 1
	assert_output "stale $ra"
	[ "$ra" != "$rb" ] && [ "$ra" != "$ra2" ] || fail "a receipt was handed out twice: $ra, $ra2, $rb"
	# b is still b's: given back, delivered again, acked.
	run -0 raw nack q 202 "$rb"
	assert_output ""
	run -0 raw fetch q 303 1
	rb2=$(receipt_of b)
	[ -n "$rb2" ] || fail "b was not delivered again: $output"
	run -0 raw ack q 303 "$rb2"
	assert_output ""
	assert_equal "$(qfield q messages)" 0
}

@test "nng: the ack of an expired lease does not settle the message re-leased to another consumer" {
	broker_on
	# 5 s: what follows the second receive must finish within it
	qcreate q --ack-wait 5s
	run -0 pub -q q -m a
	run -0 raw fetch q 101 1
	r1=$(receipt_of a)
	[ -n "$r1" ] || fail "no a: $output"
	wait_for 15 qfield_is q redelivered 1 || fail "the lease never expired"
	run -0 raw fetch q 202 1
	r2=$(receipt_of a)
	[ -n "$r2" ] || fail "a was not redelivered: $output"
	[ "$r1" != "$r2" ] || fail "the redelivery reused receipt $r1"
	run -0 raw ack q 101 "$r1"
	assert_output "stale $r1"
	assert_equal "$(qfield q messages)" 1
	assert_equal "$(qfield q acked)" 0
	run -0 raw ack q 202 "$r2"
	assert_output ""
	assert_equal "$(qfield q messages)" 0
}

@test "http: an ack from before kill -9 is refused with 409 and does not delete the message that now has its number" {
	broker_on
	qcreate q --ack-wait 60s
	run -0 pub -q q -m x
	run -0 pub -q q -m a
	http_get q
	http_settle ack q "$R"
	assert_equal "$status" 200
	http_get q
	assert_equal "$P" a
	ra=$R
	kill9_restart
	run -0 pub -q q -m b
	http_get q
	assert_equal "$P" a
	http_settle ack q "$R"
	assert_equal "$status" 200
	okbody=$output
	http_get q
	assert_equal "$P" b
	rb=$R
	http_settle ack q "$ra"
	assert_equal "$(qfield q messages)" 1
	assert_equal "$status" 409
	assert_equal "$(jq -c . <<<"$okbody")" '{"acked":1,"stale":[]}'
	[ "$ra" != "$rb" ] || fail "receipt $ra was handed out twice"
	assert_equal "$(jq -r .code <<<"$output")" stale_receipt
	assert_equal "$(jq -c .stale <<<"$output")" "[\"$ra\"]"
	assert_equal "$(jq -r .acked <<<"$output")" 0
	# b is still b's lease: a mixed batch settles b and names the stale one.
	http_settle ack q "$ra" "$rb"
	assert_equal "$status" 409
	assert_equal "$(jq -c '[.acked, .stale]' <<<"$output")" "[1,[\"$ra\"]]"
	assert_equal "$(qfield q messages)" 0
}

@test "http: the ack of an expired lease is refused with 409 and the new lease holds" {
	broker_on
	# 5 s: what follows the second receive must finish within it
	qcreate q --ack-wait 5s
	run -0 pub -q q -m a
	http_get q
	r1=$R
	wait_for 15 qfield_is q redelivered 1 || fail "the lease never expired"
	http_get q
	r2=$R
	[ "$r1" != "$r2" ] || fail "the redelivery reused receipt $r1"
	http_settle ack q "$r1"
	assert_equal "$status" 409
	assert_equal "$(qfield q messages)" 1
	http_settle nack q "$r1"
	assert_equal "$status" 409
	assert_equal "$(jq -c .stale <<<"$output")" "[\"$r1\"]"
	assert_equal "$(qfield q in_flight)" 1
	http_settle ack q "$r2"
	assert_equal "$status" 200
	assert_equal "$(qfield q messages)" 0
}

@test "http with tokens: a user cannot settle another user's delivery by its receipt; an admin can" {
	local a="$T/auth" u
	mom-auth -d "$a" keygen >/dev/null
	echo pw | mom-auth -d "$a" user add alice --pub 'jobs.>' --sub 'jobs.>' >/dev/null
	echo pw | mom-auth -d "$a" user add bob --sub 'jobs.>' >/dev/null
	echo pw | mom-auth -d "$a" user add root --admin >/dev/null
	for u in alice bob root; do
		mom-auth -d "$a" token --user "$u" --ttl 1h >"$a/$u.jwt"
	done
	mom-broker -D "$T/data" -l "$MOM_URL" --http "127.0.0.1:$HPORT" --auth-key "$a/mom-auth.pub" \
		>>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL" || fail "the broker did not start"
	H="http://127.0.0.1:$HPORT"
	MOM_TOKEN_FILE="$a/alice.jwt" timeout "$TMO" mom-pub --create -q jobs.q -m one
	MOM_TOKEN_FILE="$a/alice.jwt" timeout "$TMO" mom-pub -q jobs.q -m two
	auth() { echo "Authorization: Bearer $(cat "$a/$1.jwt")"; }
	run -0 timeout "$TMO" curl -sS -H "$(auth alice)" "$H/v1/queues/jobs.q/messages?max=2"
	r1=$(jq -r '.messages[0].receipt' <<<"$output")
	r2=$(jq -r '.messages[1].receipt' <<<"$output")
	# bob may consume jobs.q, but what alice holds is alice's.
	run -0 timeout "$TMO" curl -sS -o "$T/s.json" -w '%{http_code}' -H "$(auth bob)" \
		-d "{\"receipts\":[\"$r1\"]}" "$H/v1/queues/jobs.q/ack"
	assert_output 409
	assert_equal "$(jq -c .stale "$T/s.json")" "[\"$r1\"]"
	run -0 timeout "$TMO" curl -sS -o "$T/s.json" -w '%{http_code}' -H "$(auth alice)" \
		-d "{\"receipts\":[\"$r1\"]}" "$H/v1/queues/jobs.q/ack"
	assert_output 200
	run -0 timeout "$TMO" curl -sS -o "$T/s.json" -w '%{http_code}' -H "$(auth root)" \
		-d "{\"receipts\":[\"$r2\"]}" "$H/v1/queues/jobs.q/ack"
	assert_output 200
	run -0 timeout "$TMO" curl -sS -H "$(auth root)" "$H/v1/queues/jobs.q"
	assert_equal "$(jq -r .messages <<<"$output")" 0
}

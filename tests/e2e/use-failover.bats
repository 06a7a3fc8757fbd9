#!/usr/bin/env bats
# Clients with a list of brokers (issue 13, item 4, the client side): a
# request that one broker does not answer within --request-timeout goes to
# the next one of the list, and a broker that went silent or away is set
# aside.  Two independent single brokers A and B stand in for a cluster:
# each answers by itself, so what reaches B is what failed over.  A broker
# that is SIGSTOPped keeps its TCP connections: only a deadline notices it.

bats_require_minimum_version 1.5.0
load helpers

APID=
BPID=

# start_ab: brokers A and B (nng and HTTP) on free ports, each with its own
# data directory; A, B (nng URLs), HA, HB (HTTP base URLs).
start_ab() {
	local pa pb ha hb
	pa=$(free_port) pb=$(free_port) ha=$(free_port) hb=$(free_port)
	A="tcp://127.0.0.1:$pa" B="tcp://127.0.0.1:$pb"
	HA="http://127.0.0.1:$ha" HB="http://127.0.0.1:$hb"
	mom-broker -D "$T/a" -l "$A" --http "127.0.0.1:$ha" >"$T/a.log" 2>&1 3>&- &
	APID=$!
	mom-broker -D "$T/b" -l "$B" --http "127.0.0.1:$hb" >"$T/b.log" 2>&1 3>&- &
	BPID=$!
	wait_ping "$A" || return 1
	wait_ping "$B" || return 1
	wait_for 10 curl -sf -o /dev/null "$HA/healthz" || fail "no HTTP API on $HA"
	wait_for 10 curl -sf -o /dev/null "$HB/healthz" || fail "no HTTP API on $HB"
	admin -s "$A" queue create q
	admin -s "$B" queue create q
}

teardown() {
	# SIGCONT first (stop_pid does), then stop by PID.
	stop_pid "$APID" TERM
	stop_pid "$BPID" TERM
	APID= BPID=
	local p
	for p in "${BG_PIDS[@]}"; do
		stop_pid "$p" KILL
	done
	BG_PIDS=()
	tmp_release
}

# count URL: messages in queue q at URL.
count() { admin -s "$1" --json queue info q | jq -r .messages; }

# timed CMD...: runs CMD (under timeout), its status in ST and its
# duration in ms in DT.
timed() {
	local t0
	t0=$(ms_now)
	ST=0
	"$@" || ST=$?
	DT=$(($(ms_now) - t0))
}

@test "one-shot: mom-pub -s A,B with A stopped publishes to B in seconds" {
	start_ab
	kill -STOP "$APID"
	timed timeout 30 mom-pub -s "$A,$B" -q q -m hello 2>"$T/err"
	kill -CONT "$APID"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	# the request timeout (2 s) on A, then B; not the 10 s of a lone broker
	((DT < 9000)) || fail "took $DT ms"
	assert_equal "$(count "$B")" 1
}

@test "streaming: 1000 lines to -s A,B with A stopped all land on B" {
	start_ab
	kill -STOP "$APID"
	timed timeout 40 mom-pub -s "$A,$B" -q q -l < <(seq 1 1000) 2>"$T/err"
	kill -CONT "$APID"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	((DT < 30000)) || fail "took $DT ms"
	assert_equal "$(count "$B")" 1000
	run -0 sub -s "$B" -q q -C 1000
	assert_equal "$(sort -n <<<"$output" | uniq)" "$(seq 1 1000)"
}

# gate FILE: waits (at most 20 s) until FILE exists.
gate() {
	local i
	for ((i = 0; i < 400; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
}

# total: messages in q on A and B together.
total() { echo $(($(count "$A") + $(count "$B"))); }

# count_is URL N, total_is N: for wait_for.
count_is() { [ "$(count "$1" 2>/dev/null)" = "$2" ]; }
total_is() { [ "$(total 2>/dev/null)" = "$1" ]; }

# on URL_A URL_B: sets ON, ONPID (the broker a client works with, URL
# given) and OFF (the other one).
on() {
	if [ "$1" = "$A" ]; then
		ON=$A ONPID=$APID OFF=$B
	else
		ON=$B ONPID=$BPID OFF=$A
	fi
}

# waiting URL: the long polls parked at URL.
waiting() { admin -s "$1" --json stats 2>/dev/null | jq -r .waiting_consumers; }

# stream_and SIGNAL: 200 lines to -s A,B, then SIGNAL to the broker the
# stream is on, then 800 more; every line must land on A or B (a batch the
# broker read before the signal may be on both).
stream_and() {
	start_ab
	export -f gate
	bg bash -c "{ seq 1 200; gate '$T/go'; for i in \$(seq 201 1000); do echo \$i;
	    [ \$((i % 40)) = 0 ] && sleep 0.1; done; } |
	    mom-pub -s '$A,$B' -q q -l 2>'$T/err'; echo \$? >'$T/st'"
	wait_for 15 total_is 200 || fail "A and B have $(total): $(cat "$T/err")"
	if count_is "$A" 0; then on "$B"; else on "$A"; fi
	kill -"$1" "$ONPID"
	local t0
	t0=$(ms_now)
	touch "$T/go"
	# nng alone resent a request that went to the stopped broker after 30 s
	wait_for 20 test -s "$T/st" || { kill -CONT "$ONPID"; fail "mom-pub hangs: $(cat "$T/err")"; }
	echo "# done $(($(ms_now) - t0)) ms after SIG$1" >&3
	kill -CONT "$ONPID" 2>/dev/null || true
	assert_equal "$(cat "$T/st")" 0
	if [ "$1" = KILL ]; then
		[ "$ONPID" = "$APID" ] && APID= || BPID=
		wait "$ONPID" 2>/dev/null || true
		sub -s "$OFF" -q q -C "$(count "$OFF")" >"$T/all"
		# what the killed one took before the signal: lines 1-200 at most
		local first
		first=$(sort -n "$T/all" | head -1)
		((first <= 201)) || fail "B starts at line $first"
		assert_equal "$(sort -n -u "$T/all" | tail -800)" "$(seq 201 1000)"
		return 0
	fi
	{ sub -s "$A" -q q -C "$(count "$A")"; sub -s "$B" -q q -C "$(count "$B")"; } >"$T/all"
	assert_equal "$(sort -n -u "$T/all")" "$(seq 1 1000)"
}

@test "streaming: the broker under a connected mom-pub -s A,B -l stops, every line still lands" {
	stream_and STOP
}

@test "streaming: the broker under a connected mom-pub -s A,B -l is killed, the rest lands on the other" {
	stream_and KILL
}

@test "mom-sub -s A,B: the broker its long poll is parked at stops, messages on the other come" {
	start_ab
	bg bash -c "mom-sub -s '$A,$B' -q q -C 3 >'$T/out' 2>'$T/err'; echo \$? >'$T/st'"
	local i t0
	for ((i = 0; i < 200; i++)); do
		[ "$(waiting "$A")" = 1 ] && { on "$A"; break; }
		[ "$(waiting "$B")" = 1 ] && { on "$B"; break; }
		sleep 0.05
	done
	[ -n "$ON" ] || fail "no long poll parked: $(cat "$T/err")"
	kill -STOP "$ONPID"
	t0=$(ms_now)
	# one at a time (nng alone spread polls over both, so one landed on the stopped one)
	for i in 1 2 3; do
		pub -s "$OFF" -q q -m "$i"
		wait_for 25 count_is "$OFF" 0 || break
	done
	# the parked poll moves on after its wait (10 s) and the request timeout
	wait_for 25 test -s "$T/st" || { kill -CONT "$ONPID"; fail "mom-sub hangs: $(cat "$T/err")"; }
	echo "# done $(($(ms_now) - t0)) ms after the stop" >&3
	kill -CONT "$ONPID"
	assert_equal "$(cat "$T/st")" 0
	assert_equal "$(sort -n "$T/out")" "$(seq 1 3)"
}

@test "A killed: mom-pub -s A,B publishes to B" {
	start_ab
	stop_pid "$APID" KILL
	APID=
	timed timeout 30 mom-pub -s "$A,$B" -q q -m one 2>"$T/err"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	timed timeout 30 mom-pub -s "$A,$B" -q q -l < <(seq 1 1000) 2>"$T/err"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	assert_equal "$(count "$B")" 1001
}

# start_fake STATUS: a fake broker (fake-nng-broker.py) that answers every
# request with STATUS; F its URL, FLOG the ops it was asked.
start_fake() {
	local pf="$T/fake.port" i
	rm -f "$pf"
	FLOG="$T/fake.log"
	: >"$FLOG"
	bg python3 "$BATS_TEST_DIRNAME/fake-nng-broker.py" "$pf" "$FLOG" "$1"
	for ((i = 0; i < 200; i++)); do
		[ -s "$pf" ] && break
		sleep 0.05
	done
	[ -s "$pf" ] || fail "the fake broker did not start"
	F="tcp://127.0.0.1:$(cat "$pf")"
}

# A single broker never says "not leader" or "unavailable": a fake one does.
@test "A answering 'not leader' (16) or 'unavailable' (9): publish, consume and admin go to B" {
	start_ab
	local st
	for st in 16 9; do
		start_fake "$st"
		timed timeout 30 mom-pub -s "$F,$B" -q q -m "one$st" 2>"$T/err"
		[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
		((DT < 10000)) || fail "took $DT ms"
		timed timeout 30 mom-pub -s "$F,$B" -q q -l < <(seq 1 100) 2>"$T/err"
		[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
		run -0 timeout 30 mom-admin -s "$F,$B" queue list
		assert_output --partial q
		run -0 timeout 30 mom-sub -s "$F,$B" -q q -C 101
		assert_equal "${#lines[@]}" 101
		# the fake was asked (and refused) along the way
		[ -s "$FLOG" ] || fail "the fake broker was never asked"
		stop_pid "${BG_PIDS[-1]}" KILL
	done
}

@test "every broker 'unavailable': 69 after -W, not at once and not 75" {
	start_fake 9
	local f1=$F
	start_fake 9
	timed timeout 30 mom-pub -s "$f1,$F" -W 3s -q q -m x 2>"$T/err"
	assert_equal "$ST" 69
	((DT >= 2500 && DT < 15000)) || fail "took $DT ms: $(cat "$T/err")"
	timed timeout 30 mom-pub -s "$f1,$F" -W 3s -q q -l < <(seq 1 3) 2>"$T/err"
	assert_equal "$ST" 69
	((DT >= 2500 && DT < 15000)) || fail "took $DT ms: $(cat "$T/err")"
	timed timeout 30 mom-admin -s "$f1,$F" -W 3s queue list 2>"$T/err"
	assert_equal "$ST" 69
	run cat "$T/err"
	assert_output 'mom-admin: broker unavailable'
}

@test "mom-sub -s A,B consumes from B with A stopped" {
	start_ab
	seq 1 3 | pub -s "$B" -q q -l
	kill -STOP "$APID"
	timed timeout 30 mom-sub -s "$A,$B" -q q -C 3 >"$T/out" 2>"$T/err"
	kill -CONT "$APID"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	assert_equal "$(cat "$T/out")" "$(seq 1 3)"
	assert_equal "$(count "$B")" 0
}

@test "mom-sub -s A,B: a parked long poll is not cut short by --request-timeout" {
	start_ab
	bg bash -c "mom-sub -s '$A,$B' --request-timeout 1s -q q -C 1 >'$T/out' 2>'$T/err'"
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(waiting "$A")" = 1 ] && { on "$A"; break; }
		[ "$(waiting "$B")" = 1 ] && { on "$B"; break; }
		sleep 0.05
	done
	[ -n "$ON" ] || fail "no long poll parked: $(cat "$T/err")"
	# parked for longer than the request timeout, and still there
	sleep 3
	assert_equal "$(waiting "$ON")" 1
	assert_equal "$(waiting "$OFF")" 0
	pub -s "$ON" -q q -m late
	wait_for 10 test -s "$T/out" || fail "nothing consumed: $(cat "$T/err")"
	assert_equal "$(cat "$T/out")" late
}

@test "mom-admin -s http://A,http://B queue list with A stopped" {
	start_ab
	admin -s "$B" queue create onlyb
	kill -STOP "$APID"
	timed timeout 30 mom-admin -s "$HA,$HB" queue list >"$T/out" 2>"$T/err"
	kill -CONT "$APID"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	grep -q '^onlyb' "$T/out" || fail "not B's list: $(cat "$T/out")"
	# A down for good: refused at once, then B
	stop_pid "$APID" KILL
	APID=
	run -0 timeout 30 mom-admin -s "$HA,$HB" queue list
	assert_output --partial onlyb
}

@test "mom-admin -s A,B (nng) with A stopped" {
	start_ab
	admin -s "$B" queue create onlyb
	kill -STOP "$APID"
	timed timeout 30 mom-admin -s "$A,$B" queue list >"$T/out" 2>"$T/err"
	kill -CONT "$APID"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	grep -q '^onlyb' "$T/out" || fail "not B's list: $(cat "$T/out")"
}

@test "MOM_URL with commas: A stopped, B takes the message" {
	start_ab
	kill -STOP "$APID"
	timed env MOM_URL="$A,$B" timeout 30 mom-pub -q q -m viaenv 2>"$T/err"
	kill -CONT "$APID"
	[ "$ST" = 0 ] || fail "status $ST after $DT ms: $(cat "$T/err")"
	assert_equal "$(count "$B")" 1
}

@test "-W still bounds it all: both brokers stopped, exit 75" {
	start_ab
	kill -STOP "$APID" "$BPID"
	timed timeout 30 mom-pub -s "$A,$B" -W 4s -q q -m x 2>"$T/err"
	kill -CONT "$APID" "$BPID"
	assert_equal "$ST" 75
	((DT < 15000)) || fail "took $DT ms"
}

@test "a resent publish keeps its producer id and sequence: stored once" {
	start_ab
	# -s B,B: two connections to one broker.  The second line is sent while
	# B is stopped, resent on the other connection after --request-timeout;
	# B then reads both copies and must store one.
	bg bash -c "{ echo a; for i in \$(seq 1 400); do [ -e '$T/go' ] && break; sleep 0.05; done; echo b; } |
	    mom-pub -v -s '$B,$B' --request-timeout 1s -q q -l 2>'$T/err'; echo \$? >'$T/st'"
	wait_for 15 count_is "$B" 1 || fail "a not stored: $(cat "$T/err")"
	kill -STOP "$BPID"
	touch "$T/go"
	wait_for 15 grep -q 'resent' "$T/err" || { kill -CONT "$BPID"; fail "no resend: $(cat "$T/err")"; }
	kill -CONT "$BPID"
	wait_for 20 test -s "$T/st" || fail "mom-pub hangs: $(cat "$T/err")"
	assert_equal "$(cat "$T/st")" 0
	assert_equal "$(count "$B")" 2
}

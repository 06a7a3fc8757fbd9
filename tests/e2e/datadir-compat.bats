#!/usr/bin/env bats
# Data directory compatibility: bin/mom-broker reads a data directory
# written by an earlier broker.
#
# tests/data/v1-datadir was written by tests/data/make-v1-datadir.sh with
# the broker from before the restructuring of src/mom-broker/ into
# folders (the format is meant to be unchanged): a snapshot, then log
# entries after it, together holding every command kind (publish, admin,
# settle, tick), every admin op and every settlement kind (the script's
# header lists them).  tests/data/v1-datadir.expect is what that broker
# showed when it reopened a copy (tests/data/dump-state.sh: stats, the
# queue, topic and subscription listings, the messages left in each queue
# and durable subscription).  Each test starts bin/mom-broker on a fresh
# copy, with the options the fixture was written with
# (tests/data/v1-datadir.conf), and compares.
#
# Never regenerate the fixture with the current broker to make this test
# pass: it stands for directories that exist in the field.

bats_require_minimum_version 1.5.0
load helpers

DATA="$E2E_ROOT/tests/data"
FIXTURE="$DATA/v1-datadir"
EXPECT="$DATA/v1-datadir.expect"
CONF="$DATA/v1-datadir.conf"

# v1_start: bin/mom-broker on a copy of the fixture in $T/data.
v1_start() {
	cp -R "$FIXTURE" "$T/data"
	chmod -R u+w "$T/data"
	start_broker -c "$CONF" --http off
}

# v1_restart: stop the broker (SIGTERM, it must exit 0) and start it again
# on the same directory and port.
v1_restart() {
	local i st=0
	kill -TERM "$BROKER_PID"
	for ((i = 0; i < 500; i++)); do
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.02
	done
	kill -0 "$BROKER_PID" 2>/dev/null && fail "the broker still runs 10 s after SIGTERM"
	wait "$BROKER_PID" || st=$?
	((st == 0)) || fail "the broker exited $st on SIGTERM"
	mom-broker -D "$T/data" -l "$MOM_URL" -c "$CONF" --http off >>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL" || fail "the broker did not come back"
}

# sections REGEX: the expect file's sections whose "## " title matches
# REGEX (extended), titles included, comments dropped; reads stdin.
sections() {
	awk -v re="$1" '/^## / { keep = ($0 ~ "^## (" re ")") } keep && !/^# /'
}

# same_sections REGEX: $T/state (this broker's dump) and the expect file
# agree on those sections; shows a unified diff when not.
same_sections() {
	run diff -u --label v1-datadir.expect --label bin/mom-broker \
		<(sections "$1" <"$EXPECT") <(sections "$1" <"$T/state")
	assert_success
}

# dump: tests/data/dump-state.sh with bin/'s mom-admin and mom-sub, into
# $T/state (it consumes the messages: this is a copy).
dump() {
	MOM_DUMP_TIMEOUT=$TMO "$DATA/dump-state.sh" >"$T/state" ||
		fail "dump-state.sh failed"
}

@test "v1 fixture: a snapshot, then log entries with every command kind" {
	# A guard on the fixture itself: it must keep testing what it claims
	# (the snapshot, and the replay of every command after it).
	run python3 "$DATA/log-inventory.py" --require "$FIXTURE"
	assert_success
	[ -f "$FIXTURE/snap" ] && [ -f "$FIXTURE/meta" ] || fail "snap or meta missing"
	ls "$FIXTURE"/seg-*.log >/dev/null || fail "no log segment"
}

@test "v1 data directory: bin/mom-broker starts on it and warns about nothing" {
	v1_start
	run admin ping
	assert_success
	run grep -vE '^[-0-9T:.]+Z mom-broker info: ' "$T/broker.log"
	assert_output ""
}

@test "v1 data directory: stats and listings are those the v1 broker showed" {
	v1_start
	dump
	same_sections 'stats|queues|topics|subs'
}

@test "v1 data directory: the messages left are those the v1 broker delivered" {
	v1_start
	dump
	# Payloads, ids, headers, publish times, sequence numbers, delivery
	# counts (slow-back was in flight at the snapshot: its second delivery),
	# order; the messages whose TTL ran out are not delivered.  Unlike the
	# v1 broker, which dropped them, this one sends them to the queue's
	# dead-letter queue (issue 12, item 6): a8 and a10, in jobs.dead with
	# the reason, and otherwise as the v1 broker held them.
	assert_equal "$(grep '"Mom-Dead-Reason":"expired"' "$T/state" | jq -r .id | sort | tr '\n' ' ')" 'a10 a8 '
	grep -v '"Mom-Dead-Reason":"expired"' "$T/state" >"$T/state.v1" && mv "$T/state.v1" "$T/state"
	same_sections 'messages of '
	[ "$(sections 'messages of ' <"$T/state" | grep -vc '^## ')" -gt 20 ] ||
		fail "fewer messages than the fixture holds"
}

@test "v1 data directory: queue options hold and act (dead letter, max deliver, max-len, TTL)" {
	v1_start
	# As make-v1-datadir.sh created them.
	run admin --json queue info jobs
	assert_success
	assert_equal "$(jq -c '[.dead_letter, .max_deliver, .ack_wait_ms, .ttl_ms, .max_len, .max_bytes]' <<<"$output")" \
		'["jobs.dead",2,45000,3153600000000,100,65536]'
	run admin --json queue info late
	assert_success
	assert_equal "$(jq -c '[.dead_letter, .max_deliver, .ack_wait_ms, .ttl_ms, .max_len, .max_bytes]' <<<"$output")" \
		'["late.dead",3,60000,3153600000000,10,4096]'
	assert_equal "$(qfield small max_len)" 3
	assert_equal "$(qfield short ttl_ms)" 1000
	run admin --json topic info orders.us
	assert_success
	assert_equal "$(jq -c '[.retain_ms, .retain_bytes]' <<<"$output")" '[3153600000000,512]'

	# They act.  A worker that fails every message: after max-deliver (2)
	# deliveries each goes to jobs.dead; a8 and a10, whose TTL ran out, go
	# there too (the v1 broker dropped them as expired); a7 stays delayed.
	# A failure is retried after a 1 s back-off, so the worker runs until
	# 3 s pass without a message (-e would stop while the retries wait).
	run sub -q jobs -W 3 -- sh -c 'exit 1'
	assert_failure 75
	wait_for 10 qfield_is jobs.dead messages 6
	assert_equal "$(sub -q jobs.dead -e -F '%i %h{Mom-Dead-Reason}\n' | sort | tr '\n' ' ')" \
		'a10 expired a3 max-deliveries a5 max-deliveries a6 max-deliveries a8 expired a9 max-deliveries '
	assert_equal "$(qfield jobs expired)" 0
	assert_equal "$(qfield jobs dead_lettered)" 8
	assert_equal "$(qfield jobs messages)/$(qfield jobs delayed)" 1/1
	# A poison message (exit 65) goes to late's dead-letter queue at once.
	sub -q late -e -- sh -c 'exit 65'
	wait_for 10 qfield_is late.dead messages 3
	# small is full (max-len 3); short expires what it gets (ttl 1s).
	run pub -q small -m 'one too many'
	assert_failure 75
	pub -q short -m 'short-lived'
	wait_for 10 qfield_is short expired 3
}

@test "v1 data directory: bin/mom-broker writes on after the v1 log and reads it all back" {
	v1_start
	pub -q jobs --id new-1 -H 'X-Written-By: bin' -m 'written by bin/mom-broker'
	sub -q retry -C 1 -N # a4
	admin topic create written.by.bin --retain 0
	v1_restart
	dump
	# The v1 state, with what this broker added and took.
	same_sections 'messages of subscription'
	run diff -u <(sections 'messages of queue jobs$' <"$EXPECT") \
		<(sections 'messages of queue jobs$' <"$T/state" | head -n -1)
	assert_success
	run sections 'messages of queue jobs$' <"$T/state"
	assert_line --index $((${#lines[@]} - 1)) --partial '"id":"new-1"'
	run sections 'messages of queue retry$' <"$T/state"
	assert_output --partial '"id":"b2"'
	refute_output --partial '"id":"a4"'
	run sections 'topics' <"$T/state"
	assert_line --partial '"name":"written.by.bin"'
	while IFS= read -r l; do
		grep -qxF -- "$l" "$T/state" || fail "v1 topic line missing: $l"
	done < <(sections 'topics' <"$EXPECT" | grep -v '^## ')
}

#!/usr/bin/env bats
# Everyday use of workers and queues (issue 12, items 3, 4 and 5): workers
# share the work, what is given back comes back in order, a request whose
# reply was sent is settled, plain failures back off.

bats_require_minimum_version 1.5.0
load helpers

# wait_all SECONDS PID...: every PID gone within SECONDS; reaps them.
wait_all() {
	local limit=$1 p i
	shift
	for p in "$@"; do
		for ((i = 0; i < limit * 20; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
		! kill -0 "$p" 2>/dev/null || fail "process $p still runs after $limit s"
		wait "$p" || fail "process $p exited $?"
	done
}

# waiting N: N consumers are parked in a long poll (for wait_for).
waiting() { [ "$(admin --json stats | jq -r .waiting_consumers)" = "$1" ]; }

# The job of the fair-dispatch tests: marks its start, then waits (at most
# 6 s) for the file go, or, without GO, for N starts in all.
JOB='touch "$0/started.$MOM_SEQ"; i=0
while :; do
	if [ -n "$GO" ]; then [ -e "$0/go" ] && break
	else [ "$(ls "$0" | grep -c "^started\.")" -ge "$N" ] && break; fi
	i=$((i + 1)); [ $i -lt 60 ] || { echo "$MOM_SEQ gave up" >>"$0/late"; exit 0; }
	sleep 0.1
done
echo "$MOM_SEQ" >>"$0/done"'

@test "fair dispatch: three workers, three slow jobs queued before they start: all run at once" {
	start_broker
	qcreate work
	seq 1 3 | pub -q work -l
	local pids=() k
	for k in 1 2 3; do
		N=3 bg mom-sub -q work -e -- sh -c "$JOB" "$T"
		pids+=("${BG_PIDS[-1]}")
	done
	wait_all 40 "${pids[@]}"
	[ ! -e "$T/late" ] || fail "jobs ran one after another: $(cat "$T/late")"
	assert_equal "$(sort -n "$T/done")" "$(seq 1 3)"
	assert_equal "$(qfield work messages)" 0
}

@test "fair dispatch: six jobs for three waiting workers: three run, three stay ready" {
	start_broker
	qcreate work
	local pids=() k
	for k in 1 2 3; do
		GO=1 bg mom-sub -q work -C 2 -- sh -c "$JOB" "$T"
		pids+=("${BG_PIDS[-1]}")
	done
	wait_for 10 waiting 3 || fail "workers not waiting"
	seq 1 6 | pub -q work -l
	wait_for 10 bash -c '[ "$(ls "$0" | grep -c "^started\.")" = 3 ]' "$T" ||
		fail "started: $(ls "$T" | grep -c '^started\.')"
	assert_equal "$(qfield work in_flight)" 3
	assert_equal "$(qfield work ready)" 3
	touch "$T/go"
	wait_all 40 "${pids[@]}"
	[ ! -e "$T/late" ] || fail "late: $(cat "$T/late")"
	assert_equal "$(sort -n "$T/done")" "$(seq 1 6)"
	assert_equal "$(qfield work messages)" 0
}

@test "read-ahead is explicit: -p 3 holds three messages while one runs, a second worker gets none" {
	start_broker
	qcreate work
	seq 1 3 | pub -q work -l
	GO=1 bg mom-sub -q work -p 3 -C 3 -- sh -c "$JOB" "$T"
	local a=${BG_PIDS[-1]}
	wait_for 10 bash -c '[ -e "$0/started.1" ]' "$T" || fail "nothing started"
	wait_for 10 qfield_is work in_flight 3 || fail "in flight: $(qfield work in_flight)"
	assert_equal "$(qfield work ready)" 0
	run sub -q work -W 1 -- true
	assert_failure 75
	touch "$T/go"
	wait_all 40 "$a"
	assert_equal "$(sort -n "$T/done")" "$(seq 1 3)"
}

@test "messages given back by a reader that went away come back in order, uncounted, before newer ones" {
	start_broker
	qcreate ord
	seq 1 2000 | pub -q ord -l
	run bash -c 'timeout 20 mom-sub -q ord | head -n 1'
	assert_success
	assert_output 1
	# What mom-sub had not written into the pipe came back: the rest of
	# the queue is one run of numbers up to 2000, in order.
	run sub -q ord -e -F '%d %p\n'
	assert_success
	local first=${lines[0]#* }
	((first > 1)) || fail "first left: ${lines[0]}"
	assert_equal "$(printf '%s\n' "${lines[@]}" | cut -d' ' -f2)" "$(seq "$first" 2000)"
	# Uncounted: delivered once so far.  head(1) reads a buffer, not a
	# line: the message its last read cut in two was read in part, and
	# that one (the first given back) counts (mom-sub.1, pipe mode).  Seen
	# in CI on a loaded machine: 1 2 in the counts.
	[[ ${lines[0]%% *} == [12] ]] || fail "first given back: ${lines[0]}"
	assert_equal "$(printf '%s\n' "${lines[@]:1}" | cut -d' ' -f1 | sort -u)" 1
}

@test "the message a reader took in part comes back counted, the ones after it uncounted" {
	start_broker
	qcreate ord
	seq 1 200 | pub -q ord -l
	# head -c 3 reads three bytes: "1\n" whole, "2\n" in part.
	run bash -c 'timeout 20 mom-sub -q ord | head -c 3'
	assert_success
	run sub -q ord -e -F '%d %p\n'
	assert_success
	assert_equal "${lines[0]}" "2 2"
	assert_equal "$(printf '%s\n' "${lines[@]:1}" | cut -d' ' -f2)" "$(seq 3 200)"
	assert_equal "$(printf '%s\n' "${lines[@]:1}" | cut -d' ' -f1 | sort -u)" 1
}

@test "messages a worker failed come back in order, before newer ones" {
	start_broker
	qcreate ord --max-deliver 5
	seq 1 5 | pub -q ord -l
	run sub -q ord -P 3 -C 3 -- sh -c 'cat >/dev/null; exit 1'
	assert_success
	# Once the three are ready again (after their back-off, if any).
	wait_for 10 qfield_is ord ready 5 || fail "ready: $(qfield ord ready)"
	run sub -q ord -C 5 -F '%d %p\n'
	assert_success
	assert_equal "$output" "$(printf '2 1\n2 2\n2 3\n1 4\n1 5')"
}

@test "a request whose command failed is settled once its reply is sent: it runs once" {
	start_broker
	qcreate jobs
	bg mom-sub -q jobs -- sh -c 'cat >/dev/null; echo run >>"$0/runs"; echo failed; exit 2' "$T"
	run --separate-stderr pub -q jobs -r -W 10 -m req
	assert_equal "$status" 2
	assert_output failed
	# Before: run again at once, 20 times in 3 s.  Now settled: no run more.
	sleep 3
	assert_equal "$(wc -l <"$T/runs")" 1
	assert_equal "$(qfield jobs messages)" 0
	assert_equal "$(qfield jobs acked)" 1
	assert_equal "$(qfield jobs redelivered)" 0
}

@test "a request killed by a signal is settled once its reply says so" {
	start_broker
	qcreate jobs
	bg mom-sub -q jobs -- sh -c 'cat >/dev/null; echo run >>"$0/runs"; kill -TERM $$' "$T"
	run --separate-stderr pub -q jobs -r -W 10 -m req
	assert_equal "$status" 143
	sleep 2
	assert_equal "$(wc -l <"$T/runs")" 1
	assert_equal "$(qfield jobs messages)" 0
}

@test "plain failures back off: 1 s, then 2 s, as mom-sub.1 says" {
	start_broker
	qcreate dlq
	qcreate jobs --max-deliver 3 --dead-letter dlq
	pub -q jobs -m bad
	run sub -q jobs -C 3 -- sh -c 'cat >/dev/null; echo "$MOM_DELIVERY $(date +%s%3N)" >>"$0/log"; exit 3' "$T"
	assert_success
	assert_equal "$(cut -d' ' -f1 "$T/log" | tr '\n' ' ')" "1 2 3 "
	local t1 t2 t3
	t1=$(sed -n 1p "$T/log" | cut -d' ' -f2)
	t2=$(sed -n 2p "$T/log" | cut -d' ' -f2)
	t3=$(sed -n 3p "$T/log" | cut -d' ' -f2)
	((t2 - t1 >= 900)) || fail "second run $((t2 - t1)) ms after the first"
	((t3 - t2 >= 1900)) || fail "third run $((t3 - t2)) ms after the second"
	((t3 - t1 < 15000)) || fail "three runs took $((t3 - t1)) ms"
	wait_for 5 qfield_is dlq messages 1 || fail "not dead-lettered"
	assert_equal "$(qfield jobs messages)" 0
}

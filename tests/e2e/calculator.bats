#!/usr/bin/env bats
# The calculator example (examples/calculator): mom-calc alone (every
# operation, both request formats, the exact output, every error), then the
# service end to end: mom-sub worker mode running mom-calc, requests from
# mom-pub -r.
#
# The end-to-end tests need worker mode (mom-sub ... -- COMMAND) and
# request/reply (mom-pub -r); they skip, saying so, when the programs in
# bin/ do not have them yet.

bats_require_minimum_version 1.5.0
load helpers

CALC=${MOM_CALC:-$E2E_ROOT/build/examples/mom-calc}

# calc INPUT: run mom-calc with INPUT (exactly, no newline added) on stdin.
calc() {
	[ -x "$CALC" ] || fail "$CALC is missing: 'make' builds it"
	printf '%s' "$1" >"$T/calc.in"
	run --separate-stderr timeout 5 "$CALC" <"$T/calc.in"
}

# calc_ok INPUT RESULT: exit 0, RESULT and a newline on stdout, no stderr.
calc_ok() {
	calc "$1"
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_output "$2"
	assert_equal "${#lines[@]}" 1
}

# calc_err INPUT REGEX: exit 65, one line "error: ..." on stdout containing
# REGEX, the same reason on stderr as "mom-calc: ...".
calc_err() {
	calc "$1"
	assert_equal "$status" 65
	assert_equal "${#lines[@]}" 1
	assert_output --regexp "^error: .*$2"
	assert_equal "$stderr" "mom-calc: ${output#error: }"
	refute_crash_text
}

# --- the program alone ------------------------------------------------------

@test "mom-calc: add, sub, mul, div in the text format" {
	calc_ok 'add 2 3' 5
	calc_ok 'sub 2 3' -1
	calc_ok 'mul 6 7' 42
	calc_ok 'div 10 4' 2.5
}

@test "mom-calc: operations are case-insensitive; surrounding blanks and a newline are fine" {
	calc_ok 'DIV 10 4' 2.5
	calc_ok 'Mul 6 7' 42
	calc_ok $'  add\t1   2 \n' 3
	calc_ok $'\n\nsub 5 3\r\n' 2
}

@test "mom-calc: add, sub, mul, div in the JSON format" {
	calc_ok '{"op":"add","a":2,"b":3}' 5
	calc_ok '{"op":"sub","a":2,"b":3}' -1
	calc_ok '{"op":"mul","a":6,"b":7}' 42
	calc_ok '{"op":"div","a":10,"b":4}' 2.5
	calc_ok $' { "b" : 4 ,\n "a" : 10, "op" : "DIV" }\n' 2.5
}

@test "mom-calc: JSON numbers may be numeric strings" {
	calc_ok '{"op":"div","a":"10","b":"4"}' 2.5
	calc_ok '{"op":"mul","a":"-2.5","b":4}' -10
	calc_ok '{"op":"add","a":"1e3","b":"+.5"}' 1000.5
}

@test "mom-calc: decimals, negative numbers and exponents" {
	calc_ok 'add 2.5 -3' -0.5
	calc_ok 'mul -3 -3' 9
	calc_ok 'sub -1.25 .75' -2
	calc_ok 'mul 1e3 2' 2000
	calc_ok 'div 1E-3 4' 0.00025
	calc_ok 'add +1. 1' 2
	calc_ok '{"op":"mul","a":-1.5e2,"b":2E+0}' -300
}

@test "mom-calc: the output is the shortest text that reads back as the exact double" {
	calc_ok 'add 0.1 0.2' 0.30000000000000004
	calc_ok 'div 1 3' 0.3333333333333333
	calc_ok 'div 2 3' 0.6666666666666666
	calc_ok 'div 1 8' 0.125
	calc_ok 'mul 0.5 0.5' 0.25
	calc_ok 'div 1 100000' 1e-05
	# integers print whole (below 2^53), -0 as 0, larger numbers with an exponent
	calc_ok 'mul 1000 1000' 1000000
	calc_ok 'mul 4503599627370496 1' 4503599627370496
	calc_ok 'mul -1 0' 0
	calc_ok 'mul 1e10 1e10' 1e+20
	calc_ok 'div -7 2' -3.5
}

@test "mom-calc: stdout is exactly the result and one newline" {
	run -0 bash -c 'printf "div 10 4" | "$1" | od -An -c' _ "$CALC"
	assert_output --regexp '^ +2 +\. +5 +\\n$'
	run -0 bash -c 'printf "{\"op\":\"mul\",\"a\":6,\"b\":7}\n" | "$1" | od -An -c' _ "$CALC"
	assert_output --regexp '^ +4 +2 +\\n$'
}

@test "mom-calc: division by zero exits 65 and says so on stdout and stderr" {
	calc_err 'div 1 0' 'division by zero$'
	assert_output 'error: division by zero'
	assert_equal "$stderr" 'mom-calc: division by zero'
	calc_err 'div 0 0' 'division by zero$'
	calc_err 'div 5 -0.0' 'division by zero$'
	calc_err '{"op":"div","a":1,"b":0}' 'division by zero$'
}

@test "mom-calc: an unknown operation or a wrong number of operands exits 65" {
	calc_err 'pow 2 3' "unknown operation 'pow'"
	calc_err 'divide 2 3' "unknown operation 'divide'"
	calc_err 'div 10' "expected 'OP A B'"
	calc_err 'div' "expected 'OP A B'"
	calc_err 'add 1 2 3' "expected 'OP A B'"
	calc_err '10 / 4' "unknown operation '10'"
	calc_err $'div 10\n4' 'a request is one line'
}

@test "mom-calc: something that is not a decimal number exits 65" {
	local n
	for n in x 0x10 inf nan infinity 1e 1e+ . - +- 1.2.3 1,5 '1_000' 12abc; do
		calc_err "add $n 1" 'not a number'
	done
	calc_err 'add 1e999 1' 'number out of range'
}

@test "mom-calc: an infinite result exits 65" {
	calc_err 'mul 1e200 1e200' 'result out of range'
	calc_err 'div 1e308 1e-308' 'result out of range'
	calc_err 'sub -1.7e308 1.7e308' 'result out of range'
}

@test "mom-calc: empty or blank input exits 65" {
	calc_err '' 'empty request'
	calc_err $'  \n\t\n' 'empty request'
}

@test "mom-calc: malformed JSON exits 65" {
	calc_err '{' 'malformed JSON'
	calc_err '{}' 'needs "op", "a" and "b"'
	calc_err '{"op":"div","a":10}' 'missing "b"'
	calc_err '{"op":"div","a":10,"b":4' "malformed JSON"
	calc_err '{"op":"div","a":10,"b":4}x' 'trailing data'
	calc_err '{"op":"div","a":10,"b":4,"c":1}' 'unknown key "c"'
	calc_err '{"op":"div","a":10,"a":4}' '"a" twice'
	calc_err '{"op":div,"a":10,"b":4}' '"op" must be a string'
	calc_err '{"op":"pow","a":10,"b":4}' "unknown operation 'pow'"
	calc_err '{"op":"div","a":010,"b":4}' 'malformed JSON'
	calc_err '{"op":"div","a":.5,"b":4}' '"a": not a number'
	calc_err '{"op":"div","a":true,"b":4}' '"a": not a number'
	calc_err '{"op":"div","a":"ten","b":4}' '"a": not a number'
	calc_err '{"op":"div","a":NaN,"b":4}' '"a": not a number'
	calc_err '{"op":"d\u0069v","a":1,"b":4}' 'escapes'
	calc_err '[1,2]' "expected 'OP A B'"
}

@test "mom-calc: a NUL byte in the request exits 65" {
	printf 'add 1\0 2' >"$T/nul.in"
	run --separate-stderr "$CALC" <"$T/nul.in"
	assert_equal "$status" 65
	assert_output 'error: request contains a NUL byte'
}

@test "mom-calc: a request over 64 KiB exits 65; exactly 64 KiB is read" {
	# 65536 bytes: a valid request padded with blanks
	{ printf 'add 1 2'; head -c $((65536 - 7)) /dev/zero | tr '\0' ' '; } >"$T/max.in"
	run --separate-stderr "$CALC" <"$T/max.in"
	assert_equal "$status" 0
	assert_output 3
	# one byte more
	printf ' ' >>"$T/max.in"
	run --separate-stderr "$CALC" <"$T/max.in"
	assert_equal "$status" 65
	assert_output 'error: request over 65536 bytes'
	# much more, from a pipe that mom-calc stops reading
	run --separate-stderr bash -c 'head -c 10000000 /dev/zero | tr "\0" " " | timeout 5 "$1"' _ "$CALC"
	assert_equal "$status" 65
	assert_output 'error: request over 65536 bytes'
}

@test "mom-calc: an argument is a usage error (exit 64)" {
	run --separate-stderr "$CALC" 'div 10 4'
	assert_equal "$status" 64
	assert_equal "$output" ""
	assert_equal "${stderr_lines[0]}" "usage: mom-calc < REQUEST"
}

# --- the service: mom-sub worker mode + mom-pub -r ------------------------
#
# These depend on worker mode (mom-sub -q QUEUE [-P N] -- COMMAND) and on
# request/reply (mom-pub -r), which are being implemented in other
# branches: each test skips until bin/ has both.

need_rpc() {
	mom-pub --help 2>&1 | grep -qE -- '--request|mom-pub -r ' ||
		skip "depends on request/reply: mom-pub --help mentions neither --request nor 'mom-pub -r' yet"
	mom-sub --help 2>&1 | grep -qE -- '-- COMMAND|\[-P ' ||
		skip "depends on worker mode: mom-sub --help does not mention '-- COMMAND' yet"
	[ -x "$CALC" ] || fail "$CALC is missing: 'make' builds it"
}

# How the broker is (re)started, as in durability.bats: same port, same
# data directory.
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

# calc_queue [OPTIONS]: the queue calc (short ack wait, so that a crashed
# worker's request comes back quickly) and its dead-letter queue calc.dead.
calc_queue() {
	qcreate calc.dead
	qcreate calc --ack-wait 2s --dead-letter calc.dead "$@"
}

# worker [MOM-SUB OPTIONS] -- COMMAND...: a worker on calc, killed in teardown.
worker() { bg mom-sub -q calc "$@"; }

# wrapper NAME BODY: an executable shell script $T/NAME running BODY, with
# $CALC and $T set in it.
wrapper() {
	printf '#!/bin/sh\nCALC=%q\nT=%q\n%s\n' "$CALC" "$T" "$2" >"$T/$1"
	chmod +x "$T/$1"
}

drain_dead() { sub -q calc.dead -e -F '%p\n'; }

# rpc REQUEST: one request, at most 30 s for the reply.
rpc() { timeout 40 mom-pub -q calc -r -W 30 -m "$1"; }

# Requests and their expected results: 'OP A B<TAB>RESULT' lines, N of them
# (A, B integers or one-decimal numbers, B never 0 for div); RESULT as
# mom-calc prints it (Python's repr of the double is the same shortest
# round-trip text, without its ".0" for integers).
gen_requests() {
	python3 - "$1" <<'PY'
import random, sys
rnd = random.Random(7)
def num():
    v = rnd.randint(-1000, 1000)
    return str(v) if rnd.random() < 0.5 else "%.1f" % (v / 10)
def fmt(x):
    if x == int(x) and abs(x) < 2**53:
        return str(int(x))
    return repr(x)
for _ in range(int(sys.argv[1])):
    op = rnd.choice(["add", "sub", "mul", "div"])
    a, b = num(), num()
    while op == "div" and float(b) == 0:
        b = num()
    fa, fb = float(a), float(b)
    r = {"add": fa + fb, "sub": fa - fb, "mul": fa * fb, "div": fa / fb}[op]
    print("%s %s %s\t%s" % (op, a, b, fmt(r)))
PY
}

@test "service: div 10 4 in both formats is answered 2.5, exit 0" {
	need_rpc
	start_broker
	calc_queue --max-deliver 3
	worker -P 2 -- "$CALC"
	run --separate-stderr rpc 'div 10 4'
	assert_equal "$status" 0
	assert_output 2.5
	run --separate-stderr rpc '{"op":"div","a":10,"b":4}'
	assert_equal "$status" 0
	assert_output 2.5
}

@test "service: division by zero: mom-pub -r exits 65, the reply says why, the request is dead-lettered at once" {
	need_rpc
	start_broker
	calc_queue --max-deliver 3
	worker -- "$CALC"
	run --separate-stderr rpc 'div 1 0'
	assert_equal "$status" 65
	assert_output 'error: division by zero'
	wait_for 10 qfield_is calc.dead messages 1 || fail "not dead-lettered: $(admin queue list)"
	run -0 sub -q calc.dead -C 1 -F '%p|%d\n'
	assert_output 'div 1 0|1'
}

@test "service: 1,000 requests from 4 concurrent clients are all answered correctly" {
	need_rpc
	start_broker
	calc_queue --max-deliver 3
	worker -P 2 -- "$CALC"
	worker -P 2 -- "$CALC"
	gen_requests 1000 >"$T/requests"
	local k pids=() t0
	t0=$(ms_now)
	for k in 0 1 2 3; do
		# client k takes every 4th request; a wrong or missing answer is
		# written down as 'REQUEST<TAB>EXPECTED<TAB>GOT<TAB>STATUS'
		(
			n=0
			while IFS=$'\t' read -r req want; do
				((n++ % 4 == k)) || continue
				st=0
				got=$(timeout 40 mom-pub -q calc -r -W 30 -m "$req" 2>>"$T/client.$k.err") || st=$?
				[ "$st" = 0 ] && [ "$got" = "$want" ] || printf '%s\t%s\t%s\t%s\n' "$req" "$want" "$got" "$st"
				echo >>"$T/client.$k.done"
			done <"$T/requests" >"$T/client.$k.bad"
		) 3>&- &
		pids+=($!)
	done
	for k in "${pids[@]}"; do wait "$k"; done
	echo "# 1000 round trips in $(($(ms_now) - t0)) ms" >&3
	cat "$T"/client.*.bad >"$T/bad"
	[ ! -s "$T/bad" ] || fail "$(wc -l <"$T/bad") wrong answers, e.g.: $(head -5 "$T/bad")"
	assert_equal "$(cat "$T"/client.*.done | wc -l)" 1000
	assert_equal "$(qfield calc messages)" 0
	assert_equal "$(qfield calc.dead messages)" 0
}

@test "service: kill -9 of a worker holding a request: another worker answers it" {
	need_rpc
	start_broker
	calc_queue --max-deliver 3
	# The first delivery sleeps, holding the request, until killed.
	wrapper hold 'if [ "$MOM_DELIVERY" = 1 ]; then echo $$ >"$T/holder.pid"; exec sleep 60; fi
exec "$CALC"'
	worker -- "$T/hold"
	local victim=${BG_PIDS[-1]} t0
	(timeout 60 mom-pub -q calc -r -W 50 -m 'div 10 4' >"$T/reply" 2>"$T/reply.err"; echo $? >"$T/reply.rc") 3>&- &
	local client=$!
	wait_for 10 test -s "$T/holder.pid" || fail "the worker never ran the command"
	t0=$(ms_now)
	stop_pid "$victim" KILL
	# the orphaned command is ours too
	stop_pid "$(cat "$T/holder.pid")" KILL
	worker -- "$T/hold"
	wait "$client"
	assert_equal "$(cat "$T/reply.rc")" 0
	assert_equal "$(cat "$T/reply")" 2.5
	echo "# answered $(($(ms_now) - t0)) ms after the kill (ack wait 2 s)" >&3
	assert_equal "$(qfield calc messages)" 0
}

@test "service: broker killed and restarted while requests are in flight: every request is answered" {
	need_rpc
	dstart
	calc_queue --max-deliver 5
	# slow workers, so that requests are still queued or running at the kill
	wrapper slow 'sleep 0.2; exec "$CALC"'
	worker -P 2 -- "$T/slow"
	worker -P 2 -- "$T/slow"
	local i n=40 k answered clients=()
	for ((i = 0; i < n; i++)); do
		(timeout 90 mom-pub -q calc -r -W 80 -m "add $i 1000" >"$T/r.$i" 2>"$T/r.$i.err"; echo $? >"$T/r.$i.rc") 3>&- &
		clients+=($!)
	done
	# kill the broker once a few have been answered
	wait_for 20 bash -c 'n=0; for f in "$1"/r.*.rc; do [ -e "$f" ] && n=$((n + 1)); done; ((n >= 4))' _ "$T" ||
		fail "no request was answered before the kill"
	answered=$(ls "$T"/r.*.rc | wc -l)
	restart_kill
	# Workers that gave up on the lost connection are started again: what is
	# tested is that no request is lost, whichever worker answers it.
	for ((i = 0; i < 80 * 5; i++)); do
		for k in "${!BG_PIDS[@]}"; do
			if ! kill -0 "${BG_PIDS[k]}" 2>/dev/null; then
				wait "${BG_PIDS[k]}" 2>/dev/null || true
				bg mom-sub -q calc -P 2 -- "$T/slow"
				BG_PIDS[k]=${BG_PIDS[-1]}
				unset 'BG_PIDS[-1]'
			fi
		done
		(($(ls "$T"/r.*.rc 2>/dev/null | wc -l) == n)) && break
		sleep 0.2
	done
	for k in "${clients[@]}"; do wait "$k"; done
	echo "# $answered of $n answered before the kill" >&3
	for ((i = 0; i < n; i++)); do
		[ "$(cat "$T/r.$i.rc")" = 0 ] || fail "request 'add $i 1000': mom-pub -r exited $(cat "$T/r.$i.rc"): $(cat "$T/r.$i.err")"
		assert_equal "$(cat "$T/r.$i")" $((i + 1000))
	done
}

@test "service: a poison request is dead-lettered after max deliveries; others are still answered" {
	need_rpc
	start_broker
	calc_queue --max-deliver 3
	wrapper poison 'p=$(cat)
if [ "$p" = poison ]; then echo "$MOM_DELIVERY" >>"$T/poison.log"; exit 1; fi
printf %s "$p" | exec "$CALC"'
	worker -- "$T/poison"
	run -0 pub -q calc -m poison
	run --separate-stderr rpc 'add 1 1'
	assert_equal "$status" 0
	assert_output 2
	wait_for 30 qfield_is calc.dead messages 1 || fail "not dead-lettered after 30 s: $(cat "$T/poison.log")"
	run -0 drain_dead
	assert_output poison
	assert_equal "$(tr '\n' ' ' <"$T/poison.log")" '1 2 3 '
	assert_equal "$(qfield calc messages)" 0
}

@test "service: a command exiting 75 is retried with back-off, and the requester gets the final answer" {
	need_rpc
	start_broker
	calc_queue --max-deliver 5
	wrapper flaky 'echo "$MOM_DELIVERY $(date +%s%3N)" >>"$T/flaky.log"
if [ "$MOM_DELIVERY" -lt 3 ]; then echo "try again" ; exit 75; fi
exec "$CALC"'
	worker -- "$T/flaky"
	run --separate-stderr rpc 'div 10 4'
	assert_equal "$status" 0
	assert_output 2.5
	run -0 awk '{ print $1 }' "$T/flaky.log"
	assert_output "$(printf '1\n2\n3')"
	# Back-off: no retry came straight back (at least 50 ms after the exit 75).
	run -0 awk 'NR > 1 { d = $2 - prev; if (d < 50) bad = bad " " d } { prev = $2 } END { print bad }' "$T/flaky.log"
	assert_output ''
	assert_equal "$(qfield calc.dead messages)" 0
}

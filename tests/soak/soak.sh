#!/usr/bin/env bash
# tests/soak/soak.sh: the long mixed-load test of issue 11 (make soak; not
# part of make check or CI).  See tests/soak/README.md.
#
# One broker on 127.0.0.1 (free ports) gets, for SOAK_SECONDS, a mixed load:
# one-shot and streaming publishers over nng, publishers over HTTP (curl),
# queue consumers (long-running, -C batches, -C 1 -W long polls, a worker
# `mom-sub -- cmd`, an HTTP long-poll consumer), topic subscriptions (one
# durable, which must see every topic message, and ephemeral ones), clients
# killed with kill -9 in the middle of a poll, raw TCP connections opened and
# dropped, and the broker itself killed with kill -9 every SOAK_KILL_EVERY
# seconds and restarted on the same data directory and ports.
#
# Every message whose publisher saw it confirmed (mom-pub exit 0, HTTP 2xx)
# is recorded; every message a consumer wrote out (and so acknowledged) is
# recorded.  At the end every queue and the durable subscription are drained
# and each confirmed message must have been consumed at least once
# (duplicates are allowed by at-least-once delivery, and counted).
#
# Memory and file descriptors, and what a fair comparison is: the broker's
# RSS depends on what it holds (queued messages, a topic's retained log, the
# raft log since the last snapshot, publisher ids remembered for the
# de-duplication window, ephemeral subscriptions of killed consumers, open
# connections) and a broker restarted with kill -9 starts over from nothing,
# so a figure taken before a kill says nothing about the process measured
# after it.  The run is therefore in three phases:
#
#   chaos   load with a broker kill every SOAK_KILL_EVERY seconds; the phase
#           ends with a kill, and the broker started then is the final one;
#   warm-up SOAK_WARMUP seconds of the same load on the final broker (its
#           allocator, nng's and the HTTP server's pools and threads grow to
#           their working size), then "quiesce";
#   final   SOAK_FINAL seconds of the same load without kills, then
#           "quiesce" again.
#
# "quiesce" stops every client, drains every queue and the durable
# subscription, then waits SOAK_SETTLE seconds, longer than everything that
# holds memory for a while after the load stops: the topics' retention (60 s
# here), the de-duplication window (60 s here), ephemeral subscriptions of
# killed consumers (60 s), idle HTTP connections (60 s).  RSS and open fds
# are measured then, the first time as the start figures, the second as the
# end figures: the same process, both times idle, drained and settled, so a
# difference is what the final phase's load left behind.  The broker runs
# with --snapshot-after 256KiB so that the raft log it keeps in memory until
# a snapshot (about 190 bytes a message plus payloads) stays small against
# the 20 % bound whatever the phase's length.
#
# Everything started here is tracked by PID and stopped by PID on every exit
# path; every client has its own time bound (-W, --max-time), every loop a
# deadline.  (shellcheck: cleanup runs from a trap.)  Exit status: 0 passed, 1 a check failed (loss, RSS or fd
# bound, a broker that died by itself or failed to start), 64 a bad setting.

# shellcheck disable=SC2317
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${MOM_BIN:-$ROOT/bin}

SOAK_SECONDS=${SOAK_SECONDS:-3600}
SOAK_KILL_EVERY=${SOAK_KILL_EVERY:-180}
SOAK_WARMUP=${SOAK_WARMUP:-30}
SOAK_FINAL=${SOAK_FINAL:-$((SOAK_SECONDS / 4))}
SOAK_SETTLE=${SOAK_SETTLE:-75}
SOAK_DRAIN_MAX=${SOAK_DRAIN_MAX:-300}
SOAK_RSS_PCT=${SOAK_RSS_PCT:-20}
SOAK_FD_SLACK=${SOAK_FD_SLACK:-0}
SOAK_KEEP=${SOAK_KEEP:-0}
# SOAK_INJECT_LOSS=1 checks the check: confirmed messages are destroyed on
# purpose (published with a delay of an hour, then the queue is purged), and
# the run must end with them counted as lost and exit 1.
SOAK_INJECT_LOSS=${SOAK_INJECT_LOSS:-0}
# SOAK_INJECT_FD=1 likewise: a connection to the broker opened in the final
# phase and held past the end measurement must break the fd bound.
SOAK_INJECT_FD=${SOAK_INJECT_FD:-0}

die_usage() { echo "soak.sh: $*" >&2; exit 64; }
for v in SOAK_SECONDS SOAK_KILL_EVERY SOAK_WARMUP SOAK_FINAL SOAK_SETTLE \
    SOAK_DRAIN_MAX SOAK_RSS_PCT SOAK_FD_SLACK; do
	[[ ${!v} =~ ^[0-9]{1,7}$ ]] || die_usage "$v must be a number of seconds (or percent): '${!v}'"
done
((SOAK_KILL_EVERY >= 10)) || die_usage "SOAK_KILL_EVERY must be at least 10 seconds"
((SOAK_FINAL >= 30)) || SOAK_FINAL=30
CHAOS=$((SOAK_SECONDS - SOAK_WARMUP - SOAK_FINAL))
((CHAOS >= 10)) || die_usage "SOAK_SECONDS ($SOAK_SECONDS) leaves no time for the kill phase after SOAK_WARMUP ($SOAK_WARMUP) and SOAK_FINAL ($SOAK_FINAL)"
NKILLS=$((CHAOS / SOAK_KILL_EVERY))
((NKILLS >= 1)) || NKILLS=1
for p in mom-broker mom-pub mom-sub mom-admin; do
	[ -x "$BIN/$p" ] || die_usage "no $BIN/$p (run make first)"
done
for p in curl jq python3; do
	command -v "$p" >/dev/null || die_usage "$p is needed"
done

W=$(mktemp -d "${TMPDIR:-/tmp}/mom-soak.XXXXXX") || exit 1
mkdir -p "$W/conf" "$W/got" "$W/tmp"
export XDG_CONFIG_HOME="$W/xdg-none"	# no user configuration
unset MOM_TOKEN MOM_TOKEN_FILE

BROKER=
HOLDER=
ACTORS=()
KILLS=0
UNEXPECTED=0
FAILED=0

say() { printf '%s soak: %s\n' "$(date +%T)" "$*"; }
now() { date +%s; }

free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}
PORT=$(free_port)
HPORT=$(free_port)
while [ "$HPORT" = "$PORT" ]; do HPORT=$(free_port); done
export MOM_URL="tcp://127.0.0.1:$PORT"
HTTP="http://127.0.0.1:$HPORT"

# ------------------------------------------------------------ processes

# descendants PID: every process below PID, children first in the list
# after their own children (found by parent PID, never by name).
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		descendants "$c"
		echo "$c"
	done
}

# kill_tree PID SIG: PID and everything below it.
kill_tree() {
	local p
	for p in $(descendants "$1") "$1"; do
		kill -"$2" "$p" 2>/dev/null
	done
}

start_broker() {
	local i try
	for ((try = 0; try < 5; try++)); do
		"$BIN/mom-broker" -D "$W/data" -l "$MOM_URL" --http "127.0.0.1:$HPORT" \
		    --snapshot-after 256KiB --dedupe-window 60s 2>>"$W/broker.log" &
		BROKER=$!
		for ((i = 0; i < 300; i++)); do
			if "$BIN/mom-admin" -W 1 --quiet ping >/dev/null 2>&1; then
				return 0
			fi
			kill -0 "$BROKER" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$BROKER" 2>/dev/null
		wait "$BROKER" 2>/dev/null
		BROKER=
		sleep 1		# a port still held by the last one
	done
	say "FAILED: the broker does not start; log: $W/broker.log"
	tail -5 "$W/broker.log" >&2
	return 1
}

kill_broker() {
	kill -KILL "$BROKER" 2>/dev/null
	wait "$BROKER" 2>/dev/null
	BROKER=
	KILLS=$((KILLS + 1))
}

# broker_alive: false, and counted, when the broker exited without our kill.
broker_alive() {
	kill -0 "$BROKER" 2>/dev/null && return 0
	wait "$BROKER" 2>/dev/null
	say "the broker exited by itself (status $?): restarting"
	UNEXPECTED=$((UNEXPECTED + 1))
	return 1
}

cleanup() {
	local a rc=$?
	trap - EXIT INT TERM HUP
	touch "$W/stop"
	for a in "${ACTORS[@]}"; do kill_tree "$a" KILL; done
	for a in "${ACTORS[@]}"; do wait "$a" 2>/dev/null; done
	if [ -n "$HOLDER" ]; then
		kill -KILL "$HOLDER" 2>/dev/null
		wait "$HOLDER" 2>/dev/null
	fi
	if [ -n "$BROKER" ]; then
		kill -TERM "$BROKER" 2>/dev/null
		for ((a = 0; a < 100; a++)); do
			kill -0 "$BROKER" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$BROKER" 2>/dev/null
		wait "$BROKER" 2>/dev/null
	fi
	if ((rc == 0)) && [ "$SOAK_KEEP" = 0 ]; then
		rm -rf "$W"
	else
		echo "soak: kept $W (broker.log, conf/, got/, summary)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------ the load
#
# Each actor is a loop in a background subshell that runs until $W/stop
# exists.  Payloads are unique: KIND.TAG.SESSION.N.z (TAG names the actor
# and the phase); the ".z" end tells a whole line from one cut short by a
# kill.  conf/* hold confirmed payloads, got/* consumed ones.

running() { [ ! -e "$W/stop" ]; }
pause() { sleep "0.$((RANDOM % 4 + 1))"; }	# 0.1 to 0.4 s
whole() { grep -a '\.z$' "$@"; }		# complete lines only

# One-shot publishes over nng, every other one with a publisher id.
pub_oneshot() { # TAG QUEUE
	local n=0 p id
	while running; do
		n=$((n + 1))
		p="one.$1.$n.z"
		id=()
		((n % 2)) && id=(--id "$p")
		if "$BIN/mom-pub" -q "$2" "${id[@]}" -m "$p" -W 20 --quiet 2>/dev/null; then
			echo "$p" >>"$W/conf/$1"
		fi
		pause
	done
}

# Streaming publishes (-l), sessions of 100 to 300 lines fed slowly; all of
# a session is confirmed when mom-pub exits 0.
pub_stream() { # TAG -q QUEUE | -t TOPIC
	local tag=$1 s=0 k i f l
	shift
	while running; do
		s=$((s + 1))
		k=$((100 + RANDOM % 200))
		f="$W/tmp/$tag.pend"
		for ((i = 1; i <= k; i++)); do echo "str.$tag.$s.$i.z"; done >"$f"
		i=0
		while IFS= read -r l; do
			echo "$l"
			((++i % 20 == 0)) && sleep 0.25
		done <"$f" | "$BIN/mom-pub" "$@" -l -W 30 --quiet 2>/dev/null
		if [ "${PIPESTATUS[1]}" = 0 ]; then
			cat "$f" >>"$W/conf/$tag"
		fi
		pause
	done
}

# Publishes over HTTP: single raw bodies (half with Mom-Id) and JSON batches.
pub_http() { # TAG queues/NAME | topics/NAME
	local n=0 code p b j h
	while running; do
		n=$((n + 1))
		if ((n % 3)); then
			p="http.$1.$n.z"
			h=()
			((n % 2)) && h=(-H "Mom-Id: $p")
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 "${h[@]}" \
			    -H 'Content-Type: application/octet-stream' --data-binary "$p" \
			    "$HTTP/v1/$2/messages")
			[[ $code == 2?? ]] && echo "$p" >>"$W/conf/$1"
		else
			b=()
			for j in 1 2 3 4 5; do b+=("hb.$1.$n.$j.z"); done
			code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 20 \
			    -H 'Content-Type: application/json' \
			    -d "$(printf '%s\n' "${b[@]}" | jq -Rc '{messages:[inputs|{payload:.}]}' -n)" \
			    "$HTTP/v1/$2/messages")
			[[ $code == 2?? ]] && printf '%s\n' "${b[@]}" >>"$W/conf/$1"
		fi
		pause
	done
}

# A long-running consumer (-C bounds a run, -W ends it when idle).
con_stream() { # TAG ARGS...
	local tag=$1
	shift
	while running; do
		"$BIN/mom-sub" "$@" -F '%p\n' -p 16 -C 500 -W 5 --quiet >>"$W/got/$tag" 2>/dev/null
		running && sleep 0.2
	done
}

# Batches of -C 50, and single-message long polls (-C 1 -W 15).
con_count() { # TAG QUEUE COUNT WAIT
	while running; do
		"$BIN/mom-sub" -q "$2" -F '%p\n' -C "$3" -W "$4" --quiet >>"$W/got/$1" 2>/dev/null
		pause
	done
}

# Worker mode, two at once; a message ending in 0 or 5 asks to be retried
# (exit 75) on its first delivery.
con_worker() { # TAG QUEUE
	while running; do
		SOAK_GOT="$W/got/$1" "$BIN/mom-sub" -q "$2" -P 2 -C 200 -W 5 --quiet \
		    -- "$W/work.sh" 2>/dev/null
		pause
	done
}

# An HTTP consumer: long polls, payloads recorded, then acknowledged.
con_http() { # TAG QUEUE
	local r acks
	while running; do
		r=$(curl -s --max-time 15 "$HTTP/v1/queues/$2/messages?max=20&wait=5") || { sleep 1; continue; }
		jq -r '.messages[]?.payload' <<<"$r" >>"$W/got/$1" 2>/dev/null || { sleep 1; continue; }
		acks=$(jq -c '{receipts:[.messages[]?.receipt]}' <<<"$r")
		[ "$acks" = '{"receipts":[]}' ] ||
			curl -s -o /dev/null --max-time 15 -d "$acks" "$HTTP/v1/queues/$2/ack"
	done
}

# Ephemeral subscriptions (their messages are not accounted: they see only
# what was published while they existed), every third one killed.
con_ephemeral() { # TAG PATTERN
	local n=0 pid
	while running; do
		n=$((n + 1))
		"$BIN/mom-sub" -t "$2" -N -C 50 -W 3 --quiet 2>/dev/null &
		pid=$!
		if ((n % 3 == 0)); then
			sleep "$((RANDOM % 3 + 1))"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		sleep 1
	done
}

# Abandoned connections: consumers killed with kill -9 in the middle of a
# long poll (nng, and curl over HTTP).  What an nng consumer wrote before
# it died counts as consumed (it may or may not have been acknowledged); what
# curl got is never acknowledged and comes back after the ack wait.
abandon() { # TAG
	local n=0 pid q f
	while running; do
		n=$((n + 1))
		q=soak.q.one
		((n % 2)) && q=soak.q.http
		f="$W/tmp/$1.$n"
		if ((n % 3)); then
			"$BIN/mom-sub" -q "$q" -F '%p\n' -p 4 -W 20 --quiet >"$f" 2>/dev/null &
		else
			curl -s --max-time 25 "$HTTP/v1/queues/$q/messages?max=5&wait=20" >/dev/null &
		fi
		pid=$!
		sleep "$((RANDOM % 3)).$((RANDOM % 10))"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		[ -f "$f" ] && { whole "$f" >>"$W/got/$1"; rm -f "$f"; }
		sleep 1
	done
}

# Raw TCP connections to both ports: nothing, half an SP header, an SP
# handshake, an unfinished HTTP request, a body cut short, random bytes;
# held up to 2 s, then closed or reset.
raw_tcp() {
	while running; do
		python3 "$W/raw.py" "$PORT" "$HPORT" 10 2>/dev/null
		sleep 2
	done
}

# Admin and metrics requests now and then.
admin_poll() {
	while running; do
		"$BIN/mom-admin" -W 5 queue list >/dev/null 2>&1
		"$BIN/mom-admin" -W 5 stats >/dev/null 2>&1
		curl -s -o /dev/null --max-time 5 "$HTTP/metrics"
		sleep 5
	done
}

write_helpers() {
	cat >"$W/work.sh" <<'EOF'
#!/bin/sh
p=$(cat)
case $p in *[05].z) [ "$MOM_DELIVERY" = 1 ] && exit 75 ;; esac
printf '%s\n' "$p" >>"$SOAK_GOT"
EOF
	chmod +x "$W/work.sh"
	cat >"$W/raw.py" <<'EOF'
import os, random, socket, struct, sys, time
nport, hport, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random()
for i in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", rnd.choice([nport, hport])), timeout=2)
    except OSError:
        time.sleep(0.5)
        continue
    k = rnd.randrange(6)
    try:
        if k == 1:
            s.sendall(b"\x00SP\x00")
        elif k == 2:
            s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
        elif k == 3:
            s.sendall(b"GET /v1/queues HTTP/1.1\r\nHost: x\r\n")
        elif k == 4:
            s.sendall(b"POST /v1/queues/soak.q.http/messages HTTP/1.1\r\n"
                      b"Host: x\r\nContent-Length: 100\r\n\r\nabc")
        elif k == 5:
            s.sendall(os.urandom(rnd.randrange(1, 64)))
    except OSError:
        pass
    time.sleep(rnd.random() * 2)
    if rnd.random() < 0.5:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
EOF
}

actor() { "$@" 3>&- & ACTORS+=($!); }

start_load() { # PHASE
	local ph=$1
	rm -f "$W/stop"
	actor pub_oneshot "o1$ph" soak.q.one
	actor pub_oneshot "o2$ph" soak.q.one
	actor pub_oneshot "ow$ph" soak.q.work
	actor pub_stream "sq$ph" -q soak.q.stream
	actor pub_stream "st$ph" -t soak.t.a
	actor pub_http "hq$ph" queues/soak.q.http
	actor pub_http "ht$ph" topics/soak.t.b
	actor con_stream "c1$ph" -q soak.q.one
	actor con_stream "cd$ph" -t 'soak.t.>' -d dur
	actor con_count "cb$ph" soak.q.stream 50 3
	actor con_count "cp$ph" soak.q.http 1 15
	actor con_http "ch$ph" soak.q.http
	actor con_worker "cw$ph" soak.q.work
	actor con_ephemeral "ce$ph" 'soak.t.*'
	actor abandon "ab$ph"
	actor raw_tcp
	actor admin_poll
}

# stop_load: ask every actor to stop; what is still running after 30 s
# (a client in a long poll) gets SIGTERM, after 40 s SIGKILL.
stop_load() {
	local a i alive
	touch "$W/stop"
	for ((i = 0; i < 400; i++)); do
		alive=0
		for a in "${ACTORS[@]}"; do kill -0 "$a" 2>/dev/null && alive=1; done
		((alive)) || break
		((i == 300)) && for a in "${ACTORS[@]}"; do kill_tree "$a" TERM; done
		sleep 0.1
	done
	for a in "${ACTORS[@]}"; do kill_tree "$a" KILL; done
	for a in "${ACTORS[@]}"; do wait "$a" 2>/dev/null; done
	ACTORS=()
}

QUEUES="soak.q.one soak.q.stream soak.q.http soak.q.work soak.dead"

# held: messages still held by the queues and the durable subscription.
held() {
	local q s
	q=$("$BIN/mom-admin" -W 5 --json queue list 2>/dev/null |
	    jq '[.[] | select(.name | startswith("soak.")) | .messages] | add // 0') || return 1
	s=$("$BIN/mom-admin" -W 5 --json sub list 2>/dev/null |
	    jq '[.[] | select(.name == "dur") | .messages] | add // 0') || return 1
	echo $((q + s))
}

# drain: consume everything left (-e), again until nothing is held
# (messages in flight to killed consumers come back after their ack wait).
drain() {
	local end=$(($(now) + SOAK_DRAIN_MAX)) q h
	while :; do
		for q in $QUEUES; do
			"$BIN/mom-sub" -q "$q" -e -F '%p\n' -W 10 --quiet >>"$W/got/drain.$q" 2>/dev/null
		done
		"$BIN/mom-sub" -t 'soak.t.>' -d dur -e -F '%p\n' -W 10 --quiet >>"$W/got/drain.dur" 2>/dev/null
		h=$(held) && [ "$h" = 0 ] && return 0
		if (($(now) >= end)); then
			say "FAILED: still $h messages held after draining for $SOAK_DRAIN_MAX s"
			return 1
		fi
		sleep 2
	done
}

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$BROKER/status"; }
fds() { find "/proc/$BROKER/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# quiesce LABEL: stop the load, drain, settle, and measure (see the top).
quiesce() {
	say "$1: stopping the load"
	stop_load
	broker_alive || start_broker || exit 1
	say "$1: draining"
	drain || FAILED=1
	say "$1: settling for $SOAK_SETTLE s"
	sleep "$SOAK_SETTLE"
	broker_alive || { FAILED=1; start_broker || exit 1; }
	MEAS_RSS=$(rss)
	MEAS_FDS=$(fds)
	MEAS_HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$BROKER/status")
	say "$1: broker RSS $MEAS_RSS kB, $MEAS_FDS open fds, $(held) messages held"
}

# ------------------------------------------------------------ the run

write_helpers
say "work directory $W; broker on $MOM_URL and $HTTP"
say "$SOAK_SECONDS s of load: $CHAOS s with $NKILLS broker kill(s), $SOAK_WARMUP s warm-up, $SOAK_FINAL s without kills (plus draining and 2 x $SOAK_SETTLE s settling)"
start_broker || exit 1
"$BIN/mom-admin" queue create soak.dead >/dev/null || exit 1
for q in $QUEUES; do
	[ "$q" = soak.dead ] && continue
	"$BIN/mom-admin" queue create "$q" --ack-wait 10s --max-deliver 50 \
	    --dead-letter soak.dead >/dev/null || exit 1
done
for t in soak.t.a soak.t.b; do
	"$BIN/mom-admin" topic create "$t" --retain 60s >/dev/null || exit 1
done
# The durable subscription exists before anything is published to it.
"$BIN/mom-sub" -t 'soak.t.>' -d dur -e --quiet >/dev/null || exit 1

# chaos: kills spread evenly, the last at the end of the phase.
start_load c
gap=$((CHAOS / NKILLS))
for ((k = 1; k <= NKILLS; k++)); do
	at=$(($(now) + gap))
	while (($(now) < at)); do
		broker_alive || start_broker || exit 1
		sleep 1
	done
	broker_alive || start_broker || exit 1
	kill_broker
	say "kill -9 of the broker ($KILLS of $NKILLS)"
	sleep "$((RANDOM % 3))"
	start_broker || exit 1
done

# warm-up on the final broker, then the start figures.
sleep "$SOAK_WARMUP"
quiesce warm-up
RSS0=$MEAS_RSS
FDS0=$MEAS_FDS
FINAL_PID=$BROKER

# final: the same load, no kills, then the end figures.
start_load f
if [ "$SOAK_INJECT_LOSS" = 1 ]; then
	for i in 1 2 3; do
		"$BIN/mom-pub" -q soak.q.work --delay 1h -m "inject.$i.z" -W 20 --quiet &&
			echo "inject.$i.z" >>"$W/conf/inject"
	done
	"$BIN/mom-admin" -W 20 queue purge soak.q.work
	say "SOAK_INJECT_LOSS: $(wc -l <"$W/conf/inject") confirmed messages purged"
fi
if [ "$SOAK_INJECT_FD" = 1 ]; then
	python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
time.sleep(100000)' "$PORT" 2>/dev/null 3>&- &
	HOLDER=$!
	say "SOAK_INJECT_FD: a connection held open until the end"
fi
end=$(($(now) + SOAK_FINAL))
while (($(now) < end)); do
	broker_alive || { FAILED=1; start_broker || exit 1; }
	sleep 1
done
quiesce end
RSS1=$MEAS_RSS
FDS1=$MEAS_FDS
HWM1=$MEAS_HWM
[ "$BROKER" = "$FINAL_PID" ] || { say "FAILED: the final broker was restarted"; FAILED=1; }

# ------------------------------------------------------------ the figures

sort -u "$W"/conf/* >"$W/confirmed" 2>/dev/null
cat "$W"/got/* 2>/dev/null | grep -a '\.z$' >"$W/consumed.all"
sort -u "$W/consumed.all" >"$W/consumed"
comm -23 "$W/confirmed" "$W/consumed" >"$W/lost"
grep -ah '\.z$' "$W/got/drain.soak.dead" 2>/dev/null | sort -u >"$W/dead"
nconf=$(wc -l <"$W/confirmed")
ncons=$(wc -l <"$W/consumed")
nall=$(wc -l <"$W/consumed.all")
nlost=$(wc -l <"$W/lost")
ndead=$(wc -l <"$W/dead")
nextra=$(comm -13 "$W/confirmed" "$W/consumed" | wc -l)
dropped=$("$BIN/mom-admin" -W 5 --json stats 2>/dev/null | jq '.dead_letters_dropped // 0')
rss_max=$((RSS0 * (100 + SOAK_RSS_PCT) / 100))
fds_max=$((FDS0 + SOAK_FD_SLACK))
bad=$(grep -ciE 'assert|sanitizer|segfault|panic|fatal' "$W/broker.log")

{
	echo "soak summary ($SOAK_SECONDS s of load, SOAK_KILL_EVERY=$SOAK_KILL_EVERY)"
	echo "  messages confirmed      $nconf"
	echo "  consumed (distinct)     $ncons, of them $nextra never confirmed to their publisher"
	echo "  duplicates              $((nall - ncons))"
	echo "  lost                    $nlost"
	echo "  dead-lettered           $ndead (drained from soak.dead), dropped $dropped"
	echo "  broker kills (-9)       $KILLS; exits not ours $UNEXPECTED; crash lines in log $bad"
	echo "  broker RSS              start $RSS0 kB, end $RSS1 kB (bound $rss_max kB, +$SOAK_RSS_PCT %), peak $HWM1 kB"
	echo "  broker open fds         start $FDS0, end $FDS1 (bound $fds_max)"
} | tee "$W/summary"

((nlost == 0)) || { head -5 "$W/lost" | sed 's/^/  lost: /'; FAILED=1; }
((nconf > 0)) || { say "FAILED: nothing was confirmed"; FAILED=1; }
((dropped == 0)) || FAILED=1
((UNEXPECTED == 0 && bad == 0)) || FAILED=1
((RSS1 <= rss_max)) || { say "FAILED: RSS $RSS1 kB over $rss_max kB"; FAILED=1; }
((FDS1 <= fds_max)) || { say "FAILED: $FDS1 open fds over $fds_max"; FAILED=1; }
if ((FAILED)); then
	say "FAILED"
	exit 1
fi
say "passed"
exit 0

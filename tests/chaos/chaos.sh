#!/usr/bin/env bash
# tests/chaos/chaos.sh: the cluster's chaos run (issue 13; make check runs
# 120 s of it, make chaos longer).  See tests/chaos/README.md.
#
# Three brokers of the fault build (build-fault/bin: make fault) form a
# cluster on loopback, every one with MOM_FAULT_POWERLOSS (a kill can lose
# what was not synced) and MOM_FAULT_LINK (a file per node that this script
# rewrites: drops, delays, partitions of its cluster links).  Publishers
# with unique ids publish one message a process, to a queue and to a topic,
# each starting at another node of the URL list; consumers take from the
# queue.  Every CHAOS_EVERY_MIN..MAX seconds one fault, in a shuffled cycle
# so that a run of 120 s has each kind at least once:
#   kill      kill -9 of the leader, restarted 2-5 s later
#   killany   kill -9 of any node, restarted 2-5 s later
#   stop      SIGSTOP of the leader for 5-15 s
#   link      one node's links: 30 % drops, 300 ms delay, a one-way or a
#             full partition, for 5-15 s
#   power     every node killed at once, losing what it had not synced,
#             and restarted
#   readd     a follower removed (cluster remove), its data wiped, started
#             empty and added back (cluster add)
#   figure8   (only when CHAOS_FAULTS names it) the Raft paper's figure 8,
#             scripted: see fault_figure8
# Then everything heals, the publishers stop, every node serves a drain,
# and the checker says:
#   lost      confirmed publishes (mom-pub exit 0) nobody consumed: 0
#   phantom   messages consumed that no publisher sent: 0
#   order     a publisher's confirmed topic messages out of order in the
#             topic's log, or stored twice: 0
#   digest    every node at the same applied index with the same digest
#             (mom-admin cluster digest) within CHAOS_SETTLE seconds
#   crashes   a broker that exited without being killed, or a sanitizer,
#             assertion or invariant line in a log: 0
# CHAOS_VERBOSE=1 runs the nodes with -v (their debug lines in n*.log);
# LIBRAFT_TRACE=1 in the environment adds libraft's own trace there.
# A kept directory has each node's cluster status and stats at the end
# (status.N, stats.N).
# Exit status: 0 passed, 1 a check failed, 64 a bad setting or no fault
# build.  Negative controls: CHAOS_CONTROL=confirm-before-commit runs every
# node with MOM_FAULT_CONFIRM_BEFORE_COMMIT (publishes confirmed before a
# majority has them) and starts with a partition of the leader; the run
# must then fail with lost > 0.  CHAOS_CONTROL=no-guard switches off the
# figure-8 guard (MOM_FAULT_NO_GUARD) and starts with the figure8 fault;
# the run must then fail (a node stops: it committed what was overwritten).
#
# Everything started here is tracked by PID and stopped by PID on every
# exit path; every client has a time bound (-W, timeout), every loop a
# deadline.
# shellcheck disable=SC2317
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${CHAOS_BIN:-$ROOT/build-fault/bin}
CHAOS_SECONDS=${CHAOS_SECONDS:-120}
CHAOS_EVERY_MIN=${CHAOS_EVERY_MIN:-10}
CHAOS_EVERY_MAX=${CHAOS_EVERY_MAX:-20}
CHAOS_SETTLE=${CHAOS_SETTLE:-60}
CHAOS_SEED=${CHAOS_SEED:-$(date +%s)}
CHAOS_CONTROL=${CHAOS_CONTROL:-none}
CHAOS_KEEP=${CHAOS_KEEP:-0}
CHAOS_FAULTS=${CHAOS_FAULTS:-kill killany stop link power readd}
N=3

die_usage() { echo "chaos.sh: $*" >&2; exit 64; }
for v in CHAOS_SECONDS CHAOS_EVERY_MIN CHAOS_EVERY_MAX CHAOS_SETTLE CHAOS_SEED; do
	[[ ${!v} =~ ^[0-9]{1,10}$ ]] || die_usage "$v must be a whole number: '${!v}'"
done
((CHAOS_EVERY_MIN >= 1 && CHAOS_EVERY_MAX >= CHAOS_EVERY_MIN)) ||
	die_usage "CHAOS_EVERY_MIN must be at least 1 and at most CHAOS_EVERY_MAX"
for f in $CHAOS_FAULTS; do
	case $f in kill | killany | stop | link | power | readd | figure8) ;;
	*) die_usage "CHAOS_FAULTS: unknown fault '$f' (kill killany stop link power readd figure8)" ;;
	esac
done
[ -n "${CHAOS_FAULTS// /}" ] || die_usage "CHAOS_FAULTS is empty"
case $CHAOS_CONTROL in
none | confirm-before-commit | no-guard) ;;
*) die_usage "CHAOS_CONTROL must be none, confirm-before-commit or no-guard: '$CHAOS_CONTROL'" ;;
esac
for p in mom-broker mom-pub mom-sub mom-admin mom-auth; do
	[ -x "$BIN/$p" ] || die_usage "no $BIN/$p: run make fault first"
done
RANDOM=$CHAOS_SEED

W=$(mktemp -d "${TMPDIR:-/tmp}/mom-chaos.XXXXXX") || exit 1
mkdir -p "$W/conf" "$W/tried" "$W/got"
NODE_PID=()
NODE_URL=()
CLUSTER_URL=()
NODE_DOWN=()		# 1: down on purpose (killed, being re-added)
ACTORS=()
UNEXPECTED=0
REMOVE_FAILED=0
FAULTS=()

say() { printf '%s chaos: %s\n' "$(date +%T)" "$*"; }
now() { date +%s; }
free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

# ------------------------------------------------------------ the nodes

for ((i = 1; i <= N; i++)); do
	NODE_URL[$i]="tcp://127.0.0.1:$(free_port)"
	CLUSTER_URL[$i]="tcp://127.0.0.1:$(free_port)"
	: >"$W/link.$i"
	: >"$W/barrier.$i"
done
ALL=$(IFS=,; echo "${NODE_URL[*]:1}")
"$BIN/mom-auth" cluster-key "$W/cluster.key" >/dev/null || exit 1

# The figure-8 schedule times its cuts against the leaders' timers: with
# it, the nodes' election timeout is 2 s (heartbeats every 200 ms).
node_opts=()
[[ " $CHAOS_FAULTS " == *" figure8 "* || $CHAOS_CONTROL == no-guard ]] && node_opts=(--election-timeout 2s)

control_env=()
case $CHAOS_CONTROL in
confirm-before-commit) control_env=(MOM_FAULT_CONFIRM_BEFORE_COMMIT=1) ;;
no-guard) control_env=(MOM_FAULT_NO_GUARD=1) ;;
esac

# start_node I [--bootstrap]
start_node() {
	local i=$1 j peers=()
	shift
	for ((j = 1; j <= N; j++)); do
		[ "$j" = "$i" ] || peers+=(--peer "$j=${CLUSTER_URL[$j]}")
	done
	env MOM_FAULT_POWERLOSS=1 MOM_FAULT_LINK="$W/link.$i" \
	    MOM_FAULT_LATE_BARRIER="$W/barrier.$i" "${control_env[@]}" \
	    "$BIN/mom-broker" -D "$W/n$i" -l "${NODE_URL[$i]}" --http off --node-id "$i" \
	    --cluster "${CLUSTER_URL[$i]}" --cluster-key "$W/cluster.key" "${peers[@]}" \
	    --fsync always --snapshot-after 512KiB "${node_opts[@]}" ${CHAOS_VERBOSE:+-v} "$@" \
	    >>"$W/n$i.log" 2>&1 &
	NODE_PID[$i]=$!
	NODE_DOWN[$i]=0
	echo "--- started (pid ${NODE_PID[$i]})" >>"$W/n$i.log"
}

kill_node() { # I SIG
	[ -n "${NODE_PID[$1]:-}" ] || return 0
	kill -CONT "${NODE_PID[$1]}" 2>/dev/null
	kill -"$2" "${NODE_PID[$1]}" 2>/dev/null
	wait "${NODE_PID[$1]}" 2>/dev/null
	NODE_PID[$1]=
	NODE_DOWN[$1]=1
}

# status I: node I's cluster status as JSON, or nothing.
status() {
	timeout 5 "$BIN/mom-admin" -s "${NODE_URL[$1]}" -W 2 cluster status --json 2>/dev/null
}

# leader_seen I: the leader node I names (empty: none).
leader_seen() {
	status "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("leader") or "")' 2>/dev/null
}

# leader: the leader's id as a running node sees it (empty: none agreed).
leader() {
	local i l
	for ((i = 1; i <= N; i++)); do
		[ "${NODE_DOWN[$i]}" = 0 ] || continue
		l=$(leader_seen "$i")
		[ -n "$l" ] && { echo "$l"; return 0; }
	done
	return 1
}

wait_leader() { # SECONDS
	local deadline=$(($(now) + $1)) l
	while (($(now) < deadline)); do
		l=$(leader) && { echo "$l"; return 0; }
		sleep 0.5
	done
	return 1
}

# check_alive: a node that exited though nobody killed it is counted and restarted.
check_alive() {
	local i
	for ((i = 1; i <= N; i++)); do
		[ "${NODE_DOWN[$i]}" = 0 ] || continue
		kill -0 "${NODE_PID[$i]}" 2>/dev/null && continue
		wait "${NODE_PID[$i]}" 2>/dev/null
		say "node $i exited by itself (status $?): restarting it"
		UNEXPECTED=$((UNEXPECTED + 1))
		start_node "$i"
	done
}

cleanup() {
	local rc=$? a i
	trap - EXIT INT TERM HUP
	touch "$W/stop"
	for a in "${ACTORS[@]}"; do kill -TERM "$a" 2>/dev/null; done
	for a in "${ACTORS[@]}"; do wait "$a" 2>/dev/null; done
	for ((i = 1; i <= N; i++)); do
		[ -n "${NODE_PID[$i]:-}" ] || continue
		kill -CONT "${NODE_PID[$i]}" 2>/dev/null
		kill -TERM "${NODE_PID[$i]}" 2>/dev/null
	done
	for ((i = 1; i <= N; i++)); do
		[ -n "${NODE_PID[$i]:-}" ] || continue
		for ((a = 0; a < 100; a++)); do
			kill -0 "${NODE_PID[$i]}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${NODE_PID[$i]}" 2>/dev/null
		wait "${NODE_PID[$i]}" 2>/dev/null
	done
	if ((rc == 0)) && [ "$CHAOS_KEEP" = 0 ]; then
		rm -rf "$W"
	else
		echo "chaos: kept $W (n*.log, conf/, tried/, got/, summary)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ------------------------------------------------------------ the load
#
# Payloads are unique: q.K.N (queue) and t.K.N (topic) for publisher K's
# N-th message, published with --id the same, so that a retry is stored
# once.  tried/ has every attempt (written before mom-pub runs), conf/ the
# confirmed ones, got/ what consumers wrote out (and so acknowledged).

running() { [ ! -e "$W/stop" ]; }

# urls_from K: the node list starting at node K (publishers spread out).
urls_from() {
	local k=$1 j out=()
	for ((j = 0; j < N; j++)); do
		out+=("${NODE_URL[$(((k - 1 + j) % N + 1))]}")
	done
	(IFS=,; echo "${out[*]}")
}

publisher() { # KIND(q|t) K
	local kind=$1 k=$2 n=0 urls flag
	urls=$(urls_from "$k")
	flag=-q
	[ "$kind" = t ] && flag=-t
	while running; do
		n=$((n + 1))
		echo "$kind.$k.$n" >>"$W/tried/$kind.$k"
		if timeout 30 "$BIN/mom-pub" -s "$urls" "$flag" "c$kind" --id "$kind.$k.$n" \
		    -m "$kind.$k.$n" -W 20 --request-timeout 1s 2>>"$W/pub.err"; then
			echo "$kind.$k.$n" >>"$W/conf/$kind.$k"
		fi
	done
}

consumer() { # K
	local k=$1 urls
	urls=$(urls_from "$k")
	while running; do
		timeout 60 "$BIN/mom-sub" -s "$urls" -q cq -W 5 --request-timeout 1s \
		    >>"$W/got/c.$k" 2>>"$W/sub.err"
		sleep 0.2
	done
}

actor() { "$@" & ACTORS+=($!); }

# ------------------------------------------------------------ the faults

pause_s() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }

a_follower() { # LEADER
	local i c=()
	for ((i = 1; i <= N; i++)); do
		[ "$i" != "$1" ] && [ "${NODE_DOWN[$i]}" = 0 ] && c+=("$i")
	done
	((${#c[@]})) && echo "${c[$((RANDOM % ${#c[@]}))]}"
}

fault_kill() { # I
	local i=$1 t
	t=$(pause_s 2 5)
	say "kill -9 node $i, restart in ${t}s"
	kill_node "$i" KILL
	sleep "$t"
	start_node "$i"
}

fault_stop() { # I
	local i=$1 t
	t=$(pause_s 5 15)
	say "SIGSTOP node $i for ${t}s"
	kill -STOP "${NODE_PID[$i]}"
	sleep "$t"
	kill -CONT "${NODE_PID[$i]}"
}

fault_link() { # I [WHAT]
	local i=$1 what=${2:-} t
	t=$(pause_s 5 15)
	if [ -z "$what" ]; then
		case $((RANDOM % 4)) in
		0) what='* drop 0.3' ;;
		1) what='* delay 300' ;;
		2) what='* partition out' ;;
		3) what='* partition both' ;;
		esac
	fi
	say "node $i's links: '$what' for ${t}s"
	echo "$what" >"$W/link.$i.new" && mv "$W/link.$i.new" "$W/link.$i"
	sleep "$t"
	: >"$W/link.$i.new" && mv "$W/link.$i.new" "$W/link.$i"
}

fault_power() {
	local i
	say "power loss: every node killed at once, unsynced writes lost"
	for ((i = 1; i <= N; i++)); do kill_node "$i" KILL; done
	sleep 1
	for ((i = 1; i <= N; i++)); do start_node "$i"; done
}

# A remove answered with an error (the leader lost its leadership during
# the change, say) may have happened: sent again, "no such node" means done.
cluster_cmd() { # ARGS...: until it succeeds, 20 s at most
	local deadline=$(($(now) + 20)) out tries=0
	while (($(now) < deadline)); do
		out=$(timeout 15 "$BIN/mom-admin" -s "$ALL" -W 10 cluster "$@" 2>&1) && return 0
		printf '%s\n' "$out" >>"$W/admin.log"
		[ "$1" = remove ] && ((tries > 0)) && [[ $out =~ "no such node in the cluster" ]] &&
			return 0
		tries=$((tries + 1))
		sleep 1
	done
	return 1
}

# member_still J: true unless a node that names a leader (30 s at most)
# leaves node J out of its configuration.
member_still() {
	local deadline=$(($(now) + 30)) i out
	while (($(now) < deadline)); do
		for ((i = 1; i <= N; i++)); do
			[ "$i" = "$1" ] && continue
			out=$(status "$i" | python3 -c "
import json, sys
d = json.load(sys.stdin)
if d.get('leader'):
    print('in' if any(n['id'] == $1 for n in d['nodes']) else 'out')" 2>/dev/null)
			[ "$out" = in ] && return 0
			[ "$out" = out ] && return 1
		done
		sleep 1
	done
	return 0
}

fault_readd() { # LEADER
	local j
	j=$(a_follower "$1") || { say "readd: no follower up, skipped"; return 0; }
	say "node $j removed, wiped, started empty and added back"
	if ! cluster_cmd remove "$j"; then
		say "readd: cluster remove $j failed (see admin.log)"
		REMOVE_FAILED=$((REMOVE_FAILED + 1))
		# It may have happened all the same: then node j is out of the
		# cluster but still running, and must come back as the fault
		# says, or its state would stand apart at the end for that alone.
		member_still "$j" && return 0
		say "readd: node $j is out of the cluster all the same: added back"
	fi
	kill_node "$j" TERM
	rm -rf "$W/n$j"
	start_node "$j"
	if ! cluster_cmd add "$j" "${CLUSTER_URL[$j]}"; then
		say "readd: cluster add $j failed (see admin.log)"
		REMOVE_FAILED=$((REMOVE_FAILED + 1))
	fi
}

read -r -a KINDS <<<"$CHAOS_FAULTS"
next_kind() {
	local i j t
	if ((${#CYCLE[@]} == 0)); then
		CYCLE=("${KINDS[@]}")
		for ((i = ${#CYCLE[@]} - 1; i > 0; i--)); do
			j=$((RANDOM % (i + 1)))
			t=${CYCLE[$i]} CYCLE[$i]=${CYCLE[$j]} CYCLE[$j]=$t
		done
	fi
	KIND=${CYCLE[0]}
	CYCLE=("${CYCLE[@]:1}")
}

# commit_of I: node I's own commit index.
commit_of() {
	status "$1" | python3 -c 'import json,sys
d = json.load(sys.stdin)
print([n["commit"] for n in d["nodes"] if n["id"] == d["self"]][0])' 2>/dev/null
}

links() { # I WHAT: node I's link rules ('' heals)
	echo "$2" >"$W/link.$1.new" && mv "$W/link.$1.new" "$W/link.$1"
}

late_barrier() { # MS: every new leader proposes its barrier MS after it won
	local i
	for ((i = 1; i <= N; i++)); do
		echo "$1" >"$W/barrier.$i.new" && mv "$W/barrier.$i.new" "$W/barrier.$i"
	done
}

# until_leader SECONDS NODE...: the first node that one of NODE... names
# as leader, when it is one of them.
until_leader() {
	local deadline=$(($(date +%s%N) / 1000000 + $1 * 1000)) n l
	shift
	while (($(date +%s%N) / 1000000 < deadline)); do
		for n in "$@"; do
			l=$(leader_seen "$n")
			[[ " $* " == *" $l "* ]] && { echo "$l"; return 0; }
		done
		sleep 0.05
	done
	return 1
}

# other_of A B C: of nodes B and C, the one that is not A.
other_of() { if [ "$1" = "$2" ]; then echo "$3"; else echo "$2"; fi; }

# cut_winner SECONDS NODE...: the node that one of NODE... names as leader,
# at once cut off from the others (before its late barrier leaves).
cut_winner() {
	local w
	w=$(until_leader "$@") || return 1
	links "$w" '* partition both'
	echo "$w"
}

# The Raft paper's figure 8 on three nodes, with every new leader's barrier
# late (1.2 s, then 3 s: the window the figure-8 guard covers,
# storage/guard.h), and the barriers as the entries of the figure:
#   S0 (the leader) is cut off; S1 wins with S3's vote, is cut off at once
#   and stores its barrier (term a) alone;
#   S0 is back; S2 (S0 or S3) wins with the other's vote, is cut off at
#   once and stores its barrier (term b > a) alone, then dies;
#   S1 and S3 are back; S1 wins S3's vote (its last term, a, is the
#   later) and copies its barrier to S3; S1 is cut off before its new
#   barrier (term c) leaves;
#   S2 restarts and wins S3's vote (its last term, b, is the later).
# With the guard S1 committed nothing in its window, and every log
# converges on S2's.  Without it (CHAOS_CONTROL=no-guard) S1 committed the
# term-a barrier by counting S3's copy, S2's log overwrites it, and S1 or
# S3 meets an entry that conflicts with one it committed: libraft stops it
# ("libraft stopped this node") and the broker exits, which the checker
# counts.
fault_figure8() { # LEADER
	local s0=$1 s1 s2 s3 x i c0 c1 k l o=()
	for ((i = 1; i <= N; i++)); do
		[ "${NODE_DOWN[$i]}" = 0 ] || { say "figure8: node $i is down: skipped"; return 0; }
		[ "$i" = "$s0" ] || o+=("$i")
	done
	late_barrier 1200
	links "$s0" '* partition both'
	if ! s1=$(cut_winner 15 "${o[@]}"); then
		say "figure8: no leader among ${o[*]}: skipped"
		late_barrier 0
		links "$s0" ''
		return 0
	fi
	x=$(other_of "$s1" "${o[@]}")
	say "figure8: node $s0 cut off; node $s1 won, cut off, stores its barrier alone"
	sleep 1.6
	links "$s0" ''
	if ! s2=$(cut_winner 15 "$s0" "$x"); then
		say "figure8: no leader among $s0 $x: skipped"
		late_barrier 0
		links "$s1" ''
		return 0
	fi
	s3=$(other_of "$s2" "$s0" "$x")
	say "figure8: node $s2 won, cut off, stores its barrier alone, then dies"
	sleep 1.6
	kill_node "$s2" KILL
	links "$s2" ''
	late_barrier 3000
	c0=$(commit_of "$s1")
	links "$s3" ''
	links "$s1" ''
	if [ "$(until_leader 15 "$s1" "$s3")" = "$s1" ]; then
		for ((k = 0; k < 15; k++)); do
			c1=$(commit_of "$s1")
			[ "${c1:-0}" -gt "${c0:-0}" ] && break
			sleep 0.05
		done
		links "$s1" '* partition both'
		say "figure8: node $s1 won again with node $s3's vote: its commit index went from $c0 to $c1 without an entry of its term"
	else
		links "$s1" '* partition both'
		say "figure8: node $s1 did not win again"
	fi
	# The links re-read their rules every 100 ms: S1's barrier, at once
	# from now on, must not leave before the cut holds.
	sleep 0.3
	late_barrier 0
	start_node "$s2"
	if l=$(until_leader 30 "$s2" "$s3"); then
		say "figure8: node $s2 restarted; node $l leads without node $s1"
	else
		say "figure8: node $s2 restarted; no leader without node $s1"
	fi
	links "$s1" ''
	say "figure8: node $s1 rejoins"
	sleep 3
}

one_fault() {
	local l any
	l=$(wait_leader 20) || { say "no leader before the fault: skipped"; return 0; }
	any=$((1 + RANDOM % N))
	[ "${NODE_DOWN[$any]}" = 0 ] || any=$l
	next_kind
	FAULTS+=("$KIND")
	case $KIND in
	kill) fault_kill "$l" ;;
	killany) fault_kill "$any" ;;
	stop) fault_stop "$l" ;;
	link) fault_link "$any" ;;
	power) fault_power ;;
	readd) fault_readd "$l" ;;
	figure8) fault_figure8 "$l" ;;
	esac
}

# ------------------------------------------------------------ the checks

# digests: "APPLIED DIGEST" of each running node, one line each.
digests() {
	local i
	for ((i = 1; i <= N; i++)); do
		timeout 10 "$BIN/mom-admin" -s "${NODE_URL[$i]}" -W 5 cluster digest --json \
		    2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["applied"], d["digest"], d["messages"])' 2>/dev/null ||
			echo "none $i"
	done
}

check() {
	local fail=0 lost phantom order
	cat "$W"/conf/q.* 2>/dev/null | sort -u >"$W/conf.q"
	cat "$W"/conf/t.* 2>/dev/null | sort -u >"$W/conf.t"
	cat "$W"/tried/* 2>/dev/null | sort -u >"$W/tried.all"
	cat "$W"/got/* 2>/dev/null | sort -u >"$W/got.q"
	lost=$(comm -23 "$W/conf.q" "$W/got.q" | wc -l)
	phantom=$(cat "$W/got.q" "$W/topic.log" | sort -u | comm -23 - "$W/tried.all" | wc -l)
	# Topic: every confirmed message in the log once, each publisher's in order.
	order=$(python3 - "$W/conf.t" "$W/topic.log" <<'EOF'
import sys
conf = set(open(sys.argv[1]).read().split())
log = open(sys.argv[2]).read().split()
bad = 0
seen = {}
last = {}
for m in log:
    if m in seen:
        bad += 1
        print("stored twice:", m, file=sys.stderr)
    seen[m] = 1
    if m not in conf:
        continue
    k, n = m.rsplit(".", 1)
    if last.get(k, 0) > int(n):
        bad += 1
        print("out of order:", m, "after", k + "." + str(last[k]), file=sys.stderr)
    last[k] = max(last.get(k, 0), int(n))
missing = [m for m in conf if m not in seen]
for m in missing[:20]:
    print("confirmed, not in the topic:", m, file=sys.stderr)
print(bad + len(missing))
EOF
)
	{
		echo "seed $CHAOS_SEED, control $CHAOS_CONTROL, $CHAOS_SECONDS s, faults: ${FAULTS[*]}"
		echo "queue: $(wc -l <"$W/tried.all") tried (both kinds), $(wc -l <"$W/conf.q") confirmed, $(wc -l <"$W/got.q") consumed"
		echo "topic: $(wc -l <"$W/conf.t") confirmed, $(wc -l <"$W/topic.log") read from first (mom-sub exit $TOPIC_RC), retained per node: $TOPIC_HELD"
		echo "lost $lost, phantom $phantom, topic order/duplicates/missing $order"
		echo "nodes that exited by themselves: $UNEXPECTED; membership changes that failed: $REMOVE_FAILED"
		echo "links: $(tr '\n' ';' <"$W/links")"
		echo "digests: $(tr '\n' ';' <"$W/digests")"
	} | tee "$W/summary"
	((lost == 0)) || { comm -23 "$W/conf.q" "$W/got.q" | head -20 | sed 's/^/  lost: /'; fail=1; }
	((phantom == 0)) || fail=1
	[ "$order" = 0 ] || fail=1
	((UNEXPECTED == 0)) || fail=1
	((REMOVE_FAILED == 0)) || fail=1
	[ "$DIGEST_OK" = 1 ] || { echo "the nodes' digests differ at the end (or a node did not answer)"; fail=1; }
	if grep -lE 'Sanitizer|runtime error|Assertion|invariant|panic' "$W"/n*.log; then
		echo "a node's log shows a crash or a broken invariant"
		fail=1
	fi
	return $fail
}

# ------------------------------------------------------------ the run

say "seed $CHAOS_SEED, control $CHAOS_CONTROL, $CHAOS_SECONDS s, in $W"
for ((i = 1; i <= N; i++)); do start_node "$i" --bootstrap; done
wait_leader 60 >/dev/null || { say "FAILED: no leader at the start"; exit 1; }
timeout 30 "$BIN/mom-admin" -s "$ALL" -W 20 queue create cq >>"$W/admin.log" 2>&1 &&
	timeout 30 "$BIN/mom-admin" -s "$ALL" -W 20 topic create ct >>"$W/admin.log" 2>&1 ||
	{ say "FAILED: cannot create the queue and the topic"; exit 1; }

for k in 1 2 3; do actor publisher q "$k"; done
for k in 1 2; do actor publisher t "$k"; done
for k in 1 2; do actor consumer "$k"; done

CYCLE=()
end=$(($(now) + CHAOS_SECONDS))
if [ "$CHAOS_CONTROL" = confirm-before-commit ]; then
	sleep 3
	l=$(wait_leader 20) && { FAULTS+=(link-leader); fault_link "$l" '* partition both'; }
fi
if [ "$CHAOS_CONTROL" = no-guard ]; then
	sleep 3
	l=$(wait_leader 20) && { FAULTS+=(figure8); fault_figure8 "$l"; }
fi
while (($(now) < end)); do
	sleep "$(pause_s "$CHAOS_EVERY_MIN" "$CHAOS_EVERY_MAX")"
	check_alive
	(($(now) < end)) || break
	one_fault
	check_alive
done

say "healing: links cleared, every node up"
for ((i = 1; i <= N; i++)); do
	: >"$W/link.$i"
	[ -n "${NODE_PID[$i]}" ] && kill -CONT "${NODE_PID[$i]}" 2>/dev/null
	[ "${NODE_DOWN[$i]}" = 1 ] && start_node "$i"
done
check_alive
wait_leader 60 >/dev/null || say "no leader after healing"
touch "$W/stop"
say "stopping the publishers and consumers"
for a in "${ACTORS[@]}"; do wait "$a" 2>/dev/null; done
ACTORS=()

say "draining the queue from every node"
for ((i = 1; i <= N; i++)); do
	timeout 120 "$BIN/mom-sub" -s "${NODE_URL[$i]}" -q cq -e -W 30 >>"$W/got/drain.$i" 2>>"$W/sub.err"
done
TOPIC_RC=0
timeout 120 "$BIN/mom-sub" -s "$ALL" -t ct --from first -e -W 30 >"$W/topic.log" 2>>"$W/sub.err" ||
	TOPIC_RC=$?
# What each node retains, to tell a short read from a short topic.
TOPIC_HELD=
for ((i = 1; i <= N; i++)); do
	TOPIC_HELD+="$(timeout 30 "$BIN/mom-admin" -s "${NODE_URL[$i]}" -W 20 --json topic info ct 2>&1 |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["retained"])' 2>/dev/null || echo '?') "
done

say "waiting for every node to hold the same state"
DIGEST_OK=0
deadline=$(($(now) + CHAOS_SETTLE))
while (($(now) < deadline)); do
	digests >"$W/digests"
	if ! grep -q none "$W/digests" && [ "$(sort -u "$W/digests" | wc -l)" = 1 ]; then
		DIGEST_OK=1
		break
	fi
	sleep 1
done
check_alive
# Each node's links since its last start: frames lost (gaps), dropped by the
# fault switch, resent; for the summary.
for ((i = 1; i <= N; i++)); do
	timeout 10 "$BIN/mom-admin" -s "${NODE_URL[$i]}" -W 5 --json stats 2>/dev/null |
	    python3 -c 'import json,sys
l = json.load(sys.stdin).get("cluster_links", {})
print(" ".join("'"$i"'<-%s gaps %d faulted %d resent %d" % (p, v["gaps"], v["fault_dropped"], v["resent"]) for p, v in sorted(l.items())))' \
	    2>/dev/null >>"$W/links" || echo "$i: no answer" >>"$W/links"
	# Each node's view of the cluster, with its replication traffic per
	# peer (what says why a node did not catch up), for a kept directory.
	timeout 10 "$BIN/mom-admin" -s "${NODE_URL[$i]}" -W 5 --json cluster status \
	    >"$W/status.$i" 2>&1 || true
	timeout 10 "$BIN/mom-admin" -s "${NODE_URL[$i]}" -W 5 --json stats >"$W/stats.$i" 2>&1 || true
done
if check; then
	say "passed"
	exit 0
fi
say "FAILED"
exit 1

#!/usr/bin/env bash
# make-v1-datadir.sh: write a broker data directory that holds every kind
# of command the broker logs, and a snapshot followed by more log, for the
# data-directory compatibility test (tests/e2e/datadir-compat.bats).
#
# usage: tests/data/make-v1-datadir.sh BINDIR [OUTDIR [EXPECT]]
#
#   BINDIR  holds the mom-broker, mom-pub, mom-sub and mom-admin that write
#           the fixture: the programs of the format version it stands for.
#           v1-datadir was written with the broker from before the broker's
#           restructuring into src/mom-broker/{state,storage,core,net}/:
#               tests/data/make-v1-datadir.sh /tmp/oldbin
#   OUTDIR  the data directory to write (default tests/data/v1-datadir);
#           it must not exist yet.
#   EXPECT  where to write the state it holds (default
#           tests/data/v1-datadir.expect).
#
# Needs bash, python3, jq, curl and timeout(1).
#
# What it does:
#  1. Starts BINDIR/mom-broker with -c tests/data/v1-datadir.conf (long
#     retention, small --retain-bytes, a 2 s de-duplication window,
#     --snapshot-after 16k), a fresh data directory, no authentication, on
#     free loopback ports (the mom port and the HTTP API).
#  2. Phase A, before the snapshot, then phase B, after it: drives the
#     broker, with mom-admin, mom-pub, mom-sub and (for queue.move with
#     "max") the HTTP API, through every command that src/mom-broker/
#     state/fsm.c applies, and checks each step's effect:
#       CMD_ADMIN (apply_admin):
#         queue.create  every option (--ack-wait, --max-deliver,
#                       --dead-letter, --ttl, --max-len, --max-bytes); the
#                       same again (accepted); other options (refused, but
#                       logged); "ensure" (mom-pub --create)
#         queue.delete  a queue that holds messages
#         queue.purge
#         queue.move    all (mom-admin), and at most one ("max", over HTTP)
#         topic.create  --retain and --retain-bytes, 0 (no limit), the
#                       broker's defaults, "ensure" (mom-pub -t --create);
#                       a topic created after the pattern subscriptions that
#                       match it
#         topic.delete  a topic with a retained message and a subscription
#         sub.create    durable (mom-sub -t P -d NAME) with --from first
#                       (backfill from the retained logs) and new; ephemeral
#                       (mom-sub -t without -d)
#         sub.delete    a durable one (mom-admin sub delete), an ephemeral
#                       one (its mom-sub exits)
#       CMD_PUBLISH     to queues and topics; ids (de-duplicated: the same
#                       id again is a duplicate; after the window it is
#                       stored again), headers, --ttl, --delay (a century:
#                       still delayed when read), batches (-l), a batch to
#                       several targets (--jsonl); refused publishes (a full
#                       queue: max-len) are logged too
#       CMD_SETTLE      every enum mq_how: ack (queue and subscription),
#                       dead (a worker's exit 65, and max-deliver used up by
#                       a worker's exit 1), expire (message --ttl and queue
#                       --ttl; and a message that expires unread behind
#                       others, at the reader's drain), drop (a
#                       subscription backlog over --retain-bytes)
#       CMD_TICK        topic retention (--retain 1s) and the expiry of
#                       publisher ids and producers (--dedupe-window 2s)
#     and leaves messages ready in queues and durable subscriptions, one
#     given back with a delivery counted (in flight when the snapshot was
#     taken), dead letters, retained topic messages.  The snapshot is
#     forced with --snapshot-after 16k by a bulk publish at the end of phase
#     A, while a worker holds two messages in flight (the snapshot writes
#     leased messages as ready with their delivery counts); the script then
#     checks that no other snapshot followed, so that every command of
#     phase B is in the log after it.
#  3. Stops the broker with SIGTERM and waits for it (by PID; exit 0).
#  4. Checks with tests/data/log-inventory.py --require, which decodes the
#     files itself, that there is a snapshot and that the log after it
#     holds every command kind, admin op and settlement kind.
#  5. Starts BINDIR/mom-broker again on a COPY of the directory and writes
#     what tests/data/dump-state.sh prints (stats, queue, topic and
#     subscription listings, the messages left in every queue and durable
#     subscription) to EXPECT, after a comment header.
#
# Nothing depends on when the fixture is read: every message left has no
# TTL or a century-long one, every short timer (TTLs of 1 s, topic
# retention of 1 s, back-offs) has run out before the broker is stopped,
# and no ephemeral subscription is left behind.  Owners (authentication)
# are not covered: the broker runs without --auth-key.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMO=${MOM_FIXTURE_TIMEOUT:-20}

die() { echo "make-v1-datadir: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
	sed -n '3,17p' "$0" >&2
	exit 64
fi
BIN=$(cd "$1" && pwd) || die "no directory $1"
OUT=${2:-$HERE/v1-datadir}
EXPECT=${3:-$HERE/v1-datadir.expect}
CONF=$HERE/v1-datadir.conf
for p in mom-broker mom-pub mom-sub mom-admin; do
	[ -x "$BIN/$p" ] || die "$BIN/$p is missing"
done
for p in python3 jq curl timeout; do
	command -v "$p" >/dev/null || die "$p is needed"
done
[ ! -e "$OUT" ] || die "$OUT exists: remove it first"
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

W=$(mktemp -d "${TMPDIR:-/tmp}/make-v1-datadir.XXXXXX")
export XDG_CONFIG_HOME="$W/xdg-none" # no user configuration
unset MOM_TOKEN MOM_TOKEN_FILE
BROKER_PID=
BG_PIDS=()

# stop_pid PID [SIGNAL]: signal a process we started and reap it (bounded).
stop_pid() {
	local pid=$1 sig=${2:-TERM} i
	kill -"$sig" "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 500; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do stop_pid "$p" KILL; done
	[ -z "$BROKER_PID" ] || stop_pid "$BROKER_PID" TERM
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

free_port() {
	python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()'
}

# start_broker DATADIR: the broker of BINDIR on free ports; waits for ping.
start_broker() {
	local i
	PORT=$(free_port)
	HPORT=$(free_port)
	export MOM_URL="tcp://127.0.0.1:$PORT"
	HTTP="http://127.0.0.1:$HPORT"
	"$BIN/mom-broker" -c "$CONF" -D "$1" -l "$MOM_URL" --http "127.0.0.1:$HPORT" \
		>>"$W/broker.log" 2>&1 &
	BROKER_PID=$!
	for ((i = 0; i < 200; i++)); do
		timeout 2 "$BIN/mom-admin" -s "$MOM_URL" -W 1s --quiet ping >/dev/null 2>&1 && return 0
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$W/broker.log" >&2
	die "the broker does not answer on $MOM_URL"
}

# stop_broker: SIGTERM, wait for the PID; the broker must exit 0.
stop_broker() {
	local i st=0
	kill -TERM "$BROKER_PID"
	for ((i = 0; i < 500; i++)); do
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.02
	done
	kill -0 "$BROKER_PID" 2>/dev/null && die "the broker still runs 10 s after SIGTERM"
	wait "$BROKER_PID" || st=$?
	BROKER_PID=
	((st == 0)) || die "the broker exited $st on SIGTERM"
}

adm() { timeout "$TMO" "$BIN/mom-admin" -s "$MOM_URL" "$@"; }
pub() { timeout "$TMO" "$BIN/mom-pub" -s "$MOM_URL" "$@"; }
sub() { timeout "$TMO" "$BIN/mom-sub" -s "$MOM_URL" "$@"; }
# bg PROGRAM ARGS...: a background client, killed by PID on exit.
bg() {
	"$@" &
	BG_PIDS+=($!)
}
# bg_wait: wait for the last bg client; it must exit 0.
bg_wait() {
	local pid=${BG_PIDS[-1]} st=0
	wait "$pid" || st=$?
	unset 'BG_PIDS[-1]'
	((st == 0)) || die "a background client exited $st"
}

step() { echo "make-v1-datadir: $*"; }
# fails CMD...: CMD must fail (a refused command, logged all the same).
fails() { if "$@" 2>/dev/null; then die "should have failed: $*"; fi; }

qf() { adm --json queue info "$1" | jq -r ".$2"; }
tf() { adm --json topic info "$1" | jq -r ".$2"; }
sf() { adm --json sub list | jq -r --arg t "$1" --arg n "$2" '.[] | select(.topic == $t and .name == $n) | .'"$3"; }
counter() { adm --json stats | jq -r ".$1"; }
# is VALUE CMD...: CMD prints VALUE.
is() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
# until_is SECONDS VALUE CMD...: poll until CMD prints VALUE.
until_is() {
	local n=$(($1 * 20)) want=$2 i
	shift 2
	for ((i = 0; i < n; i++)); do
		is "$want" "$@" && return 0
		sleep 0.05
	done
	die "after $n polls, '$*' prints '$("$@" 2>&1)', not '$want'"
}
expect() { until_is 10 "$@"; }
# bytes N CHAR: N times CHAR.
bytes() { head -c "$1" /dev/zero | tr '\0' "$2"; }

step "writing $OUT with $BIN/mom-broker ($("$BIN/mom-broker" --version))"
start_broker "$OUT"

# ----------------------------------------------------------------------
# Phase A: before the snapshot.
# ----------------------------------------------------------------------
step "A: queues"
adm queue create jobs.dead
adm queue create jobs --ack-wait 45s --max-deliver 2 --dead-letter jobs.dead \
	--ttl 36500d --max-len 100 --max-bytes 64k
adm queue create jobs --ack-wait 45s --max-deliver 2 --dead-letter jobs.dead \
	--ttl 36500d --max-len 100 --max-bytes 64k # the same again: accepted
fails adm queue create jobs --max-deliver 5    # other options: refused
expect 2 qf jobs max_deliver
expect jobs.dead qf jobs dead_letter

step "A: publish with ids and headers, ack two"
pub -q jobs --id a1 -H 'X-Step: ack' -m 'acked one'
pub -q jobs --id a2 -H 'X-Step: ack' -m 'acked two'
sub -q jobs -C 2 -N
expect 2 qf jobs acked

step "A: dead letters: a worker's exit 65, then max-deliver used up"
pub -q jobs --id a3 -H 'X-Step: poison' -m 'poison'
sub -q jobs -C 1 -W 10 -- sh -c 'exit 65'
expect 1 qf jobs.dead messages
pub -q jobs --id a4 -H 'X-Step: flaky' -m 'fails twice'
sub -q jobs -C 2 -W 10 -- sh -c 'exit 1'
expect 2 qf jobs.dead messages
expect 2 qf jobs dead_lettered

step "A: messages left ready (a duplicate id, a delayed one)"
pub -q jobs --id a5 -H 'Content-Type: text/plain' -H 'X-Trace: t-5' -m 'ready five'
pub -q jobs --id a5 -m 'duplicate of five: not stored'
pub -q jobs --id a6 -m 'ready six'
pub -q jobs --id a7 --delay 36500d -m 'delayed for a century'
expect 1 counter duplicates
expect 1 qf jobs delayed

step "A: max-len: a batch fills the queue, the next publish is refused"
adm queue create small --max-len 3 --max-bytes 1k
printf 'small one\nsmall two\nsmall three\n' | pub -q small -l
fails pub -q small -m 'one too many'
expect 3 qf small messages

step "A: TTLs (queue --ttl and message --ttl) run out"
# A queue expires the messages at its head as time passes, the others
# when they reach it (or a consumer): a8 expires unread behind a5, when
# the reader of the fixture drains jobs.
adm queue create short --ttl 1s
adm queue create ttl.msg
pub -q short -m 'short-lived'
pub -q ttl.msg --id t1 --ttl 1s -m 'short-lived message'
pub -q jobs --id a8 --ttl 1s -m 'expires unread behind others'
until_is 10 1 qf short expired
until_is 10 1 qf ttl.msg expired

step "A: purge, move, delete"
adm queue create scratch
printf 'scratch one\nscratch two\nscratch three\n' | pub -q scratch -l
adm queue purge scratch
expect 0 qf scratch messages
adm queue create retry
adm queue move jobs.dead retry
expect 2 qf retry messages
expect 0 qf jobs.dead messages
adm queue create doomed
printf 'doomed one\ndoomed two\n' | pub -q doomed -l
adm queue delete doomed
fails adm queue info doomed

step "A: topics"
adm topic create orders.eu --retain 0 --retain-bytes 0
adm topic create orders.us --retain 36500d --retain-bytes 512
adm topic create news --retain 1s
adm topic create tmp.topic
expect 0 tf orders.eu retain_ms

step "A: subscriptions: durable with --from first (backfill) and new"
pub -t orders.eu --id o1 -H 'Region: eu' -m 'order one'
pub -t orders.eu --id o2 -H 'Region: eu' -m 'order two'
sub -t 'orders.>' -d audit --from first -C 1 >/dev/null # backfill o1, o2; ack o1
expect 1 sf 'orders.>' audit messages
sub -t 'orders.*' -d billing --from new -e
sub -t news -d keep -e
sub -t tmp.topic -d orphan -e
pub -t tmp.topic -m 'retained, then its topic deleted'
pub -t orders.us -m "$(bytes 200 u)"
pub -t orders.us -m "$(bytes 200 v)"
pub -t orders.us -m "$(bytes 200 w)" # over 512: the oldest leaves the topic's log
expect 2 tf orders.us retained
expect 3 sf 'orders.*' billing messages
# One batch to a queue and a topic.
printf '%s\n' '{"queue":"jobs","payload":"ready nine","id":"a9","headers":{"X-Batch":"mixed"}}' \
	'{"topic":"orders.eu","payload":"order three","id":"o3","headers":{"Region":"eu"}}' |
	pub --jsonl
expect 3 tf orders.eu retained

step "A: an ephemeral subscription, created and deleted"
bg "$BIN/mom-sub" -s "$MOM_URL" -t news -C 1 -W 15 -N
until_is 10 2 eval "adm --json sub list news | jq length"
pub -t news -m 'for the ephemeral one'
bg_wait
expect 1 eval "adm --json sub list news | jq length"

step "A: a subscription backlog over --retain-bytes drops its oldest"
pub -t news -m "$(bytes 400 n)"
pub -t news -m "$(bytes 400 o)"
pub -t news -m "$(bytes 400 p)"
until_is 10 2 sf news keep messages
[ "$(sf news keep dropped)" -ge 1 ] || die "news/keep dropped nothing"

step "A: topic delete, sub delete"
adm topic delete tmp.topic
expect 1 sf tmp.topic orphan messages
sub -t news -d gone -e
adm sub delete news gone
expect "" sf news gone name

step "A: the snapshot, taken while a worker holds two messages"
adm queue create jobs.slow --ack-wait 1m
pub -q jobs.slow --id slow-ack -m 'in flight at the snapshot, then acked'
pub -q jobs.slow --id slow-back -m 'in flight at the snapshot, then given back'
# shellcheck disable=SC2016 # $MOM_ID is the worker's
bg "$BIN/mom-sub" -s "$MOM_URL" -q jobs.slow -P 2 -C 2 -W 30 -- \
	sh -c 'sleep 6; [ "$MOM_ID" = slow-ack ]'
until_is 10 2 qf jobs.slow in_flight
adm queue create bulk
SNAPS0=$(counter snapshots)
for ((i = 0; i < 40; i++)); do
	[ "$(counter snapshots)" -gt "$SNAPS0" ] && break
	# Eight messages of 700 bytes in one batch (one log entry), consumed.
	for ((j = 0; j < 8; j++)); do bytes 700 b; echo; done | pub -q bulk -l
	sub -q bulk -C 8 -N
done
SNAPS=$(counter snapshots)
[ "$SNAPS" -gt "$SNAPS0" ] || die "no snapshot after 40 bulk rounds"
[ -f "$OUT/snap" ] || die "no snap file in $OUT"
[ "$(qf jobs.slow in_flight)" = 2 ] || die "the worker's messages were not in flight at the snapshot"
step "A: snapshot taken ($SNAPS)"
bg_wait # slow-ack acked, slow-back given back (a counted delivery)
expect 1 qf jobs.slow messages
expect 1 qf jobs.slow acked

# ----------------------------------------------------------------------
# Phase B: after the snapshot, every kind again.
# ----------------------------------------------------------------------
step "B: queues"
adm queue create late.dead
adm queue create late --ack-wait 1m --max-deliver 3 --dead-letter late.dead \
	--ttl 36500d --max-len 10 --max-bytes 4k
fails adm queue create late --ttl 1h
expect 3 qf late max_deliver

step "B: publish, duplicate, ack, dead-letter"
pub -q late --id b1 -H 'X-Phase: after' -m 'acked after the snapshot'
pub -q late --id b1 -m 'duplicate: not stored'
sub -q late -C 1 -N
pub -q late --id b2 -H 'X-Phase: after' -m 'poison after the snapshot'
sub -q late -C 1 -W 10 -- sh -c 'exit 65'
expect 1 qf late.dead messages
pub -q late --id b3 -H 'X-Phase: after' --delay 36500d -m 'delayed after the snapshot'
pub -q late --id b4 -H 'X-Phase: after' -H 'X-Extra: yes' -m 'ready after the snapshot'
fails pub -q small -m 'still too many'
expect 2 counter duplicates

step "B: TTLs run out"
pub -q short -m 'short-lived after the snapshot'
pub -q ttl.msg --id t2 --ttl 1s -m 'short-lived message after the snapshot'
pub -q jobs --id a10 --ttl 1s -m 'expires unread behind others, after the snapshot'
until_is 10 2 qf short expired
until_is 10 2 qf ttl.msg expired

step "B: purge, move (all, and at most one over HTTP), delete, ensure"
printf 'scratch four\nscratch five\n' | pub -q scratch -l
adm queue purge scratch
expect 0 qf scratch messages
adm queue move late.dead retry
expect 3 qf retry messages
timeout "$TMO" curl -fsS -X POST -H 'Content-Type: application/json' \
	-d '{"to":"jobs","max":1}' "$HTTP/v1/queues/retry/move" >/dev/null
expect 2 qf retry messages
adm queue create doomed.too
pub -q doomed.too -m 'deleted with its queue'
adm queue delete doomed.too
pub -q auto.queue --create -m 'queue made by mom-pub --create'
pub -t auto.topic --create -m 'topic made by mom-pub --create'
expect 1 qf auto.queue messages
printf '%s\n' '{"queue":"late","payload":"ready after the snapshot, batched","id":"b5"}' \
	'{"topic":"auto.topic","payload":"retained after the snapshot","headers":{"X-Batch":"mixed"}}' |
	pub --jsonl
expect 2 tf auto.topic retained

step "B: topics: a new one under existing patterns, one created and deleted"
audit=$(sf 'orders.>' audit messages)
adm topic create orders.asia --retain 0 --retain-bytes 0
pub -t orders.asia --id o4 -H 'Region: asia' -m 'order four'
pub -t orders.eu --id o5 -H 'Region: eu' -m 'order five'
expect $((audit + 2)) sf 'orders.>' audit messages
adm topic create tmp.two --retain 10m --retain-bytes 10k
pub -t tmp.two -m 'gone with its topic'
adm topic delete tmp.two

step "B: subscriptions: durable from first, deleted, ephemeral"
sub -t 'orders.>' -d watch --from first -C 2 >/dev/null
sub -t news -d gone.too -e
adm sub delete news gone.too
bg "$BIN/mom-sub" -s "$MOM_URL" -t news -C 1 -W 15 -N
until_is 10 2 eval "adm --json sub list news | jq length"
pub -t news -m 'for the second ephemeral one'
bg_wait
expect 1 eval "adm --json sub list news | jq length"

step "B: drops, then ticks (retention of news, ids past the window)"
dropped=$(sf news keep dropped)
pub -t news -m "$(bytes 400 q)"
pub -t news -m "$(bytes 400 r)"
until_is 10 1 eval "[ \$(sf news keep dropped) -gt $dropped ] && echo 1"
until_is 10 0 tf news retained
sleep 2.5 # the 2 s de-duplication window of b1 runs out (a tick)
pub -q late --id b1 -m 'b1 again, after the de-duplication window: stored'
expect 2 counter duplicates

step "B: settle: no short timer left"
sleep 1.5
expect 2 qf short expired
expect 0 tf news retained
expect 2 eval "adm --json queue list | jq '[.[].delayed] | add'"
[ "$(counter snapshots)" = "$SNAPS" ] || die "another snapshot was taken in phase B"
stop_broker

step "checking what the directory holds (log-inventory.py --require)"
python3 "$HERE/log-inventory.py" --require "$OUT" >"$W/inventory.json"
jq -c '{snapshot_index: .snapshot.index, log: .log, after: .after_snapshot | {commands, admin, settle}}' \
	"$W/inventory.json"

step "writing $EXPECT from $BIN/mom-broker reopened on a copy"
cp -a "$OUT" "$W/copy"
rm -f "$W/copy/LOCK"
start_broker "$W/copy"
{
	echo "# v1-datadir.expect: the state of tests/data/v1-datadir as"
	echo "# $("$BIN/mom-broker" --version) reads it back (tests/data/dump-state.sh),"
	echo "# written by tests/data/make-v1-datadir.sh; lines '# ' are comments."
	PATH="$BIN:$PATH" "$HERE/dump-state.sh"
} >"$W/expect"
stop_broker
if grep -iE 'warn|error|corrupt|unusable' "$W/broker.log"; then
	die "the broker logged the above"
fi
mv "$W/expect" "$EXPECT"
step "done: $(du -sh "$OUT" | cut -f1) in $OUT, $(wc -l <"$EXPECT") lines in $EXPECT"

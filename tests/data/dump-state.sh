#!/usr/bin/env bash
# dump-state.sh: print the state of the broker at MOM_URL in a stable,
# diffable form: the form of tests/data/v1-datadir.expect.
#
# usage: MOM_URL=tcp://127.0.0.1:PORT tests/data/dump-state.sh
#
# Uses the mom-admin and mom-sub found in PATH (make-v1-datadir.sh puts
# the old binaries first, tests/e2e/datadir-compat.bats the new ones).
# Prints, each under a "## ..." title line:
#   stats    `mom-admin --json stats`, only the counters the state holds
#            (no uptime, connections, version, log_* or snapshots: they
#            belong to the process, not to the data directory);
#   queues, topics, subs
#            `mom-admin --json ... list`, one object per line, sorted by
#            name (topic, name for subscriptions), with the fields of the
#            v1 broker picked by name, so that a field the broker adds
#            later is not a difference and one it loses is (null);
#   messages of each queue, then of each durable subscription
#            `mom-sub -e --jsonl`, one envelope per line, in delivery order:
#            payload, id, headers, seq, publish time, delivery count.
#
# Reading the messages CONSUMES them (mom-sub acknowledges what it wrote):
# run it on a copy of a data directory, never on the fixture itself.
# Delayed messages stay (mom-sub -e does not wait for them); the queue
# listing counts them.
set -euo pipefail

TMO=${MOM_DUMP_TIMEOUT:-20}
: "${MOM_URL:?MOM_URL must name the broker}"

adm() { timeout "$TMO" mom-admin -s "$MOM_URL" --json "$@"; }

QF='{name, messages, ready, in_flight, delayed, bytes, ack_wait_ms, max_deliver, ttl_ms,
     dead_letter, max_len, max_bytes, published, delivered, acked, redelivered,
     dead_lettered, expired, owner}'
TF='{name, retained, bytes, retain_ms, retain_bytes, published, subscriptions, owner}'
SF='{topic, name, durable, messages, ready, in_flight, bytes, delivered, acked,
     redelivered, dropped, expired, owner}'
MF='{queue, topic, seq, id, time, delivery, headers, payload, payload_b64}'

echo "## stats"
adm stats | jq -cS '{queues, topics, subscriptions, published, duplicates, messages, bytes,
	in_flight, delivered, acked, redelivered, dead_lettered, dead_letters_dropped, expired}'

queues=$(adm queue list)
subs=$(adm sub list)
echo "## queues"
jq -c "sort_by(.name) | .[] | $QF" <<<"$queues"
echo "## topics"
adm topic list | jq -c "sort_by(.name) | .[] | $TF"
echo "## subs"
jq -c "sort_by(.topic, .name) | .[] | $SF" <<<"$subs"

while IFS= read -r q; do
	echo "## messages of queue $q"
	timeout "$TMO" mom-sub -s "$MOM_URL" -q "$q" -e --jsonl | jq -c "$MF"
done < <(jq -r 'sort_by(.name) | .[].name' <<<"$queues")

while IFS=$'\t' read -r pat name; do
	echo "## messages of subscription $pat $name"
	timeout "$TMO" mom-sub -s "$MOM_URL" -t "$pat" -d "$name" -e --jsonl | jq -c "$MF"
done < <(jq -r 'sort_by(.topic, .name) | .[] | select(.durable) | [.topic, .name] | @tsv' \
	<<<"$subs")

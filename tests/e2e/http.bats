#!/usr/bin/env bats
# The broker's HTTP API with curl: every endpoint, publishing (raw and
# JSON batches) and receiving (long polls, acks, nacks, redelivery),
# topics and durable subscriptions, what is refused and how (404, 400,
# 405, 411, 413 with and without "Expect: 100-continue", 417), tokens,
# /healthz, /metrics, and messages crossing between the HTTP and nng
# planes.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	export A="$BATS_FILE_TMPDIR/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw-carol | mom-auth -d "$A" user add carol --pub 'orders.>' --sub 'orders.>' >/dev/null
	echo pw-bob | mom-auth -d "$A" user add bob --sub 'orders.>' >/dev/null
	mom-auth -d "$A" token --user carol --ttl 1h >"$A/carol.jwt"
	mom-auth -d "$A" token --user bob --ttl 1h >"$A/bob.jwt"
}

# start_http_broker [BROKER OPTIONS...]: a broker with both planes on free
# ports; sets H (the HTTP API's base URL).
start_http_broker() {
	local hp
	hp=$(free_port)
	H="http://127.0.0.1:$hp"
	start_broker --http "127.0.0.1:$hp" "$@" || return 1
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

# hc ARGS...: curl with a time limit; -sS: errors on stderr.
hc() { timeout "$TMO" curl -sS "$@"; }

# code METHOD PATH [CURL ARGS...]: prints the status; the body lands in $T/body,
# the response head in $T/head.
code() {
	local m=$1 p=$2
	shift 2
	timeout "$TMO" curl -sS -X "$m" -D "$T/head" -o "$T/body" -w '%{http_code}' "$@" "$H$p"
}

# body_field JQ: a field of the last body.
body_field() { jq -r "$1" <"$T/body"; }

# metric_is LINE: /metrics has exactly this line now (for wait_for).
metric_is() { hc "$H/metrics" | grep -qxF "$1"; }

# recv QUEUE [QUERY]: the JSON of one receive.
recv() { hc "$H/v1/queues/$1/messages${2:+?$2}"; }

@test "healthz answers without a token, as JSON, and HEAD works" {
	start_http_broker
	run code GET /healthz
	assert_output 200
	assert_equal "$(body_field .status)" ok
	grep -qi '^Content-Type: application/json' "$T/head"
	run hc -I "$H/healthz"
	assert_output --partial 'HTTP/1.1 200'
	assert_output --partial 'Content-Length:'
}

@test "queues: PUT creates (201), again the same (200), differently (409); GET, list, DELETE" {
	start_http_broker
	run code PUT /v1/queues/jobs -d '{"ack_wait":"2s","max_deliver":3,"dead_letter":"jobs.dead","max_len":100}'
	assert_output 201
	assert_equal "$(body_field .ack_wait_ms)" 2000
	run code PUT /v1/queues/jobs -d '{"ack_wait":2000,"max_deliver":3,"dead_letter":"jobs.dead","max_len":100}'
	assert_output 200
	run code PUT /v1/queues/jobs -d '{"ack_wait":"5s"}'
	assert_output 409
	assert_equal "$(body_field .code)" exists
	run code GET /v1/queues/jobs
	assert_output 200
	assert_equal "$(body_field .max_deliver)" 3
	assert_equal "$(body_field .dead_letter)" jobs.dead
	run code GET /v1/queues
	assert_output 200
	assert_equal "$(body_field '.queues[0].name')" jobs
	run code DELETE /v1/queues/jobs
	assert_output 200
	run code GET /v1/queues/jobs
	assert_output 404
	assert_equal "$(body_field .code)" not_found
}

@test "queue options that are unknown or malformed are 400, not silently defaults" {
	start_http_broker
	run code PUT /v1/queues/q -d '{"ack_wiat":"30s"}'
	assert_output 400
	assert_output 400
	grep -q ack_wiat "$T/body"
	run code PUT /v1/queues/q -d '{"ack_wait":"soon"}'
	assert_output 400
	run code PUT /v1/queues/q -d 'not json'
	assert_output 400
	assert_equal "$(body_field .code)" bad_data
	run code GET /v1/queues/q
	assert_output 404
}

@test "a raw publish carries Mom-H-* headers, Mom-Id, and is received with a receipt" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	run code POST /v1/queues/q/messages -H 'Mom-H-Color: red' -H 'Mom-H-Trace-Id: t-1' \
		-H 'Mom-Id: order-7' -H 'Content-Type: text/plain' --data-binary 'hello world'
	assert_output 200
	assert_equal "$(jq -c . <"$T/body")" '{"stored":1,"duplicates":0}'
	# The same id again: confirmed, not stored twice.
	run code POST /v1/queues/q/messages -H 'Mom-Id: order-7' --data-binary 'hello world'
	assert_equal "$(jq -c . <"$T/body")" '{"stored":0,"duplicates":1}'
	run recv q max=10
	assert_success
	assert_equal "$(jq '.messages | length' <<<"$output")" 1
	assert_equal "$(jq -r '.messages[0].payload' <<<"$output")" 'hello world'
	assert_equal "$(jq -r '.messages[0].id' <<<"$output")" order-7
	assert_equal "$(jq -r '.messages[0].headers.Color' <<<"$output")" red
	assert_equal "$(jq -r '.messages[0].headers["Trace-Id"]' <<<"$output")" t-1
	assert_equal "$(jq -r '.messages[0].deliveries' <<<"$output")" 1
	assert_equal "$(jq -r '.messages[0].receipt | type' <<<"$output")" string
	[[ "$(jq -r '.messages[0].time' <<<"$output")" =~ ^20[0-9-]+T[0-9:.]+Z$ ]]
}

@test "a JSON batch publishes many; binary payloads come back as payload_b64, byte for byte" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	head -c 3000 /dev/urandom >"$T/bin"
	b64=$(base64 -w0 "$T/bin")
	run code POST /v1/queues/q/messages -H 'Content-Type: application/json' \
		-d "{\"messages\":[{\"payload\":\"one\"},{\"payload\":\"two\",\"headers\":{\"k\":\"v\"}},{\"payload_b64\":\"$b64\"}]}"
	assert_output 200
	assert_equal "$(body_field .stored)" 3
	run recv q max=10
	assert_equal "$(jq -r '[.messages[] | .payload // "B"] | join(",")' <<<"$output")" 'one,two,B'
	assert_equal "$(jq -r '.messages[1].headers.k' <<<"$output")" v
	jq -r '.messages[2].payload_b64' <<<"$output" | base64 -d >"$T/back"
	cmp "$T/bin" "$T/back"
	# A JSON document that is not {"messages":[...]} is one message.
	run code POST /v1/queues/q/messages -H 'Content-Type: application/json' -d '{"order":1}'
	assert_output 200
	assert_equal "$(jq -r '.messages[0].payload' <<<"$(recv q)")" '{"order":1}'
}

@test "ack settles, nack redelivers (counted), an unacked message comes back after the ack wait" {
	start_http_broker
	code PUT /v1/queues/q -d '{"ack_wait":"1s"}' >/dev/null
	for m in a b c; do hc -X POST --data-binary "$m" "$H/v1/queues/q/messages" >/dev/null; done
	out=$(recv q max=3)
	r1=$(jq -r '.messages[0].receipt' <<<"$out")
	r2=$(jq -r '.messages[1].receipt' <<<"$out")
	run code POST /v1/queues/q/ack -d "{\"receipts\":[\"$r1\"]}"
	assert_output 200
	assert_equal "$(body_field .acked)" 1
	run code POST /v1/queues/q/nack -d "{\"receipts\":[\"$r2\"]}"
	assert_output 200
	assert_equal "$(body_field .nacked)" 1
	out=$(recv q)
	assert_equal "$(jq -r '.messages[0].payload' <<<"$out")" b
	assert_equal "$(jq -r '.messages[0].deliveries' <<<"$out")" 2
	assert_equal "$(qfield q acked)" 1
	# c was never settled: after the ack wait it is ready again.
	out=$(recv q 'wait=5')
	assert_equal "$(jq -r '.messages[0].payload' <<<"$out")" c
	assert_equal "$(jq -r '.messages[0].deliveries' <<<"$out")" 2
	run code POST /v1/queues/q/ack -d '{"receipts":["abc"]}'
	assert_output 400
}

@test "nack with a delay holds the message back for that long" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	hc -X POST --data-binary x "$H/v1/queues/q/messages" >/dev/null
	r=$(recv q | jq -r '.messages[0].receipt')
	run code POST /v1/queues/q/nack -d "{\"receipts\":[\"$r\"],\"delay\":\"1500ms\"}"
	assert_output 200
	assert_equal "$(recv q | jq '.messages | length')" 0
	out=$(recv q wait=5)
	assert_equal "$(jq -r '.messages[0].payload' <<<"$out")" x
}

@test "a long poll returns as soon as a message arrives, and empty after its wait" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	t0=$(ms_now)
	run recv q wait=1
	assert_equal "$(jq -c . <<<"$output")" '{"messages":[]}'
	el=$(($(ms_now) - t0))
	((el >= 900 && el < 5000)) || fail "an empty 1 s poll took $el ms"
	(sleep 1 && curl -sS -X POST --data-binary late "$H/v1/queues/q/messages" >/dev/null) 3>&- &
	late=$!
	t0=$(ms_now)
	run recv q wait=15
	el=$(($(ms_now) - t0))
	wait "$late"
	assert_equal "$(jq -r '.messages[0].payload' <<<"$output")" late
	((el < 10000)) || fail "the poll returned after $el ms, not when the message came"
}

@test "a long poll does not hold up other requests" {
	start_http_broker
	code PUT /v1/queues/idle >/dev/null
	code PUT /v1/queues/q >/dev/null
	for i in 1 2 3 4 5 6 7 8; do
		bg curl -sS -o /dev/null "$H/v1/queues/idle/messages?wait=20"
	done
	sleep 0.3
	t0=$(ms_now)
	for i in $(seq 20); do hc -X POST --data-binary "m$i" "$H/v1/queues/q/messages" >/dev/null; done
	el=$(($(ms_now) - t0))
	assert_equal "$(qfield q messages)" 20
	((el < 5000)) || fail "20 publishes took $el ms next to 8 long polls"
}

@test "a client that leaves a long poll gives back the message it would have got" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	bg curl -sS -o /dev/null "$H/v1/queues/q/messages?wait=20"
	poller=${BG_PIDS[-1]}
	wait_for 5 metric_is 'mom_queue_consumers_waiting{queue="q"} 1'
	stop_pid "$poller" KILL
	sleep 0.3
	hc -X POST --data-binary orphan "$H/v1/queues/q/messages" >/dev/null
	# Given back at once and uncounted, not after the 30 s ack wait.
	out=$(recv q wait=5)
	assert_equal "$(jq -r '.messages[0].payload' <<<"$out")" orphan
	assert_equal "$(jq -r '.messages[0].deliveries' <<<"$out")" 1
}

@test "topics and durable subscriptions: PUT, publish, receive, ack, list, DELETE" {
	start_http_broker
	run code PUT /v1/topics/orders.eu -d '{"retain":"1h","retain_bytes":"1MiB"}'
	assert_output 201
	assert_equal "$(body_field .retain_ms)" 3600000
	run code PUT /v1/topics/orders.eu -d '{"retain":"1h","retain_bytes":1048576}'
	assert_output 200
	hc -X POST --data-binary early "$H/v1/topics/orders.eu/messages" >/dev/null
	run code PUT '/v1/topics/orders.%3E/subscriptions/audit' -d '{"from":"first"}'
	assert_output 201
	assert_equal "$(body_field .topic)" 'orders.>'
	assert_equal "$(body_field .durable)" true
	run code PUT '/v1/topics/orders.%3E/subscriptions/audit'
	assert_output 200
	run code GET '/v1/topics/orders.%3E/subscriptions/audit'
	assert_output 200
	hc -X POST -H 'Mom-H-Region: eu' --data-binary late "$H/v1/topics/orders.eu/messages" >/dev/null
	out=$(hc "$H/v1/topics/orders.%3E/subscriptions/audit/messages?max=10&wait=2")
	assert_equal "$(jq -r '[.messages[].payload] | join(",")' <<<"$out")" early,late
	assert_equal "$(jq -r '.messages[1].topic' <<<"$out")" orders.eu
	assert_equal "$(jq -r '.messages[1].headers.Region' <<<"$out")" eu
	receipts=$(jq -c '[.messages[].receipt]' <<<"$out")
	run code POST '/v1/topics/orders.%3E/subscriptions/audit/ack' -d "{\"receipts\":$receipts}"
	assert_output 200
	assert_equal "$(body_field .acked)" 2
	run code GET /v1/topics/orders.eu/subscriptions
	assert_equal "$(body_field '.subscriptions[0].acked')" 2
	run code GET /v1/subscriptions
	assert_equal "$(body_field '.subscriptions | length')" 1
	run code GET /v1/topics
	assert_equal "$(body_field '.topics[0].name')" orders.eu
	run code DELETE '/v1/topics/orders.%3E/subscriptions/audit'
	assert_output 200
	run code GET '/v1/topics/orders.%3E/subscriptions/audit'
	assert_output 404
	run code DELETE /v1/topics/orders.eu
	assert_output 200
}

@test "a subscription is made by its first receive, as mom-sub -d does" {
	start_http_broker
	code PUT /v1/topics/t.a >/dev/null
	hc -X POST --data-binary old "$H/v1/topics/t.a/messages" >/dev/null
	out=$(hc "$H/v1/topics/t.%2A/subscriptions/s1/messages?from=first")
	assert_equal "$(jq -r '.messages[0].payload' <<<"$out")" old
	run code GET '/v1/topics/t.%2A/subscriptions/s1'
	assert_output 200
	# A plain topic name that is no topic is most likely a typo.
	run code GET /v1/topics/nope/subscriptions/s/messages
	assert_output 404
}

@test "a message published over HTTP is consumed by mom-sub, and one from mom-pub over HTTP" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	hc -X POST -H 'Mom-H-Via: http' --data-binary 'from http' "$H/v1/queues/q/messages" >/dev/null
	run sub -q q -C 1 -F '%p|%h{Via}\n'
	assert_success
	assert_output 'from http|http'
	printf 'a\0b\nc' >"$T/payload"
	pub -q q -H 'Via: nng' -f "$T/payload"
	out=$(recv q)
	assert_equal "$(jq -r '.messages[0].headers.Via' <<<"$out")" nng
	jq -j '.messages[0].payload' <<<"$out" >"$T/back"
	cmp "$T/payload" "$T/back"
}

@test "purge and move" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	code PUT /v1/queues/q.dead >/dev/null
	for m in 1 2 3; do hc -X POST --data-binary "$m" "$H/v1/queues/q.dead/messages" >/dev/null; done
	run code POST /v1/queues/q.dead/move -d '{"to":"q","max":2}'
	assert_output 200
	assert_equal "$(body_field .moved)" 2
	run code POST /v1/queues/q/purge
	assert_output 200
	assert_equal "$(body_field .messages)" 2
	assert_equal "$(qfield q messages)" 0
	run code POST /v1/queues/q/move -d '{"to":"missing"}'
	assert_output 404
	run code POST /v1/queues/q/move -d '{}'
	assert_output 400
}

@test "unknown routes are 404, wrong methods 405 with Allow, bad names 400: JSON every time" {
	start_http_broker
	run code GET /v2/anything
	assert_output 404
	assert_equal "$(body_field .code)" not_found
	grep -qi '^Content-Type: application/json' "$T/head"
	run code DELETE /v1/queues
	assert_output 405
	grep -qi '^Allow: GET, HEAD' "$T/head"
	assert_equal "$(body_field .code)" method_not_allowed
	run code PATCH /v1/queues/q
	assert_output 405
	grep -qi '^Allow: GET, HEAD, PUT, DELETE' "$T/head"
	assert_equal "$(body_field .error)" 'method PATCH not allowed here (allowed: GET, HEAD, PUT, DELETE)'
	run code PUT '/v1/queues/bad%20name'
	assert_output 400
	assert_equal "$(body_field .error)" 'bad queue name'
	run code PUT '/v1/queues/a%2Fb'
	assert_output 400
	run code POST /v1/queues/missing/messages --data-binary x
	assert_output 404
	assert_equal "$(body_field .code)" not_found
	run code GET '/v1/queues/q/messages?max=zero'
	assert_output 400
}

@test "a body over the limit is 413 before it is read, with and without Expect: 100-continue" {
	start_http_broker --max-msg-size 64k
	code PUT /v1/queues/q >/dev/null
	head -c 200000 /dev/zero >"$T/big"
	t0=$(ms_now)
	run code POST /v1/queues/q/messages -H 'Expect:' --data-binary @"$T/big"
	assert_output 413
	assert_equal "$(body_field .code)" too_large
	run code POST /v1/queues/q/messages -H 'Expect: 100-continue' --data-binary @"$T/big"
	assert_output 413
	el=$(($(ms_now) - t0))
	# curl waits 1 s for an unanswered 100-continue: the answer came first.
	((el < 900)) || fail "two 413s took $el ms"
	# Over the limit inside a JSON batch: 413 too.
	msg=$(head -c 70000 /dev/zero | tr '\0' a)
	run code POST /v1/queues/q/messages -H 'Content-Type: application/json' \
		--data-binary "{\"messages\":[{\"payload\":\"$msg\"}]}"
	assert_output 413
	# Exactly at the limit is fine.
	head -c 65536 /dev/zero >"$T/max"
	run code POST /v1/queues/q/messages --data-binary @"$T/max"
	assert_output 200
	assert_equal "$(qfield q messages)" 1
}

@test "Expect: 100-continue on an accepted body is answered at once" {
	start_http_broker --max-msg-size 4MiB
	code PUT /v1/queues/q >/dev/null
	head -c 2000000 /dev/urandom >"$T/big"
	t0=$(ms_now)
	# curl asks for 100-continue by itself above 1 MiB.
	run code POST /v1/queues/q/messages -H 'Content-Type: application/octet-stream' --data-binary @"$T/big"
	assert_output 200
	run code POST /v1/queues/q/messages -H 'Expect: 100-continue' --data-binary small
	assert_output 200
	el=$(($(ms_now) - t0))
	((el < 900)) || fail "took $el ms: curl waited for 100 Continue"
	assert_equal "$(qfield q messages)" 2
	recv q | jq -r '.messages[0].payload_b64' | base64 -d | cmp - "$T/big"
}

@test "a chunked body is refused with 411, another Expect with 417" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	run code POST /v1/queues/q/messages -H 'Transfer-Encoding: chunked' --data-binary hello
	assert_output 411
	assert_equal "$(body_field .code)" length_required
	grep -qi '^Connection: close' "$T/head"
	run code POST /v1/queues/q/messages -H 'Expect: something-else' --data-binary hello
	assert_output 417
	assert_equal "$(qfield q messages)" 0
	run code GET /healthz
	assert_output 200
}

@test "keep-alive, pipelined requests, and garbage on the connection" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	port=${H##*:}
	run timeout 10 python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
req = (b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
       b"POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
       b"GET /v1/queues/q HTTP/1.1\r\nHost: x\r\n\r\n")
s.sendall(req)
data = b""
while data.count(b"HTTP/1.1 200") < 3:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(data.count(b"HTTP/1.1 200 OK"))
s.sendall(b"\x00\x01garbage\r\n\r\n")
rest = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    rest += chunk
print(rest.split(b"\r\n")[0].decode())
PY
	assert_success
	assert_line --index 0 3
	assert_line --index 1 'HTTP/1.1 400 Bad Request'
	assert_equal "$(qfield q messages)" 2
	run hc -v "$H/healthz" "$H/healthz"
	assert_output --partial 'Re-using existing connection'
}

@test "metrics: messages in and out, depths, consumers, in flight, redeliveries, dead letters" {
	start_http_broker
	code PUT /v1/queues/q -d '{"max_deliver":2,"dead_letter":"dlq"}' >/dev/null
	code PUT /v1/queues/dlq >/dev/null
	hc -X POST --data-binary a "$H/v1/queues/q/messages" >/dev/null
	hc -X POST --data-binary b "$H/v1/queues/q/messages" >/dev/null
	# a: delivered, nacked (redelivered), delivered again, nacked: dead-lettered.
	for i in 1 2; do
		r=$(recv q | jq -r '.messages[0].receipt')
		hc -X POST -d "{\"receipts\":[\"$r\"]}" "$H/v1/queues/q/nack" >/dev/null
	done
	recv q >/dev/null # b, in flight
	code PUT /v1/queues/idle >/dev/null
	bg curl -sS -o /dev/null "$H/v1/queues/idle/messages?wait=20"
	wait_for 5 metric_is 'mom_queue_consumers_waiting{queue="idle"} 1'
	run code GET /metrics
	assert_output 200
	grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/head"
	for want in 'mom_published_total 2' 'mom_delivered_total 3' 'mom_in_flight 1' \
		'mom_dead_lettered_total 1' 'mom_redelivered_total 1' 'mom_waiting_consumers 1' \
		'mom_queue_messages{queue="q"} 1' 'mom_queue_messages{queue="dlq"} 1' \
		'mom_queue_in_flight{queue="q"} 1' 'mom_queue_consumers_waiting{queue="idle"} 1' \
		'mom_queue_dead_lettered_total{queue="q"} 1' 'mom_queue_published_total{queue="q"} 2' \
		'mom_queue_redelivered_total{queue="q"} 1' 'mom_queue_delivered_total{queue="q"} 3'; do
		grep -qxF "$want" "$T/body" || fail "no '$want' in: $(cat "$T/body")"
	done
	grep -q '^mom_http_requests_total [0-9]' "$T/body"
	grep -q '^mom_http_connections_open [0-9]' "$T/body"
	grep -q '^# TYPE mom_published_total counter' "$T/body"
	grep -q '^# TYPE mom_queue_messages gauge' "$T/body"
}

@test "cluster: this node as a cluster of one" {
	start_http_broker
	run code GET /v1/cluster
	assert_output 200
	assert_equal "$(body_field .leader)" 1
	assert_equal "$(body_field '.nodes | length')" 1
	assert_equal "$(body_field '.nodes[0].url')" null
}

@test "with --auth-key: 401 without or with a bad token, 403 beyond its patterns, healthz open" {
	start_http_broker --auth-key "$A/mom-auth.pub"
	run code GET /v1/queues
	assert_output 401
	grep -qi '^WWW-Authenticate: Bearer' "$T/head"
	assert_equal "$(body_field .code)" unauthorized
	run code GET /v1/queues -H 'Authorization: Bearer not.a.token'
	assert_output 401
	grep -qi '^WWW-Authenticate: Bearer error="invalid_token"' "$T/head"
	run code GET /metrics
	assert_output 401
	run code GET /healthz
	assert_output 200
	carol=(-H "Authorization: Bearer $(cat "$A/carol.jwt")")
	bob=(-H "Authorization: Bearer $(cat "$A/bob.jwt")")
	run code PUT /v1/queues/orders.new "${carol[@]}"
	assert_output 201
	assert_equal "$(body_field .owner)" carol
	run code POST /v1/queues/orders.new/messages "${carol[@]}" --data-binary hi
	assert_output 200
	run code POST /v1/queues/orders.new/messages "${bob[@]}" --data-binary hi
	assert_output 403
	assert_equal "$(body_field .code)" forbidden
	run code GET /v1/queues/orders.new/messages "${bob[@]}"
	assert_output 200
	assert_equal "$(body_field '.messages[0].payload')" hi
	run code PUT /v1/queues/other "${carol[@]}"
	assert_output 403
	run code DELETE /v1/queues/orders.new "${bob[@]}"
	assert_output 403
	run code PUT '/v1/topics/orders.%3E/subscriptions/s' "${bob[@]}"
	assert_output 201
	run code PUT '/v1/topics/%3E/subscriptions/s' "${bob[@]}"
	assert_output 403
	run code GET /metrics "${bob[@]}"
	assert_output 200
	# A dead-letter queue the token may not publish to: no queue is made.
	run code PUT /v1/queues/orders.trojan "${carol[@]}" --data '{"dead_letter":"payroll","max_deliver":1}'
	assert_output 403
	assert_equal "$(body_field .code)" forbidden
	run code GET /v1/queues/orders.trojan "${carol[@]}"
	assert_output 404
	run code PUT /v1/queues/orders.work "${carol[@]}" --data '{"dead_letter":"orders.dead"}'
	assert_output 201
	# A refused body is never read: 401 comes before "100 Continue".
	head -c 2000000 /dev/zero >"$T/big"
	t0=$(ms_now)
	run code POST /v1/queues/orders.new/messages --data-binary @"$T/big"
	assert_output 401
	(($(ms_now) - t0 < 900)) || fail "curl waited for 100 Continue"
}

@test "--http: off, a bad address, and no non-loopback address without authentication" {
	run --separate-stderr mom-broker -D "$T/d1" -l "tcp://127.0.0.1:$(free_port)" --http 'ftp://x:1'
	assert_usage_error mom-broker
	run --separate-stderr mom-broker -D "$T/d2" -l "tcp://127.0.0.1:$(free_port)" --http "0.0.0.0:$(free_port)"
	assert_equal "$status" 64
	[[ "$stderr" =~ refusing\ to\ serve\ HTTP ]] || fail "$stderr"
	run --separate-stderr mom-broker -D "$T/d3" -l "tcp://127.0.0.1:$(free_port)" --http "https://127.0.0.1:$(free_port)"
	assert_equal "$status" 64
	[[ "$stderr" =~ tls-cert ]] || fail "$stderr"
	hp=$(free_port)
	start_broker --http off
	run curl -sS -o /dev/null "http://127.0.0.1:$hp/healthz"
	assert_failure
	# An explicit address that is taken is an error, not a warning.
	H="http://127.0.0.1:$hp"
	bg python3 -c 'import socket,sys,time;s=socket.socket();s.bind(("127.0.0.1",int(sys.argv[1])));s.listen();time.sleep(30)' "$hp"
	sleep 0.3
	run --separate-stderr timeout 10 mom-broker -D "$T/d4" -l "tcp://127.0.0.1:$(free_port)" --http "127.0.0.1:$hp"
	assert_equal "$status" 69
	# Logged as what it is: the reason the broker stops.
	[[ "$stderr" =~ mom-broker\ fatal:\ cannot\ serve\ HTTP\ on\ 127.0.0.1:$hp: ]] || fail "$stderr"
	[[ ! "$stderr" =~ warning ]] || fail "$stderr"
}

@test "--http in a config file" {
	hp=$(free_port)
	printf 'http 127.0.0.1:%s\n' "$hp" >"$T/broker.conf"
	start_broker -c "$T/broker.conf"
	run hc "http://127.0.0.1:$hp/healthz"
	assert_success
	assert_output --partial '"status":"ok"'
}

@test "SIGTERM during a long poll: the poll is answered and the broker exits 0" {
	start_http_broker
	code PUT /v1/queues/q >/dev/null
	hc "$H/v1/queues/q/messages?wait=20" >"$T/poll" 2>&1 3>&- &
	cpid=$!
	wait_for 5 metric_is 'mom_queue_consumers_waiting{queue="q"} 1'
	t0=$(ms_now)
	kill -TERM "$BROKER_PID"
	rc=0
	wait "$BROKER_PID" || rc=$?
	BROKER_PID=
	assert_equal "$rc" 0
	wait "$cpid" || true
	(($(ms_now) - t0 < 5000)) || fail "shutdown took too long"
	assert_equal "$(jq -c . <"$T/poll")" '{"messages":[]}'
}

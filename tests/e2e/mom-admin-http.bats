#!/usr/bin/env bats
# mom-admin over the broker's HTTP API (-s http://...): the same verbs,
# the same output and the same exit statuses as over tcp://, failover
# across the server list.  A fake HTTP server (fake-http-broker.py) plays
# the answers a real broker does not give on demand (expired token, 503,
# 413, a server that never answers).

bats_require_minimum_version 1.5.0
load helpers

# start_http_broker [BROKER OPTIONS...]: a broker with both planes; sets
# HURL (its HTTP API) and keeps MOM_URL (its nng plane) from start_broker.
start_http_broker() {
	HPORT=$(free_port)
	HURL="http://127.0.0.1:$HPORT"
	start_broker --http "127.0.0.1:$HPORT" "$@" || return 1
	wait_ping "$HURL"
}

# start_fake STATUS [BODY] [--sleep S] [--busy N]: a fake broker that
# gives every request that answer; sets FURL and FLOG (its request log,
# one JSON line per request).
start_fake() {
	local pf="$T/fake.$RANDOM" i
	FLOG="$pf.log"
	: >"$FLOG"
	bg python3 "$BATS_TEST_DIRNAME/fake-http-broker.py" "$pf" "$FLOG" "$@"
	for ((i = 0; i < 200; i++)); do
		[ -s "$pf" ] && break
		sleep 0.05
	done
	[ -s "$pf" ] || fail "the fake HTTP broker did not start"
	FURL="http://127.0.0.1:$(cat "$pf")"
}

# hadmin ARGS...: mom-admin against the broker's HTTP API.
hadmin() { timeout "$TMO" mom-admin -s "$HURL" "$@"; }

# --- against a real broker ---------------------------------------------

@test "mom-admin over http:// creates, lists, shows and deletes a queue" {
	start_http_broker
	run --separate-stderr hadmin queue create jobs --ack-wait 2s --max-deliver 3 --max-len 10 \
	    --max-bytes 1k --ttl 1m
	assert_success
	assert_output ""
	run --separate-stderr hadmin queue list
	assert_success
	assert_line --index 0 --regexp '^NAME +MESSAGES +READY +IN-FLIGHT'
	assert_line --index 1 --regexp '^jobs +0 +0 +0'
	run --separate-stderr hadmin --json queue info jobs
	assert_success
	echo "$output" | jq -e '.name == "jobs" and .ack_wait_ms == 2000 and .max_deliver == 3 and
	    .max_len == 10 and .max_bytes == 1024 and .ttl_ms == 60000 and .messages == 0' >/dev/null
	run --separate-stderr hadmin queue info jobs
	assert_success
	assert_output --regexp 'ack_wait +2s'
	# the nng plane sees what the HTTP API did
	assert_equal "$(qfield jobs max_deliver)" 3
	run --separate-stderr hadmin queue delete jobs
	assert_success
	assert_output ""
	run --separate-stderr admin queue info jobs
	assert_one_line_error mom-admin 66
}

@test "mom-admin over http:// on a missing queue, topic or subscription exits 66" {
	start_http_broker
	local v
	for v in "queue info nosuch" "queue delete nosuch" "queue purge nosuch" "topic info nosuch" \
	    "topic delete nosuch" "sub delete nosuch nosub"; do
		# shellcheck disable=SC2086
		run --separate-stderr hadmin $v
		assert_one_line_error mom-admin 66
		assert_output ""
	done
	qcreate src
	run --separate-stderr hadmin queue move src nosuch
	assert_one_line_error mom-admin 66
}

@test "mom-admin over http:// creating a queue again: same options 0, other options 1" {
	start_http_broker
	run hadmin queue create jobs --ack-wait 5s
	assert_success
	run hadmin queue create jobs --ack-wait 5s
	assert_success
	run --separate-stderr hadmin queue create jobs --ack-wait 9s
	assert_one_line_error mom-admin 1
	assert_equal "$(qfield jobs ack_wait_ms)" 5000
}

@test "mom-admin over http:// purges and moves messages" {
	start_http_broker
	qcreate jobs
	qcreate other
	seq 1 30 | pub -q jobs -l
	run --separate-stderr hadmin --json queue move jobs other
	assert_success
	echo "$output" | jq -e '.moved == 30' >/dev/null
	assert_equal "$(qfield jobs messages)" 0
	assert_equal "$(qfield other messages)" 30
	run --separate-stderr hadmin queue purge other
	assert_success
	assert_output ""
	assert_equal "$(qfield other messages)" 0
}

@test "mom-admin over http:// manages topics and subscriptions" {
	start_http_broker
	run hadmin topic create events --retain 1h --retain-bytes 1M
	assert_success
	run hadmin topic list
	assert_success
	assert_line --index 0 --regexp '^NAME +RETAINED +BYTES +SUBS'
	assert_line --index 1 --regexp '^events +0 +0 +0'
	pub -t events -m one
	sub -t events -d alpha -e
	sub -t 'events.>' -d beta -e
	run --separate-stderr hadmin --json topic info events
	assert_success
	echo "$output" | jq -e '.retained == 1 and .retain_ms == 3600000 and .retain_bytes == 1048576' \
	    >/dev/null
	run --separate-stderr hadmin sub list
	assert_success
	assert_line --regexp '^events +alpha +yes'
	assert_line --regexp '^events\.> +beta +yes'
	# a pattern travels percent-encoded in the path
	run --separate-stderr hadmin sub delete 'events.>' beta
	assert_success
	run --separate-stderr hadmin --json sub list
	assert_success
	echo "$output" | jq -e 'map(.name) == ["alpha"]' >/dev/null
	run --separate-stderr hadmin topic delete events
	assert_success
	run --separate-stderr admin topic info events
	assert_one_line_error mom-admin 66
}

@test "mom-admin --json prints the same over http:// as over tcp:// for the same broker state" {
	start_http_broker
	qcreate jobs --ack-wait 3s --dead-letter jobs.dead
	qcreate jobs.dead
	tcreate events --retain 10m
	seq 1 5 | pub -q jobs -l
	pub -t events -m x
	sub -t events -d s1 -e >/dev/null
	sub -t 'events.>' -d s2 -e >/dev/null
	local v tcp http
	for v in "queue list" "queue info jobs" "queue info jobs.dead" "topic list" \
	    "topic info events" "sub list" "sub list events" "queue create jobs --ack-wait 3s --dead-letter jobs.dead" \
	    "topic create events --retain 10m"; do
		# shellcheck disable=SC2086
		tcp=$(admin --json $v) || fail "tcp: $v failed"
		# shellcheck disable=SC2086
		http=$(hadmin --json $v) || fail "http: $v failed"
		[ -n "$tcp" ] || fail "no output for $v"
		assert_equal "$http" "$tcp"
	done
	# and the tables
	for v in "queue list" "topic list" "sub list" "queue info jobs" "topic info events"; do
		# shellcheck disable=SC2086
		assert_equal "$(hadmin $v)" "$(admin $v)"
	done
}

@test "mom-admin ping over http:// asks /healthz" {
	start_http_broker
	run --separate-stderr hadmin ping
	assert_success
	assert_output --regexp '^ok: mom-broker'
	assert_equal "$stderr" ""
	run --separate-stderr hadmin --json ping
	assert_success
	echo "$output" | jq -e '.ok == true' >/dev/null
	run --separate-stderr hadmin --quiet ping
	assert_success
	assert_output ""
}

@test "mom-admin stats over http:// reads /metrics" {
	start_http_broker
	qcreate jobs
	seq 1 3 | pub -q jobs -l
	run --separate-stderr hadmin stats --prom
	assert_success
	assert_line --regexp '^# TYPE mom_[a-z_]+ (gauge|counter)$'
	assert_line --regexp '^mom_published(_total)? 3$'
	run bash -c "mom-admin -s '$HURL' stats --prom | grep -v '^#' |
	    grep -vcE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+]+$'"
	assert_output 0
	run --separate-stderr hadmin --json stats
	assert_success
	echo "$output" | jq -e '.published == 3 and .queues == 1 and .messages == 3' >/dev/null
	run --separate-stderr hadmin stats
	assert_success
	assert_line --regexp '^published +3$'
}

@test "mom-admin cluster status over http:// shows this node" {
	start_http_broker
	run --separate-stderr hadmin --json cluster status
	assert_success
	echo "$output" | jq -e 'type == "object"' >/dev/null
	echo "$output" | jq -e '.nodes | length >= 1' >/dev/null
	run --separate-stderr hadmin cluster status
	assert_success
	# a table: a header line, then one row per node
	assert_line --index 0 --regexp '^ID +URL +ROLE +TERM +COMMIT +APPLIED +LAG$'
	assert_line --index 1 --regexp '^1 +- +leader +[0-9]+ +[0-9]+ +[0-9]+ +0$'
}

@test "mom-admin cluster digest over http:// (GET /v1/cluster/digest) is the nng answer" {
	start_http_broker
	qcreate jobs
	run --separate-stderr hadmin --json cluster digest
	assert_success
	echo "$output" | jq -e '.node == 1 and .queues == 1 and (.digest | test("^[0-9a-f]{16}$"))' >/dev/null
	local viahttp=$output
	run --separate-stderr timeout "$TMO" mom-admin --json cluster digest
	assert_success
	assert_equal "$output" "$viahttp"
}

@test "mom-admin fails over from a dead http:// URL to a live one" {
	start_http_broker
	local dead
	dead=$(free_port)
	qcreate jobs
	run --separate-stderr timeout "$TMO" mom-admin -s "http://127.0.0.1:$dead,$HURL" queue list
	assert_success
	assert_line --index 1 --regexp '^jobs '
	run --separate-stderr timeout "$TMO" mom-admin -s "http://127.0.0.1:$dead,$HURL" ping
	assert_success
}

@test "mom-admin over http:// with no broker listening exits 69 quickly" {
	local p1 p2 t0 t1
	p1=$(free_port)
	p2=$(free_port)
	t0=$(ms_now)
	run --separate-stderr timeout 10 mom-admin -s "http://127.0.0.1:$p1,http://127.0.0.1:$p2" queue list
	t1=$(ms_now)
	assert_one_line_error mom-admin 69
	assert_output ""
	[[ "$stderr" == *"no broker reachable"* ]] || fail "$stderr"
	((t1 - t0 < 5000))
	run --separate-stderr timeout 10 mom-admin -s "http://127.0.0.1:$p1" ping
	assert_one_line_error mom-admin 69
}

@test "mom-admin with an http:// URL checks names before asking anyone (64)" {
	start_fake 200 '{}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue create 'bad name'
	assert_one_line_error mom-admin 64
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" topic info 'a..b'
	assert_one_line_error mom-admin 64
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" sub delete 'a.>' 'bad/sub'
	assert_one_line_error mom-admin 64
	assert_equal "$(wc -l <"$FLOG")" 0
}

@test "mom-admin refuses a server list that mixes http:// with nng URLs (64)" {
	run --separate-stderr timeout "$TMO" mom-admin -s "http://127.0.0.1:1,tcp://127.0.0.1:2" ping
	assert_one_line_error mom-admin 64
	run --separate-stderr timeout "$TMO" mom-admin -s "http://127.0.0.1:1/?x=1" ping
	assert_one_line_error mom-admin 64
}

@test "mom-admin over http:// takes the server list from MOM_URL" {
	start_http_broker
	qcreate jobs
	MOM_URL="$HURL" run --separate-stderr timeout "$TMO" mom-admin --json queue info jobs
	assert_success
	echo "$output" | jq -e '.name == "jobs"' >/dev/null
}

@test "mom-admin over http:// refuses a request without a token when the broker checks them (77)" {
	openssl ecparam -name prime256v1 -genkey -noout -out "$T/k.pem" 2>/dev/null
	openssl ec -in "$T/k.pem" -pubout -out "$T/k.pub" 2>/dev/null
	start_http_broker --auth-key "$T/k.pub"
	run --separate-stderr hadmin queue list
	assert_one_line_error mom-admin 77
	assert_output ""
	# /healthz needs no credentials
	run --separate-stderr hadmin ping
	assert_success
}

@test "mom-admin over http:// sends the token: the creator may delete, another user gets 77 and why" {
	mom-auth -d "$T/auth" keygen >/dev/null
	echo pw-root | mom-auth -d "$T/auth" user add root --admin >/dev/null
	echo pw-carol | mom-auth -d "$T/auth" user add carol --pub 'orders.>' >/dev/null
	mom-auth -d "$T/auth" token --user root --ttl 1h >"$T/root.jwt"
	mom-auth -d "$T/auth" token --user carol --ttl 1h >"$T/carol.jwt"
	start_http_broker --auth-key "$T/auth/mom-auth.pub"
	run --separate-stderr hadmin --token-file "$T/root.jwt" queue create jobs
	assert_success
	run --separate-stderr hadmin --token-file "$T/carol.jwt" queue create orders.x
	assert_success
	run --separate-stderr hadmin --token-file "$T/carol.jwt" queue delete jobs
	assert_one_line_error mom-admin 77
	assert_equal "$stderr" "mom-admin: permission denied: only the creator of queue 'jobs' or an admin may delete it"
	MOM_TOKEN_FILE="$T/carol.jwt" run --separate-stderr hadmin --json queue list
	assert_success
	echo "$output" | jq -e 'map(.name) | sort == ["jobs", "orders.x"]' >/dev/null
	MOM_TOKEN="$(cat "$T/root.jwt")" run --separate-stderr hadmin queue delete orders.x
	assert_success
	MOM_TOKEN=not.a.token run --separate-stderr hadmin queue list
	assert_one_line_error mom-admin 77
}

@test "mom-admin over https:// checks the broker's certificate (--cafile, --insecure)" {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	    -keyout "$T/tls.key" -out "$T/tls.crt" 2>/dev/null
	HPORT=$(free_port)
	HURL="https://127.0.0.1:$HPORT"
	start_broker --http "$HURL" --tls-cert "$T/tls.crt" --tls-key "$T/tls.key"
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" --cafile "$T/tls.crt" ping
	assert_success
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" --cafile "$T/tls.crt" queue create q1
	assert_success
	assert_equal "$(qfield q1 name)" q1
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" --insecure queue list
	assert_success
	assert_line --index 1 --regexp '^q1 '
	# an unknown issuer is a refusal, as over tls+tcp:// (77), and says what was trusted
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" queue list
	assert_one_line_error mom-admin 77
	[[ "$stderr" == *"TLS handshake failed"*certificate*"trusting /"* ]] || fail "$stderr"
	# -v says when nothing is checked
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" --insecure -v ping
	assert_success
	[[ "$stderr" == *"not verified"* ]] || fail "$stderr"
	# TLS files that cannot be used are usage errors, found before anything is sent
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" --cafile "$T/nope.crt" ping
	assert_one_line_error mom-admin 64
	[[ "$stderr" == *"nope.crt"* ]] || fail "$stderr"
	run --separate-stderr timeout "$TMO" mom-admin -s "$HURL" --cafile "$T/tls.crt" --key "$T/tls.key" ping
	assert_one_line_error mom-admin 64
	[[ "$stderr" == *"--key needs --cert"* ]] || fail "$stderr"
}

@test "mom-admin with https:// at a plain HTTP listener exits 69, not 77" {
	start_http_broker
	run --separate-stderr timeout "$TMO" mom-admin -s "https://127.0.0.1:$HPORT" --insecure ping
	assert_one_line_error mom-admin 69
}

# --- against the fake broker: answers a real one gives only sometimes ----

@test "mom-admin over http:// sends the token as a Bearer and prints the broker's refusal (77)" {
	start_fake 401 '{"error":"token expired","code":"unauthorized"}'
	MOM_TOKEN=aaa.bbb.ccc run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue list
	assert_one_line_error mom-admin 77
	assert_equal "$stderr" "mom-admin: token expired"
	jq -e '.authorization == "Bearer aaa.bbb.ccc" and .method == "GET" and .path == "/v1/queues"' \
	    "$FLOG" >/dev/null
	echo bbb.ccc.ddd >"$T/tok"
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" --token-file "$T/tok" topic list
	assert_one_line_error mom-admin 77
	tail -n 1 "$FLOG" | jq -e '.authorization == "Bearer bbb.ccc.ddd"' >/dev/null
	# no token, no Authorization field
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" topic list
	tail -n 1 "$FLOG" | jq -e '.authorization == null' >/dev/null
}

@test "mom-admin over http:// exits 77 on 403" {
	start_fake 403 '{"error":"permission denied: only the creator of queue '"'"'q'"'"' or an admin may delete it","code":"forbidden"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue delete q
	assert_one_line_error mom-admin 77
	assert_equal "$stderr" "mom-admin: permission denied: only the creator of queue 'q' or an admin may delete it"
	jq -e '.method == "DELETE" and .path == "/v1/queues/q"' "$FLOG" >/dev/null
}

@test "mom-admin over http:// maps 400, 409, 413 and 404 to 64, 1 or 75, 65 and 66" {
	start_fake 400 '{"error":"bad queue name","code":"invalid"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue info q
	assert_one_line_error mom-admin 64
	assert_equal "$stderr" "mom-admin: bad queue name"
	start_fake 400 '{"error":"malformed JSON","code":"bad_data"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue info q
	assert_one_line_error mom-admin 65
	start_fake 409 '{"error":"queue '"'"'q'"'"' exists with other options","code":"exists"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue create q
	assert_one_line_error mom-admin 1
	start_fake 409 '{"error":"queue full","code":"full"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue move a b
	assert_one_line_error mom-admin 75
	start_fake 413 '{"error":"body over the limit","code":"too_large"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue create q
	assert_one_line_error mom-admin 65
	start_fake 404 '<html><body>Not Found</body></html>'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" topic info t
	assert_one_line_error mom-admin 66
	[[ "$stderr" == *404* ]] || fail "$stderr"
}

@test "mom-admin over http:// sends create options as JSON and move as {\"to\":...}" {
	start_fake 200 '{"name":"q"}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue create q --ack-wait 2s \
	    --max-deliver 3 --dead-letter q.dead --ttl 1m --max-len 10 --max-bytes 1k
	assert_success
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" topic create t --retain 1h --retain-bytes 1M
	assert_success
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" queue move q.dead q
	assert_success
	run jq -c '[.method, .path, (.body | fromjson? // .body)]' "$FLOG"
	assert_line --index 0 '["PUT","/v1/queues/q",{"ack_wait":2000,"max_deliver":3,"dead_letter":"q.dead","ttl":60000,"max_len":10,"max_bytes":1024}]'
	assert_line --index 1 '["PUT","/v1/topics/t",{"retain":3600000,"retain_bytes":1048576}]'
	assert_line --index 2 '["POST","/v1/queues/q.dead/move",{"to":"q"}]'
}

@test "mom-admin over http:// passes a 503 to the next server, and exits 69 when all say 503" {
	local bad
	start_fake 503 '{"error":"shutting down","code":"closed"}'
	bad=$FURL
	start_fake 200 '{"queues":[{"name":"fromfake","messages":7}]}'
	run --separate-stderr timeout "$TMO" mom-admin -s "$bad,$FURL" --json queue list
	assert_success
	assert_output '[{"name":"fromfake","messages":7}]'
	run --separate-stderr timeout "$TMO" mom-admin -s "$bad" queue list
	assert_one_line_error mom-admin 69
	[[ "$stderr" == *"shutting down"* ]] || fail "$stderr"
}

@test "mom-admin over http:// backs off and retries a busy broker (429)" {
	start_fake 200 '{"name":"q","messages":0}' --busy 2
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" --json queue info q
	assert_success
	assert_output '{"name":"q","messages":0}'
	assert_equal "$(wc -l <"$FLOG")" 3
}

@test "mom-admin over http:// gives up after -W (75) when the broker does not answer" {
	local t0 t1
	start_fake 200 '[]' --sleep 8
	t0=$(ms_now)
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" -W 1 queue list
	t1=$(ms_now)
	assert_one_line_error mom-admin 75
	((t1 - t0 < 4000)) || fail "took $((t1 - t0)) ms"
	# ping: not healthy in time is unavailable, as over tcp://
	run --separate-stderr timeout "$TMO" mom-admin -s "$FURL" -W 1 ping
	assert_one_line_error mom-admin 69
}

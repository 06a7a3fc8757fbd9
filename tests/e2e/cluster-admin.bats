#!/usr/bin/env bats
# Cluster administration against a single broker (a cluster of one, node
# 1): mom-admin cluster status as a table and as JSON, GET /v1/cluster,
# and the changes (add, remove, transfer), which a broker that is not in a
# cluster refuses with one line; over nng and HTTP, with and without
# tokens.

bats_require_minimum_version 1.5.0
load helpers

NOT_CLUSTER='this broker is not in a cluster: start it with --node-id, --peer and --cluster-key (mom-broker(8))'

# Keys and users once (argon2 is slow on purpose).
setup_file() {
	export A="$BATS_FILE_TMPDIR/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw-alice | mom-auth -d "$A" user add alice --pub 'orders.>' --sub 'orders.>' >/dev/null
	echo pw-root | mom-auth -d "$A" user add root --admin >/dev/null
	for u in alice root; do
		mom-auth -d "$A" token --user "$u" --ttl 1h >"$A/$u.jwt"
	done
}

# start_http_broker [OPTIONS]: both planes; H is the HTTP API's base URL.
start_http_broker() {
	local hp
	hp=$(free_port)
	H="http://127.0.0.1:$hp"
	start_broker --http "127.0.0.1:$hp" "$@" || return 1
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

# code METHOD PATH [CURL ARGS...]: the status; the body lands in $T/body.
code() {
	local m=$1 p=$2
	shift 2
	timeout "$TMO" curl -sS -X "$m" -o "$T/body" -w '%{http_code}' "$@" "$H$p"
}

# as USER COMMAND...: a client with USER's token.
as() {
	local u=$1
	shift
	MOM_TOKEN_FILE="$A/$u.jwt" timeout "$TMO" "$@"
}

@test "cluster status: a header line and one row for this node; --json is SPEC's shape" {
	start_broker
	qcreate jobs
	run -0 --separate-stderr admin cluster status
	assert_equal "${#lines[@]}" 2
	assert_line --index 0 --regexp '^ID +URL +ROLE +TERM +COMMIT +APPLIED +LAG$'
	assert_line --index 1 --regexp '^1 +- +leader +[1-9][0-9]* +[1-9][0-9]* +[1-9][0-9]* +0$'
	assert_equal "$stderr" ""
	run -0 --separate-stderr admin --json cluster status
	# Every member SPEC names, with its type; the node's numbers are the cluster's.
	jq -e '(.leader == 1) and (.self == 1) and (.elections == 0)
	    and (.term | type == "number") and (.commit | type == "number")
	    and (.applied | type == "number") and (.nodes | length == 1)
	    and (.nodes[0] | .id == 1 and .url == null and .role == "leader" and .lag == 0)
	    and (.nodes[0].term == .term) and (.nodes[0].commit == .commit)
	    and (.nodes[0].applied == .applied) and (.applied >= 1)' <<<"$output" >/dev/null ||
		fail "not SPEC's shape: $output"
}

@test "cluster status: commit and applied follow the log; the term is the log's" {
	start_broker
	run -0 admin --json cluster status
	local before=$output
	qcreate q1
	pub -q q1 -m one
	run -0 admin --json cluster status
	(($(jq .applied <<<"$output") > $(jq .applied <<<"$before"))) ||
		fail "applied did not move: $before -> $output"
	assert_equal "$(jq .commit <<<"$output")" "$(jq .applied <<<"$output")"
	assert_equal "$(jq .term <<<"$output")" "$(jq .term <<<"$before")"
}

@test "GET /v1/cluster is the same JSON as cluster status --json, over nng and over http://" {
	start_http_broker
	run -0 code GET /v1/cluster
	assert_output 200
	local rest nng http
	rest=$(jq -S -c . "$T/body")
	nng=$(admin --json cluster status | jq -S -c .)
	http=$(admin -s "$H" --json cluster status | jq -S -c .)
	assert_equal "$rest" "$nng"
	assert_equal "$http" "$nng"
	run -0 --separate-stderr admin -s "$H" cluster status
	assert_line --index 1 --regexp '^1 +- +leader '
}

@test "cluster add, remove, transfer on a single broker: 64 with one line, nothing changes" {
	start_broker
	run -0 admin --json cluster status
	local before
	before=$(jq -c 'del(.term, .commit, .applied, .nodes[0].term, .nodes[0].commit, .nodes[0].applied)' <<<"$output")
	for cmd in "add 2 tcp://127.0.0.1:7422" "remove 2" "transfer" "transfer 2"; do
		# shellcheck disable=SC2086
		run -64 --separate-stderr admin cluster $cmd
		assert_output ""
		assert_equal "$stderr" "mom-admin: $NOT_CLUSTER"
	done
	run -0 admin --json cluster status
	assert_equal "$(jq -c 'del(.term, .commit, .applied, .nodes[0].term, .nodes[0].commit, .nodes[0].applied)' <<<"$output")" "$before"
}

@test "cluster changes over http:// and REST: 400 with the same line, code invalid" {
	start_http_broker
	run -64 --separate-stderr admin -s "$H" cluster add 2 tcp://127.0.0.1:7422
	assert_equal "$stderr" "mom-admin: $NOT_CLUSTER"
	run -64 --separate-stderr admin -s "$H" cluster remove 2
	assert_equal "$stderr" "mom-admin: $NOT_CLUSTER"
	run -64 --separate-stderr admin -s "$H" cluster transfer
	assert_equal "$stderr" "mom-admin: $NOT_CLUSTER"
	run -0 code POST /v1/cluster/nodes -d '{"id":2,"url":"tcp://127.0.0.1:7422"}'
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "$NOT_CLUSTER"
	assert_equal "$(jq -r .code "$T/body")" invalid
	run -0 code DELETE /v1/cluster/nodes/2
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "$NOT_CLUSTER"
	run -0 code POST /v1/cluster/transfer -d '{}'
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "$NOT_CLUSTER"
	run -0 code POST /v1/cluster/transfer
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "$NOT_CLUSTER"
}

@test "REST refuses malformed cluster changes before the core: 400, 404, 405" {
	start_http_broker
	run -0 code DELETE /v1/cluster/nodes/0
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "bad node id (a positive integer)"
	run -0 code POST /v1/cluster/nodes -d '{"id":2}'
	assert_output 400
	run -0 code POST /v1/cluster/nodes -d '{"id":2,"url":"tcp://h:1","role":"voter"}'
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "unknown member 'role'"
	run -0 code POST /v1/cluster/transfer -d '{"id":"two"}'
	assert_output 400
	run -0 code GET /v1/cluster/nodes/2
	assert_output 405
	run -0 code POST /v1/cluster/bogus -d '{}'
	assert_output 404
	# The core checks the URL too (a client other than mom-admin).
	run -0 code POST /v1/cluster/nodes -d '{"id":2,"url":"h:1"}'
	assert_output 400
	assert_equal "$(jq -r .error "$T/body")" "cluster.add: the node's cluster URL must have a scheme (tcp://HOST:PORT)"
}

@test "usage errors are 64 before anything is sent (no broker needed)" {
	export MOM_URL="tcp://127.0.0.1:$(free_port)"
	run -64 --separate-stderr admin cluster add 0 tcp://127.0.0.1:7422
	assert_equal "$stderr" "mom-admin: bad node id '0' (a positive integer)"
	run -64 --separate-stderr admin cluster add 2 127.0.0.1:7422
	assert_equal "$stderr" "mom-admin: bad cluster URL '127.0.0.1:7422' (SCHEME://ADDRESS, e.g. tcp://10.0.0.2:7422)"
	run -64 --separate-stderr admin cluster add 2
	assert_equal "$stderr" "mom-admin: cluster add ID URL (mom-admin -h for usage)"
	run -64 --separate-stderr admin cluster remove x
	assert_equal "$stderr" "mom-admin: bad node id 'x' (a positive integer)"
	run -64 --separate-stderr admin cluster transfer 1 2
	assert_equal "$stderr" "mom-admin: cluster transfer [ID] (mom-admin -h for usage)"
	run -64 --separate-stderr admin cluster join 2
	assert_equal "$stderr" "mom-admin: cluster verbs: status digest add remove transfer (mom-admin -h for usage)"
}

@test "with --auth-key: cluster changes need an admin token (77, 403); status is open to any token" {
	start_http_broker --auth-key "$A/mom-auth.pub"
	run -77 --separate-stderr as alice mom-admin cluster add 2 tcp://127.0.0.1:7422
	assert_equal "$stderr" "mom-admin: permission denied: cluster.add needs an admin token"
	run -77 --separate-stderr as alice mom-admin cluster remove 2
	assert_equal "$stderr" "mom-admin: permission denied: cluster.remove needs an admin token"
	run -77 --separate-stderr as alice mom-admin -s "$H" cluster transfer
	assert_equal "$stderr" "mom-admin: permission denied: cluster.transfer needs an admin token"
	run -0 code POST /v1/cluster/nodes -H "Authorization: Bearer $(cat "$A/alice.jwt")" \
		-d '{"id":2,"url":"tcp://127.0.0.1:7422"}'
	assert_output 403
	assert_equal "$(jq -r .code "$T/body")" forbidden
	run -0 code DELETE /v1/cluster/nodes/2
	assert_output 401
	# An admin gets as far as the replica, which says why not.
	run -64 --separate-stderr as root mom-admin cluster transfer
	assert_equal "$stderr" "mom-admin: $NOT_CLUSTER"
	run -0 --separate-stderr as alice mom-admin --json cluster status
	jq -e '.leader == 1' <<<"$output" >/dev/null
	run -0 code GET /v1/cluster -H "Authorization: Bearer $(cat "$A/alice.jwt")"
	assert_output 200
}

@test "stats and /metrics carry the replica's role, term, commit and applied index" {
	start_http_broker
	qcreate jobs
	run -0 admin --json cluster status
	local st=$output
	run -0 --separate-stderr admin --json stats
	jq -e --argjson c "$st" '(.raft_term == $c.term) and (.raft_commit_index >= $c.commit)
	    and (.raft_applied_index >= $c.applied) and (.raft_elections == 0)
	    and (.raft_role == "leader")' <<<"$output" >/dev/null || fail "stats: $output"
	run -0 code GET /metrics
	assert_output 200
	grep -qx 'mom_raft_role{role="leader"} 1' "$T/body"
	grep -qx 'mom_raft_role{role="follower"} 0' "$T/body"
	grep -qx 'mom_raft_elections_total 0' "$T/body"
	grep -qx '# TYPE mom_raft_term gauge' "$T/body"
	grep -qx '# TYPE mom_raft_elections_total counter' "$T/body"
	grep -qE '^mom_raft_term [1-9][0-9]*$' "$T/body"
	grep -qE '^mom_raft_commit_index [1-9][0-9]*$' "$T/body"
	grep -qE '^mom_raft_applied_index [1-9][0-9]*$' "$T/body"
	# mom-admin stats over http:// reads the same numbers back from /metrics.
	run -0 --separate-stderr admin -s "$H" --json stats
	jq -e '(.raft_term | type == "number") and (.raft_applied_index >= 1)' <<<"$output" >/dev/null ||
		fail "stats over http: $output"
}

# start_held_broker: the fault build's broker (MOM_FAULT_CLUSTER_HOLD: a
# change's answer waits until the next change comes, as a real cluster's
# waits for a majority), with both planes; skips without 'make fault'.
start_held_broker() {
	local fb="$E2E_ROOT/build-fault/bin/mom-broker" hp
	[ -x "$fb" ] || skip "no fault-injection build: 'make fault'"
	grep -qaF MOM_FAULT_CLUSTER_HOLD "$fb" || skip "build-fault is older than MOM_FAULT_CLUSTER_HOLD: 'make fault'"
	hp=$(free_port)
	H="http://127.0.0.1:$hp"
	PORT=$(free_port)
	export MOM_URL="tcp://127.0.0.1:$PORT"
	MOM_FAULT_CLUSTER_HOLD=1 "$fb" -D "$T/data" -l "$MOM_URL" --http "127.0.0.1:$hp" \
		>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_ping "$MOM_URL"
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

# http_open N: /metrics counts N open HTTP connections (its own included).
http_open() { curl -sS "$H/metrics" | grep -qx "mom_http_connections_open $1"; }

@test "a cluster change waits for the cluster's answer; its client gets it when it comes" {
	start_held_broker
	bg mom-admin -W 20 cluster transfer 2>"$T/err"
	local pid=${BG_PIDS[-1]} st=0
	# Still waiting a second later, while the broker answers others.
	sleep 1
	run -0 admin --json cluster status
	kill -0 "$pid" || fail "mom-admin did not wait: $(cat "$T/err")"
	# The next change lets the first answer go (and waits in its turn).
	run -75 --separate-stderr admin -W 1 cluster remove 3
	wait "$pid" || st=$?
	assert_equal "$st" 64
	assert_equal "$(cat "$T/err")" "mom-admin: $NOT_CLUSTER"
}

@test "a client that goes away while its cluster change waits is answered at once, to nobody" {
	start_held_broker
	# curl gives up after 2 s: the HTTP plane tells the core, which answers
	# the request then, so that the connection goes (not when the change does).
	run -28 timeout "$TMO" curl -sS --max-time 2 -X POST "$H/v1/cluster/transfer"
	wait_for 5 http_open 1 || fail "the connection stayed: $(curl -sS "$H/metrics" | grep connections_open)"
	# The same over nng: mom-admin gives up (75) and closes its connection.
	run -75 --separate-stderr admin -W 1 cluster remove 2
	# The held answers come now, for nobody: nothing breaks, the broker serves on.
	run -75 --separate-stderr admin -W 1 cluster transfer
	run -0 admin --json cluster status
	run -0 admin ping
	qcreate after
	run -0 code GET /v1/cluster
	assert_output 200
	kill -0 "$BROKER_PID"
}

@test "a broker stopped while a cluster change waits answers it 'shutting down' and exits 0" {
	start_held_broker
	bg curl -sS --max-time 20 -o "$T/body" -w '%{http_code}' -X POST "$H/v1/cluster/transfer"
	local curl_pid=${BG_PIDS[-1]} st=0 i
	sleep 1
	kill -0 "$curl_pid" || fail "curl did not wait"
	kill -TERM "$BROKER_PID"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$BROKER_PID" 2>/dev/null && fail "the broker still runs 10 s after SIGTERM: $(cat "$T/broker.log")"
	wait "$BROKER_PID" || st=$?
	BROKER_PID=
	assert_equal "$st" 0
	wait "$curl_pid" || fail "curl got no answer"
	assert_equal "$(jq -r .code "$T/body")" closed
	assert_equal "$(jq -r .error "$T/body")" "broker shutting down; the cluster change may still happen: see cluster status"
}

#!/usr/bin/env bats
# Clients that misbehave on the HTTP plane (issue 11, items 3 and 11):
# slow heads and bodies (slowloris) against the whole-request deadlines
# (--http-header-timeout, --http-body-rate) and the connection cap
# (--http-max-conns, the longest idle or slowest connection makes room);
# the open-file limit raised at start; clients that shut down their
# sending side (shutdown(SHUT_WR)) after a request still get every answer.
# The misbehaving clients are tests/tools/slowhttp.py.

bats_require_minimum_version 1.5.0
load helpers

SLOW="$E2E_ROOT/tests/tools/slowhttp.py"

# start_http_broker [BROKER OPTIONS...]: a broker with both planes on free
# ports; sets HP (the HTTP port) and H (the base URL).
start_http_broker() {
	HP=$(free_port)
	H="http://127.0.0.1:$HP"
	start_broker --http "127.0.0.1:$HP" "$@" || return 1
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

# halfclose REQUEST: the raw answer to REQUEST sent on a connection whose
# sending side is then shut down (the tool exits 1 when the broker never
# closes it).
halfclose() { timeout 20 python3 "$SLOW" halfclose "$HP" "$1" 10; }

@test "half-close: a GET that goes to the core is answered" {
	start_http_broker
	qcreate q
	run halfclose 'GET /v1/queues/q HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_success
	assert_output --partial 'HTTP/1.1 200 OK'
	assert_output --partial '"name":"q"'
}

@test "half-close: a PUT create is run and answered 201" {
	start_http_broker
	run halfclose 'PUT /v1/queues/made HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\n\r\n{"ack_wait":"10s"}\n'
	assert_success
	assert_output --partial 'HTTP/1.1 201 Created'
	assert_equal "$(qfield made ack_wait_ms)" 10000
}

@test "half-close: a POST publish is stored and answered" {
	start_http_broker
	qcreate q
	run halfclose 'POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
	assert_success
	assert_output --partial 'HTTP/1.1 200 OK'
	assert_output --partial '"stored":1'
	assert_equal "$(qfield q messages)" 1
}

@test "half-close: pipelined requests are all answered, in order" {
	start_http_broker
	qcreate q
	run halfclose 'POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\naGET /v1/queues/q HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_success
	assert_equal "$(grep -o 'HTTP/1.1 200 OK' <<<"$output" | wc -l)" 3
	assert_output --regexp '"stored":1.*"messages":1.*"status":"ok"'
}

@test "half-close: a long poll gets a message that is there, and ends at once, empty, when none is" {
	start_http_broker
	qcreate q --ack-wait 60s
	run -0 pub -q q -m hello
	run halfclose 'GET /v1/queues/q/messages?wait=10 HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_success
	assert_output --partial '"payload":"hello"'
	# Nothing there: the broker cannot tell this client from one that is
	# gone, so the poll ends now, empty, and hands nothing out.
	local t0=$(ms_now)
	run halfclose 'GET /v1/queues/q/messages?wait=10 HTTP/1.1\r\nHost: x\r\n\r\n'
	assert_success
	assert_output --partial 'HTTP/1.1 200 OK'
	assert_output --partial '{"messages":[]}'
	(($(ms_now) - t0 < 5000)) || fail "the half-closed poll took $(($(ms_now) - t0)) ms"
	run -0 pub -q q -m second
	run -0 sub -q q -C 1 -W 5
	assert_output second
	assert_equal "$(qfield q redelivered)" 0
}

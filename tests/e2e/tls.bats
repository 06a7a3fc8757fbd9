#!/usr/bin/env bats
# TLS: tls+tcp:// listeners and clients (certificate checks, client
# certificates, exit statuses), the certificate files' errors, and the
# Nagle stall of HTTPS responses (libmom/tls.c).

bats_require_minimum_version 1.5.0
load helpers

# A throw-away PKI, made once for the file: a CA, a server certificate
# for localhost and 127.0.0.1 signed by it, a client certificate, and an
# unrelated CA with its own client certificate for the negative tests.
setup_file() {
	local d="$BATS_FILE_TMPDIR/pki"
	mkdir -p "$d" && cd "$d" || return 1
	export PKI="$d"
	# ec NAME: a P-256 key (what nng's mbed TLS 2.28 takes, with RSA).
	ec() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }
	# ca NAME SUBJECT
	ca() {
		ec "$1" && openssl req -x509 -new -key "$1.key" -sha256 -days 2 -subj "/CN=$2" \
			-out "$1.crt" 2>/dev/null
	}
	# leaf NAME CA SAN [KEYTYPE]: a certificate for NAME's key, signed by CA.
	leaf() {
		if [ "${4:-ec}" = rsa ]; then
			openssl genrsa -out "$1.key" 2048 2>/dev/null
		else
			ec "$1"
		fi
		printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
			"$3" >"$1.ext"
		openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null &&
			openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
				-days 2 -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
	}
	ca ca "mom test CA" &&
		ca ca2 "unrelated CA" &&
		leaf server ca "IP:127.0.0.1,DNS:localhost" &&
		leaf server-ipname ca "IP:127.0.0.1,DNS:localhost,DNS:127.0.0.1" &&
		leaf server-rsa ca "DNS:localhost" rsa &&
		leaf client ca "DNS:client" &&
		leaf client2 ca2 "DNS:client2" || return 1
	cat server.crt server.key >server-both.pem
	openssl genpkey -algorithm ed25519 -out ed.key 2>/dev/null
	openssl pkey -in server.key -aes256 -passout pass:secret -out server-enc.key 2>/dev/null
	[ -s server.crt ] && [ -s client2.crt ] && [ -s ed.key ] && [ -s server-enc.key ]
}

HTTPD="$E2E_ROOT/build/tools/tls_httpd"

# start_tls_broker [BROKER OPTIONS...]: a broker whose only listener is
# tls+tcp://localhost:PORT with the server certificate; MOM_URL names it.
# Clients reach it by name: nng's TLS (mbed TLS 2.28) matches a
# certificate's DNS names, not its IP addresses.  TLSPING holds the
# options `mom-admin ping` needs to get in (set it before, for mTLS).
start_tls_broker() {
	PORT=$(free_port)
	export PORT MOM_URL="tls+tcp://localhost:$PORT"
	mom-broker -D "$T/data" -l "$MOM_URL" --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" \
		"$@" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	if ((${#TLSPING[@]} > 0)); then
		wait_tls_ping "${TLSPING[@]}"
	else
		wait_tls_ping --cafile "$PKI/ca.crt"
	fi
}

# wait_tls_ping CLIENT OPTIONS...: like wait_ping, over TLS.
wait_tls_ping() {
	local deadline=$(($(ms_now) + ${MOM_E2E_START:-10} * 1000)) i
	for ((i = 0; i < 400; i++)); do
		if timeout 2 mom-admin -W 1s --quiet "$@" ping >/dev/null 2>"$T/ping.err"; then
			return 0
		fi
		kill -0 "$BROKER_PID" 2>/dev/null || break
		(($(ms_now) < deadline)) || break
		sleep 0.05
	done
	echo "# no TLS broker answers on $MOM_URL (last: $(cat "$T/ping.err")); broker log:" >&3
	sed 's/^/# /' "$T/broker.log" >&3
	return 1
}

@test "mom-pub and mom-sub round trip over tls+tcp:// with --cafile" {
	start_tls_broker
	run --separate-stderr timeout "$TMO" mom-pub --cafile "$PKI/ca.crt" -q jobs --create -m 'over TLS'
	assert_success
	run --separate-stderr timeout "$TMO" mom-sub --cafile "$PKI/ca.crt" -q jobs -C 1 -W 5
	assert_success
	assert_output 'over TLS'
	printf 'a\nb\nc\n' | timeout "$TMO" mom-pub --cafile "$PKI/ca.crt" -q jobs -l
	run --separate-stderr timeout "$TMO" mom-sub --cafile "$PKI/ca.crt" -q jobs -C 3 -W 5
	assert_success
	assert_output $'a\nb\nc'
}

@test "a config file gives the broker its TLS options (tls-cert, tls-key)" {
	PORT=$(free_port)
	export MOM_URL="tls+tcp://localhost:$PORT"
	printf 'listen %s\ntls-cert %s\ntls-key = %s\n' "$MOM_URL" "$PKI/server.crt" "$PKI/server.key" \
		>"$T/broker.conf"
	mom-broker -c "$T/broker.conf" -D "$T/data" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_tls_ping --cafile "$PKI/ca.crt"
}

@test "a client without --cafile does not trust a private CA: one line, exit 77" {
	start_tls_broker
	# The system bundle does not know our CA.
	run --separate-stderr timeout "$TMO" mom-pub -q jobs --create -m x
	assert_one_line_error mom-pub 77
	assert_equal "$output" ""
	[[ "$stderr" == *"TLS handshake failed"*"ca-certificates.crt"* ]] || fail "$stderr"
	run --separate-stderr timeout "$TMO" mom-admin queue list
	assert_one_line_error mom-admin 77
}

@test "a client with the wrong CA is refused (exit 77), and nothing is published" {
	start_tls_broker
	run --separate-stderr timeout "$TMO" mom-pub --cafile "$PKI/ca2.crt" -q jobs --create -m x
	assert_one_line_error mom-pub 77
	[[ "$stderr" == *"does not verify against $PKI/ca2.crt"* ]] || fail "$stderr"
	run --separate-stderr timeout "$TMO" mom-sub --cafile "$PKI/ca2.crt" -q jobs -C 1 -W 2
	assert_one_line_error mom-sub 77
	run --separate-stderr timeout "$TMO" mom-admin --cafile "$PKI/ca.crt" --json queue list
	assert_success
	refute_output --partial jobs
}

@test "--insecure skips the certificate check, and -v says so" {
	start_tls_broker
	run --separate-stderr timeout "$TMO" mom-pub --insecure -v -q jobs --create -m unchecked
	assert_success
	[[ "$stderr" == *"not verified"* ]] || fail "no warning with -v: $stderr"
	run --separate-stderr timeout "$TMO" mom-sub --insecure -q jobs -C 1 -W 5
	assert_success
	assert_output unchecked
	assert_equal "$stderr" ""
}

@test "an IP address in the URL needs it as a DNS name in the certificate (mbed TLS 2.28), and the error says so" {
	start_tls_broker
	run --separate-stderr timeout "$TMO" mom-admin -s "tls+tcp://127.0.0.1:$PORT" --cafile "$PKI/ca.crt" ping
	assert_one_line_error mom-admin 77
	[[ "$stderr" == *"DNS:127.0.0.1"*"host name"* ]] || fail "$stderr"
	stop_pid "$BROKER_PID"
	PORT=$(free_port)
	mom-broker -D "$T/data2" -l "tls+tcp://127.0.0.1:$PORT" --tls-cert "$PKI/server-ipname.crt" \
		--tls-key "$PKI/server-ipname.key" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	export MOM_URL="tls+tcp://127.0.0.1:$PORT"
	wait_tls_ping --cafile "$PKI/ca.crt"
}

@test "a broker stopped right after TLS clients left exits 0 (nng frees TLS streams late)" {
	local i rc
	for ((i = 0; i < 15; i++)); do
		start_tls_broker --http off
		timeout "$TMO" mom-admin --cafile "$PKI/ca.crt" --quiet ping
		timeout "$TMO" mom-admin -s "tls+tcp://127.0.0.1:$PORT" --cafile "$PKI/ca.crt" ping \
			2>/dev/null && fail "an IP address passed the certificate check"
		kill -TERM "$BROKER_PID"
		rc=0
		wait "$BROKER_PID" || rc=$?
		BROKER_PID=
		((rc == 0)) || fail "round $i: the broker exited $rc: $(tail -12 "$T/broker.log")"
		rm -rf "$T/data"
	done
}

@test "an RSA-2048 server certificate works too" {
	PORT=$(free_port)
	export MOM_URL="tls+tcp://localhost:$PORT"
	mom-broker -D "$T/data" -l "$MOM_URL" --tls-cert "$PKI/server-rsa.crt" --tls-key "$PKI/server-rsa.key" \
		>"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_tls_ping --cafile "$PKI/ca.crt"
}

@test "a plain tcp:// client at a TLS listener fails and hints at tls+tcp://" {
	start_tls_broker
	run --separate-stderr timeout "$TMO" mom-admin -s "tcp://localhost:$PORT" -W 3 ping
	assert_equal "$status" 69
	[[ "$stderr" == *"tls+tcp://"* ]] || fail "$stderr"
}

@test "a tls+tcp:// listener without a certificate: the broker refuses to start (64)" {
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "tls+tcp://127.0.0.1:$(free_port)"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"--tls-cert"* ]] || fail "$stderr"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" --tls-key "$PKI/server.key"
	assert_one_line_error mom-broker 64
}

@test "unusable certificate files stop the broker with a message naming the problem (64)" {
	local l="tls+tcp://127.0.0.1:$(free_port)"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "$l" --tls-cert "$PKI/missing.crt"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"cannot read certificate"*"missing.crt"* ]] || fail "$stderr"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "$l" --tls-cert "$PKI/server.crt"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"no private key"* ]] || fail "$stderr"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "$l" --tls-cert "$PKI/server.crt" \
		--tls-key "$PKI/client.key"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"does not match"* ]] || fail "$stderr"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "$l" --tls-cert "$PKI/server.crt" \
		--tls-key "$PKI/server-enc.key"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"encrypted"* ]] || fail "$stderr"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "$l" --tls-cert "$PKI/server.crt" \
		--tls-key "$PKI/ed.key"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"ED25519"*"P-256"* ]] || fail "$stderr"
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "$l" --tls-cert "$PKI/server.key" \
		--tls-key "$PKI/server.key"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"no PEM certificate"* ]] || fail "$stderr"
}

@test "a certificate and its key in one file (--tls-cert only) work" {
	PORT=$(free_port)
	export MOM_URL="tls+tcp://localhost:$PORT"
	mom-broker -D "$T/data" -l "$MOM_URL" --tls-cert "$PKI/server-both.pem" >"$T/broker.log" 2>&1 3>&- &
	BROKER_PID=$!
	wait_tls_ping --cafile "$PKI/ca.crt"
}

@test "client TLS files that cannot be used are usage errors (64)" {
	start_tls_broker
	run --separate-stderr timeout "$TMO" mom-pub --cafile "$PKI/nope.crt" -q jobs --create -m x
	assert_one_line_error mom-pub 64
	[[ "$stderr" == *"cannot read CA file"* ]] || fail "$stderr"
	run --separate-stderr timeout "$TMO" mom-pub --cafile "$PKI/ca.crt" --key "$PKI/client.key" -q jobs --create -m x
	assert_one_line_error mom-pub 64
	[[ "$stderr" == *"--key needs --cert"* ]] || fail "$stderr"
}

@test "--tls-cafile makes the broker require client certificates from that CA" {
	TLSPING=(--cafile "$PKI/ca.crt" --cert "$PKI/client.crt" --key "$PKI/client.key")
	start_tls_broker --tls-cafile "$PKI/ca.crt"
	run --separate-stderr timeout "$TMO" mom-pub "${TLSPING[@]}" -q jobs --create -m 'with a client certificate'
	assert_success
	run --separate-stderr timeout "$TMO" mom-pub --cafile "$PKI/ca.crt" -q jobs -m 'without one'
	assert_one_line_error mom-pub 77
	[[ "$stderr" == *"wants a client certificate"* ]] || fail "$stderr"
	run --separate-stderr timeout "$TMO" mom-pub --cafile "$PKI/ca.crt" --cert "$PKI/client2.crt" \
		--key "$PKI/client2.key" -q jobs -m 'from another CA'
	assert_one_line_error mom-pub 77
	run --separate-stderr timeout "$TMO" mom-sub "${TLSPING[@]}" -q jobs -e
	assert_success
	assert_output 'with a client certificate'
}

@test "a one-shot mom-pub to tls+tcp:// never sends plain SP (the direct path is TCP only)" {
	# A fake server that records the first bytes of every connection: a
	# TLS ClientHello starts 0x16 0x03; the direct path would send "\0SP\0".
	local port
	port=$(free_port)
	python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); s.settimeout(15)
out = open(sys.argv[2], "a")
for _ in range(50):
    try:
        c, _ = s.accept()
    except OSError:
        break
    c.settimeout(2)
    try:
        b = c.recv(4)
    except OSError:
        b = b""
    out.write(b.hex() + "\n"); out.flush(); c.close()
' "$port" "$T/first-bytes" 3>&- &
	BG_PIDS+=($!)
	wait_for 5 bash -c "exec 9<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || true
	: >"$T/first-bytes"
	run --separate-stderr timeout "$TMO" mom-pub -s "tls+tcp://127.0.0.1:$port" --insecure -W 2 -q jobs -m x
	assert_failure
	[ -s "$T/first-bytes" ] || fail "mom-pub never connected"
	run grep -c '^00535000' "$T/first-bytes"
	assert_output 0
	run grep -c '^1603' "$T/first-bytes"
	[ "$output" -ge 1 ] || fail "no TLS ClientHello seen: $(cat "$T/first-bytes")"
}

# start_httpd [TLS_HTTPD OPTIONS...] SCHEME: a tls_httpd on a free port;
# sets HURL to its /healthz.
start_httpd() {
	local scheme=${!#} port i
	port=$(free_port)
	HURL="$scheme://127.0.0.1:$port/healthz"
	if [ "$scheme" = https ]; then
		bg "$HTTPD" "${@:1:$#-1}" "https://127.0.0.1:$port" "$PKI/server.crt" "$PKI/server.key"
	else
		bg "$HTTPD" "${@:1:$#-1}" "http://127.0.0.1:$port"
	fi
	for ((i = 0; i < 100; i++)); do
		curl -sf --cacert "$PKI/ca.crt" -o /dev/null --max-time 2 "$HURL" && return 0
		sleep 0.05
	done
	fail "tls_httpd does not answer on $HURL"
}

# slow_responses URL [CURL OPTIONS...]: 20 GETs on one kept-alive
# connection; prints how many of the 19 after the first (which pays for
# the handshake) took 35 ms or more.  The stall is systematic, every
# response waits for the client's delayed ACK (40 ms on Linux), while a
# busy machine slows only some: so count, rather than time the total.
slow_responses() {
	local url=$1 args=() i
	shift
	for ((i = 0; i < 20; i++)); do
		args+=(-o /dev/null "$url")
	done
	timeout "$TMO" curl -sS "$@" -w '%{time_total} %{num_connects}\n' "${args[@]}" >"$T/times" ||
		fail "curl failed"
	# One connection, or the measurement says nothing about keep-alive.
	assert_equal "$(awk '{ c += $2 } END { print c }' "$T/times")" 1
	awk 'NR > 1 && $1 >= 0.035 { n++ } END { print n + 0 }' "$T/times"
}

# nagle_test [TLS_HTTPD OPTIONS...]: the fixed server against the control
# (-n, Nagle left on), both over HTTPS.
nagle_test() {
	local fixed control
	[ -x "$HTTPD" ] || fail "$HTTPD missing: run make all"
	start_httpd -n "$@" https
	control=$(slow_responses "$HURL" --cacert "$PKI/ca.crt")
	start_httpd "$@" https
	fixed=$(slow_responses "$HURL" --cacert "$PKI/ca.crt")
	echo "# responses 2-20 at 35 ms or more: $fixed with the fix, $control with Nagle on" >&3
	if ((control < 15)); then
		skip "this machine does not delay ACKs: the control shows no stall ($control of 19)"
	fi
	((fixed <= 5)) || fail "$fixed of 19 HTTPS responses waited for a delayed ACK"
}

@test "20 kept-alive HTTPS requests to nng's HTTP server do not wait 40 ms each (mom_tls_http_nodelay)" {
	nagle_test
}

@test "20 kept-alive HTTPS requests to a stream listener answering in two writes do not wait 40 ms each" {
	nagle_test -s
}

# start_https_broker [BROKER OPTIONS...]: a broker (data plane on tcp://)
# whose HTTP API is https://127.0.0.1:HPORT; HBASE is that URL.
start_https_broker() {
	HPORT=$(free_port)
	HBASE="https://127.0.0.1:$HPORT"
	start_broker --http "$HBASE" --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" "$@"
}

@test "the broker's HTTP API over https:// (curl --cacert; mom-admin --cafile)" {
	start_https_broker
	run timeout "$TMO" curl -sS --cacert "$PKI/ca.crt" "$HBASE/healthz"
	assert_success
	assert_output --partial '"status":"ok"'
	run timeout "$TMO" curl -sS "$HBASE/healthz"
	assert_failure
	run --separate-stderr timeout "$TMO" mom-admin -s "$HBASE" --cafile "$PKI/ca.crt" queue create viahttps
	assert_success
	run --separate-stderr timeout "$TMO" mom-admin -s "$HBASE" --cafile "$PKI/ca2.crt" queue list
	assert_failure
	assert_equal "${#stderr_lines[@]}" 1
	[[ "$stderr" == mom-admin:*certificate* ]] || fail "$stderr"
}

@test "--http https:// without --tls-cert: the broker refuses to start (64)" {
	run --separate-stderr timeout 5 mom-broker -D "$T/data" -l "tcp://127.0.0.1:$(free_port)" \
		--http "https://127.0.0.1:$(free_port)"
	assert_one_line_error mom-broker 64
	[[ "$stderr" == *"--tls-cert"* ]] || fail "$stderr"
}

@test "with --tls-cafile the HTTPS API wants a client certificate too" {
	start_https_broker --tls-cafile "$PKI/ca.crt"
	run timeout "$TMO" curl -sS --cacert "$PKI/ca.crt" "$HBASE/healthz"
	assert_failure
	run timeout "$TMO" curl -sS --cacert "$PKI/ca.crt" --cert "$PKI/client.crt" --key "$PKI/client.key" \
		"$HBASE/healthz"
	assert_success
	assert_output --partial '"status":"ok"'
}

@test "20 kept-alive HTTPS requests to the broker with 40 KB answers do not wait for delayed ACKs" {
	local i urls=()
	start_https_broker
	# 150 queues make /v1/queues about 40 KB: three TLS records, so even
	# an answer written at once would stall without TCP_NODELAY.
	for ((i = 0; i < 150; i++)); do
		urls+=(-o /dev/null "$HBASE/v1/queues/q$i")
	done
	timeout "$TMO" curl -sS --cacert "$PKI/ca.crt" -X PUT "${urls[@]}"
	run timeout "$TMO" curl -sS --cacert "$PKI/ca.crt" "$HBASE/v1/queues"
	assert_success
	((${#output} > 16384)) || fail "/v1/queues is only ${#output} bytes"
	slow=$(slow_responses "$HBASE/v1/queues" --cacert "$PKI/ca.crt")
	echo "# responses 2-20 at 35 ms or more: $slow" >&3
	((slow <= 5)) || fail "$slow of 19 HTTPS responses waited for a delayed ACK"
}

#!/usr/bin/env bats
# Forged, tampered and expired tokens against a broker with --auth-key:
# every one is refused on the nng plane (mom-pub exits 77 and says why)
# and on the HTTP plane (401, WWW-Authenticate: Bearer error="invalid_token"),
# and nothing reaches the queue.  Tokens are made with build/tools/mkjwt,
# which signs anything with any key.  Positive controls with the same
# forger show that the refusals come from the attack, not the tool.

bats_require_minimum_version 1.5.0
load helpers

MKJWT="$E2E_ROOT/build/tools/mkjwt"

setup_file() {
	[ -x "$MKJWT" ] || {
		echo "# $MKJWT is missing: make all builds it" >&3
		return 1
	}
	export K="$BATS_FILE_TMPDIR/keys"
	mkdir -p "$K"
	openssl ecparam -genkey -name prime256v1 -noout -out "$K/k.pem" 2>/dev/null
	openssl pkey -in "$K/k.pem" -pubout -out "$K/pub.pem"
	openssl ecparam -genkey -name prime256v1 -noout -out "$K/other.pem" 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.pem" 2>/dev/null
	openssl pkey -in "$K/rsa.pem" -pubout -out "$K/rsapub.pem"
}

# Does this broker have the HTTP plane yet?
http_supported() {
	mom-broker --help 2>&1 | grep -q -- '--http'
}

# start_auth_broker PUBKEY: a broker that requires tokens signed by PUBKEY,
# with the HTTP plane on a free port when it has one, and a queue q.
start_auth_broker() {
	local extra=()
	HTTPPORT=
	if http_supported; then
		HTTPPORT=$(free_port)
		extra=(--http "127.0.0.1:$HTTPPORT")
	fi
	start_broker --auth-key "$1" "${extra[@]}"
	run -0 env MOM_TOKEN="$ADMIN" timeout "$TMO" mom-admin queue create q
}

setup() {
	T="$BATS_TEST_TMPDIR"
	cd "$T" || return 1
	ADMIN=$(mk --std --claims '{"sub":"root","mom.admin":true}')
	start_auth_broker "$K/pub.pem"
}

# mk ARGS...: a token signed with the broker's key (unless ARGS say otherwise).
mk() {
	"$MKJWT" --key "$K/k.pem" "$@"
}

# http_publish TOKEN: POST one message over HTTP; prints the status code,
# leaves the body in $T/body and the headers in $T/headers.
http_publish() {
	curl -sS --max-time "$TMO" -o "$T/body" -D "$T/headers" -w '%{http_code}' \
		-H "Authorization: Bearer $1" -H 'Content-Type: text/plain' -X POST --data x \
		"http://127.0.0.1:$HTTPPORT/v1/queues/q/messages"
}

# refused TOKEN REASON: mom-pub exits 77 with "mom-pub: REASON" and nothing
# else; the HTTP plane answers 401 invalid_token with REASON as the error.
refused() {
	local tok=$1 why=$2
	run -77 --separate-stderr env MOM_TOKEN="$tok" timeout "$TMO" mom-pub -q q -m x
	assert_output ""
	assert_equal "$stderr" "mom-pub: $why"
	[ -n "$HTTPPORT" ] || return 0
	run -0 http_publish "$tok"
	assert_output 401
	grep -qi '^WWW-Authenticate: Bearer error="invalid_token"' "$T/headers" ||
		fail "no WWW-Authenticate invalid_token header: $(cat "$T/headers")"
	assert_equal "$(jq -r .error "$T/body")" "$why"
	assert_equal "$(jq -r .code "$T/body")" "unauthorized"
}

# accepted TOKEN: the token publishes on both planes.
accepted() {
	run -0 env MOM_TOKEN="$1" timeout "$TMO" mom-pub -q q -m ok
	[ -n "$HTTPPORT" ] || return 0
	run -0 http_publish "$1"
	assert_output 200
}

# depth_is N: what the admin sees in q.
depth_is() {
	run -0 env MOM_TOKEN="$ADMIN" timeout "$TMO" mom-admin --json queue info q
	assert_equal "$(jq -r .messages <<<"$output")" "$1"
	assert_equal "$(jq -r .published <<<"$output")" "$1"
}

# nothing_published: after the attacks of a test, q is still empty.
nothing_published() {
	depth_is 0
}

# planes: how many messages one accepted() call stores.
planes() {
	if [ -n "$HTTPPORT" ]; then echo 2; else echo 1; fi
}

@test "the HTTP plane is there (else the HTTP half of this file is skipped)" {
	http_supported || skip "mom-broker has no --http yet: attacks are tried on the nng plane only"
	[ -n "$HTTPPORT" ]
	run -0 curl -sS --max-time "$TMO" "http://127.0.0.1:$HTTPPORT/healthz"
}

@test "control: a valid ES256 token publishes on every plane" {
	accepted "$(mk --std --claims '{"sub":"alice","mom.pub":["q"]}')"
	depth_is "$(planes)"
}

@test "control: a token that expired 30 s ago is still inside the 60 s leeway" {
	accepted "$(mk --std --claims '{"exp":"-30","iat":"-400","nbf":"-400"}')"
	accepted "$(mk --std --claims '{"nbf":"+30","iat":"+30"}')"
	depth_is $((2 * $(planes)))
}

@test "alg none in every letter case, with and without a signature, is refused" {
	local alg
	for alg in none None NONE nOnE; do
		refused "$("$MKJWT" --alg-none --alg "$alg" --std --claims '{}')" "algorithm not allowed"
		refused "$("$MKJWT" --alg-none --alg "$alg" --std --claims '{}' --sig c2lnbmF0dXJl)" \
			"algorithm not allowed"
		# a genuine signature under an alg none header
		refused "$(mk --alg "$alg" --std --claims '{}')" "algorithm not allowed"
	done
	nothing_published
}

@test "HS256 signed with the broker's public key PEM as HMAC secret is refused (key confusion)" {
	refused "$("$MKJWT" --hmac-secret-file "$K/pub.pem" --std --claims '{"mom.admin":true}')" \
		"algorithm not allowed"
	refused "$("$MKJWT" --hmac-secret-file "$K/pub.pem" --alg hs256 --std --claims '{}')" \
		"algorithm not allowed"
	# the PEM without its final newline, as some tools read it
	head -c -1 "$K/pub.pem" >"$T/pub-nonl"
	refused "$("$MKJWT" --hmac-secret-file "$T/pub-nonl" --std --claims '{}')" \
		"algorithm not allowed"
	nothing_published
}

@test "an RSA-keyed broker: RS256 works, HS256 with its PEM and a relabelled RS256 token do not" {
	stop_pid "$BROKER_PID"
	BROKER_PID=
	rm -rf "$T/data"
	ADMIN=$("$MKJWT" --key "$K/rsa.pem" --std --claims '{"sub":"root","mom.admin":true}')
	start_auth_broker "$K/rsapub.pem"
	refused "$("$MKJWT" --hmac-secret-file "$K/rsapub.pem" --std --claims '{}')" \
		"algorithm not allowed"
	local rs hs
	rs=$("$MKJWT" --key "$K/rsa.pem" --std --claims '{}')
	hs=$("$MKJWT" --hmac-secret-file "$K/rsapub.pem" --std --claims '{}')
	# RS256 header and payload with an HS256 label: header swapped, signature kept
	refused "$(printf '%s.%s' "${hs%%.*}" "${rs#*.}")" "algorithm not allowed"
	# an ES256 token is not taken by an RSA-only broker
	refused "$(mk --std --claims '{}')" "algorithm not allowed"
	nothing_published
	accepted "$rs"
	depth_is "$(planes)"
}

@test "a token signed by another key is refused" {
	refused "$("$MKJWT" --key "$K/other.pem" --std --claims '{"mom.admin":true}')" "bad signature"
	nothing_published
}

@test "an empty signature is refused" {
	refused "$(mk --std --claims '{}' --empty-sig)" "bad signature"
	nothing_published
}

@test "a signature spliced from another valid token is refused" {
	local honest
	honest=$(mk --std --claims '{"sub":"alice","mom.pub":["other"]}')
	refused "$(mk --std --claims '{"sub":"alice","mom.admin":true}' --splice-sig "$honest")" \
		"bad signature"
	nothing_published
}

@test "a tampered header, payload or signature is refused" {
	refused "$(mk --std --claims '{}' --tamper header)" "bad signature"
	refused "$(mk --std --claims '{"mom.pub":[]}' --tamper payload)" "bad signature"
	refused "$(mk --std --claims '{}' --tamper sig)" "bad signature"
	nothing_published
}

# Just over the 60 s leeway.  A future time is checked on two planes one
# after the other, seconds apart on a loaded machine: +65, not +61, so
# that the clock cannot walk it back inside the leeway meanwhile.
@test "expired 61 s ago, valid only 65 s from now, or issued 65 s in the future: refused" {
	refused "$(mk --std --claims '{"exp":"-61","iat":"-400","nbf":"-400"}')" "token expired"
	refused "$(mk --std --claims '{"nbf":"+65"}')" "token not yet valid"
	refused "$(mk --std --claims '{"iat":"+65"}')" "token issued in the future"
	nothing_published
}

@test "a token without expiry is refused" {
	refused "$(mk --std --claims '{"exp":null}')" "token without expiry"
	refused "$(mk --std --claims '{"exp":"never"}')" "malformed token"
	nothing_published
}

@test "a wrong or missing issuer is refused" {
	refused "$(mk --std --claims '{"iss":"evil"}')" "wrong issuer"
	refused "$(mk --std --claims '{"iss":null}')" "token without issuer"
	nothing_published
}

@test "a wrong or missing audience is refused" {
	refused "$(mk --std --claims '{"aud":"other"}')" "wrong audience"
	refused "$(mk --std --claims '{"aud":["other","x"]}')" "wrong audience"
	refused "$(mk --std --claims '{"aud":null}')" "token without audience"
	nothing_published
}

@test "a typ other than JWT is refused" {
	refused "$(mk --header '{"alg":"ES256","typ":"JWS"}' --std --claims '{}')" "token type not allowed"
	refused "$(mk --header '{"alg":"ES256","typ":"garbage"}' --std --claims '{}')" \
		"token type not allowed"
	nothing_published
}

# sp_publish PORT TOKENFILE: a PUBLISH frame carrying the token, sent by a
# bare SP REQ peer (mom-pub refuses to send a token over 8 KiB itself);
# prints the reply's status and message.
sp_publish() {
	timeout 20 python3 - "$1" "$2" <<'PY'
import socket, struct, sys
port, tok = int(sys.argv[1]), open(sys.argv[2], "rb").read().strip()
def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
s.recv(8)
body = struct.pack(">I", 0x80000001) + bytes([0x4d, 1, 2, 1]) + varint(len(tok)) + tok
s.sendall(struct.pack(">Q", len(body)) + body)
buf = b""
while len(buf) < 8 or len(buf) < 8 + struct.unpack(">Q", buf[:8])[0]:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
frame = buf[12:]
n, i, shift = 0, 4, 0
while True:
    b = frame[i]; i += 1
    n |= (b & 0x7f) << shift; shift += 7
    if b < 0x80:
        break
print(frame[3], frame[i:i + n].decode())
PY
}

@test "a token over 8 KiB is refused before it is parsed" {
	local pad tok
	pad=$(head -c 9000 /dev/zero | tr '\0' x)
	tok=$(mk --std --claims "{\"pad\":\"$pad\"}")
	((${#tok} > 8192))
	# the client does not even send it
	run -64 --separate-stderr env MOM_TOKEN="$tok" timeout "$TMO" mom-pub -q q -m x
	assert_equal "$stderr" "mom-pub: MOM_TOKEN is longer than 8192 bytes"
	# the broker refuses it when a peer does
	printf '%s' "$tok" >"$T/big.jwt"
	run -0 sp_publish "$PORT" "$T/big.jwt"
	assert_output "10 token too large"
	if [ -n "$HTTPPORT" ]; then
		run -0 http_publish "$tok"
		assert_output 401
		assert_equal "$(jq -r .error "$T/body")" "token too large"
	fi
	nothing_published
}

@test "bad base64 (padding, characters outside the alphabet) is refused" {
	local tok
	tok=$(mk --std --claims '{}')
	refused "$tok=" "malformed token"
	refused "${tok%%.*}==.${tok#*.}" "malformed token"
	refused "${tok:0:10}!${tok:11}" "malformed token"
	refused "${tok:0:10}+${tok:11}" "malformed token"
	refused "$(mk --std --claims '{}' --sig 'c2ln/+==')" "malformed token"
	nothing_published
}

@test "two or four segments are refused" {
	local tok
	tok=$(mk --std --claims '{}')
	refused "${tok%.*}" "malformed token"
	refused "$tok.c2ln" "malformed token"
	refused "${tok%%.*}" "malformed token"
	nothing_published
}

@test "a header that is not JSON, or JSON that is not an object, is refused" {
	refused "$(mk --header 'not json' --std --claims '{}')" "malformed token"
	refused "$(mk --header '["ES256"]' --std --claims '{}')" "malformed token"
	refused "$(mk --header '"ES256"' --std --claims '{}')" "malformed token"
	refused "$(mk --header '{"alg":"none","alg":"ES256"}' --std --claims '{}')" "malformed token"
	nothing_published
}

@test "mom.pub that is not a list of valid patterns is refused" {
	refused "$(mk --std --claims '{"mom.pub":"q"}')" "bad permission list"
	refused "$(mk --std --claims '{"mom.pub":["q*"]}')" "bad permission list"
	refused "$(mk --std --claims '{"mom.pub":[">.q"]}')" "bad permission list"
	refused "$(mk --std --claims '{"mom.sub":[1]}')" "bad permission list"
	refused "$(mk --std --claims '{"mom.admin":"yes"}')" "malformed token"
	nothing_published
}

@test "a refused token stays refused when sent again (no cache answers it)" {
	local tok
	tok=$(mk --std --claims '{"mom.admin":true}' --tamper payload)
	refused "$tok" "bad signature"
	refused "$tok" "bad signature"
	nothing_published
}

@test "a valid token without the right pattern is denied, not authenticated away" {
	run -77 --separate-stderr env MOM_TOKEN="$(mk --std --claims '{"mom.pub":["other.>"]}')" \
		timeout "$TMO" mom-pub -q q -m x
	assert_equal "$stderr" "mom-pub: permission denied: publish to queue 'q'"
	nothing_published
}

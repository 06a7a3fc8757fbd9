#!/usr/bin/env bats
# mom-auth: keys, users, offline tokens, the HTTP issuer, login, verify.

bats_require_minimum_version 1.5.0
load helpers

# Each test gets a key pair and two users in $A (argon2 takes ~50 ms per
# hash, so only two).
setup() {
	T="$BATS_TEST_TMPDIR"
	cd "$T" || return 1
	A="$T/auth"
	mom-auth -d "$A" keygen
	echo pw-alice | mom-auth -d "$A" user add alice --pub 'orders.>' --sub 'orders.*'
	echo pw-root | mom-auth -d "$A" user add root --admin
}

# start_auth [SERVE OPTIONS...]: mom-auth serve on a free loopback port;
# sets AURL and AUTH_PID; waits (bounded) for /healthz.
start_auth() {
	local port
	port=$(free_port)
	AURL="http://127.0.0.1:$port"
	bg mom-auth -d "$A" serve --listen "127.0.0.1:$port" "$@" >"$T/auth.log" 2>&1
	AUTH_PID=${BG_PIDS[-1]}
	if ! wait_for 10 auth_up; then
		echo "# mom-auth serve did not start; its log:" >&3
		sed 's/^/# /' "$T/auth.log" >&3
		return 1
	fi
}
auth_up() { curl -sf -o /dev/null --max-time 2 "$AURL/healthz"; }

# post [CURL ARGS...]: POST /v1/token; prints the body, then the status
# on a line of its own.
post() {
	curl -s --max-time "$TMO" -X POST -w '\n%{http_code}\n' "$@" "$AURL/v1/token"
}

# claims TOKEN: the verified claims as JSON.
claims() { timeout "$TMO" mom-auth -d "$A" verify "$1"; }

# payload_with TOKEN JQ: the token with its payload changed by JQ (and its
# signature kept), as an attacker would try.
payload_with() {
	python3 - "$1" "$2" <<'PY'
import base64, json, subprocess, sys
h, p, s = sys.argv[1].split(".")
raw = base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))
new = subprocess.run(["jq", "-c", sys.argv[2]], input=raw, capture_output=True, check=True).stdout.strip()
print(h + "." + base64.urlsafe_b64encode(new).decode().rstrip("=") + "." + s)
PY
}

# term_status PID: SIGTERM, then the exit status (bounded wait).
term_status() {
	local i
	kill -TERM "$1"
	for ((i = 0; i < 250; i++)); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.02
	done
	wait "$1"
}

# ---- usage ----

@test "mom-auth -h prints usage on stdout and exits 0" {
	run --separate-stderr mom-auth -h
	assert_success
	assert_output --partial "usage: mom-auth"
	assert_output --partial "user add NAME"
	assert_output --partial "serve [--listen ADDR]"
	assert_equal "$stderr" ""
}

@test "mom-auth --version prints its version" {
	run --separate-stderr mom-auth --version
	assert_success
	assert_output --regexp '^mom-auth [0-9]+\.[0-9]+'
}

@test "mom-auth usage errors exit 64 with one 'mom-auth:' line" {
	run --separate-stderr mom-auth --bogus keygen
	assert_usage_error mom-auth
	run --separate-stderr mom-auth frobnicate
	assert_usage_error mom-auth
	run --separate-stderr mom-auth user
	assert_usage_error mom-auth
	run --separate-stderr mom-auth user add
	assert_usage_error mom-auth
	run --separate-stderr mom-auth -d "$A" token --ttl
	assert_usage_error mom-auth
	run --separate-stderr mom-auth -d "$A" token -u alice --ttl soon
	assert_usage_error mom-auth
	run --separate-stderr mom-auth
	assert_usage_error mom-auth
}

@test "mom-auth refuses an option of another verb (64)" {
	run --separate-stderr mom-auth -d "$A" user list --ttl 1h
	assert_usage_error mom-auth
	assert_equal "${stderr_lines[0]}" "mom-auth: --ttl does not apply to user list"
	run --separate-stderr mom-auth -d "$A" keygen --listen 127.0.0.1:1
	assert_usage_error mom-auth
}

@test "mom-auth has no way to take a password on the command line" {
	# (--password would abbreviate --password-file: a file name, never the secret)
	run --separate-stderr mom-auth -d "$A" user add bob --passwd secret
	assert_usage_error mom-auth
	run --separate-stderr mom-auth -d "$A" user add bob -p secret
	assert_usage_error mom-auth
	run --separate-stderr mom-auth -d "$A" user add bob secret </dev/null
	assert_usage_error mom-auth
	run --separate-stderr mom-auth login -u bob -p secret
	assert_usage_error mom-auth
	run mom-auth -d "$A" user list
	refute_output --partial bob
}

# ---- keygen ----

@test "keygen makes a P-256 key pair: directory 0700, private key 0600, public key 0644" {
	run --separate-stderr mom-auth -d "$T/k" keygen
	assert_success
	assert_output ""
	assert_equal "$(stat -c %a "$T/k")" 700
	assert_equal "$(stat -c %a "$T/k/mom-auth.key")" 600
	assert_equal "$(stat -c %a "$T/k/mom-auth.pub")" 644
	openssl pkey -in "$T/k/mom-auth.key" -noout
	run openssl pkey -in "$T/k/mom-auth.key" -noout -text
	assert_output --partial "prime256v1"
	run openssl pkey -pubin -in "$T/k/mom-auth.pub" -noout -text
	assert_success
	assert_output --partial "prime256v1"
	# The public key belongs to the private one.
	assert_equal "$(openssl pkey -in "$T/k/mom-auth.key" -pubout)" "$(cat "$T/k/mom-auth.pub")"
}

@test "keygen's private key is 0600 even under umask 000" {
	(umask 000 && mom-auth -d "$T/k" keygen)
	assert_equal "$(stat -c %a "$T/k/mom-auth.key")" 600
	assert_equal "$(stat -c %a "$T/k")" 700
	assert_equal "$(stat -c %a "$T/k/mom-auth.pub")" 644
}

@test "keygen refuses to replace a key pair (exit 1) unless --force" {
	cp "$A/mom-auth.pub" "$T/old.pub"
	run --separate-stderr mom-auth -d "$A" keygen
	assert_one_line_error mom-auth 1
	assert_equal "$(cat "$A/mom-auth.pub")" "$(cat "$T/old.pub")"
	run mom-auth -d "$A" keygen --force
	assert_success
	[ "$(cat "$A/mom-auth.pub")" != "$(cat "$T/old.pub")" ]
	assert_equal "$(stat -c %a "$A/mom-auth.key")" 600
	[ ! -e "$A/mom-auth.key.tmp" ]
}

# ---- cluster-key ----

@test "cluster-key writes 64 random hex digits and a newline, mode 0600 even under umask 000" {
	run --separate-stderr bash -c "umask 000 && mom-auth cluster-key '$T/cluster.key'"
	assert_success
	assert_output ""
	assert_equal "$stderr" ""
	assert_equal "$(stat -c %a "$T/cluster.key")" 600
	assert_equal "$(stat -c %s "$T/cluster.key")" 65
	grep -Eqx '[0-9a-f]{64}' "$T/cluster.key"
	mom-auth cluster-key "$T/other.key"
	! cmp -s "$T/cluster.key" "$T/other.key"
}

@test "cluster-key refuses to replace a key (exit 1) unless --force" {
	mom-auth cluster-key "$T/cluster.key"
	cp "$T/cluster.key" "$T/old.key"
	run --separate-stderr mom-auth cluster-key "$T/cluster.key"
	assert_one_line_error mom-auth 1
	assert_equal "${stderr_lines[0]}" \
		"mom-auth: $T/cluster.key: exists already: not replacing a cluster key without --force"
	cmp "$T/cluster.key" "$T/old.key"
	chmod 644 "$T/cluster.key"
	run --separate-stderr mom-auth cluster-key "$T/cluster.key" --force
	assert_success
	assert_equal "$stderr" ""
	! cmp -s "$T/cluster.key" "$T/old.key"
	assert_equal "$(stat -c %a "$T/cluster.key")" 600
	[ ! -e "$T/cluster.key.tmp" ]
}

@test "cluster-key usage errors exit 64; a file that cannot be created exits 1" {
	run --separate-stderr mom-auth cluster-key
	assert_usage_error mom-auth
	assert_equal "${stderr_lines[0]}" "mom-auth: cluster-key: missing FILE"
	run --separate-stderr mom-auth cluster-key "$T/a" "$T/b"
	assert_usage_error mom-auth
	run --separate-stderr mom-auth cluster-key "$T/a" --rsa
	assert_usage_error mom-auth
	[ ! -e "$T/a" ]
	run --separate-stderr mom-auth cluster-key "$T/missing/cluster.key"
	assert_one_line_error mom-auth 1
	assert_equal "${stderr_lines[0]}" "mom-auth: $T/missing/cluster.key: No such file or directory"
}

@test "keygen --rsa makes an RSA key whose tokens verify as RS256" {
	run mom-auth -d "$A" keygen --rsa --force
	assert_success
	run openssl pkey -pubin -in "$A/mom-auth.pub" -noout -text
	assert_output --partial "Public-Key: (3072 bit)"
	tok=$(mom-auth -d "$A" token -u alice)
	assert_equal "$(echo "$tok" | cut -d. -f1 | base64 -d 2>/dev/null | jq -r .alg)" RS256
	run claims "$tok"
	assert_success
}

@test "the directory comes from -d, else MOM_AUTH_DIR, else ./mom-auth" {
	mom-auth keygen
	[ -f "$T/mom-auth/mom-auth.key" ]
	MOM_AUTH_DIR="$T/env" mom-auth keygen
	[ -f "$T/env/mom-auth.key" ]
	MOM_AUTH_DIR="$T/env" mom-auth -d "$T/opt" keygen
	[ -f "$T/opt/mom-auth.key" ]
}

@test "the config file can set the directory" {
	mkdir -p "$XDG_CONFIG_HOME/mom"
	echo "dir $T/cfg" >"$XDG_CONFIG_HOME/mom/mom-auth"
	# An option of another verb in the file is not an error for this one.
	echo "listen 127.0.0.1:1" >>"$XDG_CONFIG_HOME/mom/mom-auth"
	run mom-auth keygen
	assert_success
	[ -f "$T/cfg/mom-auth.key" ]
}

# ---- users ----

@test "user add reads the password from stdin and stores an argon2id hash, file 0600" {
	assert_equal "$(stat -c %a "$A/users.json")" 600
	run jq -r '.users.alice.hash' "$A/users.json"
	assert_output --regexp '^\$argon2id\$v=19\$m=19456,t=2,p=1\$'
	run grep -c pw-alice "$A/users.json"
	assert_output 0
	# Only the first line is the password.
	printf 'pw-bob\nnot this\n' | mom-auth -d "$A" user add bob
	start_auth
	run post -u bob:pw-bob
	assert_line --index 1 200
	run post -u 'bob:pw-bob
not this'
	assert_line --index 1 401
}

@test "user add refuses an empty password (65) and a missing one" {
	run --separate-stderr mom-auth -d "$A" user add bob </dev/null
	assert_one_line_error mom-auth 65
	run --separate-stderr mom-auth -d "$A" user add bob <<<""
	assert_one_line_error mom-auth 65
	run --separate-stderr mom-auth -d "$A" user add bob --password-file "$T/none"
	assert_one_line_error mom-auth 66
	# A password is a secret: --password (an abbreviation) is refused and
	# nothing of its value is printed, nor the value of --password-file.
	# (an option error: the usage text follows the one line, as for any other)
	run -64 --separate-stderr mom-auth -d "$A" user add bob --password 'Sekr1t-pw'
	[[ "$stderr" != *Sekr1t-pw* ]] || fail "printed the password: $stderr"
	assert_equal "${stderr%%$'\n'*}" "mom-auth: --password is not an option: a password comes from a file (--password-file FILE) or stdin"
	run -64 --separate-stderr mom-auth login -u bob --password='Sekr1t-pw'
	[[ "$stderr" != *Sekr1t-pw* ]] || fail "printed the password: $stderr"
	run --separate-stderr mom-auth -d "$A" user add bob --password-file 'Sekr1t-pw'
	assert_one_line_error mom-auth 66
	[[ "$stderr" != *Sekr1t-pw* ]] || fail "printed the password: $stderr"
	run mom-auth -d "$A" user list
	refute_output --partial bob
}

# on_tty ANSWER... -- COMMAND...: run COMMAND on a pseudo-terminal, typing
# each ANSWER after the next prompt ("...: "); prints what the terminal
# showed, exits with COMMAND's status.
on_tty() {
	timeout "$TMO" python3 - "$@" <<'PY'
import os, pty, sys, time
args = sys.argv[1:]
sep = args.index("--")
answers, cmd = args[:sep], args[sep + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b""
def more():
    global out
    try:
        d = os.read(fd, 1024)
    except OSError:
        return False
    out += d
    return bool(d)
for a in answers:
    start = len(out)
    deadline = time.time() + 10
    while b": " not in out[start:] and time.time() < deadline and more():
        pass
    time.sleep(0.05)  # echo is turned off after the prompt is written
    os.write(fd, a.encode() + b"\n")
while more():
    pass
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
}

@test "user add asks twice on the terminal, without echo" {
	run on_tty sEcReT-1 sEcReT-1 -- mom-auth -d "$A" user add tty
	assert_success
	assert_output --partial "Password: "
	assert_output --partial "Password again: "
	refute_output --partial sEcReT
	run on_tty sEcReT-1 sEcReT-2 -- mom-auth -d "$A" user add tty2
	assert_failure 1
	assert_output --partial "mom-auth: the passwords do not match"
	run mom-auth -d "$A" user list
	assert_output --partial tty
	refute_output --partial tty2
	start_auth
	run post -u tty:sEcReT-1
	assert_line --index 1 200
}

@test "user add --password-file reads the first line of a file" {
	printf 'from-file\n' >"$T/pw"
	mom-auth -d "$A" user add bob --password-file "$T/pw" </dev/null
	start_auth
	run post -u bob:from-file
	assert_line --index 1 200
}

@test "user add refuses an existing user (1); --force replaces it" {
	run --separate-stderr mom-auth -d "$A" user add alice <<<"other"
	assert_one_line_error mom-auth 1
	echo new-pw | mom-auth -d "$A" user add alice --force --sub 'x.>'
	run jq -c '.users.alice | [.pub, .sub]' "$A/users.json"
	assert_output '[[],["x.>"]]'
	start_auth
	run post -u alice:pw-alice
	assert_line --index 1 401
	run post -u alice:new-pw
	assert_line --index 1 200
}

@test "user add refuses bad names and bad patterns (64)" {
	for name in 'a b' 'a:b' '' '.a' "$(printf 'x%.0s' {1..65})"; do
		run --separate-stderr mom-auth -d "$A" user add "$name" <<<"pw"
		assert_usage_error mom-auth
	done
	for pat in 'a*' 'a.>.b' '' 'a..b'; do
		run --separate-stderr mom-auth -d "$A" user add bob --pub "$pat" <<<"pw"
		assert_usage_error mom-auth
	done
	run mom-auth -d "$A" user list --json
	assert_equal "$(echo "$output" | jq '.users | length')" 2
}

@test "user list shows users and permissions, never hashes" {
	run --separate-stderr mom-auth -d "$A" user list
	assert_success
	assert_line --index 0 --regexp '^NAME +ADMIN +PUB +SUB$'
	assert_line --index 1 --regexp '^alice +no +orders\.> +orders\.\*$'
	assert_line --index 2 --regexp '^root +yes +- +-$'
	run --separate-stderr mom-auth -d "$A" user list --json
	assert_success
	refute_output --partial argon2
	assert_equal "$(echo "$output" | jq -c '.users[0] | [.name, .admin, .pub, .sub]')" \
		'["alice",false,["orders.>"],["orders.*"]]'
	assert_equal "$(echo "$output" | jq -c '.users[1] | [.name, .admin]')" '["root",true]'
}

@test "user list --json of an empty directory is an empty list" {
	run mom-auth -d "$T/empty" user list --json
	assert_success
	assert_output '{"users":[]}'
}

@test "user delete removes a user; an unknown one exits 66" {
	run mom-auth -d "$A" user delete alice
	assert_success
	run mom-auth -d "$A" user list
	refute_output --partial alice
	run --separate-stderr mom-auth -d "$A" user delete alice
	assert_one_line_error mom-auth 66
	assert_equal "$(stat -c %a "$A/users.json")" 600
}

@test "two user adds at the same time both land" {
	local i pids=()
	for i in 1 2 3 4 5 6; do
		(echo "pw$i" | timeout "$TMO" mom-auth -d "$A" user add "u$i") 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}"
	run mom-auth -d "$A" user list --json
	assert_equal "$(echo "$output" | jq '.users | length')" 8
}

@test "a broken users file is reported, not overwritten" {
	echo '{"users":' >"$A/users.json"
	run --separate-stderr mom-auth -d "$A" user add bob <<<"pw"
	assert_one_line_error mom-auth 65
	assert_equal "$(cat "$A/users.json")" '{"users":'
}

# ---- token ----

@test "token signs the user's permissions for one hour by default" {
	run --separate-stderr mom-auth -d "$A" token --user alice
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_output --regexp '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
	run claims "$output"
	assert_success
	assert_equal "$(echo "$output" | jq -r .sub)" alice
	assert_equal "$(echo "$output" | jq -c '[.["mom.pub"], .["mom.sub"], .["mom.admin"]]')" \
		'[["orders.>"],["orders.*"],false]'
	assert_equal "$(echo "$output" | jq '.exp - .iat')" 3600
}

@test "token --ttl sets the lifetime" {
	tok=$(mom-auth -d "$A" token -u alice --ttl 10m)
	assert_equal "$(claims "$tok" | jq '.exp - .iat')" 600
}

@test "token narrows: --pub/--sub patterns covered by the user's give exactly those" {
	tok=$(mom-auth -d "$A" token -u alice --pub orders.eu --pub 'orders.us.>')
	run claims "$tok"
	assert_success
	assert_equal "$(echo "$output" | jq -c '[.["mom.pub"], .["mom.sub"]]')" \
		'[["orders.eu","orders.us.>"],[]]'
	tok=$(mom-auth -d "$A" token -u alice --sub orders.eu)
	assert_equal "$(claims "$tok" | jq -c '.["mom.sub"]')" '["orders.eu"]'
}

@test "token refuses to widen the user's permissions (77)" {
	run --separate-stderr mom-auth -d "$A" token -u alice --pub 'billing.x'
	assert_one_line_error mom-auth 77
	assert_equal "$output" ""
	# orders.* does not cover orders.> nor orders.eu.x
	run --separate-stderr mom-auth -d "$A" token -u alice --sub 'orders.>'
	assert_one_line_error mom-auth 77
	run --separate-stderr mom-auth -d "$A" token -u alice --sub 'orders.eu.x'
	assert_one_line_error mom-auth 77
	run --separate-stderr mom-auth -d "$A" token -u alice --admin
	assert_one_line_error mom-auth 77
}

@test "token for an admin may ask for anything" {
	tok=$(mom-auth -d "$A" token -u root --pub 'any.>' --admin)
	assert_equal "$(claims "$tok" | jq -c '[.["mom.pub"], .["mom.admin"]]')" '[["any.>"],true]'
	tok=$(mom-auth -d "$A" token -u root)
	assert_equal "$(claims "$tok" | jq '.["mom.admin"]')" true
}

@test "token for an unknown user exits 66; without -u 64; without a key 1" {
	run --separate-stderr mom-auth -d "$A" token -u nobody
	assert_one_line_error mom-auth 66
	run --separate-stderr mom-auth -d "$A" token
	assert_usage_error mom-auth
	rm "$A/mom-auth.key"
	run --separate-stderr mom-auth -d "$A" token -u alice
	assert_one_line_error mom-auth 1
	assert_equal "$output" ""
}

# ---- verify ----

@test "verify takes the token from the argument, stdin, --token-file, MOM_TOKEN, MOM_TOKEN_FILE" {
	mom-auth -d "$A" token -u alice >"$T/tok"
	run --separate-stderr mom-auth -d "$A" verify "$(cat "$T/tok")"
	assert_success
	assert_equal "$(echo "$output" | jq -r .sub)" alice
	run --separate-stderr mom-auth -d "$A" verify <"$T/tok"
	assert_success
	assert_equal "$(echo "$output" | jq -r .sub)" alice
	run --separate-stderr mom-auth -d "$A" verify - <"$T/tok"
	assert_success
	run --separate-stderr mom-auth -d "$A" verify --token-file "$T/tok" </dev/null
	assert_success
	MOM_TOKEN=$(cat "$T/tok") run --separate-stderr mom-auth -d "$A" verify </dev/null
	assert_success
	MOM_TOKEN_FILE="$T/tok" run --separate-stderr mom-auth -d "$A" verify </dev/null
	assert_success
	assert_equal "$(echo "$output" | jq -r .sub)" alice
}

@test "verify refuses a tampered token (77) and says why" {
	tok=$(mom-auth -d "$A" token -u alice)
	bad=$(payload_with "$tok" '.sub = "root" | .["mom.admin"] = true')
	run --separate-stderr mom-auth -d "$A" verify "$bad"
	assert_one_line_error mom-auth 77
	assert_equal "$output" ""
	assert_equal "${stderr_lines[0]}" "mom-auth: invalid token: bad signature"
	run --separate-stderr mom-auth -d "$A" verify "garbage"
	assert_one_line_error mom-auth 77
}

@test "verify refuses a token of another key (77); --key picks the key" {
	mom-auth -d "$T/other" keygen
	tok=$(mom-auth -d "$A" token -u alice)
	run --separate-stderr mom-auth -d "$T/other" verify "$tok"
	assert_one_line_error mom-auth 77
	run --separate-stderr mom-auth -d "$T/other" verify --key "$A/mom-auth.pub" "$tok"
	assert_success
}

@test "verify checks the issuer and audience" {
	tok=$(mom-auth -d "$A" token -u alice --issuer elsewhere)
	run --separate-stderr mom-auth -d "$A" verify "$tok"
	assert_one_line_error mom-auth 77
	run --separate-stderr mom-auth -d "$A" verify --issuer elsewhere "$tok"
	assert_success
}

# ---- serve ----

@test "serve issues a token for HTTP Basic credentials" {
	start_auth
	run post -u alice:pw-alice
	assert_line --index 1 200
	tok=$(echo "${lines[0]}" | jq -r .token)
	assert_equal "$(echo "${lines[0]}" | jq -r .expires_at)" \
		"$(date -u -d "@$(claims "$tok" | jq .exp)" +%Y-%m-%dT%H:%M:%SZ)"
	run claims "$tok"
	assert_success
	assert_equal "$(echo "$output" | jq -c '[.sub, .["mom.pub"]]')" '["alice",["orders.>"]]'
	grep -q 'issued user=alice addr=127.0.0.1' "$T/auth.log"
	# Basic splits at the first colon: a password may contain colons.
	echo 'a:b:c' | mom-auth -d "$A" user add colon
	run post -u 'colon:a:b:c'
	assert_line --index 1 200
}

@test "serve issues a token for JSON credentials; ttl may only shorten it" {
	start_auth --token-ttl 30m
	run post -H 'Content-Type: application/json' -d '{"user":"alice","password":"pw-alice"}'
	assert_line --index 1 200
	tok=$(echo "${lines[0]}" | jq -r .token)
	assert_equal "$(claims "$tok" | jq '.exp - .iat')" 1800
	run post -d '{"user":"alice","password":"pw-alice","ttl":"5m"}'
	assert_equal "$(claims "$(echo "${lines[0]}" | jq -r .token)" | jq '.exp - .iat')" 300
	run post -d '{"user":"alice","password":"pw-alice","ttl":"10h"}'
	assert_equal "$(claims "$(echo "${lines[0]}" | jq -r .token)" | jq '.exp - .iat')" 1800
}

@test "serve answers 401 with the same body for a wrong password and an unknown user" {
	start_auth
	run post -u alice:wrong
	assert_line --index 1 401
	assert_line --index 0 '{"error":"wrong user or password","code":"unauthorized"}'
	run post -u nobody:wrong
	assert_line --index 1 401
	assert_line --index 0 '{"error":"wrong user or password","code":"unauthorized"}'
	run curl -s -D - -o /dev/null -u alice:wrong -X POST "$AURL/v1/token"
	assert_output --partial 'WWW-Authenticate: Basic realm="mom-auth"'
	grep -q 'refused user=alice addr=127.0.0.1: wrong password' "$T/auth.log"
	grep -q 'refused user=nobody addr=127.0.0.1: unknown user' "$T/auth.log"
	run grep -c pw-alice "$T/auth.log"
	assert_output 0
}

@test "serve spends argon2 time on an unknown user too" {
	start_auth
	# A dummy hash is verified: well over the <1 ms of a lookup miss.
	t=$(curl -s -o /dev/null -w '%{time_total}' -u nobody:x -X POST "$AURL/v1/token")
	python3 -c "import sys; sys.exit(0 if float('$t') > 0.005 else 1)"
}

@test "serve answers 400 to bad JSON, 401 without credentials, JSON 404 and 405" {
	start_auth
	run post -d '{"user":'
	assert_line --index 1 400
	assert_equal "$(echo "${lines[0]}" | jq -r .code)" bad_request
	run post -d '{"user":"alice"}'
	assert_line --index 1 400
	run post -d '[1,2]'
	assert_line --index 1 400
	run post
	assert_line --index 1 401
	run curl -s -w '\n%{http_code}\n' "$AURL/v1/nothing"
	assert_line --index 1 404
	assert_equal "$(echo "${lines[0]}" | jq -r .code)" not_found
	run curl -s -w '\n%{http_code}\n' "$AURL/v1/token"
	assert_line --index 1 405
	assert_equal "$(echo "${lines[0]}" | jq -r .error)" "use POST"
}

@test "serve answers 429 with Retry-After after repeated failures, even to the right password" {
	start_auth --max-failures 3 --lockout 1m
	for i in 1 2 3; do
		run post -u alice:wrong$i
		assert_line --index 1 401
	done
	run curl -s -D "$T/h" -w '\n%{http_code}\n' -u alice:pw-alice -X POST "$AURL/v1/token"
	assert_line --index 1 429
	assert_equal "$(echo "${lines[0]}" | jq -r .code)" too_many_requests
	grep -qiE '^Retry-After: (59|60)' "$T/h"
	grep -q 'refused user=alice addr=127.0.0.1: too many failures' "$T/auth.log"
}

@test "serve limits failures per client address across user names" {
	start_auth --max-failures 3
	run post -u a1:x
	run post -u a2:x
	run post -u a3:x
	assert_line --index 1 401
	run post -u root:pw-root
	assert_line --index 1 429
}

@test "serve: the lock ends after --lockout" {
	start_auth --max-failures 2 --lockout 1s
	run post -u alice:x
	run post -u alice:y
	run post -u alice:pw-alice
	assert_line --index 1 429
	sleep 1.2
	run post -u alice:pw-alice
	assert_line --index 1 200
}

@test "serve: a burst of parallel guesses gets at most --max-failures tries" {
	start_auth --max-failures 3
	local i pids=()
	for i in $(seq 1 12); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time "$TMO" -u "alice:g$i" -X POST \
			"$AURL/v1/token" >"$T/burst.$i" 3>&- &
		pids+=($!)
	done
	# Only the clients: a bare wait would wait for the server too.
	wait "${pids[@]}"
	assert_equal "$(cat "$T"/burst.* | grep -c 401)" 3
	assert_equal "$(cat "$T"/burst.* | grep -c 429)" 9
}

@test "serve answers GET /v1/keys with the public key" {
	start_auth
	run curl -sf "$AURL/v1/keys"
	assert_success
	assert_equal "$(echo "$output" | jq -r '.keys[0].alg')" ES256
	assert_equal "$(echo "$output" | jq -r '.keys[0].pem')" "$(cat "$A/mom-auth.pub")"
	assert_equal "$(echo "$output" | jq '.keys | length')" 1
}

@test "serve sees users added while it runs" {
	start_auth
	run post -u bob:pw-bob
	assert_line --index 1 401
	echo pw-bob | mom-auth -d "$A" user add bob
	run post -u bob:pw-bob
	assert_line --index 1 200
	mom-auth -d "$A" user delete bob
	run post -u bob:pw-bob
	assert_line --index 1 401
}

@test "serve refuses a non-loopback address without TLS (64)" {
	run --separate-stderr timeout "$TMO" mom-auth -d "$A" serve --listen "0.0.0.0:$(free_port)"
	assert_one_line_error mom-auth 64
	run --separate-stderr timeout "$TMO" mom-auth -d "$A" serve --listen "127.0.0.1:$(free_port)" --tls-cert x
	assert_one_line_error mom-auth 64
}

@test "serve without a key pair exits 1 at once" {
	run --separate-stderr timeout "$TMO" mom-auth -d "$T/nokeys" serve --listen "127.0.0.1:$(free_port)"
	assert_one_line_error mom-auth 1
}

@test "serve stops cleanly on SIGTERM and on SIGINT (exit 0)" {
	start_auth
	run post -u alice:pw-alice
	assert_line --index 1 200
	# Not under run: wait only works in the shell that started the server.
	term_status "$AUTH_PID" || fail "exit status $? after SIGTERM"
	grep -q 'SIGTERM: stopping' "$T/auth.log"
	start_auth
	kill -INT "$AUTH_PID"
	for ((i = 0; i < 250; i++)); do kill -0 "$AUTH_PID" 2>/dev/null || break; sleep 0.02; done
	wait "$AUTH_PID" || fail "exit status $? after SIGINT"
	grep -q 'SIGINT: stopping' "$T/auth.log"
}

@test "serve answers the verifications under way before it stops" {
	start_auth --max-failures 100
	local i pids=()
	for i in $(seq 1 8); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time "$TMO" -u alice:pw-alice -X POST \
			"$AURL/v1/token" >"$T/stop.$i" 3>&- &
		pids+=($!)
	done
	# Once one token is out, the others are queued or being verified.
	wait_for 10 grep -q issued "$T/auth.log"
	term_status "$AUTH_PID" || fail "exit status $? after SIGTERM"
	wait "${pids[@]}"
	run cat "$T"/stop.*
	refute_output --partial 000
	assert_equal "$(grep -c 200 <<<"$output")" "$(grep -c issued "$T/auth.log")"
}

# make_cert: a self-signed P-256 certificate for localhost and 127.0.0.1
# in $T/tls.crt, its key in $T/tls.key.
make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$T/tls.key" -out "$T/tls.crt" -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
}

@test "serve --tls-cert/--tls-key issues tokens over HTTPS only" {
	make_cert
	local port
	port=$(free_port)
	bg mom-auth -d "$A" serve --listen "127.0.0.1:$port" --tls-cert "$T/tls.crt" \
		--tls-key "$T/tls.key" >"$T/auth.log" 2>&1
	AURL="https://localhost:$port"
	wait_for 10 curl -sf -o /dev/null --max-time 2 --cacert "$T/tls.crt" "$AURL/healthz"
	run post --cacert "$T/tls.crt" -u alice:pw-alice
	assert_line --index 1 200
	run claims "$(echo "${lines[0]}" | jq -r .token)"
	assert_success
	run --separate-stderr timeout "$TMO" mom-auth login -s "$AURL" -u alice --cafile "$T/tls.crt" <<<"pw-alice"
	assert_success
	run claims "$output"
	assert_success
	# The issuer's certificate is checked: not by the system's CAs.
	run --separate-stderr timeout "$TMO" mom-auth login -s "$AURL" -u alice <<<"pw-alice"
	assert_one_line_error mom-auth 77
	# No plain HTTP on the same port.
	run curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz"
	assert_output 000
}

@test "serve with unusable TLS files exits 64 and says which" {
	make_cert
	run --separate-stderr timeout "$TMO" mom-auth -d "$A" serve --listen "127.0.0.1:$(free_port)" \
		--tls-cert "$T/tls.crt" --tls-key "$T/tls.crt"
	assert_one_line_error mom-auth 64
	[[ "$stderr" == *tls.crt* ]]
	run --separate-stderr timeout "$TMO" mom-auth -d "$A" serve --listen "127.0.0.1:$(free_port)" \
		--tls-cert "$T/none.crt" --tls-key "$T/tls.key"
	assert_one_line_error mom-auth 64
}

# ---- login ----

@test "login prints a token from the issuer (password on stdin)" {
	start_auth
	run --separate-stderr timeout "$TMO" mom-auth login -s "$AURL" -u alice <<<"pw-alice"
	assert_success
	assert_equal "${#lines[@]}" 1
	assert_equal "$(claims "$output" | jq -r .sub)" alice
}

@test "a token from login lets mom-pub publish where the user may, and only there" {
	start_auth
	start_broker --auth-key "$A/mom-auth.pub"
	timeout "$TMO" mom-auth login -s "$AURL" -u alice <<<"pw-alice" >"$T/alice.jwt"
	run --separate-stderr pub --token-file "$T/alice.jwt" --create -q orders.eu -m hi
	assert_success
	run --separate-stderr pub --token-file "$T/alice.jwt" --create -q billing.x -m hi
	assert_one_line_error mom-pub 77
}

@test "login --password-file reads the first line" {
	start_auth
	printf 'pw-alice\nsecond line\n' >"$T/pw"
	run --separate-stderr timeout "$TMO" mom-auth login -s "$AURL/" -u alice --password-file "$T/pw"
	assert_success
	run claims "$output"
	assert_success
}

@test "login with a wrong password exits 77 with the issuer's reason" {
	start_auth
	run --separate-stderr timeout "$TMO" mom-auth login -s "$AURL" -u alice <<<"wrong"
	assert_one_line_error mom-auth 77
	assert_output ""
	assert_equal "${stderr_lines[0]}" "mom-auth: wrong user or password"
}

@test "login while locked out exits 77 and says when to retry" {
	start_auth --max-failures 1
	timeout "$TMO" mom-auth login -s "$AURL" -u alice <<<"wrong" 2>/dev/null || true
	run --separate-stderr timeout "$TMO" mom-auth login -s "$AURL" -u alice <<<"pw-alice"
	assert_one_line_error mom-auth 77
	assert_equal "${stderr_lines[0]}" "mom-auth: too many failed logins; retry after 60 s"
}

@test "login exits 69 when no issuer listens" {
	run --separate-stderr timeout "$TMO" mom-auth login -s "http://127.0.0.1:$(free_port)" -u alice <<<"pw"
	assert_one_line_error mom-auth 69
}

@test "login requires -u and an http(s) URL (64)" {
	run --separate-stderr mom-auth login <<<"pw"
	assert_usage_error mom-auth
	run --separate-stderr mom-auth login -u alice -s tcp://127.0.0.1:1 <<<"pw"
	assert_usage_error mom-auth
}

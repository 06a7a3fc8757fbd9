#!/usr/bin/env bats
# Tokens and permissions on the nng data plane: who may publish, consume,
# create, delete and purge, with tokens from mom-auth.

bats_require_minimum_version 1.5.0
load helpers

# Keys and users are made once (argon2 is slow on purpose); each test gets
# its own broker.
setup_file() {
	export A="$BATS_FILE_TMPDIR/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw-carol | mom-auth -d "$A" user add carol --pub 'orders.>' >/dev/null
	echo pw-bob | mom-auth -d "$A" user add bob --sub 'orders.>' >/dev/null
	echo pw-alice | mom-auth -d "$A" user add alice --pub 'orders.>' --sub 'orders.>' >/dev/null
	echo pw-root | mom-auth -d "$A" user add root --admin >/dev/null
	for u in carol bob alice root; do
		mom-auth -d "$A" token --user "$u" --ttl 1h >"$A/$u.jwt"
	done
}

setup() {
	T="$BATS_TEST_TMPDIR"
	cd "$T" || return 1
	start_broker --auth-key "$A/mom-auth.pub"
}

# as USER COMMAND...: run a client with USER's token.
as() {
	local u=$1
	shift
	MOM_TOKEN_FILE="$A/$u.jwt" timeout "$TMO" "$@"
}

@test "a broker with --auth-key refuses a request without a token (77, says why)" {
	run -77 --separate-stderr timeout "$TMO" mom-pub -q orders.x --create -m hi
	assert_output ""
	assert_equal "$stderr" "mom-pub: token required (--token-file, MOM_TOKEN)"
	# ping stays open: health checks need no credentials
	run -0 timeout "$TMO" mom-admin ping
}

@test "a publisher with mom.pub may create and publish, not consume" {
	run -0 as carol mom-pub --create -q orders.new -m 'one'
	run -77 --separate-stderr as carol mom-sub -q orders.new -C 1 -W 2
	assert_equal "$stderr" "mom-sub: permission denied: consume from queue 'orders.new'"
	run -0 as root mom-admin --json queue info orders.new
	assert_output --partial '"messages":1'
	assert_output --partial '"owner":"carol"'
}

@test "a consumer with mom.sub may consume, not publish" {
	as carol mom-pub --create -q orders.b -m 'for bob'
	run -77 --separate-stderr as bob mom-pub -q orders.b -m 'bob writes'
	assert_equal "$stderr" "mom-pub: permission denied: publish to queue 'orders.b'"
	run -0 as bob mom-sub -q orders.b -C 1 -W 5
	assert_output "for bob"
}

@test "names outside the token's patterns are refused; a stream stops at the first refused line" {
	as root mom-admin queue create billing
	as root mom-admin queue create orders.ok
	run -77 --separate-stderr as carol mom-pub -q billing -m 'no'
	assert_equal "$stderr" "mom-pub: permission denied: publish to queue 'billing'"
	# Each line's target is checked when it first comes (issue 12): the
	# line before the refused one is stored, nothing from it on.
	printf '%s\n' '{"queue":"orders.ok","payload":"a"}' '{"queue":"billing","payload":"b"}' \
	    '{"queue":"orders.ok","payload":"c"}' >"$T/in"
	run -77 --separate-stderr as carol mom-pub --jsonl <"$T/in"
	assert_equal "$stderr" "mom-pub: line 2: permission denied: publish to queue 'billing'"
	run -0 as root mom-admin --json queue info orders.ok
	assert_output --partial '"messages":1'
	run -0 as root mom-admin --json queue info billing
	assert_output --partial '"messages":0'
}

@test "only the creator or an admin may delete or purge a queue" {
	as carol mom-pub --create -q orders.mine -m 'x'
	run -77 --separate-stderr as alice mom-admin queue purge orders.mine
	assert_equal "$stderr" "mom-admin: permission denied: only the creator of queue 'orders.mine' or an admin may purge it"
	run -77 as alice mom-admin queue delete orders.mine
	run -0 as carol mom-admin queue purge orders.mine
	run -0 as carol mom-admin queue delete orders.mine
	as alice mom-pub --create -q orders.alices -m 'x'
	run -0 as root mom-admin queue delete orders.alices
	run -66 as root mom-admin queue info orders.alices
}

@test "naming a dead-letter queue needs publish rights on it (no injection into other queues)" {
	as root mom-admin queue create payroll
	# carol may publish to orders.> only: a queue whose dead letters go to
	# payroll would let her put messages there (fail one, it moves).
	run -77 --separate-stderr as carol mom-admin queue create orders.trojan --dead-letter payroll --max-deliver 1
	assert_equal "$stderr" "mom-admin: permission denied: dead-letter queue 'payroll' needs publish rights on it"
	run -66 as root mom-admin queue info orders.trojan
	run -0 as carol mom-admin queue create orders.work --dead-letter orders.dead --max-deliver 1
	run -0 as root mom-admin queue create jobs.anything --dead-letter payroll
}

@test "only the creator or an admin may delete a topic; creating needs a matching pattern" {
	run -0 as carol mom-admin topic create orders.events
	run -77 as alice mom-admin topic delete orders.events
	run -77 --separate-stderr as carol mom-admin topic create audit
	assert_equal "$stderr" "mom-admin: permission denied: create topic 'audit'"
	run -0 as carol mom-admin topic delete orders.events
}

@test "subscription patterns must lie inside the token's mom.sub patterns" {
	as root mom-admin topic create orders.eu
	as root mom-admin topic create audit
	run -77 --separate-stderr as bob mom-sub -t '>' -C 1 -W 1
	assert_equal "$stderr" "mom-sub: permission denied: subscribe to '>'"
	run -77 as bob mom-sub -t audit -C 1 -W 1
	MOM_TOKEN_FILE="$A/bob.jwt" bg mom-sub -t 'orders.*' -d bobs -C 1 -W 10 >"$T/bobs.out"
	local pid=${BG_PIDS[-1]} i rc=0
	for ((i = 0; i < 100; i++)); do
		as root mom-admin --json sub list | grep -q '"name":"bobs"' && break
		sleep 0.05
	done
	run -0 as carol mom-pub -t orders.eu -m 'to bob'
	wait "$pid" || rc=$?
	assert_equal "$rc" 0
	run -0 cat "$T/bobs.out"
	assert_output "to bob"
	# the durable subscription is bob's: alice may not delete it
	run -77 as alice mom-admin sub delete 'orders.*' bobs
	run -0 as bob mom-admin sub delete 'orders.*' bobs
}

@test "a garbage token is refused with a reason and exit 77" {
	run -77 --separate-stderr env MOM_TOKEN=not.a.token timeout "$TMO" mom-pub -q orders.x -m hi
	assert_equal "${stderr:0:9}" "mom-pub: "
	assert [ ${#stderr} -gt 9 ]
	run -64 --separate-stderr env MOM_TOKEN_FILE="$T/missing" timeout "$TMO" mom-pub -q orders.x -m hi
	assert_equal "$stderr" "mom-pub: cannot read the token file of MOM_TOKEN_FILE: No such file or directory"
}

# A token is a secret: an error names the option, never its value (which
# could be the token itself, given where a file was expected).
@test "a token given on the command line is never printed back" {
	local tok
	tok=$(cat "$A/carol.jwt")
	for prog in mom-pub mom-sub mom-admin; do
		# --token, --tok, --token=...: abbreviations of --token-file are refused
		for opt in --token --tok --token-f; do
			run -64 --separate-stderr timeout "$TMO" "$prog" "$opt" "$tok" -q orders.x -m hi
			[[ "$stderr" != *"$tok"* ]] || fail "$prog $opt printed the token: $stderr"
			[[ "$stderr" == "$prog: $opt is not an option: a token comes from a file (--token-file FILE, MOM_TOKEN_FILE) or MOM_TOKEN"* ]] ||
				fail "$prog $opt: $stderr"
		done
		run -64 --separate-stderr timeout "$TMO" "$prog" "--token=$tok" -q orders.x
		[[ "$stderr" != *"$tok"* ]] || fail "$prog --token=... printed the token: $stderr"
		# the whole option, with the token where the file name goes
		run --separate-stderr timeout "$TMO" "$prog" --token-file "$tok" -q orders.x -m hi
		[ "$status" -ne 0 ]
		[[ "$stderr" != *"$tok"* ]] || fail "$prog --token-file TOKEN printed the token: $stderr"
	done
}

@test "SIGHUP reloads the key file: tokens of a removed key stop working" {
	as carol mom-pub --create -q orders.h -m before
	local B="$T/other"
	mom-auth -d "$B" keygen >/dev/null
	echo pw | mom-auth -d "$B" user add carol --pub 'orders.>' >/dev/null
	mom-auth -d "$B" token --user carol >"$B/carol.jwt"
	# the broker's key file now holds the other key only
	cp "$A/mom-auth.pub" "$T/saved.pub"
	run -77 env MOM_TOKEN_FILE="$B/carol.jwt" timeout "$TMO" mom-pub -q orders.h -m x
	stop_pid "$BROKER_PID"
	cp "$B/mom-auth.pub" "$T/key.pub"
	start_broker --auth-key "$T/key.pub"
	run -0 env MOM_TOKEN_FILE="$B/carol.jwt" timeout "$TMO" mom-pub --create -q orders.h -m x
	cp "$T/saved.pub" "$T/key.pub"
	kill -HUP "$BROKER_PID"
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q 'reloaded 1 key' "$T/broker.log" && break
		sleep 0.05
	done
	run -77 env MOM_TOKEN_FILE="$B/carol.jwt" timeout "$TMO" mom-pub -q orders.h -m y
	run -0 as carol mom-pub -q orders.h -m z
}

@test "the broker refuses an unreadable or unusable key file (64)" {
	run -64 --separate-stderr mom-broker -D "$T/d2" -l "tcp://127.0.0.1:$(free_port)" --auth-key "$T/nope.pub"
	assert_equal "$stderr" "mom-broker: cannot read --auth-key $T/nope.pub: No such file or directory"
	echo "not a key" >"$T/bad.pub"
	run -64 mom-broker -D "$T/d3" -l "tcp://127.0.0.1:$(free_port)" --auth-key "$T/bad.pub"
	run -64 mom-broker -D "$T/d4" -l "tcp://127.0.0.1:$(free_port)" --auth-key "$A/mom-auth.pub" --no-auth
}

@test "with --auth-key the broker may listen beyond loopback" {
	local port
	port=$(free_port)
	bg mom-broker -D "$T/d5" -l "tcp://0.0.0.0:$port" --auth-key "$A/mom-auth.pub"
	run -0 wait_ping "tcp://127.0.0.1:$port"
}

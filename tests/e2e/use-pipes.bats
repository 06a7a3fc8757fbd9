#!/usr/bin/env bats
# Pipelines as a shell user builds them (issue 12, items 2, 12 and 13):
# nothing is lost when a publisher cannot publish or a reader goes away,
# worker stdin ends in a newline on request, mom-auth verify takes the
# token it is given, and long runs show progress on request.

bats_require_minimum_version 1.5.0
load helpers

# fill QUEUE N SIZE: N messages of SIZE bytes each (a line number, padded).
fill() {
	python3 -c 'import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
for i in range(1, n + 1):
    s = str(i)
    sys.stdout.write(s + "x" * (size - len(s)) + "\n")' "$2" "$3" | pub -q "$1" -l
}

# settled QUEUE N: nothing of QUEUE is in flight and N messages are ready.
settled() { [ "$(admin --json queue info "$1" | jq -r '"\(.in_flight) \(.ready)"')" = "0 $2" ]; }

@test "mom-sub --jsonl | mom-pub -q missing --jsonl leaves every message of the source in place" {
	start_broker
	qcreate src
	fill src 1000 100
	run -66 --separate-stderr timeout "$TMO" bash -c \
	    'mom-sub -q src --jsonl | mom-pub -q missing --jsonl; exit ${PIPESTATUS[1]}'
	[[ "$stderr" == *"no such queue 'missing'"* ]] || fail "$stderr"
	wait_for 10 settled src 1000 || fail "src: $(admin --json queue info src)"
}

@test "mom-pub checks its target before it reads any input (66 at once, stdin never read)" {
	start_broker
	mkfifo "$T/in"
	# A writer that never writes: a publisher that reads first would hang.
	exec 5<>"$T/in"
	run -66 --separate-stderr timeout 5 mom-pub -q missing -l <"$T/in"
	assert_equal "$stderr" "mom-pub: no such queue 'missing'"
	run -66 --separate-stderr timeout 5 mom-pub -t nosuch --jsonl <"$T/in"
	assert_equal "$stderr" "mom-pub: no such topic 'nosuch'"
	run -66 --separate-stderr timeout 5 mom-pub -q missing <"$T/in"
	assert_equal "$stderr" "mom-pub: no such queue 'missing'"
	exec 5>&-
}

@test "mom-pub --jsonl checks a per-line target when it first sees it: what came before is stored" {
	start_broker
	qcreate a
	printf '%s\n' '{"queue":"a","payload":"1"}' '{"queue":"a","payload":"2"}' \
	    '{"queue":"missing","payload":"3"}' '{"queue":"a","payload":"4"}' >"$T/in"
	run -66 --separate-stderr pub --jsonl <"$T/in"
	assert_equal "$stderr" "mom-pub: line 3: no such queue 'missing'"
	run -0 sub -q a -e
	assert_output $'1\n2'
}

@test "mom-sub | head -n 1 loses at most what head read" {
	start_broker
	qcreate src
	# 2,000 messages of 200 bytes: a batch of 256 fits in a pipe, and head
	# reads 8 KiB, at most 41 of them.
	fill src 2000 200
	run -0 timeout "$TMO" bash -c 'mom-sub -q src | head -n 1'
	assert_output --regexp '^1x+$'
	wait_for 10 bash -c "[ \"\$(mom-admin --json queue info src | jq -r .in_flight)\" = 0 ]"
	ready=$(qfield src ready)
	echo "# lost $((2000 - ready))" >&3
	((2000 - ready <= 41)) || fail "$((2000 - ready)) messages lost"
}

@test "a durable subscription through a pipe: head -n 1 leaves what it did not read" {
	start_broker
	tcreate ev
	sub -t ev -d keep -e
	python3 -c 'import sys
for i in range(1, 2001):
    s = str(i)
    sys.stdout.write(s + "x" * (200 - len(s)) + "\n")' | pub -t ev -l
	run -0 timeout "$TMO" bash -c 'mom-sub -t ev -d keep | head -n 1'
	assert_output --regexp '^1x+$'
	run -0 sub -t ev -d keep -e
	echo "# lost $((2000 - ${#lines[@]}))" >&3
	((2000 - ${#lines[@]} <= 41)) || fail "$((2000 - ${#lines[@]})) messages lost"
}

@test "a reader that goes away without reading gets nothing acknowledged" {
	start_broker
	qcreate src
	fill src 5 10
	mkfifo "$T/out"
	exec 5<>"$T/out"
	# mom-sub must not inherit the reading end (fd 5).
	bg mom-sub -q src -C 5 >"$T/out" 5>&-
	wait_for 10 qfield_is src in_flight 5 || fail "$(admin --json queue info src)"
	sleep 0.5
	exec 5>&-
	wait_for 10 settled src 5 || fail "src: $(admin --json queue info src)"
}

@test "what waits unread in the pipe keeps its lease; what was read is acknowledged" {
	start_broker
	qcreate slow --ack-wait 2s
	fill slow 3 10
	bg bash -c "mom-sub -q slow -C 3 | (sleep 5; cat >'$T/out')"
	sleep 3.5
	# Past the ack wait: had the leases lapsed, another consumer would get them.
	run -75 sub -q slow -W 1
	assert_output ""
	wait_for 15 test -s "$T/out"
	wait_for 10 settled slow 0 || fail "slow: $(admin --json queue info slow)"
	assert_equal "$(wc -l <"$T/out")" 3
}

@test "mom-sub --newline ends each worker's stdin with a newline: bc answers" {
	start_broker
	qcreate calc
	pub -q calc -m '6*7'
	pub -q calc -m $'1+1\n'
	run -0 sub -q calc -C 2 --newline -- bc
	assert_output $'42\n2'
	run --separate-stderr sub -q calc -C 1 --newline
	assert_usage_error mom-sub
}

@test "mom-auth verify takes the token on stdin before MOM_TOKEN" {
	A="$T/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw | mom-auth -d "$A" user add ann --pub 'a.>' >/dev/null
	echo pw | mom-auth -d "$A" user add ben --pub 'b.>' >/dev/null
	mom-auth -d "$A" token --user ann --ttl 1h >"$T/ann.jwt"
	mom-auth -d "$A" token --user ben --ttl 1h >"$T/ben.jwt"
	MOM_TOKEN=$(cat "$T/ann.jwt") run -0 --separate-stderr mom-auth -d "$A" verify <"$T/ben.jwt"
	assert_output --partial '"sub":"ben"'
	MOM_TOKEN_FILE="$T/ann.jwt" run -0 --separate-stderr mom-auth -d "$A" verify "$(cat "$T/ben.jwt")"
	assert_output --partial '"sub":"ben"'
	# An empty stdin is no token: the environment's is used.
	MOM_TOKEN=$(cat "$T/ann.jwt") run -0 --separate-stderr mom-auth -d "$A" verify </dev/null
	assert_output --partial '"sub":"ann"'
}

@test "mom-pub -l --progress and mom-sub -C --progress print progress on stderr" {
	start_broker
	qcreate p
	seq 1 20000 >"$T/in"
	run -0 --separate-stderr pub -q p -l --progress <"$T/in"
	[[ "$stderr" =~ 20000\ messages ]] || fail "$stderr"
	run -0 --separate-stderr sub -q p -C 20000 --progress
	[[ "$stderr" =~ 20000/20000\ messages ]] || fail "$stderr"
	assert_equal "${#lines[@]}" 20000
}

@test "without --progress, nothing is printed on a stderr that is not a terminal" {
	start_broker
	qcreate p
	seq 1 20000 >"$T/in"
	run -0 --separate-stderr pub -q p -l <"$T/in"
	assert_equal "$stderr" ""
	run -0 --separate-stderr sub -q p -C 20000
	assert_equal "$stderr" ""
}

@test "mom-pub without publish permission fails with 77 before it reads (mom-sub's messages stay)" {
	A="$T/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw | mom-auth -d "$A" user add root --admin >/dev/null
	echo pw | mom-auth -d "$A" user add reader --sub 'src' >/dev/null
	mom-auth -d "$A" token --user root --ttl 1h >"$T/root.jwt"
	mom-auth -d "$A" token --user reader --ttl 1h >"$T/reader.jwt"
	start_broker --auth-key "$A/mom-auth.pub"
	MOM_TOKEN_FILE="$T/root.jwt" admin queue create src
	MOM_TOKEN_FILE="$T/root.jwt" admin queue create dst
	seq 1 500 | MOM_TOKEN_FILE="$T/root.jwt" pub -q src -l
	export MOM_TOKEN_FILE="$T/reader.jwt"
	run -77 --separate-stderr timeout "$TMO" bash -c \
	    'mom-sub -q src --jsonl | mom-pub -q dst --jsonl; exit ${PIPESTATUS[1]}'
	assert_equal "$stderr" "mom-pub: permission denied: publish to queue 'dst'"
	export MOM_TOKEN_FILE="$T/root.jwt"
	wait_for 10 settled src 500 || fail "src: $(admin --json queue info src)"
}

@test "mom-pub -r checks its target before it reads the request from stdin" {
	start_broker
	mkfifo "$T/in"
	exec 5<>"$T/in"
	run -66 --separate-stderr timeout 5 mom-pub -r -q missing -W 3 <"$T/in"
	assert_equal "$stderr" "mom-pub: no such queue 'missing'"
	exec 5>&-
	qcreate calc
	bg mom-sub -q calc --newline -- bc
	run -0 --separate-stderr bash -c "echo '6*7' | timeout $TMO mom-pub -r -q calc -W 10"
	assert_output 42
}

#!/usr/bin/env bats
# Output that fails (issue 11, item 10): a client whose standard output
# cannot be written says so in one line and exits 74 (EX_IOERR), never 0;
# mom-sub gives back what it did not write.  A reader that went away
# (EPIPE) stays mom-sub's documented quiet exit 0.  /dev/full fails every
# write with ENOSPC; stdio programs see it only at their final flush.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	export A="$BATS_FILE_TMPDIR/auth"
	mom-auth -d "$A" keygen >/dev/null
	echo pw-root | mom-auth -d "$A" user add root --admin >/dev/null
	mom-auth -d "$A" token --user root --ttl 1h >"$A/root.jwt"
}

to_full() { timeout "$TMO" "$@" >/dev/full; }

# full_fails PROG ARGS...: PROG ARGS >/dev/full exits 74 with one line
# "PROG: standard output: No space left on device".
full_fails() {
	local prog=$1
	run --separate-stderr to_full "$@"
	assert_equal "$status" 74
	assert_equal "${#stderr_lines[@]}" 1
	assert_equal "${stderr_lines[0]}" "$prog: standard output: No space left on device"
}

# closed_pipe PROG ARGS...: run PROG with stdout a pipe whose reader is
# already gone (EPIPE on the first write, no race with a reader).
closed_pipe() {
	timeout "$TMO" python3 -c '
import os, sys
r, w = os.pipe()
os.close(r)
os.dup2(w, 1)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

@test "mom-sub >/dev/full: 74 and one line for every output format; every message given back" {
	start_broker
	qcreate jobs
	printf 'a\nb\nc\n' | pub -q jobs -l
	local fmt
	for fmt in "" -0 -N --jsonl "-F %i:%p\n"; do
		[ "$fmt" = -N ] && continue # -N writes nothing: nothing can fail
		# shellcheck disable=SC2086
		full_fails mom-sub -q jobs -C 3 $fmt
		assert_equal "$(qfield jobs ready)" 3
		assert_equal "$(qfield jobs acked)" 0
	done
	full_fails mom-sub -q jobs -e
	full_fails mom-sub -q jobs -W 5
	assert_equal "$(qfield jobs ready)" 3
	assert_equal "$(qfield jobs acked)" 0
	# The messages given back are all there for the next consumer.
	run -0 sub -q jobs -e
	assert_output "$(printf 'a\nb\nc')"
}

@test "mom-sub -N >/dev/full consumes: it writes nothing" {
	start_broker
	qcreate jobs
	pub -q jobs -m x
	run -0 to_full mom-sub -q jobs -C 1 -N
	assert_equal "$(qfield jobs acked)" 1
}

@test "mom-sub on a pipe whose reader is gone: exit 0, quiet, the batch given back (documented)" {
	start_broker
	qcreate jobs
	printf 'a\nb\n' | pub -q jobs -l
	run --separate-stderr closed_pipe mom-sub -q jobs -C 2
	assert_equal "$status" 0
	assert_equal "$stderr" ""
	assert_equal "$(qfield jobs ready)" 2
	assert_equal "$(qfield jobs acked)" 0
}

@test "mom-sub -t with a durable subscription >/dev/full: 74, and the subscription resumes at the unwritten message" {
	start_broker
	tcreate news
	run -0 sub -t news -d keep -e # the subscription starts here
	pub -t news -m first
	pub -t news -m second
	full_fails mom-sub -t news -d keep -C 2
	# (messages given back may come again in another order)
	run -0 sub -t news -d keep -C 2
	assert_equal "$(sort <<<"$output")" "$(printf 'first\nsecond')"
}

@test "mom-pub -r >/dev/full: 74 and one line" {
	start_broker
	qcreate calc
	bg mom-sub -q calc -C 1 -- echo the-answer
	full_fails mom-pub -q calc -r -W 10 -m question
}

@test "mom-admin list, info, stats, ping and --json >/dev/full: 74 and one line" {
	start_broker
	qcreate jobs
	full_fails mom-admin queue list
	full_fails mom-admin queue info jobs
	full_fails mom-admin --json queue list
	full_fails mom-admin stats
	full_fails mom-admin stats --prom
	full_fails mom-admin ping
}

@test "mom-admin over HTTP >/dev/full: 74 and one line" {
	local hp
	hp=$(free_port)
	start_broker --http "127.0.0.1:$hp"
	full_fails mom-admin -s "http://127.0.0.1:$hp" queue list
}

@test "mom-auth token, user list and verify >/dev/full: 74 and one line" {
	full_fails mom-auth -d "$A" token --user root --ttl 1h
	full_fails mom-auth -d "$A" user list
	full_fails mom-auth -d "$A" verify --token-file "$A/root.jwt"
}

@test "every program's --version and -h >/dev/full: 74 and one line" {
	local p
	for p in mom-pub mom-sub mom-admin mom-auth mom-broker; do
		full_fails "$p" --version
		full_fails "$p" -h
	done
}

@test "output that works still exits 0 (the check at exit adds nothing)" {
	start_broker
	qcreate jobs
	pub -q jobs -m x
	run -0 sub -q jobs -C 1
	assert_output x
	run -0 admin queue list
	run -0 mom-auth -d "$A" verify --token-file "$A/root.jwt"
	# a closed stdout that nothing was written to is no error
	run -0 timeout "$TMO" mom-admin queue create other >&-
}

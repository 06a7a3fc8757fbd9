#!/usr/bin/env bats
# cluster-local.bats: `make cluster` (dist/cluster/local.sh), the quick local
# cluster of README: the commands it prints work as printed, a second one on
# the same ports fails with the node's reason, and SIGTERM stops all three.

load helpers
bats_require_minimum_version 1.5.0

# free_base: a BASE for local.sh whose nine ports (BASE+10..BASE+32) are free.
free_base() {
	python3 -c '
import random, socket
for _ in range(50):
    base = random.randrange(20000, 60000, 100)
    socks = []
    try:
        for i in (1, 2, 3):
            for k in (0, 1, 2):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + 10 * i + k))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break'
}

# start_local DATA: local.sh in the background, on BASE; its pid in LOCAL_PID.
start_local() {
	BIN="$E2E_ROOT/bin" DATA="$1" BASE="$BASE" sh "$E2E_ROOT/dist/cluster/local.sh" \
		>"$T/local.out" 2>"$T/local.err" 3>&- &
	LOCAL_PID=$!
}

teardown() {
	# The script stops its brokers on SIGTERM (never KILL it: they would stay).
	if [ -n "${LOCAL_PID:-}" ]; then
		stop_pid "$LOCAL_PID" TERM
	fi
	tmp_release
}

@test "make cluster: the printed commands work as printed, a second one on the same ports exits 1, SIGTERM stops all three" {
	local k st=0 pub sub adm
	BASE=$(free_base)
	[ -n "$BASE" ] || skip "no nine free ports"
	start_local "$T/mom-data"
	for ((k = 0; k < 200; k++)); do
		grep -q 'Ctrl-C stops the three nodes' "$T/local.out" && break
		kill -0 "$LOCAL_PID" || fail "local.sh exited: $(cat "$T/local.err")"
		sleep 0.1
	done
	grep -q 'Ctrl-C stops the three nodes' "$T/local.out" || fail "no banner: $(cat "$T/local.out" "$T/local.err")"
	pub=$(grep -m1 '/mom-pub ' "$T/local.out")
	sub=$(grep -m1 '/mom-sub ' "$T/local.out")
	adm=$(grep -m1 '/mom-admin ' "$T/local.out")
	[[ $pub =~ :$((BASE + 10)) ]] && [[ $sub =~ :$((BASE + 30)) ]] && [[ $adm =~ :$((BASE + 20)) ]]
	# As a user would paste them (a leader may still be being elected: -W).
	run -0 timeout 30 sh -c "$pub -W 20"
	run -0 timeout 30 sh -c "$sub -W 20"
	assert_output 'hello, cluster'
	run -0 timeout 30 sh -c "$adm"
	[ "$(grep -c leader <<<"$output")" = 1 ] || fail "$output"
	[ "$(grep -c follower <<<"$output")" = 2 ] || fail "$output"
	# The MOM_URL it prints lists the three nodes.
	grep -q "export MOM_URL=tcp://127.0.0.1:$((BASE + 10)),tcp://127.0.0.1:$((BASE + 20)),tcp://127.0.0.1:$((BASE + 30))$" "$T/local.out"

	# A second cluster on the same ports: exit 1 with the node's own reason.
	run -1 --separate-stderr timeout 30 env BIN="$E2E_ROOT/bin" DATA="$T/other" BASE="$BASE" \
		sh "$E2E_ROOT/dist/cluster/local.sh"
	[[ $stderr =~ "local.sh: node 1 did not start" ]] || fail "stderr: $stderr"
	[[ $stderr =~ "Address in use" ]] || fail "stderr: $stderr"
	[[ ! $output =~ "A three-node cluster" ]] || fail "claimed a cluster: $output"
	# The first one still serves.
	run -0 timeout 30 mom-admin -s "tcp://127.0.0.1:$((BASE + 20))" -W 10 ping

	# SIGTERM: the script exits 0 and its three brokers are gone.
	kill -TERM "$LOCAL_PID"
	wait "$LOCAL_PID" || st=$?
	LOCAL_PID=
	assert_equal "$st" 0
	for k in 10 20 30; do
		run -69 timeout 30 mom-admin -s "tcp://127.0.0.1:$((BASE + k))" -W 1 ping
	done
}

@test "make cluster without a build, or with a bad BASE, says so" {
	run -1 --separate-stderr env BIN="$T/nowhere" DATA="$T/d" sh "$E2E_ROOT/dist/cluster/local.sh"
	assert_equal "$stderr" "local.sh: no $T/nowhere/mom-broker: run make first (or set BIN)"
	run -64 --separate-stderr env BIN="$E2E_ROOT/bin" DATA="$T/d" BASE=74x sh "$E2E_ROOT/dist/cluster/local.sh"
	assert_equal "$stderr" "local.sh: BASE must be a port number, not '74x'"
	[ ! -e "$T/d" ]
}

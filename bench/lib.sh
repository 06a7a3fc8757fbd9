# shellcheck shell=bash
# bench/lib.sh: helpers for bench/run (sourced, not executed).
# Every process started here is tracked by PID and stopped by PID; every wait is bounded.

# ---------------------------------------------------------------- logging
# RESULTS (set by bench/run) is the results file; everything logged goes there too.
log() {
	printf '%s\n' "$*"
	if [[ -n ${RESULTS:-} ]]; then printf '%s\n' "$*" >>"$RESULTS"; fi
}

# Print a command exactly as it is about to run (shell-quoted), and remember it.
# Usage: show CMD ARG... [-- REDIRECTION-TEXT]
CMDS_SEEN=()
show() {
	local line='' a redir=''
	while (($#)); do
		if [[ $1 == -- ]]; then
			shift
			redir=" $*"
			break
		fi
		if [[ $1 =~ ^[][A-Za-z0-9_./:=,+@%^-]+$ ]]; then
			a=$1
		else
			a="'${1//\'/\'\\\'\'}'"
		fi
		line+="${line:+ }$a"
		shift
	done
	line+="$redir"
	log "  \$ $line"
	CMDS_SEEN+=("$line")
}

die() {
	local msg="bench/run: FAILED: $*"
	printf '%s\n' "$msg" >&2
	if [[ -n ${RESULTS:-} ]]; then printf '%s\n' "$msg" >>"$RESULTS"; fi
	exit 1
}

# Show the last lines of a file (a server log or a client's stderr) on stderr.
tail_file() {
	local f=$1 n=${2:-15}
	if [[ -s $f ]]; then
		printf -- '--- last lines of %s ---\n' "$f" >&2
		tail -n "$n" "$f" >&2
		if [[ -n ${RESULTS:-} ]]; then
			printf -- '--- last lines of %s ---\n' "$f" >>"$RESULTS"
			tail -n "$n" "$f" >>"$RESULTS"
		fi
	fi
}

# ---------------------------------------------------------------- processes
PIDS=() # every long-lived background process we started (servers, feeders)

track() { PIDS+=("$1"); }

untrack() {
	local p keep=()
	for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# stop_pid PID [GRACE_SECONDS]: SIGTERM, wait at most GRACE seconds, then SIGKILL.
# Returns the exit status of the process (or 137 when it had to be killed).
stop_pid() {
	local pid=$1 grace=${2:-10} i rc=0
	untrack "$pid"
	kill -0 "$pid" 2>/dev/null || {
		wait "$pid" 2>/dev/null || rc=$?
		return "$rc"
	}
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < grace * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		printf 'bench/run: PID %s did not stop within %s s: SIGKILL\n' "$pid" "$grace" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

cleanup_all() {
	local p
	for p in "${PIDS[@]}"; do stop_pid "$p" 5 || true; done
}

# A free TCP port on 127.0.0.1 (the kernel picks it; tiny race until the server binds it).
pick_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# rss_kb PID: VmRSS of a process in kB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------- arithmetic
calc() { awk "BEGIN { printf \"%.${2:-3}f\", $1 }"; }

# median of the arguments (numbers); empty when there are none.
median() {
	(($#)) || return 0
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# json_get FILE PYTHON-EXPR: evaluate an expression over the parsed JSON document `d`.
json_get() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# wait_bounded PID SECONDS: wait for a background child to exit on its own, at most SECONDS;
# after that it is stopped (SIGTERM, then SIGKILL). Returns its exit status (124 when it had to be stopped).
wait_bounded() {
	local pid=$1 secs=$2 rc=0 deadline
	deadline=$(calc "$EPOCHREALTIME + $secs" 6)
	while kill -0 "$pid" 2>/dev/null; do
		if awk -v n="$EPOCHREALTIME" -v d="$deadline" 'BEGIN { exit !(n > d) }'; then
			stop_pid "$pid" 5 || true
			return 124
		fi
		sleep 0.05
	done
	untrack "$pid"
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

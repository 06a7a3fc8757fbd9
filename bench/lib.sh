# shellcheck shell=bash
# bench/lib.sh: helpers for bench/run and bench/recovery (sourced, not executed).
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
	local msg="${PROG:-bench/run}: FAILED: $*"
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
		printf '%s: PID %s did not stop within %s s: SIGKILL\n' "${PROG:-bench/run}" "$pid" "$grace" >&2
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

# ---------------------------------------------------------------- disk, caches
# disk_base CANDIDATE...: the first candidate directory whose file system keeps data on a disk
# (not tmpfs or ramfs), created if needed; dies when there is none. Data directories of a
# broker that fsyncs belong on a real disk: on tmpfs an fdatasync costs nothing.
disk_base() {
	local d t
	for d in "$@"; do
		[[ -n $d ]] || continue
		mkdir -p "$d" 2>/dev/null || continue
		t=$(stat -f -c %T "$d" 2>/dev/null) || continue
		case $t in
		tmpfs | ramfs) continue ;;
		esac
		(cd "$d" && pwd)
		return 0
	done
	die "none of $* is on a disk (all tmpfs/ramfs): set TMPDIR to a directory on a disk"
}

# fs_desc DIR: "DEVICE TYPE (MOUNTPOINT)" of the file system holding DIR, from df -T.
fs_desc() { df -T "$1" | awk 'NR == 2 { printf "%s %s (mounted on %s, %.0f GB free)", $1, $2, $7, $5 / 1048576 }'; }

# drop_caches: write back and drop the page cache (needs root, or sudo without a password).
# Returns 0 when the caches were dropped, 1 when that is not possible here.
drop_caches() {
	sync
	if [[ -w /proc/sys/vm/drop_caches ]] && { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		return 0
	fi
	if ((EUID != 0)) && command -v sudo >/dev/null &&
		timeout 10 sudo -n sh -c 'echo 3 > /proc/sys/vm/drop_caches' 2>/dev/null; then
		return 0
	fi
	return 1
}

# ---------------------------------------------------------------- fsync counting with perf
# The broker's own counter (stats log_syncs) is the first choice; perf counts the fdatasync and
# fsync system calls of the broker's threads (tracepoints, no ptrace: a few ns per system call).
# MOM_BENCH_PERF=0 turns it off. PERF_WHY says how fsyncs are counted (or why perf cannot).
# shellcheck disable=SC2034 # PERF_WHY is for the caller
PERF_OK=0
PERF_WHY=''
PERF_EVENTS=syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync
perf_check() {
	if [[ ${MOM_BENCH_PERF:-1} == 0 ]]; then
		PERF_WHY='off (MOM_BENCH_PERF=0)'
		return 0
	fi
	if ! command -v perf >/dev/null; then
		PERF_WHY='perf not installed (apt-get install linux-perf)'
		return 0
	fi
	if timeout 20 perf stat -x, -e "$PERF_EVENTS" -o "$TMP/perf-check.txt" -- true >/dev/null 2>&1 &&
		grep -q '^[0-9]*,,syscalls:sys_enter_fdatasync' "$TMP/perf-check.txt"; then
		PERF_OK=1
		PERF_WHY='perf stat -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p BROKER_PID'
	else
		# shellcheck disable=SC2034 # for the caller
		PERF_WHY='perf cannot count syscall tracepoints here (needs root or kernel.perf_event_paranoid=-1, and tracefs)'
	fi
}

# perf_attach PID OUTFILE: count PID's fsyncs until perf_detach; sets PERF_PID. perf -I prints a
# line every 100 ms: the first one proves it is attached (bounded wait).
PERF_PID=''
perf_attach() {
	local pid=$1 out=$2 i
	PERF_PID=''
	((PERF_OK)) || return 0
	rm -f "$out"
	timeout 900 perf stat -I 100 -x, -e "$PERF_EVENTS" -p "$pid" -o "$out" </dev/null >/dev/null 2>&1 &
	PERF_PID=$!
	track "$PERF_PID"
	for ((i = 0; i < 250; i++)); do
		grep -q sys_enter_fdatasync "$out" 2>/dev/null && return 0
		kill -0 "$PERF_PID" 2>/dev/null || break
		sleep 0.02
	done
	log "  warning: perf stat did not attach to PID $pid; no perf fsync count for this run"
	stop_pid "$PERF_PID" 5 || true
	PERF_PID=''
}

# perf_detach OUTFILE: stop perf (SIGINT: it prints the last interval) and print the total count
# of fsyncs (empty when perf was not attached).
perf_detach() {
	local out=$1 i
	[[ -n $PERF_PID ]] || return 0
	sleep 0.3 # let the last full interval be printed
	kill -INT "$PERF_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$PERF_PID" 2>/dev/null || break
		sleep 0.05
	done
	stop_pid "$PERF_PID" 5 >/dev/null 2>&1 || true
	PERF_PID=''
	awk -F, '/sys_enter_f(data)?sync/ && $2 ~ /^[0-9]+$/ { s += $2 } END { printf "%d\n", s }' "$out"
}

# ---------------------------------------------------------------- mom
# ensure_mom: run `make` (unless MOM_BIN is set) and set MOM_BROKER, MOM_PUB, MOM_SUB, MOM_ADMIN.
ensure_mom() {
	if [[ -n ${MOM_BIN:-} ]]; then
		BIN=$MOM_BIN
	else
		BIN=$ROOT/bin
		show make -C "$ROOT"
		timeout 900 make -C "$ROOT" >"$TMP/make.log" 2>&1 || {
			tail_file "$TMP/make.log" 30
			die "make failed (build dependencies: see the install line in bench/README.md)"
		}
	fi
	MOM_BROKER=$BIN/mom-broker MOM_PUB=$BIN/mom-pub MOM_SUB=$BIN/mom-sub MOM_ADMIN=$BIN/mom-admin
	local p
	for p in "$MOM_BROKER" "$MOM_PUB" "$MOM_SUB" "$MOM_ADMIN"; do
		[[ -x $p ]] || die "$p missing or not executable"
	done
}

# start_mom_broker URL DATADIR LOGFILE [BROKER-OPTION...]: a broker without HTTP (no fixed port
# shared with other brokers on the machine); sets BROKER_PID once it answers `mom-admin ping`.
start_mom_broker() {
	local url=$1 dir=$2 logf=$3 deadline
	shift 3
	mkdir -p "$dir"
	show "$MOM_BROKER" -l "$url" -D "$dir" --http off "$@" -- "2>$logf &"
	"$MOM_BROKER" -l "$url" -D "$dir" --http off "$@" </dev/null >/dev/null 2>"$logf" &
	BROKER_PID=$!
	track "$BROKER_PID"
	deadline=$((SECONDS + T_START))
	while ((SECONDS <= deadline)); do
		if ! kill -0 "$BROKER_PID" 2>/dev/null; then
			tail_file "$logf"
			die "mom-broker exited during startup"
		fi
		if timeout 5 "$MOM_ADMIN" -s "$url" -W 2 ping >/dev/null 2>&1; then return 0; fi
		sleep 0.05
	done
	tail_file "$logf"
	die "mom-broker did not answer 'mom-admin ping' within $T_START s"
}

# stop_mom_broker LOGFILE [GRACE-SECONDS]
stop_mom_broker() {
	local logf=$1 grace=${2:-20} rc=0
	stop_pid "$BROKER_PID" "$grace" || rc=$?
	if ((rc != 0)); then
		tail_file "$logf"
		log "  warning: mom-broker exited with status $rc on SIGTERM"
	fi
}

mom_admin() { # mom_admin URL ARGS...: bounded, dies on failure
	local url=$1
	shift
	show "$MOM_ADMIN" -s "$url" "$@"
	timeout "$T_CLIENT" "$MOM_ADMIN" -s "$url" "$@" >"$TMP/admin.out" 2>"$TMP/admin.err" || {
		tail_file "$TMP/admin.err"
		die "mom-admin $* failed"
	}
}

# broker_stats URL FILE: the broker's counters (`mom-admin --json stats`) as JSON in FILE.
broker_stats() {
	timeout "$T_CLIENT" "$MOM_ADMIN" -s "$1" --json stats >"$2" 2>"$TMP/admin.err" || {
		tail_file "$TMP/admin.err"
		die "mom-admin --json stats failed"
	}
}

# stat_of FILE KEY: one counter of a broker_stats file; empty when the broker does not have it.
stat_of() { json_get "$1" "d.get('$2', '')"; }

# machine_load: how busy the machine is (other jobs): load average and the CPU pressure stall
# information (share of the last 60 s in which runnable tasks waited for a CPU).
machine_load() {
	local psi=''
	if [[ -r /proc/pressure/cpu ]]; then
		psi=$(awk '/^some/ { sub(/avg60=/, "", $3); printf ", CPU pressure (PSI some avg60) %s%%", $3 }' /proc/pressure/cpu)
	fi
	printf 'load average %s%s' "$(cut -d' ' -f1-3 /proc/loadavg)" "$psi"
}

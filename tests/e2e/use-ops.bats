#!/usr/bin/env bats
# Operating a broker (issue 12, items 9 to 11): /metrics as Prometheus
# reads it (promtool and tests/tools/promgroup.awk), systemd's readiness
# notification and make install, --help, configuration files.

bats_require_minimum_version 1.5.0
load helpers

PROMGROUP="$E2E_ROOT/tests/tools/promgroup.awk"

# start_http_broker [BROKER OPTIONS...]: both planes on free ports; sets H.
start_http_broker() {
	local hp
	hp=$(free_port)
	H="http://127.0.0.1:$hp"
	start_broker --http "127.0.0.1:$hp" "$@" || return 1
	wait_for 10 curl -sf -o /dev/null "$H/healthz" || fail "no HTTP API on $H"
}

# A broker with something in every kind of series: queues with traffic, a
# dead letter, topics, a durable and an ephemeral subscription, a parked poll.
busy_broker() {
	start_http_broker
	qcreate jobs --max-deliver 1 --dead-letter jobs.dead
	qcreate jobs.dead
	qcreate other
	seq 1 5 | pub -q jobs -l
	seq 1 3 | pub -q other -l
	sub -q jobs -C 2 >/dev/null
	tcreate orders.eu
	tcreate orders.us
	# A durable subscription made by a first run that waits for nothing.
	sub -t 'orders.>' -d audit -W 1s >/dev/null 2>&1 || true
	seq 1 4 | pub -t orders.eu -l
	pub -t orders.us -m x
	bg mom-sub -t 'orders.*' -W 20s
	qcreate idle
	bg curl -sS -o /dev/null "$H/v1/queues/idle/messages?wait=20"
	wait_for 5 bash -c "curl -sS '$H/metrics' | grep -q '^mom_subscription'"
}

@test "/metrics passes promtool check metrics" {
	command -v promtool >/dev/null || fail "promtool missing: make deps installs Debian's prometheus"
	busy_broker
	curl -sS "$H/metrics" >"$T/m"
	run promtool check metrics <"$T/m"
	echo "$output" >&2
	assert_success
	assert_output ""
}

@test "/metrics: each family's samples together, HELP and TYPE once, units seconds and bytes" {
	busy_broker
	curl -sS "$H/metrics" >"$T/m"
	run awk -f "$PROMGROUP" "$T/m"
	assert_success
	# The checker itself finds a split family, a counter without _total, a unit in ms.
	printf '# HELP a_total x\n# TYPE a_total counter\na_total 1\n# HELP b y\n# TYPE b gauge\nb 1\na_total 2\n' >"$T/split"
	run awk -f "$PROMGROUP" "$T/split"
	assert_failure
	assert_output --partial 'sample a_total inside family b'
	printf '# HELP a x\n# TYPE a counter\na 1\n# HELP up_ms y\n# TYPE up_ms gauge\nup_ms 1\n' >"$T/names"
	run awk -f "$PROMGROUP" "$T/names"
	assert_failure
	assert_line --partial 'counter a does not end in _total'
	assert_line --partial 'up_ms is not in seconds or bytes'
}

@test "/metrics: topic, subscription, fsync, log and raft series" {
	busy_broker
	curl -sS "$H/metrics" >"$T/m"
	for want in 'mom_topic_messages{topic="orders.eu"} 4' 'mom_topic_published_total{topic="orders.us"} 1' \
		'mom_subscription_messages{topic="orders.>",subscription="audit"} 5' \
		'mom_queue_dead_lettered_total{queue="jobs"} 0' 'mom_queue_messages{queue="jobs"} 3' \
		'mom_queue_bytes{queue="other"} 3' 'mom_published_total 13' 'mom_queues 4'; do
		grep -qxF "$want" "$T/m" || fail "no '$want' in: $(cat "$T/m")"
	done
	for re in '^mom_fsync_duration_seconds_count [1-9][0-9]*$' '^mom_fsync_duration_seconds_sum [0-9.e-]+$' \
		'^mom_log_entries_total [1-9][0-9]*$' '^mom_log_written_bytes_total [1-9][0-9]*$' \
		'^mom_log_last_index [1-9][0-9]*$' '^mom_uptime_seconds [0-9]+\.[0-9]+$' \
		'^mom_build_info\{version="[^"]+"\} 1$' '^mom_fsync_mode\{mode="always"\} 1$' \
		'^mom_subscription_in_flight\{topic="orders\.\*",subscription="[^"]+"\} [0-9]+$' \
		'^mom_http_connections_open [0-9]+$' '^mom_http_connections_accepted_total [1-9][0-9]*$' \
		'^mom_raft_role\{role="leader"\} 1$' '^mom_raft_role\{role="candidate"\} 0$' \
		'^mom_raft_term [1-9][0-9]*$' '^mom_raft_commit_index [1-9][0-9]*$' \
		'^mom_raft_applied_index [1-9][0-9]*$' '^mom_raft_elections_total 0$'; do
		grep -qE "$re" "$T/m" || fail "no line like '$re' in: $(cat "$T/m")"
	done
	! grep -E '^mom_[a-z_]*_ms[ {]' "$T/m"
}

# notify_listener SOCKET OUT: a stand-in for systemd: each datagram on the
# AF_UNIX socket SOCKET becomes a line of OUT (newlines as spaces); 60 s at most.
notify_listener() {
	bg python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.time() + 60
with open(sys.argv[2], "a") as out:
    while time.time() < end:
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        out.write(d.decode().replace("\n", " ") + "\n")
        out.flush()
' "$1" "$2"
	wait_for 5 test -S "$1" || fail "no listener on $1"
}

@test "Type=notify: READY=1 once serving, RELOADING=1 and READY=1 on SIGHUP, STOPPING=1 on SIGTERM" {
	notify_listener "$T/notify" "$T/notes"
	NOTIFY_SOCKET="$T/notify" start_broker
	wait_for 5 grep -q 'READY=1' "$T/notes" || fail "no READY=1: $(cat "$T/notes")"
	# READY=1 came after the broker could answer, and is the first word.
	head -n 1 "$T/notes" | grep -q '^READY=1'
	grep -q 'ready (version' "$T/broker.log"
	kill -HUP "$BROKER_PID"
	wait_for 5 bash -c "grep -c READY=1 '$T/notes' | grep -qx 2" || fail "$(cat "$T/notes")"
	sed -n 2p "$T/notes" | grep -q '^RELOADING=1'
	admin ping >/dev/null
	kill -TERM "$BROKER_PID"
	wait_for 10 grep -q '^STOPPING=1' "$T/notes" || fail "no STOPPING=1: $(cat "$T/notes")"
	wait "$BROKER_PID" || fail "exit status $?"
	BROKER_PID=
}

@test "a NOTIFY_SOCKET nobody listens on is logged, not fatal" {
	NOTIFY_SOCKET="$T/nobody" start_broker
	admin ping >/dev/null
	grep -q 'NOTIFY_SOCKET' "$T/broker.log" || fail "$(cat "$T/broker.log")"
}

@test "queue info and stats print durations under names without _ms" {
	start_broker
	qcreate jobs --ack-wait 30s --ttl 1h
	run --separate-stderr admin queue info jobs
	assert_success
	assert_line --regexp '^ack_wait +30s$'
	assert_line --regexp '^ttl +1h$'
	refute_line --regexp '_ms '
	run --separate-stderr admin --json queue info jobs
	echo "$output" | jq -e '.ack_wait_ms == 30000' >/dev/null
	run --separate-stderr admin stats
	assert_line --regexp '^uptime +[0-9]'
}

@test "a typo in a configuration file names the file and line, in one line, exit 64" {
	mkdir -p "$XDG_CONFIG_HOME/mom"
	local p f
	for p in mom-pub mom-sub mom-admin mom-auth; do
		f="$XDG_CONFIG_HOME/mom/$p"
		printf '# defaults\n\nsever tcp://127.0.0.1:1\n' >"$f"
		run --separate-stderr timeout "$TMO" "$p" --version
		assert_failure 64
		assert_equal "$stderr" "$p: $f:3: unknown option 'sever'"
		rm -f "$f"
	done
	printf 'http off\n\n# a comment\ndata-dir %s/d\nlisten tcp://127.0.0.1:1\nsnapshot-aftr 1M\n' "$T" >"$T/b.conf"
	run --separate-stderr timeout "$TMO" mom-broker -c "$T/b.conf"
	assert_failure 64
	assert_equal "$stderr" "mom-broker: $T/b.conf:6: unknown option 'snapshot-aftr'"
	# A bad value and a value for a flag name the line too.
	printf 'server tcp://127.0.0.1:1\nwait soon\n' >"$XDG_CONFIG_HOME/mom/mom-pub"
	run --separate-stderr timeout "$TMO" mom-pub -q a -m x
	assert_failure 64
	assert_regex "$stderr" "^mom-pub: $XDG_CONFIG_HOME/mom/mom-pub:2: .*soon"
	printf 'quiet=yes\n' >"$XDG_CONFIG_HOME/mom/mom-sub"
	run --separate-stderr timeout "$TMO" mom-sub -q a
	assert_failure 64
	assert_equal "$stderr" "mom-sub: $XDG_CONFIG_HOME/mom/mom-sub:1: option '--quiet' doesn't allow an argument"
}

@test "a single-value option twice in a configuration file: the later line wins; queue twice names the line" {
	mkdir -p "$XDG_CONFIG_HOME/mom"
	start_broker
	qcreate a
	printf 'server tcp://127.0.0.1:1\nserver %s\n' "$MOM_URL" >"$XDG_CONFIG_HOME/mom/mom-pub"
	run env -u MOM_URL timeout "$TMO" mom-pub -q a -m x
	assert_success
	printf 'queue a\ntopic b\n' >"$XDG_CONFIG_HOME/mom/mom-pub"
	run --separate-stderr timeout "$TMO" mom-pub -m x
	assert_failure 64
	assert_equal "$stderr" "mom-pub: $XDG_CONFIG_HOME/mom/mom-pub:2: give one of -q and -t, once"
}

@test "the command line wins over the configuration file, for every program" {
	mkdir -p "$XDG_CONFIG_HOME/mom"
	start_broker
	qcreate y
	printf 'server tcp://127.0.0.1:1\nqueue x\nwait 1s\n' >"$XDG_CONFIG_HOME/mom/mom-pub"
	pub -s "$MOM_URL" -q y -W 10s -m hi
	printf 'server tcp://127.0.0.1:1\nqueue x\nnull\n' >"$XDG_CONFIG_HOME/mom/mom-sub"
	run --separate-stderr sub -s "$MOM_URL" -q y -C 1 -W 5s --jsonl
	assert_success
	echo "$output" | jq -e '.payload == "hi"' >/dev/null
	printf 'server tcp://127.0.0.1:1\njson\n' >"$XDG_CONFIG_HOME/mom/mom-admin"
	run --separate-stderr admin -s "$MOM_URL" ping
	assert_success
	printf 'dir %s/nowhere\n' "$T" >"$XDG_CONFIG_HOME/mom/mom-auth"
	run --separate-stderr timeout "$TMO" mom-auth -d "$T/keys" keygen
	assert_success
	[ -f "$T/keys/mom-auth.key" ] && [ ! -e "$T/nowhere" ]
	# The broker: a file's data directory and HTTP address give way to -D and --http.
	stop_pid "$BROKER_PID"
	BROKER_PID=
	local hp
	hp=$(free_port)
	printf 'data-dir %s/d1\nhttp 127.0.0.1:1\n' "$T" >"$T/b.conf"
	start_broker -c "$T/b.conf" -D "$T/d2" --http "127.0.0.1:$hp"
	curl -sf "http://127.0.0.1:$hp/healthz" >/dev/null
	[ -d "$T/d2" ] && [ ! -e "$T/d1" ]
}

# options_of PROGRAM: every option the program's parser takes, one a line:
# "-x" for each letter of its optstring, "--name" for each long option of
# its getopt table (and the clients' shared ones, and mom-admin's verbs').
options_of() {
	local src="$E2E_ROOT/src/$1/options.c" files
	files=("$src")
	case $1 in mom-pub | mom-sub | mom-admin) files+=("$E2E_ROOT/src/libmom/cli.h") ;; esac
	grep -oE 'optstring\[\] = "[^"]*"' "$src" | sed -E 's/.*"(.*)"/\1/; s/[:]//g' | grep -oE '.' |
		sed 's/^/-/'
	grep -ohE '\{ "[a-z0-9-]+", (no|required|optional)_argument' "${files[@]}" |
		sed -E 's/\{ "([^"]+)".*/--\1/'
	if [ "$1" = mom-admin ]; then
		grep -oE '^\s*\{ "[a-z_]+", "[a-z_]+", "[a-z-]+"' "$E2E_ROOT/src/libmom/adminops.c" |
			awk -F'"' '{ print "--" $6 }'
	fi
}

@test "--help lists every option, one line each with what it does" {
	local p o re missing=""
	for p in mom-pub mom-sub mom-admin mom-auth mom-broker; do
		run --separate-stderr "$p" --help
		assert_success
		[ -z "$stderr" ]
		echo "$output" >"$T/$p.help"
		for o in $(options_of "$p" | sort -u); do
			# "  -q, --queue QUEUE    what it does", "  --ttl DURATION    ...", "  -N    ..."
			case $o in
			--*) re="^ +(-[[:alnum:]], )?${o}([ =][^ ]+)? {2,}[^ ]" ;;
			*) re="^ +${o}(, --[a-z0-9-]+)?([ =][^ ]+)? {2,}[^ ]" ;;
			esac
			grep -qE -- "$re" "$T/$p.help" || missing="$missing $p:$o"
		done
	done
	[ -z "$missing" ] || fail "not in --help:$missing"
}

@test "make install DESTDIR=... PREFIX=/usr: mom-broker in sbin, clients in bin, man pages, unit, completions" {
	run make -s -C "$E2E_ROOT" install DESTDIR="$T/root" PREFIX=/usr
	assert_success
	(cd "$T/root" && find . -type f | sort) >"$T/files"
	cat >"$T/want" <<'LIST'
./etc/mom/mom-broker.conf
./usr/bin/mom-admin
./usr/bin/mom-auth
./usr/bin/mom-pub
./usr/bin/mom-sub
./usr/lib/systemd/system/mom-broker.service
./usr/sbin/mom-broker
./usr/share/bash-completion/completions/mom-admin
./usr/share/bash-completion/completions/mom-auth
./usr/share/bash-completion/completions/mom-broker
./usr/share/bash-completion/completions/mom-pub
./usr/share/bash-completion/completions/mom-sub
./usr/share/man/man1/mom-admin.1
./usr/share/man/man1/mom-auth.1
./usr/share/man/man1/mom-pub.1
./usr/share/man/man1/mom-sub.1
./usr/share/man/man5/mom-broker.conf.5
./usr/share/man/man7/mom.7
./usr/share/man/man8/mom-broker.8
LIST
	run diff "$T/want" "$T/files"
	assert_success
	[ -x "$T/root/usr/sbin/mom-broker" ] && [ -x "$T/root/usr/bin/mom-pub" ]
	local unit="$T/root/usr/lib/systemd/system/mom-broker.service"
	grep -qx 'Type=notify' "$unit"
	grep -qx 'ExecStart=/usr/sbin/mom-broker -D /var/lib/mom -c /etc/mom/mom-broker.conf' "$unit"
	grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$unit"
	! grep -q '@' "$unit"
	# The installed broker starts with the installed file, which is all comments.
	run --separate-stderr timeout "$TMO" "$T/root/usr/sbin/mom-broker" -c "$T/root/etc/mom/mom-broker.conf" --version
	assert_success
	if command -v systemd-analyze >/dev/null; then
		sed "s|/usr/sbin/|$T/root/usr/sbin/|" "$unit" >"$T/mom-broker.service"
		run systemd-analyze verify --man=no "$T/mom-broker.service"
		assert_success
	fi
	# A second install keeps an edited file.
	echo 'fsync interval' >>"$T/root/etc/mom/mom-broker.conf"
	make -s -C "$E2E_ROOT" install DESTDIR="$T/root" PREFIX=/usr >/dev/null
	grep -qx 'fsync interval' "$T/root/etc/mom/mom-broker.conf"
}

# complete WORDS...: what the installed bash completion offers for the last word.
complete_words() {
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_mom; printf "%s\n" "${COMPREPLY[@]}"' _ "$E2E_ROOT/dist/completion/mom.bash" "$@"
}

@test "bash completion: options from --help, mom-admin's nouns and verbs, files" {
	run complete_words mom-pub --que
	assert_output --queue
	run complete_words mom-broker --http-max
	assert_output --http-max-conns
	run complete_words mom-sub -t x --fr
	assert_output --from
	run complete_words mom-sub --from f
	assert_output first
	run complete_words mom-admin -s tcp://h:1 q
	assert_output queue
	run complete_words mom-admin queue cr
	assert_output create
	run complete_words mom-admin cluster tr
	assert_output transfer
	run complete_words mom-auth user a
	assert_output add
	run complete_words mom-auth clu
	assert_output cluster-key
	touch "$T/cluster.key"
	run complete_words mom-auth cluster-key "$T/clu"
	assert_output "$T/cluster.key"
	touch "$T/tok.jwt"
	run complete_words mom-pub --token-file "$T/tok"
	assert_output "$T/tok.jwt"
}

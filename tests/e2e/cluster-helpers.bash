# cluster-helpers.bash: three (or more) brokers on loopback forming a cluster.
#
# start_cluster N [BROKER OPTIONS...]: N nodes (ids 1..N) on free ports, each
# with its own data directory $T/nN, client URL NODE_URL[i], cluster URL
# CLUSTER_URL[i], pid NODE_PID[i], log $T/nN.log, all bootstrapping together
# with the key $T/cluster.key.  Waits until one leads.  MOM_URL lists every
# node.  stop_cluster (from teardown) stops them by PID.

load helpers

NODE_PID=()
NODE_URL=()
CLUSTER_URL=()
NODE_OPTS=()
NODE_BROKER=()	# another broker binary for node I (the fault build)
NODE_ENV=()	# VAR=VALUE words for node I's environment
NODE_NS=()	# the network namespace node I runs in (cluster-netns.bats); none: this one

# in_node I CMD...: CMD in node I's network namespace (NODE_NS), or here.
in_node() {
	local i=$1
	shift
	if [ -n "${NODE_NS[$i]:-}" ]; then
		ip netns exec "${NODE_NS[$i]}" "$@"
	else
		"$@"
	fi
}

make_cluster_key() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T/cluster.key"
	chmod 600 "$T/cluster.key"
}

# start_node I [EXTRA OPTIONS...]: (re)starts node I with its ports and peers
# (NODE_BROKER[I] and NODE_ENV[I], when set, for the fault build; NODE_NS[I]
# its network namespace).
start_node() {
	local i=$1 j peers=() ns=()
	shift
	# Not through in_node: $! must be the broker's pid (env and ip exec it).
	[ -n "${NODE_NS[$i]:-}" ] && ns=(ip netns exec "${NODE_NS[$i]}")
	for ((j = 1; j <= ${#CLUSTER_URL[@]}; j++)); do
		[ "$j" = "$i" ] || peers+=(--peer "$j=${CLUSTER_URL[$j]}")
	done
	"${ns[@]}" env ${NODE_ENV[$i]:-} "${NODE_BROKER[$i]:-mom-broker}" -D "$T/n$i" -l "${NODE_URL[$i]}" --http off --node-id "$i" \
	    --cluster "${CLUSTER_URL[$i]}" --cluster-key "$T/cluster.key" "${peers[@]}" \
	    "${NODE_OPTS[@]}" "$@" >>"$T/n$i.log" 2>&1 3>&- &
	NODE_PID[$i]=$!
}

start_cluster() {
	local n=$1 i urls=()
	shift
	NODE_OPTS=("$@")
	make_cluster_key
	for ((i = 1; i <= n; i++)); do
		NODE_URL[$i]="tcp://127.0.0.1:$(free_port)"
		CLUSTER_URL[$i]="tcp://127.0.0.1:$(free_port)"
		urls+=("${NODE_URL[$i]}")
	done
	for ((i = 1; i <= n; i++)); do
		start_node "$i" --bootstrap
	done
	MOM_URL=$(IFS=,; echo "${urls[*]}")
	export MOM_URL
	wait_leader
}

# restart_faulty I VAR=VALUE: node I stopped and started again on the fault
# build (build-fault/bin/mom-broker) with VAR=VALUE in its environment;
# the test fails when there is no fault build.
restart_faulty() {
	local fb="$E2E_ROOT/build-fault/bin/mom-broker"
	[ -x "$fb" ] || fail "no fault build: make fault"
	stop_pid "${NODE_PID[$1]}" TERM
	NODE_BROKER[$1]=$fb
	NODE_ENV[$1]=$2
	start_node "$1"
}

# node_status I: node I's own view as JSON (cluster status --json), or fails.
node_status() {
	in_node "$1" timeout 5 mom-admin -s "${NODE_URL[$1]}" -W 2s cluster status --json 2>/dev/null
}

# leader_of I: the leader's id as node I sees it (empty: none).
leader_of() {
	node_status "$1" | python3 -c 'import json,sys; l=json.load(sys.stdin).get("leader"); print(l if l else "")' 2>/dev/null
}

# wait_leader [SECONDS [NOT]]: until every running node names the same leader
# (other than node NOT); sets LEADER.
wait_leader() {
	local deadline=$(($(ms_now) + ${1:-30} * 1000)) not=${2:-} i l seen
	LEADER=
	while (($(ms_now) < deadline)); do
		seen=
		for ((i = 1; i <= ${#NODE_URL[@]}; i++)); do
			kill -0 "${NODE_PID[$i]}" 2>/dev/null || continue
			[ "$(ps -o stat= -p "${NODE_PID[$i]}" | cut -c1)" = T ] && continue
			l=$(leader_of "$i")
			if [ -z "$l" ] || [ "$l" = "$not" ] || { [ -n "$seen" ] && [ "$l" != "$seen" ]; }; then
				seen=none
				break
			fi
			seen=$l
		done
		if [ -n "$seen" ] && [ "$seen" != none ]; then
			LEADER=$seen
			return 0
		fi
		sleep 0.2
	done
	echo "# no leader agreed on in time" >&3
	for ((i = 1; i <= ${#NODE_URL[@]}; i++)); do
		echo "# node $i:" >&3
		tail -20 "$T/n$i.log" | sed 's/^/#   /' >&3
	done
	return 1
}

# a_follower: the id of a running node that does not lead.
a_follower() {
	local i
	for ((i = 1; i <= ${#NODE_URL[@]}; i++)); do
		if [ "$i" != "$LEADER" ] && kill -0 "${NODE_PID[$i]}" 2>/dev/null; then
			echo "$i"
			return 0
		fi
	done
	return 1
}

# applied_of I: node I's applied index.
applied_of() {
	node_status "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print([n for n in d["nodes"] if n["id"]==d["self"]][0]["applied"])' 2>/dev/null
}

# leaderless_follower: kills the leader (-9) and pauses the third node, so
# that no election can end; sets F (the follower left running) and PAUSED.
leaderless_follower() {
	F=$(a_follower)
	for ((PAUSED = 1; PAUSED <= 3; PAUSED++)); do
		[ "$PAUSED" != "$F" ] && [ "$PAUSED" != "$LEADER" ] && break
	done
	kill -STOP "${NODE_PID[$PAUSED]}"
	kill -9 "${NODE_PID[$LEADER]}"
	wait "${NODE_PID[$LEADER]}" 2>/dev/null || true
}

# caught_up I INDEX: waits (30 s at most) until node I applied INDEX.
caught_up() {
	local k a
	for ((k = 0; k < 150; k++)); do
		a=$(applied_of "$1")
		[ -n "$a" ] && [ "$a" -ge "$2" ] && return 0
		sleep 0.2
	done
	echo "# node $1 applied ${a:-nothing}, not $2, within 30 s" >&3
	return 1
}

stop_cluster() {
	local i
	for ((i = 1; i <= ${#NODE_PID[@]}; i++)); do
		stop_pid "${NODE_PID[$i]}" TERM
	done
	NODE_PID=()
}

teardown() {
	local i crashed=0
	stop_cluster
	# cluster-netns.bats: its namespaces go once the nodes in them stopped.
	if declare -F netns_teardown >/dev/null; then
		netns_teardown
	fi
	for ((i = 1; i <= ${#NODE_URL[@]}; i++)); do
		if [ -f "$T/n$i.log" ] && grep -qiE 'sanitizer|segfault|panic|assert' "$T/n$i.log"; then
			echo "# node $i's log shows a crash:" >&3
			sed 's/^/# /' "$T/n$i.log" >&3
			crashed=1
		fi
	done
	local p
	for p in "${BG_PIDS[@]}"; do
		stop_pid "$p" KILL
	done
	BG_PIDS=()
	tmp_release
	return $crashed
}

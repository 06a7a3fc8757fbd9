#!/usr/bin/env bats
# A partition with real TCP: three brokers, each in a network namespace of
# its own, joined by veth pairs to a bridge in a fourth ("the switch").
# Taking a node's port on the switch down cuts it off both ways; its TCP
# connections stall as they would when a cable is pulled (no reset), unlike
# the link fault switch of the fault build (tests/chaos), which drops frames
# above TCP.  Needs root and iproute2 (`ip netns`); skipped without them.
# Everything it creates is its own: namespaces named mom<pid>-*, addresses
# 10.200.0.I inside them, nothing in the host's own network.  The nodes'
# client ports run --no-auth: no one but this test can reach them.

load cluster-helpers
bats_require_minimum_version 1.5.0

NS_HUB=

# cable I up|down: node I's port on the switch.
cable() {
	ip -n "$NS_HUB" link set "v$1" "$2"
}

# netns_up N: the switch and N namespaces ("machines") on it, 10.200.0.I;
# NODE_URL and CLUSTER_URL at the default ports (7420, 7422).
netns_up() {
	local i id=mom$$
	[ "$(id -u)" = 0 ] || skip "needs root (ip netns)"
	command -v ip >/dev/null || skip "needs iproute2 (ip)"
	NS_HUB=$id-s
	ip netns add "$NS_HUB" 2>/dev/null || skip "ip netns add failed: no network namespaces here"
	ip -n "$NS_HUB" link add br0 type bridge
	ip -n "$NS_HUB" link set br0 up
	for ((i = 1; i <= $1; i++)); do
		NODE_NS[$i]=$id-$i
		ip netns add "${NODE_NS[$i]}"
		ip -n "$NS_HUB" link add "v$i" type veth peer name eth0 netns "${NODE_NS[$i]}"
		ip -n "$NS_HUB" link set "v$i" master br0 up
		ip -n "${NODE_NS[$i]}" link set lo up
		ip -n "${NODE_NS[$i]}" addr add "10.200.0.$i/24" dev eth0
		ip -n "${NODE_NS[$i]}" link set eth0 up
		NODE_URL[$i]=tcp://10.200.0.$i:7420
		CLUSTER_URL[$i]=tcp://10.200.0.$i:7422
	done
}

# netns_cluster: the namespaces, the switch, and three nodes bootstrapped
# in them; waits until one leads (LEADER).
netns_cluster() {
	local i
	netns_up 3
	# The client ports are reachable from these namespaces only.
	NODE_OPTS=(--no-auth)
	make_cluster_key
	for i in 1 2 3; do
		start_node "$i" --bootstrap
	done
	wait_leader 30
}

# heal I: node I's cable back in; waits until all three follow one leader
# and node I applied what the leader had.
heal() {
	cable "$1" up
	wait_leader 30
	caught_up "$1" "$(applied_of "$LEADER")"
}

# netns_teardown: called by the helpers' teardown after the nodes stopped.
netns_teardown() {
	local i
	for i in "${!NODE_NS[@]}"; do
		ip netns del "${NODE_NS[$i]}" 2>/dev/null
	done
	[ -n "$NS_HUB" ] && ip netns del "$NS_HUB" 2>/dev/null
	return 0
}

# leader_among SECONDS I J: until nodes I and J name the same leader, one of
# them; sets LEADER.
leader_among() {
	local deadline=$(($(ms_now) + $1 * 1000)) a b
	while (($(ms_now) < deadline)); do
		a=$(leader_of "$2")
		b=$(leader_of "$3")
		if [ -n "$a" ] && [ "$a" = "$b" ] && { [ "$a" = "$2" ] || [ "$a" = "$3" ]; }; then
			LEADER=$a
			return 0
		fi
		sleep 0.2
	done
	echo "# nodes $2 and $3 agreed on no leader in $1 s (they said '$a' and '$b')" >&3
	return 1
}

# role_of I: node I's role as it sees itself.
role_of() {
	node_status "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); print([n for n in d["nodes"] if n["id"]==d["self"]][0]["role"])' 2>/dev/null
}

@test "a leader cut off by a real network partition steps down, the majority elects another and goes on, and once healed every node serves exactly what was confirmed" {
	local old other1 other2 k role rc
	netns_cluster
	old=$LEADER
	in_node "$old" timeout 10 mom-admin -s "${NODE_URL[$old]}" queue create q
	seq 1 10 | in_node "$old" timeout 20 mom-pub -s "${NODE_URL[$old]}" -q q -l

	# The leader's cable out.
	cable "$old" down
	other1=$((old % 3 + 1))
	other2=$((other1 % 3 + 1))
	leader_among 30 "$other1" "$other2"
	[ "$LEADER" != "$old" ]
	# The old leader cannot reach a majority: it stops leading by itself.
	for ((k = 0; k < 50; k++)); do
		role=$(role_of "$old")
		[ -n "$role" ] && [ "$role" != leader ] && break
		sleep 0.2
	done
	echo "# the cut-off node $old calls itself '$role'" >&3
	[ "$role" != leader ]
	# What it is asked now is not confirmed: unavailable after -W.
	rc=0
	echo lost | in_node "$old" timeout 20 mom-pub -s "${NODE_URL[$old]}" -q q -W 3s \
	    --request-timeout 1s -l 2>"$T/minority.err" || rc=$?
	echo "# publish to the minority: exit $rc: $(head -1 "$T/minority.err")" >&3
	[ "$rc" = 69 ]
	# The majority takes publishes.
	seq 11 20 | in_node "$LEADER" timeout 20 mom-pub -s "${NODE_URL[$LEADER]}" -q q -l

	# Healed: one leader for all three, and the old one catches up.
	heal "$old"
	# Through the node that was cut off (it forwards to the leader): the
	# 20 confirmed messages, in order, and nothing else.
	run in_node "$old" timeout 20 mom-sub -s "${NODE_URL[$old]}" -q q -C 20 -W 10s
	[ "$status" = 0 ]
	[ "$output" = "$(seq 1 20)" ]
	run in_node "$old" timeout 20 mom-sub -s "${NODE_URL[$old]}" -q q -e -W 10s
	[ "$status" = 0 ]
	[ -z "$output" ]
}

@test "behind a real partition a follower misses nothing: clients that list it first publish through the others, the leader stays, and the follower catches up once healed" {
	local cut home lead_before rc t0
	netns_cluster
	lead_before=$LEADER
	cut=$(a_follower)
	home=$((6 - cut - LEADER)) # the third node: the clients run in its namespace
	in_node "$home" timeout 10 mom-admin -s "${NODE_URL[$home]}" queue create q
	cable "$cut" down
	# The first broker in the list does not answer at all (no reset: its
	# cable is out); the client goes on to the others.
	rc=0
	t0=$(ms_now)
	seq 1 50 | in_node "$home" timeout 30 mom-pub -s "${NODE_URL[$cut]},${NODE_URL[$LEADER]},${NODE_URL[$home]}" \
	    -q q -l --request-timeout 1s -W 20s 2>"$T/pub.err" || rc=$?
	[ "$rc" = 0 ] || { sed 's/^/# /' "$T/pub.err" >&3; false; }
	echo "# 50 published past the cut-off node in $(($(ms_now) - t0)) ms" >&3
	# A majority kept its leader: no election.
	leader_among 10 "$lead_before" "$home"
	[ "$LEADER" = "$lead_before" ]
	heal "$cut"
	run in_node "$cut" timeout 20 mom-sub -s "${NODE_URL[$cut]}" -q q -C 50 -W 10s
	[ "$status" = 0 ]
	[ "$output" = "$(seq 1 50)" ]
}

# doc_conf I [bootstrap]: machine mqI's configuration file, made from the
# example of mom-broker(8) (node 2's) by the rule it gives: only node-id,
# cluster and the peer lines differ (here mqJ is 10.200.0.J, /etc/mom is
# $T/mqI/etc/mom); without "bootstrap", its bootstrap line goes (a machine
# that joins later: step 5).
doc_conf() {
	local i=$1 boot=${2:-} j
	awk '/^# \/etc\/mom\/mom-broker.conf on mq2$/ { on = 1; next } on && /^\.Ed/ { exit } on' \
		"$E2E_ROOT/man/mom-broker.8" >"$T/example.conf"
	grep -q '^node-id 2$' "$T/example.conf" || fail "no example in mom-broker.8"
	while read -r line; do
		case $line in
		"node-id "*) echo "node-id $i" ;;
		"cluster "*) echo "cluster tcp://mq$i:7422" ;;
		"peer "*) ;;
		bootstrap) [ -n "$boot" ] && echo bootstrap ;;
		*) echo "$line" ;;
		esac
	done <"$T/example.conf" | sed "s|/etc/mom/|$T/mq$i/etc/mom/|g"
	for j in 1 2 3; do
		[ "$j" = "$i" ] || echo "peer $j=tcp://mq$j:7422"
	done
}

# start_machine I: mqI's broker as its systemd unit runs it (mom-broker.8,
# "systemd"), in mqI's namespace; mqJ in its file is 10.200.0.J.
start_machine() {
	local i=$1
	sed 's|tcp://mq\([0-9]\):|tcp://10.200.0.\1:|g' "$T/mq$i/etc/mom/mom-broker.conf" >"$T/mq$i/etc/mom/resolved.conf"
	ip netns exec "${NODE_NS[$i]}" mom-broker -D "$T/mq$i/var/lib/mom" \
		-c "$T/mq$i/etc/mom/resolved.conf" >>"$T/n$i.log" 2>&1 3>&- &
	NODE_PID[$i]=$!
}

@test "the three-machine set-up of mom-broker(8), step by step, with the example's configuration file" {
	local i old A=$T/issuer
	netns_up 4
	# Step 1: the cluster key, made on mq1 and copied to the others mode
	# 0600; every node has the issuer's public key.
	mkdir -p "$A"
	mom-auth -d "$A" keygen >/dev/null
	echo pw | mom-auth -d "$A" user add root --admin >/dev/null
	mom-auth -d "$A" token --user root --ttl 1h >"$A/root.jwt"
	export MOM_TOKEN_FILE=$A/root.jwt
	for i in 1 2 3 4; do
		mkdir -p "$T/mq$i/etc/mom" "$T/mq$i/var/lib/mom"
	done
	mom-auth cluster-key "$T/mq1/etc/mom/cluster.key"
	for i in 1 2 3 4; do
		[ "$i" = 1 ] || cp -p "$T/mq1/etc/mom/cluster.key" "$T/mq$i/etc/mom/"
		cp "$A/mom-auth.pub" "$T/mq$i/etc/mom/"
	done
	[ "$(stat -c %a "$T/mq3/etc/mom/cluster.key")" = 600 ]
	# Step 3: each machine's file, with bootstrap in all three; start them.
	for i in 1 2 3; do
		doc_conf "$i" bootstrap >"$T/mq$i/etc/mom/mom-broker.conf"
		start_machine "$i"
	done
	wait_leader 30
	# Step 4: one leader and two followers; clients list all three.
	run -0 in_node 1 timeout 20 mom-admin -s tcp://10.200.0.1:7420 cluster status
	[ "$(grep -c leader <<<"$output")" = 1 ] && [ "$(grep -c follower <<<"$output")" = 2 ] ||
		fail "$output"
	export MOM_URL=tcp://10.200.0.1:7420,tcp://10.200.0.2:7420,tcp://10.200.0.3:7420
	in_node 1 timeout 20 mom-admin queue create jobs
	seq 1 10 | in_node 2 timeout 20 mom-pub -q jobs -l
	# Later starts ignore bootstrap and the peer lines: the same files again.
	stop_cluster
	for i in 1 2 3; do
		start_machine "$i"
	done
	wait_leader 30
	# Step 5: mq4 replaces a machine: an empty data directory, its id, the
	# key, no bootstrap; added, then the old one removed.
	old=$(a_follower)
	doc_conf 4 >"$T/mq4/etc/mom/mom-broker.conf"
	start_machine 4
	run --separate-stderr in_node 1 timeout 60 mom-admin -W 50 cluster add 4 tcp://10.200.0.4:7422
	[ "$status" = 0 ] || fail "add: $status: $stderr"
	run --separate-stderr in_node 1 timeout 30 mom-admin -W 20 cluster remove "$old"
	[ "$status" = 0 ] || fail "remove: $status: $stderr"
	stop_pid "${NODE_PID[$old]}" TERM
	# What was published before mq4 came is there, through mq4.
	run -0 in_node 4 timeout 20 mom-sub -s tcp://10.200.0.4:7420 -q jobs -C 10 -W 10
	assert_output "$(seq 1 10)"
}

#!/bin/sh
# local.sh: a three-node mom cluster on loopback, in the foreground
# (make cluster).  Data under ./mom-data/n1 .. n3, the cluster key in
# ./mom-data/cluster.key (made on first use), logs in ./mom-data/nI.log.
# Node I serves clients on tcp://127.0.0.1:(BASE + 10 I), HTTP on the next
# port and talks to the other nodes on the one after (BASE 7410 by default:
# 7420, 7421, 7422 for node 1; 7430.. for node 2; 7440.. for node 3).
# Exits 1 when a node does not start (a port in use, say), with its log's
# last lines; Ctrl-C (or SIGTERM) stops all three.
# Environment: BIN (bin), DATA (./mom-data), BASE (7410).
set -eu
BIN=${BIN:-bin}
DATA=${DATA:-./mom-data}
BASE=${BASE:-7410}
case $BASE in
'' | *[!0-9]*) echo "local.sh: BASE must be a port number, not '$BASE'" >&2; exit 64 ;;
esac
if [ "$BASE" -lt 1 ] || [ "$BASE" -gt 65500 ]; then
	echo "local.sh: BASE must be between 1 and 65500, not $BASE" >&2
	exit 64
fi
if [ ! -x "$BIN/mom-broker" ]; then
	echo "local.sh: no $BIN/mom-broker: run make first (or set BIN)" >&2
	exit 1
fi
mkdir -p "$DATA"
chmod 700 "$DATA"
KEY=$DATA/cluster.key
if [ ! -f "$KEY" ]; then
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY")
fi
port() { # NODE OFFSET: node NODE's port OFFSET (0 clients, 1 HTTP, 2 cluster)
	echo $((BASE + 10 * $1 + $2))
}
pids=
status=0
stop() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	exit "$status"
}
trap stop INT TERM EXIT
peers() { # the --peer options of node $1
	for j in 1 2 3; do
		[ "$j" = "$1" ] || printf -- '--peer %s=tcp://127.0.0.1:%s ' "$j" "$(port "$j" 2)"
	done
}
for i in 1 2 3; do
	# What this start writes to the log begins after what is there.
	size=0
	[ ! -f "$DATA/n$i.log" ] || size=$(wc -c <"$DATA/n$i.log")
	eval "from$i=$((size + 1))"
	# shellcheck disable=SC2046
	"$BIN/mom-broker" -D "$DATA/n$i" -l "tcp://127.0.0.1:$(port "$i" 0)" \
	    --http "127.0.0.1:$(port "$i" 1)" --node-id "$i" \
	    --cluster "tcp://127.0.0.1:$(port "$i" 2)" --cluster-key "$KEY" \
	    $(peers "$i") --bootstrap >>"$DATA/n$i.log" 2>&1 &
	pids="$pids $!"
	eval "pid$i=$!"
done
# Each node logs "ready" once it serves, or exits (a port in use, say):
# wait for one or the other, 10 s at most.
for i in 1 2 3; do
	eval "pid=\$pid$i from=\$from$i"
	k=0
	until tail -c "+$from" "$DATA/n$i.log" 2>/dev/null | grep -q 'info: ready'; do
		if ! kill -0 "$pid" 2>/dev/null || [ "$k" -ge 100 ]; then
			echo "local.sh: node $i did not start ($DATA/n$i.log):" >&2
			tail -c "+$from" "$DATA/n$i.log" | tail -n 3 >&2
			status=1
			stop
		fi
		k=$((k + 1))
		sleep 0.1
	done
done
c1=tcp://127.0.0.1:$(port 1 0) c2=tcp://127.0.0.1:$(port 2 0) c3=tcp://127.0.0.1:$(port 3 0)
cat <<MSG
A three-node cluster: node 1 on $c1, node 2 on :$(port 2 0), node 3 on :$(port 3 0).
In another terminal, publish to one node and consume from another:
  $BIN/mom-pub -s $c1 --create -q demo -m 'hello, cluster'
  $BIN/mom-sub -s $c3 -q demo -C 1
  $BIN/mom-admin -s $c2 cluster status
Clients that list every node ride through the loss of one:
  export MOM_URL=$c1,$c2,$c3
Their logs follow ($DATA/n1.log .. n3.log); Ctrl-C stops the three nodes.
MSG
tail -n 0 -f "$DATA/n1.log" "$DATA/n2.log" "$DATA/n3.log" &
pids="$pids $!"
wait

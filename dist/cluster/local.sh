#!/bin/sh
# local.sh: a three-node mom cluster on loopback, in the foreground
# (make cluster).  Data under ./mom-data/n1 .. n3, the cluster key in
# ./mom-data/cluster.key (made on first use), logs in ./mom-data/nI.log.  Node I serves clients on
# tcp://127.0.0.1:74I0 and HTTP on 127.0.0.1:74I1 and talks to the other
# nodes on tcp://127.0.0.1:74I2 (I = 2, 3, 4 for nodes 1, 2, 3).
# Ctrl-C (or SIGTERM) stops all three.
set -eu
BIN=${BIN:-bin}
DATA=${DATA:-./mom-data}
mkdir -p "$DATA"
chmod 700 "$DATA"
KEY=$DATA/cluster.key
if [ ! -f "$KEY" ]; then
	(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$KEY")
fi
pids=
stop() {
	trap - INT TERM EXIT
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	exit 0
}
trap stop INT TERM EXIT
peers() { # the --peer options of node $1
	for j in 1 2 3; do
		[ "$j" = "$1" ] || printf -- '--peer %s=tcp://127.0.0.1:74%s2 ' "$j" $((j + 1))
	done
}
for i in 1 2 3; do
	p=$((i + 1))
	# shellcheck disable=SC2046
	"$BIN/mom-broker" -D "$DATA/n$i" -l "tcp://127.0.0.1:74${p}0" --http "127.0.0.1:74${p}1" \
	    --node-id "$i" --cluster "tcp://127.0.0.1:74${p}2" --cluster-key "$KEY" \
	    $(peers "$i") --bootstrap >>"$DATA/n$i.log" 2>&1 &
	pids="$pids $!"
done
cat <<MSG
A three-node cluster: node 1 on tcp://127.0.0.1:7420, node 2 on :7430, node 3 on :7440.
In another terminal, publish to one node and consume from another:
  bin/mom-pub -s tcp://127.0.0.1:7420 --create -q demo -m 'hello, cluster'
  bin/mom-sub -s tcp://127.0.0.1:7440 -q demo -C 1
  bin/mom-admin -s tcp://127.0.0.1:7430 cluster status
Clients that list every node ride through the loss of one:
  export MOM_URL=tcp://127.0.0.1:7420,tcp://127.0.0.1:7430,tcp://127.0.0.1:7440
Their logs follow ($DATA/n1.log .. n3.log); Ctrl-C stops the three nodes.
MSG
tail -n 0 -f "$DATA/n1.log" "$DATA/n2.log" "$DATA/n3.log" &
pids="$pids $!"
wait

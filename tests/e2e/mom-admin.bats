#!/usr/bin/env bats
# mom-admin: queues, topics, subscriptions, ping, stats.

bats_require_minimum_version 1.5.0
load helpers

@test "mom-admin -h prints usage on stdout and exits 0" {
	run --separate-stderr mom-admin -h
	assert_success
	assert_output --partial "usage: mom-admin"
	assert_output --partial "queue create NAME"
	assert_equal "$stderr" ""
}

@test "mom-admin --version prints its version" {
	run --separate-stderr mom-admin --version
	assert_success
	assert_output --regexp '^mom-admin [0-9]+\.[0-9]+'
}

@test "mom-admin with an unknown option exits 64 with a 'mom-admin:' error" {
	run --separate-stderr mom-admin --bogus ping
	assert_usage_error mom-admin
}

@test "mom-admin with an unknown noun or verb exits 64" {
	run --separate-stderr mom-admin frobnicate
	assert_usage_error mom-admin
	run --separate-stderr mom-admin queue explode x
	assert_usage_error mom-admin
	run --separate-stderr mom-admin queue info
	assert_usage_error mom-admin
}

@test "mom-admin ping answers ok from a running broker" {
	start_broker
	run --separate-stderr admin ping
	assert_success
	assert_output --regexp '^ok: mom-broker [0-9.]+'
	run --separate-stderr admin --json ping
	assert_success
	echo "$output" | jq -e '.ok == true' >/dev/null
}

@test "mom-admin ping exits 69 quickly when no broker listens" {
	local port t0 t1
	port=$(free_port)
	t0=$(ms_now)
	run --separate-stderr timeout 10 mom-admin -s "tcp://127.0.0.1:$port" ping
	t1=$(ms_now)
	assert_one_line_error mom-admin 69
	((t1 - t0 < 5000))
}

@test "mom-admin queue create, list, info and delete a queue" {
	start_broker
	run admin queue create jobs --ack-wait 2s --max-deliver 3 --max-len 10 --max-bytes 1k --ttl 1m
	assert_success
	assert_output ""
	run admin queue list
	assert_success
	assert_line --index 0 --regexp '^NAME +MESSAGES +READY +IN-FLIGHT'
	assert_line --index 1 --regexp '^jobs +0 +0 +0'
	run admin --json queue info jobs
	assert_success
	echo "$output" | jq -e '.name == "jobs" and .ack_wait_ms == 2000 and .max_deliver == 3 and
	    .max_len == 10 and .max_bytes == 1024 and .ttl_ms == 60000 and .messages == 0' >/dev/null
	run admin queue info jobs
	assert_success
	assert_output --regexp 'ack_wait +2s'
	run admin queue delete jobs
	assert_success
	run --separate-stderr admin queue info jobs
	assert_one_line_error mom-admin 66
}

@test "mom-admin queue create again with the same options succeeds" {
	start_broker
	admin queue create jobs --ack-wait 5s
	run admin queue create jobs --ack-wait 5s
	assert_success
}

@test "mom-admin queue create with conflicting options exits 1" {
	start_broker
	admin queue create jobs --ack-wait 5s
	run --separate-stderr admin queue create jobs --ack-wait 9s
	assert_one_line_error mom-admin 1
	assert_equal "$(qfield jobs ack_wait_ms)" 5000
}

@test "mom-admin queue delete of a missing queue exits 66" {
	start_broker
	run --separate-stderr admin queue delete nosuch
	assert_one_line_error mom-admin 66
}

@test "mom-admin with a bad queue name exits 64 without asking the broker" {
	run --separate-stderr timeout "$TMO" mom-admin -s tcp://127.0.0.1:1 queue create 'bad name'
	assert_one_line_error mom-admin 64
	run --separate-stderr timeout "$TMO" mom-admin -s tcp://127.0.0.1:1 queue create 'a..b'
	assert_one_line_error mom-admin 64
	run --separate-stderr timeout "$TMO" mom-admin -s tcp://127.0.0.1:1 queue create "$(printf 'x%.0s' {1..201})"
	assert_one_line_error mom-admin 64
}

@test "mom-admin with a bad duration or number exits 64" {
	run --separate-stderr timeout "$TMO" mom-admin queue create q --ack-wait soon
	assert_usage_error mom-admin
	run --separate-stderr timeout "$TMO" mom-admin queue create q --max-len -3
	assert_usage_error mom-admin
}

@test "mom-admin with a queue option on a topic (or the other way) exits 64 without asking the broker" {
	run --separate-stderr timeout "$TMO" mom-admin -s tcp://127.0.0.1:1 topic create t --max-len 3
	assert_one_line_error mom-admin 64
	[[ "$stderr" == *"queue options go with queue create"* ]]
	run --separate-stderr timeout "$TMO" mom-admin -s tcp://127.0.0.1:1 queue create q --retain 1d
	assert_one_line_error mom-admin 64
	[[ "$stderr" == *"topic options go with topic create"* ]]
	run --separate-stderr timeout "$TMO" mom-admin -s tcp://127.0.0.1:1 queue create q --max-deliver 4294967296
	assert_one_line_error mom-admin 64
}

@test "mom-admin queue purge empties a queue" {
	start_broker
	qcreate jobs
	seq 1 50 | pub -q jobs -l
	assert_equal "$(qfield jobs messages)" 50
	run admin queue purge jobs
	assert_success
	assert_equal "$(qfield jobs messages)" 0
	run sub -q jobs -e
	assert_success
	assert_output ""
}

@test "mom-admin queue move moves every message to another queue in order" {
	start_broker
	qcreate src
	qcreate dst
	seq 1 20 | pub -q src -l
	run admin --json queue move src dst
	assert_success
	echo "$output" | jq -e '.moved == 20' >/dev/null
	assert_equal "$(qfield src messages)" 0
	run sub -q dst -C 20
	assert_success
	assert_output "$(seq 1 20)"
}

@test "mom-admin queue move to a missing queue exits 66" {
	start_broker
	qcreate src
	run --separate-stderr admin queue move src nosuch
	assert_one_line_error mom-admin 66
}

@test "mom-admin topic create, list, info and delete a topic" {
	start_broker
	run admin topic create events --retain 1h --retain-bytes 1M
	assert_success
	run admin topic list
	assert_success
	assert_line --index 0 --regexp '^NAME +RETAINED +BYTES +SUBS'
	assert_line --index 1 --regexp '^events +0 +0 +0'
	pub -t events -m one
	run admin --json topic info events
	assert_success
	echo "$output" | jq -e '.name == "events" and .retained == 1 and .retain_ms == 3600000 and
	    .retain_bytes == 1048576' >/dev/null
	run admin topic delete events
	assert_success
	run --separate-stderr admin topic info events
	assert_one_line_error mom-admin 66
	run --separate-stderr admin topic delete events
	assert_one_line_error mom-admin 66
}

@test "mom-admin sub list shows durable subscriptions and sub delete removes one" {
	start_broker
	tcreate events
	sub -t events -d alpha -e
	sub -t 'events.>' -d beta -e
	run admin sub list
	assert_success
	assert_line --index 0 --regexp '^TOPIC +NAME +DURABLE'
	assert_line --regexp '^events +alpha +yes'
	assert_line --regexp '^events\.> +beta +yes'
	run admin --json sub list events
	assert_success
	echo "$output" | jq -e 'map(.name) | index("alpha") != null' >/dev/null
	run admin sub delete events alpha
	assert_success
	run admin --json sub list
	assert_success
	echo "$output" | jq -e 'map(.name) == ["beta"]' >/dev/null
	run --separate-stderr admin sub delete events alpha
	assert_one_line_error mom-admin 66
}

@test "mom-admin stats shows counters after traffic" {
	start_broker
	qcreate jobs
	seq 1 10 | pub -q jobs -l
	sub -q jobs -C 4 >/dev/null
	run admin stats
	assert_success
	assert_line --regexp '^published +10$'
	assert_line --regexp '^acked +4$'
	run admin --json stats
	assert_success
	echo "$output" | jq -e '.published == 10 and .queues == 1 and .messages == 6' >/dev/null
}

@test "mom-admin stats --prom prints Prometheus text" {
	start_broker
	qcreate jobs
	pub -q jobs -m x
	run admin stats --prom
	assert_success
	assert_line --regexp '^# TYPE mom_[a-z_]+ (gauge|counter)$'
	assert_line --regexp '^mom_published(_total)? 1$'
	# Every non-comment line is "name value".
	run bash -c "mom-admin stats --prom | grep -v '^#' | grep -vcE '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+]+$'"
	assert_output 0
}

@test "mom-admin --json output of every listing verb is valid JSON" {
	start_broker
	qcreate jobs
	tcreate events
	sub -t events -d s1 -e
	local v
	for v in "queue list" "queue info jobs" "topic list" "topic info events" "sub list" \
	    "sub list events" "stats" "ping"; do
		# shellcheck disable=SC2086
		run admin --json $v
		assert_success
		echo "$output" | python3 -m json.tool >/dev/null || fail "not JSON for '$v': $output"
	done
}

@test "mom-admin --json create answers JSON, plain create prints nothing" {
	start_broker
	run admin --json queue create jobs
	assert_success
	echo "$output" | jq -e '.name == "jobs"' >/dev/null
	run admin topic create events
	assert_success
	assert_output ""
}

@test "cluster status describes a broker that is a cluster of one" {
	start_broker
	run -0 admin --json cluster status
	assert_equal "$(jq -r '.leader, .self, (.nodes | length), .nodes[0].id, .nodes[0].role' <<<"$output" | tr '\n' ' ')" "1 1 1 1 leader "
	run -0 admin cluster status
	assert_line --index 0 --regexp '^ID +URL +ROLE +TERM +COMMIT +APPLIED +LAG$'
	assert_line --index 1 --regexp '^1 +- +leader +[0-9]+ +[0-9]+ +[0-9]+ +0$'
}

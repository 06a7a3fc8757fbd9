#!/usr/bin/env bats
# tests/layers.sh and tests/funclen.sh: the checks behind `make layers`
# and `make funclen` catch what they are for.  Each test works on a copy
# of the sources in a temporary directory.

setup() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	T=$(mktemp -d)
	mkdir -p "$T/tests"
	cp -r "$ROOT/src" "$T/src"
	cp "$ROOT/tests/layers.sh" "$ROOT/tests/funclen.sh" "$T/tests/"
}

teardown() {
	rm -rf "$T"
}

@test "layers: today's tree follows the rule" {
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 0 ]
	[ "$output" = "layers: ok" ]
}

@test "layers: state/ including core/ is refused" {
	sed -i '0,/#include "state\/fsm_int.h"/s//#include "state\/fsm_int.h"\n#include "core\/core.h"/' \
	    "$T/src/mom-broker/state/fsm_admin.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *'state/fsm_admin.c:'*'state may not include "core/core.h"'* ]]
}

@test "layers: core/ including net/ is refused" {
	echo '#include "net/front.h"' >>"$T/src/mom-broker/core/fetch.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *'core may not include "net/front.h"'* ]]
}

@test "layers: a broker header named without its folder is refused" {
	echo '#include "fsm.h"' >>"$T/src/mom-broker/replica/replica.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *'"fsm.h" is not in src/libmom'* ]]
}

@test "layers: a client including a broker header is refused" {
	echo '#include "state/fsm.h"' >>"$T/src/mom-pub/pub.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *'mom-pub/pub.c'*'may not include "state/fsm.h"'* ]]
}

@test "layers: state/ with a thread or a clock is refused" {
	sed -i '0,/#include <string.h>/s//#include <string.h>\n#include <pthread.h>/' \
	    "$T/src/mom-broker/state/mq.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *'state/ does no threads, I/O or clock'* ]]
	cp "$ROOT/src/mom-broker/state/mq.c" "$T/src/mom-broker/state/mq.c"
	printf 'static long f(void) { return mom_now_ms(); }\n' >>"$T/src/mom-broker/state/mq.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
}

@test "layers: a folder that is no layer is named" {
	mkdir "$T/src/mom-broker/misc"
	echo 'int x;' >"$T/src/mom-broker/misc/x.c"
	run sh "$T/tests/layers.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *"unknown layer 'misc'"* ]]
}

@test "funclen: no function over 120 lines today; a long one is listed" {
	run sh "$T/tests/funclen.sh"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	{
		printf 'int\nlong_one(void)\n{\n'
		for i in $(seq 1 130); do printf '\t(void)%d;\n' "$i"; done
		printf '\treturn 0;\n}\n'
	} >>"$T/src/mom-broker/core/acl.c"
	run sh "$T/tests/funclen.sh"
	[ "$status" -eq 1 ]
	[[ "$output" == *"src/mom-broker/core/acl.c:"*"long_one"* ]]
}

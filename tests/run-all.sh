#!/bin/sh
# The whole suite: criterion unit tests, bats end-to-end tests, man page
# lint, a short fuzz run.  Prints each suite's TAP, then one last line
# "N passed, N failed".  Exit 0 only when nothing failed.
set -u
cd "$(dirname "$0")/.." || exit 1
MAKE=${MAKE:-make}
out=$(mktemp -d)
vg_pid=
# Interrupted (Ctrl-C, SIGTERM): stop, rather than run on without $out.
trap 'rm -rf "$out"; [ -z "$vg_pid" ] || kill "$vg_pid" 2>/dev/null' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

T0=$(date +%s)
elapsed() { echo "# ($(($(date +%s) - T0)) s so far)"; }
pass=0
fail=0
skip=0
count() { # file: add up TAP results; a skipped test is not a pass
	p=$(grep '^ok ' "$1" | grep -vc '# skip')
	s=$(grep '^ok ' "$1" | grep -c '# skip')
	f=$(grep -c '^not ok ' "$1")
	pass=$((pass + p))
	skip=$((skip + s))
	fail=$((fail + f))
}
one() { # name status: a suite step that is one test
	if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok - $1"
	else fail=$((fail + 1)); echo "not ok - $1"; fi
}

echo "# unit tests (criterion)"
if $MAKE -s unit-build >"$out/build.log" 2>&1; then
	for t in build/tests/*_test; do
		[ -x "$t" ] || continue
		# A bound: nng 1.5.2 can hang in nng_close (replica/link.c), and
		# criterion's own nng socket then hangs the test process at exit.
		timeout -k 10 600 "$t" --tap="$out/$(basename "$t").tap" --jobs=2 >/dev/null 2>&1
		rc=$?
		cat "$out/$(basename "$t").tap"
		count "$out/$(basename "$t").tap"
		# A crash that wrote no TAP line still counts as a failure.
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			one "$(basename "$t") did not finish within 600 s" 1
		elif [ $rc -ne 0 ] && ! grep -q '^not ok ' "$out/$(basename "$t").tap"; then
			one "$(basename "$t") exited $rc" 1
		fi
	done
else
	cat "$out/build.log"
	one "unit tests build" 1
fi

# Leak and memory checks of the unit tests under valgrind: slow (every
# criterion test is its own process, and valgrind starts in about a second),
# so on request: MOM_VALGRIND=1 (CI).  They take as long as the bats suite,
# which mostly waits on its brokers: the two run side by side, valgrind at
# the lowest priority so that the brokers' timers keep theirs.
vg_all() { # dir: one TAP line per test binary, its logs under dir
	for t in build/tests/*_test; do
		[ -x "$t" ] || continue
		# criterion runs each test in a forked child whose valgrind exit
		# status it does not report: every process writes its own log
		# (-q: only errors and leaks), and any line in any of them fails.
		rm -f "$1"/vg.*.log
		t0=$(date +%s)
		nice -n 19 valgrind -q --leak-check=full \
			--errors-for-leak-kinds=definite,indirect,possible \
			--error-exitcode=1 --trace-children=yes --log-file="$1/vg.%p.log" \
			--suppressions=tests/unit/valgrind.supp "$t" --jobs=2 >"$1/vg.out" 2>&1
		rc=$?
		for l in "$1"/vg.*.log; do
			[ -s "$l" ] || continue
			rc=1
			head -n 40 "$l"
		done
		[ $rc -eq 0 ] || tail -n 20 "$1/vg.out"
		if [ $rc -eq 0 ]; then echo "ok - valgrind $(basename "$t") ($(($(date +%s) - t0)) s)"
		else echo "not ok - valgrind $(basename "$t") ($(($(date +%s) - t0)) s)"; fi
	done
}
if [ "${MOM_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null 2>&1; then
	mkdir "$out/vg"
	vg_all "$out/vg" >"$out/valgrind.tap" 2>&1 &
	vg_pid=$!
fi

elapsed; echo "# end-to-end tests (bats)"
if [ -d tests/e2e ] && ls tests/e2e/*.bats >/dev/null 2>&1; then
	# --timing: each test's time on its line ("in N ms"), to see what the suite spends.
	bats --tap --timing tests/e2e >"$out/e2e.tap" 2>&1
	cat "$out/e2e.tap"
	count "$out/e2e.tap"
fi

if [ -n "$vg_pid" ]; then
	elapsed; echo "# unit tests under valgrind (run beside the bats suite)"
	wait "$vg_pid"
	vg_pid=
	cat "$out/valgrind.tap"
	count "$out/valgrind.tap"
	grep -q '^ok - valgrind ' "$out/valgrind.tap"
	one "valgrind ran the unit tests" $?
fi

# The cluster's chaos run (tests/chaos/README.md): 120 s of faults, then
# the checker; and its negative control, which must be caught.
if [ -x build-fault/bin/mom-broker ]; then
	elapsed; echo "# chaos run"
	chaos_s=${CHAOS_SECONDS:-120}
	CHAOS_SECONDS=$chaos_s tests/chaos/chaos.sh >"$out/chaos.log" 2>&1
	rc=$?
	tail -n 8 "$out/chaos.log"
	one "tests/chaos: $chaos_s s of faults lose nothing, and every node ends with the same state" $rc
	CHAOS_CONTROL=confirm-before-commit CHAOS_SECONDS=30 tests/chaos/chaos.sh \
	    >"$out/chaos-control.log" 2>&1
	rc=$?
	grep -E '^lost ' "$out/chaos-control.log"
	[ $rc -eq 1 ] && grep -qE '^lost [1-9]' "$out/chaos-control.log"
	one "tests/chaos: the checker catches publishes confirmed before they were committed" $?
	CHAOS_FAULTS=figure8 CHAOS_SECONDS=30 tests/chaos/chaos.sh >"$out/chaos-f8.log" 2>&1
	rc=$?
	grep -E 'won again|^lost |exited by themselves' "$out/chaos-f8.log"
	one "tests/chaos: the Raft paper's figure 8 loses nothing with the guard" $rc
	CHAOS_CONTROL=no-guard CHAOS_FAULTS=figure8 CHAOS_SECONDS=30 tests/chaos/chaos.sh \
	    >"$out/chaos-f8-control.log" 2>&1
	rc=$?
	grep -E 'won again|^lost |exited by themselves' "$out/chaos-f8-control.log"
	[ $rc -eq 1 ]
	one "tests/chaos: without the figure-8 guard the same schedule is caught" $?
fi

elapsed; echo "# layers"
sh tests/layers.sh
one "tests/layers.sh: includes follow the layer rule" $?
sh tests/funclen.sh
one "tests/funclen.sh: no function over 120 lines" $?

echo "# man pages"
if ls man/*.[1-8] >/dev/null 2>&1; then
	mandoc -T lint -W warning man/*.[1-8]
	one "mandoc -T lint -W warning man/*" $?
fi

echo "# fuzz (short run on the corpus)"
if command -v clang >/dev/null 2>&1; then
	$MAKE -s fuzz-check >"$out/fuzz.log" 2>&1
	rc=$?
	tail -n 3 "$out/fuzz.log"
	one "fuzz targets on their corpora" $rc
fi

[ "$skip" -gt 0 ] && echo "# $skip skipped (not counted)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]

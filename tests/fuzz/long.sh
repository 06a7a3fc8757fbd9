#!/bin/bash
# tests/fuzz/long.sh: each libFuzzer target for FUZZ_CPU_SECONDS of CPU time
# (default 600: ten CPU-minutes), one after the other, niced (make fuzz-long).
# libFuzzer's -max_total_time counts wall time, which a loaded machine
# stretches: this watches the target's own CPU time (/proc/PID/stat) and
# stops it with SIGINT, after which libFuzzer prints its final statistics.
# Each target's log is build/fuzz/long-TARGET.log; new inputs go to
# build/fuzz/work-TARGET (the committed corpus, tests/fuzz/corpus/TARGET,
# is read, not written).  A crash stops that target with its reproducer
# (crash-*) in the current directory: add it to the corpus as a
# regression case.  Exit status: 0 when no target crashed.
set -u
cd "$(dirname "$0")/../.." || exit 1
secs=${FUZZ_CPU_SECONDS:-600}
tck=$(getconf CLK_TCK)
rc=0
for f in build/fuzz/*_fuzz; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	t=$(basename "$f")
	mkdir -p "build/fuzz/work-$t"
	nice -n 19 "$f" -max_len=8192 -print_final_stats=1 "build/fuzz/work-$t" \
		"tests/fuzz/corpus/$t" >"build/fuzz/long-$t.log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 5
		cpu=$(awk -v t="$tck" '{ print int(($14 + $15) / t) }' "/proc/$pid/stat" 2>/dev/null)
		if [ "${cpu:-0}" -ge "$secs" ]; then kill -INT "$pid" 2>/dev/null; fi
	done
	wait "$pid"
	st=$?
	# 72: libFuzzer interrupted by the SIGINT above (no crash).
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "build/fuzz/long-$t.log")
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "build/fuzz/long-$t.log" | tail -1)
	if [ "$st" = 72 ] || [ "$st" = 0 ]; then
		echo "$t: ${runs:-?} runs, $cov, no crash"
	else
		echo "$t: exit $st: see build/fuzz/long-$t.log"
		rc=1
	fi
done
exit $rc

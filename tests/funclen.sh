#!/bin/sh
# funclen.sh: lists the functions in src/ longer than a limit (default
# 120 lines, from the opening to the closing brace), longest first.  The
# code is in the style of this tree: a function's braces sit in column 0.
# Exit 1 when any is longer.
set -u
cd "$(dirname "$0")/.."
max=${1:-120}
for f in $(find src -name '*.c' | sort); do
	awk -v f="$f" -v max="$max" '
	/^[A-Za-z_][A-Za-z0-9_]*\(/ { name = $0; sub(/\(.*/, "", name) }
	/^\{/ { start = NR }
	/^\}/ { if (start) { n = NR - start + 1; if (n > max) printf "%d %s:%d %s\n", n, f, start, name }; start = 0 }
	' "$f"
done | sort -rn | awk '{ print; bad = 1 } END { exit bad }'

#!/bin/sh
# layers.sh: checks the broker's layer rule (README, "Layout").
#
#   net      may include  net core replica storage state
#   core     may include  core replica storage state
#   replica  may include  replica storage state
#   storage  may include  storage
#   state    may include  state
#
# A broker header is always included by its folder ("state/fsm.h"); a
# bare name ("buf.h") must be a src/libmom header.  src/libmom and the
# client programs include no broker header at all.  state/ is
# deterministic: no threads, no I/O, no clock, no libraft, no nng.
# Prints one line per violation; exit 1 when there is any.
set -u
cd "$(dirname "$0")/.."
bad=0

allowed() { # layer
	case $1 in
	net) echo "net core replica storage state" ;;
	core) echo "core replica storage state" ;;
	replica) echo "replica storage state" ;;
	storage) echo "storage" ;;
	state) echo "state" ;;
	top) echo "net core replica storage state" ;;
	*) echo "" ;;
	esac
}

check_file() { # file layer
	f=$1
	layer=$2
	ok=$(allowed "$layer")
	# Quoted includes only: "dir/name.h" or "name.h".
	grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
	    sed 's/^\([0-9]*\):.*"\(.*\)".*/\1 \2/' >"$tmp"
	while read -r line inc; do
		case $inc in
		*/*)
			dir=${inc%%/*}
			case " $ok " in
			*" $dir "*) ;;
			*)
				echo "$f:$line: $layer may not include \"$inc\""
				bad=1
				;;
			esac
			[ -f "src/mom-broker/$inc" ] || {
				echo "$f:$line: \"$inc\" is no broker header"
				bad=1
			}
			;;
		*)
			# Programs (and the broker's top: main.c, options.c) include their own headers by name.
			[ -f "src/libmom/$inc" ] || { [ -f "$(dirname "$f")/$inc" ] &&
			    { [ "$layer" = client ] || [ "$layer" = top ]; }; } || {
				echo "$f:$line: \"$inc\" is not in src/libmom (a broker header names its folder)"
				bad=1
			}
			;;
		esac
	done <"$tmp"
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

for f in src/mom-broker/*/*.[ch]; do
	layer=$(basename "$(dirname "$f")")
	[ -n "$(allowed "$layer")" ] || {
		echo "$f: unknown layer '$layer' (add it to tests/layers.sh and README)"
		bad=1
		continue
	}
	check_file "$f" "$layer"
done
for f in src/mom-broker/*.[ch]; do
	check_file "$f" top
done
for f in src/libmom/*.[ch] src/mom-pub/*.[ch] src/mom-sub/*.[ch] src/mom-admin/*.[ch] \
    src/mom-auth/*.[ch]; do
	[ -f "$f" ] || continue
	check_file "$f" client
done

# state/: deterministic.  The clock comes in with each command.
for f in src/mom-broker/state/*.[ch]; do
	if grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<(pthread|raft|nng/|unistd|fcntl|time|sys/[a-pr-z]|dirent|stdatomic)' \
	    "$f"; then
		echo "$f: state/ does no threads, I/O or clock (the include above)"
		bad=1
	fi
	if grep -nE '\b(mom_now_ms|clock_gettime|gettimeofday|fopen|open|read|write|pthread_[a-z_]+)[[:space:]]*\(' \
	    "$f" | grep -v '^\([0-9]*\):[[:space:]]*\(/\*\|\*\)'; then
		echo "$f: state/ does no threads, I/O or clock (the call above)"
		bad=1
	fi
done

[ $bad -eq 0 ] && echo "layers: ok"
exit $bad

#!/usr/bin/awk -f
# promgroup.awk: the checks of a Prometheus text exposition that promtool
# 2.42 lets through.  Every sample belongs to the family of the last
# "# TYPE" line (its name, or NAME_sum/_count/_bucket for a summary or a
# histogram): a family's samples are contiguous.  Each family has one
# HELP and one TYPE, HELP first; a counter's name ends in _total; no name
# carries a unit other than seconds or bytes (_ms, _us, _kb...).  Prints
# each fault as "line N: ..." and exits 1 when there is any.
function fault(msg) { printf "line %d: %s\n", NR, msg; bad = 1 }
/^# HELP / {
	if ($3 in help) fault("second HELP for " $3)
	help[$3] = NR
	next
}
/^# TYPE / {
	if ($3 in type) fault("family " $3 " declared again (its samples are split)")
	if (!($3 in help)) fault("no HELP before TYPE " $3)
	type[$3] = $4
	fam = $3
	if ($4 == "counter" && fam !~ /_total$/) fault("counter " fam " does not end in _total")
	if (fam ~ /_(ms|us|ns|millis|micros|kb|mb|kib|mib|minutes|hours)(_|$)/)
		fault("family " fam " is not in seconds or bytes")
	next
}
/^#/ || /^$/ { next }
{
	name = $1
	sub(/\{.*/, "", name)
	if (fam == "") { fault("sample " name " before any TYPE"); next }
	ok = name == fam
	if (!ok && (type[fam] == "summary" || type[fam] == "histogram"))
		ok = name == fam "_sum" || name == fam "_count" || name == fam "_bucket"
	if (!ok) fault("sample " name " inside family " fam)
	seen[name] = 1
}
END { exit bad }

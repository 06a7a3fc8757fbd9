#!/usr/bin/env bats
# The documents checked against behaviour (issue 12, "Proof"): every
# example of README.md, examples/calculator/README.md and the EXAMPLES
# sections of the man pages runs against a broker on a free loopback port,
# in a temporary directory, with bin/ on PATH, and must exit as the text
# says (0 unless a comment says otherwise) and print what the text shows.
# The examples are read from the documents when the test runs
# (tests/e2e/doc-examples.py says how), so a new example is run by default;
# what cannot run here is in EXAMPLES_TABLE below, each with its reason.
# A failure names the document, the line and the output.

bats_require_minimum_version 1.5.0
load helpers

DOCX="$E2E_ROOT/tests/e2e/doc-examples.py"

# DOC :: SCOPE :: WHAT :: WHY
#   block    skip every block with a command matching the regex WHAT
#   line     skip the commands matching WHAT (the rest of the block runs)
#   forever  the commands matching WHAT run until interrupted by design:
#            they run a few seconds, and being stopped then is their success
#   given    run the shell command WHAT first: what the document takes for
#            granted (queues, files, a worker)
# Every regex is matched against a command after the default addresses
# were rewritten, continuation lines joined.
EXAMPLES_TABLE='
README.md :: block :: ^make run :: make run installs packages (apt-get) and keeps a broker in the foreground on the default port; make check would run this suite again
README.md :: forever :: mom-sub -q jobs --jsonl \| .*mom-pub -q copy --jsonl :: mom-sub without -e waits for more messages once the queue is empty
README.md :: given :: seq 1 5000 >big.txt :: a large file of the reader, for the --progress example
README.md :: line :: "receipts":\["\.\.\."\] :: a placeholder receipt that the reader copies from the answer of the long poll (mom-broker.8 shows it done with jq)

examples/calculator/README.md :: block :: ^div 10 4 :: the request formats, not commands
examples/calculator/README.md :: line :: ^make run :: make run installs packages (apt-get); the test broker stands in for it

man/mom-admin.1 :: block :: ^watch :: watch needs a terminal
man/mom-admin.1 :: line :: systemctl :: restarts a system service (systemd, root)
man/mom-admin.1 :: block :: mq1:7421 :: other hosts, TLS with real certificates, a token in ~/.mom
man/mom-admin.1 :: block :: /var/lib/node_exporter :: writes under /var/lib (root)

man/mom-auth.1 :: block :: -d /etc/mom-auth (keygen|token|serve) :: keys under /etc and /run (root), other hosts, TLS with real certificates
man/mom-auth.1 :: given :: mom-auth -d . keygen >/dev/null && echo pw | mom-auth -d . user add alice --pub "orders.>" >/dev/null && mom-auth -d . token -u alice >token :: a key pair in the current directory and a token in the file token

man/mom-broker.8 :: block :: /var/lib/mom -l :: a data directory under /var/lib, a socket in /run, a log in /var/log (root)
man/mom-broker.8 :: block :: 0\.0\.0\.0 :: listens on every interface, other hosts, TLS with real certificates (the configuration file of a cluster node: cluster-netns.bats runs it in network namespaces)
man/mom-broker.8 :: block :: -c /etc/mom :: a configuration file in /etc (root)
man/mom-broker.8 :: line :: ^@reboot :: starts a broker on the default port with its data under /var/lib (root)
man/mom-broker.8 :: block :: ^pkill :: would stop every broker on this machine, not only the test broker
man/mom-broker.8 :: given :: echo "{\"order\":1}" >order.json :: the order file that curl posts

man/mom-broker.conf.5 :: block :: ^data-dir /var/lib/mom :: a configuration file, not commands (its paths need root)
man/mom-broker.conf.5 :: block :: -c /etc/mom :: a configuration file in /etc (root)
man/mom-broker.conf.5 :: block :: ^listen tls\+tcp://0\.0\.0\.0 :: a configuration file, not commands (TLS with real certificates)
man/mom-broker.conf.5 :: block :: ^server tls\+tcp://mq1 :: a configuration file, not commands (other hosts)

man/mom-pub.1 :: given :: for q in jobs files calc backups mail; do mom-admin queue create $q || exit 1; done :: the queues the page publishes to
man/mom-pub.1 :: given :: for t in reports.daily hosts.df logs.nginx audit.mail; do mom-admin topic create $t || exit 1; done :: the topics the page publishes to
man/mom-pub.1 :: given :: printf "%%PDF-1.4\n" >report.pdf :: the file published as one message
man/mom-pub.1 :: given :: { mom-sub -q calc --newline -- bc || mom-sub -q calc -- bc; } 3>&- & :: the worker the page names for the request example (plain -- bc where mom-sub has no --newline yet)
man/mom-pub.1 :: block :: /var/log/nginx :: follows a web server log under /var/log that is not here; tail -F never ends
man/mom-pub.1 :: block :: tcp://old:7420 :: other hosts
man/mom-pub.1 :: block :: mom-sub -q calc -C 1 :: a responder for one request: it needs a requester running at the same time (the request example above is answered by the worker the page names)

man/mom-sub.1 :: given :: for q in jobs files a b deploys jobs.dead images dict calc; do mom-admin queue create $q || exit 1; done :: the queues the page consumes from
man/mom-sub.1 :: given :: mom-admin topic create orders.eu && mom-admin topic create sensors.kitchen && mom-pub -t sensors.kitchen -m 21.5 :: the topics the page subscribes to
man/mom-sub.1 :: given :: seq 20 | mom-pub -q jobs -l && find . -print0 | mom-pub -q files -0 && mom-pub -q deploys -m v1 :: messages for the examples that take some
man/mom-sub.1 :: given :: printf "#!/bin/sh\necho deploying \"\$1\"\n" >deploy.sh && chmod +x deploy.sh && mkdir -p out :: the deploy script and output directory the examples use
man/mom-sub.1 :: forever :: ^mom-sub -q jobs$ :: waits for more messages
man/mom-sub.1 :: forever :: mom-sub -q files -0 :: waits for more messages
man/mom-sub.1 :: forever :: mom-sub -q a (-e )?--jsonl :: without -e, waits for more messages
man/mom-sub.1 :: forever :: ^mom-sub -q \S+ .*-- :: a worker runs until stopped
man/mom-sub.1 :: block :: /var/log/orders.log :: writes under /var/log (root); runs until stopped
man/mom-sub.1 :: block :: \| mail :: mails another host (and mail(1) is not installed)

man/mom.7 :: line :: mom-broker -D /var/lib/mom :: a data directory under /var/lib and a log in /var/log (root); the test broker stands in for it
man/mom.7 :: given :: for q in a b files reindex; do mom-admin queue create $q || exit 1; done :: the queues the page uses without creating them
man/mom.7 :: given :: printf "#!/bin/sh\nexit 0\n" >work && printf "#!/bin/sh\necho \"\$@\"\n" >reindex && chmod +x work reindex :: the ./work and ./reindex programs the examples run
man/mom.7 :: given :: mom-pub -q reindex -m a.txt && mom-pub -q reindex -m a.txt :: a document queued twice, to reindex once
man/mom.7 :: forever :: mom-sub -q a --jsonl :: waits for more messages
'

DOCS=(README.md examples/calculator/README.md man/mom-admin.1 man/mom-auth.1
	man/mom-broker.8 man/mom-broker.conf.5 man/mom-pub.1 man/mom-sub.1 man/mom.7)

# run_examples DOC...: the examples of DOC (under $DOC_ROOT, default the
# repository) against a broker on free ports.
run_examples() {
	local hp
	hp=$(free_port)
	start_broker --http "127.0.0.1:$hp" || return 1
	printf '%s\n' "$EXAMPLES_TABLE" >"$T/table"
	mkdir -p "$T/work"
	ln -s "$E2E_ROOT/bin" "$T/work/bin"
	ln -s "$E2E_ROOT/build" "$T/work/build"
	run --separate-stderr timeout 600 python3 "$DOCX" --root "${DOC_ROOT:-$E2E_ROOT}" \
		--table "$T/table" --work "$T/work" --tmp "$T/run" \
		--url "$MOM_URL" --http "127.0.0.1:$hp" "$@" 3>&-
	[ -z "$stderr" ] || echo "# stderr: $stderr" >&3
	[ -n "${DOC_ROOT:-}" ] || echo "$output" | grep -v '^ok ' | sed 's/^/# /' >&3
	[ -n "${DOC_ROOT:-}" ] || assert_success
}

@test "the runner reports a wrong example with its document, line and output" {
	DOC_ROOT="$T/docs"
	mkdir -p "$DOC_ROOT/man"
	cat >"$DOC_ROOT/README.md" <<-'EOF'
	# A document with wrong examples

	```sh
	mom-admin queue create good
	mom-pub -q nosuch -m x
	mom-pub -q good -m x     # exits 3
	echo hello               # prints bye
	mom-admin queue move good good2   # moves: "moved 9 messages"
	```

	    $ echo 'a b'; echo "exit $?"
	    a  b
	    exit 1
	EOF
	cat >"$DOC_ROOT/man/x.1" <<-'EOF'
	.Sh DESCRIPTION
	.Bd -literal
	false
	.Ed
	.Sh EXAMPLES
	.Bd -literal -offset indent
	mom-admin queue create b2
	mom-sub -q b2 -C 1 -W 1
	.Ed
	EOF
	EXAMPLES_TABLE='README.md :: given :: mom-admin queue create good2 :: a queue'
	run_examples README.md man/x.1
	assert_failure 1
	assert_line 'ok README.md (given)'
	assert_line 'FAIL README.md:5: exit status 66'
	assert_line --partial "    mom-pub: no such queue 'nosuch'"
	assert_line 'FAIL README.md:6: exit status 0, the document says 3'
	assert_line "FAIL README.md:7: printed 'hello', the document says 'bye'"
	assert_line "FAIL README.md:8: no 'moved 9 messages' in the output"
	assert_line --partial 'FAIL README.md:11: $ echo'
	assert_line 'FAIL man/x.1:8: exit status 75'
	refute_line --partial 'README.md:4:'
	refute_line --partial 'man/x.1:3'
	assert_equal "$(grep -c '^FAIL' <<<"$output")" 6
}

@test "an example that does not end is reported, and its processes are stopped" {
	DOC_ROOT="$T/docs"
	mkdir -p "$DOC_ROOT"
	local q="never-ends-$$-$RANDOM$RANDOM"
	printf '```sh\nmom-admin queue create %s\nmom-sub -q %s &\nmom-sub -q %s\n```\n' "$q" "$q" "$q" >"$DOC_ROOT/README.md"
	EXAMPLES_TABLE=
	MOM_DOCX_BLOCK_S=3 run_examples README.md
	assert_failure 1
	assert_line 'FAIL README.md:4: did not finish within 3 s'
	run pgrep -f "mom-sub -q $q"
	assert_failure
}

@test "README.md: every sh block" {
	run_examples README.md
}

@test "examples/calculator/README.md: the commands and transcripts" {
	run_examples examples/calculator/README.md
}

@test "mom-admin.1 EXAMPLES" {
	run_examples man/mom-admin.1
}

@test "mom-auth.1 EXAMPLES" {
	run_examples man/mom-auth.1
}

@test "mom-broker.8 EXAMPLES" {
	run_examples man/mom-broker.8
}

@test "mom-broker.conf.5 EXAMPLES (all need root or other hosts: only the extraction is checked)" {
	run_examples man/mom-broker.conf.5
	assert_output --partial 'skip man/mom-broker.conf.5:'
}

@test "mom-pub.1 EXAMPLES" {
	run_examples man/mom-pub.1
}

@test "mom-sub.1 EXAMPLES" {
	run_examples man/mom-sub.1
}

@test "mom.7 EXAMPLES" {
	run_examples man/mom.7
}

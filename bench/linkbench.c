/*
 * linkbench.c: the cluster transport (src/mom-broker/replica/link.c) over
 * loopback, two links in one process: throughput and frames lost for a
 * stream of 64 KiB and of 1 KiB messages (at most STREAM_QUEUED of them
 * sent and not yet received), and the time of a 200 MB
 * transfer with 0 % and 1 % of frames dropped both ways by the fault
 * switch (built with -DMOM_FAULT_INJECTION: make bench-link).
 *
 *	linkbench [-q | -g]	-q: a tenth of the sizes, for a smoke test;
 *				-g: also 1 GiB (the largest message) both ways
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mom.h"
#include "replica/link.h"

/* Messages sent and not yet received, at most (see stream). */
#define STREAM_QUEUED	4096

static const uint8_t key[32] = "linkbench cluster key, 32 bytes";
static char fault_path[] = "/tmp/linkbench.XXXXXX";

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct link *
start(uint64_t id, char *url, size_t len)
{
	struct link_config cfg = {
		.self = id, .cluster = 7, .listen = "tcp://127.0.0.1:0",
		.key = key, .keylen = sizeof(key),
	};
	struct link *l;
	char err[256];

	if (link_start(&l, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "linkbench: %s\n", err);
		exit(1);
	}
	snprintf(url, len, "tcp://127.0.0.1:%d", link_port(l));
	return l;
}

static long long
stat_of(struct link *l, uint64_t peer, const char *name)
{
	json_t *o = json_object();
	char id[24];
	long long v;

	link_stats_json(l, o);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)peer);
	v = json_integer_value(json_object_get(json_object_get(o, id), name));
	json_decref(o);
	return v;
}

static void
set_drop(const char *fraction)
{
	FILE *fp = fopen(fault_path, "w");

	if (!fp || fprintf(fp, "* drop %s\n", fraction) < 0 || fclose(fp) != 0) {
		perror("linkbench: fault file");
		exit(1);
	}
	usleep(300000);	/* re-read at most every 100 ms */
}

/*
 * count messages of size bytes from a to b (node 2), as fast as link_send
 * takes them; waits for what arrives until nothing came for a second.
 */
static void
stream(struct link *a, struct link *b, size_t size, long count)
{
	long long gaps0 = stat_of(b, 1, "gaps"), frames0 = stat_of(a, 2, "frames_sent");
	long sent = 0, got = 0, busy = 0;
	double t0 = now_s(), t1, last = t0;
	struct link_msg *m;
	uint8_t *buf = calloc(1, size);
	int rc;

	while (sent < count) {
		/* A one-frame message that waits LINK_STALL_MS for the link is
		 * dropped (raft has sent a newer one by then): keep the queue
		 * short enough that none does. */
		if (sent - got >= STREAM_QUEUED) {
			if ((m = link_recv(b))) {
				got++;
				link_msg_free(m);
				last = now_s();
			} else if (now_s() - last > 2.0)
				break; /* lost: reported below */
			else
				usleep(50);
			continue;
		}
		if ((rc = link_send(a, 2, 0, LINK_RAFT, buf, size)) == 0)
			sent++;
		else if (rc == MOM_EUNAVAIL)
			busy++, usleep(20);
		while ((m = link_recv(b))) {
			got++;
			link_msg_free(m);
		}
	}
	last = t1 = now_s();
	while (got < count && now_s() - last < 1.0) {
		if ((m = link_recv(b))) {
			got++;
			link_msg_free(m);
			last = t1 = now_s();
		} else
			usleep(100);
	}
	printf("stream %6zu B x %6ld: %8.3f s  %9.0f msg/s  %7.1f MB/s  received %ld"
	    " (%.2f %% lost)  frames %lld, gaps %lld (%.2f %%)  send busy %ld\n",
	    size, count, t1 - t0, got / (t1 - t0), got * (double)size / (t1 - t0) / 1e6,
	    got, 100.0 * (count - got) / count, stat_of(a, 2, "frames_sent") - frames0,
	    stat_of(b, 1, "gaps") - gaps0,
	    100.0 * (stat_of(b, 1, "gaps") - gaps0) /
	    (double)(stat_of(a, 2, "frames_sent") - frames0 + stat_of(b, 1, "gaps") - gaps0),
	    busy);
	free(buf);
	if (got < count) {
		fprintf(stderr, "linkbench: %ld of %ld messages of %zu bytes never arrived\n",
		    count - got, count, size);
		exit(1);
	}
}

static void
transfer(struct link *a, struct link *b, size_t size, const char *drop)
{
	long long resent0 = stat_of(a, 2, "resent"), gaps0 = stat_of(b, 1, "gaps");
	long long fd0 = stat_of(a, 2, "fault_dropped") + stat_of(b, 1, "fault_dropped");
	uint8_t *buf = malloc(size);
	struct link_msg *m = NULL;
	double t0, t1;
	size_t i;

	for (i = 0; i < size; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 16));
	set_drop(drop);
	t0 = now_s();
	if (link_send(a, 2, 0, LINK_RAFT, buf, size) != 0) {
		fprintf(stderr, "linkbench: link_send of %zu bytes refused\n", size);
		exit(1);
	}
	while (!(m = link_recv(b)) && now_s() - t0 < 120)
		usleep(200);
	t1 = now_s();
	if (!m || m->len != size || memcmp(m->data, buf, size) != 0) {
		fprintf(stderr, "linkbench: the %zu bytes did not arrive intact\n", size);
		exit(1);
	}
	printf("transfer %4zu MB, drop %s: %7.3f s  %7.1f MB/s  resent %lld chunks, "
	    "dropped by the switch %lld, gaps seen %lld\n", size >> 20, drop, t1 - t0,
	    size / (t1 - t0) / 1e6, stat_of(a, 2, "resent") - resent0,
	    stat_of(a, 2, "fault_dropped") + stat_of(b, 1, "fault_dropped") - fd0,
	    stat_of(b, 1, "gaps") - gaps0);
	link_msg_free(m);
	free(buf);
	set_drop("0");
}

int
main(int argc, char **argv)
{
	int q = argc > 1 && strcmp(argv[1], "-q") == 0, fd;
	int g = argc > 1 && strcmp(argv[1], "-g") == 0;
	char ua[64], ub[64];
	struct link *a, *b;

	if ((fd = mkstemp(fault_path)) < 0) {
		perror("linkbench: mkstemp");
		return 1;
	}
	close(fd);
	setenv("MOM_FAULT_LINK", fault_path, 1);
	a = start(1, ua, sizeof(ua));
	b = start(2, ub, sizeof(ub));
	link_peer_add(a, 2, ub);
	link_peer_add(b, 1, ua);
	while (link_send(a, 2, 0, LINK_RAFT, "", 0) != 0 ||
	    link_send(b, 1, 0, LINK_RAFT, "", 0) != 0)
		usleep(10000);
	usleep(100000);
	for (struct link_msg *m; (m = link_recv(b)); link_msg_free(m))
		;
	for (struct link_msg *m; (m = link_recv(a)); link_msg_free(m))
		;
	stream(a, b, 64 << 10, q ? 300 : 3000);
	stream(a, b, 1 << 10, q ? 10000 : 100000);
	transfer(a, b, (q ? 20u : 200u) << 20, "0");
	transfer(a, b, (q ? 20u : 200u) << 20, "0.01");
	if (g) {
		transfer(a, b, (size_t)1 << 30, "0");
		transfer(a, b, (size_t)1 << 30, "0.01");
	}
	link_stop(a);
	link_stop(b);
	unlink(fault_path);
	return 0;
}

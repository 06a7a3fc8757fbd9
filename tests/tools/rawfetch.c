/*
 * rawfetch.c: a queue consumer that holds its receipts across runs, for
 * the stale-receipt tests (test-only tool, built into build/tools/rawfetch).
 * mom-sub settles what it receives itself; these tests need a receipt kept
 * while the broker restarts or the lease moves on, then settled by hand.
 *
 *	rawfetch URL fetch QUEUE CONSUMER MAX
 *	rawfetch URL ack|nack QUEUE CONSUMER RECEIPT...
 *
 * fetch receives up to MAX messages (no wait) as consumer CONSUMER and
 * prints "RECEIPT PAYLOAD" a line.  ack and nack (unseen: no delivery
 * counted) settle the receipts with a closing FETCH, as the HTTP plane
 * does, and print "stale RECEIPT" for each receipt the broker refused.
 * Exit 0, or 1 with one line on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "buf.h"
#include "wire.h"

static int
die(const char *what, const char *why)
{
	fprintf(stderr, "rawfetch: %s: %s\n", what, why);
	return 1;
}

static uint64_t
num(const char *s)
{
	char              *end;
	unsigned long long v = strtoull(s, &end, 10);

	if (*s == '\0' || *end != '\0') {
		fprintf(stderr, "rawfetch: not a number: %s\n", s);
		exit(1);
	}
	return (uint64_t)v;
}

/* Sends frame, prints the deliveries and stale receipts of the answer. */
static int
roundtrip(const char *url, const struct mom_buf *frame)
{
	nng_socket          s;
	char               *rep = NULL, err[256];
	size_t              len = 0;
	struct mom_rd       rd;
	struct mom_delivery d;
	uint64_t            n, i;
	int                 rv;

	if ((rv = nng_req0_open(&s)) != 0)
		return die("socket", nng_strerror(rv));
	nng_setopt_ms(s, NNG_OPT_RECVTIMEO, 10000);
	nng_setopt_ms(s, NNG_OPT_SENDTIMEO, 10000);
	if ((rv = nng_dial(s, url, NULL, 0)) != 0 ||
	    (rv = nng_send(s, frame->data, frame->len, 0)) != 0 ||
	    (rv = nng_recv(s, &rep, &len, NNG_FLAG_ALLOC)) != 0) {
		nng_close(s);
		return die(url, nng_strerror(rv));
	}
	rv = mom_wire_status((const uint8_t *)rep, len, MOM_OP_FETCH, &rd, err, sizeof(err));
	if (rv != 0) {
		nng_free(rep, len);
		nng_close(s);
		return die("broker", err);
	}
	(void)mom_rd_varint(&rd);
	n = mom_rd_varint(&rd);
	for (i = 0; i < n && mom_delivery_decode(&rd, &d) == 0; i++)
		printf("%" PRIu64 " %.*s\n", d.receipt, (int)d.payload.n,
		    (const char *)d.payload.p);
	/* Brokers before stale receipts were reported end here. */
	n = mom_rd_left(&rd) > 0 ? mom_rd_varint(&rd) : 0;
	for (i = 0; i < n && !rd.err; i++)
		printf("stale %" PRIu64 "\n", mom_rd_varint(&rd));
	rv = rd.err ? die("broker", "malformed answer") : 0;
	nng_free(rep, len);
	nng_close(s);
	return rv;
}

int
main(int argc, char **argv)
{
	struct mom_fetch f = { 0 };
	struct mom_buf   b;
	uint64_t        *rc = NULL, *dl = NULL;
	int              i, n, rv;

	if (argc < 6 || (strcmp(argv[2], "fetch") != 0 && strcmp(argv[2], "ack") != 0 &&
	    strcmp(argv[2], "nack") != 0) || (strcmp(argv[2], "fetch") == 0 && argc != 6)) {
		fprintf(stderr, "usage: rawfetch URL fetch QUEUE CONSUMER MAX\n"
		    "       rawfetch URL ack|nack QUEUE CONSUMER RECEIPT...\n");
		return 1;
	}
	f.consumer = num(argv[4]);
	f.kind = MOM_KIND_QUEUE;
	f.name.p = (const uint8_t *)argv[3];
	f.name.n = strlen(argv[3]);
	f.durable.p = (const uint8_t *)"";
	if (strcmp(argv[2], "fetch") == 0)
		f.max_msgs = num(argv[5]);
	else {
		n = argc - 5;
		rc = calloc((size_t)n, sizeof(*rc));
		dl = calloc((size_t)n, sizeof(*dl));
		if (rc == NULL || dl == NULL)
			return die("memory", "out of memory");
		for (i = 0; i < n; i++) {
			rc[i] = num(argv[5 + i]);
			dl[i] = MOM_NACK_UNSEEN;
		}
		f.flags = MOM_FF_CLOSE;
		if (strcmp(argv[2], "ack") == 0) {
			f.nacks = (uint64_t)n;
			f.acks = rc;
		} else {
			f.nnacks = (uint64_t)n;
			f.nack_receipts = rc;
			f.nack_delays = dl;
		}
	}
	mom_buf_init(&b);
	mom_frame_encode(&b, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(&b, &f);
	rv = b.err ? die("memory", "out of memory") : roundtrip(argv[1], &b);
	mom_buf_fini(&b);
	free(rc);
	free(dl);
	nng_fini();
	return rv;
}

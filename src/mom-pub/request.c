/*
 * request.c: mom-pub -r, the requester's side of request/reply.
 *
 * The requester creates a queue of its own, "_reply." and 16 random hex
 * digits: private to its token's subject (names.h), its messages expire,
 * and the queue itself goes once nobody fetched from it for its idle
 * expiry (a requester killed with kill -9 leaves nothing behind for
 * long).  It publishes the request with the headers Mom-Reply-To
 * (that queue) and Mom-Correlation-Id (a random id), then long-polls the
 * reply queue.  A reply whose correlation id is not ours (a stale one, or
 * one meant for an earlier request) is acked and dropped unseen; ours is
 * written to stdout, acked, and its Mom-Exit-Status becomes the exit
 * status.  The reply queue is deleted at the end, whatever the end was.
 *
 * A fetch that is in flight when the broker restarts is sent again by
 * the client (nng resends a request whose connection broke), so a long
 * poll survives a restart: the queue is durable and so is the request.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mom.h"
#include "pub.h"
#include "wire.h"

#define REQ_POLL_MS 10000 /* one long poll: well under the client's resend time */
#define REQ_MAX     16    /* messages per fetch */
#define REQ_SLACK   250   /* ms the broker may take past a poll's wait */

void
req_names(char *queue, size_t qlen, char *corr, size_t clen)
{
	snprintf(queue, qlen, "%s%016" PRIx64, REQ_PREFIX, mom_cli_random());
	snprintf(corr, clen, "%016" PRIx64 "%016" PRIx64, mom_cli_random(), mom_cli_random());
}

/* One admin request, silent: 0 or an error code, the broker's message in err. */
static int
admin(struct mom_client *c, json_t *req, int64_t timeout_ms, char *err, size_t errlen)
{
	struct mom_buf b;
	struct mom_rd  body;
	nng_msg       *rep;
	char          *js;
	int            rv;

	js = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (js == NULL) {
		snprintf(err, errlen, "out of memory");
		return MOM_ENOMEM;
	}
	mom_buf_init(&b);
	mom_frame_encode(&b, MOM_OP_ADMIN, false, 0);
	mom_buf_put_str(&b, js);
	free(js);
	rv = mom_client_call(c, &b, &rep, &body, timeout_ms, err, errlen);
	mom_buf_fini(&b);
	if (rv == 0)
		nng_msg_free(rep);
	return rv;
}

int
req_create(struct mom_client *c, const char *queue, uint64_t ttl_ms, uint64_t expire_ms,
    int64_t timeout_ms, char *err, size_t errlen)
{
	return admin(c, json_pack("{s:s, s:s, s:I, s:I}", "op", "queue.create", "name", queue,
	    "ttl_ms", (json_int_t)ttl_ms, "idle_expire_ms", (json_int_t)expire_ms), timeout_ms,
	    err, errlen);
}

void
req_delete(struct mom_client *c, const char *queue, int64_t timeout_ms)
{
	char err[256];

	(void)admin(c, json_pack("{s:s, s:s}", "op", "queue.delete", "name", queue), timeout_ms,
	    err, sizeof(err));
}

/* Mom-Exit-Status: 0-255 in decimal, else 0. */
static int
exit_status(const struct mom_delivery *d)
{
	struct mom_slice v;
	int              st = 0;
	size_t           i;

	if (!mom_hdr_get(d->headers.p, d->headers.n, MOM_HDR_EXIT, &v) || v.n == 0 || v.n > 3)
		return 0;
	for (i = 0; i < v.n; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return 0;
		st = st * 10 + (v.p[i] - '0');
	}
	return st <= 255 ? st : 0;
}

static int
is_ours(const struct mom_delivery *d, const char *corr)
{
	struct mom_slice v;

	return mom_hdr_get(d->headers.p, d->headers.n, MOM_HDR_CORRELATION, &v) &&
	    v.n == strlen(corr) && memcmp(v.p, corr, v.n) == 0;
}

static void
fetch_frame(struct mom_buf *b, uint64_t consumer, const char *queue, uint64_t max, uint64_t wait_ms,
    uint64_t flags, const uint64_t *acks, size_t nacks)
{
	struct mom_fetch f;

	memset(&f, 0, sizeof(f));
	f.consumer = consumer;
	f.kind = MOM_KIND_QUEUE;
	f.name.p = (const uint8_t *)queue;
	f.name.n = strlen(queue);
	f.max_msgs = max;
	f.max_bytes = 8u << 20;
	f.wait_ms = wait_ms;
	f.flags = flags;
	f.nacks = nacks;
	f.acks = acks;
	mom_buf_reset(b);
	mom_frame_encode(b, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(b, &f);
}

int
req_wait(const struct mom_cli *cli, struct mom_client *c, const char *queue, const char *corr,
    int64_t deadline)
{
	struct mom_buf req;
	uint64_t       consumer = mom_cli_random(), acks[REQ_MAX];
	size_t         nacks = 0;
	int            status = -1;

	mom_buf_init(&req);
	while (status < 0) {
		struct mom_rd       body;
		struct mom_delivery d;
		nng_msg            *rep;
		void               *tag;
		char                err[512];
		uint64_t            wait = REQ_POLL_MS, count, i;
		int64_t             tmo = -1;
		int                 rv;

		if (deadline >= 0) {
			int64_t left = deadline - mom_mono_ms();

			if (left <= 0) {
				mom_cli_err(cli, "timed out: no reply");
				status = MOM_EXIT_TEMPFAIL;
				break;
			}
			if ((uint64_t)left < wait)
				wait = (uint64_t)left;
			tmo = left + REQ_SLACK;
		}
		fetch_frame(&req, consumer, queue, REQ_MAX, wait, 0, acks, nacks);
		if ((rv = mom_client_submit(c, &req, NULL, tmo)) == 0)
			rv = mom_client_next(c, &rep, &tag, tmo);
		if (rv == MOM_ETIMEDOUT) {
			mom_cli_err(cli, "timed out: no reply");
			status = MOM_EXIT_TEMPFAIL;
			break;
		}
		if (rv != 0) {
			if (rv != MOM_ECLOSED)
				mom_cli_err(cli, "%s", rv == MOM_EUNAVAIL ?
				    "lost the connection to the broker while waiting for the reply" :
				    mom_strerror(rv));
			status = mom_err_exit(rv);
			break;
		}
		if ((rv = mom_client_status(rep, MOM_OP_FETCH, &body, err, sizeof(err))) != 0) {
			nng_msg_free(rep);
			if (rv == MOM_EBUSY) {
				usleep(20000);
				continue;
			}
			/* A restart: the reply queue and the request are stored, ask again. */
			if (mom_client_replaced(rv) && (rv = mom_client_again(c, rv)) == 0)
				continue;
			if (rv == MOM_EUNAVAIL || rv == MOM_ECLOSED) {
				if (rv == MOM_EUNAVAIL)
					mom_cli_err(cli, "lost the broker while waiting for the reply");
				status = mom_err_exit(rv);
				break;
			}
			mom_cli_err(cli, "reply queue %s: %s", queue, err);
			status = mom_err_exit(rv);
			break;
		}
		/* The acks went out with this fetch. */
		nacks = 0;
		(void)mom_rd_varint(&body); /* ready */
		count = mom_rd_varint_max(&body, REQ_MAX);
		if (body.err) {
			nng_msg_free(rep);
			mom_cli_err(cli, "broker sent a malformed reply");
			status = MOM_EXIT_FAIL;
			break;
		}
		for (i = 0; i < count; i++) {
			if (mom_delivery_decode(&body, &d) != 0) {
				mom_cli_err(cli, "broker sent a malformed delivery");
				status = MOM_EXIT_FAIL;
				break;
			}
			if (status < 0 && is_ours(&d, corr)) {
				if (mom_write_all(STDOUT_FILENO, d.payload.p, d.payload.n) != 0) {
					mom_cli_err(cli, "standard output: %s", strerror(errno));
					status = MOM_EXIT_IOERR;
					continue; /* not written: not acked */
				}
				status = exit_status(&d);
				mom_cli_info(cli, "reply after %" PRIu64 " deliveries, exit status %d",
				    d.deliveries, status);
			} else
				mom_cli_info(cli, "dropped a reply that is not ours");
			if (nacks < REQ_MAX)
				acks[nacks++] = d.receipt;
		}
		nng_msg_free(rep);
	}
	/* Settle what was read and leave (best effort: the queue goes next). */
	if (nacks > 0) {
		struct mom_rd body;
		nng_msg      *rep;
		char          err[256];

		fetch_frame(&req, consumer, queue, 0, 0, MOM_FF_CLOSE, acks, nacks);
		if (mom_client_call(c, &req, &rep, &body, 2000, err, sizeof(err)) == 0)
			nng_msg_free(rep);
	}
	mom_buf_fini(&req);
	return status;
}

/*
 * sub.c: mom-sub's engine.
 *
 * One fetch is in flight at a time; it carries the acks of everything the
 * previous reply delivered and that was since written to stdout, so a
 * steady stream costs one round trip per batch.  A message is acked only
 * after its bytes were written (at-least-once): if stdout fails, what was
 * not written is given back (exit 0 when the reader of a pipe went away,
 * 74 for any other write error).  On exit (count reached, -e, -W, a signal)
 * a last "close" request settles the acks and releases anything else this
 * consumer held, so other consumers get it at once.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "format.h"
#include "mom.h"
#include "sub.h"
#include "wire.h"

#define POLL_MS 10000 /* one long poll; well under the client's resend time */

static volatile int stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct sub {
	struct sub_options   *o;
	struct mom_client *c;
	uint64_t           consumer;
	uint64_t          *acks, *nacks;
	size_t             nack_n, ack_n, cap;
	uint64_t           got;
	struct mom_buf     out, req;
	int                status;
	int                out_broken;
};

static int
grow(struct sub *s, size_t need)
{
	uint64_t *a, *n;
	size_t    cap;

	if (need <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 256;
	while (cap < need)
		cap *= 2;
	if ((a = realloc(s->acks, cap * sizeof(*a))) == NULL)
		return MOM_ENOMEM;
	s->acks = a;
	if ((n = realloc(s->nacks, cap * sizeof(*n))) == NULL)
		return MOM_ENOMEM;
	s->nacks = n;
	s->cap = cap;
	return 0;
}

static void
render(struct sub *s, const struct mom_delivery *d)
{
	switch (s->o->out) {
	case OUT_LINES:
		mom_buf_put(&s->out, d->payload.p, d->payload.n);
		mom_buf_put_u8(&s->out, '\n');
		break;
	case OUT_NUL:
		mom_buf_put(&s->out, d->payload.p, d->payload.n);
		mom_buf_put_u8(&s->out, '\0');
		break;
	case OUT_NONE:
		break;
	case OUT_FORMAT:
		mom_fmt_render(s->o->fmt, d, &s->out);
		break;
	case OUT_JSONL:
		mom_jsonl_render(d, &s->out);
		break;
	}
}

/* Writes all of s->out; 0, or -1 when stdout is gone. */
static int
write_out(struct sub *s)
{
	if (mom_write_all(STDOUT_FILENO, s->out.data, s->out.len) != 0)
		return -1;
	mom_buf_reset(&s->out);
	return 0;
}

static void
fetch_req(struct sub *s, uint64_t max, uint64_t wait_ms, uint64_t flags)
{
	struct mom_fetch f;
	uint64_t         delays[1] = { 0 };

	memset(&f, 0, sizeof(f));
	f.consumer = s->consumer;
	f.kind = s->o->kind;
	f.name.p = (const uint8_t *)s->o->name;
	f.name.n = strlen(s->o->name);
	if (s->o->durable) {
		f.durable.p = (const uint8_t *)s->o->durable;
		f.durable.n = strlen(s->o->durable);
	}
	f.from = s->o->from;
	f.from_time_ms = (uint64_t)s->o->from_time_ms;
	f.max_msgs = max;
	f.max_bytes = 4u << 20;
	f.wait_ms = wait_ms;
	f.flags = flags | (s->o->noack ? MOM_FF_NOACK : 0);
	f.nacks = s->ack_n;
	f.acks = s->acks;
	/* Unused prefetched messages go back uncounted (delay 0, unseen). */
	f.nnacks = s->nack_n;
	f.nack_receipts = s->nacks;
	(void)delays;
	mom_buf_reset(&s->req);
	mom_frame_encode(&s->req, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(&s->req, &f);
}

/* Sends the final request: settle acks, give back the rest. */
static void
close_consumer(struct sub *s)
{
	struct mom_rd body;
	nng_msg      *rep;
	char          err[256];
	int           rv;

	if (s->o->noack && s->ack_n == 0 && s->nack_n == 0 && s->o->durable)
		return;
	fetch_req(s, 0, 0, MOM_FF_CLOSE);
	rv = mom_client_call(s->c, &s->req, &rep, &body, 5000, err, sizeof(err));
	if (rv == 0) {
		nng_msg_free(rep);
		s->ack_n = s->nack_n = 0;
	} else if (s->ack_n > 0)
		mom_cli_err(&s->o->cli, "could not ack the last %zu messages (%s): "
		    "they will be delivered again", s->ack_n, err);
}

static int
ensure_queue(struct sub *s)
{
	return mom_cli_ensure(&s->o->cli, s->c, MOM_KIND_QUEUE, s->o->name, 10000);
}

/* One fetch round trip; returns 0 or an error code; *n messages handled. */
static int
round_trip(struct sub *s, uint64_t wait_ms, size_t *n, uint64_t *ready)
{
	struct mom_rd       body;
	struct mom_delivery d;
	nng_msg            *rep;
	void               *tag;
	char                err[512];
	uint64_t            max = s->o->prefetch, count, i;
	int                 rv;

	*n = 0;
	if (s->o->count && s->o->count - s->got < max)
		max = s->o->count - s->got;
	fetch_req(s, max, wait_ms, 0);
	if ((rv = mom_client_submit(s->c, &s->req, NULL, -1)) != 0)
		return rv;
	/* The broker answers within wait_ms; allow it some slack. */
	if ((rv = mom_client_next(s->c, &rep, &tag, -1)) != 0)
		return rv;
	if ((rv = mom_client_status(rep, MOM_OP_FETCH, &body, err, sizeof(err))) != 0) {
		nng_msg_free(rep);
		if (rv == MOM_EBUSY) {
			usleep(20000);
			return 0;
		}
		/* A restart: the same fetch (its acks too) goes to the broker that comes back. */
		if (mom_client_replaced(rv) && (rv = mom_client_again(s->c, rv)) == 0)
			return 0;
		if (rv == MOM_EUNAVAIL || rv == MOM_ECLOSED)
			return rv;
		mom_cli_err(&s->o->cli, "%s", err);
		s->status = mom_err_exit(rv);
		return rv;
	}
	/* The acks went out with this request. */
	s->ack_n = s->nack_n = 0;
	*ready = mom_rd_varint(&body);
	count = mom_rd_varint_max(&body, 100000);
	if (body.err || grow(s, count) != 0) {
		nng_msg_free(rep);
		mom_cli_err(&s->o->cli, "broker sent a malformed reply");
		s->status = MOM_EXIT_FAIL;
		return MOM_EPROTO;
	}
	for (i = 0; i < count; i++) {
		if (mom_delivery_decode(&body, &d) != 0) {
			nng_msg_free(rep);
			mom_cli_err(&s->o->cli, "broker sent a malformed delivery");
			s->status = MOM_EXIT_FAIL;
			return MOM_EPROTO;
		}
		render(s, &d);
		s->acks[s->ack_n++] = d.receipt;
	}
	nng_msg_free(rep);
	if (write_out(s) != 0) {
		/* Nothing of this batch is known to be written: give it all back. */
		memcpy(s->nacks, s->acks, s->ack_n * sizeof(*s->acks));
		s->nack_n = s->ack_n;
		s->ack_n = 0;
		s->out_broken = 1;
		/* A reader that went away is the documented quiet end. */
		if (errno != EPIPE) {
			mom_cli_err(&s->o->cli, "standard output: %s", strerror(errno));
			s->status = MOM_EXIT_IOERR;
		}
		return 0;
	}
	if (s->o->noack)
		s->ack_n = 0;
	s->got += count;
	*n = (size_t)count;
	return 0;
}

int
sub_run(struct sub_options *o)
{
	struct sub       s;
	struct sigaction sa;
	int64_t          last = mom_mono_ms();
	int              rv;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.consumer = mom_cli_random();
	mom_buf_init(&s.out);
	mom_buf_init(&s.req);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rv = mom_cli_connect(&o->cli, &s.c, 2)) != 0)
		return rv;
	mom_client_set_interrupt(s.c, &stop_flag);
	if (o->create && (rv = ensure_queue(&s)) != 0) {
		s.status = mom_err_exit(rv);
		goto out;
	}
	while (!stop_flag && !s.out_broken && (o->count == 0 || s.got < o->count)) {
		uint64_t wait = POLL_MS, ready = 0;
		size_t   n;

		if (o->drain)
			wait = 0;
		else if (o->wait_ms >= 0) {
			int64_t left = o->wait_ms - (mom_mono_ms() - last);

			if (left <= 0) {
				mom_cli_info(&o->cli, "no message for %" PRId64 " ms", o->wait_ms);
				s.status = MOM_EXIT_TEMPFAIL;
				break;
			}
			if ((uint64_t)left < wait)
				wait = (uint64_t)left;
		}
		if ((rv = round_trip(&s, wait, &n, &ready)) != 0) {
			if (rv == MOM_ECLOSED)
				break;
			if (s.status == 0) {
				mom_cli_err(&o->cli, "%s", rv == MOM_EUNAVAIL ?
				    "lost the connection to the broker" : mom_strerror(rv));
				s.status = mom_err_exit(rv);
			}
			break;
		}
		if (n > 0)
			last = mom_mono_ms();
		else if (o->drain && ready == 0)
			break;
	}
	/* A signal may have cut a fetch short: its reply is lost, so release. */
	stop_flag = 0;
	close_consumer(&s);
out:
	mom_client_close(s.c);
	mom_buf_fini(&s.out);
	mom_buf_fini(&s.req);
	free(s.acks);
	free(s.nacks);
	return s.status;
}

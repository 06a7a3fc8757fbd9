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
 *
 * Pipe mode: when stdout is a pipe, written is not read.  A message is
 * acknowledged only once the reader took its last byte out of the pipe
 * (ioctl FIONREAD tells how many written bytes are still unread), the
 * leases of what waits in the pipe are extended ("touch" nacks every
 * third of the ack wait, at most every 5 s), and when the reader goes away
 * what it never read is given back uncounted (one it read in part, counted).
 * Writes go out at most PIPE_BUF at a time when poll says there is room,
 * so that the loop never blocks in write(2) and can keep the leases.
 *
 * Copies: a broker delivers again what it holds no ack for (after a
 * restart or a change of leader, or when the ack went to a leader that
 * lost it).  A message this process already wrote is then acknowledged,
 * not written again (libmom/seen.h: the last 65,536 written).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "format.h"
#include "mom.h"
#include "progress.h"
#include "seen.h"
#include "sub.h"
#include "wire.h"

#define POLL_MS 10000 /* one long poll; well under the client's resend time */
#define PIPE_POLL_MS 500 /* pipe mode, while messages wait in the pipe */
#define PIPE_SETTLE_MAX 1024 /* pipe mode: acks that go out without waiting for a fetch */

static volatile int stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Pipe mode: a message written (or to be written) to the pipe, not known read. */
struct pend {
	uint64_t receipt;
	uint64_t start, end; /* its bytes in the stream written to stdout */
};

struct sub {
	struct sub_options   *o;
	struct mom_client *c;
	uint64_t           consumer, settler;
	uint64_t          *acks, *nacks, *ndelays;
	size_t             nack_n, ack_n, cap;
	uint64_t           got;
	struct mom_buf     out, req;
	int                status;
	int                out_broken;
	int                pipe;       /* pipe mode (see the top) */
	size_t             out_off;    /* pipe mode: bytes of out already written */
	uint64_t           written;    /* pipe mode: bytes written to stdout */
	struct pend       *pend;       /* pipe mode: pend_n from pend_h, in stream order */
	size_t             pend_h, pend_n, pend_cap;
	int64_t            touch_ms, last_touch;
	int                gone;       /* pipe mode: the reader went away */
	int64_t            idle_ms;    /* pipe mode: the last wait for the reader */
	struct mom_progress prog;
	char               refusal[512]; /* the last retried refusal ("not the leader") */
	struct mom_seen    seen;       /* what was written: a copy of it is acked, not written */
	uint64_t           copies;     /* such copies */
};

/* Room for need acks and need nacks. */
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
	if ((n = realloc(s->ndelays, cap * sizeof(*n))) == NULL)
		return MOM_ENOMEM;
	s->ndelays = n;
	s->cap = cap;
	return 0;
}

/* Pipe mode: room for need more messages in the pipe. */
static int
pend_grow(struct sub *s, size_t need)
{
	struct pend *p;
	size_t       cap;

	if (s->pend_h > 0) {
		memmove(s->pend, s->pend + s->pend_h, s->pend_n * sizeof(*s->pend));
		s->pend_h = 0;
	}
	if (s->pend_n + need <= s->pend_cap)
		return 0;
	cap = s->pend_cap ? s->pend_cap : 256;
	while (cap < s->pend_n + need)
		cap *= 2;
	if ((p = realloc(s->pend, cap * sizeof(*p))) == NULL)
		return MOM_ENOMEM;
	s->pend = p;
	s->pend_cap = cap;
	return 0;
}

static void
add_nack(struct sub *s, uint64_t receipt, uint64_t delay)
{
	s->nacks[s->nack_n] = receipt;
	s->ndelays[s->nack_n++] = delay;
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
fetch_req(struct sub *s, uint64_t consumer, uint64_t max, uint64_t wait_ms, uint64_t flags)
{
	struct mom_fetch f;

	memset(&f, 0, sizeof(f));
	f.consumer = consumer;
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
	/* Each nack says how (MOM_NACK_*): given back unseen, in part read, a touch. */
	f.nnacks = s->nack_n;
	f.nack_receipts = s->nacks;
	f.nack_delays = s->ndelays;
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
	fetch_req(s, s->consumer, 0, 0, MOM_FF_CLOSE);
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

/* Pipe mode: keeps d's receipt until the reader took its bytes (just rendered). */
static void
pend_add(struct sub *s, const struct mom_delivery *d, size_t before)
{
	struct pend *p = &s->pend[s->pend_h + s->pend_n++];

	p->receipt = d->receipt;
	p->start = s->written + (before - s->out_off);
	p->end = s->written + (s->out.len - s->out_off);
}

/* Writes a fetched batch (not in pipe mode, where pipe_write does). */
static void
write_batch(struct sub *s, uint64_t count)
{
	size_t i;

	if (write_out(s) != 0) {
		/* Nothing of this batch is known to be written: give it all back. */
		for (i = 0; i < s->ack_n; i++)
			add_nack(s, s->acks[i], MOM_NACK_UNSEEN);
		s->ack_n = 0;
		s->out_broken = 1;
		/* A reader that went away is the documented quiet end. */
		if (errno != EPIPE) {
			mom_cli_err(&s->o->cli, "standard output: %s", strerror(errno));
			s->status = MOM_EXIT_IOERR;
		}
		return;
	}
	if (s->o->noack)
		s->ack_n = 0;
	s->got += count;
}

/*
 * One fetch round trip for at most max messages, as consumer (with flags);
 * returns 0 or an error code; *n messages handled, *ready what the broker
 * said is left (UINT64_MAX when no broker answered: a refusal to retry).
 */
static int
round_trip(struct sub *s, uint64_t consumer, uint64_t max, uint64_t wait_ms, uint64_t flags,
    size_t *n, uint64_t *ready)
{
	struct mom_rd       body;
	struct mom_delivery d;
	nng_msg            *rep;
	void               *tag;
	char                err[512];
	uint64_t            count, i, fresh;
	size_t              before;
	int                 rv;

	*n = 0;
	/*
	 * Unknown until a broker answers: a refusal that is retried ("not
	 * the leader", "busy") says nothing of what is left, and -e must not
	 * take it for an empty queue.
	 */
	*ready = UINT64_MAX;
	fetch_req(s, consumer, max, wait_ms, flags);
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
		if (mom_client_replaced(rv))
			snprintf(s->refusal, sizeof(s->refusal), "%s", err);
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
	s->refusal[0] = '\0';
	*ready = mom_rd_varint(&body);
	count = mom_rd_varint_max(&body, 100000);
	if (body.err || grow(s, count + s->pend_n) != 0 || (s->pipe && pend_grow(s, count) != 0)) {
		nng_msg_free(rep);
		mom_cli_err(&s->o->cli, "broker sent a malformed reply");
		s->status = MOM_EXIT_FAIL;
		return MOM_EPROTO;
	}
	for (i = 0, fresh = 0; i < count; i++) {
		if (mom_delivery_decode(&body, &d) != 0) {
			nng_msg_free(rep);
			mom_cli_err(&s->o->cli, "broker sent a malformed delivery");
			s->status = MOM_EXIT_FAIL;
			return MOM_EPROTO;
		}
		/* Written already (its ack was lost to a restart or a new leader): settled. */
		if (mom_seen_has(&s->seen, d.seq)) {
			s->acks[s->ack_n++] = d.receipt;
			s->copies++;
			continue;
		}
		/* Once rendered it is written, or the run ends (out_broken, gone). */
		mom_seen_add(&s->seen, d.seq);
		fresh++;
		before = s->out.len;
		render(s, &d);
		if (s->pipe)
			pend_add(s, &d, before);
		else
			s->acks[s->ack_n++] = d.receipt;
	}
	nng_msg_free(rep);
	if (s->pipe)
		s->got += fresh;
	else
		write_batch(s, fresh);
	if (!s->out_broken)
		*n = (size_t)fresh;
	return 0;
}

/*
 * Pipe mode.  Bytes written to the pipe and not yet read: FIONREAD on the
 * pipe (either end) counts what is in its buffer, ours or another
 * writer's, so what it says is read is read.
 */
static uint64_t
pipe_consumed(const struct sub *s)
{
	int n = 0;

	if (ioctl(STDOUT_FILENO, FIONREAD, &n) != 0 || n < 0)
		n = 0;
	return s->written > (uint64_t)n ? s->written - (uint64_t)n : 0;
}

/* Moves the messages whose bytes the reader took to the acks. */
static void
pipe_settle(struct sub *s)
{
	uint64_t     consumed = pipe_consumed(s);
	struct pend *p;

	while (s->pend_n > 0 && (p = &s->pend[s->pend_h])->end <= consumed) {
		s->acks[s->ack_n++] = p->receipt;
		s->pend_h++;
		s->pend_n--;
		s->idle_ms = 0;
	}
	if (s->pend_n == 0)
		s->pend_h = 0;
}

/*
 * The reader went away, or we stop: what it took is acknowledged, the
 * rest given back, uncounted when it never saw a byte of it.
 */
static void
pipe_give_back(struct sub *s)
{
	uint64_t consumed;
	size_t   i;

	pipe_settle(s);
	consumed = pipe_consumed(s);
	for (i = s->pend_h; i < s->pend_h + s->pend_n; i++)
		add_nack(s, s->pend[i].receipt, s->pend[i].start < consumed ? 0 : MOM_NACK_UNSEEN);
	s->pend_h = s->pend_n = 0;
	mom_buf_reset(&s->out);
	s->out_off = 0;
}

/* Extends the leases of what waits in the pipe, every touch_ms. */
static void
pipe_touch(struct sub *s, int64_t now)
{
	size_t i;

	if (s->pend_n == 0 || now - s->last_touch < s->touch_ms)
		return;
	for (i = s->pend_h; i < s->pend_h + s->pend_n; i++)
		add_nack(s, s->pend[i].receipt, MOM_NACK_TOUCH);
	s->last_touch = now;
}

/*
 * Writes what fits into the pipe without blocking, waiting up to wait_ms
 * for room.  Sets s->gone when the reader went away; on another error,
 * gives everything back and fails (74).
 */
static void
pipe_write(struct sub *s, int wait_ms)
{
	struct pollfd pfd = { STDOUT_FILENO, POLLOUT, 0 };
	ssize_t       k;
	size_t        n;

	while (s->out_off < s->out.len && !s->gone) {
		if (poll(&pfd, 1, wait_ms) <= 0)
			return;
		if (pfd.revents & (POLLERR | POLLHUP)) {
			s->gone = 1;
			return;
		}
		/* A write of PIPE_BUF bytes or less fits when poll says there is room. */
		n = s->out.len - s->out_off;
		if (n > PIPE_BUF)
			n = PIPE_BUF;
		if ((k = write(STDOUT_FILENO, s->out.data + s->out_off, n)) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				return;
			if (errno == EPIPE) {
				s->gone = 1;
				return;
			}
			mom_cli_err(&s->o->cli, "standard output: %s", strerror(errno));
			s->status = MOM_EXIT_IOERR;
			s->gone = 1;
			return;
		}
		s->out_off += (size_t)k;
		s->written += (uint64_t)k;
		wait_ms = 0;
	}
	if (s->out_off == s->out.len) {
		mom_buf_reset(&s->out);
		s->out_off = 0;
	}
}

/* Has the reader of the pipe gone away? */
static int
reader_gone(void)
{
	struct pollfd pfd = { STDOUT_FILENO, 0, 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP)) != 0;
}

/* The queue's ack wait (0 when unknown: the fetch reports a missing queue), for touches. */
static int64_t
queue_ack_wait(struct sub *s)
{
	struct mom_buf req;
	struct mom_rd  body;
	nng_msg       *rep;
	json_t        *o, *v;
	const uint8_t *p;
	char           err[256], *txt;
	size_t         n;
	int64_t        ms = 0;

	o = json_pack("{s:s, s:s}", "op", "queue.info", "name", s->o->name);
	txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (txt == NULL)
		return 0;
	mom_buf_init(&req);
	mom_frame_encode(&req, MOM_OP_ADMIN, false, 0);
	mom_buf_put_str(&req, txt);
	free(txt);
	if (!req.err && mom_client_call(s->c, &req, &rep, &body, 10000, err, sizeof(err)) == 0) {
		p = mom_rd_bytes(&body, &n);
		if (!body.err && (o = json_loadb((const char *)p, n, 0, NULL)) != NULL) {
			if (json_is_integer(v = json_object_get(o, "ack_wait_ms")))
				ms = json_integer_value(v);
			json_decref(o);
		}
		nng_msg_free(rep);
	}
	mom_buf_fini(&req);
	return ms;
}

/* Is stdout a pipe whose unread bytes can be counted, and are messages acknowledged? */
static void
pipe_init(struct sub *s)
{
	struct stat st;
	int64_t     ack_wait;
	int         n;

	if (s->o->noack || s->o->out == OUT_NONE || fstat(STDOUT_FILENO, &st) != 0 ||
	    !S_ISFIFO(st.st_mode) || ioctl(STDOUT_FILENO, FIONREAD, &n) != 0)
		return;
	s->pipe = 1;
	s->touch_ms = 5000;
	if (s->o->kind == MOM_KIND_QUEUE && (ack_wait = queue_ack_wait(s)) > 0 &&
	    ack_wait / 3 < s->touch_ms)
		s->touch_ms = ack_wait / 3;
	if (s->touch_ms < 100)
		s->touch_ms = 100;
	s->last_touch = mom_mono_ms();
}

/*
 * Pipe mode, when no fetch is due (the pipe is full, or the last messages
 * wait to be read): the acks and touches go out on their own, for a queue
 * or a durable subscription under a second consumer id with the close flag
 * (which releases only that id's leases: none), for an ephemeral
 * subscription (which is this consumer's) as a fetch of one message.
 */
static int
pipe_settle_only(struct sub *s, int fetching)
{
	size_t   n;
	uint64_t ready;

	if (s->nack_n == 0 && s->ack_n < PIPE_SETTLE_MAX)
		return 0;
	if (s->o->kind == MOM_KIND_QUEUE || s->o->durable)
		return round_trip(s, s->settler, 0, 0, MOM_FF_CLOSE, &n, &ready);
	return fetching ? round_trip(s, s->consumer, 1, 0, 0, &n, &ready) : 0;
}

/*
 * Pipe mode, each turn of the loop (fetching: more messages are wanted):
 * acks what was read, touches, writes what fits.  Returns 0 when the loop
 * may fetch, 1 when not now (the pipe is full, or the last messages wait
 * to be read), -1 when it ends: the reader went away (what it did not read
 * is given back), or the broker failed (s->status set).
 */
static int
pipe_turn(struct sub *s, int fetching)
{
	struct pollfd pfd = { STDOUT_FILENO, 0, 0 };
	int64_t       now = mom_mono_ms(), wait;
	int           rv;

	if (grow(s, s->ack_n + s->nack_n + 2 * s->pend_n) != 0)
		return -1;
	if (!s->gone && reader_gone())
		s->gone = 1;
	if (!s->gone) {
		pipe_settle(s);
		/* (An ephemeral subscription settles only with a fetch.) */
		if (fetching || s->o->kind == MOM_KIND_QUEUE || s->o->durable)
			pipe_touch(s, now);
		if (s->out_off == s->out.len && fetching)
			return 0;
		wait = s->touch_ms - (now - s->last_touch);
		wait = wait < 0 ? 0 : wait > PIPE_POLL_MS ? PIPE_POLL_MS : wait;
		if (s->out_off < s->out.len) {
			pipe_write(s, (int)wait);
			s->idle_ms = 0;
		} else {
			/*
			 * Nothing tells a writer that the pipe was read: look
			 * again after 1 ms, then less and less often.
			 */
			s->idle_ms = s->idle_ms == 0 ? 1 : s->idle_ms * 2;
			if (s->idle_ms < wait)
				wait = s->idle_ms;
			if (poll(&pfd, 1, (int)wait) == 1)
				s->gone = 1;
		}
	}
	if (s->gone) {
		pipe_give_back(s);
		s->out_broken = 1;
		return -1;
	}
	if ((rv = pipe_settle_only(s, fetching)) != 0) {
		if (rv != MOM_ECLOSED && s->status == 0) {
			mom_cli_err(&s->o->cli, "%s", mom_strerror(rv));
			s->status = mom_err_exit(rv);
		}
		return -1;
	}
	return 1;
}

/* How long the next fetch may wait: 0 at once, -1 when -W has passed (s->status set). */
static int64_t
fetch_wait(struct sub *s, int64_t last)
{
	const struct sub_options *o = s->o;
	int64_t                   wait = POLL_MS, left;

	/*
	 * -e reads what is there, at once; -W still bounds how long brokers
	 * may go on refusing ("not the leader" while a cluster elects).
	 */
	if (o->drain) {
		if (o->wait_ms < 0 || mom_mono_ms() - last < o->wait_ms)
			return 0;
		mom_cli_err(&o->cli, "no broker could serve within %" PRId64 " ms%s%s%s", o->wait_ms,
		    s->refusal[0] ? " (the last said: " : "", s->refusal,
		    s->refusal[0] ? ")" : "");
		s->status = MOM_EXIT_UNAVAILABLE;
		return -1;
	}
	if (o->wait_ms >= 0) {
		if ((left = o->wait_ms - (mom_mono_ms() - last)) <= 0) {
			mom_cli_info(&o->cli, "no message for %" PRId64 " ms", o->wait_ms);
			s->status = MOM_EXIT_TEMPFAIL;
			return -1;
		}
		if (left < wait)
			wait = left;
	}
	/* Messages wait in the pipe: come back soon to settle them. */
	if (s->pipe && s->pend_n > 0 && wait > PIPE_POLL_MS)
		wait = PIPE_POLL_MS;
	return wait;
}

int
sub_run(struct sub_options *o)
{
	struct sub       s;
	struct sigaction sa;
	int64_t          last = mom_mono_ms(), wait;
	int              rv, done = 0;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.consumer = mom_cli_random();
	s.settler = mom_cli_random();
	mom_buf_init(&s.out);
	mom_buf_init(&s.req);
	mom_seen_init(&s.seen, 0);
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
	pipe_init(&s);
	/* On its own on a terminal with -C, when the messages do not go to it too. */
	mom_progress_init(&s.prog, o->cli.prog, "messages", o->progress,
	    o->count > 0 && !o->cli.quiet && !isatty(STDOUT_FILENO));
	while (!stop_flag && !s.out_broken) {
		uint64_t ready = 0, max = o->prefetch;
		size_t   n;

		done |= o->count && s.got >= o->count;
		/* In pipe mode the end waits for the reader to take what was written. */
		if (done && (!s.pipe || s.pend_n == 0))
			break;
		if (s.pipe && (rv = pipe_turn(&s, !done)) != 0) {
			if (rv < 0)
				break;
			continue;
		}
		if ((wait = fetch_wait(&s, last)) < 0) {
			done = 1;
			continue;
		}
		if (o->count && o->count - s.got < max)
			max = o->count - s.got;
		if ((rv = round_trip(&s, s.consumer, max, (uint64_t)wait, 0, &n, &ready)) != 0) {
			if (rv == MOM_ECLOSED)
				break;
			if (s.status == 0) {
				mom_cli_err(&o->cli, "%s", rv == MOM_EUNAVAIL ?
				    "lost the connection to the broker" : mom_strerror(rv));
				s.status = mom_err_exit(rv);
			}
			break;
		}
		mom_progress(&s.prog, s.got, o->count, 0, 0, 0);
		if (n > 0)
			last = mom_mono_ms();
		else if (o->drain && ready == 0)
			done = 1;
	}
	/* Stopped (a signal, an error): what the reader did not take goes back. */
	if (s.pipe && s.pend_n > 0 && grow(&s, s.ack_n + s.nack_n + s.pend_n) == 0)
		pipe_give_back(&s);
	mom_progress(&s.prog, s.got, o->count, 0, 0, 1);
	if (s.copies > 0)
		mom_cli_info(&o->cli, "%" PRIu64 " messages delivered again were written already: "
		    "acknowledged, not written twice", s.copies);
	/* A signal may have cut a fetch short: its reply is lost, so release. */
	stop_flag = 0;
	close_consumer(&s);
out:
	mom_client_close(s.c);
	mom_buf_fini(&s.out);
	mom_buf_fini(&s.req);
	free(s.acks);
	free(s.nacks);
	free(s.ndelays);
	free(s.pend);
	mom_seen_fini(&s.seen);
	return s.status;
}

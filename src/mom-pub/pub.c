/*
 * pub.c: mom-pub's engine.
 *
 * Messages are packed into batches (at most BATCH_MSGS messages or about
 * BATCH_BYTES); up to the client's window of batches are in flight at
 * once.  Every batch carries this process's producer id and the sequence
 * number of its first message, so the broker stores a batch that nng
 * resent after a reconnect only once, and stores a stream in order.
 * A batch that is still being filled is sent as soon as stdin has nothing
 * more to read right now, so an interactive pipe is not held back.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "format.h"
#include "mom.h"
#include "progress.h"
#include "pub.h"
#include "sp.h"
#include "wire.h"

#define BATCH_MSGS  2000
#define BATCH_BYTES (256u << 10)
#define WINDOW      16

struct batch {
	struct mom_buf frame;
	size_t         count_off;
	uint64_t       count;
	uint64_t       first_rec; /* record number of its first message, from 1 */
	struct batch  *prev, *next; /* in flight */
};

struct pub {
	struct pub_options   *o;
	struct mom_client *c;
	uint64_t           producer, seq, rec;
	struct mom_buf     hdrs; /* -H, encoded */
	struct batch      *cur;
	uint64_t           confirmed, dups;
	int64_t            last_progress;
	int                status; /* first failure: exit status */
	int                oneshot; /* one message, no -r: bounded by the reconnect window without -W */
	uint64_t           max_payload; /* the broker's, once asked */
	struct batch      *inflight;    /* sent, not answered: freed at exit */
	uint64_t          *checked;     /* --jsonl's per-line targets checked: hashes, 0 free */
	size_t             nchecked, checked_cap;
	uint64_t           last_checked;
	struct mom_progress prog;       /* -l, -0, --jsonl */
	uint64_t           in_bytes, in_size; /* read so far; stdin's size when a file */
	char               refusal[512]; /* the last "not the leader" (or the like), "": none */
};

static void
track(struct pub *p, struct batch *b)
{
	b->prev = NULL;
	if ((b->next = p->inflight) != NULL)
		b->next->prev = b;
	p->inflight = b;
}

static void
untrack(struct pub *p, struct batch *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		p->inflight = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->prev = b->next = NULL;
}

static struct batch *
batch_new(struct pub *p)
{
	struct batch        *b;
	struct mom_pub_batch pb;
	size_t               start;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	mom_buf_init(&b->frame);
	mom_frame_encode(&b->frame, MOM_OP_PUBLISH, false, 0);
	start = b->frame.len;
	memset(&pb, 0, sizeof(pb));
	pb.producer = p->producer;
	pb.first_seq = p->seq;
	pb.kind = p->o->kind;
	pb.name.p = (const uint8_t *)p->o->name;
	pb.name.n = p->o->name ? strlen(p->o->name) : 0;
	mom_pub_encode_begin(&b->frame, &pb);
	b->count_off = mom_pub_count_offset(&b->frame, start);
	b->first_rec = p->rec; /* add() counted the record this batch starts with */
	return b;
}

static void
batch_free(struct batch *b)
{
	if (b != NULL) {
		mom_buf_fini(&b->frame);
		free(b);
	}
}

static void
fail(struct pub *p, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
fail(struct pub *p, int err, const char *fmt, ...)
{
	va_list ap;

	if (p->status != 0)
		return;
	p->status = mom_err_exit(err);
	fprintf(stderr, "%s: ", p->o->cli.prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Waits for one batch to complete and accounts for it. */
static int
reap(struct pub *p)
{
	struct batch *b;
	struct mom_rd body;
	nng_msg      *rep;
	void         *tag;
	char          err[512];
	int64_t       left = -1;
	int           rv;

	if (p->o->wait_ms >= 0 || p->oneshot) {
		left = (p->o->wait_ms >= 0 ? p->o->wait_ms : mom_cli_reconnect_ms(&p->o->cli)) -
		    (mom_mono_ms() - p->last_progress);
		if (left < 0)
			left = 0;
	}
	if ((rv = mom_client_next(p->c, &rep, &tag, left)) != 0) {
		if (rv == MOM_ETIMEDOUT && p->o->wait_ms < 0)
			/* A peer that accepts but never answers: as good as none. */
			fail(p, MOM_EUNAVAIL, "no answer from the broker within %" PRId64 " ms: "
			    "the message may not have been published", mom_cli_reconnect_ms(&p->o->cli));
		else if (rv == MOM_ETIMEDOUT && p->o->request)
			fail(p, rv, "timed out: the request was not confirmed");
		else if (rv == MOM_ETIMEDOUT)
			fail(p, rv, "timed out: %" PRIu64 " messages confirmed, more unconfirmed",
			    p->confirmed);
		else if (rv == MOM_ECLOSED)
			fail(p, rv, "interrupted: the request may not have been published");
		else if (p->refusal[0] != '\0')
			fail(p, rv, "no broker could serve (the last said: %s): %" PRIu64 " messages "
			    "confirmed, more unconfirmed", p->refusal, p->confirmed);
		else
			fail(p, rv, "lost the broker (or none could serve): %" PRIu64 " messages "
			    "confirmed, more unconfirmed", p->confirmed);
		return rv;
	}
	b = tag;
	untrack(p, b);
	rv = mom_client_status(rep, MOM_OP_PUBLISH, &body, err, sizeof(err));
	if (rv == MOM_EBUSY || mom_client_replaced(rv)) {
		/*
		 * The broker sheds load, or restarts (fails over): wait a little
		 * and send it again; its sequence numbers make it stored once.
		 */
		nng_msg_free(rep);
		if (rv != MOM_EBUSY)
			snprintf(p->refusal, sizeof(p->refusal), "%s", err);
		if (rv == MOM_EBUSY)
			nanosleep(&(struct timespec){ 0, 20 * 1000000 }, NULL);
		else if ((rv = mom_client_again(p->c, rv)) != 0) {
			if (rv == MOM_ECLOSED)
				fail(p, rv, "interrupted: %" PRIu64 " messages confirmed, more "
				    "unconfirmed", p->confirmed);
			else
				fail(p, rv, "lost the broker: %" PRIu64 " messages confirmed, more "
				    "unconfirmed", p->confirmed);
			batch_free(b);
			return rv;
		}
		if ((rv = mom_client_submit(p->c, &b->frame, b, -1)) != 0) {
			fail(p, rv, "cannot resend: %s", mom_strerror(rv));
			batch_free(b);
		} else
			track(p, b);
		return 0;
	}
	if (rv == 0) {
		p->refusal[0] = '\0';
		p->confirmed += mom_rd_varint(&body);
		p->dups += mom_rd_varint(&body);
		p->last_progress = mom_mono_ms();
	} else if (b->count == 1)
		fail(p, rv, "%s", err);
	else
		fail(p, rv, "%s (in records %" PRIu64 "-%" PRIu64 ")", err, b->first_rec,
		    b->first_rec + b->count - 1);
	nng_msg_free(rep);
	batch_free(b);
	return rv;
}

static int
flush(struct pub *p)
{
	struct batch *b = p->cur;
	int           rv;

	if (b == NULL || b->count == 0)
		return 0;
	p->cur = NULL;
	mom_pub_encode_count(&b->frame, b->count_off, b->count);
	p->seq += b->count;
	if (b->frame.err) {
		fail(p, MOM_ENOMEM, "out of memory");
		batch_free(b);
		return MOM_ENOMEM;
	}
	while (mom_client_inflight(p->c) >= mom_client_window(p->c))
		if (reap(p) != 0 && p->status != 0)
			break;
	if (p->status != 0) {
		batch_free(b);
		return -1;
	}
	if (mom_client_inflight(p->c) == 0)
		p->last_progress = mom_mono_ms();
	if ((rv = mom_client_submit(p->c, &b->frame, b, -1)) != 0) {
		fail(p, rv, "cannot send: %s", mom_strerror(rv));
		batch_free(b);
		return rv;
	}
	track(p, b);
	return 0;
}

/*
 * A record that cannot be published ends the run, but the records before
 * it were good: send the batch that holds them, so that they are stored
 * (pub_run collects the confirmation) and the exit status tells of the
 * bad one only.
 */
static void
bad_record(struct pub *p)
{
	if (p->status == 0)
		(void)flush(p);
}

/* The publish.check admin request for a target (a whole frame in b). */
static void
check_frame(struct mom_buf *b, uint8_t kind, const char *name, size_t n)
{
	json_t *req;
	char   *js;

	req = json_pack("{s:s, s:s, s:s%}", "op", "publish.check", "kind",
	    kind == MOM_KIND_QUEUE ? "queue" : "topic", "name", name, n);
	js = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	mom_frame_encode(b, MOM_OP_ADMIN, false, 0);
	if (js == NULL)
		b->err = 1;
	else
		mom_buf_put_str(b, js);
	free(js);
}

/* A broker from before publish.check cannot say: publishing will tell. */
static int
check_status(int rv, const char *err)
{
	if (rv == MOM_EINVAL && strstr(err, "unknown admin request") != NULL)
		return 0;
	return rv;
}

/*
 * Checks over the connection that the target exists and that our token
 * may publish to it: 0, or an error code with the reason in err.  Nothing
 * may be in flight (mom_client_call drops other replies).
 */
static int
check_target(struct pub *p, uint8_t kind, const char *name, size_t n, char *err, size_t errlen)
{
	struct mom_buf req;
	struct mom_rd  body;
	nng_msg       *rep;
	int            rv;

	err[0] = '\0';
	mom_buf_init(&req);
	check_frame(&req, kind, name, n);
	if (req.err)
		rv = MOM_ENOMEM;
	else
		rv = mom_client_call(p->c, &req, &rep, &body, p->o->wait_ms, err, errlen);
	mom_buf_fini(&req);
	if (rv == 0)
		nng_msg_free(rep);
	if (rv != 0 && err[0] == '\0')
		snprintf(err, errlen, "%s", mom_strerror(rv));
	return check_status(rv, err);
}

/*
 * The same before reading a one-message stdin, over the direct path: 0
 * when the target is good, 1 when the full client must ask, -1 when it
 * failed (p->status set).
 */
/*
 * The direct path's bound: with several brokers listed, the first one
 * gets the request timeout, not all of -W: the full client then goes on
 * to the next.
 */
static int64_t
direct_bound(const struct pub *p, int64_t tmo)
{
	int64_t req = p->o->cli.request_ms > 0 ? p->o->cli.request_ms : MOM_CLIENT_REQUEST_MS;

	if (strchr(p->o->cli.servers, ',') != NULL && tmo > req)
		return req;
	return tmo;
}

/*
 * The direct path took the request and tmo passed without an answer: is
 * -W spent (1)?  Else (several brokers) what it took comes off -W, and
 * the full client goes on.
 */
static int
direct_spent(struct pub *p, int64_t tmo)
{
	struct pub_options *o = p->o;

	if (o->wait_ms < 0)
		return 0;
	if (tmo >= o->wait_ms)
		return 1;
	o->wait_ms -= tmo;
	o->cli.connect_ms = o->wait_ms;
	return 0;
}

static int
check_direct(struct pub *p)
{
	struct mom_buf req;
	struct mom_rd  body;
	uint8_t       *rep;
	size_t         replen;
	char           err[512];
	int64_t        tmo;
	int            rv;

	mom_buf_init(&req);
	check_frame(&req, p->o->kind, p->o->name, strlen(p->o->name));
	tmo = direct_bound(p, p->o->wait_ms >= 0 ? p->o->wait_ms : 10000);
	rv = req.err ? -1 : mom_sp_call(p->o->cli.servers, p->o->cli.token, req.data, req.len,
	    tmo, &rep, &replen);
	mom_buf_fini(&req);
	if (rv == -2 && direct_spent(p, tmo)) {
		fail(p, MOM_ETIMEDOUT, "timed out waiting for the broker");
		return -1;
	}
	if (rv != 0)
		return 1;
	err[0] = '\0';
	rv = check_status(mom_wire_status(rep, replen, MOM_OP_ADMIN, &body, err, sizeof(err)), err);
	free(rep);
	if (rv == MOM_EBUSY || rv == MOM_EPROTO)
		return 1;
	if (rv != 0) {
		fail(p, rv, "%s", err);
		return -1;
	}
	return 0;
}

/* FNV-1a of a target, never 0. */
static uint64_t
target_hash(uint8_t kind, const uint8_t *name, size_t n)
{
	uint64_t h = 14695981039346656037ULL;
	size_t   i;

	h = (h ^ kind) * 1099511628211ULL;
	for (i = 0; i < n; i++)
		h = (h ^ name[i]) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

/* Is h in the set of checked targets?  With add, puts it there.  -1: no memory. */
static int
checked_has(struct pub *p, uint64_t h, int add)
{
	size_t i;

	if (add && (p->nchecked + 1) * 2 > p->checked_cap) {
		size_t    cap = p->checked_cap ? p->checked_cap * 2 : 64, j;
		uint64_t *t = calloc(cap, sizeof(*t));

		if (t == NULL)
			return -1;
		for (j = 0; j < p->checked_cap; j++) {
			if (p->checked[j] == 0)
				continue;
			for (i = p->checked[j] & (cap - 1); t[i] != 0; i = (i + 1) & (cap - 1))
				;
			t[i] = p->checked[j];
		}
		free(p->checked);
		p->checked = t;
		p->checked_cap = cap;
	}
	if (p->checked_cap == 0)
		return 0;
	for (i = h & (p->checked_cap - 1); p->checked[i] != 0; i = (i + 1) & (p->checked_cap - 1))
		if (p->checked[i] == h)
			return 1;
	if (add) {
		p->checked[i] = h;
		p->nchecked++;
	}
	return 0;
}

/*
 * A line's own target (--jsonl without -q or -t) is checked the first
 * time it comes, before anything is published to it: what is in flight is
 * collected first, so that a bad target stops the run at its line.
 */
static int
check_line_target(struct pub *p, uint8_t kind, const char *name)
{
	char     err[512];
	uint64_t h = target_hash(kind, (const uint8_t *)name, strlen(name));
	int      rv;

	if (h == p->last_checked || checked_has(p, h, 0))
		return 0;
	while (mom_client_inflight(p->c) > 0)
		if (reap(p) != 0 && p->status != 0)
			return -1;
	if ((rv = check_target(p, kind, name, strlen(name), err, sizeof(err))) != 0) {
		bad_record(p);
		fail(p, rv, "line %" PRIu64 ": %s", p->rec + 1, err);
		return -1;
	}
	if (checked_has(p, h, 1) < 0) {
		fail(p, MOM_ENOMEM, "out of memory");
		return -1;
	}
	p->last_checked = h;
	return 0;
}

static int
add(struct pub *p, struct mom_pub_msg *m)
{
	struct mom_pub_batch pb;

	p->rec++;
	if (m->payload.n > MOM_PAYLOAD_LIMIT) {
		bad_record(p);
		fail(p, MOM_ETOOBIG, "record %" PRIu64 ": message of %zu bytes is over the 64 MiB limit",
		    p->rec, m->payload.n);
		return -1;
	}
	/*
	 * Over the default limit, ask the broker for its own before sending:
	 * a frame far over it would cost the connection, not get an answer.
	 * (Streams asked at the start, so that one bad record in a batch
	 * does not cost the good ones around it.)
	 */
	if (m->payload.n > MOM_PAYLOAD_DEFAULT || p->max_payload > 0) {
		if (p->max_payload == 0) {
			struct mom_ping pi;
			char            err[256];
			int             rv;

			if ((rv = mom_cli_ping(p->c, &pi, p->o->wait_ms, err, sizeof(err))) != 0) {
				fail(p, rv, "%s", err);
				return -1;
			}
			p->max_payload = pi.max_payload;
		}
		if (m->payload.n > p->max_payload) {
			bad_record(p);
			fail(p, MOM_ETOOBIG, "record %" PRIu64 ": message of %zu bytes is over the "
			    "broker's limit of %" PRIu64, p->rec, m->payload.n, p->max_payload);
			return -1;
		}
	}
	/* A big message travels alone rather than swelling a batch. */
	if (p->cur != NULL && p->cur->frame.len + m->payload.n > BATCH_BYTES && flush(p) != 0)
		return -1;
	if (p->cur == NULL && (p->cur = batch_new(p)) == NULL) {
		fail(p, MOM_ENOMEM, "out of memory");
		return -1;
	}
	memset(&pb, 0, sizeof(pb));
	pb.kind = p->o->kind;
	pb.name.p = (const uint8_t *)p->o->name;
	pb.name.n = p->o->name ? strlen(p->o->name) : 0;
	if (m->headers.n == 0 && p->hdrs.len > 0) {
		m->headers.p = p->hdrs.data;
		m->headers.n = p->hdrs.len;
	}
	if (m->ttl_ms == 0)
		m->ttl_ms = p->o->ttl_ms;
	if (m->delay_ms == 0)
		m->delay_ms = p->o->delay_ms;
	mom_pub_encode_msg(&p->cur->frame, &pb, m);
	p->cur->count++;
	if (p->cur->count >= BATCH_MSGS || p->cur->frame.len >= BATCH_BYTES)
		return flush(p);
	return 0;
}

static int
add_bytes(struct pub *p, const uint8_t *data, size_t len)
{
	struct mom_pub_msg m;

	memset(&m, 0, sizeof(m));
	m.kind = p->o->kind;
	m.name.p = (const uint8_t *)p->o->name;
	m.name.n = strlen(p->o->name);
	m.payload.p = data;
	m.payload.n = len;
	if (p->o->id) {
		m.id.p = (const uint8_t *)p->o->id;
		m.id.n = strlen(p->o->id);
	}
	return add(p, &m);
}

static int
add_envelope(struct pub *p, const char *line, size_t len)
{
	struct mom_envelope e;
	struct mom_pub_msg  m;
	char                err[256];
	int                 rv;

	if (mom_envelope_parse(line, len, &e, err, sizeof(err)) != 0) {
		p->rec++;
		bad_record(p);
		fail(p, MOM_EBADDATA, "line %" PRIu64 ": %s", p->rec, err);
		return -1;
	}
	memset(&m, 0, sizeof(m));
	/* The command line's target wins: mom-sub --jsonl | mom-pub -q B --jsonl copies. */
	if (p->o->kind != 0) {
		m.kind = p->o->kind;
		m.name.p = (const uint8_t *)p->o->name;
		m.name.n = strlen(p->o->name);
	} else if (e.kind != 0) {
		if (check_line_target(p, e.kind, e.name) != 0) {
			mom_envelope_fini(&e);
			return -1;
		}
		m.kind = e.kind;
		m.name.p = (const uint8_t *)e.name;
		m.name.n = strlen(e.name);
	} else {
		mom_envelope_fini(&e);
		p->rec++;
		bad_record(p);
		fail(p, MOM_EBADDATA, "line %" PRIu64 ": no \"queue\" or \"topic\" (and no -q or -t)",
		    p->rec);
		return -1;
	}
	if (e.id) {
		m.id.p = (const uint8_t *)e.id;
		m.id.n = strlen(e.id);
	}
	m.payload.p = e.payload;
	m.payload.n = e.payload_len;
	m.headers.p = e.headers.data;
	m.headers.n = e.headers.len;
	m.ttl_ms = e.ttl_ms;
	m.delay_ms = e.delay_ms;
	rv = add(p, &m);
	mom_envelope_fini(&e);
	return rv;
}

/* Is there nothing more to read on fd right now? */
static int
idle(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	return poll(&pfd, 1, 0) == 0;
}

/* Reads stdin and publishes records split at delim ('\n' or '\0'). */
static int
stream(struct pub *p, int delim, int jsonl)
{
	struct mom_buf in;
	size_t         start = 0, scan = 0;
	ssize_t        n;

	mom_buf_init(&in);
	for (;;) {
		uint8_t *nl;

		if (mom_buf_reserve(&in, 65536) != 0) {
			fail(p, MOM_ENOMEM, "out of memory");
			break;
		}
		n = read(STDIN_FILENO, in.data + in.len, in.cap - in.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fail(p, MOM_EINTERNAL, "reading stdin: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		in.len += (size_t)n;
		p->in_bytes += (uint64_t)n;
		mom_progress(&p->prog, p->confirmed, 0, p->in_bytes, p->in_size, 0);
		while ((nl = memchr(in.data + scan, delim, in.len - scan)) != NULL) {
			size_t len = (size_t)(nl - (in.data + start));

			if (jsonl) {
				/* Blank lines (and a CR before LF) are not records. */
				if (len > 0 && in.data[start + len - 1] == '\r')
					len--;
				if (len > 0 && add_envelope(p, (const char *)in.data + start, len) != 0)
					goto done;
			} else if (add_bytes(p, in.data + start, len) != 0)
				goto done;
			start = scan = (size_t)(nl - in.data) + 1;
		}
		scan = in.len;
		if (in.len - start > (size_t)MOM_PAYLOAD_LIMIT + (jsonl ? MOM_PAYLOAD_LIMIT / 2 + 65536 : 0)) {
			bad_record(p);
			fail(p, MOM_ETOOBIG, "record %" PRIu64 " is over the 64 MiB limit", p->rec + 1);
			goto done;
		}
		/* Keep the unfinished record at the front of the buffer. */
		if (start > 0) {
			memmove(in.data, in.data + start, in.len - start);
			in.len -= start;
			scan -= start;
			start = 0;
		}
		if (idle(STDIN_FILENO) && flush(p) != 0)
			goto done;
	}
	/* A last record without its terminator is still a record. */
	if (p->status == 0 && in.len > start) {
		size_t len = in.len - start;

		if (jsonl) {
			if (in.data[start + len - 1] == '\r')
				len--;
			if (len > 0)
				add_envelope(p, (const char *)in.data + start, len);
		} else
			add_bytes(p, in.data + start, len);
	}
done:
	mom_buf_fini(&in);
	return p->status;
}

static int
read_all(struct pub *p, int fd, const char *what, struct mom_buf *out)
{
	ssize_t n;

	for (;;) {
		if (mom_buf_reserve(out, 65536) != 0) {
			fail(p, MOM_ENOMEM, "out of memory");
			return -1;
		}
		n = read(fd, out->data + out->len, out->cap - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail(p, MOM_EINTERNAL, "reading %s: %s", what, strerror(errno));
			return -1;
		}
		if (n == 0)
			return 0;
		out->len += (size_t)n;
		if (out->len > MOM_PAYLOAD_LIMIT) {
			fail(p, MOM_ETOOBIG, "%s is over the 64 MiB message limit", what);
			return -1;
		}
	}
}

/*
 * Reads the one message of -m, -n, -f or stdin: *pay and *n point into
 * data or the command line.
 */
static int
read_one(struct pub *p, struct mom_buf *data, const uint8_t **pay, size_t *n)
{
	int fd, rv = 0;

	*pay = (const uint8_t *)"";
	*n = 0;
	switch (p->o->src) {
	case SRC_MSG:
		*pay = (const uint8_t *)p->o->msg;
		*n = strlen(p->o->msg);
		return 0;
	case SRC_EMPTY:
		return 0;
	case SRC_FILE:
		if (strcmp(p->o->file, "-") == 0)
			fd = STDIN_FILENO;
		else if ((fd = open(p->o->file, O_RDONLY | O_CLOEXEC)) < 0) {
			fail(p, MOM_ENOENT, "%s: %s", p->o->file, strerror(errno));
			p->status = MOM_EXIT_NOINPUT;
			rv = -1;
			break;
		}
		rv = read_all(p, fd, p->o->file, data);
		if (fd != STDIN_FILENO)
			close(fd);
		break;
	default:
		rv = read_all(p, STDIN_FILENO, "stdin", data);
		break;
	}
	if (rv == 0 && data->len > 0) {
		*pay = data->data;
		*n = data->len;
	}
	return rv;
}

/*
 * The one-shot fast path (see sp.h): the batch goes straight to the first
 * server over TCP.  Returns 0 when the broker answered (p->status says
 * how), -1 when the full client must take over the same batch.
 */
static int
direct(struct pub *p)
{
	struct batch *b = p->cur;
	uint8_t      *rep;
	size_t        replen;
	struct mom_rd body;
	char          err[512];
	int64_t       tmo;
	int           rv;

	mom_pub_encode_count(&b->frame, b->count_off, b->count);
	if (b->frame.err)
		return -1;
	/* Without -W, a silent first server costs at most 10 s (or the reconnect window). */
	if ((tmo = p->o->wait_ms) < 0 && (tmo = mom_cli_reconnect_ms(&p->o->cli)) > 10000)
		tmo = 10000;
	tmo = direct_bound(p, tmo);
	rv = mom_sp_call(p->o->cli.servers, p->o->cli.token, b->frame.data, b->frame.len, tmo,
	    &rep, &replen);
	if (rv == -2 && direct_spent(p, tmo)) {
		/* -W is spent: trying again elsewhere would overrun it. */
		fail(p, MOM_ETIMEDOUT, "timed out waiting for the broker");
		return 0;
	}
	if (rv != 0)
		return -1;
	rv = mom_wire_status(rep, replen, MOM_OP_PUBLISH, &body, err, sizeof(err));
	if (rv == MOM_EBUSY || rv == MOM_EPROTO || mom_client_replaced(rv)) {
		free(rep);
		return -1;
	}
	if (rv == 0) {
		p->confirmed += mom_rd_varint(&body);
		p->dups += mom_rd_varint(&body);
	} else
		fail(p, rv, "%s", err);
	free(rep);
	return 0;
}

static int
ensure_target(struct pub *p)
{
	int rv = mom_cli_ensure(&p->o->cli, p->c, p->o->kind, p->o->name, p->o->wait_ms);

	if (rv != 0)
		p->status = mom_err_exit(rv);
	return rv;
}

/*
 * Progress of a stream: with --progress, or on its own when stderr is a
 * terminal and stdin is not (a large input, not lines typed).  The share
 * and ETA come from stdin's size when it is a file.
 */
static void
progress_init(struct pub *p)
{
	struct stat st;

	mom_progress_init(&p->prog, p->o->cli.prog, "messages confirmed", p->o->progress,
	    !p->o->cli.quiet && !isatty(STDIN_FILENO));
	if (fstat(STDIN_FILENO, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		off_t at = lseek(STDIN_FILENO, 0, SEEK_CUR);

		p->in_size = (uint64_t)st.st_size - (at > 0 ? (uint64_t)at : 0);
	}
}

/* Does the input come from stdin (where reading consumes it)? */
static int
reads_stdin(const struct pub_options *o)
{
	return o->src == SRC_LINES || o->src == SRC_NUL || o->src == SRC_JSONL ||
	    o->src == SRC_STDIN || (o->src == SRC_FILE && strcmp(o->file, "-") == 0);
}

/*
 * Connects, creates the target with --create, and checks that it exists
 * and that the token may publish to it before any input is read, so that
 * a pipeline into mom-pub fails before its writer's messages are taken
 * (a --jsonl stream without -q or -t checks each line's target instead).
 */
static int
connect_checked(struct pub *p)
{
	char err[512];
	int  rv;

	if ((rv = mom_cli_connect(&p->o->cli, &p->c, WINDOW)) != 0) {
		p->status = rv;
		return rv;
	}
	if (p->o->create && ensure_target(p) != 0)
		return -1;
	if (p->o->kind == 0 || !reads_stdin(p->o))
		return 0;
	if ((rv = check_target(p, p->o->kind, p->o->name, strlen(p->o->name), err,
	    sizeof(err))) != 0) {
		fail(p, rv, "%s", err);
		return -1;
	}
	return 0;
}

static volatile int req_signal;

static void
on_signal(int sig)
{
	req_signal = sig;
}

/*
 * -r: one message, published with a reply address to a reply queue of
 * our own (see request.c), then the reply awaited.  -W bounds it all
 * from deadline on.
 */
/* The reply queue's idle expiry (pub.h). */
static uint64_t
reply_expire(const struct pub_options *o)
{
	uint64_t w;

	if (o->wait_ms < 0)
		return o->reply_expire_ms;
	w = (uint64_t)o->wait_ms > REQ_EXPIRE_MIN_MS ? (uint64_t)o->wait_ms : REQ_EXPIRE_MIN_MS;
	return w < o->reply_expire_ms ? w : o->reply_expire_ms;
}

static int
run_request(struct pub *p, const uint8_t *pay, size_t n, int64_t deadline)
{
	struct pub_options *o = p->o;
	struct sigaction sa;
	char             queue[64], corr[40], err[512];
	char             hq[sizeof(queue) + 32], hc[sizeof(corr) + 32];
	const char      *lines[PUB_MAX_HEADERS + 2];
	int64_t          left;
	int              rv, i, created = 0;

	req_names(queue, sizeof(queue), corr, sizeof(corr));
	snprintf(hq, sizeof(hq), "%s: %s", MOM_HDR_REPLY_TO, queue);
	snprintf(hc, sizeof(hc), "%s: %s", MOM_HDR_CORRELATION, corr);
	lines[0] = hq;
	lines[1] = hc;
	for (i = 0; i < o->nheaders; i++)
		lines[i + 2] = o->headers[i];
	mom_buf_reset(&p->hdrs);
	if (mom_hdr_build(&p->hdrs, lines, (size_t)o->nheaders + 2) != 0 || p->hdrs.err) {
		fail(p, MOM_EINVAL, "cannot build the request's headers");
		return p->status;
	}
	/* (Connected already when the request comes from stdin: pub_run checked the target.) */
	if (p->c == NULL && (rv = mom_cli_connect(&o->cli, &p->c, WINDOW)) != 0) {
		p->status = rv;
		return rv;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	mom_client_set_interrupt(p->c, &req_signal);
#define LEFT() (deadline < 0 ? -1 : (left = deadline - mom_mono_ms()) > 0 ? left : 0)
	if (o->create && ensure_target(p) != 0)
		goto out;
	rv = req_create(p->c, queue, o->wait_ms > 0 && (uint64_t)o->wait_ms < REQ_TTL_MS ?
	    (uint64_t)o->wait_ms : REQ_TTL_MS, reply_expire(o), LEFT(), err, sizeof(err));
	if (rv == MOM_ETIMEDOUT) {
		fail(p, rv, "timed out creating the reply queue");
		goto out;
	}
	if (rv != 0) {
		fail(p, rv, "cannot create the reply queue %s: %s", queue, err);
		goto out;
	}
	created = 1;
	mom_cli_info(&o->cli, "reply queue %s, correlation id %s", queue, corr);
	if (add_bytes(p, pay, n) != 0)
		goto out;
	/* reap() measures -W from the send: give it what is left. */
	if (deadline >= 0)
		o->wait_ms = LEFT();
	if (flush(p) != 0)
		goto out;
	while (mom_client_inflight(p->c) > 0)
		if (reap(p) != 0 && p->status != 0)
			break;
	if (p->status == 0)
		p->status = req_wait(&o->cli, p->c, queue, corr, deadline);
out:
	if (req_signal != 0) {
		int sig = req_signal;

		req_signal = 0;
		p->status = 128 + sig;
	}
	if (created)
		req_delete(p->c, queue, p->status == MOM_EXIT_TEMPFAIL ||
		    p->status == MOM_EXIT_UNAVAILABLE ? 1000 : 5000);
#undef LEFT
	return p->status;
}

int
pub_run(struct pub_options *o)
{
	struct pub     p;
	struct mom_buf one;
	const uint8_t *pay = NULL;
	size_t         n = 0;
	int64_t        start;
	int            rv, have_batch = 0;

	memset(&p, 0, sizeof(p));
	mom_buf_init(&one);
	start = mom_mono_ms();
	p.o = o;
	p.producer = mom_cli_random();
	p.seq = 1;
	p.last_progress = mom_mono_ms();
	mom_buf_init(&p.hdrs);
	if (o->nheaders > 0 && mom_hdr_build(&p.hdrs, o->headers, (size_t)o->nheaders) != 0) {
		mom_cli_err(&o->cli, "bad header (want 'Key: value', key of letters, digits, - and _)");
		mom_buf_fini(&p.hdrs);
		return MOM_EXIT_USAGE;
	}
	if (o->src == SRC_MSG || o->src == SRC_EMPTY || o->src == SRC_FILE || o->src == SRC_STDIN) {
		/*
		 * One message: read it first, then try the direct path.  Input
		 * from a pipe is consumed by reading it: the target is checked
		 * first (over the direct path when it can), see connect_checked.
		 */
		if (reads_stdin(o) && o->request && !o->create) {
			/* -r: the full client, which the request then uses. */
			if (connect_checked(&p) != 0)
				goto out;
		} else if (reads_stdin(o) && !o->request &&
		    (o->create || (rv = check_direct(&p)) > 0)) {
			if (connect_checked(&p) != 0)
				goto out;
		} else if (p.status != 0)
			goto out;
		if (read_one(&p, &one, &pay, &n) != 0) {
			mom_buf_fini(&one);
			mom_buf_fini(&p.hdrs);
			return p.status;
		}
		if (o->request) {
			run_request(&p, pay, n, o->wait_ms >= 0 ? start + o->wait_ms : -1);
			goto out;
		}
		p.oneshot = 1;
		if (p.c == NULL && !o->create && n < BATCH_BYTES / 2) {
			if (add_bytes(&p, pay, n) != 0)
				goto out;
			if (direct(&p) == 0)
				goto out;
			have_batch = 1;
		}
	}
	if (p.c == NULL && connect_checked(&p) != 0)
		goto out;
	if (o->src == SRC_LINES || o->src == SRC_NUL || o->src == SRC_JSONL) {
		struct mom_ping pi;
		char            err[256];

		if ((rv = mom_cli_ping(p.c, &pi, o->wait_ms, err, sizeof(err))) != 0) {
			fail(&p, rv, "%s", err);
			goto out;
		}
		p.max_payload = pi.max_payload;
	}
	if (reads_stdin(o) && o->src != SRC_STDIN && o->src != SRC_FILE)
		progress_init(&p);
	switch (o->src) {
	case SRC_LINES:
		stream(&p, '\n', 0);
		break;
	case SRC_NUL:
		stream(&p, '\0', 0);
		break;
	case SRC_JSONL:
		stream(&p, '\n', 1);
		break;
	default:
		/* The batch built for the direct path, if any, goes as it is. */
		if (!have_batch)
			add_bytes(&p, pay, n);
		break;
	}
	if (p.status == 0)
		flush(&p);
	/* Whatever happened, collect what is in flight: it may be confirmed. */
	while (mom_client_inflight(p.c) > 0)
		if (reap(&p) != 0 && (p.status == MOM_EXIT_TEMPFAIL || p.status == MOM_EXIT_UNAVAILABLE))
			break;
out:
	mom_progress(&p.prog, p.confirmed, 0, p.in_bytes, p.in_size, 1);
	if (p.status == 0)
		mom_cli_info(&o->cli, "%" PRIu64 " messages confirmed (%" PRIu64 " duplicates)",
		    p.confirmed, p.dups);
	batch_free(p.cur);
	mom_client_close(p.c);
	/* Batches given up on (-W, lost broker): the client holds no copy now. */
	while (p.inflight) {
		struct batch *b = p.inflight;

		untrack(&p, b);
		batch_free(b);
	}
	mom_buf_fini(&p.hdrs);
	mom_buf_fini(&one);
	free(p.checked);
	return p.status;
}

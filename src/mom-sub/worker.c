/*
 * worker.c: mom-sub's worker mode, `mom-sub ... -- COMMAND [ARG...]`.
 *
 * The main thread owns the broker connection: it fetches only as many
 * messages as there are free slots (-P; with -p, up to -p held in all, the
 * rest waiting for a slot), starts a command per message
 * (posix_spawnp, in its own process group so that a terminal's ^C reaches
 * mom-sub only), extends the lease of every message whose command still
 * runs (a "touch" nack every third of the queue's ack wait), publishes
 * replies and settles.  Each running command has a thread that writes the
 * payload to its stdin, collects its stdout (when there is a reply to
 * send) and waits for it; the main thread learns of its end through a
 * condition variable.
 *
 * Outcomes: exit 0 ack; 65 dead-letter now; 75, any other status or a
 * signal, a (counted) nack with back-off (1 s * 2^(delivery-1), at most
 * 60 s).  With a Mom-Reply-To header the reply is published, and
 * confirmed, before the request is settled, except for 75 (it runs
 * again); once the reply is out the request is settled whatever the status
 * (acked, or dead-lettered for 65).
 *
 * Settling: acks and nacks ride on the next fetch.  When no slot is free,
 * a settle-only request goes out: for a queue or a durable subscription
 * under a second consumer id with the close flag (which releases only
 * that id's leases: none), for an ephemeral subscription (which belongs to
 * this consumer) as a fetch of at most one message, kept until a slot
 * frees.
 *
 * Copies: a broker delivers again what it holds no settlement for (after
 * a restart or a change of leader, or when the settlement went to a leader
 * that lost it).  A message acknowledged here (exit 0, or its reply sent)
 * is then acknowledged again without running its command (libmom/seen.h:
 * the last 65,536); one whose command still runs or waits takes the copy's
 * receipt.  A dead-lettered one is not noted: moved back from the dead
 * letters, it must run again.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "mom.h"
#include "seen.h"
#include "sub.h"
#include "wire.h"

extern char **environ;

#define POLL_MS      10000 /* long poll while idle */
#define BUSY_POLL_MS 200   /* every slot busy: how long to wait for a command to end */
#define DRY_POLL_MS  20    /* a slot free, nothing queued: how soon to ask again */
#define SETTLE_MS    20    /* how long a settlement may wait for the next round trip */
#define SETTLE_MAX   64    /* or how many of them */
#define GRACE_MS     30000 /* on SIGTERM: how long running commands may go on */
#define KILL_MS      5000  /* then after SIGTERM to them, SIGKILL */
#define BACKOFF_MS   1000
#define BACKOFF_MAX  60000
#define OUT_MAX      MOM_PAYLOAD_LIMIT

enum job_state { J_PENDING, J_RUNNING, J_DONE };

struct job {
	struct job     *next;
	struct worker  *w;
	enum job_state  state;    /* J_RUNNING -> J_DONE under w->mu */
	uint64_t        receipt, seq, deliveries;
	uint8_t         kind;
	char           *name, *id, *reply_to;
	uint8_t        *headers, *payload;
	size_t          hlen, plen;
	pid_t           pid;
	int             exited;   /* the child is a zombie or gone: no more kill() */
	int             wstatus;
	int             killed;   /* 1: SIGTERM sent on shutdown, 2: SIGKILL */
	int             in_fd, out_fd;
	struct mom_buf  out;
	int             out_over;
	int64_t         last_touch;
	pthread_t       th;
	int             has_th;
};

struct worker {
	int64_t          settle_since; /* when the oldest unsent ack or nack was made */
	struct sub_options   *o;
	struct mom_client *c;
	uint64_t           consumer, settler, producer, pubseq;
	struct job        *jobs;
	size_t             npending, nrunning;
	uint64_t           done; /* processed (-C) */
	uint64_t          *acks, *nrec, *ndel;
	size_t             ack_n, nack_n, cap;
	struct mom_buf     req, pub, hdr;
	int64_t            touch_ms;
	int                status;
	int                fatal;
	pthread_mutex_t    mu;
	pthread_cond_t     cv;
	int                ndone; /* J_DONE jobs not yet reaped, under mu */
	/* The main loop's state. */
	uint64_t           slots;   /* -P: commands at once */
	uint64_t           hold;    /* -p: messages held at once (running or waiting), >= slots */
	int64_t            last;    /* when the last message came (-W) */
	int64_t            stop_at; /* when stopping began; 0: not yet */
	int                dry;     /* an ask without waiting found nothing while commands ran */
	struct mom_seen    seen;    /* settled here: a copy delivered again is acked, not run */
	uint64_t           copies;
};

static volatile sig_atomic_t got_signal, stopping;
static volatile int          intr; /* the client's interrupt flag */

static void
on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
	if (!stopping)
		intr = 1;
}

static int
grow(struct worker *w, size_t need)
{
	size_t    cap;
	uint64_t *p;

	if (need <= w->cap)
		return 0;
	cap = w->cap ? w->cap * 2 : 64;
	while (cap < need)
		cap *= 2;
	if ((p = realloc(w->acks, cap * sizeof(*p))) == NULL)
		return -1;
	w->acks = p;
	if ((p = realloc(w->nrec, cap * sizeof(*p))) == NULL)
		return -1;
	w->nrec = p;
	if ((p = realloc(w->ndel, cap * sizeof(*p))) == NULL)
		return -1;
	w->ndel = p;
	w->cap = cap;
	return 0;
}

static void
add_ack(struct worker *w, uint64_t receipt)
{
	if (w->ack_n + w->nack_n == 0)
		w->settle_since = mom_mono_ms();
	if (grow(w, w->ack_n + 1) == 0)
		w->acks[w->ack_n++] = receipt;
}

static void
add_nack(struct worker *w, uint64_t receipt, uint64_t delay)
{
	if (w->ack_n + w->nack_n == 0)
		w->settle_since = mom_mono_ms();
	if (grow(w, w->nack_n + 1) == 0) {
		w->nrec[w->nack_n] = receipt;
		w->ndel[w->nack_n++] = delay;
	}
}

static char *
sdup(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		if (n)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

/* s (from sdup, *n bytes) with a newline added; frees s on failure. */
static char *
append_nl(char *s, size_t *n)
{
	char *t = realloc(s, *n + 2);

	if (t == NULL) {
		free(s);
		return NULL;
	}
	t[(*n)++] = '\n';
	t[*n] = '\0';
	return t;
}

static void
job_free(struct job *j)
{
	free(j->name);
	free(j->id);
	free(j->reply_to);
	free(j->headers);
	free(j->payload);
	mom_buf_fini(&j->out);
	free(j);
}

static struct job *
job_new(struct worker *w, const struct mom_delivery *d)
{
	struct job      *j = calloc(1, sizeof(*j));
	struct mom_slice v;

	if (j == NULL)
		return NULL;
	j->w = w;
	j->state = J_PENDING;
	j->receipt = d->receipt;
	j->seq = d->seq;
	j->deliveries = d->deliveries;
	j->kind = d->kind;
	j->in_fd = j->out_fd = -1;
	mom_buf_init(&j->out);
	j->name = sdup(d->name.p, d->name.n);
	j->id = sdup(d->id.p, d->id.n);
	j->headers = (uint8_t *)sdup(d->headers.p, d->headers.n);
	j->hlen = d->headers.n;
	j->payload = (uint8_t *)sdup(d->payload.p, d->payload.n);
	j->plen = d->payload.n;
	/* --newline: filters such as bc(1) and read(1) want a whole last line. */
	if (w->o->newline && j->payload != NULL && (j->plen == 0 || j->payload[j->plen - 1] != '\n'))
		j->payload = (uint8_t *)append_nl((char *)j->payload, &j->plen);
	if (d->headers.n && mom_hdr_get(d->headers.p, d->headers.n, MOM_HDR_REPLY_TO, &v) && v.n)
		j->reply_to = sdup(v.p, v.n);
	if (!j->name || !j->id || !j->headers || !j->payload) {
		job_free(j);
		return NULL;
	}
	j->last_touch = mom_mono_ms();
	return j;
}

/* The command's environment: ours without stale MOM_* metadata, then its. */
static char **
job_env(struct job *j)
{
	static const char *const drop[] = { "MOM_ID=", "MOM_QUEUE=", "MOM_TOPIC=",
		"MOM_DELIVERY=", "MOM_REPLY_TO=", "MOM_SEQ=" };
	struct mom_hdr_iter it;
	struct mom_slice    k, v;
	size_t              n = 0, cap = 8, i, e;
	char              **env;
	char               *s;

	for (e = 0; environ[e]; e++)
		cap++;
	if (j->hlen) {
		mom_hdr_iter_init(&it, j->headers, j->hlen);
		while (mom_hdr_next(&it, &k, &v) == 1)
			cap++;
	}
	if ((env = calloc(cap, sizeof(*env))) == NULL)
		return NULL;
	for (e = 0; environ[e]; e++) {
		int skip = strncmp(environ[e], "MOM_H_", 6) == 0;

		for (i = 0; !skip && i < sizeof(drop) / sizeof(drop[0]); i++)
			skip = strncmp(environ[e], drop[i], strlen(drop[i])) == 0;
		if (!skip && (env[n] = strdup(environ[e])) != NULL)
			n++;
	}
	if (asprintf(&s, "MOM_ID=%s", j->id) >= 0)
		env[n++] = s;
	if (asprintf(&s, "%s=%s", j->kind == MOM_KIND_TOPIC ? "MOM_TOPIC" : "MOM_QUEUE",
	    j->name) >= 0)
		env[n++] = s;
	if (asprintf(&s, "MOM_DELIVERY=%" PRIu64, j->deliveries) >= 0)
		env[n++] = s;
	if (asprintf(&s, "MOM_SEQ=%" PRIu64, j->seq) >= 0)
		env[n++] = s;
	if (j->reply_to && asprintf(&s, "MOM_REPLY_TO=%s", j->reply_to) >= 0)
		env[n++] = s;
	if (j->hlen) {
		mom_hdr_iter_init(&it, j->headers, j->hlen);
		while (n + 1 < cap && mom_hdr_next(&it, &k, &v) == 1) {
			if ((s = malloc(6 + k.n + 1 + v.n + 1)) == NULL)
				continue;
			memcpy(s, "MOM_H_", 6);
			for (i = 0; i < k.n; i++) {
				char c = (char)k.p[i];

				if (c >= 'a' && c <= 'z')
					c = (char)(c - 'a' + 'A');
				else if (c == '-')
					c = '_';
				s[6 + i] = c;
			}
			s[6 + k.n] = '=';
			if (v.n)
				memcpy(s + 7 + k.n, v.p, v.n);
			s[7 + k.n + v.n] = '\0';
			env[n++] = s;
		}
	}
	env[n] = NULL;
	return env;
}

static void
env_free(char **env)
{
	size_t i;

	if (env == NULL)
		return;
	for (i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}

/* The job's I/O thread: stdin, stdout, then its end. */
static void *
job_thread(void *arg)
{
	struct job    *j = arg;
	struct worker *w = j->w;
	size_t         off = 0;
	int            gone = 0, st = 0;
	siginfo_t      si;
	char           buf[65536];

	if (j->plen == 0 && j->in_fd >= 0) {
		close(j->in_fd);
		j->in_fd = -1;
	}
	while (j->in_fd >= 0 || j->out_fd >= 0) {
		struct pollfd p[2];
		int           n = 0, ii = -1, oi = -1;

		if (j->in_fd >= 0) {
			p[n].fd = j->in_fd;
			p[n].events = POLLOUT;
			ii = n++;
		}
		if (j->out_fd >= 0) {
			p[n].fd = j->out_fd;
			p[n].events = POLLIN;
			oi = n++;
		}
		if (poll(p, (nfds_t)n, gone ? 0 : 100) < 0 && errno != EINTR)
			break;
		if (ii >= 0 && p[ii].revents) {
			ssize_t r = write(j->in_fd, j->payload + off, j->plen - off);

			if (r > 0)
				off += (size_t)r;
			if ((r < 0 && errno != EAGAIN && errno != EINTR) || off == j->plen) {
				close(j->in_fd);
				j->in_fd = -1;
			}
		}
		if (oi >= 0 && (p[oi].revents || gone)) {
			ssize_t r = read(j->out_fd, buf, sizeof(buf));

			if (r > 0) {
				if (j->out.len + (size_t)r <= OUT_MAX)
					mom_buf_put(&j->out, buf, (size_t)r);
				else
					j->out_over = 1;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR) || gone) {
				/* EOF, or the command is gone and the pipe is empty. */
				close(j->out_fd);
				j->out_fd = -1;
			}
		}
		if (!gone) {
			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == j->pid) {
				/*
				 * What it wrote is in the pipe: read on without
				 * waiting; a background grandchild holding the pipe
				 * open does not keep the job going.
				 */
				gone = 1;
				if (j->in_fd >= 0) {
					close(j->in_fd);
					j->in_fd = -1;
				}
			}
		}
	}
	if (!gone) {
		while (waitid(P_PID, (id_t)j->pid, &si, WEXITED | WNOWAIT) != 0 && errno == EINTR)
			;
	}
	pthread_mutex_lock(&w->mu);
	j->exited = 1;
	pthread_mutex_unlock(&w->mu);
	while (waitpid(j->pid, &st, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&w->mu);
	j->wstatus = st;
	j->state = J_DONE;
	w->ndone++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Starts a pending job; 0, or -1 (fatal: the command cannot be run). */
static int
job_start(struct worker *w, struct job *j)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t          at;
	sigset_t                   def, none;
	int                        in[2] = { -1, -1 }, out[2] = { -1, -1 }, rv;
	char                     **env;

	if (pipe2(in, O_CLOEXEC) != 0 || (j->reply_to && pipe2(out, O_CLOEXEC) != 0)) {
		mom_cli_err(&w->o->cli, "pipe: %s", strerror(errno));
		goto fail;
	}
	if ((env = job_env(j)) == NULL) {
		mom_cli_err(&w->o->cli, "out of memory");
		goto fail;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	if (out[1] >= 0)
		posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	posix_spawnattr_init(&at);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigemptyset(&none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
	    POSIX_SPAWN_SETPGROUP);
	rv = posix_spawnp(&j->pid, w->o->argv[0], &fa, &at, w->o->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	env_free(env);
	if (rv != 0) {
		mom_cli_err(&w->o->cli, "cannot run '%s': %s", w->o->argv[0], strerror(rv));
		goto fail;
	}
	close(in[0]);
	if (out[1] >= 0)
		close(out[1]);
	j->in_fd = in[1];
	j->out_fd = out[0];
	fcntl(j->in_fd, F_SETFL, fcntl(j->in_fd, F_GETFL) | O_NONBLOCK);
	if (j->out_fd >= 0)
		fcntl(j->out_fd, F_SETFL, fcntl(j->out_fd, F_GETFL) | O_NONBLOCK);
	j->state = J_RUNNING;
	j->last_touch = mom_mono_ms();
	w->npending--;
	w->nrunning++;
	if ((rv = pthread_create(&j->th, NULL, job_thread, j)) == 0)
		j->has_th = 1;
	else {
		/* Cannot watch it: wait for it here. */
		mom_cli_err(&w->o->cli, "pthread_create: %s", strerror(rv));
		kill(-j->pid, SIGKILL);
		close(j->in_fd);
		if (j->out_fd >= 0)
			close(j->out_fd);
		waitpid(j->pid, &j->wstatus, 0);
		j->exited = 1;
		j->killed = 2;
		j->state = J_DONE;
		pthread_mutex_lock(&w->mu);
		w->ndone++;
		pthread_mutex_unlock(&w->mu);
		return -1;
	}
	return 0;
fail:
	if (in[0] >= 0) {
		close(in[0]);
		close(in[1]);
	}
	if (out[0] >= 0) {
		close(out[0]);
		close(out[1]);
	}
	return -1;
}

/* Publishes a job's reply and waits for its confirmation; 0 (also when the reply queue is gone) or -1. */
static int
publish_reply(struct worker *w, struct job *j, int code)
{
	struct mom_pub_batch pb;
	struct mom_pub_msg   m;
	struct mom_slice     cid;
	struct mom_rd        body;
	nng_msg             *rep;
	char                 l1[64 + MOM_HEADERS_MAX], l2[64], err[512];
	const char          *lines[2];
	size_t               n = 0, start, off;
	int                  rv;

	if (j->out_over) {
		mom_cli_err(&w->o->cli, "reply to '%s' too big (more than %u bytes)",
		    j->reply_to, (unsigned)OUT_MAX);
		return -1;
	}
	if (j->hlen && mom_hdr_get(j->headers, j->hlen, MOM_HDR_CORRELATION, &cid) &&
	    cid.n < sizeof(l1) - 64) {
		snprintf(l1, sizeof(l1), "%s: %.*s", MOM_HDR_CORRELATION, (int)cid.n,
		    (const char *)cid.p);
		lines[n++] = l1;
	}
	snprintf(l2, sizeof(l2), "%s: %d", MOM_HDR_EXIT, code);
	lines[n++] = l2;
	mom_buf_reset(&w->hdr);
	if (mom_hdr_build(&w->hdr, lines, n) != 0) {
		mom_cli_err(&w->o->cli, "cannot build the reply's headers");
		return -1;
	}
	mom_buf_reset(&w->pub);
	mom_frame_encode(&w->pub, MOM_OP_PUBLISH, false, 0);
	start = w->pub.len;
	memset(&pb, 0, sizeof(pb));
	pb.producer = w->producer;
	pb.first_seq = w->pubseq++;
	pb.kind = MOM_KIND_QUEUE;
	pb.name.p = (const uint8_t *)j->reply_to;
	pb.name.n = strlen(j->reply_to);
	mom_pub_encode_begin(&w->pub, &pb);
	off = mom_pub_count_offset(&w->pub, start);
	memset(&m, 0, sizeof(m));
	m.kind = MOM_KIND_QUEUE;
	m.name = pb.name;
	m.headers.p = w->hdr.data;
	m.headers.n = w->hdr.len;
	m.payload.p = j->out.data;
	m.payload.n = j->out.len;
	mom_pub_encode_msg(&w->pub, &pb, &m);
	mom_pub_encode_count(&w->pub, off, 1);
	if (w->pub.err) {
		mom_cli_err(&w->o->cli, "out of memory");
		return -1;
	}
	rv = mom_client_call(w->c, &w->pub, &rep, &body, 30000, err, sizeof(err));
	if (rv == MOM_ECLOSED) {
		/*
		 * A signal cut the wait short: the command finished, so its
		 * reply still goes out (the same producer sequence number, so
		 * the broker de-duplicates).  Stopping is handled by the loop.
		 */
		stopping = 1;
		intr = 0;
		err[0] = '\0';
		rv = mom_client_call(w->c, &w->pub, &rep, &body, 30000, err, sizeof(err));
	}
	if (rv == MOM_ENOENT) {
		/*
		 * The requester is gone (it gave up, or this is a second run of
		 * a request it already has the answer to): nobody waits for
		 * this reply, running the command again would not change that.
		 */
		mom_cli_info(&w->o->cli, "message %" PRIu64 ": reply queue '%s' is gone, reply "
		    "dropped", j->seq, j->reply_to);
		return 0;
	}
	if (rv != 0) {
		mom_cli_err(&w->o->cli, "could not publish the reply to '%s': %s", j->reply_to,
		    err[0] ? err : mom_strerror(rv));
		return -1;
	}
	nng_msg_free(rep);
	return 0;
}

/* The back-off before a failed message runs again: 1 s * 2^(delivery - 1), at most 60 s. */
static uint64_t
backoff_ms(const struct job *j)
{
	uint64_t d = j->deliveries ? j->deliveries - 1 : 0, ms = BACKOFF_MS;

	while (d-- > 0 && ms < BACKOFF_MAX)
		ms *= 2;
	return ms > BACKOFF_MAX ? BACKOFF_MAX : ms;
}

/* Gives a failed message back, to run again after its back-off. */
static void
retry_later(struct worker *w, struct job *j, const char *why)
{
	uint64_t ms = backoff_ms(j);

	mom_cli_info(&w->o->cli, "message %" PRIu64 ": %s, retry in %" PRIu64 " ms", j->seq,
	    why, ms);
	add_nack(w, j->receipt, MOM_NACK_DELAY(ms));
}

/*
 * Settles a finished job (its reply first).  A request whose reply was
 * published is settled whatever the status, which travels in the reply:
 * running it again would answer a requester that already has its answer.
 */
static void
job_settle(struct worker *w, struct job *j)
{
	char why[64];
	int  code, sig = 0;

	if (WIFEXITED(j->wstatus))
		code = WEXITSTATUS(j->wstatus);
	else if (WIFSIGNALED(j->wstatus)) {
		sig = WTERMSIG(j->wstatus);
		code = 128 + sig;
	} else
		code = 128;
	if (j->killed) {
		/* Stopped by us on shutdown: not the message's fault. */
		mom_cli_info(&w->o->cli, "message %" PRIu64 ": command stopped on shutdown",
		    j->seq);
		add_nack(w, j->receipt, MOM_NACK_UNSEEN);
		return;
	}
	if (sig)
		snprintf(why, sizeof(why), "command killed by signal %d", sig);
	else
		snprintf(why, sizeof(why), "command exited %d", code);
	if (code == MOM_EXIT_TEMPFAIL && !sig) {
		retry_later(w, j, why);
		return;
	}
	if (j->reply_to && publish_reply(w, j, code) != 0) {
		/* No reply, no settlement: it runs again. */
		retry_later(w, j, "no reply published");
		return;
	}
	if (code == 0)
		add_ack(w, j->receipt);
	else if (code == MOM_EXIT_DATAERR && !sig) {
		mom_cli_info(&w->o->cli, "message %" PRIu64 ": exit 65, dead-lettered", j->seq);
		add_nack(w, j->receipt, MOM_NACK_DEAD | MOM_NACK_UNSEEN |
		    MOM_NACK_DELAY(MOM_EXIT_DATAERR));
		/* Not noted: moved back from the dead letters (queue move), it runs again. */
		return;
	} else if (j->reply_to) {
		mom_cli_info(&w->o->cli, "message %" PRIu64 ": %s, its reply sent: settled",
		    j->seq, why);
		add_ack(w, j->receipt);
	} else {
		retry_later(w, j, why);
		return;
	}
	/* Settled: should the settlement be lost, a copy delivered again does not run. */
	mom_seen_add(&w->seen, j->seq);
}

/* The job of message seq, pending or running; NULL when none. */
static struct job *
job_of_seq(struct worker *w, uint64_t seq)
{
	struct job *j;

	for (j = w->jobs; j != NULL; j = j->next)
		if (j->seq == seq)
			return j;
	return NULL;
}

/* Settles every finished job; returns how many. */
static int
reap(struct worker *w)
{
	struct job **pp, *j;
	int          n = 0;

	pthread_mutex_lock(&w->mu);
	if (w->ndone == 0) {
		pthread_mutex_unlock(&w->mu);
		return 0;
	}
	w->ndone = 0;
	pthread_mutex_unlock(&w->mu);
	for (pp = &w->jobs; (j = *pp) != NULL;) {
		int done;

		pthread_mutex_lock(&w->mu);
		done = j->state == J_DONE;
		pthread_mutex_unlock(&w->mu);
		if (!done) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (j->has_th)
			pthread_join(j->th, NULL);
		w->nrunning--;
		job_settle(w, j);
		if (!j->killed)
			w->done++;
		job_free(j);
		n++;
	}
	return n;
}

static void
fetch_req(struct worker *w, uint64_t consumer, uint64_t max, uint64_t wait_ms, uint64_t flags)
{
	struct mom_fetch f;

	memset(&f, 0, sizeof(f));
	f.consumer = consumer;
	f.kind = w->o->kind;
	f.name.p = (const uint8_t *)w->o->name;
	f.name.n = strlen(w->o->name);
	if (w->o->durable) {
		f.durable.p = (const uint8_t *)w->o->durable;
		f.durable.n = strlen(w->o->durable);
	}
	f.from = w->o->from;
	f.from_time_ms = (uint64_t)w->o->from_time_ms;
	f.max_msgs = max;
	f.max_bytes = 8u << 20;
	f.wait_ms = wait_ms;
	f.flags = flags;
	f.nacks = w->ack_n;
	f.acks = w->acks;
	f.nnacks = w->nack_n;
	f.nack_receipts = w->nrec;
	f.nack_delays = w->ndel;
	mom_buf_reset(&w->req);
	mom_frame_encode(&w->req, MOM_OP_FETCH, false, 0);
	mom_fetch_encode(&w->req, &f);
}

/*
 * One fetch (or settle-only request) round trip.  Settlements go out with
 * it; deliveries become pending jobs.  Returns 0 or an error code.
 */
static int
round_trip(struct worker *w, uint64_t consumer, uint64_t max, uint64_t wait_ms, uint64_t flags,
    size_t *got, uint64_t *ready)
{
	struct mom_rd       body;
	struct mom_delivery d;
	nng_msg            *rep;
	char                err[512];
	uint64_t            count, i;
	int                 rv;

	*got = 0;
	*ready = 0;
	err[0] = '\0';
	fetch_req(w, consumer, max, wait_ms, flags);
	rv = mom_client_call(w->c, &w->req, &rep, &body, (int64_t)wait_ms + 30000, err,
	    sizeof(err));
	if (rv != 0)
		return rv;
	w->ack_n = w->nack_n = 0;
	*ready = mom_rd_varint(&body);
	count = mom_rd_varint_max(&body, 100000);
	for (i = 0; !body.err && i < count; i++) {
		struct job *j, **pp;

		if (mom_delivery_decode(&body, &d) != 0)
			break;
		/* A copy of a message settled here (its settlement was lost): acked. */
		if (mom_seen_has(&w->seen, d.seq)) {
			add_ack(w, d.receipt);
			w->copies++;
			continue;
		}
		/* Of one whose command runs or waits: that end settles this delivery. */
		if ((j = job_of_seq(w, d.seq)) != NULL) {
			j->receipt = d.receipt;
			w->copies++;
			continue;
		}
		if ((j = job_new(w, &d)) == NULL) {
			/* Give it back unused. */
			add_nack(w, d.receipt, MOM_NACK_UNSEEN);
			continue;
		}
		for (pp = &w->jobs; *pp; pp = &(*pp)->next)
			;
		*pp = j;
		w->npending++;
		(*got)++;
	}
	if (body.err || i < count) {
		nng_msg_free(rep);
		mom_cli_err(&w->o->cli, "broker sent a malformed reply");
		w->status = MOM_EXIT_FAIL;
		return MOM_EPROTO;
	}
	nng_msg_free(rep);
	return 0;
}

/* The queue's ack wait, to extend leases in time; 0 when unknown. */
static int64_t
queue_ack_wait(struct worker *w)
{
	json_t *req, *rep;
	char   *out = NULL, *txt;
	int64_t ms = 0;

	if (w->o->kind != MOM_KIND_QUEUE)
		return 0;
	req = json_pack("{s:s, s:s}", "op", "queue.info", "name", w->o->name);
	if (req == NULL || (txt = json_dumps(req, JSON_COMPACT)) == NULL) {
		json_decref(req);
		return 0;
	}
	json_decref(req);
	if (mom_cli_admin(&w->o->cli, w->c, txt, &out, 10000) == 0 &&
	    (rep = json_loads(out, 0, NULL)) != NULL) {
		json_t *v = json_object_get(rep, "ack_wait_ms");

		if (json_is_integer(v))
			ms = json_integer_value(v);
		json_decref(rep);
	}
	free(txt);
	free(out);
	return ms;
}

static void
signal_jobs(struct worker *w, int sig, int level)
{
	struct job *j;

	pthread_mutex_lock(&w->mu);
	for (j = w->jobs; j; j = j->next)
		if (j->state == J_RUNNING && !j->exited && j->killed < level) {
			kill(-j->pid, sig);
			j->killed = level;
		}
	pthread_mutex_unlock(&w->mu);
}

static void
worker_init(struct worker *w, struct sub_options *o)
{
	memset(w, 0, sizeof(*w));
	w->o = o;
	w->consumer = mom_cli_random();
	w->settler = mom_cli_random();
	w->producer = mom_cli_random();
	w->pubseq = 1;
	w->slots = o->parallel ? o->parallel : 1;
	w->hold = o->prefetch > w->slots ? o->prefetch : w->slots;
	mom_buf_init(&w->req);
	mom_buf_init(&w->pub);
	mom_buf_init(&w->hdr);
	mom_seen_init(&w->seen, 0);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void
worker_fini(struct worker *w)
{
	struct job *j;

	/* Only jobs that never started can be left. */
	while ((j = w->jobs) != NULL) {
		w->jobs = j->next;
		job_free(j);
	}
	mom_client_close(w->c);
	mom_buf_fini(&w->req);
	mom_buf_fini(&w->pub);
	mom_buf_fini(&w->hdr);
	free(w->acks);
	free(w->nrec);
	free(w->ndel);
	mom_seen_fini(&w->seen);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

static void
catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* How often the leases of running commands are extended: a third of the ack wait. */
static void
set_touch_interval(struct worker *w)
{
	w->touch_ms = queue_ack_wait(w) / 3;
	if (w->touch_ms <= 0)
		w->touch_ms = 5000;
	if (w->touch_ms < 100)
		w->touch_ms = 100;
}

/* From now on nothing more is fetched; running commands get GRACE_MS. */
static void
begin_stopping(struct worker *w, int64_t now)
{
	stopping = 1;
	if (!w->stop_at)
		w->stop_at = now;
}

/* True when the loop is done: nothing runs, and it is stopping or has its -C messages. */
static int
finished(const struct worker *w)
{
	if (w->nrunning > 0)
		return 0;
	return w->fatal || stopping || (w->o->count && w->done >= w->o->count);
}

/* While stopping: SIGTERM to the commands after GRACE_MS, SIGKILL KILL_MS later. */
static void
kill_late_commands(struct worker *w, int64_t now)
{
	if (now - w->stop_at >= GRACE_MS + KILL_MS)
		signal_jobs(w, SIGKILL, 2);
	else if (now - w->stop_at >= GRACE_MS)
		signal_jobs(w, SIGTERM, 1);
}

/* Starts what was fetched while a slot is free; a command that cannot be run stops all. */
static void
start_pending(struct worker *w, int64_t now)
{
	struct job *j;

	for (j = w->jobs; j && !stopping && !w->fatal && w->nrunning < w->slots; j = j->next) {
		if (j->state != J_PENDING)
			continue;
		if (job_start(w, j) != 0) {
			w->fatal = 1;
			if (w->status == 0)
				w->status = 127;
		}
	}
	if (w->fatal && !w->stop_at)
		begin_stopping(w, now);
}

/* Extends the leases of what runs (or waits for a slot). */
static void
touch_leases(struct worker *w, int64_t now)
{
	struct job *j;

	pthread_mutex_lock(&w->mu);
	for (j = w->jobs; j && !w->fatal; j = j->next)
		if (j->state != J_DONE && now - j->last_touch >= w->touch_ms) {
			add_nack(w, j->receipt, MOM_NACK_TOUCH);
			j->last_touch = now;
		}
	pthread_mutex_unlock(&w->mu);
}

/*
 * With a message waiting for every slot, a command that ends needs no
 * round trip: its settlement waits (up to SETTLE_MS or SETTLE_MAX of
 * them) and goes out with the next fetch, so the broker is asked once per
 * many messages, not once per message.
 */
static int
settle_due(const struct worker *w, int64_t now)
{
	return w->ack_n + w->nack_n >= SETTLE_MAX ||
	    (w->ack_n + w->nack_n > 0 && now - w->settle_since >= SETTLE_MS);
}

/*
 * How many messages to ask for.  By default only as many as there are
 * free slots: a message this worker cannot start now stays with the
 * broker, where another worker can take it (fair dispatch).  With -p,
 * up to w->hold messages are held, the extra ones waiting for a slot, so
 * that a command that ends is followed at once by the next, not by a
 * round trip to the broker (their leases are touched too).  Never more
 * than -C still needs.
 */
static uint64_t
wanted(const struct worker *w, int64_t now)
{
	uint64_t n = 0, left, have = w->nrunning + w->npending;

	if (!stopping && have < w->hold) {
		n = w->hold - have;
		if (w->o->count) {
			left = w->o->count - w->done;
			left = left > have ? left - have : 0;
			if (left < n)
				n = left;
		}
	}
	if (n > 0 && w->nrunning > 0 && w->npending >= w->slots && !settle_due(w, now))
		n = 0;
	return n;
}

/*
 * Asks for n messages.  While commands run the loop must not sit in a long
 * poll: a command that ends is settled (and its reply published) here.
 * So it asks without waiting, and after an empty answer (w->dry) waits for
 * a command to end, asking again every DRY_POLL_MS.  Returns 0, an error
 * code, or -1 when -W passed without a message (w->status set).
 */
static int
fetch(struct worker *w, uint64_t n, int64_t now, size_t *got, uint64_t *ready)
{
	const struct sub_options *o = w->o;
	uint64_t                  wait = POLL_MS;
	int                       rv;

	if (w->nrunning > 0 || o->drain)
		wait = 0;
	else if (o->wait_ms >= 0) {
		int64_t l = o->wait_ms - (now - w->last);

		if (l <= 0) {
			mom_cli_info(&o->cli, "no message for %" PRId64 " ms", o->wait_ms);
			w->status = MOM_EXIT_TEMPFAIL;
			return -1;
		}
		if ((uint64_t)l < wait)
			wait = (uint64_t)l;
	}
	rv = round_trip(w, w->consumer, n, wait, 0, got, ready);
	if (rv == 0 && wait == 0 && *got == 0 && w->nrunning > 0)
		w->dry = 1;
	return rv;
}

/* Sends the settlements alone, when no slot is free (see the top of the file). */
static int
settle_only(struct worker *w, size_t *got, uint64_t *ready)
{
	if (w->o->kind == MOM_KIND_QUEUE || w->o->durable)
		return round_trip(w, w->settler, 0, 0, MOM_FF_CLOSE, got, ready);
	return round_trip(w, w->consumer, 1, 0, 0, got, ready);
}

/* Waits for a command to end, a signal, or the time to ask or settle again. */
static void
wait_for_commands(struct worker *w, uint64_t n)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (w->ack_n || w->nack_n ? SETTLE_MS : w->dry && n > 0 ? DRY_POLL_MS :
	    BUSY_POLL_MS) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	if (w->ndone == 0 && !got_signal)
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	pthread_mutex_unlock(&w->mu);
	w->dry = 0;
}

/* A round trip failed: say why once; commands still running finish, nothing more is fetched. */
static void
broker_lost(struct worker *w, int rv)
{
	if (w->status == 0 || w->status == 127) {
		mom_cli_err(&w->o->cli, "%s", rv == MOM_EUNAVAIL ?
		    "lost the connection to the broker" : mom_strerror(rv));
		w->status = mom_err_exit(rv);
	}
	w->fatal = 1;
	if (!w->stop_at)
		begin_stopping(w, mom_mono_ms());
}

/* One turn of the main loop; 1 when the loop is done. */
static int
step(struct worker *w)
{
	const struct sub_options *o = w->o;
	uint64_t                  n, ready = 0;
	size_t                    got = 0;
	int64_t                   now;
	int                       rv;

	if (got_signal && !w->stop_at) {
		/* stopping first: from then on the handler leaves intr alone. */
		begin_stopping(w, mom_mono_ms());
		intr = 0;
		mom_cli_info(&o->cli, "stopping: waiting for %zu running command(s)", w->nrunning);
	}
	if (reap(w) > 0) {
		w->last = mom_mono_ms();
		w->dry = 0;
	}
	now = mom_mono_ms();
	if (finished(w))
		return 1;
	if (stopping || w->fatal)
		kill_late_commands(w, now);
	start_pending(w, now);
	touch_leases(w, now);
	n = wanted(w, now);
	if (n > 0 && !(w->nrunning > 0 && w->dry)) {
		if ((rv = fetch(w, n, now, &got, &ready)) < 0)
			return 1;
	} else if ((w->ack_n || w->nack_n) && !w->fatal &&
	    (settle_due(w, now) || w->nrunning == 0 || stopping))
		rv = settle_only(w, &got, &ready);
	else {
		wait_for_commands(w, n);
		return 0;
	}
	if (rv == MOM_ECLOSED)
		return 0; /* a signal: the next turn begins stopping */
	if (rv != 0) {
		broker_lost(w, rv);
		return 0;
	}
	if (got > 0)
		w->last = mom_mono_ms();
	else if (o->drain && n > 0 && ready == 0 && w->nrunning == 0 && w->npending == 0)
		return 1;
	return 0;
}

/* Settles what finished and gives back what never started. */
static void
close_consumer(struct worker *w)
{
	struct mom_rd body;
	nng_msg      *rep;
	char          err[256];
	int           rv;

	intr = 0;
	fetch_req(w, w->consumer, 0, 0, MOM_FF_CLOSE);
	err[0] = '\0';
	rv = mom_client_call(w->c, &w->req, &rep, &body, 5000, err, sizeof(err));
	if (rv == 0)
		nng_msg_free(rep);
	else if (w->ack_n > 0 && !w->fatal)
		mom_cli_err(&w->o->cli, "could not ack the last %zu messages (%s): "
		    "they will be delivered again", w->ack_n, err[0] ? err : mom_strerror(rv));
}

int
worker_run(struct sub_options *o)
{
	struct worker w;
	int           rv;

	worker_init(&w, o);
	catch_signals();
	if ((rv = mom_cli_connect(&o->cli, &w.c, 4)) != 0) {
		worker_fini(&w);
		return rv;
	}
	mom_client_set_interrupt(w.c, &intr);
	if (o->create && (rv = mom_cli_ensure(&o->cli, w.c, MOM_KIND_QUEUE, o->name, 10000)) != 0)
		w.status = mom_err_exit(rv);
	else {
		set_touch_interval(&w);
		w.last = mom_mono_ms();
		while (step(&w) == 0)
			;
		close_consumer(&w);
		if (w.copies > 0)
			mom_cli_info(&o->cli, "%" PRIu64 " messages delivered again were settled "
			    "here already: acknowledged, not run twice", w.copies);
	}
	worker_fini(&w);
	return w.status;
}

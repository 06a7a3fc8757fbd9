/*
 * options.c: mom-pub's command line and config file into struct
 * pub_options (see options.h and opt.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "duration.h"
#include "mom.h"
#include "names.h"
#include "options.h"
#include "wire.h"

enum { OPT_ID = 256, OPT_TTL, OPT_DELAY, OPT_JSONL, OPT_CREATE, OPT_REPLY_EXPIRE,
	OPT_PROGRESS };

static const char optstring[] = ":0f:hH:lm:nq:rs:t:vW:";

static const struct option longopts[] = {
	{ "create", no_argument, NULL, OPT_CREATE },
	{ "delay", required_argument, NULL, OPT_DELAY },
	{ "empty", no_argument, NULL, 'n' },
	{ "file", required_argument, NULL, 'f' },
	{ "header", required_argument, NULL, 'H' },
	{ "help", no_argument, NULL, 'h' },
	{ "id", required_argument, NULL, OPT_ID },
	{ "jsonl", no_argument, NULL, OPT_JSONL },
	{ "lines", no_argument, NULL, 'l' },
	{ "message", required_argument, NULL, 'm' },
	{ "null", no_argument, NULL, '0' },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "queue", required_argument, NULL, 'q' },
	{ "reply-expire", required_argument, NULL, OPT_REPLY_EXPIRE },
	{ "request", no_argument, NULL, 'r' },
	{ "server", required_argument, NULL, 's' },
	{ "topic", required_argument, NULL, 't' },
	{ "ttl", required_argument, NULL, OPT_TTL },
	{ "verbose", no_argument, NULL, 'v' },
	MOM_CLI_LONGOPTS,
	{ "wait", required_argument, NULL, 'W' },
	{ NULL, 0, NULL, 0 },
};

/* One pass (the config file's, then the command line's) and where the groups were set. */
struct pass {
	int    layer;
	int    kind_from; /* -q or -t */
	int    src_from;  /* -m, -f, -l, -0, --jsonl, -n */
	char  *err;
	size_t errlen;
};

static int
set_source(struct pub_options *o, struct pass *p, enum pub_source s)
{
	/* The same source twice is no conflict: -m a -m b publishes b. */
	if (p->src_from == p->layer && o->src != s) {
		mom_errf(p->err, p->errlen, "give one of -m, -f, -l, -0, --jsonl, -n");
		return MOM_EXIT_USAGE;
	}
	if (p->src_from != p->layer)
		o->msg = o->file = NULL;
	p->src_from = p->layer;
	o->src = s;
	return 0;
}

static int
set_target(struct pub_options *o, struct pass *p, int ch, const char *name)
{
	if (mom_opt_once(&p->kind_from, p->layer) != 0) {
		mom_errf(p->err, p->errlen, "give one of -q and -t, once");
		return MOM_EXIT_USAGE;
	}
	o->kind = ch == 'q' ? MOM_KIND_QUEUE : MOM_KIND_TOPIC;
	o->name = name;
	if (!mom_name_ok(name)) {
		mom_errf(p->err, p->errlen, "bad %s name '%s'", ch == 'q' ? "queue" : "topic",
		    name);
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* One option other than the clients' common ones; 0 or MOM_EXIT_USAGE. */
static int
option(struct pub_options *o, struct pass *p, int ch, char *arg)
{
	switch (ch) {
	case '0':
		return set_source(o, p, SRC_NUL);
	case 'f':
		if (set_source(o, p, SRC_FILE) != 0)
			return MOM_EXIT_USAGE;
		o->file = arg;
		return 0;
	case 'H':
		if (o->nheaders == PUB_MAX_HEADERS) {
			mom_errf(p->err, p->errlen, "at most %d headers", PUB_MAX_HEADERS);
			return MOM_EXIT_USAGE;
		}
		o->headers[o->nheaders++] = arg;
		return 0;
	case 'l':
		return set_source(o, p, SRC_LINES);
	case 'm':
		if (set_source(o, p, SRC_MSG) != 0)
			return MOM_EXIT_USAGE;
		o->msg = arg;
		return 0;
	case 'n':
		return set_source(o, p, SRC_EMPTY);
	case 'q':
	case 't':
		return set_target(o, p, ch, arg);
	case 'r':
		o->request = 1;
		return 0;
	case OPT_CREATE:
		o->create = 1;
		return 0;
	case OPT_DELAY:
	case OPT_TTL:
		if (mom_duration_parse(arg, ch == OPT_TTL ? &o->ttl_ms : &o->delay_ms) != 0) {
			mom_errf(p->err, p->errlen, "bad duration '%s'", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	case OPT_REPLY_EXPIRE:
		/* Under a second, the queue could go before the request is out. */
		if (mom_duration_parse(arg, &o->reply_expire_ms) != 0 ||
		    o->reply_expire_ms < 1000 || o->reply_expire_ms > (uint64_t)INT64_MAX) {
			mom_errf(p->err, p->errlen, "bad --reply-expire '%s' (a duration of 1s or "
			    "more)", arg);
			return MOM_EXIT_USAGE;
		}
		return 0;
	case OPT_ID:
		o->id = arg;
		return 0;
	case OPT_JSONL:
		return set_source(o, p, SRC_JSONL);
	case OPT_PROGRESS:
		o->progress = 1;
		return 0;
	default:
		mom_errf(p->err, p->errlen, "unhandled option %d", ch);
		return MOM_EXIT_USAGE;
	}
}

/* option() as mom_opt_client_pass calls it. */
struct pass_arg {
	struct pub_options *o;
	struct pass       *p;
};

static int
option_cb(void *arg, int ch, char *optarg_)
{
	struct pass_arg *pa = arg;

	return option(pa->o, pa->p, ch, optarg_);
}

/* Parses one vector; stops early at -h and --version (o->action). */
static int
parse_pass(struct pub_options *o, struct pass *p, int argc, char **argv)
{
	struct pass_arg pa = { o, p };
	int             rv;

	if ((rv = mom_opt_client_pass(&o->cli, &o->wait_ms, argc, argv, optstring, longopts,
	    option_cb, &pa, &o->action, &o->usage, p->err, p->errlen)) != 0 ||
	    o->action != MOM_ACTION_RUN)
		return rv;
	if (optind != argc) {
		mom_errf(p->err, p->errlen, "unexpected argument '%s'", argv[optind]);
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	return 0;
}

/* The headers -r sets itself may not be given. */
static int
request_header(const char *h)
{
	size_t k = strcspn(h, ":");

	while (k > 0 && h[k - 1] == ' ')
		k--;
	return (k == strlen(MOM_HDR_REPLY_TO) && strncasecmp(h, MOM_HDR_REPLY_TO, k) == 0) ||
	    (k == strlen(MOM_HDR_CORRELATION) && strncasecmp(h, MOM_HDR_CORRELATION, k) == 0);
}

static int
streaming(enum pub_source s)
{
	return s == SRC_LINES || s == SRC_NUL || s == SRC_JSONL;
}

/* The options together, once both passes are done. */
static int
check(struct pub_options *o, char *err, size_t errlen)
{
	int i;

	if (o->kind == 0 && o->src != SRC_JSONL) {
		mom_errf(err, errlen, "give a queue (-q) or a topic (-t)");
		o->usage = 1;
		return MOM_EXIT_USAGE;
	}
	if (o->request && streaming(o->src)) {
		mom_errf(err, errlen, "-r sends one message (-m, -f, -n or stdin), not -l, -0 or "
		    "--jsonl");
		return MOM_EXIT_USAGE;
	}
	for (i = 0; o->request && i < o->nheaders; i++) {
		if (request_header(o->headers[i])) {
			mom_errf(err, errlen, "-r sets %s and %s itself", MOM_HDR_REPLY_TO,
			    MOM_HDR_CORRELATION);
			return MOM_EXIT_USAGE;
		}
	}
	if (o->src == SRC_NONE) {
		if (isatty(STDIN_FILENO)) {
			mom_errf(err, errlen, "nothing to publish (-m, -f, -l, -0, --jsonl, -n or "
			    "stdin)");
			return MOM_EXIT_USAGE;
		}
		o->src = SRC_STDIN;
	}
	if (o->id != NULL && streaming(o->src)) {
		mom_errf(err, errlen, "--id names one message; with --jsonl give \"id\" per line");
		return MOM_EXIT_USAGE;
	}
	if (o->id != NULL && (strlen(o->id) == 0 || strlen(o->id) > 256 ||
	    strspn(o->id, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~") != strlen(o->id))) {
		mom_errf(err, errlen, "bad --id (1-256 printable characters, no spaces)");
		return MOM_EXIT_USAGE;
	}
	if (o->create && o->kind == 0) {
		mom_errf(err, errlen, "--create needs -q or -t");
		return MOM_EXIT_USAGE;
	}
	return 0;
}

int
pub_options_parse(struct pub_options *o, int argc, char **argv, char *err, size_t errlen)
{
	struct pass p = { MOM_LAYER_FILE, MOM_LAYER_NONE, MOM_LAYER_NONE, err, errlen };
	int         cfgc, rv;

	memset(o, 0, sizeof(*o));
	mom_cli_init(&o->cli, "mom-pub");
	o->wait_ms = -1;
	o->reply_expire_ms = PUB_REPLY_EXPIRE_MS;
	if (mom_opt_config("mom-pub", NULL, argv[0], &cfgc, &o->cfgv, err, errlen) != 0)
		return MOM_EXIT_USAGE;
	if (o->cfgv != NULL && (rv = parse_pass(o, &p, cfgc, o->cfgv)) != 0) {
		/* A file's mistake: its file and line, no usage text. */
		mom_opt_blame(o->cfgv, optind - 1, err, errlen);
		o->usage = 0;
		return rv;
	}
	if (o->cfgv != NULL && o->action != MOM_ACTION_RUN)
		return 0;
	p.layer = MOM_LAYER_ARGS;
	if ((rv = parse_pass(o, &p, argc, argv)) != 0 || o->action != MOM_ACTION_RUN)
		return rv;
	return check(o, err, errlen);
}

void
pub_options_fini(struct pub_options *o)
{
	mom_cli_fini(&o->cli);
	free(o->cfgv);
	o->cfgv = NULL;
}

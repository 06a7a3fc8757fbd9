/*
 * cli.c: shared client-program plumbing (see cli.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "duration.h"
#include "mom.h"
#include "token.h"
#include "wire.h"

void
mom_cli_help(FILE *f, const char *wait)
{
	fprintf(f,
	    "Connection, identity and output:\n"
	    "  -s, --server URL[,URL...]  brokers, tried in turn ($MOM_URL, tcp://127.0.0.1:7420)\n"
	    "  -W, --wait SECONDS         %s\n"
	    "  --connect-timeout D        keep dialling a broker that is down for D (default: -W, else 0)\n"
	    "  --reconnect-window D       ride through a broker restart for up to D (default 60s)\n"
	    "  --request-timeout D        with several -s URLs: a broker silent for D is passed over (2s)\n"
	    "  --token-file FILE          send the token in FILE (else $MOM_TOKEN, $MOM_TOKEN_FILE)\n"
	    "  --cafile FILE              check a tls+tcp:// broker against these CAs\n"
	    "  --cert FILE                present this client certificate\n"
	    "  --key FILE                 the private key of --cert\n"
	    "  --insecure                 do not check a tls+tcp:// broker's certificate\n"
	    "  -v, --verbose              say more on standard error\n"
	    "  --quiet                    print nothing but errors\n"
	    "  -h, --help                 print this help and exit 0\n"
	    "  --version                  print the version and exit 0\n", wait);
}

void
mom_cli_init(struct mom_cli *cli, const char *prog)
{
	const char *url = getenv("MOM_URL");

	memset(cli, 0, sizeof(*cli));
	cli->prog = prog;
	cli->servers = url && *url ? url : "tcp://127.0.0.1:7420";
	cli->retry_ms = -1;
}

int64_t
mom_cli_reconnect_ms(const struct mom_cli *cli)
{
	return cli->reconnect_ms > 0 ? cli->reconnect_ms : MOM_CLI_RECONNECT_MS;
}

int
mom_cli_option(struct mom_cli *cli, int ch, const char *arg, int64_t *wait_ms, char *err,
    size_t errlen)
{
	switch (ch) {
	case 's':
		cli->servers = arg;
		return 1;
	case 'v':
		cli->verbose++;
		return 1;
	case 'W':
		if ((*wait_ms = mom_cli_wait(arg)) < 0) {
			mom_errf(err, errlen, "bad -W '%s' (seconds, or a duration like 500ms, 2m)",
			    arg);
			return -1;
		}
		cli->connect_ms = *wait_ms > 0 ? *wait_ms : 1;
		return 1;
	case MOM_OPT_CONNECT_TIMEOUT:
		if ((cli->retry_ms = mom_cli_wait(arg)) < 0) {
			mom_errf(err, errlen, "bad --connect-timeout '%s' (seconds, or a duration "
			    "like 500ms, 2m)", arg);
			return -1;
		}
		return 1;
	case MOM_OPT_RECONNECT_WINDOW:
		if ((cli->reconnect_ms = mom_cli_wait(arg)) <= 0) {
			mom_errf(err, errlen, "bad --reconnect-window '%s' (a duration over 0: "
			    "seconds, or like 500ms, 2m)", arg);
			return -1;
		}
		return 1;
	case MOM_OPT_REQUEST_TIMEOUT:
		if ((cli->request_ms = mom_cli_wait(arg)) <= 0) {
			mom_errf(err, errlen, "bad --request-timeout '%s' (a duration over 0: "
			    "seconds, or like 500ms, 2m)", arg);
			return -1;
		}
		return 1;
	case MOM_OPT_QUIET:
		cli->quiet = 1;
		return 1;
	case MOM_OPT_VERSION:
		return 2;
	case MOM_OPT_TOKEN_FILE:
		cli->token_file = arg;
		return 1;
	case MOM_OPT_CAFILE:
		cli->cafile = arg;
		return 1;
	case MOM_OPT_CERT:
		cli->cert = arg;
		return 1;
	case MOM_OPT_KEY:
		cli->key = arg;
		return 1;
	case MOM_OPT_INSECURE:
		cli->insecure = 1;
		return 1;
	default:
		return 0;
	}
}

static char *
trim(char *s)
{
	size_t n;

	s += strspn(s, " \t\r\n");
	n = strlen(s);
	while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
		s[--n] = '\0';
	return s;
}

int
mom_cli_load_token(struct mom_cli *cli)
{
	const char *file = cli->token_file, *env = getenv("MOM_TOKEN"), *what;
	/* Named, never printed: a "file name" may be the token itself. */
	const char *src = file != NULL ? "--token-file" : "MOM_TOKEN_FILE";
	char        buf[MOM_TOKEN_MAX + 2], *t;
	size_t      n = 0;

	if (file == NULL && env != NULL && *env != '\0') {
		if (strlen(env) >= sizeof(buf)) {
			mom_cli_err(cli, "MOM_TOKEN is longer than %d bytes", MOM_TOKEN_MAX);
			return MOM_EXIT_USAGE;
		}
		snprintf(buf, sizeof(buf), "%s", env);
		what = "MOM_TOKEN";
	} else {
		FILE *f;

		if (file == NULL && (file = getenv("MOM_TOKEN_FILE")) != NULL && *file == '\0')
			file = NULL;
		if (file == NULL)
			return 0;
		what = src;
		if ((f = fopen(file, "r")) == NULL) {
			mom_cli_err(cli, "cannot read the token file of %s: %s", src, strerror(errno));
			return MOM_EXIT_USAGE;
		}
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		if (n == sizeof(buf) - 1) {
			mom_cli_err(cli, "the token file of %s is longer than %d bytes", src,
			    MOM_TOKEN_MAX);
			return MOM_EXIT_USAGE;
		}
		buf[n] = '\0';
	}
	t = trim(buf);
	if (*t == '\0' || strpbrk(t, " \t\r\n") != NULL) {
		mom_cli_err(cli, "%s: %s", what, *t ? "not one token (white space inside)" : "empty token");
		return MOM_EXIT_USAGE;
	}
	free(cli->token);
	if ((cli->token = strdup(t)) == NULL) {
		mom_cli_err(cli, "out of memory");
		return MOM_EXIT_FAIL;
	}
	return 0;
}

void
mom_cli_fini(struct mom_cli *cli)
{
	free(cli->token);
	cli->token = NULL;
}

void
mom_cli_err(const struct mom_cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void
mom_cli_info(const struct mom_cli *cli, const char *fmt, ...)
{
	va_list ap;

	if (!cli->verbose || cli->quiet)
		return;
	fprintf(stderr, "%s: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
mom_cli_connect(const struct mom_cli *cli, struct mom_client **c, int window)
{
	struct mom_client_opts o;
	char                   err[512];
	int                    rv;

	memset(&o, 0, sizeof(o));
	o.servers = cli->servers;
	o.window = window;
	o.connect_ms = cli->connect_ms;
	/* -W covers connecting: a broker that is (re)starting is waited for. */
	o.retry_ms = cli->retry_ms >= 0 ? cli->retry_ms : cli->connect_ms;
	o.reconnect_ms = mom_cli_reconnect_ms(cli);
	o.request_ms = cli->request_ms;
	o.verbose = cli->verbose;
	o.token = cli->token;
	o.tls.cafile = cli->cafile;
	o.tls.cert = cli->cert;
	o.tls.key = cli->key;
	o.tls.insecure = cli->insecure;
	if (cli->insecure && strstr(cli->servers, "tls+") != NULL)
		mom_cli_info(cli, "--insecure: the server's TLS certificate is not verified");
	if ((rv = mom_client_open(c, &o, err, sizeof(err))) != 0) {
		mom_cli_err(cli, "%s", err);
		return mom_err_exit(rv);
	}
	return 0;
}

int64_t
mom_cli_wait(const char *s)
{
	uint64_t ms;

	if (mom_duration_parse(s, &ms) != 0 || ms > INT64_MAX)
		return -1;
	return (int64_t)ms;
}

uint64_t
mom_cli_random(void)
{
	uint64_t v = 0;

	while (v == 0) {
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = (uint64_t)mom_mono_ms() * 6364136223846793005ULL ^ (uint64_t)getpid();
	}
	return v;
}

int
mom_cli_admin(const struct mom_cli *cli, struct mom_client *c, const char *json, char **out,
    int64_t timeout_ms)
{
	struct mom_buf req;
	struct mom_rd  body;
	nng_msg       *rep;
	char           err[512];
	const uint8_t *p;
	size_t         n;
	int            rv;

	*out = NULL;
	mom_buf_init(&req);
	mom_frame_encode(&req, MOM_OP_ADMIN, false, 0);
	mom_buf_put_str(&req, json);
	rv = mom_client_call(c, &req, &rep, &body, timeout_ms, err, sizeof(err));
	mom_buf_fini(&req);
	if (rv != 0) {
		mom_cli_err(cli, "%s", err);
		return rv;
	}
	p = mom_rd_bytes(&body, &n);
	if (body.err || (*out = malloc(n + 1)) == NULL) {
		nng_msg_free(rep);
		mom_cli_err(cli, "broker sent a malformed reply");
		return MOM_EPROTO;
	}
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	nng_msg_free(rep);
	return 0;
}

int
mom_cli_ping(struct mom_client *c, struct mom_ping *pi, int64_t timeout_ms, char *err, size_t errlen)
{
	struct mom_buf req;
	struct mom_rd  body;
	nng_msg       *rep;
	const uint8_t *ver;
	size_t         vlen;
	int            rv;

	memset(pi, 0, sizeof(*pi));
	mom_buf_init(&req);
	mom_frame_encode(&req, MOM_OP_PING, false, 0);
	rv = mom_client_call(c, &req, &rep, &body, timeout_ms, err, errlen);
	mom_buf_fini(&req);
	if (rv != 0)
		return rv;
	ver = mom_rd_bytes(&body, &vlen);
	pi->max_payload = mom_rd_varint(&body);
	pi->uptime_ms = mom_rd_varint(&body);
	if (body.err) {
		nng_msg_free(rep);
		snprintf(err, errlen, "broker sent a malformed reply");
		return MOM_EPROTO;
	}
	snprintf(pi->version, sizeof(pi->version), "%.*s", (int)vlen, (const char *)ver);
	nng_msg_free(rep);
	return 0;
}

int
mom_cli_ensure(const struct mom_cli *cli, struct mom_client *c, int kind, const char *name,
    int64_t timeout_ms)
{
	char   *js, *out = NULL;
	json_t *req;
	int     rv;

	req = json_pack("{s:s, s:s, s:b}", "op",
	    kind == MOM_KIND_QUEUE ? "queue.create" : "topic.create", "name", name, "ensure", 1);
	js = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (js == NULL)
		return MOM_ENOMEM;
	rv = mom_cli_admin(cli, c, js, &out, timeout_ms);
	free(js);
	free(out);
	return rv;
}

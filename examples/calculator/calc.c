/*
 * mom-calc: the calculator service of examples/calculator, a worker for
 * `mom-sub -q calc -- mom-calc`.  It reads one request, the whole of stdin,
 * in either of two formats:
 *
 *	div 10 4
 *	{"op":"div","a":10,"b":4}
 *
 * and prints the result on stdout, one line, exit 0.  Any error is one line
 * "error: WHY" on stdout (the requester sees it as the reply) and on stderr,
 * exit 65 (EX_DATAERR): a worker's exit 65 dead-letters the request at once,
 * since retrying a malformed request or a division by zero cannot help.
 * See README.md for the formats and the output.  libc only.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CALC_MAX_INPUT (64 * 1024) /* bytes; a longer request is refused */

#define EX_OK      0
#define EX_USAGE   64
#define EX_DATAERR 65
#define EX_IOERR   74

enum op { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

struct request {
	enum op op;
	double  a, b;
};

/* An error message, filled in by whoever fails first. */
static char errbuf[256];

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return -1;
}

static int
op_parse(const char *s, size_t len, enum op *op)
{
	static const char *const names[] = {"add", "sub", "mul", "div"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (len == 3 && strncasecmp(s, names[i], 3) == 0) {
			*op = (enum op)i;
			return 0;
		}
	}
	return fail("unknown operation '%.*s' (expected add, sub, mul or div)",
	    (int)(len > 32 ? 32 : len), s);
}

/*
 * A decimal number, the whole of s[0..len): [+-]digits[.digits][e[+-]digits]
 * (".5" and "5." too).  strtod alone would also take hex, "inf", "nan" and
 * leading blanks, none of which a calculator request should contain.
 */
static int
num_parse(const char *s, size_t len, double *out)
{
	char   buf[128];
	size_t i = 0, digits = 0;

	if (len == 0)
		return fail("missing number");
	if (len >= sizeof(buf))
		return fail("not a number: '%.32s...'", s);
	if (s[i] == '+' || s[i] == '-')
		i++;
	while (i < len && isdigit((unsigned char)s[i]))
		i++, digits++;
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && isdigit((unsigned char)s[i]))
			i++, digits++;
	}
	if (digits > 0 && i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t e = 0;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		while (i < len && isdigit((unsigned char)s[i]))
			i++, e++;
		if (e == 0)
			digits = 0;
	}
	if (digits == 0 || i != len)
		return fail("not a number: '%.*s'", (int)(len > 32 ? 32 : len), s);
	memcpy(buf, s, len);
	buf[len] = '\0';
	*out = strtod(buf, NULL);
	if (isinf(*out))
		return fail("number out of range: '%.32s'", buf);
	return 0;
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* "OP A B": three words separated by spaces or tabs, on one line. */
static int
text_parse(const char *s, size_t len, struct request *rq)
{
	const char *w[4];
	size_t      wl[4], n = 0, i = 0;

	while (i < len) {
		size_t st;

		if (s[i] == ' ' || s[i] == '\t') {
			i++;
			continue;
		}
		if (s[i] == '\n' || s[i] == '\r')
			return fail("a request is one line: 'OP A B'");
		st = i;
		while (i < len && !is_blank(s[i]))
			i++;
		if (n == 4)
			break;
		w[n] = s + st;
		wl[n++] = i - st;
	}
	if (n > 3)
		return fail("expected 'OP A B' (e.g. 'div 10 4'), got more than 3 words");
	if (n != 3)
		return fail("expected 'OP A B' (e.g. 'div 10 4'), got %zu word%s",
		    n, n == 1 ? "" : "s");
	if (op_parse(w[0], wl[0], &rq->op) != 0 ||
	    num_parse(w[1], wl[1], &rq->a) != 0 ||
	    num_parse(w[2], wl[2], &rq->b) != 0)
		return -1;
	return 0;
}

/* --- JSON: exactly one object {"op":STRING,"a":NUMBER,"b":NUMBER} ------ */

struct json {
	const char *s;
	size_t      len, i;
};

static void
json_ws(struct json *j)
{
	while (j->i < j->len && is_blank(j->s[j->i]))
		j->i++;
}

/*
 * A JSON string without escapes into buf (the names and values a request
 * holds are plain ASCII; an escape is refused rather than half-decoded).
 */
static int
json_string(struct json *j, char *buf, size_t size, size_t *outlen)
{
	size_t n = 0;

	if (j->i >= j->len || j->s[j->i] != '"')
		return fail("malformed JSON: expected a string at byte %zu", j->i + 1);
	j->i++;
	while (j->i < j->len && j->s[j->i] != '"') {
		unsigned char c = (unsigned char)j->s[j->i];

		if (c == '\\')
			return fail("malformed JSON: escapes in strings are not supported");
		if (c < 0x20)
			return fail("malformed JSON: control character in a string");
		if (n + 1 >= size)
			return fail("malformed JSON: string too long");
		buf[n++] = (char)c;
		j->i++;
	}
	if (j->i >= j->len)
		return fail("malformed JSON: unterminated string");
	j->i++;
	buf[n] = '\0';
	*outlen = n;
	return 0;
}

/* A JSON number (RFC 8259 grammar) or a string holding a number. */
static int
json_number(struct json *j, const char *key, double *out)
{
	char   buf[128];
	size_t st = j->i, n;

	if (j->i < j->len && j->s[j->i] == '"') {
		if (json_string(j, buf, sizeof(buf), &n) != 0)
			return -1;
		if (num_parse(buf, n, out) != 0)
			return fail("\"%s\": not a number: \"%.32s\"", key, buf);
		return 0;
	}
	if (j->i < j->len && j->s[j->i] == '-')
		j->i++;
	if (j->i < j->len && j->s[j->i] == '0')
		j->i++;
	else if (j->i < j->len && j->s[j->i] >= '1' && j->s[j->i] <= '9')
		while (j->i < j->len && isdigit((unsigned char)j->s[j->i]))
			j->i++;
	else
		return fail("\"%s\": not a number", key);
	if (j->i < j->len && j->s[j->i] == '.') {
		j->i++;
		if (j->i >= j->len || !isdigit((unsigned char)j->s[j->i]))
			return fail("\"%s\": not a number", key);
		while (j->i < j->len && isdigit((unsigned char)j->s[j->i]))
			j->i++;
	}
	if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (j->i >= j->len || !isdigit((unsigned char)j->s[j->i]))
			return fail("\"%s\": not a number", key);
		while (j->i < j->len && isdigit((unsigned char)j->s[j->i]))
			j->i++;
	}
	return num_parse(j->s + st, j->i - st, out);
}

static int
json_parse(const char *s, size_t len, struct request *rq)
{
	struct json j = {s, len, 0};
	char        key[16], opname[16];
	size_t      n;
	int         seen_op = 0, seen_a = 0, seen_b = 0;

	j.i++; /* '{' */
	json_ws(&j);
	if (j.i < j.len && j.s[j.i] == '}')
		return fail("JSON request needs \"op\", \"a\" and \"b\"");
	for (;;) {
		json_ws(&j);
		if (json_string(&j, key, sizeof(key), &n) != 0)
			return -1;
		json_ws(&j);
		if (j.i >= j.len || j.s[j.i] != ':')
			return fail("malformed JSON: expected ':' after \"%s\"", key);
		j.i++;
		json_ws(&j);
		if (strcmp(key, "op") == 0 && !seen_op) {
			seen_op = 1;
			if (j.i >= j.len || j.s[j.i] != '"')
				return fail("\"op\" must be a string");
			if (json_string(&j, opname, sizeof(opname), &n) != 0 ||
			    op_parse(opname, n, &rq->op) != 0)
				return -1;
		} else if (strcmp(key, "a") == 0 && !seen_a) {
			seen_a = 1;
			if (json_number(&j, "a", &rq->a) != 0)
				return -1;
		} else if (strcmp(key, "b") == 0 && !seen_b) {
			seen_b = 1;
			if (json_number(&j, "b", &rq->b) != 0)
				return -1;
		} else if (strcmp(key, "op") == 0 || strcmp(key, "a") == 0 ||
		    strcmp(key, "b") == 0) {
			return fail("JSON request has \"%s\" twice", key);
		} else {
			return fail("unknown key \"%s\" (expected \"op\", \"a\", \"b\")", key);
		}
		json_ws(&j);
		if (j.i < j.len && j.s[j.i] == ',') {
			j.i++;
			continue;
		}
		if (j.i < j.len && j.s[j.i] == '}') {
			j.i++;
			break;
		}
		return fail("malformed JSON: expected ',' or '}' at byte %zu", j.i + 1);
	}
	json_ws(&j);
	if (j.i != j.len)
		return fail("malformed JSON: trailing data after the object");
	if (!seen_op || !seen_a || !seen_b)
		return fail("JSON request needs \"op\", \"a\" and \"b\" (missing \"%s\")",
		    !seen_op ? "op" : !seen_a ? "a" : "b");
	return 0;
}

static int
request_parse(const char *s, size_t len, struct request *rq)
{
	if (memchr(s, '\0', len) != NULL)
		return fail("request contains a NUL byte");
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	while (len > 0 && is_blank(*s))
		s++, len--;
	if (len == 0)
		return fail("empty request (expected e.g. 'div 10 4')");
	if (*s == '{')
		return json_parse(s, len, rq);
	return text_parse(s, len, rq);
}

static int
compute(const struct request *rq, double *out)
{
	switch (rq->op) {
	case OP_ADD: *out = rq->a + rq->b; break;
	case OP_SUB: *out = rq->a - rq->b; break;
	case OP_MUL: *out = rq->a * rq->b; break;
	case OP_DIV:
		if (rq->b == 0)
			return fail("division by zero");
		*out = rq->a / rq->b;
		break;
	}
	if (!isfinite(*out))
		return fail("result out of range");
	return 0;
}

/*
 * The shortest %g text that reads back as exactly the same double (so
 * 10/4 is "2.5", 0.1+0.2 is "0.30000000000000004"); an integer below 2^53
 * is printed in full without a decimal point or exponent ("42", "1000000"),
 * and -0 as "0".
 */
static void
format_result(double x, char *buf, size_t size)
{
	int p;

	if (x == 0)
		x = 0; /* -0 */
	if (x == floor(x) && fabs(x) < 9007199254740992.0) {
		snprintf(buf, size, "%.0f", x);
		return;
	}
	for (p = 1; p <= 17; p++) {
		snprintf(buf, size, "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			return;
	}
}

int
main(int argc, char **argv)
{
	static char    in[CALC_MAX_INPUT + 1];
	struct request rq;
	size_t         len = 0, n;
	double         r = 0;
	char           out[64];

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: mom-calc < REQUEST\n"
		    "REQUEST: 'OP A B' or {\"op\":\"OP\",\"a\":A,\"b\":B}; OP: add, sub, mul, div\n");
		return EX_USAGE;
	}
	/* One byte more than the limit tells an oversized request apart. */
	while (len < sizeof(in) && (n = fread(in + len, 1, sizeof(in) - len, stdin)) > 0)
		len += n;
	if (ferror(stdin)) {
		fprintf(stderr, "mom-calc: reading stdin: %s\n", strerror(errno));
		return EX_IOERR;
	}
	if (len > CALC_MAX_INPUT)
		fail("request over %d bytes", CALC_MAX_INPUT);
	else if (request_parse(in, len, &rq) == 0)
		compute(&rq, &r); /* on failure, errbuf says why */
	if (errbuf[0] != '\0') {
		printf("error: %s\n", errbuf);
		fprintf(stderr, "mom-calc: %s\n", errbuf);
		return fflush(stdout) == 0 ? EX_DATAERR : EX_IOERR;
	}
	format_result(r, out, sizeof(out));
	printf("%s\n", out);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mom-calc: writing stdout: %s\n", strerror(errno));
		return EX_IOERR;
	}
	return EX_OK;
}

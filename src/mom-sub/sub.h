/*
 * sub.h: mom-sub's options and its one entry point.
 */
#ifndef SUB_H
#define SUB_H

#include <stdint.h>

#include "cli.h"
#include "format.h"

enum sub_output { OUT_LINES, OUT_NUL, OUT_NONE, OUT_FORMAT, OUT_JSONL };

struct sub_opts {
	struct mom_cli  cli;
	uint8_t         kind;
	const char     *name;    /* queue or topic pattern */
	const char     *durable; /* -d */
	uint8_t         from;
	int64_t         from_time_ms;
	uint64_t        count;   /* -C; 0: no limit */
	int64_t         wait_ms; /* -W; -1: none */
	int             drain;   /* -e */
	enum sub_output out;
	struct mom_fmt *fmt;
	uint32_t        prefetch;
	int             noack;
	int             create;
	char          **argv;     /* worker mode: COMMAND [ARG...]; NULL: none */
	uint32_t        parallel; /* -P: commands at once */
};

int sub_run(struct sub_opts *);
/* Worker mode (worker.c). */
int worker_run(struct sub_opts *);

#endif

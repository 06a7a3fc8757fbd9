/*
 * admin.h: mom-admin's options and its one entry point.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include "cli.h"

struct admin_opts {
	struct mom_cli cli;
	int            json;
	int            prom;
	int64_t        wait_ms;
	/* queue create / topic create options; -1 = not given */
	int64_t        ack_wait_ms, max_deliver, ttl_ms, max_len, max_bytes;
	int64_t        retain_ms, retain_bytes;
	const char    *dead_letter;
	int            nargs;
	char         **args; /* NOUN VERB ARGS */
};

int admin_run(struct admin_opts *);

#endif

/*
 * sub.h: mom-sub's entry points.
 */
#ifndef SUB_H
#define SUB_H

#include "options.h"

int sub_run(struct sub_options *);
/* Worker mode (worker.c). */
int worker_run(struct sub_options *);

#endif

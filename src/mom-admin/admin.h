/*
 * admin.h: mom-admin's one entry point.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include "options.h"

/* Runs the command that admin_options_parse checked; returns the exit status. */
int admin_run(struct admin_options *);

#endif

/*
 * adminops.h: the admin vocabulary, defined once.  Every admin operation
 * the broker knows, whether it reads or changes state, who may do it,
 * and the options it takes with their names in each place they appear:
 * the command stored in the log (key), the HTTP API's JSON (api) and
 * mom-admin's command line (flag).  The broker's core (dispatch and
 * permissions), its fsm (defaults on replay), the REST mapping on both
 * sides (net/rest.c, httpapi.c) and mom-admin all read this table.
 *
 * Operation names, option keys and defaults are stored in the log and
 * replayed after every restart: the table may add, never rename or
 * change a default.
 */
#ifndef MOM_ADMINOPS_H
#define MOM_ADMINOPS_H

#include <stdbool.h>
#include <stdint.h>

/* What an option's value is. */
enum mom_aopt_type {
	MOM_AOPT_DURATION, /* milliseconds; "30s" or a number of ms in the API */
	MOM_AOPT_COUNT,    /* a plain number */
	MOM_AOPT_SIZE,     /* bytes; "64MiB" or a number in the API */
	MOM_AOPT_NAME,     /* a queue name */
};

/* Who may run an operation (core/acl.c applies it). */
enum mom_aop_perm {
	MOM_AP_READ,      /* any client the broker let in */
	MOM_AP_CREATE,    /* a mom.pub or mom.sub pattern for the name; the creator is recorded */
	MOM_AP_SUBSCRIBE, /* a mom.sub pattern for the pattern; the creator is recorded */
	MOM_AP_OWNER,     /* the creator or an admin */
	MOM_AP_MOVE,      /* the creator of the source, publish rights on the target */
	MOM_AP_ADMIN,     /* an admin token */
	MOM_AP_CONSUME,   /* a read: a mom.sub pattern for the queue, which it must see */
};

struct mom_admin_opt {
	const char *key;   /* in the command and the admin reply: "ack_wait_ms" (frozen) */
	const char *api;   /* in the HTTP API's request body: "ack_wait" (NULL: not there) */
	const char *flag;  /* mom-admin's long option without "--": "ack-wait" (NULL: none) */
	int         type;  /* enum mom_aopt_type */
	uint64_t    dflt;  /* applied when absent, also on replay (frozen) */
	uint64_t    max;   /* the largest value accepted (0: INT64_MAX) */
	bool        dflt_broker; /* the default is the broker's own setting, not dflt */
};

struct mom_admin_op {
	const char                 *name;   /* "queue.create" (frozen) */
	bool                        write;  /* a command through the log */
	int                         perm;   /* enum mom_aop_perm */
	const char                 *object; /* "queue", "topic", "subscription"; NULL: none */
	const char                 *verb;   /* for messages: "delete it" */
	const struct mom_admin_opt *opts;   /* its options, ending with a NULL key; or NULL */
	bool                        local;  /* answered by the node asked, leading or not */
};

/* The operation named name, or NULL when there is none. */
const struct mom_admin_op *mom_admin_op(const char *name);
/* Every operation, ending with a NULL name. */
const struct mom_admin_op *mom_admin_ops(void);
/* op's option whose key or api name is name, or NULL. */
const struct mom_admin_opt *mom_admin_opt(const struct mom_admin_op *op, const char *name);
/* The default of op's option key (0 when either is unknown). */
uint64_t mom_admin_default(const char *op, const char *key);
/* The largest value an option takes. */
uint64_t mom_admin_opt_max(const struct mom_admin_opt *);

#endif

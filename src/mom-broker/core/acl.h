/*
 * acl.h: who may do what, as pure functions of a token's claims (no
 * state, no I/O): the core looks up what a rule needs (an object's
 * owner) and asks here.  A NULL claims pointer means an open broker (no
 * --auth-key) and allows everything; so does a token with mom.admin.
 */
#ifndef BROKER_ACL_H
#define BROKER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mom_claims;

/* May cl publish to (pub) or consume from name[0..n) (a name or pattern)? */
bool acl_may(const struct mom_claims *cl, const char *name, size_t n, bool pub);
/* Is cl the recorded owner (creator) of an object, or unrestricted? */
bool acl_owns(const struct mom_claims *cl, const char *owner);
/* Does cl need the checks at all (a token without mom.admin)? */
bool acl_restricted(const struct mom_claims *cl);
/*
 * May cl consume from, list or look at the queue name (with its recorded
 * owner)?  A private queue (a reply queue, names.h) is its creator's and
 * the admins'; any other queue is anyone's the patterns allow.  On an
 * open broker the name is a private queue's only protection.
 */
bool acl_sees_queue(const struct mom_claims *cl, const char *name, const char *owner);

/*
 * Who a delivery is for (settle false: the lease's holder, state/mq.h),
 * or who settles (settle true): 0 on an open broker, else a hash (64-bit
 * FNV-1a, never 0) of the token's user, so that a user cannot settle
 * another's deliveries by trying receipt numbers.  A settler with an
 * admin token gets 0: it may settle any.
 */
uint64_t acl_holder(const struct mom_claims *cl, bool settle);

/*
 * May this publish batch (the wire body) be stored?  Every message's
 * target needs a mom.pub pattern; consecutive messages to one target are
 * checked once.  A batch that does not decode is allowed here and left
 * to the fsm to refuse.  On false, denied says why.
 */
bool acl_publish(const struct mom_claims *cl, const void *body, size_t len,
    size_t max_payload, char *denied, size_t dlen);

struct mom_admin_op;

/* An admin change, with what the core found about its objects. */
struct acl_change {
	const struct mom_admin_op *op; /* adminops.h: its perm rule */
	const char *name;      /* the queue, topic or subscription (NULL: none given) */
	const char *pattern;   /* a subscription's topic pattern */
	const char *dst;       /* queue.move's target queue */
	bool        exists;    /* the object named exists */
	const char *owner;     /* its recorded creator (NULL: none) */
	/*
	 * Queues the change makes messages flow into: the values of its
	 * options of type MOM_AOPT_NAME (a dead-letter queue), with their
	 * options.  Each needs publish rights, or a token could route
	 * messages into a queue it may not publish to.
	 */
	const char                 *targets[4];
	const struct mom_admin_opt *target_opts[4];
	size_t                      ntargets;
};

/*
 * May cl make this change?  The operation's rule (enum mom_aop_perm):
 * creating needs a mom.pub or mom.sub pattern for the name (and declaring
 * a private queue that exists, acl_sees_queue); deleting,
 * purging and moving out of a queue are the creator's or an admin's, and
 * moving needs publish rights on the target, and so does every queue
 * the change names for messages to flow into (a dead-letter queue);
 * looking at a queue's messages (MOM_AP_CONSUME) needs the right to
 * consume from it; anything else needs an admin token.  On false, denied says why.
 */
bool acl_change(const struct mom_claims *cl, const struct acl_change *ch, char *denied,
    size_t dlen);

#endif

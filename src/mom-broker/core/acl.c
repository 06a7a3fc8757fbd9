/*
 * acl.c: permission rules (see acl.h).  Token patterns are matched by
 * mom_claims_can_pub/can_sub (src/libmom/token.c).
 */
#include <stdio.h>
#include <string.h>

#include "adminops.h"
#include "core/acl.h"
#include "mom.h"
#include "names.h"
#include "token.h"
#include "wire.h"

bool
acl_restricted(const struct mom_claims *cl)
{
	return cl != NULL && !cl->admin;
}

uint64_t
acl_holder(const struct mom_claims *cl, bool settle)
{
	const unsigned char *p;
	uint64_t             h = 14695981039346656037ULL;

	if (cl == NULL || (settle && !acl_restricted(cl)))
		return 0;
	for (p = (const unsigned char *)cl->sub; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

bool
acl_may(const struct mom_claims *cl, const char *name, size_t n, bool pub)
{
	char buf[MOM_NAME_MAX + 1];

	if (!acl_restricted(cl))
		return true;
	if (name == NULL || n > MOM_NAME_MAX)
		return false;
	memcpy(buf, name, n);
	buf[n] = '\0';
	return pub ? mom_claims_can_pub(cl, buf) : mom_claims_can_sub(cl, buf);
}

bool
acl_owns(const struct mom_claims *cl, const char *owner)
{
	return !acl_restricted(cl) || (owner != NULL && strcmp(owner, cl->sub) == 0);
}

bool
acl_sees_queue(const struct mom_claims *cl, const char *name, const char *owner)
{
	return name == NULL || !mom_name_private(name, strlen(name)) || acl_owns(cl, owner);
}

bool
acl_publish(const struct mom_claims *cl, const void *body, size_t len, size_t max_payload,
    char *denied, size_t dlen)
{
	struct mom_rd        r;
	struct mom_pub_batch b;
	struct mom_pub_msg   m;
	struct mom_slice     last = { NULL, 0 };
	uint64_t             i;

	if (!acl_restricted(cl))
		return true;
	mom_rd_init(&r, body, len);
	if (mom_pub_decode_begin(&r, &b) != 0)
		return true;
	for (i = 0; i < b.count; i++) {
		if (mom_pub_decode_msg(&r, &b, &m, max_payload) != 0)
			return true;
		if (last.p != NULL && last.n == m.name.n && memcmp(last.p, m.name.p, m.name.n) == 0)
			continue;
		if (!acl_may(cl, (const char *)m.name.p, m.name.n, true)) {
			snprintf(denied, dlen, "permission denied: publish to %s '%.*s'",
			    m.kind == MOM_KIND_TOPIC ? "topic" : "queue", (int)m.name.n, m.name.p);
			return false;
		}
		last = m.name;
	}
	return true;
}

static bool
may_name(const struct mom_claims *cl, const char *name, bool pub)
{
	return acl_may(cl, name, name != NULL ? strlen(name) : 0, pub);
}

/* Deleting, purging, moving out: the owner's (when the object exists). */
static bool
owner_only(const struct mom_claims *cl, const struct acl_change *ch, char *denied, size_t dlen)
{
	if (ch->name == NULL || !ch->exists || acl_owns(cl, ch->owner))
		return true;
	snprintf(denied, dlen, "permission denied: only the creator of %s '%s' or an admin "
	    "may %s", ch->op->object, ch->name, ch->op->verb);
	return false;
}

/* The operation's own rule (enum mom_aop_perm). */
static bool
op_rule(const struct mom_claims *cl, const struct acl_change *ch, char *denied, size_t dlen)
{
	const struct mom_admin_op *op = ch->op;

	if (op->perm == MOM_AP_CREATE) {
		/* Declaring it again would show someone else's reply queue. */
		if (ch->exists && strcmp(op->object, "queue") == 0 &&
		    !acl_sees_queue(cl, ch->name, ch->owner)) {
			snprintf(denied, dlen, "permission denied: queue '%s' is private to its "
			    "creator", ch->name);
			return false;
		}
		if (ch->name == NULL || may_name(cl, ch->name, true) ||
		    may_name(cl, ch->name, false))
			return true;
		snprintf(denied, dlen, "permission denied: create %s '%s'", op->object, ch->name);
		return false;
	}
	if (op->perm == MOM_AP_CONSUME) {
		/* Looking is consuming without taking: a reply queue stays its creator's. */
		if (ch->exists && !acl_sees_queue(cl, ch->name, ch->owner)) {
			snprintf(denied, dlen, "permission denied: queue '%s' is private to its "
			    "creator", ch->name);
			return false;
		}
		if (ch->name == NULL || may_name(cl, ch->name, false))
			return true;
		snprintf(denied, dlen, "permission denied: consume from queue '%s'", ch->name);
		return false;
	}
	if (!acl_restricted(cl))
		return true;
	switch (op->perm) {
	case MOM_AP_READ:
		return true;
	case MOM_AP_OWNER:
		return owner_only(cl, ch, denied, dlen);
	case MOM_AP_MOVE:
		if (!owner_only(cl, ch, denied, dlen))
			return false;
		if (ch->dst != NULL && !may_name(cl, ch->dst, true)) {
			snprintf(denied, dlen, "permission denied: publish to queue '%s'", ch->dst);
			return false;
		}
		return true;
	case MOM_AP_SUBSCRIBE:
		/* A durable subscription made ahead of its first receive (HTTP PUT). */
		if (ch->pattern == NULL || may_name(cl, ch->pattern, false))
			return true;
		snprintf(denied, dlen, "permission denied: subscribe to '%s'", ch->pattern);
		return false;
	}
	snprintf(denied, dlen, "permission denied: %s needs an admin token", op->name);
	return false;
}

bool
acl_change(const struct mom_claims *cl, const struct acl_change *ch, char *denied, size_t dlen)
{
	size_t i;

	if (!op_rule(cl, ch, denied, dlen))
		return false;
	for (i = 0; i < ch->ntargets; i++)
		if (!may_name(cl, ch->targets[i], true)) {
			snprintf(denied, dlen, "permission denied: %s queue '%s' needs publish "
			    "rights on it", ch->target_opts[i]->flag ? ch->target_opts[i]->flag :
			    ch->target_opts[i]->key, ch->targets[i]);
			return false;
		}
	return true;
}

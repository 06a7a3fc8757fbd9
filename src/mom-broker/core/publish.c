/*
 * publish.c: publish requests: the permission check, per-producer order
 * (struct porder in core_int.h: a batch that arrives before an earlier
 * one of its producer waits for it, at most REORDER_WAIT_MS), the
 * CMD_PUBLISH command and its reply.
 */
#include <stdlib.h>
#include <string.h>

#include "core/acl.h"
#include "core/core_int.h"
#include "mom.h"
#include "wire.h"

static void
publish_apply(struct core *c, struct creq *cr, int64_t now)
{
	const struct core_req *req = cr->req;
	int                    rv;

	mom_buf_reset(&c->cmd);
	fsm_cmd_encode(&c->cmd, CMD_PUBLISH, now, req->body, req->len);
#ifdef MOM_FAULT_INJECTION
	if (c->confirm_before_commit) {
		struct fsm_result res = { .stored = fsm_cmd_messages(c->cmd.data, c->cmd.len) };

		/* The deliberate bug (core.h): confirmed once proposed, not once committed. */
		if ((rv = core_propose(c, NULL, W_NONE)) != 0)
			core_refuse(c, cr, rv);
		else
			publish_reply(c, cr, &res);
		return;
	}
#endif
	if ((rv = core_propose(c, cr, W_PUBLISH)) != 0)
		core_refuse(c, cr, rv);
}

void
publish_reply(struct core *c, struct creq *cr, const struct fsm_result *res)
{
	if (res->status != 0) {
		creq_error(c, cr, res->status, "%s", res->err);
		return;
	}
	mom_buf_reset(&c->reply);
	mom_frame_encode(&c->reply, MOM_OP_PUBLISH, true, 0);
	mom_buf_put_varint(&c->reply, res->stored);
	mom_buf_put_varint(&c->reply, res->duplicates);
	creq_reply(c, cr, &c->reply);
}

/* Applies the early batches that are now in order (or waited too long). */
static void
porder_drain(struct core *c, struct porder *po, int64_t now, bool force)
{
	struct creq *cr;

	while ((cr = po->pending) != NULL &&
	    (cr->pub_seq <= po->next || force || cr->pub_until <= now)) {
		po->pending = cr->pub_next;
		if (cr->pub_seq + cr->pub_count > po->next)
			po->next = cr->pub_seq + cr->pub_count;
		publish_apply(c, cr, now);
	}
}

/* The order of producer p's stream, made when its first batch comes.  NULL: no memory. */
static struct porder *
porder_of(struct core *c, uint64_t producer)
{
	struct porder *po;

	if ((po = umap_get(&c->porders, producer)) != NULL)
		return po;
	if ((po = calloc(1, sizeof(*po))) == NULL || umap_put(&c->porders, producer, po) != 0) {
		free(po);
		return NULL;
	}
	/*
	 * A stream the log knows (a broker restart, a reconnect) goes on
	 * after what is stored, without waiting for earlier batches.
	 */
	po->next = fsm_producer_next(c->fsm, producer);
	return po;
}

void
publish_handle(struct core *c, struct creq *cr, const uint8_t *body, size_t len, int64_t now)
{
	struct mom_rd        r;
	struct mom_pub_batch b;
	struct porder       *po;
	struct creq        **pp;
	char                 denied[300];

	if (!acl_publish(cr->req->claims, body, len, c->cfg.max_payload, denied, sizeof(denied))) {
		creq_error(c, cr, MOM_EPERM, "%s", denied);
		return;
	}
	mom_rd_init(&r, body, len);
	if (mom_pub_decode_begin(&r, &b) != 0 || b.producer == 0 ||
	    (po = porder_of(c, b.producer)) == NULL) {
		publish_apply(c, cr, now);
		return;
	}
	po->last_ms = now;
	if (b.first_seq > po->next) {
		/* Early: park it, sorted by sequence. */
		cr->pub_seq = b.first_seq;
		cr->pub_count = b.count;
		cr->pub_until = now + REORDER_WAIT_MS;
		for (pp = &po->pending; *pp && (*pp)->pub_seq < cr->pub_seq; pp = &(*pp)->pub_next)
			;
		cr->pub_next = *pp;
		*pp = cr;
		return;
	}
	if (b.first_seq + b.count > po->next)
		po->next = b.first_seq + b.count;
	publish_apply(c, cr, now);
	porder_drain(c, po, now, false);
}

void
publish_tick(struct core *c, int64_t now, int64_t *next)
{
	uint64_t       k;
	void          *v;
	size_t         it;
	struct porder *po;

	for (it = 0; umap_next(&c->porders, &it, &k, &v);) {
		po = v;
		porder_drain(c, po, now, false);
		if (po->pending != NULL && po->pending->pub_until < *next)
			*next = po->pending->pub_until;
		if (po->pending == NULL && now - po->last_ms > PRODUCER_IDLE_MS) {
			umap_del(&c->porders, k);
			free(po);
			it = 0;
		}
	}
}

void
publish_drain_all(struct core *c, int64_t now)
{
	uint64_t k;
	void    *v;
	size_t   it;

	for (it = 0; umap_next(&c->porders, &it, &k, &v);) {
		porder_drain(c, v, now, true);
		free(v);
	}
	umap_fini(&c->porders);
	umap_init(&c->porders);
}

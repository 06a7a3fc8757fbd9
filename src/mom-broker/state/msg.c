/*
 * msg.c: stored messages (see msg.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mom.h"
#include "state/msg.h"

struct msg *
msg_new(const struct mom_pub_msg *pm, uint64_t seq, int64_t now)
{
	size_t      name_len = pm->kind == MOM_KIND_TOPIC ? pm->name.n : 0;
	struct msg *m;
	uint8_t    *p;

	m = malloc(sizeof(*m) + pm->payload.n + pm->id.n + pm->headers.n + name_len);
	if (m == NULL)
		return NULL;
	m->seq = seq;
	m->time_ms = now;
	m->expires_ms = pm->ttl_ms ? mom_time_add(now, pm->ttl_ms) : 0;
	m->not_before = pm->delay_ms ? mom_time_add(now, pm->delay_ms) : 0;
	m->refs = 1;
	m->len = (uint32_t)pm->payload.n;
	m->id_len = (uint16_t)pm->id.n;
	m->hdr_len = (uint32_t)pm->headers.n;
	m->name_len = (uint8_t)name_len;
	m->kind = pm->kind;
	p = m->data;
	if (pm->payload.n)
		memcpy(p, pm->payload.p, pm->payload.n);
	p += pm->payload.n;
	if (pm->id.n)
		memcpy(p, pm->id.p, pm->id.n);
	p += pm->id.n;
	if (pm->headers.n)
		memcpy(p, pm->headers.p, pm->headers.n);
	p += pm->headers.n;
	if (name_len)
		memcpy(p, pm->name.p, name_len);
	return m;
}

struct msg *
msg_ref(struct msg *m)
{
	m->refs++;
	return m;
}

void
msg_unref(struct msg *m)
{
	if (m != NULL && --m->refs == 0)
		free(m);
}

int
msg_cmp_seq(const void *a, const void *b)
{
	const struct msg *x = *(struct msg *const *)a, *y = *(struct msg *const *)b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

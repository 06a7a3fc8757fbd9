/*
 * failover.c: choosing the broker for a request (see failover.h).
 */
#include "failover.h"
#include "mom.h"

void
mom_node_note(struct mom_node_state *s, enum mom_node_event ev, int64_t now)
{
	switch (ev) {
	case MOM_NODE_ANSWERED:
		s->silent_ms = 0;
		s->aside_until = 0;
		break;
	case MOM_NODE_SILENT:
		if (s->silent_ms < MOM_NODE_SILENT_MIN_MS)
			s->silent_ms = MOM_NODE_SILENT_MIN_MS;
		s->aside_until = now + s->silent_ms;
		s->silent_ms = s->silent_ms * 2 > MOM_NODE_SILENT_MAX_MS ? MOM_NODE_SILENT_MAX_MS :
		    s->silent_ms * 2;
		break;
	case MOM_NODE_GONE:
		if (s->aside_until < now + MOM_NODE_GONE_MS)
			s->aside_until = now + MOM_NODE_GONE_MS;
		break;
	case MOM_NODE_REFUSED:
		if (s->aside_until < now + MOM_NODE_REFUSED_MS)
			s->aside_until = now + MOM_NODE_REFUSED_MS;
		break;
	}
}

int
mom_node_pick(const struct mom_node_state *s, int n, int cur, int64_t now)
{
	int i, k, best = -1;

	if (n <= 1)
		return 0;
	if (cur < 0 || cur >= n)
		cur = 0;
	for (k = 0; k < n; k++) {
		i = (cur + k) % n;
		if (s[i].connected && s[i].aside_until <= now)
			return i;
	}
	for (k = 0; k < n; k++) {
		i = (cur + k) % n;
		if (s[i].aside_until <= now)
			return i;
	}
	for (k = 0; k < n; k++) {
		i = (cur + k) % n;
		if (best < 0 || s[i].aside_until < s[best].aside_until)
			best = i;
	}
	return best;
}

int
mom_node_after(int cur, int node, int n, enum mom_node_event ev)
{
	if (n <= 1)
		return 0;
	if (ev == MOM_NODE_ANSWERED)
		return node;
	return node == cur ? (cur + 1) % n : cur;
}

int
mom_node_retry_status(int status)
{
	return status == MOM_ECLOSED || status == MOM_ENOTLEADER || status == MOM_EUNAVAIL;
}

int64_t
mom_node_again_pause(int status, int64_t away_ms)
{
	int64_t p = away_ms / 2, max = status == MOM_ENOTLEADER ? 200 : 1000;

	return p < 50 ? 50 : p > max ? max : p;
}

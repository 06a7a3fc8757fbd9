/*
 * linefsm.h: a raft_fsm for tests of raft nodes (rio_test, raftmsg_raft_test):
 * it keeps each applied command as a string; its snapshot is them, one a
 * line, and a restore replaces them with the snapshot's.
 */
#ifndef MOM_TEST_LINEFSM_H
#define MOM_TEST_LINEFSM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#define LINEFSM_MAX 512

struct linefsm {
	struct raft_fsm fsm;   /* for raft_init: &lf.fsm */
	char           *applied[LINEFSM_MAX];
	size_t          napplied;
	int             restores;
};

static int
linefsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct linefsm *l = fsm->data;

	cr_assert_lt(l->napplied, LINEFSM_MAX);
	l->applied[l->napplied++] = strndup(buf->base, buf->len);
	*result = NULL;
	return 0;
}

static int
linefsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct linefsm *l = fsm->data;
	size_t          len = 0;
	char           *p;

	for (size_t i = 0; i < l->napplied; i++)
		len += strlen(l->applied[i]) + 1;
	cr_assert_not_null(*bufs = raft_malloc(sizeof(**bufs)));
	cr_assert_not_null(p = raft_malloc(len + 1));
	(*bufs)[0].base = p;
	(*bufs)[0].len = len;
	for (size_t i = 0; i < l->napplied; i++)
		p += sprintf(p, "%s\n", l->applied[i]);
	*n_bufs = 1;
	return 0;
}

/* Frees what was applied. */
static inline void
linefsm_clear(struct linefsm *l)
{
	for (size_t i = 0; i < l->napplied; i++)
		free(l->applied[i]);
	l->napplied = 0;
}

static int
linefsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct linefsm *l = fsm->data;
	const char     *p = buf->base, *end = p + buf->len;

	linefsm_clear(l);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		cr_assert_not_null(nl);
		cr_assert_lt(l->napplied, LINEFSM_MAX);
		l->applied[l->napplied++] = strndup(p, (size_t)(nl - p));
		p = nl + 1;
	}
	l->restores++;
	raft_free(buf->base);
	return 0;
}

/* Sets up l->fsm (what was applied stays: a restarted node keeps its record). */
static inline void
linefsm_init(struct linefsm *l)
{
	l->fsm = (struct raft_fsm){ .version = 1, .data = l, .apply = linefsm_apply,
		.snapshot = linefsm_snapshot, .restore = linefsm_restore };
}

#endif

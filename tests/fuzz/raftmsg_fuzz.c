/*
 * raftmsg_fuzz.c: libFuzzer target for the decoder of the raft messages
 * that cluster peers send (replica/raftmsg.h).
 *
 * Sanitizers catch reads out of bounds and leaks; the checks here catch a
 * decoder that contradicts itself: every accepted message must hold what
 * libraft will read (each entry's bytes inside its batch, a configuration
 * of distinct servers), and, since the encoding is canonical, encoding it
 * again must give back exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "mom.h"
#include "replica/raftmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static volatile uint8_t sink;

static void
touch(const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sink ^= ((const uint8_t *)p)[i];
}

static void
touch_message(const struct raft_message *m)
{
	const struct raft_append_entries   *ae = &m->append_entries;
	const struct raft_install_snapshot *is = &m->install_snapshot;

	touch(m->server_address, strlen(m->server_address));
	if (m->type == RAFT_IO_APPEND_ENTRIES) {
		for (unsigned i = 0; i < ae->n_entries; i++) {
			/* One batch for all: libraft frees entries[0].batch alone. */
			if (ae->entries[i].batch != ae->entries[0].batch)
				abort();
			touch(ae->entries[i].buf.base, ae->entries[i].buf.len);
		}
	} else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
		for (unsigned i = 0; i < is->conf.n; i++) {
			touch(is->conf.servers[i].address, strlen(is->conf.servers[i].address));
			for (unsigned j = 0; j < i; j++)
				if (is->conf.servers[i].id == is->conf.servers[j].id)
					abort();
		}
		touch(is->data.base, is->data.len);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	struct raft_message m;
	struct mom_buf      b;
	char                addr[RAFTMSG_MAX_ADDR + 1];
	int                 rv;

	rv = raftmsg_decode(p, n, &m, addr, sizeof(addr));
	if (rv != 0) {
		if (rv != MOM_EBADDATA && rv != MOM_ENOMEM)
			abort();
		return 0;
	}
	touch_message(&m);
	mom_buf_init(&b);
	if (raftmsg_encode(&b, &m, m.server_id, m.server_address) != 0 || b.len != n ||
	    memcmp(b.data, p, n) != 0)
		abort(); /* accepted, yet not what it would send */
	mom_buf_fini(&b);
	raftmsg_release(&m);
	return 0;
}

/*
 * raftmsg_test.c: libraft's six messages through our encoding and back,
 * and what the decoder refuses.  libraft's allocator is replaced by one
 * that counts live blocks (and can fail the Nth), so that every test
 * checks that a refused message leaves nothing allocated and a released
 * one frees everything, without waiting for valgrind.  Truncations copy
 * each prefix into an allocation of its own, so that valgrind or ASan
 * sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "buf.h"
#include "le.h"
#include "mom.h"
#include "replica/raftmsg.h"

static long heap_live;   /* blocks allocated and not freed */
static long heap_fail_at; /* fail the allocation with this number (1-based); 0: never */
static long heap_count;

static bool
heap_fails(void)
{
	return heap_fail_at != 0 && ++heap_count == heap_fail_at;
}

static void *
h_malloc(void *d, size_t n)
{
	void *p;

	if (heap_fails() || !(p = malloc(n)))
		return NULL;
	heap_live++;
	return p;
}

static void
h_free(void *d, void *p)
{
	if (p)
		heap_live--;
	free(p);
}

static void *
h_calloc(void *d, size_t n, size_t m)
{
	void *p;

	if (heap_fails() || !(p = calloc(n, m)))
		return NULL;
	heap_live++;
	return p;
}

static void *
h_realloc(void *d, void *p, size_t n)
{
	void *q;

	if (heap_fails() || !(q = realloc(p, n)))
		return NULL;
	if (!p)
		heap_live++;
	return q;
}

static struct raft_heap heap = { NULL, h_malloc, h_free, h_calloc, h_realloc, NULL, NULL };

static void
setup(void)
{
	heap_live = heap_fail_at = heap_count = 0;
	raft_heap_set(&heap);
}

static void
teardown(void)
{
	raft_heap_set_default();
}

TestSuite(raftmsg, .init = setup, .fini = teardown);

#define FROM      42
#define FROM_ADDR "tcp://127.0.0.1:7422"

static void
encode(struct mom_buf *b, const struct raft_message *m)
{
	mom_buf_init(b);
	cr_assert_eq(raftmsg_encode(b, m, FROM, FROM_ADDR), 0);
}

/* Decodes b into m and checks the sender. */
static void
decode(const struct mom_buf *b, struct raft_message *m, char *addr, size_t addrlen)
{
	cr_assert_eq(raftmsg_decode(b->data, b->len, m, addr, addrlen), 0);
	cr_assert_eq(m->server_id, FROM);
	cr_assert_eq(m->server_address, addr);
	cr_assert_str_eq(addr, FROM_ADDR);
}

/* p with its length: a copy of exactly n bytes, for valgrind to police. */
static int
decode_copy(const uint8_t *p, size_t n, struct raft_message *m)
{
	static const struct raft_message zero;
	char                             addr[RAFTMSG_MAX_ADDR + 1];
	uint8_t                         *c = malloc(n ? n : 1);
	int                              rv;

	cr_assert(c);
	memcpy(c, p, n);
	rv = raftmsg_decode(c, n, m, addr, sizeof(addr));
	free(c);
	if (rv != 0) {
		cr_assert_eq(memcmp(m, &zero, sizeof(*m)), 0, "a refused message is zeroed");
		cr_assert_eq(heap_live, 0, "a refused message leaves nothing allocated");
	}
	return rv;
}

/*
 * Every prefix of an encoding is refused, and leaves nothing behind.  In a
 * long encoding (a 1 MiB entry) a cut inside the payload is the same case
 * wherever it falls: the first and last 4 KiB are cut at every byte, the
 * middle every 4093 bytes (every byte took 15 s, and minutes under valgrind).
 */
static void
check_truncations(const struct raft_message *m)
{
	struct raft_message d;
	struct mom_buf      b;

	encode(&b, m);
	for (size_t n = 0; n < b.len; n += n < 4096 || n + 4096 >= b.len ? 1 : 4093)
		cr_assert_eq(decode_copy(b.data, n, &d), MOM_EBADDATA, "prefix %zu of %zu", n, b.len);
	/* And one byte more is refused too: a message ends where its last field does. */
	cr_assert_eq(mom_buf_reserve(&b, 1), 0);
	b.data[b.len] = 0;
	cr_assert_eq(decode_copy(b.data, b.len + 1, &d), MOM_EBADDATA);
	cr_assert_eq(decode_copy(b.data, b.len, &d), 0);
	raftmsg_release(&d);
	cr_assert_eq(heap_live, 0);
	mom_buf_fini(&b);
}

Test(raftmsg, request_vote_round_trips_with_edge_values_and_flags)
{
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[64];

	for (int f = 0; f < 4; f++) {
		memset(&m, 0, sizeof(m));
		m.type = RAFT_IO_REQUEST_VOTE;
		m.request_vote.term = f == 0 ? 0 : UINT64_MAX;
		m.request_vote.candidate_id = UINT64_MAX - 1;
		m.request_vote.last_log_index = 1;
		m.request_vote.last_log_term = 0x0102030405060708ULL;
		m.request_vote.disrupt_leader = f & 1;
		m.request_vote.pre_vote = f & 2;
		encode(&b, &m);
		cr_assert_eq(b.data[0], RAFTMSG_V1 + RAFT_IO_REQUEST_VOTE);
		decode(&b, &d, addr, sizeof(addr));
		cr_assert_eq(d.type, RAFT_IO_REQUEST_VOTE);
		cr_assert_eq(d.request_vote.term, m.request_vote.term);
		cr_assert_eq(d.request_vote.candidate_id, UINT64_MAX - 1);
		cr_assert_eq(d.request_vote.last_log_index, 1);
		cr_assert_eq(d.request_vote.last_log_term, 0x0102030405060708ULL);
		cr_assert_eq(d.request_vote.disrupt_leader, (bool)(f & 1));
		cr_assert_eq(d.request_vote.pre_vote, (bool)(f & 2));
		mom_buf_fini(&b);
	}
	check_truncations(&m);
}

Test(raftmsg, request_vote_result_round_trips_every_pre_vote_value)
{
	raft_tribool        pv[] = { raft_tribool_unknown, raft_tribool_true, raft_tribool_false };
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[64];

	for (int i = 0; i < 3; i++) {
		memset(&m, 0, sizeof(m));
		m.type = RAFT_IO_REQUEST_VOTE_RESULT;
		m.request_vote_result.term = UINT64_MAX;
		m.request_vote_result.vote_granted = i == 1;
		m.request_vote_result.pre_vote = pv[i];
		encode(&b, &m);
		decode(&b, &d, addr, sizeof(addr));
		cr_assert_eq(d.type, RAFT_IO_REQUEST_VOTE_RESULT);
		cr_assert_eq(d.request_vote_result.term, UINT64_MAX);
		cr_assert_eq(d.request_vote_result.vote_granted, i == 1);
		cr_assert_eq(d.request_vote_result.pre_vote, pv[i]);
		mom_buf_fini(&b);
	}
	check_truncations(&m);
}

Test(raftmsg, append_entries_result_and_timeout_now_round_trip)
{
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[64];

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_APPEND_ENTRIES_RESULT;
	m.append_entries_result.term = 7;
	m.append_entries_result.rejected = UINT64_MAX;
	m.append_entries_result.last_log_index = 0;
	encode(&b, &m);
	decode(&b, &d, addr, sizeof(addr));
	cr_assert_eq(d.type, RAFT_IO_APPEND_ENTRIES_RESULT);
	cr_assert_eq(d.append_entries_result.term, 7);
	cr_assert_eq(d.append_entries_result.rejected, UINT64_MAX);
	cr_assert_eq(d.append_entries_result.last_log_index, 0);
	mom_buf_fini(&b);
	check_truncations(&m);

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_TIMEOUT_NOW;
	m.timeout_now.term = UINT64_MAX;
	m.timeout_now.last_log_index = 1ULL << 63;
	m.timeout_now.last_log_term = 3;
	encode(&b, &m);
	decode(&b, &d, addr, sizeof(addr));
	cr_assert_eq(d.type, RAFT_IO_TIMEOUT_NOW);
	cr_assert_eq(d.timeout_now.term, UINT64_MAX);
	cr_assert_eq(d.timeout_now.last_log_index, 1ULL << 63);
	cr_assert_eq(d.timeout_now.last_log_term, 3);
	mom_buf_fini(&b);
	check_truncations(&m);
}

/* n entries; entry i has i * step bytes (the one at big has 1 MiB), of every type. */
static struct raft_entry *
entries_make(unsigned n, size_t step, unsigned big)
{
	struct raft_entry *e = calloc(n ? n : 1, sizeof(*e));

	for (unsigned i = 0; i < n; i++) {
		e[i].term = i == 0 ? UINT64_MAX : i;
		e[i].type = RAFT_COMMAND + i % 3;
		e[i].buf.len = i == big ? 1u << 20 : i * step;
		e[i].buf.base = e[i].buf.len ? malloc(e[i].buf.len) : NULL;
		for (size_t j = 0; j < e[i].buf.len; j++)
			((uint8_t *)e[i].buf.base)[j] = (uint8_t)(i * 31 + j);
	}
	return e;
}

static void
entries_free(struct raft_entry *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(e[i].buf.base);
	free(e);
}

static void
append_round_trip(unsigned n, size_t step, unsigned big)
{
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[64];

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_APPEND_ENTRIES;
	m.append_entries.term = 5;
	m.append_entries.prev_log_index = UINT64_MAX;
	m.append_entries.prev_log_term = 4;
	m.append_entries.leader_commit = 3;
	m.append_entries.entries = entries_make(n, step, big);
	m.append_entries.n_entries = n;
	encode(&b, &m);
	decode(&b, &d, addr, sizeof(addr));
	cr_assert_eq(d.type, RAFT_IO_APPEND_ENTRIES);
	cr_assert_eq(d.append_entries.term, 5);
	cr_assert_eq(d.append_entries.prev_log_index, UINT64_MAX);
	cr_assert_eq(d.append_entries.prev_log_term, 4);
	cr_assert_eq(d.append_entries.leader_commit, 3);
	cr_assert_eq(d.append_entries.n_entries, n);
	if (n == 0) {
		cr_assert_null(d.append_entries.entries);
		cr_assert_eq(heap_live, 0);
	} else {
		/* The entries array and one batch that every entry points into. */
		cr_assert_eq(heap_live, 2);
	}
	for (unsigned i = 0; i < n; i++) {
		const struct raft_entry *e = &d.append_entries.entries[i];

		cr_assert_eq(e->term, m.append_entries.entries[i].term);
		cr_assert_eq(e->type, m.append_entries.entries[i].type);
		cr_assert_eq(e->buf.len, m.append_entries.entries[i].buf.len);
		cr_assert_not_null(e->buf.base);
		cr_assert_eq(e->batch, d.append_entries.entries[0].batch);
		cr_assert_geq((uint8_t *)e->buf.base, (uint8_t *)e->batch);
		cr_assert(e->buf.len == 0 ||
		    memcmp(e->buf.base, m.append_entries.entries[i].buf.base, e->buf.len) == 0);
	}
	raftmsg_release(&d);
	cr_assert_eq(heap_live, 0);
	raftmsg_release(&d); /* twice: nothing */
	cr_assert_eq(heap_live, 0);
	mom_buf_fini(&b);
	if (n <= 40)
		check_truncations(&m);
	entries_free(m.append_entries.entries, n);
}

Test(raftmsg, append_entries_without_entries_round_trips)
{
	append_round_trip(0, 0, UINT32_MAX);
}

Test(raftmsg, append_entries_with_empty_and_big_entries_round_trips)
{
	append_round_trip(1, 0, UINT32_MAX);      /* one empty entry */
	append_round_trip(3, 0, 1);               /* empty, 1 MiB, empty */
	append_round_trip(40, 7, UINT32_MAX);     /* mixed small ones */
}

Test(raftmsg, append_entries_with_many_entries_round_trips)
{
	append_round_trip(5000, 1, UINT32_MAX);
}

/*
 * A configuration of n servers with ids 1..n and every role, built and
 * freed outside the counted heap: only what decode allocates is counted.
 */
static void
conf_make(struct raft_configuration *c, unsigned n)
{
	char addr[64];

	raft_heap_set_default();
	raft_configuration_init(c);
	for (unsigned i = 1; i <= n; i++) {
		snprintf(addr, sizeof(addr), "tcp://10.0.0.%u:7422", i);
		cr_assert_eq(raft_configuration_add(c, i == n ? UINT64_MAX : i, addr, i % 3), 0);
	}
	raft_heap_set(&heap);
}

static void
conf_free(struct raft_configuration *c)
{
	raft_heap_set_default();
	raft_configuration_close(c);
	raft_heap_set(&heap);
}

static void
snapshot_round_trip(unsigned servers, size_t len, bool truncations)
{
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[64];

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_INSTALL_SNAPSHOT;
	m.install_snapshot.term = 9;
	m.install_snapshot.last_index = UINT64_MAX;
	m.install_snapshot.last_term = 8;
	m.install_snapshot.conf_index = 1;
	conf_make(&m.install_snapshot.conf, servers);
	m.install_snapshot.data.len = len;
	m.install_snapshot.data.base = malloc(len ? len : 1);
	for (size_t j = 0; j < len; j++)
		((uint8_t *)m.install_snapshot.data.base)[j] = (uint8_t)(j * 7 + 1);
	encode(&b, &m);
	decode(&b, &d, addr, sizeof(addr));
	cr_assert_eq(d.type, RAFT_IO_INSTALL_SNAPSHOT);
	cr_assert_eq(d.install_snapshot.term, 9);
	cr_assert_eq(d.install_snapshot.last_index, UINT64_MAX);
	cr_assert_eq(d.install_snapshot.last_term, 8);
	cr_assert_eq(d.install_snapshot.conf_index, 1);
	cr_assert_eq(d.install_snapshot.conf.n, servers);
	for (unsigned i = 0; i < servers; i++) {
		const struct raft_server *s = &d.install_snapshot.conf.servers[i];
		const struct raft_server *o = &m.install_snapshot.conf.servers[i];

		cr_assert_eq(s->id, o->id);
		cr_assert_eq(s->role, o->role);
		cr_assert_str_eq(s->address, o->address);
	}
	cr_assert_eq(d.install_snapshot.data.len, len);
	cr_assert_not_null(d.install_snapshot.data.base);
	cr_assert(len == 0 || memcmp(d.install_snapshot.data.base, m.install_snapshot.data.base,
	    len) == 0);
	raftmsg_release(&d);
	cr_assert_eq(heap_live, 0);
	raftmsg_release(&d);
	cr_assert_eq(heap_live, 0);
	mom_buf_fini(&b);
	if (truncations)
		check_truncations(&m);
	conf_free(&m.install_snapshot.conf);
	free(m.install_snapshot.data.base);
}

Test(raftmsg, install_snapshot_with_seven_servers_and_one_mib_round_trips)
{
	snapshot_round_trip(7, 1u << 20, false);
}

Test(raftmsg, install_snapshot_with_one_server_and_no_data_round_trips)
{
	snapshot_round_trip(1, 0, true);
	snapshot_round_trip(7, 100, true);
}

/* Where the fields are, with FROM_ADDR as the sender (raftmsg.h's layout). */
#define HEAD      (1 + 8 + 2 + (sizeof(FROM_ADDR) - 1))
#define AE_COUNT  (HEAD + 32)             /* u32 */
#define AE_ENTRY(i) (AE_COUNT + 4 + 13 * (i)) /* term u64, type u8, length u32 */
#define IS_COUNT  (HEAD + 32)             /* u32 */
#define IS_SERVER (IS_COUNT + 4)          /* id u64, role u8, length u16, address */

static void
append_sample(struct raft_message *m, struct raft_entry *e)
{
	static uint8_t data[] = "abcdefgh";

	memset(m, 0, sizeof(*m));
	m->type = RAFT_IO_APPEND_ENTRIES;
	m->append_entries.term = 2;
	for (int i = 0; i < 2; i++) {
		e[i].term = 2;
		e[i].type = RAFT_COMMAND;
		e[i].buf.base = data + 4 * i;
		e[i].buf.len = 4;
		e[i].batch = NULL;
	}
	m->append_entries.entries = e;
	m->append_entries.n_entries = 2;
}

/* A copy of b with the n bytes at off set to v (little-endian). */
static int
patched(const struct mom_buf *b, size_t off, uint64_t v, int n)
{
	struct raft_message d;
	uint8_t            *c = malloc(b->len);
	int                 rv;

	cr_assert(c);
	memcpy(c, b->data, b->len);
	cr_assert_leq(off + (size_t)n, b->len);
	mom_le_put(c + off, v, n);
	rv = decode_copy(c, b->len, &d);
	if (rv == 0)
		raftmsg_release(&d);
	free(c);
	return rv;
}

Test(raftmsg, length_fields_pointing_past_the_end_are_refused)
{
	struct raft_message m;
	struct raft_entry   e[2];
	struct mom_buf      b;

	append_sample(&m, e);
	encode(&b, &m);
	cr_assert_eq(patched(&b, AE_COUNT, 2, 4), 0); /* the sample as it is */
	cr_assert_eq(patched(&b, 9, sizeof(FROM_ADDR), 2), MOM_EBADDATA);  /* address */
	cr_assert_eq(patched(&b, 9, 0xffff, 2), MOM_EBADDATA);
	cr_assert_eq(patched(&b, AE_COUNT, 3, 4), MOM_EBADDATA);            /* entries */
	cr_assert_eq(patched(&b, AE_COUNT, UINT32_MAX, 4), MOM_EBADDATA);
	cr_assert_eq(patched(&b, AE_ENTRY(1) + 9, 5, 4), MOM_EBADDATA);     /* data */
	cr_assert_eq(patched(&b, AE_ENTRY(1) + 9, 3, 4), MOM_EBADDATA);     /* data left over */
	cr_assert_eq(patched(&b, AE_ENTRY(0) + 9, UINT32_MAX, 4), MOM_EBADDATA);
	mom_buf_fini(&b);
}

Test(raftmsg, snapshot_length_fields_pointing_past_the_end_are_refused)
{
	struct raft_message m;
	struct mom_buf      b;
	size_t              al = strlen("tcp://10.0.0.1:7422");

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_INSTALL_SNAPSHOT;
	conf_make(&m.install_snapshot.conf, 1);
	m.install_snapshot.data.base = "snap";
	m.install_snapshot.data.len = 4;
	encode(&b, &m);
	conf_free(&m.install_snapshot.conf);
	cr_assert_eq(patched(&b, IS_COUNT, 1, 4), 0);
	cr_assert_eq(patched(&b, IS_COUNT, 2, 4), MOM_EBADDATA);                /* servers */
	cr_assert_eq(patched(&b, IS_COUNT, RAFTMSG_MAX_SERVERS + 1, 4), MOM_EBADDATA);
	cr_assert_eq(patched(&b, IS_COUNT, 0, 4), MOM_EBADDATA);
	cr_assert_eq(patched(&b, IS_SERVER + 9, al + 1, 2), MOM_EBADDATA);     /* address */
	cr_assert_eq(patched(&b, IS_SERVER + 9, 0xffff, 2), MOM_EBADDATA);
	cr_assert_eq(patched(&b, IS_SERVER + 11 + al, 5, 8), MOM_EBADDATA);    /* data */
	cr_assert_eq(patched(&b, IS_SERVER + 11 + al, 3, 8), MOM_EBADDATA);
	cr_assert_eq(patched(&b, IS_SERVER + 11 + al, UINT64_MAX, 8), MOM_EBADDATA);
	mom_buf_fini(&b);
}

Test(raftmsg, values_outside_the_protocol_are_refused)
{
	struct raft_message m;
	struct raft_entry   e[2];
	struct mom_buf      b;

	append_sample(&m, e);
	encode(&b, &m);
	cr_assert_eq(patched(&b, 0, 0, 1), MOM_EBADDATA);                   /* type */
	cr_assert_eq(patched(&b, 0, RAFTMSG_V1, 1), MOM_EBADDATA);
	cr_assert_eq(patched(&b, 0, RAFTMSG_V1 + 7, 1), MOM_EBADDATA);
	cr_assert_eq(patched(&b, 0, RAFT_IO_APPEND_ENTRIES, 1), MOM_EBADDATA); /* no version */
	cr_assert_eq(patched(&b, 1, 0, 8), MOM_EBADDATA);                   /* from 0 */
	cr_assert_eq(patched(&b, 11, 0, 1), MOM_EBADDATA);                  /* NUL in the address */
	cr_assert_eq(patched(&b, AE_ENTRY(1) + 8, 0, 1), MOM_EBADDATA);     /* entry type */
	cr_assert_eq(patched(&b, AE_ENTRY(1) + 8, RAFT_CHANGE + 1, 1), MOM_EBADDATA);
	mom_buf_fini(&b);

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_REQUEST_VOTE;
	encode(&b, &m);
	cr_assert_eq(patched(&b, b.len - 1, 3, 1), 0);
	cr_assert_eq(patched(&b, b.len - 1, 4, 1), MOM_EBADDATA);           /* unknown flag */
	mom_buf_fini(&b);

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_REQUEST_VOTE_RESULT;
	encode(&b, &m);
	cr_assert_eq(patched(&b, b.len - 2, 2, 1), MOM_EBADDATA);           /* granted 2 */
	cr_assert_eq(patched(&b, b.len - 1, 3, 1), MOM_EBADDATA);           /* a fourth tribool */
	mom_buf_fini(&b);
}

Test(raftmsg, a_configuration_libraft_would_refuse_is_refused)
{
	struct raft_message m;
	struct mom_buf      b;
	size_t              al = strlen("tcp://10.0.0.1:7422");
	size_t              s2 = IS_SERVER + 11 + al;

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_INSTALL_SNAPSHOT;
	conf_make(&m.install_snapshot.conf, 2);
	encode(&b, &m);
	conf_free(&m.install_snapshot.conf);
	cr_assert_eq(patched(&b, IS_SERVER, 0, 8), MOM_EBADDATA);            /* id 0 */
	cr_assert_eq(patched(&b, IS_SERVER + 8, 3, 1), MOM_EBADDATA);        /* role */
	cr_assert_eq(patched(&b, s2, 1, 8), MOM_EBADDATA);                   /* same id twice */
	cr_assert_eq(patched(&b, s2 + 11 + al - 6, '1', 1), MOM_EBADDATA);   /* same address */
	cr_assert_eq(patched(&b, s2 + 11 + al - 6, '3', 1), 0);
	mom_buf_fini(&b);
}

Test(raftmsg, an_address_longer_than_the_callers_buffer_is_refused)
{
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[sizeof(FROM_ADDR)];

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_TIMEOUT_NOW;
	encode(&b, &m);
	cr_assert_eq(raftmsg_decode(b.data, b.len, &d, addr, sizeof(addr) - 1), MOM_EBADDATA);
	cr_assert_eq(raftmsg_decode(b.data, b.len, &d, addr, sizeof(addr)), 0);
	cr_assert_str_eq(d.server_address, FROM_ADDR);
	mom_buf_fini(&b);
}

/* Fails each allocation in turn until the decode succeeds. */
static void
check_out_of_memory(const struct raft_message *m)
{
	struct raft_message d;
	struct mom_buf      b;
	char                addr[64];
	int                 rv;
	long                at;

	encode(&b, m);
	for (at = 1; at < 100; at++) {
		heap_count = 0;
		heap_fail_at = at;
		rv = raftmsg_decode(b.data, b.len, &d, addr, sizeof(addr));
		heap_fail_at = 0;
		if (rv == 0)
			break;
		cr_assert_eq(rv, MOM_ENOMEM, "allocation %ld", at);
		cr_assert_eq(heap_live, 0, "allocation %ld failed and left blocks", at);
	}
	cr_assert_gt(at, 1, "decode allocates");
	cr_assert_eq(rv, 0);
	raftmsg_release(&d);
	cr_assert_eq(heap_live, 0);
	mom_buf_fini(&b);
}

Test(raftmsg, out_of_memory_at_any_allocation_leaves_nothing)
{
	struct raft_message m;
	struct raft_entry   e[2];

	append_sample(&m, e);
	check_out_of_memory(&m);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_INSTALL_SNAPSHOT;
	conf_make(&m.install_snapshot.conf, 7);
	m.install_snapshot.data.base = "snap";
	m.install_snapshot.data.len = 4;
	check_out_of_memory(&m);
	conf_free(&m.install_snapshot.conf);
}

Test(raftmsg, the_encoder_refuses_what_the_decoder_would)
{
	struct raft_message m;
	struct raft_entry   e[2];
	struct mom_buf      b;
	char                longaddr[RAFTMSG_MAX_ADDR + 2];

	mom_buf_init(&b);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_TIMEOUT_NOW;
	cr_assert_eq(raftmsg_encode(&b, &m, 0, FROM_ADDR), MOM_EINVAL);
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	cr_assert_eq(raftmsg_encode(&b, &m, 1, longaddr), MOM_EINVAL);
	longaddr[RAFTMSG_MAX_ADDR] = '\0';
	cr_assert_eq(raftmsg_encode(&b, &m, 1, longaddr), 0);
	cr_assert_eq(raftmsg_encode(&b, &m, 1, NULL), 0);
	m.type = 0;
	cr_assert_eq(raftmsg_encode(&b, &m, 1, FROM_ADDR), MOM_EINVAL);
	m.type = RAFT_IO_TIMEOUT_NOW + 1;
	cr_assert_eq(raftmsg_encode(&b, &m, 1, FROM_ADDR), MOM_EINVAL);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_REQUEST_VOTE_RESULT;
	m.request_vote_result.pre_vote = 3;
	cr_assert_eq(raftmsg_encode(&b, &m, 1, FROM_ADDR), MOM_EINVAL);
	append_sample(&m, e);
	e[1].type = 9;
	cr_assert_eq(raftmsg_encode(&b, &m, 1, FROM_ADDR), MOM_EINVAL);
	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_INSTALL_SNAPSHOT; /* no configuration */
	cr_assert_eq(raftmsg_encode(&b, &m, 1, FROM_ADDR), MOM_EINVAL);
	mom_buf_fini(&b);
}

Test(raftmsg, entries_fit_says_how_many_entries_a_bound_takes)
{
	struct raft_message m, d;
	struct mom_buf      b;
	char                addr[64];
	size_t              sizes[4];

	memset(&m, 0, sizeof(m));
	m.type = RAFT_IO_APPEND_ENTRIES;
	m.append_entries.entries = entries_make(4, 100, UINT32_MAX);
	/* The encoded size with the first k entries. */
	for (unsigned k = 0; k < 4; k++) {
		m.append_entries.n_entries = k;
		encode(&b, &m);
		sizes[k] = b.len;
		mom_buf_fini(&b);
	}
	m.append_entries.n_entries = 4;
	cr_assert_eq(raftmsg_entries_fit(&m, FROM_ADDR, SIZE_MAX), 4);
	cr_assert_eq(raftmsg_entries_fit(&m, FROM_ADDR, sizes[0] - 1), 0);
	for (unsigned k = 0; k < 4; k++) {
		cr_assert_eq(raftmsg_entries_fit(&m, FROM_ADDR, sizes[k]), k);
		if (k < 3)
			cr_assert_eq(raftmsg_entries_fit(&m, FROM_ADDR, sizes[k + 1] - 1), k);
	}
	/* A cut message is a valid one. */
	m.append_entries.n_entries = raftmsg_entries_fit(&m, FROM_ADDR, sizes[2]);
	encode(&b, &m);
	cr_assert_eq(b.len, sizes[2]);
	decode(&b, &d, addr, sizeof(addr));
	cr_assert_eq(d.append_entries.n_entries, 2);
	raftmsg_release(&d);
	mom_buf_fini(&b);
	m.type = RAFT_IO_TIMEOUT_NOW;
	cr_assert_eq(raftmsg_entries_fit(&m, FROM_ADDR, SIZE_MAX), 0);
	entries_free(m.append_entries.entries, 4);
}

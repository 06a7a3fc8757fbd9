/*
 * raftmsg.c: libraft's messages as bytes for the cluster links (see
 * raftmsg.h for the layout and who owns what).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "le.h"
#include "mom.h"
#include "replica/raftmsg.h"

/* type, from, address length */
#define HEAD_LEN     (1 + 8 + 2)
/* term, type, length */
#define ENTRY_HDR    (8 + 1 + 4)
/* id, role, address length */
#define SERVER_HDR   (8 + 1 + 2)

static void
put16(struct mom_buf *b, uint16_t v)
{
	uint8_t x[2];

	mom_le_put(x, v, 2);
	mom_buf_put(b, x, 2);
}

static void
put32(struct mom_buf *b, uint32_t v)
{
	uint8_t x[4];

	mom_le_put32(x, v);
	mom_buf_put(b, x, 4);
}

static void
put64(struct mom_buf *b, uint64_t v)
{
	uint8_t x[8];

	mom_le_put64(x, v);
	mom_buf_put(b, x, 8);
}

/* The reads set r->err past the end and then return 0 (buf.h). */
static uint64_t
get(struct mom_rd *r, int n)
{
	const uint8_t *p = mom_rd_raw(r, (size_t)n);

	return p ? mom_le_get(p, n) : 0;
}

static bool
entry_type_ok(unsigned t)
{
	return t == RAFT_COMMAND || t == RAFT_BARRIER || t == RAFT_CHANGE;
}

static bool
role_ok(int role)
{
	return role == RAFT_STANDBY || role == RAFT_VOTER || role == RAFT_SPARE;
}

/* Bytes of the head and the fixed part of m's type; 0 for a type not ours. */
static size_t
fixed_len(unsigned type, size_t addrlen)
{
	size_t body;

	switch (type) {
	case RAFT_IO_REQUEST_VOTE:
		body = 4 * 8 + 1;
		break;
	case RAFT_IO_REQUEST_VOTE_RESULT:
		body = 8 + 1 + 1;
		break;
	case RAFT_IO_APPEND_ENTRIES:
		body = 4 * 8 + 4;
		break;
	case RAFT_IO_APPEND_ENTRIES_RESULT:
	case RAFT_IO_TIMEOUT_NOW:
		body = 3 * 8;
		break;
	case RAFT_IO_INSTALL_SNAPSHOT:
		body = 4 * 8 + 4 + 8;
		break;
	default:
		return 0;
	}
	return HEAD_LEN + addrlen + body;
}

/*
 * Checks what the encoder must not send (the decoder would refuse it) and
 * returns the encoded size of m, or 0 when it cannot be encoded.
 */
static size_t
encoded_len(const struct raft_message *m, size_t addrlen)
{
	const struct raft_install_snapshot *is = &m->install_snapshot;
	const struct raft_append_entries   *ae = &m->append_entries;
	uint64_t                            data = 0;
	size_t                              len, al;

	if (addrlen > RAFTMSG_MAX_ADDR || (len = fixed_len(m->type, addrlen)) == 0)
		return 0;
	if (m->type == RAFT_IO_APPEND_ENTRIES) {
		if (ae->n_entries > RAFTMSG_MAX_ENTRIES || (ae->n_entries > 0 && !ae->entries))
			return 0;
		for (unsigned i = 0; i < ae->n_entries; i++) {
			if (!entry_type_ok(ae->entries[i].type) || ae->entries[i].buf.len > UINT32_MAX ||
			    (ae->entries[i].buf.len > 0 && !ae->entries[i].buf.base))
				return 0;
			data += ae->entries[i].buf.len;
		}
		len += (size_t)ae->n_entries * ENTRY_HDR;
	} else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
		if (is->conf.n == 0 || is->conf.n > RAFTMSG_MAX_SERVERS ||
		    (is->data.len > 0 && !is->data.base))
			return 0;
		for (unsigned i = 0; i < is->conf.n; i++) {
			const struct raft_server *s = &is->conf.servers[i];

			if (s->id == 0 || !role_ok(s->role) || !s->address ||
			    (al = strlen(s->address)) > RAFTMSG_MAX_ADDR)
				return 0;
			len += SERVER_HDR + al;
		}
		data = is->data.len;
	}
	if (data > RAFTMSG_MAX_DATA || data > SIZE_MAX - len)
		return 0;
	return len + (size_t)data;
}

static void
encode_entries(struct mom_buf *b, const struct raft_append_entries *ae)
{
	put64(b, ae->term);
	put64(b, ae->prev_log_index);
	put64(b, ae->prev_log_term);
	put64(b, ae->leader_commit);
	put32(b, ae->n_entries);
	for (unsigned i = 0; i < ae->n_entries; i++) {
		put64(b, ae->entries[i].term);
		mom_buf_put_u8(b, (uint8_t)ae->entries[i].type);
		put32(b, (uint32_t)ae->entries[i].buf.len);
	}
	for (unsigned i = 0; i < ae->n_entries; i++)
		mom_buf_put(b, ae->entries[i].buf.base, ae->entries[i].buf.len);
}

static void
encode_snapshot(struct mom_buf *b, const struct raft_install_snapshot *is)
{
	put64(b, is->term);
	put64(b, is->last_index);
	put64(b, is->last_term);
	put64(b, is->conf_index);
	put32(b, is->conf.n);
	for (unsigned i = 0; i < is->conf.n; i++) {
		const struct raft_server *s = &is->conf.servers[i];
		size_t                    al = strlen(s->address);

		put64(b, s->id);
		mom_buf_put_u8(b, (uint8_t)s->role);
		put16(b, (uint16_t)al);
		mom_buf_put(b, s->address, al);
	}
	put64(b, is->data.len);
	mom_buf_put(b, is->data.base, is->data.len);
}

static void
encode_body(struct mom_buf *b, const struct raft_message *m)
{
	switch (m->type) {
	case RAFT_IO_REQUEST_VOTE:
		put64(b, m->request_vote.term);
		put64(b, m->request_vote.candidate_id);
		put64(b, m->request_vote.last_log_index);
		put64(b, m->request_vote.last_log_term);
		mom_buf_put_u8(b, (uint8_t)((m->request_vote.disrupt_leader ? 1 : 0) |
		    (m->request_vote.pre_vote ? 2 : 0)));
		break;
	case RAFT_IO_REQUEST_VOTE_RESULT:
		put64(b, m->request_vote_result.term);
		mom_buf_put_u8(b, m->request_vote_result.vote_granted ? 1 : 0);
		mom_buf_put_u8(b, (uint8_t)m->request_vote_result.pre_vote);
		break;
	case RAFT_IO_APPEND_ENTRIES:
		encode_entries(b, &m->append_entries);
		break;
	case RAFT_IO_APPEND_ENTRIES_RESULT:
		put64(b, m->append_entries_result.term);
		put64(b, m->append_entries_result.rejected);
		put64(b, m->append_entries_result.last_log_index);
		break;
	case RAFT_IO_INSTALL_SNAPSHOT:
		encode_snapshot(b, &m->install_snapshot);
		break;
	default: /* RAFT_IO_TIMEOUT_NOW: encoded_len refused the rest */
		put64(b, m->timeout_now.term);
		put64(b, m->timeout_now.last_log_index);
		put64(b, m->timeout_now.last_log_term);
		break;
	}
}

int
raftmsg_encode(struct mom_buf *out, const struct raft_message *m, uint64_t from_id,
    const char *from_address)
{
	size_t al, len;

	if (!from_address)
		from_address = "";
	al = strlen(from_address);
	if (from_id == 0 || (len = encoded_len(m, al)) == 0)
		return MOM_EINVAL;
	if (m->type == RAFT_IO_REQUEST_VOTE_RESULT &&
	    (unsigned)m->request_vote_result.pre_vote > raft_tribool_false)
		return MOM_EINVAL;
	/* One growth for the whole message: snapshots are large. */
	if (mom_buf_reserve(out, len) != 0)
		return MOM_ENOMEM;
	mom_buf_put_u8(out, (uint8_t)(RAFTMSG_V1 + m->type));
	put64(out, from_id);
	put16(out, (uint16_t)al);
	mom_buf_put(out, from_address, al);
	encode_body(out, m);
	return out->err ? MOM_ENOMEM : 0;
}

unsigned
raftmsg_entries_fit(const struct raft_message *m, const char *from_address, size_t max)
{
	const struct raft_append_entries *ae = &m->append_entries;
	size_t                            len;
	unsigned                          i;

	len = fixed_len(RAFT_IO_APPEND_ENTRIES, from_address ? strlen(from_address) : 0);
	if (m->type != RAFT_IO_APPEND_ENTRIES || len > max)
		return 0;
	for (i = 0; i < ae->n_entries; i++) {
		if (ae->entries[i].buf.len > max - len || ENTRY_HDR > max - len -
		    ae->entries[i].buf.len)
			break;
		len += ENTRY_HDR + ae->entries[i].buf.len;
	}
	return i;
}

/* Decoding. */

/* An address of len bytes at p into a C string in out (outlen bytes). */
static int
decode_addr(struct mom_rd *r, char *out, size_t outlen)
{
	size_t         len = (size_t)get(r, 2);
	const uint8_t *p = mom_rd_raw(r, len);

	if (!p || len > RAFTMSG_MAX_ADDR || len >= outlen || memchr(p, '\0', len))
		return MOM_EBADDATA;
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static int
decode_vote(struct mom_rd *r, struct raft_request_vote *v)
{
	unsigned flags;

	v->term = get(r, 8);
	v->candidate_id = get(r, 8);
	v->last_log_index = get(r, 8);
	v->last_log_term = get(r, 8);
	flags = mom_rd_u8(r);
	v->disrupt_leader = flags & 1;
	v->pre_vote = flags & 2;
	return flags & ~3u ? MOM_EBADDATA : 0;
}

static int
decode_vote_result(struct mom_rd *r, struct raft_request_vote_result *v)
{
	unsigned granted, pre;

	v->term = get(r, 8);
	granted = mom_rd_u8(r);
	pre = mom_rd_u8(r);
	if (granted > 1 || pre > raft_tribool_false)
		return MOM_EBADDATA;
	v->vote_granted = granted;
	v->pre_vote = (raft_tribool)pre;
	return 0;
}

/*
 * The entries' headers, then their data into one batch: libraft 0.15's
 * AppendEntries handler frees entries[0].batch alone when it answers
 * without appending, so every entry must point into that one.
 */
static int
decode_entries(struct mom_rd *r, struct raft_append_entries *ae)
{
	struct mom_rd  h;
	const uint8_t *hdr, *data;
	uint64_t       total = 0;
	uint8_t       *batch, *cur;
	uint32_t       n;

	ae->term = get(r, 8);
	ae->prev_log_index = get(r, 8);
	ae->prev_log_term = get(r, 8);
	ae->leader_commit = get(r, 8);
	n = (uint32_t)get(r, 4);
	if (r->err || n > RAFTMSG_MAX_ENTRIES || (size_t)n * ENTRY_HDR > mom_rd_left(r))
		return MOM_EBADDATA;
	if (n == 0)
		return 0;
	hdr = mom_rd_raw(r, (size_t)n * ENTRY_HDR);
	mom_rd_init(&h, hdr, (size_t)n * ENTRY_HDR);
	for (uint32_t i = 0; i < n; i++) {
		(void)mom_rd_raw(&h, 8);
		if (!entry_type_ok(mom_rd_u8(&h)))
			return MOM_EBADDATA;
		total += get(&h, 4);
	}
	/* The data ends the message: exactly what remains. */
	if (total > RAFTMSG_MAX_DATA || total != mom_rd_left(r))
		return MOM_EBADDATA;
	data = mom_rd_raw(r, (size_t)total);
	if (!(ae->entries = raft_malloc(n * sizeof(*ae->entries))))
		return MOM_ENOMEM;
	if (!(batch = raft_malloc(total ? (size_t)total : 1))) {
		raft_free(ae->entries);
		ae->entries = NULL;
		return MOM_ENOMEM;
	}
	if (total)
		memcpy(batch, data, (size_t)total);
	mom_rd_init(&h, hdr, (size_t)n * ENTRY_HDR);
	cur = batch;
	for (uint32_t i = 0; i < n; i++) {
		struct raft_entry *e = &ae->entries[i];

		e->term = get(&h, 8);
		e->type = mom_rd_u8(&h);
		e->buf.len = (size_t)get(&h, 4);
		/* Never NULL, even empty: libraft copies it with memcpy. */
		e->buf.base = cur;
		e->batch = batch;
		cur += e->buf.len;
	}
	ae->n_entries = n;
	return 0;
}

/* A configuration as raft_configuration_add builds it (raft_malloc). */
static int
decode_conf(struct mom_rd *r, struct raft_configuration *c)
{
	char     addr[RAFTMSG_MAX_ADDR + 1];
	uint32_t n = (uint32_t)get(r, 4);

	if (r->err || n == 0 || n > RAFTMSG_MAX_SERVERS)
		return MOM_EBADDATA;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t id = get(r, 8);
		int      role = mom_rd_u8(r), rv;

		if (decode_addr(r, addr, sizeof(addr)) != 0 || id == 0 || !role_ok(role))
			return MOM_EBADDATA;
		/* Refuses a duplicate id or address. */
		if ((rv = raft_configuration_add(c, id, addr, role)) != 0)
			return rv == RAFT_NOMEM ? MOM_ENOMEM : MOM_EBADDATA;
	}
	return 0;
}

static int
decode_snapshot(struct mom_rd *r, struct raft_install_snapshot *is)
{
	const uint8_t *data;
	uint64_t       len;
	int            rv;

	is->term = get(r, 8);
	is->last_index = get(r, 8);
	is->last_term = get(r, 8);
	is->conf_index = get(r, 8);
	if ((rv = decode_conf(r, &is->conf)) != 0)
		return rv;
	len = get(r, 8);
	if (r->err || len > RAFTMSG_MAX_DATA || len != mom_rd_left(r))
		return MOM_EBADDATA;
	data = mom_rd_raw(r, (size_t)len);
	/* Never NULL, even empty: it is handed on as a snapshot buffer. */
	if (!(is->data.base = raft_malloc(len ? (size_t)len : 1)))
		return MOM_ENOMEM;
	if (len)
		memcpy(is->data.base, data, (size_t)len);
	is->data.len = (size_t)len;
	return 0;
}

static int
decode_body(struct mom_rd *r, struct raft_message *m)
{
	switch (m->type) {
	case RAFT_IO_REQUEST_VOTE:
		return decode_vote(r, &m->request_vote);
	case RAFT_IO_REQUEST_VOTE_RESULT:
		return decode_vote_result(r, &m->request_vote_result);
	case RAFT_IO_APPEND_ENTRIES:
		return decode_entries(r, &m->append_entries);
	case RAFT_IO_APPEND_ENTRIES_RESULT:
		m->append_entries_result.term = get(r, 8);
		m->append_entries_result.rejected = get(r, 8);
		m->append_entries_result.last_log_index = get(r, 8);
		return 0;
	case RAFT_IO_INSTALL_SNAPSHOT:
		return decode_snapshot(r, &m->install_snapshot);
	case RAFT_IO_TIMEOUT_NOW:
		m->timeout_now.term = get(r, 8);
		m->timeout_now.last_log_index = get(r, 8);
		m->timeout_now.last_log_term = get(r, 8);
		return 0;
	default:
		return MOM_EBADDATA;
	}
}

int
raftmsg_decode(const void *p, size_t n, struct raft_message *m, char *addr, size_t addrlen)
{
	struct mom_rd r;
	unsigned      type;
	int           rv;

	memset(m, 0, sizeof(*m));
	mom_rd_init(&r, p, n);
	type = mom_rd_u8(&r);
	if (r.err || type <= RAFTMSG_V1 || type > RAFTMSG_V1 + RAFT_IO_TIMEOUT_NOW)
		return MOM_EBADDATA;
	m->type = (unsigned short)(type - RAFTMSG_V1);
	m->server_id = get(&r, 8);
	if ((rv = decode_addr(&r, addr, addrlen)) != 0 || m->server_id == 0)
		rv = MOM_EBADDATA;
	else if ((rv = decode_body(&r, m)) == 0 && (r.err || mom_rd_left(&r) != 0))
		rv = MOM_EBADDATA;
	if (rv != 0) {
		raftmsg_release(m);
		memset(m, 0, sizeof(*m));
		return rv;
	}
	m->server_address = addr;
	return 0;
}

void
raftmsg_release(struct raft_message *m)
{
	struct raft_append_entries   *ae = &m->append_entries;
	struct raft_install_snapshot *is = &m->install_snapshot;
	void                         *last = NULL;

	switch (m->type) {
	case RAFT_IO_APPEND_ENTRIES:
		for (unsigned i = 0; ae->entries && i < ae->n_entries; i++) {
			if (ae->entries[i].batch != last)
				raft_free((last = ae->entries[i].batch));
		}
		raft_free(ae->entries);
		ae->entries = NULL;
		ae->n_entries = 0;
		break;
	case RAFT_IO_INSTALL_SNAPSHOT:
		raft_configuration_close(&is->conf);
		raft_configuration_init(&is->conf);
		raft_free(is->data.base);
		is->data.base = NULL;
		is->data.len = 0;
		break;
	default:
		break;
	}
}

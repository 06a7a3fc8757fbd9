/*
 * msg.h: a stored message.
 *
 * One allocation holds the fixed fields and the bytes: payload, publisher
 * id, header block and (for topic messages) the topic name.  A message is
 * immutable once stored and shared by reference: a topic's retained log
 * and every subscription that holds it count one reference each.
 */
#ifndef BROKER_MSG_H
#define BROKER_MSG_H

#include <stdint.h>

#include "wire.h"

struct msg {
	uint64_t seq;        /* broker sequence number, unique */
	int64_t  time_ms;    /* publish time */
	int64_t  expires_ms; /* 0: never */
	int64_t  not_before; /* delayed delivery; 0: none */
	uint32_t refs;
	uint32_t len;        /* payload bytes */
	uint32_t hdr_len;
	uint16_t id_len;
	uint8_t  name_len;   /* topic name, topic messages only */
	uint8_t  kind;
	uint8_t  data[];     /* payload | id | headers | name */
};

static inline const uint8_t *msg_payload(const struct msg *m) { return m->data; }
static inline const uint8_t *msg_id(const struct msg *m) { return m->data + m->len; }
static inline const uint8_t *msg_hdr(const struct msg *m) { return m->data + m->len + m->id_len; }
static inline const char *
msg_name(const struct msg *m)
{
	return (const char *)m->data + m->len + m->id_len + m->hdr_len;
}

/* Bytes a message is charged for in max-bytes and retain-bytes. */
static inline uint64_t msg_size(const struct msg *m) { return m->len; }

/*
 * Builds a message from a decoded publish entry; name is stored only for
 * topics.  Returns NULL when out of memory.  refs starts at 1 (owned).
 */
struct msg *msg_new(const struct mom_pub_msg *, uint64_t seq, int64_t now);
struct msg *msg_ref(struct msg *);
void        msg_unref(struct msg *);

/* qsort order of an array of struct msg *: by seq, oldest first. */
int msg_cmp_seq(const void *, const void *);

#endif

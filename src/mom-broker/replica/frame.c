/*
 * frame.c: seal and open the envelope of cluster frames (see frame.h).
 *
 * Nothing in a frame is trusted before its MAC verifies: frame_open reads
 * only the length and the version before it, because they decide where the
 * MAC is.  The checks after the MAC (cluster id, receiver, field
 * consistency) are what a node that holds the key could still get wrong.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "le.h"
#include "replica/frame.h"

size_t
frame_size(size_t len)
{
	return FRAME_OVERHEAD + len;
}

static int
frame_mac(const uint8_t *p, size_t n, const uint8_t *key, size_t keylen,
    uint8_t mac[FRAME_MACLEN])
{
	unsigned int maclen = 0;

	if (!HMAC(EVP_sha256(), key, (int)keylen, p, n, mac, &maclen) ||
	    maclen != FRAME_MACLEN)
		return -1;
	return 0;
}

int
frame_seal(uint8_t *out, size_t outlen, const struct frame *f,
    const uint8_t *key, size_t keylen)
{
	if (keylen < FRAME_KEY_MIN)
		return FRAME_EKEY;
	if (f->len > FRAME_CHUNK || outlen < frame_size(f->len))
		return FRAME_EBAD;
	out[0] = FRAME_VERSION;
	out[1] = f->type;
	out[2] = f->kind;
	out[3] = f->flags;
	mom_le_put32(out + 4, f->group);
	mom_le_put64(out + 8, f->cluster);
	mom_le_put64(out + 16, f->from);
	mom_le_put64(out + 24, f->to);
	mom_le_put64(out + 32, f->seq);
	mom_le_put64(out + 40, f->xfer);
	mom_le_put32(out + 48, f->index);
	mom_le_put32(out + 52, f->count);
	mom_le_put64(out + 56, f->total);
	mom_le_put32(out + 64, f->len);
	if (f->len)
		memcpy(out + FRAME_HDR, f->payload, f->len);
	if (frame_mac(out, FRAME_HDR + f->len, key, keylen, out + FRAME_HDR + f->len))
		return FRAME_EBAD;
	return FRAME_OK;
}

static void
frame_parse(const uint8_t *p, struct frame *f)
{
	f->type = p[1];
	f->kind = p[2];
	f->flags = p[3];
	f->group = mom_le_get32(p + 4);
	f->cluster = mom_le_get64(p + 8);
	f->from = mom_le_get64(p + 16);
	f->to = mom_le_get64(p + 24);
	f->seq = mom_le_get64(p + 32);
	f->xfer = mom_le_get64(p + 40);
	f->index = mom_le_get32(p + 48);
	f->count = mom_le_get32(p + 52);
	f->total = mom_le_get64(p + 56);
	f->len = mom_le_get32(p + 64);
	f->payload = p + FRAME_HDR;
}

/*
 * The chunking rule of frame.h: count chunks of FRAME_CHUNK bytes, the
 * last one shorter; an empty message is one empty chunk.
 */
static int
frame_consistent(const struct frame *f)
{
	uint64_t count, last;

	if (f->flags & ~FRAME_F_PACKED)
		return 0;
	if (f->flags & FRAME_F_PACKED)
		return f->type == FRAME_DATA && f->count == 1 && f->index == 0 &&
		    f->kind == 0 && f->total == f->len;
	if (f->type == FRAME_ACK || f->type == FRAME_NACK)
		return f->len == 0 && f->index < f->count;
	if (f->type != FRAME_DATA || f->count == 0 || f->index >= f->count)
		return 0;
	count = f->total ? (f->total + FRAME_CHUNK - 1) / FRAME_CHUNK : 1;
	if (count != f->count)
		return 0;
	last = f->total - (count - 1) * FRAME_CHUNK;
	return f->len == (f->index + 1 == f->count ? last : FRAME_CHUNK);
}

int
frame_open(const uint8_t *p, size_t n, uint64_t cluster, uint64_t to,
    const uint8_t *key, size_t keylen, struct frame *f)
{
	uint8_t mac[FRAME_MACLEN];
	size_t len;

	memset(f, 0, sizeof(*f));
	if (keylen < FRAME_KEY_MIN)
		return FRAME_EKEY;
	if (n < FRAME_OVERHEAD || n > FRAME_MAX)
		return FRAME_ESHORT;
	len = mom_le_get32(p + 64);
	if (len != n - FRAME_OVERHEAD)
		return FRAME_ESHORT;
	if (p[0] != FRAME_VERSION)
		return FRAME_EVERSION;
	frame_parse(p, f);
	if (frame_mac(p, FRAME_HDR + len, key, keylen, mac) ||
	    CRYPTO_memcmp(mac, p + FRAME_HDR + len, FRAME_MACLEN) != 0)
		return FRAME_EMAC;
	if (f->cluster != cluster)
		return FRAME_ECLUSTER;
	if (f->to != to)
		return FRAME_ETO;
	if (!frame_consistent(f))
		return FRAME_EBAD;
	return FRAME_OK;
}

size_t
frame_part_put(uint8_t *out, uint8_t kind, uint32_t group, const void *data, uint32_t len)
{
	out[0] = kind;
	mom_le_put32(out + 1, group);
	mom_le_put32(out + 5, len);
	if (len)
		memcpy(out + FRAME_PART_HDR, data, len);
	return FRAME_PART_HDR + (size_t)len;
}

int
frame_part_next(const uint8_t *p, size_t n, size_t *off, struct frame_part *part)
{
	size_t at = *off;

	if (at >= n)
		return at == n ? 0 : -1;
	if (n - at < FRAME_PART_HDR)
		return -1;
	part->kind = p[at];
	part->group = mom_le_get32(p + at + 1);
	part->len = mom_le_get32(p + at + 5);
	if (part->len > n - at - FRAME_PART_HDR)
		return -1;
	part->data = p + at + FRAME_PART_HDR;
	*off = at + FRAME_PART_HDR + part->len;
	return 1;
}

const char *
frame_strerror(int e)
{
	switch (e) {
	case FRAME_OK:
		return "ok";
	case FRAME_ESHORT:
		return "truncated frame";
	case FRAME_EVERSION:
		return "unknown frame version";
	case FRAME_EMAC:
		return "bad MAC";
	case FRAME_ECLUSTER:
		return "foreign cluster";
	case FRAME_ETO:
		return "addressed to another node";
	case FRAME_EBAD:
		return "inconsistent frame";
	case FRAME_EKEY:
		return "cluster key too short";
	}
	return "unknown frame error";
}

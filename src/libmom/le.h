/*
 * le.h: little-endian integers in byte buffers, as the log, the
 * snapshot and the metadata files store them.  Pure, inline.
 */
#ifndef MOM_LE_H
#define MOM_LE_H

#include <stdint.h>

/* The low n bytes of v (n <= 8), least significant first. */
static inline void
mom_le_put(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t
mom_le_get(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void
mom_le_put32(uint8_t *p, uint32_t v)
{
	mom_le_put(p, v, 4);
}

static inline void
mom_le_put64(uint8_t *p, uint64_t v)
{
	mom_le_put(p, v, 8);
}

static inline uint32_t
mom_le_get32(const uint8_t *p)
{
	return (uint32_t)mom_le_get(p, 4);
}

static inline uint64_t
mom_le_get64(const uint8_t *p)
{
	return mom_le_get(p, 8);
}

#endif

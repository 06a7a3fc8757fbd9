/*
 * snap_fuzz.c: libFuzzer target for the fsm snapshot reader.
 *
 * The input is restored into an fsm that already holds a state of its own.
 * Sanitizers catch reads out of bounds and leaks; the checks here catch a
 * reader that contradicts itself: a refused snapshot must leave the target
 * exactly as it was, and an accepted one must snapshot to bytes that
 * restore again to the same bytes.  Since most inputs die at the CRC, the
 * target also tries each input with its CRC made right, so that the parser
 * behind it is reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "state/fsm.h"
#include "crc32c.h"
#include "mom.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct fsm *
target(void)
{
	static const char cmd[] = "{\"op\":\"queue.create\",\"name\":\"mine\"}";
	struct fsm_config cfg;
	struct fsm       *f;
	struct mom_buf    b;
	struct fsm_result res;

	memset(&cfg, 0, sizeof(cfg));
	if ((f = fsm_new(&cfg)) == NULL)
		abort();
	mom_buf_init(&b);
	fsm_cmd_encode(&b, CMD_ADMIN, 1, cmd, sizeof(cmd) - 1);
	fsm_apply(f, b.data, b.len, &res);
	json_decref(res.json);
	mom_buf_fini(&b);
	return f;
}

static void
check(const uint8_t *in, size_t n)
{
	struct fsm    *f = target(), *g;
	struct mom_buf before, after, again;
	size_t         it;
	void          *v;
	int            rv;

	mom_buf_init(&before);
	mom_buf_init(&after);
	mom_buf_init(&again);
	if (fsm_snapshot(f, &before) != 0)
		abort();
	rv = fsm_restore(f, in, n);
	if (rv != 0 && rv != MOM_EBADDATA && rv != MOM_ENOMEM)
		abort();
	if (fsm_snapshot(f, &after) != 0)
		abort();
	if (rv != 0) {
		if (after.len != before.len || memcmp(after.data, before.data, after.len) != 0)
			abort(); /* refused, yet changed */
	} else {
		/* Accepted: its own snapshot is a fixed point. */
		if ((g = fsm_new(&f->cfg)) == NULL || fsm_restore(g, after.data, after.len) != 0 ||
		    fsm_snapshot(g, &again) != 0 || again.len != after.len ||
		    memcmp(again.data, after.data, after.len) != 0)
			abort();
		/* And its timers run on it (no overflow whatever its times). */
		for (it = 0; smap_next(&g->queues, &it, &v);)
			mq_tick(&((struct queue *)v)->mq, INT64_MAX / 2);
		for (it = 0; smap_next(&g->subs, &it, &v);)
			mq_tick(&((struct sub *)v)->mq, INT64_MAX / 2);
		fsm_tick(g, INT64_MAX / 2);
		fsm_tick(g, INT64_MAX);
		fsm_free(g);
	}
	mom_buf_fini(&before);
	mom_buf_fini(&after);
	mom_buf_fini(&again);
	fsm_free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *b, size_t n)
{
	uint8_t *c;
	uint32_t crc;

	check(b, n);
	if (n < 20 || (c = malloc(n)) == NULL)
		return 0;
	memcpy(c, b, n);
	crc = mom_crc32c(0, c, n - 4);
	c[n - 4] = (uint8_t)crc;
	c[n - 3] = (uint8_t)(crc >> 8);
	c[n - 2] = (uint8_t)(crc >> 16);
	c[n - 1] = (uint8_t)(crc >> 24);
	check(c, n);
	free(c);
	return 0;
}

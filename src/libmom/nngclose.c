/*
 * nngclose.c: nng_close in a thread of its own, waited for a bounded time
 * (see nngclose.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "mom.h"
#include "nngclose.h"

struct closer {
	nng_socket      sock;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            done;
	int             refs;
};

static void
closer_unref(struct closer *c)
{
	bool last;

	pthread_mutex_lock(&c->mu);
	last = --c->refs == 0;
	pthread_mutex_unlock(&c->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void *
closer_main(void *arg)
{
	struct closer *c = arg;

	nng_close(c->sock);
	pthread_mutex_lock(&c->mu);
	c->done = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	closer_unref(c);
	return NULL;
}

bool
mom_nng_close_within(nng_socket s, int ms)
{
	struct closer  *c;
	struct timespec ts;
	pthread_attr_t  a;
	pthread_t       t;
	int             rc = 0;
	bool            done;

	if (!(c = calloc(1, sizeof(*c)))) {
		nng_close(s);
		return true;
	}
	c->sock = s;
	c->refs = 2;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, closer_main, c) != 0) {
		pthread_attr_destroy(&a);
		c->refs = 1;
		closer_main(c);
		return true;
	}
	pthread_attr_destroy(&a);
	mom_timespec_in(&ts, CLOCK_REALTIME, ms);
	pthread_mutex_lock(&c->mu);
	while (!c->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	done = c->done;
	pthread_mutex_unlock(&c->mu);
	closer_unref(c);
	return done;
}

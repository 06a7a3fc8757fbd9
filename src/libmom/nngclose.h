/*
 * nngclose.h: nng_close, bounded.
 *
 * nng 1.5.2's close of a socket sometimes never returns when the peer
 * closes its end at the same moment (the cluster links: a stress loop of
 * two links stopped together hung within 40 rounds; a client whose
 * brokers both answered "unavailable" hung after its last word in about
 * 1 run of 20, until killed).  mom_nng_close_within closes in a thread of
 * its own and waits at most ms: false when the close did not finish, and
 * the thread is left behind (nng may still call the socket's callbacks
 * and aios: the caller must leave what they use alone).
 */
#ifndef MOM_NNGCLOSE_H
#define MOM_NNGCLOSE_H

#include <stdbool.h>

#include <nng/nng.h>

bool mom_nng_close_within(nng_socket s, int ms);

#endif

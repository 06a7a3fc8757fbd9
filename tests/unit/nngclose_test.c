/*
 * nngclose_test.c: the bounded close returns when nng's close does.  (The
 * hang it bounds is a race inside nng 1.5.2 that no test can call up at
 * will; use-failover.bats met it in about 1 run of 20 before.)
 */
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "mom.h"
#include "nngclose.h"

Test(nngclose, sockets_with_a_connection_close_at_once)
{
	nng_socket rep, req;

	cr_assert_eq(nng_rep0_open(&rep), 0);
	cr_assert_eq(nng_req0_open(&req), 0);
	cr_assert_eq(nng_listen(rep, "inproc://nngclose", NULL, 0), 0);
	cr_assert_eq(nng_dial(req, "inproc://nngclose", NULL, 0), 0);
	cr_assert(mom_nng_close_within(req, 5000));
	cr_assert(mom_nng_close_within(rep, 5000));
	/* Closed already: nng says so at once, and that is done too. */
	cr_assert(mom_nng_close_within(req, 5000));
}

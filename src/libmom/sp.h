/*
 * sp.h: one request and its reply over the SP protocol on a plain TCP
 * socket, without nng.
 *
 * Starting nng costs a process about 2.5 ms (a dozen threads, a resolver)
 * before the first byte is sent: more than the whole run of an MQTT
 * client.  A one-shot command (mom-pub -m) sends one request, so it first
 * tries this direct path; when it cannot get an answer this way, for any
 * reason, it falls back to the full client (failover, reconnects), which
 * may send the same request again: publishes are idempotent (producer id
 * and sequence), so that is safe.
 *
 * The wire format is nng's (the SP TCP mapping): an 8-byte handshake
 * "\0SP\0" + protocol (u16 BE: req0 = 0x30, rep0 = 0x31) + 2 zero bytes,
 * then messages as u64 BE length + body; a req0 body starts with a 32-bit
 * BE request id with its top bit set, which the reply echoes.
 */
#ifndef MOM_SP_H
#define MOM_SP_H

#include <stddef.h>
#include <stdint.h>

/*
 * Sends req to url ("tcp://host:port" only) and waits up to timeout_ms.
 * Returns 0 with the reply body (malloc'd, request id removed) in *rep,
 * -2 when the server took the request but did not answer in time, or -1
 * when this path could not get an answer for another reason (refused,
 * not tcp://, anything unexpected): the caller then uses the full client.
 */
int mom_sp_call(const char *url, const char *token, const uint8_t *req, size_t len, int64_t timeout_ms,
    uint8_t **rep, size_t *replen);

#endif

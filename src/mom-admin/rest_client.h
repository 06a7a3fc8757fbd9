/*
 * rest_client.h: mom-admin's connection to brokers over their HTTP API
 * (http:// and https:// server URLs), through libcurl.
 */
#ifndef REST_CLIENT_H
#define REST_CLIENT_H

#include <stdint.h>

#include <jansson.h>

#include "cli.h"

struct rest_client;

/*
 * Checks the server list (every URL http:// or https://) and prepares
 * the requests' headers (the token as "Authorization: Bearer") and TLS
 * options from cli, which is borrowed for the client's life.  Returns 0,
 * or MOM_EINVAL (bad URL or token) / MOM_ENOMEM with err set.
 */
int  rest_client_open(struct rest_client **, const struct mom_cli *cli, char *err, size_t errlen);
void rest_client_close(struct rest_client *);

/*
 * One admin operation, given as the nng plane's request object (op is
 * borrowed), answered with the reply value the nng plane gives for it
 * (*rep, owned).  Servers are tried in order, starting with the one that
 * answered last: one that cannot be reached or answers 503 passes the
 * request to the next; a busy broker (429) is retried with back-off.
 * The whole call is bounded by timeout_ms.  Returns 0, or an error code
 * with one line in err: the broker's refusal (MOM_ENOENT, MOM_EAUTH, ...),
 * MOM_EUNAVAIL when no server answered, MOM_ETIMEDOUT when time ran out.
 */
int  rest_client_admin(struct rest_client *, const json_t *op, json_t **rep, int64_t timeout_ms,
    char *err, size_t errlen);

#endif

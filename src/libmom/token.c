/*
 * token.c: STUB so the tree links; being replaced by the real module.
 */
#include <stdlib.h>
#include <string.h>

#include "mom.h"
#include "token.h"

struct mom_keyset { int n; };

void mom_claims_free(struct mom_claims *c) { (void)c; }
int mom_claims_copy(struct mom_claims *d, const struct mom_claims *s) { *d = *s; return 0; }
char *mom_claims_json(const struct mom_claims *c) { (void)c; return strdup("{}"); }
bool mom_claims_can_pub(const struct mom_claims *c, const char *n) { (void)c; (void)n; return false; }
bool mom_claims_can_sub(const struct mom_claims *c, const char *n) { (void)c; (void)n; return false; }
int mom_token_preparse(const char *t, size_t l, char *a, size_t al, char *e, size_t el) { (void)t; (void)l; (void)a; (void)al; (void)e; (void)el; return MOM_EAUTH; }
int mom_keyset_load(struct mom_keyset **k, const char *p, char *e, size_t el) { (void)k; (void)p; (void)e; (void)el; return MOM_EINVAL; }
int mom_keyset_parse(struct mom_keyset **k, const char *p, size_t l, char *e, size_t el) { (void)k; (void)p; (void)l; (void)e; (void)el; return MOM_EINVAL; }
void mom_keyset_free(struct mom_keyset *k) { free(k); }
size_t mom_keyset_count(const struct mom_keyset *k) { (void)k; return 0; }
const char *mom_keyset_pem(const struct mom_keyset *k, size_t i) { (void)k; (void)i; return NULL; }
int mom_token_verify(const struct mom_keyset *k, const char *t, size_t l, const struct mom_verify_opts *o, struct mom_claims *c, char *e, size_t el) { (void)k; (void)t; (void)l; (void)o; (void)c; (void)e; (void)el; return MOM_EAUTH; }
int mom_token_sign(const char *k, size_t kl, const struct mom_claims *c, const struct mom_verify_opts *o, char **out, char *e, size_t el) { (void)k; (void)kl; (void)c; (void)o; (void)out; (void)e; (void)el; return MOM_EINVAL; }
void mom_token_digest(const char *t, size_t l, uint8_t out[32]) { (void)t; (void)l; memset(out, 0, 32); }
char *mom_b64url_encode(const uint8_t *p, size_t n) { (void)p; (void)n; return NULL; }
int mom_b64url_decode(const char *s, size_t n, uint8_t **o, size_t *ol) { (void)s; (void)n; (void)o; (void)ol; return -1; }

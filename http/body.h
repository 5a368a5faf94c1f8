/* Request bodies: application/x-www-form-urlencoded (Twilio) and JSON. */
#ifndef NMC_HTTP_BODY_H
#define NMC_HTTP_BODY_H

#include <stddef.h>
#include <jansson.h>
#include "runtime/common.h"

struct nmc_form_pair {
    char *name;   /* decoded ('+' is space, %XX) */
    char *value;  /* decoded */
};
struct nmc_form {
    struct nmc_form_pair *pairs; /* in body order */
    size_t n;
};
/* Parses a form body; 0 or NMC_EPARSE (bad %-escape or NUL). At most
 * max_pairs pairs (NMC_ETOOBIG past it). Free with nmc_form_free. */
NMC_MUST_CHECK int nmc_form_parse(const char *body, size_t len, size_t max_pairs, struct nmc_form *out);
const char *nmc_form_get(const struct nmc_form *f, const char *name); /* first value or NULL */
void nmc_form_free(struct nmc_form *f);
/* Decodes %XX escapes (and '+' as space when plus_is_space) of in[0..len)
 * into out, which must hold len+1 bytes; NUL-terminates and sets *out_len
 * (may be NULL). 0, or NMC_EPARSE on a bad escape or a NUL (raw or %00). */
NMC_MUST_CHECK int nmc_url_decode(const char *in, size_t len, int plus_is_space, char *out, size_t *out_len);
/* Percent-encodes for a form/URL component (RFC 3986 unreserved kept). */
char *nmc_url_encode(const char *s);

/* Parses a JSON body that must be an object. On error returns NULL and
 * writes a message naming the problem (line/column) into err. */
json_t *nmc_json_parse_object(const char *body, size_t len, char *err, size_t errlen);
/* Checks that obj has no keys outside allowed (NULL-terminated); on an
 * unknown key returns NMC_EINVAL and names it in err. */
NMC_MUST_CHECK int nmc_json_check_keys(json_t *obj, const char *const *allowed, char *err, size_t errlen);

#endif

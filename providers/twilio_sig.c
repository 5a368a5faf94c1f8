/* X-Twilio-Signature: HMAC-SHA1 over the URL and the sorted parameters. */
#include "providers/twilio_sig.h"

#include <stdlib.h>
#include <string.h>
#include <mbedtls/base64.h>
#include <mbedtls/md.h>

#define URL_MAX 4096

static int kv_cmp(const void *a, const void *b)
{
    const struct nmc_prov_kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

/* Feeds url and the sorted name/value pairs into an HMAC already started. */
static int mac_update(mbedtls_md_context_t *md, const char *url, const struct nmc_prov_kv *sorted, size_t n)
{
    int rc = mbedtls_md_hmac_update(md, (const unsigned char *)url, strlen(url));
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = mbedtls_md_hmac_update(md, (const unsigned char *)sorted[i].name, strlen(sorted[i].name));
        if (rc == 0)
            rc = mbedtls_md_hmac_update(md, (const unsigned char *)sorted[i].value, strlen(sorted[i].value));
    }
    return rc;
}

static int hmac_sha1(const char *key, const char *url, const struct nmc_prov_kv *sorted, size_t n,
                     unsigned char mac[20])
{
    mbedtls_md_context_t md;
    int rc;

    mbedtls_md_init(&md);
    rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), 1);
    if (rc == 0)
        rc = mbedtls_md_hmac_starts(&md, (const unsigned char *)key, strlen(key));
    if (rc == 0)
        rc = mac_update(&md, url, sorted, n);
    if (rc == 0)
        rc = mbedtls_md_hmac_finish(&md, mac);
    mbedtls_md_free(&md);
    return rc ? NMC_EINVAL : 0;
}

static int params_valid(const struct nmc_prov_kv *params, size_t n)
{
    if (n > 0 && params == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (params[i].name == NULL || params[i].value == NULL)
            return 0;
    return 1;
}

int nmc_prov_twilio_sig_compute(const char *auth_token, const char *url, const struct nmc_prov_kv *params,
                                size_t nparams, char out[NMC_PROV_TWILIO_SIG_LEN])
{
    struct nmc_prov_kv *sorted = NULL;
    unsigned char mac[20];
    size_t olen = 0;
    int rc = NMC_EINVAL;

    if (auth_token == NULL || url == NULL || out == NULL || !params_valid(params, nparams))
        return NMC_EINVAL;
    if (nparams > 0) {
        sorted = nmc_xmalloc(nparams * sizeof(*sorted));
        memcpy(sorted, params, nparams * sizeof(*sorted));
        qsort(sorted, nparams, sizeof(*sorted), kv_cmp);
    }
    if (hmac_sha1(auth_token, url, sorted, nparams, mac) != 0)
        goto out;
    if (mbedtls_base64_encode((unsigned char *)out, NMC_PROV_TWILIO_SIG_LEN, &olen, mac, sizeof(mac)) != 0)
        goto out;
    rc = 0;
out:
    free(sorted);
    return rc;
}

/* Finds the authority of an absolute http(s) URL: [*host_start, *auth_end)
 * after any userinfo, and the port's ':' (or NULL). 0 on success. */
static int split_authority(const char *url, const char **host, const char **end, const char **colon)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return -1;
    p += 3;
    *end = p + strcspn(p, "/?#");
    for (const char *q = p; q < *end; q++)
        if (*q == '@')
            p = q + 1;
    *host = p;
    *colon = NULL;
    for (const char *q = *end; q > p; q--) {
        if (q[-1] == ']')
            break;
        if (q[-1] == ':') {
            *colon = q - 1;
            break;
        }
    }
    return 0;
}

static const char *default_port(const char *url)
{
    if (strncmp(url, "https://", 8) == 0)
        return "443";
    if (strncmp(url, "http://", 7) == 0)
        return "80";
    return NULL;
}

/* Writes url with its port removed (when it has one) or the scheme's
 * default port added (when it has none) into alt. 0, or -1 when there is
 * no such variant. */
static int port_variant(const char *url, char *alt, size_t altlen)
{
    const char *host, *end, *colon, *port = default_port(url);
    int n;

    if (port == NULL || split_authority(url, &host, &end, &colon) != 0)
        return -1;
    if (colon != NULL)
        n = snprintf(alt, altlen, "%.*s%s", (int)(colon - url), url, end);
    else
        n = snprintf(alt, altlen, "%.*s:%s%s", (int)(end - url), url, port, end);
    return n < 0 || (size_t)n >= altlen ? -1 : 0;
}

static int matches(const char *token, const char *url, const struct nmc_prov_kv *params, size_t n,
                   const char *signature)
{
    char want[NMC_PROV_TWILIO_SIG_LEN];

    if (nmc_prov_twilio_sig_compute(token, url, params, n, want) != 0)
        return 0;
    return nmc_ct_equal(want, strlen(want), signature, strlen(signature));
}

int nmc_prov_twilio_sig_valid(const char *auth_token, const char *url, const struct nmc_prov_kv *params,
                              size_t nparams, const char *signature)
{
    char alt[URL_MAX];
    int ok;

    if (auth_token == NULL || *auth_token == '\0' || url == NULL || signature == NULL || *signature == '\0')
        return 0;
    /* the variant only when the URL as given does not match: which of the
     * two matched tells nothing, and a wrong signature tries both */
    ok = matches(auth_token, url, params, nparams, signature);
    if (!ok && port_variant(url, alt, sizeof(alt)) == 0)
        ok = matches(auth_token, alt, params, nparams, signature);
    return ok;
}

int nmc_prov_twilio_sig_valid_form(const char *auth_token, const char *url, const struct nmc_form *form,
                                   const char *signature)
{
    struct nmc_prov_kv *kv = NULL;
    int ok;

    if (form == NULL)
        return 0;
    if (form->n > 0) {
        kv = nmc_xmalloc(form->n * sizeof(*kv));
        for (size_t i = 0; i < form->n; i++)
            kv[i] = (struct nmc_prov_kv){form->pairs[i].name, form->pairs[i].value};
    }
    ok = nmc_prov_twilio_sig_valid(auth_token, url, kv, form->n, signature);
    free(kv);
    return ok;
}

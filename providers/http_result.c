/* Results of provider HTTP calls: classification, headers, freeing. */
#include "providers/http_result.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *nmc_prov_http_kind_name(enum nmc_prov_http_kind k)
{
    static const char *const names[] = {"ok", "http_4xx", "http_5xx", "timeout", "connect",
                                        "too_big", "circuit_open", "canceled", "error"};
    return (unsigned)k < NMC_ARRAY_SIZE(names) ? names[k] : "unknown";
}

const char *nmc_prov_http_result_label(const struct nmc_prov_http_result *r, char buf[8])
{
    switch (r->kind) {
    case NMC_PROV_HTTP_OK:
    case NMC_PROV_HTTP_4XX:
    case NMC_PROV_HTTP_5XX:
        snprintf(buf, 8, "%ld", r->status);
        return buf;
    case NMC_PROV_HTTP_TIMEOUT:
        return "timeout";
    case NMC_PROV_HTTP_CONNECT:
        return "connect_error";
    case NMC_PROV_HTTP_TOOBIG:
        return "too_big";
    case NMC_PROV_HTTP_CIRCUIT:
        return "circuit_open";
    case NMC_PROV_HTTP_CANCELED:
        return "canceled";
    case NMC_PROV_HTTP_OTHER:
        break;
    }
    return "error";
}

void nmc_prov_http_result_set(struct nmc_prov_http_result *r, enum nmc_prov_http_kind kind, int err,
                              const char *why)
{
    r->kind = kind;
    r->err = err;
    if (why != NULL)
        nmc_strlcpy(r->error, why, sizeof(r->error));
}

/* Transport failures: kind and error code by libcurl's result. */
static void classify_transport(struct nmc_prov_http_result *r, CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_TIMEOUT, NMC_ETIMEDOUT, NULL);
        break;
    case CURLE_COULDNT_CONNECT:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_CONNECT, UV_ECONNREFUSED, NULL);
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_CONNECT, UV_EAI_NONAME, NULL);
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_CONNECT, UV_ECONNRESET, NULL);
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_CONNECT, UV_EPROTO, NULL);
        break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_OTHER, NMC_EINVAL, NULL);
        break;
    default:
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_OTHER, NMC_EPROVIDER, NULL);
        break;
    }
}

void nmc_prov_http_result_classify(struct nmc_prov_http_result *r, CURLcode rc, int too_big)
{
    if (too_big || rc == CURLE_FILESIZE_EXCEEDED)
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_TOOBIG, NMC_ETOOBIG, "response over the size cap");
    else if (rc != CURLE_OK)
        classify_transport(r, rc);
    else if (r->status >= 500)
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_5XX, NMC_EPROVIDER, NULL);
    else if (r->status >= 400)
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_4XX, NMC_EPROVIDER, NULL);
    else
        nmc_prov_http_result_set(r, NMC_PROV_HTTP_OK, 0, NULL);
    if (rc != CURLE_OK && r->error[0] == '\0')
        nmc_strlcpy(r->error, curl_easy_strerror(rc), sizeof(r->error));
}

int nmc_prov_http_result_retryable(const struct nmc_prov_http_result *r)
{
    switch (r->kind) {
    case NMC_PROV_HTTP_5XX:
    case NMC_PROV_HTTP_TIMEOUT:
    case NMC_PROV_HTTP_CONNECT:
        return 1;
    case NMC_PROV_HTTP_4XX:
        return r->status == 429;
    default:
        return 0;
    }
}

static char *trimmed(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return nmc_xstrndup(s, n);
}

/* Adds one "Name: value" line (no CRLF). A line without a name, or with a
 * NUL (no valid field has one, RFC 9110 section 5.5; the copy would stop at
 * it), is skipped. */
static void add_line(struct nmc_prov_http_result *r, const char *line, size_t n, size_t *cap)
{
    const char *colon = memchr(line, ':', n);
    struct nmc_prov_http_header *h;

    if (colon == NULL || colon == line || memchr(line, '\0', n) != NULL)
        return;
    if (r->nheaders == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        r->headers = nmc_xrealloc(r->headers, *cap * sizeof(*r->headers));
    }
    h = &r->headers[r->nheaders++];
    h->name = trimmed(line, (size_t)(colon - line));
    for (char *p = h->name; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    h->value = trimmed(colon + 1, n - (size_t)(colon - line) - 1);
}

void nmc_prov_http_result_parse_headers(struct nmc_prov_http_result *r, const char *block, size_t len)
{
    size_t cap = 0;

    while (len > 0) {
        const char *nl = memchr(block, '\n', len);
        size_t n = nl ? (size_t)(nl - block) : len;
        size_t linelen = n > 0 && block[n - 1] == '\r' ? n - 1 : n;
        if (linelen > 0 && !(linelen >= 5 && memcmp(block, "HTTP/", 5) == 0))
            add_line(r, block, linelen, &cap);
        block += n + (nl ? 1 : 0);
        len -= n + (nl ? 1 : 0);
    }
}

const char *nmc_prov_http_result_header(const struct nmc_prov_http_result *r, const char *name)
{
    for (size_t i = 0; r != NULL && i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

void nmc_prov_http_result_free(struct nmc_prov_http_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->body);
    free(r);
}

void nmc_prov_http_result_free_payload(void *payload)
{
    nmc_prov_http_result_free(payload);
}

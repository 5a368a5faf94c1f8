/* Private to providers/http*.c: building and classifying call results. */
#ifndef NMC_PROVIDERS_HTTP_RESULT_H
#define NMC_PROVIDERS_HTTP_RESULT_H

#include <curl/curl.h>
#include "providers/http.h"

/* Sets kind, err and (when why is not NULL) the error text. */
void nmc_prov_http_result_set(struct nmc_prov_http_result *r, enum nmc_prov_http_kind kind, int err,
                              const char *why);
/* Sets kind and err from libcurl's rc, the body-cap flag and r->status. */
void nmc_prov_http_result_classify(struct nmc_prov_http_result *r, CURLcode rc, int too_big);
/* 1 for 5xx, 429, timeouts and connection errors. */
int nmc_prov_http_result_retryable(const struct nmc_prov_http_result *r);
/* Fills r->headers from a raw header block (status lines skipped). */
void nmc_prov_http_result_parse_headers(struct nmc_prov_http_result *r, const char *block, size_t len);
/* The status label of the requests metric: the code or a failure name. */
const char *nmc_prov_http_result_label(const struct nmc_prov_http_result *r, char buf[8]);

#endif

/* Twilio Messages client (SMS send).
 *
 * POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json, form-
 * encoded To, From (or MessagingServiceSid when the message has no From),
 * Body, StatusCallback; Basic auth AccountSid:AuthToken. A 201 answer is
 * parsed for sid and status; a Twilio error body ({"code":21610,
 * "message":...}) for its code and message, so callers can act (21610:
 * the recipient replied STOP). 4xx answers are never retried; 5xx, 429,
 * timeouts and connection errors are (providers/http.h), and every call
 * goes through the "twilio" circuit breaker of the http client (runbook
 * preset, created on first use).
 *
 * Async contract (conventions 6): nmc_prov_twilio_send_sms() returning
 * nonzero means nothing is delivered; 0 means exactly one
 * NMC_MSG_PROV_TWILIO_SMS message with a struct nmc_prov_twilio_sms_result
 * payload reaches reply_to later, never from inside the call. */
#ifndef NMC_PROVIDERS_TWILIO_H
#define NMC_PROVIDERS_TWILIO_H

#include <stdint.h>
#include "providers/http.h"
#include "runtime/actor.h"
#include "runtime/buf.h"
#include "runtime/common.h"

struct nmc_prov_twilio;
struct nmc_prov_breaker;

/* Twilio error codes callers switch on. */
#define NMC_PROV_TWILIO_ERR_INVALID_TO 21211   /* 'To' number is not a valid phone number */
#define NMC_PROV_TWILIO_ERR_UNSUBSCRIBED 21610 /* recipient opted out (STOP) */
#define NMC_PROV_TWILIO_ERR_NO_BODY 21602      /* message body is required */

struct nmc_prov_twilio_opts {
    const char *api_base;              /* "https://api.twilio.com" (no trailing path) */
    const char *account_sid;           /* "AC..." letters and digits only */
    const char *auth_token;            /* secret: never logged */
    const char *messaging_service_sid; /* "MG...", used when a message has no From; may be NULL */
    int timeout_ms;                    /* per attempt, 0: the http client's */
    int max_attempts;                  /* 0: the http client's */
    double baseline_p95_ms;            /* breaker latency baseline, 0: latency rule off */
    int breaker_off;                   /* 1: no circuit breaker (tests of raw behaviour) */
};

struct nmc_prov_twilio_sms {
    const char *to;              /* E.164 */
    const char *from;            /* E.164 sender, or NULL for the messaging service */
    const char *body;
    const char *status_callback; /* absolute URL or NULL */
};

struct nmc_prov_twilio_sms_result {
    int err;                      /* 0 (accepted); NMC_EPROVIDER (Twilio error, see code);
                                     NMC_EPARSE (2xx without sid/status); else as http */
    enum nmc_prov_http_kind kind;
    long http_status;
    char sid[40];                 /* "SM..." on success */
    char status[24];              /* "queued", "accepted", ... on success (an undocumented status reads "accepted") */
    int code;                     /* Twilio error code, 0 when none */
    char message[256];            /* Twilio's error message or the transport error */
    int attempts;
    double latency_ms;            /* last attempt */
    double total_ms;
};

/* Creates a client on http (borrowed; must outlive it). Strings are
 * copied. NMC_EINVAL when api_base, account_sid or auth_token is missing
 * or account_sid is not alphanumeric. */
NMC_MUST_CHECK int nmc_prov_twilio_create(struct nmc_prov_http *http, const struct nmc_prov_twilio_opts *o,
                                          struct nmc_prov_twilio **out);
/* Frees the client; calls in flight still complete (they copied what
 * they need). Accepts NULL. */
void nmc_prov_twilio_destroy(struct nmc_prov_twilio *t);
/* The "twilio" breaker, owned by the http client (NULL when breaker_off). */
struct nmc_prov_breaker *nmc_prov_twilio_breaker(struct nmc_prov_twilio *t);

/* Sends one SMS. parent (may be NULL) gives tenant, correlation ids and
 * trace to the call and its completion; cookie is echoed; *id (may be
 * NULL) is for nmc_prov_http_cancel(). 0, or NMC_EINVAL (no to or body, or
 * neither from nor a messaging service), or NMC_ESHUTDOWN. */
NMC_MUST_CHECK int nmc_prov_twilio_send_sms(struct nmc_prov_twilio *t, const struct nmc_prov_twilio_sms *sms,
                                            struct nmc_actor *reply_to, const struct nmc_msg *parent,
                                            uint64_t cookie, uint64_t *id);

/* The form body send_sms posts (exposed for golden-file tests). */
NMC_MUST_CHECK int nmc_prov_twilio_form(const struct nmc_prov_twilio *t, const struct nmc_prov_twilio_sms *sms,
                                        struct nmc_buf *out);
/* Fills out from an HTTP result of the Messages endpoint. */
void nmc_prov_twilio_sms_result_parse(const struct nmc_prov_http_result *r, struct nmc_prov_twilio_sms_result *out);

#endif

/* nmc-fakes: provider emulator speaking the providers' real wire formats
 * (Twilio Messages today), with latency, 5xx and timeout injection, signed
 * status callbacks and a recording of what it accepted. Private to
 * cmd/fakes*.c. */
#ifndef NMC_CMD_FAKES_H
#define NMC_CMD_FAKES_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>
#include "http/server.h"
#include "providers/http.h"
#include "runtime/actor.h"

struct fakes_opts {
    const char *bind;
    int port;
    int latency_ms;
    double fail_rate;          /* share answered 500 */
    double timeout_rate;       /* share never answered */
    const char *auth_token;
    const char *account_sid;   /* NULL: any AC... sid whose Basic auth matches */
    int status_callbacks;
    const char **unsubscribed; /* numbers answered with 21610 */
    size_t nunsubscribed;
    const char *jwks_path;
    size_t max_records;
    int callback_delay_ms;     /* between accept, "sent" and "delivered" */
    int timeout_after_accept;  /* timeouts swallow the answer, not the request */
};

/* One accepted message. */
struct fakes_msg {
    char sid[35];
    char status[16];           /* queued|accepted, then sent, delivered with callbacks */
    char *account_sid, *to, *from, *messaging_service_sid, *body, *status_callback;
    int64_t received_at_ns;
};

struct fakes_stats {
    uint64_t requests, accepted, auth_failures, invalid, unsubscribed;
    uint64_t injected_5xx, injected_timeouts, callbacks_sent, callbacks_failed, records_dropped;
};

struct fakes {
    struct fakes_opts o;
    uv_loop_t *loop;
    struct nmc_http_server *server;
    struct nmc_rt *rt;
    struct nmc_actor *callbacks_actor;  /* receives status-callback completions */
    struct nmc_prov_http *http;
    struct fakes_msg *msgs;
    size_t nmsgs, cap;
    struct fakes_stats stats;
    char *jwks;                         /* file contents or NULL */
    size_t jwks_len;
    int stopping;                       /* set on SIGTERM: delayed work answers nothing */
};

/* cmd/fakes_twilio.c: registers the Twilio routes on f->server. 0 or NMC_EINVAL. */
int fakes_twilio_routes(struct fakes *f);

/* cmd/fakes_store.c: the recording of accepted messages. */
struct nmc_form;
/* Fills m from an accepted form (new sid, status, time); strings owned by m. */
void fakes_store_fill(struct fakes_msg *m, const char *account_sid, const struct nmc_form *form);
/* Keeps m (moved in) and returns its index, or frees it and returns
 * SIZE_MAX when --max-records is reached (counted as dropped). */
size_t fakes_store_add(struct fakes *f, struct fakes_msg *m);
/* The message at index if it still has sid (clears move indexes), else NULL. */
struct fakes_msg *fakes_store_find(struct fakes *f, size_t index, const char *sid);
void fakes_store_clear(struct fakes *f);
void fakes_msg_free(struct fakes_msg *m);
/* Twilio's Message resource for m, as create and list answer it. */
json_t *fakes_store_resource(const struct fakes_msg *m);
/* The /_fakes/messages view of m. */
json_t *fakes_store_record(const struct fakes_msg *m);

/* cmd/fakes_callbacks.c: signed status callbacks ("sent", "delivered"). */
void fakes_callbacks_schedule(struct fakes *f, size_t index, const struct fakes_msg *m);
/* Handles a status-callback completion message (callbacks actor). */
void fakes_callbacks_on_done(struct fakes *f, const struct nmc_msg *m);

#endif

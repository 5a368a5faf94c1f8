/* nmc-fakes: provider emulator speaking the providers' real wire formats
 * (Twilio Messages today), with latency, 5xx and timeout injection, signed
 * status callbacks and a recording of what it accepted. Private to
 * cmd/fakes*.c. */
#ifndef NMC_CMD_FAKES_H
#define NMC_CMD_FAKES_H

#include <stddef.h>
#include <stdint.h>
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
};

/* One accepted message. */
struct fakes_msg {
    char sid[35];
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

/* Registers the Twilio routes on f->server. 0 or NMC_EINVAL. */
int fakes_twilio_routes(struct fakes *f);
/* Handles a status-callback completion message (callbacks actor). */
void fakes_twilio_on_callback_done(struct fakes *f, const struct nmc_msg *m);
/* Frees the recorded messages. */
void fakes_msgs_clear(struct fakes *f);

#endif

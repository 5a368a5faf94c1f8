/* Configuration from the environment (spec 002 section 3), validated at
 * start-up. A bad value stops the process with a message naming the
 * variable (exit code 2). Secrets are held here and never logged. */
#ifndef NMC_RUNTIME_CONFIG_H
#define NMC_RUNTIME_CONFIG_H

#include <stdint.h>
#include <stddef.h>
#include "runtime/common.h"
#include "runtime/log.h"

enum nmc_role { NMC_ROLE_ALL = 0, NMC_ROLE_WEB, NMC_ROLE_WORKER };

struct nmc_config {
    /* core */
    char *database_url;          /* DATABASE_URL (required for serve/migrate) */
    int db_pool_size;            /* DB_POOL_SIZE=8, 1..64 */
    int db_query_timeout_ms;     /* DB_QUERY_TIMEOUT_MS=5000 */
    char *secret_key;            /* SECRET_KEY */
    int port;                    /* PORT=8080 */
    char *bind_addr;             /* BIND_ADDR=0.0.0.0 */
    char *public_base_url;       /* PUBLIC_BASE_URL=http://localhost:PORT */
    enum nmc_role role;          /* from --role */
    /* http */
    int64_t http_max_body_bytes; /* HTTP_MAX_BODY_BYTES=1048576 */
    int http_header_timeout_ms;  /* HTTP_HEADER_TIMEOUT_MS=10000 */
    int http_idle_timeout_ms;    /* HTTP_IDLE_TIMEOUT_MS=60000 */
    int http_max_connections;    /* HTTP_MAX_CONNECTIONS=10000 */
    /* logging, metrics, tracing */
    enum nmc_log_level log_level;/* LOG_LEVEL=info */
    int log_message_body_prefix; /* LOG_MESSAGE_BODY_PREFIX=false */
    char *metrics_basic_auth;    /* METRICS_BASIC_AUTH=user:pass (secret) */
    char *metrics_allow_cidrs;   /* METRICS_ALLOW_CIDRS=comma-separated CIDRs */
    char *otel_endpoint;         /* OTEL_EXPORTER_OTLP_ENDPOINT */
    double trace_sample_ratio;   /* TRACE_SAMPLE_RATIO=0.1 */
    char *admin_api_key;         /* ADMIN_API_KEY (secret) */
    /* twilio */
    char *twilio_account_sid;    /* TWILIO_ACCOUNT_SID */
    char *twilio_auth_token;     /* TWILIO_AUTH_TOKEN (secret) */
    char *twilio_messaging_service_sid; /* TWILIO_MESSAGING_SERVICE_SID */
    char *twilio_api_base;       /* TWILIO_API_BASE=https://api.twilio.com */
    int provider_timeout_ms;     /* PROVIDER_TIMEOUT_MS=10000 */
    /* stripe, google, jobber */
    char *stripe_secret_key, *stripe_webhook_secret, *stripe_api_base;
    char *google_client_id, *google_client_secret;
    char *jobber_api_token;
    /* clerk */
    char *clerk_jwt_issuer, *clerk_jwt_audience, *clerk_jwks_url;
    /* tuning and flags */
    int hold_ttl_minutes;              /* HOLD_TTL_MINUTES=15 */
    int search_granularity_minutes;    /* SEARCH_GRANULARITY_MINUTES=15 */
    int poll_interval_google_seconds;  /* POLL_INTERVAL_GOOGLE_SECONDS=60 */
    int poll_interval_jobber_seconds;  /* POLL_INTERVAL_JOBBER_SECONDS=120 */
    int outbox_batch_size;             /* OUTBOX_BATCH_SIZE=100 */
    int outbox_concurrency;            /* OUTBOX_CONCURRENCY=2 */
    int outbox_max_attempts;           /* OUTBOX_MAX_ATTEMPTS=10 */
    int outbox_poll_interval_ms;       /* OUTBOX_POLL_INTERVAL_MS=1000 */
    int pause_outbound_sms;            /* PAUSE_OUTBOUND_SMS=false */
    int treat_short_completed_as_missed; /* TREAT_SHORT_COMPLETED_AS_MISSED=false */
    int short_completed_max_seconds;   /* SHORT_COMPLETED_MAX_SECONDS=10 */
    int first_sms_repeat_window_minutes; /* FIRST_SMS_REPEAT_WINDOW_MINUTES=60 */
    /* operator tuning knobs (validated here; see nmc --help) */
    int outbox_lease_ms;                 /* NMC_OUTBOX_LEASE_MS=30000 */
    int sms_ambiguous_wait_ms;           /* NMC_SMS_AMBIGUOUS_WAIT_MS=30000 */
    int sms_provider_hold_retry_ms;      /* NMC_SMS_PROVIDER_HOLD_RETRY_MS=60000 */
    int sms_provider_hold_max_minutes;   /* NMC_SMS_PROVIDER_HOLD_MAX_MINUTES=1440 */
    int sms_compliance_hold_max_minutes; /* NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES=1440 */
    int twilio_breaker_open_ms;          /* NMC_TWILIO_BREAKER_OPEN_MS=120000 */
    int twilio_breaker_close_after_ms;   /* NMC_TWILIO_BREAKER_CLOSE_AFTER_MS=300000 */
    int twilio_breaker_half_open_percent;/* NMC_TWILIO_BREAKER_HALF_OPEN_PERCENT=10 */
    int reporting_sweep_ms;              /* NMC_REPORTING_SWEEP_MS=30000 */
    int reporting_rollup_ms;             /* NMC_REPORTING_ROLLUP_MS=5000 */
};

typedef const char *(*nmc_getenv_cb)(const char *name, void *ud);

/* Loads and validates every variable through get (NULL: getenv). On error
 * returns NMC_EINVAL and writes "NAME: reason" into err. The config owns
 * its strings; free with nmc_config_free(). */
NMC_MUST_CHECK int nmc_config_load(struct nmc_config *c, nmc_getenv_cb get, void *ud, char *err, size_t errlen);
void nmc_config_free(struct nmc_config *c);

/* Parsers shared with the loader, exposed for tests. */
NMC_MUST_CHECK int nmc_config_parse_bool(const char *s, int *out);

/* One row per variable, for --help and the README: name, default, meaning. */
struct nmc_config_var {
    const char *name;
    const char *def; /* NULL: no default */
    const char *help;
    int secret;
};
const struct nmc_config_var *nmc_config_vars(size_t *n);

#endif

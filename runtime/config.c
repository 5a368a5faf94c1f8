/* Configuration from the environment, validated at start-up (runtime/config.h).
 *
 * One table (CONFIG_VARS) drives the loader, --help and the README: each row
 * names the variable, its default, a help line, whether it is a secret, how
 * to parse it and where it lands in struct nmc_config. Defaults go through
 * the same parser as user values, so a bad default cannot slip in. An unset
 * or empty variable takes its default; optional strings without a default
 * stay NULL. */
#include "runtime/config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cidr.h"

enum kind {
    K_STR,      /* char *, any text */
    K_URL,      /* char *, http(s)://..., one trailing slash stripped */
    K_BASE_URL, /* K_URL whose default is http://localhost:<PORT> */
    K_INT,      /* int in [min,max] */
    K_I64,      /* int64_t in [min,max] */
    K_MINUTES_OF_DAY, /* K_INT that must also divide 1440 */
    K_BOOL,     /* int 0/1 */
    K_RATIO,    /* double in [0,1] */
    K_LOG_LEVEL,/* enum nmc_log_level */
    K_USERPASS, /* char *, "user:password" */
    K_CIDRS     /* char *, comma-separated CIDR list */
};

struct rule {
    enum kind kind;
    size_t off;
    int64_t min, max;
};

#define MS_HOUR 3600000

/* X(name, default, help, secret, kind, field, min, max). PORT comes before
 * PUBLIC_BASE_URL, whose default is built from it. */
#define CONFIG_VARS(X)                                                                                         \
    X("DATABASE_URL", NULL, "PostgreSQL connection string (required by serve and migrate)", 1, K_STR,          \
      database_url, 0, 0)                                                                                       \
    X("DB_POOL_SIZE", "8", "database connections in the pool (1..64)", 0, K_INT, db_pool_size, 1, 64)          \
    X("DB_QUERY_TIMEOUT_MS", "5000", "per-query timeout in ms", 0, K_INT, db_query_timeout_ms, 1, MS_HOUR)    \
    X("SECRET_KEY", NULL, "server secret for signed tokens", 1, K_STR, secret_key, 0, 0)                        \
    X("PORT", "8080", "HTTP listen port", 0, K_INT, port, 1, 65535)                                            \
    X("BIND_ADDR", "0.0.0.0", "HTTP listen address", 0, K_STR, bind_addr, 0, 0)                                 \
    X("PUBLIC_BASE_URL", "http://localhost:<PORT>", "public URL of this service (webhook signatures)", 0,     \
      K_BASE_URL, public_base_url, 0, 0)                                                                        \
    X("HTTP_MAX_BODY_BYTES", "1048576", "largest request body accepted (1024..67108864)", 0, K_I64,            \
      http_max_body_bytes, 1024, 67108864)                                                                     \
    X("HTTP_HEADER_TIMEOUT_MS", "10000", "time allowed to receive request headers", 0, K_INT,                 \
      http_header_timeout_ms, 1, MS_HOUR)                                                                      \
    X("HTTP_IDLE_TIMEOUT_MS", "60000", "keep-alive idle timeout", 0, K_INT, http_idle_timeout_ms, 1,           \
      24 * MS_HOUR)                                                                                            \
    X("HTTP_MAX_CONNECTIONS", "10000", "concurrent HTTP connections", 0, K_INT, http_max_connections, 1,      \
      1000000)                                                                                                 \
    X("LOG_LEVEL", "info", "trace, debug, info, warn or error", 0, K_LOG_LEVEL, log_level, 0, 0)                \
    X("LOG_MESSAGE_BODY_PREFIX", "false", "log the first 50 characters of SMS bodies", 0, K_BOOL,              \
      log_message_body_prefix, 0, 0)                                                                            \
    X("METRICS_BASIC_AUTH", NULL, "user:password guarding /metrics", 1, K_USERPASS, metrics_basic_auth, 0, 0)   \
    X("METRICS_ALLOW_CIDRS", NULL, "comma-separated CIDRs allowed to read /metrics", 0, K_CIDRS,               \
      metrics_allow_cidrs, 0, 0)                                                                                \
    X("OTEL_EXPORTER_OTLP_ENDPOINT", NULL, "OTLP/HTTP endpoint for traces (unset: no export)", 0, K_URL,       \
      otel_endpoint, 0, 0)                                                                                      \
    X("TRACE_SAMPLE_RATIO", "0.1", "head sampling ratio for traces (0..1); errors are always kept", 0,         \
      K_RATIO, trace_sample_ratio, 0, 0)                                                                        \
    X("ADMIN_API_KEY", NULL, "key for the admin API", 1, K_STR, admin_api_key, 0, 0)                            \
    X("TWILIO_ACCOUNT_SID", NULL, "Twilio account SID", 0, K_STR, twilio_account_sid, 0, 0)                     \
    X("TWILIO_AUTH_TOKEN", NULL, "Twilio auth token (API auth and webhook signatures)", 1, K_STR,              \
      twilio_auth_token, 0, 0)                                                                                  \
    X("TWILIO_MESSAGING_SERVICE_SID", NULL, "Twilio messaging service SID", 0, K_STR,                          \
      twilio_messaging_service_sid, 0, 0)                                                                       \
    X("TWILIO_API_BASE", "https://api.twilio.com", "Twilio API base URL", 0, K_URL, twilio_api_base, 0, 0)      \
    X("PROVIDER_TIMEOUT_MS", "10000", "total timeout of one provider call", 0, K_INT, provider_timeout_ms, 1,  \
      600000)                                                                                                  \
    X("STRIPE_SECRET_KEY", NULL, "Stripe API key", 1, K_STR, stripe_secret_key, 0, 0)                           \
    X("STRIPE_WEBHOOK_SECRET", NULL, "Stripe webhook signing secret", 1, K_STR, stripe_webhook_secret, 0, 0)    \
    X("STRIPE_API_BASE", "https://api.stripe.com", "Stripe API base URL", 0, K_URL, stripe_api_base, 0, 0)      \
    X("GOOGLE_CLIENT_ID", NULL, "Google OAuth client id", 0, K_STR, google_client_id, 0, 0)                     \
    X("GOOGLE_CLIENT_SECRET", NULL, "Google OAuth client secret", 1, K_STR, google_client_secret, 0, 0)         \
    X("JOBBER_API_TOKEN", NULL, "Jobber API token", 1, K_STR, jobber_api_token, 0, 0)                           \
    X("CLERK_JWT_ISSUER", NULL, "expected iss of owner JWTs", 0, K_STR, clerk_jwt_issuer, 0, 0)                 \
    X("CLERK_JWT_AUDIENCE", NULL, "expected aud of owner JWTs", 0, K_STR, clerk_jwt_audience, 0, 0)             \
    X("CLERK_JWKS_URL", NULL, "JWKS URL for owner JWT keys", 0, K_URL, clerk_jwks_url, 0, 0)                    \
    X("HOLD_TTL_MINUTES", "15", "lifetime of a slot hold (1..1440)", 0, K_INT, hold_ttl_minutes, 1, 1440)      \
    X("SEARCH_GRANULARITY_MINUTES", "15", "slot search step (5..240, divides 1440)", 0, K_MINUTES_OF_DAY,     \
      search_granularity_minutes, 5, 240)                                                                      \
    X("POLL_INTERVAL_GOOGLE_SECONDS", "60", "Google Calendar polling fallback interval", 0, K_INT,             \
      poll_interval_google_seconds, 1, 86400)                                                                  \
    X("POLL_INTERVAL_JOBBER_SECONDS", "120", "Jobber polling fallback interval", 0, K_INT,                     \
      poll_interval_jobber_seconds, 1, 86400)                                                                  \
    X("OUTBOX_BATCH_SIZE", "100", "events claimed per outbox batch (1..1000)", 0, K_INT, outbox_batch_size, 1, \
      1000)                                                                                                    \
    X("OUTBOX_CONCURRENCY", "2", "outbox batches in flight (1..32)", 0, K_INT, outbox_concurrency, 1, 32)      \
    X("OUTBOX_MAX_ATTEMPTS", "10", "delivery attempts before an event moves to outbox_events_errors", 0,      \
      K_INT, outbox_max_attempts, 1, 1000)                                                                     \
    X("OUTBOX_POLL_INTERVAL_MS", "1000", "slow-path outbox poll interval", 0, K_INT, outbox_poll_interval_ms,  \
      1, MS_HOUR)                                                                                              \
    X("PAUSE_OUTBOUND_SMS", "false", "ops kill switch: send no SMS", 0, K_BOOL, pause_outbound_sms, 0, 0)       \
    X("TREAT_SHORT_COMPLETED_AS_MISSED", "false", "treat very short completed calls as missed", 0, K_BOOL,    \
      treat_short_completed_as_missed, 0, 0)                                                                    \
    X("SHORT_COMPLETED_MAX_SECONDS", "10", "longest call counted as short (0..600)", 0, K_INT,                \
      short_completed_max_seconds, 0, 600)                                                                     \
    X("FIRST_SMS_REPEAT_WINDOW_MINUTES", "60", "no second first-SMS to a caller within (0..10080)", 0, K_INT, \
      first_sms_repeat_window_minutes, 0, 10080)                                                               \
    X("NMC_OUTBOX_LEASE_MS", "30000", "outbox claim lease; a dead instance's claims return after it", 0,       \
      K_INT, outbox_lease_ms, 1000, 600000)                                                                    \
    X("NMC_SMS_AMBIGUOUS_WAIT_MS", "30000", "wait before checking Twilio after an ambiguous send", 0, K_INT,   \
      sms_ambiguous_wait_ms, 0, MS_HOUR)                                                                       \
    X("NMC_SMS_PROVIDER_HOLD_RETRY_MS", "60000", "retry period of first replies held by a Twilio outage", 0,  \
      K_INT, sms_provider_hold_retry_ms, 1000, MS_HOUR)                                                        \
    X("NMC_SMS_PROVIDER_HOLD_MAX_MINUTES", "1440", "give up on outage-held replies after (1..10080)", 0,        \
      K_INT, sms_provider_hold_max_minutes, 1, 10080)                                                          \
    X("NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES", "1440", "send compliance-held replies only within (1..10080)", 0, \
      K_INT, sms_compliance_hold_max_minutes, 1, 10080)                                                        \
    X("NMC_TWILIO_BREAKER_OPEN_MS", "120000", "Twilio circuit breaker: open time before half-open", 0, K_INT, \
      twilio_breaker_open_ms, 1000, MS_HOUR)                                                                   \
    X("NMC_TWILIO_BREAKER_CLOSE_AFTER_MS", "300000", "Twilio breaker: healthy half-open time before close", 0, \
      K_INT, twilio_breaker_close_after_ms, 1000, MS_HOUR)                                                     \
    X("NMC_TWILIO_BREAKER_HALF_OPEN_PERCENT", "10", "Twilio breaker: share of traffic let through half-open",  \
      0, K_INT, twilio_breaker_half_open_percent, 1, 100)                                                      \
    X("NMC_REPORTING_SWEEP_MS", "30000", "how often reporting looks for days other instances marked", 0,       \
      K_INT, reporting_sweep_ms, 1000, MS_HOUR)                                                                 \
    X("NMC_REPORTING_ROLLUP_MS", "5000", "how often reporting recomputes the daily rollups of days it marked", 0, \
      K_INT, reporting_rollup_ms, 1000, MS_HOUR)

#define PUBLIC_ROW(name, def, help, secret, kind, field, min, max) {name, def, help, secret},
#define RULE_ROW(name, def, help, secret, kind, field, min, max) {kind, offsetof(struct nmc_config, field), min, max},

static const struct nmc_config_var vars[] = {CONFIG_VARS(PUBLIC_ROW)};
static const struct rule rules[] = {CONFIG_VARS(RULE_ROW)};

_Static_assert(NMC_ARRAY_SIZE(vars) == NMC_ARRAY_SIZE(rules), "one rule per variable");

const struct nmc_config_var *nmc_config_vars(size_t *n)
{
    *n = NMC_ARRAY_SIZE(vars);
    return vars;
}

/* ---- parsers ---- */

int nmc_config_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};
    size_t i;

    for (i = 0; i < NMC_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return NMC_EINVAL;
}

/* strtod alone takes leading blanks, "nan", "inf" and hex floats; a ratio
 * is plain decimal digits with an optional point. */
static int parse_ratio(const char *s, double *out)
{
    char *end = NULL;
    double v;

    if (!isdigit((unsigned char)s[0]) && s[0] != '.')
        return NMC_EINVAL;
    if (strpbrk(s, "xXnN"))
        return NMC_EINVAL;
    v = strtod(s, &end);
    if (*end != '\0' || !isfinite(v) || v < 0.0 || v > 1.0)
        return NMC_EINVAL;
    *out = v;
    return 0;
}

/* http:// or https://, a non-empty rest without blanks or control bytes.
 * One trailing slash is stripped so callers can append "/path". */
static int parse_url(const char *s, char **out)
{
    size_t skip, len = strlen(s), i;

    if (strncmp(s, "http://", 7) == 0)
        skip = 7;
    else if (strncmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return NMC_EINVAL;
    for (i = skip; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return NMC_EINVAL;
    if (len > skip && s[len - 1] == '/')
        len--;
    if (len == skip || s[skip] == '/')
        return NMC_EINVAL;
    *out = nmc_xstrndup(s, len);
    return 0;
}

static int parse_userpass(const char *s)
{
    const char *colon = strchr(s, ':');

    return colon && colon > s && colon[1] ? 0 : NMC_EINVAL;
}

static int parse_cidrs(const char *s, char *why, size_t whylen)
{
    struct nmc_cidr_list l;
    char detail[160];
    int rc = nmc_cidr_list_parse(s, &l, detail, sizeof(detail));

    if (rc) {
        snprintf(why, whylen, "must be comma-separated IPv4/IPv6 CIDRs: %s", detail);
        return rc;
    }
    if (l.n == 0) {
        nmc_strlcpy(why, "no CIDR given", whylen);
        rc = NMC_EINVAL;
    }
    nmc_cidr_list_free(&l);
    return rc;
}

/* ---- loader ---- */

static const char *env_get(const char *name, void *ud)
{
    return getenv(name);
}

/* "NAME: reason (got 'value')", the value shortened and with control
 * bytes masked; a secret's value never appears. */
static void set_err(char *err, size_t errlen, size_t i, const char *reason, const char *value)
{
    char shown[68];
    size_t n, j;

    if (vars[i].secret || !value) {
        snprintf(err, errlen, "%s: %s", vars[i].name, reason);
        return;
    }
    n = nmc_strlcpy(shown, value, 65);
    for (j = 0; shown[j]; j++)
        if ((unsigned char)shown[j] < ' ' || shown[j] == 0x7f || shown[j] == '\'')
            shown[j] = '?';
    if (n > 64)
        nmc_strlcpy(shown + 64, "...", 4);
    snprintf(err, errlen, "%s: %s (got '%s')", vars[i].name, reason, shown);
}

static int parse_int_kind(struct nmc_config *c, size_t i, const char *s, char *why, size_t whylen)
{
    const struct rule *r = &rules[i];
    void *field = (char *)c + r->off;
    int64_t v;

    if (nmc_parse_i64(s, r->min, r->max, &v) != 0) {
        snprintf(why, whylen, "must be an integer from %lld to %lld", (long long)r->min, (long long)r->max);
        return NMC_EINVAL;
    }
    if (r->kind == K_MINUTES_OF_DAY && 1440 % v != 0) {
        nmc_strlcpy(why, "must divide 1440 (the minutes of a day)", whylen);
        return NMC_EINVAL;
    }
    if (r->kind == K_I64)
        *(int64_t *)field = v;
    else
        *(int *)field = (int)v;
    return 0;
}

/* Parses s into variable i's field; on error writes the reason into why. */
static int parse_var(struct nmc_config *c, size_t i, const char *s, char *why, size_t whylen)
{
    const struct rule *r = &rules[i];
    void *field = (char *)c + r->off;
    int rc = 0;

    switch (r->kind) {
    case K_STR:
        *(char **)field = nmc_xstrdup(s);
        return 0;
    case K_URL:
    case K_BASE_URL:
        rc = parse_url(s, (char **)field);
        nmc_strlcpy(why, "must be an http:// or https:// URL", whylen);
        break;
    case K_INT:
    case K_I64:
    case K_MINUTES_OF_DAY:
        return parse_int_kind(c, i, s, why, whylen);
    case K_BOOL:
        rc = nmc_config_parse_bool(s, (int *)field);
        nmc_strlcpy(why, "must be true or false (also 1/0, yes/no)", whylen);
        break;
    case K_RATIO:
        rc = parse_ratio(s, (double *)field);
        nmc_strlcpy(why, "must be a number from 0 to 1", whylen);
        break;
    case K_LOG_LEVEL:
        rc = nmc_log_level_parse(s, (enum nmc_log_level *)field);
        nmc_strlcpy(why, "must be one of trace, debug, info, warn, error", whylen);
        break;
    case K_USERPASS:
        rc = parse_userpass(s);
        nmc_strlcpy(why, "must be user:password", whylen);
        if (rc == 0)
            *(char **)field = nmc_xstrdup(s);
        break;
    case K_CIDRS:
        rc = parse_cidrs(s, why, whylen);
        if (rc == 0)
            *(char **)field = nmc_xstrdup(s);
        break;
    }
    return rc;
}

int nmc_config_load(struct nmc_config *c, nmc_getenv_cb get, void *ud, char *err, size_t errlen)
{
    char why[256], def_url[64];
    const char *s;
    size_t i;
    int rc = 0;

    memset(c, 0, sizeof(*c));
    if (!get)
        get = env_get;
    for (i = 0; i < NMC_ARRAY_SIZE(vars); i++) {
        s = get(vars[i].name, ud);
        if (!s || !s[0])
            s = vars[i].def;
        if (rules[i].kind == K_BASE_URL && s == vars[i].def) {
            snprintf(def_url, sizeof(def_url), "http://localhost:%d", c->port);
            s = def_url;
        }
        if (!s)
            continue;
        why[0] = '\0';
        rc = parse_var(c, i, s, why, sizeof(why));
        if (rc) {
            set_err(err, errlen, i, why, s);
            goto out;
        }
    }
    c->role = NMC_ROLE_ALL;
out:
    if (rc) {
        nmc_config_free(c);
        rc = NMC_EINVAL;
    }
    return rc;
}

/* Frees every string field (the rules know which) and zeroes c. */
void nmc_config_free(struct nmc_config *c)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < NMC_ARRAY_SIZE(rules); i++) {
        switch (rules[i].kind) {
        case K_STR:
        case K_URL:
        case K_BASE_URL:
        case K_USERPASS:
        case K_CIDRS:
            free(*(char **)((char *)c + rules[i].off));
            break;
        default:
            break;
        }
    }
    memset(c, 0, sizeof(*c));
}

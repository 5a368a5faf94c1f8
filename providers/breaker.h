/* A circuit breaker per provider (runbook section 7).
 *
 * CLOSED: every call passes; outcomes feed sliding windows (5 s buckets).
 *   Opens when, over error_window_ms, at least min_requests calls were seen
 *   and the failure ratio exceeds open_error_rate; or, when a latency
 *   baseline is set, when the latency statistic (P95 or mean) over a full
 *   latency_window_ms (at least min_requests samples, and the breaker closed
 *   for that long) exceeds latency_factor x baseline.
 * OPEN: calls are refused (callers fail with NMC_ECIRCUIT) for open_ms.
 * HALF_OPEN: half_open_ratio of the calls pass (deterministically: 1 in 10
 *   for 0.1, the first one at once). A failed probe that brings the probes'
 *   failure ratio to close_error_rate or above reopens (so in practice any
 *   early failure reopens); after close_after_ms in half-open with at least
 *   close_min_requests probes and a ratio below close_error_rate it closes,
 *   with fresh windows.
 * Failures are 5xx, timeouts and connection errors (and 429 when count_429);
 * other 4xx are the caller's fault and count as successes.
 *
 * Time comes from nmc_clock_now_ms() (frozen in tests). The state is
 * exported as the gauge provider_circuit_state{provider} (0 closed,
 * 1 half-open, 2 open) and each transition is logged and counted in
 * provider_circuit_transitions_total{provider,state}. Loop-thread only. */
#ifndef NMC_PROVIDERS_BREAKER_H
#define NMC_PROVIDERS_BREAKER_H

#include <stdint.h>
#include "runtime/common.h"

struct nmc_prov_breaker;

enum nmc_prov_breaker_state {
    NMC_PROV_BREAKER_CLOSED = 0,
    NMC_PROV_BREAKER_HALF_OPEN = 1,
    NMC_PROV_BREAKER_OPEN = 2
};

enum nmc_prov_breaker_stat { NMC_PROV_BREAKER_P95 = 0, NMC_PROV_BREAKER_MEAN };

struct nmc_prov_breaker_opts {
    const char *provider;         /* metric label and log field; copied */
    int64_t error_window_ms;      /* sliding window of the error rule */
    double open_error_rate;       /* open above this failure ratio */
    uint32_t min_requests;        /* no rule trips on fewer calls in its window */
    int count_429;                /* 429 counts as a failure */
    double baseline_latency_ms;   /* 0: latency rule off */
    double latency_factor;        /* trip above factor x baseline */
    enum nmc_prov_breaker_stat latency_stat;
    int64_t latency_window_ms;    /* window (and minimum closed time) of the latency rule */
    int64_t open_ms;              /* open -> half-open */
    double half_open_ratio;       /* share of calls let through while half-open, (0,1] */
    int64_t close_after_ms;       /* half-open time needed before closing */
    double close_error_rate;      /* close below, reopen at or above this probe failure ratio */
    uint32_t close_min_requests;  /* probes needed before closing */
};

/* Runbook presets. Twilio: 5xx/timeouts > 2% over 3 min (min 20 calls) or
 * P95 > 3x baseline for 5 min; half-open after 2 min at 10%; close at < 1%
 * over 5 min. baseline_p95_ms 0 turns the latency rule off. */
void nmc_prov_breaker_opts_twilio(struct nmc_prov_breaker_opts *o, double baseline_p95_ms);
/* Google Calendar / Jobber: 429/5xx > 1% over 5 min or mean > 2x baseline
 * for 10 min; recovery as Twilio's. provider: "google" or "jobber". */
void nmc_prov_breaker_opts_calendar(struct nmc_prov_breaker_opts *o, const char *provider,
                                    double baseline_mean_ms);
/* Stripe: 5xx > 1% over 3 min; no latency rule; recovery as Twilio's. */
void nmc_prov_breaker_opts_stripe(struct nmc_prov_breaker_opts *o);

/* Creates a closed breaker. NMC_EINVAL names nothing but means a window,
 * rate or ratio out of range (windows 1 s .. 1 h, rates in [0,1]). */
NMC_MUST_CHECK int nmc_prov_breaker_create(const struct nmc_prov_breaker_opts *o, struct nmc_prov_breaker **out);
/* Frees; accepts NULL. */
void nmc_prov_breaker_destroy(struct nmc_prov_breaker *b);

/* Asks to make one call now: 1 allowed (the caller must then report the
 * outcome with nmc_prov_breaker_record), 0 refused. May move OPEN to
 * HALF_OPEN or HALF_OPEN to CLOSED as time passes. */
int nmc_prov_breaker_allow(struct nmc_prov_breaker *b);
/* 1 when an outcome counts as a failure: err is the transport error (0 when
 * an HTTP status came back), http_status the status or 0. */
int nmc_prov_breaker_is_failure(const struct nmc_prov_breaker *b, long http_status, int err);
/* Reports one finished call (latency_ms < 0: unknown). */
void nmc_prov_breaker_record(struct nmc_prov_breaker *b, int failed, double latency_ms);

enum nmc_prov_breaker_state nmc_prov_breaker_state(struct nmc_prov_breaker *b);
const char *nmc_prov_breaker_state_name(enum nmc_prov_breaker_state s);
const char *nmc_prov_breaker_provider(const struct nmc_prov_breaker *b);

#endif

/* Time, randomness and ids, all injectable so tests are deterministic. */
#ifndef NMC_RUNTIME_CLOCK_H
#define NMC_RUNTIME_CLOCK_H

#include <stdint.h>
#include <stddef.h>
#include "runtime/common.h"

/* Wall clock in ms / ns since the epoch; frozen values when frozen. */
int64_t nmc_clock_now_ms(void);
int64_t nmc_clock_now_ns(void);
/* Monotonic ns (never frozen): for durations. */
uint64_t nmc_clock_mono_ns(void);
/* Freezes the wall clock at ms (tests). nmc_clock_unfreeze() restores it. */
void nmc_clock_freeze(int64_t ms);
void nmc_clock_advance(int64_t ms);
void nmc_clock_unfreeze(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds
 * ("2026-11-23T10:00:00.123Z"); out must hold 25 bytes. */
void nmc_clock_format_rfc3339(int64_t ms, char out[32]);

/* Deterministic RNG (xoshiro256**) used for jitter. Seeded from the OS at
 * start-up unless nmc_rng_seed() is called (tests). */
void nmc_rng_seed(uint64_t seed);
uint64_t nmc_rng_next(void);
/* Uniform double in [0,1). */
double nmc_rng_unit(void);

/* Random bytes from the OS (getrandom); for ids, keys and trace ids. */
void nmc_random_bytes(void *out, size_t n);
/* A random UUID v4 string (36 chars + NUL). */
void nmc_id_uuid4(char out[37]);
/* Lowercase hex of n bytes into out (2n+1 bytes). */
void nmc_hex(char *out, const void *in, size_t n);

#endif

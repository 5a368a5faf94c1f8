/* Structured logging: one JSON object per line on stdout (spec 000 3.1).
 *
 * A record is built with typed adders so redaction is decided by the type
 * of the field, not by each caller (spec 000 3.2, spec 003 "PII Rules"):
 *   nmc_log_phone/nmc_log_email  masked to the last 4 characters at INFO and
 *                                above ("***1234"), in full only at DEBUG;
 *   nmc_log_body                 omitted unless LOG_MESSAGE_BODY_PREFIX=true,
 *                                then the first 50 characters;
 *   secrets                      have no adder: they are never logged.
 * Every adder accepts a NULL record, so a disabled level costs one branch:
 *
 *   struct nmc_log_rec *r = nmc_log_begin(NMC_LOG_INFO, "telephony", "webhook.accepted");
 *   nmc_log_ctx(r, msg);  nmc_log_str(r, "provider", "twilio");  nmc_log_end(r);
 *
 * Always present: timestamp, level, module, event; tenant_id and
 * correlation_id (null when unknown); causation_id when known. */
#ifndef NMC_RUNTIME_LOG_H
#define NMC_RUNTIME_LOG_H

#include <stdint.h>
#include <stdio.h>
#include "runtime/common.h"

struct nmc_msg;
struct nmc_log_rec;

enum nmc_log_level { NMC_LOG_TRACE = 0, NMC_LOG_DEBUG, NMC_LOG_INFO, NMC_LOG_WARN, NMC_LOG_ERROR };

/* Configures the logger. out: stream for lines (NULL: stdout). */
void nmc_log_setup(enum nmc_log_level level, int body_prefix, FILE *out);
/* Parses "trace|debug|info|warn|error" (any case); 0 or NMC_EINVAL. */
NMC_MUST_CHECK int nmc_log_level_parse(const char *s, enum nmc_log_level *out);
int nmc_log_enabled(enum nmc_log_level level);

/* Starts a record; NULL when level is disabled. event: short stable name. */
struct nmc_log_rec *nmc_log_begin(enum nmc_log_level level, const char *module, const char *event);
/* Copies tenant_id, correlation_id, causation_id from a message. */
void nmc_log_ctx(struct nmc_log_rec *r, const struct nmc_msg *m);
void nmc_log_ids(struct nmc_log_rec *r, const char *tenant_id, const char *correlation_id, const char *causation_id);
void nmc_log_str(struct nmc_log_rec *r, const char *key, const char *value);
void nmc_log_strn(struct nmc_log_rec *r, const char *key, const char *value, size_t n);
void nmc_log_int(struct nmc_log_rec *r, const char *key, int64_t value);
void nmc_log_double(struct nmc_log_rec *r, const char *key, double value);
void nmc_log_bool(struct nmc_log_rec *r, const char *key, int value);
void nmc_log_phone(struct nmc_log_rec *r, const char *key, const char *phone);
void nmc_log_email(struct nmc_log_rec *r, const char *key, const char *email);
void nmc_log_body(struct nmc_log_rec *r, const char *key, const char *body);
/* error_code = nmc_errcode(err), error_message = message (or nmc_strerror). */
void nmc_log_error(struct nmc_log_rec *r, int err, const char *message);
/* Adds "stack"/"detail" only when the logger runs at DEBUG or TRACE. */
void nmc_log_detail(struct nmc_log_rec *r, const char *detail);
void nmc_log_msgf(struct nmc_log_rec *r, const char *fmt, ...) NMC_PRINTF(2, 3); /* "message" field */
/* Writes the line (one write call) and frees the record. Accepts NULL. */
void nmc_log_end(struct nmc_log_rec *r);
/* Flushes the output stream (shutdown). */
void nmc_log_flush(void);

/* Redaction primitives, exposed for tests: mask to last 4 ("***1234");
 * values of 4 characters or fewer become "***". out must hold len+4. */
void nmc_log_mask_last4(const char *in, char *out, size_t out_size);

/* Additions (owned by runtime/log.c). */

/* Deployment name ("prod", "staging") written as "env" after "event"
 * (spec 003 "Log Format"); NULL or "" omits the field. Copied. */
void nmc_log_set_env(const char *env);
/* Nested object: fields added between begin and end go inside "key":{...}.
 * Used for span attributes. Unbalanced ends are ignored; nmc_log_end closes
 * any object left open. */
void nmc_log_obj_begin(struct nmc_log_rec *r, const char *key);
void nmc_log_obj_end(struct nmc_log_rec *r);

/* Notes on the adders above:
 *  - a NULL value is written as JSON null (nmc_log_str, nmc_log_phone, ...);
 *  - a key that looks like a secret (contains token, secret, password,
 *    passwd, authorization, api_key, apikey, cookie, private_key; "tokens",
 *    plural, names a count and is exempt) gets "[REDACTED]" whatever the adder;
 *  - invalid UTF-8 becomes U+FFFD and control bytes are escaped, so every
 *    line is valid JSON; string values are cut at NMC_LOG_MAX_VALUE bytes
 *    (on a character boundary) and the record gets "truncated":true;
 *  - phone/email masking follows the RECORD's level: INFO and above mask,
 *    DEBUG and TRACE records carry the full value;
 *  - nmc_log_body writes at most 50 characters (never a partial UTF-8
 *    sequence) and adds "body_truncated":true when it cut. */
#define NMC_LOG_MAX_VALUE 8192

#endif

/* Conversation: the first reply and the SMS keywords (owner: sms engineer).
 *
 * The actor "conversation" consumes CallDetected, InboundSmsReceived,
 * SmsSendReleased and ComplianceStatusChanged from the outbox. For a missed
 * call (or a first inbound SMS) it checks the gates (caller not opted out,
 * no first reply within FIRST_SMS_REPEAT_WINDOW_MINUTES, compliance
 * approved, PAUSE_OUTBOUND_SMS), renders the tenant's first-reply template
 * (in-hours or after-hours from settings.business_hours in tenants.timezone),
 * records the intent in the database under a unique key per (tenant, call)
 * and only then calls Twilio. A reply stopped by the pause or by compliance
 * is recorded as held (messages.hold_reason) and sent exactly once by its
 * release: resuming, or ComplianceStatusChanged(approved) within
 * NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES of the call (docs/decisions/compliance-hold.md).
 * STOP/START/HELP keywords update the opt-out ledger and are answered.
 * Ambiguous sends (the request may have reached Twilio) are never resent
 * blindly: see docs/decisions/ambiguous-sms.md.
 * Tuning (validated at start-up by runtime/config.c):
 * NMC_SMS_AMBIGUOUS_WAIT_MS (default 30000, 0..3600000);
 * NMC_SMS_COMPLIANCE_HOLD_MAX_MINUTES (default 1440, 1..10080);
 * NMC_SMS_PROVIDER_HOLD_RETRY_MS (default 60000, 1000..3600000) and
 * NMC_SMS_PROVIDER_HOLD_MAX_MINUTES (default 1440): a send still failing
 * at its event's last outbox attempt (Twilio down) is held, not
 * dead-lettered, and released every RETRY_MS until sent or older than MAX
 * (docs/decisions/provider-outage-hold.md);
 * NMC_TWILIO_BREAKER_OPEN_MS, NMC_TWILIO_BREAKER_CLOSE_AFTER_MS (1000..3600000)
 * and NMC_TWILIO_BREAKER_HALF_OPEN_PERCENT (1..100) override the runbook
 * preset of the "twilio" circuit breaker (120000, 300000, 10). */
#ifndef NMC_ACTORS_CONVERSATION_CONVERSATION_H
#define NMC_ACTORS_CONVERSATION_CONVERSATION_H

#include <stddef.h>
#include <stdint.h>
#include "actors/app.h"

NMC_MUST_CHECK int nmc_conversation_init(struct nmc_app *app);

/* The first reply to a missed call, recorded in the webhook's own
 * transaction: one durable commit before the SMS leaves instead of two
 * (the webhook's, then the intent's). The writer (telephony) and the
 * conversation exchange one struct nmc_conv_first_reply (payload, owned
 * by the message):
 *   PREPARE   writer -> "conversation": tenant, caller, business, CallSid.
 *   PREPARED  conversation -> reply_to (cookie kept): ready = 1 with the
 *             rendered body, dedupe key, status (pending, or held while
 *             paused), repeat window and the cached tenant's version: the
 *             arguments of nmc_conv_first_reply, which the writer's
 *             statement calls; ready = 0 (tenant not cached, caller not
 *             textable, no dispatcher here, conversation stopped) records
 *             the call alone and CallDetected takes the usual way.
 *   COMMITTED writer -> "conversation", after COMMIT and after answering
 *             the webhook: the CallDetected event (handed to the outbox
 *             with consumed_by = the conversation actor) and what
 *             nmc_conv_first_reply answered. The conversation carries on
 *             as after its own intent (send, held, blocked, or the full
 *             path for a stale tenant copy) and acks CallDetected.
 * A crash after COMMIT leaves the intent 'pending' and CallDetected
 * leased: the lease lapses, the event is delivered as usual, and the
 * conversation resolves the intent (docs/decisions/ambiguous-sms.md). */
#define NMC_MSG_CONV_PREPARE (NMC_MSG_MODULE_PRIVATE + 100 * NMC_SLOT_CONVERSATION)
#define NMC_MSG_CONV_PREPARED (NMC_MSG_CONV_PREPARE + 1)
#define NMC_MSG_CONV_COMMITTED (NMC_MSG_CONV_PREPARE + 2)

struct nmc_conv_first_reply {
    /* PREPARE */
    struct nmc_actor *reply_to;
    uint64_t cookie;
    char tenant[NMC_ID_LEN], caller[40], business[40], call_sid[70];
    /* PREPARED */
    int ready;
    char dedupe[128], body[1601], status[8], repeat_minutes[12], tenant_version[24];
    /* COMMITTED */
    int64_t outbox_id;                 /* CallDetected */
    char event_id[NMC_ID_LEN];
    char detected_at[40];
    char message_id[NMC_ID_LEN], message_status[24], blocked[24];
    int started, created;
};
/* Cancels the provider-hold timer, destroys the Twilio and http clients
 * (async: the http client frees itself once the loop has closed its
 * handles) and frees the module's state and its jobs in flight (unacked:
 * the outbox redelivers them). The actor stays registered until
 * nmc_rt_destroy() and drops what still reaches it. Call before nmc_rt_stop()
 * and never from a libcurl callback. */
void nmc_conversation_stop(struct nmc_app *app);

/* The SMS kill switch: an instance holds every send while its
 * PAUSE_OUTBOUND_SMS is true or the fleet's row 'pause_outbound_sms' of
 * ops_flags (migration 0039, set through the admin API) is. Every instance
 * reads the row at start (it sends
 * nothing and is not ready before: app->ops_flags_pending), again on each
 * NOTIFY on NMC_OPS_FLAGS_CHANNEL (actors/app.h) and every NMC_CONV_FLAGS_POLL_MS. While
 * paused, sends are recorded as held; a resume releases every send held by
 * the pause (through the outbox, so a crash during the release loses
 * nothing); a released send that meets a new pause is held again. */
#define NMC_CONV_FLAGS_POLL_MS 5000
#define NMC_CONV_FLAGS_RETRY_MS 500

/* The admin API committed the row with this value (and notified the other
 * instances): applied here at once, then read back. */
void nmc_conversation_set_paused(struct nmc_app *app, int paused);
/* 1 while this instance holds every send (including before the first read). */
int nmc_conversation_paused(struct nmc_app *app);

/* Validates a first-reply template (settings.first_reply_template_in_hours
 * and _after_hours): non-empty, at most 1000 bytes, valid UTF-8 without
 * control characters other than newline, variables only from
 * {business_name} {business_phone} ("{{" and "}}" are literal braces).
 * 0, or NMC_EINVAL with a message naming the problem in err. */
NMC_MUST_CHECK int nmc_conversation_template_validate(const char *tpl, char *err, size_t errlen);

/* Renders a validated template into out (NUL-terminated, truncated at
 * outlen). 0 or NMC_EINVAL (template invalid: err as above). */
NMC_MUST_CHECK int nmc_conversation_template_render(const char *tpl, const char *business_name,
                                                    const char *business_phone, char *out, size_t outlen);

/* Default templates used when the tenant has none. */
extern const char nmc_conversation_default_in_hours[];
extern const char nmc_conversation_default_after_hours[];

/* Business hours: hours_json is settings.business_hours ({"mon":[["08:00",
 * "17:00"]],...}, days mon..sun, an end before its start runs past
 * midnight), local is "D HH:MM" (ISO day 1 = Monday). 1 in hours, 0 after
 * hours; NULL/empty/unparseable hours count as in hours (never claim a
 * business is closed when we do not know). */
int nmc_conversation_in_hours(const char *hours_json, const char *local);
/* The same for hours already parsed (settings.business_hours as a jansson
 * value, NULL when absent). */
struct json_t;
int nmc_conversation_in_hours_doc(const struct json_t *hours, const char *local);

enum nmc_conversation_keyword {
    NMC_KEYWORD_NONE = 0,
    NMC_KEYWORD_STOP, /* STOP STOPALL UNSUBSCRIBE CANCEL END QUIT REVOKE OPTOUT */
    NMC_KEYWORD_START,/* START UNSTOP YES */
    NMC_KEYWORD_HELP  /* HELP INFO */
};
/* Classifies an inbound body: the whole message, trimmed, any case. */
enum nmc_conversation_keyword nmc_conversation_keyword(const char *body);

#endif

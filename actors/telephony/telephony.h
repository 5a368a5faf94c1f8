/* Telephony: Twilio webhooks in, domain events out (owner: perf engineer).
 *
 * Routes (registered when app->http is not NULL):
 *   POST /webhooks/twilio/voice-status    -> CallDetected when the call was missed
 *   POST /webhooks/twilio/sms             -> InboundSmsReceived
 *   POST /webhooks/twilio/message-status  -> messages.status, forward only, of
 *                                            the message named by ?mid= (ours)
 * Each request is signature-checked first (X-Twilio-Signature over
 * PUBLIC_BASE_URL + target), then handed to the actor "telephony", which
 * writes webhook_events (dedupe) and the outbox event in one transaction,
 * batching every webhook that arrived in the same loop turn into one
 * transaction, and answers each request with empty TwiML only after COMMIT;
 * then it hands the events (inserted leased to the local outbox) straight
 * to the outbox, which delivers them with no claim round trip.
 * The actor also accepts NMC_MSG_CACHE_INVALIDATE (number -> tenant cache). */
#ifndef NMC_ACTORS_TELEPHONY_TELEPHONY_H
#define NMC_ACTORS_TELEPHONY_TELEPHONY_H

#include "actors/app.h"

/* Module init/stop (actors/app.c). Stop answers every webhook the module
 * still holds with 503 (queued, waiting for a lookup or in a transaction;
 * Twilio retries) and frees the module's state. The actor and the routes
 * stay until the runtime and the server go and answer what still reaches
 * them with 503. Call before nmc_rt_stop(), while the server is alive. */
NMC_MUST_CHECK int nmc_telephony_init(struct nmc_app *app);
void nmc_telephony_stop(struct nmc_app *app);

enum nmc_telephony_class {
    NMC_TELEPHONY_NOT_MISSED = 0,
    NMC_TELEPHONY_MISSED = 1,
    NMC_TELEPHONY_INVALID = -1 /* unknown CallStatus or bad CallDuration */
};

/* Missed-call classification (the table of spec 002): no-answer, busy and
 * failed are missed; completed is missed only when treat_short is set and
 * duration (CallDuration, may be NULL or "") <= short_max seconds; queued,
 * initiated, ringing, in-progress and canceled are not missed. */
enum nmc_telephony_class nmc_telephony_classify(const char *call_status, const char *duration, int treat_short,
                                                int short_max);

/* The order of a batch's statements of their own (every webhook not in the
 * set-based statement of missed calls), so that two transactions take the
 * rows they share in one order: the status callbacks by our message id (mid,
 * their ?mid=; NULL for any other webhook, which sorts first), then each by
 * its event key (webhook_events.event_id). Two batches holding callbacks of
 * the same two messages in opposite orders otherwise update the messages in
 * opposite orders and deadlock, as can a batch against the conversation's
 * mark statement, which locks the messages by id (NMC_CONV_SQL_MARK_SENT).
 * strcmp-like: < 0, 0 or > 0. */
int nmc_telephony_stmt_order(const char *mid_a, const char *key_a, const char *mid_b, const char *key_b);

/* The empty TwiML document every webhook answers with. */
extern const char nmc_telephony_twiml_empty[];

#endif

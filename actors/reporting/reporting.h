/* Reporting (owner: sms engineer): the first-response tracker's read side.
 *
 * The actor "reporting" counts ConversationStarted (kpi_conversations_started_total)
 * and FirstReplySent (kpi_first_replies_sent_total) from the outbox, and on
 * instances that run workers refreshes slo_first_sms_p95_seconds every 10 s:
 * the P95 over the last 15 minutes of first_responses (missed call or
 * inbound SMS webhook commit -> Twilio accepted the first reply, both on
 * database time, so clock skew between instances cannot bend it). */
#ifndef NMC_ACTORS_REPORTING_REPORTING_H
#define NMC_ACTORS_REPORTING_REPORTING_H

#include "actors/app.h"

NMC_MUST_CHECK int nmc_reporting_init(struct nmc_app *app);
void nmc_reporting_stop(struct nmc_app *app);

#endif

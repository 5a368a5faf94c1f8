-- nmc marks the sends Twilio accepted in groups, with one set-based
-- statement per group (NMC_CONV_SQL_MARK_SENT in
-- actors/conversation/conversation_sql.h); the one-send function it
-- replaces goes, so that the rule lives in one place.
DROP FUNCTION nmc_conv_mark_sent(uuid, text, text, text, text, text, bigint);

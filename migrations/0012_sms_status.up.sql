-- The forward-only state machine of an SMS, shared by every writer of
-- messages.status (our send path and Twilio's status callbacks, which may
-- arrive in any order). Ranks: ours before Twilio accepted (0), Twilio's
-- in-flight states (10..40), final states (100+). A final status never
-- changes, except delivered -> read.
CREATE FUNCTION nmc_sms_status_rank(s text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE s
        WHEN 'pending' THEN 0 WHEN 'retry' THEN 0 WHEN 'ambiguous' THEN 0 WHEN 'held' THEN 0
        WHEN 'accepted' THEN 10 WHEN 'scheduled' THEN 10 WHEN 'queued' THEN 20
        WHEN 'sending' THEN 30 WHEN 'sent' THEN 40
        WHEN 'delivered' THEN 100 WHEN 'undelivered' THEN 100 WHEN 'failed' THEN 100
        WHEN 'canceled' THEN 100 WHEN 'received' THEN 100 WHEN 'read' THEN 110
    END
$$;

CREATE FUNCTION nmc_sms_status_advances(cur text, nxt text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT COALESCE(
        (nmc_sms_status_rank(cur) < 100 AND nmc_sms_status_rank(nxt) > nmc_sms_status_rank(cur))
        OR (cur = 'delivered' AND nxt = 'read'),
        false)
$$;

-- A first reply whose outbox event reaches its last delivery attempt while
-- Twilio is still failing (5xx, 429, refused, circuit open: definitely not
-- sent) is held with hold_reason 'provider' instead of being dead-lettered;
-- the conversation actor releases provider holds periodically, so a long
-- Twilio outage delays first replies but loses none.
ALTER TABLE messages DROP CONSTRAINT messages_hold_reason_check;
ALTER TABLE messages ADD CONSTRAINT messages_hold_reason_check
    CHECK (hold_reason IN ('pause', 'compliance', 'provider'));
CREATE INDEX messages_provider_held_idx ON messages (created_at)
    WHERE status = 'held' AND hold_reason = 'provider';

-- Releases every provider hold younger than p_max_minutes (one
-- SmsSendReleased each, as the pause release does); older ones fail
-- unsent, as compliance holds do (docs/decisions/compliance-hold.md).
CREATE FUNCTION nmc_conv_release_provider(p_max_minutes integer)
RETURNS TABLE (released integer, expired integer)
LANGUAGE plpgsql AS $$
DECLARE
    n_rel integer := 0; n_exp integer := 0;
BEGIN
    UPDATE messages SET status = 'failed', hold_reason = NULL, updated_at = now(),
           error_message = 'not sent: Twilio unavailable for more than ' || p_max_minutes || ' minutes'
     WHERE status = 'held' AND hold_reason = 'provider'
       AND created_at <= now() - p_max_minutes * interval '1 minute';
    GET DIAGNOSTICS n_exp = ROW_COUNT;
    WITH r AS (
        UPDATE messages SET status = 'retry', hold_reason = NULL, updated_at = now()
         WHERE status = 'held' AND hold_reason = 'provider'
        RETURNING id, tenant_id, kind)
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, causation_id)
    SELECT 'SmsSendReleased', 1, jsonb_build_object('tenant_id', tenant_id, 'message_id', id, 'kind', kind,
                                                    'released_at', nmc_utc_text(now())),
           tenant_id, 'provider_hold'
      FROM r;
    GET DIAGNOSTICS n_rel = ROW_COUNT;
    RETURN QUERY SELECT n_rel, n_exp;
END
$$;

-- Every first reply is written twice: inserted with the webhook, then marked
-- queued once Twilio answers (nmc_conv_mark_sent), and Twilio's status
-- callbacks update it again (sent, delivered). Each of those updates changed
-- a column some index of messages names: status (the predicates of the three
-- held-message indexes), provider_sid (its unique key) and first_queued_at
-- (the SLO gauge's index). So none could be a heap-only (HOT) update: every
-- one wrote a new entry into all seven indexes of the row, about a quarter of
-- the btree insertions of a missed call (pg_waldump --stats at 500 calls/s:
-- 31 btree insertions, 52 WAL records, 7.6 kB of WAL per call).
--
-- After this migration no index of messages names a column those updates
-- change, and pages keep room for the new row versions, so they stay on the
-- page and touch no index:
-- 1. "held" is recorded by hold_reason alone: a constraint ties the two
--    (status 'held' exactly when hold_reason is set), the held-message
--    indexes filter on hold_reason, and every statement that moves a message
--    out of 'held' clears it (they already did; nmc_conv_keyword now records
--    'pause' for the replies it holds, as nmc_conv_first_reply does).
-- 2. provider_sid loses its unique key: status callbacks find their message by
--    our id (?mid= in the StatusCallback URL of every send since 0013), and
--    one without it is stored and answered but changes no message.
-- 3. The SLO gauge reads its newest first responses by trigger time, set when
--    the row is inserted, instead of by queue time (actors/reporting).
-- 4. fillfactor 50: a message row is inserted once and rewritten about three
--    times, each time soon after the last; half of each page is left for the
--    new versions (page pruning reclaims the old ones).
-- 5. nmc_conv_mark_sent goes (below).
UPDATE messages SET hold_reason = 'pause' WHERE status = 'held' AND hold_reason IS NULL;
UPDATE messages SET hold_reason = NULL WHERE status <> 'held' AND hold_reason IS NOT NULL;
ALTER TABLE messages ADD CONSTRAINT messages_held_has_reason CHECK ((status = 'held') = (hold_reason IS NOT NULL));
DROP INDEX messages_held_idx, messages_compliance_held_idx, messages_provider_held_idx, first_responses_queued_idx;
CREATE INDEX messages_held_idx ON messages (created_at) WHERE hold_reason IS NOT NULL;
CREATE INDEX messages_compliance_held_idx ON messages (tenant_id, created_at) WHERE hold_reason = 'compliance';
CREATE INDEX messages_provider_held_idx ON messages (created_at) WHERE hold_reason = 'provider';
CREATE INDEX first_responses_triggered_idx ON messages (triggered_at) WHERE triggered_at IS NOT NULL;
ALTER TABLE messages DROP CONSTRAINT messages_provider_sid_key;
ALTER TABLE messages SET (fillfactor = 50);

-- Sends are marked in groups by one set-based statement of nmc's
-- (NMC_CONV_SQL_MARK_SENT in actors/conversation/conversation_sql.h), which
-- also clears hold_reason when the status moves forward; the one-send
-- function it replaces goes, so that the rule lives in one place.
DROP FUNCTION nmc_conv_mark_sent(uuid, text, text, text, text, text, bigint);

-- As before, and a keyword reply held by the pause records why.
CREATE OR REPLACE FUNCTION nmc_conv_keyword(p_tenant uuid, p_caller text, p_business text, p_message_sid text,
    p_keyword text, p_opt_out boolean, p_reply text, p_reply_kind text, p_status text, p_outbox_id bigint,
    p_correlation text, p_causation text)
RETURNS TABLE(message_id uuid, message_status text)
LANGUAGE plpgsql AS $$
DECLARE
    v_msg uuid; v_status text; v_conv uuid; v_new bigint;
BEGIN
    SELECT m.id, m.status INTO v_msg, v_status FROM messages m
     WHERE m.tenant_id = p_tenant AND m.dedupe_key = 'kw:' || p_message_sid;
    IF FOUND THEN
        RETURN QUERY SELECT v_msg, v_status; RETURN;
    END IF;
    IF p_opt_out IS NOT NULL THEN
        INSERT INTO sms_opt_outs AS o (tenant_id, phone_e164, opted_out, source, keyword)
        VALUES (p_tenant, p_caller, p_opt_out, 'keyword', p_keyword)
        ON CONFLICT (tenant_id, phone_e164) DO UPDATE
           SET opted_out = EXCLUDED.opted_out, source = 'keyword', keyword = EXCLUDED.keyword, updated_at = now();
        INSERT INTO sms_consent_events (tenant_id, phone_e164, opted_out, source, keyword, ref)
        VALUES (p_tenant, p_caller, p_opt_out, 'keyword', p_keyword, p_message_sid)
        ON CONFLICT DO NOTHING RETURNING id INTO v_new;
        IF v_new IS NOT NULL THEN
            INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id)
            VALUES (CASE WHEN p_opt_out THEN 'SmsOptedOut' ELSE 'SmsOptedIn' END, 1,
                    jsonb_build_object('tenant_id', p_tenant, 'phone', p_caller, 'keyword', p_keyword,
                                       'source', 'keyword', 'message_sid', p_message_sid,
                                       'recorded_at', nmc_utc_text(now())),
                    p_tenant, p_correlation, p_causation);
        END IF;
    END IF;
    SELECT c.id INTO v_conv FROM conversations c
     WHERE c.tenant_id = p_tenant AND c.caller_e164 = p_caller AND c.status = 'open';
    INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,
                          status, hold_reason, outbox_id)
    VALUES (p_tenant, v_conv, 'outbound', p_reply_kind, 'kw:' || p_message_sid, p_business, p_caller, p_reply,
            p_status, CASE WHEN p_status = 'held' THEN 'pause' END, p_outbox_id)
    RETURNING id INTO v_msg;
    RETURN QUERY SELECT v_msg, p_status;
END
$$;

-- As before; a message it moves out of 'held' loses its hold reason.
CREATE OR REPLACE FUNCTION nmc_conv_mark_failed(p_message uuid, p_status text, p_code text, p_error text,
                                                p_opt_out boolean)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    m messages%ROWTYPE;
BEGIN
    UPDATE messages SET status = p_status, error_code = COALESCE(p_code, error_code),
           hold_reason = CASE WHEN p_status = 'held' THEN COALESCE(hold_reason, 'pause') END,
           error_message = left(p_error, 500), attempts = attempts + 1, updated_at = now()
     WHERE id = p_message AND nmc_sms_status_rank(status) = 0 RETURNING * INTO m;
    IF NOT FOUND THEN
        SELECT * INTO m FROM messages WHERE id = p_message;
        RETURN m.status;
    END IF;
    IF p_opt_out THEN
        INSERT INTO sms_opt_outs (tenant_id, phone_e164, opted_out, source)
        VALUES (m.tenant_id, m.to_e164, true, 'twilio_21610')
        ON CONFLICT (tenant_id, phone_e164) DO UPDATE SET opted_out = true, source = 'twilio_21610',
            keyword = NULL, updated_at = now();
        INSERT INTO sms_consent_events (tenant_id, phone_e164, opted_out, source, ref)
        VALUES (m.tenant_id, m.to_e164, true, 'twilio_21610', m.id::text) ON CONFLICT DO NOTHING;
    END IF;
    RETURN m.status;
END
$$;

-- As before; held for the pause now always says so.
CREATE OR REPLACE FUNCTION nmc_conv_release_held() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH r AS (
        UPDATE messages SET status = 'retry', hold_reason = NULL, updated_at = now()
         WHERE hold_reason = 'pause'
        RETURNING id, tenant_id, kind)
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, causation_id)
    SELECT 'SmsSendReleased', 1, jsonb_build_object('tenant_id', tenant_id, 'message_id', id, 'kind', kind,
                                                    'released_at', nmc_utc_text(now())),
           tenant_id, 'pause_cleared'
      FROM r;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

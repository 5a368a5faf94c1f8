-- Reverts 0040: the indexes, constraint and functions as 0038 left them.
ALTER TABLE messages DROP CONSTRAINT messages_held_has_reason;
ALTER TABLE messages RESET (fillfactor);
DROP INDEX messages_held_idx, messages_compliance_held_idx, messages_provider_held_idx, first_responses_triggered_idx;
CREATE INDEX messages_held_idx ON messages (created_at) WHERE status = 'held';
CREATE INDEX messages_compliance_held_idx ON messages (tenant_id, created_at)
    WHERE status = 'held' AND hold_reason = 'compliance';
CREATE INDEX messages_provider_held_idx ON messages (created_at) WHERE status = 'held' AND hold_reason = 'provider';
CREATE INDEX first_responses_queued_idx ON messages (first_queued_at) WHERE first_queued_at IS NOT NULL;
ALTER TABLE messages ADD CONSTRAINT messages_provider_sid_key UNIQUE (provider_sid);

CREATE OR REPLACE FUNCTION nmc_conv_mark_sent(p_message uuid, p_status text, p_sid text, p_correlation text, p_causation text, p_lease_owner text, p_lease_ms bigint)
 RETURNS TABLE(first_response_ms bigint, ev_id bigint, ev_event_id uuid, ev_payload text, ev_created_ms bigint)
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_tenant uuid; v_conv uuid; v_to text; v_sid text; v_trig timestamptz; v_queued timestamptz; v_was timestamptz;
BEGIN
    -- One statement: the CTE locks the row and reads first_queued_at as it
    -- was (the latest committed version, READ COMMITTED), so FirstReplySent
    -- is written exactly once even if two deliveries mark the same send.
    WITH old AS (SELECT o.id, o.first_queued_at FROM messages o WHERE o.id = p_message FOR UPDATE)
    UPDATE messages u SET status = CASE WHEN nmc_sms_status_advances(u.status, p_status) THEN p_status ELSE u.status END,
           provider_sid = COALESCE(u.provider_sid, p_sid), queued_at = COALESCE(u.queued_at, now()),
           first_queued_at = CASE WHEN u.triggered_at IS NOT NULL
                                  THEN COALESCE(u.first_queued_at, u.queued_at, now()) END,
           attempts = u.attempts + 1, error_code = NULL, error_message = NULL, updated_at = now()
      FROM old WHERE u.id = old.id
    RETURNING u.tenant_id, u.conversation_id, u.to_e164, u.provider_sid, u.triggered_at, u.first_queued_at,
              old.first_queued_at
         INTO v_tenant, v_conv, v_to, v_sid, v_trig, v_queued, v_was;
    IF NOT FOUND OR v_trig IS NULL OR v_was IS NOT NULL THEN
        RETURN;
    END IF;
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id,
                               locked_by, locked_until, attempts)
    VALUES ('FirstReplySent', 1, jsonb_build_object(
                'tenant_id', v_tenant, 'conversation_id', v_conv, 'message_id', p_message,
                'to', v_to, 'provider_sid', v_sid,
                'triggered_at', nmc_utc_text(v_trig), 'queued_at', nmc_utc_text(v_queued),
                'first_response_ms', (extract(epoch FROM v_queued - v_trig) * 1000)::bigint),
            v_tenant, p_correlation, p_causation, p_lease_owner,
            CASE WHEN p_lease_owner IS NOT NULL THEN now() + p_lease_ms * interval '1 millisecond' END,
            CASE WHEN p_lease_owner IS NOT NULL THEN 1 ELSE 0 END)
    RETURNING id, event_id, payload::text, (extract(epoch FROM created_at) * 1000)::bigint
         INTO ev_id, ev_event_id, ev_payload, ev_created_ms;
    first_response_ms := (extract(epoch FROM v_queued - v_trig) * 1000)::bigint;
    RETURN NEXT;
END
$function$

;

CREATE OR REPLACE FUNCTION nmc_conv_keyword(p_tenant uuid, p_caller text, p_business text, p_message_sid text, p_keyword text, p_opt_out boolean, p_reply text, p_reply_kind text, p_status text, p_outbox_id bigint, p_correlation text, p_causation text)
 RETURNS TABLE(message_id uuid, message_status text)
 LANGUAGE plpgsql
AS $function$
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
                          status, outbox_id)
    VALUES (p_tenant, v_conv, 'outbound', p_reply_kind, 'kw:' || p_message_sid, p_business, p_caller, p_reply,
            p_status, p_outbox_id)
    RETURNING id INTO v_msg;
    RETURN QUERY SELECT v_msg, p_status;
END
$function$

;

CREATE OR REPLACE FUNCTION nmc_conv_mark_failed(p_message uuid, p_status text, p_code text, p_error text, p_opt_out boolean)
 RETURNS text
 LANGUAGE plpgsql
AS $function$
DECLARE
    m messages%ROWTYPE;
BEGIN
    UPDATE messages SET status = p_status, error_code = COALESCE(p_code, error_code),
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
$function$

;

CREATE OR REPLACE FUNCTION nmc_conv_release_held()
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
    n integer;
BEGIN
    WITH r AS (
        UPDATE messages SET status = 'retry', hold_reason = NULL, updated_at = now()
         WHERE status = 'held' AND COALESCE(hold_reason, 'pause') = 'pause'
        RETURNING id, tenant_id, kind)
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, causation_id)
    SELECT 'SmsSendReleased', 1, jsonb_build_object('tenant_id', tenant_id, 'message_id', id, 'kind', kind,
                                                    'released_at', nmc_utc_text(now())),
           tenant_id, 'pause_cleared'
      FROM r;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$function$

;


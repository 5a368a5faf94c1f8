-- The conversation module's writes, one function per decision so each is
-- one round trip and atomic: the gates (compliance, opt-out, repeat window)
-- are re-checked inside the transaction that records the intent, so a STOP
-- or a compliance change that lands between our read and our write wins.

-- ISO day of week and local time ("1 08:30", Monday = 1) in a tenant's zone;
-- an unknown zone falls back to UTC instead of failing the send.
CREATE FUNCTION nmc_local_dow_time(tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN to_char(now() AT TIME ZONE tz, 'ID HH24:MI');
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN to_char(now() AT TIME ZONE 'UTC', 'ID HH24:MI');
END
$$;

CREATE FUNCTION nmc_utc_text(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Records the first-reply intent (or reports the one an earlier delivery
-- recorded). blocked names the gate that stopped it: no_tenant, compliance,
-- opted_out, repeat (then the missed call is counted on the open conversation).
CREATE FUNCTION nmc_conv_first_reply(
    p_tenant uuid, p_caller text, p_business text, p_trigger text, p_trigger_ref text,
    p_triggered_at timestamptz, p_dedupe text, p_body text, p_status text, p_outbox_id bigint,
    p_missed integer, p_repeat_minutes integer, p_correlation text, p_causation text)
RETURNS TABLE (message_id uuid, message_status text, conversation_id uuid, started boolean, blocked text)
LANGUAGE plpgsql AS $$
DECLARE
    v_msg uuid; v_status text; v_conv uuid; v_started boolean; v_comp text;
BEGIN
    SELECT m.id, m.status, m.conversation_id INTO v_msg, v_status, v_conv
      FROM messages m WHERE m.tenant_id = p_tenant AND m.dedupe_key = p_dedupe;
    IF FOUND THEN
        RETURN QUERY SELECT v_msg, v_status, v_conv, false, NULL::text; RETURN;
    END IF;
    SELECT t.compliance_status INTO v_comp FROM tenants t WHERE t.id = p_tenant;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::uuid, false, 'no_tenant'::text; RETURN;
    END IF;
    IF v_comp <> 'approved' THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::uuid, false, 'compliance'::text; RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM sms_opt_outs o WHERE o.tenant_id = p_tenant AND o.phone_e164 = p_caller AND o.opted_out) THEN
        RETURN QUERY SELECT NULL::uuid, NULL::text, NULL::uuid, false, 'opted_out'::text; RETURN;
    END IF;
    IF p_repeat_minutes > 0 AND EXISTS (
        SELECT 1 FROM messages r WHERE r.tenant_id = p_tenant AND r.to_e164 = p_caller AND r.kind = 'first_reply'
           AND r.created_at > now() - p_repeat_minutes * interval '1 minute') THEN
        UPDATE conversations c SET missed_calls = c.missed_calls + p_missed, last_activity_at = now()
         WHERE c.tenant_id = p_tenant AND c.caller_e164 = p_caller AND c.status = 'open' RETURNING c.id INTO v_conv;
        RETURN QUERY SELECT NULL::uuid, NULL::text, v_conv, false, 'repeat'::text; RETURN;
    END IF;
    INSERT INTO conversations AS c (tenant_id, caller_e164, business_e164, trigger, missed_calls)
    VALUES (p_tenant, p_caller, p_business, p_trigger, p_missed)
    ON CONFLICT (tenant_id, caller_e164) WHERE status = 'open'
    DO UPDATE SET last_activity_at = now(), missed_calls = c.missed_calls + EXCLUDED.missed_calls
    RETURNING c.id, (c.xmax = 0) INTO v_conv, v_started;
    INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,
                          status, outbox_id)
    VALUES (p_tenant, v_conv, 'outbound', 'first_reply', p_dedupe, p_business, p_caller, p_body, p_status,
            p_outbox_id)
    RETURNING id INTO v_msg;
    INSERT INTO first_responses (message_id, conversation_id, tenant_id, trigger, triggered_at)
    VALUES (v_msg, v_conv, p_tenant, p_trigger, p_triggered_at);
    IF v_started THEN
        INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id)
        VALUES ('ConversationStarted', 1, jsonb_build_object(
                    'conversation_id', v_conv, 'tenant_id', p_tenant, 'caller', p_caller,
                    'business_number', p_business, 'trigger', p_trigger, 'trigger_ref', p_trigger_ref,
                    'first_message_id', v_msg, 'opened_at', nmc_utc_text(now())),
                p_tenant, p_correlation, p_causation);
    END IF;
    RETURN QUERY SELECT v_msg, p_status, v_conv, v_started, NULL::text;
END
$$;

-- An inbound SMS on the caller's open conversation (none: conversation_id
-- NULL). Idempotent per MessageSid.
CREATE FUNCTION nmc_conv_inbound(p_tenant uuid, p_caller text, p_business text, p_message_sid text, p_body text)
RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_conv uuid;
BEGIN
    UPDATE conversations c SET last_activity_at = now()
     WHERE c.tenant_id = p_tenant AND c.caller_e164 = p_caller AND c.status = 'open' RETURNING c.id INTO v_conv;
    INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,
                          status, provider_sid)
    VALUES (p_tenant, v_conv, 'inbound', 'inbound', 'in:' || p_message_sid, p_caller, p_business,
            left(p_body, 1600), 'received', p_message_sid)
    ON CONFLICT DO NOTHING;
    RETURN v_conv;
END
$$;

-- A keyword (STOP/START/HELP family): the ledger change (p_opt_out true,
-- false, or NULL for HELP), the consent history, its event, and the reply
-- intent, all per MessageSid so a redelivery changes nothing twice.
CREATE FUNCTION nmc_conv_keyword(
    p_tenant uuid, p_caller text, p_business text, p_message_sid text, p_keyword text, p_opt_out boolean,
    p_reply text, p_reply_kind text, p_status text, p_outbox_id bigint, p_correlation text, p_causation text)
RETURNS TABLE (message_id uuid, message_status text)
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
                          status, outbox_id)
    VALUES (p_tenant, v_conv, 'outbound', p_reply_kind, 'kw:' || p_message_sid, p_business, p_caller, p_reply,
            p_status, p_outbox_id)
    RETURNING id INTO v_msg;
    RETURN QUERY SELECT v_msg, p_status;
END
$$;

-- Twilio accepted the send: status forward only, the first response timed
-- on database time, FirstReplySent emitted once.
CREATE FUNCTION nmc_conv_mark_sent(p_message uuid, p_status text, p_sid text, p_correlation text, p_causation text)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    m messages%ROWTYPE; v_trig timestamptz; v_queued timestamptz;
BEGIN
    UPDATE messages SET status = CASE WHEN nmc_sms_status_advances(status, p_status) THEN p_status ELSE status END,
           provider_sid = COALESCE(provider_sid, p_sid), queued_at = COALESCE(queued_at, now()),
           attempts = attempts + 1, error_code = NULL, error_message = NULL, updated_at = now()
     WHERE id = p_message RETURNING * INTO m;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    UPDATE first_responses SET first_queued_at = m.queued_at
     WHERE message_id = p_message AND first_queued_at IS NULL RETURNING triggered_at, first_queued_at
      INTO v_trig, v_queued;
    IF v_trig IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id)
    VALUES ('FirstReplySent', 1, jsonb_build_object(
                'tenant_id', m.tenant_id, 'conversation_id', m.conversation_id, 'message_id', m.id,
                'to', m.to_e164, 'provider_sid', m.provider_sid,
                'triggered_at', nmc_utc_text(v_trig), 'queued_at', nmc_utc_text(v_queued),
                'first_response_ms', (extract(epoch FROM v_queued - v_trig) * 1000)::bigint),
            m.tenant_id, p_correlation, p_causation);
    RETURN (extract(epoch FROM v_queued - v_trig) * 1000)::bigint;
END
$$;

-- A send that Twilio did not accept (p_status retry or failed) or whose
-- outcome is unknown (ambiguous). Only a row no status callback has moved
-- yet is changed. p_opt_out (error 21610) records the opt-out as well.
CREATE FUNCTION nmc_conv_mark_failed(p_message uuid, p_status text, p_code text, p_error text, p_opt_out boolean)
RETURNS text
LANGUAGE plpgsql AS $$
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
$$;

-- PAUSE_OUTBOUND_SMS cleared: every held send gets an event that drives it
-- (crash-safe: the event is durable before anything is sent).
CREATE FUNCTION nmc_conv_release_held() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    WITH r AS (
        UPDATE messages SET status = 'retry', updated_at = now() WHERE status = 'held'
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

-- Back to the first_responses table (0011, 0030, 0031, 0034), 0036's
-- nmc_conv_first_reply and nmc_conv_mark_sent and 0014's
-- nmc_conv_release_compliance.
DROP VIEW first_responses;
CREATE TABLE first_responses (
    message_id      uuid PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL,
    trigger         nmc_trigger NOT NULL,
    triggered_at    timestamptz NOT NULL,
    first_queued_at timestamptz
);
INSERT INTO first_responses (message_id, conversation_id, tenant_id, trigger, triggered_at, first_queued_at)
SELECT id, conversation_id, tenant_id, trigger, triggered_at, first_queued_at FROM messages
 WHERE triggered_at IS NOT NULL AND conversation_id IS NOT NULL;
DROP INDEX reporting_first_responses_day_idx;
DROP INDEX first_responses_queued_idx;
ALTER TABLE messages DROP COLUMN trigger, DROP COLUMN triggered_at, DROP COLUMN first_queued_at;
CREATE INDEX first_responses_queued_idx ON first_responses (first_queued_at) WHERE first_queued_at IS NOT NULL;
CREATE INDEX reporting_first_responses_day_idx ON first_responses (tenant_id, triggered_at);

CREATE OR REPLACE FUNCTION nmc_conv_first_reply(
    p_tenant uuid, p_caller text, p_business text, p_trigger text, p_trigger_ref text,
    p_triggered_at timestamptz, p_dedupe text, p_body text, p_status text, p_outbox_id bigint,
    p_missed integer, p_repeat_minutes integer, p_correlation text, p_causation text,
    p_lease_owner text, p_lease_ms bigint, p_tenant_version text)
RETURNS TABLE (message_id uuid, message_status text, conversation_id uuid, started boolean, blocked text,
               ev_id bigint, ev_event_id uuid, ev_payload text, ev_created_ms bigint, created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_comp text; v_hold text; v_ver text; v_opted boolean; v_repeat boolean;
BEGIN
    started := false;
    created := false;
    SELECT m.id, m.status, m.conversation_id INTO message_id, message_status, conversation_id
      FROM messages m WHERE m.tenant_id = p_tenant AND m.dedupe_key = p_dedupe;
    IF FOUND THEN
        RETURN NEXT; RETURN;
    END IF;
    SELECT t.compliance_status, t.xmin::text,
           EXISTS (SELECT 1 FROM sms_opt_outs o
                    WHERE o.tenant_id = p_tenant AND o.phone_e164 = p_caller AND o.opted_out),
           p_repeat_minutes > 0 AND EXISTS (
               SELECT 1 FROM messages r WHERE r.tenant_id = p_tenant AND r.to_e164 = p_caller
                  AND r.kind = 'first_reply' AND r.created_at > now() - p_repeat_minutes * interval '1 minute')
      INTO v_comp, v_ver, v_opted, v_repeat FROM tenants t WHERE t.id = p_tenant;
    IF NOT FOUND THEN
        blocked := 'no_tenant'; RETURN NEXT; RETURN;
    END IF;
    IF p_tenant_version IS NOT NULL AND p_tenant_version <> v_ver THEN
        -- the caller rendered the body from a cached copy of the tenant that
        -- has changed since: nothing written, it loads the tenant and retries
        blocked := 'stale'; RETURN NEXT; RETURN;
    END IF;
    IF v_comp <> 'approved' THEN
        SELECT t.compliance_status INTO v_comp FROM tenants t WHERE t.id = p_tenant FOR SHARE;
    END IF;
    IF v_opted THEN
        blocked := 'opted_out'; RETURN NEXT; RETURN;
    END IF;
    IF v_repeat THEN
        UPDATE conversations c SET missed_calls = c.missed_calls + p_missed, last_activity_at = now()
         WHERE c.tenant_id = p_tenant AND c.caller_e164 = p_caller AND c.status = 'open'
        RETURNING c.id INTO conversation_id;
        blocked := 'repeat'; RETURN NEXT; RETURN;
    END IF;
    IF v_comp <> 'approved' THEN
        v_hold := 'compliance';
        p_status := 'held';
    ELSIF p_status = 'held' THEN
        v_hold := 'pause';
    END IF;
    INSERT INTO conversations AS c (tenant_id, caller_e164, business_e164, trigger, missed_calls)
    VALUES (p_tenant, p_caller, p_business, p_trigger, p_missed)
    ON CONFLICT (tenant_id, caller_e164) WHERE status = 'open'
    DO UPDATE SET last_activity_at = now(), missed_calls = c.missed_calls + EXCLUDED.missed_calls
    RETURNING c.id, (c.xmax = 0) INTO conversation_id, started;
    INSERT INTO messages AS m (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,
                               status, hold_reason, outbox_id)
    VALUES (p_tenant, conversation_id, 'outbound', 'first_reply', p_dedupe, p_business, p_caller, p_body, p_status,
            v_hold, p_outbox_id)
    RETURNING m.id INTO message_id;
    INSERT INTO first_responses AS f (message_id, conversation_id, tenant_id, trigger, triggered_at)
    VALUES (message_id, conversation_id, p_tenant, p_trigger, p_triggered_at);
    IF started THEN
        INSERT INTO outbox_events AS o (event_name, schema_version, payload, tenant_id, correlation_id, causation_id,
                                        locked_by, locked_until, attempts)
        VALUES ('ConversationStarted', 1, jsonb_build_object(
                    'conversation_id', conversation_id, 'tenant_id', p_tenant, 'caller', p_caller,
                    'business_number', p_business, 'trigger', p_trigger, 'trigger_ref', p_trigger_ref,
                    'first_message_id', message_id, 'opened_at', nmc_utc_text(now())),
                p_tenant, p_correlation, p_causation, p_lease_owner,
                CASE WHEN p_lease_owner IS NOT NULL THEN now() + p_lease_ms * interval '1 millisecond' END,
                CASE WHEN p_lease_owner IS NOT NULL THEN 1 ELSE 0 END)
        RETURNING o.id, o.event_id, o.payload::text, (extract(epoch FROM o.created_at) * 1000)::bigint
             INTO ev_id, ev_event_id, ev_payload, ev_created_ms;
    END IF;
    message_status := p_status;
    blocked := CASE WHEN v_hold = 'compliance' THEN 'compliance' END;
    created := true;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION nmc_conv_mark_sent(p_message uuid, p_status text, p_sid text, p_correlation text, p_causation text,
                                   p_lease_owner text, p_lease_ms bigint)
RETURNS TABLE (first_response_ms bigint, ev_id bigint, ev_event_id uuid, ev_payload text, ev_created_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    m messages%ROWTYPE; v_trig timestamptz; v_queued timestamptz;
BEGIN
    UPDATE messages SET status = CASE WHEN nmc_sms_status_advances(status, p_status) THEN p_status ELSE status END,
           provider_sid = COALESCE(provider_sid, p_sid), queued_at = COALESCE(queued_at, now()),
           attempts = attempts + 1, error_code = NULL, error_message = NULL, updated_at = now()
     WHERE id = p_message RETURNING * INTO m;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE first_responses SET first_queued_at = m.queued_at
     WHERE message_id = p_message AND first_queued_at IS NULL RETURNING triggered_at, first_queued_at
      INTO v_trig, v_queued;
    IF v_trig IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id,
                               locked_by, locked_until, attempts)
    VALUES ('FirstReplySent', 1, jsonb_build_object(
                'tenant_id', m.tenant_id, 'conversation_id', m.conversation_id, 'message_id', m.id,
                'to', m.to_e164, 'provider_sid', m.provider_sid,
                'triggered_at', nmc_utc_text(v_trig), 'queued_at', nmc_utc_text(v_queued),
                'first_response_ms', (extract(epoch FROM v_queued - v_trig) * 1000)::bigint),
            m.tenant_id, p_correlation, p_causation, p_lease_owner,
            CASE WHEN p_lease_owner IS NOT NULL THEN now() + p_lease_ms * interval '1 millisecond' END,
            CASE WHEN p_lease_owner IS NOT NULL THEN 1 ELSE 0 END)
    RETURNING id, event_id, payload::text, (extract(epoch FROM created_at) * 1000)::bigint
         INTO ev_id, ev_event_id, ev_payload, ev_created_ms;
    first_response_ms := (extract(epoch FROM v_queued - v_trig) * 1000)::bigint;
    RETURN NEXT;
END
$$;

CREATE OR REPLACE FUNCTION nmc_conv_release_compliance(p_tenant uuid, p_max_minutes integer, p_correlation text,
                                            p_causation text)
RETURNS TABLE (released integer, expired integer)
LANGUAGE plpgsql AS $$
DECLARE
    n_rel integer := 0; n_exp integer := 0;
BEGIN
    PERFORM 1 FROM tenants t WHERE t.id = p_tenant AND t.compliance_status = 'approved' FOR SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 0, 0; RETURN;
    END IF;
    UPDATE messages SET status = 'failed', hold_reason = NULL, updated_at = now(),
           error_message = 'not sent: compliance approved more than ' || p_max_minutes || ' minutes after the trigger'
     WHERE tenant_id = p_tenant AND status = 'held' AND hold_reason = 'compliance'
       AND created_at <= now() - p_max_minutes * interval '1 minute';
    GET DIAGNOSTICS n_exp = ROW_COUNT;
    WITH r AS (
        UPDATE messages SET status = 'retry', hold_reason = NULL, updated_at = now()
         WHERE tenant_id = p_tenant AND status = 'held' AND hold_reason = 'compliance'
        RETURNING id, tenant_id, kind),
    fr AS (
        UPDATE first_responses f SET triggered_at = now() FROM r WHERE f.message_id = r.id AND f.first_queued_at IS NULL)
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id)
    SELECT 'SmsSendReleased', 1, jsonb_build_object('tenant_id', tenant_id, 'message_id', id, 'kind', kind,
                                                    'released_at', nmc_utc_text(now())),
           tenant_id, p_correlation, p_causation
      FROM r;
    GET DIAGNOSTICS n_rel = ROW_COUNT;
    RETURN QUERY SELECT n_rel, n_exp;
END
$$;

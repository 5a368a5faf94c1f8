-- The first-response tracker moves onto the message it times. Every first
-- reply wrote a first_responses row beside its messages row (an INSERT with
-- two foreign-key checks and two index entries) and marked it queued in a
-- second UPDATE (three more index entries, as that update cannot be HOT):
-- two statements of the missed-call path and ~8% of PostgreSQL's CPU per
-- call by pg_stat_statements at 1,500 calls/s. The row held nothing the
-- message cannot: its key was the message's id, conversation and tenant
-- were the message's, and first_queued_at is when the same send was marked
-- queued. So messages gets trigger, triggered_at and first_queued_at, the
-- first-reply and mark-sent functions write them in the statements they
-- already run, and first_responses becomes a view with the same columns for
-- its readers (reporting's SLO gauge and daily rollup, operators' queries).
-- The two indexes move to messages as partial indexes with the same keys.
ALTER TABLE messages ADD COLUMN trigger nmc_trigger, ADD COLUMN triggered_at timestamptz,
    ADD COLUMN first_queued_at timestamptz;
UPDATE messages m SET trigger = f.trigger, triggered_at = f.triggered_at, first_queued_at = f.first_queued_at
  FROM first_responses f WHERE f.message_id = m.id;
DROP TABLE first_responses;
CREATE VIEW first_responses AS
    SELECT id AS message_id, conversation_id, tenant_id, trigger, triggered_at, first_queued_at
      FROM messages WHERE triggered_at IS NOT NULL;
CREATE INDEX reporting_first_responses_day_idx ON messages (tenant_id, triggered_at) WHERE triggered_at IS NOT NULL;
CREATE INDEX first_responses_queued_idx ON messages (first_queued_at) WHERE first_queued_at IS NOT NULL;

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
                               status, hold_reason, outbox_id, trigger, triggered_at)
    VALUES (p_tenant, conversation_id, 'outbound', 'first_reply', p_dedupe, p_business, p_caller, p_body, p_status,
            v_hold, p_outbox_id, p_trigger, p_triggered_at)
    RETURNING m.id INTO message_id;
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
$$;

-- A reply held for compliance is timed from its release (0014).
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
        UPDATE messages SET status = 'retry', hold_reason = NULL, updated_at = now(),
               triggered_at = CASE WHEN triggered_at IS NOT NULL AND first_queued_at IS NULL THEN now()
                                   ELSE triggered_at END
         WHERE tenant_id = p_tenant AND status = 'held' AND hold_reason = 'compliance'
        RETURNING id, tenant_id, kind)
    INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id, causation_id)
    SELECT 'SmsSendReleased', 1, jsonb_build_object('tenant_id', tenant_id, 'message_id', id, 'kind', kind,
                                                    'released_at', nmc_utc_text(now())),
           tenant_id, p_correlation, p_causation
      FROM r;
    GET DIAGNOSTICS n_rel = ROW_COUNT;
    RETURN QUERY SELECT n_rel, n_exp;
END
$$;

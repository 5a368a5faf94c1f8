-- Held sends name why they are held, so each hold is released by its own
-- cause: PAUSE_OUTBOUND_SMS cleared releases 'pause' holds only, and
-- ComplianceStatusChanged(approved) releases that tenant's 'compliance'
-- holds only (spec 000 testing 4.2: "blocked before approval; unblocks on
-- ComplianceStatusChanged(approved)"). NULL on a held row (rows written
-- before this migration, keyword replies) means 'pause'.
ALTER TABLE messages ADD COLUMN hold_reason text CHECK (hold_reason IN ('pause', 'compliance'));
CREATE INDEX messages_compliance_held_idx ON messages (tenant_id, created_at)
    WHERE status = 'held' AND hold_reason = 'compliance';

-- As in 0013, except that a tenant whose compliance is not approved gets
-- its first reply recorded as held (hold_reason 'compliance', blocked
-- 'compliance' with the message id) instead of nothing, so the approval can
-- send it. The opt-out and repeat gates run first: one held reply per
-- caller and repeat window, none for an opted-out caller. The compliance
-- read takes FOR SHARE on the tenant row only when the tenant is not
-- approved (the hot path stays lock-free): the admin PATCH locks the row
-- FOR UPDATE, so either it waits for our commit (and its event's release
-- then sees our held row) or we wait for it and read the new status.
CREATE OR REPLACE FUNCTION nmc_conv_first_reply(
    p_tenant uuid, p_caller text, p_business text, p_trigger text, p_trigger_ref text,
    p_triggered_at timestamptz, p_dedupe text, p_body text, p_status text, p_outbox_id bigint,
    p_missed integer, p_repeat_minutes integer, p_correlation text, p_causation text)
RETURNS TABLE (message_id uuid, message_status text, conversation_id uuid, started boolean, blocked text)
LANGUAGE plpgsql AS $$
DECLARE
    v_msg uuid; v_status text; v_conv uuid; v_started boolean; v_comp text; v_hold text;
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
        SELECT t.compliance_status INTO v_comp FROM tenants t WHERE t.id = p_tenant FOR SHARE;
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
    RETURNING c.id, (c.xmax = 0) INTO v_conv, v_started;
    INSERT INTO messages (tenant_id, conversation_id, direction, kind, dedupe_key, from_e164, to_e164, body,
                          status, hold_reason, outbox_id)
    VALUES (p_tenant, v_conv, 'outbound', 'first_reply', p_dedupe, p_business, p_caller, p_body, p_status,
            v_hold, p_outbox_id)
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
    RETURN QUERY SELECT v_msg, p_status, v_conv, v_started,
                        CASE WHEN v_hold = 'compliance' THEN 'compliance' END::text;
END
$$;

-- PAUSE_OUTBOUND_SMS cleared: as in 0013, but only pause holds.
CREATE OR REPLACE FUNCTION nmc_conv_release_held() RETURNS integer
LANGUAGE plpgsql AS $$
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
$$;

-- ComplianceStatusChanged(approved): the tenant's compliance holds younger
-- than p_max_minutes are released (one SmsSendReleased each, sent by the
-- conversation actor, which re-checks opt-out and pause); older ones are
-- failed, never sent: a first reply a day after the call reads as spam.
-- The first-response tracker of a released reply is timed from the release:
-- the wait for approval is the tenant's onboarding, not our latency, and
-- must not read as an SLO breach (messages.created_at keeps the call time).
-- Does nothing unless the tenant is approved now (a stale or repeated event
-- after a revocation). Idempotent: released rows are no longer held.
CREATE FUNCTION nmc_conv_release_compliance(p_tenant uuid, p_max_minutes integer, p_correlation text,
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

-- Puts a send that may not leave now back on hold (paused again after its
-- release, or compliance revoked): only a row Twilio has not accepted.
-- Returns the row's status afterwards (NULL: no such message).
CREATE FUNCTION nmc_conv_hold(p_message uuid, p_reason text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE messages SET status = 'held', hold_reason = p_reason, updated_at = now()
     WHERE id = p_message AND nmc_sms_status_rank(status) = 0 RETURNING status INTO v_status;
    IF NOT FOUND THEN
        SELECT m.status INTO v_status FROM messages m WHERE m.id = p_message;
    END IF;
    RETURN v_status;
END
$$;

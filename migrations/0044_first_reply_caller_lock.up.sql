-- Two missed calls of one caller decided at the same time, each in its own
-- transaction (two webhooks in two transactions of one instance or of two
-- instances, or two CallDetected jobs of the conversation actor), both read
-- no first reply in the repeat window, as neither saw the other's
-- uncommitted message; the second then waited on the open conversation's
-- unique key and, once the first committed, wrote a second first reply.
-- Found by tests/e2e/test_first_sms_gates.c failing in CI (four messages
-- held for three callers where one caller called twice).
--
-- nmc_conv_first_reply now takes a transaction-scoped advisory lock on
-- (tenant, caller) before it reads anything: the second decision waits for
-- the first to commit and then reads it (READ COMMITTED: each statement of
-- the function takes a new snapshot). The two-key form, hashes of the
-- tenant and the caller, keeps clear of the single-key locks of the
-- migration runner and the maintenance jobs; a collision only makes two
-- callers wait for each other. A webhook batch takes these locks in its
-- rows' order, as it already took the open conversations' keys, so two
-- concurrent batches holding the same two callers in opposite orders can
-- deadlock now as they could before (PostgreSQL aborts one, and the
-- telephony actor retries that batch one webhook per transaction).

-- As in 0043, with the lock.
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
    -- one caller of a tenant at a time, until commit: what the gates below
    -- read (an earlier first reply in the repeat window, a message with
    -- this dedupe key) includes a decision another transaction is making
    -- now, instead of missing it and writing a second first reply
    PERFORM pg_advisory_xact_lock(hashtext(p_tenant::text), hashtext(p_caller));
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
        SELECT c.id INTO conversation_id FROM conversations c
         WHERE c.tenant_id = p_tenant AND c.caller_e164 = p_caller AND c.status = 'open';
        IF FOUND AND p_missed > 0 THEN
            -- counted once per call, however often its CallDetected comes
            INSERT INTO conversation_repeat_calls (tenant_id, call_sid, conversation_id)
            VALUES (p_tenant, p_trigger_ref, conversation_id) ON CONFLICT DO NOTHING;
            IF FOUND THEN
                UPDATE conversations c SET missed_calls = c.missed_calls + p_missed, last_activity_at = now()
                 WHERE c.id = conversation_id;
            END IF;
        ELSIF FOUND THEN
            UPDATE conversations c SET last_activity_at = now() WHERE c.id = conversation_id;
        END IF;
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

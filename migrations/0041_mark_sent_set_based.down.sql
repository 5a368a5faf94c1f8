-- Reverts 0041: nmc_conv_mark_sent as 0040 defined it.
-- As 0038, and a status that moves forward clears hold_reason (a message is
-- never sent while held; this keeps the constraint if one ever is).
CREATE OR REPLACE FUNCTION nmc_conv_mark_sent(p_message uuid, p_status text, p_sid text, p_correlation text, p_causation text,
                                   p_lease_owner text, p_lease_ms bigint)
RETURNS TABLE (first_response_ms bigint, ev_id bigint, ev_event_id uuid, ev_payload text, ev_created_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_tenant uuid; v_conv uuid; v_to text; v_sid text; v_trig timestamptz; v_queued timestamptz; v_was timestamptz;
BEGIN
    WITH old AS (SELECT o.id, o.first_queued_at FROM messages o WHERE o.id = p_message FOR UPDATE)
    UPDATE messages u SET status = CASE WHEN nmc_sms_status_advances(u.status, p_status) THEN p_status ELSE u.status END,
           hold_reason = CASE WHEN nmc_sms_status_advances(u.status, p_status) THEN NULL ELSE u.hold_reason END,
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

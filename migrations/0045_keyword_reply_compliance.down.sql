-- 0040's function.
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

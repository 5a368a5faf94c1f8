-- Telephony: one row per call that reached a tenant's number and was
-- classified as missed. The unique key (tenant_id, call_sid) is the second
-- line of defence (after webhook_events) that makes one missed call give one
-- CallDetected event, whatever Twilio replays or retries with new tokens.
CREATE TABLE missed_calls (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    call_sid     text NOT NULL CHECK (call_sid ~ '^CA[0-9A-Za-z]{1,64}$'),
    from_e164    text NOT NULL CHECK (length(from_e164) BETWEEN 1 AND 32),
    to_e164      text NOT NULL CHECK (length(to_e164) BETWEEN 1 AND 32),
    call_status  text NOT NULL CHECK (call_status IN ('no-answer', 'busy', 'failed', 'completed', 'canceled')),
    duration_s   integer CHECK (duration_s >= 0),
    detected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, call_sid)
);
CREATE INDEX missed_calls_caller_idx ON missed_calls (tenant_id, from_e164, detected_at);

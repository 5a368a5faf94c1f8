-- Conversations, messages, the opt-out ledger and the first-response tracker.

-- One open conversation per (tenant, caller): the partial unique index is
-- what makes concurrent first contacts (a call and an SMS at once) converge.
CREATE TABLE conversations (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id          uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    caller_e164        text NOT NULL CHECK (length(caller_e164) BETWEEN 1 AND 32),
    business_e164      text NOT NULL CHECK (length(business_e164) BETWEEN 1 AND 32),
    status             text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    trigger            text NOT NULL CHECK (trigger IN ('missed_call', 'inbound_sms')),
    missed_calls       integer NOT NULL DEFAULT 0 CHECK (missed_calls >= 0),
    opened_at          timestamptz NOT NULL DEFAULT now(),
    last_activity_at   timestamptz NOT NULL DEFAULT now(),
    closed_at          timestamptz
);
CREATE UNIQUE INDEX conversations_open_uq ON conversations (tenant_id, caller_e164) WHERE status = 'open';
CREATE INDEX conversations_tenant_idx ON conversations (tenant_id, opened_at);

-- Messages in both directions. Outbound rows are written as an intent
-- (status 'pending') BEFORE Twilio is called; dedupe_key makes the intent
-- unique per cause ("first:<call_sid>", "first-sms:<message_sid>",
-- "kw:<message_sid>"), so replays, redeliveries and restarts cannot add a
-- second send. status moves forward only (see status_rank).
CREATE TABLE messages (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id uuid REFERENCES conversations(id) ON DELETE CASCADE,
    direction       text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind            text NOT NULL CHECK (kind IN ('first_reply', 'opt_out_confirm', 'opt_in_confirm', 'help',
                                                   'reply', 'inbound')),
    dedupe_key      text NOT NULL CHECK (length(dedupe_key) BETWEEN 1 AND 200),
    from_e164       text NOT NULL,
    to_e164         text NOT NULL,
    body            text NOT NULL CHECK (length(body) <= 1600),
    status          text NOT NULL CHECK (status IN (
                        'pending', 'retry', 'ambiguous', 'held',           -- ours, before Twilio accepted
                        'accepted', 'scheduled', 'queued', 'sending', 'sent', -- Twilio, in flight
                        'delivered', 'undelivered', 'failed', 'canceled', 'read', -- Twilio, final
                        'received')),                                      -- inbound
    provider_sid    text UNIQUE,
    error_code      text,
    error_message   text,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    outbox_id       bigint,             -- the event that drives the send (redelivery, release)
    created_at      timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz,        -- database time Twilio answered queued/accepted
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at);
CREATE INDEX messages_held_idx ON messages (created_at) WHERE status = 'held';
CREATE INDEX messages_first_reply_idx ON messages (tenant_id, to_e164, created_at) WHERE kind = 'first_reply';

-- The opt-out ledger, per tenant (the sender) and phone. Every keyword is
-- kept in sms_consent_events; sms_opt_outs holds the current state.
CREATE TABLE sms_opt_outs (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    phone_e164  text NOT NULL CHECK (length(phone_e164) BETWEEN 1 AND 32),
    opted_out   boolean NOT NULL,
    source      text NOT NULL CHECK (source IN ('keyword', 'twilio_21610', 'admin')),
    keyword     text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, phone_e164)
);
CREATE TABLE sms_consent_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    phone_e164  text NOT NULL,
    opted_out   boolean NOT NULL,
    source      text NOT NULL,
    keyword     text,
    ref         text,               -- MessageSid of the keyword or of the failed send
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, ref, opted_out)
);

-- Reporting's first-response tracker: one row per first reply, from the
-- missed call or inbound SMS (database time of the webhook commit) to the
-- database time our send was accepted by Twilio (queued).
CREATE TABLE first_responses (
    message_id      uuid PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    trigger         text NOT NULL CHECK (trigger IN ('missed_call', 'inbound_sms')),
    triggered_at    timestamptz NOT NULL,
    first_queued_at timestamptz
);
CREATE INDEX first_responses_queued_idx ON first_responses (first_queued_at) WHERE first_queued_at IS NOT NULL;

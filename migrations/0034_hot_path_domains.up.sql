-- The same integrity rules, a cheaper mechanism. PostgreSQL compiles a
-- table's CHECK constraints from their stored text for every statement that
-- writes the table (the executor prepares them per query), while a domain's
-- constraints are compiled once per connection and cached. On the
-- missed-call path that is ~40 constraint compilations per call, about a
-- tenth of the database's CPU (bench/first_sms.sh); measured on a plpgsql
-- loop of single-row inserts with four checks: 16 us per insert as table
-- CHECKs, 1.1 us as domains. So the CHECK constraints of the tables written
-- per call (webhook_events, outbox_events, missed_calls, conversations,
-- messages, first_responses) become domain types with the same conditions;
-- a violation is still SQLSTATE 23514 (check_violation), now naming the
-- domain's constraint.

CREATE DOMAIN nmc_provider AS text CHECK (VALUE IN ('twilio', 'stripe', 'google', 'jobber'));
CREATE DOMAIN nmc_webhook_key AS text CHECK (length(VALUE) BETWEEN 1 AND 255);
CREATE DOMAIN nmc_event_name AS text CHECK (VALUE ~ '^[A-Z][A-Za-z]+$');
CREATE DOMAIN nmc_json_object AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');
CREATE DOMAIN nmc_count AS integer CHECK (VALUE >= 0);
CREATE DOMAIN nmc_schema_version AS integer CHECK (VALUE >= 1);
CREATE DOMAIN nmc_call_sid AS text CHECK (VALUE ~ '^CA[0-9A-Za-z]{1,64}$');
CREATE DOMAIN nmc_call_status AS text CHECK (VALUE IN ('no-answer', 'busy', 'failed', 'completed', 'canceled'));
CREATE DOMAIN nmc_phone AS text CHECK (length(VALUE) BETWEEN 1 AND 32);
CREATE DOMAIN nmc_conversation_status AS text CHECK (VALUE IN ('open', 'closed'));
CREATE DOMAIN nmc_trigger AS text CHECK (VALUE IN ('missed_call', 'inbound_sms'));
CREATE DOMAIN nmc_sms_body AS text CHECK (length(VALUE) <= 1600);
CREATE DOMAIN nmc_dedupe_key AS text CHECK (length(VALUE) BETWEEN 1 AND 200);
CREATE DOMAIN nmc_direction AS text CHECK (VALUE IN ('inbound', 'outbound'));
CREATE DOMAIN nmc_hold_reason AS text CHECK (VALUE IN ('pause', 'compliance', 'provider'));
CREATE DOMAIN nmc_message_kind AS text CHECK (VALUE IN ('first_reply', 'opt_out_confirm', 'opt_in_confirm', 'help', 'reply', 'inbound'));
CREATE DOMAIN nmc_sms_status AS text CHECK (VALUE IN ('pending', 'retry', 'ambiguous', 'held', 'accepted', 'scheduled', 'queued', 'sending', 'sent',
                                             'delivered', 'undelivered', 'failed', 'canceled', 'read', 'received'));

ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_provider_check, ALTER COLUMN provider TYPE nmc_provider;
ALTER TABLE webhook_events DROP CONSTRAINT webhook_events_event_id_check, ALTER COLUMN event_id TYPE nmc_webhook_key;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_event_name_check, ALTER COLUMN event_name TYPE nmc_event_name;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_payload_check, ALTER COLUMN payload TYPE nmc_json_object;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_attempts_check, ALTER COLUMN attempts TYPE nmc_count;
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_schema_version_check, ALTER COLUMN schema_version TYPE nmc_schema_version;
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_call_sid_check, ALTER COLUMN call_sid TYPE nmc_call_sid;
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_from_e164_check, ALTER COLUMN from_e164 TYPE nmc_phone;
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_to_e164_check, ALTER COLUMN to_e164 TYPE nmc_phone;
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_call_status_check, ALTER COLUMN call_status TYPE nmc_call_status;
ALTER TABLE missed_calls DROP CONSTRAINT missed_calls_duration_s_check, ALTER COLUMN duration_s TYPE nmc_count;
ALTER TABLE conversations DROP CONSTRAINT conversations_caller_e164_check, ALTER COLUMN caller_e164 TYPE nmc_phone;
ALTER TABLE conversations DROP CONSTRAINT conversations_business_e164_check, ALTER COLUMN business_e164 TYPE nmc_phone;
ALTER TABLE conversations DROP CONSTRAINT conversations_status_check, ALTER COLUMN status TYPE nmc_conversation_status;
ALTER TABLE conversations DROP CONSTRAINT conversations_trigger_check, ALTER COLUMN trigger TYPE nmc_trigger;
ALTER TABLE conversations DROP CONSTRAINT conversations_missed_calls_check, ALTER COLUMN missed_calls TYPE nmc_count;
ALTER TABLE messages DROP CONSTRAINT messages_direction_check, ALTER COLUMN direction TYPE nmc_direction;
ALTER TABLE messages DROP CONSTRAINT messages_kind_check, ALTER COLUMN kind TYPE nmc_message_kind;
ALTER TABLE messages DROP CONSTRAINT messages_dedupe_key_check, ALTER COLUMN dedupe_key TYPE nmc_dedupe_key;
ALTER TABLE messages DROP CONSTRAINT messages_body_check, ALTER COLUMN body TYPE nmc_sms_body;
ALTER TABLE messages DROP CONSTRAINT messages_status_check, ALTER COLUMN status TYPE nmc_sms_status;
ALTER TABLE messages DROP CONSTRAINT messages_attempts_check, ALTER COLUMN attempts TYPE nmc_count;
ALTER TABLE messages DROP CONSTRAINT messages_hold_reason_check, ALTER COLUMN hold_reason TYPE nmc_hold_reason;
ALTER TABLE first_responses DROP CONSTRAINT first_responses_trigger_check, ALTER COLUMN trigger TYPE nmc_trigger;

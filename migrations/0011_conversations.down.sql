DROP TABLE IF EXISTS first_responses;
DROP TABLE IF EXISTS sms_consent_events;
DROP TABLE IF EXISTS sms_opt_outs;
DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS conversations;

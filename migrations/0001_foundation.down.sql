DROP TABLE IF EXISTS outbox_events_errors;
DROP TABLE IF EXISTS outbox_events;
DROP TABLE IF EXISTS webhook_events;
DROP TABLE IF EXISTS tenant_phone_numbers;
DROP TABLE IF EXISTS users;
DROP TABLE IF EXISTS tenants;
DROP EXTENSION IF EXISTS btree_gist;

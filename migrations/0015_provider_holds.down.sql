DROP FUNCTION IF EXISTS nmc_conv_release_provider(integer);
DROP INDEX IF EXISTS messages_provider_held_idx;
-- provider holds become pause holds: the next resume or restart sends them
UPDATE messages SET hold_reason = 'pause' WHERE status = 'held' AND hold_reason = 'provider';
ALTER TABLE messages DROP CONSTRAINT messages_hold_reason_check;
ALTER TABLE messages ADD CONSTRAINT messages_hold_reason_check CHECK (hold_reason IN ('pause', 'compliance'));

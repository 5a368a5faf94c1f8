-- Operational flags shared by every instance (POST /v1/admin/flags).
-- Until 0039 the SMS kill switch lived in the memory of the instance that
-- answered the request: behind a load balancer it paused one instance of
-- several, and any other instance that restarted released every held send
-- at start. Now the switch is a row here: the admin request writes it and
-- NOTIFYs nmc_ops_flags in the same transaction (rare, so off the hot path);
-- every instance reloads on the notification and polls it as a safety net,
-- and an instance is not ready until it has read it. No row: the flag was
-- never set, each instance follows its PAUSE_OUTBOUND_SMS default.
CREATE TABLE ops_flags (
    name text PRIMARY KEY CHECK (name IN ('pause_outbound_sms')),
    enabled boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    correlation_id text
);

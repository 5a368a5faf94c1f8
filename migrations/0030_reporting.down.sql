DROP INDEX IF EXISTS reporting_first_responses_day_idx;
DROP INDEX IF EXISTS reporting_missed_calls_day_idx;
DROP TABLE IF EXISTS reporting_daily;
DROP TABLE IF EXISTS reporting_dirty_days;
DROP TABLE IF EXISTS reporting_attributions;
DROP TABLE IF EXISTS reporting_appointments;
DROP TABLE IF EXISTS reporting_processed_events;

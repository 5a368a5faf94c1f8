DROP FUNCTION IF EXISTS nmc_sms_status_advances(text, text);
DROP FUNCTION IF EXISTS nmc_sms_status_rank(text);

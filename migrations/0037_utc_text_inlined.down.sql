-- Back to 0013's declaration.
ALTER FUNCTION nmc_utc_text(timestamptz) IMMUTABLE;

DROP FUNCTION IF EXISTS nmc_conv_release_held();
DROP FUNCTION IF EXISTS nmc_conv_mark_failed(uuid, text, text, text, boolean);
DROP FUNCTION IF EXISTS nmc_conv_mark_sent(uuid, text, text, text, text);
DROP FUNCTION IF EXISTS nmc_conv_keyword(uuid, text, text, text, text, boolean, text, text, text, bigint, text, text);
DROP FUNCTION IF EXISTS nmc_conv_inbound(uuid, text, text, text, text);
DROP FUNCTION IF EXISTS nmc_conv_first_reply(uuid, text, text, text, text, timestamptz, text, text, text, bigint,
                                             integer, integer, text, text);
DROP FUNCTION IF EXISTS nmc_utc_text(timestamptz);
DROP FUNCTION IF EXISTS nmc_local_dow_time(text);

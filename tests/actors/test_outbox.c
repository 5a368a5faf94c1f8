/* Outbox: backoff with jitter, and the event schemas of the catalog
 * checked with the test JSON Schema validator (known good and bad payloads). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "actors/outbox/outbox.h"
#include "tests/support/json_schema.h"

static void test_outbox_backoff_ms_doubles_with_jitter_and_caps(void **state)
{
    (void)state;
    assert_int_equal(nmc_outbox_backoff_ms(1, 0.0), 250);
    assert_int_equal(nmc_outbox_backoff_ms(1, 0.999), 250 + 249);
    assert_int_equal(nmc_outbox_backoff_ms(2, 0.0), 500);
    assert_int_equal(nmc_outbox_backoff_ms(3, 0.5), 1000 + 500);
    assert_int_equal(nmc_outbox_backoff_ms(30, 0.0), 150000);
    assert_true(nmc_outbox_backoff_ms(30, 0.99) < 300000);
    assert_int_equal(nmc_outbox_backoff_ms(0, 0.0), 250);
    assert_int_equal(nmc_outbox_backoff_ms(2, 7.0), 500); /* out-of-range unit: no jitter, never past the cap */
}

static void test_outbox_event_schemas_accept_emitted_shapes(void **state)
{
    (void)state;
    char err[400];
    const char *call = "{\"tenant_id\":\"11111111-1111-1111-1111-111111111111\",\"call_sid\":\"CA1\","
                       "\"from\":\"+15551234567\",\"to\":\"+15550001000\",\"call_status\":\"no-answer\","
                       "\"duration_seconds\":null,\"missed_call_id\":1,\"detected_at\":\"2026-11-23T10:51:43.349Z\"}";
    if (json_schema_validate_event("CallDetected", 1, call, err, sizeof err) != 0)
        fail_msg("%s", err);
    const char *sms = "{\"tenant_id\":\"11111111-1111-1111-1111-111111111111\",\"message_sid\":\"SM1\","
                      "\"from\":\"+15551234567\",\"to\":\"+15550001000\",\"body\":\"hi\",\"num_media\":0,"
                      "\"received_at\":\"2026-11-23T10:51:43.349Z\"}";
    if (json_schema_validate_event("InboundSmsReceived", 1, sms, err, sizeof err) != 0)
        fail_msg("%s", err);
}

static void test_outbox_event_schemas_reject_bad_payloads(void **state)
{
    (void)state;
    char err[400];
    const char *bad_to = "{\"tenant_id\":\"11111111-1111-1111-1111-111111111111\",\"call_sid\":\"CA1\","
                         "\"from\":\"+15551234567\",\"to\":\"5550001000\",\"call_status\":\"no-answer\","
                         "\"duration_seconds\":null,\"missed_call_id\":1,\"detected_at\":\"2026-11-23T10:51:43Z\"}";
    assert_int_equal(json_schema_validate_event("CallDetected", 1, bad_to, err, sizeof err), -1);
    assert_non_null(strstr(err, "$.to"));
    const char *missing = "{\"tenant_id\":\"11111111-1111-1111-1111-111111111111\"}";
    assert_int_equal(json_schema_validate_event("CallDetected", 1, missing, err, sizeof err), -1);
    assert_non_null(strstr(err, "required"));
    const char *extra = "{\"tenant_id\":\"not-a-uuid\",\"message_id\":\"11111111-1111-1111-1111-111111111111\","
                        "\"kind\":\"first_reply\",\"released_at\":\"2026-11-23T10:51:43Z\"}";
    assert_int_equal(json_schema_validate_event("SmsSendReleased", 1, extra, err, sizeof err), -1);
    assert_non_null(strstr(err, "uuid"));
    const char *bad_enum = "{\"tenant_id\":\"11111111-1111-1111-1111-111111111111\",\"call_sid\":\"CA1\","
                           "\"from\":\"+15551234567\",\"to\":\"+15550001000\",\"call_status\":\"ringing\","
                           "\"duration_seconds\":null,\"missed_call_id\":1,\"detected_at\":\"2026-11-23T10:51:43Z\"}";
    assert_int_equal(json_schema_validate_event("CallDetected", 1, bad_enum, err, sizeof err), -1);
    assert_int_equal(json_schema_validate_event("NoSuchEvent", 1, "{}", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_backoff_ms_doubles_with_jitter_and_caps),
        cmocka_unit_test(test_outbox_event_schemas_accept_emitted_shapes),
        cmocka_unit_test(test_outbox_event_schemas_reject_bad_payloads),
    };
    return cmocka_run_group_tests_name("outbox", tests, NULL, NULL);
}

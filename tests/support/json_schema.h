/* A small JSON Schema validator for the subset the docs/events schemas use
 * (owner: sms engineer): type (a name or an array of names: object, array,
 * string, integer, number, boolean, null), required, properties,
 * additionalProperties (false only), items, enum, pattern (POSIX extended
 * regex, unanchored as JSON Schema says), minimum, maximum, minLength,
 * maxLength, format uuid and date-time (checked loosely). Other keywords
 * are ignored. Used by tests to check emitted event payloads. */
#ifndef NMC_TESTS_SUPPORT_JSON_SCHEMA_H
#define NMC_TESTS_SUPPORT_JSON_SCHEMA_H

#include <stddef.h>
#include <jansson.h>

/* 0 when instance conforms to schema; else -1 with the first violation
 * ("$.payload.to: does not match pattern ...") in err. */
int json_schema_validate(const json_t *schema, const json_t *instance, char *err, size_t errlen);

/* Loads docs/events/<name>.v<version>.json from NMC_SOURCE_DIR (or the
 * compile-time source dir); NULL with a reason in err when missing. */
json_t *json_schema_load_event(const char *name, int version, char *err, size_t errlen);

/* Convenience: parses payload_json and validates it against the event's
 * schema. 0 or -1 with err. */
int json_schema_validate_event(const char *name, int version, const char *payload_json, char *err, size_t errlen);

#endif

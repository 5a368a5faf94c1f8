/* A small JSON Schema validator (owner: sms engineer). See json_schema.h. */
#include "tests/support/json_schema.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failf(char *err, size_t errlen, const char *path, const char *what)
{
    snprintf(err, errlen, "%s: %s", path, what);
    return -1;
}

static int type_matches(const char *t, const json_t *v)
{
    if (strcmp(t, "object") == 0) return json_is_object(v);
    if (strcmp(t, "array") == 0) return json_is_array(v);
    if (strcmp(t, "string") == 0) return json_is_string(v);
    if (strcmp(t, "integer") == 0) return json_is_integer(v) || (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v));
    if (strcmp(t, "number") == 0) return json_is_number(v);
    if (strcmp(t, "boolean") == 0) return json_is_boolean(v);
    if (strcmp(t, "null") == 0) return json_is_null(v);
    return 0;
}

static int check_type(const json_t *type, const json_t *v)
{
    if (type == NULL)
        return 1;
    if (json_is_string(type))
        return type_matches(json_string_value(type), v);
    size_t i;
    json_t *t;
    json_array_foreach(type, i, t)
        if (json_is_string(t) && type_matches(json_string_value(t), v))
            return 1;
    return 0;
}

static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

/* Loosely RFC 3339: YYYY-MM-DDTHH:MM:SS, optional fraction, Z or +hh:mm. */
static int is_datetime(const char *s)
{
    const char *shape = "dddd-dd-ddTdd:dd:dd";
    for (size_t i = 0; shape[i]; i++) {
        if (s[i] == '\0') return 0;
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : (shape[i] == 'T' ? (s[i] != 'T' && s[i] != 't' && s[i] != ' ') : s[i] != shape[i]))
            return 0;
    }
    const char *p = s + strlen(shape);
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'Z' || *p == 'z') return p[1] == '\0';
    return (*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) && p[3] == ':' &&
           isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5]) && p[6] == '\0';
}

static int check_string(const json_t *schema, const char *s, const char *path, char *err, size_t errlen)
{
    const json_t *k;
    if ((k = json_object_get(schema, "minLength")) && (json_int_t)strlen(s) < json_integer_value(k))
        return failf(err, errlen, path, "shorter than minLength");
    if ((k = json_object_get(schema, "maxLength")) && (json_int_t)strlen(s) > json_integer_value(k))
        return failf(err, errlen, path, "longer than maxLength");
    const char *fmt = json_string_value(json_object_get(schema, "format"));
    if (fmt != NULL && strcmp(fmt, "uuid") == 0 && !is_uuid(s))
        return failf(err, errlen, path, "not a uuid");
    if (fmt != NULL && strcmp(fmt, "date-time") == 0 && !is_datetime(s))
        return failf(err, errlen, path, "not a date-time");
    const char *pat = json_string_value(json_object_get(schema, "pattern"));
    if (pat != NULL) {
        regex_t re;
        if (regcomp(&re, pat, REG_EXTENDED | REG_NOSUB) != 0)
            return failf(err, errlen, path, "schema pattern does not compile as POSIX ERE");
        int rc = regexec(&re, s, 0, NULL, 0);
        regfree(&re);
        if (rc != 0) {
            char what[300];
            snprintf(what, sizeof what, "\"%.80s\" does not match pattern %.150s", s, pat);
            return failf(err, errlen, path, what);
        }
    }
    return 0;
}

static int validate(const json_t *schema, const json_t *v, const char *path, char *err, size_t errlen);

static int check_object(const json_t *schema, const json_t *v, const char *path, char *err, size_t errlen)
{
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(schema, "required"), i, req) {
        if (json_is_string(req) && json_object_get(v, json_string_value(req)) == NULL) {
            char what[160];
            snprintf(what, sizeof what, "required property \"%s\" is missing", json_string_value(req));
            return failf(err, errlen, path, what);
        }
    }
    const json_t *props = json_object_get(schema, "properties");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s", path, key);
        const json_t *ps = props != NULL ? json_object_get(props, key) : NULL;
        if (ps == NULL && json_is_false(addl))
            return failf(err, errlen, sub, "property not allowed (additionalProperties false)");
        if (ps != NULL && validate(ps, val, sub, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static int check_enum(const json_t *en, const json_t *v)
{
    size_t i;
    json_t *e;
    json_array_foreach(en, i, e)
        if (json_equal(e, (json_t *)v))
            return 1;
    return 0;
}

static int validate(const json_t *schema, const json_t *v, const char *path, char *err, size_t errlen)
{
    if (!json_is_object(schema))
        return 0;
    if (!check_type(json_object_get(schema, "type"), v))
        return failf(err, errlen, path, "wrong type");
    const json_t *en = json_object_get(schema, "enum");
    if (en != NULL && !check_enum(en, v))
        return failf(err, errlen, path, "not one of enum");
    const json_t *k;
    if (json_is_number(v) && (k = json_object_get(schema, "minimum")) && json_number_value(v) < json_number_value(k))
        return failf(err, errlen, path, "below minimum");
    if (json_is_number(v) && (k = json_object_get(schema, "maximum")) && json_number_value(v) > json_number_value(k))
        return failf(err, errlen, path, "above maximum");
    if (json_is_string(v) && check_string(schema, json_string_value(v), path, err, errlen) != 0)
        return -1;
    if (json_is_object(v))
        return check_object(schema, v, path, err, errlen);
    if (json_is_array(v) && (k = json_object_get(schema, "items")) != NULL) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            if (validate(k, item, sub, err, errlen) != 0)
                return -1;
        }
    }
    return 0;
}

int json_schema_validate(const json_t *schema, const json_t *instance, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    return validate(schema, instance, "$", err, errlen);
}

json_t *json_schema_load_event(const char *name, int version, char *err, size_t errlen)
{
    const char *dir = getenv("NMC_SOURCE_DIR");
#ifdef NMC_SOURCE_DIR
    if (dir == NULL)
        dir = NMC_SOURCE_DIR;
#endif
    if (dir == NULL) {
        snprintf(err, errlen, "NMC_SOURCE_DIR is not set");
        return NULL;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/events/%s.v%d.json", dir, name, version);
    json_error_t je;
    json_t *s = json_load_file(path, 0, &je);
    if (s == NULL)
        snprintf(err, errlen, "%s: %s (line %d)", path, je.text, je.line);
    return s;
}

int json_schema_validate_event(const char *name, int version, const char *payload_json, char *err, size_t errlen)
{
    json_t *schema = json_schema_load_event(name, version, err, errlen);
    if (schema == NULL)
        return -1;
    json_t *inst = json_loads(payload_json, 0, NULL);
    int rc = inst == NULL ? (snprintf(err, errlen, "payload is not JSON"), -1)
                          : json_schema_validate(schema, inst, err, errlen);
    json_decref(inst);
    json_decref(schema);
    return rc;
}

/* First-reply templates, business hours and SMS keywords: the pure parts of
 * the conversation module (owner: sms engineer), unit-tested on their own. */
#include "actors/conversation/conversation.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "runtime/buf.h"

#define TEMPLATE_MAX 1000

const char nmc_conversation_default_in_hours[] =
    "Hi, this is {business_name}. Sorry we missed your call! How can we help? "
    "Reply here and we'll get right back to you. Reply STOP to opt out.";
const char nmc_conversation_default_after_hours[] =
    "Hi, this is {business_name}. Sorry we missed your call. We're closed right now, but reply with what "
    "you need and we'll get back to you first thing. Reply STOP to opt out.";

static const char *const template_vars[] = { "business_name", "business_phone" };

/* Length of a valid UTF-8 sequence at s, 0 when invalid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (n == 2 && s[0] < 0xC2))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* what: the problem; var: the unknown variable's name (then what is unused). */
static int fail(char *err, size_t errlen, const char *what, const char *var, size_t pos)
{
    if (var != NULL)
        snprintf(err, errlen, "unknown variable {%s} at byte %zu; allowed variables: {business_name}, "
                 "{business_phone}", var, pos);
    else
        snprintf(err, errlen, "%s at byte %zu; allowed variables: {business_name}, {business_phone}", what, pos);
    return NMC_EINVAL;
}

/* Walks tpl; with out != NULL also renders. The one parser for both, so
 * what validates is exactly what renders. */
static int walk(const char *tpl, const char *const values[], struct nmc_buf *out, char *err, size_t errlen)
{
    if (tpl == NULL)
        return fail(err, errlen, "template is missing", NULL, 0);
    size_t len = strlen(tpl), nonspace = 0;
    if (len > TEMPLATE_MAX)
        return fail(err, errlen, "template longer than 1000 bytes", NULL, TEMPLATE_MAX);
    for (size_t i = 0; i < len;) {
        const unsigned char *p = (const unsigned char *)tpl + i;
        if ((*p < 0x20 && *p != '\n') || *p == 0x7F)
            return fail(err, errlen, "control character in template", NULL, i);
        if (*p == '{' && p[1] == '{') {
            if (out) nmc_buf_puts(out, "{");
            i += 2, nonspace++;
            continue;
        }
        if (*p == '}') {
            if (p[1] != '}')
                return fail(err, errlen, "unmatched '}' (write }} for a literal brace)", NULL, i);
            if (out) nmc_buf_puts(out, "}");
            i += 2, nonspace++;
            continue;
        }
        if (*p == '{') {
            const char *close = strchr((const char *)p, '}');
            if (close == NULL)
                return fail(err, errlen, "unclosed '{'", NULL, i);
            char name[64];
            size_t n = (size_t)(close - (const char *)p - 1);
            if (n == 0 || n >= sizeof name)
                return fail(err, errlen, "empty or overlong variable name", NULL, i);
            memcpy(name, p + 1, n);
            name[n] = '\0';
            size_t k = 0;
            while (k < NMC_ARRAY_SIZE(template_vars) && strcmp(template_vars[k], name) != 0)
                k++;
            if (k == NMC_ARRAY_SIZE(template_vars))
                return fail(err, errlen, NULL, name, i);
            if (out) nmc_buf_puts(out, values[k] != NULL ? values[k] : "");
            i += n + 2, nonspace++;
            continue;
        }
        size_t ul = utf8_len(p);
        if (ul == 0)
            return fail(err, errlen, "invalid UTF-8", NULL, i);
        if (!isspace(*p))
            nonspace++;
        if (out) nmc_buf_append(out, p, ul);
        i += ul;
    }
    if (nonspace == 0)
        return fail(err, errlen, "template is empty", NULL, 0);
    return 0;
}

int nmc_conversation_template_validate(const char *tpl, char *err, size_t errlen)
{
    char dummy[8];
    if (err == NULL || errlen == 0)
        err = dummy, errlen = sizeof dummy;
    err[0] = '\0';
    return walk(tpl, NULL, NULL, err, errlen);
}

int nmc_conversation_template_render(const char *tpl, const char *business_name, const char *business_phone,
                                     char *out, size_t outlen)
{
    const char *values[] = { business_name, business_phone };
    struct nmc_buf b = { 0 };
    char err[160];
    int rc = walk(tpl, values, &b, err, sizeof err);
    if (rc == 0 && outlen > 0)
        nmc_strlcpy(out, b.data != NULL ? b.data : "", outlen);
    nmc_buf_free(&b);
    return rc;
}

/* ---- business hours ---- */

static int parse_hhmm(const char *s, int *out)
{
    if (s == NULL || strlen(s) != 5 || s[2] != ':' || !isdigit((unsigned char)s[0]) ||
        !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0))
        return -1;
    *out = h * 60 + m;
    return 0;
}

/* 1 when minute t of the day falls in one of day's intervals; with
 * spill set, only the after-midnight part of overnight intervals counts. */
static int day_contains(json_t *day, int t, int spill)
{
    size_t i;
    json_t *iv;
    json_array_foreach(day, i, iv) {
        int s, e;
        if (!json_is_array(iv) || json_array_size(iv) != 2 ||
            parse_hhmm(json_string_value(json_array_get(iv, 0)), &s) != 0 ||
            parse_hhmm(json_string_value(json_array_get(iv, 1)), &e) != 0)
            continue;
        if (spill) {
            if (e < s && t < e)
                return 1;
        } else if (e > s ? (t >= s && t < e) : (e < s && t >= s)) {
            return 1;
        }
    }
    return 0;
}

int nmc_conversation_in_hours_doc(const json_t *h, const char *local)
{
    static const char *const days[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };
    int dow, t;
    if (!json_is_object(h) || json_object_size(h) == 0 || local == NULL || strlen(local) != 7 || local[0] < '1' ||
        local[0] > '7' || parse_hhmm(local + 2, &t) != 0)
        return 1;
    dow = local[0] - '1';
    json_t *today = json_object_get(h, days[dow]), *yday = json_object_get(h, days[(dow + 6) % 7]);
    return (json_is_array(today) && day_contains(today, t, 0)) || (json_is_array(yday) && day_contains(yday, t, 1));
}

int nmc_conversation_in_hours(const char *hours_json, const char *local)
{
    if (hours_json == NULL || hours_json[0] == '\0')
        return 1;
    json_t *h = json_loads(hours_json, 0, NULL);
    int in = nmc_conversation_in_hours_doc(h, local);
    json_decref(h);
    return in;
}

/* ---- keywords ---- */

enum nmc_conversation_keyword nmc_conversation_keyword(const char *body)
{
    static const char *const stop[] = { "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT" };
    static const char *const start[] = { "START", "UNSTOP", "YES" };
    static const char *const help[] = { "HELP", "INFO" };
    if (body == NULL)
        return NMC_KEYWORD_NONE;
    while (isspace((unsigned char)*body))
        body++;
    size_t n = strlen(body);
    while (n > 0 && isspace((unsigned char)body[n - 1]))
        n--;
    char w[16];
    if (n == 0 || n >= sizeof w)
        return NMC_KEYWORD_NONE;
    memcpy(w, body, n);
    w[n] = '\0';
    for (size_t i = 0; i < NMC_ARRAY_SIZE(stop); i++)
        if (strcasecmp(w, stop[i]) == 0)
            return NMC_KEYWORD_STOP;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(start); i++)
        if (strcasecmp(w, start[i]) == 0)
            return NMC_KEYWORD_START;
    for (size_t i = 0; i < NMC_ARRAY_SIZE(help); i++)
        if (strcasecmp(w, help[i]) == 0)
            return NMC_KEYWORD_HELP;
    return NMC_KEYWORD_NONE;
}

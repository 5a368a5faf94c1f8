/* The "catalog" actor and its routes (actors/catalog/catalog.h). Route
 * handlers validate the body synchronously and turn it into text
 * parameters; authentication (actors/identity/auth.h) then forwards the
 * request to the actor, which runs one statement per request (the item,
 * its CatalogUpdated outbox row and the JSON answer come from PostgreSQL in
 * one round trip) and answers through the reply handle. */
#include "actors/catalog/catalog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/identity/auth.h"
#include "runtime/clock.h"
#include "runtime/log.h"

#define MSG_CATALOG_REQ (NMC_MSG_MODULE_PRIVATE + 100 * NMC_SLOT_CATALOG)
#define MAX_PARAMS 12
#define MATCH_DEFAULT_LIMIT 5
#define MATCH_MAX_LIMIT 20
#define CACHE_BUCKETS 512
#define CACHE_MAX_TENANTS 10000
#define NS_PER_MS 1000000ull

enum cat_kind { CAT_CREATE = 1, CAT_LIST, CAT_GET, CAT_PATCH, CAT_DELETE, CAT_QUOTE, CAT_MATCH };

/* One request: built by the route handler, owned by the actor from the
 * moment its message arrives until it answers. */
struct cat_req {
    struct cat_req *prev, *next;
    enum cat_kind kind;
    struct nmc_auth_ctx auth;
    char id[NMC_ID_LEN];
    char *p[MAX_PARAMS];              /* validated text parameters, NULL = absent */
    char *text;                       /* match text */
    int limit;                        /* match limit */
    uint64_t load_gen;                /* cache generation when a match load started */
    char correlation_id[NMC_ID_LEN];
    struct nmc_trace_ctx trace;       /* the request's; the actor's span once started */
    struct nmc_span *span;            /* "catalog.<op>", ended when the request is freed */
};

/* A tenant's active items for matching, decoded once per load. */
struct tenant_items {
    struct tenant_items *next;
    char tenant[NMC_ID_LEN];
    json_t *rows;                     /* owns the strings the entries borrow */
    struct nmc_catalog_entry *entries;
    const char **aliases;             /* one array for every entry's aliases */
    size_t n;
    uint64_t loaded_ns;
};

struct catalog {
    struct nmc_app *app;
    struct nmc_actor *actor;
    struct cat_req live;              /* sentinel: requests waiting for the database */
    struct tenant_items *buckets[CACHE_BUCKETS];
    size_t ntenants;
    uint64_t gen;                     /* bumped by every invalidation */
};

/* ---- requests ------------------------------------------------------- */

static void cat_req_free(struct cat_req *r)
{
    if (r == NULL)
        return;
    if (r->next != NULL) {
        r->prev->next = r->next;
        r->next->prev = r->prev;
    }
    for (int i = 0; i < MAX_PARAMS; i++)
        free(r->p[i]);
    free(r->text);
    nmc_trace_span_end(r->span);
    free(r);
}

static void cat_req_payload_free(void *p)
{
    cat_req_free(p);
}

static void live_add(struct catalog *c, struct cat_req *r)
{
    r->next = c->live.next;
    r->prev = &c->live;
    c->live.next->prev = r;
    c->live.next = r;
}

static void ctx_msg(const struct cat_req *r, struct nmc_msg *m)
{
    memset(m, 0, sizeof(*m));
    nmc_strlcpy(m->tenant_id, r->auth.who.tenant_id, sizeof(m->tenant_id));
    nmc_strlcpy(m->correlation_id, r->correlation_id, sizeof(m->correlation_id));
    m->trace = r->trace;
}

/* ---- match cache ---------------------------------------------------- */

static size_t tenant_bucket(const char *tenant)
{
    size_t h = 5381;
    for (; *tenant; tenant++)
        h = h * 33 + (unsigned char)*tenant;
    return h % CACHE_BUCKETS;
}

static void tenant_items_free(struct tenant_items *t)
{
    if (t == NULL)
        return;
    json_decref(t->rows);
    free(t->entries);
    free(t->aliases);
    free(t);
}

static struct tenant_items **cache_slot(struct catalog *c, const char *tenant)
{
    struct tenant_items **pp = &c->buckets[tenant_bucket(tenant)];
    while (*pp != NULL && strcmp((*pp)->tenant, tenant) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void cache_drop(struct catalog *c, const char *tenant)
{
    struct tenant_items **pp = cache_slot(c, tenant), *t = *pp;
    c->gen++;
    if (t == NULL)
        return;
    *pp = t->next;
    tenant_items_free(t);
    c->ntenants--;
}

static void cache_clear(struct catalog *c)
{
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        while (c->buckets[i] != NULL) {
            struct tenant_items *t = c->buckets[i];
            c->buckets[i] = t->next;
            tenant_items_free(t);
        }
    }
    c->ntenants = 0;
    c->gen++;
}

static const struct tenant_items *cache_get(struct catalog *c, const char *tenant)
{
    struct tenant_items *t = *cache_slot(c, tenant);
    if (t != NULL && nmc_clock_mono_ns() - t->loaded_ns > NMC_CATALOG_CACHE_TTL_MS * NS_PER_MS) {
        cache_drop(c, tenant);
        return NULL;
    }
    return t;
}

/* Decodes rows (a JSON array of {id,name,aliases,priority,...}) into
 * matcher entries that borrow rows' strings. Takes rows. */
static struct tenant_items *tenant_items_new(const char *tenant, json_t *rows)
{
    struct tenant_items *t = nmc_xcalloc(1, sizeof(*t));
    size_t i, total = 0, k = 0;
    json_t *row;
    nmc_strlcpy(t->tenant, tenant, sizeof(t->tenant));
    t->rows = rows;
    t->n = json_array_size(rows);
    t->loaded_ns = nmc_clock_mono_ns();
    json_array_foreach(rows, i, row)
        total += json_array_size(json_object_get(row, "aliases"));
    t->entries = nmc_xcalloc(t->n > 0 ? t->n : 1, sizeof(*t->entries));
    t->aliases = nmc_xcalloc(total > 0 ? total : 1, sizeof(*t->aliases));
    json_array_foreach(rows, i, row) {
        struct nmc_catalog_entry *e = &t->entries[i];
        json_t *al = json_object_get(row, "aliases"), *a;
        size_t j;
        e->id = json_string_value(json_object_get(row, "id"));
        e->name = json_string_value(json_object_get(row, "name"));
        e->priority = (int)json_integer_value(json_object_get(row, "priority"));
        e->aliases = &t->aliases[k];
        json_array_foreach(al, j, a)
            t->aliases[k++] = json_string_value(a) ? json_string_value(a) : "";
        e->naliases = json_array_size(al);
        if (e->id == NULL || e->name == NULL)
            e->name = e->id = "";
    }
    return t;
}

static void cache_put(struct catalog *c, struct tenant_items *t)
{
    struct tenant_items **pp = cache_slot(c, t->tenant);
    if (*pp != NULL) {
        struct tenant_items *old = *pp;
        *pp = old->next;
        tenant_items_free(old);
        c->ntenants--;
    }
    if (c->ntenants >= CACHE_MAX_TENANTS)
        cache_clear(c);
    pp = &c->buckets[tenant_bucket(t->tenant)];
    t->next = *pp;
    *pp = t;
    c->ntenants++;
}

/* After a committed change: local cache, scheduling's cache, outbox wake. */
static void catalog_changed(struct catalog *c, const struct cat_req *r)
{
    struct nmc_msg hdr;
    cache_drop(c, r->auth.who.tenant_id);
    ctx_msg(r, &hdr);
    struct nmc_actor *sched = nmc_rt_actor_find(c->app->rt, "scheduling");
    if (sched != NULL) {
        struct nmc_msg *m = nmc_rt_msg_new(NMC_MSG_CACHE_INVALIDATE, nmc_xstrdup(r->auth.who.tenant_id), free);
        nmc_rt_msg_inherit(m, &hdr);
        (void)nmc_rt_send(sched, m);
    }
    struct nmc_actor *ob = nmc_rt_actor_find(c->app->rt, "outbox");
    if (ob != NULL)
        (void)nmc_rt_send(ob, nmc_rt_msg_new(NMC_MSG_OUTBOX_WAKE, NULL, NULL));
}

/* ---- statements ----------------------------------------------------- */

#define EVENT_CTE(change, src, corr)                                                                        \
    "ev AS (INSERT INTO outbox_events (event_name, schema_version, payload, tenant_id, correlation_id) "   \
    "SELECT 'CatalogUpdated', 1, jsonb_build_object('tenant_id', $1::uuid, 'item_id', x.id, 'change', '"  \
    change "', 'item', x.j::jsonb, 'occurred_at', catalog_ts(now())), $1, " corr " FROM " src " x "        \
    "RETURNING 1) "

static const char SQL_CREATE[] =
    "WITH ins AS (INSERT INTO catalog_items AS i (tenant_id, name, description, price_cents, duration_minutes, "
    "aliases, priority, active) VALUES ($1, $2, coalesce($3, ''), $4::bigint, $5::integer, "
    "ARRAY(SELECT jsonb_array_elements_text(coalesce($6::jsonb, '[]'::jsonb))), coalesce($7::integer, 0), "
    "coalesce($8::boolean, true)) RETURNING i.id, catalog_item_json(i) AS j), "
    EVENT_CTE("created", "ins", "$9")
    "SELECT j FROM ins";

static const char SQL_PATCH[] =
    "WITH upd AS (UPDATE catalog_items AS i SET name = coalesce($3, i.name), "
    "description = coalesce($4, i.description), price_cents = coalesce($5::bigint, i.price_cents), "
    "duration_minutes = coalesce($6::integer, i.duration_minutes), "
    "aliases = CASE WHEN $7::jsonb IS NULL THEN i.aliases ELSE ARRAY(SELECT jsonb_array_elements_text($7::jsonb)) "
    "END, priority = coalesce($8::integer, i.priority), active = coalesce($9::boolean, i.active), "
    "updated_at = now() WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL "
    "RETURNING i.id, catalog_item_json(i) AS j), "
    EVENT_CTE("updated", "upd", "$10")
    "SELECT j FROM upd";

static const char SQL_DELETE[] =
    "WITH del AS (UPDATE catalog_items AS i SET deleted_at = now(), active = false, updated_at = now() "
    "WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL RETURNING i.id, catalog_item_json(i) AS j), "
    EVENT_CTE("deleted", "del", "$3")
    "SELECT j FROM del";

static const char SQL_GET[] =
    "SELECT catalog_item_json(i) FROM catalog_items i WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL";

static const char SQL_LIST[] =
    "SELECT json_build_object('items', coalesce(json_agg(catalog_item_json(i) ORDER BY lower(i.name), i.id), "
    "'[]'::json)) FROM catalog_items i WHERE i.tenant_id = $1 AND i.deleted_at IS NULL "
    "AND ($2::boolean IS NULL OR i.active = $2::boolean)";

/* Column 0: the answer; column 1: active (an inactive item answers 410). */
static const char SQL_QUOTE[] =
    "SELECT json_build_object('item_id', i.id, 'name', i.name, 'price_cents', i.price_cents, 'currency', 'USD', "
    "'duration_minutes', i.duration_minutes, 'quoted_at', catalog_ts(now())), i.active "
    "FROM catalog_items i WHERE i.tenant_id = $1 AND i.id = $2 AND i.deleted_at IS NULL";

static const char SQL_LOAD[] =
    "SELECT coalesce(json_agg(json_build_object('id', i.id, 'name', i.name, 'aliases', i.aliases, "
    "'priority', i.priority, 'price_cents', i.price_cents, 'duration_minutes', i.duration_minutes) "
    "ORDER BY i.id), '[]'::json) FROM catalog_items i "
    "WHERE i.tenant_id = $1 AND i.active AND i.deleted_at IS NULL";

/* Fills st for r's kind; params borrow r. */
static void cat_stmt(const struct cat_req *r, struct nmc_db_stmt *st)
{
    const char *t = r->auth.who.tenant_id;
    memset(st, 0, sizeof(*st));
    switch (r->kind) {
    case CAT_CREATE:
        *st = (struct nmc_db_stmt){.name = "catalog_create", .sql = SQL_CREATE, .nparams = 9,
                                   .params = {t, r->p[0], r->p[1], r->p[2], r->p[3], r->p[4], r->p[5], r->p[6],
                                              r->correlation_id}};
        break;
    case CAT_PATCH:
        *st = (struct nmc_db_stmt){.name = "catalog_patch", .sql = SQL_PATCH, .nparams = 10,
                                   .params = {t, r->id, r->p[0], r->p[1], r->p[2], r->p[3], r->p[4], r->p[5],
                                              r->p[6], r->correlation_id}};
        break;
    case CAT_DELETE:
        *st = (struct nmc_db_stmt){.name = "catalog_delete", .sql = SQL_DELETE, .nparams = 3,
                                   .params = {t, r->id, r->correlation_id}};
        break;
    case CAT_GET:
        *st = (struct nmc_db_stmt){.name = "catalog_get", .sql = SQL_GET, .nparams = 2, .params = {t, r->id}};
        break;
    case CAT_LIST:
        *st = (struct nmc_db_stmt){.name = "catalog_list", .sql = SQL_LIST, .nparams = 2, .params = {t, r->p[0]}};
        break;
    case CAT_QUOTE:
        *st = (struct nmc_db_stmt){.name = "catalog_quote", .sql = SQL_QUOTE, .nparams = 2, .params = {t, r->id}};
        break;
    case CAT_MATCH:
        *st = (struct nmc_db_stmt){.name = "catalog_load_active", .sql = SQL_LOAD, .nparams = 1, .params = {t}};
        break;
    }
}

/* ---- answers -------------------------------------------------------- */

static void reply_db_error(struct cat_req *r, const struct nmc_db_result *res)
{
    struct nmc_http_handle h = r->auth.handle;
    switch (res->status) {
    case NMC_EUNIQUE:
        nmc_http_reply_error(h, 409, "name_taken", "another item of this tenant has this name (names ignore case)");
        return;
    case NMC_ECHECK:
        nmc_http_reply_error(h, 400, "invalid_request", "a value is out of range (database check)");
        return;
    default:
        break;
    }
    nmc_trace_span_error(r->span, nmc_errcode(res->status));
    struct nmc_log_rec *lr = nmc_log_begin(NMC_LOG_ERROR, "catalog", "catalog.db_error");
    nmc_log_ids(lr, r->auth.who.tenant_id, r->correlation_id, NULL);
    nmc_log_error(lr, res->status, res->message);
    nmc_log_str(lr, "sqlstate", res->sqlstate);
    nmc_log_end(lr);
    nmc_http_reply_error(h, 503, "unavailable", "database error, retry later");
}

/* Answers a match from the tenant's cached items. */
static void reply_match(struct cat_req *r, const struct tenant_items *t)
{
    struct nmc_catalog_match *m = nmc_xcalloc((size_t)r->limit, sizeof(*m));
    size_t k = nmc_catalog_rank(t->entries, t->n, r->text, m, (size_t)r->limit);
    json_t *out = json_object(), *arr = json_array();
    for (size_t i = 0; i < k; i++) {
        json_t *row = json_array_get(t->rows, m[i].index);
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:i, s:b, s:O, s:O}", "item_id", t->entries[m[i].index].id,
                              "name", t->entries[m[i].index].name, "matched", m[i].term, "match_length",
                              (json_int_t)m[i].match_len, "priority", m[i].priority, "exact_name", m[i].exact_name,
                              "price_cents", json_object_get(row, "price_cents"), "duration_minutes",
                              json_object_get(row, "duration_minutes"));
        json_array_append_new(arr, o);
    }
    json_object_set_new(out, "matches", arr);
    char *s = json_dumps(out, JSON_COMPACT);
    nmc_http_reply_json(r->auth.handle, 200, s);
    free(s);
    json_decref(out);
    free(m);
}

static void on_match_loaded(struct catalog *c, struct cat_req *r, const char *json)
{
    json_t *rows = json_loads(json != NULL ? json : "[]", 0, NULL);
    if (!json_is_array(rows)) {
        json_decref(rows);
        nmc_http_reply_error(r->auth.handle, 500, "internal", "catalog rows did not decode");
        return;
    }
    struct tenant_items *t = tenant_items_new(r->auth.who.tenant_id, rows);
    reply_match(r, t);
    if (r->load_gen == c->gen)
        cache_put(c, t); /* nothing changed while it loaded */
    else
        tenant_items_free(t);
}

/* The statement's row 0 column 0, or NULL. */
static const char *answer(const struct nmc_db_result *res)
{
    const PGresult *pr = res->nresults > 0 ? res->results[res->nresults - 1] : NULL;
    return pr != NULL && PQntuples(pr) > 0 ? nmc_db_get(pr, 0, 0) : NULL;
}

static void on_db_result(struct catalog *c, struct cat_req *r, const struct nmc_db_result *res)
{
    struct nmc_http_handle h = r->auth.handle;
    const char *json = res->status == 0 ? answer(res) : NULL;
    if (res->status != 0) {
        reply_db_error(r, res);
    } else if (r->kind == CAT_MATCH) {
        on_match_loaded(c, r, json);
    } else if (json == NULL) {
        nmc_http_reply_error(h, 404, "not_found", "catalog item not found");
    } else if (r->kind == CAT_QUOTE && strcmp(nmc_db_get(res->results[0], 0, 1), "t") != 0) {
        nmc_http_reply_error(h, 410, "item_inactive", "this item is inactive and cannot be quoted");
    } else if (r->kind == CAT_DELETE) {
        catalog_changed(c, r);
        nmc_http_reply(h, 204, NULL, "", 0, NULL);
    } else {
        if (r->kind == CAT_CREATE || r->kind == CAT_PATCH)
            catalog_changed(c, r);
        nmc_http_reply_json(h, r->kind == CAT_CREATE ? 201 : 200, json);
    }
    cat_req_free(r);
}

/* ---- the actor ------------------------------------------------------ */

static void span_start(struct cat_req *r)
{
    static const char *const names[] = {
        [CAT_CREATE] = "catalog.create", [CAT_LIST] = "catalog.list", [CAT_GET] = "catalog.get",
        [CAT_PATCH] = "catalog.update", [CAT_DELETE] = "catalog.delete", [CAT_QUOTE] = "catalog.quote",
        [CAT_MATCH] = "catalog.match",
    };
    r->span = nmc_trace_span_start(names[r->kind], &r->trace);
    nmc_trace_span_attr(r->span, "tenant_id", r->auth.who.tenant_id);
    nmc_trace_span_attr(r->span, "correlation_id", r->correlation_id);
    r->trace = r->span->ctx; /* database spans nest under this one */
}

static void start(struct catalog *c, struct cat_req *r)
{
    struct nmc_db_stmt st;
    struct nmc_msg hdr;
    span_start(r);
    if (r->kind == CAT_MATCH) {
        const struct tenant_items *t = cache_get(c, r->auth.who.tenant_id);
        if (t != NULL) {
            reply_match(r, t);
            cat_req_free(r);
            return;
        }
        r->load_gen = c->gen;
    }
    cat_stmt(r, &st);
    ctx_msg(r, &hdr);
    if (nmc_db_query(c->app->db, c->actor, (uint64_t)(uintptr_t)r, &hdr, &st) != 0) {
        nmc_http_reply_error(r->auth.handle, 503, "unavailable", "database queue is full, retry later");
        cat_req_free(r);
        return;
    }
    live_add(c, r);
}

static void ack_event(struct catalog *c, const struct nmc_msg *m)
{
    const struct nmc_domain_event *ev = m->payload;
    json_t *j = json_loads(ev->payload_json != NULL ? ev->payload_json : "{}", 0, NULL);
    const char *tenant = json_string_value(json_object_get(j, "tenant_id"));
    if (tenant != NULL)
        cache_drop(c, tenant);
    else
        cache_clear(c);
    json_decref(j);
    struct nmc_actor *ob = nmc_rt_actor_find(c->app->rt, "outbox");
    if (ob == NULL)
        return;
    struct nmc_outbox_ack *ack = nmc_xcalloc(1, sizeof(*ack));
    ack->outbox_id = ev->outbox_id;
    ack->subscriber = "catalog";
    struct nmc_msg *am = nmc_rt_msg_new(NMC_MSG_OUTBOX_ACK, ack, free);
    nmc_rt_msg_inherit(am, m);
    (void)nmc_rt_send(ob, am);
}

static void on_message(struct nmc_actor *self, struct nmc_msg *m, void *state)
{
    struct catalog *c = state;
    switch (m->type) {
    case MSG_CATALOG_REQ: {
        struct cat_req *r = m->payload;
        m->payload = NULL; /* the request lives until it is answered */
        start(c, r);
        break;
    }
    case NMC_MSG_DB_RESULT: {
        struct cat_req *r = (struct cat_req *)(uintptr_t)m->cookie;
        if (r != NULL)
            on_db_result(c, r, m->payload);
        break;
    }
    case NMC_MSG_CACHE_INVALIDATE:
        if (m->payload != NULL)
            cache_drop(c, m->payload);
        else
            cache_clear(c);
        break;
    case NMC_MSG_DOMAIN_EVENT:
        ack_event(c, m);
        break;
    default:
        break;
    }
}

/* ---- validation ----------------------------------------------------- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A trimmed copy of a JSON string of 1..max characters (0..max when
 * allow_empty), or NULL. */
static char *text_field(json_t *v, size_t max, int allow_empty)
{
    const char *s = json_string_value(v);
    if (s == NULL)
        return NULL;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    char *out = nmc_xstrndup(s, len);
    if ((len == 0 && !allow_empty) || utf8_chars(out) > max) {
        free(out);
        return NULL;
    }
    return out;
}

static char *int_field(json_t *v, json_int_t min, json_int_t max)
{
    char buf[32];
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return NULL;
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return nmc_xstrdup(buf);
}

/* Aliases: lower-cased, trimmed, deduplicated; a JSON array as text. */
static char *aliases_field(json_t *v, char *err, size_t errlen)
{
    size_t i;
    json_t *a, *out = json_array();
    char norm[256];
    if (!json_is_array(v) || json_array_size(v) > NMC_CATALOG_MAX_ALIASES) {
        snprintf(err, errlen, "aliases must be an array of at most %d strings", NMC_CATALOG_MAX_ALIASES);
        goto fail;
    }
    json_array_foreach(v, i, a) {
        char *s = text_field(a, 100, 0);
        if (s == NULL || nmc_catalog_normalize(s, norm, sizeof(norm)) == 0) {
            snprintf(err, errlen, "aliases[%zu] must be 1..100 characters with a letter or digit", i);
            free(s);
            goto fail;
        }
        for (char *p = s; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        size_t j;
        json_t *seen;
        int dup = 0;
        json_array_foreach(out, j, seen)
            dup |= strcmp(json_string_value(seen), s) == 0;
        if (!dup)
            json_array_append_new(out, json_string(s));
        free(s);
    }
    char *txt = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return txt;
fail:
    json_decref(out);
    return NULL;
}

/* Fills r->p[0..6] (name, description, price, duration, aliases, priority,
 * active) from body; 0 or NMC_EINVAL with the reason in err. */
static int validate_item(json_t *body, int creating, struct cat_req *r, char *err, size_t errlen)
{
    static const char *const required[] = {"name", "price_cents", "duration_minutes"};
    json_t *v;
    for (size_t i = 0; creating && i < NMC_ARRAY_SIZE(required); i++)
        if (json_object_get(body, required[i]) == NULL) {
            snprintf(err, errlen, "%s is required", required[i]);
            return NMC_EINVAL;
        }
    if (!creating && json_object_size(body) == 0) {
        snprintf(err, errlen, "nothing to change");
        return NMC_EINVAL;
    }
    if ((v = json_object_get(body, "name")) != NULL && (r->p[0] = text_field(v, 200, 0)) == NULL)
        snprintf(err, errlen, "name must be a non-blank string of at most 200 characters");
    else if ((v = json_object_get(body, "description")) != NULL && (r->p[1] = text_field(v, 2000, 1)) == NULL)
        snprintf(err, errlen, "description must be a string of at most 2000 characters");
    else if ((v = json_object_get(body, "price_cents")) != NULL &&
             (r->p[2] = int_field(v, 0, NMC_CATALOG_MAX_PRICE_CENTS)) == NULL)
        snprintf(err, errlen, "price_cents must be an integer from 0 to %d", NMC_CATALOG_MAX_PRICE_CENTS);
    else if ((v = json_object_get(body, "duration_minutes")) != NULL &&
             (r->p[3] = int_field(v, NMC_CATALOG_MIN_DURATION, NMC_CATALOG_MAX_DURATION)) == NULL)
        snprintf(err, errlen, "duration_minutes must be an integer from %d to %d", NMC_CATALOG_MIN_DURATION,
                 NMC_CATALOG_MAX_DURATION);
    else if ((v = json_object_get(body, "aliases")) != NULL && (r->p[4] = aliases_field(v, err, errlen)) == NULL)
        ; /* err is set */
    else if ((v = json_object_get(body, "priority")) != NULL && (r->p[5] = int_field(v, -1000, 1000)) == NULL)
        snprintf(err, errlen, "priority must be an integer from -1000 to 1000");
    else if ((v = json_object_get(body, "active")) != NULL && !json_is_boolean(v))
        snprintf(err, errlen, "active must be true or false");
    else {
        if (v != NULL)
            r->p[6] = nmc_xstrdup(json_is_true(v) ? "true" : "false");
        return 0;
    }
    return NMC_EINVAL;
}

/* ---- routes --------------------------------------------------------- */

static struct cat_req *cat_req_new(struct nmc_http_req *req, enum cat_kind kind)
{
    struct cat_req *r = nmc_xcalloc(1, sizeof(*r));
    r->kind = kind;
    nmc_strlcpy(r->correlation_id, req->correlation_id, sizeof(r->correlation_id));
    r->trace = req->trace;
    return r;
}

static void dispatch(struct nmc_http_req *req, struct catalog *c, struct cat_req *r, unsigned allow)
{
    struct nmc_msg *m = nmc_rt_msg_new(MSG_CATALOG_REQ, r, cat_req_payload_free);
    nmc_identity_auth_msg_from_req(m, req);
    nmc_identity_auth_submit(c->app, req, allow, &r->auth, c->actor, m);
}

/* The {id} parameter; NULL after answering 404 for a malformed one. */
static struct cat_req *with_id(struct nmc_http_req *req, enum cat_kind kind)
{
    const char *id = nmc_http_req_param(req, "id");
    if (!nmc_is_uuid(id)) {
        nmc_http_respond_error(req, 404, "not_found", "catalog item not found");
        return NULL;
    }
    struct cat_req *r = cat_req_new(req, kind);
    nmc_strlcpy(r->id, id, sizeof(r->id));
    return r;
}

static const char *const item_keys[] = {"name", "description", "price_cents", "duration_minutes",
                                        "aliases", "priority", "active", NULL};

static void on_item_write(struct nmc_http_req *req, struct catalog *c, enum cat_kind kind)
{
    char err[256];
    struct cat_req *r = kind == CAT_CREATE ? cat_req_new(req, kind) : with_id(req, kind);
    json_t *body = r != NULL ? nmc_identity_auth_body(req, item_keys) : NULL;
    if (body == NULL) {
        cat_req_free(r);
        return;
    }
    if (validate_item(body, kind == CAT_CREATE, r, err, sizeof(err)) != 0) {
        nmc_http_respond_error(req, 400, "invalid_request", err);
        cat_req_free(r);
    } else {
        dispatch(req, c, r, NMC_AUTH_ALLOW_MANAGE);
    }
    json_decref(body);
}

static void on_create(struct nmc_http_req *req, void *ud)
{
    on_item_write(req, ud, CAT_CREATE);
}

static void on_patch(struct nmc_http_req *req, void *ud)
{
    on_item_write(req, ud, CAT_PATCH);
}

static void on_list(struct nmc_http_req *req, void *ud)
{
    char *active = nmc_http_req_query(req, "active");
    if (active != NULL && strcmp(active, "true") != 0 && strcmp(active, "false") != 0) {
        nmc_http_respond_error(req, 400, "invalid_request", "active must be true or false");
        free(active);
        return;
    }
    struct cat_req *r = cat_req_new(req, CAT_LIST);
    r->p[0] = active;
    dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
}

static void on_by_id(struct nmc_http_req *req, void *ud, enum cat_kind kind, unsigned allow)
{
    struct cat_req *r = with_id(req, kind);
    if (r != NULL)
        dispatch(req, ud, r, allow);
}

static void on_get(struct nmc_http_req *req, void *ud)
{
    on_by_id(req, ud, CAT_GET, NMC_AUTH_ALLOW_ANY);
}

static void on_delete(struct nmc_http_req *req, void *ud)
{
    on_by_id(req, ud, CAT_DELETE, NMC_AUTH_ALLOW_MANAGE);
}

static void on_quote(struct nmc_http_req *req, void *ud)
{
    on_by_id(req, ud, CAT_QUOTE, NMC_AUTH_ALLOW_ANY);
}

static void on_match(struct nmc_http_req *req, void *ud)
{
    static const char *const keys[] = {"text", "limit", NULL};
    json_t *body = nmc_identity_auth_body(req, keys);
    if (body == NULL)
        return;
    const char *text = json_string_value(json_object_get(body, "text"));
    json_t *limit = json_object_get(body, "limit");
    if (text == NULL || text[0] == '\0' || strlen(text) > NMC_CATALOG_MAX_TEXT) {
        nmc_http_respond_error(req, 400, "invalid_request", "text must be a non-empty string of at most 2000 bytes");
    } else if (limit != NULL && (!json_is_integer(limit) || json_integer_value(limit) < 1 ||
                                 json_integer_value(limit) > MATCH_MAX_LIMIT)) {
        nmc_http_respond_error(req, 400, "invalid_request", "limit must be an integer from 1 to 20");
    } else {
        struct cat_req *r = cat_req_new(req, CAT_MATCH);
        r->text = nmc_xstrdup(text);
        r->limit = limit != NULL ? (int)json_integer_value(limit) : MATCH_DEFAULT_LIMIT;
        dispatch(req, ud, r, NMC_AUTH_ALLOW_ANY);
    }
    json_decref(body);
}

/* ---- life cycle ------------------------------------------------------ */

static int routes(struct catalog *c)
{
    struct nmc_http_server *s = c->app->http;
    int rc;
    if ((rc = nmc_http_server_route(s, "POST", "/v1/catalog/items", on_create, c)) ||
        (rc = nmc_http_server_route(s, "GET", "/v1/catalog/items", on_list, c)) ||
        (rc = nmc_http_server_route(s, "GET", "/v1/catalog/items/{id}", on_get, c)) ||
        (rc = nmc_http_server_route(s, "PATCH", "/v1/catalog/items/{id}", on_patch, c)) ||
        (rc = nmc_http_server_route(s, "DELETE", "/v1/catalog/items/{id}", on_delete, c)) ||
        (rc = nmc_http_server_route(s, "GET", "/v1/catalog/items/{id}/quote", on_quote, c)) ||
        (rc = nmc_http_server_route(s, "POST", "/v1/catalog/match", on_match, c)))
        return rc;
    return 0;
}

int nmc_catalog_init(struct nmc_app *app)
{
    struct catalog *c = nmc_xcalloc(1, sizeof(*c));
    int rc;
    c->app = app;
    c->live.next = c->live.prev = &c->live;
    if ((rc = nmc_identity_auth_init(app)) != 0 ||
        (rc = nmc_rt_actor_create(app->rt, "catalog", on_message, c, 0, &c->actor)) != 0) {
        free(c);
        return rc;
    }
    app->modules[NMC_SLOT_CATALOG] = c;
    if (nmc_outbox_subscribe != NULL && (rc = nmc_outbox_subscribe(app, "CatalogUpdated", c->actor)) != 0)
        return rc;
    return app->http != NULL ? routes(c) : 0;
}

void nmc_catalog_stop(struct nmc_app *app)
{
    struct catalog *c = app->modules[NMC_SLOT_CATALOG];
    if (c == NULL)
        return;
    while (c->live.next != &c->live)
        cat_req_free(c->live.next);
    cache_clear(c);
    free(c);
    app->modules[NMC_SLOT_CATALOG] = NULL;
    nmc_identity_auth_stop(app);
}

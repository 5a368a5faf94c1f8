-- Catalog (spec 000 section 4.4): the services a tenant sells, with price,
-- duration, aliases for matching free text, and a priority for ranking.
-- DELETE is soft (deleted_at): appointments keep pointing at the item they
-- booked, and the name becomes free again for a new item.
CREATE TABLE catalog_items (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name = btrim(name)),
    description      text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
    price_cents      bigint NOT NULL CHECK (price_cents BETWEEN 0 AND 100000000),
    duration_minutes integer NOT NULL CHECK (duration_minutes BETWEEN 15 AND 480),
    aliases          text[] NOT NULL DEFAULT '{}'
                     CHECK (cardinality(aliases) <= 32 AND array_position(aliases, NULL) IS NULL),
    priority         integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN -1000 AND 1000),
    active           boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    deleted_at       timestamptz,
    UNIQUE (tenant_id, id)  -- target of tenant-scoped foreign keys
);
-- Name unique per tenant ignoring case, among items not deleted.
CREATE UNIQUE INDEX catalog_items_tenant_name_uq ON catalog_items (tenant_id, lower(name))
    WHERE deleted_at IS NULL;

-- RFC 3339 UTC text for API payloads, whatever the session's TimeZone.
CREATE FUNCTION catalog_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

-- The API representation of an item (also the CatalogUpdated "item").
CREATE FUNCTION catalog_item_json(i catalog_items) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object(
        'id', i.id, 'tenant_id', i.tenant_id, 'name', i.name, 'description', i.description,
        'price_cents', i.price_cents, 'duration_minutes', i.duration_minutes,
        'aliases', to_json(i.aliases), 'priority', i.priority, 'active', i.active,
        'created_at', catalog_ts(i.created_at), 'updated_at', catalog_ts(i.updated_at)) $$;

-- Scheduling: resources (technicians) with weekly business hours, holds and
-- appointments, and external busy blocks. The database alone guarantees that
-- nothing live overlaps on a resource: sched_slots holds every live hold and
-- every booked appointment under one exclusion constraint, so holds and
-- appointments exclude each other. An expired hold is deleted (by hold GC,
-- or by the statement that inserts an overlapping hold, in the same
-- transaction) and leaves a tombstone so booking it still answers 410.

CREATE FUNCTION sched_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;

-- {"mon": [["08:00","12:00"],["13:00","17:00"]], ...}: days mon..sun, each a
-- list of at most 8 non-overlapping "HH:MM" intervals (end may be "24:00").
CREATE FUNCTION sched_hours_valid(h jsonb) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    d text; iv jsonb; lo time; hi time; prev time;
BEGIN
    IF h IS NULL OR jsonb_typeof(h) <> 'object' THEN
        RETURN false;
    END IF;
    FOR d IN SELECT jsonb_object_keys(h) LOOP
        IF d NOT IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
           OR jsonb_typeof(h -> d) <> 'array' OR jsonb_array_length(h -> d) > 8 THEN
            RETURN false;
        END IF;
        prev := NULL;
        FOR iv IN SELECT value FROM jsonb_array_elements(h -> d) ORDER BY value ->> 0 LOOP
            IF jsonb_typeof(iv) <> 'array' OR jsonb_array_length(iv) <> 2
               OR jsonb_typeof(iv -> 0) <> 'string' OR jsonb_typeof(iv -> 1) <> 'string'
               OR (iv ->> 0) !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$'
               OR (iv ->> 1) !~ '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$' THEN
                RETURN false;
            END IF;
            lo := (iv ->> 0)::time;
            hi := (iv ->> 1)::time;
            IF lo >= hi OR (prev IS NOT NULL AND lo < prev) THEN
                RETURN false;
            END IF;
            prev := hi;
        END LOOP;
    END LOOP;
    RETURN true;
END $$;

CREATE TABLE sched_resources (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200 AND name = btrim(name)),
    business_hours jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (sched_hours_valid(business_hours)),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);

-- A period is a non-empty, finite, half-open [start, end) range.
CREATE FUNCTION sched_period_ok(p tstzrange) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT NOT isempty(p) AND NOT lower_inf(p) AND NOT upper_inf(p) AND lower_inc(p) AND NOT upper_inc(p) $$;

-- Live occupancy: holds (kind 'hold', with expires_at) and booked
-- appointments (kind 'appointment'; the row's id is the hold's id and the
-- appointment's hold_id). A cancelled appointment's row is deleted.
CREATE TABLE sched_slots (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    resource_id     uuid NOT NULL,
    item_id         uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('hold', 'appointment')),
    period          tstzrange NOT NULL CHECK (sched_period_ok(period)),
    expires_at      timestamptz,
    customer_name   text CHECK (length(customer_name) BETWEEN 1 AND 200),
    customer_phone  text CHECK (customer_phone ~ '^\+[1-9][0-9]{6,14}$'),
    notes           text CHECK (length(notes) <= 2000),
    conversation_id uuid,
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'hold') = (expires_at IS NOT NULL)),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES sched_resources (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, item_id) REFERENCES catalog_items (tenant_id, id),
    CONSTRAINT sched_slots_no_overlap
        EXCLUDE USING gist (tenant_id WITH =, resource_id WITH =, period WITH &&)
);
CREATE INDEX sched_slots_hold_expiry_idx ON sched_slots (expires_at) WHERE kind = 'hold';

-- The runbook's view of holds (spec 000, SQL cheatsheet).
CREATE VIEW sched_holds AS
    SELECT id, tenant_id, resource_id, item_id, period, expires_at, created_at
    FROM sched_slots WHERE kind = 'hold';

-- Holds removed after expiry, kept a day so booking one answers 410, not 404.
CREATE TABLE sched_expired_holds (
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    expired_at timestamptz NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sched_expired_holds_removed_idx ON sched_expired_holds (removed_at);

-- Appointments, booked or cancelled, with the price snapshot taken at
-- booking time (revenue attribution). A second exclusion constraint over
-- booked appointments states the invariant on this table too.
CREATE TABLE sched_appointments (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    resource_id      uuid NOT NULL,
    item_id          uuid NOT NULL,
    hold_id          uuid NOT NULL UNIQUE,
    period           tstzrange NOT NULL CHECK (sched_period_ok(period)),
    status           text NOT NULL CHECK (status IN ('booked', 'cancelled')),
    item_name        text NOT NULL,
    price_cents      bigint NOT NULL CHECK (price_cents >= 0),
    duration_minutes integer NOT NULL CHECK (duration_minutes > 0),
    customer_name    text,
    customer_phone   text,
    notes            text,
    conversation_id  uuid,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    booked_by        text NOT NULL,
    cancel_reason    text CHECK (length(cancel_reason) <= 500),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    cancelled_at     timestamptz,
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CONSTRAINT sched_appointments_idempotency_uq UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES sched_resources (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, item_id) REFERENCES catalog_items (tenant_id, id),
    CONSTRAINT sched_appointments_no_overlap
        EXCLUDE USING gist (tenant_id WITH =, resource_id WITH =, period WITH &&) WHERE (status = 'booked')
);
CREATE INDEX sched_appointments_period_idx ON sched_appointments USING gist (tenant_id, period);

-- External busy time, filled by calendar sync (Google, Jobber) or by hand.
-- Blocks may overlap each other; they only remove availability.
CREATE TABLE sched_busy_blocks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    resource_id uuid NOT NULL,
    period      tstzrange NOT NULL CHECK (sched_period_ok(period)),
    source      text NOT NULL CHECK (source IN ('google', 'jobber', 'manual')),
    external_id text NOT NULL CHECK (length(external_id) BETWEEN 1 AND 255),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES sched_resources (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, resource_id, source, external_id)
);
CREATE INDEX sched_busy_blocks_period_idx ON sched_busy_blocks USING gist (tenant_id, resource_id, period);

-- Business-hours windows of hours (in time zone tz) that overlap
-- [t_from, t_to), as absolute ranges, with the local minute of day each
-- starts at (slot grids align to it). Local wall-clock times are converted
-- day by day, so a window keeps its local hours across DST changes. A
-- window that DST turns inside out (a start in the skipped hour) is dropped.
CREATE FUNCTION sched_business_windows(hours jsonb, tz text, t_from timestamptz, t_to timestamptz)
    RETURNS TABLE (w tstzrange, start_minute integer)
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT tstzrange(x.lo, x.hi), x.start_minute
    FROM (
        SELECT (d.day + (iv ->> 0)::time) AT TIME ZONE tz AS lo,
               (d.day + (iv ->> 1)::time) AT TIME ZONE tz AS hi,
               (extract(hour FROM (iv ->> 0)::time) * 60 + extract(minute FROM (iv ->> 0)::time))::integer
                   AS start_minute
        FROM generate_series(0, (t_to AT TIME ZONE tz)::date - (t_from AT TIME ZONE tz)::date) AS k,
             LATERAL (SELECT (t_from AT TIME ZONE tz)::date + k AS day) AS d,
             LATERAL jsonb_array_elements(COALESCE(hours -> to_char(d.day, 'dy'), '[]'::jsonb)) AS iv
    ) AS x
    WHERE x.lo < x.hi AND x.lo < t_to AND x.hi > t_from
$$;

-- 1 when period on resource lies inside one business-hours window and
-- overlaps no external busy block.
CREATE FUNCTION sched_period_open(p_tenant uuid, p_resource uuid, p tstzrange) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (
               SELECT 1 FROM sched_resources r JOIN tenants t ON t.id = r.tenant_id,
                      LATERAL sched_business_windows(r.business_hours, t.timezone, lower(p), upper(p)) AS bw
               WHERE r.tenant_id = p_tenant AND r.id = p_resource AND r.active AND bw.w @> p)
       AND NOT EXISTS (
               SELECT 1 FROM sched_busy_blocks b
               WHERE b.tenant_id = p_tenant AND b.resource_id = p_resource AND b.period && p)
$$;

CREATE FUNCTION sched_resource_json(r sched_resources) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', r.id, 'tenant_id', r.tenant_id, 'name', r.name, 'business_hours', r.business_hours,
        'active', r.active, 'created_at', sched_ts(r.created_at), 'updated_at', sched_ts(r.updated_at)) $$;

CREATE FUNCTION sched_hold_json(s sched_slots) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', s.id, 'tenant_id', s.tenant_id, 'resource_id', s.resource_id, 'item_id', s.item_id,
        'start', sched_ts(lower(s.period)), 'end', sched_ts(upper(s.period)),
        'expires_at', sched_ts(s.expires_at), 'customer_name', s.customer_name,
        'customer_phone', s.customer_phone, 'notes', s.notes, 'conversation_id', s.conversation_id,
        'created_at', sched_ts(s.created_at)) $$;

CREATE FUNCTION sched_appointment_json(a sched_appointments) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'id', a.id, 'tenant_id', a.tenant_id, 'resource_id', a.resource_id, 'item_id', a.item_id,
        'hold_id', a.hold_id, 'status', a.status,
        'start', sched_ts(lower(a.period)), 'end', sched_ts(upper(a.period)),
        'item_name', a.item_name, 'price_cents', a.price_cents, 'duration_minutes', a.duration_minutes,
        'customer_name', a.customer_name, 'customer_phone', a.customer_phone, 'notes', a.notes,
        'conversation_id', a.conversation_id, 'booked_by', a.booked_by, 'cancel_reason', a.cancel_reason,
        'created_at', sched_ts(a.created_at), 'updated_at', sched_ts(a.updated_at),
        'cancelled_at', sched_ts(a.cancelled_at)) $$;

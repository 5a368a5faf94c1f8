-- Reporting (owner: report engineer): the appointment projection, revenue
-- attribution, the processed-events ledger, and daily rollups per tenant and
-- local day (tenant time zone).

-- One row per domain event reporting has applied: redelivery (at least once)
-- finds its event_id here and changes nothing. No foreign key: an event of a
-- deleted tenant is still acknowledged once.
CREATE TABLE reporting_processed_events (
    event_id     uuid PRIMARY KEY,
    event_name   text NOT NULL,
    tenant_id    uuid,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reporting_processed_events_at_idx ON reporting_processed_events (processed_at);

-- Appointments as reporting saw them: the price snapshot taken at booking
-- time (AppointmentBooked.price_cents), never the catalog's current price.
CREATE TABLE reporting_appointments (
    appointment_id  uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    conversation_id uuid,
    booked_at       timestamptz NOT NULL,
    cancelled_at    timestamptz
);
CREATE INDEX reporting_appointments_booked_idx ON reporting_appointments (tenant_id, booked_at);
CREATE INDEX reporting_appointments_cancelled_idx ON reporting_appointments (tenant_id, cancelled_at)
    WHERE cancelled_at IS NOT NULL;

-- An appointment booked by a customer whose conversation was started by a
-- missed call: the revenue (price snapshot) it brought back.
CREATE TABLE reporting_attributions (
    appointment_id  uuid PRIMARY KEY REFERENCES reporting_appointments(appointment_id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL,
    missed_call_id  bigint,
    price_cents     bigint NOT NULL CHECK (price_cents >= 0),
    attributed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reporting_attributions_tenant_idx ON reporting_attributions (tenant_id, attributed_at);

-- (tenant, local day) pairs whose rollup must be recomputed. A recompute
-- claims rows (claimed_xid = its transaction), recomputes them from a later
-- snapshot and deletes them in the same transaction; a writer that marks a
-- claimed pair waits for that commit and then inserts it afresh.
CREATE TABLE reporting_dirty_days (
    tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day         date NOT NULL,
    marked_at   timestamptz NOT NULL DEFAULT now(),
    claimed_xid bigint,
    PRIMARY KEY (tenant_id, day)
);
CREATE INDEX reporting_dirty_days_marked_idx ON reporting_dirty_days (marked_at);

CREATE TABLE reporting_daily (
    tenant_id                  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    day                        date NOT NULL,
    calls_detected             integer NOT NULL DEFAULT 0 CHECK (calls_detected >= 0),
    conversations_started      integer NOT NULL DEFAULT 0 CHECK (conversations_started >= 0),
    first_replies              integer NOT NULL DEFAULT 0 CHECK (first_replies >= 0),
    first_response_p50_seconds double precision CHECK (first_response_p50_seconds >= 0),
    first_response_p95_seconds double precision CHECK (first_response_p95_seconds >= 0),
    appointments_booked        integer NOT NULL DEFAULT 0 CHECK (appointments_booked >= 0),
    appointments_cancelled     integer NOT NULL DEFAULT 0 CHECK (appointments_cancelled >= 0),
    attributed_revenue_cents   bigint NOT NULL DEFAULT 0 CHECK (attributed_revenue_cents >= 0),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, day)
);

-- The rollup reads the other modules' tables by tenant and time; these
-- indexes serve only those reads.
CREATE INDEX reporting_missed_calls_day_idx ON missed_calls (tenant_id, detected_at);
CREATE INDEX reporting_first_responses_day_idx ON first_responses (tenant_id, triggered_at);

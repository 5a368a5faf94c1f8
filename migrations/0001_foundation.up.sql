-- Foundation: what every module needs. Tenant-owned rows carry tenant_id.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE tenants (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone          text NOT NULL CHECK (length(timezone) BETWEEN 1 AND 64),
    compliance_status text NOT NULL DEFAULT 'pending'
                      CHECK (compliance_status IN ('pending', 'approved', 'rejected')),
    settings          jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    api_key_hash      text NOT NULL UNIQUE,  -- hex SHA-256 of the tenant API key; the key is shown once
    api_key_prefix    text NOT NULL,         -- first characters, to recognise a key without storing it
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    subject    text NOT NULL UNIQUE CHECK (length(subject) BETWEEN 1 AND 255), -- the JWT sub
    role       text NOT NULL CHECK (role IN ('OWNER', 'TECH')),
    active     boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_tenant_idx ON users (tenant_id);

CREATE TABLE tenant_phone_numbers (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    e164       text NOT NULL UNIQUE CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_phone_numbers_tenant_idx ON tenant_phone_numbers (tenant_id);

CREATE TABLE webhook_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL CHECK (provider IN ('twilio', 'stripe', 'google', 'jobber')),
    event_id    text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 255),
    tenant_id   uuid REFERENCES tenants(id) ON DELETE CASCADE,
    received_at timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (provider, event_id)
);
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at);

CREATE TABLE outbox_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id       uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    event_name     text NOT NULL CHECK (event_name ~ '^[A-Z][A-Za-z]+$'),
    schema_version integer NOT NULL CHECK (schema_version >= 1),
    payload        jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    tenant_id      uuid REFERENCES tenants(id) ON DELETE CASCADE,
    correlation_id text,
    causation_id   text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    available_at   timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error     text,
    dispatched_at  timestamptz,
    locked_by      text,           -- instance that holds the lease
    locked_until   timestamptz     -- lease expiry: a crashed instance's claims return after it
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (available_at, id) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_events_dispatched_idx ON outbox_events (dispatched_at) WHERE dispatched_at IS NOT NULL;

-- Dead letters keep the catalog's shape: same columns, plus when and why they failed.
CREATE TABLE outbox_events_errors (
    id             bigint PRIMARY KEY,
    event_id       uuid NOT NULL UNIQUE,
    event_name     text NOT NULL,
    schema_version integer NOT NULL,
    payload        jsonb NOT NULL,
    tenant_id      uuid REFERENCES tenants(id) ON DELETE CASCADE,
    correlation_id text,
    causation_id   text,
    created_at     timestamptz NOT NULL,
    available_at   timestamptz NOT NULL,
    attempts       integer NOT NULL,
    last_error     text,
    dispatched_at  timestamptz,
    failed_at      timestamptz NOT NULL DEFAULT now()
);

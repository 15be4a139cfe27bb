-- The outbox schema. Times are integer milliseconds since the Unix epoch, UTC.
-- Applied once by the library when a store is opened; recorded in schema_migrations.

-- A customer organisation that registered where to be notified.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One receiving URL of a tenant. Option groups that only the worker reads (headers, retry)
-- are JSON text; `revision` grows on every change so workers can cache parsed endpoints.
CREATE TABLE endpoints (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants(id),
    url                 TEXT NOT NULL,
    event_filters       TEXT NOT NULL DEFAULT '[]',  -- JSON array of GLOB patterns; [] = every type
    headers             TEXT NOT NULL DEFAULT '{}',  -- JSON object
    timeout_ms          INTEGER NOT NULL,
    connect_timeout_ms  INTEGER NOT NULL,
    max_concurrency     INTEGER NOT NULL,
    retry               TEXT NOT NULL,               -- JSON, see RetryPolicy
    success_rule        TEXT NOT NULL,
    enabled             INTEGER NOT NULL DEFAULT 1,
    revision            INTEGER NOT NULL DEFAULT 1,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX endpoints_by_tenant ON endpoints(tenant_id);

-- One thing that happened. `body` holds the exact bytes every receiver gets.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,                    -- lowercase UUID, the idempotency key
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    type        TEXT NOT NULL,
    body        BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX events_by_created ON events(created_at);

-- One event to one endpoint. tenant_id and event_type are copied from the event so the
-- log can filter without a join.
CREATE TABLE deliveries (
    id                INTEGER PRIMARY KEY,
    event_id          TEXT NOT NULL REFERENCES events(id),
    endpoint_id       TEXT NOT NULL REFERENCES endpoints(id),
    tenant_id         TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    status            TEXT NOT NULL
                      CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed', 'cancelled')),
    attempt_count     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,                       -- when pending: due time
    lease_owner       TEXT,                          -- when delivering: the worker process
    lease_expires_at  INTEGER,                       -- when delivering: reclaimable after this
    last_http_status  INTEGER,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries(lease_expires_at) WHERE status = 'delivering';
CREATE INDEX deliveries_by_tenant ON deliveries(tenant_id, id);
CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, id);
CREATE INDEX deliveries_by_status ON deliveries(status, id);

-- The recorded-response audit log: one row per HTTP try, written whole.
CREATE TABLE attempts (
    id                  INTEGER PRIMARY KEY,
    delivery_id         INTEGER NOT NULL REFERENCES deliveries(id),
    number              INTEGER NOT NULL,
    started_at          INTEGER NOT NULL,
    duration_us         INTEGER NOT NULL,
    url                 TEXT NOT NULL,
    request_headers     TEXT NOT NULL,               -- JSON array of [name, value], secrets redacted
    response_status     INTEGER,
    response_headers    TEXT,                        -- JSON array of [name, value]
    response_body       BLOB,
    response_truncated  INTEGER NOT NULL DEFAULT 0,
    error_kind          TEXT,
    error_message       TEXT,
    verdict             TEXT NOT NULL CHECK (verdict IN ('succeeded', 'retry', 'failed')),
    next_attempt_at     INTEGER                      -- when verdict = 'retry'
);
CREATE INDEX attempts_by_delivery ON attempts(delivery_id, number);

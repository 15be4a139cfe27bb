-- Receiver-facing delivery: auth, signing, endpoint health (circuit breaker), ordering.

-- Endpoint configuration. auth and signing are JSON and may hold secrets (or env:NAME
-- references to them); this table is the only place secrets are stored.
ALTER TABLE endpoints ADD COLUMN auth TEXT;                          -- JSON, see EndpointAuth
ALTER TABLE endpoints ADD COLUMN signing TEXT;                       -- JSON array of whsec_ secrets
ALTER TABLE endpoints ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN circuit_failure_threshold INTEGER NOT NULL DEFAULT 20;
ALTER TABLE endpoints ADD COLUMN circuit_cooldown_ms INTEGER NOT NULL DEFAULT 60000;
ALTER TABLE endpoints ADD COLUMN disable_after_ms INTEGER NOT NULL DEFAULT 432000000;  -- 5 days

-- Endpoint health, kept by the workers.
ALTER TABLE endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoints ADD COLUMN failing_since INTEGER;             -- first failure of the current run
ALTER TABLE endpoints ADD COLUMN circuit_open_until INTEGER;        -- no claims before this
ALTER TABLE endpoints ADD COLUMN disabled_reason TEXT;              -- why it was disabled automatically

-- Ordered endpoints deliver one delivery per ordering key at a time, in enqueue order.
ALTER TABLE events ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET ordering_key = tenant_id;

-- A claim probes each endpoint's oldest due rows, so one endpoint's backlog cannot hide
-- another's work; ordered endpoints look up earlier unfinished deliveries of the same key.
CREATE INDEX deliveries_due_by_endpoint ON deliveries(endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_unfinished_by_key ON deliveries(endpoint_id, ordering_key, id)
    WHERE status IN ('pending', 'delivering');

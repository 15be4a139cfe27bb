-- The control panel (#19): who manages an endpoint, its signing secrets' ages, every change to
-- it, and the read tokens tenants' own systems fetch their events with.

-- 'config' while the config file names the endpoint (serve's start writes it; the dashboard
-- and the portal show such endpoints read-only); NULL for endpoints that live in the store.
ALTER TABLE endpoints ADD COLUMN managed_by TEXT;
-- One [created_at, expires_at] pair (milliseconds; expires_at null while it signs for good)
-- for each secret in `signing`, in the same order; NULL for endpoints made before this.
ALTER TABLE endpoints ADD COLUMN signing_meta TEXT;
-- The earliest expires_at in signing_meta: housekeeping drops a rotated-out secret by itself.
ALTER TABLE endpoints ADD COLUMN signing_expires_at INTEGER;
CREATE INDEX endpoints_signing_expiry ON endpoints(signing_expires_at) WHERE signing_expires_at IS NOT NULL;

-- Every change to an endpoint: who, when, and each key's old and new value as JSON text,
-- secrets written '***'.
CREATE TABLE endpoint_changes (
    id           INTEGER PRIMARY KEY,
    endpoint_id  TEXT NOT NULL,
    tenant_id    TEXT NOT NULL,
    actor        TEXT NOT NULL,
    changed_at   INTEGER NOT NULL,
    changes      TEXT NOT NULL
);
CREATE INDEX endpoint_changes_by_endpoint ON endpoint_changes(endpoint_id, id);

-- Tokens a tenant's own system reads its events with (GET /v1/tenant/events/ID). Only the
-- SHA-256 of each is kept; the token is shown once.
CREATE TABLE tenant_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX tenant_tokens_by_tenant ON tenant_tokens(tenant_id, created_at);

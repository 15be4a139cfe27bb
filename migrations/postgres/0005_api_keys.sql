-- Credentials for the HTTP ingest API. Only a SHA-256 of each key is kept: the key itself is
-- shown once, when it is made. `tenants` (a JSON array) limits a key to those tenants; NULL
-- lets it act for any.
CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL,
    tenants     TEXT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

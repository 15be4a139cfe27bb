-- Credentials for the HTTP ingest API. Only a SHA-256 of each key is kept: the key itself is
-- shown once, when it is made. `tenants` (a JSON array) limits a key to those tenants; NULL
-- lets it act for any.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,          -- the key's public part, shown by `api-keys list`
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL,             -- hex SHA-256 of the whole key
    tenants     TEXT,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

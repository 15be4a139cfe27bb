-- Header names an endpoint marks secret: their values are redacted in the audit log like
-- Authorization's. A JSON array of names.
ALTER TABLE endpoints ADD COLUMN secret_headers TEXT NOT NULL DEFAULT '[]';

-- The SQL contract: producers in any language enqueue inside their own transaction with
--
--     INSERT INTO dispatcher_outbox (tenant_id, type, body, id, ordering_key) VALUES (?, ?, ?, ?, ?)
--
-- (`id` and `ordering_key` may be left out or NULL). The trigger does what `enqueue` does: it
-- checks what the database can check (the tenant exists; the type is 1-200 letters, digits,
-- '.', '_', '-'; the body is a JSON object within max_payload_bytes; a given id is a UUID),
-- stores the event once per id (a retry with the same tenant, type and body is a no-op, a
-- different event under a taken id is refused), and fans it out to one delivery per enabled
-- endpoint of the tenant whose filter matches. A failed check aborts the producer's statement
-- with a message starting "dispatcher:". Workers notice the commit (data_version) as they do
-- any other. The names carry a `dispatcher_` prefix so they cannot clash with the producer's.

CREATE TABLE dispatcher_settings (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
-- Kept equal to the config's max_payload_bytes by every process that syncs the config.
INSERT INTO dispatcher_settings (name, value) VALUES ('max_payload_bytes', 262144);

-- Reading the view lists the events; inserting into it enqueues.
CREATE VIEW dispatcher_outbox AS
    SELECT id, tenant_id, type, body, ordering_key, created_at FROM events;

CREATE TRIGGER dispatcher_outbox_enqueue INSTEAD OF INSERT ON dispatcher_outbox
BEGIN
    SELECT RAISE(ABORT, 'dispatcher: invalid event type: use 1-200 letters, digits, ''.'', ''_'' or ''-'' (e.g. checkin.outcome)')
     WHERE NEW.type IS NULL OR typeof(NEW.type) != 'text' OR length(NEW.type) NOT BETWEEN 1 AND 200
        OR NEW.type GLOB '*[^A-Za-z0-9._-]*';
    SELECT RAISE(ABORT, 'dispatcher: the body is larger than max_payload_bytes')
     WHERE length(CAST(NEW.body AS BLOB)) > (SELECT value FROM dispatcher_settings WHERE name = 'max_payload_bytes');
    SELECT RAISE(ABORT, 'dispatcher: invalid JSON body: the top level must be a JSON object ({...})')
     WHERE NEW.body IS NULL OR NOT json_valid(CAST(NEW.body AS TEXT)) OR json_type(CAST(NEW.body AS TEXT)) != 'object';
    SELECT RAISE(ABORT, 'dispatcher: invalid event id: it must be a UUID')
     WHERE NEW.id IS NOT NULL AND (typeof(NEW.id) != 'text' OR lower(NEW.id) NOT GLOB '[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]');
    SELECT RAISE(ABORT, 'dispatcher: unknown tenant: add it to the config''s tenants (and run serve once) before enqueuing for it')
     WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE id = NEW.tenant_id);
    SELECT RAISE(ABORT, 'dispatcher: this event id already exists with a different tenant, type or body')
      FROM events
     WHERE id = lower(NEW.id) AND (tenant_id != NEW.tenant_id OR type != NEW.type OR body != CAST(NEW.body AS BLOB));

    INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key)
    VALUES (coalesce(lower(NEW.id), printf('%08x-%04x-7', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) >> 16, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) & 65535) || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))), NEW.tenant_id, NEW.type, CAST(NEW.body AS BLOB), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), NEW.ordering_key)
    ON CONFLICT (id) DO NOTHING;

    -- Only for an event just stored (changes() counts the insert above; last_insert_rowid()
    -- is its row), never for a retried one.
    INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status,
                            next_attempt_at, created_at, updated_at, ordering_key, ordered)
    SELECT ev.id, e.id, e.tenant_id, ev.type, 'pending', ev.created_at, ev.created_at, ev.created_at,
           coalesce(ev.ordering_key, e.tenant_id), e.ordered
      FROM events ev, endpoints e
     WHERE changes() = 1 AND ev.rowid = last_insert_rowid()
       AND e.tenant_id = ev.tenant_id
       AND e.enabled = 1 AND e.removed_at IS NULL
       AND (e.event_filters = '[]' OR EXISTS (SELECT 1 FROM json_each(e.event_filters) f WHERE glob(f.value, ev.type)));
END;

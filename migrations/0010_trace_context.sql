-- An event's W3C Trace Context, when its producer gave one: every attempt sends its trace id
-- under a new span id (`traceparent`), and `tracestate` unchanged. The SQL contract takes them too:
--
--     INSERT INTO dispatcher_outbox (tenant_id, type, body, traceparent, tracestate) VALUES (?, ?, ?, ?, ?)
--
-- (the view and its trigger are made again with the two columns; everything else is as 0007 made it).
ALTER TABLE events ADD COLUMN traceparent TEXT;
ALTER TABLE events ADD COLUMN tracestate TEXT;

DROP TRIGGER dispatcher_outbox_enqueue;
DROP VIEW dispatcher_outbox;

CREATE VIEW dispatcher_outbox AS
    SELECT id, tenant_id, type, body, ordering_key, created_at, traceparent, tracestate FROM events;

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
    SELECT RAISE(ABORT, 'dispatcher: invalid traceparent: it must be 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex> (W3C Trace Context), the ids not all zeros')
     WHERE NEW.traceparent IS NOT NULL AND (typeof(NEW.traceparent) != 'text'
        OR NEW.traceparent NOT GLOB '00-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]-[0-9a-f][0-9a-f]'
        OR substr(NEW.traceparent, 4, 32) = '00000000000000000000000000000000' OR substr(NEW.traceparent, 37, 16) = '0000000000000000');
    SELECT RAISE(ABORT, 'dispatcher: invalid tracestate: at most 512 characters of printable ASCII, and only with a traceparent')
     WHERE NEW.tracestate IS NOT NULL AND (NEW.traceparent IS NULL OR typeof(NEW.tracestate) != 'text'
        OR length(NEW.tracestate) > 512 OR NEW.tracestate GLOB '*[^ -~]*');
    SELECT RAISE(ABORT, 'dispatcher: unknown tenant: add it to the config''s tenants (and run serve once) before enqueuing for it')
     WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE id = NEW.tenant_id);
    SELECT RAISE(ABORT, 'dispatcher: this event id already exists with a different tenant, type or body')
      FROM events
     WHERE id = lower(NEW.id) AND (tenant_id != NEW.tenant_id OR type != NEW.type OR body != CAST(NEW.body AS BLOB));

    INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key, traceparent, tracestate)
    VALUES (coalesce(lower(NEW.id), printf('%08x-%04x-7', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) >> 16, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) & 65535) || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)))), NEW.tenant_id, NEW.type, CAST(NEW.body AS BLOB), CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER), NEW.ordering_key, NEW.traceparent, NEW.tracestate)
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

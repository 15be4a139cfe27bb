-- An event's W3C Trace Context, when its producer gave one: every attempt sends its trace id
-- under a new span id (`traceparent`), and `tracestate` unchanged. The SQL contract takes them too:
--
--     SELECT * FROM dispatcher_enqueue(tenant_id, type, body, p_traceparent => '00-…', p_tracestate => '…')
--
-- (the function is made again with two more optional parameters; everything else is as 0004 made it).
ALTER TABLE events ADD COLUMN traceparent TEXT;
ALTER TABLE events ADD COLUMN tracestate TEXT;

DROP FUNCTION dispatcher_enqueue(TEXT, TEXT, TEXT, TEXT, TEXT);

CREATE FUNCTION dispatcher_enqueue(p_tenant_id TEXT, p_type TEXT, p_body TEXT,
                                   p_id TEXT DEFAULT NULL, p_ordering_key TEXT DEFAULT NULL,
                                   p_traceparent TEXT DEFAULT NULL, p_tracestate TEXT DEFAULT NULL)
    RETURNS TABLE (event_id TEXT, deliveries INTEGER, duplicate BOOLEAN)
    LANGUAGE plpgsql AS $$
DECLARE
    v_body BYTEA := convert_to(p_body, 'UTF8');
    v_now BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
    v_id TEXT;
    v_count INTEGER;
    v_json JSONB;
BEGIN
    IF p_type IS NULL OR length(p_type) NOT BETWEEN 1 AND 200 OR p_type ~ '[^A-Za-z0-9._-]' THEN
        RAISE EXCEPTION 'dispatcher: invalid event type ''%'': use 1-200 letters, digits, ''.'', ''_'' or ''-'' (e.g. checkin.outcome)', p_type
            USING ERRCODE = '22023';
    END IF;
    IF p_body IS NULL OR octet_length(v_body) > (SELECT value FROM dispatcher_settings WHERE name = 'max_payload_bytes') THEN
        RAISE EXCEPTION 'dispatcher: the body is missing or larger than max_payload_bytes (% bytes)', octet_length(v_body)
            USING ERRCODE = '22023';
    END IF;
    BEGIN
        v_json := p_body::JSONB;
    EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
        RAISE EXCEPTION 'dispatcher: invalid JSON body: it does not parse' USING ERRCODE = '22023';
    END;
    IF jsonb_typeof(v_json) <> 'object' THEN
        RAISE EXCEPTION 'dispatcher: invalid JSON body: the top level must be a JSON object ({...})' USING ERRCODE = '22023';
    END IF;
    IF p_id IS NOT NULL AND lower(p_id) !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
        RAISE EXCEPTION 'dispatcher: invalid event id ''%'': it must be a UUID', p_id USING ERRCODE = '22023';
    END IF;
    IF p_traceparent IS NOT NULL AND (p_traceparent !~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
            OR substr(p_traceparent, 4, 32) = repeat('0', 32) OR substr(p_traceparent, 37, 16) = repeat('0', 16)) THEN
        RAISE EXCEPTION 'dispatcher: invalid traceparent ''%'': it must be 00-<32 lowercase hex>-<16 lowercase hex>-<2 lowercase hex> (W3C Trace Context), the ids not all zeros', p_traceparent
            USING ERRCODE = '22023';
    END IF;
    IF p_tracestate IS NOT NULL AND (p_traceparent IS NULL OR length(p_tracestate) > 512 OR p_tracestate ~ '[^ -~]') THEN
        RAISE EXCEPTION 'dispatcher: invalid tracestate: at most 512 characters of printable ASCII, and only with a traceparent'
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = p_tenant_id) THEN
        RAISE EXCEPTION 'dispatcher: unknown tenant ''%'': add it to the config''s tenants (and run serve once) before enqueuing for it', p_tenant_id
            USING ERRCODE = '22023';
    END IF;

    v_id := coalesce(lower(p_id),
        lpad(to_hex(v_now >> 16), 8, '0') || '-' || lpad(to_hex(v_now & 65535), 4, '0') || '-7'
        || substr(md5(random()::TEXT), 1, 3) || '-' || substr('89ab', 1 + floor(random() * 4)::INTEGER, 1)
        || substr(md5(random()::TEXT), 1, 3) || '-' || substr(md5(random()::TEXT), 1, 12));

    INSERT INTO events (id, tenant_id, type, body, created_at, ordering_key, traceparent, tracestate)
    VALUES (v_id, p_tenant_id, p_type, v_body, v_now, p_ordering_key, p_traceparent, p_tracestate)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        IF EXISTS (SELECT 1 FROM events e WHERE e.id = v_id
                      AND (e.tenant_id <> p_tenant_id OR e.type <> p_type OR e.body <> v_body)) THEN
            RAISE EXCEPTION 'dispatcher: event % already exists with a different tenant, type or body', v_id
                USING ERRCODE = '23505';
        END IF;
        RETURN QUERY SELECT v_id, (SELECT count(*)::INTEGER FROM deliveries d WHERE d.event_id = v_id), TRUE;
        RETURN;
    END IF;

    INSERT INTO deliveries (event_id, endpoint_id, tenant_id, event_type, status,
                            next_attempt_at, created_at, updated_at, ordering_key, ordered)
    SELECT v_id, e.id, e.tenant_id, p_type, 'pending', v_now, v_now, v_now, coalesce(p_ordering_key, e.tenant_id), e.ordered
      FROM endpoints e
     WHERE e.tenant_id = p_tenant_id
       AND e.enabled = 1 AND e.removed_at IS NULL
       AND (e.event_filters = '[]' OR EXISTS (SELECT 1 FROM json_array_elements_text(e.event_filters::JSON) f WHERE glob(f, p_type)));
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM pg_notify('dispatcher_work', '');
    RETURN QUERY SELECT v_id, v_count, FALSE;
END
$$;

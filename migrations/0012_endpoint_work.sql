-- Endpoints that may have due work, so a claim reads what is due instead of probing every
-- endpoint: its cost follows the work, not the number of customers.
--
-- An endpoint with a pending delivery always has a row here whose due_at is no later than
-- that delivery's next_attempt_at. The triggers below keep that true whenever a delivery
-- becomes pending (enqueued by any path, the SQL contract's included; retried; released;
-- swept after a crash; redelivered; replayed). A row may be early (stale): a claim that finds
-- nothing due moves it to the endpoint's next pending delivery or deletes it. Claims also move
-- it past an open circuit, a 429's hold or an empty rate bucket, and delete it for a disabled
-- or removed endpoint (enabling one puts its row back, by a trigger too). `version` grows on every write, so a
-- claim changes only the row it read.
CREATE TABLE endpoint_work (
    endpoint_id  TEXT PRIMARY KEY,
    due_at       INTEGER NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX endpoint_work_by_due ON endpoint_work(due_at, endpoint_id);

CREATE TRIGGER deliveries_pending_work AFTER INSERT ON deliveries WHEN NEW.status = 'pending'
BEGIN
    INSERT INTO endpoint_work (endpoint_id, due_at) VALUES (NEW.endpoint_id, coalesce(NEW.next_attempt_at, 0))
    ON CONFLICT (endpoint_id) DO UPDATE SET due_at = excluded.due_at, version = version + 1
     WHERE excluded.due_at < endpoint_work.due_at;
END;

CREATE TRIGGER deliveries_pending_again_work AFTER UPDATE OF status, next_attempt_at ON deliveries WHEN NEW.status = 'pending'
BEGIN
    INSERT INTO endpoint_work (endpoint_id, due_at) VALUES (NEW.endpoint_id, coalesce(NEW.next_attempt_at, 0))
    ON CONFLICT (endpoint_id) DO UPDATE SET due_at = excluded.due_at, version = version + 1
     WHERE excluded.due_at < endpoint_work.due_at;
END;

-- An endpoint enabled again (by hand, by the config, or in SQL) gets its row back: claims dropped
-- it while the endpoint was disabled. (Enabling also closes the circuit, so an earlier due_at
-- than the one a claim moved past the circuit is welcome.)
CREATE TRIGGER endpoints_usable_work AFTER UPDATE OF enabled, removed_at ON endpoints
WHEN NEW.enabled = 1 AND NEW.removed_at IS NULL
BEGIN
    INSERT INTO endpoint_work (endpoint_id, due_at)
    SELECT endpoint_id, coalesce(min(next_attempt_at), 0) FROM deliveries
     WHERE endpoint_id = NEW.id AND status = 'pending' GROUP BY endpoint_id
    ON CONFLICT (endpoint_id) DO UPDATE SET due_at = excluded.due_at, version = version + 1
     WHERE excluded.due_at < endpoint_work.due_at;
END;

INSERT INTO endpoint_work (endpoint_id, due_at)
SELECT endpoint_id, coalesce(min(next_attempt_at), 0) FROM deliveries WHERE status = 'pending' GROUP BY endpoint_id;

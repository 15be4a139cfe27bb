-- Endpoints that may have due work, so a claim reads what is due instead of probing every
-- endpoint: its cost follows the work, not the number of customers.
--
-- An endpoint with a pending delivery always has a row in endpoint_work, or a signal in
-- endpoint_work_signals, whose due_at is no later than that delivery's next_attempt_at.
-- Producers only append signals (a trigger on deliveries, whatever path made the row pending):
-- an append takes no lock another transaction waits on, so concurrent producers never queue
-- behind one hot row. A claim folds the committed signals into endpoint_work (one claimer at a
-- time, under an advisory lock) before it reads; a signal not yet committed is folded by a
-- later claim, so a claim that finds nothing due may move or delete a row without losing a
-- delivery committed meanwhile. Rows may be early (stale); `version` grows on every write, so a
-- claim changes only the row it read, and skips rows another claim holds.
CREATE TABLE endpoint_work (
    endpoint_id  TEXT PRIMARY KEY,
    due_at       BIGINT NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX endpoint_work_by_due ON endpoint_work(due_at, endpoint_id);

CREATE TABLE endpoint_work_signals (
    id           BIGSERIAL PRIMARY KEY,
    endpoint_id  TEXT NOT NULL,
    due_at       BIGINT NOT NULL
);

-- One signal per endpoint per statement (a fan-out or a batch of retries is one statement).
CREATE FUNCTION dispatcher_signal_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO endpoint_work_signals (endpoint_id, due_at)
    SELECT endpoint_id, coalesce(min(next_attempt_at), 0) FROM changed_deliveries WHERE status = 'pending' GROUP BY endpoint_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_pending_work AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS changed_deliveries FOR EACH STATEMENT EXECUTE FUNCTION dispatcher_signal_work();
CREATE TRIGGER deliveries_pending_again_work AFTER UPDATE ON deliveries
    REFERENCING NEW TABLE AS changed_deliveries FOR EACH STATEMENT EXECUTE FUNCTION dispatcher_signal_work();

-- An endpoint enabled again (by hand, by the config, or in SQL) signals its pending work: claims
-- dropped its row while it was disabled.
CREATE FUNCTION dispatcher_signal_endpoint_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO endpoint_work_signals (endpoint_id, due_at)
    SELECT endpoint_id, coalesce(min(next_attempt_at), 0) FROM deliveries
     WHERE endpoint_id = NEW.id AND status = 'pending' GROUP BY endpoint_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER endpoints_usable_work AFTER UPDATE OF enabled, removed_at ON endpoints
    FOR EACH ROW WHEN (NEW.enabled = 1 AND NEW.removed_at IS NULL) EXECUTE FUNCTION dispatcher_signal_endpoint_work();

INSERT INTO endpoint_work (endpoint_id, due_at)
SELECT endpoint_id, coalesce(min(next_attempt_at), 0) FROM deliveries WHERE status = 'pending' GROUP BY endpoint_id;

-- Operations: redelivery restarts a delivery's retry policy; endpoints can be removed while
-- their history stays; stats and pruning read by time.

-- Attempts made before the latest redelivery: the retry policy counts from here.
ALTER TABLE deliveries ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;
-- When the current run of attempts began (max_age counts from it); NULL means created_at.
ALTER TABLE deliveries ADD COLUMN schedule_started_at INTEGER;

-- A removed endpoint gets no deliveries and is not listed; its past deliveries keep their log.
ALTER TABLE endpoints ADD COLUMN removed_at INTEGER;

CREATE INDEX deliveries_finished_by_updated ON deliveries(updated_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX attempts_by_started ON attempts(started_at);

-- Only deliveries to ordered endpoints need the index of unfinished deliveries by ordering key,
-- and every delivery used to sit in it: two index writes per delivery (at the lease and at the
-- verdict) and one leaf page per endpoint in nearly every store-loop commit, for a lookup that
-- only ordered endpoints make. A delivery now carries its endpoint's `ordered` flag from when it
-- was created (or redelivered), and the index holds only the flagged ones.
ALTER TABLE deliveries ADD COLUMN ordered INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET ordered = 1
 WHERE status IN ('pending', 'delivering')
   AND endpoint_id IN (SELECT id FROM endpoints WHERE ordered = 1);
DROP INDEX deliveries_unfinished_by_key;
CREATE INDEX deliveries_unfinished_by_key ON deliveries(endpoint_id, ordering_key, id)
    WHERE status IN ('pending', 'delivering') AND ordered = 1;

-- The partial index of leases also holds each lease's owner (and its status, which every entry
-- shares, so that SQLite reads a count from the index alone), so a claim can count the leases
-- other processes hold without reading their rows. With none (one serve process, the usual case
-- on SQLite) the claim's own counts by endpoint are the store's, and it no longer reads every
-- live lease back to count them by endpoint: that read grew with the requests in flight, not
-- with the work due (2,000 workers at receivers answering in 100 ms: about 2,500 rows a claim).
DROP INDEX deliveries_leased;
CREATE INDEX deliveries_leased ON deliveries(lease_expires_at, lease_owner, status) WHERE status = 'delivering';

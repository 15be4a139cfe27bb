-- Fewer indexes to keep up on every status change: each delivery row moves pending ->
-- delivering -> succeeded, and every index it sits in is rewritten on each move.
--
-- None of these four served a query: the log's filter is one statement with
-- `(?n IS NULL OR column = ?n)` terms, which scans by id whatever indexes exist; the counts
-- of pending and in-flight deliveries, the lease sweep and the oldest pending delivery read
-- the partial indexes of due work by endpoint and of leases, which hold only those rows.
DROP INDEX deliveries_by_tenant;
DROP INDEX deliveries_by_endpoint;
DROP INDEX deliveries_by_status;
DROP INDEX deliveries_due;

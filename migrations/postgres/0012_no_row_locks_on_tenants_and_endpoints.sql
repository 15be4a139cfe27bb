-- Enqueuing takes no row lock on the tenant or the endpoints (PostgreSQL only).
--
-- PostgreSQL checks a foreign key with a query per inserted row that locks the referenced row
-- (`SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE`): a batch of 1,000 events to 10 tenants
-- spent 8.7 ms of its 64 ms checking events against tenants and 8.8 ms checking deliveries against
-- endpoints, locking the same few rows a thousand times each. Worse, a claim locks the endpoints it
-- takes from `FOR UPDATE SKIP LOCKED`, which conflicts with `FOR KEY SHARE`: while a producer's
-- transaction that had enqueued for a tenant stayed open, claims skipped that tenant's endpoints.
-- These two checks guard nothing a writer can break: tenants and endpoints are never deleted (an
-- endpoint is removed by `removed_at`), and every writer names a tenant or endpoint it has just
-- read (the enqueue statements join them, `dispatcher_enqueue` refuses an unknown tenant, a test
-- send reads its endpoint first). The keys whose parents `prune` deletes stay: deliveries to
-- events, attempts to deliveries.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_tenant_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_endpoint_id_fkey;

-- Enqueuing takes no row lock on the tenant or the endpoints (PostgreSQL only).
--
-- PostgreSQL checks a foreign key with a query per inserted row that locks the referenced row
-- (`SELECT 1 FROM tenants WHERE id = $1 FOR KEY SHARE`): a batch of 1,000 events to 10 tenants
-- spent 8.7 ms of its 64 ms checking events against tenants and 8.8 ms checking deliveries against
-- endpoints, locking the same few rows a thousand times each (and, under concurrent producers,
-- sharing those locks through multixacts). These two checks guard nothing a writer can break:
-- every statement that inserts an event or a delivery reads the tenant or endpoint it names in the
-- same statement (the enqueue statements join them, `dispatcher_enqueue` refuses an unknown
-- tenant), and tenants and endpoints are never deleted (an endpoint is removed by `removed_at`).
-- The keys whose parents are deleted stay: deliveries to events and attempts to deliveries, which
-- `prune` deletes, and where the check's lock orders a prune against a replay of the same event.
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_tenant_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_endpoint_id_fkey;

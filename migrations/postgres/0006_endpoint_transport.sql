-- How requests reach an endpoint beyond its URL: `tls` (client certificate, private CA, pinned
-- key) and `proxy` (an egress proxy, or "none"), each as the config writes it, NULL for the
-- defaults; `http2` (1: offer HTTP/2, which the receiver may take).
ALTER TABLE endpoints ADD COLUMN tls TEXT;
ALTER TABLE endpoints ADD COLUMN proxy TEXT;
ALTER TABLE endpoints ADD COLUMN http2 INTEGER NOT NULL DEFAULT 0;
-- A rate limit: a token bucket every claim, in whatever process, reads and updates under the
-- claim's lock (`rate_tokens` as of `rate_updated_at`, ms). `throttled_until` (ms): a 429 with
-- Retry-After holds the whole endpoint's deliveries until then.
ALTER TABLE endpoints ADD COLUMN rate_limit_per_second DOUBLE PRECISION;
ALTER TABLE endpoints ADD COLUMN rate_tokens DOUBLE PRECISION;
ALTER TABLE endpoints ADD COLUMN rate_updated_at BIGINT;
ALTER TABLE endpoints ADD COLUMN throttled_until BIGINT;

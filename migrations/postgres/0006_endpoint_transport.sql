-- How requests reach an endpoint beyond its URL: `tls` (client certificate, private CA, pinned
-- key) and `proxy` (an egress proxy, or "none"), each as the config writes it, NULL for the
-- defaults; `http2` (1: offer HTTP/2, which the receiver may take).
ALTER TABLE endpoints ADD COLUMN tls TEXT;
ALTER TABLE endpoints ADD COLUMN proxy TEXT;
ALTER TABLE endpoints ADD COLUMN http2 INTEGER NOT NULL DEFAULT 0;

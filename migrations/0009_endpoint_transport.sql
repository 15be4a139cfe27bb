-- How requests reach an endpoint beyond its URL: `tls` (client certificate, private CA, pinned
-- key) and `proxy` (an egress proxy, or "none"), each as the config writes it; NULL for the
-- defaults.
ALTER TABLE endpoints ADD COLUMN tls TEXT;
ALTER TABLE endpoints ADD COLUMN proxy TEXT;

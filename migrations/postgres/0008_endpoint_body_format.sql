-- How an endpoint wants the body: NULL for the event's bytes unchanged, 'slack' for
-- {"text": "..."} (a Slack-compatible incoming webhook as an alert channel).
ALTER TABLE endpoints ADD COLUMN body_format TEXT;

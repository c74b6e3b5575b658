-- Each rate-limit event knows when it leaves its window, so the notifier's
-- tick can delete every scope's old events (a key seen once, e.g. an order
-- id's codes, was otherwise kept until the same key came back). Rows from
-- before this migration are given 30 days, longer than any default window.
ALTER TABLE rate_events ADD COLUMN expires_at BIGINT;
UPDATE rate_events SET expires_at = at + 2592000;
CREATE INDEX rate_events_expiry ON rate_events (expires_at);

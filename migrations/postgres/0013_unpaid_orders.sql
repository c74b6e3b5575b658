-- The public order form (issue 11): unpaid orders expire and the notifier
-- deletes them in batches, oldest first, by (state, created_at); open
-- unpaid orders are counted per address (lower-cased) for the cap.
CREATE INDEX orders_unpaid ON orders (state, created_at);
CREATE INDEX orders_mailbox ON orders (lower(email), state);

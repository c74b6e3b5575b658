-- CLOUD authorization codes: wrong codes are counted per authenticator
-- before a code is checked (one conditional UPDATE); the lock_after-th wrong
-- one sets totp_locked_at, and only an RA officer clears it. A right code
-- resets the count.
ALTER TABLE orders ADD COLUMN totp_failed_attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN totp_locked_at BIGINT;

-- A payment event for an order (or renewal) that was already paid is kept
-- and flagged for refund (refund_due = 1), visible to RA officers and in /metrics.
ALTER TABLE payment_events ADD COLUMN refund_due BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payment_events ADD COLUMN payment_ref TEXT;
ALTER TABLE renewal_payment_events ADD COLUMN refund_due BIGINT NOT NULL DEFAULT 0;
ALTER TABLE renewal_payment_events ADD COLUMN payment_ref TEXT;

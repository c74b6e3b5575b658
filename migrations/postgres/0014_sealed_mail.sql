-- Mail bodies carry capability links (order links, secret delivery links):
-- they are stored sealed by the vault (XChaCha20-Poly1305, associated data
-- 'outbox:<dedupe_key>') in body_sealed, body_text stays '' for such rows,
-- and both are erased when the mail is sent. Sent rows (metadata only) are
-- deleted by the notifier's tick after notifier.keep_sent_mail_days.
ALTER TABLE outbox ADD COLUMN body_sealed BYTEA;
-- Bodies of mail sent before this migration: erased now.
UPDATE outbox SET body_text = '' WHERE sent_at IS NOT NULL;
-- The purge's range scan.
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- Retention of personal data (issue 18). Nothing here is deleted yet: the
-- notifier's tick purges by these columns and indexes (ca-core::retention).
--
-- certificates.retention_from: when the registration-record clock starts
-- (EN 319 411-1 OVR-6.4.6-01: "after the last certificate based on them
-- ceases to be valid"): notAfter, or the revocation time if earlier; moved
-- later by the purge while a renewal of the certificate is still kept.
-- erased_at: the personal data of the row (names, email, subject, DER) is
-- gone; serial, issuer, status, validity and the revocation stay, so OCSP
-- and CRLs keep answering (eIDAS Art. 24(4)). restricted_at: the holder
-- asked for erasure and a retention duty applies (GDPR Art. 18).
ALTER TABLE certificates ADD COLUMN retention_from BIGINT;
ALTER TABLE certificates ADD COLUMN erased_at BIGINT;
ALTER TABLE certificates ADD COLUMN restricted_at BIGINT;
UPDATE certificates SET retention_from = MIN(not_after,
    COALESCE((SELECT r.revoked_at FROM revocations r WHERE r.serial = certificates.serial), not_after));
CREATE INDEX certificates_retention ON certificates (retention_from) WHERE kind = 'end-entity' AND erased_at IS NULL;

-- Orders (financial records): due 10 years after the end of the financial
-- year of payment, found by paid_at. retention_hold = 1 while a
-- certificate issued for the order still keeps its registration data (the
-- certificate's erasure clears it), so held orders leave the index.
ALTER TABLE orders ADD COLUMN retention_hold BIGINT NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN restricted_at BIGINT;
CREATE INDEX orders_retention ON orders (paid_at) WHERE retention_hold = 0 AND paid_at IS NOT NULL;
CREATE INDEX orders_document ON orders (document_key);

-- Audit entries from now on are chained with hash rule 2: free text that
-- may name a person (a rejection reason) goes into `personal`, and the hash
-- covers personal_digest = SHA-256(personal_salt || personal) instead of the
-- text. Erasing personal and personal_salt leaves the chain verifiable.
-- Entries written before keep hash_version 1 and their old rule.
ALTER TABLE audit_log ADD COLUMN hash_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN personal TEXT;
ALTER TABLE audit_log ADD COLUMN personal_salt TEXT;
ALTER TABLE audit_log ADD COLUMN personal_digest TEXT;

-- Lookups of the purge, the export and the erasure.
CREATE INDEX renewals_order ON renewals (order_id);
CREATE INDEX renewal_payment_events_renewal ON renewal_payment_events (renewal_id);
CREATE INDEX payment_events_order ON payment_events (order_id);
CREATE INDEX secret_deliveries_serial ON secret_deliveries (serial);
CREATE INDEX outbox_recipient ON outbox (recipient);

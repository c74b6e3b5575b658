-- Renewal (DOMAIN.md "Renewal"): the holder orders it with the current
-- certificate while that is valid, at the latest 3 days before its
-- notAfter; the notifier issues it 3 days before expiry, with
-- notBefore = old notAfter - 3 days.
CREATE TABLE renewals (
    id          TEXT    PRIMARY KEY,                       -- 32 random hex digits
    serial      TEXT    NOT NULL REFERENCES certificates(serial), -- the current certificate
    order_id    TEXT    REFERENCES orders(id),             -- the first order (CLOUD: its authenticator)
    product     TEXT    NOT NULL CHECK (product IN ('token', 'cloud')),
    years       BIGINT  NOT NULL CHECK (years IN (1, 2, 3)),
    csr         BLOB,                                    -- TOKEN: the new key's request
    csr_key_id  TEXT,
    state       TEXT    NOT NULL CHECK (state IN ('awaiting-payment', 'paid', 'issuing', 'issued', 'cancelled')),
    issue_at    BIGINT  NOT NULL,                          -- old notAfter - 3 days
    lease_until BIGINT,                                    -- while 'issuing': who holds it, until when
    new_serial  TEXT,
    created_at  BIGINT  NOT NULL,
    paid_at     BIGINT,
    updated_at  BIGINT  NOT NULL
);
-- One live renewal per certificate.
CREATE UNIQUE INDEX renewals_one_per_certificate ON renewals (serial) WHERE state <> 'cancelled';
CREATE INDEX renewals_due ON renewals (state, issue_at);

CREATE TABLE renewal_payment_events (
    event_id    TEXT   PRIMARY KEY,
    renewal_id  TEXT   NOT NULL REFERENCES renewals(id),
    received_at BIGINT NOT NULL
);

-- Which renewal (or order) a certificate was issued for: a second issuance
-- for the same renewal cannot be reserved while the first is not aborted.
ALTER TABLE certificates ADD COLUMN issued_for TEXT;
CREATE UNIQUE INDEX certificates_issued_for ON certificates (issued_for) WHERE status <> 'aborted';

-- Reminders: 0 none yet, 1 the 45-day one done, 2 the 15-day one done (sent,
-- or not needed because a renewal was ordered), 3 none will be sent (revoked).
ALTER TABLE certificates ADD COLUMN reminder_stage BIGINT NOT NULL DEFAULT 0;
CREATE INDEX certificates_reminders ON certificates (reminder_stage, not_after) WHERE kind = 'end-entity' AND status = 'issued';

-- Reminder mails are in the order's language: orders are found by certificate.
CREATE INDEX orders_serial ON orders (serial);

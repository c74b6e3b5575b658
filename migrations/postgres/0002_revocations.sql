-- Revocations are permanent (eIDAS Art. 28(4)): rows are inserted, never
-- updated or deleted. reason is the RFC 5280 CRLReason code; certificateHold
-- (6) and removeFromCRL (8) cannot be stored.
CREATE TABLE revocations (
    serial          TEXT    PRIMARY KEY REFERENCES certificates(serial),
    issuer_serial   TEXT    NOT NULL REFERENCES certificates(serial), -- the CA whose CRL lists it
    reason          BIGINT  NOT NULL CHECK (reason IN (0, 1, 2, 3, 4, 5, 9, 10)),
    revoked_at      BIGINT  NOT NULL,
    invalidity_date BIGINT,
    requested_by    TEXT    NOT NULL
);
CREATE INDEX revocations_issuer ON revocations (issuer_serial, serial);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);

-- Every CRL qcert signed, per issuing CA; crl_number only grows.
CREATE TABLE crls (
    issuer_serial TEXT   NOT NULL REFERENCES certificates(serial),
    crl_number    BIGINT NOT NULL,
    this_update   BIGINT NOT NULL,
    next_update   BIGINT NOT NULL,
    entries       BIGINT NOT NULL,
    der           BYTEA  NOT NULL,
    PRIMARY KEY (issuer_serial, crl_number)
);

-- The last CRLNumber handed out per CA. Publishing a CRL bumps it inside the
-- transaction that reads the revocations and stores the CRL, which
-- serialises publishers (also across processes), so a higher CRLNumber
-- never lists fewer revocations.
CREATE TABLE crl_counters (
    issuer_serial TEXT   PRIMARY KEY REFERENCES certificates(serial),
    last_number   BIGINT NOT NULL
);

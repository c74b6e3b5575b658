-- Operator accounts. An operator authenticates with a bearer token shown
-- once at creation; only its SHA-256 is stored (the token carries 256
-- random bits, so a fast hash is enough). A name is never reused, so audit
-- entries stay attributable; revoking sets revoked_at.
CREATE TABLE operators (
    name       TEXT   PRIMARY KEY,
    role       TEXT   NOT NULL CHECK (role IN ('admin', 'ra-officer', 'hotline-agent')),
    token_hash TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- What the hotline checks a caller against, per certificate. document_key
-- is the HMAC-SHA-256 (key outside the database) of the normalised ID
-- document number, password_hash the Argon2id PHC string of the 8-digit
-- revocation password. Neither secret is stored in clear.
CREATE TABLE revocation_credentials (
    serial          TEXT   PRIMARY KEY REFERENCES certificates(serial),
    document_key    TEXT   NOT NULL,
    password_hash   TEXT   NOT NULL,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    locked_at       BIGINT,          -- hotline path locked after 5 wrong passwords
    changed_at      BIGINT NOT NULL
);
CREATE INDEX revocation_credentials_document ON revocation_credentials (document_key);

-- The audit log: append-only, each entry chained to the previous one by
-- hash = SHA-256(seq, at, actor, action, subject, outcome, detail, prev_hash).
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    outcome   TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL
);

-- The chain's head. Appending bumps seq here first, which serialises
-- writers (also across processes) and lets verification notice a cut tail.
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT   NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

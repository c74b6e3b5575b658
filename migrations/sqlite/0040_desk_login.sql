-- The operators' desk login (ca-core desk_login). Secrets are never stored
-- in clear: the password as an Argon2id PHC string, enrolment links and
-- session ids as SHA-256 (256 random bits each, so a fast hash suffices),
-- the TOTP secret sealed by the vault (associated data 'desk-totp:<operator>').

-- One row per operator that has used the desk. user_handle is the WebAuthn
-- user id (a random UUID, never the name), fixed for the account's life.
CREATE TABLE desk_accounts (
    operator            TEXT   PRIMARY KEY REFERENCES operators(name),
    user_handle         TEXT   NOT NULL UNIQUE,
    password_hash       TEXT,                     -- NULL until enrolled and after a reset
    totp_allowed        BIGINT NOT NULL DEFAULT 0, -- an admin allowed TOTP as the fallback factor
    totp_sealed         BLOB,                     -- the confirmed TOTP secret
    totp_pending_sealed BLOB,                     -- a secret shown, not yet confirmed by a code
    totp_last_step      BIGINT,                   -- the last accepted step: a code works once
    language            TEXT   NOT NULL DEFAULT 'en',
    enrolled_at         BIGINT,
    updated_at          BIGINT NOT NULL
);

-- Registered security keys: webauthn-rs Passkey as JSON (public key,
-- signature counter); a credential id belongs to one operator.
CREATE TABLE desk_keys (
    credential_id TEXT   PRIMARY KEY,
    operator      TEXT   NOT NULL REFERENCES operators(name),
    passkey       TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX desk_keys_operator ON desk_keys (operator);

-- One-time enrolment links (/desk/enrol#<token>): valid 72 h, used once.
-- password_hash and registration (the WebAuthn registration state, JSON)
-- hold the first step until the key is registered.
CREATE TABLE desk_enrolments (
    token_hash    TEXT   PRIMARY KEY,
    operator      TEXT   NOT NULL REFERENCES operators(name),
    created_by    TEXT   NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    password_hash TEXT,
    registration  TEXT
);
CREATE INDEX desk_enrolments_operator ON desk_enrolments (operator);

-- Server-side sessions. 'pending': password accepted, second factor
-- awaited (challenge = the WebAuthn authentication state, JSON); 'active':
-- signed in. Valid only while the operator is active (joined on every use).
CREATE TABLE desk_sessions (
    id_hash      TEXT   PRIMARY KEY,
    operator     TEXT   NOT NULL REFERENCES operators(name),
    stage        TEXT   NOT NULL CHECK (stage IN ('pending', 'active')),
    challenge    TEXT,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX desk_sessions_operator ON desk_sessions (operator);
CREATE INDEX desk_sessions_expiry ON desk_sessions (expires_at);

-- Remote signing (CSC API) with CLOUD certificates.
-- The holder's first factor: a signing password set through the order's
-- link with a code from the authenticator, stored as an Argon2id PHC string.
ALTER TABLE orders ADD COLUMN signing_password_hash TEXT;

-- Bearer tokens of auth/login: 256 random bits, stored as SHA-256 (hex).
CREATE TABLE csc_sessions (
    token_hash TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX csc_sessions_expiry ON csc_sessions (expires_at);

-- Signature activation data: 256 random bits, stored as SHA-256 (hex),
-- bound to the holder (order), the credential (certificate serial), the
-- hash algorithm and the exact hashes still to sign (sorted, base64,
-- comma-separated). Each signHash removes the hashes it signs with one
-- conditional UPDATE on (hashes, remaining); at 0 the SAD is used up.
CREATE TABLE csc_sads (
    sad_hash   TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    serial     TEXT NOT NULL,
    hash_algo  TEXT NOT NULL,
    hashes     TEXT NOT NULL,
    remaining  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX csc_sads_expiry ON csc_sads (expires_at);

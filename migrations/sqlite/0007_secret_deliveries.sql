-- One-time delivery of a kit's secrets (the revocation password and, for a
-- TOKEN kit, the token's initial PIN and PUK): an emailed link plus a
-- generation code printed in the kit envelope. link_hash is the SHA-256 of
-- the link token, code_hash the Argon2id PHC string of the generation code,
-- sealed the secrets as JSON sealed by the vault (XChaCha20-Poly1305, key
-- outside the database, associated data = id). Nothing here is in clear.
-- sealed is erased (NULL) when the secrets are retrieved or the delivery is
-- superseded by a newer one for the same order. failed_attempts counts
-- generation codes tried (a right one is given back); the third wrong one
-- sets blocked_at. Times are seconds since the epoch, UTC. order_id has no
-- foreign key (the orders table came later); serial may be unknown yet.
CREATE TABLE secret_deliveries (
    id              TEXT   PRIMARY KEY,
    order_id        TEXT   NOT NULL,
    serial          TEXT,
    link_hash       TEXT   NOT NULL UNIQUE,
    code_hash       TEXT   NOT NULL,
    sealed          BLOB,
    failed_attempts BIGINT NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
    blocked_at      BIGINT,
    retrieved_at    BIGINT,
    superseded_at   BIGINT,
    created_at      BIGINT NOT NULL,
    CHECK (retrieved_at IS NULL OR superseded_at IS NULL),
    CHECK ((sealed IS NULL) = (retrieved_at IS NOT NULL OR superseded_at IS NOT NULL))
);
CREATE INDEX secret_deliveries_order ON secret_deliveries (order_id, created_at);
-- At most one live (neither retrieved nor superseded) delivery per order.
CREATE UNIQUE INDEX secret_deliveries_live ON secret_deliveries (order_id)
    WHERE retrieved_at IS NULL AND superseded_at IS NULL;

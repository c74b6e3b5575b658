-- Orders: from the order form to the issued certificate. The holder follows
-- an order through a capability link (an HMAC of the id, never stored); RA
-- officers see it by id. The ID document number is kept only as the same
-- keyed hash the hotline uses.
CREATE TABLE orders (
    id                  TEXT    PRIMARY KEY,          -- 32 random hex digits
    idempotency_key     TEXT    UNIQUE,               -- the client's Idempotency-Key
    request_hash        TEXT    NOT NULL,             -- SHA-256 of the order form, to spot a reused key
    product             TEXT    NOT NULL CHECK (product IN ('token', 'cloud')),
    years               BIGINT  NOT NULL CHECK (years IN (1, 2, 3)),
    given_name          TEXT    NOT NULL,
    surname             TEXT    NOT NULL,
    email               TEXT    NOT NULL,
    country             TEXT    NOT NULL,
    semantics_id        TEXT    NOT NULL,
    document_key        TEXT    NOT NULL,             -- HMAC of the ID document number
    publish             BIGINT  NOT NULL,
    language            TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN
                        ('awaiting-payment', 'awaiting-identity', 'rejected', 'approved', 'issuing', 'issued')),
    created_at          BIGINT  NOT NULL,
    paid_at             BIGINT,
    payment_ref         TEXT,
    identity_due_at     BIGINT,                       -- the 24-hour promise, from payment (or resumption)
    decided_by          TEXT,
    decided_at          BIGINT,
    rejection_reason    TEXT,
    csr                 BYTEA,                        -- TOKEN: the holder's request
    csr_key_id          TEXT,
    totp_sealed         BYTEA,                        -- CLOUD: the authenticator secret, sealed by the vault
    totp_enrolled_at    BIGINT,
    totp_last_step      BIGINT,
    serial              TEXT    REFERENCES certificates(serial),
    kit_code_sealed     BYTEA,                        -- the delivery code until printed or shown, then NULL
    updated_at          BIGINT  NOT NULL
);
CREATE INDEX orders_queue ON orders (state, identity_due_at);

-- Payment provider events already applied (a replayed event is a no-op).
CREATE TABLE payment_events (
    event_id    TEXT   PRIMARY KEY,
    order_id    TEXT   NOT NULL REFERENCES orders(id),
    received_at BIGINT NOT NULL
);

-- "A CSR whose key is already certified" is found by its key identifier.
CREATE INDEX certificates_key_id ON certificates (key_id);

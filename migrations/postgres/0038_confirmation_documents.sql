-- The confirmation document (issue 16): per end-entity certificate, the
-- prefilled PDF we handed out (its SHA-256 and length: the document is
-- generated deterministically, so the bytes themselves are not kept) and
-- the latest countersigned result, confirmare.pdf. An upload is checked
-- against prefilled_sha256/prefilled_size: it must start with exactly
-- those bytes.
CREATE TABLE confirmation_documents (
    serial            TEXT   PRIMARY KEY REFERENCES certificates(serial),
    prefilled_sha256  TEXT   NOT NULL,   -- hex
    prefilled_size    BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    signed_sha256     TEXT,              -- hex of the holder's upload that was countersigned
    countersigned     BYTEA,             -- confirmare.pdf
    countersigned_at  BIGINT
);

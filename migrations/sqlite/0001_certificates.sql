-- Every certificate qcert has reserved a serial for, issued or aborted.
-- A row is written with status 'reserved' (and the to-be-signed DER) before
-- the HSM signs anything; the signature turns it into 'issued'.
CREATE TABLE certificates (
    serial        TEXT    PRIMARY KEY,              -- lower-case hex of the DER INTEGER
    issuer_serial TEXT    REFERENCES certificates(serial), -- NULL for the self-signed root
    kind          TEXT    NOT NULL CHECK (kind IN ('root-ca', 'issuing-ca', 'ocsp-responder', 'end-entity')),
    profile       TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('reserved', 'issued', 'aborted')),
    subject_dn    TEXT    NOT NULL,
    given_name    TEXT,
    surname       TEXT,
    email         TEXT,
    country       TEXT,
    semantics_id  TEXT,
    not_before    BIGINT  NOT NULL,                 -- seconds since the epoch, UTC
    not_after     BIGINT  NOT NULL,
    key_id        TEXT    NOT NULL,                 -- hex subjectKeyIdentifier
    hsm_key_label TEXT,                             -- key held in our HSM (CA keys, CLOUD)
    tbs_der       BLOB    NOT NULL,
    der           BLOB,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    CHECK ((status = 'issued') = (der IS NOT NULL))
);
CREATE INDEX certificates_email ON certificates (email);
CREATE INDEX certificates_not_after ON certificates (not_after);

-- The CA's own keys and certificates, one row per role, written by the key ceremony.
CREATE TABLE ca_keys (
    role               TEXT   PRIMARY KEY CHECK (role IN ('root', 'issuing', 'ocsp')),
    key_label          TEXT   NOT NULL UNIQUE,
    key_algorithm      TEXT   NOT NULL,
    certificate_serial TEXT   NOT NULL UNIQUE REFERENCES certificates(serial),
    created_at         BIGINT NOT NULL
);

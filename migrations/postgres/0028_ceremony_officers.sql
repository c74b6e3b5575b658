-- Key-ceremony officers (EN 319 411-1 GEN-6.4.3-02, dual control): who may
-- confirm a ceremony, with an Argon2id verifier of their own credential
-- (never the credential). Enrolled at the root ceremony, whose two
-- credentials together open the root token; later ceremonies on the online
-- token check each officer against this verifier.
CREATE TABLE ceremony_officers (
    name        TEXT   PRIMARY KEY,
    role        TEXT   NOT NULL,
    verifier    TEXT   NOT NULL,
    enrolled_at BIGINT NOT NULL
);

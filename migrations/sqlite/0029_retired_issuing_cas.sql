-- Issuing CAs replaced by a rollover (`qcert ceremony issuing-ca` with
-- rollover = true). A retired CA issues nothing new but keeps signing its
-- CRL and answering OCSP (its own responder) for what it issued.
-- Generation 1 is the first issuing CA (URLs /crl/issuing.crl,
-- /certs/issuing.crt); generation N >= 2 publishes /crl/issuing-N.crl and
-- /certs/issuing-N.crt. The current CA is ca_keys' 'issuing' row, of
-- generation (rows here) + 1.
CREATE TABLE retired_issuing_cas (
    generation        BIGINT PRIMARY KEY,
    issuing_serial    TEXT   NOT NULL UNIQUE REFERENCES certificates(serial),
    issuing_key_label TEXT   NOT NULL,
    ocsp_serial       TEXT   NOT NULL REFERENCES certificates(serial),
    ocsp_key_label    TEXT   NOT NULL,
    retired_at        BIGINT NOT NULL
);

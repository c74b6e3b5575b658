-- RFC 3161 time-stamp tokens issued by the TSA (ca-core::tsa). A row is
-- written before its token is signed (as certificates are reserved before
-- they are signed): the serial's uniqueness is the primary key's, and the
-- row is the TSA's event log (ETSI EN 319 421 7.12: time-stamp requests
-- and responses recorded). The message imprint is the requester's hash,
-- never the document.
CREATE TABLE time_stamps (
    serial          TEXT   PRIMARY KEY,      -- TSTInfo serialNumber, lower-case hex
    tsu_serial      TEXT   NOT NULL,         -- serial of the TSU certificate that signed it
    gen_time        BIGINT NOT NULL,         -- TSTInfo genTime, seconds since the epoch
    policy          TEXT   NOT NULL,         -- TSTInfo policy OID
    hash_algorithm  TEXT   NOT NULL,         -- messageImprint hashAlgorithm OID
    message_imprint TEXT   NOT NULL          -- messageImprint hashedMessage, lower-case hex
);
CREATE INDEX time_stamps_gen_time ON time_stamps (gen_time);

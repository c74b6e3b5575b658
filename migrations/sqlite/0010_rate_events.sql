-- Sliding-window rate limits shared by every qcert process on the registry
-- (hotline agents, authorization codes per order or certificate, the public
-- order form per client address and per email). One row per accepted event;
-- a key is the SHA-256 of its scope and value (no address or email in
-- clear), and rows older than their window are deleted as new events come.
CREATE TABLE rate_events (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT   NOT NULL,
    key   TEXT   NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX rate_events_window ON rate_events (scope, key, at);
-- Replaced by rate_events (a fixed minute window let 60 attempts through in 3 s).
DROP TABLE hotline_attempts;

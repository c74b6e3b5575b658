-- Hotline attempts per agent per minute, shared by every qcert process on
-- the registry (the per-agent rate limit). Old minutes are deleted as agents
-- make new attempts.
CREATE TABLE hotline_attempts (
    operator TEXT   NOT NULL,
    minute   BIGINT NOT NULL,  -- unix seconds / 60
    attempts BIGINT NOT NULL,
    PRIMARY KEY (operator, minute)
);

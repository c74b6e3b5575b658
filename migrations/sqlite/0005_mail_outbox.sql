-- The durable mail outbox: every mail qcert sends is first a row here, then
-- delivered by the notifier's dispatcher, retried with backoff while the
-- mail server is down. dedupe_key makes enqueuing the same logical mail
-- twice (e.g. 'reminder-45:<serial>') a no-op. Times are seconds since the
-- epoch, UTC. last_error never holds secrets (no passwords, no bodies).
-- (SQLite: INTEGER PRIMARY KEY AUTOINCREMENT is the 64-bit rowid; ids are never
-- reused, which the stable Message-ID <outbox-{id}.…> relies on.)
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key      TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL,             -- template name, e.g. 'renewal-reminder'
    language        TEXT    NOT NULL CHECK (language IN ('en', 'ro')),
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,             -- rendered at enqueue time
    body_text       TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,   -- delivery attempts made
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,                       -- a dispatcher holds the row until then
    lease_owner     TEXT,                         -- which dispatcher run holds it
    sent_at         BIGINT,                       -- accepted by the mail server
    failed_at       BIGINT,                       -- permanently rejected; parked, not retried
    last_error      TEXT,
    CHECK (sent_at IS NULL OR failed_at IS NULL)
);
-- The dispatcher's due query: unsent, not parked, oldest next_attempt_at first.
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- What the RA officer needs to reach the holder for the video call and to
-- know which document to expect: an optional phone number (E.164, "+"
-- and digits, normalised) and the identity document's type ("id-card" or
-- "passport"; NULL for orders taken before the form asked).
ALTER TABLE orders ADD COLUMN phone TEXT;
ALTER TABLE orders ADD COLUMN document_type TEXT;

-- The audit read API filters by subject or actor, newest first.
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

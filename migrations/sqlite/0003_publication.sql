-- Whether the holder agreed to have the certificate listed in the public
-- directory (GDPR: consent, recorded with the order). 0 = not listed.
ALTER TABLE certificates ADD COLUMN published BIGINT NOT NULL DEFAULT 0;
CREATE INDEX certificates_published_email ON certificates (published, email);

-- RFC 6121 section 3.1.3: keep the complete subscription request stanza
-- (extensions such as XEP-0172 nicknames included), not only its status.
ALTER TABLE roster_pending_in ADD COLUMN stanza BYTEA;

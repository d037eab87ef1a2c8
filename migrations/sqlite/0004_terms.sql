-- The terms of use the client had accepted when the conversation began: their version (the
-- first 16 hex digits of the SHA-256 of their text), NULL when it had accepted none (an API
-- client, or terms changed since). `arena export --accepted-terms-only` leaves those out.
ALTER TABLE conversations ADD COLUMN terms_version TEXT;

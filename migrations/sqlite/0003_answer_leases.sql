-- Answers are stored when their turn starts, as finish_reason 'generating' with a lease the
-- controller renews while it streams. An answer whose lease ran out (its controller crashed or
-- was killed) is closed as 'interrupted', so no battle waits forever for it.
ALTER TABLE messages ADD COLUMN lease_ms BIGINT;

CREATE INDEX messages_generating ON messages (lease_ms) WHERE finish_reason = 'generating';

-- Votes you can trust: per-client signals stored with each vote, and a stable key of the rule
-- that kept a vote off the leaderboard beside its human-readable reason.

-- When an answer ended (Unix ms, the server's clock): a vote's delay is measured from the
-- later of the two answers it judged. Answers that ended before this column existed have none,
-- and votes on them have no delay (no rule judges an unknown delay).
ALTER TABLE messages ADD COLUMN finished_ms BIGINT;

-- Milliseconds from the later of the two judged answers' ends to the vote.
ALTER TABLE votes ADD COLUMN answer_to_vote_ms BIGINT;
-- This voter's votes in the trailing hour, this one included.
ALTER TABLE votes ADD COLUMN client_votes_hour BIGINT;
-- This voter's latest consecutive votes for the same side, this one included (0 for a tie).
ALTER TABLE votes ADD COLUMN same_side_streak BIGINT;
-- Why the vote does not count, as a key: answer_error, identity_leak, names_shown, too_fast,
-- too_many_votes, same_side_streak; NULL for a counted vote or a reason no key matches.
ALTER TABLE votes ADD COLUMN exclusion_rule TEXT;

-- The reasons written before the keys existed, as the controller worded them.
UPDATE votes SET exclusion_rule = CASE
    WHEN excluded_reason LIKE '%answer ended in an error%' THEN 'answer_error'
    WHEN excluded_reason LIKE '%answer revealed a model identity%' THEN 'identity_leak'
    WHEN excluded_reason LIKE 'the names were shown%' THEN 'names_shown'
    END
WHERE NOT counted;

-- The per-voter counts read every vote's own rows.
CREATE INDEX votes_voter ON votes (voter_hash, created_ms);

-- Each voter's running state, one row per voter hash. A vote locks its voter's row for the
-- transaction, so two votes of one client never read the same state; the streak is carried
-- here in the order the votes were stored, which timestamps alone cannot break ties in.
CREATE TABLE voters (
    voter_hash       TEXT PRIMARY KEY,
    last_winner      TEXT NOT NULL,
    same_side_streak BIGINT NOT NULL,
    last_vote_ms     BIGINT NOT NULL
);
